import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type WebSocket from 'ws';
import { harness, until, type Harness } from '../testing/harness.js';

let h: Harness;

before(async () => {
  h = await harness();
});
after(async () => {
  await h.close();
});

async function listen(query = ''): Promise<{ ws: WebSocket; events: { id: number; type: string; domain: string; state?: string }[] }> {
  const events: { id: number; type: string; domain: string; state?: string }[] = [];
  // listen from onInit: messages sent at once (a replay) may arrive before the promise resolves
  const ws = await h.app.injectWS(`/v1/events${query}`, {}, { onInit: (ws) => ws.on('message', (b: Buffer) => events.push(JSON.parse(b.toString()))) });
  return { ws, events };
}

test('/v1/events pushes lifecycle events as they happen', async () => {
  const l = await listen();
  await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'ev', boot: { kernel: h.kernel } } });
  await h.app.inject({ method: 'POST', url: '/v1/domains/ev/actions/start' });
  await until('running', () => l.events.some((e) => e.state === 'running'));
  assert.deepEqual(l.events.map((e) => `${e.type}:${e.state ?? ''}`), ['domain-created:shutoff', 'state-changed:starting', 'state-changed:running']);
  const ids = l.events.map((e) => e.id);
  assert.deepEqual(ids, [...ids].sort((a, b) => a - b));
  await h.app.inject({ method: 'POST', url: '/v1/domains/ev/actions/stop' });
  l.ws.terminate();
});

test('?domain= keeps one domain\'s events', async () => {
  const l = await listen('?domain=only');
  await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'other', boot: { kernel: h.kernel } } });
  await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'only', boot: { kernel: h.kernel } } });
  await until('the event', () => l.events.length > 0);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(l.events.map((e) => e.domain), ['only']);
  l.ws.terminate();
});

test('?since= replays the kept events after that id, then streams', async () => {
  const all = h.daemon.events.since(0);
  const mark = all[1]!.id;
  const l = await listen(`?since=${mark}`);
  await until('the replay', () => l.events.length >= all.length - 2);
  assert.deepEqual(l.events.map((e) => e.id), all.filter((e) => e.id > mark).map((e) => e.id));
  await h.app.inject({ method: 'DELETE', url: '/v1/domains/other' });
  await until('the live event', () => l.events.some((e) => e.type === 'domain-deleted'));
  l.ws.terminate();
});

test('a bad filter is refused before the upgrade (400)', async () => {
  await assert.rejects(h.app.injectWS('/v1/events?domain=Bad_Name'), /400/);
  await assert.rejects(h.app.injectWS('/v1/events?since=-1'), /400/);
});
