/**
 * MSI-X: the capability in configuration space, the vector table and the Pending Bit Array
 * in a memory BAR (PCI Local Bus Specification 3.0, §6.8.2).
 *
 * Each vector is 16 bytes: message address (low, high), message data, vector control (bit 0
 * masks it). A vector the device raises while it is masked, or while the whole function is
 * masked (Message Control's Function Mask), is not sent: its PBA bit is set instead, and the
 * message goes out when the vector is unmasked (§6.8.2.9: "pending messages ... when the
 * mask is cleared"). Vectors start masked after reset (§6.8.2.9).
 *
 * Each vector owns a GSI of the `MsiRouter`; its route is brought up to date lazily, the
 * first time the vector fires after the guest changed its address or data, so a driver
 * writing address, data and then the mask bit costs one routing update, not three.
 *
 * The object is built before its function (a BAR needs its region at construction) and
 * joins the function's configuration space with `install()`. As a BusDevice it serves one
 * BAR that holds the table at `tableOffset` and the PBA at `pbaOffset`.
 */
import type { BusDevice } from '../bus/device.js';
import { VmmError } from '../errors.js';
import type { PciFunction } from './function.js';
import type { MsiRouter } from './msi-router.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_CAP_MSIX_SIZEOF,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_MAX_VECTORS,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from './registers.js';

export interface MsixOptions {
  vectors: number;
  router: MsiRouter;
  /** offsets of the table and the PBA in the BAR this object serves (8-byte aligned) */
  tableOffset: number;
  pbaOffset: number;
  state?: MsixState;
}

export interface MsixState {
  /** the vector table, base64 */
  table: string;
  /** the Pending Bit Array, base64 */
  pba: string;
}

export interface MsixMetrics {
  /** messages sent */
  delivered: number;
  /** messages held back in the PBA because their vector or the function was masked */
  heldPending: number;
  /** vectors raised while MSI-X was disabled (the device should have used INTx#) */
  raisedWhileDisabled: number;
  missedReads: number;
  missedWrites: number;
}

export class MsixCapability implements BusDevice {
  readonly vectors: number;
  readonly tableOffset: number;
  readonly pbaOffset: number;
  readonly tableSize: number;
  readonly pbaSize: number;
  readonly metrics: MsixMetrics = { delivered: 0, heldPending: 0, raisedWhileDisabled: 0, missedReads: 0, missedWrites: 0 };

  readonly #router: MsiRouter;
  readonly #table: Uint8Array;
  readonly #dv: DataView;
  readonly #pba: Uint8Array;
  readonly #gsis: number[] = [];
  /** the vector's route holds its current message */
  readonly #routed: boolean[];
  #fn: PciFunction | undefined;
  #capOffset = -1;
  #onControlChange: (() => void) | undefined;

  constructor(options: MsixOptions) {
    const n = options.vectors;
    if (!Number.isInteger(n) || n < 1 || n > PCI_MSIX_MAX_VECTORS) {
      throw new VmmError('INVALID_CONFIG', `an MSI-X table holds 1 to ${PCI_MSIX_MAX_VECTORS} vectors, not ${n}`);
    }
    this.vectors = n;
    this.tableOffset = options.tableOffset;
    this.pbaOffset = options.pbaOffset;
    this.tableSize = n * PCI_MSIX_ENTRY_SIZE;
    this.pbaSize = Math.ceil(n / 64) * 8;
    if (
      this.tableOffset % 8 !== 0 ||
      this.pbaOffset % 8 !== 0 ||
      (this.tableOffset < this.pbaOffset + this.pbaSize && this.pbaOffset < this.tableOffset + this.tableSize)
    ) {
      throw new VmmError('INVALID_CONFIG', 'the MSI-X table and PBA must be 8-byte aligned and must not overlap');
    }
    this.#router = options.router;
    this.#table = new Uint8Array(this.tableSize);
    this.#dv = new DataView(this.#table.buffer);
    this.#pba = new Uint8Array(this.pbaSize);
    this.#routed = new Array<boolean>(n).fill(false);
    for (let v = 0; v < n; v++) this.#dv.setUint32(v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, PCI_MSIX_ENTRY_CTRL_MASKBIT, true);
    if (options.state) {
      this.#table.set(Buffer.from(options.state.table, 'base64').subarray(0, this.tableSize));
      this.#pba.set(Buffer.from(options.state.pba, 'base64').subarray(0, this.pbaSize));
    }
    for (let v = 0; v < n; v++) this.#gsis.push(this.#router.allocateGsi());
  }

  /**
   * Adds the capability to `fn`'s configuration space, pointing at BAR `tableBar` for the
   * table and `pbaBar` for the PBA. `onControlChange` runs after the guest flips MSI-X Enable
   * or Function Mask. Returns the capability's offset.
   */
  install(fn: PciFunction, tableBar: number, pbaBar: number, onControlChange?: () => void): number {
    const c = fn.config;
    const off = c.addCapability(PCI_CAP_ID_MSIX, PCI_CAP_MSIX_SIZEOF);
    c.setU16(off + PCI_MSIX_FLAGS, this.vectors - 1);
    c.setU32(off + PCI_MSIX_TABLE, (this.tableOffset | tableBar) >>> 0);
    c.setU32(off + PCI_MSIX_PBA, (this.pbaOffset | pbaBar) >>> 0);
    c.setWritable(off + PCI_MSIX_FLAGS, 2, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);
    this.#fn = fn;
    this.#capOffset = off;
    this.#onControlChange = onControlChange;
    fn.addConfigHook({ offset: off + PCI_MSIX_FLAGS, length: 2, afterWrite: () => this.#controlWritten() });
    return off;
  }

  get capabilityOffset(): number {
    return this.#capOffset;
  }

  /** MSI-X Enable is set: the function must signal through the table, not INTx#. */
  get enabled(): boolean {
    return (this.#control() & PCI_MSIX_FLAGS_ENABLE) !== 0;
  }

  get functionMasked(): boolean {
    return (this.#control() & PCI_MSIX_FLAGS_MASKALL) !== 0;
  }

  vectorMasked(v: number): boolean {
    return (this.#dv.getUint32(v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, true) & PCI_MSIX_ENTRY_CTRL_MASKBIT) !== 0;
  }

  pending(v: number): boolean {
    return (this.#pba[v >> 3]! & (1 << (v & 7))) !== 0;
  }

  /** The GSI that carries vector `v`. */
  gsi(v: number): number {
    return this.#gsis[v]!;
  }

  /** Raises vector `v`: sends its message, or holds it pending while masked. */
  notify(v: number): void {
    if (!(v >= 0 && v < this.vectors)) return;
    if (!this.enabled) {
      this.metrics.raisedWhileDisabled++;
      return;
    }
    if (this.functionMasked || this.vectorMasked(v)) {
      this.#pba[v >> 3] |= 1 << (v & 7);
      this.metrics.heldPending++;
      return;
    }
    this.#send(v);
  }

  // BusDevice: the BAR that holds both structures.

  read(offset: number, data: Uint8Array): void {
    if (offset >= this.tableOffset && offset + data.length <= this.tableOffset + this.tableSize) {
      this.tableRead(offset - this.tableOffset, data);
    } else if (offset >= this.pbaOffset && offset + data.length <= this.pbaOffset + this.pbaSize) {
      this.pbaRead(offset - this.pbaOffset, data);
    } else {
      this.metrics.missedReads++;
      data.fill(0);
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= this.tableOffset && offset + data.length <= this.tableOffset + this.tableSize) {
      this.tableWrite(offset - this.tableOffset, data);
    } else {
      // The PBA is read-only (§6.8.2.10); nothing else is in the BAR.
      this.metrics.missedWrites++;
    }
  }

  tableRead(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o < this.tableSize ? this.#table[o]! : 0;
    }
  }

  /**
   * Software must use aligned dword or qword accesses (§6.8.2); others are taken byte by byte
   * all the same, since the result is "undefined" and ours may as well be sensible.
   */
  tableWrite(offset: number, data: Uint8Array): void {
    const first = Math.floor(offset / PCI_MSIX_ENTRY_SIZE);
    const last = Math.floor((offset + data.length - 1) / PCI_MSIX_ENTRY_SIZE);
    const wasMasked: boolean[] = [];
    for (let v = first; v <= last && v < this.vectors; v++) wasMasked.push(this.vectorMasked(v));
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      if (o >= this.tableSize) break;
      const field = o % PCI_MSIX_ENTRY_SIZE;
      let value = data[i]!;
      if (field === PCI_MSIX_ENTRY_LOWER_ADDR) value &= 0xfc; // dword-aligned address: bits 1:0 are 0
      else if (field === PCI_MSIX_ENTRY_VECTOR_CTRL) value &= PCI_MSIX_ENTRY_CTRL_MASKBIT;
      else if (field > PCI_MSIX_ENTRY_VECTOR_CTRL) value = 0; // reserved
      if (field < PCI_MSIX_ENTRY_VECTOR_CTRL && this.#table[o] !== value) this.#routed[Math.floor(o / PCI_MSIX_ENTRY_SIZE)] = false;
      this.#table[o] = value;
    }
    for (let v = first; v <= last && v < this.vectors; v++) {
      if (wasMasked[v - first] && !this.vectorMasked(v)) this.#deliverPending(v);
    }
  }

  pbaRead(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o < this.pbaSize ? this.#pba[o]! : 0;
    }
  }

  save(): MsixState {
    return { table: Buffer.from(this.#table).toString('base64'), pba: Buffer.from(this.#pba).toString('base64') };
  }

  #control(): number {
    return this.#fn === undefined ? 0 : this.#fn.config.getU16(this.#capOffset + PCI_MSIX_FLAGS);
  }

  #controlWritten(): void {
    if (this.enabled && !this.functionMasked) {
      for (let v = 0; v < this.vectors; v++) this.#deliverPending(v);
    }
    this.#onControlChange?.();
  }

  #deliverPending(v: number): void {
    if (!this.pending(v) || !this.enabled || this.functionMasked || this.vectorMasked(v)) return;
    this.#pba[v >> 3] &= ~(1 << (v & 7));
    this.#send(v);
  }

  #send(v: number): void {
    const gsi = this.#gsis[v]!;
    if (!this.#routed[v]) {
      const e = v * PCI_MSIX_ENTRY_SIZE;
      this.#router.setRoute(gsi, {
        addressLo: this.#dv.getUint32(e + PCI_MSIX_ENTRY_LOWER_ADDR, true),
        addressHi: this.#dv.getUint32(e + PCI_MSIX_ENTRY_UPPER_ADDR, true),
        data: this.#dv.getUint32(e + PCI_MSIX_ENTRY_DATA, true),
      });
      this.#router.commit();
      this.#routed[v] = true;
    }
    this.#router.trigger(gsi);
    this.metrics.delivered++;
  }
}
