// Guest RAM: chunked external ArrayBuffers over one anonymous mapping, views from other
// threads, and unmapping rules.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';

import { KvmError, mmapGuestRam, munmapGuestRam, viewGuestRam } from '@vmctl/kvm-native';

import { nextMessage, skipWithoutKvm, startWorker } from './helpers.js';

const opts = skipWithoutKvm();

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe('mmapGuestRam()', opts, () => {
  it('maps 3 GiB as three 1 GiB chunks', () => {
    const ram = mmapGuestRam(3 * GiB, GiB);
    assert.equal(typeof ram.address, 'bigint');
    assert.equal(ram.address % 4096n, 0n);
    assert.equal(ram.size, 3 * GiB);
    assert.equal(ram.chunkSize, GiB);
    assert.deepEqual(ram.chunks.map((c) => c.byteLength), [GiB, GiB, GiB]);
    munmapGuestRam(ram.address);
  });

  it('starts on a 2 MiB boundary, maps exactly the size asked, and asks for huge pages', () => {
    for (const size of [64 * MiB + 4 * KiB, 384 * MiB, GiB + 2 * MiB]) {
      const ram = mmapGuestRam(size);
      try {
        assert.equal(ram.address % BigInt(2 * MiB), 0n, `a ${size}-byte mapping at 0x${ram.address.toString(16)}`);
        // /proc/self/smaps: the VMA starting there is exactly `size` long (the slack used to
        // align it was given back) and carries the MADV_HUGEPAGE flag ("hg")
        const smaps = readFileSync('/proc/self/smaps', 'utf8');
        const start = smaps.indexOf(`${ram.address.toString(16)}-`);
        assert.ok(start >= 0, 'the mapping is in smaps');
        const block = smaps.slice(start, smaps.indexOf('VmFlags', start) + 200);
        const [from, to] = block.slice(0, block.indexOf(' ')).split('-').map((h) => BigInt(`0x${h}`));
        assert.equal(to! - from!, BigInt(size));
        assert.match(block.slice(block.indexOf('VmFlags')).split('\n')[0]!, / hg\b/);
      } finally {
        munmapGuestRam(ram.address);
      }
    }
  });

  it('maps more than 4 GiB, with a short last chunk, by default in 1 GiB chunks', () => {
    const ram = mmapGuestRam(5 * GiB + 8 * KiB);
    assert.equal(ram.chunkSize, GiB);
    assert.deepEqual(ram.chunks.map((c) => c.byteLength), [GiB, GiB, GiB, GiB, GiB, 8 * KiB]);
    const last = new Uint8Array(ram.chunks[5]);
    last[8 * KiB - 1] = 0x77; // the very last byte of the mapping is addressable
    assert.equal(last[8 * KiB - 1], 0x77);
    munmapGuestRam(ram.address);
  });

  it('starts zero-filled and every chunk is its own region of the mapping', () => {
    const ram = mmapGuestRam(4 * 64 * KiB, 64 * KiB);
    assert.equal(ram.chunks.length, 4);
    ram.chunks.forEach((c, i) => { new Uint8Array(c)[0] = 0xa0 + i; });
    const again = viewGuestRam(ram.address);
    assert.deepEqual(again.chunks.map((c) => new Uint8Array(c)[0]), [0xa0, 0xa1, 0xa2, 0xa3]);
    assert.equal(new Uint8Array(again.chunks[3])[1], 0);
    munmapGuestRam(ram.address);
  });

  it('refuses sizes that are not whole pages and chunks above 1 GiB', () => {
    assert.throws(() => mmapGuestRam(0), RangeError);
    assert.throws(() => mmapGuestRam(4095), RangeError);
    assert.throws(() => mmapGuestRam(4 * GiB, 2 * GiB), RangeError);
    assert.throws(() => mmapGuestRam(4 * GiB, 1000), RangeError);
  });
});

describe('viewGuestRam()', opts, () => {
  it('returns new views that alias the same memory', () => {
    const ram = mmapGuestRam(2 * GiB, GiB);
    const view = viewGuestRam(ram.address);
    assert.equal(view.address, ram.address);
    assert.equal(view.size, ram.size);
    assert.notEqual(view.chunks[1], ram.chunks[1]);
    new Uint32Array(ram.chunks[1])[1000] = 0xdeadbeef;
    assert.equal(new Uint32Array(view.chunks[1])[1000], 0xdeadbeef);
    new Uint8Array(view.chunks[0])[5] = 9;
    assert.equal(new Uint8Array(ram.chunks[0])[5], 9);
    munmapGuestRam(ram.address);
  });

  it('rejects an address that mmapGuestRam did not return', () => {
    const ram = mmapGuestRam(64 * KiB);
    assert.throws(() => viewGuestRam(ram.address + 4096n), (e: unknown) =>
      e instanceof KvmError && e.ioctl === 'viewGuestRam' && e.code === 'ENOENT');
    munmapGuestRam(ram.address);
  });

  it('gives a worker_thread views of the same bytes, in both directions', async () => {
    const ram = mmapGuestRam(2 * GiB, GiB);
    const mine = new Uint8Array(ram.chunks[1]);
    mine.set([1, 2, 3, 4], 123_456);
    const worker = startWorker(`
      const ram = kvm.viewGuestRam(workerData.address);
      const bytes = new Uint8Array(ram.chunks[1]);
      const seen = Array.from(bytes.subarray(123456, 123460));
      bytes[200000] = 0x99;
      parentPort.postMessage({ seen, chunks: ram.chunks.length });
      parentPort.once('message', () => process.exit(0)); // keep the views alive until told
    `, { address: ram.address });
    const reply = await nextMessage<{ seen: number[]; chunks: number }>(worker);
    assert.deepEqual(reply, { seen: [1, 2, 3, 4], chunks: 2 });
    assert.equal(mine[200000], 0x99);

    // The worker's views are alive: unmapping now would leave them dangling.
    assert.throws(() => munmapGuestRam(ram.address), { ioctl: 'munmapGuestRam', code: 'EBUSY' });
    worker.postMessage('exit');
    await once(worker, 'exit');
    munmapGuestRam(ram.address);
  });
});

describe('munmapGuestRam()', opts, () => {
  it('detaches this thread\'s views and forgets the address', () => {
    const ram = mmapGuestRam(128 * KiB, 64 * KiB);
    const view = viewGuestRam(ram.address);
    const typed = new Uint8Array(ram.chunks[0]);
    munmapGuestRam(ram.address);
    assert.deepEqual(ram.chunks.map((c) => c.byteLength), [0, 0]);
    assert.deepEqual(view.chunks.map((c) => c.byteLength), [0, 0]);
    assert.equal(typed.length, 0);
    assert.equal(typed[0], undefined, 'reads of a detached view do not touch the old mapping');
    assert.throws(() => viewGuestRam(ram.address), { code: 'ENOENT' });
    assert.throws(() => munmapGuestRam(ram.address), { ioctl: 'munmapGuestRam', code: 'ENOENT' });
  });
});
