import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { MmioBus, PioBus } from '../../bus/io-bus.js';
import { VmmError } from '../../errors.js';
import { GuestMemory } from '../../memory/guest-memory.js';
import { PCI_ECAM_BASE, PCI_ECAM_SIZE } from '../../memory/layout.js';
import { PciBus } from '../../pci/bus.js';
import { PciEcam } from '../../pci/ecam.js';
import { FakeMsiRouter } from '../../pci/fakes.js';
import { FakeIrqLine } from '../../testing/fake-irq.js';
import { VIRTIO_F_EVENT_IDX, VIRTIO_F_VERSION_1, VIRTIO_ID_NET, type VirtioInterrupt } from './device.js';
import { FakeSplitQueue, FakeVirtioPciDriver } from './fake-driver.js';
import { NO_OFFLOADS } from './net/backend.js';
import { ALL_OFFLOADS, FakeNetBackend } from './net/fake-backend.js';
import {
  VIRTIO_NET_F_CSUM,
  VIRTIO_NET_F_GUEST_CSUM,
  VIRTIO_NET_F_GUEST_ECN,
  VIRTIO_NET_F_GUEST_TSO4,
  VIRTIO_NET_F_GUEST_TSO6,
  VIRTIO_NET_F_GUEST_UFO,
  VIRTIO_NET_F_HOST_ECN,
  VIRTIO_NET_F_HOST_TSO4,
  VIRTIO_NET_F_HOST_TSO6,
  VIRTIO_NET_F_HOST_UFO,
  VIRTIO_NET_F_MAC,
  VIRTIO_NET_F_MRG_RXBUF,
  VIRTIO_NET_F_STATUS,
  VIRTIO_NET_HDR_F_DATA_VALID,
  VIRTIO_NET_HDR_F_NEEDS_CSUM,
  VIRTIO_NET_HDR_GSO_ECN,
  VIRTIO_NET_HDR_GSO_NONE,
  VIRTIO_NET_HDR_GSO_TCPV4,
  VIRTIO_NET_HDR_GSO_TCPV6,
  VIRTIO_NET_HDR_SIZE,
  VIRTIO_NET_S_LINK_UP,
  VirtioNet,
  appendViews,
  formatMac,
  guestOffloadsOf,
  netFeaturesConsistent,
  parseMac,
  type VirtioNetOptions,
} from './net.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_USED_F_NO_NOTIFY, Virtqueue, type QueueError, type QueueOptions } from './queue.js';
import { VIRTIO_PCI_CAP_DEVICE_CFG, VirtioPciDevice } from './virtio-pci.js';

const RX_RING = 0x1000;
const TX_RING = 0x8000;
const RXBUF = 0x100000;
const TXBUF = 0x300000;
const MAC = '52:54:00:12:34:56';

class RecordingInterrupt implements VirtioInterrupt {
  readonly queues: number[] = [];
  readonly errors: { index: number; error: QueueError }[] = [];
  notifyQueue(i: number): void {
    this.queues.push(i);
  }
  notifyConfig(): void {}
  queueError(index: number, error: QueueError): void {
    this.errors.push({ index, error });
  }
}

interface Setup {
  features?: bigint;
  rxSize?: number;
  txSize?: number;
  memory?: GuestMemory;
  net?: Partial<VirtioNetOptions>;
  backend?: FakeNetBackend;
  queue?: Partial<QueueOptions>;
}

/** A device with its two queues and a fake backend; `up()` is DRIVER_OK. */
function setup(o: Setup = {}) {
  const memory = o.memory ?? GuestMemory.anonymous(8 * 1024 * 1024);
  const rxLayout = FakeSplitQueue.layoutAt(RX_RING, o.rxSize ?? 16);
  const txLayout = FakeSplitQueue.layoutAt(TX_RING, o.txSize ?? 16);
  const rxDriver = new FakeSplitQueue(memory, rxLayout);
  const txDriver = new FakeSplitQueue(memory, txLayout);
  const qopts: QueueOptions = { eventIdx: false, indirect: true, ...o.queue };
  const rxQueue = Virtqueue.create(memory, rxLayout, qopts) as Virtqueue;
  const txQueue = Virtqueue.create(memory, txLayout, qopts) as Virtqueue;
  const backend = o.backend ?? new FakeNetBackend();
  const interrupt = new RecordingInterrupt();
  const net = new VirtioNet({ backend, mac: MAC, ...o.net });
  const features = o.features ?? VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS;
  const up = () => net.activate({ memory, queues: [rxQueue, txQueue], interrupt, features });
  return { memory, rxDriver, txDriver, rxQueue, txQueue, backend, interrupt, net, up };
}

interface Hdr {
  flags?: number;
  gsoType?: number;
  hdrLen?: number;
  gsoSize?: number;
  csumStart?: number;
  csumOffset?: number;
  numBuffers?: number;
}

function header(h: Hdr = {}): Uint8Array {
  const b = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  const v = new DataView(b.buffer);
  v.setUint8(0, h.flags ?? 0);
  v.setUint8(1, h.gsoType ?? 0);
  v.setUint16(2, h.hdrLen ?? 0, true);
  v.setUint16(4, h.gsoSize ?? 0, true);
  v.setUint16(6, h.csumStart ?? 0, true);
  v.setUint16(8, h.csumOffset ?? 0, true);
  v.setUint16(10, h.numBuffers ?? 0, true);
  return b;
}

function readHeader(b: Uint8Array): Required<Hdr> {
  const v = new DataView(b.buffer, b.byteOffset, VIRTIO_NET_HDR_SIZE);
  return {
    flags: v.getUint8(0),
    gsoType: v.getUint8(1),
    hdrLen: v.getUint16(2, true),
    gsoSize: v.getUint16(4, true),
    csumStart: v.getUint16(6, true),
    csumOffset: v.getUint16(8, true),
    numBuffers: v.getUint16(10, true),
  };
}

/** An Ethernet frame of `len` bytes with a recognisable pattern (seeded by `seed`). */
function frame(len: number, seed = 1): Uint8Array {
  const f = new Uint8Array(len);
  for (let i = 0; i < len; i++) f[i] = (i * 7 + seed) & 0xff;
  f.set([0x52, 0x54, 0x00, 0x12, 0x34, 0x56], 0);
  return f;
}

function packet(h: Hdr, f: Uint8Array): Uint8Array {
  const p = new Uint8Array(VIRTIO_NET_HDR_SIZE + f.length);
  p.set(header(h));
  p.set(f, VIRTIO_NET_HDR_SIZE);
  return p;
}

/** Puts a transmit packet in guest RAM as a chain [header, frame] at descriptor `d`. */
function postTx(s: ReturnType<typeof setup>, d: number, h: Hdr, f: Uint8Array, at = TXBUF + d * 0x10000): void {
  s.memory.write(at, header(h));
  s.memory.write(at + 0x100, f);
  s.txDriver.setDesc(2 * d, { addr: at, len: VIRTIO_NET_HDR_SIZE, flags: VIRTQ_DESC_F_NEXT, next: 2 * d + 1 });
  s.txDriver.setDesc(2 * d + 1, { addr: at + 0x100, len: f.length });
  s.txDriver.publish(2 * d);
}

/** Posts `count` device-writable receive buffers of `len` bytes, one per descriptor from `first`. */
function postRx(s: ReturnType<typeof setup>, count: number, len: number, first = 0): void {
  for (let i = first; i < first + count; i++) {
    s.rxDriver.setDesc(i, { addr: RXBUF + i * 0x11000, len, flags: VIRTQ_DESC_F_WRITE });
    s.rxDriver.publish(i);
  }
}

function rxBuffer(s: ReturnType<typeof setup>, head: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  s.memory.read(RXBUF + head * 0x11000, b);
  return b;
}

// --- identity and configuration ---

test('VirtioNet is device type 1 with receiveq1 and transmitq1 and offers MAC, STATUS, MRG_RXBUF and VERSION_1', () => {
  const { net } = setup();

  assert.equal(net.deviceType, VIRTIO_ID_NET);
  assert.deepEqual(net.queueMaxSizes, [256, 256]);
  for (const f of [VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS, VIRTIO_NET_F_MRG_RXBUF, VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX]) {
    assert.ok((net.deviceFeatures & f) !== 0n, `feature 0x${f.toString(16)}`);
  }
});

test('VirtioNet presents its MAC and link up in configuration space (§5.1.4), and ignores writes', () => {
  const { net } = setup();
  const cfg = new Uint8Array(8);

  net.readConfig(0, cfg);
  net.writeConfig(0, new Uint8Array(6));
  const again = new Uint8Array(6);
  net.readConfig(0, again);

  assert.deepEqual([...cfg.subarray(0, 6)], [0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
  assert.equal(cfg[6]! | (cfg[7]! << 8), VIRTIO_NET_S_LINK_UP);
  assert.deepEqual([...again], [...cfg.subarray(0, 6)], '§5.1.4.2: the driver MUST NOT write it; the device keeps its MAC');
  assert.equal(net.metrics.missedWrites, 1);
});

test('VirtioNet picks a random 52:54:00 MAC when given none, and keeps it in its state', () => {
  const a = new VirtioNet({ backend: new FakeNetBackend() });
  const b = new VirtioNet({ backend: new FakeNetBackend() });

  const restored = new VirtioNet({ backend: new FakeNetBackend(), state: a.save() });

  assert.match(formatMac(a.mac), /^52:54:00:[0-9a-f]{2}:[0-9a-f]{2}:[0-9a-f]{2}$/);
  assert.notEqual(formatMac(a.mac), formatMac(b.mac));
  assert.deepEqual(restored.mac, a.mac);
  assert.deepEqual(JSON.parse(JSON.stringify(a.save())), a.save(), 'the state is JSON');
});

test('parseMac() takes colons or dashes and refuses malformed, multicast and all-zero addresses', () => {
  assert.deepEqual([...parseMac('52:54:00:AB:cd:01')], [0x52, 0x54, 0x00, 0xab, 0xcd, 0x01]);
  assert.deepEqual([...parseMac('02-00-00-00-00-01')], [2, 0, 0, 0, 0, 1]);
  for (const bad of ['52:54:00:12:34', '52:54:00:12:34:56:78', 'zz:54:00:12:34:56', '01:00:5e:00:00:01', '00:00:00:00:00:00', '']) {
    assert.throws(() => parseMac(bad), (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG', bad);
  }
});

// --- features and offloads ---

test('VirtioNet offers every offload its backend supports, both ways', () => {
  const { net } = setup();

  for (const f of [
    VIRTIO_NET_F_CSUM, VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_UFO,
    VIRTIO_NET_F_GUEST_CSUM, VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_UFO,
  ]) {
    assert.ok((net.deviceFeatures & f) !== 0n, `feature 0x${f.toString(16)}`);
  }
  assert.ok(netFeaturesConsistent(net.deviceFeatures));
});

test('VirtioNet offers no segmentation offload without the checksum offload it requires (§5.1.3.1)', () => {
  const backend = new FakeNetBackend({ guestOffloads: { ...ALL_OFFLOADS, csum: false }, hostOffloads: { ...NO_OFFLOADS, tso4: true } });

  const net = new VirtioNet({ backend });
  const plain = new VirtioNet({ backend: new FakeNetBackend(), offloads: false, mergeableRxBuffers: false });

  const offloadBits = 0x7fffn & ~(VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF);
  assert.equal(net.deviceFeatures & offloadBits, 0n);
  assert.equal(plain.deviceFeatures & (offloadBits | VIRTIO_NET_F_MRG_RXBUF), 0n);
});

test('VirtioNet refuses features without the ones they require (§5.1.3.1), so FEATURES_OK fails', () => {
  const { net } = setup();
  const base = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC;

  assert.equal(net.acceptFeatures(base | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_ECN), true);
  assert.equal(net.acceptFeatures(base | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_HOST_UFO), true);
  for (const bad of [
    VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_UFO,
    VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_ECN,
    VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_HOST_UFO,
    VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_ECN,
  ]) {
    assert.equal(net.acceptFeatures(base | bad), false, `0x${bad.toString(16)}`);
  }
});

test('activation mirrors the GUEST_* offloads the driver accepted to the backend (TUNSETOFFLOAD); reset clears them', () => {
  const features = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO6 | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4;
  const { net, backend, up } = setup({ features });

  up();
  const active = backend.offloads;
  net.reset();

  assert.deepEqual(active, { csum: true, tso4: false, tso6: true, ecn: false, ufo: false }, 'HOST_* are not the tap\'s business');
  assert.deepEqual(backend.offloads, NO_OFFLOADS);
});

test('guestOffloadsOf() maps each GUEST_* feature to its offload', () => {
  assert.deepEqual(guestOffloadsOf(0n), NO_OFFLOADS);
  assert.deepEqual(guestOffloadsOf(VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6 | VIRTIO_NET_F_GUEST_ECN | VIRTIO_NET_F_GUEST_UFO), ALL_OFFLOADS);
  assert.deepEqual(guestOffloadsOf(VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_CSUM), { ...NO_OFFLOADS, csum: true });
});

// --- transmit ---

test('VirtioNet sends a [header, frame] chain to the backend as one frame and returns it with used length 0', () => {
  const s = setup();
  s.up();
  const f = frame(60);
  postTx(s, 0, {}, f);

  s.net.queueNotify(1);

  assert.deepEqual(s.backend.fromGuest, [packet({}, f)]);
  assert.equal(s.txDriver.usedIdx(), 1);
  assert.deepEqual(s.txDriver.used(0), { id: 0, len: 0 });
  assert.deepEqual(s.interrupt.queues, [1]);
  assert.equal(s.net.metrics.txPackets, 1);
  assert.equal(s.net.metrics.txBytes, 60);
});

test('transmitted frames are written from guest RAM in place; only the header is copied', () => {
  const s = setup();
  s.up();
  postTx(s, 0, {}, frame(1514));

  s.net.queueNotify(1);

  const [hdr, body] = s.backend.lastWrite;
  const guest = s.memory.view(TXBUF + 0x100, 1514)!;
  assert.equal(body!.buffer, guest.buffer, 'a view of guest RAM');
  assert.equal(body!.byteOffset, guest.byteOffset);
  assert.notEqual(hdr!.buffer, guest.buffer, 'the header is the device\'s copy');
});

test('with CSUM and HOST_TSO4 the transmit header passes through: NEEDS_CSUM and the GSO fields', () => {
  const s = setup({ features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_ECN });
  s.up();
  const h = { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 };
  postTx(s, 0, h, frame(9000));

  s.net.queueNotify(1);

  assert.equal(s.backend.fromGuest.length, 1);
  assert.deepEqual(readHeader(s.backend.fromGuest[0]!), { ...h, numBuffers: 0 });
});

test('VirtioNet clears transmit flag bits it does not recognise (§5.1.6.2.2) and num_buffers', () => {
  const s = setup({ features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_CSUM });
  const plain = setup();
  s.up();
  plain.up();
  postTx(s, 0, { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID | 0x80, numBuffers: 7 }, frame(60));
  postTx(plain, 0, { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM }, frame(60));

  s.net.queueNotify(1);
  plain.net.queueNotify(1);

  assert.deepEqual(readHeader(s.backend.fromGuest[0]!), { ...readHeader(header()), flags: VIRTIO_NET_HDR_F_NEEDS_CSUM });
  assert.equal(readHeader(plain.backend.fromGuest[0]!).flags, 0, 'without CSUM no flag is recognised');
});

test('VirtioNet drops, and counts, a packet asking for segmentation the driver did not negotiate', () => {
  const s = setup({ features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4 });
  s.up();
  postTx(s, 0, { flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV6, gsoSize: 1400 }, frame(4000));
  postTx(s, 1, { flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, gsoSize: 1400 }, frame(4000));
  postTx(s, 2, { gsoType: 0x42 }, frame(60));

  s.net.queueNotify(1);

  assert.equal(s.backend.fromGuest.length, 0);
  assert.equal(s.net.metrics.txDropped, 3);
  assert.equal(s.txDriver.usedIdx(), 3, 'the chains are returned all the same');
});

test('a transmit header split across descriptors is put together', () => {
  const s = setup();
  s.up();
  const p = packet({}, frame(100));
  s.memory.write(TXBUF, p);
  s.txDriver.setDesc(0, { addr: TXBUF, len: 5, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  s.txDriver.setDesc(1, { addr: TXBUF + 5, len: 10, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  s.txDriver.setDesc(2, { addr: TXBUF + 15, len: p.length - 15 });
  s.txDriver.publish(0);

  s.net.queueNotify(1);

  assert.deepEqual(s.backend.fromGuest, [p]);
});

test('when the backend is full (EAGAIN) the chain stays in the ring and is sent once the backend is writable', () => {
  const s = setup();
  s.up();
  s.backend.acceptsWrites = false;
  postTx(s, 0, {}, frame(60, 1));
  postTx(s, 1, {}, frame(60, 2));

  s.net.queueNotify(1);
  const writesWhileFull = s.backend.writes;
  s.net.queueNotify(1);
  const blocked = { used: s.txDriver.usedIdx(), interest: { ...s.backend.interest }, writes: s.backend.writes };
  s.backend.acceptsWrites = true;
  s.backend.poll();

  assert.deepEqual(blocked, { used: 0, interest: { read: true, write: true }, writes: writesWhileFull });
  assert.equal(s.net.metrics.txBlocked, 1);
  assert.deepEqual(s.backend.fromGuest, [packet({}, frame(60, 1)), packet({}, frame(60, 2))], 'in order, nothing lost');
  assert.equal(s.txDriver.usedIdx(), 2);
  assert.deepEqual(s.backend.interest, { read: true, write: false });
});

test('with a transmit ring the turn\'s packets go out in one flush, and each chain is returned once its packet is written', () => {
  const s = setup({ backend: new FakeNetBackend({ txRing: true }) });
  const ring = s.backend.txRing!;
  s.up();
  for (let d = 0; d < 3; d++) postTx(s, d, {}, frame(60, d));

  s.net.queueNotify(1);

  assert.equal(ring.flushes, 1, 'one flush for the turn');
  assert.equal(s.backend.writes, 0, 'no writev');
  assert.deepEqual(s.backend.fromGuest, [0, 1, 2].map((d) => packet({}, frame(60, d))));
  assert.deepEqual([0, 1, 2].map((i) => s.txDriver.used(i)), [0, 2, 4].map((id) => ({ id, len: 0 })));
  assert.deepEqual(s.interrupt.queues, [1]);
  assert.equal(s.net.metrics.txPackets, 3);
  assert.equal(s.net.metrics.txBytes, 180);
});

test('with a transmit ring, a full batch is flushed and the turn goes on', () => {
  const s = setup({ backend: new FakeNetBackend({ txRing: true }) });
  const ring = s.backend.txRing!;
  ring.capacity = 2;
  s.up();
  for (let d = 0; d < 5; d++) postTx(s, d, {}, frame(60, d));

  s.net.queueNotify(1);

  assert.equal(ring.flushes, 3);
  assert.deepEqual(s.backend.fromGuest, [0, 1, 2, 3, 4].map((d) => packet({}, frame(60, d))), 'in order');
  assert.equal(s.txDriver.usedIdx(), 5);
});

test('with a transmit ring, packets the backend writes later (it was full) hold the queue until they are done', () => {
  const s = setup({ backend: new FakeNetBackend({ txRing: true }) });
  const ring = s.backend.txRing!;
  s.up();
  ring.holdBack = true;
  postTx(s, 0, {}, frame(60, 1));
  s.net.queueNotify(1);
  postTx(s, 1, {}, frame(60, 2));
  s.net.queueNotify(1);
  const held = { used: s.txDriver.usedIdx(), inFlight: ring.inFlight, queued: ring.queued.length };

  ring.holdBack = false;
  ring.complete();

  assert.deepEqual(held, { used: 0, inFlight: 1, queued: 0 }, 'nothing returned, nothing more queued');
  assert.deepEqual(s.backend.fromGuest, [packet({}, frame(60, 1)), packet({}, frame(60, 2))], 'in order, nothing lost');
  assert.equal(s.txDriver.usedIdx(), 2);
  assert.deepEqual(s.interrupt.queues, [1, 1]);
});

test('with a transmit ring, a packet the kernel refuses is dropped and counted, its chain returned', () => {
  const s = setup({ backend: new FakeNetBackend({ txRing: true }) });
  s.backend.txRing!.result = -22;
  s.up();
  postTx(s, 0, {}, frame(60));

  s.net.queueNotify(1);

  assert.equal(s.txDriver.usedIdx(), 1);
  assert.equal(s.net.metrics.txErrors, 1);
  assert.equal(s.net.metrics.txPackets, 0);
});

test('with a transmit ring, a packet written after a reset is not returned on the new queue', () => {
  const s = setup({ backend: new FakeNetBackend({ txRing: true }) });
  const ring = s.backend.txRing!;
  s.up();
  ring.holdBack = true;
  postTx(s, 0, {}, frame(60));
  s.net.queueNotify(1);

  s.net.reset();
  s.up();
  ring.holdBack = false;
  ring.complete();

  assert.equal(s.txDriver.usedIdx(), 0, 'the old packet\'s head is not pushed on the new used ring');
  assert.equal(s.net.metrics.txPackets, 0);
});

test('hostile transmit chains are returned unsent and counted: short header, device-writable buffers, too long, too many buffers', () => {
  const s = setup({ backend: new FakeNetBackend({ maxBuffers: 8 }), txSize: 32 });
  s.up();
  s.txDriver.setDesc(0, { addr: TXBUF, len: 11 });
  s.txDriver.setDesc(1, { addr: TXBUF, len: 64, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  s.txDriver.setDesc(2, { addr: TXBUF + 0x1000, len: 64, flags: VIRTQ_DESC_F_WRITE });
  s.txDriver.setDesc(3, { addr: TXBUF, len: 70000 });
  for (let i = 0; i < 10; i++) s.txDriver.setDesc(4 + i, { addr: TXBUF + i * 16, len: 16, flags: i < 9 ? VIRTQ_DESC_F_NEXT : 0, next: 5 + i });
  s.txDriver.publish(0, 1, 3, 4);

  s.net.queueNotify(1);

  assert.equal(s.backend.writes, 0);
  assert.equal(s.net.metrics.txDropped, 4);
  assert.deepEqual([0, 1, 2, 3].map((i) => s.txDriver.used(i)), [0, 1, 3, 4].map((id) => ({ id, len: 0 })));
});

test('a frame the backend refuses (link down, EINVAL) is dropped and counted, and the queue goes on', () => {
  const s = setup();
  s.up();
  s.backend.writeError = Object.assign(new Error('writev: EIO'), { code: 'EIO' });
  postTx(s, 0, {}, frame(60));
  postTx(s, 1, {}, frame(60));

  s.net.queueNotify(1);

  assert.equal(s.net.metrics.txErrors, 2);
  assert.equal(s.txDriver.usedIdx(), 2);
});

test('a broken transmit chain goes to the transport and the device stops', () => {
  const s = setup();
  s.up();
  s.txDriver.setDesc(0, { addr: TXBUF, len: 64, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  s.txDriver.publish(0);

  s.net.queueNotify(1);

  assert.deepEqual(s.interrupt.errors.map((e) => [e.index, e.error.error]), [[1, 'CHAIN_LOOP']]);
  assert.deepEqual(s.backend.interest, { read: false, write: false }, 'no more reading either');
});

test('VirtioNet transmits at most `budget` packets per turn and the rest on the next', async () => {
  const s = setup({ net: { budget: 3 } });
  s.up();
  for (let i = 0; i < 5; i++) postTx(s, i, {}, frame(60, i));

  s.net.queueNotify(1);
  const first = s.backend.fromGuest.length;
  await tick();

  assert.equal(first, 3);
  assert.equal(s.backend.fromGuest.length, 5);
  assert.equal(s.txDriver.usedIdx(), 5);
});

test('packets posted before DRIVER_OK are sent at activation', () => {
  const s = setup();
  postTx(s, 0, {}, frame(60));

  s.net.queueNotify(1);
  const before = s.backend.fromGuest.length;
  s.up();

  assert.equal(before, 0);
  assert.equal(s.backend.fromGuest.length, 1);
});

test('a transmit buffer that straddles two host chunks of guest RAM is sent in two views', () => {
  const memory = GuestMemory.anonymous(4 * 1024 * 1024, 1024 * 1024);
  const s = setup({ memory });
  s.up();
  const f = frame(200);
  postTx(s, 0, {}, f, 0x200000 - 0x180);

  s.net.queueNotify(1);

  assert.deepEqual(s.backend.fromGuest, [packet({}, f)]);
  assert.equal(s.backend.lastWrite.length, 3);
});

// --- receive ---

test('VirtioNet reads a frame into a posted buffer: used length, header, num_buffers 1 without MRG_RXBUF (§5.1.6.4.1)', () => {
  const s = setup();
  s.up();
  postRx(s, 2, 2048);
  const f = frame(42);
  s.backend.toGuest.push(packet({ numBuffers: 0 }, f));

  s.backend.poll();

  assert.equal(s.rxDriver.usedIdx(), 1);
  assert.deepEqual(s.rxDriver.used(0), { id: 0, len: 54 });
  const got = rxBuffer(s, 0, 54);
  assert.deepEqual(readHeader(got), { ...readHeader(header()), numBuffers: 1 });
  assert.deepEqual(got.subarray(VIRTIO_NET_HDR_SIZE), f);
  assert.deepEqual(s.interrupt.queues, [0]);
  assert.equal(s.net.metrics.rxPackets, 1);
  assert.equal(s.net.metrics.rxBytes, 42);
});

test('frames are read in place into guest RAM (the readv buffers are views of it)', () => {
  const backend = new FakeNetBackend();
  const s = setup({ backend });
  const seen: Uint8Array[][] = [];
  const readv = backend.readv.bind(backend);
  backend.readv = (buffers) => {
    seen.push([...buffers]);
    return readv(buffers);
  };
  s.up();
  postRx(s, 1, 2048);
  backend.toGuest.push(packet({}, frame(60)));

  backend.poll();

  const guest = s.memory.view(RXBUF, 2048)!;
  assert.equal(seen[0]![0]!.buffer, guest.buffer);
  assert.equal(seen[0]![0]!.byteOffset, guest.byteOffset);
});

test('without GUEST_CSUM the device clears the flags the tap set (§5.1.6.4.1)', () => {
  const s = setup();
  s.up();
  postRx(s, 1, 2048);
  s.backend.toGuest.push(packet({ flags: VIRTIO_NET_HDR_F_DATA_VALID }, frame(60)));

  s.backend.poll();

  assert.equal(readHeader(rxBuffer(s, 0, 12)).flags, 0);
});

test('with GUEST_CSUM and GUEST_TSO4 the receive header passes through: NEEDS_CSUM, DATA_VALID and the GSO fields', () => {
  const s = setup({ features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 });
  s.up();
  postRx(s, 1, 65536);
  const h = { flags: VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, hdrLen: 66, gsoSize: 1448, csumStart: 34, csumOffset: 16 };
  s.backend.toGuest.push(packet(h, frame(30000)));

  s.backend.poll();

  assert.deepEqual(readHeader(rxBuffer(s, 0, 12)), { ...h, numBuffers: 1 });
});

test('a received frame with a gso_type the guest did not accept is dropped and counted', () => {
  const s = setup({ features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4 });
  s.up();
  postRx(s, 1, 65536);
  s.backend.toGuest.push(packet({ flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV6 }, frame(3000)));
  s.backend.toGuest.push(packet({ flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN }, frame(3000)));
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.poll();

  assert.equal(s.net.metrics.rxDropped, 2);
  assert.equal(s.rxDriver.usedIdx(), 1);
  assert.deepEqual(s.rxDriver.used(0), { id: 0, len: 72 }, 'the buffer went to the next frame');
});

test('with MRG_RXBUF a large frame spreads over several buffers, all but the last full, num_buffers their count (§5.1.6.4.1)', () => {
  const features = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4;
  const s = setup({ features });
  s.up();
  postRx(s, 16, 8192);
  const big = frame(20000);
  s.backend.toGuest.push(packet({ flags: 1, gsoType: VIRTIO_NET_HDR_GSO_TCPV4, gsoSize: 1448 }, big));
  s.backend.toGuest.push(packet({}, frame(60, 9)));

  s.backend.poll();

  assert.deepEqual([0, 1, 2, 3].map((i) => s.rxDriver.used(i)), [
    { id: 0, len: 8192 },
    { id: 1, len: 8192 },
    { id: 2, len: 20012 - 2 * 8192 },
    { id: 3, len: 72 },
  ]);
  const got = new Uint8Array([...rxBuffer(s, 0, 8192), ...rxBuffer(s, 1, 8192), ...rxBuffer(s, 2, 20012 - 16384)]);
  assert.equal(readHeader(got).numBuffers, 3);
  assert.deepEqual(got.subarray(12), big);
  assert.equal(readHeader(rxBuffer(s, 3, 12)).numBuffers, 1);
  assert.equal(s.rxDriver.usedIdx(), 4, 'the buffers taken but not filled went back to the ring');
});

test('with MRG_RXBUF small frames take one buffer each and the unused buffers are taken again next turn', () => {
  const s = setup({ features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF, rxSize: 16 });
  s.up();
  postRx(s, 16, 512);
  s.backend.toGuest.push(packet({}, frame(60, 1)), packet({}, frame(60, 2)));
  s.backend.poll();
  s.backend.toGuest.push(packet({}, frame(60, 3)));

  s.backend.poll();

  assert.deepEqual([0, 1, 2].map((i) => s.rxDriver.used(i)), [0, 1, 2].map((id) => ({ id, len: 72 })));
  assert.deepEqual(rxBuffer(s, 2, 72).subarray(12), frame(60, 3));
});

test('with no receive buffers posted the device reads nothing and stops watching until the guest notifies', () => {
  const s = setup();
  s.up();
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.drain();
  const idle = { reads: s.backend.reads, interest: { ...s.backend.interest }, waiting: s.backend.toGuest.length };
  postRx(s, 2, 2048);
  s.net.queueNotify(0);

  assert.deepEqual(idle, { reads: 0, interest: { read: false, write: false }, waiting: 1 });
  assert.equal(s.net.metrics.rxNoBuffers, 1);
  assert.equal(s.rxDriver.usedIdx(), 1, 'the frame that waited is delivered');
  assert.equal(s.backend.interest.read, true, 'watching again while a buffer is left');
});

test('with MRG_RXBUF and too little room posted for the largest frame, the device waits instead of reading', () => {
  const features = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4;
  const s = setup({ features, rxSize: 64 });
  s.up();
  postRx(s, 4, 1536);
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.drain();
  const idle = { reads: s.backend.reads, read: s.backend.interest.read, used: s.rxDriver.usedIdx() };
  postRx(s, 60, 1536, 4);
  s.net.queueNotify(0);

  assert.deepEqual(idle, { reads: 0, read: false, used: 0 });
  assert.deepEqual(s.rxDriver.used(0), { id: 0, len: 72 });
});

test('with MRG_RXBUF and every buffer of a small ring held, the device reads with what it has', () => {
  const features = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MRG_RXBUF | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_GUEST_TSO4;
  const s = setup({ features, rxSize: 4 });
  s.up();
  postRx(s, 4, 1536);
  s.backend.toGuest.push(packet({}, frame(3000)), packet({}, frame(8000)));

  s.backend.drain();
  const first = { used: s.rxDriver.usedIdx(), waiting: s.backend.toGuest.length };
  postRx(s, 2, 1536);
  s.net.queueNotify(0);

  assert.deepEqual([0, 1].map((i) => s.rxDriver.used(i)), [{ id: 0, len: 1536 }, { id: 1, len: 3012 - 1536 }]);
  assert.deepEqual(first, { used: 2, waiting: 1 }, 'with two buffers out, the next frame waits for them to come back');
  assert.equal(s.net.metrics.rxDropped, 1, 'the 8000-byte frame does not fit in the whole ring: dropped');
  assert.equal(s.rxDriver.usedIdx(), 2);
});

test('a frame longer than the buffer is dropped and counted, and the buffer takes the next frame', () => {
  const s = setup();
  s.up();
  postRx(s, 1, 2048);
  s.backend.toGuest.push(packet({}, frame(2048 - 12 + 1)), packet({}, frame(2048 - 12, 5)));

  s.backend.poll();

  assert.equal(s.net.metrics.rxDropped, 1);
  assert.deepEqual(s.rxDriver.used(0), { id: 0, len: 2048 }, 'a frame that exactly fills the buffer is whole');
  assert.deepEqual(rxBuffer(s, 0, 2048).subarray(12), frame(2036, 5));
});

test('with a receive ring the frames waiting are read in one flush into the first chains; the rest go back to the ring', () => {
  const s = setup({ backend: new FakeNetBackend({ rxRing: true }) });
  s.up();
  postRx(s, 8, 2048);
  s.backend.toGuest.push(packet({}, frame(60, 1)), packet({}, frame(100, 2)));

  s.backend.poll();

  assert.equal(s.backend.rxRing!.flushes, 1);
  assert.equal(s.backend.reads, 0, 'no readv');
  assert.deepEqual([0, 1].map((i) => s.rxDriver.used(i)), [{ id: 0, len: 72 }, { id: 1, len: 112 }]);
  assert.equal(s.rxDriver.usedIdx(), 2);
  assert.deepEqual(readHeader(rxBuffer(s, 0, VIRTIO_NET_HDR_SIZE)).numBuffers, 1);
  assert.deepEqual(rxBuffer(s, 1, 112).subarray(VIRTIO_NET_HDR_SIZE), frame(100, 2));
  s.backend.toGuest.push(packet({}, frame(60, 3)));
  s.backend.poll();
  assert.deepEqual(s.rxDriver.used(2), { id: 2, len: 72 }, 'the chains not filled were taken again, in order');
  assert.equal(s.net.metrics.rxPackets, 3);
});

test('with a receive ring, a frame that lands after a read that found none moves down into the first empty chain', () => {
  const s = setup({ backend: new FakeNetBackend({ rxRing: true }) });
  s.up();
  postRx(s, 8, 2048);
  s.backend.rxRing!.gapAt = 1;
  s.backend.toGuest.push(packet({}, frame(60, 1)), packet({}, frame(80, 2)));

  s.backend.poll();

  assert.deepEqual([0, 1].map((i) => s.rxDriver.used(i)), [{ id: 0, len: 72 }, { id: 1, len: 92 }]);
  assert.deepEqual(rxBuffer(s, 1, 92).subarray(VIRTIO_NET_HDR_SIZE), frame(80, 2), 'the frame read into chain 2 is in chain 1');
  assert.equal(s.rxDriver.usedIdx(), 2);
});

test('with a receive ring, a frame longer than its chain is dropped and the chain returned empty', () => {
  const s = setup({ backend: new FakeNetBackend({ rxRing: true }) });
  s.up();
  postRx(s, 4, 64);
  s.backend.toGuest.push(packet({}, frame(200, 1)), packet({}, frame(40, 2)));

  s.backend.poll();

  assert.deepEqual([0, 1].map((i) => s.rxDriver.used(i)), [{ id: 0, len: 0 }, { id: 1, len: 52 }]);
  assert.equal(s.net.metrics.rxDropped, 1);
  assert.equal(s.net.metrics.rxPackets, 1);
});

test('with a receive ring and mergeable buffers too small for a frame, the device reads frame by frame, spreading them', () => {
  const s = setup({ backend: new FakeNetBackend({ rxRing: true }), features: VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_MRG_RXBUF, rxSize: 16 });
  s.up();
  postRx(s, 16, 1024);
  s.backend.toGuest.push(packet({}, frame(1500, 1)));

  s.backend.poll();

  assert.equal(s.backend.rxRing!.flushes, 0);
  assert.equal(readHeader(rxBuffer(s, 0, VIRTIO_NET_HDR_SIZE)).numBuffers, 2);
  assert.equal(s.net.metrics.rxPackets, 1);
});

test('hostile receive chains: too small for a header they are returned empty and counted; device-readable buffers are skipped', () => {
  const s = setup();
  s.up();
  s.rxDriver.setDesc(0, { addr: RXBUF, len: 11, flags: VIRTQ_DESC_F_WRITE });
  s.rxDriver.setDesc(1, { addr: RXBUF + 0x1000, len: 64, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  s.rxDriver.setDesc(2, { addr: RXBUF + 0x2000, len: 2048, flags: VIRTQ_DESC_F_WRITE });
  s.rxDriver.publish(0, 1);
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.poll();

  assert.deepEqual(s.rxDriver.used(0), { id: 0, len: 0 });
  assert.deepEqual(s.rxDriver.used(1), { id: 1, len: 72 });
  const got = new Uint8Array(72);
  s.memory.read(RXBUF + 0x2000, got);
  assert.deepEqual(got.subarray(12), frame(60));
  assert.equal(s.net.metrics.rxBadBuffers, 1);
});

test('a receive chain of more buffers than one readv takes is returned empty, not read into', () => {
  const s = setup({ backend: new FakeNetBackend({ maxBuffers: 4 }) });
  s.up();
  for (let i = 0; i < 4; i++) s.rxDriver.setDesc(i, { addr: RXBUF + i * 0x1000, len: 512, flags: VIRTQ_DESC_F_WRITE | (i < 3 ? VIRTQ_DESC_F_NEXT : 0), next: i + 1 });
  s.rxDriver.publish(0);
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.poll();

  assert.deepEqual(s.rxDriver.used(0), { id: 0, len: 0 });
  assert.equal(s.net.metrics.rxBadBuffers, 1);
  assert.equal(s.backend.toGuest.length, 1, 'the frame waits for a usable buffer');
});

test('VirtioNet reads at most `budget` frames per wakeup and the rest on the next turn', () => {
  const s = setup({ net: { budget: 4 } });
  s.up();
  postRx(s, 16, 2048);
  for (let i = 0; i < 10; i++) s.backend.toGuest.push(packet({}, frame(60, i)));

  s.backend.poll();
  const first = s.rxDriver.usedIdx();
  s.backend.drain();

  assert.equal(first, 4);
  assert.equal(s.rxDriver.usedIdx(), 10);
  assert.equal(s.interrupt.queues.filter((q) => q === 0).length, 3, 'one interrupt per turn');
});

test('a receive buffer that straddles two host chunks of guest RAM is filled through two views', () => {
  const memory = GuestMemory.anonymous(4 * 1024 * 1024, 1024 * 1024);
  const s = setup({ memory });
  s.up();
  const at = 0x200000 - 100;
  s.rxDriver.setDesc(0, { addr: at, len: 2048, flags: VIRTQ_DESC_F_WRITE });
  s.rxDriver.publish(0);
  const f = frame(500);

  s.backend.toGuest.push(packet({}, f));
  s.backend.poll();

  const got = new Uint8Array(512);
  memory.read(at, got);
  assert.deepEqual(got.subarray(12), f);
  assert.equal(readHeader(got).numBuffers, 1);
});

test('a backend read failure is counted and reading pauses instead of spinning', () => {
  const s = setup();
  s.up();
  postRx(s, 1, 2048);
  s.backend.readError = new Error('readv: EBADFD');
  s.backend.toGuest.push(packet({}, frame(60)));

  const turns = s.backend.drain(100);

  assert.equal(turns, 1);
  assert.equal(s.net.metrics.rxErrors, 1);
  assert.equal(s.backend.interest.read, false);
  assert.equal(s.rxDriver.usedIdx(), 0);
});

test('a backend that fails for good is counted and no longer watched', () => {
  const s = setup();
  s.up();

  s.backend.handler!.failed(9);
  s.net.reset();
  s.up();

  assert.equal(s.net.metrics.backendErrors, 1);
  assert.deepEqual(s.backend.interest, { read: false, write: false });
});

test('a broken receive ring goes to the transport and the device stops reading', () => {
  const s = setup();
  s.up();
  s.rxDriver.setAvailIdx(100);
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.drain();

  assert.deepEqual(s.interrupt.errors.map((e) => [e.index, e.error.error]), [[0, 'AVAIL_IDX_JUMP']]);
  assert.equal(s.backend.reads, 0);
  assert.equal(s.backend.interest.read, false);
});

// --- lifecycle ---

test('nothing is read or written before DRIVER_OK or after reset', () => {
  const s = setup();
  postRx(s, 1, 2048);
  s.backend.toGuest.push(packet({}, frame(60)));
  const before = { ...s.backend.interest };
  s.up();
  s.net.reset();
  postTx(s, 0, {}, frame(60));

  s.net.queueNotify(0);
  s.net.queueNotify(1);
  s.backend.drain();

  assert.deepEqual(before, { read: false, write: false });
  assert.deepEqual(s.backend.interest, { read: false, write: false });
  assert.equal(s.backend.reads + s.backend.writes, 0);
});

test('close() lets go of the backend', () => {
  const s = setup();
  s.up();

  s.net.close();

  assert.equal(s.backend.handler, undefined);
  assert.deepEqual(s.backend.interest, { read: false, write: false });
});

test('with EVENT_IDX a device that gave buffers back is notified when the driver adds one', () => {
  const features = VIRTIO_F_VERSION_1 | VIRTIO_F_EVENT_IDX | VIRTIO_NET_F_MRG_RXBUF;
  const s = setup({ features, queue: { eventIdx: true } });
  s.up();
  postRx(s, 1, 512);
  s.backend.toGuest.push(packet({}, frame(60)));

  s.backend.poll();

  assert.equal(s.rxDriver.availEvent(), 1, 'the driver notifies when it adds entry 1');
  assert.equal(s.net.metrics.rxNoBuffers, 1);
});

test('the driver is asked not to notify receive buffers while the device has some, and to notify once it runs out', () => {
  const s = setup();
  const usedFlags = () => s.memory.readU16(s.rxDriver.layout.used);
  s.up();
  postRx(s, 2, 2048);
  const withBuffers = usedFlags();
  s.backend.toGuest.push(packet({}, frame(60, 1)), packet({}, frame(60, 2)), packet({}, frame(60, 3)));

  s.backend.drain();
  const ranOut = usedFlags();
  postRx(s, 2, 2048, 2);
  s.net.queueNotify(0);

  assert.equal(withBuffers, VIRTQ_USED_F_NO_NOTIFY);
  assert.equal(ranOut, 0, 'out of buffers: the device needs the notification');
  assert.equal(usedFlags(), VIRTQ_USED_F_NO_NOTIFY, 'buffers again: reading goes by the backend');
  assert.equal(s.rxDriver.usedIdx(), 3);
});

test('while the device drains the transmit ring the driver need not notify; once it is empty, it must', () => {
  const s = setup();
  const usedFlags = () => s.memory.readU16(s.txDriver.layout.used);
  s.up();
  s.backend.acceptsWrites = false;
  postTx(s, 0, {}, frame(60));

  s.net.queueNotify(1);
  const blocked = usedFlags();
  s.backend.acceptsWrites = true;
  s.backend.poll();

  assert.equal(blocked, VIRTQ_USED_F_NO_NOTIFY, 'the device comes back by itself when the backend is writable');
  assert.equal(usedFlags(), 0);
  assert.equal(s.backend.fromGuest.length, 1);
});

// --- helpers ---

test('appendViews() splits a range at a host chunk boundary and refuses what is not RAM', () => {
  const memory = GuestMemory.anonymous(256 * 1024, 64 * 1024);
  const out: Uint8Array[] = [];

  const n = appendViews(memory, 0x10000 - 10, 30, out);

  assert.equal(n, 2);
  assert.deepEqual(out.map((v) => v.length), [10, 20]);
  assert.equal(appendViews(memory, 256 * 1024 - 4, 8, []), -1);
});

// --- behind the transport ---

test('behind virtio-pci: a driver negotiates, reads the MAC, and frames go both ways through bus notifications', () => {
  const memory = GuestMemory.anonymous(8 * 1024 * 1024);
  const mmio = new MmioBus();
  const pci = new PciBus({ mmio, pio: new PioBus(), gsiLine: () => new FakeIrqLine() });
  mmio.insert('pci-ecam', PCI_ECAM_BASE, PCI_ECAM_SIZE, new PciEcam(pci));
  const backend = new FakeNetBackend();
  const net = new VirtioNet({ backend, mac: MAC, queueSize: 16 });
  const transport = new VirtioPciDevice({ device: net, memory, msiRouter: new FakeMsiRouter() });
  pci.attach(2, transport, 'virtio-net');
  const at = (off: number) => PCI_ECAM_BASE + 2 * 2 ** 15 + off;
  const driver = new FakeVirtioPciDriver({
    config: { configRead: (_b, _d, _f, off, data) => void mmio.read(at(off), data), configWrite: (_b, _d, _f, off, data) => void mmio.write(at(off), data) },
    mmio,
    slot: 2,
  });
  driver.probe();
  const rx = new FakeSplitQueue(memory, FakeSplitQueue.layoutAt(RX_RING, 16));
  const tx = new FakeSplitQueue(memory, FakeSplitQueue.layoutAt(TX_RING, 16));
  const features = VIRTIO_F_VERSION_1 | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS | VIRTIO_NET_F_MRG_RXBUF;

  assert.ok(driver.negotiate(features));
  driver.setupQueue(0, rx.layout);
  driver.setupQueue(1, tx.layout);
  rx.setDesc(0, { addr: RXBUF, len: 2048, flags: VIRTQ_DESC_F_WRITE });
  rx.publish(0);
  driver.driverOk();
  const cfg = driver.caps.get(VIRTIO_PCI_CAP_DEVICE_CFG)!;
  const mac = [0, 1, 2, 3, 4, 5].map((i) => driver.mmioRead(driver.barBase(cfg.bar) + cfg.offset + i, 1));
  const status = driver.mmioRead(driver.barBase(cfg.bar) + cfg.offset + 6, 2);
  memory.write(TXBUF, packet({}, frame(60, 3)));
  tx.setDesc(0, { addr: TXBUF, len: 72 });
  tx.publish(0);
  driver.notify(1);
  backend.toGuest.push(packet({}, frame(100, 4)));
  backend.poll();

  assert.equal(cfg.length, 8);
  assert.equal(formatMac(Uint8Array.from(mac)), MAC);
  assert.equal(status, VIRTIO_NET_S_LINK_UP);
  assert.deepEqual(backend.fromGuest, [packet({}, frame(60, 3))]);
  assert.deepEqual(rx.used(0), { id: 0, len: 112 });
  const got = new Uint8Array(112);
  memory.read(RXBUF, got);
  assert.deepEqual(got, packet({ numBuffers: 1 }, frame(100, 4)));
});
