/*
 * smp: starts the other CPUs the way a PC OS does (INIT, SIPI, SIPI through
 * the BSP's local APIC) and has every CPU report from CPL3.
 *
 * Command line: cpus=N (default 1; 1..64) -- the CPUs to expect, the BSP
 * included; storm=N -- after all are up, every CPU runs N one-byte `out`s
 * to port 0x80 at the same time.
 * Output (lines from different CPUs interleave; each line is whole):
 *   smp: cpu I up (apic A)               once per CPU; I = 0 for the BSP,
 *                                        1..N-1 for the APs in order of
 *                                        arrival, A = its local APIC ID
 *   smp: cpu I pio n=N tsc=T             (with storm=N) per CPU, T = rdtsc
 *                                        delta over its loop
 *   smp: all N cpus up                   from the BSP, last
 * Exit 0.  Exit 1 with `smp: cpu I missing` (one per absent CPU) if the APs
 * are not all up within AP_TIMEOUT_TSC TSC cycles of the SIPIs, with
 * `smp: cpus I and J share apic A` if two CPUs report the same APIC ID, or
 * with `smp: bad cpus=N` if N is out of range.
 *
 * How: the BSP (at CPL3: the LAPIC page is identity-mapped and user-
 * accessible) prepares one struct cpu per AP -- a copy of boot/pvh.S's GDT
 * whose TSS descriptor points at the AP's own TSS (RSP0, IST1, all-zero
 * I/O bitmap), and its stacks -- copies boot/ap.S's trampoline to 0x8000
 * and sends INIT then two SIPIs (vector 0x08) to "all excluding self".  It
 * does not assume APIC IDs: each AP takes an index as it arrives.  The APs
 * go real -> protected -> long mode on the BSP's page tables and iretq to
 * ap_main() at CPL3.  An AP beyond cpus=N parks at CPL0 and is reported
 * by the BSP with `smp: note: K more cpus than cpus=N started`.
 * UART output is serialised by a spinlock at CPL3.  An AP that has
 * reported halts (cli; hlt through cpl0_call) rather than spin, so it does
 * not take host CPU from the others.
 */
#include "guest.h"
#include "../boot/ap.h"

#define LAPIC_BASE      0xFEE00000ull
#define LAPIC_ID        0x020
#define LAPIC_ICR_LO    0x300
#define LAPIC_ICR_HI    0x310
#define ICR_INIT        (5 << 8)
#define ICR_STARTUP     (6 << 8)
#define ICR_BUSY        (1 << 12)       /* delivery status: send pending */
#define ICR_ASSERT      (1 << 14)
#define ICR_ALL_BUT_SELF (3 << 18)

/*
 * Time is counted in TSC cycles (rdtsc runs natively at CPL3); the guest
 * does not know the TSC rate, so these are sized for 1-5 GHz.  The MP
 * specification's waits: 10 ms after INIT, 200 us after each SIPI.
 */
#define INIT_WAIT_TSC   50000000ull     /* >= 10 ms at up to 5 GHz */
#define SIPI_WAIT_TSC   1000000ull      /* >= 200 us at up to 5 GHz */
#define AP_TIMEOUT_TSC  10000000000ull  /* 2-10 s; ~4 s at this machine's 2.45 GHz */

/* boot/pvh.S's GDT, then this CPU's TSS descriptor (16 bytes) at 0x28. */
static const u64 gdt_template[5] = {
	0,
	0x00AF9A000000FFFFull,  /* 0x08 kernel code, 64-bit */
	0x00CF92000000FFFFull,  /* 0x10 kernel data */
	0x00CFF2000000FFFFull,  /* 0x18 user data, DPL3 */
	0x00AFFA000000FFFFull,  /* 0x20 user code, 64-bit, DPL3 */
};

struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
	/* All zero: every port open to CPL3 (see boot/pvh.S); plus the trailing byte. */
	u8 iomap[65536 / 8 + 1];
} __attribute__((packed));

struct cpu {
	struct ap_boot boot;            /* what boot/ap.S reads */
	unsigned index;
	u64 gdt[7];
	struct tss64 tss;
	u8 kstack[16384] __attribute__((aligned(16)));
	u8 dfstack[4096] __attribute__((aligned(16)));
	u8 ustack[16384] __attribute__((aligned(16)));
};

/* Shared with boot/ap.S. */
volatile u32 ap_next_index;
struct ap_boot *ap_boot_table[AP_MAX_CPUS];

static struct cpu cpus[AP_MAX_CPUS] __attribute__((aligned(4096)));
static unsigned ncpus;
static u64 storm_n;
static int storm;

/* Shared state, written by several CPUs at once. */
static volatile u32 print_lock;
static volatile u32 up_count, done_count, go;
static volatile u32 up[AP_MAX_CPUS];
static volatile u32 apic_of[AP_MAX_CPUS];

static void lock(void)
{
	while (__atomic_exchange_n(&print_lock, 1, __ATOMIC_ACQUIRE))
		while (print_lock)
			cpu_relax();
}

static void unlock(void)
{
	__atomic_store_n(&print_lock, 0, __ATOMIC_RELEASE);
}

#define say(...) do { lock(); printf(__VA_ARGS__); unlock(); } while (0)

static u32 lapic_read(unsigned reg) { return mmio_read32(LAPIC_BASE + reg); }
static void lapic_write(unsigned reg, u32 v) { mmio_write32(LAPIC_BASE + reg, v); }
static unsigned apic_id(void) { return lapic_read(LAPIC_ID) >> 24; }

static void delay(u64 cycles)
{
	u64 t0 = rdtsc();
	while (rdtsc() - t0 < cycles)
		cpu_relax();
}

/* An IPI to every CPU but this one; waits (bounded) until the APIC sent it. */
static void ipi_others(u32 cmd)
{
	lapic_write(LAPIC_ICR_HI, 0);
	lapic_write(LAPIC_ICR_LO, ICR_ALL_BUT_SELF | ICR_ASSERT | cmd);
	for (int i = 0; i < 1000 && (lapic_read(LAPIC_ICR_LO) & ICR_BUSY); i++)
		cpu_relax();
}

static void prepare_ap(unsigned i)
{
	struct cpu *c = &cpus[i];
	u64 tss = (u64)(unsigned long)&c->tss;
	u64 limit = sizeof(c->tss) - 1;

	c->index = i;
	for (unsigned k = 0; k < ARRAY_SIZE(gdt_template); k++)
		c->gdt[k] = gdt_template[k];
	/* Available 64-bit TSS (type 9), present. */
	c->gdt[5] = (limit & 0xFFFF) | (tss & 0xFFFFFF) << 16 | 0x89ull << 40 |
		    ((limit >> 16) & 0xF) << 48 | ((tss >> 24) & 0xFF) << 56;
	c->gdt[6] = tss >> 32;
	c->tss.rsp[0] = (u64)(unsigned long)(c->kstack + sizeof(c->kstack));
	c->tss.ist[0] = (u64)(unsigned long)(c->dfstack + sizeof(c->dfstack));
	c->tss.iomap_base = __builtin_offsetof(struct tss64, iomap);
	c->boot.kstack_top = c->tss.rsp[0];
	c->boot.ustack_top = (u64)(unsigned long)(c->ustack + sizeof(c->ustack));
	c->boot.gdt_limit = sizeof(c->gdt) - 1;
	c->boot.gdt_base = (u64)(unsigned long)c->gdt;
	ap_boot_table[i] = &c->boot;
}

static void report_up(unsigned i)
{
	unsigned a = apic_id();
	apic_of[i] = a;
	say("smp: cpu %u up (apic %u)\n", i, a);
	up[i] = 1;
	__atomic_fetch_add(&up_count, 1, __ATOMIC_SEQ_CST);
}

/* After everyone is up: the concurrent PIO storm, then count this CPU done. */
static void run_storm(unsigned i)
{
	while (!go)
		cpu_relax();
	if (storm) {
		u64 t0 = rdtsc();
		for (u64 k = 0; k < storm_n; k++)
			outb(PORT_POST, (u8)k);
		u64 t = rdtsc() - t0;
		say("smp: cpu %u pio n=%llu tsc=%llu\n", i, storm_n, t);
	}
	__atomic_fetch_add(&done_count, 1, __ATOMIC_SEQ_CST);
}

static u64 halt_here(u64 arg)
{
	(void)arg;
	for (;;)
		__asm__ volatile("cli; hlt");
	return 0;
}

void ap_main(struct ap_boot *boot)
{
	struct cpu *c = (struct cpu *)boot;
	report_up(c->index);
	run_storm(c->index);
	cpl0_call(halt_here, 0);
	for (;;)
		cpu_relax();
}

int guest_main(void)
{
	u64 n = 1;

	uart_init();
	cmdline_u64("cpus", &n);
	storm = cmdline_u64("storm", &storm_n);
	if (n < 1 || n > AP_MAX_CPUS) {
		printf("smp: bad cpus=%llu (1..%u)\n", n, AP_MAX_CPUS);
		return 1;
	}
	ncpus = (unsigned)n;

	for (unsigned i = 1; i < ncpus; i++)
		prepare_ap(i);
	memcpy((void *)AP_TRAMP_ADDR, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
	ap_next_index = 1;
	report_up(0);

	if (ncpus > 1) {
		ipi_others(ICR_INIT);
		delay(INIT_WAIT_TSC);
		ipi_others(ICR_STARTUP | AP_SIPI_VECTOR);
		delay(SIPI_WAIT_TSC);
		/* The second SIPI is ignored by APs the first one started. */
		ipi_others(ICR_STARTUP | AP_SIPI_VECTOR);
		u64 t0 = rdtsc();
		while (up_count < ncpus && rdtsc() - t0 < AP_TIMEOUT_TSC)
			cpu_relax();
		if (up_count < ncpus) {
			lock();
			for (unsigned i = 1; i < ncpus; i++)
				if (!up[i])
					printf("smp: cpu %u missing\n", i);
			unlock();
			return 1;
		}
	}
	for (unsigned i = 0; i < ncpus; i++)
		for (unsigned j = i + 1; j < ncpus; j++)
			if (apic_of[i] == apic_of[j]) {
				say("smp: cpus %u and %u share apic %u\n", i, j, apic_of[i]);
				return 1;
			}

	go = 1;
	run_storm(0);
	while (done_count < ncpus)
		cpu_relax();
	u32 started = ap_next_index;    /* 1 + APs that took an index */
	if (started > ncpus)
		say("smp: note: %u more cpus than cpus=%u started\n", started - ncpus, ncpus);
	say("smp: all %u cpus up\n", ncpus);
	return 0;
}
