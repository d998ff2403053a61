import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as zc, inflateSync } from 'node:zlib';
import { xorshift32 } from '../testing/xorshift.js';
import { SERVER_PIXEL_FORMAT, type PixelFormat } from './pixel-format.js';
import { cpixelLayout, ZlibStream, ZrleTileEncoder, type CpixelLayout } from './zrle.js';
import { decodeZrleTiles } from './zrle-decoder.js';

const C3: CpixelLayout = { size: 3, shift: 0, bigEndian: false };

function image(width: number, height: number, f: (x: number, y: number) => number): Uint32Array {
  const v = new Uint32Array(width * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) v[y * width + x] = f(x, y) >>> 0;
  return v;
}

function roundTrip(values: Uint32Array, width: number, height: number, c: CpixelLayout, enc = new ZrleTileEncoder()): Uint8Array {
  const data = enc.encode(values, width, height, c);
  const { values: back, used } = decodeZrleTiles(data, width, height, c);
  assert.equal(used, data.length, 'the decoder used every byte');
  assert.deepEqual(back, values);
  return data;
}

test('cpixelLayout(): 3 bytes for 32-bit true colour of depth 24 in the low or high bytes, else a PIXEL', () => {
  assert.deepEqual(cpixelLayout(SERVER_PIXEL_FORMAT), { size: 3, shift: 0, bigEndian: false });
  assert.deepEqual(cpixelLayout({ ...SERVER_PIXEL_FORMAT, redShift: 24, greenShift: 16, blueShift: 8 }), { size: 3, shift: 8, bigEndian: false });
  assert.deepEqual(cpixelLayout({ ...SERVER_PIXEL_FORMAT, depth: 32 }), { size: 4, shift: 0, bigEndian: false });
  assert.deepEqual(cpixelLayout({ ...SERVER_PIXEL_FORMAT, redShift: 20, greenShift: 12, blueShift: 4 }), { size: 4, shift: 0, bigEndian: false });
  const pf565: PixelFormat = { ...SERVER_PIXEL_FORMAT, bitsPerPixel: 16, depth: 16, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 };
  assert.deepEqual(cpixelLayout(pf565), { size: 2, shift: 0, bigEndian: false });
});

test('ZrleTileEncoder picks solid tiles for one colour and packed palettes for a few', () => {
  const enc = new ZrleTileEncoder();
  const solid = roundTrip(image(64, 64, () => 0x123456), 64, 64, C3, enc);
  assert.deepEqual([...solid], [1, 0x56, 0x34, 0x12]);
  roundTrip(image(64, 64, (x, y) => ((x >> 3) + (y >> 3)) % 2 ? 0xffffff : 0), 64, 64, C3, enc);
  roundTrip(image(37, 5, (x) => [1, 2, 3, 4, 5][x % 5]!), 37, 5, C3, enc);
  assert.equal(enc.stats.solid, 1);
  assert.ok(enc.stats.packed >= 2);
});

test('ZrleTileEncoder uses RLE for long runs and raw for noise, and tiles edges that are not multiples of 64', () => {
  const enc = new ZrleTileEncoder();
  const rand = xorshift32(16);
  // Runs of many colours: plain RLE (or palette RLE while there are few enough).
  roundTrip(image(200, 130, (x, y) => (Math.floor(x / 40) * 1000 + y * 7) & 0xffffff), 200, 130, C3, enc);
  roundTrip(image(130, 70, () => rand() & 0xffffff), 130, 70, C3, enc);
  roundTrip(image(64, 64, (x, y) => (x * 64 + y) % 100), 64, 64, C3, enc);
  assert.ok(enc.stats.raw > 0 && enc.stats.plainRle + enc.stats.paletteRle > 0, JSON.stringify(enc.stats));
  // Runs that wrap rows and exceed 255 pixels.
  roundTrip(image(64, 64, (x, y) => (y < 40 ? 5 : y < 41 && x < 3 ? 6 : 7)), 64, 64, C3, enc);
});

test('ZrleTileEncoder round-trips every CPIXEL layout: 1, 2, 3 (low and high) and 4 bytes, both byte orders', () => {
  const rand = xorshift32(3);
  for (const c of [
    { size: 1, shift: 0, bigEndian: false },
    { size: 2, shift: 0, bigEndian: true },
    { size: 3, shift: 0, bigEndian: true },
    { size: 3, shift: 8, bigEndian: false },
    { size: 4, shift: 0, bigEndian: false },
  ]) {
    const mask = c.size === 4 ? 0xffffffff : (2 ** (8 * c.size) - 1) * 2 ** c.shift;
    for (const few of [true, false]) {
      const palette = Array.from({ length: few ? 9 : 300 }, () => (rand() & mask) >>> 0);
      roundTrip(image(90, 70, () => palette[rand() % palette.length]!), 90, 70, c);
    }
  }
});

test('ZlibStream: one stream across rectangles, each flushed so it inflates on its own arrival', async () => {
  const z = new ZlibStream(6);
  const enc = new ZrleTileEncoder();
  const rects = [
    image(100, 50, (x, y) => x * y),
    image(64, 64, () => 0xabcdef),
    image(33, 17, (x) => x & 1 ? 0xff : 0xff00),
  ];
  const sizes = [[100, 50], [64, 64], [33, 17]] as const;
  const received: Buffer[] = [];
  let seen = 0;
  for (let i = 0; i < rects.length; i++) {
    const [w, h] = sizes[i]!;
    const tiles = enc.encode(rects[i]!, w, h, C3).slice();
    if (i === 2) await z.setLevel(1);
    received.push(await z.compress(tiles));
    // The client: everything so far through one inflater, sync-flushed.
    const all = inflateSync(Buffer.concat(received), { finishFlush: zc.Z_SYNC_FLUSH });
    const mine = all.subarray(seen);
    seen = all.length;
    assert.deepEqual(Buffer.from(mine), Buffer.from(tiles));
    assert.deepEqual(decodeZrleTiles(mine, w, h, C3).values, rects[i]);
  }
  z.close();
  await assert.rejects(z.compress(new Uint8Array(1)), /closed/);
});
