/**
 * virtio-pci driven end to end in-process: a fake driver finds the device through ECAM,
 * negotiates, sets up a queue, posts buffers and notifies through MMIO on the bus, with
 * virtio-rng behind the transport and a fake MSI router standing in for KVM.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MmioBus, PioBus } from '../../bus/io-bus.js';
import { GuestMemory } from '../../memory/guest-memory.js';
import { PCI_ECAM_BASE, PCI_ECAM_SIZE } from '../../memory/layout.js';
import { PciBus, type PciConfigAccess } from '../../pci/bus.js';
import { PciEcam } from '../../pci/ecam.js';
import { FakeIoEventRegistry, FakeMsiRouter } from '../../pci/fakes.js';
import type { IoEventRegistry } from '../../pci/ioevent.js';
import { pciIntxGsi } from '../../pci/intx.js';
import {
  PCI_BASE_ADDRESS_0,
  PCI_COMMAND,
  PCI_COMMAND_MASTER,
  PCI_COMMAND_MEMORY,
  PCI_INTERRUPT_PIN,
  PCI_REVISION_ID,
  PCI_STATUS,
  PCI_STATUS_INTERRUPT,
  PCI_SUBSYSTEM_ID,
  PCI_SUBSYSTEM_VENDOR_ID,
  PCI_VENDOR_ID,
} from '../../pci/registers.js';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import {
  VIRTIO_CONFIG_S_ACKNOWLEDGE,
  VIRTIO_CONFIG_S_DRIVER,
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  type VirtioActivation,
  type VirtioDevice,
} from './device.js';
import { FakeSplitQueue, FakeVirtioPciDriver } from './fake-driver.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE } from './queue.js';
import { VirtioRng } from './rng.js';
import {
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_BAR,
  VIRTIO_PCI_CAP_COMMON_CFG,
  VIRTIO_PCI_CAP_DEVICE_CFG,
  VIRTIO_PCI_CAP_ISR_CFG,
  VIRTIO_PCI_CAP_NOTIFY_CFG,
  VIRTIO_PCI_COMMON_CFGGENERATION,
  VIRTIO_PCI_COMMON_GF,
  VIRTIO_PCI_COMMON_GFSELECT,
  VIRTIO_PCI_COMMON_MSIX,
  VIRTIO_PCI_COMMON_NUMQ,
  VIRTIO_PCI_COMMON_Q_DESCLO,
  VIRTIO_PCI_COMMON_Q_ENABLE,
  VIRTIO_PCI_COMMON_Q_MSIX,
  VIRTIO_PCI_COMMON_Q_NOFF,
  VIRTIO_PCI_COMMON_Q_SELECT,
  VIRTIO_PCI_COMMON_Q_SIZE,
  VIRTIO_PCI_DEVICE_OFFSET,
  VIRTIO_PCI_ISR_CONFIG,
  VIRTIO_PCI_ISR_QUEUE,
  VIRTIO_PCI_NOTIFY_OFFSET,
  VirtioPciDevice,
} from './virtio-pci.js';

const SLOT = 3;
const QUEUE = 0x10000;
const BUF = 0x40000;
const MSG_CONFIG = { addressLo: 0xfee00000, data: 0x4041 };
const MSG_QUEUE = { addressLo: 0xfee01000, data: 0x4042 };
const FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX;

function ecamAccess(mmio: MmioBus): PciConfigAccess {
  const at = (bus: number, dev: number, fn: number, off: number) => PCI_ECAM_BASE + bus * 2 ** 20 + dev * 2 ** 15 + fn * 2 ** 12 + off;
  return {
    configRead: (bus, dev, fn, off, data) => void mmio.read(at(bus, dev, fn, off), data),
    configWrite: (bus, dev, fn, off, data) => void mmio.write(at(bus, dev, fn, off), data),
  };
}

function setup(options: { device?: VirtioDevice; ioEvents?: IoEventRegistry; memory?: GuestMemory } = {}) {
  const memory = options.memory ?? GuestMemory.anonymous(1024 * 1024);
  const mmio = new MmioBus();
  const gsis = new Map<number, FakeIrqLine>();
  const pci = new PciBus({
    mmio,
    pio: new PioBus(),
    gsiLine: (gsi) => {
      const l = new FakeIrqLine();
      gsis.set(gsi, l);
      return l;
    },
  });
  mmio.insert('pci-ecam', PCI_ECAM_BASE, PCI_ECAM_SIZE, new PciEcam(pci));
  const router = new FakeMsiRouter();
  const device = options.device ?? new VirtioRng();
  const ioEvents = options.ioEvents;
  const transport = new VirtioPciDevice({ device, memory, msiRouter: router, ...(ioEvents ? { ioEvents } : {}) });
  pci.attach(SLOT, transport, 'virtio-rng');
  const driver = new FakeVirtioPciDriver({ config: ecamAccess(mmio), mmio, slot: SLOT });
  driver.probe();
  const queue = new FakeSplitQueue(memory, FakeSplitQueue.layoutAt(QUEUE, 16));
  const intx = () => gsis.get(pciIntxGsi(SLOT, 1));
  return { memory, mmio, pci, router, device, transport, driver, queue, intx };
}

/** §3.1.1 with MSI-X: vectors programmed, config → vector 0, queue 0 → vector 1. */
function bringUpWithMsix(s: ReturnType<typeof setup>, features = FEATURES) {
  const { driver, queue } = s;
  assert.ok(driver.negotiate(features));
  driver.enableMsix();
  driver.programVector(0, MSG_CONFIG);
  driver.programVector(1, MSG_QUEUE);
  driver.setCommon(VIRTIO_PCI_COMMON_MSIX, 2, 0);
  driver.setupQueue(0, queue.layout, 1);
  driver.driverOk();
}

function bringUpWithIntx(s: ReturnType<typeof setup>) {
  assert.ok(s.driver.negotiate(FEATURES));
  s.driver.setupQueue(0, s.queue.layout);
  s.driver.driverOk();
}

function postBuffer(queue: FakeSplitQueue, head: number, len: number): void {
  queue.setDesc(head, { addr: BUF + head * 0x1000, len, flags: VIRTQ_DESC_F_WRITE });
  queue.publish(head);
}

// --- discovery ---

test('virtio-pci presents a modern virtio device: 1AF4:1044, revision 1, INTA#', () => {
  const { driver } = setup();

  assert.equal(driver.cfgRead(PCI_VENDOR_ID, 4), (0x1044 << 16) | 0x1af4);
  assert.equal(driver.cfgRead(PCI_REVISION_ID, 1), 1);
  assert.equal(driver.cfgRead(PCI_SUBSYSTEM_VENDOR_ID, 2), 0x1af4);
  assert.ok(driver.cfgRead(PCI_SUBSYSTEM_ID, 2) >= 0x40, '§4.1.2.1');
  assert.equal(driver.cfgRead(0x08, 4) >>> 8, 0xff0000, 'class: other');
  assert.equal(driver.cfgRead(PCI_INTERRUPT_PIN, 1), 1);
});

test('virtio-pci lists its structures in vendor capabilities, all in 64-bit BAR4', () => {
  const { driver } = setup();

  for (const type of [VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_ISR_CFG]) {
    assert.equal(driver.caps.get(type)?.bar, VIRTIO_PCI_BAR, `capability type ${type}`);
  }
  assert.equal(driver.caps.has(VIRTIO_PCI_CAP_DEVICE_CFG), false, 'virtio-rng has no device configuration');
  assert.equal(driver.caps.get(VIRTIO_PCI_CAP_NOTIFY_CFG)!.notifyMultiplier, 4);
  assert.equal(driver.cfgRead(PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 4) & 0x6, 0x4, '64-bit');
  assert.ok(driver.msixCap !== 0, 'an MSI-X capability');
});

// --- feature negotiation ---

test('virtio-pci offers VERSION_1 with the ring features, and 0 past bit 63', () => {
  const { driver } = setup();

  const features = driver.deviceFeatures();
  driver.setCommon(0x00, 4, 2);
  const past = driver.common(0x04, 4);

  assert.equal(features, FEATURES);
  assert.equal(past, 0);
});

test('virtio-pci refuses FEATURES_OK without VIRTIO_F_VERSION_1 (§2.2.2)', () => {
  const { driver } = setup();

  assert.equal(driver.negotiate(VIRTIO_F_EVENT_IDX), false);
  assert.equal(driver.status() & VIRTIO_CONFIG_S_FEATURES_OK, 0);
});

test('virtio-pci refuses FEATURES_OK with a feature it did not offer', () => {
  const { driver } = setup();

  assert.equal(driver.negotiate(VIRTIO_F_VERSION_1 | 1n), false);
  assert.equal(driver.negotiate(VIRTIO_F_VERSION_1 | (1n << 40n)), false);
});

test('virtio-pci refuses FEATURES_OK when the driver set bits past the feature words it reads', () => {
  const { driver } = setup();
  driver.reset();
  driver.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
  driver.writeDriverFeatures(VIRTIO_F_VERSION_1);
  driver.setCommon(VIRTIO_PCI_COMMON_GFSELECT, 4, 3);
  driver.setCommon(VIRTIO_PCI_COMMON_GF, 4, 1);

  driver.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK);

  assert.equal(driver.status() & VIRTIO_CONFIG_S_FEATURES_OK, 0);
});

test('virtio-pci accepts a subset of its features and fixes them at FEATURES_OK', () => {
  const { driver, transport } = setup();

  assert.equal(driver.negotiate(VIRTIO_F_VERSION_1), true);
  driver.writeDriverFeatures(FEATURES);

  assert.equal(transport.driverFeatures, VIRTIO_F_VERSION_1);
});

test('virtio-pci does not set DRIVER_OK before FEATURES_OK', () => {
  const { driver } = setup();
  driver.reset();

  driver.setStatus(VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_DRIVER_OK);

  assert.equal(driver.status(), VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER);
});

// --- queue configuration ---

test('virtio-pci presents one queue of 256 with notify offset 0, and size 0 past it', () => {
  const { driver } = setup();

  const numQueues = driver.common(VIRTIO_PCI_COMMON_NUMQ, 2);
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);
  const size = driver.common(VIRTIO_PCI_COMMON_Q_SIZE, 2);
  const noff = driver.common(VIRTIO_PCI_COMMON_Q_NOFF, 2);
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, 1);
  const missing = driver.common(VIRTIO_PCI_COMMON_Q_SIZE, 2);

  assert.deepEqual([numQueues, size, noff, missing], [1, 256, 0, 0]);
});

test('virtio-pci keeps the queue size unless the driver writes a smaller power of two', () => {
  const { driver } = setup();
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);

  driver.setCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2, 100);
  const afterOdd = driver.common(VIRTIO_PCI_COMMON_Q_SIZE, 2);
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2, 512);
  const afterLarge = driver.common(VIRTIO_PCI_COMMON_Q_SIZE, 2);
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SIZE, 2, 64);

  assert.deepEqual([afterOdd, afterLarge, driver.common(VIRTIO_PCI_COMMON_Q_SIZE, 2)], [256, 256, 64]);
});

test('virtio-pci answers an MSI-X vector outside its table with NO_VECTOR (§4.1.5.1.2.1)', () => {
  const { driver } = setup();

  driver.setCommon(VIRTIO_PCI_COMMON_MSIX, 2, 1);
  const valid = driver.common(VIRTIO_PCI_COMMON_MSIX, 2);
  driver.setCommon(VIRTIO_PCI_COMMON_MSIX, 2, 2);
  const invalid = driver.common(VIRTIO_PCI_COMMON_MSIX, 2);

  assert.equal(valid, 1);
  assert.equal(invalid, VIRTIO_MSI_NO_VECTOR);
});

test('writing 0 to device_status resets every queue field to its default (§4.1.4.3.1)', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { driver } = s;

  driver.reset();
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);

  assert.equal(driver.status(), 0);
  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_SIZE, 2), 256);
  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 0);
  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_DESCLO, 4), 0);
  assert.equal(driver.common(VIRTIO_PCI_COMMON_MSIX, 2), VIRTIO_MSI_NO_VECTOR);
  assert.equal(s.transport.driverFeatures, 0n);
});

test('virtio-pci ignores queue address and enable writes once the queue is enabled', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { driver } = s;
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 2, 0);

  driver.setCommon(VIRTIO_PCI_COMMON_Q_DESCLO, 4, 0x8000);
  driver.setCommon(VIRTIO_PCI_COMMON_Q_ENABLE, 2, 0);

  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_DESCLO, 4), QUEUE);
  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_ENABLE, 2), 1);
});

test('virtio-pci drops common configuration writes of the wrong width', () => {
  const { driver } = setup();

  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 1, 1);
  driver.setCommon(VIRTIO_PCI_COMMON_Q_SELECT, 4, 1);

  assert.equal(driver.common(VIRTIO_PCI_COMMON_Q_SELECT, 2), 0);
});

// --- the data path ---

test('virtio-pci end to end with MSI-X: notify, random bytes in the buffer, interrupt on the queue vector', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { driver, queue, memory, router, transport } = s;

  postBuffer(queue, 0, 4096);
  driver.notify(0);

  assert.equal(queue.usedIdx(), 1);
  assert.deepEqual(queue.used(0), { id: 0, len: 4096 });
  const bytes = new Uint8Array(4096);
  memory.read(BUF, bytes);
  assert.ok(new Set(bytes).size > 200, 'the buffer holds random bytes');
  assert.deepEqual(router.delivered, [{ gsi: transport.msix.gsi(1), msi: { ...MSG_QUEUE, addressHi: 0 } }]);
});

test('virtio-pci end to end with INTx#: ISR bit 0, the GSI raised, and lowered by the ISR read', () => {
  const s = setup();
  bringUpWithIntx(s);
  const { driver, queue, router, intx } = s;

  postBuffer(queue, 0, 32);
  driver.notify(0);
  const raised = intx()?.level;
  const status = driver.cfgRead(PCI_STATUS, 2);
  const isr = driver.readIsr();

  assert.equal(queue.used(0).len, 32);
  assert.equal(raised, true);
  assert.ok((status & PCI_STATUS_INTERRUPT) !== 0, '§4.1.4.5.1: Status.INTERRUPT mirrors ISR');
  assert.equal(isr, VIRTIO_PCI_ISR_QUEUE);
  assert.equal(intx()!.level, false);
  assert.equal(driver.readIsr(), 0, 'ISR is read-to-clear');
  assert.equal(router.delivered.length, 0);
});

test('virtio-pci with MSI-X on never raises INTx#', () => {
  const s = setup();
  bringUpWithMsix(s);

  postBuffer(s.queue, 0, 8);
  s.driver.notify(0);

  assert.notEqual(s.intx()?.level, true);
});

test('virtio-pci holds a queue interrupt pending while its vector is masked', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { driver, queue, router } = s;
  driver.maskVector(1, true);

  postBuffer(queue, 0, 8);
  driver.notify(0);
  const pba = driver.msixPba();
  driver.maskVector(1, false);

  assert.equal(pba, 0b10);
  assert.equal(router.delivered.length, 1);
});

test('virtio-pci ignores notifications before DRIVER_OK (§2.1.2)', () => {
  const s = setup();
  assert.ok(s.driver.negotiate(FEATURES));
  s.driver.setupQueue(0, s.queue.layout);
  postBuffer(s.queue, 0, 8);

  s.driver.notify(0);

  assert.equal(s.queue.usedIdx(), 0);
  assert.equal(s.transport.transportMetrics.notifiesIgnored, 1);
});

test('virtio-pci sends no interrupt for a queue mapped to NO_VECTOR', () => {
  const s = setup();
  const { driver, queue, router } = s;
  assert.ok(driver.negotiate(FEATURES));
  driver.enableMsix();
  driver.programVector(0, MSG_CONFIG);
  driver.setupQueue(0, queue.layout, VIRTIO_MSI_NO_VECTOR);
  driver.driverOk();

  postBuffer(queue, 0, 8);
  driver.notify(0);

  assert.equal(queue.usedIdx(), 1);
  assert.equal(router.delivered.length, 0);
});

// --- ioeventfds ---

test('virtio-pci registers an ioeventfd at each queue\'s notify address, and it reaches the device', () => {
  const ioEvents = new FakeIoEventRegistry();
  const s = setup({ ioEvents });
  bringUpWithMsix(s);
  const [addr] = s.transport.notifyAddresses();

  postBuffer(s.queue, 0, 16);
  ioEvents.at(addr!.gpa)!.fire();

  assert.deepEqual(addr, { queue: 0, gpa: s.driver.notifyAddress(0), len: 2 });
  assert.equal(ioEvents.live.length, 1);
  assert.equal(s.queue.usedIdx(), 1);
});

test('virtio-pci moves its ioeventfds with BAR4 and drops them when memory decoding stops', () => {
  const ioEvents = new FakeIoEventRegistry();
  const s = setup({ ioEvents });
  const { driver, transport } = s;
  const barReg = PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR;

  driver.cfgWrite(barReg, 4, 0xc8000004);
  const moved = ioEvents.live.map((e) => e.addr);
  driver.cfgWrite(PCI_COMMAND, 2, PCI_COMMAND_MASTER);
  const off = ioEvents.live.length;
  driver.cfgWrite(PCI_COMMAND, 2, PCI_COMMAND_MASTER | PCI_COMMAND_MEMORY);

  assert.deepEqual(moved, [0xc8000000 + VIRTIO_PCI_NOTIFY_OFFSET]);
  assert.equal(off, 0);
  assert.deepEqual(ioEvents.live.map((e) => e.addr), [0xc8000000 + VIRTIO_PCI_NOTIFY_OFFSET]);
  assert.deepEqual(transport.notifyAddresses().map((n) => n.gpa), [0xc8000000 + VIRTIO_PCI_NOTIFY_OFFSET]);
  transport.close();
  assert.equal(ioEvents.live.length, 0);
});

test('virtio-pci falls back to notify exits when KVM refuses an ioeventfd', () => {
  const ioEvents: IoEventRegistry = {
    register: () => {
      throw new Error('ENOSPC');
    },
  };
  const s = setup({ ioEvents });
  bringUpWithMsix(s);

  postBuffer(s.queue, 0, 8);
  s.driver.notify(0);

  assert.equal(s.transport.transportMetrics.ioeventfdFailures, 1);
  assert.equal(s.queue.usedIdx(), 1);
});

// --- a broken driver ---

test('a broken chain sets DEVICE_NEEDS_RESET and notifies a configuration change (§2.1.2)', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { driver, queue, router, transport } = s;

  queue.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 0 });
  queue.publish(0);
  driver.notify(0);

  assert.ok((driver.status() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0);
  assert.equal(transport.lastQueueError?.error, 'CHAIN_LOOP');
  assert.deepEqual(router.delivered.map((d) => d.msi?.data), [MSG_CONFIG.data], 'on the configuration vector');
  assert.ok((transport.isr & VIRTIO_PCI_ISR_CONFIG) !== 0, '§4.1.4.5.1: the config bit is set too');
});

test('a device marked DEVICE_NEEDS_RESET ignores notifications until reset, then works again', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { driver, queue } = s;
  queue.setDesc(0, { addr: 0xfff_0000_0000, len: 8, flags: VIRTQ_DESC_F_WRITE });
  queue.publish(0);
  driver.notify(0);

  driver.notify(0);
  const ignored = s.transport.transportMetrics.notifiesIgnored;
  const fresh = new FakeSplitQueue(s.memory, FakeSplitQueue.layoutAt(QUEUE, 16));
  s.queue = fresh;
  bringUpWithMsix(s);
  postBuffer(fresh, 3, 8);
  driver.notify(0);

  assert.equal(ignored, 1);
  assert.equal(driver.status() & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
  assert.deepEqual(fresh.used(0), { id: 3, len: 8 });
});

test('rings outside guest RAM at DRIVER_OK set DEVICE_NEEDS_RESET', () => {
  const s = setup();
  const { driver } = s;
  assert.ok(driver.negotiate(FEATURES));
  driver.setupQueue(0, { size: 16, desc: 0x7000_0000, avail: QUEUE, used: QUEUE + 0x1000 });
  driver.driverOk();

  assert.ok((driver.status() & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0);
  assert.ok((driver.status() & VIRTIO_CONFIG_S_DRIVER_OK) !== 0);
  assert.equal(s.transport.lastQueueError?.error, 'RING_OUT_OF_RANGE');
});

test('virtio-pci never throws whatever the guest writes to its BARs and configuration space', () => {
  const s = setup();
  bringUpWithMsix(s);
  const { transport, driver } = s;
  const bar4 = driver.barBase(VIRTIO_PCI_BAR);
  const bar1 = driver.barBase(1);
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0);

  assert.doesNotThrow(() => {
    for (let i = 0; i < 20000; i++) {
      const len = [1, 2, 4, 8, 3][next() % 5]!;
      const data = new Uint8Array(len).map(() => next() & 0xff);
      const where = next() % 3;
      if (where === 0) s.mmio.write(bar4 + (next() % 0x4000), data);
      else if (where === 1) s.mmio.write(bar1 + (next() % 0x1000), data);
      else if (len <= 4) transport.configWrite((next() % 256) & ~(len - 1) & 0xff, data);
      s.mmio.read(bar4 + (next() % 0x4000), new Uint8Array(len));
    }
  });
});

// --- the PCI configuration access capability ---

test('the PCI configuration access window reads and writes BAR4 (§4.1.4.8)', () => {
  const s = setup();
  const { driver, transport } = s;
  // find the VIRTIO_PCI_CAP_PCI_CFG capability
  let cap = driver.cfgRead(0x34, 1);
  while (cap !== 0 && !(driver.cfgRead(cap, 1) === 0x09 && driver.cfgRead(cap + 3, 1) === 5)) cap = driver.cfgRead(cap + 1, 1);
  assert.notEqual(cap, 0);

  driver.cfgWrite(cap + 4, 1, VIRTIO_PCI_BAR);
  driver.cfgWrite(cap + 8, 4, 0x14); // device_status
  driver.cfgWrite(cap + 12, 4, 1);
  driver.cfgWrite(cap + 16, 1, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  const viaWindow = driver.cfgRead(cap + 16, 1);

  assert.equal(transport.status, VIRTIO_CONFIG_S_ACKNOWLEDGE);
  assert.equal(viaWindow, VIRTIO_CONFIG_S_ACKNOWLEDGE);
});

// --- device configuration ---

/** A device with 8 bytes of configuration that can change under the driver. */
class ConfigDevice implements VirtioDevice {
  readonly deviceType = 42;
  readonly deviceFeatures = VIRTIO_F_VERSION_1;
  readonly queueMaxSizes = [8];
  readonly configSize = 8;
  readonly bytes = new Uint8Array(8);
  activation?: VirtioActivation;
  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.bytes.subarray(offset, offset + data.length));
  }
  writeConfig(offset: number, data: Uint8Array): void {
    this.bytes.set(data, offset);
  }
  activate(a: VirtioActivation): void {
    this.activation = a;
  }
  queueNotify(): void {}
  reset(): void {
    this.activation = undefined;
  }
  save(): unknown {
    return {};
  }
  change(value: number): void {
    this.bytes[0] = value;
    this.activation?.interrupt.notifyConfig();
  }
}

test('device configuration is in BAR4 behind a DEVICE_CFG capability', () => {
  const device = new ConfigDevice();
  const s = setup({ device });
  const base = s.driver.barBase(VIRTIO_PCI_BAR) + VIRTIO_PCI_DEVICE_OFFSET;

  s.driver.mmioWrite(base + 4, 4, 0xdeadbeef);

  assert.equal(s.driver.caps.get(VIRTIO_PCI_CAP_DEVICE_CFG)?.length, 8);
  assert.equal(s.driver.mmioRead(base + 4, 4), 0xdeadbeef);
  assert.equal(s.driver.mmioRead(base + 8, 4), 0, 'past the configuration');
});

test('a configuration change interrupts and moves config_generation by the next configuration read', () => {
  const device = new ConfigDevice();
  const s = setup({ device });
  const { driver, router } = s;
  assert.ok(driver.negotiate(VIRTIO_F_VERSION_1));
  driver.enableMsix();
  driver.programVector(0, MSG_CONFIG);
  driver.setCommon(VIRTIO_PCI_COMMON_MSIX, 2, 0);
  driver.setupQueue(0, FakeSplitQueue.layoutAt(QUEUE, 8));
  driver.driverOk();
  const base = driver.barBase(VIRTIO_PCI_BAR) + VIRTIO_PCI_DEVICE_OFFSET;
  const before = driver.common(VIRTIO_PCI_COMMON_CFGGENERATION, 1);

  device.change(0x77);
  const value = driver.mmioRead(base, 1);
  const after = driver.common(VIRTIO_PCI_COMMON_CFGGENERATION, 1);

  assert.equal(value, 0x77);
  assert.notEqual(after, before);
  assert.deepEqual(router.delivered.map((d) => d.msi?.data), [MSG_CONFIG.data]);
});

// --- snapshots ---

test('a transport restored from its saved state carries on with the same queue', () => {
  const s = setup();
  bringUpWithMsix(s);
  postBuffer(s.queue, 0, 8);
  s.driver.notify(0);
  const saved = JSON.parse(JSON.stringify(s.transport.save()));

  // A new machine over the same guest memory (and the same queue in it).
  const pci = new PciBus({ mmio: new MmioBus(), pio: new PioBus(), gsiLine: () => new FakeIrqLine() });
  const router = new FakeMsiRouter();
  const restored = new VirtioPciDevice({ device: new VirtioRng(), memory: s.memory, msiRouter: router, state: saved });
  pci.attach(SLOT, restored, 'restored');
  const another = new VirtioPciDevice({ device: new VirtioRng(), memory: s.memory, msiRouter: new FakeMsiRouter() });
  pci.attach(1, another, 'another');
  postBuffer(s.queue, 1, 24);
  restored.queueNotify(0);

  assert.equal(restored.barAddress(VIRTIO_PCI_BAR), s.transport.barAddress(VIRTIO_PCI_BAR), 'BARs stay where the guest had them');
  assert.notEqual(another.barAddress(VIRTIO_PCI_BAR), undefined, 'a new device is placed past them');
  assert.equal(restored.status & VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_DRIVER_OK);
  assert.equal(s.queue.usedIdx(), 2);
  assert.deepEqual(s.queue.used(1), { id: 1, len: 24 });
  assert.equal(router.delivered.length, 1, 'MSI-X state came back too');
});
