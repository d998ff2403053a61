/**
 * What a display publishes: the picture on its screen. Consumers (the VNC server, later a
 * screenshot) see the mode, the pixels and which parts changed; they never read the device's
 * registers.
 *
 * Changes come from the dirty log of the framebuffer's memory slot (guest writes there never
 * exit to us) plus whatever the host wrote itself. The log is destructive — reading it clears
 * it — so the framebuffer reads it once for everyone and keeps one page bitmap per consumer
 * (`track()`); each consumer takes its own changes when it wants to draw.
 */
import { bytesPerPixel, type DisplayFormat, type Scanout } from './dispi.js';
import { PAGE_SHIFT, PAGE_SIZE, anyDirty, dirtyRects, dirtyScratch, type DirtyScratch, type Rect } from './dirty-rects.js';

export type { Rect } from './dirty-rects.js';

/** The screen as consumers see it. */
export interface FramebufferMode {
  width: number;
  height: number;
  format: DisplayFormat;
  /** bytes from one line to the next in `pixels` */
  stride: number;
  /** the display is off (or its mode is unusable): `pixels` is black */
  blank: boolean;
}

/**
 * The dirty log of the framebuffer's memory: fills `bitmap` (one bit per 4 KiB page of video
 * memory) with the pages written since the last call, and forgets them.
 */
export interface DirtyLogSource {
  collect(bitmap: Uint8Array): void;
}

/** What a blank screen shows: the size a VGA BIOS starts in. */
export const BLANK_WIDTH = 640;
export const BLANK_HEIGHT = 480;

export interface FramebufferOptions {
  /** the whole of video memory */
  vram: Uint8Array;
  /** KVM's dirty log of the slot that maps `vram`; without one, consumers see only host writes */
  dirtyLog?: DirtyLogSource;
}

export interface FramebufferMetrics {
  /** dirty-log reads */
  logReads: number;
  /** mode (or scanout) changes */
  modeChanges: number;
}

export class Framebuffer {
  readonly vram: Uint8Array;
  readonly metrics: FramebufferMetrics = { logReads: 0, modeChanges: 0 };
  readonly #dirtyLog: DirtyLogSource | undefined;
  readonly #pages: number;
  /** the kernel's log, read here */
  readonly #log: Uint8Array;
  /** pages the host wrote since the last pull */
  readonly #hostDirty: Uint8Array;
  readonly #trackers = new Set<FramebufferTracker>();
  readonly #listeners = new Set<() => void>();
  #scanout: Scanout | undefined;
  #mode: FramebufferMode = blankMode();
  #pixels: Uint8Array;
  #blankPixels: Uint8Array | undefined;

  constructor(options: FramebufferOptions) {
    this.vram = options.vram;
    this.#dirtyLog = options.dirtyLog;
    this.#pages = Math.ceil(this.vram.length / PAGE_SIZE);
    // Whole 64-bit words, as KVM writes them.
    const bytes = Math.ceil(this.#pages / 64) * 8;
    this.#log = new Uint8Array(bytes);
    this.#hostDirty = new Uint8Array(bytes);
    this.#pixels = this.#blank();
  }

  /** The screen's size and format now. */
  get mode(): FramebufferMode {
    return this.#mode;
  }

  /** The pixels, top-left first, lines `mode.stride` bytes apart. Read, don't keep: the view
   * changes with the mode. */
  get pixels(): Uint8Array {
    return this.#pixels;
  }

  /** Calls `listener` whenever the mode or the visible part of video memory changes. */
  onModeChange(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** A consumer's own record of what changed; everything counts as changed at first. */
  track(): FramebufferTracker {
    const t = new FramebufferTracker(this, this.#log.length);
    this.#trackers.add(t);
    return t;
  }

  // --- the device's side ---

  /** The display now shows `scanout` (undefined: nothing). Every consumer redraws it all. */
  setScanout(scanout: Scanout | undefined): void {
    this.#scanout = scanout;
    if (scanout === undefined) {
      this.#mode = blankMode();
      this.#pixels = this.#blank();
    } else {
      this.#mode = { width: scanout.width, height: scanout.height, format: scanout.format, stride: scanout.stride, blank: false };
      const length = (scanout.height - 1) * scanout.stride + scanout.width * bytesPerPixel(scanout.format);
      this.#pixels = this.vram.subarray(scanout.offset, scanout.offset + length);
    }
    this.metrics.modeChanges++;
    for (const t of this.#trackers) t.markAll();
    for (const l of this.#listeners) l();
  }

  /** The host wrote video memory [offset, offset + length). */
  markDirty(offset: number, length: number): void {
    if (length <= 0 || offset >= this.vram.length) return;
    const first = offset >>> PAGE_SHIFT;
    const last = Math.min(this.#pages - 1, (offset + length - 1) >>> PAGE_SHIFT);
    for (let p = first; p <= last; p++) this.#hostDirty[p >> 3] |= 1 << (p & 7);
  }

  /** Everything changed (the memory was remapped and its log lost). */
  markAllDirty(): void {
    for (const t of this.#trackers) t.markAll();
  }

  // --- for trackers ---

  /** Reads the dirty log once and hands it to every consumer. */
  pull(): void {
    let changed = false;
    if (this.#dirtyLog !== undefined) {
      this.#dirtyLog.collect(this.#log);
      this.metrics.logReads++;
      changed = anyDirty(this.#log);
    } else {
      this.#log.fill(0);
    }
    if (anyDirty(this.#hostDirty)) {
      for (let i = 0; i < this.#log.length; i++) this.#log[i] |= this.#hostDirty[i]!;
      this.#hostDirty.fill(0);
      changed = true;
    }
    if (!changed) return;
    for (const t of this.#trackers) t.merge(this.#log);
  }

  get scanout(): Scanout | undefined {
    return this.#scanout;
  }

  untrack(t: FramebufferTracker): void {
    this.#trackers.delete(t);
  }

  #blank(): Uint8Array {
    this.#blankPixels ??= new Uint8Array(BLANK_WIDTH * BLANK_HEIGHT * 4);
    return this.#blankPixels;
  }
}

/** One consumer's view of what changed on the screen since it last looked. */
export class FramebufferTracker {
  readonly #fb: Framebuffer;
  readonly #bitmap: Uint8Array;
  #all = true;
  #scratch: DirtyScratch | undefined;

  constructor(fb: Framebuffer, bytes: number) {
    this.#fb = fb;
    this.#bitmap = new Uint8Array(bytes);
  }

  /** The rectangles that changed since the last call (the whole screen the first time and
   * after a mode change), in the current mode's coordinates. */
  takeDirty(): Rect[] {
    this.#fb.pull();
    const mode = this.#fb.mode;
    if (this.#all) {
      this.#all = false;
      this.#bitmap.fill(0);
      return [{ x: 0, y: 0, width: mode.width, height: mode.height }];
    }
    const scanout = this.#fb.scanout;
    if (scanout === undefined || !anyDirty(this.#bitmap)) {
      this.#bitmap.fill(0);
      return [];
    }
    if (this.#scratch === undefined || this.#scratch.min.length < scanout.height) this.#scratch = dirtyScratch(scanout.height);
    const rects = dirtyRects(this.#bitmap, scanout, this.#scratch);
    this.#bitmap.fill(0);
    return rects;
  }

  markAll(): void {
    this.#all = true;
  }

  merge(log: Uint8Array): void {
    for (let i = 0; i < log.length; i++) this.#bitmap[i] |= log[i]!;
  }

  close(): void {
    this.#fb.untrack(this);
  }
}

function blankMode(): FramebufferMode {
  return { width: BLANK_WIDTH, height: BLANK_HEIGHT, format: 'XRGB8888', stride: BLANK_WIDTH * 4, blank: true };
}
