import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTIO_F_VERSION_1, type VirtioInterrupt } from './device.js';
import { FakeSplitQueue } from './fake-driver.js';
import {
  ABS_X,
  ABS_Y,
  BTN_LEFT,
  BTN_MIDDLE,
  BTN_RIGHT,
  EV_ABS,
  EV_KEY,
  EV_REL,
  EV_SYN,
  REL_WHEEL,
  TABLET_ABS_MAX,
  TABLET_PENDING_LIMIT,
  VIRTIO_ID_INPUT,
  VIRTIO_INPUT_CFG_ABS_INFO,
  VIRTIO_INPUT_CFG_EV_BITS,
  VIRTIO_INPUT_CFG_ID_DEVIDS,
  VIRTIO_INPUT_CFG_ID_NAME,
  VIRTIO_INPUT_CFG_PROP_BITS,
  VirtioTablet,
} from './input.js';
import { VIRTQ_DESC_F_WRITE, Virtqueue, type QueueError } from './queue.js';

const EVENTS = 0x40000;
const STATUS = 0x50000;

class RecordingInterrupt implements VirtioInterrupt {
  readonly queues: number[] = [];
  readonly errors: QueueError[] = [];
  notifyQueue(i: number): void {
    this.queues.push(i);
  }
  notifyConfig(): void {}
  queueError(_i: number, e: QueueError): void {
    this.errors.push(e);
  }
}

function setup(size = 16) {
  const memory = GuestMemory.anonymous(1024 * 1024);
  const eventLayout = FakeSplitQueue.layoutAt(0x1000, size);
  const statusLayout = FakeSplitQueue.layoutAt(0x8000, size);
  const events = new FakeSplitQueue(memory, eventLayout);
  const status = new FakeSplitQueue(memory, statusLayout);
  const queues = [
    Virtqueue.create(memory, eventLayout, { eventIdx: false, indirect: true }) as Virtqueue,
    Virtqueue.create(memory, statusLayout, { eventIdx: false, indirect: true }) as Virtqueue,
  ];
  const interrupt = new RecordingInterrupt();
  const tablet = new VirtioTablet();
  const activate = () => tablet.activate({ memory, queues, interrupt, features: VIRTIO_F_VERSION_1 });
  /** posts `n` 8-byte event buffers */
  const post = (n: number, from = 0) => {
    for (let i = from; i < from + n; i++) events.setDesc(i, { addr: EVENTS + 8 * i, len: 8, flags: VIRTQ_DESC_F_WRITE });
    events.publish(...Array.from({ length: n }, (_, i) => from + i));
  };
  const event = (i: number) => {
    const b = new Uint8Array(8);
    memory.read(EVENTS + 8 * i, b);
    const v = new DataView(b.buffer);
    return [v.getUint16(0, true), v.getUint16(2, true), v.getInt32(4, true)];
  };
  return { memory, events, status, interrupt, tablet, activate, post, event };
}

function select(t: VirtioTablet, sel: number, subsel: number): { size: number; u: Uint8Array } {
  t.writeConfig(0, Uint8Array.of(sel));
  t.writeConfig(1, Uint8Array.of(subsel));
  const cfg = new Uint8Array(136);
  t.readConfig(0, cfg);
  return { size: cfg[2]!, u: cfg.subarray(8, 8 + cfg[2]!) };
}

test('VirtioTablet is virtio-input (type 18) with eventq and statusq and a 136-byte configuration', () => {
  const t = new VirtioTablet();
  assert.equal(t.deviceType, VIRTIO_ID_INPUT);
  assert.equal(t.queueMaxSizes.length, 2);
  assert.equal(t.configSize, 136);
});

test('VirtioTablet answers the configuration questions a driver asks (§5.8.4)', () => {
  const t = new VirtioTablet();
  assert.equal(Buffer.from(select(t, VIRTIO_INPUT_CFG_ID_NAME, 0).u).toString(), 'vmctl tablet');
  assert.equal(select(t, VIRTIO_INPUT_CFG_ID_DEVIDS, 0).size, 8);
  const keys = select(t, VIRTIO_INPUT_CFG_EV_BITS, EV_KEY);
  assert.equal(keys.size, (BTN_MIDDLE >> 3) + 1);
  for (const b of [BTN_LEFT, BTN_RIGHT, BTN_MIDDLE]) assert.ok(keys.u[b >> 3]! & (1 << (b & 7)));
  assert.deepEqual([...select(t, VIRTIO_INPUT_CFG_EV_BITS, EV_ABS).u], [0x03]);
  assert.deepEqual([...select(t, VIRTIO_INPUT_CFG_EV_BITS, EV_REL).u], [0x00, 0x01]);
  const abs = select(t, VIRTIO_INPUT_CFG_ABS_INFO, ABS_Y);
  assert.equal(abs.size, 20);
  assert.equal(new DataView(abs.u.buffer, abs.u.byteOffset).getUint32(4, true), TABLET_ABS_MAX);
  // §5.8.6.2: a question the device has no answer for gets size 0.
  for (const [sel, sub] of [[VIRTIO_INPUT_CFG_PROP_BITS, 0], [VIRTIO_INPUT_CFG_EV_BITS, 0x11], [VIRTIO_INPUT_CFG_ABS_INFO, 5], [0x7f, 0]]) {
    assert.equal(select(t, sel!, sub!).size, 0);
  }
  // Only select and subsel are writable.
  t.writeConfig(2, Uint8Array.of(99));
  assert.equal(t.metrics.missedWrites, 1);
});

test('VirtioTablet turns a pointer position into ABS_X, ABS_Y, button changes and SYN_REPORT', () => {
  const { tablet, activate, post, event, events, interrupt } = setup();
  assert.equal(tablet.pointer(0.5, 0.5, 0), false, 'no driver yet: the caller falls back');
  activate();
  post(8);
  assert.equal(tablet.pointer(0.5, 1, 1), true);
  assert.deepEqual([event(0), event(1), event(2), event(3)], [
    [EV_ABS, ABS_X, Math.round(0.5 * TABLET_ABS_MAX)],
    [EV_ABS, ABS_Y, TABLET_ABS_MAX],
    [EV_KEY, BTN_LEFT, 1],
    [EV_SYN, 0, 0],
  ]);
  assert.equal(events.usedIdx(), 4);
  assert.deepEqual(events.used(3), { id: 3, len: 8 });
  assert.deepEqual(interrupt.queues, [0]);
  tablet.pointer(-3, Number.NaN, 4, -1);
  assert.deepEqual([event(4), event(5), event(6), event(7)], [
    [EV_ABS, ABS_X, 0],
    [EV_ABS, ABS_Y, 0],
    [EV_KEY, BTN_LEFT, 0],
    [EV_KEY, BTN_MIDDLE, 1],
  ]);
  post(4, 8);
  tablet.queueNotify(0);
  assert.deepEqual([event(8), event(9)], [[EV_REL, REL_WHEEL, -1], [EV_SYN, 0, 0]]);
});

test('VirtioTablet keeps events for later buffers, bounded: the oldest go, the newest position stays', () => {
  const { tablet, activate, post, event, events } = setup(256);
  activate();
  for (let i = 0; i < TABLET_PENDING_LIMIT; i++) tablet.pointer(i / (TABLET_PENDING_LIMIT - 1), 0, 0);
  assert.ok(tablet.metrics.dropped > 0);
  post(256);
  tablet.queueNotify(0);
  assert.equal(tablet.metrics.events, TABLET_PENDING_LIMIT);
  const n = events.usedIdx();
  assert.equal(n, TABLET_PENDING_LIMIT);
  assert.deepEqual([event(n - 3), event(n - 2), event(n - 1)], [[EV_ABS, ABS_X, TABLET_ABS_MAX], [EV_ABS, ABS_Y, 0], [EV_SYN, 0, 0]]);
});

test('VirtioTablet returns short event buffers empty, drains the status queue, and forgets all on reset', () => {
  const { tablet, activate, events, status, memory, event } = setup();
  activate();
  events.setDesc(0, { addr: EVENTS, len: 4, flags: VIRTQ_DESC_F_WRITE });
  events.setDesc(1, { addr: EVENTS + 8, len: 8, flags: VIRTQ_DESC_F_WRITE });
  events.publish(0, 1);
  tablet.pointer(0, 0, 0);
  assert.deepEqual(events.used(0), { id: 0, len: 0 });
  assert.deepEqual(events.used(1), { id: 1, len: 8 });
  assert.deepEqual(event(1), [EV_ABS, ABS_X, 0]);
  assert.equal(tablet.metrics.shortBuffers, 1);

  memory.write(STATUS, Uint8Array.of(0x11, 0, 0, 0, 1, 0, 0, 0));
  status.setDesc(0, { addr: STATUS, len: 8 });
  status.publish(0);
  tablet.queueNotify(1);
  assert.equal(status.usedIdx(), 1);
  assert.equal(tablet.metrics.statusBuffers, 1);

  tablet.reset();
  assert.equal(tablet.ready, false);
  assert.equal(tablet.pointer(0, 0, 0), false);
});
