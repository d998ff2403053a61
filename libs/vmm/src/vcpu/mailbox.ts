/**
 * The mailbox between a vCPU thread and the device thread (the worker's main thread).
 *
 * Devices shared by all vCPUs (UART, i8042, RTC, PM1, later PCI and virtio config space)
 * live on the main thread, which also owns stdin, timers and eventfd polling. A vCPU thread
 * forwards an access to such a device through a single-producer/single-consumer ring in a
 * SharedArrayBuffer:
 *
 * - writes are posted, as on a PCI bus: the vCPU appends a record and re-enters the guest
 *   at once; the device thread applies records in order;
 * - reads append a record and wait (Atomics.wait) for the answer; since records are applied
 *   in order, a read sees every write that the same vCPU posted before it.
 *
 * The device thread waits on the ring's tail with Atomics.waitAsync, so it sleeps in its
 * event loop while the guest runs. Nothing here allocates per access.
 */

/** Header words (Int32 indices). */
export const MB_TAIL = 0;
export const MB_HEAD = 1;
export const MB_RESP_SEQ = 2;
/** set by the device thread to ask the vCPU thread to leave its run loop */
export const MB_STOP = 3;
export const MB_RESP_LO = 4;
export const MB_RESP_HI = 5;
/** accesses no device claimed, counted by the vCPU thread */
export const MB_MISSED_PIO = 8;
export const MB_MISSED_MMIO = 9;
/** exits handled by the vCPU thread, published when it stops */
export const MB_EXITS = 11;
/** set by the device thread to park the vCPU outside KVM_RUN (pause) */
export const MB_PAUSE = 12;
/** set by the vCPU thread while it is parked */
export const MB_PARKED = 13;
const HEADER_WORDS = 16;

export const MB_RING = 256;
const RECORD_WORDS = 8;

/** record flag bits */
export const REC_READ = 1;
export const REC_MMIO = 2;

export function createMailbox(): SharedArrayBuffer {
  return new SharedArrayBuffer((HEADER_WORDS + MB_RING * RECORD_WORDS) * 4);
}

/**
 * One counter shared by every vCPU's mailbox: writes posted and not yet applied, whichever
 * vCPU posted them. Each vCPU has its own ring, so two rings' records are applied in no
 * particular order. On a PC an OUT completes before the next instruction, so a write that
 * one vCPU makes after taking a lock from another must land after the other's writes. With
 * the counter a vCPU waits, before it posts anything, until no other vCPU's write is still
 * on its way: whatever the guest ordered stays in order. A vCPU answers a mirrored read
 * itself only under the same condition (see vcpu-thread.ts).
 */
export function createWriteCounter(): SharedArrayBuffer {
  return new SharedArrayBuffer(4);
}

/** The vCPU side: posts writes, performs reads. */
export class MailboxProducer {
  private readonly h: Int32Array;
  private readonly inFlight: Int32Array | undefined;
  private tail = 0;

  constructor(sab: SharedArrayBuffer, writeCounter?: SharedArrayBuffer) {
    this.h = new Int32Array(sab);
    this.inFlight = writeCounter ? new Int32Array(writeCounter) : undefined;
    this.tail = Atomics.load(this.h, MB_TAIL);
  }

  private post(flags: number, addrLo: number, addrHi: number, dataLo: number, dataHi: number): void {
    const h = this.h;
    const tail = this.tail;
    // Ring full: the device thread is behind; wait for it rather than drop a write.
    for (;;) {
      const head = Atomics.load(h, MB_HEAD);
      if (((tail - head) | 0) < MB_RING) break;
      if (Atomics.load(h, MB_STOP) !== 0) return;
      Atomics.wait(h, MB_HEAD, head, 50);
    }
    const r = HEADER_WORDS + (tail & (MB_RING - 1)) * RECORD_WORDS;
    h[r] = flags;
    h[r + 1] = addrLo;
    h[r + 2] = addrHi;
    h[r + 3] = dataLo;
    h[r + 4] = dataHi;
    this.tail = (tail + 1) | 0;
    Atomics.store(h, MB_TAIL, this.tail);
    Atomics.notify(h, MB_TAIL, 1);
  }

  /** Waits until every write that another vCPU posted has been applied. While this vCPU
   * runs it has no read outstanding, so its own unapplied writes are tail - head. */
  private settleOthers(f: Int32Array): void {
    for (;;) {
      const total = Atomics.load(f, 0);
      if (this.othersSettled()) return;
      if (Atomics.load(this.h, MB_STOP) !== 0) return;
      Atomics.wait(f, 0, total, 5);
    }
  }

  /** Posts a write of `size` bytes; returns at once (once earlier writes of other vCPUs
   * have landed, when the mailbox shares a write counter). */
  write(mmio: boolean, addr: number, size: number, dataLo: number, dataHi: number): void {
    if (this.inFlight) {
      this.settleOthers(this.inFlight);
      // counted before the device thread can see it, so its decrement never comes first
      Atomics.add(this.inFlight, 0, 1);
    }
    this.post((mmio ? REC_MMIO : 0) | (size << 8), addr >>> 0, Math.floor(addr / 0x100000000), dataLo, dataHi);
  }

  /**
   * Performs a read and returns its low 32 bits (`respHi()` has the high ones). Returns -1
   * cast to the width when the device thread stopped the machine meanwhile.
   */
  read(mmio: boolean, addr: number, size: number): number {
    const h = this.h;
    const seq = Atomics.load(h, MB_RESP_SEQ);
    if (this.inFlight) this.settleOthers(this.inFlight);
    this.post(REC_READ | (mmio ? REC_MMIO : 0) | (size << 8), addr >>> 0, Math.floor(addr / 0x100000000), 0, 0);
    while (Atomics.load(h, MB_RESP_SEQ) === seq) {
      if (Atomics.load(h, MB_STOP) !== 0) return -1;
      Atomics.wait(h, MB_RESP_SEQ, seq, 100);
    }
    return h[MB_RESP_LO]!;
  }

  respHi(): number {
    return this.h[MB_RESP_HI]!;
  }

  /** True when the device thread has applied every record this vCPU posted. */
  idle(): boolean {
    return Atomics.load(this.h, MB_HEAD) === this.tail;
  }

  /** True when no posted write of any vCPU sharing the write counter is still unapplied
   * (without a counter: of this vCPU). */
  settled(): boolean {
    return this.inFlight ? Atomics.load(this.inFlight, 0) === 0 : this.idle();
  }

  /** True when every write other vCPUs posted has been applied (always, without a counter).
   * The device thread lowers the counter after it moves the head: for a moment an applied
   * write of ours still counts, and this says false a little longer, never too little. */
  othersSettled(): boolean {
    return !this.inFlight || Atomics.load(this.inFlight, 0) <= ((this.tail - Atomics.load(this.h, MB_HEAD)) | 0);
  }

  /** A mark for what this vCPU has posted so far: `applied(mark)` tells when all of it is. */
  mark(): number {
    return this.tail;
  }

  applied(mark: number): boolean {
    return ((Atomics.load(this.h, MB_HEAD) - mark) | 0) >= 0;
  }
}

/** What the device thread does with a forwarded access: dispatch it to its bus. */
export type AccessHandler = (mmio: boolean, isRead: boolean, addr: number, data: Uint8Array) => void;

/** The device thread's side of one vCPU's mailbox. */
export class MailboxConsumer {
  private readonly h: Int32Array;
  private readonly scratch = new Uint8Array(8);
  private readonly scratchView = new DataView(this.scratch.buffer);
  private readonly sized: Uint8Array[];
  private closed = false;

  private readonly inFlight: Int32Array | undefined;

  constructor(
    sab: SharedArrayBuffer,
    private readonly handler: AccessHandler,
    writeCounter?: SharedArrayBuffer,
  ) {
    this.h = new Int32Array(sab);
    this.inFlight = writeCounter ? new Int32Array(writeCounter) : undefined;
    this.sized = [0, 1, 2, 3, 4, 5, 6, 7, 8].map((n) => this.scratch.subarray(0, n));
  }

  /** Starts listening; records are applied from the event loop as they arrive. */
  start(): void {
    this.arm();
  }

  private arm(): void {
    if (this.closed) return;
    const tail = Atomics.load(this.h, MB_TAIL);
    if (tail !== Atomics.load(this.h, MB_HEAD)) {
      this.drain();
      setImmediate(() => this.arm());
      return;
    }
    const w = Atomics.waitAsync(this.h, MB_TAIL, tail);
    if (w.async) {
      void w.value.then(() => {
        this.drain();
        this.arm();
      });
    } else {
      this.drain();
      setImmediate(() => this.arm());
    }
  }

  /** Applies every record posted so far. */
  drain(): void {
    const h = this.h;
    let head = Atomics.load(h, MB_HEAD);
    const tail = Atomics.load(h, MB_TAIL);
    while (head !== tail) {
      const r = HEADER_WORDS + (head & (MB_RING - 1)) * RECORD_WORDS;
      const flags = h[r]!;
      const size = (flags >>> 8) & 0xff;
      const addr = (h[r + 1]! >>> 0) + (h[r + 2]! >>> 0) * 0x100000000;
      const mmio = (flags & REC_MMIO) !== 0;
      const data = this.sized[size > 8 ? 8 : size]!;
      const dv = this.scratchView;
      if ((flags & REC_READ) !== 0) {
        dv.setUint32(0, 0);
        dv.setUint32(4, 0);
        this.handler(mmio, true, addr, data);
        h[MB_RESP_LO] = dv.getInt32(0, true);
        h[MB_RESP_HI] = dv.getInt32(4, true);
        head = (head + 1) | 0;
        Atomics.store(h, MB_HEAD, head);
        Atomics.add(h, MB_RESP_SEQ, 1);
        Atomics.notify(h, MB_RESP_SEQ);
      } else {
        dv.setInt32(0, h[r + 3]!, true);
        dv.setInt32(4, h[r + 4]!, true);
        this.handler(mmio, false, addr, data);
        head = (head + 1) | 0;
        Atomics.store(h, MB_HEAD, head);
        if (this.inFlight) {
          Atomics.sub(this.inFlight, 0, 1);
          Atomics.notify(this.inFlight, 0);
        }
      }
    }
    Atomics.notify(h, MB_HEAD);
  }

  /** Asks the vCPU to stop and wakes it wherever it waits on this mailbox. */
  requestStop(): void {
    Atomics.store(this.h, MB_STOP, 1);
    Atomics.add(this.h, MB_RESP_SEQ, 1);
    Atomics.notify(this.h, MB_RESP_SEQ);
    Atomics.notify(this.h, MB_HEAD);
    Atomics.notify(this.h, MB_PAUSE);
  }

  /** Asks the vCPU to park outside KVM_RUN; `parked()` tells when it has. */
  requestPause(): void {
    Atomics.store(this.h, MB_PAUSE, 1);
  }

  /** Lets a parked vCPU run again. */
  release(): void {
    Atomics.store(this.h, MB_PAUSE, 0);
    Atomics.notify(this.h, MB_PAUSE);
  }

  /** Resolves once the vCPU is parked (or `ms` passed: false). */
  async parked(ms: number): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (Atomics.load(this.h, MB_PARKED) === 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      const w = Atomics.waitAsync(this.h, MB_PARKED, 0, Math.min(left, 50));
      if (w.async) await w.value;
    }
    return true;
  }

  close(): void {
    this.closed = true;
    // wake a pending waitAsync so its promise settles and nothing is left armed
    Atomics.notify(this.h, MB_TAIL);
  }

  counter(index: number): number {
    return Atomics.load(this.h, index);
  }
}
