/**
 * Random virtio-blk requests, thousands of times over, through the parser: it must never
 * throw (GuestMemory throws on any access outside RAM, so no exception also means no access
 * outside it), and whatever it hands to the disk must be inside the disk, inside guest RAM
 * and within the advertised limits. The generator is seeded, so a failure reproduces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GuestMemory } from '../../memory/guest-memory.js';
import { FakeSplitQueue } from './fake-driver.js';
import { isQueueError, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Virtqueue } from './queue.js';
import { IO_OP_DISCARD, IO_OP_READ, IO_OP_WRITE, IO_OP_WRITE_ZEROES } from './disk/raw.js';
import {
  BLK_ANSWER,
  BLK_GET_ID,
  BLK_NO_STATUS,
  BLK_SUBMIT,
  BlkRequest,
  parseBlkRequest,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  type BlkLimits,
} from './blk.js';
import { xorshift32 } from '../../testing/xorshift.js';

const RAM = 512 * 1024;
const ITERATIONS = 5000;

test('random requests never make parseBlkRequest throw, and what it submits stays in the disk, in RAM and in limits', () => {
  const next = xorshift32(0xb10cb10c);
  const pick = <T>(xs: readonly T[]): T => xs[next() % xs.length]!;
  const memory = GuestMemory.anonymous(RAM, 128 * 1024);
  const layout = FakeSplitQueue.layoutAt(0, 16);
  const limits: BlkLimits = { capacity: 4096, readOnly: false, segMax: 8, maxDataBytes: 8 * 4096, discard: true, writeZeroes: true, writeThrough: false, maxRangeSegments: 4 };
  const segs = new Float64Array(2 * 8);
  const out = new BlkRequest();
  const verdicts = new Map<number, number>();
  const ops = new Set<number>();
  const heap = 0x1000;

  for (let it = 0; it < ITERATIONS; it++) {
    limits.readOnly = (next() & 7) === 0;
    limits.discard = (next() & 3) !== 0;
    // Random bytes where headers and range segments will be read, or (one time in three)
    // values a driver would use.
    const plausible = next() % 3 === 0;
    const header = new Uint8Array(16 + 16 * 6);
    const dv = new DataView(header.buffer);
    for (let i = 0; i < header.length; i++) header[i] = next() & 0xff;
    dv.setUint32(0, pick([0, 1, 4, 8, 10, 11, 13, 14, next()]), true);
    if (plausible || next() & 1) dv.setBigUint64(8, BigInt(next() % 5000), true);
    for (let k = 0; k < 6; k++) {
      if (plausible || next() & 1) dv.setBigUint64(16 + 16 * k, BigInt(next() % 5000), true);
      if (plausible || next() & 1) dv.setUint32(16 + 16 * k + 8, next() % 300, true);
      if (plausible || next() & 1) dv.setUint32(16 + 16 * k + 12, pick([0, 0, 0, 1, 2]), true);
    }
    memory.write(heap, header);
    // A chain of buffers: readable ones (the first ones over the header bytes), then
    // writable ones; random lengths, or (one time in three) lengths a driver would use.
    const driver = new FakeSplitQueue(memory, layout);
    const lens: number[] = [];
    let firstWritable: number;
    if (plausible) {
      lens.push(...pick([[16], [8, 8], [16, 512 * (1 + (next() % 4))], [16, 16 * (1 + (next() % 5))], [32]]));
      firstWritable = lens.length;
      for (let k = next() % 3; k > 0; k--) lens.push(512 * (1 + (next() % 4)));
      lens.push(pick([1, 1, 20, 21, 513]));
    } else {
      const n = 1 + (next() % 12);
      for (let i = 0; i < n; i++) lens.push(pick([0, 1, 8, 15, 16, 17, 32, 512, 513, 1024, next() % 4096]));
      firstWritable = next() % (n + 1);
    }
    let at = heap;
    lens.forEach((len, i) => {
      const addr = i < 3 && i < firstWritable ? at : 0x10000 + (next() % (RAM - 0x20000));
      at += len;
      driver.setDesc(i, { addr, len, flags: (i >= firstWritable ? VIRTQ_DESC_F_WRITE : 0) | (i < lens.length - 1 ? VIRTQ_DESC_F_NEXT : 0), next: i + 1 });
    });
    driver.publish(0);
    const q = Virtqueue.create(memory, layout, { eventIdx: false, indirect: false });
    assert.ok(!isQueueError(q));
    const chain = q.pop();
    if (chain === undefined || isQueueError(chain)) continue;

    parseBlkRequest(memory, chain, limits, segs, out);

    verdicts.set(out.verdict, (verdicts.get(out.verdict) ?? 0) + 1);
    if (out.verdict === BLK_NO_STATUS) {
      assert.equal(chain.writableBytes, 0);
      continue;
    }
    assert.ok(memory.contains(out.statusAddr, 1), 'the status byte is in RAM');
    assert.equal(out.usedLen, chain.writableBytes);
    if (out.verdict === BLK_ANSWER) assert.ok([VIRTIO_BLK_S_OK, VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_UNSUPP].includes(out.status));
    if (out.verdict === BLK_GET_ID) assert.ok(out.bytes >= 1 && out.bytes <= 20 && out.bytes < chain.writableBytes);
    if (out.verdict !== BLK_SUBMIT) continue;
    const op = out.op & 0xff;
    ops.add(op);
    if (op === IO_OP_READ || op === IO_OP_WRITE) {
      assert.ok(!limits.readOnly || op === IO_OP_READ, 'no write on a read-only disk');
      assert.ok(out.nseg >= 1 && out.nseg <= limits.segMax);
      let total = 0;
      for (let s = 0; s < out.nseg; s++) {
        // GuestMemory.anonymous maps gpa 0.. at host offset 0..: a host offset is an address.
        assert.ok(memory.contains(segs[2 * s]!, segs[2 * s + 1]!), 'every segment is guest RAM');
        total += segs[2 * s + 1]!;
      }
      assert.equal(total, out.bytes);
      assert.equal(total % 512, 0);
      assert.ok(out.offset >= 0 && out.offset + total <= limits.capacity * 512, 'inside the disk');
    } else if (op === IO_OP_DISCARD || op === IO_OP_WRITE_ZEROES) {
      assert.ok(!limits.readOnly);
      assert.ok(out.nseg >= 1 && out.nseg <= limits.maxRangeSegments);
      for (let s = 0; s < out.nseg; s++) assert.ok(segs[2 * s]! + segs[2 * s + 1]! <= limits.capacity * 512, 'inside the disk');
    }
  }
  // The generator reaches every verdict, so the checks above ran.
  for (const v of [BLK_NO_STATUS, BLK_ANSWER, BLK_SUBMIT, BLK_GET_ID]) assert.ok((verdicts.get(v) ?? 0) > 0, `verdict ${v} reached (${JSON.stringify([...verdicts])})`);
  for (const op of [IO_OP_READ, IO_OP_WRITE, IO_OP_DISCARD, IO_OP_WRITE_ZEROES]) assert.ok(ops.has(op), `op ${op} submitted`);
});
