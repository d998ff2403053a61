/**
 * The split virtqueue, device side (virtio 1.2 §2.7), over guest memory.
 *
 * Everything here reads memory the guest can change at any moment, so nothing is trusted:
 *
 * - the three rings are checked once, when the queue is created: size a power of two up to
 *   32768, each part aligned as §2.7 lists (desc 16, avail 2, used 4) and wholly in RAM;
 * - `pop()` checks the available index (it may not run more than the queue size ahead of
 *   what the device has taken, since the driver cannot expose more buffers than there are
 *   descriptors, §2.7.6) and walks the head's chain, checking every descriptor index against
 *   its table, every buffer against guest RAM, and the indirect rules of §2.7.5.3;
 * - a walk is bounded: a chain that visits more descriptors than its table holds must loop
 *   (CHAIN_LOOP), an indirect table holds at most 4096 entries (64 KiB: QEMU stops at 1024
 *   segments per request), and the bytes of a chain add up to at most 2^32 - 1 (§2.7.5.2:
 *   drivers MUST NOT add a longer chain) or a device-chosen smaller cap. So one pop costs at
 *   most queue size + 4096 descriptor reads, and the segment list a chain fills is sized by
 *   those counts, whatever the guest builds: host memory stays bounded however the chain is
 *   constructed.
 *
 * Errors are values (`{ error: 'CHAIN_LOOP', ... }`), never exceptions. A queue that returned
 * one stays broken: every later pop returns the same error. What to do with it is the
 * device's and transport's business (virtio-pci sets DEVICE_NEEDS_RESET, §2.1.2).
 *
 * Memory ordering. The driver publishes ring entries before the index with its own
 * barriers; on our side two orderings matter (§2.7.7, §2.7.10): the used index must be
 * visible before we read `used_event`/`flags` to decide on an interrupt, and `avail_event`
 * before we re-read the available index to decide the ring is empty. Both are store→load
 * orders, which x86 does not keep without a fence. `fence()` is a locked read-modify-write
 * (Atomics.add), a full barrier on x86 that V8 also never moves memory accesses across.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';

export const VIRTQ_DESC_F_NEXT = 1;
export const VIRTQ_DESC_F_WRITE = 2;
export const VIRTQ_DESC_F_INDIRECT = 4;
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** §2.7: "The maximum Queue Size value is 32768." */
export const VIRTQ_MAX_SIZE = 32768;
export const VIRTQ_DESC_SIZE = 16;
export const VIRTQ_USED_ELEM_SIZE = 8;
/** The longest indirect table we follow: 64 KiB of descriptors. */
export const VIRTQ_INDIRECT_MAX_ENTRIES = 4096;
/** §2.7.5.2: a chain is shorter than 2^32 bytes in total (and `len` in the used ring is 32 bits). */
export const VIRTQ_CHAIN_MAX_BYTES = 0xffffffff;

// Offsets inside the rings.
const AVAIL_FLAGS = 0;
const AVAIL_IDX = 2;
const AVAIL_RING = 4;
const USED_FLAGS = 0;
const USED_IDX = 2;
const USED_RING = 4;

/** Bytes of each part of a split queue of `size` entries (§2.7's table). */
export function descTableBytes(size: number): number {
  return VIRTQ_DESC_SIZE * size;
}
export function availRingBytes(size: number): number {
  return 6 + 2 * size;
}
export function usedRingBytes(size: number): number {
  return 6 + VIRTQ_USED_ELEM_SIZE * size;
}

export type QueueErrorCode =
  /** queue size not a power of two in 1..32768 */
  | 'BAD_QUEUE_SIZE'
  /** a ring not aligned as §2.7 requires */
  | 'RING_MISALIGNED'
  /** a ring not wholly in guest RAM */
  | 'RING_OUT_OF_RANGE'
  /** the available index ran more than the queue size ahead */
  | 'AVAIL_IDX_JUMP'
  /** a head or `next` beyond its descriptor table */
  | 'DESC_INDEX_OUT_OF_RANGE'
  /** a chain visits more descriptors than its table holds */
  | 'CHAIN_LOOP'
  /** a buffer not wholly in guest RAM */
  | 'BUFFER_OUT_OF_RANGE'
  /** the chain's buffers add up to more than the cap */
  | 'CHAIN_TOO_LARGE'
  /** a device-readable buffer after a device-writable one (§2.7.4.2) */
  | 'READABLE_AFTER_WRITABLE'
  /** VIRTQ_DESC_F_INDIRECT without VIRTIO_F_INDIRECT_DESC (§2.7.5.3.1) */
  | 'INDIRECT_NOT_NEGOTIATED'
  /** VIRTQ_DESC_F_INDIRECT inside an indirect table (§2.7.5.3.1) */
  | 'INDIRECT_NESTED'
  /** VIRTQ_DESC_F_INDIRECT together with VIRTQ_DESC_F_NEXT (§2.7.5.3.1) */
  | 'INDIRECT_WITH_NEXT'
  /** an indirect table whose length is 0 or not a multiple of 16 */
  | 'INDIRECT_BAD_LENGTH'
  /** an indirect table of more than VIRTQ_INDIRECT_MAX_ENTRIES */
  | 'INDIRECT_TOO_LARGE'
  /** an indirect table not wholly in guest RAM */
  | 'INDIRECT_OUT_OF_RANGE';

export interface QueueError {
  readonly error: QueueErrorCode;
  readonly detail: string;
}

export function isQueueError(x: unknown): x is QueueError {
  return typeof x === 'object' && x !== null && 'error' in x;
}

function fail(error: QueueErrorCode, detail: string): QueueError {
  return { error, detail };
}

/** Where the driver put the queue (guest-physical addresses) and its size. */
export interface QueueLayout {
  size: number;
  /** the descriptor table (Descriptor Area) */
  desc: number;
  /** the available ring (Driver Area) */
  avail: number;
  /** the used ring (Device Area) */
  used: number;
}

export interface QueueOptions {
  /** VIRTIO_F_EVENT_IDX was negotiated */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated */
  indirect: boolean;
  /** a device's own cap on a chain's total bytes (default and maximum VIRTQ_CHAIN_MAX_BYTES) */
  maxChainBytes?: number;
}

/** What a snapshot keeps of a queue beyond its layout. */
export interface QueueState {
  nextAvail: number;
  nextUsed: number;
}

/** `(new - event - 1) mod 2^16 < (new - old) mod 2^16`: did [old, new) pass `event`? (§2.7.7.2) */
export function vringNeedEvent(event: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - event - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

const FENCE = new Int32Array(new SharedArrayBuffer(4));
/** A full memory barrier (a locked instruction on x86). */
export function fence(): void {
  Atomics.add(FENCE, 0, 0);
}

/**
 * A range of guest RAM read and written in place: through a DataView on the mapping when
 * the range lies in one host chunk (always, for rings a real driver allocates), through
 * GuestMemory's copying accessors when it straddles two.
 */
class GuestRegion {
  readonly #mem: GuestMemory;
  readonly #gpa: number;
  readonly #dv: DataView | undefined;

  constructor(mem: GuestMemory, gpa: number, len: number) {
    this.#mem = mem;
    this.#gpa = gpa;
    const v = mem.view(gpa, len);
    this.#dv = v === undefined ? undefined : new DataView(v.buffer, v.byteOffset, v.byteLength);
  }

  u16(off: number): number {
    return this.#dv ? this.#dv.getUint16(off, true) : this.#mem.readU16(this.#gpa + off);
  }
  u32(off: number): number {
    return this.#dv ? this.#dv.getUint32(off, true) : this.#mem.readU32(this.#gpa + off);
  }
  setU16(off: number, v: number): void {
    if (this.#dv) this.#dv.setUint16(off, v, true);
    else this.#mem.writeU16(this.#gpa + off, v);
  }
  setU32(off: number, v: number): void {
    if (this.#dv) this.#dv.setUint32(off, v, true);
    else this.#mem.writeU32(this.#gpa + off, v);
  }
}

/**
 * The buffers of one descriptor chain, in order: device-readable ones, then device-writable
 * ones. Zero-length descriptors are left out (they carry nothing; the spec does not forbid
 * them). A queue reuses one chain object for every pop: a device that keeps a request past
 * the next pop takes a `clone()`.
 */
export class DescriptorChain {
  /** the head descriptor index, for the used ring */
  head = 0;
  /** number of buffers */
  length = 0;
  readableBytes = 0;
  writableBytes = 0;
  #addr: Float64Array;
  #len: Uint32Array;
  #writable: Uint8Array;
  readonly #max: number;

  constructor(maxSegments: number, initial = 16) {
    this.#max = maxSegments;
    const n = Math.min(initial, maxSegments);
    this.#addr = new Float64Array(n);
    this.#len = new Uint32Array(n);
    this.#writable = new Uint8Array(n);
  }

  /** guest-physical address of buffer `i` */
  addr(i: number): number {
    return this.#addr[i]!;
  }
  len(i: number): number {
    return this.#len[i]!;
  }
  writable(i: number): boolean {
    return this.#writable[i] === 1;
  }

  clone(): DescriptorChain {
    const c = new DescriptorChain(this.length, this.length);
    c.head = this.head;
    for (let i = 0; i < this.length; i++) c.push(this.#addr[i]!, this.#len[i]!, this.#writable[i] === 1);
    return c;
  }

  /** @internal used by the walk */
  reset(head: number): void {
    this.head = head;
    this.length = 0;
    this.readableBytes = 0;
    this.writableBytes = 0;
  }

  /** @internal used by the walk; the walk's bounds keep `length` within `maxSegments` */
  push(addr: number, len: number, writable: boolean): void {
    if (this.length === this.#addr.length) this.#grow();
    const i = this.length++;
    this.#addr[i] = addr;
    this.#len[i] = len;
    this.#writable[i] = writable ? 1 : 0;
    if (writable) this.writableBytes += len;
    else this.readableBytes += len;
  }

  #grow(): void {
    const n = Math.min(Math.max(16, this.#addr.length * 2), this.#max);
    const a = new Float64Array(n);
    const l = new Uint32Array(n);
    const w = new Uint8Array(n);
    a.set(this.#addr);
    l.set(this.#len);
    w.set(this.#writable);
    this.#addr = a;
    this.#len = l;
    this.#writable = w;
  }
}

export class Virtqueue {
  readonly size: number;
  readonly layout: Readonly<QueueLayout>;
  readonly eventIdx: boolean;
  readonly indirect: boolean;
  readonly maxChainBytes: number;

  readonly #mem: GuestMemory;
  readonly #desc: GuestRegion;
  readonly #avail: GuestRegion;
  readonly #used: GuestRegion;
  readonly #chain: DescriptorChain;
  readonly #mask: number;
  #nextAvail: number;
  #nextUsed: number;
  /** the used index when we last decided about an interrupt; undefined = unknown */
  #signalledUsed: number | undefined;
  /** the driver is asked to notify (see setNotification) */
  #notifyEnabled = true;
  #broken: QueueError | undefined;

  /**
   * Checks the layout (size, alignment, rings in RAM) and returns the queue, or the first
   * problem found. `state` resumes a queue from a snapshot.
   */
  static create(memory: GuestMemory, layout: QueueLayout, options: QueueOptions, state?: QueueState): Virtqueue | QueueError {
    const { size, desc, avail, used } = layout;
    if (!Number.isInteger(size) || size < 1 || size > VIRTQ_MAX_SIZE || (size & (size - 1)) !== 0) {
      return fail('BAD_QUEUE_SIZE', `queue size ${size} is not a power of two from 1 to ${VIRTQ_MAX_SIZE}`);
    }
    if (desc % 16 !== 0 || avail % 2 !== 0 || used % 4 !== 0) {
      return fail('RING_MISALIGNED', `rings at desc 0x${desc.toString(16)}, avail 0x${avail.toString(16)}, used 0x${used.toString(16)} are misaligned`);
    }
    if (!memory.contains(desc, descTableBytes(size)) || !memory.contains(avail, availRingBytes(size)) || !memory.contains(used, usedRingBytes(size))) {
      return fail('RING_OUT_OF_RANGE', `rings at desc 0x${desc.toString(16)}, avail 0x${avail.toString(16)}, used 0x${used.toString(16)} (size ${size}) are not in guest RAM`);
    }
    return new Virtqueue(memory, layout, options, state);
  }

  private constructor(memory: GuestMemory, layout: QueueLayout, options: QueueOptions, state?: QueueState) {
    this.#mem = memory;
    this.size = layout.size;
    this.layout = { ...layout };
    this.eventIdx = options.eventIdx;
    this.indirect = options.indirect;
    this.maxChainBytes = Math.min(options.maxChainBytes ?? VIRTQ_CHAIN_MAX_BYTES, VIRTQ_CHAIN_MAX_BYTES);
    this.#mask = layout.size - 1;
    this.#desc = new GuestRegion(memory, layout.desc, descTableBytes(layout.size));
    this.#avail = new GuestRegion(memory, layout.avail, availRingBytes(layout.size));
    this.#used = new GuestRegion(memory, layout.used, usedRingBytes(layout.size));
    this.#chain = new DescriptorChain(layout.size + (options.indirect ? VIRTQ_INDIRECT_MAX_ENTRIES : 0));
    this.#nextAvail = (state?.nextAvail ?? 0) & 0xffff;
    this.#nextUsed = (state?.nextUsed ?? 0) & 0xffff;
    // A fresh queue has sent nothing and owes nothing. A resumed one cannot know what the
    // driver last saw, so its first decision says "interrupt" (a spurious one is harmless:
    // §2.7.7.1, the driver MUST handle them).
    this.#signalledUsed = state === undefined ? this.#nextUsed : undefined;
  }

  /** The error that broke the queue, if one did. */
  get broken(): QueueError | undefined {
    return this.#broken;
  }

  /** The next available-ring slot the device will take (a free-running 16-bit index). */
  get nextAvail(): number {
    return this.#nextAvail;
  }

  get nextUsed(): number {
    return this.#nextUsed;
  }

  /**
   * Takes the next available chain: the chain (valid until the next pop), undefined when
   * the ring is empty, or the error that breaks the queue.
   */
  pop(): DescriptorChain | QueueError | undefined {
    if (this.#broken) return this.#broken;
    let availIdx = this.#avail.u16(AVAIL_IDX);
    if (availIdx === this.#nextAvail) {
      // Empty. With EVENT_IDX, ask to be notified at the next entry, then look again: the
      // driver may have added one before it could see our avail_event (§2.7.10).
      if (this.eventIdx && this.#notifyEnabled) this.#setAvailEvent(this.#nextAvail);
      fence();
      availIdx = this.#avail.u16(AVAIL_IDX);
      if (availIdx === this.#nextAvail) return undefined;
    }
    const pending = (availIdx - this.#nextAvail) & 0xffff;
    if (pending > this.size) {
      return this.#break(fail('AVAIL_IDX_JUMP', `available index ${availIdx} is ${pending} entries past ${this.#nextAvail}, more than the queue size ${this.size}`));
    }
    const head = this.#avail.u16(AVAIL_RING + 2 * (this.#nextAvail & this.#mask));
    const err = this.#walk(head);
    if (err) return this.#break(err);
    this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
    if (this.eventIdx && this.#notifyEnabled) this.#setAvailEvent(this.#nextAvail);
    return this.#chain;
  }

  /**
   * Whether the driver should notify when it makes buffers available (§2.7.10). A device
   * that will look at the available ring again on its own (say, when its requests in flight
   * complete) turns notifications off meanwhile and saves the driver a notification — a VM
   * exit — per request. Without EVENT_IDX this is VIRTQ_USED_F_NO_NOTIFY in the used ring's
   * flags; with it, avail_event stays where it is instead of following each pop. The driver
   * may still notify (§2.7.10: the device MUST handle spurious notifications). After turning
   * them on again, pop() once more: a buffer made available while they were off brings no
   * notification (pop() on an empty ring orders the two with a fence, §2.7.10).
   */
  setNotification(enabled: boolean): void {
    if (enabled === this.#notifyEnabled) return;
    this.#notifyEnabled = enabled;
    if (this.eventIdx) {
      if (enabled) this.#setAvailEvent(this.#nextAvail);
    } else {
      this.#used.setU16(USED_FLAGS, enabled ? 0 : VIRTQ_USED_F_NO_NOTIFY);
    }
  }

  /**
   * Gives back the last `count` chains pop() returned, which the device will not use now
   * (a frame that did not come, a transmit the backend cannot take yet): the next pops
   * return them again, walked afresh. They must be the most recent pops and none of them
   * may have been pushed to the used ring. The driver sees nothing: the available ring is
   * only read. With EVENT_IDX, avail_event stays where pop() left it, past the rewound
   * entries: the driver notifies when it adds a buffer the device has not seen yet, which is
   * what a device that gave buffers back (too few to use) waits for. Throws RangeError for
   * more chains than are in flight (a device bug).
   */
  rewind(count: number): void {
    const inFlight = (this.#nextAvail - this.#nextUsed) & 0xffff;
    if (!Number.isInteger(count) || count < 0 || count > inFlight) {
      throw new RangeError(`cannot rewind ${count} chains: ${inFlight} in flight`);
    }
    this.#nextAvail = (this.#nextAvail - count) & 0xffff;
  }

  /**
   * Returns the chain at `head` to the driver with `len` bytes written into its
   * device-writable buffers. The element is written before the index (§2.7.8.2: len before idx).
   */
  pushUsed(head: number, len: number): void {
    const slot = USED_RING + VIRTQ_USED_ELEM_SIZE * (this.#nextUsed & this.#mask);
    this.#used.setU32(slot, head >>> 0);
    this.#used.setU32(slot + 4, len >>> 0);
    this.#nextUsed = (this.#nextUsed + 1) & 0xffff;
    this.#used.setU16(USED_IDX, this.#nextUsed);
  }

  /**
   * After pushing used elements: should the driver be interrupted? Without EVENT_IDX, unless
   * it set VIRTQ_AVAIL_F_NO_INTERRUPT; with it, if the used index passed `used_event`
   * since the last decision (§2.7.7.2). Never when nothing was pushed since then.
   */
  needsNotification(): boolean {
    const used = this.#nextUsed;
    const old = this.#signalledUsed;
    if (old === used) return false;
    this.#signalledUsed = used;
    fence();
    if (!this.eventIdx) return (this.#avail.u16(AVAIL_FLAGS) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
    if (old === undefined) return true;
    const usedEvent = this.#avail.u16(AVAIL_RING + 2 * this.size);
    return vringNeedEvent(usedEvent, used, old);
  }

  save(): QueueState {
    return { nextAvail: this.#nextAvail, nextUsed: this.#nextUsed };
  }

  #setAvailEvent(idx: number): void {
    this.#used.setU16(USED_RING + VIRTQ_USED_ELEM_SIZE * this.size, idx);
  }

  #break(err: QueueError): QueueError {
    this.#broken = err;
    return err;
  }

  /** Walks the chain at `head` into the chain object. */
  #walk(head: number): QueueError | undefined {
    const chain = this.#chain;
    const mem = this.#mem;
    chain.reset(head);
    let table = this.#desc;
    let entries = this.size;
    let index = head;
    let steps = 0;
    let inIndirect = false;
    let total = 0;
    let sawWritable = false;
    for (;;) {
      if (index >= entries) {
        return fail('DESC_INDEX_OUT_OF_RANGE', `descriptor ${index} is past the ${inIndirect ? 'indirect table' : 'queue'} of ${entries}`);
      }
      if (++steps > entries) {
        return fail('CHAIN_LOOP', `chain from head ${head} visits more than the ${entries} descriptors of its ${inIndirect ? 'indirect table' : 'table'}`);
      }
      const off = VIRTQ_DESC_SIZE * index;
      const addrLo = table.u32(off);
      const addrHi = table.u32(off + 4);
      const len = table.u32(off + 8);
      const flags = table.u16(off + 12);
      const next = table.u16(off + 14);
      // Guest RAM ends below 2^41; a larger address is simply not RAM (and not a safe integer
      // past 2^53).
      const addr = addrHi < 0x200000 ? addrHi * 0x100000000 + addrLo : -1;

      if ((flags & VIRTQ_DESC_F_INDIRECT) !== 0) {
        if (inIndirect) return fail('INDIRECT_NESTED', `indirect descriptor ${index} inside an indirect table (head ${head})`);
        if (!this.indirect) return fail('INDIRECT_NOT_NEGOTIATED', `indirect descriptor ${index} without VIRTIO_F_INDIRECT_DESC`);
        if ((flags & VIRTQ_DESC_F_NEXT) !== 0) return fail('INDIRECT_WITH_NEXT', `descriptor ${index} sets both INDIRECT and NEXT`);
        if (len === 0 || len % VIRTQ_DESC_SIZE !== 0) return fail('INDIRECT_BAD_LENGTH', `indirect table of ${len} bytes at descriptor ${index}`);
        if (len / VIRTQ_DESC_SIZE > VIRTQ_INDIRECT_MAX_ENTRIES) {
          return fail('INDIRECT_TOO_LARGE', `indirect table of ${len / VIRTQ_DESC_SIZE} entries (at most ${VIRTQ_INDIRECT_MAX_ENTRIES})`);
        }
        if (addr < 0 || !mem.contains(addr, len)) return fail('INDIRECT_OUT_OF_RANGE', `indirect table 0x${addrHi.toString(16)}_${addrLo.toString(16)}+${len} is not in guest RAM`);
        // §2.7.5.3.2: the WRITE flag of the descriptor that points at the table is ignored.
        table = new GuestRegion(mem, addr, len);
        entries = len / VIRTQ_DESC_SIZE;
        index = 0;
        steps = 0;
        inIndirect = true;
        continue;
      }

      if (len > 0) {
        if (addr < 0 || !mem.contains(addr, len)) {
          return fail('BUFFER_OUT_OF_RANGE', `buffer 0x${addrHi.toString(16)}_${addrLo.toString(16)}+${len} (descriptor ${index}) is not in guest RAM`);
        }
        total += len;
        if (total > this.maxChainBytes) return fail('CHAIN_TOO_LARGE', `chain from head ${head} holds more than ${this.maxChainBytes} bytes`);
        const writable = (flags & VIRTQ_DESC_F_WRITE) !== 0;
        if (!writable && sawWritable) return fail('READABLE_AFTER_WRITABLE', `device-readable descriptor ${index} follows a device-writable one`);
        sawWritable ||= writable;
        chain.push(addr, len, writable);
      }
      if ((flags & VIRTQ_DESC_F_NEXT) === 0) return undefined;
      index = next;
    }
  }
}

/**
 * Copies `src` into the chain's device-writable buffers, in order, starting `offset` bytes
 * into them. Returns the bytes written (less than `src.length` when the buffers are short).
 */
export function writeToChain(memory: GuestMemory, chain: DescriptorChain, src: Uint8Array, offset = 0): number {
  let skip = offset;
  let done = 0;
  for (let i = 0; i < chain.length && done < src.length; i++) {
    if (!chain.writable(i)) continue;
    const len = chain.len(i);
    if (skip >= len) {
      skip -= len;
      continue;
    }
    const n = Math.min(len - skip, src.length - done);
    memory.write(chain.addr(i) + skip, src.subarray(done, done + n));
    done += n;
    skip = 0;
  }
  return done;
}

/** Copies the chain's device-readable bytes into `dst`. Returns the bytes copied. */
export function readFromChain(memory: GuestMemory, chain: DescriptorChain, dst: Uint8Array): number {
  let done = 0;
  for (let i = 0; i < chain.length && done < dst.length; i++) {
    if (chain.writable(i)) break;
    const n = Math.min(chain.len(i), dst.length - done);
    memory.read(chain.addr(i), dst.subarray(done, done + n));
    done += n;
  }
  return done;
}
