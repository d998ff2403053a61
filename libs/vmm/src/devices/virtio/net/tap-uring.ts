/**
 * A tap's transmit ring: packets go to the tap as io_uring WRITEV requests, a turn's worth
 * with one `io_uring_enter` instead of one writev(2) each. A tap write does not block (its
 * send buffer is unlimited unless someone set TUNSETSNDBUF), so each completes inside that
 * call. When the tap cannot take a packet, the kernel either waits for room itself (io_uring
 * polls the file) or — for a non-blocking fd, on kernels that honour O_NONBLOCK there —
 * completes the write with EAGAIN, and then the ring polls the tap for POLLOUT
 * (IORING_OP_POLL_ADD) and writes the packets that waited again. Either way they come back
 * later, through the ring's eventfd (`onLateDone`), and possibly in another order than they
 * were queued: the kernel finishes writes that waited in the order they wake up. (Requests
 * are not linked, which would keep the order at ~0.3 µs per packet, for a case that needs
 * a limited send buffer to happen at all.)
 *
 * A packet's iovecs are its header, copied into a slot of this ring's own memory, and its
 * frame buffers, left in guest RAM and named by host address (the ArrayBuffer's address plus
 * the view's offset: views the device took from GuestMemory, so already bounds-checked). The
 * kernel copies iovec arrays when it takes a request (IORING_FEAT_SUBMIT_STABLE), but reads
 * the bytes when it writes the packet; and a packet that must be written again needs its
 * iovecs again. So slots and iovecs are reused only once nothing is in flight — and nothing
 * is queued while something is (`queue` says no: the device waits for `onLateDone`).
 */
import * as kvm from '../../../kvm.js';
import { EAGAIN, HostAddresses, setIovec, Uring, URING as C, type SqeFields } from '../uring.js';
import type { NetRxRing, NetTxRing } from './backend.js';

const HEADER_SLOT = 16;
const EIO = 5;
/** user_data high word of the POLL_ADD that waits for room */
const POLL_KIND = 0xffffffff;

// Slot states.
const FREE = 0;
const WRITING = 1;
/** its write found the tap full: written again when the tap has room */
const WAITING = 2;

export interface TapTxRingOptions {
  /** packets per batch (and SQEs in the ring) */
  packets?: number;
  /** iovecs per batch: header and frame buffers of every packet */
  iovecs?: number;
}

export class TapTxRing implements NetTxRing {
  onLateDone: (token: number, result: number) => void = () => {};

  readonly #ring: Uring;
  readonly #maxPackets: number;
  readonly #maxIovecs: number;
  readonly #mem: { buffer: ArrayBuffer; address: bigint };
  readonly #memBase: number;
  readonly #hdr: Uint8Array;
  readonly #iov: Uint32Array;
  readonly #iovBase: number;
  readonly #addresses = new HostAddresses();
  readonly #sqe: SqeFields = { opcode: C.IORING_OP_WRITEV, flags: 0, fd: 0, off: -1, addr: 0, len: 0, opFlags: 0, tag: 0, kind: 0 };
  readonly #pollSqe: SqeFields = { opcode: C.IORING_OP_POLL_ADD, flags: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: C.POLLOUT, tag: 0, kind: POLL_KIND };
  // Per slot: the packet's token, state and iovecs.
  readonly #token: Float64Array;
  readonly #state: Uint8Array;
  readonly #iovFirst: Uint32Array;
  readonly #iovCount: Uint32Array;
  #queued = 0;
  #iovUsed = 0;
  #inFlight = 0;
  #waiting = 0;
  #polling = false;
  #done: ((token: number, result: number) => void) | undefined;
  #dead = false;

  /** A ring for the tap `fd`, or why there is none (see Uring.open). */
  static open(fd: number, options: TapTxRingOptions = {}): TapTxRing | string {
    const packets = options.packets ?? 256;
    // One SQE per packet, and one more for the poll.
    return Uring.openFor(2 * packets, 4 * packets, (ring) => new TapTxRing(fd, ring, packets, options.iovecs ?? 4 * packets));
  }

  private constructor(fd: number, ring: Uring, packets: number, iovecs: number) {
    this.#ring = ring;
    this.#maxPackets = packets;
    this.#maxIovecs = iovecs;
    const hdrBytes = packets * HEADER_SLOT;
    const size = Math.ceil((hdrBytes + iovecs * C.IOVEC_SIZE) / 4096) * 4096;
    this.#mem = kvm.mmapAnonymous(size);
    this.#memBase = Number(this.#mem.address);
    this.#hdr = new Uint8Array(this.#mem.buffer, 0, hdrBytes);
    this.#iov = new Uint32Array(this.#mem.buffer, hdrBytes, iovecs * 4);
    this.#iovBase = this.#memBase + hdrBytes;
    this.#sqe.fd = fd;
    this.#pollSqe.fd = fd;
    this.#token = new Float64Array(packets);
    this.#state = new Uint8Array(packets);
    this.#iovFirst = new Uint32Array(packets);
    this.#iovCount = new Uint32Array(packets);
    ring.watch(() => this.#reap());
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** False once the ring failed: the backend then writes with writev again. */
  get usable(): boolean {
    return !this.#dead;
  }

  queue(token: number, buffers: readonly Uint8Array[]): boolean {
    const n = buffers.length;
    if (this.#dead || this.#inFlight > 0 || this.#queued === this.#maxPackets || this.#iovUsed + n > this.#maxIovecs || n === 0) return false;
    const header = buffers[0]!;
    if (header.length > HEADER_SLOT) return false;
    const slot = this.#queued;
    const first = this.#iovUsed;
    this.#hdr.set(header, slot * HEADER_SLOT);
    setIovec(this.#iov, first, this.#memBase + slot * HEADER_SLOT, header.length);
    for (let i = 1; i < n; i++) {
      const v = buffers[i]!;
      setIovec(this.#iov, first + i, this.#addresses.of(v.buffer as ArrayBuffer) + v.byteOffset, v.length);
    }
    this.#token[slot] = token;
    this.#iovFirst[slot] = first;
    this.#iovCount[slot] = n;
    if (!this.#write(slot)) return false;
    this.#state[slot] = WRITING;
    this.#iovUsed += n;
    this.#queued++;
    return true;
  }

  flush(done: (token: number, result: number) => void): number {
    if (this.#queued > 0) {
      this.#inFlight += this.#queued;
      this.#queued = 0;
      this.#done = done;
      if (this.#ring.submit(() => this.#reap()) < 0) {
        this.#die(done);
        return 0;
      }
      // What was written inline signalled the eventfd too: take the results, clear it, look again.
      this.#reap();
      this.#ring.clearSignal();
      this.#reap();
      this.#done = undefined;
    }
    this.#ring.setRef(this.#inFlight > 0);
    return this.#inFlight;
  }

  drainSync(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    while (this.#inFlight > 0 && !this.#dead) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      this.#ring.wait(left);
      this.#reap();
    }
    return this.#inFlight === 0;
  }

  /** Waits (up to a second) for what is in flight, then releases the ring. */
  close(): void {
    this.drainSync(1000);
    this.#ring.close();
    this.#dead = true;
  }

  /** Queues slot's WRITEV. */
  #write(slot: number): boolean {
    const f = this.#sqe;
    f.addr = this.#iovBase + this.#iovFirst[slot]! * C.IOVEC_SIZE;
    f.len = this.#iovCount[slot]!;
    f.tag = this.#token[slot]!;
    f.kind = slot;
    return this.#ring.queue(f);
  }

  #reap(): void {
    this.#ring.reap(this.#cqe);
    if (this.#inFlight === 0 && this.#queued === 0) {
      this.#iovUsed = 0;
      this.#ring.setRef(false);
    }
  }

  readonly #cqe = (token: number, slot: number, res: number): void => {
    if (slot === POLL_KIND) return this.#roomAgain();
    if (slot >= this.#maxPackets || this.#state[slot] !== WRITING || this.#token[slot] !== token) return;
    if (res === -EAGAIN) {
      this.#state[slot] = WAITING;
      this.#waiting++;
      if (!this.#polling) {
        this.#polling = this.#ring.queue(this.#pollSqe);
        if (this.#polling && this.#ring.submit() < 0) this.#die(this.#done ?? this.onLateDone);
      }
      return;
    }
    this.#state[slot] = FREE;
    this.#inFlight--;
    if (this.#done !== undefined) this.#done(token, res);
    else this.onLateDone(token, res);
  };

  /** The tap has room again: the packets that found it full are written again, in slot order. */
  #roomAgain(): void {
    this.#polling = false;
    for (let slot = 0; slot < this.#maxPackets && this.#waiting > 0; slot++) {
      if (this.#state[slot] !== WAITING) continue;
      this.#waiting--;
      if (!this.#write(slot)) {
        this.#die(this.#done ?? this.onLateDone);
        return;
      }
      this.#state[slot] = WRITING;
    }
    if (this.#ring.submit() < 0) this.#die(this.#done ?? this.onLateDone);
  }

  /** The ring cannot be entered any more: what was queued fails, and writev takes over. */
  #die(done: (token: number, result: number) => void): void {
    if (this.#dead) return;
    this.#dead = true;
    this.#inFlight = 0;
    this.#waiting = 0;
    this.#done = undefined;
    for (let slot = 0; slot < this.#maxPackets; slot++) {
      if (this.#state[slot] === FREE) continue;
      this.#state[slot] = FREE;
      done(this.#token[slot]!, -EIO);
    }
  }
}

/**
 * A tap's receive batch: one frame per chain of receive buffers, read by io_uring READV
 * requests with RWF_NOWAIT, a turn's worth with one `io_uring_enter` instead of a readv(2)
 * per frame. The reads run in order inside that call, each taking the next frame waiting in
 * the tap or completing with EAGAIN when there is none. (They cannot be linked so that the
 * first EAGAIN cancels the rest: io_uring breaks a link on any short read, and a frame is
 * always shorter than its buffers.) A frame that arrives while the batch runs can land after
 * a read that found none: `flush` reports where each landed, and the device moves such a
 * frame down into the first empty chain, so the frames fill the first chains with no gap and
 * the unfilled ones go back to the ring (the last it took).
 *
 * Each read ends with one spare byte of this ring's own memory, after the guest's buffers: a
 * read that fills it was a frame longer than the buffers (cut short by the tap).
 */
export class TapRxRing implements NetRxRing {
  readonly #ring: Uring;
  readonly #maxFrames: number;
  readonly #maxIovecs: number;
  readonly #mem: { buffer: ArrayBuffer; address: bigint };
  readonly #memBase: number;
  readonly #iov: Uint32Array;
  readonly #iovBase: number;
  readonly #addresses = new HostAddresses();
  readonly #sqe: SqeFields = { opcode: C.IORING_OP_READV, flags: 0, fd: 0, off: -1, addr: 0, len: 0, opFlags: C.RWF_NOWAIT, tag: 0, kind: 0 };
  readonly #token: Float64Array;
  readonly #result: Float64Array;
  #queued = 0;
  #iovUsed = 0;
  #got = 0;
  #dead = false;

  /** A ring for the tap `fd`, or why there is none (see Uring.open). */
  static open(fd: number, options: { frames?: number; iovecs?: number } = {}): TapRxRing | string {
    const frames = options.frames ?? 64;
    return Uring.openFor(frames, 2 * frames, (ring) => new TapRxRing(fd, ring, frames, options.iovecs ?? 8 * frames));
  }

  private constructor(fd: number, ring: Uring, frames: number, iovecs: number) {
    this.#ring = ring;
    this.#maxFrames = Math.min(frames, ring.entries);
    this.#maxIovecs = iovecs;
    // The spare bytes, then the iovecs.
    const spare = Math.ceil(this.#maxFrames / 16) * 16;
    const size = Math.ceil((spare + iovecs * C.IOVEC_SIZE) / 4096) * 4096;
    this.#mem = kvm.mmapAnonymous(size);
    this.#memBase = Number(this.#mem.address);
    this.#iov = new Uint32Array(this.#mem.buffer, spare, iovecs * 4);
    this.#iovBase = this.#memBase + spare;
    this.#sqe.fd = fd;
    this.#token = new Float64Array(this.#maxFrames);
    this.#result = new Float64Array(this.#maxFrames);
  }

  /** Reads at most this many frames per flush. */
  get capacity(): number {
    return this.#maxFrames;
  }

  get usable(): boolean {
    return !this.#dead;
  }

  queue(token: number, buffers: readonly Uint8Array[]): boolean {
    const n = buffers.length + 1;
    if (this.#dead || this.#queued === this.#maxFrames || this.#iovUsed + n > this.#maxIovecs) return false;
    const slot = this.#queued;
    const first = this.#iovUsed;
    for (let i = 0; i < buffers.length; i++) {
      const v = buffers[i]!;
      setIovec(this.#iov, first + i, this.#addresses.of(v.buffer as ArrayBuffer) + v.byteOffset, v.length);
    }
    setIovec(this.#iov, first + buffers.length, this.#memBase + slot, 1);
    const f = this.#sqe;
    f.addr = this.#iovBase + first * C.IOVEC_SIZE;
    f.len = n;
    f.tag = token;
    f.kind = slot;
    if (!this.#ring.queue(f)) return false;
    this.#token[slot] = token;
    this.#result[slot] = 0;
    this.#iovUsed += n;
    this.#queued++;
    return true;
  }

  /**
   * Reads into what is queued. `done(token, bytes)` comes for each read that got a frame, in
   * queue order (bytes may exceed the buffers by the spare byte: the frame was longer);
   * returns how many got one. A read that fails otherwise than EAGAIN (the tap is going
   * away) counts as none and retires the ring: the device goes back to readv, which reports it.
   */
  flush(done: (token: number, bytes: number) => void): number {
    const k = this.#queued;
    if (k === 0) return 0;
    this.#got = 0;
    const r = this.#ring.submit(() => this.#ring.reap(this.#cqe));
    this.#ring.reap(this.#cqe);
    // All k complete inside the enter (RWF_NOWAIT: none waits); make sure before going on,
    // since the kernel writes into the buffers until they do.
    if (this.#got < k && r >= 0) {
      const deadline = Date.now() + 1000;
      while (this.#got < k && Date.now() < deadline) {
        this.#ring.wait(deadline - Date.now());
        this.#ring.reap(this.#cqe);
      }
    }
    this.#queued = 0;
    this.#iovUsed = 0;
    // Reads the kernel has not finished still write into guest RAM: nothing can be handed
    // back then; this ring is done for (it never happens with RWF_NOWAIT).
    if (r < 0 || this.#got < k) {
      this.#dead = true;
      return 0;
    }
    let n = 0;
    for (let slot = 0; slot < k; slot++) {
      const res = this.#result[slot]!;
      if (res > 0) {
        done(this.#token[slot]!, res);
        n++;
      } else if (res !== -EAGAIN) {
        this.#dead = true;
      }
    }
    return n;
  }

  close(): void {
    this.#ring.close();
    this.#dead = true;
  }

  readonly #cqe = (_token: number, slot: number, res: number): void => {
    if (slot >= this.#maxFrames) return;
    this.#result[slot] = res;
    this.#got++;
  };
}
