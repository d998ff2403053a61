/**
 * One io_uring(7) instance, driven from the device thread: submission queue entries are
 * written straight into the ring's mapping (no N-API call per request), a batch goes to the
 * kernel with one `io_uring_enter`, and completions are read straight out of the completion
 * ring. An eventfd registered with the ring, watched on the thread's loop, says when
 * completions arrived after the enter that submitted them (work the kernel finished later,
 * on its own workers or when a file became ready).
 *
 * Used by the raw disk backend (`disk/uring-io.ts`) and the tap backend (`net/tap.ts`). The
 * users give the kernel host addresses (guest RAM, iovec arrays), so they check every range
 * before they queue it; this class only moves entries.
 *
 * Layouts and constants come from the addon (`ioUringConstants`, offsetof on the kernel's
 * uapi header): an SQE is 16 words, its user_data two (low = the user's tag, high = its
 * kind/index), a CQE four.
 */
import * as kvm from '../../kvm.js';

const C = kvm.ioUringConstants;
/** What every user needs from the kernel (5.11 and later have all three). */
const REQUIRED_FEATURES = C.IORING_FEAT_NODROP | C.IORING_FEAT_SUBMIT_STABLE | C.IORING_FEAT_EXT_ARG;
const TWO_32 = 0x100000000;
export const EINTR = 4;
export const EAGAIN = 11;
export const EBUSY = 16;
export const ETIME = 62;
export const ECANCELED = 125;

/** An IORING_OP_* code and its SQE fields (numbers below 2^53). */
export interface SqeFields {
  opcode: number;
  /** IOSQE_* */
  flags: number;
  fd: number;
  off: number;
  addr: number;
  len: number;
  /** rw_flags / fsync_flags / ... */
  opFlags: number;
  /** user_data, low word */
  tag: number;
  /** user_data, high word */
  kind: number;
}

export class Uring {
  readonly fd: number;
  readonly entries: number;
  /** the ring's mappings, held for as long as the ring is used (each unmapped when collected) */
  readonly mappings: kvm.IoUring;
  readonly #sq: Uint32Array;
  readonly #sqHead: number;
  readonly #sqTailIdx: number;
  readonly #sqMask: number;
  readonly #sqe: Uint32Array;
  readonly #cq: Uint32Array;
  readonly #cqI32: Int32Array;
  readonly #cqHeadIdx: number;
  readonly #cqTailIdx: number;
  readonly #cqMask: number;
  readonly #cqes: number;
  #sqTail: number;
  #unsubmitted = 0;
  #efd = -1;
  #watch: ReturnType<typeof kvm.watchFd> | undefined;
  #ref = false;
  #closed = false;

  /**
   * A ring of `entries` SQEs (a power of two) and `cqEntries` CQEs, or why there is none:
   * no io_uring in this kernel, io_uring refused (a seccomp filter, kernel.io_uring_disabled),
   * or a kernel without the features above.
   */
  static open(entries: number, cqEntries: number): Uring | string {
    let ring: kvm.IoUring;
    try {
      ring = kvm.ioUringSetup(entries, cqEntries);
    } catch (err) {
      return `io_uring_setup: ${(err as Error).message}`;
    }
    if ((ring.features & REQUIRED_FEATURES) !== REQUIRED_FEATURES) {
      kvm.closeFd(ring.fd);
      return `io_uring lacks NODROP, SUBMIT_STABLE or EXT_ARG (features 0x${ring.features.toString(16)})`;
    }
    return new Uring(ring);
  }

  /**
   * Opens a ring as `open` does and gives it to `make`, which builds the ring's user; or
   * says why there is none, closing the ring again when `make` throws.
   */
  static openFor<T>(entries: number, cqEntries: number, make: (ring: Uring) => T): T | string {
    const ring = Uring.open(entries, cqEntries);
    if (typeof ring === 'string') return ring;
    try {
      return make(ring);
    } catch (err) {
      ring.close();
      return `io_uring: ${(err as Error).message}`;
    }
  }

  private constructor(ring: kvm.IoUring) {
    this.mappings = ring;
    this.fd = ring.fd;
    this.#sq = new Uint32Array(ring.sq);
    this.#sqHead = ring.sqOff.head / 4;
    this.#sqTailIdx = ring.sqOff.tail / 4;
    this.#sqMask = this.#sq[ring.sqOff.ringMask / 4]!;
    this.entries = this.#sq[ring.sqOff.ringEntries / 4]!;
    this.#sqTail = this.#sq[this.#sqTailIdx]!;
    // SQE i always sits in ring slot i.
    const array = ring.sqOff.array / 4;
    for (let i = 0; i < this.entries; i++) this.#sq[array + i] = i;
    this.#sqe = new Uint32Array(ring.sqes);
    this.#cq = new Uint32Array(ring.cq);
    this.#cqI32 = new Int32Array(ring.cq);
    this.#cqHeadIdx = ring.cqOff.head / 4;
    this.#cqTailIdx = ring.cqOff.tail / 4;
    this.#cqMask = this.#cq[ring.cqOff.ringMask / 4]!;
    this.#cqes = ring.cqOff.cqes / 4;
  }

  /** SQEs queued and not yet taken by the kernel. */
  get unsubmitted(): number {
    return this.#unsubmitted;
  }

  /** Free SQE slots now (without submitting). */
  get room(): number {
    return this.entries - (this.#sqTail - Atomics.load(this.#sq, this.#sqHead));
  }

  /**
   * Queues one SQE; false when the ring is full even after submitting what is queued (the
   * kernel holds back: out of memory, or completions waiting to be reaped).
   */
  queue(f: SqeFields): boolean {
    if (this.room === 0) {
      this.submit();
      if (this.room === 0) return false;
    }
    const w = (this.#sqTail & this.#sqMask) * 16;
    const s = this.#sqe;
    s.fill(0, w, w + 16);
    s[w] = f.opcode | (f.flags << 8);
    s[w + 1] = f.fd;
    s[w + 2] = f.off >>> 0;
    s[w + 3] = Math.floor(f.off / TWO_32);
    s[w + 4] = f.addr >>> 0;
    s[w + 5] = Math.floor(f.addr / TWO_32);
    s[w + 6] = f.len >>> 0;
    s[w + 7] = f.opFlags >>> 0;
    s[w + 8] = f.tag >>> 0;
    s[w + 9] = f.kind >>> 0;
    this.#sqTail = (this.#sqTail + 1) >>> 0;
    Atomics.store(this.#sq, this.#sqTailIdx, this.#sqTail);
    this.#unsubmitted++;
    return true;
  }

  /**
   * Hands the queued SQEs to the kernel. Work that can finish without blocking (a read from
   * the page cache, a write to a tap) finishes inside this call: its CQE waits when it
   * returns. Returns 0, or -errno when the ring is unusable (EAGAIN/EBUSY/EINTR are retried,
   * reaping with `reap` in between; what still does not go stays queued for the next call).
   */
  submit(reap?: () => void): number {
    if (this.#unsubmitted === 0 || this.#closed) return 0;
    for (let tries = 0; tries < 3; tries++) {
      const r = kvm.ioUringEnter(this.fd, this.#unsubmitted, 0, 0);
      if (r >= 0) {
        this.#unsubmitted -= r;
        if (this.#unsubmitted === 0) return 0;
        continue;
      }
      if (r === -EINTR) continue;
      if (r === -EAGAIN || r === -EBUSY) {
        // Short of memory, or completions held in the kernel's overflow list: take them.
        reap?.();
        continue;
      }
      return r;
    }
    return 0;
  }

  /** Calls `cqe(tag, kind, res)` for each completion waiting; returns how many. */
  reap(cqe: (tag: number, kind: number, res: number) => void): number {
    const cq = this.#cq;
    let head = cq[this.#cqHeadIdx]!;
    const tail = Atomics.load(cq, this.#cqTailIdx);
    let n = 0;
    while (head !== tail) {
      const w = this.#cqes + (head & this.#cqMask) * 4;
      const tag = cq[w]!;
      const kind = cq[w + 1]!;
      const res = this.#cqI32[w + 2]!;
      head = (head + 1) >>> 0;
      // The slot is free for the kernel only once the head moves: move it before the
      // callback, which may queue and submit more.
      Atomics.store(cq, this.#cqHeadIdx, head);
      cqe(tag, kind, res);
      n++;
    }
    return n;
  }

  /** Blocks up to `timeoutMs` for a completion: 0, -ETIME, or another -errno. */
  wait(timeoutMs: number): number {
    return kvm.ioUringWait(this.fd, 1, Math.max(0, Math.ceil(timeoutMs)));
  }

  /**
   * Calls `onCompletions` on this thread's loop whenever completions may be waiting (an
   * eventfd the kernel signals for each one). Unref'd: call `setRef(true)` while requests
   * are out, so that they keep the process alive.
   */
  watch(onCompletions: () => void): void {
    this.#efd = kvm.eventfd();
    try {
      kvm.ioUringRegisterEventfd(this.fd, this.#efd);
      this.#watch = kvm.watchFd(this.#efd, 'r', () => {
        kvm.eventfdRead(this.#efd);
        onCompletions();
      });
    } catch (err) {
      kvm.closeFd(this.#efd);
      this.#efd = -1;
      throw err;
    }
    this.#watch.unref();
  }

  /**
   * After a submit whose completions were reaped in place: clears the eventfd they signalled,
   * so the loop does not wake for them. Reap again afterwards: a completion that lands between
   * the two is then either reaped or signals anew.
   */
  clearSignal(): void {
    if (this.#efd >= 0) kvm.eventfdRead(this.#efd);
  }

  setRef(on: boolean): void {
    if (on === this.#ref) return;
    this.#ref = on;
    if (on) this.#watch?.ref();
    else this.#watch?.unref();
  }

  /** Releases the ring. Nothing may be in flight: its memory could be written after this. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.close();
    if (this.#efd >= 0) kvm.closeFd(this.#efd);
    kvm.closeFd(this.fd);
  }
}

/** Writes an iovec (host address, length) at iovec index `i` of `words` (a Uint32Array). */
export function setIovec(words: Uint32Array, i: number, addr: number, len: number): void {
  const w = i * 4;
  words[w] = addr >>> 0;
  words[w + 1] = Math.floor(addr / TWO_32);
  words[w + 2] = len >>> 0;
  words[w + 3] = Math.floor(len / TWO_32);
}

/**
 * Host addresses of ArrayBuffers (guest RAM's chunks, mostly), looked up once per buffer:
 * a buffer's memory does not move while it lives.
 */
export class HostAddresses {
  readonly #addresses = new WeakMap<ArrayBuffer, number>();

  of(buffer: ArrayBuffer): number {
    let a = this.#addresses.get(buffer);
    if (a === undefined) {
      a = kvm.arrayBufferAddress(buffer);
      this.#addresses.set(buffer, a);
    }
    return a;
  }
}

export { C as URING };
