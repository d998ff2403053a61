/**
 * A raw disk's I/O on a worker_thread of its own (`io-worker.ts`), for hosts where io_uring
 * is missing or filtered (`uring-io.ts` is the first choice): the device thread puts request
 * tags in a shared submission ring and the thread runs them in order with zero-copy
 * `preadv`/`pwritev`/`fdatasync`/`fallocate`, reporting each in a completion ring
 * (`io-protocol.ts`). The device thread submits with a few stores, wakes the thread only when
 * it sleeps (one futex per batch), and learns of completions through `Atomics.waitAsync`, so
 * it never blocks — except in `drainSync()`.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import {
  EIO,
  IO_CTRL_COMP_TAIL,
  IO_CTRL_IDLE,
  IO_CTRL_READY,
  IO_CTRL_SEQ,
  IO_CTRL_STOP,
  IO_CTRL_SUB_TAIL,
  IO_CTRL_WORDS,
  IO_SLOT_NSEG,
  IO_SLOT_OFFSET,
  IO_SLOT_OP,
  IO_SLOT_RESULT,
  IO_SLOT_WORDS,
  type IoWorkerData,
} from './io-protocol.js';

export interface ThreadIoOptions {
  fd: number;
  /** GuestRam.address of the mapping the segments point into: the thread views it */
  ramAddress: bigint;
  /** tags are 0..tags-1 */
  tags: number;
  maxSegments: number;
  /** completions may be waiting: call deliver() (on the device thread, from the loop) */
  onReady: () => void;
  /** the thread ended before close() asked it to (its requests fail with EIO) */
  onDied: () => void;
}

export class ThreadIo {
  readonly #ctrl: Int32Array;
  readonly #rings: Int32Array;
  readonly #slots: Float64Array;
  readonly #segViews: Float64Array[];
  readonly #ringSize: number;
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #onReady: () => void;
  /** tags submitted and not yet delivered */
  readonly #pending: Uint8Array;
  #subTail = 0;
  #compHead = 0;
  #active = 0;
  #armed = false;
  #wakeScheduled = false;
  #ref = false;
  /** completions made up on this side (the thread died): tag, result pairs */
  #failedLocally: number[] = [];
  #dead = false;
  #stopping = false;
  readonly #onDied: () => void;

  constructor(o: ThreadIoOptions) {
    this.#onReady = o.onReady;
    this.#onDied = o.onDied;
    this.#ringSize = 2 ** Math.ceil(Math.log2(o.tags));
    const ctrl = new SharedArrayBuffer(4 * IO_CTRL_WORDS);
    const rings = new SharedArrayBuffer(4 * 2 * this.#ringSize);
    const slots = new SharedArrayBuffer(8 * IO_SLOT_WORDS * o.tags);
    const segments = new SharedArrayBuffer(8 * 2 * o.maxSegments * o.tags);
    this.#ctrl = new Int32Array(ctrl);
    this.#rings = new Int32Array(rings);
    this.#slots = new Float64Array(slots);
    const all = new Float64Array(segments);
    this.#segViews = Array.from({ length: o.tags }, (_, t) => all.subarray(t * 2 * o.maxSegments, (t + 1) * 2 * o.maxSegments));
    this.#pending = new Uint8Array(o.tags);

    this.#worker = startIoThread({
      kind: 'vmctl-disk-io',
      fd: o.fd,
      ramAddress: o.ramAddress,
      ctrl,
      rings,
      slots,
      segments,
      ring: this.#ringSize,
      maxSegments: o.maxSegments,
    });
    // The thread keeps the process alive only while it has work (see setRef).
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

  /** True once the I/O thread runs (it boots its own JS engine: tens of ms). */
  get ready(): boolean {
    return Atomics.load(this.#ctrl, IO_CTRL_READY) === 1;
  }

  get active(): number {
    return this.#active;
  }

  segments(tag: number): Float64Array {
    return this.#segViews[tag]!;
  }

  submit(tag: number, op: number, offset: number, nseg: number): void {
    this.#active++;
    this.#pending[tag] = 1;
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
    this.#arm();
  }

  deliver(done: (tag: number, result: number) => void): number {
    let n = 0;
    const tail = Atomics.load(this.#ctrl, IO_CTRL_COMP_TAIL);
    const mask = this.#ringSize - 1;
    while (this.#compHead !== tail) {
      const tag = this.#rings[this.#ringSize + (this.#compHead & mask)]!;
      this.#compHead = (this.#compHead + 1) | 0;
      n += this.#deliverOne(tag, this.#slots[tag * IO_SLOT_WORDS + IO_SLOT_RESULT]!, done);
    }
    if (this.#failedLocally.length > 0) {
      const failed = this.#failedLocally;
      this.#failedLocally = [];
      for (let i = 0; i < failed.length; i += 2) n += this.#deliverOne(failed[i]!, failed[i + 1]!, done);
    }
    this.#arm();
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

  /** A pending Atomics.waitAsync does not keep Node alive; the I/O thread does, while it has work. */
  setRef(on: boolean): void {
    if (on === this.#ref) return;
    this.#ref = on;
    if (on) this.#worker.ref();
    else this.#worker.unref();
  }

  /** Ends the thread once the submission ring is empty (and with it its views of guest RAM). */
  async close(): Promise<void> {
    this.#stopping = true;
    Atomics.store(this.#ctrl, IO_CTRL_STOP, 1);
    this.#wake();
    this.setRef(true);
    await this.#exited;
  }

  #deliverOne(tag: number, result: number, done: (tag: number, result: number) => void): number {
    if (this.#pending[tag] !== 1) return 0;
    this.#pending[tag] = 0;
    this.#active--;
    done(tag, result);
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
    if (this.#armed || this.#active === 0 || this.#dead) return;
    this.#armed = true;
    const fire = (): void => {
      this.#armed = false;
      this.#onReady();
    };
    const w = Atomics.waitAsync(this.#ctrl, IO_CTRL_COMP_TAIL, this.#compHead);
    if (w.async) void w.value.then(fire);
    else setImmediate(fire);
  }

  #failLocally(tag: number): void {
    this.#failedLocally.push(tag, -EIO);
    setImmediate(() => this.#onReady());
  }

  #threadEnded(): void {
    this.#dead = true;
    this.setRef(false);
    if (!this.#stopping) this.#onDied();
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
