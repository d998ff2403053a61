import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import { GuestMemory } from '../../memory/guest-memory.js';
import { VIRTIO_F_VERSION_1, VIRTIO_ID_CONSOLE, type VirtioInterrupt } from './device.js';
import { FakeSplitQueue } from './fake-driver.js';
import { VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, Virtqueue, type QueueError } from './queue.js';
import {
  VIRTIO_CONSOLE_CFG_COLS,
  VIRTIO_CONSOLE_CFG_EMERG_WR,
  VIRTIO_CONSOLE_CFG_ROWS,
  VIRTIO_CONSOLE_F_EMERG_WRITE,
  VIRTIO_CONSOLE_F_MULTIPORT,
  VIRTIO_CONSOLE_F_SIZE,
  VIRTIO_CONSOLE_TX_MAX_BYTES,
  VirtioConsole,
  type VirtioConsoleOptions,
} from './console.js';

const RXQ = 0x1000;
const TXQ = 0x3000;
const BUF = 0x10000;

class RecordingInterrupt implements VirtioInterrupt {
  readonly queues: number[] = [];
  configs = 0;
  readonly errors: QueueError[] = [];
  notifyQueue(i: number): void {
    this.queues.push(i);
  }
  notifyConfig(): void {
    this.configs++;
  }
  queueError(_i: number, e: QueueError): void {
    this.errors.push(e);
  }
}

const text = (s: string) => new TextEncoder().encode(s);
const str = (b: Uint8Array) => new TextDecoder().decode(b);

function setup(options: Partial<VirtioConsoleOptions> = {}, qsize = 16) {
  const memory = GuestMemory.anonymous(1024 * 1024);
  const rxLayout = FakeSplitQueue.layoutAt(RXQ, qsize);
  const txLayout = FakeSplitQueue.layoutAt(TXQ, qsize);
  const rx = new FakeSplitQueue(memory, rxLayout);
  const tx = new FakeSplitQueue(memory, txLayout);
  const interrupt = new RecordingInterrupt();
  const out: Uint8Array[] = [];
  const console = new VirtioConsole({ output: (b) => out.push(b), ...options });
  const features = options.size ? VIRTIO_F_VERSION_1 | VIRTIO_CONSOLE_F_SIZE : VIRTIO_F_VERSION_1;
  const activate = () =>
    console.activate({
      memory,
      queues: [Virtqueue.create(memory, rxLayout, { eventIdx: false, indirect: false }) as Virtqueue, Virtqueue.create(memory, txLayout, { eventIdx: false, indirect: false }) as Virtqueue],
      interrupt,
      features,
    });
  const output = () => str(Buffer.concat(out));
  /** Posts a receive buffer of `len` bytes at descriptor `d`. */
  const postRx = (d: number, len: number) => {
    rx.setDesc(d, { addr: BUF + d * 0x1000, len, flags: VIRTQ_DESC_F_WRITE });
    rx.publish(d);
    console.queueNotify(0);
  };
  const rxBytes = (d: number, len: number) => {
    const b = new Uint8Array(len);
    memory.read(BUF + d * 0x1000, b);
    return str(b);
  };
  /** Puts `s` in a transmit buffer at descriptor `d` (in the upper half of BUF's area). */
  const send = (d: number, s: string, notify = true) => {
    const at = BUF + 0x40000 + d * 0x1000;
    memory.write(at, text(s));
    tx.setDesc(d, { addr: at, len: s.length });
    tx.publish(d);
    if (notify) console.queueNotify(1);
  };
  return { memory, rx, tx, interrupt, console, activate, output, postRx, rxBytes, send, out };
}

test('VirtioConsole is device type 3 with receiveq and transmitq, emergency write, and no multiport', () => {
  const { console } = setup();

  assert.equal(console.deviceType, VIRTIO_ID_CONSOLE);
  assert.equal(console.queueMaxSizes.length, 2);
  assert.notEqual(console.deviceFeatures & VIRTIO_CONSOLE_F_EMERG_WRITE, 0n);
  assert.equal(console.deviceFeatures & VIRTIO_CONSOLE_F_MULTIPORT, 0n);
  assert.equal(console.deviceFeatures & VIRTIO_CONSOLE_F_SIZE, 0n, 'no size unless one is given');
});

test('VirtioConsole hands what the guest transmits to output, returns the buffer with length 0, and interrupts', () => {
  const { tx, interrupt, activate, output, send } = setup();
  activate();

  send(0, 'hello ');
  send(1, 'guest\n');

  assert.equal(output(), 'hello guest\n');
  assert.deepEqual(tx.used(0), { id: 0, len: 0 });
  assert.equal(tx.usedIdx(), 2);
  assert.deepEqual(interrupt.queues, [1, 1]);
});

test('VirtioConsole gathers one transmit buffer split over several descriptors', () => {
  const { memory, tx, console, activate, output } = setup();
  activate();
  memory.write(BUF, text('abc'));
  memory.write(BUF + 0x100, text('def'));
  tx.setDesc(0, { addr: BUF, len: 3, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  tx.setDesc(1, { addr: BUF + 0x100, len: 3 });
  tx.publish(0);

  console.queueNotify(1);

  assert.equal(output(), 'abcdef');
});

test('VirtioConsole keeps host input until the guest posts a receive buffer, then delivers it', () => {
  const { rx, console, activate, postRx, rxBytes } = setup();
  activate();

  const taken = console.input(text('ls -l\r'));
  const before = rx.usedIdx();
  postRx(0, 64);

  assert.equal(taken, 6);
  assert.equal(before, 0);
  assert.deepEqual(rx.used(0), { id: 0, len: 6 });
  assert.equal(rxBytes(0, 6), 'ls -l\r');
  assert.equal(console.pendingInput, 0);
});

test('VirtioConsole fills several small receive buffers in order', () => {
  const { rx, console, activate, postRx, rxBytes } = setup();
  activate();
  postRx(0, 4);
  postRx(1, 4);

  console.input(text('abcdefg'));

  assert.equal(rx.usedIdx(), 2);
  assert.deepEqual(rx.used(1), { id: 1, len: 3 });
  assert.equal(rxBytes(0, 4) + rxBytes(1, 3), 'abcdefg');
});

test('VirtioConsole delivers input typed before the driver set DRIVER_OK once it does', () => {
  const { rx, console, activate, rxBytes } = setup();
  console.input(text('early'));
  rx.setDesc(0, { addr: BUF, len: 16, flags: VIRTQ_DESC_F_WRITE });
  rx.publish(0);

  activate();

  assert.equal(rxBytes(0, 5), 'early');
});

test('VirtioConsole takes no more input than its buffer holds and calls rxSpace when the guest makes room', () => {
  let spaces = 0;
  const { console, activate, postRx, rxBytes } = setup({ rxBufferBytes: 8, rxSpace: () => spaces++ });
  activate();
  const input = text('0123456789abcdef');

  const first = console.input(input);
  const second = console.input(input.subarray(first));
  const spacesWhileFull = spaces;
  postRx(0, 6);
  const spacesAfterRoom = spaces;
  const third = console.input(input.subarray(first));
  postRx(1, 16);

  assert.equal(first, 8);
  assert.equal(second, 0, 'a full buffer takes nothing');
  assert.equal(spacesWhileFull, 0);
  assert.equal(spacesAfterRoom, 1, 'rxSpace once the guest took bytes');
  assert.equal(third, 6);
  assert.equal(rxBytes(0, 6) + rxBytes(1, 8), '0123456789abcd', 'in order, nothing lost');
});

test('VirtioConsole answers a caller that refills on rxSpace until all its input is delivered', () => {
  const pending: Uint8Array[] = [];
  let c!: VirtioConsole;
  const feed = () => {
    while (pending.length > 0) {
      const head = pending[0]!;
      const taken = c.input(head);
      if (taken < head.length) {
        pending[0] = head.subarray(taken);
        return;
      }
      pending.shift();
    }
  };
  const r = setup({ rxBufferBytes: 4, rxSpace: feed });
  c = r.console;
  r.activate();
  pending.push(text('the quick brown fox'));
  feed();

  for (let d = 0; d < 8; d++) r.postRx(d, 3);

  let got = '';
  for (let i = 0; i < r.rx.usedIdx(); i++) got += r.rxBytes(r.rx.used(i).id, r.rx.used(i).len);
  assert.equal(got, 'the quick brown fox'.slice(0, 24));
});

test('VirtioConsole skips device-readable buffers in the receiveq and counts them (§5.3.6.1)', () => {
  const { memory, rx, console, activate } = setup();
  activate();
  rx.setDesc(0, { addr: BUF, len: 4, flags: VIRTQ_DESC_F_NEXT, next: 1 });
  rx.setDesc(1, { addr: BUF + 0x100, len: 4, flags: VIRTQ_DESC_F_WRITE });
  rx.publish(0);

  console.input(text('xy'));

  const b = new Uint8Array(2);
  memory.read(BUF + 0x100, b);
  assert.equal(str(b), 'xy');
  assert.deepEqual(rx.used(0), { id: 0, len: 2 });
  assert.equal(console.metrics.wrongDirection, 1);
});

test('VirtioConsole takes at most 64 KiB from one transmit buffer and counts the rest as dropped', () => {
  const { tx, console, activate, out } = setup();
  activate();
  tx.setDesc(0, { addr: 0, len: 1024 * 1024 - 1 });
  tx.publish(0);

  console.queueNotify(1);

  assert.equal(out[0]!.length, VIRTIO_CONSOLE_TX_MAX_BYTES);
  assert.equal(console.metrics.txDropped, 1024 * 1024 - 1 - VIRTIO_CONSOLE_TX_MAX_BYTES);
  assert.equal(tx.usedIdx(), 1);
});

test('VirtioConsole sends a byte written to emerg_wr, even before the driver set it up (§5.3.5.1)', () => {
  const { console, output } = setup();

  console.writeConfig(VIRTIO_CONSOLE_CFG_EMERG_WR, Uint8Array.of(0x21, 0, 0, 0));

  assert.equal(output(), '!');
  assert.equal(console.metrics.emergencyWrites, 1);
});

test('VirtioConsole reports its size when given one and tells the driver when it changes', () => {
  const { console, interrupt, activate } = setup({ size: { cols: 80, rows: 25 } });
  activate();
  const read16 = (off: number) => {
    const b = new Uint8Array(2);
    console.readConfig(off, b);
    return b[0]! | (b[1]! << 8);
  };
  const before = [read16(VIRTIO_CONSOLE_CFG_COLS), read16(VIRTIO_CONSOLE_CFG_ROWS)];

  console.resize(132, 43);

  assert.notEqual(console.deviceFeatures & VIRTIO_CONSOLE_F_SIZE, 0n);
  assert.deepEqual(before, [80, 25]);
  assert.deepEqual([read16(VIRTIO_CONSOLE_CFG_COLS), read16(VIRTIO_CONSOLE_CFG_ROWS)], [132, 43]);
  assert.equal(interrupt.configs, 1);
});

test('VirtioConsole keeps undelivered input across a reset and in its saved state', () => {
  const { console, activate } = setup();
  activate();
  console.input(text('pending'));

  console.reset();
  const state = console.save();
  const restored = new VirtioConsole({ output: () => {}, state });

  assert.equal(console.pendingInput, 7);
  assert.equal(restored.pendingInput, 7);
  assert.deepEqual(JSON.parse(JSON.stringify(state)), state, 'the state is JSON');
});

test('VirtioConsole reports a broken receive chain to the transport', () => {
  const { rx, console, interrupt, activate } = setup();
  activate();
  rx.setDesc(0, { addr: BUF, len: 4, flags: VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, next: 0 });
  rx.publish(0);

  console.input(text('x'));

  assert.deepEqual(interrupt.errors.map((e) => e.error), ['CHAIN_LOOP']);
  assert.equal(console.pendingInput, 1, 'the byte stays');
});

test('VirtioConsole sends a queue\'s worth per turn and the rest on the next one', async () => {
  const { tx, console, activate, output, send } = setup({}, 4);
  activate();
  for (let d = 0; d < 4; d++) send(d, String(d), false);
  console.queueNotify(1);
  send(0, '4', false);
  send(1, '5', false); // the driver refills as fast as the device empties

  await tick();

  assert.equal(output(), '012345');
  assert.equal(tx.usedIdx(), 6);
});

test('VirtioConsole ignores notifications after reset', () => {
  const { tx, console, activate, output, send } = setup();
  activate();
  console.reset();

  send(0, 'lost');

  assert.equal(output(), '');
  assert.equal(tx.usedIdx(), 0);
});
