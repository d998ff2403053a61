import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TICKET_TTL_MS, TicketStore } from './tickets.js';

const WEB = { kind: 'domain', uuid: '0b8f6d6e-7d3e-4c1f-9a55-2f3b8a0c1d2e' } as const;
const DB = { kind: 'domain', uuid: '1c9f7e7f-8e4f-4d20-8b66-3a4c9b1d2e3f' } as const;

test('TicketStore.issue() gives a 43-character base64url secret that expires after the TTL', () => {
  const store = new TicketStore({ now: () => 1000 });
  const t = store.issue(WEB);
  assert.match(t.ticket, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(t.expiresAt.getTime(), 1000 + TICKET_TTL_MS);
  assert.notEqual(store.issue(WEB).ticket, t.ticket);
});

test('TicketStore.redeem() opens the scope once; the second use is unknown', () => {
  const store = new TicketStore();
  const { ticket } = store.issue(WEB);
  assert.equal(store.redeem(ticket, WEB), undefined);
  assert.equal(store.redeem(ticket, WEB), 'unknown');
});

test('TicketStore.redeem() refuses an expired ticket', () => {
  let now = 0;
  const store = new TicketStore({ ttlMs: 100, now: () => now });
  const { ticket } = store.issue(WEB);
  now = 100;
  assert.equal(store.redeem(ticket, WEB), 'expired');
});

test('TicketStore.redeem() refuses a ticket for another domain or endpoint, and uses it up', () => {
  const store = new TicketStore();
  const a = store.issue(WEB).ticket;
  assert.equal(store.redeem(a, DB), 'wrong-scope');
  assert.equal(store.redeem(a, WEB), 'unknown', 'a misused ticket is gone');
  const b = store.issue(WEB).ticket;
  assert.equal(store.redeem(b, { kind: 'events' }), 'wrong-scope');
  const c = store.issue({ kind: 'events' }).ticket;
  assert.equal(store.redeem(c, { kind: 'events' }), undefined);
  assert.equal(store.redeem('not-a-ticket', WEB), 'unknown');
});

test('TicketStore keeps at most `max` tickets, dropping the oldest, and forgets expired ones', () => {
  let now = 0;
  const store = new TicketStore({ max: 3, ttlMs: 10, now: () => now });
  const first = store.issue(WEB).ticket;
  store.issue(WEB);
  store.issue(WEB);
  const last = store.issue(WEB).ticket;
  assert.equal(store.size, 3);
  assert.equal(store.redeem(first, WEB), 'unknown');
  assert.equal(store.redeem(last, WEB), undefined);
  now = 10;
  store.issue(WEB);
  assert.equal(store.size, 1, 'the expired ones were swept');
});
