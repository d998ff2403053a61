/*
 * PVH entry and the CPL0 environment of the vmctl test guests.
 *
 * Why it looks like this: on a PVM /dev/kvm every guest CPL0 instruction is
 * emulated (~0.5 M instructions/s) while CPL3 code runs natively.  So
 * everything the CPU needs (GDT, TSS, IDT, page tables) is static data built
 * by the assembler and the linker, and the CPL0 path from the PVH entry to
 * the iretq into the CPL3 body is ~25 instructions with no loops (plus
 * the PIC setup for guests that take interrupts).
 *
 * Measured on PVM: from the first KVM_RUN to the body's first port access
 * takes ~0.25 ms of wall time.
 *
 * Entry state (PVH boot ABI, xen docs/misc/pvh.pandoc): 32-bit protected
 * mode, paging off, flat CS/DS/ES/SS, EBX = physical address of
 * struct hvm_start_info.  Nothing else (no stack, no GDTR, no IDTR) may be
 * assumed.
 */

#include "boot.h"

/* ---------------------------------------------------------------------- */
/* The PVH ELF note: XEN_ELFNOTE_PHYS32_ENTRY (18), owner "Xen".           */
/* ---------------------------------------------------------------------- */
	.section .note.Xen, "a", @note
	.balign 4
	.long 4                 /* namesz: "Xen\0" */
	.long 4                 /* descsz: a 32-bit physical address */
	.long 18                /* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.long pvh_entry32
	/*
	 * Not part of the note (the PT_NOTE segment ends above): QEMU reads
	 * this note's descriptor as 8 bytes for an ELF64, so the next four
	 * bytes of the file must be zero for it to see the same address.
	 */
	.section .xen_note_pad, "a", @progbits
	.long 0

/* ---------------------------------------------------------------------- */
/* 32-bit entry                                                            */
/* ---------------------------------------------------------------------- */
	.section .text.entry32, "ax"
	.code32
	.globl pvh_entry32
pvh_entry32:
	/* Keep start_info before anything clobbers EBX; the CPL3 body reads it. */
	movl %ebx, pvh_start_info_paddr
	lgdt gdt_desc
	movl $CR4_PAE, %eax
	movl %eax, %cr4
	movl $pml4, %eax
	movl %eax, %cr3
	/*
	 * EFER = LME only: no SYSCALL (CPL3 enters CPL0 only through
	 * exceptions, IRQs and the int3 of cpl0_call), no NX.
	 */
	movl $MSR_EFER, %ecx
	movl $EFER_LME, %eax
	xorl %edx, %edx
	wrmsr
	movl $CR0_LONG, %eax
	movl %eax, %cr0
	/* Now in compatibility mode; the far jump loads the 64-bit CS. */
	ljmp $KERNEL_CS, $long_entry

/* ---------------------------------------------------------------------- */
/* 64-bit CPL0 setup, then iretq to the CPL3 body                          */
/* ---------------------------------------------------------------------- */
	.text
	.code64
	/*
	 * The common 64-bit path, also joined by the bzImage entry
	 * (boot/linux64.S) once it runs on this GDT and these page tables.
	 */
	.globl long_entry
long_entry:
	movl $KERNEL_DS, %eax
	movl %eax, %ds
	movl %eax, %es
	movl %eax, %ss
	movl $kernel_stack_top, %esp
	movl $TSS_SEL, %eax
	ltr %ax
	lidt idt_desc
	/*
	 * IOPL=3 so the CPL3 body may use in/out (on hardware KVM; PVM needs
	 * the I/O bitmap in the TSS, see there).  IF only for guests that define the
	 * (otherwise weak, hence 0) symbol guest_irqs_on: they take interrupts
	 * from the moment they run, so the PICs are moved off the exception
	 * vectors and fully masked first (firmware may have left them at
	 * vector 8 with the PIT ticking); the body unmasks what it serves.
	 */
	movl $(RFLAGS_IOPL3 | RFLAGS_FIXED), %ebx
	movl $guest_irqs_on, %ecx
	testl %ecx, %ecx
	jz 1f
	call pic_init_masked
	orl $RFLAGS_IF, %ebx
1:
	/* iretq frame: SS, RSP, RFLAGS, CS, RIP. */
	pushq $USER_DS
	pushq $user_stack_top
	pushq %rbx
	pushq $USER_CS
	pushq $user_entry
	iretq

	.weak guest_irqs_on

/* ---------------------------------------------------------------------- */
/* CPL3 start: native speed from here on                                   */
/* ---------------------------------------------------------------------- */
	.globl user_entry
user_entry:
	/*
	 * Zero .bss here rather than trusting the loader: a VMM that resets
	 * the guest may reload the image over dirty RAM.  The stacks live
	 * after __bss_end, so this does not wipe the one in use.
	 */
	cld
	movl $__bss_start, %edi
	movl $__bss_end, %ecx
	subl %edi, %ecx
	xorl %eax, %eax
	rep stosb
	call guest_main
	movl %eax, %edi
	call exit
2:	pause
	jmp 2b

/* ---------------------------------------------------------------------- */
/* Interrupt and exception stubs                                           */
/* ---------------------------------------------------------------------- */
/*
 * Each stub is 16 bytes at __isr_base + 16 * vector, so the static IDT
 * below can name every handler by arithmetic on linker-script symbols (the
 * assembler cannot split a relocatable address into the gate's three
 * fields).  Vectors with a CPU error code skip the dummy push.
 */
	.section .isr, "ax"
	.balign 16
	.globl isr_stubs
isr_stubs:
	.set vec, 0
	.rept 48
	.balign 16
	.if (vec == 8) || (vec >= 10 && vec <= 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
	.else
	pushq $0
	.endif
	pushq $vec
	jmp isr_common
	.set vec, vec + 1
	.endr

	.text
isr_common:
	/* Save what C may clobber; the frame layout is struct trap_frame. */
	pushq %rax
	pushq %rcx
	pushq %rdx
	pushq %rsi
	pushq %rdi
	pushq %r8
	pushq %r9
	pushq %r10
	pushq %r11
	movq %rsp, %rdi
	cld
	call trap_dispatch
	popq %r11
	popq %r10
	popq %r9
	popq %r8
	popq %rdi
	popq %rsi
	popq %rdx
	popq %rcx
	popq %rax
	addq $16, %rsp          /* vector and error code */
	iretq

/* ---------------------------------------------------------------------- */
/* Static descriptor tables                                                */
/* ---------------------------------------------------------------------- */
	.section .rodata
	.balign 8
	.globl gdt_desc, idt_desc       /* also loaded by boot/linux64.S, boot/ap.S */
gdt_desc:
	.word gdt_end - gdt - 1
	.quad gdt
	.balign 8
idt_desc:
	.word idt_end - idt - 1
	.quad idt

	.data
	.balign 16
gdt:
	.quad 0                         /* 0x00 null */
	.quad 0x00AF9A000000FFFF        /* 0x08 kernel code: 64-bit, DPL0 */
	.quad 0x00CF92000000FFFF        /* 0x10 kernel data */
	.quad 0x00CFF2000000FFFF        /* 0x18 user data, DPL3 */
	.quad 0x00AFFA000000FFFF        /* 0x20 user code: 64-bit, DPL3 */
	/* 0x28: 64-bit TSS descriptor (16 bytes); base split by the linker. */
	.word tss_end - tss - 1
	.word __tss_b0
	.byte __tss_b2
	.byte 0x89                      /* present, available 64-bit TSS */
	.byte 0
	.byte __tss_b3
	.long __tss_b4
	.long 0
gdt_end:

	.balign 16
	.globl tss
tss:
	.long 0
	.quad kernel_stack_top          /* RSP0: interrupts taken at CPL3 */
	.quad 0                         /* RSP1 */
	.quad 0                         /* RSP2 */
	.quad 0
	.quad df_stack_top              /* IST1: #DF gets a known-good stack */
	.fill 6, 8, 0                   /* IST2..IST7 */
	.quad 0
	.word 0
	.word tss_iomap - tss
	/*
	 * An all-zero I/O permission bitmap: every port is open to CPL3.
	 * IOPL=3 alone would do on hardware KVM, but PVM does not let the
	 * guest's IOPL reach user mode (RFLAGS.IOPL reads back 0 at CPL3 and
	 * in/out raise #GP), while its emulator does honour the TSS bitmap.
	 */
tss_iomap:
	.fill 65536 / 8, 1, 0
	/*
	 * The CPU reads two bytes of the map per check, so one byte past it is
	 * read for the top ports.  The usual terminator is 0xFF; ours is 0 so
	 * that wide accesses running past port 0xFFFF (e.g. a 4-byte access
	 * at 0xFFFE) behave as with IOPL=3 rather than #GP.
	 */
	.byte 0
tss_end:

	/* IDT gate: the handler offset is split 15:0 / 31:16 / 63:32. */
	.macro gate v, ist=0, type=0x8E
	.word __isr_lo + \v * 16
	.word KERNEL_CS
	.byte \ist
	.byte \type
	.word __isr_mid
	.long __isr_hi
	.long 0
	.endm

	/*
	 * 0x00-0x1F exceptions, 0x20-0x2F the two PICs.  Interrupt gates (IF
	 * cleared on entry), DPL0 except #BP: int3 is how CPL3 asks for
	 * cpl0_call().  (`int n` from CPL3 gets #UD on PVM whatever the DPL,
	 * but int3 is delivered as #BP; DPL3 makes hardware KVM agree.)
	 */
	.balign 16
idt:
	.set v, 0
	.rept 48
	.if v == 8
	gate v, 1                       /* #DF on its own stack (IST1) */
	.elseif v == 3
	gate v, 0, 0xEE                 /* present, DPL3, interrupt gate */
	.else
	gate v                          /* present, DPL0, interrupt gate */
	.endif
	.set v, v + 1
	.endr
idt_end:

	/* The only variable written before .bss is zeroed. */
	.balign 4
	.globl pvh_start_info_paddr
pvh_start_info_paddr:
	.long 0

/*
 * Identity map of the first 4 GiB with 2 MiB pages, every level user-
 * accessible.  The top GiB (PCI/MMIO hole, IOAPIC, LAPIC, firmware) is
 * uncached, as it would have to be on hardware.
 */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4
pml4:
	.quad pdpt + (PTE_P | PTE_RW | PTE_US)
	.fill 511, 8, 0
pdpt:
	.quad pd + 0x0000 + (PTE_P | PTE_RW | PTE_US)
	.quad pd + 0x1000 + (PTE_P | PTE_RW | PTE_US)
	.quad pd + 0x2000 + (PTE_P | PTE_RW | PTE_US)
	.quad pd + 0x3000 + (PTE_P | PTE_RW | PTE_US)
	.fill 508, 8, 0
pd:
	.set pa, 0
	.rept 1536
	.quad pa + (PTE_P | PTE_RW | PTE_US | PTE_PS)
	.set pa, pa + 0x200000
	.endr
	.rept 512
	.quad pa + (PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_PCD | PTE_PWT)
	.set pa, pa + 0x200000
	.endr

/* ---------------------------------------------------------------------- */
/* Stacks: after __bss_end (see user_entry), not zeroed                    */
/* ---------------------------------------------------------------------- */
	.section .stack, "aw", @nobits
	.balign 4096
	.space 16384
kernel_stack_top:
	.space 4096
df_stack_top:
	.space 65536
user_stack_top:

	.section .note.GNU-stack, "", @progbits
