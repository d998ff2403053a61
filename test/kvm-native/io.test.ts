// Zero-copy scatter/gather I/O into guest RAM views and ordinary typed arrays: readv/writev
// (non-blocking: -1 for EAGAIN), preadv/pwritev, fdatasync, fallocate. No /dev/kvm needed:
// guest RAM is an anonymous mapping of the addon's.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync, constants as F, fstatSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';

import {
  KvmError, constants as C, eventfd, closeFd, fallocate, fdatasync, mmapGuestRam, munmapGuestRam, preadv, pwritev,
  readv, viewGuestRam, writev, type GuestRam,
} from '@vmctl/kvm-native';

const KiB = 1024;

let dir: string;
let ram: GuestRam;
let chunk0: Uint8Array;
let chunk1: Uint8Array;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'vmctl-io-'));
  ram = mmapGuestRam(128 * KiB, 64 * KiB); // two chunks: I/O can span their boundary
  chunk0 = new Uint8Array(ram.chunks[0]);
  chunk1 = new Uint8Array(ram.chunks[1]);
});
after(() => {
  munmapGuestRam(ram.address);
  rmSync(dir, { recursive: true, force: true });
});

function pattern(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

let fifoCount = 0;
/** Both ends of a new FIFO (a pipe), non-blocking. */
function pipe(): { r: number; w: number; close(): void } {
  const path = join(dir, `fifo${fifoCount++}`);
  execFileSync('mkfifo', [path]);
  const r = openSync(path, F.O_RDONLY | F.O_NONBLOCK);
  const w = openSync(path, F.O_WRONLY | F.O_NONBLOCK);
  return { r, w, close() { closeSync(r); closeSync(w); } };
}

describe('pwritev() / preadv()', () => {
  it('write guest RAM views (across a chunk boundary) to a file and read them back, in place', () => {
    // Three buffers: the end of chunk 0, the start of chunk 1, and an ordinary Uint8Array.
    const a = chunk0.subarray(64 * KiB - 1000);
    const b = chunk1.subarray(0, 3000);
    const c = pattern(500, 9);
    a.set(pattern(a.length, 1));
    b.set(pattern(b.length, 2));
    const expected = concat([a, b, c]);

    const path = join(dir, 'disk.img');
    writeFileSync(path, new Uint8Array(16 * KiB).fill(0xee));
    const fd = openSync(path, 'r+');
    assert.equal(pwritev(fd, [a, b, c], 4096), 4500);
    fdatasync(fd);
    const file = readFileSync(path);
    assert.deepEqual(new Uint8Array(file.subarray(4096, 4096 + 4500)), expected);
    assert.equal(file[4095], 0xee, 'nothing before the offset was touched');
    assert.equal(file[4096 + 4500], 0xee, 'nothing after the data was touched');

    // Read back scattered into other guest RAM, at an odd offset, and a DataView.
    const into0 = chunk0.subarray(7, 7 + 1234);
    const into1 = chunk1.subarray(40 * KiB, 40 * KiB + 3000);
    const tail = new DataView(new ArrayBuffer(300), 20, 266);
    into0.fill(0);
    into1.fill(0);
    assert.equal(preadv(fd, [into0, into1, tail], 4096n), 4500);
    assert.deepEqual(concat([into0, into1, new Uint8Array(tail.buffer, 20, 266)]), expected);

    // The bytes landed in the mapping itself: another view of it (viewGuestRam) sees them.
    const again = new Uint8Array(viewGuestRam(ram.address).chunks[1]);
    assert.deepEqual(again.subarray(40 * KiB, 40 * KiB + 3000), expected.subarray(1234, 4234));

    // At end of file a read is short, and past it 0.
    assert.equal(preadv(fd, [new Uint8Array(8192)], 16 * KiB - 100), 100);
    assert.equal(preadv(fd, [new Uint8Array(10)], 1 << 30), 0);
    closeSync(fd);
  });

  it('takes any ArrayBufferView, counts its bytes, and treats a detached one as empty', () => {
    const path = join(dir, 'views.img');
    writeFileSync(path, '');
    const fd = openSync(path, 'r+');
    const words = new Uint32Array([0x04030201, 0x08070605]);
    assert.equal(pwritev(fd, [words, new Uint8Array(0)], 0), 8);
    assert.deepEqual([...readFileSync(path)], [1, 2, 3, 4, 5, 6, 7, 8]);

    const scratch = mmapGuestRam(64 * KiB);
    const view = new Uint8Array(scratch.chunks[0], 100, 4);
    munmapGuestRam(scratch.address); // detaches this thread's views
    assert.equal(view.byteLength, 0);
    assert.equal(preadv(fd, [view], 0), 0, 'a zero-length iovec, not the unmapped memory');
    closeSync(fd);
  });
});

describe('readv() / writev()', () => {
  it('move bytes through a non-blocking pipe, straight from and into guest RAM, -1 when it would block', () => {
    const p = pipe();
    try {
      assert.equal(readv(p.r, [chunk0.subarray(0, 100)]), -1, 'empty pipe: EAGAIN is -1');
      const src = [chunk1.subarray(1000, 1100), new Uint8Array([1, 2, 3]), chunk0.subarray(60 * KiB)];
      src[0].set(pattern(100, 5));
      src[2].set(pattern(src[2].length, 6));
      const total = 100 + 3 + 4 * KiB;
      assert.equal(writev(p.w, src), total);

      const dst = [chunk1.subarray(5000, 5050), chunk0.subarray(200, 200 + total - 50)];
      assert.equal(readv(p.r, dst), total);
      assert.deepEqual(concat(dst), concat(src));
      assert.equal(readv(p.r, dst), -1);

      // A full pipe: writev is short, then -1.
      const big = new Uint8Array(48 * KiB);
      let written = 0;
      let n: number;
      let calls = 0;
      while ((n = writev(p.w, [big, big])) !== -1) { written += n; calls++; }
      assert.ok(written >= 64 * KiB && calls >= 1, `the pipe took ${written} bytes`);
      let read = 0;
      while ((n = readv(p.r, [big])) !== -1) read += n;
      assert.equal(read, written);
    } finally {
      p.close();
    }
    // End of file (the write end closed) reads as 0, not -1.
    const q = pipe();
    closeSync(q.w);
    assert.equal(readv(q.r, [new Uint8Array(10)]), 0);
    closeSync(q.r);
  });

  it('reads an eventfd\'s counter into a guest RAM view (a device can skip eventfdRead)', () => {
    const fd = eventfd();
    const counter = new BigUint64Array(ram.chunks[0], 512, 1);
    assert.equal(writev(fd, [new Uint8Array(new BigUint64Array([42n]).buffer)]), 8);
    assert.equal(readv(fd, [counter]), 8);
    assert.equal(counter[0], 42n);
    assert.equal(readv(fd, [counter]), -1);
    closeFd(fd);
  });

  it('accepts up to IOV_MAX buffers and refuses more with a RangeError before any I/O', () => {
    assert.equal(C.IOV_MAX, 1024);
    const p = pipe();
    try {
      const one = Array.from({ length: C.IOV_MAX }, (_, i) => chunk0.subarray(i, i + 1));
      assert.equal(writev(p.w, one), C.IOV_MAX);
      const tooMany = [...one, chunk0.subarray(0, 1)];
      for (const f of [() => writev(p.w, tooMany), () => readv(p.r, tooMany), () => preadv(p.r, tooMany, 0),
        () => pwritev(p.w, tooMany, 0)]) {
        assert.throws(f, (e: unknown) => e instanceof RangeError && /1025 buffers, more than IOV_MAX \(1024\)/.test(e.message));
      }
      assert.equal(readv(p.r, [new Uint8Array(2048)]), C.IOV_MAX, 'only the first writev went through');
    } finally {
      p.close();
    }
  });

  it('throws KvmError with the syscall name for other errors, TypeError for bad arguments', () => {
    const fd = eventfd();
    closeFd(fd);
    const buf = [new Uint8Array(8)];
    assert.throws(() => readv(fd, buf), (e: unknown) => e instanceof KvmError && e.ioctl === 'readv' && e.code === 'EBADF');
    assert.throws(() => writev(fd, buf), { ioctl: 'writev', code: 'EBADF' });
    const p = pipe();
    assert.throws(() => preadv(p.r, buf, 0), { ioctl: 'preadv', code: 'ESPIPE' });
    assert.throws(() => pwritev(p.w, buf, 0), { ioctl: 'pwritev', code: 'ESPIPE' });
    assert.throws(() => writev(p.r, buf), { ioctl: 'writev', code: 'EBADF' }, 'the read end');
    assert.throws(() => readv(p.r, 'x' as never), TypeError);
    assert.throws(() => readv(p.r, [new ArrayBuffer(8)] as never), /buffers\[0\] must be a Uint8Array/);
    assert.throws(() => preadv(p.r, buf, -1), RangeError);
    assert.throws(() => preadv(p.r, buf, 1n << 63n), RangeError);
    p.close();
  });
});

describe('fdatasync() / fallocate()', () => {
  it('punches a hole that reads back as zeros, frees its blocks and keeps the size', () => {
    const path = join(dir, 'sparse.img');
    const size = 1024 * KiB;
    writeFileSync(path, new Uint8Array(size).fill(0x5a));
    const fd = openSync(path, 'r+');
    fdatasync(fd);
    const before = fstatSync(fd).blocks;

    fallocate(fd, C.FALLOC_FL_PUNCH_HOLE | C.FALLOC_FL_KEEP_SIZE, 256 * KiB, 512 * KiB);
    const st = fstatSync(fd);
    assert.equal(st.size, size, 'KEEP_SIZE');
    assert.ok(st.blocks <= before - (512 * KiB) / 512, `blocks ${before} → ${st.blocks}: the hole is unallocated`);

    const out = chunk0.subarray(0, 64 * KiB);
    assert.equal(preadv(fd, [out], 256 * KiB), 64 * KiB);
    assert.ok(out.every((b) => b === 0), 'the hole reads as zeros');
    assert.equal(preadv(fd, [out], 256 * KiB - 64 * KiB), 64 * KiB);
    assert.ok(out.every((b) => b === 0x5a), 'before the hole is untouched');
    assert.equal(preadv(fd, [out], 768 * KiB), 64 * KiB);
    assert.ok(out.every((b) => b === 0x5a), 'after the hole is untouched');

    // ZERO_RANGE (write-zeroes) where the filesystem has it (ext4, xfs; not tmpfs).
    try {
      fallocate(fd, C.FALLOC_FL_ZERO_RANGE | C.FALLOC_FL_KEEP_SIZE, 10, 100);
      const z = new Uint8Array(120);
      assert.equal(preadv(fd, [z], 0), 120);
      assert.deepEqual([...z.subarray(8, 12)], [0x5a, 0x5a, 0, 0]);
      assert.deepEqual([...z.subarray(108, 112)], [0, 0, 0x5a, 0x5a]);
    } catch (e) {
      if (!(e instanceof KvmError && e.code === 'EOPNOTSUPP')) throw e;
    }

    // PUNCH_HOLE without KEEP_SIZE is refused by the kernel.
    assert.throws(() => fallocate(fd, C.FALLOC_FL_PUNCH_HOLE, 0, 4096), { ioctl: 'fallocate', code: 'EOPNOTSUPP' });
    closeSync(fd);
    assert.throws(() => fdatasync(fd), { ioctl: 'fdatasync', code: 'EBADF' });
  });

  it('mode 0 allocates and extends the file', () => {
    const path = join(dir, 'grow.img');
    writeFileSync(path, '');
    const fd = openSync(path, 'r+');
    fallocate(fd, 0, 0, 2n * 65536n);
    assert.equal(fstatSync(fd).size, 128 * KiB);
    closeSync(fd);
  });
});
