/*
 * reset: asks for a reboot the way PC firmware and Linux do, by pulsing
 * the CPU reset line through the i8042 keyboard controller (command 0xFE).
 *
 * Output:  reset: pulsing
 *          reset: still here      (only if the VMM did not reset us)
 * A VMM that implements the reset never lets the second line out; if it
 * does come, exit 1.
 */
#include "guest.h"

#define I8042_STATUS_IBF 0x02   /* input buffer full: controller busy */
#define I8042_CMD_PULSE_RESET 0xFE

int guest_main(void)
{
	uart_init();
	uart_puts("reset: pulsing\n");

	/* The controller takes commands only with its input buffer empty (bounded wait). */
	for (int i = 0; i < 10000 && (inb(PORT_I8042_CMD) & I8042_STATUS_IBF); i++)
		;
	outb(PORT_I8042_CMD, I8042_CMD_PULSE_RESET);

	/*
	 * A VMM may act on the reset a little after the write returns; give it
	 * ~20000 exits' worth of time (each status read is one) before
	 * declaring that nothing happened.
	 */
	for (int i = 0; i < 20000; i++)
		(void)inb(PORT_I8042_CMD);
	uart_puts("reset: still here\n");
	return 1;
}
