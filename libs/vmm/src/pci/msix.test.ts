import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MmioBus, PioBus } from '../bus/io-bus.js';
import { FakeIrqLine } from '../testing/fake-irq.js';
import { PciBus } from './bus.js';
import { FakeMsiRouter } from './fakes.js';
import { PciFunction } from './function.js';
import { MsixCapability } from './msix.js';
import {
  PCI_CAP_ID_MSIX,
  PCI_CAPABILITY_LIST,
  PCI_MSIX_ENTRY_CTRL_MASKBIT,
  PCI_MSIX_ENTRY_DATA,
  PCI_MSIX_ENTRY_LOWER_ADDR,
  PCI_MSIX_ENTRY_SIZE,
  PCI_MSIX_ENTRY_VECTOR_CTRL,
  PCI_MSIX_FLAGS,
  PCI_MSIX_FLAGS_ENABLE,
  PCI_MSIX_FLAGS_MASKALL,
  PCI_MSIX_PBA,
  PCI_MSIX_TABLE,
} from './registers.js';

const VECTORS = 4;
const PBA = 0x800;
const MSG = { addressLo: 0xfee00000, addressHi: 0, data: 0x4031 };

class MsixFunction extends PciFunction {
  readonly msix: MsixCapability;
  constructor(router: FakeMsiRouter) {
    const msix = new MsixCapability({ vectors: VECTORS, router, tableOffset: 0, pbaOffset: PBA });
    super({ vendorId: 0x1234, deviceId: 1, classCode: 0xff0000, bars: [undefined, { kind: 'memory32', size: 0x1000, region: msix }] });
    this.msix = msix;
    msix.install(this, 1, 1);
  }
}

function setup() {
  const router = new FakeMsiRouter();
  const mmio = new MmioBus();
  const pci = new PciBus({ mmio, pio: new PioBus(), gsiLine: () => new FakeIrqLine() });
  const fn = new MsixFunction(router);
  pci.attach(1, fn, 'msix');
  const bar = fn.barAddress(1)!;
  const cap = fn.msix.capabilityOffset;
  const cfg16 = (off: number, v?: number): number => {
    const d = new Uint8Array(2);
    if (v !== undefined) {
      d[0] = v & 0xff;
      d[1] = v >>> 8;
      fn.configWrite(off, d);
    }
    fn.configRead(off, d);
    return d[0]! | (d[1]! << 8);
  };
  const write32 = (addr: number, v: number): void => {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, v >>> 0, true);
    mmio.write(addr, d);
  };
  const read32 = (addr: number): number => {
    const d = new Uint8Array(4);
    mmio.read(addr, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const entry = (v: number) => bar + v * PCI_MSIX_ENTRY_SIZE;
  const program = (v: number, msg: typeof MSG, masked: boolean) => {
    write32(entry(v) + PCI_MSIX_ENTRY_LOWER_ADDR, msg.addressLo);
    write32(entry(v) + 4, msg.addressHi);
    write32(entry(v) + PCI_MSIX_ENTRY_DATA, msg.data);
    write32(entry(v) + PCI_MSIX_ENTRY_VECTOR_CTRL, masked ? PCI_MSIX_ENTRY_CTRL_MASKBIT : 0);
  };
  const enable = (bits = PCI_MSIX_FLAGS_ENABLE) => cfg16(cap + PCI_MSIX_FLAGS, bits);
  return { router, fn, bar, cap, cfg16, write32, read32, entry, program, enable };
}

test('the MSI-X capability gives the table size and where the table and PBA are', () => {
  const { fn, cap, cfg16 } = setup();

  const control = cfg16(cap + PCI_MSIX_FLAGS);

  assert.equal(fn.config.getU8(PCI_CAPABILITY_LIST), cap);
  assert.equal(fn.config.getU8(cap), PCI_CAP_ID_MSIX);
  assert.equal(control & 0x7ff, VECTORS - 1, 'Table Size is N-1');
  assert.equal(fn.config.getU32(cap + PCI_MSIX_TABLE), 0x0 | 1, 'table at offset 0 of BAR1');
  assert.equal(fn.config.getU32(cap + PCI_MSIX_PBA), PBA | 1, 'PBA at 0x800 of BAR1');
});

test('only MSI-X Enable and Function Mask are writable in Message Control', () => {
  const { cap, cfg16 } = setup();

  const control = cfg16(cap + PCI_MSIX_FLAGS, 0xffff);

  assert.equal(control, PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL | (VECTORS - 1));
});

test('vectors start masked, with a zero message (§6.8.2.9)', () => {
  const { bar, read32, entry } = setup();

  for (let v = 0; v < VECTORS; v++) {
    assert.equal(read32(entry(v) + PCI_MSIX_ENTRY_VECTOR_CTRL), PCI_MSIX_ENTRY_CTRL_MASKBIT);
    assert.equal(read32(entry(v) + PCI_MSIX_ENTRY_DATA), 0);
  }
  assert.equal(read32(bar + PBA), 0);
});

test('an unmasked vector sends its message through its GSI route', () => {
  const { router, fn, program, enable } = setup();
  enable();
  program(2, MSG, false);

  fn.msix.notify(2);
  fn.msix.notify(2);

  assert.equal(router.delivered.length, 2);
  assert.deepEqual(router.delivered[0], { gsi: fn.msix.gsi(2), msi: MSG });
  assert.equal(router.commits, 1, 'the route is installed once, not per message');
});

test('a masked vector sets its pending bit instead of firing, and unmasking delivers it', () => {
  const { router, fn, bar, read32, write32, entry, program, enable } = setup();
  enable();
  program(1, MSG, true);

  fn.msix.notify(1);
  const pba = read32(bar + PBA);
  const before = router.delivered.length;
  write32(entry(1) + PCI_MSIX_ENTRY_VECTOR_CTRL, 0);

  assert.equal(pba, 0b10);
  assert.equal(before, 0);
  assert.deepEqual(router.delivered, [{ gsi: fn.msix.gsi(1), msi: MSG }]);
  assert.equal(read32(bar + PBA), 0, 'the pending bit clears when the message goes');
});

test('Function Mask holds every vector pending and clearing it delivers them', () => {
  const { router, fn, program, enable, bar, read32 } = setup();
  program(0, MSG, false);
  program(3, { ...MSG, data: 0x4032 }, false);
  enable(PCI_MSIX_FLAGS_ENABLE | PCI_MSIX_FLAGS_MASKALL);

  fn.msix.notify(0);
  fn.msix.notify(3);
  const pending = read32(bar + PBA);
  enable(PCI_MSIX_FLAGS_ENABLE);

  assert.equal(pending, 0b1001);
  assert.deepEqual(
    router.delivered.map((d) => d.msi?.data),
    [0x4031, 0x4032],
  );
});

test('a new message takes effect at the next interrupt', () => {
  const { router, fn, program, enable } = setup();
  enable();
  program(0, MSG, false);
  fn.msix.notify(0);

  program(0, { ...MSG, data: 0x4099 }, false);
  fn.msix.notify(0);

  assert.equal(router.delivered[1]!.msi!.data, 0x4099);
});

test('with MSI-X disabled a raised vector is counted and not sent', () => {
  const { router, fn, program } = setup();
  program(0, MSG, false);

  fn.msix.notify(0);

  assert.equal(router.delivered.length, 0);
  assert.equal(fn.msix.metrics.raisedWhileDisabled, 1);
});

test('the PBA is read-only and reserved table bits read 0', () => {
  const { bar, read32, write32, entry } = setup();

  write32(bar + PBA, 0xffffffff);
  write32(entry(0) + PCI_MSIX_ENTRY_VECTOR_CTRL, 0xfffffffe);
  write32(entry(0) + PCI_MSIX_ENTRY_LOWER_ADDR, 0xfee00003);

  assert.equal(read32(bar + PBA), 0);
  assert.equal(read32(entry(0) + PCI_MSIX_ENTRY_VECTOR_CTRL), 0);
  assert.equal(read32(entry(0) + PCI_MSIX_ENTRY_LOWER_ADDR), 0xfee00000, 'the address is dword-aligned');
});

test('accesses past the table and PBA read 0 and are ignored', () => {
  const { bar, read32, write32 } = setup();

  write32(bar + 0x400, 0x1234);

  assert.equal(read32(bar + 0x400), 0);
  assert.equal(read32(bar + 0xffc), 0);
});

test('a saved table comes back with its messages and pending bits', () => {
  const { fn, program, enable } = setup();
  enable();
  program(2, MSG, true);
  fn.msix.notify(2);
  const saved = fn.msix.save();

  const router = new FakeMsiRouter();
  const restored = new MsixCapability({ vectors: VECTORS, router, tableOffset: 0, pbaOffset: PBA, state: saved });

  assert.equal(restored.pending(2), true);
  assert.equal(restored.vectorMasked(2), true);
  const d = new Uint8Array(4);
  restored.read(2 * 16 + PCI_MSIX_ENTRY_DATA, d);
  assert.equal(new DataView(d.buffer).getUint32(0, true), MSG.data);
});

test('an MSI-X table refuses a bad vector count or overlapping table and PBA', () => {
  const router = new FakeMsiRouter();
  assert.throws(() => new MsixCapability({ vectors: 0, router, tableOffset: 0, pbaOffset: PBA }), { code: 'INVALID_CONFIG' });
  assert.throws(() => new MsixCapability({ vectors: 2049, router, tableOffset: 0, pbaOffset: 0x10000 }), { code: 'INVALID_CONFIG' });
  assert.throws(() => new MsixCapability({ vectors: 4, router, tableOffset: 0, pbaOffset: 0x20 }), { code: 'INVALID_CONFIG' });
});
