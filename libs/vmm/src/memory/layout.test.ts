import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  e820Map,
  parseSize,
  ramRegions,
  GIB,
  MIB,
  E820_RAM,
  E820_RESERVED,
  ACPI_TABLES_END,
  ACPI_TABLES_START,
  PCI_ECAM_BASE,
  PCI_ECAM_SIZE,
} from './layout.js';

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

test('e820Map reserves the PCI ECAM window, whatever the RAM size, and keeps RAM out of it', () => {
  for (const ram of [16 * MIB, 256 * MIB, 3 * GIB, 6 * GIB]) {
    const map = e820Map(ram);
    const ecam = map.filter((e) => e.addr === PCI_ECAM_BASE);

    assert.deepEqual(ecam, [{ addr: 0xe0000000, size: 256 * MIB, type: E820_RESERVED }], `${ram} bytes of RAM`);
    assert.ok(
      !map.some((e) => e.type === E820_RAM && e.addr < PCI_ECAM_BASE + PCI_ECAM_SIZE && e.addr + e.size > PCI_ECAM_BASE),
      'no RAM over the ECAM window',
    );
  }
});

test('e820Map has no two entries overlapping and ends with the top of RAM', () => {
  for (const ram of [64 * MIB, 3 * GIB, 6 * GIB]) {
    const map = e820Map(ram);

    const sorted = [...map].sort((a, b) => a.addr - b.addr);
    for (let i = 1; i < sorted.length; i++) {
      assert.ok(sorted[i]!.addr >= sorted[i - 1]!.addr + sorted[i - 1]!.size, `${ram}: ${sorted[i]!.addr} overlaps`);
    }
    const last = map.at(-1)!;
    assert.equal(last.type, E820_RAM);
    assert.equal(last.addr + last.size, ram <= 3 * GIB ? ram : ram + GIB, `${ram}: the top of RAM last`);
  }
});
