/**
 * Architectural vCPU state at boot: CPUID, the local APIC's wiring, and the register
 * state each boot protocol promises its entry point.
 */
import type { CpuidEntry, Segment, Sregs, Vcpu } from '../kvm.js';

const X86_CR0_PE = 0x1n;
const X86_CR0_ET = 0x10n;

/** CPUID leaf 1 ECX bit 31: "running under a hypervisor". */
const CPUID_1_ECX_HYPERVISOR = 1 << 31;

/**
 * The CPUID table for vCPU `id` of `count`: what KVM supports, with this vCPU's APIC ID and
 * the topology the guest should see (one core per vCPU, one thread per core).
 */
export function cpuidFor(supported: CpuidEntry[], id: number, count: number): CpuidEntry[] {
  return supported.map((e) => {
    const out = { ...e };
    switch (e.function) {
      case 0x1:
        // EBX[31:24] initial APIC ID, EBX[23:16] logical processors per package
        out.ebx = ((id & 0xff) << 24) | ((Math.min(count, 255) & 0xff) << 16) | (e.ebx & 0xffff);
        out.ecx = e.ecx | CPUID_1_ECX_HYPERVISOR;
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
