/**
 * An in-memory NetBackend for tests: frames queued for the guest are read by the device one
 * per readv, as from a tap (cut to the buffers' size when longer); frames the device writes
 * are kept in order. Readiness is delivered when the test turns the "loop" with `poll()`,
 * level-triggered like the tap's watch: readable while frames wait, writable while writes
 * are accepted, and only for what the device said it is interested in.
 */
import { NO_OFFLOADS, type NetBackend, type NetBackendHandler, type NetOffloads, type NetRxRing, type NetTxRing } from './backend.js';

export const ALL_OFFLOADS: Readonly<NetOffloads> = Object.freeze({ csum: true, tso4: true, tso6: true, ecn: true, ufo: true });

export interface FakeNetBackendOptions {
  guestOffloads?: NetOffloads;
  hostOffloads?: NetOffloads;
  maxBuffers?: number;
  /** give the backend a transmit ring (FakeTxRing) */
  txRing?: boolean;
  /** give the backend a receive ring (FakeRxRing) */
  rxRing?: boolean;
}

/**
 * A receive ring in memory: each queued chain takes the next frame of its backend's
 * `toGuest` (cut to the chain's size, plus the spare byte that tells a longer frame), in
 * queue order. `gapAt` makes the read of that position find nothing even though frames wait,
 * as when a frame arrives while the batch runs.
 */
export class FakeRxRing implements NetRxRing {
  capacity = 64;
  gapAt: number | undefined;
  flushes = 0;
  readonly #queued: { token: number; buffers: readonly Uint8Array[] }[] = [];

  constructor(readonly backend: FakeNetBackend) {}

  queue(token: number, buffers: readonly Uint8Array[]): boolean {
    if (this.#queued.length === this.capacity) return false;
    this.#queued.push({ token, buffers: [...buffers] });
    return true;
  }

  flush(done: (token: number, bytes: number) => void): number {
    this.flushes++;
    let n = 0;
    for (const [slot, q] of this.#queued.splice(0).entries()) {
      if (slot === this.gapAt) continue;
      const frame = this.backend.toGuest.shift();
      if (frame === undefined) continue;
      let at = 0;
      for (const b of q.buffers) {
        const len = Math.min(b.length, frame.length - at);
        b.set(frame.subarray(at, at + len));
        at += len;
      }
      done(q.token, Math.min(frame.length, at + 1));
      n++;
    }
    return n;
  }
}

/**
 * A transmit ring in memory: queued packets are copied into `fromGuest` of its backend when
 * flushed — unless `holdBack` is set, which makes the flush leave them in flight until the
 * test calls `complete()` (the tap was full), as the kernel would finish them later.
 */
export class FakeTxRing implements NetTxRing {
  onLateDone: (token: number, result: number) => void = () => {};
  /** packets per batch */
  capacity = 4;
  /** flush() leaves packets in flight */
  holdBack = false;
  /** the result flush gives every packet (bytes when undefined) */
  result: number | undefined;
  /** flushes that wrote something */
  flushes = 0;
  readonly #queued: { token: number; buffers: Uint8Array[] }[] = [];
  readonly #inFlight: { token: number; buffers: Uint8Array[] }[] = [];

  constructor(readonly backend: FakeNetBackend) {}

  get inFlight(): number {
    return this.#inFlight.length;
  }

  /** tokens queued and not flushed */
  get queued(): number[] {
    return this.#queued.map((q) => q.token);
  }

  queue(token: number, buffers: readonly Uint8Array[]): boolean {
    if (this.#inFlight.length > 0 || this.#queued.length === this.capacity) return false;
    // The header is the ring's copy; the frame's bytes are read when the packet is written
    // (flush), as the kernel does.
    this.#queued.push({ token, buffers: buffers.map((b, i) => (i === 0 ? b.slice() : b)) });
    return true;
  }

  flush(done: (token: number, result: number) => void): number {
    const batch = this.#queued.splice(0);
    if (batch.length > 0) this.flushes++;
    if (this.holdBack) {
      this.#inFlight.push(...batch);
      return this.#inFlight.length;
    }
    for (const p of batch) {
      const frame = concat(p.buffers);
      this.backend.fromGuest.push(frame);
      done(p.token, this.result ?? frame.length);
    }
    return 0;
  }

  /** The packets held back are written now, reported through onLateDone. */
  complete(): void {
    for (const p of this.#inFlight.splice(0)) {
      const frame = concat(p.buffers);
      this.backend.fromGuest.push(frame);
      this.onLateDone(p.token, this.result ?? frame.length);
    }
  }

  drainSync(): boolean {
    return this.#inFlight.length === 0;
  }
}

function concat(buffers: readonly Uint8Array[]): Uint8Array {
  const frame = new Uint8Array(buffers.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of buffers) {
    frame.set(b, at);
    at += b.length;
  }
  return frame;
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

  readonly txRing: FakeTxRing | undefined;
  readonly rxRing: FakeRxRing | undefined;

  constructor(options: FakeNetBackendOptions = {}) {
    this.guestOffloads = options.guestOffloads ?? ALL_OFFLOADS;
    this.hostOffloads = options.hostOffloads ?? ALL_OFFLOADS;
    this.maxBuffers = options.maxBuffers ?? 1024;
    this.txRing = options.txRing ? new FakeTxRing(this) : undefined;
    this.rxRing = options.rxRing ? new FakeRxRing(this) : undefined;
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
