/* Leaving the guest: debug-exit port first, ACPI power-off second. */
#include "guest.h"

void exit(int code)
{
	/* A VMM with a debug-exit device stops here with `code`. */
	outl(PORT_DEBUG_EXIT, (u32)code);
	/* Otherwise: PM1a_CNT = SLP_TYP 5 (S5, soft off, vmctl's encoding) | SLP_EN. */
	outw(PORT_PM1A_CNT, (5 << 10) | (1 << 13));
	/*
	 * SLP_TYP values are the DSDT's choice; QEMU's PIIX4/ICH9 models use
	 * 0 for S5.  Trying it second lets the guests power off there too.
	 */
	outw(PORT_PM1A_CNT, (0 << 10) | (1 << 13));
	/*
	 * Still running: nothing listened.  hlt is privileged, so at CPL3 we
	 * can only spin; at CPL0 (an exception handler) halt with IF clear.
	 */
	if (cpl() == 0)
		for (;;)
			__asm__ volatile("cli; hlt");
	for (;;)
		cpu_relax();
}
