import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BLANK_HEIGHT, BLANK_WIDTH, Framebuffer, type DirtyLogSource } from './framebuffer.js';

class FakeLog implements DirtyLogSource {
  pages: number[] = [];
  reads = 0;
  collect(bitmap: Uint8Array): void {
    this.reads++;
    bitmap.fill(0);
    for (const p of this.pages) bitmap[p >> 3] |= 1 << (p & 7);
    this.pages = [];
  }
}

const MODE = { width: 1024, height: 768, format: 'XRGB8888' as const, stride: 4096, offset: 4096 };

test('Framebuffer is blank 640x480 until the display shows something, then views the scanout', () => {
  const vram = new Uint8Array(4 << 20);
  const fb = new Framebuffer({ vram });
  assert.deepEqual(fb.mode, { width: BLANK_WIDTH, height: BLANK_HEIGHT, format: 'XRGB8888', stride: 2560, blank: true });
  assert.ok(fb.pixels.every((b) => b === 0));
  let changes = 0;
  fb.onModeChange(() => changes++);
  fb.setScanout(MODE);
  assert.equal(changes, 1);
  assert.equal(fb.mode.blank, false);
  vram[4096] = 7;
  assert.equal(fb.pixels[0], 7, 'pixels start at the scanout offset');
  assert.equal(fb.pixels.length, 767 * 4096 + 1024 * 4);
});

test('Framebuffer: each tracker starts all-dirty, then sees the log once per change', () => {
  const log = new FakeLog();
  const fb = new Framebuffer({ vram: new Uint8Array(4 << 20), dirtyLog: log });
  fb.setScanout(MODE);
  const a = fb.track();
  const b = fb.track();
  assert.deepEqual(a.takeDirty(), [{ x: 0, y: 0, width: 1024, height: 768 }]);
  assert.deepEqual(a.takeDirty(), []);
  log.pages = [11];
  assert.deepEqual(a.takeDirty(), [{ x: 0, y: 10, width: 1024, height: 1 }]);
  // b had not looked yet: the whole screen, and page 11 is not lost for it either.
  assert.deepEqual(b.takeDirty(), [{ x: 0, y: 0, width: 1024, height: 768 }]);
  log.pages = [20];
  assert.deepEqual(a.takeDirty(), [{ x: 0, y: 19, width: 1024, height: 1 }]);
  assert.deepEqual(b.takeDirty(), [{ x: 0, y: 19, width: 1024, height: 1 }], 'b gets the change a pulled from the log');
  b.close();
});

test('Framebuffer: host writes are tracked; a mode change or a remap makes everything dirty', () => {
  const fb = new Framebuffer({ vram: new Uint8Array(4 << 20) });
  fb.setScanout(MODE);
  const t = fb.track();
  t.takeDirty();
  fb.markDirty(4096 * 5 + 10, 2);
  assert.deepEqual(t.takeDirty(), [{ x: 0, y: 4, width: 1024, height: 1 }]);
  fb.markAllDirty();
  assert.deepEqual(t.takeDirty(), [{ x: 0, y: 0, width: 1024, height: 768 }]);
  fb.setScanout({ ...MODE, width: 800, height: 600, stride: 3200 });
  assert.deepEqual(t.takeDirty(), [{ x: 0, y: 0, width: 800, height: 600 }]);
  fb.markDirty(-5, 0);
  fb.markDirty(1 << 30, 10);
  assert.deepEqual(t.takeDirty(), [], 'writes outside video memory are ignored');
});
