import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PciConfigSpace } from './config-space.js';
import { PCI_CAPABILITY_LIST, PCI_STATUS, PCI_STATUS_CAP_LIST } from './registers.js';

function read(c: PciConfigSpace, offset: number, len: number): number {
  const d = new Uint8Array(len);
  c.read(offset, d);
  return d.reduceRight((v, b) => v * 256 + b, 0);
}

function write(c: PciConfigSpace, offset: number, len: number, value: number): void {
  const d = new Uint8Array(len);
  for (let i = 0; i < len; i++) d[i] = (value >>> (8 * i)) & 0xff;
  c.write(offset, d);
}

test('PciConfigSpace.write changes only the bits of the write mask', () => {
  const c = new PciConfigSpace();
  c.setU32(0x40, 0x12345678);
  c.setWritable(0x40, 4, 0x00ff00f0);

  write(c, 0x40, 4, 0xffffffff);

  assert.equal(read(c, 0x40, 4), 0x12ff56f8);
});

test('PciConfigSpace.write clears write-1-to-clear bits written as 1 and keeps those written as 0', () => {
  const c = new PciConfigSpace();
  c.setU16(PCI_STATUS, 0xf900);
  c.setWriteOneToClear(PCI_STATUS, 2, 0xf900);

  write(c, PCI_STATUS, 2, 0x8100);

  assert.equal(read(c, PCI_STATUS, 2), 0x7800);
});

test('PciConfigSpace reads all-ones and ignores writes past its end', () => {
  const c = new PciConfigSpace(256);

  write(c, 0xfe, 4, 0);

  assert.equal(read(c, 0xfe, 4), 0xffff0000);
  assert.equal(read(c, 0x100, 4), 0xffffffff);
});

test('PciConfigSpace.addCapability links capabilities in order, dword-aligned, and sets Status.CAP_LIST', () => {
  const c = new PciConfigSpace();

  const a = c.addCapability(0x11, 12);
  const b = c.addCapability(0x09, 17);
  const d = c.addCapability(0x09, 20);

  assert.equal(c.getU8(PCI_CAPABILITY_LIST), a);
  assert.deepEqual([a, b, d], [0x40, 0x4c, 0x60]);
  assert.equal(c.getU8(a + 1), b);
  assert.equal(c.getU8(b + 1), d);
  assert.equal(c.getU8(d + 1), 0, 'the last one ends the list');
  assert.equal(c.getU8(b), 0x09);
  assert.ok((c.getU16(PCI_STATUS) & PCI_STATUS_CAP_LIST) !== 0);
});

test('PciConfigSpace.addCapability refuses a capability that does not fit', () => {
  const c = new PciConfigSpace();
  c.addCapability(0x09, 0xb0);

  assert.throws(() => c.addCapability(0x09, 0x20), { code: 'INVALID_CONFIG' });
});
