import { test } from 'node:test';
import assert from 'node:assert/strict';
import { e820Map, parseSize, ramRegions, GIB, MIB, E820_RAM, E820_RESERVED, ACPI_TABLES_END, ACPI_TABLES_START } from './layout.js';

test('parseSize reads suffixed sizes', () => {
  assert.equal(parseSize('256M'), 256 * MIB);
  assert.equal(parseSize('1G'), GIB);
  assert.equal(parseSize('2GiB'), 2 * GIB);
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('12x'), undefined);
  assert.equal(parseSize('-1M'), undefined);
  assert.equal(parseSize(''), undefined);
});

test('ramRegions splits RAM around the 32-bit hole', () => {
  assert.deepEqual(ramRegions(512 * MIB), [{ gpa: 0, size: 512 * MIB, hostOffset: 0 }]);
  assert.deepEqual(ramRegions(5 * GIB), [
    { gpa: 0, size: 3 * GIB, hostOffset: 0 },
    { gpa: 4 * GIB, size: 2 * GIB, hostOffset: 3 * GIB },
  ]);
});

test('e820Map reports all RAM and reserves the legacy areas', () => {
  const map = e820Map(256 * MIB);
  const ram = map.filter((e) => e.type === E820_RAM);
  assert.equal(ram.at(-1)!.addr + ram.at(-1)!.size, 256 * MIB);
  assert.ok(!ram.some((e) => e.addr < 0x100000 && e.addr + e.size > 0x9fc00), 'no RAM over the EBDA and ROM area');
  const big = e820Map(6 * GIB).filter((e) => e.type === E820_RAM);
  assert.equal(big.reduce((n, e) => n + e.size, 0), 6 * GIB - 0x100000 + 0x9fc00);
  assert.equal(big.at(-1)!.addr, 4 * GIB);
});

test('e820Map reserves the ACPI table area and the BIOS ROM area', () => {
  const reserved = e820Map(256 * MIB).filter((e) => e.type === E820_RESERVED);

  assert.ok(reserved.some((e) => e.addr <= ACPI_TABLES_START && e.addr + e.size >= ACPI_TABLES_END), 'ACPI tables');
  assert.ok(reserved.some((e) => e.addr <= 0xf0000 && e.addr + e.size >= 0x100000), 'BIOS ROM');
});
