/**
 * A PCI display with a linear framebuffer and the Bochs VBE DISPI registers — the device the
 * Linux `bochs` DRM driver binds to (PCI 1234:1111) without VGA behind it.
 *
 *   BAR0  video memory (prefetchable). KVM maps it as its own memory slot with dirty logging,
 *         so guest drawing never exits to us; the `Framebuffer` reads the dirty log.
 *   BAR2  4 KiB of registers: the DISPI registers at 0x500 + 2 × index (16-bit); 0x000–0x3FF
 *         would hold an EDID blob and 0x400–0x41F the VGA ports, neither of which this display
 *         has (they read as zeros, writes are dropped); 0x600 is the QEMU extension block,
 *         whose size register reads 0 ("absent").
 *   ports 0x1CE/0x1CF (optional): DISPI index and data, as the VGA BIOS uses them.
 *
 * The device owns the register state and publishes the picture as a `Framebuffer`; it does
 * not map memory itself: the builder passes a `FramebufferMemory` that puts video memory where
 * the guest places BAR0.
 */
import type { BusDevice, DeviceMetrics } from '../../bus/device.js';
import { VmmError } from '../../errors.js';
import { PciFunction, type PciFunctionState } from '../../pci/function.js';
import { Dispi, VBE_DISPI_INDEX_NB, type DispiState } from './dispi.js';
import { Framebuffer, type DirtyLogSource } from './framebuffer.js';

export const BOCHS_DISPLAY_VENDOR_ID = 0x1234;
export const BOCHS_DISPLAY_DEVICE_ID = 0x1111;
/** Display controller, "other": a framebuffer without the legacy VGA ranges. */
export const BOCHS_DISPLAY_CLASS = 0x038000;

export const BOCHS_DISPLAY_VRAM_BAR = 0;
export const BOCHS_DISPLAY_MMIO_BAR = 2;
export const BOCHS_DISPLAY_MMIO_SIZE = 0x1000;
export const BOCHS_MMIO_EDID = 0x000;
export const BOCHS_MMIO_VGA = 0x400;
export const BOCHS_MMIO_DISPI = 0x500;
export const BOCHS_MMIO_QEMU_EXT = 0x600;

/** The legacy DISPI ports: index at 0x1CE, data at 0x1CF (0x1D0 on some machines). */
export const VBE_DISPI_IOPORT_INDEX = 0x1ce;
export const VBE_DISPI_IOPORT_WINDOW = 3;

export const DEFAULT_VRAM_SIZE = 16 * 1024 * 1024;
export const MIN_VRAM_SIZE = 1024 * 1024;
export const MAX_VRAM_SIZE = 256 * 1024 * 1024;

/** Where video memory appears to the guest. */
export interface FramebufferMemory {
  /** Maps video memory at guest-physical `gpa`, or unmaps it (undefined). False when KVM
   * would not map it there (the guest put BAR0 over something else). */
  map(gpa: number | undefined): boolean;
}

export interface BochsDisplayState {
  pci: PciFunctionState;
  dispi: DispiState;
  /** the legacy index register */
  index: number;
}

export interface BochsDisplayMetrics extends DeviceMetrics {
  /** BAR0 placements KVM refused to map */
  mapFailures: number;
  /** accesses to video memory that exited to us (BAR0 decoded but not mapped) */
  slowVramAccesses: number;
}

export interface BochsDisplayOptions {
  /** video memory: a power of two between 1 and 256 MiB */
  vram: Uint8Array;
  memory: FramebufferMemory;
  dirtyLog?: DirtyLogSource;
  state?: BochsDisplayState;
}

export class BochsDisplay extends PciFunction {
  readonly framebuffer: Framebuffer;
  readonly dispi: Dispi;
  /** the legacy port pair, for the port bus at VBE_DISPI_IOPORT_INDEX */
  readonly ports: BusDevice;
  override readonly metrics: BochsDisplayMetrics & { barConflicts: number } = {
    missedReads: 0,
    missedWrites: 0,
    barConflicts: 0,
    mapFailures: 0,
    slowVramAccesses: 0,
  };
  readonly #memory: FramebufferMemory;
  #index = 0;

  constructor(options: BochsDisplayOptions) {
    const { vram } = options;
    const size = vram.length;
    if (size < MIN_VRAM_SIZE || size > MAX_VRAM_SIZE || (size & (size - 1)) !== 0) {
      throw new VmmError('INVALID_CONFIG', `video memory must be a power of two from 1 to 256 MiB, not ${size} bytes`);
    }
    const framebuffer = new Framebuffer({ vram, ...(options.dirtyLog ? { dirtyLog: options.dirtyLog } : {}) });
    const dispi = new Dispi({
      vramSize: size,
      clear: (offset, length) => {
        vram.fill(0, offset, offset + length);
        framebuffer.markDirty(offset, length);
      },
      onScanoutChange: () => framebuffer.setScanout(dispi.scanout()),
      ...(options.state ? { state: options.state.dispi } : {}),
    });
    // The BARs' accesses go to this object, which does not exist before super().
    const self: { device?: BochsDisplay } = {};
    super({
      vendorId: BOCHS_DISPLAY_VENDOR_ID,
      deviceId: BOCHS_DISPLAY_DEVICE_ID,
      classCode: BOCHS_DISPLAY_CLASS,
      bars: [
        {
          kind: 'memory32',
          size,
          prefetchable: true,
          region: { read: (o, d) => self.device!.#vramRead(o, d), write: (o, d) => self.device!.#vramWrite(o, d) },
        },
        undefined,
        {
          kind: 'memory32',
          size: BOCHS_DISPLAY_MMIO_SIZE,
          region: { read: (o, d) => self.device!.#mmioRead(o, d), write: (o, d) => self.device!.#mmioWrite(o, d) },
        },
      ],
    });
    self.device = this;
    this.framebuffer = framebuffer;
    this.dispi = dispi;
    this.#memory = options.memory;
    this.ports = { read: (o, d) => this.#portRead(o, d), write: (o, d) => this.#portWrite(o, d) };
    framebuffer.setScanout(dispi.scanout());
    if (options.state) {
      this.#index = options.state.index & 0xffff;
      this.restorePci(options.state.pci);
    }
  }

  save(): BochsDisplayState {
    return { pci: this.savePci(), dispi: this.dispi.save(), index: this.#index };
  }

  protected override barMoved(index: number, base: number | undefined): void {
    if (index !== BOCHS_DISPLAY_VRAM_BAR) return;
    if (!this.#memory.map(base)) {
      this.metrics.mapFailures++;
      this.#memory.map(undefined);
    }
    // A new slot starts with an empty log: whatever it held before counts as changed.
    this.framebuffer.markAllDirty();
  }

  // --- BAR0: video memory, when an access exits (it is mapped in KVM otherwise) ---

  #vramRead(offset: number, data: Uint8Array): void {
    this.metrics.slowVramAccesses++;
    const vram = this.framebuffer.vram;
    if (offset + data.length > vram.length) {
      data.fill(0xff);
      return;
    }
    data.set(vram.subarray(offset, offset + data.length));
  }

  #vramWrite(offset: number, data: Uint8Array): void {
    this.metrics.slowVramAccesses++;
    const vram = this.framebuffer.vram;
    if (offset + data.length > vram.length) return;
    vram.set(data, offset);
    this.framebuffer.markDirty(offset, data.length);
  }

  // --- BAR2: registers ---

  #mmioRead(offset: number, data: Uint8Array): void {
    data.fill(0);
    const reg = offset - BOCHS_MMIO_DISPI;
    if (reg < 0 || reg >= 2 * VBE_DISPI_INDEX_NB) {
      // EDID, VGA ports and the QEMU extension block: absent, read as zeros.
      return;
    }
    for (let i = 0; i < data.length; i++) {
      const r = reg + i;
      if (r >= 2 * VBE_DISPI_INDEX_NB) break;
      data[i] = (this.dispi.read(r >> 1) >> (8 * (r & 1))) & 0xff;
    }
  }

  #mmioWrite(offset: number, data: Uint8Array): void {
    const reg = offset - BOCHS_MMIO_DISPI;
    if (reg < 0 || reg >= 2 * VBE_DISPI_INDEX_NB) {
      // The VGA ports at 0x400 are written by drivers that blank the screen through them;
      // there is no VGA to blank. Nothing else here is writable.
      if (offset < BOCHS_MMIO_VGA || offset >= BOCHS_MMIO_DISPI) this.metrics.missedWrites++;
      return;
    }
    // The registers are 16 bits wide: aligned 16- or 32-bit writes (two registers) only.
    if ((reg & 1) !== 0 || (data.length !== 2 && data.length !== 4)) {
      this.metrics.missedWrites++;
      return;
    }
    for (let i = 0; i < data.length && reg + i < 2 * VBE_DISPI_INDEX_NB; i += 2) {
      this.dispi.write((reg + i) >> 1, data[i]! | (data[i + 1]! << 8));
    }
  }

  // --- the legacy ports: 0x1CE index, 0x1CF (and 0x1D0) data ---

  #portRead(offset: number, data: Uint8Array): void {
    if (data.length > 2) {
      this.metrics.missedReads++;
      data.fill(0xff);
      return;
    }
    const value = offset === 0 ? this.#index : this.dispi.read(this.#index);
    data[0] = value & 0xff;
    if (data.length === 2) data[1] = (value >> 8) & 0xff;
  }

  #portWrite(offset: number, data: Uint8Array): void {
    if (data.length > 2) {
      this.metrics.missedWrites++;
      return;
    }
    const value = data.length === 2 ? data[0]! | (data[1]! << 8) : data[0]!;
    if (offset === 0) this.#index = value;
    else this.dispi.write(this.#index, value);
  }
}
