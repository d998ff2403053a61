/* Two cascaded 8259A PICs, as on a PC. */
#include "guest.h"

#define PIC1_CMD  0x20
#define PIC1_DATA 0x21
#define PIC2_CMD  0xA0
#define PIC2_DATA 0xA1

void pic_init(u8 master_base, u8 slave_base, u8 master_mask, u8 slave_mask)
{
	/* Mask everything while the init sequence is in flight. */
	outb(PIC1_DATA, 0xFF);
	outb(PIC2_DATA, 0xFF);
	outb(PIC1_CMD, 0x11);           /* ICW1: edge, cascade, ICW4 follows */
	outb(PIC2_CMD, 0x11);
	outb(PIC1_DATA, master_base);   /* ICW2: vector base */
	outb(PIC2_DATA, slave_base);
	outb(PIC1_DATA, 0x04);          /* ICW3: slave on IRQ2 */
	outb(PIC2_DATA, 0x02);          /* ICW3: slave identity 2 */
	outb(PIC1_DATA, 0x01);          /* ICW4: 8086 mode, normal EOI */
	outb(PIC2_DATA, 0x01);
	outb(PIC1_DATA, master_mask);
	outb(PIC2_DATA, slave_mask);
}

/* Called at CPL0 before the body of a guest_irqs_on guest starts. */
void pic_init_masked(void)
{
	pic_init(0x20, 0x28, 0xFF, 0xFF);
}

void pic_set_masks(u8 master_mask, u8 slave_mask)
{
	outb(PIC1_DATA, master_mask);
	outb(PIC2_DATA, slave_mask);
}

void pic_eoi(unsigned irq)
{
	if (irq >= 8)
		outb(PIC2_CMD, 0x20);   /* non-specific EOI */
	outb(PIC1_CMD, 0x20);
}
