/**
 * The Bochs VBE "DISPI" register file: the interface Bochs defined for its VBE extensions and
 * that the Linux `bochs` DRM driver and SeaBIOS's VGA BIOS drive (index/data at ports
 * 0x1CE/0x1CF, or 16-bit registers at 0x500 + 2 × index in the display's MMIO BAR).
 *
 * Written from the Bochs VBE documentation (`vbe_display_api`): a guest picks a version by
 * writing an ID, sets XRES, YRES and BPP with the display disabled, then sets ENABLE with
 * LFB_ENABLED; the mode's lines are VIRT_WIDTH pixels apart and the visible area starts at
 * (X_OFFSET, Y_OFFSET) of that virtual screen, which is how a driver flips pages.
 *
 * Pure: no memory, no bus. It reports what the screen shows (`scanout()`) and asks its owner to
 * clear video memory on enable. Every value comes from the guest and is checked here: a mode
 * that does not fit in video memory shows nothing rather than reading past it.
 */

// Register indices (VBE_DISPI_INDEX_*).
export const VBE_DISPI_INDEX_ID = 0x0;
export const VBE_DISPI_INDEX_XRES = 0x1;
export const VBE_DISPI_INDEX_YRES = 0x2;
export const VBE_DISPI_INDEX_BPP = 0x3;
export const VBE_DISPI_INDEX_ENABLE = 0x4;
export const VBE_DISPI_INDEX_BANK = 0x5;
export const VBE_DISPI_INDEX_VIRT_WIDTH = 0x6;
export const VBE_DISPI_INDEX_VIRT_HEIGHT = 0x7;
export const VBE_DISPI_INDEX_X_OFFSET = 0x8;
export const VBE_DISPI_INDEX_Y_OFFSET = 0x9;
/** video memory in 64 KiB units (read-only) */
export const VBE_DISPI_INDEX_VIDEO_MEMORY_64K = 0xa;
export const VBE_DISPI_INDEX_NB = 0xb;

// Interface versions a guest may select by writing INDEX_ID.
export const VBE_DISPI_ID0 = 0xb0c0;
export const VBE_DISPI_ID5 = 0xb0c5;

// ENABLE bits.
export const VBE_DISPI_ENABLED = 0x01;
/** while set, XRES/YRES/BPP read as the largest values supported */
export const VBE_DISPI_GETCAPS = 0x02;
export const VBE_DISPI_8BIT_DAC = 0x20;
export const VBE_DISPI_LFB_ENABLED = 0x40;
/** enabling does not clear video memory */
export const VBE_DISPI_NOCLEARMEM = 0x80;
const ENABLE_WRITABLE = VBE_DISPI_ENABLED | VBE_DISPI_GETCAPS | VBE_DISPI_8BIT_DAC | VBE_DISPI_LFB_ENABLED | VBE_DISPI_NOCLEARMEM;

/** The largest mode we advertise; video memory is the real bound. */
export const VBE_DISPI_MAX_XRES = 8192;
export const VBE_DISPI_MAX_YRES = 8192;
export const VBE_DISPI_MAX_BPP = 32;

/** Pixel layouts in video memory, by DISPI bits per pixel (little-endian words). */
export type DisplayFormat = 'XRGB8888' | 'RGB888' | 'RGB565' | 'XRGB1555' | 'RGB332';

const FORMAT_BY_BPP: Record<number, DisplayFormat> = {
  32: 'XRGB8888',
  24: 'RGB888',
  16: 'RGB565',
  15: 'XRGB1555',
  // 8 bpp indexes a palette held by the VGA DAC, which this display does not have: the
  // bytes are shown as 3-3-2 RGB so that such a mode is at least visible.
  8: 'RGB332',
};

export function bytesPerPixel(format: DisplayFormat): number {
  switch (format) {
    case 'XRGB8888':
      return 4;
    case 'RGB888':
      return 3;
    case 'RGB565':
    case 'XRGB1555':
      return 2;
    case 'RGB332':
      return 1;
  }
}

/** What the screen shows: a window of video memory. */
export interface Scanout {
  width: number;
  height: number;
  format: DisplayFormat;
  /** bytes from one line to the next */
  stride: number;
  /** byte offset of the top-left pixel in video memory */
  offset: number;
}

export interface DispiState {
  /** the registers by index (ID … Y_OFFSET) */
  regs: number[];
}

export interface DispiMetrics {
  /** writes of values the interface does not take (bad BPP, ID, out-of-range sizes) */
  rejectedWrites: number;
  /** enables of a mode that does not fit in video memory: the screen stays blank */
  badModes: number;
}

export interface DispiOptions {
  /** bytes of video memory */
  vramSize: number;
  /** video memory [offset, offset + length) must be zeroed (on enable without NOCLEARMEM) */
  clear: (offset: number, length: number) => void;
  /** what the screen shows changed: a new mode, a panned or flipped start, or disabled */
  onScanoutChange: () => void;
  state?: DispiState;
}

export class Dispi {
  readonly metrics: DispiMetrics = { rejectedWrites: 0, badModes: 0 };
  readonly #regs = new Uint16Array(VBE_DISPI_INDEX_NB);
  readonly #vramSize: number;
  readonly #clear: DispiOptions['clear'];
  readonly #onScanoutChange: () => void;
  #scanout: Scanout | undefined;

  constructor(options: DispiOptions) {
    this.#vramSize = options.vramSize;
    this.#clear = options.clear;
    this.#onScanoutChange = options.onScanoutChange;
    const r = this.#regs;
    r[VBE_DISPI_INDEX_ID] = VBE_DISPI_ID5;
    r[VBE_DISPI_INDEX_XRES] = 640;
    r[VBE_DISPI_INDEX_YRES] = 480;
    r[VBE_DISPI_INDEX_BPP] = 32;
    const s = options.state;
    if (s !== undefined) {
      for (let i = 0; i < VBE_DISPI_INDEX_NB && i < s.regs.length; i++) r[i] = s.regs[i]! & 0xffff;
    }
    r[VBE_DISPI_INDEX_VIDEO_MEMORY_64K] = Math.min(0xffff, Math.floor(this.#vramSize / 0x10000));
    this.#scanout = this.#computeScanout();
  }

  save(): DispiState {
    return { regs: Array.from(this.#regs) };
  }

  /** What the screen shows now, or undefined when the display is off (or its mode is bad). */
  scanout(): Scanout | undefined {
    return this.#scanout;
  }

  read(index: number): number {
    const r = this.#regs;
    if (index >= VBE_DISPI_INDEX_NB) return 0;
    if ((r[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_GETCAPS) !== 0) {
      if (index === VBE_DISPI_INDEX_XRES) return VBE_DISPI_MAX_XRES;
      if (index === VBE_DISPI_INDEX_YRES) return VBE_DISPI_MAX_YRES;
      if (index === VBE_DISPI_INDEX_BPP) return VBE_DISPI_MAX_BPP;
    }
    return r[index]!;
  }

  write(index: number, value: number): void {
    const r = this.#regs;
    const v = value & 0xffff;
    const enabled = (r[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_ENABLED) !== 0;
    switch (index) {
      case VBE_DISPI_INDEX_ID:
        if (v >= VBE_DISPI_ID0 && v <= VBE_DISPI_ID5) r[index] = v;
        else this.metrics.rejectedWrites++;
        return;
      case VBE_DISPI_INDEX_XRES:
      case VBE_DISPI_INDEX_YRES:
      case VBE_DISPI_INDEX_BPP: {
        // The mode is set with the display off; a running mode does not change under the guest.
        if (enabled || !this.#acceptable(index, v)) {
          this.metrics.rejectedWrites++;
          return;
        }
        r[index] = index === VBE_DISPI_INDEX_BPP && v === 0 ? 8 : v;
        return;
      }
      case VBE_DISPI_INDEX_ENABLE:
        this.#writeEnable(v);
        return;
      case VBE_DISPI_INDEX_BANK:
        // The 64 KiB window at 0xA0000 belongs to VGA, which this display does not decode;
        // the bank is kept for readers.
        r[index] = v;
        return;
      case VBE_DISPI_INDEX_VIRT_WIDTH:
        if (v === 0 || v > VBE_DISPI_MAX_XRES) {
          this.metrics.rejectedWrites++;
          return;
        }
        r[index] = v;
        r[VBE_DISPI_INDEX_VIRT_HEIGHT] = this.#maxVirtHeight();
        this.#update();
        return;
      case VBE_DISPI_INDEX_VIRT_HEIGHT:
        // The virtual height is what fits in video memory; a smaller request is kept (a
        // driver reads it back), a larger one is cut to what fits.
        r[index] = Math.min(v, this.#maxVirtHeight());
        return;
      case VBE_DISPI_INDEX_X_OFFSET:
      case VBE_DISPI_INDEX_Y_OFFSET:
        r[index] = v;
        this.#update();
        return;
      default:
        // VIDEO_MEMORY_64K is read-only; past it nothing exists.
        this.metrics.rejectedWrites++;
    }
  }

  #acceptable(index: number, v: number): boolean {
    if (index === VBE_DISPI_INDEX_XRES) return v > 0 && v <= VBE_DISPI_MAX_XRES;
    if (index === VBE_DISPI_INDEX_YRES) return v > 0 && v <= VBE_DISPI_MAX_YRES;
    // 4 bpp is VGA's planar memory: not a linear framebuffer format.
    return v === 0 || FORMAT_BY_BPP[v] !== undefined;
  }

  #bytesPerPixel(): number {
    return bytesPerPixel(FORMAT_BY_BPP[this.#regs[VBE_DISPI_INDEX_BPP]!] ?? 'XRGB8888');
  }

  #stride(): number {
    return this.#regs[VBE_DISPI_INDEX_VIRT_WIDTH]! * this.#bytesPerPixel();
  }

  #maxVirtHeight(): number {
    const stride = this.#stride();
    return stride === 0 ? 0 : Math.min(0xffff, Math.floor(this.#vramSize / stride));
  }

  #writeEnable(v: number): void {
    const r = this.#regs;
    const was = (r[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_ENABLED) !== 0;
    const now = (v & VBE_DISPI_ENABLED) !== 0;
    r[VBE_DISPI_INDEX_ENABLE] = v & ENABLE_WRITABLE;
    if (now && !was) {
      // Enabling starts the mode afresh: the virtual screen is as wide as the mode, as tall
      // as memory allows, and shown from its top-left corner (a driver that pans or flips
      // pages sets VIRT_WIDTH and the offsets afterwards).
      r[VBE_DISPI_INDEX_VIRT_WIDTH] = r[VBE_DISPI_INDEX_XRES]!;
      r[VBE_DISPI_INDEX_VIRT_HEIGHT] = this.#maxVirtHeight();
      r[VBE_DISPI_INDEX_X_OFFSET] = 0;
      r[VBE_DISPI_INDEX_Y_OFFSET] = 0;
      const scanout = this.#computeScanout();
      if (scanout === undefined) this.metrics.badModes++;
      else if ((v & VBE_DISPI_NOCLEARMEM) === 0) this.#clear(0, Math.min(this.#vramSize, scanout.stride * scanout.height));
    }
    this.#update();
  }

  #computeScanout(): Scanout | undefined {
    const r = this.#regs;
    if ((r[VBE_DISPI_INDEX_ENABLE]! & VBE_DISPI_ENABLED) === 0) return undefined;
    const format = FORMAT_BY_BPP[r[VBE_DISPI_INDEX_BPP]!];
    if (format === undefined) return undefined;
    const bpp = bytesPerPixel(format);
    const width = r[VBE_DISPI_INDEX_XRES]!;
    const height = r[VBE_DISPI_INDEX_YRES]!;
    const virtWidth = Math.max(r[VBE_DISPI_INDEX_VIRT_WIDTH]!, width);
    const stride = virtWidth * bpp;
    const x = r[VBE_DISPI_INDEX_X_OFFSET]!;
    const y = r[VBE_DISPI_INDEX_Y_OFFSET]!;
    if (width === 0 || height === 0 || x + width > virtWidth) return undefined;
    const offset = y * stride + x * bpp;
    // The last visible byte must lie in video memory.
    if (offset + (height - 1) * stride + width * bpp > this.#vramSize) return undefined;
    return { width, height, format, stride, offset };
  }

  #update(): void {
    const next = this.#computeScanout();
    const prev = this.#scanout;
    if (
      prev === next ||
      (prev !== undefined &&
        next !== undefined &&
        prev.width === next.width &&
        prev.height === next.height &&
        prev.format === next.format &&
        prev.stride === next.stride &&
        prev.offset === next.offset)
    ) {
      return;
    }
    this.#scanout = next;
    this.#onScanoutChange();
  }
}
