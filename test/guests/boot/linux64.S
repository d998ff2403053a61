/*
 * The head of the bzImage test guest's protected-mode part: the Linux x86
 * boot protocol's 64-bit entry (Documentation/arch/x86/boot.rst, "64-bit
 * Boot Protocol").  tools/mkbzimage.c puts the setup sectors in front.
 *
 * The loader puts this part at 1 MiB (pref_address; relocatable_kernel is
 * 0) and jumps to load address + 0x200 in 64-bit mode with: CS/DS flat
 * __BOOT_CS/__BOOT_DS from its own GDT, paging on with an identity map of
 * at least the kernel, boot_params and the command line, %rsi = the
 * physical address of boot_params (the "zero page"), IF = 0.  Nothing else
 * may be assumed: no IDT, no usable TSS, and the loader's page tables need
 * not be user-accessible (vmctl's are not), so the CPL3 body cannot run on
 * them.
 *
 * So the entry saves %rsi, moves onto this image's GDT and page tables
 * (boot/pvh.S: identity map of 4 GiB, user-accessible) and joins the PVH
 * path's common 64-bit setup, long_entry, which loads TR and the IDT and
 * iretqs to the CPL3 body.  Nine CPL0 instructions (emulated on PVM)
 * before long_entry, where the PVH entry needs thirteen.
 *
 * Layout of this section, placed first by link-bz.ld at 0x100000:
 *   0x000  the 32-bit boot protocol's entry (code32_start): not supported,
 *          halts (the header's xloadflags say XLF_KERNEL_64 only)
 *   0x100  kernel_info (boot protocol 2.15: kernel_info_offset = 0x100)
 *   0x200  the 64-bit entry
 */
#include "boot.h"

	.section .text.head, "ax"
	.code32
	.globl linux_head
linux_head:
	/* 32-bit protocol entry: a loader that ignores xloadflags stops here. */
1:	cli
	hlt
	jmp 1b

	/*
	 * kernel_info (boot.rst, "The kernel_info"): header "LToP", size of
	 * the fixed part, total size, and setup_type_max = 0: this guest reads
	 * no setup_data.
	 */
	.org 0x100
	.globl kernel_info
kernel_info:
	.ascii "LToP"
	.long kernel_info_var_len_data - kernel_info
	.long kernel_info_end - kernel_info
	.long 0
kernel_info_var_len_data:
kernel_info_end:

	.org 0x200
	.code64
	.globl linux64_entry
linux64_entry:
	/* Keep boot_params before anything clobbers %rsi; the body reads it. */
	movq %rsi, linux_boot_params
	lgdt gdt_desc
	/* The image's page tables map the same addresses, user-accessible. */
	movl $pml4, %eax
	movq %rax, %cr3
	/* Same CR0 as the PVH path (the loader's lacks WP and MP). */
	movl $CR0_LONG, %eax
	movq %rax, %cr0
	/* Reload CS from the new GDT (the loader's 0x10 is our kernel data). */
	pushq $KERNEL_CS
	pushq $long_entry
	lretq

	/* Written before .bss is zeroed, like pvh_start_info_paddr. */
	.data
	.balign 8
	.globl linux_boot_params
linux_boot_params:
	.quad 0

	.section .note.GNU-stack, "", @progbits
