/**
 * The raw disk backend on its own: a temporary image, guest RAM from the addon, requests by
 * tag as a block device would make them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mmapGuestRam, munmapGuestRam } from '../../../kvm.js';
import { VmmError } from '../../../errors.js';
import { IO_OP_DISCARD, IO_OP_FLUSH, IO_OP_READ, IO_OP_SYNC, IO_OP_WRITE, IO_OP_WRITE_ZEROES, RawDisk } from './raw.js';

const EIO = 5;
const EBADF = 9;
const EFAULT = 14;

class Rig {
  readonly dir = mkdtempSync(join(tmpdir(), 'vmctl-raw-'));
  readonly path = join(this.dir, 'disk.img');
  readonly ram = mmapGuestRam(8 * 1024 * 1024);
  readonly bytes = new Uint8Array(this.ram.chunks[0]!);
  readonly disk: RawDisk;
  readonly done = new Map<number, number>();

  constructor(options: { size?: number; readOnly?: boolean; maxSegments?: number } = {}) {
    writeFileSync(this.path, new Uint8Array(0));
    truncateSync(this.path, options.size ?? 1024 * 1024);
    this.disk = new RawDisk({ path: this.path, ramAddress: this.ram.address, readOnly: options.readOnly ?? false, ...(options.maxSegments ? { maxSegments: options.maxSegments } : {}) });
    this.disk.onComplete = (tag, result) => this.done.set(tag, result);
  }

  /** Runs one request on tag 0 and resolves with its result. */
  run(op: number, offset: number, segs: [number, number][]): Promise<number> {
    const s = this.disk.segments(0);
    segs.forEach(([a, l], i) => {
      s[2 * i] = a;
      s[2 * i + 1] = l;
    });
    this.done.delete(0);
    return new Promise((resolve) => {
      this.disk.onBatch = () => {
        if (this.done.has(0)) resolve(this.done.get(0)!);
      };
      this.disk.submit(0, op, offset, segs.length);
    });
  }

  async close(): Promise<void> {
    await this.disk.close();
    munmapGuestRam(this.ram.address);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function withRig(options: ConstructorParameters<typeof Rig>[0], body: (r: Rig) => Promise<void>): Promise<void> {
  const r = new Rig(options);
  try {
    await body(r);
  } finally {
    await r.close();
  }
}

test('RawDisk refuses an image it cannot open, or one that is not a regular file, with INVALID_CONFIG', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-raw-'));
  try {
    assert.throws(() => new RawDisk({ path: join(dir, 'missing.img'), ramAddress: 0n }), (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG' && /Cannot open disk image .*ENOENT/.test(e.message));
    assert.throws(() => new RawDisk({ path: dir, ramAddress: 0n }), /Cannot open disk image .*EISDIR/);
    assert.throws(() => new RawDisk({ path: '/dev/null', ramAddress: 0n }), /not a regular file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('RawDisk counts whole sectors only: a partial last sector is not part of the disk', async () => {
  await withRig({ size: 10 * 512 + 100 }, async ({ disk }) => {
    assert.equal(disk.sizeBytes, 10 * 512);
    assert.ok(disk.blockSize >= 512);
  });
});

test('RawDisk writes guest RAM to the image and reads it back, segment by segment', async () => {
  await withRig({}, async (r) => {
    for (let i = 0; i < 3 * 512; i++) r.bytes[0x10000 + i] = (i * 13) & 0xff;

    const w = await r.run(IO_OP_WRITE, 4096, [[0x10000, 1024], [0x10000 + 1024, 512]]);
    const rd = await r.run(IO_OP_READ, 4096, [[0x20000, 512], [0x30000, 1024]]);

    assert.equal(w, 1536);
    assert.equal(rd, 1536);
    assert.deepEqual(r.bytes.subarray(0x20000, 0x20000 + 512), r.bytes.subarray(0x10000, 0x10000 + 512));
    assert.deepEqual(r.bytes.subarray(0x30000, 0x30000 + 1024), r.bytes.subarray(0x10000 + 512, 0x10000 + 1536));
    assert.deepEqual(new Uint8Array(readFileSync(r.path).subarray(4096, 4096 + 1536)), r.bytes.subarray(0x10000, 0x10000 + 1536));
  });
});

test('RawDisk moves more segments than one preadv takes (IOV_MAX) in batches', async () => {
  await withRig({ maxSegments: 1500 }, async (r) => {
    const segs: [number, number][] = [];
    for (let i = 0; i < 1500; i++) {
      r.bytes.fill(i & 0xff, 0x100000 + 512 * i, 0x100000 + 512 * (i + 1));
      segs.push([0x100000 + 512 * i, 512]);
    }

    const w = await r.run(IO_OP_WRITE | IO_OP_SYNC, 0, segs);

    const img = readFileSync(r.path);
    assert.equal(w, 1500 * 512);
    assert.equal(img[1499 * 512], 1499 & 0xff);
    assert.equal(img[1024 * 512], 1024 & 0xff);
  });
});

test('RawDisk flushes, punches holes and zeroes ranges', async () => {
  await withRig({}, async (r) => {
    r.bytes.fill(0x5a, 0x10000, 0x10000 + 65536);
    await r.run(IO_OP_WRITE, 0, [[0x10000, 65536]]);

    const f = await r.run(IO_OP_FLUSH, 0, []);
    const d = await r.run(IO_OP_DISCARD, 0, [[0, 8192]]);
    const z = await r.run(IO_OP_WRITE_ZEROES, 0, [[16384, 4096], [32768, 512]]);

    const img = readFileSync(r.path);
    assert.deepEqual([f, d, z], [0, 8192, 4608]);
    assert.ok(img.subarray(0, 8192).every((b) => b === 0));
    assert.ok(img.subarray(8192, 16384).every((b) => b === 0x5a));
    assert.ok(img.subarray(16384, 20480).every((b) => b === 0));
    assert.ok(img.subarray(32768, 33280).every((b) => b === 0));
    assert.equal(img[33280], 0x5a);
    assert.equal(img.length, 1024 * 1024, 'the image keeps its size');
  });
});

test('RawDisk reports -EIO for a read past the end of the image and -EFAULT for memory outside guest RAM', async () => {
  await withRig({}, async (r) => {
    const eof = await r.run(IO_OP_READ, 2 * 1024 * 1024, [[0x10000, 512]]);
    const fault = await r.run(IO_OP_READ, 0, [[8 * 1024 * 1024 - 256, 512]]);

    assert.equal(eof, -EIO);
    assert.equal(fault, -EFAULT);
    assert.equal(r.disk.metrics.failed, 2);
  });
});

test('RawDisk opens a read-only image read-only: a write that got through would fail (EBADF)', async () => {
  await withRig({ readOnly: true }, async (r) => {
    const w = await r.run(IO_OP_WRITE, 0, [[0x10000, 512]]);

    assert.equal(w, -EBADF);
  });
});

test('RawDisk drainSync waits for requests in flight, and flush() resolves from the host side', async () => {
  await withRig({}, async (r) => {
    for (let t = 0; t < 4; t++) {
      r.disk.segments(t).set([0x10000, 4096]);
      r.disk.submit(t, IO_OP_WRITE, t * 4096, 1);
    }

    const drained = r.disk.drainSync(5000);
    const polled = r.disk.poll();
    const flushed = await r.disk.flush();

    assert.equal(drained, true);
    assert.equal(polled, 4);
    assert.equal(r.disk.inFlight, 0);
    assert.equal(flushed, 0);
  });
});

test('RawDisk close ends its I/O thread, so guest RAM can be unmapped', async () => {
  const r = new Rig({});
  await r.run(IO_OP_WRITE, 0, [[0x10000, 512]]);

  await r.disk.close();

  assert.doesNotThrow(() => munmapGuestRam(r.ram.address));
  rmSync(r.dir, { recursive: true, force: true });
});
