import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase } from './database.js';
import { DomainRepository, StoreConflictError } from './domain-repository.js';
import { EventRepository } from './event-repository.js';
import type { DomainDefinition } from '../schemas/domain.js';

const def: DomainDefinition = {
  vcpus: 2,
  memory_mib: 128,
  boot: { kernel: '/k', cmdline: 'console=ttyS0' },
  disks: [{ path: '/d.raw', format: 'raw', readonly: true }],
  nics: [{ type: 'tap', mac: '02:00:00:00:00:01' }],
  serial: { log: true },
  display: { type: 'vnc' },
  autostart: true,
  on_poweroff: 'destroy',
  on_reboot: 'restart',
  on_crash: 'preserve',
};

function repo() {
  const db = openDatabase(':memory:');
  return { db, domains: new DomainRepository(db), events: new EventRepository(db) };
}

test('DomainRepository stores a definition and reads it back the same, in state shutoff', () => {
  const { domains } = repo();
  const rec = domains.insert({ uuid: 'u1', name: 'a', definition: def, at: 't0' });
  assert.deepEqual(rec.definition, def);
  assert.equal(rec.generation, 1);
  assert.deepEqual(rec.runtime, { state: 'shutoff', reason: 'defined', since: 't0', pid: null, started_at: null });
  assert.deepEqual(domains.getByName('a'), rec);
});

test('DomainRepository refuses a taken name or uuid with StoreConflictError', () => {
  const { domains } = repo();
  domains.insert({ uuid: 'u1', name: 'a', definition: def, at: 't0' });
  assert.throws(() => domains.insert({ uuid: 'u2', name: 'a', definition: def, at: 't0' }), StoreConflictError);
  assert.throws(() => domains.insert({ uuid: 'u1', name: 'b', definition: def, at: 't0' }), StoreConflictError);
  assert.equal(domains.list().length, 1);
});

test('DomainRepository.update() applies only at the expected generation', () => {
  const { domains } = repo();
  domains.insert({ uuid: 'u1', name: 'a', definition: def, at: 't0' });
  const updated = domains.update('u1', 1, { ...def, vcpus: 4 }, 't1');
  assert.equal(updated?.generation, 2);
  assert.equal(updated?.definition.vcpus, 4);
  assert.equal(domains.update('u1', 1, { ...def, vcpus: 8 }, 't2'), undefined, 'a stale generation changes nothing');
  assert.equal(domains.getByUuid('u1')?.definition.vcpus, 4);
});

test('DomainRepository.delete() takes the runtime state with it (foreign key cascade)', () => {
  const { db, domains } = repo();
  domains.insert({ uuid: 'u1', name: 'a', definition: def, at: 't0' });
  assert.equal(domains.delete('u1'), true);
  assert.equal((db.prepare('SELECT COUNT(*) AS n FROM domain_state').get() as { n: number }).n, 0);
  assert.equal(domains.delete('u1'), false);
});

test('DomainRepository.list() filters by state and sorts by name', () => {
  const { domains } = repo();
  for (const n of ['c', 'a', 'b']) domains.insert({ uuid: `u-${n}`, name: n, definition: def, at: 't0' });
  domains.setRuntime('u-b', { state: 'running', reason: 'user', since: 't1', pid: 42, started_at: 't1' });
  assert.deepEqual(domains.list().map((d) => d.name), ['a', 'b', 'c']);
  assert.deepEqual(domains.list('running').map((d) => [d.name, d.runtime.pid]), [['b', 42]]);
});

test('EventRepository appends with increasing ids and reads back after an id, per domain', () => {
  const { events } = repo();
  const a = events.append({ type: 'domain-created', domain: 'a', uuid: 'u1', state: 'shutoff' }, 't0');
  const b = events.append({ type: 'state-changed', domain: 'b', uuid: 'u2', state: 'running', previous: 'starting', reason: 'user' }, 't1');
  assert.ok(b.id > a.id);
  assert.deepEqual(events.since(0).map((e) => e.id), [a.id, b.id]);
  assert.deepEqual(events.since(a.id), [b]);
  assert.deepEqual(events.since(0, 'a'), [a]);
});
