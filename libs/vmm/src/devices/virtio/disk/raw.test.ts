/**
 * The raw disk backend on its own: a temporary image, guest RAM from the addon, requests by
 * tag as a block device would make them — through each I/O engine (io_uring, and the I/O
 * thread that replaces it where io_uring is unavailable).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mmapGuestRam, munmapGuestRam } from '../../../kvm.js';
import { VmmError } from '../../../errors.js';
import { IO_OP_DISCARD, IO_OP_FLUSH, IO_OP_READ, IO_OP_SYNC, IO_OP_WRITE, IO_OP_WRITE_ZEROES, RawDisk } from './raw.js';

const EIO = 5;
const EBADF = 9;
const EFAULT = 14;

type Engine = 'io_uring' | 'thread';
const ENGINES: Engine[] = ['io_uring', 'thread'];

class Rig {
  dir = mkdtempSync(join(tmpdir(), 'vmctl-raw-'));
  path = join(this.dir, 'disk.img');
  readonly ram = mmapGuestRam(8 * 1024 * 1024);
  readonly bytes = new Uint8Array(this.ram.chunks[0]!);
  readonly disk: RawDisk;
  readonly done = new Map<number, number>();

  constructor(options: { size?: number; readOnly?: boolean; maxSegments?: number; engine?: Engine; dir?: string } = {}) {
    if (options.dir) {
      rmSync(this.dir, { recursive: true, force: true });
      this.dir = mkdtempSync(join(options.dir, 'vmctl-raw-'));
      this.path = join(this.dir, 'disk.img');
    }
    writeFileSync(this.path, new Uint8Array(0));
    truncateSync(this.path, options.size ?? 1024 * 1024);
    this.disk = new RawDisk({
      path: this.path,
      ramAddress: this.ram.address,
      readOnly: options.readOnly ?? false,
      engine: options.engine ?? 'auto',
      ...(options.maxSegments ? { maxSegments: options.maxSegments } : {}),
    });
    this.disk.onComplete = (tag, result) => this.done.set(tag, result);
  }

  /** Runs requests on tags 0..n-1 at once; resolves with their results in tag order. */
  runMany(op: number, reqs: { offset: number; segs: number[][] }[]): Promise<number[]> {
    this.done.clear();
    for (const [t, q] of reqs.entries()) {
      const s = this.disk.segments(t);
      q.segs.forEach(([a, l], i) => {
        s[2 * i] = a!;
        s[2 * i + 1] = l!;
      });
    }
    return new Promise((resolve) => {
      this.disk.onBatch = () => {
        if (this.done.size === reqs.length) resolve(reqs.map((_, t) => this.done.get(t)!));
      };
      for (const [t, q] of reqs.entries()) this.disk.submit(t, op, q.offset, q.segs.length);
    });
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

test('RawDisk runs its I/O through io_uring where the kernel has it, and through its I/O thread when told to', async () => {
  await withRig({}, async ({ disk }) => assert.equal(disk.engine, 'io_uring', disk.engineNote));
  await withRig({ engine: 'thread' }, async ({ disk }) => assert.equal(disk.engine, 'thread'));
});

test('RawDisk counts whole sectors only: a partial last sector is not part of the disk', async () => {
  await withRig({ size: 10 * 512 + 100 }, async ({ disk }) => {
    assert.equal(disk.sizeBytes, 10 * 512);
    assert.ok(disk.blockSize >= 512);
  });
});

for (const engine of ENGINES) {
  test(`RawDisk writes guest RAM to the image and reads it back, segment by segment (${engine})`, async () => {
    await withRig({ engine }, async (r) => {
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

  test(`RawDisk moves more segments than one preadv takes (IOV_MAX) in batches (${engine})`, async () => {
    await withRig({ maxSegments: 1500, engine }, async (r) => {
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

  test(`RawDisk flushes, punches holes and zeroes ranges (${engine})`, async () => {
    await withRig({ engine }, async (r) => {
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

  test(`RawDisk reports -EIO for a read past the end of the image and -EFAULT for memory outside guest RAM (${engine})`, async () => {
    await withRig({ engine }, async (r) => {
      const eof = await r.run(IO_OP_READ, 2 * 1024 * 1024, [[0x10000, 512]]);
      const fault = await r.run(IO_OP_READ, 0, [[8 * 1024 * 1024 - 256, 512]]);

      assert.equal(eof, -EIO);
      assert.equal(fault, -EFAULT);
      assert.equal(r.disk.metrics.failed, 2);
    });
  });

  test(`RawDisk opens a read-only image read-only: a write that got through would fail (EBADF) (${engine})`, async () => {
    await withRig({ readOnly: true, engine }, async (r) => {
      const w = await r.run(IO_OP_WRITE, 0, [[0x10000, 512]]);

      assert.equal(w, -EBADF);
    });
  });

  test(`RawDisk drainSync waits for requests in flight, and flush() resolves from the host side (${engine})`, async () => {
    await withRig({ engine }, async (r) => {
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

  test(`RawDisk keeps many requests in flight, large ones included, and completes each with its own result (${engine})`, async () => {
    await withRig({ engine, size: 8 * 1024 * 1024 }, async (r) => {
      // 16 writes of 256 KiB (past the inline size: the kernel's workers take them), then
      // 16 reads of them back into other guest RAM, all submitted at once.
      const KB256 = 256 * 1024;
      for (let t = 0; t < 16; t++) r.bytes.fill(t + 1, t * KB256, (t + 1) * KB256);
      const writes = await r.runMany(IO_OP_WRITE, Array.from({ length: 16 }, (_, t) => ({ offset: t * KB256, segs: [[t * KB256, KB256]] })));
      const reads = await r.runMany(IO_OP_READ, Array.from({ length: 16 }, (_, t) => ({ offset: t * KB256, segs: [[4 * 1024 * 1024 + (15 - t) * KB256, KB256]] })));

      assert.deepEqual(writes, Array(16).fill(KB256));
      assert.deepEqual(reads, Array(16).fill(KB256));
      for (let t = 0; t < 16; t++) {
        const at = 4 * 1024 * 1024 + (15 - t) * KB256;
        assert.ok(r.bytes.subarray(at, at + KB256).every((b) => b === t + 1), `request ${t} read its own data`);
      }
    });
  });

  test(`RawDisk fails a read that runs past the end of the image with -EIO, after the part that exists (${engine})`, async () => {
    await withRig({ engine }, async (r) => {
      const straddle = await r.run(IO_OP_READ, 1024 * 1024 - 4096, [[0x10000, 8192]]);

      assert.equal(straddle, -EIO);
    });
  });

  test(`RawDisk writes zeros where the file system cannot zero a range in place (tmpfs) (${engine})`, { skip: existsSync('/dev/shm') ? false : 'no /dev/shm' }, async () => {
    await withRig({ engine, dir: '/dev/shm' }, async (r) => {
      r.bytes.fill(0x77, 0x10000, 0x10000 + 65536);
      await r.run(IO_OP_WRITE, 0, [[0x10000, 65536]]);

      const z = await r.run(IO_OP_WRITE_ZEROES | IO_OP_SYNC, 0, [[4096, 8192], [40960, 512]]);
      const again = await r.run(IO_OP_WRITE_ZEROES, 0, [[16384, 4096]]);

      const img = readFileSync(r.path);
      assert.deepEqual([z, again], [8704, 4096]);
      assert.ok(img.subarray(4096, 12288).every((b) => b === 0));
      assert.ok(img.subarray(16384, 20480).every((b) => b === 0));
      assert.ok(img.subarray(40960, 41472).every((b) => b === 0));
      assert.equal(img[4095], 0x77);
      assert.equal(img[12288], 0x77);
      assert.equal(img[20480], 0x77);
      assert.equal(img[41472], 0x77);
    });
  });

  test(`RawDisk close finishes what is in flight and lets go of guest RAM, so it can be unmapped (${engine})`, async () => {
    const r = new Rig({ engine });
    await r.run(IO_OP_WRITE, 0, [[0x10000, 512]]);

    await r.disk.close();

    assert.doesNotThrow(() => munmapGuestRam(r.ram.address));
    rmSync(r.dir, { recursive: true, force: true });
  });
}
