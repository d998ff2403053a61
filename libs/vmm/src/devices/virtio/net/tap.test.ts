import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VmmError } from '../../../errors.js';
import { constants } from '../../../kvm.js';
import { NO_OFFLOADS, type NetBackendHandler } from './backend.js';
import { ALL_OFFLOADS } from './fake-backend.js';
import { TAP_VNET_HDR_SIZE, TapBackend, tunOffloadFlags, type TapSys } from './tap.js';

// include/uapi/linux/if_tun.h
const TUN_F_CSUM = 0x01;
const TUN_F_TSO4 = 0x02;
const TUN_F_TSO6 = 0x04;
const TUN_F_TSO_ECN = 0x08;
const TUN_F_UFO = 0x10;

class FakeWatch {
  active = true;
  closed = false;
  constructor(
    readonly fd: number,
    public events: string,
    readonly callback: (events: number) => void,
  ) {}
  start(): void {
    this.active = true;
  }
  stop(): void {
    this.active = false;
  }
  update(events: 'r' | 'w' | 'rw'): void {
    this.events = events;
  }
  close(): void {
    this.active = false;
    this.closed = true;
  }
}

/** The system calls, recorded; `refuse` lists TUN_F_* bits the "kernel" does not know. */
function fakeSys(o: { refuse?: number; openError?: Error; hdrError?: Error } = {}) {
  const calls: string[] = [];
  const offloads: number[] = [];
  const watches: FakeWatch[] = [];
  const closed: number[] = [];
  const sys: TapSys = {
    tapOpen: (name, opts) => {
      calls.push(`tapOpen ${name} ${JSON.stringify(opts)}`);
      if (o.openError) throw o.openError;
      return { fd: 42, name: name === '' ? 'tap0' : name };
    },
    tapSetVnetHdrSize: (fd, size) => {
      calls.push(`vnethdr ${fd} ${size}`);
      if (o.hdrError) throw o.hdrError;
    },
    tapSetOffload: (fd, flags) => {
      if ((flags & (o.refuse ?? 0)) !== 0) throw Object.assign(new Error('TUNSETOFFLOAD: EINVAL'), { code: 'EINVAL' });
      offloads.push(flags);
    },
    readv: () => -1,
    writev: () => -1,
    watchFd: (fd, events, callback) => {
      const w = new FakeWatch(fd, events, callback);
      watches.push(w);
      return w;
    },
    closeFd: (fd) => void closed.push(fd),
    constants,
  };
  return { sys, calls, offloads, watches, closed };
}

function recorder() {
  const events: string[] = [];
  const handler: NetBackendHandler = {
    readable: () => void events.push('readable'),
    writable: () => void events.push('writable'),
    failed: (errno) => void events.push(`failed ${errno}`),
  };
  return { events, handler };
}

test('tunOffloadFlags() maps each offload to its TUN_F_* flag, as in if_tun.h', () => {
  assert.equal(tunOffloadFlags(ALL_OFFLOADS), TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN | TUN_F_UFO);
  assert.equal(tunOffloadFlags({ ...NO_OFFLOADS, csum: true }), TUN_F_CSUM);
  assert.equal(tunOffloadFlags({ ...NO_OFFLOADS, csum: true, tso4: true }), TUN_F_CSUM | TUN_F_TSO4);
  assert.equal(tunOffloadFlags({ ...NO_OFFLOADS, csum: true, tso6: true, ecn: true }), TUN_F_CSUM | TUN_F_TSO6 | TUN_F_TSO_ECN);
  assert.equal(tunOffloadFlags({ ...NO_OFFLOADS, csum: true, ufo: true }), TUN_F_CSUM | TUN_F_UFO);
  assert.deepEqual(
    [constants.TUN_F_CSUM, constants.TUN_F_TSO4, constants.TUN_F_TSO6, constants.TUN_F_TSO_ECN, constants.TUN_F_UFO],
    [TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_TSO_ECN, TUN_F_UFO],
  );
});

test('tunOffloadFlags() sets nothing without the checksum offload, and no ECN without TSO (the kernel would refuse)', () => {
  assert.equal(tunOffloadFlags(NO_OFFLOADS), 0);
  assert.equal(tunOffloadFlags({ ...ALL_OFFLOADS, csum: false }), 0);
  assert.equal(tunOffloadFlags({ ...NO_OFFLOADS, csum: true, ecn: true }), TUN_F_CSUM);
});

test('TapBackend.open() opens the tap with vnet headers of 12 bytes and finds every offload, leaving none set', () => {
  const f = fakeSys();

  const tap = TapBackend.open('vm0', f.sys);

  assert.deepEqual(f.calls, ['tapOpen vm0 {"vnetHdr":true}', `vnethdr 42 ${TAP_VNET_HDR_SIZE}`]);
  assert.equal(tap.name, 'vm0');
  assert.equal(tap.fd, 42);
  assert.deepEqual(tap.guestOffloads, ALL_OFFLOADS);
  assert.deepEqual(tap.hostOffloads, ALL_OFFLOADS);
  assert.equal(f.offloads.at(-1), 0, 'no offload until a guest takes them');
  assert.equal(tap.maxBuffers, constants.IOV_MAX);
});

test('TapBackend.open() offers no UFO on a kernel that refuses TUN_F_UFO', () => {
  const f = fakeSys({ refuse: TUN_F_UFO });

  const tap = TapBackend.open('vm0', f.sys);

  assert.deepEqual(tap.guestOffloads, { ...ALL_OFFLOADS, ufo: false });
  assert.equal(tap.hostOffloads.ufo, false);
});

test('TapBackend.open() reports a tap it cannot open as INVALID_CONFIG, and closes what it opened on a later failure', () => {
  const denied = fakeSys({ openError: Object.assign(new Error('TUNSETIFF: EPERM'), { code: 'EPERM' }) });
  const noHdr = fakeSys({ hdrError: new Error('TUNSETVNETHDRSZ: EINVAL') });

  assert.throws(() => TapBackend.open('vm0', denied.sys), (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG' && /Cannot open tap "vm0": TUNSETIFF: EPERM/.test(e.message));
  assert.throws(() => TapBackend.open('vm0', noHdr.sys), (e: unknown) => e instanceof VmmError && e.code === 'INVALID_CONFIG');
  assert.deepEqual(noHdr.closed, [42]);
});

test('setOffloads() is TUNSETOFFLOAD with the mapped flags', () => {
  const f = fakeSys();
  const tap = TapBackend.open('vm0', f.sys);

  tap.setOffloads({ ...NO_OFFLOADS, csum: true, tso4: true, tso6: true });
  tap.setOffloads(NO_OFFLOADS);

  assert.deepEqual(f.offloads.slice(-2), [TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6, 0]);
});

test('the device\'s interest drives one watch: r, rw, w, stopped, started again', () => {
  const f = fakeSys();
  const tap = TapBackend.open('vm0', f.sys);
  const seen: string[] = [];
  const now = () => seen.push(f.watches.length === 0 ? 'none' : `${f.watches[0]!.active ? f.watches[0]!.events : 'stopped'}`);

  tap.setInterest(false, false);
  now();
  tap.setInterest(true, false);
  now();
  tap.setInterest(true, true);
  now();
  tap.setInterest(false, true);
  now();
  tap.setInterest(false, false);
  now();
  tap.setInterest(true, false);
  now();

  assert.deepEqual(seen, ['none', 'r', 'rw', 'w', 'stopped', 'r']);
  assert.equal(f.watches.length, 1, 'libuv allows one watch per fd per loop');
});

test('readiness goes to the attached handler, only for what it is interested in', () => {
  const f = fakeSys();
  const tap = TapBackend.open('vm0', f.sys);
  const r = recorder();
  tap.attach(r.handler);
  tap.setInterest(true, false);
  const fire = f.watches[0]!.callback;

  fire(constants.UV_READABLE | constants.UV_WRITABLE);
  tap.setInterest(true, true);
  fire(constants.UV_READABLE | constants.UV_WRITABLE);
  tap.detach();
  fire(constants.UV_READABLE);

  assert.deepEqual(r.events, ['readable', 'writable', 'readable']);
  assert.equal(f.watches[0]!.active, false);
});

test('a poll error (the tap was deleted) fails the backend for good', () => {
  const f = fakeSys();
  const tap = TapBackend.open('vm0', f.sys);
  const r = recorder();
  tap.attach(r.handler);
  tap.setInterest(true, false);
  f.watches[0]!.active = false; // libuv stopped it

  f.watches[0]!.callback(-9);
  tap.setInterest(true, false);

  assert.deepEqual(r.events, ['failed 9']);
  assert.equal(f.watches[0]!.active, false, 'not polled again');
});

test('close() closes the watch, then the fd, once', () => {
  const f = fakeSys();
  const tap = TapBackend.open('vm0', f.sys);
  tap.setInterest(true, false);

  tap.close();
  tap.close();
  tap.setInterest(true, true);

  assert.equal(f.watches[0]!.closed, true);
  assert.deepEqual(f.closed, [42]);
  assert.equal(f.watches.length, 1);
});
