/**
 * A raw disk's I/O through io_uring(7): the device thread writes submission queue entries
 * straight into the ring's mapping, makes one `io_uring_enter` per batch (the requests of one
 * turn of the event loop), and reads completions straight out of the completion ring. No
 * thread of ours is involved:
 *
 * - a read or write of up to URING_INLINE_MAX bytes whose data is in the host page cache
 *   completes inside that io_uring_enter (the kernel tries it without blocking first), so the
 *   guest's request is answered in the same turn that took it — no hand-off at all;
 * - larger ones are marked IOSQE_ASYNC and run on the kernel's io-wq workers, several at once,
 *   so big copies neither block the device thread nor queue behind each other; so does
 *   anything that would block (a page-cache miss, fdatasync, fallocate);
 * - the ring's eventfd (IORING_REGISTER_EVENTFD), watched on the device thread's loop, says
 *   when completions arrived later.
 *
 * Requests are the backend's (disk/raw.ts): READ and WRITE (IORING_OP_READ/WRITE for one
 * segment, READV/WRITEV with an iovec array otherwise, in chunks of UIO_MAXIOV), FLUSH
 * (FSYNC with DATASYNC, IOSQE_IO_DRAIN: after everything submitted before it), DISCARD and
 * WRITE_ZEROES (FALLOCATE per range; zeros written from a zero buffer where the file system
 * has no FALLOC_FL_ZERO_RANGE), and IO_OP_SYNC (an fdatasync once the data is written). Short
 * transfers are finished with further SQEs; 0 bytes before the end (the image shrank) is EIO.
 *
 * Guest RAM is named by host address (the mapping's base + the segment's offset), so every
 * segment is checked against the mapping's size here, again, before its address goes to the
 * kernel: a segment outside guest RAM fails with EFAULT and is never submitted.
 *
 * iovec arrays live in a small arena of our own: with IORING_FEAT_SUBMIT_STABLE the kernel
 * has copied them once io_uring_enter returns, so the arena is reused batch after batch.
 */
import * as kvm from '../../../kvm.js';
import { EBUSY, EINTR, ETIME, setIovec, Uring, URING as C, type SqeFields } from '../uring.js';
import {
  EFAULT,
  EIO,
  EOPNOTSUPP,
  IO_OP_DISCARD,
  IO_OP_FLUSH,
  IO_OP_READ,
  IO_OP_SYNC,
  IO_OP_WRITE,
  IO_OP_WRITE_ZEROES,
  IO_ZERO_CHUNK,
} from './io-protocol.js';

/** Reads and writes up to this size are tried inline (page-cache hits complete in io_uring_enter). */
export const URING_INLINE_MAX = 128 * 1024;
const ARENA_IOVECS = 4096;

// What an SQE is for: the high word of its user_data is KIND << 20 | index.
const K_DATA = 0; // index: chunk of a READ/WRITE
const K_FSYNC = 1; // FLUSH, or the fdatasync after a write-through write
const K_RANGE = 2; // index: range of a DISCARD/WRITE_ZEROES (fallocate)
const K_ZEROS = 3; // index: range being zero-filled by writes
const INDEX_BITS = 20;
const INDEX_MASK = (1 << INDEX_BITS) - 1;

export interface UringIoOptions {
  /** the image */
  fd: number;
  /** GuestRam.address and size of the mapping segments point into */
  ramAddress: bigint;
  ramSize: number;
  /** tags are 0..tags-1 */
  tags: number;
  maxSegments: number;
  /** completions may be waiting: call deliver() (on the device thread, from the loop) */
  onReady: () => void;
}

export class UringIo {
  readonly #fd: number;
  readonly #ring: Uring;
  readonly #ramBase: number;
  readonly #ramSize: number;
  readonly #maxSegments: number;
  readonly #onReady: () => void;

  readonly #arena: { buffer: ArrayBuffer; address: bigint };
  readonly #arenaU32: Uint32Array;
  readonly #arenaBase: number;
  #arenaUsed = 0;
  #zeros: { buffer: ArrayBuffer; address: bigint } | undefined;
  #noZeroRange = false;

  // Per tag: the request and its progress.
  readonly #segs: Float64Array[];
  readonly #op: Int32Array;
  readonly #offset: Float64Array;
  readonly #nseg: Int32Array;
  readonly #parts: Int32Array;
  readonly #result: Float64Array;
  readonly #err: Int32Array;
  readonly #busy: Uint8Array;
  /** bytes done so far of a chunk or zero-filled range that needed more than one SQE, by tag·2^20 + index */
  readonly #progress = new Map<number, number>();
  /** finished requests not yet delivered: tag, result pairs */
  #finished: number[] = [];
  #active = 0;
  #scheduled = false;
  #dead = false;
  #closed = false;

  /**
   * Sets an io_uring up for a disk, or says why it cannot (no io_uring in this kernel, or
   * filtered by a seccomp policy, or too old: see Uring.open): the caller then
   * uses its I/O thread instead.
   */
  static open(options: UringIoOptions): UringIo | string {
    const entries = 2 ** Math.ceil(Math.log2(Math.min(4096, Math.max(64, options.tags * 2))));
    return Uring.openFor(entries, entries * 4, (ring) => new UringIo(options, ring));
  }

  private constructor(o: UringIoOptions, ring: Uring) {
    this.#ring = ring;
    this.#fd = o.fd;
    // Host addresses of user mappings are below 2^47: exact as Numbers.
    this.#ramBase = Number(o.ramAddress);
    this.#ramSize = o.ramSize;
    this.#maxSegments = o.maxSegments;
    this.#onReady = o.onReady;
    this.#arena = kvm.mmapAnonymous(ARENA_IOVECS * C.IOVEC_SIZE);
    this.#arenaU32 = new Uint32Array(this.#arena.buffer);
    this.#arenaBase = Number(this.#arena.address);

    const tags = o.tags;
    const segs = new Float64Array(2 * o.maxSegments * tags);
    this.#segs = Array.from({ length: tags }, (_, t) => segs.subarray(t * 2 * o.maxSegments, (t + 1) * 2 * o.maxSegments));
    this.#op = new Int32Array(tags);
    this.#offset = new Float64Array(tags);
    this.#nseg = new Int32Array(tags);
    this.#parts = new Int32Array(tags);
    this.#result = new Float64Array(tags);
    this.#err = new Int32Array(tags);
    this.#busy = new Uint8Array(tags);
    ring.watch(() => this.#onReady());
  }

  /** requests started and not yet delivered */
  get active(): number {
    return this.#active + this.#finished.length / 2;
  }

  segments(tag: number): Float64Array {
    return this.#segs[tag]!;
  }

  setRef(on: boolean): void {
    this.#ring.setRef(on);
  }

  /** Starts request `tag` (its segments filled): the SQEs go to the kernel at the end of this turn. */
  submit(tag: number, op: number, offset: number, nseg: number): void {
    this.#busy[tag] = 1;
    this.#active++;
    this.#op[tag] = op;
    this.#offset[tag] = offset;
    this.#nseg[tag] = nseg;
    this.#parts[tag] = 0;
    this.#err[tag] = 0;
    this.#result[tag] = 0;
    if (this.#dead) {
      this.#fail(tag, EIO);
      this.#partDone(tag);
      this.#schedule();
      return;
    }
    const kind = op & 0xff;
    switch (kind) {
      case IO_OP_READ:
      case IO_OP_WRITE:
        this.#startData(tag, kind === IO_OP_WRITE, offset, nseg);
        break;
      case IO_OP_FLUSH:
        this.#fsync(tag, true);
        break;
      case IO_OP_DISCARD:
      case IO_OP_WRITE_ZEROES:
        this.#startRanges(tag, kind === IO_OP_WRITE_ZEROES, nseg);
        break;
      default:
        this.#fail(tag, EIO);
    }
    if (this.#parts[tag] === 0) this.#partDone(tag);
    this.#schedule();
  }

  /** Takes the completions that arrived and hands each finished request to `done`. Returns how many. */
  deliver(done: (tag: number, result: number) => void): number {
    this.#reap();
    const f = this.#finished;
    if (f.length === 0) return 0;
    this.#finished = [];
    for (let i = 0; i < f.length; i += 2) done(f[i]!, f[i + 1]!);
    return f.length / 2;
  }

  /** Blocks until nothing is in flight or `timeoutMs` passed (finished requests still wait for deliver()). */
  drainSync(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      this.#enter();
      this.#reap();
      if (this.#active === 0 || this.#dead) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const r = this.#ring.wait(left);
      if (r < 0 && r !== -ETIME && r !== -EINTR && r !== -EBUSY) {
        this.#die();
        return true;
      }
    }
  }

  /** Releases the ring (nothing may be in flight: the caller drained it). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ring.close();
  }

  // ---- submission ----

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(this.#flush);
  }

  /** End of the turn: everything queued goes to the kernel, and what completed inline is delivered. */
  readonly #flush = (): void => {
    this.#scheduled = false;
    if (this.#closed) return;
    const submitted = this.#ring.unsubmitted;
    this.#enter();
    // Inline completions signalled the eventfd too: clear it first, then look (a completion
    // after the read signals it again, so none is missed).
    if (submitted > 0) this.#ring.clearSignal();
    this.#reap();
    if (this.#finished.length > 0) this.#onReady();
  };

  /** Submits the queued SQEs. */
  #enter(): void {
    if (this.#dead) return;
    if (this.#ring.submit(this.#reapFn) < 0) return this.#die();
    if (this.#ring.unsubmitted === 0) this.#arenaUsed = 0;
  }

  readonly #reapFn = (): void => this.#reap();

  /** Queues one SQE for `tag`; false (and the tag fails with EIO) when the ring is full. */
  #queue(tag: number, kind: number, index: number, opcode: number, flags: number, off: number, addr: number, len: number, opFlags: number): boolean {
    const f = this.#sqe;
    f.opcode = opcode;
    f.flags = flags;
    f.fd = this.#fd;
    f.off = off;
    f.addr = addr;
    f.len = len;
    f.opFlags = opFlags;
    f.tag = tag;
    f.kind = (kind << INDEX_BITS) | index;
    if (!this.#ring.queue(f)) {
      this.#fail(tag, EIO);
      return false;
    }
    this.#parts[tag]!++;
    return true;
  }

  readonly #sqe: SqeFields = { opcode: 0, flags: 0, fd: 0, off: 0, addr: 0, len: 0, opFlags: 0, tag: 0, kind: 0 };

  #startData(tag: number, write: boolean, offset: number, nseg: number): void {
    const segs = this.#segs[tag]!;
    if (nseg < 0 || nseg > this.#maxSegments) return this.#fail(tag, EIO);
    let total = 0;
    for (let i = 0; i < nseg; i++) {
      const off = segs[2 * i]!;
      const len = segs[2 * i + 1]!;
      // The device checked these against guest RAM; the kernel gets addresses, so check again.
      if (!(Number.isInteger(off) && Number.isInteger(len) && off >= 0 && len >= 0 && off + len <= this.#ramSize)) return this.#fail(tag, EFAULT);
      total += len;
    }
    if (!(Number.isInteger(offset) && offset >= 0)) return this.#fail(tag, EIO);
    this.#result[tag] = total;
    const flags = total > URING_INLINE_MAX ? C.IOSQE_ASYNC : 0;
    let fileOff = offset;
    for (let c = 0, first = 0; first < nseg; c++, first += C.UIO_MAXIOV) {
      const count = Math.min(C.UIO_MAXIOV, nseg - first);
      const bytes = this.#chunkBytes(segs, first, count);
      if (bytes > 0 && !this.#queueChunk(tag, write, c, first, count, fileOff, 0, flags)) return;
      fileOff += bytes;
    }
  }

  #chunkBytes(segs: Float64Array, first: number, count: number): number {
    let bytes = 0;
    for (let i = first; i < first + count; i++) bytes += segs[2 * i + 1]!;
    return bytes;
  }

  /** Queues segments [first, first+count) of the tag, `skip` bytes in (a short transfer's rest). */
  #queueChunk(tag: number, write: boolean, chunk: number, first: number, count: number, fileOff: number, skip: number, flags: number): boolean {
    const segs = this.#segs[tag]!;
    // Skip whole segments already done.
    let i = first;
    const end = first + count;
    while (i < end && skip >= segs[2 * i + 1]!) skip -= segs[2 * i++ + 1]!;
    if (i === end) return true;
    if (end - i === 1) {
      const addr = this.#ramBase + segs[2 * i]! + skip;
      const len = segs[2 * i + 1]! - skip;
      return this.#queue(tag, K_DATA, chunk, write ? C.IORING_OP_WRITE : C.IORING_OP_READ, flags, fileOff, addr, len, 0);
    }
    const n = end - i;
    if (this.#arenaUsed + n > ARENA_IOVECS) {
      this.#enter();
      if (this.#ring.unsubmitted !== 0) {
        this.#fail(tag, EIO);
        return false;
      }
    }
    const at = this.#arenaUsed;
    for (let k = 0; k < n; k++, i++) {
      const addr = this.#ramBase + segs[2 * i]! + (k === 0 ? skip : 0);
      const len = segs[2 * i + 1]! - (k === 0 ? skip : 0);
      setIovec(this.#arenaU32, at + k, addr, len);
    }
    this.#arenaUsed += n;
    return this.#queue(tag, K_DATA, chunk, write ? C.IORING_OP_WRITEV : C.IORING_OP_READV, flags, fileOff, this.#arenaBase + at * C.IOVEC_SIZE, n, 0);
  }

  #fsync(tag: number, drain: boolean): void {
    this.#queue(tag, K_FSYNC, 0, C.IORING_OP_FSYNC, drain ? C.IOSQE_IO_DRAIN : 0, 0, 0, 0, C.IORING_FSYNC_DATASYNC);
  }

  #startRanges(tag: number, zero: boolean, nseg: number): void {
    const segs = this.#segs[tag]!;
    if (nseg < 0 || nseg > this.#maxSegments) return this.#fail(tag, EIO);
    let total = 0;
    for (let i = 0; i < nseg; i++) total += segs[2 * i + 1]!;
    this.#result[tag] = total;
    for (let i = 0; i < nseg; i++) {
      const off = segs[2 * i]!;
      const len = segs[2 * i + 1]!;
      if (len <= 0) continue;
      if (zero && this.#noZeroRange) {
        if (!this.#queueZeros(tag, i, 0)) return;
        continue;
      }
      const mode = zero ? kvm.constants.FALLOC_FL_ZERO_RANGE | kvm.constants.FALLOC_FL_KEEP_SIZE : kvm.constants.FALLOC_FL_PUNCH_HOLE | kvm.constants.FALLOC_FL_KEEP_SIZE;
      // FALLOCATE takes its length in `addr` and its mode in `len`.
      if (!this.#queue(tag, K_RANGE, i, C.IORING_OP_FALLOCATE, 0, off, len, mode, 0)) return;
    }
  }

  /** The next write of zeros into range `index` of the tag, `done` bytes in. */
  #queueZeros(tag: number, index: number, done: number): boolean {
    this.#zeros ??= kvm.mmapAnonymous(IO_ZERO_CHUNK);
    const segs = this.#segs[tag]!;
    const len = Math.min(IO_ZERO_CHUNK, segs[2 * index + 1]! - done);
    return this.#queue(tag, K_ZEROS, index, C.IORING_OP_WRITE, 0, segs[2 * index]! + done, Number(this.#zeros.address), len, 0);
  }

  // ---- completion ----

  #reap(): void {
    this.#ring.reap(this.#cqe);
  }

  readonly #cqe = (tag: number, hi: number, res: number): void => this.#completion(tag, hi >>> INDEX_BITS, hi & INDEX_MASK, res);

  #completion(tag: number, kind: number, index: number, res: number): void {
    if (this.#busy[tag] !== 1) return;
    this.#parts[tag]!--;
    switch (kind) {
      case K_DATA: {
        if (res < 0) {
          this.#fail(tag, -res);
          break;
        }
        const write = (this.#op[tag]! & 0xff) === IO_OP_WRITE;
        const segs = this.#segs[tag]!;
        const nseg = this.#nseg[tag]!;
        const first = index * C.UIO_MAXIOV;
        const count = Math.min(C.UIO_MAXIOV, nseg - first);
        const bytes = this.#chunkBytes(segs, first, count);
        const key = tag * (INDEX_MASK + 1) + index;
        const done = (this.#progress.get(key) ?? 0) + res;
        if (done >= bytes) {
          this.#progress.delete(key);
          break;
        }
        // Short: 0 means the end of the file (the image shrank); otherwise queue the rest.
        if (res === 0 || this.#err[tag] !== 0) {
          this.#progress.delete(key);
          this.#fail(tag, EIO);
          break;
        }
        this.#progress.set(key, done);
        let chunkOff = this.#offset[tag]!;
        for (let c = 0; c < index; c++) chunkOff += this.#chunkBytes(segs, c * C.UIO_MAXIOV, C.UIO_MAXIOV);
        this.#queueChunk(tag, write, index, first, count, chunkOff + done, done, 0);
        this.#schedule();
        break;
      }
      case K_FSYNC:
        if (res < 0) this.#fail(tag, -res);
        break;
      case K_RANGE:
        if (res === -EOPNOTSUPP) {
          if ((this.#op[tag]! & 0xff) === IO_OP_DISCARD) break; // deallocation is a hint (§5.2.6.2 MAY)
          // No FALLOC_FL_ZERO_RANGE here: write zeros from now on.
          this.#noZeroRange = true;
          if (this.#err[tag] === 0 && this.#queueZeros(tag, index, 0)) this.#schedule();
          break;
        }
        if (res < 0) this.#fail(tag, -res);
        break;
      case K_ZEROS: {
        const key = tag * (INDEX_MASK + 1) + index;
        if (res <= 0) {
          this.#progress.delete(key);
          this.#fail(tag, res < 0 ? -res : EIO);
          break;
        }
        const done = (this.#progress.get(key) ?? 0) + res;
        if (done >= this.#segs[tag]![2 * index + 1]! || this.#err[tag] !== 0) {
          this.#progress.delete(key);
          break;
        }
        this.#progress.set(key, done);
        if (this.#queueZeros(tag, index, done)) this.#schedule();
        break;
      }
    }
    if (this.#parts[tag] === 0) this.#partDone(tag);
  }

  /** Every SQE of the tag's current phase completed: the fdatasync of a write-through request, or the end. */
  #partDone(tag: number): void {
    const op = this.#op[tag]!;
    if ((op & IO_OP_SYNC) !== 0 && this.#err[tag] === 0) {
      this.#op[tag] = op & ~IO_OP_SYNC;
      this.#fsync(tag, false);
      if (this.#parts[tag]! > 0) {
        this.#schedule();
        return;
      }
    }
    this.#busy[tag] = 0;
    this.#active--;
    this.#finished.push(tag, this.#err[tag] !== 0 ? -this.#err[tag]! : this.#result[tag]!);
  }

  #fail(tag: number, errno: number): void {
    if (this.#err[tag] === 0) this.#err[tag] = errno;
  }

  /** The ring is unusable (a failed io_uring_enter that is not a retry): what is out fails with EIO. */
  #die(): void {
    this.#dead = true;
    for (let tag = 0; tag < this.#busy.length; tag++) {
      if (this.#busy[tag] !== 1) continue;
      this.#fail(tag, EIO);
      this.#parts[tag] = 0;
      this.#op[tag] = this.#op[tag]! & ~IO_OP_SYNC;
      this.#partDone(tag);
    }
    this.#onReady();
  }
}
