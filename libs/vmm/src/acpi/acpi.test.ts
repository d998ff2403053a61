import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../memory/guest-memory.js';
import { E820_RESERVED, MIB, e820Map } from '../memory/layout.js';
import { VmmError } from '../errors.js';
import { writeAcpiTables } from './acpi.js';
import { device, eisaId, name } from './aml.js';
import { motherboardResources, pciHostBridge } from './dsdt.js';
import { sdt } from './sdt.js';
import { mcfg } from './tables.js';
import { pciIntxRoutes } from '../pci/intx.js';

interface Found {
  signature: string;
  addr: number;
  bytes: Uint8Array;
}

function read(mem: GuestMemory, addr: number, length: number): Uint8Array {
  const b = new Uint8Array(length);
  mem.read(addr, b);
  return b;
}

const sum = (bytes: Uint8Array) => bytes.reduce((s, b) => (s + b) & 0xff, 0);
const signature = (bytes: Uint8Array) => String.fromCharCode(...bytes.subarray(0, 4));

/** Finds the tables as an OS does: RSDP → XSDT → each entry, FADT → FACS and DSDT. */
function walk(mem: GuestMemory, rsdp: number): Found[] {
  const r = read(mem, rsdp, 36);
  assert.equal(String.fromCharCode(...r.subarray(0, 8)), 'RSD PTR ');
  assert.equal(sum(r.subarray(0, 20)), 0, 'RSDP checksum');
  assert.equal(sum(r), 0, 'RSDP extended checksum');
  const found: Found[] = [{ signature: 'RSDP', addr: rsdp, bytes: r }];
  const table = (addr: number): Uint8Array => read(mem, addr, mem.readU32(addr + 4));
  const xsdtAddr = Number(mem.readU64(rsdp + 24));
  const x = table(xsdtAddr);
  found.push({ signature: signature(x), addr: xsdtAddr, bytes: x });
  for (let p = 36; p < x.length; p += 8) {
    const addr = Number(new DataView(x.buffer).getBigUint64(p, true));
    const t = table(addr);
    found.push({ signature: signature(t), addr, bytes: t });
    if (signature(t) === 'FACP') {
      const facsAddr = mem.readU32(addr + 36);
      const dsdtAddr = mem.readU32(addr + 40);
      assert.equal(Number(mem.readU64(addr + 140)), dsdtAddr, 'X_DSDT = DSDT');
      found.push({ signature: 'FACS', addr: facsAddr, bytes: read(mem, facsAddr, mem.readU32(facsAddr + 4)) });
      found.push({ signature: 'DSDT', addr: dsdtAddr, bytes: table(dsdtAddr) });
    }
  }
  return found;
}

test('writeAcpiTables() puts the RSDP at 0xe0000, in the area a legacy OS scans', () => {
  const mem = GuestMemory.anonymous(64 * MIB);

  const { rsdp } = writeAcpiTables(mem, { cpus: 1 });

  assert.equal(rsdp, 0xe0000);
  assert.equal(rsdp % 16, 0);
});

test('writeAcpiTables() makes every table reachable from the RSDP, each with a zero checksum', () => {
  const mem = GuestMemory.anonymous(64 * MIB);

  const found = walk(mem, writeAcpiTables(mem, { cpus: 4 }).rsdp);

  assert.deepEqual(found.map((f) => f.signature), ['RSDP', 'XSDT', 'FACP', 'FACS', 'DSDT', 'APIC']);
  for (const f of found.filter((f) => f.signature !== 'RSDP' && f.signature !== 'FACS')) {
    assert.equal(sum(f.bytes), 0, `${f.signature} checksum`);
    assert.equal(new DataView(f.bytes.buffer).getUint32(4, true), f.bytes.length, `${f.signature} length`);
  }
  assert.deepEqual(
    found.map((f) => [f.signature, f.bytes.length]).filter(([s]) => s !== 'DSDT' && s !== 'APIC'),
    [['RSDP', 36], ['XSDT', 36 + 2 * 8], ['FACP', 276], ['FACS', 64]],
  );
});

test('writeAcpiTables() lays the tables out without overlap, aligned, inside reserved memory', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const reserved = e820Map(64 * MIB).filter((e) => e.type === E820_RESERVED);

  const found = walk(mem, writeAcpiTables(mem, { cpus: 8 }).rsdp).sort((a, b) => a.addr - b.addr);

  for (const [i, f] of found.entries()) {
    const end = f.addr + f.bytes.length;
    assert.ok(reserved.some((e) => f.addr >= e.addr && end <= e.addr + e.size), `${f.signature} in reserved memory`);
    assert.ok(f.addr >= 0xe0000 && end <= 0xf0000, `${f.signature} in the ACPI area`);
    if (i > 0) assert.ok(f.addr >= found[i - 1]!.addr + found[i - 1]!.bytes.length, `${f.signature} overlaps`);
  }
  assert.equal(found.find((f) => f.signature === 'FACS')!.addr % 64, 0, 'FACS on a 64-byte boundary');
});

test('writeAcpiTables() lists one local APIC per vCPU in the MADT', () => {
  for (const cpus of [1, 2, 16, 255]) {
    const mem = GuestMemory.anonymous(64 * MIB);

    const madt = walk(mem, writeAcpiTables(mem, { cpus }).rsdp).find((f) => f.signature === 'APIC')!.bytes;

    const types: number[] = [];
    for (let p = 44; p < madt.length; p += madt[p + 1]!) types.push(madt[p]!);
    assert.equal(types.filter((t) => t === 0).length, cpus, `${cpus} cpus`);
    assert.equal(types.length, cpus + 4);
  }
});

test('writeAcpiTables() lists extra tables in the XSDT and puts extra devices in the DSDT', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const mcfg = sdt('MCFG', 1, new Uint8Array(8 + 16));
  const vio = device('VIO0', name('_HID', eisaId('LNR0005')));

  const found = walk(mem, writeAcpiTables(mem, { cpus: 1, tables: [mcfg], devices: [vio] }).rsdp);

  assert.deepEqual(found.map((f) => f.signature), ['RSDP', 'XSDT', 'FACP', 'FACS', 'DSDT', 'APIC', 'MCFG']);
  assert.deepEqual(found.at(-1)!.bytes, mcfg);
  const dsdt = found.find((f) => f.signature === 'DSDT')!.bytes;
  assert.deepEqual(dsdt.subarray(dsdt.length - vio.length), vio);
});

test('writeAcpiTables() clears what the area held before', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  mem.fill(0xe0000, 0x10000, 0xaa);

  writeAcpiTables(mem, { cpus: 1 });

  assert.equal(mem.readU32(0xe0000 + 36), 0, 'the gap after the RSDP');
  assert.equal(mem.readU32(0xeff00), 0, 'the end of the area');
});

test('writeAcpiTables() refuses vCPU counts the MADT cannot hold', () => {
  const mem = GuestMemory.anonymous(64 * MIB);

  for (const cpus of [0, 256, 1.5, NaN]) {
    assert.throws(
      () => writeAcpiTables(mem, { cpus }),
      (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG' && /cpus must be between 1 and 255/.test(e.message),
      String(cpus),
    );
  }
});

test('writeAcpiTables() refuses an extra table that is not a complete SDT', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const broken = sdt('MCFG', 1, new Uint8Array(8));
  broken[20] ^= 1;

  assert.throws(() => writeAcpiTables(mem, { cpus: 1, tables: [broken] }), { code: 'INVALID_CONFIG' });
  assert.throws(() => writeAcpiTables(mem, { cpus: 1, tables: [new Uint8Array(10)] }), { code: 'INVALID_CONFIG' });
});

test('writeAcpiTables() refuses tables that outgrow the ACPI area', () => {
  const mem = GuestMemory.anonymous(64 * MIB);

  assert.throws(
    () => writeAcpiTables(mem, { cpus: 1, tables: [sdt('HUGE', 1, new Uint8Array(0x10000))] }),
    (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG' && /area holds 65536/.test(e.message),
  );
});

/** The FADT's IAPC_BOOT_ARCH MSI Not Supported bit. */
const msiNotSupported = (found: Found[]) =>
  (new DataView(found.find((f) => f.signature === 'FACP')!.bytes.buffer).getUint16(109, true) >> 3) & 1;

test('writeAcpiTables() with pci lists the MCFG after the MADT, with one ECAM window for buses 0-255', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const extra = sdt('SSDT', 2, new Uint8Array(4));

  const found = walk(mem, writeAcpiTables(mem, { cpus: 2, pci: { routes: pciIntxRoutes() }, tables: [extra] }).rsdp);

  assert.deepEqual(found.map((f) => f.signature), ['RSDP', 'XSDT', 'FACP', 'FACS', 'DSDT', 'APIC', 'MCFG', 'SSDT']);
  const table = found.find((f) => f.signature === 'MCFG')!.bytes;
  assert.deepEqual(table, mcfg([{ base: 0xe0000000, segment: 0, startBus: 0, endBus: 255 }]));
  assert.equal(sum(table), 0);
});

test('writeAcpiTables() with pci puts PCI0, with the routes as its _PRT, and MRES in the DSDT', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const routes = pciIntxRoutes();
  const vio = device('VIO0', name('_HID', eisaId('LNR0005')));

  const found = walk(mem, writeAcpiTables(mem, { cpus: 1, pci: { routes }, devices: [vio] }).rsdp);

  const dsdt = found.find((f) => f.signature === 'DSDT')!.bytes;
  const tail = [pciHostBridge({ routes }), motherboardResources(), vio];
  const length = tail.reduce((n, t) => n + t.length, 0);
  assert.deepEqual([...dsdt.subarray(dsdt.length - length)], tail.flatMap((t) => [...t]));
});

test('writeAcpiTables() with pci lays its tables out in reserved memory without overlap', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const reserved = e820Map(64 * MIB).filter((e) => e.type === E820_RESERVED);

  const found = walk(mem, writeAcpiTables(mem, { cpus: 255, pci: { routes: pciIntxRoutes() } }).rsdp);

  const sorted = found.sort((a, b) => a.addr - b.addr);
  for (const [i, f] of sorted.entries()) {
    const end = f.addr + f.bytes.length;
    assert.ok(reserved.some((e) => f.addr >= e.addr && end <= e.addr + e.size), `${f.signature} in reserved memory`);
    if (i > 0) assert.ok(f.addr >= sorted[i - 1]!.addr + sorted[i - 1]!.bytes.length, `${f.signature} overlaps`);
  }
});

test('writeAcpiTables() says MSI works with pci unless told otherwise, and not without pci', () => {
  const tables = (options: Omit<Parameters<typeof writeAcpiTables>[1], 'cpus'>) => {
    const mem = GuestMemory.anonymous(64 * MIB);
    return walk(mem, writeAcpiTables(mem, { cpus: 1, ...options }).rsdp);
  };
  const pci = { routes: pciIntxRoutes() };

  assert.equal(msiNotSupported(tables({})), 1);
  assert.equal(msiNotSupported(tables({ pci })), 0);
  assert.equal(msiNotSupported(tables({ pci, msi: false })), 1);
  assert.equal(msiNotSupported(tables({ msi: true })), 0);
});

test('writeAcpiTables() refuses PCI routes the _PRT and the IOAPIC cannot carry', () => {
  const mem = GuestMemory.anonymous(64 * MIB);
  const refuses = (routes: { slot: number; pin: number; gsi: number }[], why: RegExp) =>
    assert.throws(
      () => writeAcpiTables(mem, { cpus: 1, pci: { routes } }),
      (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG' && why.test(e.message),
      JSON.stringify(routes),
    );

  refuses([{ slot: 32, pin: 0, gsi: 16 }], /slots are 0-31/);
  refuses([{ slot: 1, pin: 4, gsi: 16 }], /pins 0 \(INTA#\) to 3/);
  refuses([{ slot: 1, pin: 0, gsi: 9 }], /GSIs 16-23/);
  refuses([{ slot: 1, pin: 0, gsi: 24 }], /GSIs 16-23/);
  refuses([{ slot: 1, pin: 0, gsi: 16 }, { slot: 1, pin: 0, gsi: 17 }], /already routed/);
  assert.doesNotThrow(() => writeAcpiTables(mem, { cpus: 1, pci: { routes: [] } }));
});
