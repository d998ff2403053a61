// watchFd(): a uv_poll_t on the calling thread's loop, for eventfds (KVM_IOEVENTFD) and tap
// fds. Callbacks from other threads' writes and from a guest's port write, stop/start/update,
// ref/unref, GC, and environment teardown. Only the ioeventfd test needs /dev/kvm.
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, constants as F, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, it } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

import type { Worker } from 'node:worker_threads';

import {
  FdWatch, KvmError, closeFd, constants as C, eventfd, eventfdRead, eventfdWrite, readv, watchFd as addonWatchFd, writev,
} from '@vmctl/kvm-native';

import { hasKvm, nextMessage, realModeGuest, startWorker as helperStartWorker } from './helpers.js';

// Every watch and worker a test makes is closed/terminated after it, even when it fails: a
// ref'd watch or a live worker left behind would keep this file's process running forever.
const liveWatches = new Set<FdWatch>();
const liveWorkers = new Set<Worker>();
const watchFd: typeof addonWatchFd = (fd, events, callback) => {
  const w = addonWatchFd(fd, events, callback);
  liveWatches.add(w);
  return w;
};
function startWorker(source: string, workerData: unknown): Worker {
  const worker = helperStartWorker(source, workerData);
  liveWorkers.add(worker);
  return worker;
}
afterEach(async () => {
  for (const w of liveWatches) w.close();
  liveWatches.clear();
  await Promise.all([...liveWorkers].map((w) => w.terminate()));
  liveWorkers.clear();
});

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves once `cond()` holds, checking every few ms; rejects after `ms`. */
async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/**
 * A stopped watch whose `next()` starts it and resolves with the events of its next callback
 * (the callback stops it again): one callback per next(), though polling is level-triggered.
 */
function recorder(fd: number, events: 'r' | 'w' | 'rw') {
  let waiting: ((ev: number) => void) | null = null;
  const w = watchFd(fd, events, (ev) => {
    w.stop();
    const resolve = waiting;
    waiting = null;
    resolve?.(ev);
  });
  w.stop();
  return {
    w,
    next(): Promise<number> {
      return new Promise((resolve) => {
        waiting = resolve;
        w.start();
      });
    },
  };
}

let dir: string;
let fifoCount = 0;
/** A new FIFO opened O_RDWR|O_NONBLOCK: both ends of an empty pipe in one fd. */
function fifoRdwr(): number {
  const path = join(dir, `fifo${fifoCount++}`);
  execFileSync('mkfifo', [path]);
  return openSync(path, F.O_RDWR | F.O_NONBLOCK);
}

before(() => { dir = mkdtempSync(join(tmpdir(), 'vmctl-fdwatch-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

describe('watchFd()', () => {
  it('calls back on this thread when another worker_thread writes the eventfd', async () => {
    const fd = eventfd();
    const calls: { events: number; self: boolean; value: bigint }[] = [];
    const w = watchFd(fd, 'r', function (this: FdWatch, events) {
      calls.push({ events, self: this === w, value: eventfdRead(fd) });
    });
    assert.ok(w instanceof FdWatch);
    assert.equal(w.fd, fd);
    assert.equal(w.events, 'r');
    assert.equal(w.active, true);
    assert.equal(w.hasRef(), true);

    const worker = startWorker(`
      parentPort.on('message', (n) => {
        if (n === 0) return parentPort.close();
        kvm.eventfdWrite(workerData.fd, BigInt(n));
        parentPort.postMessage('written');
      });
    `, { fd });
    try {
      for (const n of [5, 7]) {
        const written = nextMessage(worker);
        worker.postMessage(n);
        await written;
        await until(() => calls.length === (n === 5 ? 1 : 2), 'the callback');
      }
      assert.deepEqual(calls, [
        { events: C.UV_READABLE, self: true, value: 5n },
        { events: C.UV_READABLE, self: true, value: 7n },
      ]);
      await sleep(20);
      assert.equal(calls.length, 2, 'no callback while the counter is zero');
    } finally {
      worker.postMessage(0);
      await once(worker, 'exit');
      w.close();
      closeFd(fd);
    }
  });

  it('works in a worker_thread too: its own loop is called back for the main thread\'s write', async () => {
    const fd = eventfd();
    const worker = startWorker(`
      const w = kvm.watchFd(workerData.fd, 'r', (events) => {
        parentPort.postMessage({ events, value: kvm.eventfdRead(workerData.fd) });
        w.close(); // the worker's loop is empty now: it ends by itself
      });
      parentPort.postMessage('armed');
    `, { fd });
    const exited = once(worker, 'exit'); // listen now: it may end right after its message
    assert.equal(await nextMessage(worker), 'armed');
    const fired = nextMessage(worker);
    eventfdWrite(fd, 3n);
    assert.deepEqual(await fired, { events: C.UV_READABLE, value: 3n });
    assert.deepEqual(await exited, [0]);
    closeFd(fd);
  });

  it('runs promise reactions queued by the callback before the loop goes on (MakeCallback)', async () => {
    const fd = eventfd();
    const order: string[] = [];
    const done = new Promise<void>((resolve) => {
      const w = watchFd(fd, 'r', () => {
        eventfdRead(fd);
        order.push('callback');
        void Promise.resolve().then(() => order.push('microtask'));
        process.nextTick(() => order.push('tick'));
        setImmediate(() => { order.push('immediate'); w.close(); resolve(); });
      });
    });
    eventfdWrite(fd);
    await done;
    assert.deepEqual(order, ['callback', 'tick', 'microtask', 'immediate']);
    closeFd(fd);
  });

  it('fires for a KVM ioeventfd written by a guest in a vCPU worker, without a vCPU exit', {
    skip: hasKvm ? false : 'no /dev/kvm',
    timeout: 30_000,
  }, async () => {
    const efd = eventfd();
    const g = realModeGuest([
      0xba, 0x00, 0x05, //  mov dx, 0x500
      0xb0, 0x01, //        mov al, 1
      0xee, //              out dx, al     ; ioeventfd: the kernel signals efd, no exit
      0xf4, //              hlt
    ], { beforeVcpu: (vm) => vm.ioeventfd({ addr: 0x500, len: 1, fd: efd, pio: true }) });
    let w: FdWatch | undefined;
    const fired = new Promise<{ events: number; value: bigint }>((resolve) => {
      w = watchFd(efd, 'r', (events) => {
        w!.close();
        resolve({ events, value: eventfdRead(efd) });
      });
    });
    const worker = startWorker(`
      const vcpu = kvm.Vcpu.fromFd(workerData.fd, 0);
      const exit = vcpu.run();
      vcpu.close();
      parentPort.postMessage(exit);
    `, { fd: g.vcpu.fd });
    const exited = once(worker, 'exit');
    try {
      assert.equal(await nextMessage(worker), C.KVM_EXIT_HLT, 'the port write did not exit to userspace');
      assert.deepEqual(await fired, { events: C.UV_READABLE, value: 1n });
      await exited;
    } finally {
      w?.close();
      await worker.terminate();
      g.close();
      closeFd(efd);
    }
  });
});

describe('FdWatch.stop(), start(), update(), close()', () => {
  it('after stop() no callback comes, though the fd stays readable; start() resumes', async () => {
    const fd = eventfd();
    let calls = 0;
    const w = watchFd(fd, 'r', () => {
      calls++;
      w.stop(); // the counter is never read: without stop() this fires on every loop turn
    });
    eventfdWrite(fd);
    await until(() => calls === 1, 'the first callback');
    assert.equal(w.active, false);
    await sleep(50);
    assert.equal(calls, 1);

    w.start();
    assert.equal(w.active, true);
    await until(() => calls === 2, 'the callback after start()');
    await sleep(30);
    assert.equal(calls, 2);

    // stop() before the loop turns: the pending readiness is never delivered.
    w.start();
    w.stop();
    await sleep(30);
    assert.equal(calls, 2);
    w.close();
    closeFd(fd);
  });

  it('a watch stopped by another watch\'s callback in the same loop turn is not called', async () => {
    const a = eventfd();
    const b = eventfd();
    let calls = 0;
    const stopBoth = () => { calls++; wa.stop(); wb.stop(); };
    const wa = watchFd(a, 'r', stopBoth);
    const wb = watchFd(b, 'r', stopBoth);
    eventfdWrite(a); // both ready before the loop polls: one epoll_wait returns both
    eventfdWrite(b);
    await sleep(50);
    assert.equal(calls, 1);
    wa.close();
    wb.close();
    closeFd(a);
    closeFd(b);
  });

  it('close() inside the callback: no further callbacks, start() is EBADF, close() again is a no-op', async () => {
    const fd = eventfd();
    let calls = 0;
    const w = watchFd(fd, 'r', () => { calls++; w.close(); });
    eventfdWrite(fd);
    await until(() => calls === 1, 'the callback');
    await sleep(30);
    assert.equal(calls, 1);
    assert.equal(w.active, false);
    assert.throws(() => w.start(), (e: unknown) =>
      e instanceof KvmError && e.ioctl === 'uv_poll_start' && e.code === 'EBADF');
    w.stop();
    w.close();
    // The fd is free again for a new watch on this loop.
    const again = recorder(fd, 'r');
    assert.equal(await again.next(), C.UV_READABLE);
    again.w.close();
    closeFd(fd);
  });

  it('reports readable/writable as UV_* bits; update() changes what it waits for', async () => {
    const fd = fifoRdwr(); // an empty pipe, both ends
    const r = recorder(fd, 'w');
    assert.equal(await r.next(), C.UV_WRITABLE);
    r.w.update('rw');
    assert.equal(r.w.events, 'rw');
    assert.equal(await r.next(), C.UV_WRITABLE, 'empty: writable only');
    assert.equal(writev(fd, [new Uint8Array([1, 2, 3])]), 3);
    assert.equal(await r.next(), C.UV_READABLE | C.UV_WRITABLE);

    // Fill the pipe: writev returns -1 (EAGAIN) once it is full.
    const chunk = new Uint8Array(64 * 1024);
    let total = 3;
    for (let n; (n = writev(fd, [chunk])) !== -1;) total += n;
    assert.equal(await r.next(), C.UV_READABLE, 'full: readable only');

    r.w.update('w');
    let wrote = 0;
    const writable = r.next().then((ev) => { wrote = ev; });
    await sleep(50);
    assert.equal(wrote, 0, 'no writable callback while the pipe is full');
    let drained = 0;
    for (let n; (n = readv(fd, [chunk])) !== -1;) drained += n;
    assert.equal(drained, total);
    await writable;
    assert.equal(wrote, C.UV_WRITABLE);
    r.w.close();
    closeSync(fd);
  });

  it('reports a poll error (EPOLLERR: a pipe with no reader) as -EBADF and stops', async () => {
    const path = join(dir, 'fifo-err');
    execFileSync('mkfifo', [path]);
    const reader = openSync(path, F.O_RDONLY | F.O_NONBLOCK);
    const writer = openSync(path, F.O_WRONLY | F.O_NONBLOCK);
    closeSync(reader);
    const events: number[] = [];
    const w = watchFd(writer, 'w', (ev) => events.push(ev));
    await until(() => events.length > 0, 'the error callback');
    assert.deepEqual(events, [-9], 'UV_EBADF, the negated errno');
    assert.equal(w.active, false, 'libuv stopped polling');
    await sleep(30);
    assert.equal(events.length, 1);
    w.close();
    closeSync(writer);
  });

  it('refuses a regular file (EPERM), a second active watch of one fd on this thread (EEXIST), a closed fd, bad arguments', () => {
    const file = join(dir, 'plain');
    writeFileSync(file, 'x');
    const plain = openSync(file, 'r');
    assert.throws(() => watchFd(plain, 'r', () => {}), { name: 'KvmError', ioctl: 'uv_poll_init', code: 'EPERM' });
    closeSync(plain);

    const fd = eventfd();
    const w = watchFd(fd, 'r', () => {});
    assert.throws(() => watchFd(fd, 'r', () => {}), { ioctl: 'uv_poll_init', code: 'EEXIST' });
    w.stop(); // a stopped watch holds nothing in libuv: another may take the fd...
    const w2 = watchFd(fd, 'r', () => {});
    assert.throws(() => w.start(), { ioctl: 'uv_poll_init', code: 'EEXIST' }, '...and then this one cannot start');
    w2.close();
    w.start();
    w.close();
    closeFd(fd);
    assert.throws(() => watchFd(fd, 'r', () => {}), { ioctl: 'uv_poll_init', code: 'EBADF' });

    assert.throws(() => watchFd(0, 'x' as never, () => {}), TypeError);
    assert.throws(() => watchFd(0, 'r', 'nope' as never), TypeError);
    assert.throws(() => watchFd(-2, 'r', () => {}), { ioctl: 'uv_poll_init', code: 'EBADF' });
    assert.throws(() => new (FdWatch as unknown as new () => FdWatch)(), TypeError);
  });
});

describe('FdWatch lifetime', () => {
  it('unref(): a worker whose only handle is an unref\'d watch ends by itself; a ref\'d one keeps it alive', async () => {
    const unrefd = startWorker(`
      const w = kvm.watchFd(kvm.eventfd(), 'r', () => {}).unref();
      parentPort.postMessage({ hasRef: w.hasRef(), active: w.active });
    `, {});
    const unrefdExited = once(unrefd, 'exit');
    assert.deepEqual(await nextMessage(unrefd), { hasRef: false, active: true });
    assert.deepEqual(await unrefdExited, [0]);

    const fd = eventfd();
    const refd = startWorker(`
      const w = kvm.watchFd(workerData.fd, 'r', () => {
        kvm.eventfdRead(workerData.fd);
        w.close();
        parentPort.postMessage('fired');
      });
      w.unref().ref();
      parentPort.postMessage(w.hasRef());
    `, { fd });
    let exited = false;
    refd.on('exit', () => { exited = true; });
    assert.equal(await nextMessage(refd), true);
    await sleep(150);
    assert.equal(exited, false, 'the ref\'d watch keeps the worker\'s loop alive');
    const fired = nextMessage(refd);
    eventfdWrite(fd);
    assert.equal(await fired, 'fired');
    await until(() => exited, 'the worker to end after close()');
    closeFd(fd);
  });

  it('an active watch nobody holds keeps firing through GC', async () => {
    const fd = eventfd();
    let calls = 0;
    // Untracked (a WeakRef only, for cleanup if the test fails): nothing in JS holds it.
    const weak = (() => new WeakRef(addonWatchFd(fd, 'r', function (this: FdWatch) {
      calls++;
      eventfdRead(fd);
      if (calls === 2) this.close();
    })))();
    try {
      gc();
      await sleep(10);
      gc();
      eventfdWrite(fd);
      await until(() => calls === 1, 'the first callback');
      gc();
      await sleep(10);
      eventfdWrite(fd);
      await until(() => calls === 2, 'the second callback');
    } finally {
      weak.deref()?.close();
      closeFd(fd);
    }
  });

  it('stopped watches are collected; their fds, closed and reused, are not disturbed by the GC', async () => {
    const ids = new Set<number>();
    const destroyed = new Set<number>();
    const hook = createHook({
      init(id, type) { if (type === 'FdWatch') ids.add(id); },
      destroy(id) { if (ids.has(id)) destroyed.add(id); },
    }).enable();
    const oldFds: number[] = [];
    (() => {
      for (let i = 0; i < 20; i++) {
        const fd = eventfd();
        oldFds.push(fd);
        const w = addonWatchFd(fd, 'r', () => { throw new Error('never called'); }); // untracked
        eventfdWrite(fd); // readable, but stopped before the loop polls
        w.stop();
      }
    })();
    // Stopped, so the fds may be closed at once; new files get the same numbers.
    for (const fd of oldFds) closeFd(fd);
    assert.equal(ids.size, 20);
    const newFds = oldFds.map(() => eventfd());
    assert.ok(newFds.some((fd) => oldFds.includes(fd)), 'fd numbers were reused');
    const recs = newFds.map((fd) => recorder(fd, 'r'));
    const fired = recs.map((r) => r.next()); // active on the reused numbers during the GC
    try {
      for (let i = 0; i < 50 && destroyed.size < 20; i++) {
        gc();
        await sleep(10);
      }
      assert.equal(destroyed.size, 20, 'every stopped FdWatch was finalized');
    } finally {
      hook.disable();
    }
    for (const fd of newFds) eventfdWrite(fd);
    assert.deepEqual(await Promise.all(fired), newFds.map(() => C.UV_READABLE));
    for (const r of recs) r.w.close();
    for (const fd of newFds) closeFd(fd);
  });

  it('worker.terminate() with active, unref\'d, stopped, just-closed and pending watches ends cleanly', async () => {
    const ready = eventfd();
    eventfdWrite(ready); // readable: a callback is pending when the worker is terminated
    const worker = startWorker(`
      const ws = [];
      for (let i = 0; i < 8; i++) {
        const w = kvm.watchFd(kvm.eventfd(), i % 2 ? 'r' : 'rw', () => {});
        if (i % 4 === 1) w.unref();
        if (i % 4 === 2) w.stop();
        if (i % 4 === 3) w.close();
        ws.push(w);
      }
      kvm.watchFd(workerData.ready, 'r', () => {}); // fires on every turn: never read
      parentPort.postMessage('ready');
    `, { ready });
    assert.equal(await nextMessage(worker), 'ready');
    await sleep(20);
    assert.deepEqual(await Promise.all([worker.terminate(), once(worker, 'exit')]), [1, [1]]);
    // This thread's loop and the addon are fine.
    const r = recorder(ready, 'r');
    assert.equal(await r.next(), C.UV_READABLE);
    r.w.close();
    closeFd(ready);
  });

  it('a worker that exits from inside a callback ends cleanly', async () => {
    const fd = eventfd();
    eventfdWrite(fd);
    const worker = startWorker(`kvm.watchFd(workerData.fd, 'r', () => process.exit(7));`, { fd });
    assert.deepEqual(await once(worker, 'exit'), [7]);
    closeFd(fd);
  });

  it('a callback that throws is an uncaught exception of its thread', async () => {
    const fd = eventfd();
    eventfdWrite(fd);
    const worker = startWorker(`kvm.watchFd(workerData.fd, 'r', () => { throw new Error('boom from the callback'); });`, { fd });
    const [error] = await once(worker, 'error');
    assert.equal((error as Error).message, 'boom from the callback');
    closeFd(fd);
  });
});
