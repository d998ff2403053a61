/**
 * Random descriptor tables, indirect tables and rings, thousands of times over: the queue
 * must never throw (GuestMemory throws on any access outside RAM, so no exception also
 * means no access outside it), every chain it hands out must lie in RAM, and the work per
 * pop must stay within its bounds. The generator is seeded, so a failure reproduces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory.js';
import { FakeSplitQueue, writeDescriptor } from './fake-driver.js';
import {
  VIRTQ_CHAIN_MAX_BYTES,
  VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE,
  VIRTQ_INDIRECT_MAX_ENTRIES,
  Virtqueue,
  isQueueError,
} from './queue.js';
import { xorshift32 } from '../../testing/xorshift.js';

const RAM = 256 * 1024;
const ITERATIONS = 4000;

test('random queues never make pop(), pushUsed() or needsNotification() throw, and chains stay in RAM', () => {
  const next = xorshift32(0x5eed1234);
  const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
  // Small chunks, so some rings and tables straddle a chunk edge and take the copying path.
  const memory = GuestMemory.anonymous(RAM, 64 * 1024);
  const addresses = () =>
    pick([
      next() % RAM, // anywhere in RAM
      RAM - (next() % 64), // at the very end
      RAM + (next() % 4096), // just past it
      next() * 0x1000, // somewhere in 32 bits
      2 ** 52 + next(), // far away
    ]);
  const lengths = () => pick([0, 1, 16, next() % 4096, next() % RAM, 0xffffffff, (next() % 300) * 16]);
  let chains = 0;
  let errors = 0;
  const errorKinds = new Set<string>();

  for (let it = 0; it < ITERATIONS; it++) {
    const size = 1 << next() % 9; // 1..256
    const base = (next() % (RAM / 2)) & ~0xf;
    const layout = FakeSplitQueue.layoutAt(base, size);
    const eventIdx = (next() & 1) === 1;
    const indirect = (next() & 1) === 1;
    const q = Virtqueue.create(memory, layout, { eventIdx, indirect });
    if (isQueueError(q)) {
      errors++;
      continue;
    }
    // Garbage everywhere the queue looks: descriptors, rings, and a few indirect tables.
    for (let i = 0; i < size; i++) {
      writeDescriptor(memory, layout.desc, i, { addr: addresses(), len: lengths(), flags: next() & 0xffff & (next() & 1 ? 0x7 : 0xffff), next: next() % (size + 2) });
    }
    for (let t = 0; t < 3; t++) {
      const table = (next() % (RAM - 0x2000)) & ~0xf;
      const entries = 1 + (next() % 64);
      for (let i = 0; i < entries; i++) {
        writeDescriptor(memory, table, i, { addr: addresses(), len: lengths(), flags: next() & 0x7, next: next() % (entries + 1) });
      }
      // Point some direct descriptors at it.
      writeDescriptor(memory, layout.desc, next() % size, {
        addr: table,
        len: pick([entries * 16, 0, 7, (VIRTQ_INDIRECT_MAX_ENTRIES + 1) * 16]),
        flags: VIRTQ_DESC_F_INDIRECT | (next() & VIRTQ_DESC_F_WRITE) | (next() % 8 === 0 ? VIRTQ_DESC_F_NEXT : 0),
      });
    }
    for (let i = 0; i < size; i++) memory.writeU16(layout.avail + 4 + 2 * i, next() % (size + 1));
    memory.writeU16(layout.avail, next() & 0xffff);
    memory.writeU16(layout.avail + 2, pick([next() & 0xffff, next() % (size + 1)]));
    memory.writeU16(layout.avail + 4 + 2 * size, next() & 0xffff);

    // Pop until empty or broken: never more than `size` chains (the index check).
    let pops = 0;
    for (;;) {
      const r = q.pop();
      if (r === undefined) break;
      if (isQueueError(r)) {
        errors++;
        errorKinds.add(r.error);
        break;
      }
      chains++;
      pops++;
      assert.ok(pops <= size, 'no more chains than the queue holds');
      assert.ok(r.length <= size + VIRTQ_INDIRECT_MAX_ENTRIES, 'segments are bounded');
      assert.ok(r.readableBytes + r.writableBytes <= VIRTQ_CHAIN_MAX_BYTES);
      for (let i = 0; i < r.length; i++) {
        assert.ok(memory.contains(r.addr(i), r.len(i)), `segment ${i} lies in RAM`);
      }
      q.pushUsed(r.head, next() % 1024);
      q.needsNotification();
    }
  }

  // The generator must reach both outcomes, or it tests nothing.
  assert.ok(chains > 100, `some chains were valid (${chains})`);
  assert.ok(errors > 100, `some inputs were refused (${errors})`);
  for (const kind of ['CHAIN_LOOP', 'BUFFER_OUT_OF_RANGE', 'DESC_INDEX_OUT_OF_RANGE', 'AVAIL_IDX_JUMP']) {
    assert.ok(errorKinds.has(kind), `the fuzzer reached ${kind} (saw ${[...errorKinds].join(', ')})`);
  }
});
