/*
 * The contract between smp.elf's AP start-up code (boot/ap.S) and its body
 * (guests/smp.c).  Included by both; the C part only by C.
 */
#ifndef AP_H
#define AP_H

/* Where the BSP copies the trampoline; a SIPI's vector is the 4 KiB page. */
#define AP_TRAMP_ADDR   0x8000
#define AP_SIPI_VECTOR  (AP_TRAMP_ADDR >> 12)
/* CPUs smp.elf can run, the BSP included. */
#define AP_MAX_CPUS     64

/* struct ap_boot field offsets, as boot/ap.S reads them. */
#define AP_BOOT_KSTACK  0       /* u64: RSP at CPL0 (also TSS.RSP0) */
#define AP_BOOT_USTACK  8       /* u64: RSP for the CPL3 body */
#define AP_BOOT_GDTR    22      /* lgdt operand: u16 limit, then u64 base */

#ifndef __ASSEMBLER__
struct ap_boot {
	u64 kstack_top;
	u64 ustack_top;
	u16 pad[3];
	u16 gdt_limit;
	u64 gdt_base;
};
_Static_assert(__builtin_offsetof(struct ap_boot, kstack_top) == AP_BOOT_KSTACK, "ap_boot");
_Static_assert(__builtin_offsetof(struct ap_boot, ustack_top) == AP_BOOT_USTACK, "ap_boot");
_Static_assert(__builtin_offsetof(struct ap_boot, gdt_limit) == AP_BOOT_GDTR, "ap_boot");
_Static_assert(__builtin_offsetof(struct ap_boot, gdt_base) == AP_BOOT_GDTR + 2, "ap_boot");

/* The trampoline, linked into the image; the BSP copies it to AP_TRAMP_ADDR. */
extern const char ap_tramp_start[], ap_tramp_end[];
/*
 * Each AP takes the next index (lock xadd; the BSP sets it to 1) and runs
 * with ap_boot_table[index]; an AP finding no entry there parks (cli; hlt).
 */
extern volatile u32 ap_next_index;
extern struct ap_boot *ap_boot_table[AP_MAX_CPUS];
/* The CPL3 body of an AP: called by boot/ap.S, must not return. */
void ap_main(struct ap_boot *boot) __attribute__((noreturn));
#endif

#endif
