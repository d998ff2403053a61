/*
 * Constants shared by the boot code of the test guests (boot/*.S): the
 * selectors of the GDT in boot/pvh.S (the APs' per-CPU GDTs in
 * guests/smp.c copy its layout), control-register and EFER bits, RFLAGS
 * and page-table entry bits.
 */
#ifndef BOOT_H
#define BOOT_H

#define KERNEL_CS   0x08
#define KERNEL_DS   0x10
#define USER_DS     (0x18 | 3)
#define USER_CS     (0x20 | 3)
#define TSS_SEL     0x28

#define CR0_PE      (1 << 0)
#define CR0_MP      (1 << 1)
#define CR0_ET      (1 << 4)
#define CR0_NE      (1 << 5)
#define CR0_WP      (1 << 16)
#define CR0_PG      (1 << 31)
/* What every guest CPU runs with once in long mode. */
#define CR0_LONG    (CR0_PG | CR0_WP | CR0_NE | CR0_ET | CR0_MP | CR0_PE)
#define CR4_PAE     (1 << 5)
#define MSR_EFER    0xC0000080
#define EFER_LME    (1 << 8)

#define RFLAGS_IF   (1 << 9)
#define RFLAGS_IOPL3 (3 << 12)
#define RFLAGS_FIXED 0x2

/* Page-table entry bits. */
#define PTE_P       0x001
#define PTE_RW      0x002
#define PTE_US      0x004   /* user: CPL3 bodies touch RAM and MMIO directly */
#define PTE_PWT     0x008
#define PTE_PCD     0x010
#define PTE_PS      0x080   /* 2 MiB page in a PD entry */

#endif
