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

const define = (name: string, extra: Record<string, unknown> = {}) =>
  h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name, boot: { kernel: h.kernel }, ...extra } });
const start = (name: string) => h.app.inject({ method: 'POST', url: `/v1/domains/${name}/actions/start` });
const stop = (name: string) => h.app.inject({ method: 'POST', url: `/v1/domains/${name}/actions/stop` });

/** A VNC client on the fake worker's stand-in server, collecting what it receives. */
async function vnc(name: string): Promise<{ ws: WebSocket; got: () => string; closed: Promise<number> }> {
  let got = '';
  let closed!: Promise<number>;
  const ws = await h.app.injectWS(`/v1/domains/${name}/vnc`, {}, {
    onInit: (ws) => {
      ws.on('message', (b: Buffer) => (got += b.toString('latin1')));
      closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
    },
  });
  return { ws, got: () => got, closed };
}

test('display is null by default, {type: vnc} when asked for, and PATCH null removes it', async () => {
  assert.equal((await define('plain')).json().display, null);
  const r = await define('screen', { display: { type: 'vnc' } });
  assert.equal(r.statusCode, 201, r.body);
  assert.deepEqual(r.json().display, { type: 'vnc' });
  assert.deepEqual((await h.app.inject({ method: 'GET', url: '/v1/domains/screen' })).json().display, { type: 'vnc' });
  const p = await h.app.inject({ method: 'PATCH', url: '/v1/domains/plain', payload: { display: { type: 'vnc' } } });
  assert.deepEqual(p.json().display, { type: 'vnc' });
  const q = await h.app.inject({ method: 'PATCH', url: '/v1/domains/plain', payload: { display: null } });
  assert.equal(q.json().display, null);
});

test('a display of an unknown type or with unknown fields is refused (400 VALIDATION_FAILED)', async () => {
  for (const display of [{ type: 'spice' }, { type: 'vnc', port: 5900 }, 'vnc']) {
    const r = await define('bad-display', { display });
    assert.equal(r.statusCode, 400, JSON.stringify(display));
    assert.equal(r.json().code, 'VALIDATION_FAILED');
    assert.match(r.json().errors[0].path, /^\/body\/display/);
  }
  assert.equal((await h.app.inject({ method: 'GET', url: '/v1/domains/bad-display' })).statusCode, 404);
});

test('the VNC WebSocket carries the worker\'s VNC bytes both ways', async () => {
  assert.equal((await start('screen')).statusCode, 200);
  const v = await vnc('screen');
  await until('the RFB greeting', () => v.got() === 'RFB 003.008\n');
  v.ws.send(Buffer.from('RFB 003.008\n'));
  await until('the echo', () => v.got() === 'RFB 003.008\nRFB 003.008\n');
  const w = await vnc('screen');
  await until('a second client\'s own greeting', () => w.got() === 'RFB 003.008\n');
  v.ws.terminate();
  w.ws.terminate();
});

test('the WebSocket closes (1000) when the worker\'s VNC server closes the connection', async () => {
  const v = await vnc('screen');
  await until('the greeting', () => v.got().length > 0);
  v.ws.send('!close');
  assert.equal(await v.closed, 1000);
});

test('the VNC WebSocket closes (1000) when the worker ends', async () => {
  const v = await vnc('screen');
  await until('the greeting', () => v.got().length > 0);
  await stop('screen');
  assert.equal(await v.closed, 1000);
});

test('a domain without a display: 409 NO_DISPLAY problem+json, before any upgrade', async () => {
  const r = await h.app.inject({ method: 'GET', url: '/v1/domains/plain/vnc' });
  assert.equal(r.statusCode, 409);
  assert.match(r.headers['content-type'] as string, /^application\/problem\+json/);
  assert.equal(r.json().code, 'NO_DISPLAY');
  await assert.rejects(h.app.injectWS('/v1/domains/plain/vnc'), /409/);
});

test('a display that is not running: 409 DOMAIN_NOT_RUNNING; an unknown domain: 404', async () => {
  const r = await h.app.inject({ method: 'GET', url: '/v1/domains/screen/vnc' });
  assert.equal(r.statusCode, 409);
  assert.equal(r.json().code, 'DOMAIN_NOT_RUNNING');
  assert.equal(r.json().state, 'shutoff');
  const n = await h.app.inject({ method: 'GET', url: '/v1/domains/nobody/vnc' });
  assert.equal(n.statusCode, 404);
  assert.equal(n.json().code, 'DOMAIN_NOT_FOUND');
});

test('a display added while the domain runs comes with its next start (409 NO_DISPLAY until then)', async () => {
  await define('late');
  await start('late');
  await h.app.inject({ method: 'PATCH', url: '/v1/domains/late', payload: { display: { type: 'vnc' } } });
  const r = await h.app.inject({ method: 'GET', url: '/v1/domains/late/vnc' });
  assert.equal(r.statusCode, 409);
  assert.equal(r.json().code, 'NO_DISPLAY');
  assert.match(r.json().detail, /next start/);
  await stop('late');
  await start('late');
  const v = await vnc('late');
  await until('the greeting', () => v.got() === 'RFB 003.008\n');
  v.ws.terminate();
  await stop('late');
});

test('a plain GET of a running display is 426 UPGRADE_REQUIRED', async () => {
  await start('screen');
  const r = await h.app.inject({ method: 'GET', url: '/v1/domains/screen/vnc' });
  assert.equal(r.statusCode, 426);
  assert.equal(r.json().code, 'UPGRADE_REQUIRED');
  await stop('screen');
});
