import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { FramebufferMode } from '../devices/display/framebuffer.js';
import {
  checkPixelFormat,
  colourMap332,
  encodePixelFormat,
  parsePixelFormat,
  PixelConverter,
  SERVER_PIXEL_FORMAT,
  type PixelFormat,
} from './pixel-format.js';

const RGBX: PixelFormat = { ...SERVER_PIXEL_FORMAT, redShift: 0, greenShift: 8, blueShift: 16 };
const RGB565_BE: PixelFormat = { bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };

test('parsePixelFormat() and encodePixelFormat() round-trip the 16-byte PIXEL_FORMAT', () => {
  for (const pf of [SERVER_PIXEL_FORMAT, RGBX, RGB565_BE]) assert.deepEqual(parsePixelFormat(encodePixelFormat(pf)), pf);
  assert.deepEqual([...encodePixelFormat(SERVER_PIXEL_FORMAT)], [32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]);
});

test('checkPixelFormat() accepts what clients ask for and refuses what cannot be served', () => {
  assert.equal(checkPixelFormat(SERVER_PIXEL_FORMAT), undefined);
  assert.equal(checkPixelFormat(RGB565_BE), undefined);
  assert.equal(checkPixelFormat({ ...SERVER_PIXEL_FORMAT, bitsPerPixel: 8, trueColour: false }), undefined);
  assert.match(checkPixelFormat({ ...SERVER_PIXEL_FORMAT, bitsPerPixel: 24 })!, /bits-per-pixel 24/);
  assert.match(checkPixelFormat({ ...SERVER_PIXEL_FORMAT, trueColour: false })!, /colour map/);
  assert.match(checkPixelFormat({ ...SERVER_PIXEL_FORMAT, redMax: 200 })!, /2\^N - 1/);
  assert.match(checkPixelFormat({ ...SERVER_PIXEL_FORMAT, redMax: 0 })!, /2\^N - 1/);
  assert.match(checkPixelFormat({ ...SERVER_PIXEL_FORMAT, redShift: 30 })!, /does not fit/);
  assert.match(checkPixelFormat({ ...RGB565_BE, redShift: 12 })!, /does not fit/);
});

/** A 4x2 framebuffer holding the same colours in each display format. */
const COLOURS = [0xff0000, 0x00ff00, 0x0000ff, 0xffffff, 0x000000, 0x808080, 0x123456, 0xfedcba];

function frame(format: FramebufferMode['format']): { pixels: Uint8Array; mode: FramebufferMode } {
  const bpp = { XRGB8888: 4, RGB888: 3, RGB565: 2, XRGB1555: 2, RGB332: 1 }[format];
  const stride = 4 * bpp + 4; // padded lines
  const pixels = new Uint8Array(stride * 2);
  COLOURS.forEach((c, i) => {
    const p = Math.floor(i / 4) * stride + (i % 4) * bpp;
    const r = c >> 16, g = (c >> 8) & 0xff, b = c & 0xff;
    let v: number;
    switch (format) {
      case 'XRGB8888': v = c; break;
      case 'RGB888': v = c; break;
      case 'RGB565': v = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3); break;
      case 'XRGB1555': v = ((r >> 3) << 10) | ((g >> 3) << 5) | (b >> 3); break;
      case 'RGB332': v = ((r >> 5) << 5) | ((g >> 5) << 2) | (b >> 6); break;
    }
    for (let k = 0; k < bpp; k++) pixels[p + k] = (v >> (8 * k)) & 0xff;
  });
  return { pixels, mode: { width: 4, height: 2, format, stride, blank: false } };
}

function channels(v: number, pf: PixelFormat): [number, number, number] {
  const c = (max: number, shift: number) => Math.round((((v >>> shift) & max) * 255) / max);
  return [c(pf.redMax, pf.redShift), c(pf.greenMax, pf.greenShift), c(pf.blueMax, pf.blueShift)];
}

test('PixelConverter turns every display format into client formats, within the coarser format\'s precision', () => {
  const tolerance = { XRGB8888: 0, RGB888: 0, RGB565: 8, XRGB1555: 8, RGB332: 43 } as const;
  for (const format of ['XRGB8888', 'RGB888', 'RGB565', 'XRGB1555', 'RGB332'] as const) {
    const { pixels, mode } = frame(format);
    for (const pf of [SERVER_PIXEL_FORMAT, RGBX, RGB565_BE]) {
      const conv = new PixelConverter(pf);
      const out = new Uint32Array(8);
      conv.convert(pixels, mode, { x: 0, y: 0, width: 4, height: 2 }, out);
      const tol = tolerance[format] + (pf === RGB565_BE ? 8 : 0);
      COLOURS.forEach((c, i) => {
        const got = channels(out[i]!, pf);
        const want = [c >> 16, (c >> 8) & 0xff, c & 0xff];
        got.forEach((g, k) => assert.ok(Math.abs(g - want[k]!) <= tol, `${format} → ${pf.bitsPerPixel}bpp pixel ${i}: ${got} vs ${want}`));
      });
    }
  }
});

test('PixelConverter converts a sub-rectangle and passes XRGB8888 through unchanged for the server format', () => {
  const { pixels, mode } = frame('XRGB8888');
  const out = new Uint32Array(2);
  new PixelConverter(SERVER_PIXEL_FORMAT).convert(pixels, mode, { x: 2, y: 1, width: 2, height: 1 }, out);
  assert.deepEqual([...out], [0x123456, 0xfedcba]);
  new PixelConverter(RGBX).convert(pixels, mode, { x: 2, y: 1, width: 2, height: 1 }, out);
  assert.deepEqual([...out], [0x563412, 0xbadcfe]);
});

test('PixelConverter.writePixels() lays values out in the client\'s byte order and size', () => {
  const values = Uint32Array.of(0x11223344, 0xaabbccdd);
  const out = new Uint8Array(8);
  assert.equal(new PixelConverter(SERVER_PIXEL_FORMAT).writePixels(values, 2, out, 0), 8);
  assert.deepEqual([...out], [0x44, 0x33, 0x22, 0x11, 0xdd, 0xcc, 0xbb, 0xaa]);
  assert.equal(new PixelConverter({ ...SERVER_PIXEL_FORMAT, bigEndian: true }).writePixels(values, 1, out, 0), 4);
  assert.deepEqual([...out.subarray(0, 4)], [0x11, 0x22, 0x33, 0x44]);
  assert.equal(new PixelConverter(RGB565_BE).writePixels(Uint32Array.of(0xf800), 1, out, 0), 2);
  assert.deepEqual([...out.subarray(0, 2)], [0xf8, 0x00]);
});

test('colour-map clients get the 3-3-2 palette, and pixels index it', () => {
  const map = colourMap332();
  assert.equal(map.length, 256 * 3);
  assert.deepEqual([...map.subarray(0xe0 * 3, 0xe0 * 3 + 3)], [65535, 0, 0]);
  const { pixels, mode } = frame('XRGB8888');
  const out = new Uint32Array(8);
  const conv = new PixelConverter({ ...SERVER_PIXEL_FORMAT, bitsPerPixel: 8, trueColour: false });
  assert.equal(conv.bytesPerPixel, 1);
  conv.convert(pixels, mode, { x: 0, y: 0, width: 4, height: 2 }, out);
  assert.deepEqual([...out.subarray(0, 5)], [0xe0, 0x1c, 0x03, 0xff, 0x00]);
});
