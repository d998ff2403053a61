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
 * I/O never blocks the device thread's event loop nor a vCPU thread. It goes through one of
 * two engines, zero-copy between the image and guest RAM both:
 *
 * - `uring-io.ts` (the default): io_uring. The device thread queues requests in the ring's
 *   shared memory and submits a turn's worth with one io_uring_enter; small reads and writes
 *   whose pages are in the host page cache complete inside that call, larger or blocking ones
 *   run on the kernel's own workers, in parallel, and an eventfd on the device thread's loop
 *   reports them.
 * - `thread-io.ts`, where io_uring is missing or filtered (seccomp): a worker_thread of the
 *   disk's own (`io-worker.ts`) runs requests in order with `preadv`/`pwritev`/`fdatasync`/
 *   `fallocate`, reporting through shared memory (`io-protocol.ts`).
 *
 * `drainSync()` is the one place the device thread blocks: a device reset uses it to make
 * sure no request still writes into guest RAM.
 *
 * A request is identified by a tag the device chooses in 0..maxRequests-1 (so the number in
 * flight is bounded by construction); the device fills the tag's segment array, then submits,
 * and hears back through `onComplete` per request and `onBatch` per batch — never from inside
 * `submit()`.
 */
import { closeSync, fstatSync, openSync } from 'node:fs';
import { VmmError } from '../../../errors.js';
import { viewGuestRam } from '../../../kvm.js';
import { EIO, IO_OP_FLUSH } from './io-protocol.js';
import { ThreadIo } from './thread-io.js';
import { UringIo } from './uring-io.js';

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
  /** `GuestRam.address` of the guest RAM mapping (mmapGuestRam): the segments point into it */
  ramAddress: bigint;
  /** requests in flight at most (default 256, a virtio queue's worth) */
  maxRequests?: number;
  /** segments per request at most (default 254: a 256-entry queue less header and status) */
  maxSegments?: number;
  /** 'auto' (default): io_uring where the kernel allows it, else the I/O thread */
  engine?: 'auto' | 'io_uring' | 'thread';
}

export const RAW_DISK_DEFAULT_MAX_REQUESTS = 256;
export const RAW_DISK_DEFAULT_MAX_SEGMENTS = 254;

export interface RawDiskMetrics {
  /** requests submitted */
  submitted: number;
  /** requests that completed with an error */
  failed: number;
  /** the I/O thread ended before it was asked to (its requests failed with EIO) */
  threadDied: number;
}

/** Host-internal requests (close()'s and flush()'s fdatasync) use the tag after the device's. */
const OWN_TAGS = 1;

/** What RawDisk needs from an engine (uring-io.ts, thread-io.ts). */
interface DiskIo {
  /** requests submitted and not yet delivered */
  readonly active: number;
  segments(tag: number): Float64Array;
  submit(tag: number, op: number, offset: number, nseg: number): void;
  /** hands finished requests to `done`; returns how many */
  deliver(done: (tag: number, result: number) => void): number;
  drainSync(timeoutMs: number): boolean;
  /** keep the process alive (work in flight) or not */
  setRef(on: boolean): void;
}

export class RawDisk implements DiskBackend {
  readonly path: string;
  readonly readOnly: boolean;
  readonly sizeBytes: number;
  readonly blockSize: number;
  readonly maxRequests: number;
  readonly maxSegments: number;
  /** the I/O engine in use */
  readonly engine: 'io_uring' | 'thread';
  /** why io_uring is not in use (undefined when it is) */
  readonly engineNote: string | undefined;
  readonly metrics: RawDiskMetrics = { submitted: 0, failed: 0, threadDied: 0 };
  onComplete: (tag: number, result: number) => void = () => {};
  onBatch: () => void = () => {};

  readonly #fd: number;
  readonly #io: DiskIo;
  readonly #uring: UringIo | undefined;
  readonly #thread: ThreadIo | undefined;
  readonly #ownTag: number;
  #inFlight = 0;
  #ref = false;
  /** tags in flight: a completion for any other is ignored */
  readonly #pending: Uint8Array;
  #closing: Promise<void> | undefined;
  #closed = false;
  #hostFlush: { resolve: (r: number) => void } | undefined;
  #hostFlushBusy: Promise<number> | undefined;
  readonly #deliverOne = (tag: number, result: number): void => {
    this.#delivered += this.#complete(tag, result);
  };
  #delivered = 0;

  constructor(options: RawDiskOptions) {
    const { path, ramAddress } = options;
    const readOnly = options.readOnly ?? false;
    const maxRequests = options.maxRequests ?? RAW_DISK_DEFAULT_MAX_REQUESTS;
    const maxSegments = options.maxSegments ?? RAW_DISK_DEFAULT_MAX_SEGMENTS;
    const engine = options.engine ?? 'auto';
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
    this.#pending = new Uint8Array(tags);
    const onReady = (): void => {
      this.poll();
    };

    let uring: UringIo | string = 'not asked for';
    if (engine !== 'thread') {
      let ramSize: number | undefined;
      try {
        ramSize = viewGuestRam(ramAddress).size;
      } catch (err) {
        uring = `guest RAM at 0x${ramAddress.toString(16)}: ${(err as Error).message}`;
      }
      if (ramSize !== undefined) uring = UringIo.open({ fd, ramAddress, ramSize, tags, maxSegments, onReady });
    }
    if (typeof uring === 'string') {
      if (engine === 'io_uring') {
        closeSync(fd);
        throw new VmmError('INVALID_CONFIG', `disk ${path}: cannot use io_uring: ${uring}`);
      }
      this.engine = 'thread';
      this.engineNote = uring;
      this.#thread = new ThreadIo({ fd, ramAddress, tags, maxSegments, onReady, onDied: () => this.metrics.threadDied++ });
      this.#io = this.#thread;
    } else {
      this.engine = 'io_uring';
      this.engineNote = undefined;
      this.#uring = uring;
      this.#io = uring;
    }
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  segments(tag: number): Float64Array {
    return this.#io.segments(tag);
  }

  submit(tag: number, op: number, offset: number, nseg: number): void {
    this.#inFlight++;
    this.#pending[tag] = 1;
    this.metrics.submitted++;
    this.#io.submit(tag, op, offset, nseg);
    this.#setRef(true);
  }

  poll(): number {
    this.#delivered = 0;
    this.#io.deliver(this.#deliverOne);
    const n = this.#delivered;
    if (n > 0) this.onBatch();
    if (this.#inFlight === 0) this.#setRef(false);
    return n;
  }

  drainSync(timeoutMs: number): boolean {
    return this.#io.drainSync(timeoutMs);
  }

  flush(): Promise<number> {
    if (this.#closed) return Promise.resolve(-EIO);
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
      if (!this.readOnly) await this.flush();
      // Whatever is still out finishes first: it may write into guest RAM.
      while (this.#inFlight > 0) {
        this.#io.drainSync(1000);
        this.poll();
        if (this.#inFlight > 0) await new Promise((r) => setTimeout(r, 10));
      }
      await this.#thread?.close();
      this.#uring?.close();
      this.#closed = true;
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

  #setRef(on: boolean): void {
    if (on === this.#ref) return;
    this.#ref = on;
    this.#io.setRef(on);
  }
}
