/**
 * Console tickets on a listener with a bearer token, over real HTTP (a refused upgrade's
 * problem+json body is only seen on a real connection): a ticket opens one WebSocket of its
 * domain (or the events stream) in place of the token; reused, expired, forged or misdirected
 * tickets are 401 INVALID_TICKET.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import WebSocket from 'ws';
import { buildApp } from '../app.js';
import { harness, until, type Harness } from '../testing/harness.js';
import { TicketStore } from '../tickets.js';

const TOKEN = 'k'.repeat(40);
const BEARER = { authorization: `Bearer ${TOKEN}` };

let h: Harness;
let tcp: FastifyInstance;
let base: string;
/** the TCP app's ticket store: short-lived tickets, so expiry can be seen */
const tickets = new TicketStore({ ttlMs: 1000 });

before(async () => {
  h = await harness();
  for (const [name, display] of [['web', { type: 'vnc' }], ['db', { type: 'vnc' }], ['tty', null]] as const) {
    await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name, boot: { kernel: h.kernel }, display } });
    await h.app.inject({ method: 'POST', url: `/v1/domains/${name}/actions/start` });
  }
  tcp = await buildApp({ ...h.daemon.appOptions(TOKEN), tickets });
  await tcp.listen({ host: '127.0.0.1', port: 0 });
  base = `127.0.0.1:${(tcp.server.address() as AddressInfo).port}`;
});
after(async () => {
  await tcp.close();
  await h.close();
});

interface Upgrade {
  status: number;
  contentType?: string;
  body?: any;
  ws?: WebSocket;
  /** what the socket received (for an upgrade that succeeded) */
  got: () => string;
}

/** A WebSocket upgrade to `path` on the TCP listener; resolves with the 101 or the refusal. */
function upgrade(path: string, opts: { headers?: Record<string, string>; protocols?: string[] } = {}): Promise<Upgrade> {
  let got = '';
  const ws = new WebSocket(`ws://${base}${path}`, opts.protocols ?? [], { headers: opts.headers ?? {} });
  ws.on('message', (b: Buffer) => (got += b.toString('latin1')));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ status: 101, ws, got: () => got }));
    ws.once('unexpected-response', (_req, res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c));
      res.on('end', () => {
        ws.on('error', () => {});
        ws.terminate();
        resolve({ status: res.statusCode!, contentType: res.headers['content-type'], body: JSON.parse(text), got: () => got });
      });
    });
    ws.once('error', reject);
  });
}

async function ticketFor(name: string): Promise<string> {
  const r = await fetch(`http://${base}/v1/domains/${name}/console-ticket`, { method: 'POST', headers: BEARER });
  assert.equal(r.status, 200);
  return ((await r.json()) as { ticket: string }).ticket;
}

function assertProblem(u: Upgrade, status: number, code: string): void {
  assert.equal(u.status, status, JSON.stringify(u.body));
  assert.match(u.contentType ?? '', /^application\/problem\+json/);
  assert.equal(u.body.code, code);
}

test('on the token listener a WebSocket with neither token nor ticket is refused (401 UNAUTHORIZED)', async () => {
  assertProblem(await upgrade('/v1/domains/web/vnc'), 401, 'UNAUTHORIZED');
  const ok = await upgrade('/v1/domains/web/vnc', { headers: BEARER });
  assert.equal(ok.status, 101);
  ok.ws!.terminate();
});

test('POST console-ticket needs the token and answers a ticket good for 30 s (here 1 s)', async () => {
  const denied = await fetch(`http://${base}/v1/domains/web/console-ticket`, { method: 'POST' });
  assert.equal(denied.status, 401);
  const r = await fetch(`http://${base}/v1/domains/web/console-ticket`, { method: 'POST', headers: BEARER });
  assert.equal(r.status, 200);
  const t = (await r.json()) as { ticket: string; expires_at: string };
  assert.match(t.ticket, /^[A-Za-z0-9_-]{43}$/);
  const left = Date.parse(t.expires_at) - Date.now();
  assert.ok(left > 0 && left <= 1000, `expires in ${left} ms`);
  const none = await fetch(`http://${base}/v1/domains/nobody/console-ticket`, { method: 'POST', headers: BEARER });
  assert.equal(none.status, 404);
});

test('a ticket opens the domain\'s VNC WebSocket once, with the binary subprotocol noVNC asks for', async () => {
  const ticket = await ticketFor('web');
  const u = await upgrade(`/v1/domains/web/vnc?ticket=${ticket}`, { protocols: ['binary'] });
  assert.equal(u.status, 101);
  assert.equal(u.ws!.protocol, 'binary');
  await until('the RFB greeting', () => u.got() === 'RFB 003.008\n');
  u.ws!.terminate();
  const again = await upgrade(`/v1/domains/web/vnc?ticket=${ticket}`);
  assertProblem(again, 401, 'INVALID_TICKET');
  assert.match(again.body.detail, /unknown or already used/);
  assert.doesNotMatch(again.body.instance, new RegExp(ticket), 'the ticket is not echoed back');
});

test('a ticket opens the domain\'s console WebSocket too', async () => {
  const u = await upgrade(`/v1/domains/web/console?ticket=${await ticketFor('web')}`);
  assert.equal(u.status, 101);
  await until('the replay', () => u.got().includes('fake: boot 1'));
  u.ws!.terminate();
});

test('a forged ticket is 401 INVALID_TICKET, even with a good bearer token beside it', async () => {
  assertProblem(await upgrade('/v1/domains/web/vnc?ticket=AAAA'), 401, 'INVALID_TICKET');
  assertProblem(await upgrade('/v1/domains/web/vnc?ticket=AAAA', { headers: BEARER }), 401, 'INVALID_TICKET');
  // the answer for a name that does not exist is the same: no way to probe for names
  const nobody = await upgrade('/v1/domains/nobody/vnc?ticket=AAAA');
  assertProblem(nobody, 401, 'INVALID_TICKET');
  assert.equal(nobody.body.detail, (await upgrade('/v1/domains/web/vnc?ticket=AAAA')).body.detail);
});

test('an expired ticket is 401 INVALID_TICKET', async () => {
  const ticket = await ticketFor('web');
  await new Promise((r) => setTimeout(r, 1100));
  const u = await upgrade(`/v1/domains/web/vnc?ticket=${ticket}`);
  assertProblem(u, 401, 'INVALID_TICKET');
  assert.match(u.body.detail, /expired/);
});

test('a ticket for one domain opens neither another domain\'s sockets nor the events stream', async () => {
  const a = await upgrade(`/v1/domains/db/vnc?ticket=${await ticketFor('web')}`);
  assertProblem(a, 401, 'INVALID_TICKET');
  assert.match(a.body.detail, /another domain or endpoint/);
  assertProblem(await upgrade(`/v1/events?ticket=${await ticketFor('web')}`), 401, 'INVALID_TICKET');
  assertProblem(await upgrade(`/v1/domains/nobody/vnc?ticket=${await ticketFor('web')}`), 401, 'INVALID_TICKET');
});

test('an events ticket opens /v1/events once', async () => {
  const r = await fetch(`http://${base}/v1/events/ticket`, { method: 'POST', headers: BEARER });
  assert.equal(r.status, 200);
  const { ticket } = (await r.json()) as { ticket: string };
  const u = await upgrade(`/v1/events?since=0&ticket=${ticket}`);
  assert.equal(u.status, 101);
  await until('the replayed events', () => u.got().includes('"domain-created"'));
  u.ws!.terminate();
  assertProblem(await upgrade(`/v1/events?ticket=${ticket}`), 401, 'INVALID_TICKET');
});

test('a ticket opens a WebSocket only: a plain request with one still needs the token', async () => {
  const ticket = await ticketFor('web');
  const r = await fetch(`http://${base}/v1/domains/web/vnc?ticket=${ticket}`);
  assert.equal(r.status, 401);
  assert.equal(((await r.json()) as { code: string }).code, 'UNAUTHORIZED');
  // it was not used up by that
  const u = await upgrade(`/v1/domains/web/vnc?ticket=${ticket}`);
  assert.equal(u.status, 101);
  u.ws!.terminate();
});

test('a ticket for a domain without a display lets the request in to be told so (409 NO_DISPLAY)', async () => {
  assertProblem(await upgrade(`/v1/domains/tty/vnc?ticket=${await ticketFor('tty')}`), 409, 'NO_DISPLAY');
});

test('on the Unix socket\'s app (no token) tickets work and bad ones are refused alike', async () => {
  const t = (await h.app.inject({ method: 'POST', url: '/v1/domains/web/console-ticket' })).json().ticket as string;
  const ws = await h.app.injectWS(`/v1/domains/web/vnc?ticket=${t}`);
  ws.terminate();
  await assert.rejects(h.app.injectWS(`/v1/domains/web/vnc?ticket=${t}`), /401/);
});
