import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DomainPatch, DomainSpec, ShutdownQuery } from './domain.js';

test('DomainSpec fills defaults and keeps what is given', () => {
  const d = DomainSpec.parse({ name: 'a', boot: { kernel: '/k' } });
  assert.equal(d.vcpus, 1);
  assert.equal(d.memory_mib, 256);
  assert.deepEqual(d.serial, { log: false });
  assert.equal(d.on_crash, 'preserve');
});

test('DomainSpec refuses unknown fields at every level', () => {
  assert.ok(!DomainSpec.safeParse({ name: 'a', boot: { kernel: '/k' }, x: 1 }).success);
  assert.ok(!DomainSpec.safeParse({ name: 'a', boot: { kernel: '/k', x: 1 } }).success);
  assert.ok(!DomainSpec.safeParse({ name: 'a', boot: { kernel: '/k' }, disks: [{ path: '/d', cache: 'none' }] }).success);
  assert.ok(!DomainSpec.safeParse({ name: 'a', boot: { kernel: '/k' }, serial: { log: true, baud: 9600 } }).success);
});

test('DomainSpec names are DNS labels', () => {
  for (const name of ['a', 'web-1', '0', 'a'.repeat(63)]) assert.ok(DomainSpec.safeParse({ name, boot: { kernel: '/k' } }).success, name);
  for (const name of ['', '-a', 'a-', 'A', 'a_b', 'a.b', 'a'.repeat(64), 'ä']) assert.ok(!DomainSpec.safeParse({ name, boot: { kernel: '/k' } }).success, name);
});

test('DomainSpec NICs: tap or bridge, with a unicast MAC', () => {
  const ok = (nic: unknown) => DomainSpec.safeParse({ name: 'a', boot: { kernel: '/k' }, nics: [nic] }).success;
  assert.ok(ok({ type: 'tap' }));
  assert.ok(ok({ type: 'bridge', bridge: 'br0', mac: '02:00:00:aa:bb:cc' }));
  assert.ok(!ok({ type: 'bridge' }), 'a bridge NIC names its bridge');
  assert.ok(!ok({ type: 'tap', mac: '03:00:00:aa:bb:cc' }), 'multicast');
  assert.ok(!ok({ type: 'tap', mac: '02:00:00:AA:BB:CC' }), 'upper case');
  assert.ok(!ok({ type: 'tap', ifname: 'a-name-longer-than-15' }));
});

test('DomainPatch takes any subset, but still no unknown field', () => {
  assert.deepEqual(DomainPatch.parse({}), {});
  assert.deepEqual(DomainPatch.parse({ vcpus: 2 }), { vcpus: 2 });
  assert.ok(!DomainPatch.safeParse({ state: 'running' }).success);
});

test('ShutdownQuery reads the timeout and wait from strings', () => {
  assert.deepEqual(ShutdownQuery.parse({ timeout: '5', wait: 'true' }), { timeout: 5, wait: true });
  assert.ok(!ShutdownQuery.safeParse({ timeout: '1e3' }).success);
  assert.ok(!ShutdownQuery.safeParse({ wait: 'yes' }).success);
});
