import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KvmIoEventRegistry } from './ioevent.js';

function fakes() {
  const calls: string[] = [];
  const counters = new Map<number, bigint>();
  const watchers = new Map<number, () => void>();
  let nextFd = 10;
  const vm = {
    ioeventfd: (e: { addr: number; len: number; fd: number; pio?: boolean; deassign?: boolean }) =>
      void calls.push(`ioeventfd ${e.pio ? 'pio' : 'mmio'} 0x${e.addr.toString(16)}/${e.len} fd ${e.fd}${e.deassign ? ' deassign' : ''}`),
  };
  const ops = {
    eventfd: () => {
      const fd = nextFd++;
      counters.set(fd, 0n);
      return fd;
    },
    eventfdRead: (fd: number) => {
      const v = counters.get(fd) ?? 0n;
      counters.set(fd, 0n);
      return v;
    },
    closeFd: (fd: number) => void calls.push(`close ${fd}`),
    watch: (fd: number, cb: () => void) => {
      watchers.set(fd, cb);
      return () => {
        watchers.delete(fd);
        calls.push(`unwatch ${fd}`);
      };
    },
  };
  /** what KVM does on a matching guest write: bump the counter; the poller then fires */
  const guestWrite = (fd: number) => {
    counters.set(fd, (counters.get(fd) ?? 0n) + 1n);
    watchers.get(fd)?.();
  };
  return { vm, ops, calls, guestWrite, watchers };
}

test('KvmIoEventRegistry assigns an ioeventfd and calls the handler when it is signalled', () => {
  const { vm, ops, calls, guestWrite } = fakes();
  const registry = new KvmIoEventRegistry(vm, ops);
  let notified = 0;

  registry.register('mmio', 0xc0003000, 2, () => notified++);
  guestWrite(10);
  guestWrite(10);

  assert.deepEqual(calls, ['ioeventfd mmio 0xc0003000/2 fd 10']);
  assert.equal(notified, 2);
});

test('KvmIoEventRegistry drains the eventfd, so a spurious wakeup calls nothing', () => {
  const { vm, ops, watchers } = fakes();
  const registry = new KvmIoEventRegistry(vm, ops);
  let notified = 0;
  registry.register('pio', 0xc010, 2, () => notified++);

  watchers.get(10)!();

  assert.equal(notified, 0);
});

test('unregister() stops polling, deassigns the ioeventfd and closes it, once', () => {
  const { vm, ops, calls } = fakes();
  const registry = new KvmIoEventRegistry(vm, ops);
  const r = registry.register('mmio', 0xc0003004, 2, () => {});

  r.unregister();
  r.unregister();

  assert.deepEqual(calls.slice(1), ['unwatch 10', 'ioeventfd mmio 0xc0003004/2 fd 10 deassign', 'close 10']);
  assert.equal(registry.active, 0);
});

test('KvmIoEventRegistry closes the eventfd when KVM refuses the ioeventfd', () => {
  const { ops, calls } = fakes();
  const vm = {
    ioeventfd: () => {
      throw new Error('EEXIST');
    },
  };
  const registry = new KvmIoEventRegistry(vm, ops);

  assert.throws(() => registry.register('mmio', 0x1000, 2, () => {}), /EEXIST/);
  assert.deepEqual(calls, ['close 10']);
});
