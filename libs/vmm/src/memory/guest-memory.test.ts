import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from './guest-memory.js';
import { GIB, MIB } from './layout.js';
import { VmmError } from '../errors.js';

test('GuestMemory reads back what it wrote', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  mem.write(0x1000, Uint8Array.of(1, 2, 3, 4));
  const out = new Uint8Array(4);
  mem.read(0x1000, out);
  assert.deepEqual([...out], [1, 2, 3, 4]);
  assert.equal(mem.readU32(0x1000), 0x04030201);
});

test('GuestMemory scalar accessors are little-endian', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  mem.writeU64(0x2000, 0x1122334455667788n);
  assert.equal(mem.readU8(0x2000), 0x88);
  assert.equal(mem.readU16(0x2000), 0x7788);
  assert.equal(mem.readU64(0x2000), 0x1122334455667788n);
});

test('GuestMemory refuses accesses outside guest RAM', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  assert.throws(() => mem.read(16 * MIB - 2, new Uint8Array(4)), (e: unknown) => e instanceof VmmError && e.code === 'GUEST_ADDRESS_OUT_OF_RANGE');
  assert.throws(() => mem.write(-1, new Uint8Array(1)), VmmError);
  assert.throws(() => mem.readU32(2 ** 60), VmmError);
  assert.equal(mem.view(16 * MIB, 1), undefined);
  assert.equal(mem.contains(0, 16 * MIB), true);
  assert.equal(mem.contains(0, 16 * MIB + 1), false);
  assert.equal(mem.contains(Number.NaN, 1), false);
});

test('GuestMemory copies across chunk boundaries and views refuse them', () => {
  const mem = GuestMemory.anonymous(4 * MIB, 1 * MIB);
  const src = Uint8Array.from({ length: 16 }, (_, i) => i + 1);
  mem.write(MIB - 8, src);
  const out = new Uint8Array(16);
  mem.read(MIB - 8, out);
  assert.deepEqual(out, src);
  assert.equal(mem.view(MIB - 8, 16), undefined);
  assert.deepEqual([...mem.view(MIB, 8)!], [9, 10, 11, 12, 13, 14, 15, 16]);
  assert.equal(mem.readU32(MIB - 2), 0x0a090807, 'a scalar across the chunk edge');
  mem.writeU32(MIB - 2, 0xdeadbeef);
  assert.equal(mem.readU32(MIB - 2), 0xdeadbeef);
});

test('GuestMemory above 3 GiB leaves the 32-bit hole unbacked', () => {
  // Regions only: a 5 GiB layout is checked without allocating it.
  const mem = Object.create(GuestMemory.prototype) as GuestMemory;
  Object.assign(mem, { size: 5 * GIB, regions: [{ gpa: 0, size: 3 * GIB, hostOffset: 0 }, { gpa: 4 * GIB, size: 2 * GIB, hostOffset: 3 * GIB }] });
  assert.equal(mem.hostOffset(3 * GIB - 4, 4), 3 * GIB - 4);
  assert.equal(mem.hostOffset(3 * GIB, 4), -1);
  assert.equal(mem.hostOffset(0xfec00000, 4), -1);
  assert.equal(mem.hostOffset(4 * GIB, 4), 3 * GIB);
  assert.equal(mem.hostOffset(3 * GIB - 2, 4), -1, 'a range running into the hole is refused');
});

test('GuestMemory fill zeroes a range', () => {
  const mem = GuestMemory.anonymous(16 * MIB);
  mem.write(0x3000, new Uint8Array(64).fill(0xaa));
  mem.fill(0x3008, 16);
  assert.equal(mem.readU8(0x3007), 0xaa);
  assert.equal(mem.readU8(0x3008), 0);
  assert.equal(mem.readU8(0x3017), 0);
  assert.equal(mem.readU8(0x3018), 0xaa);
});
