/**
 * virtio-blk end to end: the virtio-blk test guest finds the disk on PCI, writes its pattern,
 * reads it back, flushes, discards and writes zeroes under `vmm run --disk`; then the host
 * reads the image and checks what the guest left there (test/guests/README.md, virtio-blk.elf).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveKvm } from '../lib/kvm.js';
import { guest, runVmm } from '../lib/vmm-process.js';

const opts = { skip: !haveKvm(), timeout: 120000 };
const SECTOR = 512;
const CAPACITY = 16384; // 8 MiB

/** Sector `s` of the guest's pattern for `seed` (test/guests/README.md, virtio-blk.elf). */
function patternSector(s: number, seed: number): Buffer {
  const b = Buffer.alloc(SECTOR);
  b.writeUInt32LE(s >>> 0, 0);
  b.writeUInt32LE(Math.floor(s / 2 ** 32) >>> 0, 4);
  b.writeUInt32LE(seed >>> 0, 8);
  b.writeUInt32LE(Math.floor(seed / 2 ** 32) >>> 0, 12);
  for (let w = 4; w < SECTOR / 4; w++) {
    const x = (Math.imul(s >>> 0, 0x9e3779b1) ^ Math.imul(seed >>> 0, 0x85ebca77) ^ Math.imul(w, 0xc2b2ae3d)) >>> 0;
    b.writeUInt32LE((x ^ (x >>> 15)) >>> 0, 4 * w);
  }
  return b;
}

function tempImage(bytes: Uint8Array): { dir: string; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-blk-it-'));
  const path = join(dir, 'disk.img');
  writeFileSync(path, bytes);
  return { dir, path };
}

test('the virtio-blk guest writes, reads back, flushes, discards and zeroes a raw image under vmm run --disk', opts, async () => {
  const { dir, path } = tempImage(new Uint8Array(CAPACITY * SECTOR).fill(0xee));
  try {
    const r = await runVmm(['run', '--kernel', guest('virtio-blk'), '--memory', '64M', '--debug-exit', '--cmdline', 'seed=7', '--disk', `${path},serial=vmctl-disk0`], 90000);

    assert.match(r.stdout, /pci: 00:[0-9a-f]{2}\.0 1af4:1042/, 'a modern virtio block device');
    assert.match(r.stdout, new RegExp(`blk: capacity=${CAPACITY} sectors`));
    assert.match(r.stdout, /blk: size_max=\d+ seg_max=\d+ blk_size=512 ro=0 flush=1 discard=1 write-zeroes=1/);
    assert.match(r.stdout, /blk: serial=vmctl-disk0\n/);
    assert.match(r.stdout, /blk: pattern seed=7 sectors=0,1,8192,16383 multi=4096\+128/);
    for (const line of ['blk: pattern ok', 'blk: flush ok', 'blk: discard ok', 'blk: write-zeroes ok']) assert.ok(r.stdout.includes(`${line}\n`), `${line} in ${r.stdout}`);
    assert.doesNotMatch(r.stdout, /blk: note: used len/);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);

    // What the guest left in the image, read from the host.
    const img = readFileSync(path);
    for (const s of [0, 1, CAPACITY / 2, CAPACITY - 1]) {
      assert.ok(img.subarray(s * SECTOR, (s + 1) * SECTOR).equals(patternSector(s, 7)), `sector ${s} holds the pattern`);
    }
    const multi = (CAPACITY / 4) & ~127;
    assert.ok(img.subarray(multi * SECTOR, (multi + 128) * SECTOR).every((b) => b === 0), 'the discarded and zeroed range reads as zeros');
    assert.ok(img.subarray(2 * SECTOR, 3 * SECTOR).every((b) => b === 0xee), 'sectors the guest did not touch are as they were');
    assert.equal(img.length, CAPACITY * SECTOR, 'the image keeps its size');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a read-only disk refuses the virtio-blk guest\'s write and the image stays unchanged', opts, async () => {
  const bytes = new Uint8Array(2048 * SECTOR);
  bytes.set(patternSector(0, 99), 0);
  const { dir, path } = tempImage(bytes);
  const before = createHash('sha256').update(bytes).digest('hex');
  try {
    const r = await runVmm(['run', '--kernel', guest('virtio-blk'), '--memory', '64M', '--debug-exit', '--cmdline', 'mode=ro seed=3', '--disk', `${path},ro`], 90000);

    assert.match(r.stdout, /blk: size_max=\d+ seg_max=\d+ blk_size=512 ro=1 flush=1 discard=0 write-zeroes=0/);
    assert.match(r.stdout, /blk: serial=\n/, 'no serial: an empty ID');
    for (const line of ['blk: ro write refused', 'blk: ro data unchanged', 'blk: flush ok']) assert.ok(r.stdout.includes(`${line}\n`), `${line} in ${r.stdout}`);
    assert.equal(r.code, 0, `${r.stdout}\n${r.stderr}`);
    assert.equal(createHash('sha256').update(readFileSync(path)).digest('hex'), before, 'the image is unchanged');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('vmm run refuses a disk image that does not exist, before the guest starts', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('virtio-blk'), '--memory', '64M', '--disk', '/nonexistent/vmctl/disk.img']);

  assert.equal(r.code, 125);
  assert.match(r.stderr, /disk\.img/);
  assert.doesNotMatch(r.stdout, /blk:/);
});
