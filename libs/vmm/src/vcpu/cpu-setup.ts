/**
 * Architectural vCPU state at boot: CPUID, the local APIC's wiring, and the register
 * state each boot protocol promises its entry point.
 */
import type { CpuidEntry, Segment, Sregs, Vcpu } from '../kvm.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { VmmError } from '../errors.js';

const X86_CR0_PE = 0x1n;
const X86_CR0_ET = 0x10n;

/** CPUID leaf 1 ECX bit 31: "running under a hypervisor". */
const CPUID_1_ECX_HYPERVISOR = 1 << 31;
/** CPUID leaf 1 ECX bit 24: the LAPIC timer has TSC-deadline mode. */
export const CPUID_1_ECX_TSC_DEADLINE = 1 << 24;

export interface CpuidOptions {
  /**
   * The in-kernel LAPIC emulates TSC-deadline mode (KVM_CAP_TSC_DEADLINE_TIMER). KVM's
   * supported table leaves the bit clear because it depends on the in-kernel irqchip; the
   * VMM sets it. Without it Linux calibrates the LAPIC timer against the PIT, and where
   * that measurement is noisy (a nested or emulated host) it rejects the LAPIC timer and
   * falls back to the PIT as its only clock event device.
   */
  tscDeadline: boolean;
}

/**
 * The CPUID table for vCPU `id` of `count`: what KVM supports, with this vCPU's APIC ID and
 * the topology the guest should see (one core per vCPU, one thread per core).
 */
export function cpuidFor(supported: CpuidEntry[], id: number, count: number, opts: CpuidOptions): CpuidEntry[] {
  return supported.map((e) => {
    const out = { ...e };
    switch (e.function) {
      case 0x1:
        // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package
        out.ebx = ((id & 0xff) << 24) | ((Math.min(count, 255) & 0xff) << 16) | (e.ebx & 0xffff);
        out.ecx = e.ecx | CPUID_1_ECX_HYPERVISOR | (opts.tscDeadline ? CPUID_1_ECX_TSC_DEADLINE : 0);
        // HTT: the logical-processor count above is valid
        if (count > 1) out.edx = e.edx | (1 << 28);
        break;
      case 0xb:
      case 0x1f:
        // x2APIC topology: EDX is this processor's x2APIC ID at every level
        out.edx = id;
        break;
      default:
        break;
    }
    return out;
  });
}

/** Local APIC register offsets (Intel SDM vol. 3, table 11-1) and LVT delivery modes. */
const APIC_LVT0 = 0x350;
const APIC_LVT1 = 0x360;
const APIC_MODE_NMI = 0x4 << 8;
const APIC_MODE_EXTINT = 0x7 << 8;
const APIC_LVT_MODE_MASK = 0x7 << 8;

/**
 * Wires LINT0 to the 8259 (ExtINT) and LINT1 to NMI — the "virtual wire" mode of the MP
 * specification that a PC's BIOS leaves behind, so a guest that never touches its LAPIC
 * still gets PIC interrupts.
 */
export function setupLapic(vcpu: Vcpu): void {
  const regs = vcpu.getLapic();
  const dv = new DataView(regs.buffer, regs.byteOffset, regs.byteLength);
  dv.setUint32(APIC_LVT0, (dv.getUint32(APIC_LVT0, true) & ~APIC_LVT_MODE_MASK) | APIC_MODE_EXTINT, true);
  dv.setUint32(APIC_LVT1, (dv.getUint32(APIC_LVT1, true) & ~APIC_LVT_MODE_MASK) | APIC_MODE_NMI, true);
  vcpu.setLapic(regs);
}

function flatSegment(selector: number, type: number): Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type,
    present: 1,
    dpl: 0,
    db: 1,
    s: 1,
    l: 0,
    g: 1,
    avl: 0,
    unusable: 0,
  };
}

/** Segment types (Intel SDM vol. 3, 3.4.5.1) */
const SEG_CODE_EXEC_READ_ACCESSED = 0xb;
const SEG_DATA_READ_WRITE_ACCESSED = 0x3;
const SEG_TSS_32_BUSY = 0xb;

/**
 * The PVH entry state (the PVH boot ABI): 32-bit protected mode with paging off, CS a flat
 * 4 GiB execute/read segment, DS/ES/SS (and FS/GS) flat read/write, TR a 32-bit TSS with
 * base 0 and limit 0x67, EFLAGS with IF and VM clear, EBX the physical address of the
 * hvm_start_info structure.
 */
export function setupPvhEntry(vcpu: Vcpu, entry: number, startInfo: number): void {
  const sregs: Sregs = vcpu.getSregs();
  const code = flatSegment(0x10, SEG_CODE_EXEC_READ_ACCESSED);
  const data = flatSegment(0x18, SEG_DATA_READ_WRITE_ACCESSED);
  sregs.cs = code;
  sregs.ds = data;
  sregs.es = data;
  sregs.fs = data;
  sregs.gs = data;
  sregs.ss = data;
  sregs.tr = { ...flatSegment(0x20, SEG_TSS_32_BUSY), limit: 0x67, s: 0, db: 0, g: 0 };
  sregs.cr0 = (sregs.cr0 | X86_CR0_PE | X86_CR0_ET) & ~0x80000000n;
  sregs.cr4 = 0n;
  sregs.efer = 0n;
  vcpu.setSregs(sregs);

  const regs = vcpu.getRegs();
  for (const k of Object.keys(regs) as (keyof typeof regs)[]) regs[k] = 0n;
  regs.rip = BigInt(entry);
  regs.rbx = BigInt(startInfo);
  regs.rflags = 0x2n;
  vcpu.setRegs(regs);
}

const X86_CR0_NE = 0x20n;
const X86_CR0_PG = 0x80000000n;
const X86_CR4_PAE = 0x20n;
const EFER_LME = 0x100n;
const EFER_LMA = 0x400n;
const PTE_PRESENT_RW = 0x3n;
const PDE_2M_PAGE = 0x83n; // present, writable, page size

/** Boot GDT for the 64-bit entry: the boot protocol wants flat __BOOT_CS (0x10) and __BOOT_DS (0x18). */
export const BOOT_CS = 0x10;
export const BOOT_DS = 0x18;
const BOOT_TSS = 0x20;
const GDT_ENTRIES = [
  0n, // null
  0n, // unused
  0x00af9b000000ffffn, // 0x10: 64-bit code, DPL 0, execute/read, accessed
  0x00cf93000000ffffn, // 0x18: flat data, read/write, accessed
  0x00008b0000000067n, // 0x20: 64-bit TSS (busy), base 0, limit 0x67 — low half
  0n, //                  high half of the TSS descriptor (base bits 63:32)
];

/**
 * Writes the boot GDT and identity-mapping page tables (the first 4 GiB, 2 MiB pages) into
 * low guest memory and puts the vCPU in 64-bit long mode at `entry`, with %rsi = `rsi` —
 * the state the Linux 64-bit boot protocol promises its entry point.
 */
export function setupLongModeEntry(
  vcpu: Vcpu,
  mem: GuestMemory,
  addrs: { gdt: number; pml4: number; pdpt: number; pd: number; stack: number },
  entry: number,
  rsi: number,
): void {
  GDT_ENTRIES.forEach((e, i) => mem.writeU64(addrs.gdt + 8 * i, e));
  const tables = new Uint8Array(0x1000 * 6);
  const dv = new DataView(tables.buffer);
  // pml4 page, pdpt page, then 4 page directories, laid out contiguously from addrs.pml4
  if (addrs.pdpt !== addrs.pml4 + 0x1000 || addrs.pd !== addrs.pdpt + 0x1000) {
    throw new VmmError('INVALID_CONFIG', 'boot page tables must be contiguous: PML4, PDPT, then four page directories');
  }
  dv.setBigUint64(0, BigInt(addrs.pdpt) | PTE_PRESENT_RW, true);
  for (let i = 0; i < 4; i++) {
    dv.setBigUint64(0x1000 + 8 * i, BigInt(addrs.pd + 0x1000 * i) | PTE_PRESENT_RW, true);
    for (let j = 0; j < 512; j++) {
      dv.setBigUint64(0x2000 + 0x1000 * i + 8 * j, (BigInt(i * 512 + j) << 21n) | PDE_2M_PAGE, true);
    }
  }
  mem.write(addrs.pml4, tables);

  const sregs = vcpu.getSregs();
  const code: Segment = { ...flatSegment(BOOT_CS, SEG_CODE_EXEC_READ_ACCESSED), l: 1, db: 0 };
  const data = flatSegment(BOOT_DS, SEG_DATA_READ_WRITE_ACCESSED);
  sregs.cs = code;
  sregs.ds = data;
  sregs.es = data;
  sregs.fs = data;
  sregs.gs = data;
  sregs.ss = data;
  sregs.tr = { ...flatSegment(BOOT_TSS, SEG_TSS_32_BUSY), limit: 0x67, s: 0, db: 0, g: 0 };
  sregs.gdt = { base: BigInt(addrs.gdt), limit: GDT_ENTRIES.length * 8 - 1 };
  sregs.idt = { base: 0n, limit: 0 };
  sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
  sregs.cr3 = BigInt(addrs.pml4);
  sregs.cr4 = X86_CR4_PAE;
  sregs.efer = EFER_LME | EFER_LMA;
  vcpu.setSregs(sregs);

  const regs = vcpu.getRegs();
  for (const k of Object.keys(regs) as (keyof typeof regs)[]) regs[k] = 0n;
  regs.rip = BigInt(entry);
  regs.rsi = BigInt(rsi);
  regs.rsp = BigInt(addrs.stack);
  regs.rbp = BigInt(addrs.stack);
  regs.rflags = 0x2n;
  vcpu.setRegs(regs);
}

/** x87 and SSE state at reset: FCW 0x37f (all exceptions masked), MXCSR 0x1f80. */
export function setupFpu(vcpu: Vcpu): void {
  const fpu = vcpu.getFpu();
  fpu.fcw = 0x37f;
  fpu.mxcsr = 0x1f80;
  vcpu.setFpu(fpu);
}
