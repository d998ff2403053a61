/**
 * The bytes of one PCI function's configuration space, with what the guest may change.
 *
 * Every byte has a write mask (bits the guest can set or clear) and a write-1-to-clear mask
 * (bits the guest clears by writing 1, such as the Status register's error bits, PCI 3.0
 * §6.2.3). A guest write changes only those bits; everything else reads back as the device
 * set it. The device itself changes bytes through the `set*` methods, which ignore the masks.
 *
 * Capabilities (§6.7) are appended with `addCapability`, which links them into the list
 * that starts at PCI_CAPABILITY_LIST and sets the Status register's CAP_LIST bit.
 */
import { VmmError } from '../errors.js';
import {
  PCI_CAP_LIST_NEXT,
  PCI_CAP_START,
  PCI_CAPABILITY_LIST,
  PCI_CONFIG_SPACE_SIZE,
  PCI_STATUS,
  PCI_STATUS_CAP_LIST,
} from './registers.js';

export class PciConfigSpace {
  readonly size: number;
  readonly #bytes: Uint8Array;
  readonly #writable: Uint8Array;
  readonly #w1c: Uint8Array;
  /** where the next capability goes, and the last one's `next` byte */
  #capEnd = PCI_CAP_START;
  #lastCapNext = PCI_CAPABILITY_LIST;

  constructor(size = PCI_CONFIG_SPACE_SIZE) {
    this.size = size;
    this.#bytes = new Uint8Array(size);
    this.#writable = new Uint8Array(size);
    this.#w1c = new Uint8Array(size);
  }

  /** Reads `data.length` bytes at `offset` as the guest sees them; bytes past the end read 0xff. */
  read(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o >= 0 && o < this.size ? this.#bytes[o]! : 0xff;
    }
  }

  /** A guest write: only writable bits change, and write-1-to-clear bits clear on a 1. */
  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      if (o < 0 || o >= this.size) continue;
      const v = data[i]!;
      const wm = this.#writable[o]!;
      const cm = this.#w1c[o]!;
      this.#bytes[o] = ((this.#bytes[o]! & ~wm) | (v & wm)) & ~(v & cm);
    }
  }

  // Device-side access: no masks.

  getU8(offset: number): number {
    return this.#bytes[offset]!;
  }
  getU16(offset: number): number {
    return this.#bytes[offset]! | (this.#bytes[offset + 1]! << 8);
  }
  getU32(offset: number): number {
    return (this.getU16(offset) | (this.getU16(offset + 2) << 16)) >>> 0;
  }
  setU8(offset: number, v: number): void {
    this.#bytes[offset] = v;
  }
  setU16(offset: number, v: number): void {
    this.#bytes[offset] = v & 0xff;
    this.#bytes[offset + 1] = (v >>> 8) & 0xff;
  }
  setU32(offset: number, v: number): void {
    this.setU16(offset, v & 0xffff);
    this.setU16(offset + 2, (v >>> 16) & 0xffff);
  }

  /** Sets the write mask of `width` bytes at `offset` (little-endian, like the register). */
  setWritable(offset: number, width: number, mask: number): void {
    for (let i = 0; i < width; i++) this.#writable[offset + i] = i < 4 ? (mask >>> (8 * i)) & 0xff : 0;
  }

  /** Sets the write-1-to-clear mask of `width` bytes at `offset`. */
  setWriteOneToClear(offset: number, width: number, mask: number): void {
    for (let i = 0; i < width; i++) this.#w1c[offset + i] = i < 4 ? (mask >>> (8 * i)) & 0xff : 0;
  }

  /**
   * Appends a capability of `length` bytes (ID and next pointer included) to the list and
   * returns its offset. Capabilities are dword-aligned (§6.7); running out of the 256-byte
   * space is a wiring error.
   */
  addCapability(id: number, length: number): number {
    const offset = (this.#capEnd + 3) & ~3;
    if (length < 2 || offset + length > PCI_CONFIG_SPACE_SIZE) {
      throw new VmmError('INVALID_CONFIG', `PCI capability 0x${id.toString(16)} of ${length} bytes does not fit in configuration space`);
    }
    this.setU8(offset, id);
    this.setU8(offset + PCI_CAP_LIST_NEXT, 0);
    this.setU8(this.#lastCapNext, offset);
    this.#lastCapNext = offset + PCI_CAP_LIST_NEXT;
    this.#capEnd = offset + length;
    this.setU16(PCI_STATUS, this.getU16(PCI_STATUS) | PCI_STATUS_CAP_LIST);
    return offset;
  }

  /** A copy of the bytes, for snapshots. */
  snapshot(): Uint8Array {
    return this.#bytes.slice();
  }

  /** Restores bytes saved by `snapshot()`; the masks stay as the device built them. */
  restore(bytes: Uint8Array): void {
    this.#bytes.set(bytes.subarray(0, this.size));
  }
}
