// vCPU register state through the kernel and back: regs, sregs, fpu, msrs, lapic, cpuid,
// mp_state. Real /dev/kvm.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';

import { Kvm, KvmError, constants as C, type Vcpu, type Vm } from '@vmctl/kvm-native';

import { skipWithoutKvm } from './helpers.js';

const opts = skipWithoutKvm();

// LAPIC register page offsets (Intel SDM vol. 3, table "Local APIC Register Address Map")
const APIC_ID = 0x20;
const APIC_SVR = 0xf0;
const APIC_SVR_ENABLE = 0x100;

describe('vCPU state round trips', opts, () => {
  let kvm: Kvm;
  let vm: Vm;
  let vcpu: Vcpu;

  beforeEach(() => {
    kvm = new Kvm();
    vm = kvm.createVm();
    vm.createIrqchip(); // KVM_GET/SET_LAPIC need the in-kernel LAPIC
    vcpu = vm.createVcpu(0);
  });

  afterEach(() => {
    vcpu.close();
    vm.close();
    kvm.close();
  });

  it('setRegs() then getRegs() returns every register, including full 64-bit values', () => {
    const regs = vcpu.getRegs();
    const names = Object.keys(regs) as (keyof typeof regs)[];
    assert.equal(names.length, 18);
    names.forEach((name, i) => { regs[name] = 0x1111_2222_0000_0000n + BigInt(i); });
    regs.rax = 0xffff_ffff_ffff_ffffn;
    regs.rflags = 0x246n;
    vcpu.setRegs(regs);
    assert.deepEqual(vcpu.getRegs(), regs);
  });

  it('setRegs() accepts a negative bigint as its 64-bit two\'s complement', () => {
    const regs = vcpu.getRegs();
    regs.rbx = -1n;
    vcpu.setRegs(regs);
    assert.equal(vcpu.getRegs().rbx, 0xffff_ffff_ffff_ffffn);
  });

  it('setSregs() then getSregs() returns segments, tables and control registers', () => {
    const s = vcpu.getSregs();
    assert.equal(s.cs.selector, 0xf000, 'reset CS is the real-mode reset vector segment');
    assert.equal(s.interruptBitmap.length, 4);
    s.cs = { ...s.cs, selector: 0x100, base: 0x1000n };
    s.ds = { ...s.ds, selector: 0x200, base: 0x2000n, limit: 0xffff };
    s.gdt = { base: 0x500n, limit: 0x27 };
    s.idt = { base: 0x600n, limit: 0x3ff };
    s.cr3 = 0x9000n;
    s.cr2 = 0xdead_beefn;
    vcpu.setSregs(s);
    const back = vcpu.getSregs();
    assert.deepEqual(back.cs, s.cs);
    assert.deepEqual(back.ds, s.ds);
    assert.deepEqual(back.gdt, s.gdt);
    assert.deepEqual(back.idt, s.idt);
    assert.equal(back.cr3, 0x9000n);
    assert.equal(back.cr2, 0xdead_beefn);
    assert.equal(back.apicBase & 0xffff_f000n, 0xfee0_0000n);
  });

  it('setFpu() then getFpu() returns control word, x87 and SSE registers', () => {
    const f = vcpu.getFpu();
    assert.equal(f.fcw, 0x37f, 'FNINIT default control word');
    assert.equal(f.fpr.length, 128);
    assert.equal(f.xmm.length, 256);
    f.fcw = 0x27f;
    f.fpr[0] = 0x11;
    f.fpr[127] = 0x22;
    f.xmm[0] = 0xab;
    f.xmm[255] = 0xcd;
    vcpu.setFpu(f);
    const back = vcpu.getFpu();
    assert.equal(back.fcw, 0x27f);
    assert.deepEqual(back.fpr, f.fpr);
    assert.deepEqual(back.xmm, f.xmm);
    // mxcsr is not compared: the kernel's KVM_GET_FPU never fills it in (only SET uses it).
  });

  it('setFpu() refuses register arrays of the wrong size', () => {
    const f = vcpu.getFpu();
    f.xmm = new Uint8Array(16);
    assert.throws(() => vcpu.setFpu(f), RangeError);
  });

  it('setMsrs() then getMsrs() returns the values; an unknown MSR stops the list', () => {
    const entries = [
      { index: 0x174, data: 0x10n }, // IA32_SYSENTER_CS
      { index: 0xc000_0102, data: 0xffff_8000_0000_1000n }, // IA32_KERNEL_GS_BASE
    ];
    assert.equal(vcpu.setMsrs(entries), 2);
    assert.deepEqual(vcpu.getMsrs([0x174, 0xc000_0102]), entries);
    // api.rst: KVM_SET_MSRS/KVM_GET_MSRS return how many entries were processed.
    assert.equal(vcpu.setMsrs([{ index: 0x174, data: 0x20n }, { index: 0xdead_beef, data: 1n }]), 1);
    assert.deepEqual(vcpu.getMsrs([0x174, 0xdead_beef, 0xc000_0102]), [{ index: 0x174, data: 0x20n }]);
  });

  it('setLapic() then getLapic() returns the 1024-byte register page', () => {
    const lapic = vcpu.getLapic();
    assert.ok(lapic instanceof Uint8Array);
    assert.equal(lapic.length, 1024);
    assert.equal(lapic[APIC_ID + 3], 0, 'vCPU 0 has APIC ID 0');
    const svr = new DataView(lapic.buffer, lapic.byteOffset);
    assert.equal(svr.getUint32(APIC_SVR, true) & APIC_SVR_ENABLE, 0, 'software-disabled after reset');
    svr.setUint32(APIC_SVR, 0x1ff, true);
    vcpu.setLapic(lapic);
    const back = new DataView(vcpu.getLapic().buffer);
    assert.equal(back.getUint32(APIC_SVR, true), 0x1ff);
    assert.throws(() => vcpu.setLapic(new Uint8Array(1000)), RangeError);
  });

  it('setCpuid2() accepts the supported CPUID table', () => {
    const cpuid = kvm.getSupportedCpuid();
    assert.ok(cpuid.length > 10);
    vcpu.setCpuid2(cpuid);
    // The effect on a running guest is checked in run.test.ts (the guest executes CPUID).
  });

  it('setMpState() then getMpState() changes the state; APs start UNINITIALIZED', () => {
    assert.equal(vcpu.getMpState(), C.KVM_MP_STATE_RUNNABLE, 'the BSP is runnable');
    const ap = vm.createVcpu(1);
    assert.equal(ap.getMpState(), C.KVM_MP_STATE_UNINITIALIZED, 'an AP waits for INIT/SIPI');
    vcpu.setMpState(C.KVM_MP_STATE_HALTED);
    assert.equal(vcpu.getMpState(), C.KVM_MP_STATE_HALTED);
    ap.close();
  });
});

describe('vCPU state without an in-kernel irqchip', opts, () => {
  it('getLapic() fails with a KvmError from KVM_GET_LAPIC', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    assert.throws(() => vcpu.getLapic(), (e: unknown) => e instanceof KvmError && e.ioctl === 'KVM_GET_LAPIC');
    vcpu.close();
    vm.close();
    kvm.close();
  });
});
