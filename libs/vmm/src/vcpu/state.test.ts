import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as K, type Regs, type Segment, type Sregs } from '../kvm.js';
import { formatVcpuState, readVcpuState, type VcpuRegisterSource } from './state.js';

function seg(selector: number, l = 0): Segment {
  return { base: 0n, limit: 0xffffffff, selector, type: 11, present: 1, dpl: selector & 3, db: l ? 0 : 1, s: 1, l, g: 1, avl: 0, unusable: 0 };
}

function fake(opts: { cr0: bigint; efer: bigint; cs: Segment; mp: number; rip: bigint }): VcpuRegisterSource {
  const zero = 0n;
  const regs = { rip: opts.rip, rsp: 0x8000n, rflags: 0x202n } as Regs;
  for (const r of ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const) regs[r] = zero;
  const s = seg(0x10);
  const sregs: Sregs = {
    cs: opts.cs, ds: s, es: s, fs: s, gs: s, ss: s, tr: s, ldt: s,
    gdt: { base: 0n, limit: 0 }, idt: { base: 0n, limit: 0 },
    cr0: opts.cr0, cr2: 0xdeadn, cr3: 0x1000n, cr4: 0x20n, cr8: 0n, efer: opts.efer, apicBase: 0xfee00900n,
    interruptBitmap: [0n, 0n, 0n, 0n],
  };
  return { id: 1, getRegs: () => regs, getSregs: () => sregs, getMpState: () => opts.mp };
}

test('readVcpuState tells the mode and privilege from CR0, EFER and CS', () => {
  const long = readVcpuState(fake({ cr0: 0x80000011n, efer: 0x500n, cs: seg(0x33, 1), mp: K.KVM_MP_STATE_HALTED, rip: 0x401000n }), 7);
  assert.equal(long.mode, 'long');
  assert.equal(long.cpl, 3);
  assert.equal(long.mpState, 'halted');
  assert.equal(long.exits, 7);
  assert.equal(readVcpuState(fake({ cr0: 0x80000011n, efer: 0x500n, cs: seg(0x23), mp: K.KVM_MP_STATE_RUNNABLE, rip: 0n }), 0).mode, 'compat');
  assert.equal(readVcpuState(fake({ cr0: 0x11n, efer: 0n, cs: seg(0x08), mp: K.KVM_MP_STATE_RUNNABLE, rip: 0n }), 0).mode, 'protected');
  const real = readVcpuState(fake({ cr0: 0x10n, efer: 0n, cs: seg(0xf003), mp: K.KVM_MP_STATE_UNINITIALIZED, rip: 0xfff0n }), 0);
  assert.equal(real.mode, 'real');
  assert.equal(real.cpl, 0, 'real mode runs at CPL 0 whatever CS holds');
  assert.equal(real.mpState, 'uninitialized');
  assert.equal(readVcpuState(fake({ cr0: 0x10n, efer: 0n, cs: seg(0), mp: 99, rip: 0n }), 0).mpState, 'unknown');
});

test('formatVcpuState prints one line with the registers in hex', () => {
  const line = formatVcpuState(readVcpuState(fake({ cr0: 0x80000011n, efer: 0x500n, cs: seg(0x33, 1), mp: K.KVM_MP_STATE_RUNNABLE, rip: 0xffffffff81000000n }), 42));
  assert.equal(
    line,
    'vcpu1 runnable long cpl3 rip=0xffffffff81000000 rsp=0x8000 rflags=0x202 cr0=0x80000011 cr2=0xdead cr3=0x1000 cr4=0x20 efer=0x500 exits=42',
  );
  assert.ok(!line.includes('\n'));
});
