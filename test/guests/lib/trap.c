/*
 * Interrupts and exceptions, entered at CPL0 from boot/pvh.S.  CPL0 code is
 * emulated on PVM, so the IRQ path is kept to a handful of instructions;
 * an exception is fatal and may be as slow as it likes.
 */
#include "guest.h"

/* Pushed by isr_common (registers) and the stub + CPU (the rest). */
struct trap_frame {
	u64 r11, r10, r9, r8, rdi, rsi, rdx, rcx, rax;
	u64 vector, error;
	u64 rip, cs, rflags, rsp, ss;
};

/* Exit code of a guest killed by an exception: never 0 in 8 bits. */
#define EXIT_EXCEPTION_BASE 0x80

__attribute__((weak)) void guest_irq(unsigned irq)
{
	(void)irq;
}

static const char *const names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint",
	"#OF overflow", "#BR bound", "#UD invalid opcode", "#NM no FPU",
	"#DF double fault", "coprocessor overrun", "#TS invalid TSS", "#NP segment not present",
	"#SS stack fault", "#GP general protection", "#PF page fault", "reserved",
	"#MF x87", "#AC alignment", "#MC machine check", "#XM SIMD",
	"#VE virtualization", "#CP control protection",
};

void trap_dispatch(struct trap_frame *f);
void trap_dispatch(struct trap_frame *f)
{
	unsigned v = (unsigned)f->vector;

	if (v >= 0x20 && v < 0x30) {
		unsigned irq = v - 0x20;
		/*
		 * IRQ7/IRQ15 may be spurious: the PIC's in-service register
		 * tells (OCW3 0x0B selects it).  A spurious IRQ gets no EOI
		 * from its own PIC.
		 */
		if (irq == 7 || irq == 15) {
			u16 cmd = irq == 7 ? 0x20 : 0xA0;
			outb(cmd, 0x0B);
			if (!(inb(cmd) & 0x80)) {
				if (irq == 15)
					outb(0x20, 0x20);       /* the master did see IRQ2 */
				return;
			}
		}
		guest_irq(irq);
		pic_eoi(irq);
		return;
	}

	if (v == 3 && f->rax == CPL0_CALL_MAGIC) {
		/* cpl0_call(): rdi = function, rsi = argument, result in rax. */
		u64 (*fn)(u64) = (u64 (*)(u64))(unsigned long)f->rdi;
		f->rax = fn(f->rsi);
		return;
	}

	if (v == 2) {
		/* An NMI (e.g. a VMM's debug "nmi" command) is reported, not fatal. */
		uart_puts("guest: NMI\n");
		return;
	}

	u64 cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	printf("guest: exception %u (%s) err=0x%llx rip=0x%llx cs=0x%llx rflags=0x%llx "
	       "rsp=0x%llx cr2=0x%llx\n",
	       v, v < 32 && names[v] ? names[v] : "?", f->error, f->rip, f->cs, f->rflags,
	       f->rsp, cr2);
	exit(EXIT_EXCEPTION_BASE + (int)v);
}
