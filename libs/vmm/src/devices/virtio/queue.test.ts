import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory.js';
import { FakeSplitQueue, writeDescriptor } from './fake-driver.js';
import {
  DescriptorChain,
  VIRTQ_AVAIL_F_NO_INTERRUPT,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_INDIRECT_MAX_ENTRIES,
  Virtqueue,
  isQueueError,
  readFromChain,
  vringNeedEvent,
  writeToChain,
  type QueueError,
  type QueueOptions,
} from './queue.js';

const RAM = 1024 * 1024;
const QBASE = 0x1000;
const BUF = 0x20000;
const TABLE = 0x40000;
const PLAIN: QueueOptions = { eventIdx: false, indirect: false };
const ALL: QueueOptions = { eventIdx: true, indirect: true };

function setup(size = 16, options: QueueOptions = PLAIN, memory = GuestMemory.anonymous(RAM)) {
  const layout = FakeSplitQueue.layoutAt(QBASE, size);
  const driver = new FakeSplitQueue(memory, layout);
  const q = Virtqueue.create(memory, layout, options);
  assert.ok(!isQueueError(q), 'layout is valid');
  return { memory, driver, q: q as Virtqueue };
}

function popChain(q: Virtqueue): DescriptorChain {
  const r = q.pop();
  assert.ok(r !== undefined && !isQueueError(r), `expected a chain, got ${JSON.stringify(r)}`);
  return r as DescriptorChain;
}

function popError(q: Virtqueue): QueueError {
  const r = q.pop();
  assert.ok(isQueueError(r), `expected an error, got ${r === undefined ? 'nothing' : 'a chain'}`);
  return r as QueueError;
}

function segments(c: DescriptorChain): [number, number, boolean][] {
  const out: [number, number, boolean][] = [];
  for (let i = 0; i < c.length; i++) out.push([c.addr(i), c.len(i), c.writable(i)]);
  return out;
}

// --- creation ---

test('Virtqueue.create refuses a queue size that is not a power of two', () => {
  const memory = GuestMemory.anonymous(RAM);
  for (const size of [0, 3, 100, 65536]) {
    const r = Virtqueue.create(memory, { size, desc: QBASE, avail: 0x8000, used: 0x9000 }, PLAIN);
    assert.equal(isQueueError(r) && r.error, 'BAD_QUEUE_SIZE', `size ${size}`);
  }
});

test('Virtqueue.create refuses rings not aligned as §2.7 requires', () => {
  const memory = GuestMemory.anonymous(RAM);
  for (const [desc, avail, used] of [
    [QBASE + 8, 0x8000, 0x9000],
    [QBASE, 0x8001, 0x9000],
    [QBASE, 0x8000, 0x9002],
  ]) {
    const r = Virtqueue.create(memory, { size: 16, desc: desc!, avail: avail!, used: used! }, PLAIN);
    assert.equal(isQueueError(r) && r.error, 'RING_MISALIGNED');
  }
});

test('Virtqueue.create refuses rings outside guest RAM or straddling its end', () => {
  const memory = GuestMemory.anonymous(RAM);
  const cases = [
    { size: 16, desc: RAM, avail: 0x8000, used: 0x9000 },
    { size: 16, desc: RAM - 16 * 8, avail: 0x8000, used: 0x9000 }, // half the table past the end
    { size: 16, desc: QBASE, avail: RAM - 10, used: 0x9000 },
    { size: 16, desc: QBASE, avail: 0x8000, used: RAM - 64 },
    { size: 16, desc: 2 ** 40, avail: 0x8000, used: 0x9000 },
  ];
  for (const layout of cases) {
    const r = Virtqueue.create(memory, layout, PLAIN);
    assert.equal(isQueueError(r) && r.error, 'RING_OUT_OF_RANGE', JSON.stringify(layout));
  }
});

// --- simple chains ---

test('pop() returns nothing while the available ring is empty', () => {
  const { q } = setup();
  assert.equal(q.pop(), undefined);
});

test('pop() walks a chain of a device-readable then a device-writable buffer', () => {
  const { driver, q } = setup();
  driver.setDesc(3, { addr: BUF, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 7 });
  driver.setDesc(7, { addr: BUF + 0x100, len: 512, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(3);

  const chain = popChain(q);

  assert.equal(chain.head, 3);
  assert.deepEqual(segments(chain), [
    [BUF, 16, false],
    [BUF + 0x100, 512, true],
  ]);
  assert.equal(chain.readableBytes, 16);
  assert.equal(chain.writableBytes, 512);
  assert.equal(q.pop(), undefined, 'the ring is empty again');
});

test('pushUsed() writes the element before moving the used index', () => {
  const { driver, q } = setup();
  driver.setDesc(5, { addr: BUF, len: 64, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(5);
  const chain = popChain(q);

  q.pushUsed(chain.head, 40);

  assert.equal(driver.usedIdx(), 1);
  assert.deepEqual(driver.used(0), { id: 5, len: 40 });
});

test('rewind() gives back the last chains popped, which the next pops return again', () => {
  const { driver, q } = setup();
  for (let i = 0; i < 3; i++) driver.setDesc(i, { addr: BUF + i * 0x100, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0, 1, 2);
  q.pushUsed(popChain(q).head, 0);
  popChain(q);
  popChain(q);

  q.rewind(2);

  assert.deepEqual([popChain(q).head, popChain(q).head], [1, 2]);
  assert.equal(q.pop(), undefined);
  assert.equal(driver.usedIdx(), 1, 'the used ring is untouched');
});

test('rewind() across the 16-bit index wrap', () => {
  const memory = GuestMemory.anonymous(RAM);
  const layout = FakeSplitQueue.layoutAt(QBASE, 4);
  const driver = new FakeSplitQueue(memory, layout);
  const q = Virtqueue.create(memory, layout, PLAIN, { nextAvail: 0xffff, nextUsed: 0xffff }) as Virtqueue;
  for (let i = 0; i < 4; i++) driver.setDesc(i, { addr: BUF + i * 0x100, len: 8 });
  driver.setAvailIdx(0xffff);
  driver.publish(3, 1);
  popChain(q);
  popChain(q);

  q.rewind(2);

  assert.equal(q.nextAvail, 0xffff);
  assert.equal(popChain(q).head, 3);
});

test('rewind() refuses more chains than are in flight', () => {
  const { driver, q } = setup();
  driver.setDesc(0, { addr: BUF, len: 8 });
  driver.publish(0, 0);
  q.pushUsed(popChain(q).head, 0);
  popChain(q);

  assert.throws(() => q.rewind(2), RangeError);
  assert.throws(() => q.rewind(-1), RangeError);
  q.rewind(1);
  assert.equal(q.nextAvail, 1);
});

test('pop() takes chains in ring order across the 16-bit index wrap', () => {
  const memory = GuestMemory.anonymous(RAM);
  const layout = FakeSplitQueue.layoutAt(QBASE, 4);
  const driver = new FakeSplitQueue(memory, layout);
  const q = Virtqueue.create(memory, layout, PLAIN, { nextAvail: 0xfffe, nextUsed: 0xfffe }) as Virtqueue;
  for (let i = 0; i < 4; i++) driver.setDesc(i, { addr: BUF + i * 0x100, len: 8 });
  driver.setAvailIdx(0xfffe);
  driver.publish(2, 0, 3);

  const heads = [popChain(q).head, popChain(q).head, popChain(q).head];

  assert.deepEqual(heads, [2, 0, 3]);
  assert.equal(q.nextAvail, 1);
  assert.equal(q.pop(), undefined);
});

test('pop() tolerates zero-length descriptors and leaves them out of the chain', () => {
  const { driver, q } = setup();
  // A zero-length buffer's address is never touched, so even a bogus one does no harm.
  driver.setDesc(0, { addr: 0xdead_beef_000, len: 0, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF, len: 32, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 2 });
  driver.setDesc(2, { addr: 0, len: 0, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  const chain = popChain(q);

  assert.deepEqual(segments(chain), [[BUF, 32, true]]);
});

test('pop() accepts a chain of more than 64 KiB', () => {
  const { driver, q } = setup(16);
  for (let i = 0; i < 8; i++) {
    driver.setDesc(i, { addr: BUF + i * 0x4000, len: 0x4000, flags: VIRTQ_DESC_F_WRITE | (i < 7 ? VIRTQ_DESC_F_NEXT : 0), next: i + 1 });
  }
  driver.publish(0);

  const chain = popChain(q);

  assert.equal(chain.length, 8);
  assert.equal(chain.writableBytes, 128 * 1024);
});

test('pop() accepts a chain as long as the queue', () => {
  const size = 256;
  const { driver, q } = setup(size);
  for (let i = 0; i < size; i++) driver.setDesc(i, { addr: BUF, len: 1, flags: i < size - 1 ? VIRTQ_DESC_F_NEXT : 0, next: i + 1 });
  driver.publish(0);

  assert.equal(popChain(q).length, size);
});

// --- indirect descriptors ---

test('pop() follows an indirect table', () => {
  const { memory, driver, q } = setup(16, ALL);
  writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  writeDescriptor(memory, TABLE, 2, { addr: BUF + 0x1000, len: 4096, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 });
  writeDescriptor(memory, TABLE, 1, { addr: BUF + 0x2000, len: 1, flags: VIRTQ_DESC_F_WRITE });
  driver.setDesc(9, { addr: TABLE, len: 3 * 16, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(9);

  const chain = popChain(q);

  assert.equal(chain.head, 9);
  assert.deepEqual(segments(chain), [
    [BUF, 16, false],
    [BUF + 0x1000, 4096, true],
    [BUF + 0x2000, 1, true],
  ]);
});

test('pop() handles plain descriptors followed by an indirect one (§2.7.5.3.2)', () => {
  const { memory, driver, q } = setup(16, ALL);
  writeDescriptor(memory, TABLE, 0, { addr: BUF + 0x1000, len: 100, flags: VIRTQ_DESC_F_WRITE });
  driver.setDesc(0, { addr: BUF, len: 12, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: TABLE, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(0);

  assert.deepEqual(segments(popChain(q)), [
    [BUF, 12, false],
    [BUF + 0x1000, 100, true],
  ]);
});

test('pop() ignores the WRITE flag of the descriptor pointing at an indirect table (§2.7.5.3.2)', () => {
  const { memory, driver, q } = setup(16, ALL);
  writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 8 });
  driver.setDesc(0, { addr: TABLE, len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  assert.deepEqual(segments(popChain(q)), [[BUF, 8, false]]);
});

test('pop() refuses an indirect descriptor unless VIRTIO_F_INDIRECT_DESC was negotiated', () => {
  const { memory, driver, q } = setup(16, PLAIN);
  writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 8 });
  driver.setDesc(0, { addr: TABLE, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(0);

  assert.equal(popError(q).error, 'INDIRECT_NOT_NEGOTIATED');
});

test('pop() refuses an indirect descriptor inside an indirect table (§2.7.5.3.1)', () => {
  const { memory, driver, q } = setup(16, ALL);
  writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  writeDescriptor(memory, TABLE, 1, { addr: TABLE + 0x1000, len: 16, flags: VIRTQ_DESC_F_INDIRECT });
  writeDescriptor(memory, TABLE + 0x1000, 0, { addr: BUF, len: 8 });
  driver.setDesc(0, { addr: TABLE, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(0);

  assert.equal(popError(q).error, 'INDIRECT_NESTED');
});

test('pop() refuses INDIRECT together with NEXT (§2.7.5.3.1)', () => {
  const { memory, driver, q } = setup(16, ALL);
  writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 8 });
  driver.setDesc(0, { addr: TABLE, len: 16, flags: VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF, len: 8 });
  driver.publish(0);

  assert.equal(popError(q).error, 'INDIRECT_WITH_NEXT');
});

test('pop() refuses an indirect table of zero length or a length not a multiple of 16', () => {
  for (const len of [0, 15, 40]) {
    const { driver, q } = setup(16, ALL);
    driver.setDesc(0, { addr: TABLE, len, flags: VIRTQ_DESC_F_INDIRECT });
    driver.publish(0);
    assert.equal(popError(q).error, 'INDIRECT_BAD_LENGTH', `length ${len}`);
  }
});

test('pop() refuses an indirect table of more than 4096 entries', () => {
  const { driver, q } = setup(16, ALL);
  driver.setDesc(0, { addr: BUF, len: (VIRTQ_INDIRECT_MAX_ENTRIES + 1) * 16, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(0);

  assert.equal(popError(q).error, 'INDIRECT_TOO_LARGE');
});

test('pop() follows an indirect table of exactly 4096 entries', () => {
  const { memory, driver, q } = setup(16, ALL);
  for (let i = 0; i < VIRTQ_INDIRECT_MAX_ENTRIES; i++) {
    writeDescriptor(memory, BUF, i, { addr: TABLE, len: 1, flags: i < VIRTQ_INDIRECT_MAX_ENTRIES - 1 ? VIRTQ_DESC_F_NEXT : 0, next: i + 1 });
  }
  driver.setDesc(0, { addr: BUF, len: VIRTQ_INDIRECT_MAX_ENTRIES * 16, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(0);

  assert.equal(popChain(q).length, VIRTQ_INDIRECT_MAX_ENTRIES);
});

test('pop() refuses an indirect table outside guest RAM or straddling its end', () => {
  for (const addr of [RAM, RAM - 16, 2 ** 45]) {
    const { driver, q } = setup(16, ALL);
    driver.setDesc(0, { addr, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
    driver.publish(0);
    assert.equal(popError(q).error, 'INDIRECT_OUT_OF_RANGE', `table at 0x${addr.toString(16)}`);
  }
});

// --- hostile chains ---

test('pop() detects a descriptor that chains to itself', () => {
  const { driver, q } = setup();
  driver.setDesc(4, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 4 });
  driver.publish(4);

  assert.equal(popError(q).error, 'CHAIN_LOOP');
});

test('pop() detects a loop through several descriptors', () => {
  const { driver, q } = setup(8);
  driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  driver.setDesc(2, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  driver.publish(0);

  assert.equal(popError(q).error, 'CHAIN_LOOP');
});

test('pop() detects a loop inside an indirect table', () => {
  const { memory, driver, q } = setup(16, ALL);
  writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  writeDescriptor(memory, TABLE, 1, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0 });
  driver.setDesc(0, { addr: TABLE, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
  driver.publish(0);

  assert.equal(popError(q).error, 'CHAIN_LOOP');
});

test('pop() refuses a head or next index beyond the table', () => {
  {
    const { driver, q } = setup(8);
    driver.publish(8);
    assert.equal(popError(q).error, 'DESC_INDEX_OUT_OF_RANGE', 'head');
  }
  {
    const { driver, q } = setup(8);
    driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 0xffff });
    driver.publish(0);
    assert.equal(popError(q).error, 'DESC_INDEX_OUT_OF_RANGE', 'next');
  }
  {
    const { memory, driver, q } = setup(8, ALL);
    writeDescriptor(memory, TABLE, 0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_NEXT, next: 2 });
    driver.setDesc(0, { addr: TABLE, len: 32, flags: VIRTQ_DESC_F_INDIRECT });
    driver.publish(0);
    assert.equal(popError(q).error, 'DESC_INDEX_OUT_OF_RANGE', 'next inside an indirect table');
  }
});

test('pop() refuses buffers outside guest RAM, straddling its end, or of huge length', () => {
  const cases = [
    { addr: RAM, len: 1 },
    { addr: RAM - 8, len: 16 },
    { addr: BUF, len: 0xffffffff },
    { addr: 2 ** 53 + 4096, len: 16 }, // not a safe integer
    { addr: 0xffff_ffff_ffff_f000, len: 16 }, // wraps around 2^64
    { addr: 0xc000_0000, len: 16 }, // the MMIO hole, not RAM
  ];
  for (const d of cases) {
    const { driver, q } = setup();
    driver.setDesc(0, { ...d, flags: VIRTQ_DESC_F_WRITE });
    driver.publish(0);
    assert.equal(popError(q).error, 'BUFFER_OUT_OF_RANGE', JSON.stringify(d));
  }
});

test('pop() refuses a chain whose bytes add up past the 2^32 - 1 cap', () => {
  // 4097 descriptors of 1 MiB each, all over the same RAM: each alone is valid.
  const memory = GuestMemory.anonymous(4 * 1024 * 1024);
  const size = 8192;
  const layout = FakeSplitQueue.layoutAt(2 * 1024 * 1024, size);
  const driver = new FakeSplitQueue(memory, layout);
  const q = Virtqueue.create(memory, layout, PLAIN) as Virtqueue;
  for (let i = 0; i < 4097; i++) driver.setDesc(i, { addr: 0, len: 1024 * 1024, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: i + 1 });
  driver.setDesc(4097, { addr: 0, len: 1, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);

  assert.equal(popError(q).error, 'CHAIN_TOO_LARGE');
});

test('pop() refuses a chain past a device-chosen byte cap', () => {
  const memory = GuestMemory.anonymous(RAM);
  const layout = FakeSplitQueue.layoutAt(QBASE, 16);
  const driver = new FakeSplitQueue(memory, layout);
  const q = Virtqueue.create(memory, layout, { ...PLAIN, maxChainBytes: 64 * 1024 }) as Virtqueue;
  for (let i = 0; i < 5; i++) driver.setDesc(i, { addr: BUF, len: 16 * 1024, flags: VIRTQ_DESC_F_NEXT, next: i + 1 });
  driver.setDesc(5, { addr: BUF, len: 1 });
  driver.publish(0);

  assert.equal(popError(q).error, 'CHAIN_TOO_LARGE');
});

test('pop() refuses a device-readable buffer after a device-writable one (§2.7.4.2)', () => {
  const { driver, q } = setup();
  driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF, len: 8 });
  driver.publish(0);

  assert.equal(popError(q).error, 'READABLE_AFTER_WRITABLE');
});

test('pop() refuses an available index more than the queue size ahead, and stays broken', () => {
  const { driver, q } = setup(8);
  driver.setDesc(0, { addr: BUF, len: 8 });
  driver.setAvailIdx(9);

  const first = popError(q);
  driver.setAvailIdx(1);
  const second = popError(q);

  assert.equal(first.error, 'AVAIL_IDX_JUMP');
  assert.equal(second, first, 'a broken queue keeps its error');
  assert.equal(q.broken, first);
});

test('pop() takes a full ring: an index exactly the queue size ahead', () => {
  const { driver, q } = setup(4);
  for (let i = 0; i < 4; i++) driver.setDesc(i, { addr: BUF, len: 8 });
  driver.publish(0, 1, 2, 3);

  for (let i = 0; i < 4; i++) assert.equal(popChain(q).head, i);
  assert.equal(q.pop(), undefined);
});

test('a queue whose rings straddle a host chunk boundary works through the copying path', () => {
  // 64 KiB chunks: put the descriptor table across the first boundary.
  const memory = GuestMemory.anonymous(RAM, 64 * 1024);
  const layout = FakeSplitQueue.layoutAt(0x10000 - 0x80, 16);
  const driver = new FakeSplitQueue(memory, layout);
  const q = Virtqueue.create(memory, layout, ALL) as Virtqueue;
  driver.setDesc(15, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(15);

  const chain = popChain(q);
  q.pushUsed(chain.head, 8);

  assert.equal(chain.head, 15);
  assert.deepEqual(driver.used(0), { id: 15, len: 8 });
  assert.equal(driver.availEvent(), 1);
});

// --- notification suppression ---

test('vringNeedEvent() says whether the used index passed the event index, across the wrap', () => {
  assert.equal(vringNeedEvent(0, 1, 0), true);
  assert.equal(vringNeedEvent(5, 5, 0), false, 'event 5 is reached when idx goes past it');
  assert.equal(vringNeedEvent(5, 6, 0), true);
  assert.equal(vringNeedEvent(5, 10, 6), false, 'already passed before old');
  assert.equal(vringNeedEvent(0xffff, 1, 0xfffe), true, 'wraps');
  assert.equal(vringNeedEvent(2, 1, 0xfffe), false);
});

test('without EVENT_IDX the device interrupts unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT', () => {
  const { driver, q } = setup();
  driver.setDesc(0, { addr: BUF, len: 8 });
  driver.publish(0);
  q.pushUsed(popChain(q).head, 0);
  assert.equal(q.needsNotification(), true);
  assert.equal(q.needsNotification(), false, 'nothing new was used since');

  driver.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  driver.publish(0);
  q.pushUsed(popChain(q).head, 0);
  assert.equal(q.needsNotification(), false);
});

test('with EVENT_IDX the device interrupts only when the used index passes used_event', () => {
  const { driver, q } = setup(16, ALL);
  for (let i = 0; i < 8; i++) driver.setDesc(i, { addr: BUF, len: 8 });
  driver.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT); // ignored with EVENT_IDX (§2.7.7.2)
  driver.setUsedEvent(2); // "interrupt me when entry 2 is used"
  driver.publish(0, 1, 2, 3);
  const decisions: boolean[] = [];

  for (let i = 0; i < 4; i++) {
    q.pushUsed(popChain(q).head, 0);
    decisions.push(q.needsNotification());
  }

  assert.deepEqual(decisions, [false, false, true, false]);
});

test('with EVENT_IDX a batch of used buffers interrupts once if it passed used_event', () => {
  const { driver, q } = setup(16, ALL);
  for (let i = 0; i < 8; i++) driver.setDesc(i, { addr: BUF, len: 8 });
  driver.setUsedEvent(1);
  driver.publish(0, 1, 2);

  for (let i = 0; i < 3; i++) q.pushUsed(popChain(q).head, 0);

  assert.equal(q.needsNotification(), true);
  assert.equal(q.needsNotification(), false);
});

test('with EVENT_IDX pop() publishes avail_event so the driver notifies at the next entry', () => {
  const { driver, q } = setup(16, ALL);
  driver.setDesc(0, { addr: BUF, len: 8 });
  driver.publish(0, 0);

  popChain(q);
  assert.equal(driver.availEvent(), 1);
  popChain(q);
  assert.equal(driver.availEvent(), 2);
  assert.equal(q.pop(), undefined);
  assert.equal(driver.availEvent(), 2, 'an empty ring asks for the next entry');
});

test('a queue resumed from a snapshot continues at its saved indices and interrupts once', () => {
  const { memory, driver, q } = setup(16, ALL);
  for (let i = 0; i < 4; i++) driver.setDesc(i, { addr: BUF, len: 8 });
  driver.publish(0, 1);
  q.pushUsed(popChain(q).head, 1);
  const saved = q.save();

  const resumed = Virtqueue.create(memory, q.layout, ALL, saved) as Virtqueue;
  const chain = popChain(resumed);
  resumed.pushUsed(chain.head, 2);

  assert.deepEqual(saved, { nextAvail: 1, nextUsed: 1 });
  assert.equal(chain.head, 1);
  assert.deepEqual(driver.used(1), { id: 1, len: 2 });
  assert.equal(resumed.needsNotification(), true, 'unknown driver state: interrupt');
});

// --- chain helpers ---

test('a cloned chain survives the next pop', () => {
  const { driver, q } = setup();
  driver.setDesc(0, { addr: BUF, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.setDesc(1, { addr: BUF + 64, len: 16 });
  driver.publish(0, 1);

  const kept = popChain(q).clone();
  popChain(q);

  assert.equal(kept.head, 0);
  assert.deepEqual(segments(kept), [[BUF, 8, true]]);
});

test('writeToChain() and readFromChain() copy across a chain\'s buffers in order', () => {
  const { memory, driver, q } = setup();
  memory.write(BUF, Uint8Array.of(1, 2, 3));
  memory.write(BUF + 0x100, Uint8Array.of(4, 5));
  driver.setDesc(0, { addr: BUF, len: 3, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  driver.setDesc(1, { addr: BUF + 0x100, len: 2, flags: VIRTQ_DESC_F_NEXT, next: 2 });
  driver.setDesc(2, { addr: BUF + 0x200, len: 2, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 3 });
  driver.setDesc(3, { addr: BUF + 0x300, len: 4, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0);
  const chain = popChain(q);

  const header = new Uint8Array(8);
  const read = readFromChain(memory, chain, header);
  const written = writeToChain(memory, chain, Uint8Array.of(9, 8, 7, 6, 5, 4, 3), 1);

  assert.equal(read, 5);
  assert.deepEqual([...header.subarray(0, 5)], [1, 2, 3, 4, 5]);
  assert.equal(written, 5, 'six writable bytes, one skipped');
  const out = new Uint8Array(2);
  memory.read(BUF + 0x200, out);
  assert.deepEqual([...out], [0, 9]);
  const out2 = new Uint8Array(4);
  memory.read(BUF + 0x300, out2);
  assert.deepEqual([...out2], [8, 7, 6, 5]);
});

test('setNotification(false) sets VIRTQ_USED_F_NO_NOTIFY in the used flags, and true clears it', () => {
  const { memory, driver, q } = setup();

  q.setNotification(false);
  const off = memory.readU16(driver.layout.used);
  q.setNotification(true);

  assert.equal(off, 1);
  assert.equal(memory.readU16(driver.layout.used), 0);
});

test('with EVENT_IDX and notifications off, pops leave avail_event behind; turning them on moves it to the next entry', () => {
  const { driver, q } = setup(16, ALL);
  for (let i = 0; i < 3; i++) driver.setDesc(i, { addr: BUF + i * 0x100, len: 8, flags: VIRTQ_DESC_F_WRITE });
  driver.publish(0, 1, 2);
  popChain(q);

  q.setNotification(false);
  popChain(q);
  popChain(q);
  const whileOff = driver.availEvent();
  q.setNotification(true);

  assert.equal(whileOff, 1, 'where the last pop with notifications on left it');
  assert.equal(driver.availEvent(), 3);
});
