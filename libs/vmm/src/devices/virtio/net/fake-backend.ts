/**
 * An in-memory NetBackend for tests: frames queued for the guest are read by the device one
 * per readv, as from a tap (cut to the buffers' size when longer); frames the device writes
 * are kept in order. Readiness is delivered when the test turns the "loop" with `poll()`,
 * level-triggered like the tap's watch: readable while frames wait, writable while writes
 * are accepted, and only for what the device said it is interested in.
 */
import { NO_OFFLOADS, type NetBackend, type NetBackendHandler, type NetOffloads } from './backend.js';

export const ALL_OFFLOADS: Readonly<NetOffloads> = Object.freeze({ csum: true, tso4: true, tso6: true, ecn: true, ufo: true });

export interface FakeNetBackendOptions {
  guestOffloads?: NetOffloads;
  hostOffloads?: NetOffloads;
  maxBuffers?: number;
}

export class FakeNetBackend implements NetBackend {
  readonly guestOffloads: Readonly<NetOffloads>;
  readonly hostOffloads: Readonly<NetOffloads>;
  readonly maxBuffers: number;
  /** frames (header first) waiting for the device to read them */
  readonly toGuest: Uint8Array[] = [];
  /** frames (header first) the device wrote, copied */
  readonly fromGuest: Uint8Array[] = [];
  /** the buffers of the last writev, as the device passed them */
  lastWrite: readonly Uint8Array[] = [];
  /** while false, writev answers -1 (the tap's EAGAIN) */
  acceptsWrites = true;
  /** thrown by every readv / writev while set */
  readError: Error | undefined;
  writeError: Error | undefined;
  /** every setOffloads(), in order */
  readonly offloadCalls: NetOffloads[] = [];
  interest = { read: false, write: false };
  reads = 0;
  writes = 0;
  handler: NetBackendHandler | undefined;

  constructor(options: FakeNetBackendOptions = {}) {
    this.guestOffloads = options.guestOffloads ?? ALL_OFFLOADS;
    this.hostOffloads = options.hostOffloads ?? ALL_OFFLOADS;
    this.maxBuffers = options.maxBuffers ?? 1024;
  }

  get offloads(): NetOffloads {
    return this.offloadCalls.at(-1) ?? { ...NO_OFFLOADS };
  }

  readv(buffers: readonly Uint8Array[]): number {
    this.reads++;
    if (this.readError) throw this.readError;
    const frame = this.toGuest.shift();
    if (frame === undefined) return -1;
    let done = 0;
    for (const b of buffers) {
      if (done === frame.length) break;
      const n = Math.min(b.length, frame.length - done);
      b.set(frame.subarray(done, done + n));
      done += n;
    }
    return done;
  }

  writev(buffers: readonly Uint8Array[]): number {
    this.writes++;
    if (this.writeError) throw this.writeError;
    if (!this.acceptsWrites) return -1;
    this.lastWrite = [...buffers];
    const total = buffers.reduce((n, b) => n + b.length, 0);
    const frame = new Uint8Array(total);
    let at = 0;
    for (const b of buffers) {
      frame.set(b, at);
      at += b.length;
    }
    this.fromGuest.push(frame);
    return total;
  }

  setOffloads(offloads: Readonly<NetOffloads>): void {
    this.offloadCalls.push({ ...offloads });
  }

  attach(handler: NetBackendHandler): void {
    this.handler = handler;
  }

  detach(): void {
    this.interest = { read: false, write: false };
    this.handler = undefined;
  }

  closed = false;
  close(): void {
    this.detach();
    this.closed = true;
  }

  setInterest(read: boolean, write: boolean): void {
    this.interest = { read, write };
  }

  /** One turn of the loop: the callbacks a level-triggered watch would make now. Returns whether any came. */
  poll(): boolean {
    const h = this.handler;
    let any = false;
    if (h && this.interest.write && this.acceptsWrites) {
      h.writable();
      any = true;
    }
    if (h && this.interest.read && this.toGuest.length > 0) {
      h.readable();
      any = true;
    }
    return any;
  }

  /** Turns the loop until nothing is ready, at most `turns` times; returns the turns taken. */
  drain(turns = 10000): number {
    let n = 0;
    while (n < turns && this.poll()) n++;
    return n;
  }
}
