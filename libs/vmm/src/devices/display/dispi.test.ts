import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  Dispi,
  VBE_DISPI_ENABLED,
  VBE_DISPI_GETCAPS,
  VBE_DISPI_ID0,
  VBE_DISPI_ID5,
  VBE_DISPI_INDEX_BPP,
  VBE_DISPI_INDEX_ENABLE,
  VBE_DISPI_INDEX_ID,
  VBE_DISPI_INDEX_VIDEO_MEMORY_64K,
  VBE_DISPI_INDEX_VIRT_HEIGHT,
  VBE_DISPI_INDEX_VIRT_WIDTH,
  VBE_DISPI_INDEX_X_OFFSET,
  VBE_DISPI_INDEX_XRES,
  VBE_DISPI_INDEX_Y_OFFSET,
  VBE_DISPI_INDEX_YRES,
  VBE_DISPI_LFB_ENABLED,
  VBE_DISPI_MAX_XRES,
  VBE_DISPI_NOCLEARMEM,
} from './dispi.js';

const VRAM = 16 * 1024 * 1024;

function dispi() {
  const clears: [number, number][] = [];
  let changes = 0;
  const d = new Dispi({ vramSize: VRAM, clear: (o, l) => clears.push([o, l]), onScanoutChange: () => changes++ });
  return { d, clears, changes: () => changes };
}

function setMode(d: Dispi, x: number, y: number, bpp: number, flags = 0): void {
  d.write(VBE_DISPI_INDEX_ENABLE, 0);
  d.write(VBE_DISPI_INDEX_BPP, bpp);
  d.write(VBE_DISPI_INDEX_XRES, x);
  d.write(VBE_DISPI_INDEX_YRES, y);
  d.write(VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED | flags);
}

test('dispi reports its ID, its video memory in 64 KiB units, and takes a known ID', () => {
  const { d } = dispi();
  assert.equal(d.read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID5);
  assert.equal(d.read(VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 256);
  d.write(VBE_DISPI_INDEX_ID, VBE_DISPI_ID0);
  assert.equal(d.read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID0);
  d.write(VBE_DISPI_INDEX_ID, 0x1234);
  assert.equal(d.read(VBE_DISPI_INDEX_ID), VBE_DISPI_ID0);
  d.write(VBE_DISPI_INDEX_VIDEO_MEMORY_64K, 1);
  assert.equal(d.read(VBE_DISPI_INDEX_VIDEO_MEMORY_64K), 256, 'read-only');
  assert.equal(d.metrics.rejectedWrites, 2);
});

test('dispi shows nothing until enabled, then the mode: 640x480x32 with a 2560-byte stride', () => {
  const { d, clears, changes } = dispi();
  assert.equal(d.scanout(), undefined);
  setMode(d, 640, 480, 32);
  assert.deepEqual(d.scanout(), { width: 640, height: 480, format: 'XRGB8888', stride: 2560, offset: 0 });
  assert.equal(d.read(VBE_DISPI_INDEX_VIRT_WIDTH), 640);
  assert.equal(d.read(VBE_DISPI_INDEX_VIRT_HEIGHT), Math.floor(VRAM / 2560));
  assert.deepEqual(clears, [[0, 2560 * 480]], 'enabling clears the visible memory');
  assert.equal(changes(), 1);
  d.write(VBE_DISPI_INDEX_ENABLE, 0);
  assert.equal(d.scanout(), undefined);
  assert.equal(changes(), 2);
});

test('dispi maps each bpp to its layout and NOCLEARMEM keeps memory', () => {
  const { d, clears } = dispi();
  for (const [bpp, format, bytes] of [[16, 'RGB565', 2], [15, 'XRGB1555', 2], [24, 'RGB888', 3], [8, 'RGB332', 1]] as const) {
    setMode(d, 800, 600, bpp, VBE_DISPI_NOCLEARMEM);
    assert.deepEqual(d.scanout(), { width: 800, height: 600, format, stride: 800 * bytes, offset: 0 });
  }
  assert.deepEqual(clears, []);
  d.write(VBE_DISPI_INDEX_ENABLE, 0);
  d.write(VBE_DISPI_INDEX_BPP, 0);
  assert.equal(d.read(VBE_DISPI_INDEX_BPP), 8, 'bpp 0 means 8');
});

test('dispi refuses planar 4 bpp, zero or huge sizes, and mode changes while enabled', () => {
  const { d } = dispi();
  setMode(d, 640, 480, 32);
  d.write(VBE_DISPI_INDEX_XRES, 1024);
  assert.equal(d.read(VBE_DISPI_INDEX_XRES), 640);
  d.write(VBE_DISPI_INDEX_ENABLE, 0);
  d.write(VBE_DISPI_INDEX_BPP, 4);
  d.write(VBE_DISPI_INDEX_XRES, 0);
  d.write(VBE_DISPI_INDEX_YRES, VBE_DISPI_MAX_XRES + 1);
  assert.deepEqual([d.read(VBE_DISPI_INDEX_BPP), d.read(VBE_DISPI_INDEX_XRES), d.read(VBE_DISPI_INDEX_YRES)], [32, 640, 480]);
  assert.equal(d.metrics.rejectedWrites, 4);
});

test('dispi: a mode larger than video memory is enabled blank and counted, never read past the end', () => {
  const { d } = dispi();
  setMode(d, 4096, 4096, 32); // 64 MiB > 16 MiB
  assert.equal(d.scanout(), undefined);
  assert.equal(d.metrics.badModes, 1);
});

test('dispi: GETCAPS reads the largest mode', () => {
  const { d } = dispi();
  d.write(VBE_DISPI_INDEX_ENABLE, VBE_DISPI_GETCAPS);
  assert.deepEqual([d.read(VBE_DISPI_INDEX_XRES), d.read(VBE_DISPI_INDEX_BPP)], [VBE_DISPI_MAX_XRES, 32]);
  d.write(VBE_DISPI_INDEX_ENABLE, 0);
  assert.equal(d.read(VBE_DISPI_INDEX_XRES), 640);
});

test('dispi pans and flips with VIRT_WIDTH and the offsets, as the bochs DRM driver does', () => {
  const { d, changes } = dispi();
  setMode(d, 1024, 768, 32);
  const before = changes();
  d.write(VBE_DISPI_INDEX_VIRT_WIDTH, 1024);
  d.write(VBE_DISPI_INDEX_X_OFFSET, 0);
  d.write(VBE_DISPI_INDEX_Y_OFFSET, 768);
  assert.deepEqual(d.scanout(), { width: 1024, height: 768, format: 'XRGB8888', stride: 4096, offset: 768 * 4096 });
  assert.equal(changes(), before + 1, 'the same mode with the same start is not a change');
  d.write(VBE_DISPI_INDEX_Y_OFFSET, 0xffff);
  assert.equal(d.scanout(), undefined, 'past the end of video memory: blank');
  d.write(VBE_DISPI_INDEX_Y_OFFSET, 0);
  d.write(VBE_DISPI_INDEX_VIRT_WIDTH, 2048);
  d.write(VBE_DISPI_INDEX_X_OFFSET, 100);
  assert.deepEqual(d.scanout(), { width: 1024, height: 768, format: 'XRGB8888', stride: 8192, offset: 400 });
});

test('dispi state survives save and restore', () => {
  const { d } = dispi();
  setMode(d, 800, 600, 16);
  const again = new Dispi({ vramSize: VRAM, clear: () => {}, onScanoutChange: () => {}, state: JSON.parse(JSON.stringify(d.save())) });
  assert.deepEqual(again.scanout(), d.scanout());
});
