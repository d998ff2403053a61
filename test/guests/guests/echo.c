/*
 * echo: UART receive interrupts delivered into a CPL3 body.
 *
 * The body starts with RFLAGS.IF=1 because it defines guest_irqs_on (sti
 * is not an option at CPL3 here: PVM hides the guest's IOPL, so sti #GPs);
 * the boot code has remapped and masked the PICs, the body unmasks IRQ4.
 * IRQ4 is taken at CPL0, where guest_irq() drains RBR into a ring; the
 * CPL3 body echoes from the ring until it sees 'q'.
 *
 * Output:  echo: ready / <echoed bytes> / echo: bye / echo: irqs=N
 * Command line: "poll" skips interrupts and polls LSR from the start.
 * If data sits in RBR with no interrupt for ~50 ms the guest says
 * "echo: no rx interrupt, polling" and falls back to polling.
 */
#include "guest.h"

const char guest_irqs_on = 1;

#define RING 256
static volatile u8 ring[RING];
static volatile u32 head, tail;  /* head: CPL0 IRQ handler; tail: the body */
static volatile u32 irqs;

/* CPL0, emulated on PVM: as few instructions as will do. */
void guest_irq(unsigned irq)
{
	if (irq != 4)
		return;
	irqs++;
	/* Drain at most a FIFO's worth (and then some) so a stuck DR cannot wedge us. */
	for (int i = 0; i < 32 && (inb(PORT_UART0 + UART_LSR) & UART_LSR_DR); i++) {
		u8 c = inb(PORT_UART0 + UART_RBR);
		u32 h = head;
		if (h - tail < RING) {
			ring[h % RING] = c;
			head = h + 1;
		}
	}
}

/* ~50 ms at 2-4 GHz: long enough for any injected IRQ to have arrived. */
#define STUCK_TSC 150000000ull
#define CHECK_TSC 20000000ull

int guest_main(void)
{
	int polling = cmdline_has("poll");

	uart_init();
	/*
	 * The boot code already put the PICs at 0x20/0x28, all masked (it must,
	 * before IF=1); unmask IRQ4 (COM1) only.
	 */
	pic_set_masks((u8)~(1u << 4), 0xFF);
	if (!polling) {
		outb(PORT_UART0 + UART_MCR, UART_MCR_DTR | UART_MCR_RTS | UART_MCR_OUT2);
		outb(PORT_UART0 + UART_IER, UART_IER_ERBFI);
	}
	uart_puts("echo: ready\n");

	u64 last_check = rdtsc(), dr_since = 0;
	for (;;) {
		u8 c;
		if (polling) {
			while (!(inb(PORT_UART0 + UART_LSR) & UART_LSR_DR))
				cpu_relax();
			c = inb(PORT_UART0 + UART_RBR);
		} else {
			while (head == tail) {
				cpu_relax();
				/*
				 * Now and then (an LSR read is a VM exit) check for
				 * data that no interrupt announced.
				 */
				u64 now = rdtsc();
				if (now - last_check < CHECK_TSC)
					continue;
				last_check = now;
				if (!(inb(PORT_UART0 + UART_LSR) & UART_LSR_DR)) {
					dr_since = 0;
				} else if (!dr_since) {
					dr_since = now;
				} else if (now - dr_since > STUCK_TSC && head == tail) {
					/* Stop the IRQ so the handler cannot race our RBR reads. */
					outb(PORT_UART0 + UART_IER, 0);
					uart_puts("echo: no rx interrupt, polling\n");
					polling = 1;
					break;
				}
			}
			if (polling && head == tail)
				continue;
			c = ring[tail % RING];
			tail = tail + 1;
		}
		if (c == 'q')
			break;
		uart_putc((char)c);
	}
	outb(PORT_UART0 + UART_IER, 0);
	uart_puts("echo: bye\n");
	printf("echo: irqs=%u\n", irqs);
	return 0;
}
