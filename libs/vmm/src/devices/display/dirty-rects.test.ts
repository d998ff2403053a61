import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dirtyRects } from './dirty-rects.js';
import type { Scanout } from './dispi.js';

function bitmap(pages: number[], bytes = 512): Uint8Array {
  const b = new Uint8Array(bytes);
  for (const p of pages) b[p >> 3] |= 1 << (p & 7);
  return b;
}

const MODE_1024: Scanout = { width: 1024, height: 768, format: 'XRGB8888', stride: 4096, offset: 0 };
const MODE_640: Scanout = { width: 640, height: 480, format: 'XRGB8888', stride: 2560, offset: 0 };

test('dirtyRects() is empty for a clean bitmap', () => {
  assert.deepEqual(dirtyRects(bitmap([]), MODE_1024), []);
});

test('dirtyRects() maps one page per line at 1024x768x32 to whole lines, merging neighbours', () => {
  assert.deepEqual(dirtyRects(bitmap([10, 11, 12, 40]), MODE_1024), [
    { x: 0, y: 10, width: 1024, height: 3 },
    { x: 0, y: 40, width: 1024, height: 1 },
  ]);
});

test('dirtyRects() covers partial lines where a page starts or ends mid-line', () => {
  // 640x480x32: page 1 is bytes 4096..8191 = line 1 from x 384 to line 3 up to x 127.
  assert.deepEqual(dirtyRects(bitmap([1]), MODE_640), [{ x: 0, y: 1, width: 640, height: 3 }]);
  // A page inside one line: 8192-byte lines, page 1 = x 1024..2047 of line 0.
  const wide: Scanout = { width: 2048, height: 10, format: 'XRGB8888', stride: 8192, offset: 0 };
  assert.deepEqual(dirtyRects(bitmap([1]), wide), [{ x: 1024, y: 0, width: 1024, height: 1 }]);
});

test('dirtyRects() ignores pages outside the visible area and the padding past its width', () => {
  // Visible from offset 8192, lines of 4096 bytes of which 2000 are shown.
  const s: Scanout = { width: 500, height: 4, format: 'XRGB8888', stride: 4096, offset: 8192 };
  assert.deepEqual(dirtyRects(bitmap([0, 1, 100]), s), []);
  assert.deepEqual(dirtyRects(bitmap([3]), s), [{ x: 0, y: 1, width: 500, height: 1 }]);
});

test('dirtyRects() handles 3-byte pixels split across pages and bitmaps shorter than the mode', () => {
  const s: Scanout = { width: 1366, height: 768, format: 'RGB888', stride: 4098, offset: 0 };
  const rects = dirtyRects(bitmap([1]), s);
  assert.deepEqual(rects, [{ x: 0, y: 0, width: 1366, height: 2 }]);
  // A bitmap for 4 pages only: pages past it simply are not dirty.
  assert.deepEqual(dirtyRects(bitmap([2], 1), MODE_1024), [{ x: 0, y: 2, width: 1024, height: 1 }]);
});
