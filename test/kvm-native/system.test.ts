// Kvm, Vm and Vcpu objects, errors, fd flags and the kick signal: real /dev/kvm.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, it } from 'node:test';

import * as addon from '@vmctl/kvm-native';
import {
  Kvm, KvmError, Vcpu, Vm, closeFd, constants as C, eventfd, kickSignal, kickVcpu, mmapGuestRam, munmapGuestRam,
} from '@vmctl/kvm-native';

import { skipWithoutKvm } from './helpers.js';

const opts = skipWithoutKvm();

const O_CLOEXEC = 0o2000000;

function fdFlags(fd: number): number {
  const m = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  assert.ok(m, `no flags for fd ${fd}`);
  return parseInt(m[1], 8);
}

function caughtSignals(status: string): Set<number> {
  const hex = /^SigCgt:\s*([0-9a-f]+)$/m.exec(status)![1];
  const mask = BigInt(`0x${hex}`);
  const out = new Set<number>();
  for (let sig = 1; sig <= 64; sig++) if ((mask >> BigInt(sig - 1)) & 1n) out.add(sig);
  return out;
}

describe('module surface', () => {
  const dts = readFileSync(new URL('../../libs/kvm-native/index.d.ts', import.meta.url), 'utf8');

  it('exports every class, function and const that index.d.ts declares', () => {
    const names = [...dts.matchAll(/^export (?:class|function|const) (\w+)/gm)].map((m) => m[1]);
    assert.ok(names.length >= 14);
    for (const name of names) assert.notEqual((addon as Record<string, unknown>)[name], undefined, name);
  });

  it('constants has every name of index.d.ts as a number, and is frozen', () => {
    const block = dts.slice(dts.indexOf('export const constants'));
    const names = [...block.matchAll(/\b([A-Z][A-Z0-9_]+): number/g)].map((m) => m[1]);
    assert.ok(names.length > 60, `${names.length} names`);
    for (const name of names) assert.equal(typeof (C as Record<string, unknown>)[name], 'number', name);
    assert.ok(Object.isFrozen(C));
  });

  it('kvm_run offsets match the x86-64 ABI layout of api.rst', () => {
    // The layout is kernel ABI; these values would only move if the build used wrong headers.
    assert.equal(C.RUN_IMMEDIATE_EXIT, 1);
    assert.equal(C.RUN_EXIT_REASON, 8);
    assert.deepEqual([C.RUN_IO_DIRECTION, C.RUN_IO_SIZE, C.RUN_IO_PORT, C.RUN_IO_COUNT, C.RUN_IO_DATA_OFFSET], [32, 33, 34, 36, 40]);
    assert.deepEqual([C.RUN_MMIO_PHYS_ADDR, C.RUN_MMIO_DATA, C.RUN_MMIO_LEN, C.RUN_MMIO_IS_WRITE], [32, 40, 48, 52]);
    assert.equal(C.KVM_EXIT_INTR, 10);
  });
});

describe('Kvm', opts, () => {
  it('getApiVersion() returns 12', () => {
    const kvm = new Kvm();
    assert.equal(kvm.getApiVersion(), C.KVM_API_VERSION);
    assert.equal(kvm.getApiVersion(), 12);
    kvm.close();
  });

  it('checkExtension() reports the capabilities the VMM relies on', () => {
    const kvm = new Kvm();
    for (const cap of ['KVM_CAP_IRQCHIP', 'KVM_CAP_USER_MEMORY', 'KVM_CAP_SET_TSS_ADDR', 'KVM_CAP_EXT_CPUID',
      'KVM_CAP_PIT2', 'KVM_CAP_IOEVENTFD', 'KVM_CAP_IRQFD', 'KVM_CAP_IRQ_ROUTING', 'KVM_CAP_SIGNAL_MSI',
      'KVM_CAP_IMMEDIATE_EXIT'] as const) {
      assert.ok(kvm.checkExtension(C[cap]) > 0, `${cap} missing`);
    }
    assert.ok(kvm.checkExtension(C.KVM_CAP_NR_MEMSLOTS) >= 32);
    assert.ok(kvm.checkExtension(C.KVM_CAP_MAX_VCPUS) >= kvm.checkExtension(C.KVM_CAP_NR_VCPUS));
    assert.equal(kvm.checkExtension(0x7fffffff), 0, 'an unknown capability is 0, not an error');
    kvm.close();
  });

  it('getVcpuMmapSize() covers at least the kvm_run page', () => {
    const kvm = new Kvm();
    const size = kvm.getVcpuMmapSize();
    assert.ok(size >= 4096 && size % 4096 === 0, `size ${size}`);
    kvm.close();
  });

  it('getMsrIndexList() lists the MSRs a VMM saves (SYSENTER_CS, STAR, LSTAR, KERNEL_GS_BASE)', () => {
    const kvm = new Kvm();
    const list = kvm.getMsrIndexList();
    for (const msr of [0x174, 0xc0000081, 0xc0000082, 0xc0000102]) assert.ok(list.includes(msr), `0x${msr.toString(16)}`);
    kvm.close();
  });

  it('getSupportedCpuid() returns leaf 0 with the maximum basic leaf in eax', () => {
    const kvm = new Kvm();
    const cpuid = kvm.getSupportedCpuid();
    const leaf0 = cpuid.find((e) => e.function === 0);
    assert.ok(leaf0 && leaf0.eax >= 1);
    assert.ok(cpuid.some((e) => e.function === 0x80000000));
    kvm.close();
  });

  it('opens every fd with O_CLOEXEC', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    const efd = eventfd();
    for (const fd of [kvm.fd, vm.fd, vcpu.fd, efd]) assert.ok(fdFlags(fd) & O_CLOEXEC, `fd ${fd}`);
    closeFd(efd);
    vcpu.close();
    vm.close();
    kvm.close();
  });
});

describe('Vm and Vcpu', opts, () => {
  it('createVm() and createVcpu() return objects with their fds and id', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    assert.ok(vm instanceof Vm);
    assert.ok(vm.fd > kvm.fd);
    assert.equal(vm.checkExtension(C.KVM_CAP_IRQFD), 1);
    const vcpu = vm.createVcpu(3);
    assert.ok(vcpu instanceof Vcpu);
    assert.equal(vcpu.id, 3);
    assert.equal(vcpu.runBuffer.byteLength, kvm.getVcpuMmapSize());
    vcpu.close();
    vm.close();
    kvm.close();
  });

  it('Vm and Vcpu cannot be constructed from JS', () => {
    assert.throws(() => new (Vm as unknown as new () => Vm)(), TypeError);
    assert.throws(() => new (Vcpu as unknown as new () => Vcpu)(), TypeError);
  });

  it('setTssAddr(), setIdentityMapAddr() and setUserMemoryRegion() accept a valid layout', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    vm.setTssAddr(0xfffbd000);
    vm.setIdentityMapAddr(0xfffbc000);
    const ram = mmapGuestRam(0x20000);
    vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0, memorySize: 0x20000, userspaceAddr: ram.address });
    // memorySize 0 deletes the slot (api.rst)
    vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0, memorySize: 0, userspaceAddr: ram.address });
    munmapGuestRam(ram.address);
    vm.close();
    kvm.close();
  });

  it('Vcpu.close() detaches runBuffer and later ioctls fail with EBADF', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    const run = vcpu.runBuffer;
    vcpu.close();
    assert.equal(run.byteLength, 0);
    assert.throws(() => vcpu.getRegs(), { name: 'KvmError', ioctl: 'KVM_GET_REGS', code: 'EBADF' });
    assert.throws(() => vcpu.run(), { ioctl: 'KVM_RUN', code: 'EBADF' });
    vm.close();
    kvm.close();
  });
});

describe('garbage collection', opts, () => {
  it('Vm and Vcpu objects dropped without close() release their fds and kvm_run mappings', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const fds = () => readdirSync('/proc/self/fd').filter((fd) => {
      try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith('anon_inode:kvm-'); } catch { return false; }
    }).length;
    const runMappings = () => readFileSync('/proc/self/maps', 'utf8').split('\n').filter((l) => l.includes('kvm-vcpu')).length;
    const kvm = new Kvm();
    const [fds0, maps0] = [fds(), runMappings()];
    (() => {
      for (let i = 0; i < 20; i++) {
        const vcpu = kvm.createVm().createVcpu(0);
        Vcpu.fromFd(vcpu.fd, 0); // a second mapping of the same page
      }
    })();
    assert.equal(fds() - fds0, 40);
    assert.equal(runMappings() - maps0, 40);
    // Finalizers run after GC, from the event loop: collect and yield until they have.
    for (let i = 0; i < 50 && (fds() > fds0 || runMappings() > maps0); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 10));
    }
    // (<=: objects left by earlier tests may be collected too)
    assert.ok(fds() <= fds0, `${fds() - fds0} VM/vCPU fds left open`);
    assert.ok(runMappings() <= maps0, `${runMappings() - maps0} kvm_run mappings left`);
    kvm.close();
  });
});

describe('KvmError', opts, () => {
  it('creating the same vCPU id twice throws KvmError EEXIST from KVM_CREATE_VCPU', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    let error: unknown;
    try {
      vm.createVcpu(0);
    } catch (e) {
      error = e;
    }
    assert.ok(error instanceof KvmError, 'instanceof KvmError');
    assert.ok(error instanceof Error);
    assert.equal(error.name, 'KvmError');
    assert.equal(error.ioctl, 'KVM_CREATE_VCPU');
    assert.equal(error.errno, 17);
    assert.equal(error.code, 'EEXIST');
    assert.match(error.message, /KVM_CREATE_VCPU.*EEXIST/);
    assert.ok(error.stack?.includes('system.test.ts'), 'stack points at the caller');
    vcpu.close();
    vm.close();
    kvm.close();
  });

  it('a misaligned memory region is EINVAL from KVM_SET_USER_MEMORY_REGION', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    assert.throws(
      () => vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0x123, memorySize: 0x1000, userspaceAddr: 0x1000n }),
      (e: unknown) => e instanceof KvmError && e.ioctl === 'KVM_SET_USER_MEMORY_REGION' && e.code === 'EINVAL',
    );
    vm.close();
    kvm.close();
  });

  it('opening a missing device is KvmError ENOENT from open', () => {
    assert.throws(() => new Kvm('/dev/does-not-exist'), (e: unknown) =>
      e instanceof KvmError && e.ioctl === 'open' && e.code === 'ENOENT' && e.errno === 2);
  });

  it('bad argument types are TypeErrors, not KvmErrors', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    assert.throws(() => vm.createVcpu('0' as unknown as number), TypeError);
    assert.throws(() => vm.setUserMemoryRegion({ slot: 0 } as never), /missing property 'flags'/);
    vm.close();
    kvm.close();
  });
});

describe('kick signal', opts, () => {
  it('is a real-time signal that Node itself does not catch, caught once the addon is loaded', () => {
    assert.ok(kickSignal >= 34 && kickSignal <= 64, `signal ${kickSignal}`);
    assert.ok(caughtSignals(readFileSync('/proc/self/status', 'utf8')).has(kickSignal));
    const bare = spawnSync(process.execPath, ['-e', 'process.stdout.write(require("fs").readFileSync("/proc/self/status","utf8"))'], { encoding: 'utf8' });
    assert.equal(bare.status, 0);
    const nodeOwn = caughtSignals(bare.stdout);
    assert.ok(nodeOwn.has(10), 'sanity: node catches SIGUSR1');
    assert.ok(!nodeOwn.has(kickSignal), 'node must not use the kick signal');
  });

  it('kickVcpu() returns false for a vCPU that no thread has run', () => {
    const kvm = new Kvm();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    assert.equal(kickVcpu(vcpu.fd), false);
    vcpu.close();
    vm.close();
    kvm.close();
  });
});
