/**
 * Starting vCPU threads. A thread takes 60–80 ms to boot its own JS engine and load the
 * addon, so `vmm run` starts them before it even loads the VMM's modules ("prewarm") and
 * hands each its vCPU later; the VM is built while they boot.
 */
import { Worker } from 'node:worker_threads';
import type { VcpuThreadData } from './protocol.js';

export function spawnVcpuThread(data?: VcpuThreadData): Worker {
  return new Worker(new URL('./vcpu-thread.js', import.meta.url), {
    workerData: data,
    // a vCPU thread runs a small, allocation-free loop: keep its heap small
    resourceLimits: { maxYoungGenerationSizeMb: 1, maxOldGenerationSizeMb: 32 },
    stdout: false,
    stderr: false,
  });
}

const prewarmed: Worker[] = [];

/** Boots `n` vCPU threads that wait for their vCPU. They do not keep the process alive. */
export function prewarmVcpuThreads(n: number): void {
  for (let i = 0; i < n; i++) {
    const w = spawnVcpuThread();
    w.unref();
    prewarmed.push(w);
  }
}

/** A prewarmed thread, if one is left. */
export function takePrewarmedVcpuThread(): Worker | undefined {
  const w = prewarmed.shift();
  w?.ref();
  return w;
}
