import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  IOAPIC_GSI_BASE,
  IOAPIC_PINS,
  facs,
  fadt,
  madt,
  madtEntryCount,
  mcfg,
  mcfgSize,
  rsdp,
  xsdt,
  type FadtOptions,
} from './tables.js';
import { pciIntxRoutes } from '../pci/intx.js';
import { checksum } from './sdt.js';

const sum = (bytes: Uint8Array) => bytes.reduce((s, b) => (s + b) & 0xff, 0);
const text = (bytes: Uint8Array, at: number, len: number) => String.fromCharCode(...bytes.subarray(at, at + len));
const view = (bytes: Uint8Array) => new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

const FADT_OPTIONS: FadtOptions = {
  facsAddress: 0xe0100,
  dsdtAddress: 0xe0200,
  sciIrq: 9,
  reset: { port: 0xcf9, value: 0x06 },
  msi: false,
  vga: false,
};

/** The MADT's interrupt controller structures as [type, bytes]. */
function madtEntries(table: Uint8Array): [number, Uint8Array][] {
  const out: [number, Uint8Array][] = [];
  for (let p = 44; p < table.length; ) {
    const len = table[p + 1]!;
    assert.ok(len > 0, 'a structure has a length');
    out.push([table[p]!, table.subarray(p, p + len)]);
    p += len;
  }
  return out;
}

test('checksum() gives the byte that makes the sum zero', () => {
  const bytes = Uint8Array.of(1, 2, 3, 0);

  bytes[3] = checksum(bytes);

  assert.equal(bytes[3], 0xfa);
  assert.equal(sum(bytes), 0);
});

test('rsdp() is a 36-byte revision-2 RSDP with both checksums right', () => {
  const t = rsdp(0xe0040);

  assert.equal(t.length, 36);
  assert.equal(text(t, 0, 8), 'RSD PTR ');
  assert.equal(t[15], 2, 'revision');
  assert.equal(view(t).getUint32(16, true), 0, 'no RSDT');
  assert.equal(view(t).getUint32(20, true), 36, 'length');
  assert.equal(view(t).getBigUint64(24, true), 0xe0040n, 'XSDT address');
  assert.equal(sum(t.subarray(0, 20)), 0, 'ACPI 1.0 checksum over the first 20 bytes');
  assert.equal(sum(t), 0, 'extended checksum over all 36');
});

test('xsdt() lists 64-bit table addresses after the header', () => {
  const t = xsdt([0xe0100, 0x1_0000_0000]);

  assert.equal(text(t, 0, 4), 'XSDT');
  assert.equal(view(t).getUint32(4, true), 36 + 16);
  assert.equal(t.length, 36 + 16);
  assert.equal(view(t).getBigUint64(36, true), 0xe0100n);
  assert.equal(view(t).getBigUint64(44, true), 0x1_0000_0000n);
  assert.equal(sum(t), 0);
});

test('facs() is a 64-byte version-2 FACS with no waking vector', () => {
  const t = facs();

  assert.equal(text(t, 0, 4), 'FACS');
  assert.equal(view(t).getUint32(4, true), 64);
  assert.equal(t[32], 2, 'version');
  assert.equal(view(t).getUint32(12, true), 0, 'firmware waking vector');
  assert.equal(view(t).getUint32(16, true), 0, 'global lock');
});

test('fadt() is a 276-byte revision-6 FADT with a good checksum', () => {
  const t = fadt(FADT_OPTIONS);

  assert.equal(text(t, 0, 4), 'FACP');
  assert.equal(t.length, 276);
  assert.equal(view(t).getUint32(4, true), 276);
  assert.equal(t[8], 6, 'revision');
  assert.equal(t[131], 3, 'minor version: ACPI 6.3');
  assert.equal(sum(t), 0);
});

test('fadt() points at the FACS and DSDT, the FACS through FIRMWARE_CTRL only', () => {
  const dv = view(fadt(FADT_OPTIONS));

  assert.equal(dv.getUint32(36, true), 0xe0100, 'FIRMWARE_CTRL');
  assert.equal(dv.getUint32(40, true), 0xe0200, 'DSDT');
  assert.equal(dv.getBigUint64(132, true), 0n, 'X_FIRMWARE_CTRL must be zero when FIRMWARE_CTRL is set');
  assert.equal(dv.getBigUint64(140, true), 0xe0200n, 'X_DSDT');
});

test('fadt() describes the PM1 block of devices/legacy/pm1.ts and no SMI port', () => {
  const t = fadt(FADT_OPTIONS);
  const dv = view(t);

  assert.equal(dv.getUint16(46, true), 9, 'SCI_INT');
  assert.equal(dv.getUint32(48, true), 0, 'SMI_CMD');
  assert.equal(t[52], 0, 'ACPI_ENABLE');
  assert.equal(t[53], 0, 'ACPI_DISABLE');
  assert.equal(dv.getUint32(56, true), 0x600, 'PM1a_EVT_BLK');
  assert.equal(dv.getUint32(60, true), 0, 'PM1b_EVT_BLK');
  assert.equal(dv.getUint32(64, true), 0x604, 'PM1a_CNT_BLK');
  assert.equal(dv.getUint32(76, true), 0, 'PM_TMR_BLK');
  assert.equal(t[88], 4, 'PM1_EVT_LEN');
  assert.equal(t[89], 2, 'PM1_CNT_LEN');
  assert.equal(t[108], 0x32, 'CENTURY: the RTC century register');
  // X_PM1a_EVT_BLK: SystemIO, 32 bits, offset 0, word access, 0x600
  assert.deepEqual([...t.subarray(148, 152)], [1, 32, 0, 2]);
  assert.equal(dv.getBigUint64(152, true), 0x600n);
  // X_PM1a_CNT_BLK: SystemIO, 16 bits, offset 0, word access, 0x604
  assert.deepEqual([...t.subarray(172, 176)], [1, 16, 0, 2]);
  assert.equal(dv.getBigUint64(176, true), 0x604n);
  assert.ok(t.subarray(160, 172).every((b) => b === 0), 'no X_PM1b_EVT_BLK');
});

test('fadt() has a byte-wide I/O reset register and the fixed features of a full-ACPI PC', () => {
  const t = fadt(FADT_OPTIONS);
  const dv = view(t);
  const flags = dv.getUint32(112, true);

  assert.deepEqual([...t.subarray(116, 120)], [1, 8, 0, 1], 'RESET_REG: SystemIO, 8 bits, byte access');
  assert.equal(dv.getBigUint64(120, true), 0xcf9n);
  assert.equal(t[128], 0x06, 'RESET_VALUE');
  assert.equal(flags & (1 << 10), 1 << 10, 'RESET_REG_SUP');
  assert.equal(flags & (1 << 4), 0, 'PWR_BUTTON clear: the fixed power button');
  assert.equal(flags & (1 << 5), 1 << 5, 'SLP_BUTTON set: no sleep button');
  assert.equal(flags & (1 << 20), 0, 'not HW_REDUCED_ACPI');
  assert.equal(flags & 1, 1, 'WBINVD');
  assert.equal(flags & (1 << 2), 1 << 2, 'PROC_C1');
});

test('fadt() sets IAPC_BOOT_ARCH from what the platform has', () => {
  const plain = view(fadt(FADT_OPTIONS)).getUint16(109, true);
  const withMsiAndVga = view(fadt({ ...FADT_OPTIONS, msi: true, vga: true })).getUint16(109, true);

  // LEGACY_DEVICES | 8042 | VGA Not Present | MSI Not Supported
  assert.equal(plain, 0b1111);
  assert.equal(withMsiAndVga, 0b0011);
});

test('madt() has the LAPIC address, PCAT_COMPAT and one enabled local APIC per vCPU', () => {
  const t = madt({ cpus: 3, sciIrq: 9 });
  const dv = view(t);
  const lapics = madtEntries(t).filter(([type]) => type === 0);

  assert.equal(text(t, 0, 4), 'APIC');
  assert.equal(view(t).getUint32(4, true), t.length);
  assert.equal(t[8], 5, 'revision');
  assert.equal(sum(t), 0);
  assert.equal(dv.getUint32(36, true), 0xfee00000);
  assert.equal(dv.getUint32(40, true), 1, 'PCAT_COMPAT');
  assert.deepEqual(
    lapics.map(([, e]) => [...e]),
    [0, 1, 2].map((id) => [0, 8, id, id, 1, 0, 0, 0]),
    'UID = APIC ID = vCPU index, enabled',
  );
});

test('madt() lists cpus + 4 structures for any vCPU count', () => {
  for (const cpus of [1, 2, 8, 64, 255]) {
    const t = madt({ cpus, sciIrq: 9 });

    assert.equal(madtEntries(t).length, cpus + 4, `${cpus} cpus`);
    assert.equal(madtEntryCount(cpus), cpus + 4);
    assert.equal(t.length, 44 + 8 * cpus + 12 + 2 * 10 + 6);
    assert.equal(sum(t), 0);
  }
});

test('madt() describes the IOAPIC, the PIT and SCI overrides and LINT1 as NMI', () => {
  const entries = madtEntries(madt({ cpus: 2, sciIrq: 9 }));
  const [ioapic] = entries.filter(([type]) => type === 1).map(([, e]) => view(e));
  const overrides = entries.filter(([type]) => type === 2).map(([, e]) => view(e));
  const nmis = entries.filter(([type]) => type === 4).map(([, e]) => [...e]);

  assert.equal(ioapic!.byteLength, 12);
  assert.equal(ioapic!.getUint8(2), 0, 'IOAPIC ID: KVM resets it to 0');
  assert.equal(ioapic!.getUint32(4, true), 0xfec00000);
  assert.equal(ioapic!.getUint32(8, true), 0, 'GSI base');
  assert.deepEqual(
    overrides.map((o) => ({ bus: o.getUint8(2), source: o.getUint8(3), gsi: o.getUint32(4, true), flags: o.getUint16(8, true) })),
    [
      { bus: 0, source: 0, gsi: 2, flags: 0 }, // PIT: pin 2, conforms to ISA (edge, high)
      { bus: 0, source: 9, gsi: 9, flags: 0b1101 }, // SCI: level, active high
    ],
  );
  assert.deepEqual(nmis, [[4, 6, 0xff, 0, 0, 1]], 'all processors, LINT1');
});

test('madt() leaves GSIs 16-23 to PCI: the IOAPIC covers them and no override touches them', () => {
  const entries = madtEntries(madt({ cpus: 1, sciIrq: 9 }));
  const ioapics = entries.filter(([type]) => type === 1).map(([, e]) => view(e));
  const overrides = entries.filter(([type]) => type === 2).map(([, e]) => view(e));

  assert.equal(ioapics.length, 1, 'one IOAPIC');
  assert.equal(ioapics[0]!.getUint32(8, true), IOAPIC_GSI_BASE);
  assert.equal(IOAPIC_GSI_BASE, 0);
  assert.equal(IOAPIC_PINS, 24, "KVM's in-kernel IOAPIC");
  for (const o of overrides) {
    assert.ok(o.getUint8(3) < 16 && o.getUint32(4, true) < 16, `override of IRQ ${o.getUint8(3)} stays in the ISA GSIs`);
  }
  for (const r of pciIntxRoutes()) {
    assert.ok(r.gsi >= 16 && r.gsi < IOAPIC_GSI_BASE + IOAPIC_PINS, `slot ${r.slot} pin ${r.pin}: GSI ${r.gsi}`);
  }
});

test('mcfg() is a revision-1 MCFG: 8 reserved bytes, then one 16-byte allocation each', () => {
  const t = mcfg([{ base: 0xe0000000, segment: 0, startBus: 0, endBus: 255 }]);
  const dv = view(t);

  assert.equal(text(t, 0, 4), 'MCFG');
  assert.equal(t.length, 60);
  assert.equal(mcfgSize(1), 60);
  assert.equal(dv.getUint32(4, true), 60);
  assert.equal(t[8], 1, 'revision');
  assert.equal(sum(t), 0);
  assert.equal(dv.getBigUint64(36, true), 0n, 'reserved');
  assert.deepEqual([...t.subarray(44, 60)], [0, 0, 0, 0xe0, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0, 0, 0]);
});

test('mcfg() writes each allocation and refuses bus ranges and bases ECAM cannot have', () => {
  const t = mcfg([
    { base: 0xe0000000, segment: 0, startBus: 0, endBus: 0x7f },
    { base: 0x1_0000_0000, segment: 1, startBus: 0x10, endBus: 0x1f },
  ]);
  const dv = view(t);

  assert.equal(t.length, 44 + 32);
  assert.equal(dv.getBigUint64(60, true), 0x1_0000_0000n);
  assert.equal(dv.getUint16(68, true), 1, 'segment');
  assert.deepEqual([t[70], t[71]], [0x10, 0x1f]);
  assert.throws(() => mcfg([{ base: 0xe0000000, segment: 0, startBus: 1, endBus: 0 }]), RangeError);
  assert.throws(() => mcfg([{ base: 0xe0000000, segment: 0, startBus: 0, endBus: 256 }]), RangeError);
  assert.throws(() => mcfg([{ base: 0xe0001000, segment: 0, startBus: 0, endBus: 0 }]), RangeError);
  assert.throws(() => mcfg([{ base: 0xe0000000, segment: 0x10000, startBus: 0, endBus: 0 }]), RangeError);
});
