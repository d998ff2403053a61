// KVM_RUN on tiny real-mode guests, exit data read in place from runBuffer, and kicking a vCPU
// that runs in a worker_thread. Real /dev/kvm. Guest code is hand-assembled 16-bit x86; keep it
// tiny, since real-mode code is emulated on PVM hosts.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';

import { constants as C, kickVcpu, KvmError } from '@vmctl/kvm-native';

import { ioExit, nextMessage, realModeGuest, skipWithoutKvm, startWorker } from './helpers.js';

const opts = skipWithoutKvm();

describe('Vcpu.run()', opts, () => {
  it('returns KVM_EXIT_IO for `out`, with port, direction, size and data in runBuffer', () => {
    const g = realModeGuest([
      0xb0, 0x42, //  mov al, 0x42
      0xe6, 0x10, //  out 0x10, al
      0xf4, //        hlt
    ]);
    const exit = g.vcpu.run();
    assert.equal(typeof exit, 'number');
    assert.equal(exit, C.KVM_EXIT_IO);
    assert.equal(new DataView(g.vcpu.runBuffer).getUint32(C.RUN_EXIT_REASON, true), C.KVM_EXIT_IO);
    assert.deepEqual(ioExit(g.vcpu), { direction: C.KVM_EXIT_IO_OUT, size: 1, port: 0x10, count: 1, data: 0x42 });

    assert.equal(g.vcpu.run(), C.KVM_EXIT_HLT);
    assert.equal(g.vcpu.getRegs().rip, 5n, 'IP is past the hlt');
    g.close();
  });

  it('runFunction() gives a bound run() that behaves the same and keeps its vCPU', () => {
    const g = realModeGuest([
      0xb0, 0x42, //  mov al, 0x42
      0xe6, 0x10, //  out 0x10, al
      0xf4, //        hlt
    ]);
    const run = g.vcpu.runFunction();
    assert.equal(run(), C.KVM_EXIT_IO);
    assert.deepEqual(ioExit(g.vcpu), { direction: C.KVM_EXIT_IO_OUT, size: 1, port: 0x10, count: 1, data: 0x42 });
    assert.equal(run(), C.KVM_EXIT_HLT);
    g.vcpu.close();
    assert.throws(() => run(), (e: unknown) => e instanceof KvmError && e.ioctl === 'KVM_RUN' && e.code === 'EBADF');
    g.close();
  });

  it('completes an `in` with the data userspace wrote into runBuffer', () => {
    const g = realModeGuest([
      0xe4, 0x20, //  in al, 0x20
      0x04, 0x01, //  add al, 1
      0xe6, 0x10, //  out 0x10, al
      0xf4, //        hlt
    ]);
    assert.equal(g.vcpu.run(), C.KVM_EXIT_IO);
    const exit = ioExit(g.vcpu);
    assert.equal(exit.direction, C.KVM_EXIT_IO_IN);
    assert.equal(exit.port, 0x20);
    const run = new DataView(g.vcpu.runBuffer);
    run.setUint8(Number(run.getBigUint64(C.RUN_IO_DATA_OFFSET, true)), 0x7f);

    assert.equal(g.vcpu.run(), C.KVM_EXIT_IO);
    assert.deepEqual(ioExit(g.vcpu), { direction: C.KVM_EXIT_IO_OUT, size: 1, port: 0x10, count: 1, data: 0x80 });
    g.close();
  });

  it('runs the CPUID table given by setCpuid2()', () => {
    const g = realModeGuest([
      0x66, 0x31, 0xc0, //  xor eax, eax
      0x0f, 0xa2, //        cpuid
      0x66, 0x89, 0xd8, //  mov eax, ebx
      0x66, 0xe7, 0x10, //  out 0x10, eax
      0xf4, //              hlt
    ]);
    const cpuid = g.kvm.getSupportedCpuid();
    const leaf0 = cpuid.find((e) => e.function === 0)!;
    leaf0.ebx = 0x4d56_4d56; // "VMVM" instead of the host's vendor
    g.vcpu.setCpuid2(cpuid);
    assert.equal(g.vcpu.run(), C.KVM_EXIT_IO);
    assert.deepEqual(ioExit(g.vcpu), { direction: C.KVM_EXIT_IO_OUT, size: 4, port: 0x10, count: 1, data: 0x4d56_4d56 });
    g.close();
  });

  it('sees guest RAM chunk n at guest address n × chunkSize', () => {
    const g = realModeGuest([
      0xb8, 0x00, 0x10, //  mov ax, 0x1000
      0x8e, 0xd8, //        mov ds, ax         ; DS base 0x10000: the start of chunk 1
      0xa0, 0x00, 0x00, //  mov al, [0]
      0xe6, 0x10, //        out 0x10, al
      0xf4, //              hlt
    ], { ramSize: 0x20000, chunkSize: 0x10000 });
    assert.equal(g.ram.chunks.length, 2);
    new Uint8Array(g.ram.chunks[1])[0] = 0x5a;
    assert.equal(g.vcpu.run(), C.KVM_EXIT_IO);
    assert.equal(ioExit(g.vcpu).data, 0x5a);
    g.close();
  });
});

interface FirstRun { first: number; firstMs: number; immediateExit: number }
interface SecondRun { second: number; exitReason: number; immediateExit: number }

describe('kickVcpu()', opts, () => {
  it('makes run() in a worker_thread return KVM_EXIT_INTR, by signal and by immediate_exit', { timeout: 20_000 }, async () => {
    const g = realModeGuest([0xeb, 0xfe]); // jmp $
    const go = new Int32Array(new SharedArrayBuffer(4));
    const worker = startWorker(`
      const { constants: C } = kvm;
      const vcpu = kvm.Vcpu.fromFd(workerData.fd, 0);
      const run = new Uint8Array(vcpu.runBuffer);
      const go = new Int32Array(workerData.go);
      parentPort.postMessage('entering');
      let t0 = performance.now();
      const first = vcpu.run(); // spins in the guest until kicked
      parentPort.postMessage({ first, firstMs: performance.now() - t0, immediateExit: run[C.RUN_IMMEDIATE_EXIT] });
      Atomics.wait(go, 0, 0); // the main thread kicks again while we are out of KVM_RUN
      const second = vcpu.run(); // immediate_exit is still 1: returns at once
      const exitReason = new DataView(vcpu.runBuffer).getUint32(C.RUN_EXIT_REASON, true);
      const immediateExit = run[C.RUN_IMMEDIATE_EXIT];
      run[C.RUN_IMMEDIATE_EXIT] = 0; // the caller clears it, as a vCPU loop does
      parentPort.postMessage({ second, exitReason, immediateExit });
      vcpu.close();
    `, { fd: g.vcpu.fd, go: go.buffer });
    try {
      assert.equal(await nextMessage(worker), 'entering');
      await new Promise((r) => setTimeout(r, 150)); // let it get deep into KVM_RUN
      const firstReply = nextMessage<FirstRun>(worker);
      assert.equal(kickVcpu(g.vcpu.fd), true);
      const first = await firstReply;
      assert.equal(first.first, C.KVM_EXIT_INTR);
      assert.equal(first.immediateExit, 1, 'the kick set immediate_exit');
      assert.ok(first.firstMs >= 100, `run() returned after ${first.firstMs} ms: it was running the guest`);

      const secondReply = nextMessage<SecondRun>(worker);
      assert.equal(kickVcpu(g.vcpu.fd), true, 'the worker thread is still recorded');
      Atomics.store(go, 0, 1);
      Atomics.notify(go, 0);
      assert.deepEqual(await secondReply, { second: C.KVM_EXIT_INTR, exitReason: C.KVM_EXIT_INTR, immediateExit: 1 });
      await once(worker, 'exit');
      assert.equal(kickVcpu(g.vcpu.fd), false, 'a finished thread is forgotten');
    } finally {
      // Never leave a thread spinning in KVM_RUN: it would keep the test process alive.
      const timer = setInterval(() => kickVcpu(g.vcpu.fd), 50);
      await worker.terminate();
      clearInterval(timer);
      g.close();
    }
  });

  it('run() on the same thread after a kick returns at once until immediate_exit is cleared', () => {
    const g = realModeGuest([
      0xe6, 0x10, //  out 0x10, al
      0xf4, //        hlt
    ]);
    assert.equal(g.vcpu.run(), C.KVM_EXIT_IO); // records this thread
    const run = new Uint8Array(g.vcpu.runBuffer);
    assert.equal(kickVcpu(g.vcpu.fd), true); // the signal lands here, in JS: harmless
    assert.equal(run[C.RUN_IMMEDIATE_EXIT], 1);
    assert.equal(g.vcpu.run(), C.KVM_EXIT_INTR);
    assert.equal(g.vcpu.run(), C.KVM_EXIT_INTR);
    run[C.RUN_IMMEDIATE_EXIT] = 0;
    assert.equal(g.vcpu.run(), C.KVM_EXIT_HLT, 'the guest resumes where it was');
    g.close();
  });
});
