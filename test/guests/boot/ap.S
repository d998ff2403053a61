/*
 * Application processors of smp.elf: the real-mode trampoline a SIPI
 * starts them in, and their 64-bit CPL0 path to the CPL3 body.
 *
 * The BSP (guests/smp.c, at CPL3) copies ap_tramp_start..ap_tramp_end to
 * AP_TRAMP_ADDR (0x8000), fills one struct ap_boot per AP (its own GDT, a
 * TSS with the all-zero I/O bitmap, stacks) and sends INIT, SIPI, SIPI with
 * vector 0x08 to all other CPUs.  Each AP then, all of it emulated on PVM:
 *   real mode at 0800:0000 -> protected mode (the trampoline's own GDT)
 *   -> long mode on the BSP's page tables (pml4, boot/pvh.S)
 *   -> ap_long_entry: takes an index, loads its own GDT, TR and the shared
 *      IDT, and iretqs to ap_main(boot) at CPL3 on its own stack.
 * ~45 instructions in all, no loops.
 */
#include "boot.h"
#include "ap.h"

/* Selectors of the trampoline's GDT (0x08 and 0x10 match boot.h's). */
#define TRAMP_CS32  0x18

/* Addresses inside the trampoline once copied to AP_TRAMP_ADDR. */
#define TRAMP(sym)  (AP_TRAMP_ADDR + (sym) - ap_tramp_start)

	/* Copied, never run in place: data as far as the image is concerned. */
	.section .rodata
	.balign 16
	.globl ap_tramp_start, ap_tramp_end
	.code16
ap_tramp_start:
	/* After SIPI: real mode, CS = 0x0800 (base 0x8000), IP = 0, IF = 0. */
	cli
	movw %cs, %ax
	movw %ax, %ds
	lgdtl tramp_gdt_desc - ap_tramp_start
	movl %cr0, %eax
	orl $CR0_PE, %eax
	movl %eax, %cr0
	ljmpl $TRAMP_CS32, $TRAMP(tramp32)

	.code32
tramp32:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	/* The same steps and page tables as the BSP's PVH entry. */
	movl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	movl $MSR_EFER, %ecx
	movl $EFER_LME, %eax
	xorl %edx, %edx
	wrmsr
	movl $CR0_LONG, %eax           /* also clears INIT's CD/NW */
	movl %eax, %cr0
	ljmp $KERNEL_CS, $ap_long_entry

	.balign 8
tramp_gdt:
	.quad 0                         /* 0x00 null */
	.quad 0x00AF9A000000FFFF        /* 0x08 kernel code, 64-bit (= KERNEL_CS) */
	.quad 0x00CF92000000FFFF        /* 0x10 kernel data (= KERNEL_DS) */
	.quad 0x00CF9A000000FFFF        /* 0x18 32-bit code, for tramp32 */
tramp_gdt_desc:
	.word tramp_gdt_desc - tramp_gdt - 1
	.long TRAMP(tramp_gdt)
ap_tramp_end:

/* ---------------------------------------------------------------------- */
/* 64-bit CPL0, running in the image at 1 MiB                              */
/* ---------------------------------------------------------------------- */
	.text
	.code64
ap_long_entry:
	/* Index: 1, 2, ... in order of arrival. */
	movl $1, %eax
	lock xaddl %eax, ap_next_index
	cmpl $AP_MAX_CPUS, %eax
	jae ap_park
	movq ap_boot_table(, %rax, 8), %rbx
	testq %rbx, %rbx
	jz ap_park                      /* more CPUs than the BSP prepared for */
	/* This AP's GDT: boot/pvh.S's layout, TSS descriptor 0x28 its own. */
	lgdt AP_BOOT_GDTR(%rbx)
	movl $KERNEL_DS, %ecx
	movl %ecx, %ds
	movl %ecx, %es
	movl %ecx, %ss
	movq AP_BOOT_KSTACK(%rbx), %rsp
	movl $TSS_SEL, %ecx
	ltr %cx
	lidt idt_desc                   /* the IDT is shared */
	/* iretq to ap_main(boot) at CPL3; IF stays 0 (no AP takes IRQs). */
	movq %rbx, %rdi
	pushq $USER_DS
	pushq AP_BOOT_USTACK(%rbx)
	pushq $(RFLAGS_IOPL3 | RFLAGS_FIXED)
	pushq $USER_CS
	pushq $ap_user_entry
	iretq

ap_park:
	cli
	hlt
	jmp ap_park

ap_user_entry:
	call ap_main                    /* does not return */
1:	pause
	jmp 1b

	.section .note.GNU-stack, "", @progbits
