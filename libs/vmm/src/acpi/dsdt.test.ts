import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  PC_LEGACY_DEVICES,
  dsdt,
  isaDevice,
  motherboardResources,
  pciHostBridge,
  pciHostBridgeResources,
  pciRoutingTable,
  sleepStateS5,
} from './dsdt.js';
import { pciIntxRoutes } from '../pci/intx.js';
import { concat, device, eisaId, integer, name, pkg } from './aml.js';

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

const TWO_ROUTES = [
  { slot: 0, pin: 0, gsi: 16 },
  { slot: 1, pin: 3, gsi: 20 },
];

test('pciHostBridgeResources() is the bus range, the config ports and the I/O and memory windows', () => {
  assert.deepEqual(
    pciHostBridgeResources(),
    hex(`11 48 05 0a 54
         88 0d 00 02 0c 00 0000 0000 ff00 0000 0001
         47 01 f8 0c f8 0c 01 08
         88 0d 00 01 0c 03 0000 0000 f70c 0000 f80c
         88 0d 00 01 0c 03 0000 000d ffff 0000 00f3
         87 17 00 00 0c 01 00000000 000000c0 ffffffcf 00000000 00000010
         79 00`),
  );
});

test('pciHostBridge() encodes \\_SB.PCI0 as iasl compiles the same ASL', () => {
  // Device (PCI0) { Name (_HID, EisaId ("PNP0A08")) Name (_CID, EisaId ("PNP0A03"))
  //   Name (_SEG, 0) Name (_BBN, 0) Name (_UID, 0) Name (_CRS, ResourceTemplate () { ... })
  //   Name (_PRT, Package () { Package () { 0xFFFF, 0, 0, 16 }, Package () { 0x1FFFF, 3, 0, 20 } }) }
  assert.deepEqual(
    pciHostBridge({ routes: TWO_ROUTES }),
    concat(
      hex(`5b 82 49 0a 50 43 49 30
           08 5f 48 49 44 0c 41 d0 0a 08
           08 5f 43 49 44 0c 41 d0 0a 03
           08 5f 53 45 47 00
           08 5f 42 42 4e 00
           08 5f 55 49 44 00
           08 5f 43 52 53`),
      pciHostBridgeResources(),
      hex('08 5f 50 52 54 12 19 02 12 09 04 0b ff ff 00 00 0a 10 12 0c 04 0c ff ff 01 00 0a 03 00 0a 14'),
    ),
  );
});

test('pciRoutingTable() has one Package { 0xSSSSFFFF, pin, 0, GSI } per route, in order', () => {
  const routes = pciIntxRoutes();
  const prt = pciRoutingTable(routes);

  assert.deepEqual(prt.subarray(0, 5), hex('08 5f 50 52 54'), 'Name (_PRT');
  assert.equal(prt[5], 0x12, 'PackageOp');
  const follow = prt[6]! >> 6;
  assert.equal(prt[7 + follow], routes.length, 'NumElements');
  let at = 8 + follow;
  for (const r of routes) {
    const entry = pkg(integer(r.address), integer(r.pin), integer(0), integer(r.gsi));
    assert.deepEqual(prt.subarray(at, at + entry.length), entry, `slot ${r.slot} pin ${r.pin}`);
    at += entry.length;
  }
  assert.equal(at, prt.length);
  assert.throws(() => pciRoutingTable([{ slot: 32, pin: 0, gsi: 16 }]), RangeError);
  assert.throws(() => pciRoutingTable([{ slot: 0, pin: 4, gsi: 16 }]), RangeError);
});

test('motherboardResources() reserves the 256 MiB ECAM window at 0xE0000000 as a PNP0C02 device', () => {
  // Device (MRES) { Name (_HID, EisaId ("PNP0C02")) Name (_CRS, ResourceTemplate () {
  //   DWordMemory (ResourceConsumer, PosDecode, MinFixed, MaxFixed, NonCacheable, ReadWrite,
  //                0, 0xE0000000, 0xEFFFFFFF, 0, 0x10000000) }) }
  assert.deepEqual(
    motherboardResources(),
    hex(`5b 82 34 4d 52 45 53
         08 5f 48 49 44 0c 41 d0 0c 02
         08 5f 43 52 53 11 1f 0a 1c
         87 17 00 00 0d 01 00000000 000000e0 ffffffef 00000000 00000010
         79 00`),
  );
});

test('dsdt() with pci puts PCI0 and MRES in \\_SB after the legacy devices and before extra devices', () => {
  const extra = device('VIO0', name('_HID', eisaId('LNR0005')));
  const t = dsdt({ pci: { routes: TWO_ROUTES }, devices: [extra] });
  const pci0 = indexOf(t, pciHostBridge({ routes: TWO_ROUTES }));
  const mres = indexOf(t, motherboardResources());

  assert.ok(pci0 > indexOf(t, isaDevice(PC_LEGACY_DEVICES.at(-1)!)), 'PCI0 after the legacy devices');
  assert.equal(mres, pci0 + pciHostBridge({ routes: TWO_ROUTES }).length, 'MRES right after PCI0');
  assert.equal(indexOf(t, extra), mres + motherboardResources().length, 'then the extra devices');
  assert.equal(scopeAfterS5(t).end, t.length, 'all inside \\_SB');
  assert.equal(sum(t), 0);
});

test('dsdt() without pci has no PCI0 and no MRES', () => {
  const t = dsdt();

  assert.equal(indexOf(t, hex('50 43 49 30')), -1, 'PCI0');
  assert.equal(indexOf(t, hex('4d 52 45 53')), -1, 'MRES');
});
