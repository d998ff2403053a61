import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTIO_F_VERSION_1, VIRTIO_ID_RNG, type VirtioInterrupt } from './device.js';
import { FakeSplitQueue } from './fake-driver.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Virtqueue, type QueueError } from './queue.js';
import { VIRTIO_RNG_MAX_REQUEST_BYTES, VirtioRng } from './rng.js';

const BUF = 0x40000;

class RecordingInterrupt implements VirtioInterrupt {
  readonly queues: number[] = [];
  configs = 0;
  readonly errors: QueueError[] = [];
  notifyQueue(i: number): void {
    this.queues.push(i);
  }
  notifyConfig(): void {
    this.configs++;
  }
  queueError(_i: number, e: QueueError): void {
    this.errors.push(e);
  }
}

/** A counting "random" source, so tests can check which bytes were written. */
function counting() {
  let n = 0;
  return (buf: Uint8Array) => {
    for (let i = 0; i < buf.length; i++) buf[i] = (n++ % 255) + 1;
  };
}

function setup(options: { size?: number; memory?: GuestMemory } = {}) {
  const memory = options.memory ?? GuestMemory.anonymous(1024 * 1024);
  const layout = FakeSplitQueue.layoutAt(0x1000, options.size ?? 16);
  const driver = new FakeSplitQueue(memory, layout);
  const queue = Virtqueue.create(memory, layout, { eventIdx: false, indirect: true }) as Virtqueue;
  const interrupt = new RecordingInterrupt();
  const rng = new VirtioRng({ fill: counting() });
  return { memory, driver, queue, interrupt, rng, activate: () => rng.activate({ memory, queues: [queue], interrupt, features: VIRTIO_F_VERSION_1 }) };
}

test('VirtioRng is device type 4 with one queue, no configuration and VERSION_1', () => {
  const rng = new VirtioRng();

  assert.equal(rng.deviceType, VIRTIO_ID_RNG);
  assert.equal(rng.queueMaxSizes.length, 1);
  assert.equal(rng.configSize, 0);
  assert.ok((rng.deviceFeatures & VIRTIO_F_VERSION_1) !== 0n);
});

test('VirtioRng fills a writable buffer, returns its length as used, and interrupts', () => {
  const { memory, driver, interrupt, rng, activate } = setup();
  activate();
  driver.setDesc(0, { addr: BUF, len: 64, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);

  assert.deepEqual(driver.used(0), { id: 0, len: 64 });
  assert.equal(driver.usedIdx(), 1);
  const bytes = new Uint8Array(65);
  memory.read(BUF, bytes);
  assert.deepEqual([...bytes.subarray(0, 4)], [1, 2, 3, 4]);
  assert.equal(bytes[64], 0, 'nothing past the buffer');
  assert.deepEqual(interrupt.queues, [0]);
  assert.equal(rng.metrics.bytes, 64);
});

test('VirtioRng answers at most 64 KiB per request, across the chain\'s buffers', () => {
  const { driver, rng, activate } = setup();
  activate();
  driver.setDesc(0, { addr: BUF, len: 48 * 1024, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF + 0x10000, len: 48 * 1024, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);

  assert.equal(driver.used(0).len, VIRTIO_RNG_MAX_REQUEST_BYTES);
});

test('VirtioRng skips device-readable buffers and counts them (§5.4.6.1)', () => {
  const { driver, rng, activate } = setup();
  activate();
  driver.setDesc(0, { addr: BUF, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF + 0x100, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);

  assert.equal(driver.used(0).len, 8);
  assert.equal(rng.metrics.readableBuffers, 1);
});

test('VirtioRng takes buffers posted before activation when it is activated', () => {
  const { driver, rng, activate } = setup();
  driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);
  const before = driver.usedIdx();
  activate();

  assert.equal(before, 0, 'nothing is consumed before activation');
  assert.equal(driver.usedIdx(), 1);
});

test('VirtioRng ignores notifications after reset', () => {
  const { driver, rng, activate } = setup();
  activate();
  rng.reset();
  driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);

  assert.equal(driver.usedIdx(), 0);
});

test('VirtioRng reports a broken chain to the transport and stops', () => {
  const { driver, interrupt, rng, activate } = setup();
  activate();
  driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 0 });
  driver.publish(0);

  rng.queueNotify(0);

  assert.deepEqual(interrupt.errors.map((e) => e.error), ['CHAIN_LOOP']);
  assert.equal(driver.usedIdx(), 0);
});

test('VirtioRng fills a buffer that straddles two host chunks of guest RAM', () => {
  const memory = GuestMemory.anonymous(1024 * 1024, 64 * 1024);
  const { driver, rng, activate } = setup({ memory });
  activate();
  driver.setDesc(0, { addr: 0x20000 - 8, len: 16, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);

  const bytes = new Uint8Array(16);
  memory.read(0x20000 - 8, bytes);
  assert.equal(driver.used(0).len, 16);
  assert.ok(bytes.every((b) => b !== 0));
});

test('VirtioRng answers a queue\'s worth per turn and finishes the rest on the next one', async () => {
  const { driver, rng, activate } = setup({ size: 4 });
  activate();
  for (let i = 0; i < 4; i++) driver.setDesc(i, { addr: BUF + i * 16, len: 16, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0, 1, 2, 3);
  rng.queueNotify(0);
  driver.publish(0, 1); // the driver refills as fast as the device answers

  await tick();

  assert.equal(driver.usedIdx(), 6);
});

test('VirtioRng draws from the host CSPRNG by default', () => {
  const memory = GuestMemory.anonymous(1024 * 1024);
  const layout = FakeSplitQueue.layoutAt(0x1000, 4);
  const driver = new FakeSplitQueue(memory, layout);
  const queue = Virtqueue.create(memory, layout, { eventIdx: false, indirect: false }) as Virtqueue;
  const rng = new VirtioRng();
  rng.activate({ memory, queues: [queue], interrupt: new RecordingInterrupt(), features: VIRTIO_F_VERSION_1 });
  driver.setDesc(0, { addr: BUF, len: 4096, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  rng.queueNotify(0);

  const bytes = new Uint8Array(4096);
  memory.read(BUF, bytes);
  const distinct = new Set(bytes).size;
  assert.ok(distinct > 200, `4 KiB of random bytes take most byte values (${distinct})`);
});
