import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PC_LEGACY_DEVICES, dsdt, isaDevice, sleepStateS5 } from './dsdt.js';
import { device, eisaId, name } from './aml.js';

function hex(text: string): Uint8Array {
  return Uint8Array.from(text.replace(/\s+/g, '').match(/../g) ?? [], (h) => parseInt(h, 16));
}

/** The offset of `needle` in `haystack`, or -1. */
function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

const sum = (bytes: Uint8Array) => bytes.reduce((s, b) => (s + b) & 0xff, 0);

/** Decodes the Scope that follows \\_S5 in a DSDT: where its name starts and where it ends. */
function scopeAfterS5(t: Uint8Array): { nameAt: number; end: number } {
  const at = 36 + sleepStateS5().length;
  assert.equal(t[at], 0x10, 'ScopeOp');
  const lead = t[at + 1]!;
  const follow = lead >> 6;
  let length = follow === 0 ? lead & 0x3f : lead & 0x0f;
  for (let i = 0; i < follow; i++) length |= t[at + 2 + i]! << (4 + 8 * i);
  return { nameAt: at + 2 + follow, end: at + 1 + length };
}

test('isaDevice() encodes COM1 with _HID, _UID and _CRS as iasl compiles the same ASL', () => {
  const com1 = isaDevice(PC_LEGACY_DEVICES.find((d) => d.name === 'COM1')!);

  // Device (COM1) { Name (_HID, EisaId ("PNP0501")) Name (_UID, One)
  //   Name (_CRS, ResourceTemplate () { IO (Decode16, 0x3F8, 0x3F8, 1, 8) IRQNoFlags () {4} }) }
  assert.deepEqual(
    com1,
    hex(`5b 82 2b 43 4f 4d 31
         08 5f 48 49 44 0c 41 d0 05 01
         08 5f 55 49 44 01
         08 5f 43 52 53 11 10 0a 0d 47 01 f8 03 f8 03 01 08 22 10 00 79 00`),
  );
});

test('isaDevice() gives the keyboard both 8042 ports and the mouse only IRQ 12', () => {
  const kbd = isaDevice(PC_LEGACY_DEVICES.find((d) => d.hid === 'PNP0303')!);
  const mouse = isaDevice(PC_LEGACY_DEVICES.find((d) => d.hid === 'PNP0F13')!);

  assert.ok(indexOf(kbd, hex('47 01 60 00 60 00 01 01 47 01 64 00 64 00 01 01 22 02 00 79 00')) > 0);
  assert.ok(indexOf(mouse, hex('08 5f 43 52 53 11 08 0a 05 22 00 10 79 00')) > 0);
});

test('sleepStateS5() names SLP_TYP 5, the value pm1.ts powers off on', () => {
  assert.deepEqual(sleepStateS5(), hex('08 5f 53 35 5f 12 08 04 0a 05 0a 05 00 00'));
});

test('dsdt() is a revision-2 DSDT holding \\_S5 and the four legacy devices in \\_SB', () => {
  const t = dsdt();

  assert.equal(String.fromCharCode(...t.subarray(0, 4)), 'DSDT');
  assert.equal(new DataView(t.buffer).getUint32(4, true), t.length);
  assert.equal(t[8], 2);
  assert.equal(sum(t), 0);
  assert.equal(indexOf(t, sleepStateS5()), 36, '\\_S5 first');
  const sb = scopeAfterS5(t);
  assert.deepEqual(t.subarray(sb.nameAt, sb.nameAt + 5), hex('5c 5f 53 42 5f'), 'Scope (\\_SB)');
  assert.equal(sb.end, t.length, '\\_SB runs to the end of the table');
  for (const d of PC_LEGACY_DEVICES) assert.ok(indexOf(t, isaDevice(d)) > sb.nameAt, `${d.name} inside \\_SB`);
});

test('dsdt() appends more devices inside \\_SB', () => {
  const extra = device('VIO0', name('_HID', eisaId('LNR0005')));
  const t = dsdt({ devices: [extra] });

  assert.ok(indexOf(t, extra) > indexOf(t, isaDevice(PC_LEGACY_DEVICES.at(-1)!)));
  assert.equal(indexOf(t, extra) + extra.length, t.length, 'the last thing in the table');
  assert.equal(scopeAfterS5(t).end, t.length, 'and inside \\_SB');
  assert.equal(sum(t), 0);
});
