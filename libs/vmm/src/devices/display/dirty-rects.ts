/**
 * Dirty pages of video memory → the rectangles of the screen they cover.
 *
 * The dirty log comes from KVM one bit per 4 KiB page of the framebuffer's memory slot. A page
 * covers a byte range of video memory; with lines `stride` bytes apart that is the tail of one
 * line, some whole lines and the head of another. Each screen line collects the horizontal
 * span its dirty pages touch, and runs of consecutive dirty lines become one rectangle wide
 * enough for all of them. Cost: a scan of the bitmap (512 bytes for 16 MiB, words of zeros
 * skipped) when nothing changed, plus a few operations per line of each dirty page.
 */
import type { Scanout } from './dispi.js';
import { bytesPerPixel } from './dispi.js';

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;

/** Per-line scratch, reusable between calls for the same height. */
export interface DirtyScratch {
  min: Int32Array;
  max: Int32Array;
}

export function dirtyScratch(height: number): DirtyScratch {
  return { min: new Int32Array(height), max: new Int32Array(height) };
}

/** True if any bit of `bitmap` is set. */
export function anyDirty(bitmap: Uint8Array): boolean {
  for (let i = 0; i < bitmap.length; i++) if (bitmap[i] !== 0) return true;
  return false;
}

/**
 * The screen rectangles of `scanout` that the pages set in `bitmap` (bit i = page i of video
 * memory, LSB first) cover, top to bottom. Pages outside the visible area are ignored.
 */
export function dirtyRects(bitmap: Uint8Array, scanout: Scanout, scratch?: DirtyScratch): Rect[] {
  const { width, height, stride, offset } = scanout;
  const bpp = bytesPerPixel(scanout.format);
  const s = scratch !== undefined && scratch.min.length >= height ? scratch : dirtyScratch(height);
  const rowMin = s.min;
  const rowMax = s.max;
  rowMin.fill(0x7fffffff, 0, height);
  rowMax.fill(-1, 0, height);
  const start = offset;
  const end = offset + (height - 1) * stride + width * bpp;
  let any = false;

  const firstPage = Math.floor(start / PAGE_SIZE);
  const lastPage = Math.min(bitmap.length * 8 - 1, Math.floor((end - 1) / PAGE_SIZE));
  for (let byte = firstPage >> 3; byte <= lastPage >> 3; byte++) {
    const bits = bitmap[byte]!;
    if (bits === 0) continue;
    for (let bit = 0; bit < 8; bit++) {
      if ((bits & (1 << bit)) === 0) continue;
      const page = byte * 8 + bit;
      if (page < firstPage || page > lastPage) continue;
      // The page's bytes, clipped to the visible area, relative to the top-left pixel.
      const a = Math.max(page * PAGE_SIZE, start) - start;
      const b = Math.min((page + 1) * PAGE_SIZE, end) - start; // exclusive
      if (a >= b) continue;
      const firstRow = Math.floor(a / stride);
      const lastRow = Math.min(height - 1, Math.floor((b - 1) / stride));
      for (let row = firstRow; row <= lastRow; row++) {
        const rowStart = row * stride;
        const from = Math.max(a, rowStart) - rowStart;
        const to = Math.min(b, rowStart + stride) - rowStart; // exclusive, bytes into the line
        const x0 = Math.floor(from / bpp);
        const x1 = Math.min(width, Math.ceil(to / bpp)); // exclusive
        if (x0 >= x1) continue; // only the padding past the visible width
        if (x0 < rowMin[row]!) rowMin[row] = x0;
        if (x1 > rowMax[row]!) rowMax[row] = x1;
        any = true;
      }
    }
  }
  if (!any) return [];

  const rects: Rect[] = [];
  let y = 0;
  while (y < height) {
    if (rowMax[y]! < 0) {
      y++;
      continue;
    }
    let x0 = rowMin[y]!;
    let x1 = rowMax[y]!;
    let y1 = y + 1;
    while (y1 < height && rowMax[y1]! >= 0) {
      if (rowMin[y1]! < x0) x0 = rowMin[y1]!;
      if (rowMax[y1]! > x1) x1 = rowMax[y1]!;
      y1++;
    }
    rects.push({ x: x0, y, width: x1 - x0, height: y1 - y });
    y = y1;
  }
  return rects;
}
