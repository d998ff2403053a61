import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { BusDevice } from '../bus/device.js';
import { MmioBus, PioBus } from '../bus/io-bus.js';
import { PCI_ECAM_BASE, PCI_ECAM_SIZE, PCI_IO_START, PCI_MMIO32_END, PCI_MMIO32_START } from '../memory/layout.js';
import { FakeIrqLine } from '../testing/fake-irq.js';
import { fuzzEveryRegister, inb, inl, inw, outb, outl, outw } from '../testing/pio.js';
import { PciBus, disjointRanges } from './bus.js';
import { PciConfigIo, PCI_CONFIG_IO_WINDOW } from './config-io.js';
import { PciEcam } from './ecam.js';
import { PciFunction, type PciBarSpec } from './function.js';
import { PCI_DEVICE_ID_REDHAT_PCIE_HOST, PCI_VENDOR_ID_REDHAT } from './host-bridge.js';
import { PCI_INTX_GSI_BASE, pciIntxGsi } from './intx.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_CLASS_PROG,
  PCI_COMMAND,
  PCI_COMMAND_INTX_DISABLE,
  PCI_COMMAND_IO,
  PCI_COMMAND_MEMORY,
  PCI_DEVICE_ID,
  PCI_HEADER_TYPE,
  PCI_INTERRUPT_LINE,
  PCI_INTERRUPT_PIN,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  PCI_VENDOR_ID,
} from './registers.js';

/** A BAR region that remembers what reached it. */
class Recorder implements BusDevice {
  readonly writes: [number, number][] = [];
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = 0xa0 + (offset & 0xf);
  }
  write(offset: number, data: Uint8Array): void {
    this.writes.push([offset, data[0]!]);
  }
}

/** A function with one BAR of each kind, that logs where its BARs move. */
class TestFunction extends PciFunction {
  readonly moves: [number, number | undefined][] = [];
  readonly mem: Recorder;
  readonly mem64: Recorder;
  readonly io: Recorder;
  constructor(bars?: (PciBarSpec | undefined)[], pin = 1) {
    const mem = new Recorder();
    const mem64 = new Recorder();
    const io = new Recorder();
    super({
      vendorId: 0x1234,
      deviceId: 0x5678,
      classCode: 0xff0000,
      interruptPin: pin,
      bars: bars ?? [
        { kind: 'memory32', size: 0x4000, region: mem },
        { kind: 'memory64', size: 0x10000, region: mem64 },
        undefined,
        { kind: 'io', size: 32, region: io },
      ],
    });
    this.mem = mem;
    this.mem64 = mem64;
    this.io = io;
  }
  protected override barMoved(index: number, base: number | undefined): void {
    this.moves.push([index, base]);
  }
}

function machine() {
  const mmio = new MmioBus();
  const pio = new PioBus();
  const gsis = new Map<number, FakeIrqLine>();
  const pci = new PciBus({
    mmio,
    pio,
    gsiLine: (gsi) => {
      const line = new FakeIrqLine();
      gsis.set(gsi, line);
      return line;
    },
  });
  const cf8 = new PciConfigIo({ bus: pci });
  const ecam = new PciEcam(pci);
  pio.insert('pci-config', 0xcf8, PCI_CONFIG_IO_WINDOW, cf8);
  mmio.insert('pci-ecam', PCI_ECAM_BASE, PCI_ECAM_SIZE, ecam);
  return { mmio, pio, pci, cf8, ecam, gsis };
}

function cf8Address(bus: number, dev: number, fn: number, reg: number): number {
  return (0x80000000 | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xfc)) >>> 0;
}

/** A 32-bit configuration read through 0xCF8/0xCFC. */
function cfgRead32(cf8: PciConfigIo, dev: number, reg: number, bus = 0, fn = 0): number {
  outl(cf8, 0, cf8Address(bus, dev, fn, reg));
  return inl(cf8, 4);
}

function cfgWrite32(cf8: PciConfigIo, dev: number, reg: number, value: number): void {
  outl(cf8, 0, cf8Address(0, dev, 0, reg));
  outl(cf8, 4, value);
}

function ecamOffset(bus: number, dev: number, fn: number, reg: number): number {
  return bus * 2 ** 20 + dev * 2 ** 15 + fn * 2 ** 12 + reg;
}

function mmioRead(mmio: MmioBus, addr: number, len: number): number {
  const d = new Uint8Array(len);
  mmio.read(addr, d);
  return d.reduceRight((v, b) => v * 256 + b, 0);
}

// --- configuration mechanism #1 ---

test('PciConfigIo reads the host bridge at 00:00.0 through 0xCF8/0xCFC', () => {
  const { cf8 } = machine();

  const ids = cfgRead32(cf8, 0, PCI_VENDOR_ID);
  const classRev = cfgRead32(cf8, 0, 0x08);

  assert.equal(ids, (PCI_DEVICE_ID_REDHAT_PCIE_HOST << 16) | PCI_VENDOR_ID_REDHAT);
  assert.equal(classRev >>> 8, 0x060000, 'class: bridge, host');
});

test('PciConfigIo reads all-ones for empty slots, other buses and other functions', () => {
  const { cf8 } = machine();

  assert.equal(cfgRead32(cf8, 7, PCI_VENDOR_ID), 0xffffffff);
  assert.equal(cfgRead32(cf8, 0, PCI_VENDOR_ID, 1), 0xffffffff);
  assert.equal(cfgRead32(cf8, 0, PCI_VENDOR_ID, 0, 3), 0xffffffff);
});

test('PciConfigIo answers CONFIG_DATA with all-ones and drops writes while the enable bit is clear', () => {
  const { cf8, pci } = machine();
  pci.attach(3, new TestFunction(), 'test');

  outl(cf8, 0, cf8Address(0, 3, 0, PCI_INTERRUPT_LINE) & 0x7fffffff);
  outb(cf8, 4, 0x42);
  const disabled = inl(cf8, 4);

  assert.equal(disabled, 0xffffffff);
  assert.notEqual(cfgRead32(cf8, 3, PCI_INTERRUPT_LINE) & 0xff, 0x42);
});

test('PciConfigIo keeps CONFIG_ADDRESS without its reserved bits', () => {
  const { cf8 } = machine();

  outl(cf8, 0, 0xffffffff);

  assert.equal(inl(cf8, 0), 0x80fffffc);
});

test('PciConfigIo serves byte and word accesses at every CONFIG_DATA port', () => {
  const { cf8 } = machine();
  outl(cf8, 0, cf8Address(0, 0, 0, PCI_VENDOR_ID));

  assert.equal(inw(cf8, 4), PCI_VENDOR_ID_REDHAT);
  assert.equal(inw(cf8, 6), PCI_DEVICE_ID_REDHAT_PCIE_HOST);
  assert.equal(inb(cf8, 5), PCI_VENDOR_ID_REDHAT >>> 8);
  assert.equal(inb(cf8, 7), PCI_DEVICE_ID_REDHAT_PCIE_HOST >>> 8);
});

test('PciConfigIo passes byte accesses at 0xCF9 to the reset control register, and nothing else', () => {
  const seen: string[] = [];
  const rst: BusDevice = {
    read: (o, d) => {
      seen.push(`r${o}/${d.length}`);
      d[0] = 0x02;
    },
    write: (o, d) => seen.push(`w${o}/${d.length}=${d[0]}`),
  };
  const cf8 = new PciConfigIo({ bus: machine().pci, resetControl: rst });

  outb(cf8, 1, 0x06);
  const value = inb(cf8, 1);
  outl(cf8, 0, cf8Address(0, 0, 0, 0));
  outw(cf8, 0, 0x1234);

  assert.deepEqual(seen, ['w0/1=6', 'r0/1']);
  assert.equal(value, 0x02);
  assert.equal(inl(cf8, 0), cf8Address(0, 0, 0, 0), 'a word write is not CONFIG_ADDRESS');
});

test('PciConfigIo never throws, whatever the guest writes', () => {
  const { cf8, pci } = machine();
  pci.attach(1, new TestFunction(), 'test');

  assert.doesNotThrow(() => fuzzEveryRegister(cf8, PCI_CONFIG_IO_WINDOW));
});

// --- ECAM ---

test('PciEcam reaches the same configuration space as 0xCF8', () => {
  const { cf8, ecam, pci } = machine();
  pci.attach(2, new TestFunction(), 'test');

  ecam.write(ecamOffset(0, 2, 0, PCI_INTERRUPT_LINE), Uint8Array.of(0x5a));

  assert.equal(inl(ecam, ecamOffset(0, 2, 0, PCI_VENDOR_ID)), 0x56781234);
  assert.equal(cfgRead32(cf8, 2, PCI_INTERRUPT_LINE) & 0xff, 0x5a);
});

test('PciEcam reads all-ones past bus 0, and past a conventional function\'s 256 bytes', () => {
  const { ecam } = machine();

  assert.equal(inl(ecam, ecamOffset(5, 0, 0, 0)), 0xffffffff);
  assert.equal(inl(ecam, ecamOffset(255, 31, 7, 0xffc)), 0xffffffff);
  assert.equal(inl(ecam, ecamOffset(0, 0, 0, 0x100)), 0xffffffff);
});

test('PciEcam serves an 8-byte read as two dwords', () => {
  const { ecam } = machine();
  const d = new Uint8Array(8);

  ecam.read(ecamOffset(0, 0, 0, 0), d);

  assert.equal(new DataView(d.buffer).getUint32(0, true), (PCI_DEVICE_ID_REDHAT_PCIE_HOST << 16) | PCI_VENDOR_ID_REDHAT);
  assert.equal(new DataView(d.buffer).getUint32(4, true) & 0xffff, 0, 'command');
});

test('the ECAM window is on the MMIO bus at PCI_ECAM_BASE', () => {
  const { mmio } = machine();

  assert.equal(mmioRead(mmio, PCI_ECAM_BASE + PCI_VENDOR_ID, 2), PCI_VENDOR_ID_REDHAT);
});

// --- the header ---

test('a function ignores writes to its read-only registers', () => {
  const { cf8, pci } = machine();
  pci.attach(1, new TestFunction(), 'test');

  cfgWrite32(cf8, 1, PCI_VENDOR_ID, 0);
  cfgWrite32(cf8, 1, PCI_CLASS_PROG - 1, 0);
  cfgWrite32(cf8, 1, PCI_HEADER_TYPE & ~3, 0xffffffff);

  assert.equal(cfgRead32(cf8, 1, PCI_VENDOR_ID), 0x56781234);
  assert.equal(cfgRead32(cf8, 1, 0x08) >>> 8, 0xff0000);
  assert.equal((cfgRead32(cf8, 1, PCI_HEADER_TYPE & ~3) >>> 16) & 0xff, 0, 'header type');
});

// --- BAR sizing and placement ---

test('attach() places BARs naturally aligned in the PCI windows and turns decoding on', () => {
  const { cf8, pci } = machine();
  const fn = new TestFunction();

  pci.attach(4, fn, 'test');

  const mem = fn.barAddress(0)!;
  const mem64 = fn.barAddress(1)!;
  const io = fn.barAddress(3)!;
  assert.ok(mem >= PCI_MMIO32_START && mem + 0x4000 <= PCI_MMIO32_END && mem % 0x4000 === 0);
  assert.ok(mem64 >= PCI_MMIO32_START && mem64 + 0x10000 <= PCI_MMIO32_END && mem64 % 0x10000 === 0);
  assert.ok(io >= PCI_IO_START && io % 32 === 0);
  assert.equal(cfgRead32(cf8, 4, PCI_COMMAND) & 0x3, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);
  assert.equal(cfgRead32(cf8, 4, PCI_BASE_ADDRESS_0 + 4) & 0xf, 0x4, '64-bit memory BAR');
  assert.equal(cfgRead32(cf8, 4, PCI_BASE_ADDRESS_0 + 12) & 0x3, 0x1, 'I/O BAR');
});

test('a 32-bit memory BAR answers all-ones with its size mask (§6.2.5.1)', () => {
  const { cf8, pci } = machine();
  pci.attach(1, new TestFunction(), 'test');
  const original = cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0);

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0, 0xffffffff);
  const mask = cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0);
  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0, original);

  assert.equal(mask, 0xffffc000);
  assert.equal(((~(mask & 0xfffffff0) >>> 0) + 1) >>> 0, 0x4000, 'the size software computes');
  assert.equal(cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0), original);
});

test('a 64-bit memory BAR sizes across both dwords', () => {
  const { cf8, pci } = machine();
  pci.attach(1, new TestFunction(), 'test');

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0 + 4, 0xffffffff);
  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0 + 8, 0xffffffff);

  assert.equal(cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0 + 4), 0xffff0004);
  assert.equal(cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0 + 8), 0xffffffff);
});

test('BAR sizing works the same through ECAM', () => {
  const { ecam, pci } = machine();
  pci.attach(6, new TestFunction(), 'test');
  const bar0 = ecamOffset(0, 6, 0, PCI_BASE_ADDRESS_0);
  const original = inl(ecam, bar0);

  outl(ecam, bar0, 0xffffffff);
  const mask = inl(ecam, bar0);
  outl(ecam, bar0, original);

  assert.equal(mask, 0xffffc000);
  assert.equal(inl(ecam, bar0), original);
});

test('an I/O BAR sizes within 16 bits', () => {
  const { cf8, pci } = machine();
  pci.attach(1, new TestFunction(), 'test');

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0 + 12, 0xffffffff);

  assert.equal(cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0 + 12), 0x0000ffe1);
});

test('an unimplemented BAR reads 0 and stays 0', () => {
  const { cf8, pci } = machine();
  pci.attach(1, new TestFunction(), 'test');

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0 + 16, 0xffffffff);

  assert.equal(cfgRead32(cf8, 1, PCI_BASE_ADDRESS_0 + 16), 0);
});

// --- decoding ---

test('BAR windows decode on the MMIO and port buses at their addresses', () => {
  const { mmio, pio, pci } = machine();
  const fn = new TestFunction();
  pci.attach(1, fn, 'test');

  const mem = mmioRead(mmio, fn.barAddress(0)! + 5, 1);
  mmio.write(fn.barAddress(1)! + 0x10, Uint8Array.of(7));
  pio.write(fn.barAddress(3)! + 2, Uint8Array.of(9));

  assert.equal(mem, 0xa5);
  assert.deepEqual(fn.mem64.writes, [[0x10, 7]]);
  assert.deepEqual(fn.io.writes, [[2, 9]]);
});

test('moving a BAR moves its window and tells the function', () => {
  const { mmio, cf8, pci } = machine();
  const fn = new TestFunction();
  pci.attach(1, fn, 'test');
  const old = fn.barAddress(0)!;
  fn.moves.length = 0;

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0, 0xc8000000);

  assert.equal(fn.barAddress(0), 0xc8000000);
  assert.deepEqual(fn.moves, [[0, 0xc8000000]]);
  assert.equal(mmio.read(old, new Uint8Array(1)), false, 'nothing at the old address');
  assert.equal(mmioRead(mmio, 0xc8000000, 1), 0xa0);
});

test('a 64-bit BAR can move above 4 GiB', () => {
  const { mmio, cf8, pci } = machine();
  const fn = new TestFunction();
  pci.attach(1, fn, 'test');

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0 + 4, 0x00010004);
  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0 + 8, 0x1);

  assert.equal(fn.barAddress(1), 0x1_0001_0000);
  assert.equal(mmioRead(mmio, 0x1_0001_0003, 1), 0xa3);
});

test('clearing Command.MEMORY stops memory decoding and setting it starts it again', () => {
  const { mmio, cf8, pci } = machine();
  const fn = new TestFunction();
  pci.attach(1, fn, 'test');
  const base = fn.barAddress(0)!;

  cfgWrite32(cf8, 1, PCI_COMMAND, PCI_COMMAND_IO);
  const off = mmio.read(base, new Uint8Array(1));
  const ioStill = fn.barAddress(3);
  cfgWrite32(cf8, 1, PCI_COMMAND, PCI_COMMAND_IO | PCI_COMMAND_MEMORY);

  assert.equal(off, false);
  assert.notEqual(ioStill, undefined, 'I/O decoding is separate');
  assert.equal(fn.barAddress(0), base);
  assert.equal(mmioRead(mmio, base, 1), 0xa0);
});

test('sizing a BAR with decoding off never maps it', () => {
  const { mmio, cf8, pci } = machine();
  const fn = new TestFunction();
  pci.attach(1, fn, 'test');
  cfgWrite32(cf8, 1, PCI_COMMAND, 0);
  fn.moves.length = 0;
  const before = mmio.ranges().length;

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0, 0xffffffff);

  assert.deepEqual(fn.moves, []);
  assert.equal(mmio.ranges().length, before);
});

test('a BAR moved over another device stops decoding, is counted, and does not throw', () => {
  const { cf8, pci } = machine();
  const a = new TestFunction();
  const b = new TestFunction();
  pci.attach(1, a, 'a');
  pci.attach(2, b, 'b');

  cfgWrite32(cf8, 2, PCI_BASE_ADDRESS_0, a.barAddress(0)!);

  assert.equal(b.barAddress(0), undefined);
  assert.equal(b.metrics.barConflicts, 1);
  assert.deepEqual(b.moves.at(-1), [0, undefined]);
});

test('a BAR at address 0 is taken as unassigned and does not decode', () => {
  const { cf8, pci } = machine();
  const fn = new TestFunction();
  pci.attach(1, fn, 'test');

  cfgWrite32(cf8, 1, PCI_BASE_ADDRESS_0, 0);

  assert.equal(fn.barAddress(0), undefined);
});

test('attach() refuses a slot that is taken or does not exist', () => {
  const { pci } = machine();

  assert.throws(() => pci.attach(0, new TestFunction(), 'again'), { code: 'INVALID_CONFIG' });
  assert.throws(() => pci.attach(32, new TestFunction(), 'far'), { code: 'INVALID_CONFIG' });
});

test('attach() refuses a BAR that does not fit in the window', () => {
  const { pci } = machine();
  const huge = new TestFunction([{ kind: 'memory64', size: 2 ** 30, region: new Recorder() }]);

  assert.throws(() => pci.attach(1, huge, 'huge'), { code: 'INVALID_CONFIG' });
});

test('a function refuses invalid BAR specifications', () => {
  const r = new Recorder();
  assert.throws(() => new TestFunction([{ kind: 'memory32', size: 3000, region: r }]), { code: 'INVALID_CONFIG' });
  assert.throws(() => new TestFunction([{ kind: 'io', size: 512, region: r }]), { code: 'INVALID_CONFIG' });
  assert.throws(() => new TestFunction([{ kind: 'memory64', size: 4096, region: r }, { kind: 'io', size: 4, region: r }]), { code: 'INVALID_CONFIG' });
  assert.throws(() => new TestFunction([undefined, undefined, undefined, undefined, undefined, { kind: 'memory64', size: 4096, region: r }]), {
    code: 'INVALID_CONFIG',
  });
});

// --- INTx ---

test('attach() writes the routed GSI into Interrupt Line', () => {
  const { cf8, pci } = machine();
  pci.attach(5, new TestFunction(undefined, 2), 'test');

  const reg = cfgRead32(cf8, 5, PCI_INTERRUPT_LINE);

  assert.equal(reg & 0xff, pciIntxGsi(5, 2));
  assert.equal((reg >>> 8) & 0xff, 2, 'Interrupt Pin: INTB#');
});

test('INTx# raises the routed GSI and shows in Status.INTERRUPT', () => {
  const { cf8, pci, gsis } = machine();
  const fn = new TestFunction();
  pci.attach(3, fn, 'test');
  const gsi = pciIntxGsi(3, 1);

  fn.setIntx(true);
  const status = cfgRead32(cf8, 3, PCI_COMMAND) >>> 16;

  assert.equal(gsis.get(gsi)?.level, true);
  assert.ok((status & PCI_STATUS_INTERRUPT) !== 0);
  fn.setIntx(false);
  assert.equal(gsis.get(gsi)?.level, false);
});

test('Command.INTX_DISABLE holds INTx# low while Status.INTERRUPT still shows it', () => {
  const { cf8, pci, gsis } = machine();
  const fn = new TestFunction();
  pci.attach(3, fn, 'test');
  const gsi = pciIntxGsi(3, 1);
  fn.setIntx(true);

  cfgWrite32(cf8, 3, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO | PCI_COMMAND_INTX_DISABLE);
  const masked = gsis.get(gsi)!.level;
  const status = fn.config.getU16(PCI_STATUS);
  cfgWrite32(cf8, 3, PCI_COMMAND, PCI_COMMAND_MEMORY | PCI_COMMAND_IO);

  assert.equal(masked, false);
  assert.ok((status & PCI_STATUS_INTERRUPT) !== 0);
  assert.equal(gsis.get(gsi)!.level, true, 'unmasking re-asserts');
});

test('two functions sharing a GSI keep it asserted until both release it', () => {
  const { pci, gsis } = machine();
  const a = new TestFunction(undefined, 1);
  const b = new TestFunction(undefined, 1);
  pci.attach(1, a, 'a');
  pci.attach(9, b, 'b'); // (9 + 1 - 1) mod 8 = 1: the same line as slot 1
  const gsi = pciIntxGsi(1, 1);
  assert.equal(pciIntxGsi(9, 1), gsi);

  a.setIntx(true);
  b.setIntx(true);
  a.setIntx(false);
  const stillHigh = gsis.get(gsi)!.level;
  b.setIntx(false);

  assert.equal(stillHigh, true);
  assert.equal(gsis.get(gsi)!.level, false);
  assert.deepEqual(gsis.get(gsi)!.history, [true, false], 'the line moved only twice');
});

test('intxRoutes() lists every slot and pin with the documented swizzle, for the _PRT', () => {
  const { pci } = machine();

  const routes = pci.intxRoutes();

  assert.equal(routes.length, 128);
  assert.deepEqual(routes[0], { slot: 0, pin: 0, gsi: PCI_INTX_GSI_BASE, address: 0x0000ffff });
  assert.deepEqual(routes.find((r) => r.slot === 3 && r.pin === 2), { slot: 3, pin: 2, gsi: 16 + ((3 + 2) % 8), address: 0x0003ffff });
  assert.ok(routes.every((r) => r.gsi >= 16 && r.gsi <= 23));
});

// --- vCPU routing ---

test('disjointRanges() merges overlapping and touching ranges for a vCPU routing table', () => {
  const merged = disjointRanges([
    { base: 0xc0001000, size: 0x1000 },
    { base: 0xe0000000, size: 0x10000000 },
    { base: 0xc0000000, size: 0x10000000 },
    { base: 0xd0000000, size: 0 },
    { base: 0xfee00000, size: 0x1000 },
  ]);

  assert.deepEqual(merged, [
    { base: 0xc0000000, size: 0x10000000 },
    { base: 0xe0000000, size: 0x10000000 },
    { base: 0xfee00000, size: 0x1000 },
  ]);
});

test('routedWindows() covers the BAR windows and leaves 0xD0000000 unbacked', () => {
  const { pci } = machine();

  const { mmio, pio } = pci.routedWindows();

  assert.deepEqual(mmio, [{ base: PCI_MMIO32_START, size: PCI_MMIO32_END - PCI_MMIO32_START }]);
  assert.ok(mmio.every((r) => !(0xd0000000 >= r.base && 0xd0000000 < r.base + r.size)));
  assert.deepEqual(pio, [{ base: 0xc000, size: 0x4000 }]);
});
