import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CpuidEntry } from '../kvm.js';
import { CPUID_1_ECX_TSC_DEADLINE, cpuidFor } from './cpu-setup.js';

const leaf = (fn: number, regs: Partial<CpuidEntry> = {}): CpuidEntry =>
  ({ function: fn, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, ...regs });

const supported = [leaf(0, { eax: 0xd }), leaf(1, { ebx: 0x0000_0800, ecx: 0x0000_0001 }), leaf(0xb, { edx: 0 })];

test('leaf 1 carries the APIC ID, the vCPU count, the hypervisor bit and, when KVM has it, TSC-deadline', () => {
  const [, l1] = cpuidFor(supported, 3, 4, { tscDeadline: true });
  assert.equal(l1!.ebx >>> 24, 3);
  assert.equal((l1!.ebx >>> 16) & 0xff, 4);
  assert.equal(l1!.ebx & 0xffff, 0x0800, 'the CLFLUSH size and brand index stay as KVM reported them');
  assert.equal(l1!.ecx & 1, 1, 'the supported features stay');
  assert.notEqual(l1!.ecx & (1 << 31), 0);
  assert.notEqual(l1!.ecx & CPUID_1_ECX_TSC_DEADLINE, 0);
  assert.notEqual(l1!.edx & (1 << 28), 0, 'HTT: more than one logical processor');
});

test('without the KVM capability the TSC-deadline bit stays clear; one vCPU has no HTT', () => {
  const [, l1] = cpuidFor(supported, 0, 1, { tscDeadline: false });
  assert.equal(l1!.ecx & CPUID_1_ECX_TSC_DEADLINE, 0);
  assert.equal(l1!.edx & (1 << 28), 0);
});

test('the x2APIC topology leaf reports each vCPU its own ID, and the input table is not changed', () => {
  const out = cpuidFor(supported, 2, 4, { tscDeadline: true });
  assert.equal(out[2]!.edx, 2);
  assert.equal(supported[2]!.edx, 0);
  assert.equal(supported[1]!.ecx, 1);
});
