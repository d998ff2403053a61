/**
 * The tap's rings on their own. The transmit ring over a FIFO instead of a tap (no
 * privileges needed): what a write puts in the FIFO is what a tap would get as one frame,
 * and a full FIFO makes writes wait the way a tap whose send buffer is full does. The
 * receive ring over a real tap, in a network namespace of the test's own (root only).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, constants, existsSync, mkdtempSync, openSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mmapGuestRam, munmapGuestRam } from '../../../kvm.js';
import { TapTxRing } from './tap-uring.js';

class Fifo {
  readonly dir = mkdtempSync(join(tmpdir(), 'vmctl-txring-'));
  readonly fd: number;
  constructor() {
    const path = join(this.dir, 'fifo');
    execFileSync('mkfifo', [path]);
    // O_RDWR: both ends in one fd (Linux allows it on a FIFO); non-blocking like a tap's fd.
    this.fd = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  }
  /** Everything in the FIFO now (at most `max` bytes). */
  drain(max = Infinity): Uint8Array {
    const chunks: Buffer[] = [];
    const b = Buffer.alloc(65536);
    for (let total = 0; total < max; ) {
      let n: number;
      try {
        n = readSync(this.fd, b, 0, Math.min(b.length, max - total), null);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') break;
        throw err;
      }
      if (n <= 0) break;
      total += n;
      chunks.push(Buffer.from(b.subarray(0, n)));
    }
    return new Uint8Array(Buffer.concat(chunks));
  }
  /** Writes until the FIFO is full; returns the bytes written. */
  fill(): number {
    const b = Buffer.alloc(4096, 0xee);
    let total = 0;
    for (;;) {
      try {
        total += writeSync(this.fd, b);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return total;
        throw err;
      }
    }
  }
  close(): void {
    closeSync(this.fd);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function setup() {
  const fifo = new Fifo();
  const ram = mmapGuestRam(1024 * 1024);
  const bytes = new Uint8Array(ram.chunks[0]!);
  const ring = TapTxRing.open(fifo.fd);
  if (typeof ring === 'string') throw new Error(ring);
  const header = (n: number) => new Uint8Array(12).fill(n);
  const frame = (at: number, len: number, n: number) => {
    bytes.fill(n, at, at + len);
    return bytes.subarray(at, at + len);
  };
  const end = () => {
    ring.close();
    fifo.close();
    munmapGuestRam(ram.address);
  };
  return { fifo, ring, header, frame, end };
}

test('TapTxRing writes each queued packet as one write, header from its own copy, frame from guest RAM, in one flush', () => {
  const { fifo, ring, header, frame, end } = setup();
  try {
    const h = header(1);
    assert.equal(ring.queue(7, [h, frame(0x1000, 100, 2), frame(0x2000, 50, 3)]), true);
    h.fill(9); // the device reuses its header buffer: the ring kept a copy
    assert.equal(ring.queue(8, [header(4), frame(0x3000, 60, 5)]), true);
    const done: [number, number][] = [];

    const inFlight = ring.flush((t, r) => done.push([t, r]));

    assert.equal(inFlight, 0);
    assert.deepEqual(done, [[7, 162], [8, 72]]);
    const got = fifo.drain();
    const want = new Uint8Array([...new Uint8Array(12).fill(1), ...new Uint8Array(100).fill(2), ...new Uint8Array(50).fill(3), ...new Uint8Array(12).fill(4), ...new Uint8Array(60).fill(5)]);
    assert.deepEqual(got, want);
  } finally {
    end();
  }
});

test('TapTxRing takes no more packets than a batch holds, nor any while packets are in flight', () => {
  const { fifo, ring, header, frame, end } = setup();
  try {
    let queued = 0;
    while (ring.queue(queued, [header(1), frame(0, 10, 1)])) queued++;
    assert.equal(queued, 256);
    ring.flush(() => {});
    fifo.drain();
    fifo.fill();
    assert.equal(ring.queue(1, [header(1), frame(0, 10, 1)]), true);
    assert.equal(ring.flush(() => {}), 1, 'the full FIFO keeps it in flight');
    assert.equal(ring.queue(2, [header(1), frame(0, 10, 1)]), false);
  } finally {
    fifo.drain();
    end();
  }
});

test('TapTxRing writes packets that found the fd full once it has room, each whole, and reports them through onLateDone', async () => {
  const { fifo, ring, header, frame, end } = setup();
  try {
    const filled = fifo.fill();
    ring.queue(1, [header(1), frame(0x1000, 100, 0x11)]);
    ring.queue(2, [header(2), frame(0x2000, 100, 0x22)]);
    const early: number[] = [];
    const inFlight = ring.flush((t) => early.push(t));
    const late = new Promise<[number, number][]>((resolve) => {
      const got: [number, number][] = [];
      ring.onLateDone = (t, r) => {
        got.push([t, r]);
        if (got.length === 2) resolve(got);
      };
    });

    const before = fifo.drain(filled); // what filled it: room again
    const results = await late;
    const after = fifo.drain();

    assert.equal(inFlight, 2);
    assert.deepEqual(early, []);
    assert.equal(before.length, filled);
    // The kernel finishes writes that waited for room in the order they wake up.
    assert.deepEqual(results.sort(), [[1, 112], [2, 112]]);
    const one = [...new Uint8Array(12).fill(1), ...new Uint8Array(100).fill(0x11)];
    const two = [...new Uint8Array(12).fill(2), ...new Uint8Array(100).fill(0x22)];
    assert.ok([[...one, ...two], [...two, ...one]].some((w) => Buffer.from(after).equals(Buffer.from(w))), 'both packets, each whole');
    assert.equal(ring.inFlight, 0);
  } finally {
    end();
  }
});

test('TapTxRing.drainSync waits for packets in flight, and gives up after its timeout', () => {
  const { fifo, ring, header, frame, end } = setup();
  try {
    fifo.fill();
    ring.queue(1, [header(1), frame(0, 10, 1)]);
    ring.flush(() => {});

    const timedOut = ring.drainSync(50);
    fifo.drain();
    const drained = ring.drainSync(5000);

    assert.equal(timedOut, false);
    assert.equal(drained, true);
    assert.equal(ring.inFlight, 0);
  } finally {
    end();
  }
});

const canNetns = process.getuid?.() === 0 && existsSync('/dev/net/tun') && (() => {
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Runs `body` (a module's source) in a node process inside a network namespace of this
 * test's own, deleted afterwards; returns what it printed last, parsed as JSON.
 */
function inNetns(body: string): unknown {
  const ns = `vmctl-rxring-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-rxring-'));
  const file = join(dir, 'body.mts');
  writeFileSync(file, body);
  execFileSync('ip', ['netns', 'add', ns]);
  try {
    const out = execFileSync('ip', ['netns', 'exec', ns, process.execPath, '--import', 'tsx', file], { encoding: 'utf8', timeout: 30_000 });
    return JSON.parse(out.trim().split('\n').at(-1)!);
  } finally {
    execFileSync('ip', ['netns', 'del', ns]);
    rmSync(dir, { recursive: true, force: true });
  }
}

test('TapRxRing reads the frames waiting in a tap, one per chain, in one flush; the reads past them find none', { skip: canNetns ? false : 'needs root, /dev/net/tun and ip(8) for a network namespace' }, () => {
  const tapModule = new URL('./tap.ts', import.meta.url).href;
  const result = inNetns(`
    import { execFileSync } from 'node:child_process';
    import dgram from 'node:dgram';
    import { TapBackend } from ${JSON.stringify(tapModule)};
    const tap = TapBackend.open('rxr0');
    const ip = (...a) => execFileSync('ip', a);
    ip('link', 'set', 'lo', 'up');
    ip('link', 'set', 'rxr0', 'up');
    ip('addr', 'add', '10.9.0.1/24', 'dev', 'rxr0');
    ip('neigh', 'replace', '10.9.0.2', 'lladdr', '52:54:00:12:34:56', 'dev', 'rxr0', 'nud', 'permanent');
    const sock = dgram.createSocket('udp4');
    await new Promise((r) => sock.bind(0, '10.9.0.1', r));
    // Whatever the stack sent on the new link first (IPv6 chatter) goes first.
    const drain = new Uint8Array(4096);
    await new Promise((r) => setTimeout(r, 200));
    while (tap.readv([drain]) > 0);
    for (let i = 0; i < 3; i++) await new Promise((r) => sock.send(Buffer.alloc(100 + i, i), 7777, '10.9.0.2', r));
    const ring = tap.rxRing;
    const bufs = [0, 1, 2, 3, 4].map(() => new Uint8Array(2048));
    bufs.forEach((b, i) => ring.queue(i, [b]));
    const got = [];
    const n = ring.flush((t, bytes) => got.push([t, bytes, bufs[t][12 + 14 + 20 + 8]]));
    const again = ring.flush(() => {});
    sock.close();
    tap.close();
    console.log(JSON.stringify({ n, got, again }));
  `);

  // vnet header (12) + Ethernet (14) + IPv4 (20) + UDP (8) + payload; the payload's first byte is i.
  assert.deepEqual(result, { n: 3, got: [[0, 154, 0], [1, 155, 1], [2, 156, 2]], again: 0 });
});
