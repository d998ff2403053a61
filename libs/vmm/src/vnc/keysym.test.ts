import { test } from 'node:test';
import assert from 'node:assert/strict';
import { keysymScancodes, PAUSE_SET1, xtKeycodeScancodes } from './keysym.js';

test('keysymScancodes() gives set 1 make and break codes of a US keyboard', () => {
  assert.deepEqual(keysymScancodes(0x61, true), [0x1e]); // a
  assert.deepEqual(keysymScancodes(0x61, false), [0x9e]);
  assert.deepEqual(keysymScancodes(0x41, true), [0x1e], 'A is the same key');
  assert.deepEqual(keysymScancodes(0x21, true), [0x02], '! is the 1 key');
  assert.deepEqual(keysymScancodes(0x20, true), [0x39]);
  assert.deepEqual(keysymScancodes(0xff0d, true), [0x1c]); // Return
  assert.deepEqual(keysymScancodes(0xffbe, true), [0x3b]); // F1
  assert.deepEqual(keysymScancodes(0xffc9, true), [0x58]); // F12
  assert.deepEqual(keysymScancodes(0xffe1, true), [0x2a]); // Shift_L
});

test('keysymScancodes() prefixes extended keys with 0xE0 and keeps the prefix on release', () => {
  assert.deepEqual(keysymScancodes(0xff52, true), [0xe0, 0x48]); // Up
  assert.deepEqual(keysymScancodes(0xff52, false), [0xe0, 0xc8]);
  assert.deepEqual(keysymScancodes(0xffe4, true), [0xe0, 0x1d]); // Control_R
  assert.deepEqual(keysymScancodes(0xff8d, true), [0xe0, 0x1c]); // KP_Enter
  assert.deepEqual(keysymScancodes(0xffff, true), [0xe0, 0x53]); // Delete
});

test('keysymScancodes(): Pause sends its whole sequence on press and nothing on release; unknown keysyms are undefined', () => {
  assert.deepEqual(keysymScancodes(0xff13, true), [...PAUSE_SET1]);
  assert.deepEqual(keysymScancodes(0xff13, false), []);
  assert.equal(keysymScancodes(0x20ac, true), undefined); // EuroSign
  assert.equal(keysymScancodes(0xffffffff, true), undefined);
});

test('xtKeycodeScancodes() decodes QEMU\'s XT keycodes (bit 7 = 0xE0 prefix)', () => {
  assert.deepEqual(xtKeycodeScancodes(0x1e, true), [0x1e]);
  assert.deepEqual(xtKeycodeScancodes(0x1e, false), [0x9e]);
  assert.deepEqual(xtKeycodeScancodes(0xc8, true), [0xe0, 0x48]);
  assert.deepEqual(xtKeycodeScancodes(0xc8, false), [0xe0, 0xc8]);
  for (const bad of [0, 0x80, 0x100, -1, 1.5]) assert.equal(xtKeycodeScancodes(bad, true), undefined);
});
