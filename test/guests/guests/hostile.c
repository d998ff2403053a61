/*
 * hostile: accesses a VMM must survive without crashing, hanging or
 * misbehaving, all of them legal for a guest to make:
 *   1. in/out of widths 1, 2 and 4 on a spread of ports nothing claims,
 *      including wide accesses at the very top of the port space;
 *   2. odd widths and offsets on the UART (16/32-bit accesses that span
 *      several registers or run past 0x3FF), after which the UART is
 *      re-initialised so the result can still be printed;
 *   3. MMIO reads and writes of 1, 2, 4 and 8 bytes to unbacked physical
 *      addresses, unaligned and page-crossing ones included;
 *   4. string I/O (rep ins/outs: one exit carrying several items) and a
 *      string copy out of unbacked MMIO.
 *
 * Ports left alone, because touching them means something (a test of its
 * own, an exit, a reset, or an in-kernel device whose state later tests
 * rely on): 0x20-0x21/0xA0-0xA1 PIC, 0x40-0x43/0x61 PIT, 0x60-0x64 i8042,
 * 0x70-0x71 RTC, 0x92 port A (fast reset), 0xB2-0xB3 APM/SMI, 0xF4-0xF7
 * debug exit, 0x3F8-0x3FF UART (phase 2 only), 0x4D0-0x4D1 ELCR,
 * 0x510-0x51B fw_cfg, 0x600-0x63F ACPI PM, 0xCF8-0xCFF PCI config and
 * reset, 0xAE00-0xAF1F and 0xB000-0xB07F QEMU hotplug/ICH9, and 0xC000-
 * 0xFFEF where firmware puts PCI I/O BARs.  MMIO stays below the IOAPIC
 * (0xFEC00000) and LAPIC (0xFEE00000) and inside the 4 GiB that is mapped.
 *
 * Output:  hostile: pio ok (N ports)
 *          hostile: read port 0xXXXX/4 = 0x........
 *          hostile: uart ok
 *          hostile: mmio ok (N accesses)
 *          hostile: read mmio 0xd0000000/8 = 0x................
 *          hostile: string ok
 *          hostile: survived
 * Exit 0 once all phases ran.
 */
#include "guest.h"

struct range {
	u32 lo, hi;     /* inclusive */
};

static const struct range deny[] = {
	{ 0x0000, 0x00FF },     /* legacy ISA: only the picks in low_ports below */
	{ 0x03F8, 0x03FF }, { 0x04D0, 0x04D1 }, { 0x0510, 0x051B }, { 0x0600, 0x063F },
	{ 0x0CF8, 0x0CFF }, { 0xAE00, 0xAF1F }, { 0xB000, 0xB07F }, { 0xC000, 0xFFEF },
};

/* Low ports that are safe to poke: SuperIO config, POST, delay, debugcon. */
static const u16 low_ports[] = { 0x2E, 0x2F, 0x4E, 0x4F, 0x80, 0x84, 0x8F, 0xE9, 0xED };

/* Edge cases: a 4-byte access at 0xFFFE runs past the top of the port space. */
static const u16 top_ports[] = { 0xFFF0, 0xFFFC, 0xFFFD, 0xFFFE, 0xFFFF };

static int denied(u32 lo, u32 hi)
{
	for (unsigned i = 0; i < ARRAY_SIZE(deny); i++)
		if (lo <= deny[i].hi && hi >= deny[i].lo)
			return 1;
	return 0;
}

static u32 sink;        /* keeps reads from being optimised away */

static void poke_port(u16 p)
{
	sink ^= inb(p);
	sink ^= inw(p);
	sink ^= inl(p);
	outb(p, 0xA5);
	outw(p, 0x5AA5);
	outl(p, 0xDEADBEEF);
}

static unsigned phase_pio(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(low_ports); i++, n++)
		poke_port(low_ports[i]);
	/* A stride that is odd and not a power of two hits all alignments. */
	for (u32 p = 0x100; p < 0x10000; p += 0x1F3) {
		if (denied(p, p + 3))
			continue;
		poke_port((u16)p);
		n++;
	}
	for (unsigned i = 0; i < ARRAY_SIZE(top_ports); i++, n++)
		poke_port(top_ports[i]);
	return n;
}

static void phase_uart(void)
{
	u16 b = PORT_UART0;
	sink ^= inw(b + 1);             /* IER + IIR */
	sink ^= inl(b + 1);             /* IER, IIR, LCR, MCR */
	sink ^= inl(b);                 /* RBR..LCR: may consume a received byte */
	sink ^= inb(b + 7);             /* SCR */
	sink ^= inw(b + 6);             /* MSR + SCR */
	sink ^= inl(b + 4);             /* MCR, LSR, MSR, SCR */
	sink ^= inw(b + 7);             /* SCR and 0x400, past the UART */
	sink ^= inl(b + 6);             /* 0x3FE..0x401 */
	outw(b + 1, 0x0000);            /* IER=0, FCR=0 */
	outl(b + 3, 0x00000003);        /* LCR=8N1, MCR=0, LSR/MSR (read-only) */
	outb(b + 7, 0x5A);              /* SCR */
	outw(b + 7, 0xA55A);            /* SCR and 0x400 */
	outl(b + 5, 0xFFFFFFFF);        /* LSR, MSR, SCR, 0x400 */
	outw(b + 1, 0x0000);            /* IER=0 again, FIFOs off */
	sink ^= inb(b + 5);
	uart_init();
}

static const u64 mmio_addrs[] = {
	0xD0000000ull,                  /* the exit-storm address */
	0xD0000001ull,                  /* unaligned */
	0xD0000FFDull,                  /* 4- and 8-byte accesses cross a page */
	0xFEBFF000ull,                  /* just below the IOAPIC */
	0xFEBFEFFEull,                  /* crossing between two unbacked pages */
	0xFFFFFFF0ull,                  /* firmware area, top of 4 GiB */
	0xFFFFFFF8ull,                  /* the last 8 bytes below 4 GiB */
};

static unsigned phase_mmio(void)
{
	unsigned n = 0;
	for (unsigned i = 0; i < ARRAY_SIZE(mmio_addrs); i++) {
		u64 a = mmio_addrs[i];
		sink ^= mmio_read8(a);
		sink ^= mmio_read16(a);
		sink ^= mmio_read32(a);
		sink ^= (u32)mmio_read64(a);
		mmio_write8(a, 0xA5);
		mmio_write16(a, 0x5AA5);
		mmio_write32(a, 0xDEADBEEF);
		mmio_write64(a, 0x0123456789ABCDEFull);
		n += 8;
	}
	return n;
}

static void phase_string(void)
{
	u8 buf[32];
	void *d = buf;
	const void *s = buf;
	u64 c;

	memset(buf, 0x42, sizeof(buf));
	c = 16;
	__asm__ volatile("rep insb" : "+D"(d), "+c"(c) : "d"((u16)0x2F0) : "memory");
	d = buf;
	c = 8;
	__asm__ volatile("rep insw" : "+D"(d), "+c"(c) : "d"((u16)0xFFFE) : "memory");
	c = 16;
	__asm__ volatile("rep outsb" : "+S"(s), "+c"(c) : "d"((u16)PORT_POST) : "memory");
	s = buf;
	c = 4;
	__asm__ volatile("rep outsl" : "+S"(s), "+c"(c) : "d"((u16)0x2F0) : "memory");
	/* A string copy out of unbacked MMIO into RAM. */
	d = buf;
	s = (const void *)0xD0000100ul;
	c = 16;
	__asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(c) : : "memory");
	sink ^= buf[0];
}

int guest_main(void)
{
	uart_init();

	unsigned ports = phase_pio();
	printf("hostile: pio ok (%u ports)\n", ports);
	printf("hostile: read port 0x2f0/4 = 0x%08x\n", inl(0x2F0));

	phase_uart();
	uart_puts("hostile: uart ok\n");

	unsigned accesses = phase_mmio();
	printf("hostile: mmio ok (%u accesses)\n", accesses);
	printf("hostile: read mmio 0xd0000000/8 = 0x%016llx\n", mmio_read64(0xD0000000ull));

	if (!cmdline_has("nostring")) {
		phase_string();
		uart_puts("hostile: string ok\n");
	}

	uart_puts("hostile: survived\n");
	return 0;
}
