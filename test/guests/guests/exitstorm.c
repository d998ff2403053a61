/*
 * exitstorm: N back-to-back VM exits of each kind, timed with rdtsc (which
 * runs natively at CPL3 here), for the exit-cost benchmark.
 *
 * Command line: n=NUMBER (default 100000; decimal or 0x-hex), and "cpl0"
 * to also run both loops at CPL0 (through cpl0_call).
 * Output:
 *   storm: pio n=N tsc=T       N one-byte `out`s to port 0x80
 *   storm: mmio n=N tsc=T      N 32-bit writes to 0xD0000000 (unbacked)
 *   storm: pio-cpl0 n=N tsc=T  (with "cpl0") the same loops at CPL0
 *   storm: mmio-cpl0 n=N tsc=T
 * T is the TSC delta over the whole loop; T/N is the cost of one exit as
 * the guest sees it.  Why the CPL0 variant: on PVM a CPL3 exit also pays
 * for leaving native execution (trap, decode, emulate; ~3x the CPL0 cost
 * here), which hides the VMM's own share; at CPL0 the guest is already
 * being emulated, so the VMM's part of each exit weighs more.
 */
#include "guest.h"

#define STORM_MMIO_ADDR 0xD0000000ull

static u64 storm_pio(u64 n)
{
	u64 t0 = rdtsc();
	for (u64 i = 0; i < n; i++)
		outb(PORT_POST, (u8)i);
	return rdtsc() - t0;
}

static u64 storm_mmio(u64 n)
{
	u64 t0 = rdtsc();
	for (u64 i = 0; i < n; i++)
		mmio_write32(STORM_MMIO_ADDR, (u32)i);
	return rdtsc() - t0;
}

int guest_main(void)
{
	u64 n = 100000;

	uart_init();
	cmdline_u64("n", &n);

	printf("storm: pio n=%llu tsc=%llu\n", n, storm_pio(n));
	printf("storm: mmio n=%llu tsc=%llu\n", n, storm_mmio(n));
	if (cmdline_has("cpl0")) {
		printf("storm: pio-cpl0 n=%llu tsc=%llu\n", n, cpl0_call(storm_pio, n));
		printf("storm: mmio-cpl0 n=%llu tsc=%llu\n", n, cpl0_call(storm_mmio, n));
	}
	return 0;
}
