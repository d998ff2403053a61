/* The smallest guest: one line on the UART, exit 0. */
#include "guest.h"

int guest_main(void)
{
	uart_init();
	uart_puts("Hello from the vmctl test guest\n");
	return 0;
}
