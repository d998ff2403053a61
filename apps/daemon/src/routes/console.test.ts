import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type WebSocket from 'ws';
import { harness, until, type Harness } from '../testing/harness.js';

let h: Harness;

before(async () => {
  h = await harness();
  await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'tty', boot: { kernel: h.kernel } } });
  await h.app.inject({ method: 'POST', url: '/v1/domains/tty/actions/start' });
});
after(async () => {
  await h.close();
});

/** A console viewer that collects what it receives. */
async function viewer(name = 'tty'): Promise<{ ws: WebSocket; text: () => string; closed: Promise<number> }> {
  let got = '';
  let closed!: Promise<number>;
  const ws = await h.app.injectWS(`/v1/domains/${name}/console`, {}, {
    onInit: (ws) => {
      ws.on('message', (b: Buffer) => (got += b.toString('latin1')));
      closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    },
  });
  return { ws, text: () => got, closed };
}

test('the console carries guest output to the viewer and the viewer\'s input to the guest', async () => {
  const v = await viewer();
  await until('the boot line', () => v.text().includes('fake: boot 1'));
  v.ws.send(Buffer.from('hello'));
  await until('the echo', () => v.text().includes('hello'));
  v.ws.terminate();
});

test('a viewer that attaches later gets the replay of earlier output', async () => {
  const v = await viewer();
  await until('the replay', () => v.text().includes('fake: boot 1') && v.text().includes('hello'));
  v.ws.terminate();
});

test('several viewers at once all see the output; input from any reaches the guest', async () => {
  const a = await viewer();
  const b = await viewer();
  a.ws.send('from-a');
  b.ws.send('from-b');
  for (const v of [a, b]) await until('both inputs echoed', () => v.text().includes('from-a') && v.text().includes('from-b'));
  a.ws.terminate();
  b.ws.terminate();
});

test('the console stays open across a guest reboot', async () => {
  const v = await viewer();
  v.ws.send('!reboot');
  await until('the second boot', () => v.text().includes('fake: boot 2'));
  assert.equal(v.ws.readyState, v.ws.OPEN);
  assert.ok(h.events.some((e) => e.type === 'guest-reboot' && e.domain === 'tty'));
  v.ws.send('after-reboot');
  await until('echo after the reboot', () => v.text().includes('after-reboot'));
  v.ws.terminate();
});

test('the console closes (1000) when the guest powers off, and the domain is shutoff', async () => {
  const v = await viewer();
  v.ws.send('!poweroff');
  assert.equal(await v.closed, 1000);
  await until('shutoff', () => h.daemon.store.domains.getByName('tty')?.runtime.state === 'shutoff');
  assert.equal(h.daemon.store.domains.getByName('tty')?.runtime.reason, 'poweroff');
});

test('attaching to a domain that is not running is refused before the upgrade (409)', async () => {
  await assert.rejects(h.app.injectWS('/v1/domains/tty/console'), /409/);
});

test('serial.log keeps the console output in the daemon\'s console log', async () => {
  const r = await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'logged', boot: { kernel: h.kernel }, serial: { log: true } } });
  const { uuid } = r.json();
  await h.app.inject({ method: 'POST', url: '/v1/domains/logged/actions/start' });
  const v = await viewer('logged');
  v.ws.send('written down');
  const file = join(h.stateDir, 'logs', `${uuid}.console.log`);
  await until('the log', () => existsSync(file) && readFileSync(file, 'utf8').includes('written down'));
  assert.match(readFileSync(file, 'utf8'), /fake: boot 1/);
  v.ws.terminate();
  await h.app.inject({ method: 'POST', url: '/v1/domains/logged/actions/stop' });
});
