// io_uring through the addon: a ring's mappings, SQEs written and CQEs read in place by JS,
// ioUringEnter/ioUringWait results as -errno, the eventfd, and memory named by address.
// Needs no /dev/kvm.
import assert from 'node:assert/strict';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';

import {
  arrayBufferAddress, closeFd, eventfd, eventfdRead, ioUringConstants as U, ioUringEnter, ioUringRegisterEventfd,
  ioUringSetup, ioUringWait, mmapAnonymous, type IoUring,
} from '@vmctl/kvm-native';

const ETIME = 62;

/** Queues one SQE (16 words) at the SQ tail and returns the new tail. */
function queue(r: IoUring, f: { opcode: number; fd: number; off?: number; addr?: number; len?: number; opFlags?: number; tag: number }): void {
  const sq = new Uint32Array(r.sq);
  const sqe = new Uint32Array(r.sqes);
  const tail = sq[r.sqOff.tail / 4]!;
  const slot = tail & sq[r.sqOff.ringMask / 4]!;
  sq[r.sqOff.array / 4 + slot] = slot;
  const w = slot * (U.SQE_SIZE / 4);
  sqe.fill(0, w, w + U.SQE_SIZE / 4);
  sqe[w + U.SQE_OPCODE / 4] = f.opcode;
  sqe[w + U.SQE_FD / 4] = f.fd;
  sqe[w + U.SQE_OFF / 4] = f.off ?? 0;
  sqe[w + U.SQE_ADDR / 4] = (f.addr ?? 0) >>> 0;
  sqe[w + U.SQE_ADDR / 4 + 1] = Math.floor((f.addr ?? 0) / 2 ** 32);
  sqe[w + U.SQE_LEN / 4] = f.len ?? 0;
  sqe[w + U.SQE_OP_FLAGS / 4] = f.opFlags ?? 0;
  sqe[w + U.SQE_USER_DATA / 4] = f.tag;
  Atomics.store(sq, r.sqOff.tail / 4, tail + 1);
}

function reap(r: IoUring): [number, number][] {
  const cq = new Uint32Array(r.cq);
  const cqi = new Int32Array(r.cq);
  const out: [number, number][] = [];
  let head = cq[r.cqOff.head / 4]!;
  const tail = Atomics.load(cq, r.cqOff.tail / 4);
  const mask = cq[r.cqOff.ringMask / 4]!;
  for (; head !== tail; head = (head + 1) >>> 0) {
    const w = (r.cqOff.cqes + (head & mask) * U.CQE_SIZE) / 4;
    out.push([cq[w + U.CQE_USER_DATA / 4]!, cqi[w + U.CQE_RES / 4]!]);
  }
  Atomics.store(cq, r.cqOff.head / 4, head);
  return out;
}

describe('io_uring', () => {
  it('ioUringSetup maps the rings: entries, masks and the features the kernel has', () => {
    const r = ioUringSetup(8, 32);
    try {
      const sq = new Uint32Array(r.sq);
      const cq = new Uint32Array(r.cq);
      assert.equal(r.sqEntries, 8);
      assert.equal(r.cqEntries, 32);
      assert.equal(sq[r.sqOff.ringEntries / 4], 8);
      assert.equal(cq[r.cqOff.ringMask / 4], 31);
      assert.equal(r.sqes.byteLength, 8 * U.SQE_SIZE);
      assert.ok((r.features & U.IORING_FEAT_SUBMIT_STABLE) !== 0);
    } finally {
      closeFd(r.fd);
    }
  });

  it('a READ into memory named by address completes inside ioUringEnter, with its result in the CQE', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmctl-uring-'));
    const r = ioUringSetup(8);
    const efd = eventfd();
    try {
      writeFileSync(join(dir, 'f'), Buffer.from('hello, io_uring'));
      const fd = openSync(join(dir, 'f'), 'r');
      const mem = mmapAnonymous(4096);
      ioUringRegisterEventfd(r.fd, efd);
      queue(r, { opcode: U.IORING_OP_READ, fd, off: 7, addr: Number(mem.address) + 100, len: 64, tag: 42 });
      queue(r, { opcode: U.IORING_OP_NOP, fd: 0, tag: 43 });

      const submitted = ioUringEnter(r.fd, 2, 0, 0);
      const cqes = reap(r);

      assert.equal(submitted, 2);
      assert.deepEqual(cqes, [[42, 8], [43, 0]]);
      assert.equal(Buffer.from(mem.buffer, 100, 8).toString(), 'io_uring');
      assert.ok(eventfdRead(efd) > 0n, 'the eventfd was signalled');
      assert.equal(arrayBufferAddress(mem.buffer), Number(mem.address));
      closeSync(fd);
    } finally {
      closeFd(efd);
      closeFd(r.fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a WRITE from a plain ArrayBuffer by its address reaches the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'vmctl-uring-'));
    const r = ioUringSetup(4);
    try {
      const fd = openSync(join(dir, 'f'), 'w+');
      const buf = new TextEncoder().encode('from JS memory').buffer as ArrayBuffer;
      queue(r, { opcode: U.IORING_OP_WRITE, fd, addr: arrayBufferAddress(buf), len: buf.byteLength, tag: 1 });

      ioUringEnter(r.fd, 1, 1, U.IORING_ENTER_GETEVENTS);

      assert.deepEqual(reap(r), [[1, 14]]);
      assert.equal(readFileSync(join(dir, 'f'), 'utf8'), 'from JS memory');
      closeSync(fd);
    } finally {
      closeFd(r.fd);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ioUringWait times out with -ETIME and ioUringEnter reports a bad fd as -EBADF, neither throws', () => {
    const r = ioUringSetup(4);
    try {
      const t0 = Date.now();
      assert.equal(ioUringWait(r.fd, 1, 50), -ETIME);
      assert.ok(Date.now() - t0 >= 40);
      assert.equal(ioUringEnter(123456, 0, 0, 0), -9);
    } finally {
      closeFd(r.fd);
    }
  });

  it('mmapAnonymous refuses sizes that are not whole pages', () => {
    assert.throws(() => mmapAnonymous(100), RangeError);
    assert.throws(() => mmapAnonymous(0), RangeError);
  });
});
