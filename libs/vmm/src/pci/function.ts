/**
 * One PCI function with a type 0 configuration header: IDs, Command and Status, six Base
 * Address Registers, the interrupt pin, and a capabilities list. Devices (the host bridge,
 * virtio-pci) extend it and add capabilities and config hooks.
 *
 * Written from the PCI Local Bus Specification 3.0, §6.1 – §6.2. What the guest can do here:
 *
 * - size a BAR by writing all-ones and reading back the mask of writable address bits
 *   (§6.2.5.1): the BAR's write mask is exactly the address bits above its size, so the
 *   masked write in PciConfigSpace produces the answer without a special case;
 * - move a BAR, or turn decoding on and off with Command.IO / Command.MEMORY: after each such
 *   write the function works out where each BAR should now be decoded and asks the bus's
 *   `PciBarMapper` to move it. Subclasses hear of every move through `barMoved()`, which is
 *   how virtio-pci keeps its KVM ioeventfds on the notify addresses;
 * - mask INTx# with Command.INTX_DISABLE; Status.INTERRUPT shows the function's INTx# state
 *   either way (§6.2.3).
 */
import type { BusDevice, DeviceMetrics, IrqLine } from '../bus/device.js';
import { VmmError } from '../errors.js';
import { PciConfigSpace } from './config-space.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_BASE_ADDRESS_IO_MASK,
  PCI_BASE_ADDRESS_MEM_MASK,
  PCI_BASE_ADDRESS_MEM_PREFETCH,
  PCI_BASE_ADDRESS_MEM_TYPE_64,
  PCI_BASE_ADDRESS_SPACE_IO,
  PCI_CACHE_LINE_SIZE,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_COMMAND_WRITABLE,
  PCI_CONFIG_SPACE_SIZE,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_HEADER_TYPE_NORMAL,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_LATENCY_TIMER,
  PCI_NUM_BARS,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  PCI_STATUS_W1C,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from './registers.js';

export type PciBarKind = 'memory32' | 'memory64' | 'io';

/** A BAR a function implements. */
export interface PciBarSpec {
  kind: PciBarKind;
  /** bytes; a power of two, at least 16 for memory and 4 for I/O, at most 256 for I/O */
  size: number;
  prefetchable?: boolean;
  /** takes the accesses that fall in the BAR, at offsets from its base */
  region: BusDevice;
}

/** The bus's side of BAR decoding: puts a BAR's window on the MMIO or port bus. */
export interface PciBarMapper {
  /**
   * Decodes BAR `index` at `base`, replacing any earlier window of that BAR; `base`
   * undefined stops decoding it. Returns false when the window could not be placed (it
   * overlaps another device): the BAR then decodes nowhere.
   */
  mapBar(index: number, space: 'mmio' | 'pio', base: number | undefined, size: number, region: BusDevice): boolean;
}

/** Code run around guest accesses to a range of configuration space. */
export interface ConfigHook {
  offset: number;
  length: number;
  /** before a read that touches the range returns (to refresh bytes the read will see) */
  beforeRead?: () => void;
  /** after a write that touched the range was applied */
  afterWrite?: () => void;
}

export interface PciFunctionOptions {
  vendorId: number;
  deviceId: number;
  /** base class << 16 | sub-class << 8 | programming interface */
  classCode: number;
  revisionId?: number;
  subsystemVendorId?: number;
  subsystemId?: number;
  /** 0 for none, 1..4 for INTA#..INTD# */
  interruptPin?: number;
  /** by BAR index; a 64-bit BAR also takes the next index, which must be left empty */
  bars?: readonly (PciBarSpec | undefined)[];
}

export interface PciFunctionState {
  /** configuration space bytes, base64 */
  config: string;
}

export interface PciFunctionMetrics extends DeviceMetrics {
  /** BAR windows the guest placed over another device: left undecoded */
  barConflicts: number;
}

/** The largest address an MMIO BAR may decode at: the MMIO bus's limit. */
const MMIO_LIMIT = 2 ** 52;
const PIO_LIMIT = 0x10000;

export class PciFunction {
  readonly config: PciConfigSpace;
  readonly bars: readonly (PciBarSpec | undefined)[];
  readonly metrics: PciFunctionMetrics = { missedReads: 0, missedWrites: 0, barConflicts: 0 };

  readonly #hooks: ConfigHook[] = [];
  readonly #decoded: (number | undefined)[] = new Array<number | undefined>(PCI_NUM_BARS).fill(undefined);
  #mapper: PciBarMapper | undefined;
  #intx: IrqLine | undefined;
  #intxLevel = false;
  #intxOut = false;
  #restored = false;

  constructor(options: PciFunctionOptions) {
    const c = (this.config = new PciConfigSpace(PCI_CONFIG_SPACE_SIZE));
    c.setU16(PCI_VENDOR_ID, options.vendorId);
    c.setU16(PCI_DEVICE_ID, options.deviceId);
    c.setU8(PCI_REVISION_ID, options.revisionId ?? 0);
    c.setU8(PCI_CLASS_PROG, options.classCode & 0xff);
    c.setU16(PCI_CLASS_PROG + 1, (options.classCode >>> 8) & 0xffff);
    c.setU8(PCI_HEADER_TYPE, PCI_HEADER_TYPE_NORMAL);
    c.setU16(PCI_SUBSYSTEM_VENDOR_ID, options.subsystemVendorId ?? 0);
    c.setU16(PCI_SUBSYSTEM_ID, options.subsystemId ?? 0);
    c.setU8(PCI_INTERRUPT_PIN, options.interruptPin ?? 0);

    c.setWritable(PCI_COMMAND, 2, PCI_COMMAND_WRITABLE);
    c.setWriteOneToClear(PCI_STATUS, 2, PCI_STATUS_W1C);
    // Cache line size and latency timer are plain storage to us; the interrupt line is the
    // scratch byte firmware writes the routing into (§6.2.4).
    c.setWritable(PCI_CACHE_LINE_SIZE, 1, 0xff);
    c.setWritable(PCI_LATENCY_TIMER, 1, 0xff);
    c.setWritable(PCI_INTERRUPT_LINE, 1, 0xff);

    const bars: (PciBarSpec | undefined)[] = new Array<PciBarSpec | undefined>(PCI_NUM_BARS).fill(undefined);
    (options.bars ?? []).forEach((spec, i) => {
      if (spec === undefined) return;
      validateBar(spec, i, bars);
      bars[i] = spec;
      this.#initBarRegister(i, spec);
    });
    this.bars = bars;
  }

  // --- the guest's side: configuration accesses, as the bus forwards them ---

  /** A configuration read of 1, 2 or 4 bytes at `offset` (within one dword). */
  configRead(offset: number, data: Uint8Array): void {
    for (const h of this.#hooks) {
      if (h.beforeRead && overlaps(offset, data.length, h.offset, h.length)) h.beforeRead();
    }
    this.config.read(offset, data);
  }

  /** A configuration write of 1, 2 or 4 bytes at `offset` (within one dword). */
  configWrite(offset: number, data: Uint8Array): void {
    const commandBefore = this.config.getU16(PCI_COMMAND);
    this.config.write(offset, data);
    const touchesCommand = overlaps(offset, data.length, PCI_COMMAND, 2);
    if (touchesCommand || overlaps(offset, data.length, PCI_BASE_ADDRESS_0, 4 * PCI_NUM_BARS)) this.updateBarDecoding();
    if (touchesCommand && ((commandBefore ^ this.config.getU16(PCI_COMMAND)) & PCI_COMMAND_INTX_DISABLE) !== 0) this.#driveIntx();
    for (const h of this.#hooks) {
      if (h.afterWrite && overlaps(offset, data.length, h.offset, h.length)) h.afterWrite();
    }
  }

  // --- the bus's side ---

  /** Called once by the bus: where BARs are decoded and the INTx# line (if the pin is used). */
  attach(mapper: PciBarMapper, intx: IrqLine | undefined): void {
    this.#mapper = mapper;
    this.#intx = intx;
    this.#intxOut = false;
    this.updateBarDecoding();
    this.#driveIntx();
  }

  /** Programs BAR `index` with `address`, as firmware does before the OS runs. */
  assignBar(index: number, address: number): void {
    const spec = this.bars[index];
    if (spec === undefined) return;
    const off = PCI_BASE_ADDRESS_0 + 4 * index;
    if (spec.kind === 'io') {
      this.config.setU32(off, ((address & PCI_BASE_ADDRESS_IO_MASK) | PCI_BASE_ADDRESS_SPACE_IO) >>> 0);
    } else {
      const flags = this.config.getU32(off) & ~PCI_BASE_ADDRESS_MEM_MASK;
      this.config.setU32(off, ((address % 2 ** 32) & PCI_BASE_ADDRESS_MEM_MASK | flags) >>> 0);
      if (spec.kind === 'memory64') this.config.setU32(off + 4, Math.floor(address / 2 ** 32) >>> 0);
    }
    this.updateBarDecoding();
  }

  /** Sets Command bits from the host side (firmware enabling decode). */
  setCommandBits(bits: number): void {
    this.config.setU16(PCI_COMMAND, (this.config.getU16(PCI_COMMAND) | bits) & PCI_COMMAND_WRITABLE);
    this.updateBarDecoding();
    this.#driveIntx();
  }

  /** The interrupt pin (0 none, 1..4 INTA#..INTD#). */
  get interruptPin(): number {
    return this.config.getU8(PCI_INTERRUPT_PIN);
  }

  /** Where BAR `index` is decoded now, or undefined. */
  barAddress(index: number): number | undefined {
    return this.#decoded[index];
  }

  /** The address programmed in BAR `index` (decoded or not). */
  barRegisterAddress(index: number): number {
    const spec = this.bars[index];
    if (spec === undefined) return 0;
    const off = PCI_BASE_ADDRESS_0 + 4 * index;
    const lo = this.config.getU32(off);
    if (spec.kind === 'io') return lo & 0xfffc;
    const base = (lo & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    return spec.kind === 'memory64' ? this.config.getU32(off + 4) * 2 ** 32 + base : base;
  }

  /**
   * The configuration space came from a snapshot: the bus must keep the BAR addresses and
   * Command bits the guest left, not place them anew.
   */
  get restored(): boolean {
    return this.#restored;
  }

  /** Bus mastering (DMA) is enabled. */
  get busMaster(): boolean {
    return (this.config.getU16(PCI_COMMAND) & PCI_COMMAND_MASTER) !== 0;
  }

  // --- the device's side ---

  /** Drives the function's INTx# (true = asserted); masked by Command.INTX_DISABLE. */
  setIntx(level: boolean): void {
    if (level === this.#intxLevel) return;
    this.#intxLevel = level;
    const status = this.config.getU16(PCI_STATUS);
    this.config.setU16(PCI_STATUS, level ? status | PCI_STATUS_INTERRUPT : status & ~PCI_STATUS_INTERRUPT);
    this.#driveIntx();
  }

  /** Runs `hook` around guest accesses to its range (for capabilities with side effects). */
  addConfigHook(hook: ConfigHook): void {
    this.#hooks.push(hook);
  }

  /** Called after BAR `index` moved: `base` is where it now decodes, or undefined. */
  protected barMoved(_index: number, _base: number | undefined): void {}

  savePci(): PciFunctionState {
    return { config: Buffer.from(this.config.snapshot()).toString('base64') };
  }

  /** Restores configuration bytes; call at the end of a subclass constructor. */
  protected restorePci(state: PciFunctionState): void {
    this.config.restore(new Uint8Array(Buffer.from(state.config, 'base64')));
    this.#restored = true;
    // The INTx# state is the device's: the snapshot's Status bit is recomputed by setIntx.
    this.#intxLevel = (this.config.getU16(PCI_STATUS) & PCI_STATUS_INTERRUPT) !== 0;
  }

  /** Works out where each BAR should decode now and moves the ones that changed. */
  protected updateBarDecoding(): void {
    const command = this.config.getU16(PCI_COMMAND);
    for (let i = 0; i < PCI_NUM_BARS; i++) {
      const spec = this.bars[i];
      if (spec === undefined) continue;
      const io = spec.kind === 'io';
      const enabled = (command & (io ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY)) !== 0;
      const address = this.barRegisterAddress(i);
      // Address 0 is how firmware leaves a BAR unassigned; a window past the bus's end
      // (a 64-bit BAR mid-sizing, say) cannot decode.
      const limit = io ? PIO_LIMIT : MMIO_LIMIT;
      const want = this.#mapper && enabled && address !== 0 && address + spec.size <= limit ? address : undefined;
      if (want === this.#decoded[i]) continue;
      let now: number | undefined;
      if (this.#mapper) {
        const ok = this.#mapper.mapBar(i, io ? 'pio' : 'mmio', want, spec.size, spec.region);
        if (ok) now = want;
        else {
          this.metrics.barConflicts++;
          this.#mapper.mapBar(i, io ? 'pio' : 'mmio', undefined, spec.size, spec.region);
        }
      }
      if (now === this.#decoded[i]) continue;
      this.#decoded[i] = now;
      this.barMoved(i, now);
    }
  }

  #initBarRegister(index: number, spec: PciBarSpec): void {
    const off = PCI_BASE_ADDRESS_0 + 4 * index;
    if (spec.kind === 'io') {
      this.config.setU32(off, PCI_BASE_ADDRESS_SPACE_IO);
      // Only 16 address bits decode on x86; the upper half is hardwired to 0.
      this.config.setWritable(off, 4, ~(spec.size - 1) & 0xfffc);
      return;
    }
    const flags = (spec.kind === 'memory64' ? PCI_BASE_ADDRESS_MEM_TYPE_64 : 0) | (spec.prefetchable ? PCI_BASE_ADDRESS_MEM_PREFETCH : 0);
    this.config.setU32(off, flags);
    if (spec.kind === 'memory32') {
      this.config.setWritable(off, 4, (~(spec.size - 1) & PCI_BASE_ADDRESS_MEM_MASK) >>> 0);
      return;
    }
    const lowMask = spec.size >= 2 ** 32 ? 0 : (~(spec.size - 1) & PCI_BASE_ADDRESS_MEM_MASK) >>> 0;
    const highMask = spec.size > 2 ** 32 ? ~(spec.size / 2 ** 32 - 1) >>> 0 : 0xffffffff;
    this.config.setWritable(off, 4, lowMask);
    this.config.setWritable(off + 4, 4, highMask);
  }

  #driveIntx(): void {
    const masked = (this.config.getU16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE) !== 0;
    const out = this.#intxLevel && !masked;
    if (out === this.#intxOut || this.#intx === undefined) return;
    this.#intxOut = out;
    this.#intx.set(out);
  }
}

function overlaps(a: number, alen: number, b: number, blen: number): boolean {
  return a < b + blen && b < a + alen;
}

function validateBar(spec: PciBarSpec, index: number, bars: (PciBarSpec | undefined)[]): void {
  const pow2 = spec.size > 0 && Number.isSafeInteger(spec.size) && 2 ** Math.round(Math.log2(spec.size)) === spec.size;
  const minSize = spec.kind === 'io' ? 4 : 16;
  const bad =
    !pow2 ||
    spec.size < minSize ||
    (spec.kind === 'io' && spec.size > 256) ||
    (spec.kind === 'memory32' && spec.size > 2 ** 31) ||
    index >= PCI_NUM_BARS ||
    (spec.kind === 'memory64' && index === PCI_NUM_BARS - 1) ||
    bars[index] !== undefined ||
    (index > 0 && bars[index - 1]?.kind === 'memory64');
  if (bad) {
    throw new VmmError('INVALID_CONFIG', `PCI BAR ${index} (${spec.kind}, ${spec.size} bytes) is not a valid BAR`);
  }
}
