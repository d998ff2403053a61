/**
 * A raw disk image as a block backend: the image file's bytes are the disk's bytes.
 *
 * Cache mode: the image is opened O_RDWR (O_RDONLY for a read-only disk), without O_DIRECT,
 * so writes go through the host page cache and are durable once flushed — QEMU's default
 * `cache=writeback`. The device offers VIRTIO_BLK_F_FLUSH, a guest FLUSH becomes an
 * `fdatasync`, and `close()` flushes before it lets go of the file. A guest that does not
 * negotiate FLUSH gets write-through instead (the device asks for an fdatasync after every
 * write, virtio 1.2 §5.2.6.2).
 *
 * I/O never runs on the device thread's event loop nor on a vCPU thread: a worker_thread of
 * its own (`io-worker.ts`) runs each request with zero-copy `preadv`/`pwritev` between the
 * image and guest RAM, and `fdatasync`/`fallocate`, and reports completions through shared
 * memory (`io-protocol.ts`). The device thread submits with a few stores and learns of
 * completions through `Atomics.waitAsync`, so it never blocks — except in `drainSync()`,
 * which a device reset uses to make sure no request still writes into guest RAM.
 *
 * A request is identified by a tag the device chooses in 0..maxRequests-1 (so the number in
 * flight is bounded by construction); the device fills the tag's segment array, then submits,
 * and hears back through `onComplete` per request and `onBatch` per batch.
 */
import { closeSync, existsSync, fstatSync, openSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { VmmError } from '../../../errors.js';
import {
  EIO,
  IO_CTRL_COMP_TAIL,
  IO_CTRL_IDLE,
  IO_CTRL_READY,
  IO_CTRL_SEQ,
  IO_CTRL_STOP,
  IO_CTRL_SUB_TAIL,
  IO_CTRL_WORDS,
  IO_OP_FLUSH,
  IO_SLOT_NSEG,
  IO_SLOT_OFFSET,
  IO_SLOT_OP,
  IO_SLOT_RESULT,
  IO_SLOT_WORDS,
  type IoWorkerData,
} from './io-protocol.js';

export {
  IO_OP_DISCARD,
  IO_OP_FLUSH,
  IO_OP_READ,
  IO_OP_SYNC,
  IO_OP_WRITE,
  IO_OP_WRITE_ZEROES,
} from './io-protocol.js';

export const SECTOR_SIZE = 512;

/** What a block device needs from a disk backend (raw now; qcow2 later). */
export interface DiskBackend {
  /** the disk's size in bytes, a multiple of SECTOR_SIZE */
  readonly sizeBytes: number;
  readonly readOnly: boolean;
  /** the allocation unit of the storage underneath (st_blksize): the discard granularity */
  readonly blockSize: number;
  /** tags are 0..maxRequests-1 */
  readonly maxRequests: number;
  /** segments one request may carry */
  readonly maxSegments: number;
  /** requests submitted and not yet reaped */
  readonly inFlight: number;
  /** called for each request that completed (result: bytes ≥ 0, or -errno) */
  onComplete: (tag: number, result: number) => void;
  /** called after a batch of onComplete calls: the time to notify the guest once */
  onBatch: () => void;
  /**
   * Tag `tag`'s segments, `[a0, len0, a1, len1, ...]`, for the device to fill before submit:
   * host offsets into guest RAM for READ/WRITE, byte offsets in the disk for
   * DISCARD/WRITE_ZEROES.
   */
  segments(tag: number): Float64Array;
  /** Starts request `tag` (free: not in flight): `op` (IO_OP_*), byte `offset`, `nseg` segments. */
  submit(tag: number, op: number, offset: number, nseg: number): void;
  /** Delivers the completions waiting now (onComplete, then onBatch); returns how many. */
  poll(): number;
  /** Blocks until nothing is in flight or `timeoutMs` passed; true when drained. */
  drainSync(timeoutMs: number): boolean;
  /** fdatasync from the host side (after the requests already submitted); resolves with 0 or -errno */
  flush(): Promise<number>;
  /** Finishes what is in flight, flushes (writable disks), stops the I/O thread and closes the image. */
  close(): Promise<void>;
}

export interface RawDiskOptions {
  path: string;
  readOnly?: boolean;
  /** `GuestRam.address` of the guest RAM mapping (mmapGuestRam): the I/O thread views it */
  ramAddress: bigint;
  /** requests in flight at most (default 256, a virtio queue's worth) */
  maxRequests?: number;
  /** segments per request at most (default 254: a 256-entry queue less header and status) */
  maxSegments?: number;
}

export const RAW_DISK_DEFAULT_MAX_REQUESTS = 256;
export const RAW_DISK_DEFAULT_MAX_SEGMENTS = 254;

export interface RawDiskMetrics {
  /** requests submitted to the I/O thread */
  submitted: number;
  /** requests that completed with an error */
  failed: number;
  /** the I/O thread ended before it was asked to (its requests failed with EIO) */
  threadDied: number;
}

/** Host-internal requests (close()'s and flush()'s fdatasync) use the tag after the device's. */
const OWN_TAGS = 1;

export class RawDisk implements DiskBackend {
  readonly path: string;
  readonly readOnly: boolean;
  readonly sizeBytes: number;
  readonly blockSize: number;
  readonly maxRequests: number;
  readonly maxSegments: number;
  readonly metrics: RawDiskMetrics = { submitted: 0, failed: 0, threadDied: 0 };
  onComplete: (tag: number, result: number) => void = () => {};
  onBatch: () => void = () => {};

  readonly #fd: number;
  readonly #ctrl: Int32Array;
  readonly #rings: Int32Array;
  readonly #slots: Float64Array;
  readonly #segViews: Float64Array[];
  readonly #ringSize: number;
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #ownTag: number;
  #subTail = 0;
  #compHead = 0;
  #inFlight = 0;
  #armed = false;
  #wakeScheduled = false;
  #ref = false;
  /** tags in flight, for failing them if the thread dies */
  readonly #pending: Uint8Array;
  /** completions made up on this side (the thread died): tag, result pairs */
  #failedLocally: number[] = [];
  #dead = false;
  #closing: Promise<void> | undefined;
  #hostFlush: { resolve: (r: number) => void } | undefined;
  #hostFlushBusy: Promise<number> | undefined;

  constructor(options: RawDiskOptions) {
    const { path, ramAddress } = options;
    const readOnly = options.readOnly ?? false;
    const maxRequests = options.maxRequests ?? RAW_DISK_DEFAULT_MAX_REQUESTS;
    const maxSegments = options.maxSegments ?? RAW_DISK_DEFAULT_MAX_SEGMENTS;
    if (!Number.isInteger(maxRequests) || maxRequests < 1 || maxRequests > 4096) {
      throw new VmmError('INVALID_CONFIG', `disk ${path}: maxRequests must be 1..4096, not ${maxRequests}`);
    }
    if (!Number.isInteger(maxSegments) || maxSegments < 1 || maxSegments > 4096) {
      throw new VmmError('INVALID_CONFIG', `disk ${path}: maxSegments must be 1..4096, not ${maxSegments}`);
    }
    let fd: number;
    try {
      // O_RDWR / O_RDONLY, O_CLOEXEC (libuv adds it), no O_DIRECT: writeback caching.
      fd = openSync(path, readOnly ? 'r' : 'r+');
    } catch (err) {
      throw new VmmError('INVALID_CONFIG', `Cannot open disk image ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    try {
      const st = fstatSync(fd);
      if (!st.isFile()) throw new VmmError('INVALID_CONFIG', `Cannot use disk image ${JSON.stringify(path)}: not a regular file`);
      // A partial last sector cannot be addressed (capacity counts whole sectors).
      this.sizeBytes = Math.floor(st.size / SECTOR_SIZE) * SECTOR_SIZE;
      this.blockSize = st.blksize > 0 ? st.blksize : 4096;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    this.path = path;
    this.readOnly = readOnly;
    this.maxRequests = maxRequests;
    this.maxSegments = maxSegments;
    this.#fd = fd;
    const tags = maxRequests + OWN_TAGS;
    this.#ownTag = maxRequests;
    this.#ringSize = 2 ** Math.ceil(Math.log2(tags));
    const ctrl = new SharedArrayBuffer(4 * IO_CTRL_WORDS);
    const rings = new SharedArrayBuffer(4 * 2 * this.#ringSize);
    const slots = new SharedArrayBuffer(8 * IO_SLOT_WORDS * tags);
    const segments = new SharedArrayBuffer(8 * 2 * maxSegments * tags);
    this.#ctrl = new Int32Array(ctrl);
    this.#rings = new Int32Array(rings);
    this.#slots = new Float64Array(slots);
    const all = new Float64Array(segments);
    this.#segViews = Array.from({ length: tags }, (_, t) => all.subarray(t * 2 * maxSegments, (t + 1) * 2 * maxSegments));
    this.#pending = new Uint8Array(tags);

    this.#worker = startIoThread({
      kind: 'vmctl-disk-io',
      fd,
      ramAddress,
      ctrl,
      rings,
      slots,
      segments,
      ring: this.#ringSize,
      maxSegments,
    });
    // The thread keeps the process alive only while it has work (see #setRef).
    this.#worker.unref();
    this.#exited = new Promise((resolve) => {
      this.#worker.once('exit', () => {
        this.#threadEnded();
        resolve();
      });
    });
    // An error ends the thread ('exit' follows); its requests fail there.
    this.#worker.on('error', () => {});
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  /** True once the I/O thread runs (it boots its own JS engine: tens of ms). */
  get ready(): boolean {
    return Atomics.load(this.#ctrl, IO_CTRL_READY) === 1;
  }

  segments(tag: number): Float64Array {
    return this.#segViews[tag]!;
  }

  submit(tag: number, op: number, offset: number, nseg: number): void {
    this.#inFlight++;
    this.#pending[tag] = 1;
    this.metrics.submitted++;
    if (this.#dead) {
      this.#failLocally(tag);
      return;
    }
    const s = this.#slots;
    const base = tag * IO_SLOT_WORDS;
    s[base + IO_SLOT_OP] = op;
    s[base + IO_SLOT_OFFSET] = offset;
    s[base + IO_SLOT_NSEG] = nseg;
    s[base + IO_SLOT_RESULT] = 0;
    this.#rings[this.#subTail & (this.#ringSize - 1)] = tag;
    this.#subTail = (this.#subTail + 1) | 0;
    Atomics.store(this.#ctrl, IO_CTRL_SUB_TAIL, this.#subTail);
    // Waking the thread is a futex syscall, the dearest part of a submission: one per batch
    // (the requests submitted in this turn), and only if the thread sleeps. If it is awake,
    // it reads the tail again before it sleeps, and sees this request.
    if (!this.#wakeScheduled && Atomics.load(this.#ctrl, IO_CTRL_IDLE) === 1) {
      this.#wakeScheduled = true;
      queueMicrotask(this.#wakeIfIdle);
    }
    this.#setRef(true);
    this.#arm();
  }

  poll(): number {
    let n = 0;
    const tail = Atomics.load(this.#ctrl, IO_CTRL_COMP_TAIL);
    const mask = this.#ringSize - 1;
    while (this.#compHead !== tail) {
      const tag = this.#rings[this.#ringSize + (this.#compHead & mask)]!;
      this.#compHead = (this.#compHead + 1) | 0;
      n += this.#complete(tag, this.#slots[tag * IO_SLOT_WORDS + IO_SLOT_RESULT]!);
    }
    if (this.#failedLocally.length > 0) {
      const failed = this.#failedLocally;
      this.#failedLocally = [];
      for (let i = 0; i < failed.length; i += 2) n += this.#complete(failed[i]!, failed[i + 1]!);
    }
    if (n > 0) this.onBatch();
    if (this.#inFlight === 0) this.#setRef(false);
    else this.#arm();
    return n;
  }

  drainSync(timeoutMs: number): boolean {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const tail = Atomics.load(this.#ctrl, IO_CTRL_COMP_TAIL);
      if (this.#dead || tail === this.#subTail) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      // Node lets its main thread block in Atomics.wait; this is the one place we do.
      Atomics.wait(this.#ctrl, IO_CTRL_COMP_TAIL, tail, left);
    }
  }

  flush(): Promise<number> {
    if (this.#dead) return Promise.resolve(-EIO);
    // One host flush at a time (they share a tag): a second waits for the first, then runs.
    const run = (): Promise<number> =>
      new Promise<number>((resolve) => {
        this.#hostFlush = { resolve };
        this.submit(this.#ownTag, IO_OP_FLUSH, 0, 0);
      });
    const next = (this.#hostFlushBusy ?? Promise.resolve(0)).then(run, run);
    this.#hostFlushBusy = next;
    return next;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (!this.readOnly && !this.#dead) await this.flush();
      Atomics.store(this.#ctrl, IO_CTRL_STOP, 1);
      this.#wake();
      this.#setRef(true);
      await this.#exited;
      closeSync(this.#fd);
    })();
    return this.#closing;
  }

  #complete(tag: number, result: number): number {
    if (this.#pending[tag] !== 1) return 0;
    this.#pending[tag] = 0;
    this.#inFlight--;
    if (result < 0) this.metrics.failed++;
    if (tag === this.#ownTag) {
      const f = this.#hostFlush;
      this.#hostFlush = undefined;
      f?.resolve(result);
      return 0;
    }
    this.onComplete(tag, result);
    return 1;
  }

  #wake(): void {
    Atomics.add(this.#ctrl, IO_CTRL_SEQ, 1);
    Atomics.notify(this.#ctrl, IO_CTRL_SEQ);
  }

  readonly #wakeIfIdle = (): void => {
    this.#wakeScheduled = false;
    if (Atomics.load(this.#ctrl, IO_CTRL_IDLE) === 1) this.#wake();
  };

  /** Waits (without blocking) for the completion tail to move past what was reaped. */
  #arm(): void {
    if (this.#armed || this.#inFlight === 0) return;
    this.#armed = true;
    const fire = (): void => {
      this.#armed = false;
      this.poll();
    };
    const w = Atomics.waitAsync(this.#ctrl, IO_CTRL_COMP_TAIL, this.#compHead);
    if (w.async) void w.value.then(fire);
    else setImmediate(fire);
  }

  /** A pending Atomics.waitAsync does not keep Node alive; the I/O thread does, while it has work. */
  #setRef(on: boolean): void {
    if (on === this.#ref) return;
    this.#ref = on;
    if (on) this.#worker.ref();
    else this.#worker.unref();
  }

  #failLocally(tag: number): void {
    this.#failedLocally.push(tag, -EIO);
    setImmediate(() => this.poll());
  }

  #threadEnded(): void {
    this.#dead = true;
    this.#setRef(false);
    if (this.#closing !== undefined && this.#inFlight === 0) return;
    if (this.#closing === undefined) this.metrics.threadDied++;
    // Whatever the thread had not answered fails: the guest gets IOERR, not silence.
    const mask = this.#ringSize - 1;
    const answered = new Set<number>();
    for (let i = this.#compHead; i !== Atomics.load(this.#ctrl, IO_CTRL_COMP_TAIL); i = (i + 1) | 0) {
      answered.add(this.#rings[this.#ringSize + (i & mask)]!);
    }
    for (let tag = 0; tag < this.#pending.length; tag++) {
      if (this.#pending[tag] === 1 && !answered.has(tag)) this.#failLocally(tag);
    }
  }
}

/**
 * Starts the I/O thread: the compiled `io-worker.js` beside this module (in `dist/`, and in
 * the bundle, whose build lists it as an entry), or, when running from the TypeScript
 * sources (tests under tsx), `io-worker.ts` with tsx registered in the thread first.
 */
function startIoThread(data: IoWorkerData): Worker {
  const js = new URL('./io-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) {
    return new Worker(js, {
      workerData: data,
      // a loop of syscalls that allocates a few views per request: keep its heap small
      resourceLimits: { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 },
    });
  }
  const ts = new URL('./io-worker.ts', import.meta.url).href;
  const boot = `import('tsx/esm/api').then((t) => { t.register(); return import(${JSON.stringify(ts)}); })`;
  return new Worker(boot, { eval: true, workerData: data });
}
