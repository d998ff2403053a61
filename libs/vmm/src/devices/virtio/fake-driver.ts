/**
 * A fake virtio driver for tests: it plays the guest's part against guest memory and the
 * buses exactly as a driver in a VM would, with no KVM.
 *
 * - `FakeSplitQueue` writes descriptor tables and the available ring, and reads the used
 *   ring, in a `GuestMemory`.
 * - `FakeVirtioPciDriver` finds a virtio-pci function's capabilities through configuration
 *   space (ECAM or any `PciConfigAccess`), and drives its common configuration, notify and
 *   ISR structures and its MSI-X table with MMIO accesses on the `MmioBus`.
 */
import { readLe, writeLe } from '../../bus/device.js';
import type { MmioBus } from '../../bus/io-bus.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import type { PciConfigAccess } from '../../pci/bus.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VNDR,
  PCI_CAPABILITY_LIST,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_UPPER_ADDR,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from '../../pci/registers.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
} from './device.js';
import { availRingBytes, descTableBytes, type QueueLayout } from './queue.js';
import {
  VIRTIO_PCI_CAP_BAR,
  VIRTIO_PCI_CAP_CFG_TYPE,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_LENGTH,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_CAP_OFFSET,
  VIRTIO_PCI_COMMON_DF,
  VIRTIO_PCI_COMMON_DFSELECT,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_Q_AVAILHI,
  VIRTIO_PCI_COMMON_Q_AVAILLO,
  VIRTIO_PCI_COMMON_Q_DESCHI,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_COMMON_Q_USEDHI,
  VIRTIO_PCI_COMMON_Q_USEDLO,
  VIRTIO_PCI_COMMON_STATUS,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
} from './virtio-pci.js';

export interface FakeDescriptor {
  addr: number;
  len: number;
  flags?: number;
  next?: number;
}

const descScratch = new Uint8Array(16);
const descView = new DataView(descScratch.buffer);

/** Writes descriptor `index` of the table at `table` (one 16-byte write). */
export function writeDescriptor(memory: GuestMemory, table: number, index: number, d: FakeDescriptor): void {
  descView.setUint32(0, d.addr % 2 ** 32, true);
  descView.setUint32(4, Math.floor(d.addr / 2 ** 32) % 2 ** 32, true);
  descView.setUint32(8, d.len >>> 0, true);
  descView.setUint16(12, d.flags ?? 0, true);
  descView.setUint16(14, d.next ?? 0, true);
  memory.write(table + 16 * index, descScratch);
}

/** The driver's side of one split virtqueue in guest memory. */
export class FakeSplitQueue {
  readonly layout: QueueLayout;
  #availIdx = 0;

  constructor(
    readonly memory: GuestMemory,
    layout: QueueLayout,
  ) {
    this.layout = layout;
    // §2.7.10.1: the driver MUST initialize the used ring's flags to 0 (and we zero it all).
    memory.fill(layout.desc, descTableBytes(layout.size));
    memory.fill(layout.avail, availRingBytes(layout.size));
    memory.fill(layout.used, 6 + 8 * layout.size);
  }

  /** A layout with the three parts one after the other from `base`. */
  static layoutAt(base: number, size: number): QueueLayout {
    const avail = base + descTableBytes(size);
    const used = Math.ceil((avail + availRingBytes(size)) / 4) * 4;
    return { size, desc: base, avail, used };
  }

  /** Bytes a layout from `layoutAt` takes. */
  static bytes(size: number): number {
    const l = FakeSplitQueue.layoutAt(0, size);
    return l.used + 6 + 8 * size;
  }

  setDesc(index: number, d: FakeDescriptor): void {
    writeDescriptor(this.memory, this.layout.desc, index, d);
  }

  /** Puts heads in the available ring and then moves its index past them. */
  publish(...heads: number[]): void {
    for (const h of heads) {
      this.memory.writeU16(this.layout.avail + 4 + 2 * (this.#availIdx % this.layout.size), h);
      this.#availIdx = (this.#availIdx + 1) & 0xffff;
    }
    this.memory.writeU16(this.layout.avail + 2, this.#availIdx);
  }

  /** Writes the available index directly (hostile drivers). */
  setAvailIdx(idx: number): void {
    this.#availIdx = idx & 0xffff;
    this.memory.writeU16(this.layout.avail + 2, this.#availIdx);
  }

  setAvailFlags(flags: number): void {
    this.memory.writeU16(this.layout.avail, flags);
  }

  /** used_event, at the end of the available ring (VIRTIO_F_EVENT_IDX). */
  setUsedEvent(idx: number): void {
    this.memory.writeU16(this.layout.avail + 4 + 2 * this.layout.size, idx);
  }

  usedIdx(): number {
    return this.memory.readU16(this.layout.used + 2);
  }

  used(i: number): { id: number; len: number } {
    const at = this.layout.used + 4 + 8 * (i % this.layout.size);
    return { id: this.memory.readU32(at), len: this.memory.readU32(at + 4) };
  }

  /** avail_event, at the end of the used ring (VIRTIO_F_EVENT_IDX). */
  availEvent(): number {
    return this.memory.readU16(this.layout.used + 4 + 8 * this.layout.size);
  }
}

interface VirtioCap {
  bar: number;
  offset: number;
  length: number;
  notifyMultiplier: number;
}

/** A virtio-pci driver reduced to register accesses. */
export class FakeVirtioPciDriver {
  readonly #cfg: PciConfigAccess;
  readonly #mmio: MmioBus;
  readonly #slot: number;
  readonly caps = new Map<number, VirtioCap>();
  msixCap = 0;

  constructor(options: { config: PciConfigAccess; mmio: MmioBus; slot: number }) {
    this.#cfg = options.config;
    this.#mmio = options.mmio;
    this.#slot = options.slot;
  }

  cfgRead(offset: number, len: number): number {
    const d = new Uint8Array(len);
    this.#cfg.configRead(0, this.#slot, 0, offset, d);
    return readLe(d);
  }

  cfgWrite(offset: number, len: number, value: number): void {
    const d = new Uint8Array(len);
    writeLe(d, value);
    this.#cfg.configWrite(0, this.#slot, 0, offset, d);
  }

  mmioRead(gpa: number, len: number): number {
    const d = new Uint8Array(len);
    this.#mmio.read(gpa, d);
    return readLe(d);
  }

  mmioWrite(gpa: number, len: number, value: number): void {
    const d = new Uint8Array(len);
    writeLe(d, value);
    this.#mmio.write(gpa, d);
  }

  /** Walks the capability list, as virtio_pci_modern's probe does; enables memory decode and bus mastering. */
  probe(): void {
    this.cfgWrite(PCI_COMMAND, 2, this.cfgRead(PCI_COMMAND, 2) | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
    let at = this.cfgRead(PCI_CAPABILITY_LIST, 1);
    for (let guard = 0; at !== 0 && guard < 48; guard++) {
      const id = this.cfgRead(at, 1);
      if (id === PCI_CAP_ID_MSIX) this.msixCap = at;
      if (id === PCI_CAP_ID_VNDR) {
        const type = this.cfgRead(at + VIRTIO_PCI_CAP_CFG_TYPE, 1);
        if (!this.caps.has(type)) {
          this.caps.set(type, {
            bar: this.cfgRead(at + VIRTIO_PCI_CAP_BAR, 1),
            offset: this.cfgRead(at + VIRTIO_PCI_CAP_OFFSET, 4),
            length: this.cfgRead(at + VIRTIO_PCI_CAP_LENGTH, 4),
            notifyMultiplier: type === VIRTIO_PCI_CAP_NOTIFY_CFG ? this.cfgRead(at + VIRTIO_PCI_NOTIFY_CAP_MULT, 4) : 0,
          });
        }
      }
      at = this.cfgRead(at + 1, 1);
    }
  }

  /** The address BAR `bar` is programmed with. */
  barBase(bar: number): number {
    const lo = this.cfgRead(PCI_BASE_ADDRESS_0 + 4 * bar, 4);
    const base = (lo & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    if ((lo & 0x6) === PCI_BASE_ADDRESS_MEM_TYPE_64) return this.cfgRead(PCI_BASE_ADDRESS_0 + 4 * bar + 4, 4) * 2 ** 32 + base;
    return base;
  }

  #structure(type: number): number {
    const c = this.caps.get(type);
    if (c === undefined) throw new Error(`no virtio capability of type ${type}`);
    return this.barBase(c.bar) + c.offset;
  }

  common(field: number, len: number): number {
    return this.mmioRead(this.#structure(VIRTIO_PCI_CAP_COMMON_CFG) + field, len);
  }

  setCommon(field: number, len: number, value: number): void {
    this.mmioWrite(this.#structure(VIRTIO_PCI_CAP_COMMON_CFG) + field, len, value);
  }

  status(): number {
    return this.common(VIRTIO_PCI_COMMON_STATUS, 1);
  }

  setStatus(value: number): void {
    this.setCommon(VIRTIO_PCI_COMMON_STATUS, 1, value);
  }

  reset(): void {
    this.setStatus(0);
  }

  deviceFeatures(): bigint {
    this.setCommon(VIRTIO_PCI_COMMON_DFSELECT, 4, 0);
    const lo = this.common(VIRTIO_PCI_COMMON_DF, 4);
    this.setCommon(VIRTIO_PCI_COMMON_DFSELECT, 4, 1);
    const hi = this.common(VIRTIO_PCI_COMMON_DF, 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  writeDriverFeatures(features: bigint): void {
    this.setCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, 0);
    this.setCommon(VIRTIO_PCI_COMMON_GF, 4, Number(features & 0xffffffffn));
    this.setCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, 1);
    this.setCommon(VIRTIO_PCI_COMMON_GF, 4, Number((features >> 32n) & 0xffffffffn));
  }

  /** §3.1.1 steps 1–6: reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK and its check. */
  negotiate(features: bigint): boolean {
    this.reset();
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE);
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
    this.writeDriverFeatures(features);
    this.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);
    return (this.status() & VIRTIO_CONFIG_S_FEATURES_OK) !== 0;
  }

  /** §4.1.5.1.3: select, size, vector, addresses, enable. Returns the vector read back. */
  setupQueue(index: number, layout: QueueLayout, vector?: number): number | undefined {
    this.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
    this.setCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2, layout.size);
    let readBack: number | undefined;
    if (vector !== undefined) {
      this.setCommon(VIRTIO_PCI_COMMON_Q_MSIX, 2, vector);
      readBack = this.common(VIRTIO_PCI_COMMON_Q_MSIX, 2);
    }
    this.setCommon(VIRTIO_PCI_COMMON_Q_DESCLO, 4, layout.desc % 2 ** 32);
    this.setCommon(VIRTIO_PCI_COMMON_Q_DESCHI, 4, Math.floor(layout.desc / 2 ** 32));
    this.setCommon(VIRTIO_PCI_COMMON_Q_AVAILLO, 4, layout.avail % 2 ** 32);
    this.setCommon(VIRTIO_PCI_COMMON_Q_AVAILHI, 4, Math.floor(layout.avail / 2 ** 32));
    this.setCommon(VIRTIO_PCI_COMMON_Q_USEDLO, 4, layout.used % 2 ** 32);
    this.setCommon(VIRTIO_PCI_COMMON_Q_USEDHI, 4, Math.floor(layout.used / 2 ** 32));
    this.setCommon(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 1);
    return readBack;
  }

  driverOk(): void {
    this.setStatus(this.status() | VIRTIO_CONFIG_S_DRIVER_OK);
  }

  /** The address queue `index` is notified at (§4.1.4.4). */
  notifyAddress(index: number): number {
    this.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, index);
    const off = this.common(VIRTIO_PCI_COMMON_Q_NOFF, 2);
    return this.#structure(VIRTIO_PCI_CAP_NOTIFY_CFG) + off * this.caps.get(VIRTIO_PCI_CAP_NOTIFY_CFG)!.notifyMultiplier;
  }

  /** §4.1.5.2: the driver writes the 16-bit queue index at the queue's notify address. */
  notify(index: number): void {
    this.mmioWrite(this.notifyAddress(index), 2, index);
  }

  readIsr(): number {
    return this.mmioRead(this.#structure(VIRTIO_PCI_CAP_ISR_CFG), 1);
  }

  // MSI-X

  #msixTable(): number {
    const t = this.cfgRead(this.msixCap + PCI_MSIX_TABLE, 4);
    return this.barBase(t & 7) + (t & ~7);
  }

  msixPba(): number {
    const p = this.cfgRead(this.msixCap + PCI_MSIX_PBA, 4);
    return this.mmioRead(this.barBase(p & 7) + (p & ~7), 4);
  }

  setMsixControl(bits: number): void {
    this.cfgWrite(this.msixCap + PCI_MSIX_FLAGS, 2, bits);
  }

  enableMsix(): void {
    this.setMsixControl(PCI_MSIX_FLAGS_ENABLE);
  }

  programVector(v: number, msi: { addressLo: number; addressHi?: number; data: number }, masked = false): void {
    const e = this.#msixTable() + v * PCI_MSIX_ENTRY_SIZE;
    this.mmioWrite(e + PCI_MSIX_ENTRY_LOWER_ADDR, 4, msi.addressLo);
    this.mmioWrite(e + PCI_MSIX_ENTRY_UPPER_ADDR, 4, msi.addressHi ?? 0);
    this.mmioWrite(e + PCI_MSIX_ENTRY_DATA, 4, msi.data);
    this.mmioWrite(e + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
  }

  maskVector(v: number, masked: boolean): void {
    this.mmioWrite(this.#msixTable() + v * PCI_MSIX_ENTRY_SIZE + PCI_MSIX_ENTRY_VECTOR_CTRL, 4, masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
  }
}
