// Shared set-up for the real-KVM tests of @vmctl/kvm-native.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

import { Kvm, constants as C, mmapGuestRam, munmapGuestRam, type GuestRam, type Vcpu, type Vm } from '@vmctl/kvm-native';

export const hasKvm = existsSync('/dev/kvm');

/** Prints the loud skip line once per file and returns the `skip` option for node:test. */
export function skipWithoutKvm(): { skip: string | false } {
  if (!hasKvm) console.log('SKIP: no /dev/kvm');
  return { skip: hasKvm ? false : 'no /dev/kvm' };
}

/** Absolute path of the addon's entry point, for workers that `require` it. */
export const addonPath = createRequire(import.meta.url).resolve('@vmctl/kvm-native');

/** Where the real-mode test guests are loaded; CS = 0x100, so IP starts at 0. */
export const CODE_ADDR = 0x1000;
export const RAM_SIZE = 0x10000;

export interface RealModeGuest {
  kvm: Kvm;
  vm: Vm;
  vcpu: Vcpu;
  ram: GuestRam;
  mem: Uint8Array;
  close(): void;
}

export interface RealModeOptions {
  /** set up the VM before the vCPU exists (irqchip, ioeventfds...) */
  beforeVcpu?: (vm: Vm) => void;
  /** guest RAM size (default RAM_SIZE) and the chunk size of its views */
  ramSize?: number;
  chunkSize?: number;
}

/**
 * A VM with 64 KiB (or `ramSize`) of RAM at guest address 0 and one vCPU in real mode about to run `code`
 * at CODE_ADDR. Keep guest code tiny: real-mode code is emulated on PVM hosts (~3000× slower).
 */
export function realModeGuest(code: number[], opts: RealModeOptions = {}): RealModeGuest {
  const kvm = new Kvm();
  const vm = kvm.createVm();
  const ramSize = opts.ramSize ?? RAM_SIZE;
  const ram = mmapGuestRam(ramSize, opts.chunkSize);
  vm.setUserMemoryRegion({ slot: 0, flags: 0, guestPhysAddr: 0, memorySize: ramSize, userspaceAddr: ram.address });
  const mem = new Uint8Array(ram.chunks[0]);
  mem.set(code, CODE_ADDR);
  opts.beforeVcpu?.(vm);
  const vcpu = vm.createVcpu(0);
  const sregs = vcpu.getSregs();
  sregs.cs.selector = CODE_ADDR >> 4;
  sregs.cs.base = BigInt(CODE_ADDR);
  vcpu.setSregs(sregs);
  const regs = vcpu.getRegs();
  regs.rip = 0n;
  regs.rflags = 0x2n; // bit 1 is reserved and always set
  vcpu.setRegs(regs);
  return {
    kvm, vm, vcpu, ram, mem,
    close() {
      vcpu.close();
      vm.close();
      kvm.close();
      munmapGuestRam(ram.address);
    },
  };
}

/** The PIO exit in `vcpu.runBuffer`, read in place. */
export function ioExit(vcpu: Vcpu) {
  const run = new DataView(vcpu.runBuffer);
  const dataOffset = Number(run.getBigUint64(C.RUN_IO_DATA_OFFSET, true));
  const size = run.getUint8(C.RUN_IO_SIZE);
  let data = 0;
  for (let i = size - 1; i >= 0; i--) data = data * 256 + run.getUint8(dataOffset + i);
  return {
    direction: run.getUint8(C.RUN_IO_DIRECTION),
    size,
    port: run.getUint16(C.RUN_IO_PORT, true),
    count: run.getUint32(C.RUN_IO_COUNT, true),
    data,
  };
}

/** Runs `source` (CommonJS, with `kvm` = the addon and `workerData`) in a worker_thread. */
export function startWorker(source: string, workerData: unknown): Worker {
  const prelude = `const { workerData, parentPort } = require('node:worker_threads');
const kvm = require(${JSON.stringify(addonPath)});
`;
  return new Worker(prelude + source, { eval: true, workerData });
}

/** The next message from `worker`, or its error. */
export function nextMessage<T = unknown>(worker: Worker): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: T) => { cleanup(); resolve(m); };
    const onError = (e: Error) => { cleanup(); reject(e); };
    const onExit = (code: number) => { cleanup(); reject(new Error(`worker exited (${code}) before answering`)); };
    const cleanup = () => {
      worker.off('message', onMessage);
      worker.off('error', onError);
      worker.off('exit', onExit);
    };
    worker.on('message', onMessage);
    worker.on('error', onError);
    worker.on('exit', onExit);
  });
}
