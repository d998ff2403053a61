/*
 * rtc: the CMOS clock (MC146818) as a guest OS reads it.
 *
 * Output:
 *   rtc: YYYY-MM-DDTHH:MM:SSZ      (the RTC is taken to hold UTC)
 *   rtc: waiting for HH:MM:SS      (the alarm time, ~2 s ahead)
 *   rtc: alarm | rtc: no alarm     (AF seen in reg C, or not within ~5 s)
 * Exit 0 when the clock reads; 1 if there is no working RTC (UIP never
 * clears, or the time is not a valid date).  A missing alarm is reported
 * but not a failure of the guest: the test decides.
 * Command line: "binary" and/or "12h" first switch reg B to binary data
 * and/or 12-hour mode (restored at the end).
 */
#include "guest.h"

#define REG_SEC      0x00
#define REG_SEC_ALM  0x01
#define REG_MIN      0x02
#define REG_MIN_ALM  0x03
#define REG_HOUR     0x04
#define REG_HOUR_ALM 0x05
#define REG_MDAY     0x07
#define REG_MON      0x08
#define REG_YEAR     0x09
#define REG_A        0x0A
#define REG_B        0x0B
#define REG_C        0x0C
#define REG_CENTURY  0x32

#define A_UIP    0x80
#define B_SET    0x80
#define B_AIE    0x20
#define B_DM_BIN 0x04   /* 1: binary, 0: BCD */
#define B_24H    0x02   /* 1: 24-hour, 0: 12-hour with bit 7 of hours = PM */
#define C_AF     0x20
#define HOUR_PM  0x80

static u8 cmos_read(u8 reg)
{
	/* Bit 7 of the index port is the NMI mask on a PC: leave NMIs enabled. */
	outb(PORT_CMOS_INDEX, reg & 0x7F);
	return inb(PORT_CMOS_DATA);
}

static void cmos_write(u8 reg, u8 v)
{
	outb(PORT_CMOS_INDEX, reg & 0x7F);
	outb(PORT_CMOS_DATA, v);
}

struct rtc_time {
	unsigned sec, min, hour, mday, mon, year;       /* hour 0..23, year in full */
};

struct raw {
	u8 sec, min, hour, mday, mon, year, century;
};

static unsigned from_bcd(u8 v) { return (v >> 4) * 10u + (v & 0x0F); }
static u8 to_bcd(unsigned v) { return (u8)(((v / 10) << 4) | (v % 10)); }

/*
 * Waits until no update is in progress.  UIP rises 244 us before an update
 * that lasts < 2 ms; each poll is two VM exits, so 20000 polls is far more
 * than any real RTC needs and still ends quickly with none present.
 */
static int wait_uip_clear(void)
{
	for (int i = 0; i < 20000; i++)
		if (!(cmos_read(REG_A) & A_UIP))
			return 1;
	return 0;
}

static int read_raw(struct raw *r)
{
	if (!wait_uip_clear())
		return 0;
	r->sec = cmos_read(REG_SEC);
	r->min = cmos_read(REG_MIN);
	r->hour = cmos_read(REG_HOUR);
	r->mday = cmos_read(REG_MDAY);
	r->mon = cmos_read(REG_MON);
	r->year = cmos_read(REG_YEAR);
	r->century = cmos_read(REG_CENTURY);
	return 1;
}

static u8 reg_b;

static unsigned decode(u8 v) { return (reg_b & B_DM_BIN) ? v : from_bcd(v); }
static u8 encode(unsigned v) { return (reg_b & B_DM_BIN) ? (u8)v : to_bcd(v); }

static unsigned decode_hour(u8 v)
{
	if (reg_b & B_24H)
		return decode(v);
	/* 12-hour: 12 AM is midnight, 12 PM is noon. */
	unsigned h = decode(v & 0x7F) % 12;
	return (v & HOUR_PM) ? h + 12 : h;
}

static u8 encode_hour(unsigned h)
{
	if (reg_b & B_24H)
		return encode(h);
	unsigned h12 = h % 12 ? h % 12 : 12;
	return (u8)(encode(h12) | (h >= 12 ? HOUR_PM : 0));
}

/*
 * Reads until two consecutive snapshots agree, so an update landing between
 * two register reads cannot give e.g. 12:59:00 for 13:00:00.
 */
static int read_time(struct rtc_time *t)
{
	struct raw a, b;
	if (!read_raw(&a))
		return 0;
	for (int tries = 0; tries < 10; tries++) {
		if (!read_raw(&b))
			return 0;
		if (memcmp(&a, &b, sizeof(a)) == 0)
			break;
		a = b;
	}
	reg_b = cmos_read(REG_B);
	t->sec = decode(a.sec);
	t->min = decode(a.min);
	t->hour = decode_hour(a.hour);
	t->mday = decode(a.mday);
	t->mon = decode(a.mon);
	unsigned century = decode(a.century);
	/* Reg 0x32 is a convention, not part of the chip: guess if it is empty. */
	if (century < 19 || century > 99)
		century = 20;
	t->year = century * 100 + decode(a.year);
	return 1;
}

static int valid(const struct rtc_time *t)
{
	return t->sec < 60 && t->min < 60 && t->hour < 24 && t->mday >= 1 && t->mday <= 31 &&
	       t->mon >= 1 && t->mon <= 12;
}

static unsigned day_seconds(const struct rtc_time *t) { return t->hour * 3600 + t->min * 60 + t->sec; }

int guest_main(void)
{
	struct rtc_time now;

	uart_init();
	/*
	 * "binary" and "12h" on the command line switch the RTC's data mode
	 * first, to exercise those paths of the device and of this guest; the
	 * original reg B comes back at the end.
	 */
	u8 orig_b = cmos_read(REG_B);
	if (cmdline_has("binary") || cmdline_has("12h")) {
		u8 nb = orig_b & (u8)~B_SET;
		if (cmdline_has("binary"))
			nb |= B_DM_BIN;
		if (cmdline_has("12h"))
			nb &= (u8)~B_24H;
		wait_uip_clear();
		cmos_write(REG_B, nb);
	}
	if (!read_time(&now)) {
		uart_puts("rtc: no RTC (update-in-progress never clears)\n");
		return 1;
	}
	if (!valid(&now)) {
		printf("rtc: invalid time %u-%u-%u %u:%u:%u (reg B 0x%x)\n", now.year, now.mon,
		       now.mday, now.hour, now.min, now.sec, reg_b);
		return 1;
	}
	printf("rtc: %04u-%02u-%02uT%02u:%02u:%02uZ\n", now.year, now.mon, now.mday, now.hour,
	       now.min, now.sec);

	/* Alarm 2 s ahead (wrapping at midnight); alarms match hh:mm:ss daily. */
	unsigned start = day_seconds(&now);
	unsigned at = (start + 2) % 86400;
	unsigned ah = at / 3600, am = at / 60 % 60, as = at % 60;
	printf("rtc: waiting for %02u:%02u:%02u\n", ah, am, as);

	/* Alarm registers change only between updates, like the time. */
	wait_uip_clear();
	cmos_write(REG_SEC_ALM, encode(as));
	cmos_write(REG_MIN_ALM, encode(am));
	cmos_write(REG_HOUR_ALM, encode_hour(ah));
	(void)cmos_read(REG_C);                         /* reading C clears stale flags */
	u8 b = cmos_read(REG_B);
	cmos_write(REG_B, (u8)((b & ~B_SET) | B_AIE));

	int fired = 0;
	/* Backstop for a clock that never advances: ~5-10 s of TSC at 2-4 GHz. */
	u64 tsc_limit = rdtsc() + 20000000000ull;
	for (unsigned polls = 0;; polls++) {
		if (cmos_read(REG_C) & C_AF) {
			fired = 1;
			break;
		}
		/* Re-read the clock only now and then: it is 16+ exits. */
		if (polls % 256 == 255) {
			struct rtc_time t;
			if (!read_time(&t))
				break;
			if ((day_seconds(&t) + 86400 - start) % 86400 > 5)
				break;
			if (rdtsc() > tsc_limit) {
				uart_puts("rtc: the clock does not advance\n");
				break;
			}
		}
	}

	cmos_write(REG_B, orig_b & (u8)~B_SET);
	(void)cmos_read(REG_C);
	uart_puts(fired ? "rtc: alarm\n" : "rtc: no alarm\n");
	return 0;
}
