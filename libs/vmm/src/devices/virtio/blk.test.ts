/**
 * virtio-blk driven by a fake driver over a temporary raw image, with guest RAM from the
 * addon (mmapGuestRam, no KVM needed) so that the disk's I/O thread can see it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mmapGuestRam, munmapGuestRam } from '../../kvm.js';
import { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTIO_F_INDIRECT_DESC, VIRTIO_F_VERSION_1, VIRTIO_ID_BLOCK, type VirtioInterrupt } from './device.js';
import { FakeSplitQueue, writeDescriptor } from './fake-driver.js';
import { VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Virtqueue, type QueueError } from './queue.js';
import { IO_OP_SYNC, IO_OP_WRITE, RawDisk } from './disk/raw.js';
import {
  BLK_ANSWER,
  BLK_SUBMIT,
  BlkRequest,
  parseBlkRequest,
  VIRTIO_BLK_CFG_BLK_SIZE,
  VIRTIO_BLK_CFG_CAPACITY,
  VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT,
  VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS,
  VIRTIO_BLK_CFG_MAX_DISCARD_SEG,
  VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS,
  VIRTIO_BLK_CFG_SEG_MAX,
  VIRTIO_BLK_CFG_SIZE_MAX,
  VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP,
  VIRTIO_BLK_CONFIG_SIZE,
  VIRTIO_BLK_F_DISCARD,
  VIRTIO_BLK_F_FLUSH,
  VIRTIO_BLK_F_MQ,
  VIRTIO_BLK_F_RO,
  VIRTIO_BLK_F_SEG_MAX,
  VIRTIO_BLK_F_SIZE_MAX,
  VIRTIO_BLK_F_WRITE_ZEROES,
  VIRTIO_BLK_S_IOERR,
  VIRTIO_BLK_S_OK,
  VIRTIO_BLK_S_UNSUPP,
  VIRTIO_BLK_T_DISCARD,
  VIRTIO_BLK_T_FLUSH,
  VIRTIO_BLK_T_GET_ID,
  VIRTIO_BLK_T_GET_LIFETIME,
  VIRTIO_BLK_T_IN,
  VIRTIO_BLK_T_OUT,
  VIRTIO_BLK_T_WRITE_ZEROES,
  VirtioBlk,
  type BlkLimits,
} from './blk.js';

const SECTOR = 512;
const QUEUE = 0x1000;
const QSIZE = 64;
/** where the fake driver puts headers, data and status bytes */
const HEAP = 0x10000;
const ALL_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC | VIRTIO_BLK_F_FLUSH | VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES;

class RecordingInterrupt implements VirtioInterrupt {
  readonly queues: number[] = [];
  readonly errors: QueueError[] = [];
  notifyQueue(i: number): void {
    this.queues.push(i);
  }
  notifyConfig(): void {}
  queueError(_i: number, e: QueueError): void {
    this.errors.push(e);
  }
}

/** Sector s of a recognisable pattern. */
function pattern(sector: number, count = 1, seed = 1): Uint8Array {
  const out = new Uint8Array(count * SECTOR);
  for (let i = 0; i < out.length; i++) out[i] = ((sector + Math.floor(i / SECTOR)) * 31 + i * 7 + seed) & 0xff;
  return out;
}

interface Buf {
  addr: number;
  len: number;
  write?: boolean;
}

/** A disk image, guest RAM, the device, and a driver that builds requests by hand. */
class Rig {
  readonly dir = mkdtempSync(join(tmpdir(), 'vmctl-blk-'));
  readonly path = join(this.dir, 'disk.img');
  readonly ramAddress: bigint;
  readonly memory: GuestMemory;
  readonly disk: RawDisk;
  readonly blk: VirtioBlk;
  readonly driver: FakeSplitQueue;
  readonly queue: Virtqueue;
  readonly interrupt = new RecordingInterrupt();
  #desc = 0;
  #heap = HEAP;
  #seen = 0;

  constructor(options: { sectors?: number; readOnly?: boolean; serial?: string; features?: bigint; maxRequests?: number; chunkSize?: number; ram?: number; image?: Uint8Array } = {}) {
    if (options.image) writeFileSync(this.path, options.image);
    else {
      writeFileSync(this.path, new Uint8Array(0));
      truncateSync(this.path, (options.sectors ?? 2048) * SECTOR);
    }
    const ram = mmapGuestRam(options.ram ?? 4 * 1024 * 1024, options.chunkSize);
    this.ramAddress = ram.address;
    this.memory = new GuestMemory(ram.size, ram.chunks, ram.chunkSize);
    this.disk = new RawDisk({
      path: this.path,
      readOnly: options.readOnly ?? false,
      ramAddress: ram.address,
      ...(options.maxRequests ? { maxRequests: options.maxRequests } : {}),
    });
    this.blk = new VirtioBlk({ disk: this.disk, ...(options.serial !== undefined ? { serial: options.serial } : {}) });
    const layout = FakeSplitQueue.layoutAt(QUEUE, QSIZE);
    this.driver = new FakeSplitQueue(this.memory, layout);
    this.queue = Virtqueue.create(this.memory, layout, { eventIdx: false, indirect: true }) as Virtqueue;
    this.blk.activate({ memory: this.memory, queues: [this.queue], interrupt: this.interrupt, features: options.features ?? ALL_FEATURES });
  }

  alloc(len: number): number {
    const at = this.#heap;
    this.#heap = Math.ceil((at + Math.max(len, 1)) / 16) * 16;
    return at;
  }

  /** Bytes in guest RAM. */
  put(bytes: Uint8Array): number {
    const at = this.alloc(bytes.length);
    this.memory.write(at, bytes);
    return at;
  }

  header(type: number, sector: number | bigint = 0): Buf {
    const h = new Uint8Array(16);
    const dv = new DataView(h.buffer);
    dv.setUint32(0, type, true);
    dv.setBigUint64(8, BigInt(sector), true);
    return { addr: this.put(h), len: 16 };
  }

  status(): Buf {
    const at = this.alloc(1);
    this.memory.writeU8(at, 0xff);
    return { addr: at, len: 1, write: true };
  }

  /** Puts `bufs` in the ring as one chain (direct descriptors) and notifies. Returns the head. */
  submit(bufs: Buf[]): number {
    const head = this.#desc;
    bufs.forEach((b, i) => {
      const last = i === bufs.length - 1;
      this.driver.setDesc((head + i) % QSIZE, {
        addr: b.addr,
        len: b.len,
        flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT),
        next: (head + i + 1) % QSIZE,
      });
    });
    this.#desc = (this.#desc + bufs.length) % QSIZE;
    this.driver.publish(head);
    this.blk.queueNotify(0);
    return head;
  }

  /** The same through one indirect descriptor. */
  submitIndirect(bufs: Buf[]): number {
    const table = this.alloc(16 * bufs.length);
    bufs.forEach((b, i) => {
      const last = i === bufs.length - 1;
      writeDescriptor(this.memory, table, i, { addr: b.addr, len: b.len, flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (last ? 0 : VIRTQ_DESC_F_NEXT), next: i + 1 });
    });
    const head = this.#desc;
    this.driver.setDesc(head, { addr: table, len: 16 * bufs.length, flags: VIRTQ_DESC_F_INDIRECT });
    this.#desc = (this.#desc + 1) % QSIZE;
    this.driver.publish(head);
    this.blk.queueNotify(0);
    return head;
  }

  /** Waits for the next used element. */
  async next(ms = 5000): Promise<{ id: number; len: number }> {
    const end = Date.now() + ms;
    while (this.driver.usedIdx() === this.#seen) {
      if (Date.now() > end) throw new Error(`no used element after ${ms} ms (metrics ${JSON.stringify(this.blk.metrics)})`);
      await new Promise((r) => setTimeout(r, 1));
    }
    return this.driver.used(this.#seen++);
  }

  /** A whole request: header, data, status; resolves with the status byte and used length. */
  async request(type: number, sector: number | bigint, data: { out?: Uint8Array; inLen?: number } = {}): Promise<{ status: number; len: number; data?: Uint8Array }> {
    const bufs: Buf[] = [this.header(type, sector)];
    let inAddr = 0;
    if (data.out) bufs.push({ addr: this.put(data.out), len: data.out.length });
    if (data.inLen) {
      inAddr = this.alloc(data.inLen);
      bufs.push({ addr: inAddr, len: data.inLen, write: true });
    }
    const st = this.status();
    bufs.push(st);
    this.submit(bufs);
    const used = await this.next();
    const out: { status: number; len: number; data?: Uint8Array } = { status: this.memory.readU8(st.addr), len: used.len };
    if (data.inLen) {
      out.data = new Uint8Array(data.inLen);
      this.memory.read(inAddr, out.data);
    }
    return out;
  }

  rangeSegments(segs: { sector: number; count: number; flags?: number }[]): Uint8Array {
    const b = new Uint8Array(16 * segs.length);
    const dv = new DataView(b.buffer);
    segs.forEach((s, i) => {
      dv.setBigUint64(16 * i, BigInt(s.sector), true);
      dv.setUint32(16 * i + 8, s.count, true);
      dv.setUint32(16 * i + 12, s.flags ?? 0, true);
    });
    return b;
  }

  image(): Buffer {
    return readFileSync(this.path);
  }

  async close(): Promise<void> {
    await this.blk.close();
    munmapGuestRam(this.ramAddress);
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

function cfg32(blk: VirtioBlk, off: number): number {
  const b = new Uint8Array(4);
  blk.readConfig(off, b);
  return new DataView(b.buffer).getUint32(0, true);
}

// --- configuration and features ---

test('VirtioBlk is device type 2 with one queue and a configuration of capacity, limits and discard fields', async () => {
  await withRig({ sectors: 4096 }, async ({ blk }) => {
    const cap = new Uint8Array(8);
    blk.readConfig(VIRTIO_BLK_CFG_CAPACITY, cap);

    assert.equal(blk.deviceType, VIRTIO_ID_BLOCK);
    assert.equal(blk.queueMaxSizes.length, 1);
    assert.equal(blk.configSize, VIRTIO_BLK_CONFIG_SIZE);
    assert.equal(new DataView(cap.buffer).getBigUint64(0, true), 4096n);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_SEG_MAX), 254);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_SIZE_MAX), 1024 * 1024);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_BLK_SIZE), 512);
    assert.ok(cfg32(blk, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS) >= 128);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_MAX_DISCARD_SEG), 32);
    assert.ok(cfg32(blk, VIRTIO_BLK_CFG_DISCARD_SECTOR_ALIGNMENT) >= 1);
    assert.ok(cfg32(blk, VIRTIO_BLK_CFG_MAX_WRITE_ZEROES_SECTORS) >= 128);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_WRITE_ZEROES_MAY_UNMAP) & 0xff, 0);
  });
});

test('VirtioBlk offers flush, limits, discard and write-zeroes on a writable disk, and no multi-queue', async () => {
  await withRig({}, async ({ blk }) => {
    const f = blk.deviceFeatures;
    for (const bit of [VIRTIO_F_VERSION_1, VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX, VIRTIO_BLK_F_DISCARD, VIRTIO_BLK_F_WRITE_ZEROES]) {
      assert.notEqual(f & bit, 0n, `bit ${bit.toString(2).length - 1}`);
    }
    assert.equal(f & VIRTIO_BLK_F_RO, 0n);
    assert.equal(f & VIRTIO_BLK_F_MQ, 0n);
  });
});

test('VirtioBlk offers RO and neither discard nor write-zeroes on a read-only disk', async () => {
  await withRig({ readOnly: true }, async ({ blk }) => {
    assert.notEqual(blk.deviceFeatures & VIRTIO_BLK_F_RO, 0n);
    assert.equal(blk.deviceFeatures & (VIRTIO_BLK_F_DISCARD | VIRTIO_BLK_F_WRITE_ZEROES), 0n);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS), 0);
  });
});

test('VirtioBlk reads configuration past its end as zeros and ignores configuration writes', async () => {
  await withRig({}, async ({ blk }) => {
    const b = new Uint8Array(4).fill(0xee);
    blk.readConfig(VIRTIO_BLK_CONFIG_SIZE, b);
    blk.writeConfig(0, new Uint8Array(8));

    assert.deepEqual([...b], [0, 0, 0, 0]);
    assert.equal(cfg32(blk, VIRTIO_BLK_CFG_BLK_SIZE), 512, 'capacity and the rest unchanged');
    assert.equal(blk.metrics.missedWrites, 1);
  });
});

test('VirtioBlk refuses a serial longer than 20 bytes or not printable ASCII', async () => {
  await withRig({}, async ({ disk }) => {
    assert.throws(() => new VirtioBlk({ disk, serial: 'x'.repeat(21) }), /at most 20 printable/);
    assert.throws(() => new VirtioBlk({ disk, serial: 'é' }), /at most 20 printable/);
  });
});

// --- data path ---

test('VirtioBlk writes sectors to the image and reads them back, with used length data + status', async () => {
  await withRig({}, async (r) => {
    const data = pattern(100, 8);

    const w = await r.request(VIRTIO_BLK_T_OUT, 100, { out: data });
    const rd = await r.request(VIRTIO_BLK_T_IN, 100, { inLen: 8 * SECTOR });

    assert.deepEqual(w, { status: VIRTIO_BLK_S_OK, len: 1 });
    assert.equal(rd.status, VIRTIO_BLK_S_OK);
    assert.equal(rd.len, 8 * SECTOR + 1);
    assert.deepEqual(rd.data, data);
    assert.deepEqual(new Uint8Array(r.image().subarray(100 * SECTOR, 108 * SECTOR)), data, 'the bytes are in the image file');
    assert.equal(r.blk.metrics.writes, 1);
    assert.equal(r.blk.metrics.reads, 1);
    assert.equal(r.blk.metrics.bytesRead, 8 * SECTOR);
  });
});

test('VirtioBlk reads what the host put in the image', async () => {
  const image = new Uint8Array(1024 * SECTOR);
  image.set(pattern(7), 7 * SECTOR);
  await withRig({ image }, async (r) => {
    const rd = await r.request(VIRTIO_BLK_T_IN, 7, { inLen: SECTOR });

    assert.deepEqual(rd.data, pattern(7));
  });
});

test('VirtioBlk gathers and scatters a request across many data descriptors and an indirect table', async () => {
  await withRig({}, async (r) => {
    const data = pattern(40, 16);
    const outBufs: Buf[] = [];
    for (let i = 0; i < 16; i++) outBufs.push({ addr: r.put(data.subarray(i * SECTOR, (i + 1) * SECTOR)), len: SECTOR });
    const st1 = r.status();
    r.submitIndirect([r.header(VIRTIO_BLK_T_OUT, 40), ...outBufs, st1]);
    await r.next();
    const inBufs: Buf[] = [];
    for (let i = 0; i < 4; i++) inBufs.push({ addr: r.alloc(4 * SECTOR), len: 4 * SECTOR, write: true });
    const st2 = r.status();
    r.submit([r.header(VIRTIO_BLK_T_IN, 40), ...inBufs, st2]);
    await r.next();

    const back = new Uint8Array(16 * SECTOR);
    inBufs.forEach((b, i) => r.memory.read(b.addr, back.subarray(i * 4 * SECTOR, (i + 1) * 4 * SECTOR)));
    assert.equal(r.memory.readU8(st1.addr), VIRTIO_BLK_S_OK);
    assert.equal(r.memory.readU8(st2.addr), VIRTIO_BLK_S_OK);
    assert.deepEqual(back, data);
  });
});

test('VirtioBlk takes any framing: header split in two, data and status sharing one buffer (§2.7.4)', async () => {
  await withRig({}, async (r) => {
    await r.request(VIRTIO_BLK_T_OUT, 3, { out: pattern(3) });
    const h = r.header(VIRTIO_BLK_T_IN, 3);
    const dataAndStatus = r.alloc(SECTOR + 1);
    r.memory.writeU8(dataAndStatus + SECTOR, 0xff);

    r.submit([{ addr: h.addr, len: 8 }, { addr: h.addr + 8, len: 8 }, { addr: dataAndStatus, len: SECTOR + 1, write: true }]);
    const used = await r.next();

    const back = new Uint8Array(SECTOR);
    r.memory.read(dataAndStatus, back);
    assert.equal(r.memory.readU8(dataAndStatus + SECTOR), VIRTIO_BLK_S_OK);
    assert.equal(used.len, SECTOR + 1);
    assert.deepEqual(back, pattern(3));
  });
});

test('VirtioBlk moves data across the edge of two host chunks of guest RAM', async () => {
  await withRig({ ram: 2 * 1024 * 1024, chunkSize: 1024 * 1024 }, async (r) => {
    const edge = 1024 * 1024;
    const data = pattern(9, 2);
    r.memory.write(edge - SECTOR, data);
    const st1 = r.status();
    r.submit([r.header(VIRTIO_BLK_T_OUT, 9), { addr: edge - SECTOR, len: 2 * SECTOR }, st1]);
    await r.next();
    r.memory.fill(edge - SECTOR, 2 * SECTOR);
    const st2 = r.status();

    r.submit([r.header(VIRTIO_BLK_T_IN, 9), { addr: edge - SECTOR, len: 2 * SECTOR, write: true }, st2]);
    await r.next();

    const back = new Uint8Array(2 * SECTOR);
    r.memory.read(edge - SECTOR, back);
    assert.equal(r.memory.readU8(st2.addr), VIRTIO_BLK_S_OK);
    assert.deepEqual(back, data);
    assert.deepEqual(new Uint8Array(r.image().subarray(9 * SECTOR, 11 * SECTOR)), data);
  });
});

test('VirtioBlk answers FLUSH with OK', async () => {
  await withRig({}, async (r) => {
    await r.request(VIRTIO_BLK_T_OUT, 0, { out: pattern(0) });

    const f = await r.request(VIRTIO_BLK_T_FLUSH, 0);

    assert.deepEqual(f, { status: VIRTIO_BLK_S_OK, len: 1 });
    assert.equal(r.blk.metrics.flushes, 1);
  });
});

test('VirtioBlk answers GET_ID with the serial padded with NULs to 20 bytes', async () => {
  await withRig({ serial: 'abc' }, async (r) => {
    const id = await r.request(VIRTIO_BLK_T_GET_ID, 0, { inLen: 20 });

    assert.equal(id.status, VIRTIO_BLK_S_OK);
    assert.equal(id.len, 21);
    assert.deepEqual([...id.data!], [0x61, 0x62, 0x63, ...new Array(17).fill(0)]);
  });
});

test('VirtioBlk answers GET_ID with a 20-byte serial and no terminator', async () => {
  await withRig({ serial: 'ABCDEFGHIJKLMNOPQRST' }, async (r) => {
    const id = await r.request(VIRTIO_BLK_T_GET_ID, 0, { inLen: 24 });

    assert.equal(Buffer.from(id.data!.subarray(0, 20)).toString('latin1'), 'ABCDEFGHIJKLMNOPQRST');
    assert.deepEqual([...id.data!.subarray(20)], [0, 0, 0, 0], 'nothing past 20 bytes');
  });
});

test('VirtioBlk discards a range: it reads back as zeros, and the image keeps its size', async () => {
  await withRig({ sectors: 4096 }, async (r) => {
    await r.request(VIRTIO_BLK_T_OUT, 1024, { out: pattern(1024, 128) });

    const d = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments([{ sector: 1024, count: 128 }]) });
    const rd = await r.request(VIRTIO_BLK_T_IN, 1024, { inLen: 128 * SECTOR });

    assert.deepEqual(d, { status: VIRTIO_BLK_S_OK, len: 1 });
    assert.ok(rd.data!.every((b) => b === 0), 'a punched hole reads as zeros');
    assert.equal(statSync(r.path).size, 4096 * SECTOR);
    assert.equal(r.blk.metrics.discards, 1);
  });
});

test('VirtioBlk writes zeroes over several ranges in one request, unmap allowed', async () => {
  await withRig({}, async (r) => {
    await r.request(VIRTIO_BLK_T_OUT, 10, { out: pattern(10, 30) });

    const wz = await r.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, { out: r.rangeSegments([{ sector: 12, count: 4 }, { sector: 30, count: 2, flags: 1 }]) });

    const img = r.image();
    assert.equal(wz.status, VIRTIO_BLK_S_OK);
    assert.ok(img.subarray(12 * SECTOR, 16 * SECTOR).every((b) => b === 0));
    assert.ok(img.subarray(30 * SECTOR, 32 * SECTOR).every((b) => b === 0));
    assert.deepEqual(new Uint8Array(img.subarray(16 * SECTOR, 30 * SECTOR)), pattern(10, 30).subarray(6 * SECTOR, 20 * SECTOR), 'between the ranges nothing changed');
    assert.equal(r.blk.metrics.writeZeroes, 1);
  });
});

test('VirtioBlk answers UNSUPP to a discard with unmap set and to unknown range flags (§5.2.6.2)', async () => {
  await withRig({}, async (r) => {
    const unmap = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments([{ sector: 0, count: 8, flags: 1 }]) });
    const unknown = await r.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, { out: r.rangeSegments([{ sector: 0, count: 8, flags: 2 }]) });

    assert.equal(unmap.status, VIRTIO_BLK_S_UNSUPP);
    assert.equal(unknown.status, VIRTIO_BLK_S_UNSUPP);
  });
});

test('VirtioBlk answers UNSUPP to discard and write-zeroes the driver did not negotiate', async () => {
  await withRig({ features: VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_FLUSH }, async (r) => {
    const d = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments([{ sector: 0, count: 8 }]) });
    const wz = await r.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, { out: r.rangeSegments([{ sector: 0, count: 8 }]) });

    assert.equal(d.status, VIRTIO_BLK_S_UNSUPP);
    assert.equal(wz.status, VIRTIO_BLK_S_UNSUPP);
  });
});

test('VirtioBlk refuses discard ranges past the capacity or longer than max_discard_sectors with IOERR', async () => {
  await withRig({ sectors: 2048 }, async (r) => {
    const past = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments([{ sector: 2040, count: 16 }]) });
    const long = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments([{ sector: 0, count: cfg32(r.blk, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS) + 1 }]) });
    const many = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments(Array.from({ length: 33 }, (_, i) => ({ sector: i, count: 1 }))) });

    assert.equal(past.status, VIRTIO_BLK_S_IOERR);
    assert.equal(long.status, VIRTIO_BLK_S_IOERR);
    assert.equal(many.status, VIRTIO_BLK_S_IOERR);
  });
});

test('VirtioBlk answers UNSUPP to request types it does not know', async () => {
  await withRig({}, async (r) => {
    const lifetime = await r.request(VIRTIO_BLK_T_GET_LIFETIME, 0, { inLen: 8 });
    const bogus = await r.request(0xdeadbeef, 0);

    assert.equal(lifetime.status, VIRTIO_BLK_S_UNSUPP);
    assert.equal(bogus.status, VIRTIO_BLK_S_UNSUPP);
    assert.equal(r.blk.metrics.unsupported, 2);
  });
});

// --- read-only ---

test('VirtioBlk refuses writes on a read-only disk with IOERR and leaves the image alone (§5.2.6.2)', async () => {
  const image = new Uint8Array(1024 * SECTOR);
  image.set(pattern(0), 0);
  await withRig({ readOnly: true, image, features: VIRTIO_F_VERSION_1 | VIRTIO_BLK_F_RO | VIRTIO_BLK_F_FLUSH }, async (r) => {
    const w = await r.request(VIRTIO_BLK_T_OUT, 0, { out: pattern(0, 1, 99) });
    const d = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: r.rangeSegments([{ sector: 0, count: 8 }]) });
    const wz = await r.request(VIRTIO_BLK_T_WRITE_ZEROES, 0, { out: r.rangeSegments([{ sector: 0, count: 8 }]) });
    const f = await r.request(VIRTIO_BLK_T_FLUSH, 0);
    const rd = await r.request(VIRTIO_BLK_T_IN, 0, { inLen: SECTOR });

    assert.equal(w.status, VIRTIO_BLK_S_IOERR);
    assert.equal(d.status, VIRTIO_BLK_S_IOERR);
    assert.equal(wz.status, VIRTIO_BLK_S_IOERR);
    assert.equal(f.status, VIRTIO_BLK_S_OK, 'a flush of a read-only disk has nothing to do');
    assert.deepEqual(rd.data, pattern(0));
    assert.deepEqual(new Uint8Array(r.image().subarray(0, SECTOR)), pattern(0));
    assert.equal(r.blk.metrics.readOnlyRefused, 3);
  });
});

// --- hostile requests ---

test('VirtioBlk refuses sectors past the capacity with IOERR', async () => {
  await withRig({ sectors: 1024 }, async (r) => {
    const atEnd = await r.request(VIRTIO_BLK_T_IN, 1024, { inLen: SECTOR });
    const across = await r.request(VIRTIO_BLK_T_OUT, 1020, { out: new Uint8Array(8 * SECTOR) });
    const huge = await r.request(VIRTIO_BLK_T_IN, 0xffff_ffff_ffff_fff0n, { inLen: SECTOR });
    const last = await r.request(VIRTIO_BLK_T_IN, 1023, { inLen: SECTOR });

    assert.equal(atEnd.status, VIRTIO_BLK_S_IOERR);
    assert.equal(across.status, VIRTIO_BLK_S_IOERR);
    assert.equal(huge.status, VIRTIO_BLK_S_IOERR);
    assert.equal(last.status, VIRTIO_BLK_S_OK, 'the last sector is in range');
    assert.equal(r.blk.metrics.outOfRange, 3);
    assert.equal(r.image().length, 1024 * SECTOR, 'nothing was written past the end');
  });
});

test('VirtioBlk answers a header shorter than 16 bytes with IOERR', async () => {
  await withRig({}, async (r) => {
    const h = r.header(VIRTIO_BLK_T_IN, 0);
    const st = r.status();

    r.submit([{ addr: h.addr, len: 8 }, st]);
    const used = await r.next();

    assert.equal(r.memory.readU8(st.addr), VIRTIO_BLK_S_IOERR);
    assert.equal(used.len, 1);
    assert.equal(r.blk.metrics.malformed, 1);
  });
});

test('VirtioBlk returns a request with no device-writable status byte unanswered, with used length 0', async () => {
  await withRig({}, async (r) => {
    const h = r.header(VIRTIO_BLK_T_OUT, 0);
    const data = r.put(pattern(0));
    const notWritable = r.alloc(1);
    r.memory.writeU8(notWritable, 0xff);

    r.submit([h, { addr: data, len: SECTOR }, { addr: notWritable, len: 1 }]);
    const used = await r.next();

    assert.equal(used.len, 0);
    assert.equal(r.memory.readU8(notWritable), 0xff, 'a device-readable buffer is never written');
    assert.equal(r.blk.metrics.noStatus, 1);
    assert.ok(r.image().subarray(0, SECTOR).every((b) => b === 0), 'and the write did not happen');
  });
});

test('VirtioBlk takes the last device-writable byte as the status, so a status buffer put before the data gets data', async () => {
  await withRig({}, async (r) => {
    await r.request(VIRTIO_BLK_T_OUT, 5, { out: pattern(5) });
    const st = r.status();
    const data = r.alloc(SECTOR);

    r.submit([r.header(VIRTIO_BLK_T_IN, 5), st, { addr: data, len: SECTOR, write: true }]);
    await r.next();

    // 513 writable bytes: 512 of data (the status buffer, then 511 bytes), then the status.
    assert.equal(r.memory.readU8(st.addr), pattern(5)[0]);
    assert.equal(r.memory.readU8(data + SECTOR - 1), VIRTIO_BLK_S_OK);
  });
});

test('VirtioBlk refuses data that is not a multiple of 512 bytes, or going the wrong way, with IOERR', async () => {
  await withRig({}, async (r) => {
    const shortWrite = await r.request(VIRTIO_BLK_T_OUT, 0, { out: new Uint8Array(100) });
    const oddRead = await r.request(VIRTIO_BLK_T_IN, 0, { inLen: 513 });
    const readWithOut = await r.request(VIRTIO_BLK_T_IN, 0, { out: new Uint8Array(SECTOR), inLen: SECTOR });
    const writeWithIn = await r.request(VIRTIO_BLK_T_OUT, 0, { out: new Uint8Array(SECTOR), inLen: SECTOR });
    const badRanges = await r.request(VIRTIO_BLK_T_DISCARD, 0, { out: new Uint8Array(20) });

    for (const x of [shortWrite, oddRead, readWithOut, writeWithIn, badRanges]) assert.equal(x.status, VIRTIO_BLK_S_IOERR);
    assert.equal(r.blk.metrics.malformed, 5);
    assert.ok(r.image().subarray(0, SECTOR).every((b) => b === 0));
  });
});

test('VirtioBlk refuses a request with more data segments than seg_max', async () => {
  await withRig({}, async (r) => {
    const segs: Buf[] = [];
    const one = r.alloc(SECTOR);
    for (let i = 0; i < 255; i++) segs.push({ addr: one, len: SECTOR, write: true });
    const st = r.status();

    r.submitIndirect([r.header(VIRTIO_BLK_T_IN, 0), ...segs, st]);
    await r.next();

    assert.equal(r.memory.readU8(st.addr), VIRTIO_BLK_S_IOERR);
  });
});

test('VirtioBlk reports a descriptor loop to the transport and stops taking requests', async () => {
  await withRig({}, async (r) => {
    const h = r.header(VIRTIO_BLK_T_IN, 0);
    r.driver.setDesc(0, { addr: h.addr, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 1 });
    r.driver.setDesc(1, { addr: r.alloc(SECTOR), len: SECTOR, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 1 });
    r.driver.publish(0);

    r.blk.queueNotify(0);

    assert.deepEqual(r.interrupt.errors.map((e) => e.error), ['CHAIN_LOOP']);
    assert.equal(r.driver.usedIdx(), 0);
  });
});

test('VirtioBlk answers IOERR when the host I/O fails (the image shrank under it)', async () => {
  await withRig({ sectors: 2048 }, async (r) => {
    truncateSync(r.path, 1024 * SECTOR);

    const rd = await r.request(VIRTIO_BLK_T_IN, 1500, { inLen: SECTOR });

    assert.equal(rd.status, VIRTIO_BLK_S_IOERR);
    assert.equal(r.blk.metrics.ioErrors, 1);
    assert.match(r.blk.lastError ?? '', /errno/);
  });
});

// --- flow control, reset, close ---

test('VirtioBlk keeps at most maxRequests at the disk and takes the rest as requests complete', async () => {
  await withRig({ maxRequests: 2 }, async (r) => {
    const statuses: Buf[] = [];
    for (let i = 0; i < 8; i++) {
      const st = r.status();
      statuses.push(st);
      r.submit([r.header(VIRTIO_BLK_T_OUT, i), { addr: r.put(pattern(i)), len: SECTOR }, st]);
    }
    const maxSeen = r.blk.inFlight;
    for (let i = 0; i < 8; i++) await r.next();

    assert.ok(maxSeen <= 2, `${maxSeen} in flight`);
    assert.ok(r.blk.metrics.throttled > 0);
    for (const st of statuses) assert.equal(r.memory.readU8(st.addr), VIRTIO_BLK_S_OK);
    for (let i = 0; i < 8; i++) assert.deepEqual(new Uint8Array(r.image().subarray(i * SECTOR, (i + 1) * SECTOR)), pattern(i));
  });
});

test('VirtioBlk answers a batch of completions with one interrupt', async () => {
  await withRig({}, async (r) => {
    for (let i = 0; i < 4; i++) r.submit([r.header(VIRTIO_BLK_T_IN, i), { addr: r.alloc(SECTOR), len: SECTOR, write: true }, r.status()]);
    assert.ok(r.disk.drainSync(5000), 'the I/O thread finished all four');

    r.disk.poll();

    assert.equal(r.driver.usedIdx(), 4);
    assert.deepEqual(r.interrupt.queues, [0]);
  });
});

test('VirtioBlk asks the driver not to notify while requests are at the disk, and to notify again once idle (§2.7.10)', async () => {
  await withRig({}, async (r) => {
    r.submit([r.header(VIRTIO_BLK_T_IN, 0), { addr: r.alloc(SECTOR), len: SECTOR, write: true }, r.status()]);
    const whileBusy = r.memory.readU16(r.driver.layout.used);

    await r.next();

    assert.equal(whileBusy, 1, 'VIRTQ_USED_F_NO_NOTIFY');
    assert.equal(r.memory.readU16(r.driver.layout.used), 0);
  });
});

test('VirtioBlk takes a request the driver added without notifying while others were at the disk', async () => {
  await withRig({}, async (r) => {
    r.submit([r.header(VIRTIO_BLK_T_OUT, 0), { addr: r.put(pattern(0)), len: SECTOR }, r.status()]);
    // The driver sees NO_NOTIFY and only publishes the next one.
    const st = r.status();
    const h = r.header(VIRTIO_BLK_T_OUT, 1);
    const data = r.put(pattern(1));
    r.driver.setDesc(10, { addr: h.addr, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 11 });
    r.driver.setDesc(11, { addr: data, len: SECTOR, flags: VIRTQ_DESC_F_NEXT, next: 12 });
    r.driver.setDesc(12, { addr: st.addr, len: 1, flags: VIRTQ_DESC_F_WRITE });
    r.driver.publish(10);

    await r.next();
    await r.next();

    assert.equal(r.memory.readU8(st.addr), VIRTIO_BLK_S_OK);
    assert.deepEqual(new Uint8Array(r.image().subarray(SECTOR, 2 * SECTOR)), pattern(1));
  });
});

test('VirtioBlk reset waits for requests in flight and answers none of them afterwards', async () => {
  await withRig({}, async (r) => {
    for (let i = 0; i < 4; i++) r.submit([r.header(VIRTIO_BLK_T_OUT, i), { addr: r.put(pattern(i)), len: SECTOR }, r.status()]);

    r.blk.reset();

    assert.equal(r.blk.inFlight, 0);
    assert.equal(r.disk.inFlight, 0);
    await new Promise((res) => setTimeout(res, 20));
    assert.equal(r.driver.usedIdx(), 0, 'nothing was pushed after the reset');
    assert.deepEqual(new Uint8Array(r.image().subarray(3 * SECTOR, 4 * SECTOR)), pattern(3), 'the writes themselves happened');
  });
});

test('VirtioBlk close flushes, ends the I/O thread, and then guest RAM can be unmapped', async () => {
  const r = new Rig({});
  await r.request(VIRTIO_BLK_T_OUT, 1, { out: pattern(1) });

  await r.blk.close();

  assert.doesNotThrow(() => munmapGuestRam(r.ramAddress));
  assert.deepEqual(new Uint8Array(readFileSync(r.path).subarray(SECTOR, 2 * SECTOR)), pattern(1));
  rmSync(r.dir, { recursive: true, force: true });
});

// --- the parser alone ---

function fakeChain(memory: GuestMemory, bufs: Buf[]) {
  // A DescriptorChain as the queue would build it, through a real queue.
  const layout = FakeSplitQueue.layoutAt(0x100, 8);
  const driver = new FakeSplitQueue(memory, layout);
  bufs.forEach((b, i) => driver.setDesc(i, { addr: b.addr, len: b.len, flags: (b.write ? VIRTQ_DESC_F_WRITE : 0) | (i < bufs.length - 1 ? VIRTQ_DESC_F_NEXT : 0), next: i + 1 }));
  driver.publish(0);
  const q = Virtqueue.create(memory, layout, { eventIdx: false, indirect: false }) as Virtqueue;
  return q.pop() as Exclude<ReturnType<Virtqueue['pop']>, undefined | QueueError>;
}

const LIMITS: BlkLimits = { capacity: 1000, readOnly: false, segMax: 4, maxDataBytes: 1 << 20, discard: true, writeZeroes: true, writeThrough: false, maxRangeSegments: 4 };

test('parseBlkRequest asks for write-through (an fdatasync per write) when FLUSH was not negotiated', () => {
  const memory = GuestMemory.anonymous(1 << 20);
  const h = new Uint8Array(16);
  new DataView(h.buffer).setUint32(0, VIRTIO_BLK_T_OUT, true);
  memory.write(0x8000, h);
  const chain = fakeChain(memory, [{ addr: 0x8000, len: 16 }, { addr: 0x9000, len: SECTOR }, { addr: 0xa000, len: 1, write: true }]);
  const out = new BlkRequest();

  parseBlkRequest(memory, chain, { ...LIMITS, writeThrough: true }, new Float64Array(8), out);

  assert.equal(out.verdict, BLK_SUBMIT);
  assert.equal(out.op, IO_OP_WRITE | IO_OP_SYNC);
});

test('parseBlkRequest answers a zero-length read OK without going to the disk', () => {
  const memory = GuestMemory.anonymous(1 << 20);
  const chain = fakeChain(memory, [{ addr: 0x8000, len: 16 }, { addr: 0xa000, len: 1, write: true }]);
  const out = new BlkRequest();

  parseBlkRequest(memory, chain, LIMITS, new Float64Array(8), out);

  assert.equal(out.verdict, BLK_ANSWER);
  assert.equal(out.status, VIRTIO_BLK_S_OK);
});

test('parseBlkRequest gives host offsets and lengths of the data, not of the header or status', () => {
  const memory = GuestMemory.anonymous(1 << 20);
  const h = new Uint8Array(16);
  new DataView(h.buffer).setUint32(0, VIRTIO_BLK_T_IN, true);
  new DataView(h.buffer).setUint32(8, 7, true);
  memory.write(0x8000, h);
  const chain = fakeChain(memory, [{ addr: 0x8000, len: 16 }, { addr: 0x9000, len: SECTOR }, { addr: 0xa000, len: SECTOR + 1, write: true }]);
  const out = new BlkRequest();
  const segs = new Float64Array(8);

  parseBlkRequest(memory, chain, LIMITS, segs, out);

  assert.equal(out.verdict, BLK_ANSWER, 'device-readable data on a read is refused');
  const chain2 = fakeChain(memory, [{ addr: 0x8000, len: 16 }, { addr: 0x9000, len: SECTOR, write: true }, { addr: 0xa000, len: SECTOR + 1, write: true }]);
  parseBlkRequest(memory, chain2, LIMITS, segs, out);
  assert.equal(out.verdict, BLK_SUBMIT);
  assert.equal(out.offset, 7 * SECTOR);
  assert.equal(out.nseg, 2);
  assert.deepEqual([...segs.subarray(0, 4)], [0x9000, SECTOR, 0xa000, SECTOR]);
  assert.equal(out.statusAddr, 0xa000 + SECTOR);
  assert.equal(out.usedLen, 2 * SECTOR + 1);
});
