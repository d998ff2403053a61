/**
 * The main thread's handle on one vCPU thread: starts it, serves its mailbox, stops it.
 */
import type { Worker } from 'node:worker_threads';
import { spawnVcpuThread, takePrewarmedVcpuThread } from './spawn.js';
import { kickVcpu } from '../kvm.js';
import { createMailbox, MailboxConsumer, type AccessHandler, MB_EXITS, MB_MISSED_MMIO, MB_MISSED_PIO } from './mailbox.js';
import type { PortMirror, VcpuThreadData, VcpuThreadMessage } from './protocol.js';
import type { BusRange } from '../bus/io-bus.js';

export interface VcpuThreadOptions {
  fd: number;
  id: number;
  pioRemote: BusRange[];
  mmioRemote: BusRange[];
  /** shared by all the machine's vCPUs: see createWriteCounter */
  writeCounter?: SharedArrayBuffer;
  /** registers the vCPU thread may read from shared memory */
  pioMirrors?: PortMirror[];
  debugExitPort?: number;
  access: AccessHandler;
  /** called once, with what ended the thread's run loop */
  onEnd: (msg: VcpuThreadMessage) => void;
}

export interface VcpuCounters {
  exits: number;
  missedPio: number;
  missedMmio: number;
}

export class VcpuThreadHandle {
  readonly id: number;
  private readonly fd: number;
  private readonly mailbox = createMailbox();
  private readonly consumer: MailboxConsumer;
  private worker?: Worker;
  private ended = false;
  private endMessage?: VcpuThreadMessage;
  private readonly exited: Promise<void>;
  private resolveExited!: () => void;

  constructor(private readonly opts: VcpuThreadOptions) {
    this.id = opts.id;
    this.fd = opts.fd;
    this.consumer = new MailboxConsumer(this.mailbox, opts.access, opts.writeCounter);
    this.exited = new Promise((r) => (this.resolveExited = r));
  }

  start(): void {
    const data: VcpuThreadData = {
      fd: this.fd,
      id: this.id,
      mailbox: this.mailbox,
      pioRemote: this.opts.pioRemote,
      mmioRemote: this.opts.mmioRemote,
      pioMirrors: this.opts.pioMirrors ?? [],
      ...(this.opts.writeCounter ? { writeCounter: this.opts.writeCounter } : {}),
      ...(this.opts.debugExitPort !== undefined ? { debugExitPort: this.opts.debugExitPort } : {}),
    };
    this.consumer.start();
    const prewarmed = takePrewarmedVcpuThread();
    const w = prewarmed ?? spawnVcpuThread(data);
    if (prewarmed) prewarmed.postMessage(data);
    this.worker = w;
    w.on('message', (msg: VcpuThreadMessage) => this.end(msg));
    w.on('error', (err) => this.end({ type: 'failed', exitReason: -1, detail: `vCPU thread error: ${err.message}`, rip: '' }));
    w.on('exit', () => {
      // Apply whatever the vCPU posted before it ended, then release the mailbox.
      this.consumer.drain();
      this.consumer.close();
      this.end({ type: 'stopped' });
      this.resolveExited();
    });
  }

  private end(msg: VcpuThreadMessage): void {
    if (this.ended) return;
    this.ended = true;
    this.endMessage = msg;
    this.consumer.drain();
    this.opts.onEnd(msg);
  }

  /** Asks the vCPU to leave KVM_RUN and its loop; resolves when the thread has exited. */
  async stop(): Promise<void> {
    if (!this.worker) return;
    this.consumer.requestStop();
    // Kick until the thread is gone: the first kick may land before it entered KVM_RUN, but
    // immediate_exit makes its next KVM_RUN return at once anyway.
    kickVcpu(this.fd);
    const timer = setInterval(() => kickVcpu(this.fd), 20);
    try {
      await this.exited;
    } finally {
      clearInterval(timer);
    }
  }

  /** Parks the vCPU outside KVM_RUN. Resolves false if it did not park within `ms`. */
  async pause(ms = 2000): Promise<boolean> {
    if (!this.worker || this.ended) return false;
    this.consumer.requestPause();
    kickVcpu(this.fd);
    const timer = setInterval(() => kickVcpu(this.fd), 20);
    try {
      return await this.consumer.parked(ms);
    } finally {
      clearInterval(timer);
    }
  }

  resume(): void {
    this.consumer.release();
  }

  counters(): VcpuCounters {
    return {
      exits: this.consumer.counter(MB_EXITS),
      missedPio: this.consumer.counter(MB_MISSED_PIO),
      missedMmio: this.consumer.counter(MB_MISSED_MMIO),
    };
  }

  get result(): VcpuThreadMessage | undefined {
    return this.endMessage;
  }
}
