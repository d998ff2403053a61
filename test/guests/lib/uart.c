/* COM1 16550: polled output, enough to print lines the tests match. */
#include "guest.h"

void uart_init(void)
{
	outb(PORT_UART0 + UART_IER, 0x00);              /* no interrupts until a guest asks */
	outb(PORT_UART0 + UART_LCR, 0x80);              /* DLAB to reach the divisor */
	outb(PORT_UART0 + UART_DLL, 0x01);              /* 115200 baud */
	outb(PORT_UART0 + UART_DLM, 0x00);
	outb(PORT_UART0 + UART_LCR, 0x03);              /* 8N1, DLAB off */
	outb(PORT_UART0 + UART_FCR, 0x07);              /* FIFOs on and cleared */
	outb(PORT_UART0 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS);
}

void uart_putc(char c)
{
	/*
	 * Wait for THRE, but not forever: a VMM whose LSR never shows it must
	 * not hang the guest silently.  Each LSR read is one VM exit.
	 */
	for (int i = 0; i < 100000; i++) {
		if (inb(PORT_UART0 + UART_LSR) & UART_LSR_THRE)
			break;
	}
	outb(PORT_UART0 + UART_THR, (u8)c);
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

void uart_put_hex(u64 v, int digits)
{
	static const char hex[] = "0123456789abcdef";
	if (digits < 1)
		digits = 1;
	if (digits > 16)
		digits = 16;
	for (int i = digits - 1; i >= 0; i--)
		uart_putc(hex[(v >> (i * 4)) & 0xF]);
}

void uart_put_dec(u64 v)
{
	char buf[21];
	int n = 0;
	do {
		buf[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n)
		uart_putc(buf[--n]);
}
