import { VmmError } from '../errors.js';
import { type RamRegion, ramRegions, GIB } from './layout.js';

declare const guestAddressBrand: unique symbol;
/** A guest-physical address. Made only through `GuestAddress(n)`, so a host offset or a
 * length is never passed where a guest address belongs. */
export type GuestAddress = number & { readonly [guestAddressBrand]: true };
export function GuestAddress(n: number): GuestAddress {
  return n as GuestAddress;
}

/**
 * Guest RAM, seen from the VMM. Every access is bounds-checked against the RAM regions;
 * nothing outside guest RAM is ever reachable through it. Devices get a GuestMemory; only
 * the builder creates one.
 *
 * The host mapping is one contiguous range, exposed as ArrayBuffers of at most `chunkSize`
 * bytes each (V8 refuses external buffers over 4 GiB). An access that would straddle two
 * chunks is served by copying; `view()` refuses it, so callers that want zero-copy views
 * fall back to `read()`/`write()`.
 */
export class GuestMemory {
  readonly size: number;
  readonly regions: readonly RamRegion[];
  private readonly chunks: Uint8Array[];
  private readonly chunkSize: number;
  private readonly dataViews: DataView[];

  constructor(size: number, chunks: ArrayBuffer[], chunkSize: number) {
    const total = chunks.reduce((n, c) => n + c.byteLength, 0);
    if (total !== size) {
      throw new VmmError('INVALID_CONFIG', `guest memory chunks hold ${total} bytes, expected ${size}`);
    }
    this.size = size;
    this.regions = ramRegions(size);
    this.chunkSize = chunkSize;
    this.chunks = chunks.map((c) => new Uint8Array(c));
    this.dataViews = chunks.map((c) => new DataView(c));
  }

  /** Guest memory backed by ordinary ArrayBuffers, for unit tests and tools. */
  static anonymous(size: number, chunkSize = GIB): GuestMemory {
    const chunks: ArrayBuffer[] = [];
    for (let off = 0; off < size; off += chunkSize) chunks.push(new ArrayBuffer(Math.min(chunkSize, size - off)));
    return new GuestMemory(size, chunks, chunkSize);
  }

  /** Host offset of `[gpa, gpa+len)`, or -1 if any byte of it is not guest RAM. */
  hostOffset(gpa: GuestAddress | number, len: number): number {
    if (!(len >= 0) || !Number.isSafeInteger(gpa) || gpa < 0) return -1;
    for (const r of this.regions) {
      if (gpa >= r.gpa && gpa + len <= r.gpa + r.size) return r.hostOffset + (gpa - r.gpa);
    }
    return -1;
  }

  /** True when every byte of `[gpa, gpa+len)` is guest RAM. */
  contains(gpa: GuestAddress | number, len: number): boolean {
    return this.hostOffset(gpa, len) >= 0;
  }

  private offsetOrThrow(gpa: number, len: number): number {
    const off = this.hostOffset(gpa, len);
    if (off < 0) {
      throw new VmmError(
        'GUEST_ADDRESS_OUT_OF_RANGE',
        `guest range 0x${gpa.toString(16)}+0x${len.toString(16)} is not in guest RAM`,
      );
    }
    return off;
  }

  /**
   * A zero-copy view of guest RAM, or undefined when the range is not all RAM or crosses a
   * host chunk boundary. The view aliases guest memory: the guest may change it at any time.
   */
  view(gpa: GuestAddress | number, len: number): Uint8Array | undefined {
    const off = this.hostOffset(gpa, len);
    if (off < 0) return undefined;
    const ci = Math.floor(off / this.chunkSize);
    const co = off - ci * this.chunkSize;
    const chunk = this.chunks[ci]!;
    if (co + len > chunk.length) return undefined;
    return chunk.subarray(co, co + len);
  }

  /** Copies `[gpa, gpa+dst.length)` into `dst`. Throws GUEST_ADDRESS_OUT_OF_RANGE. */
  read(gpa: GuestAddress | number, dst: Uint8Array): void {
    let off = this.offsetOrThrow(gpa, dst.length);
    let done = 0;
    while (done < dst.length) {
      const ci = Math.floor(off / this.chunkSize);
      const co = off - ci * this.chunkSize;
      const chunk = this.chunks[ci]!;
      const n = Math.min(dst.length - done, chunk.length - co);
      dst.set(chunk.subarray(co, co + n), done);
      done += n;
      off += n;
    }
  }

  /** Copies `src` into guest RAM at `gpa`. Throws GUEST_ADDRESS_OUT_OF_RANGE. */
  write(gpa: GuestAddress | number, src: Uint8Array): void {
    let off = this.offsetOrThrow(gpa, src.length);
    let done = 0;
    while (done < src.length) {
      const ci = Math.floor(off / this.chunkSize);
      const co = off - ci * this.chunkSize;
      const chunk = this.chunks[ci]!;
      const n = Math.min(src.length - done, chunk.length - co);
      chunk.set(src.subarray(done, done + n), co);
      done += n;
      off += n;
    }
  }

  /** Fills `[gpa, gpa+len)` with `value`. */
  fill(gpa: GuestAddress | number, len: number, value = 0): void {
    let off = this.offsetOrThrow(gpa, len);
    let left = len;
    while (left > 0) {
      const ci = Math.floor(off / this.chunkSize);
      const co = off - ci * this.chunkSize;
      const chunk = this.chunks[ci]!;
      const n = Math.min(left, chunk.length - co);
      chunk.fill(value, co, co + n);
      left -= n;
      off += n;
    }
  }

  /** A DataView and offset for a scalar access that stays inside one chunk. */
  private scalar(gpa: number, len: number): [DataView, number] {
    const off = this.offsetOrThrow(gpa, len);
    const ci = Math.floor(off / this.chunkSize);
    const co = off - ci * this.chunkSize;
    const dv = this.dataViews[ci]!;
    if (co + len > dv.byteLength) {
      // Only possible for a misaligned scalar across a chunk edge; copy through a small buffer.
      const tmp = new Uint8Array(len);
      this.read(gpa, tmp);
      return [new DataView(tmp.buffer), 0];
    }
    return [dv, co];
  }

  readU8(gpa: GuestAddress | number): number {
    const [dv, o] = this.scalar(gpa, 1);
    return dv.getUint8(o);
  }
  readU16(gpa: GuestAddress | number): number {
    const [dv, o] = this.scalar(gpa, 2);
    return dv.getUint16(o, true);
  }
  readU32(gpa: GuestAddress | number): number {
    const [dv, o] = this.scalar(gpa, 4);
    return dv.getUint32(o, true);
  }
  readU64(gpa: GuestAddress | number): bigint {
    const [dv, o] = this.scalar(gpa, 8);
    return dv.getBigUint64(o, true);
  }
  writeU8(gpa: GuestAddress | number, v: number): void {
    this.write(gpa, Uint8Array.of(v & 0xff));
  }
  writeU16(gpa: GuestAddress | number, v: number): void {
    const b = new Uint8Array(2);
    new DataView(b.buffer).setUint16(0, v, true);
    this.write(gpa, b);
  }
  writeU32(gpa: GuestAddress | number, v: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, v >>> 0, true);
    this.write(gpa, b);
  }
  writeU64(gpa: GuestAddress | number, v: bigint | number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(v), true);
    this.write(gpa, b);
  }
}
