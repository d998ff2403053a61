import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocketServer } from 'ws';
import { ApiProblemError, ConnectError } from '../errors.js';
import { EXIT } from '../exit-codes.js';
import { ApiClient, fillPath } from './client.js';

/** A stand-in daemon: records requests, answers by path. */
let dir: string;
let unix: Server;
let tcp: Server;
let wss: WebSocketServer;
const seen: { method: string; url: string; headers: IncomingMessage['headers']; body: string }[] = [];

function handler(req: IncomingMessage, res: ServerResponse): void {
  let body = '';
  req.on('data', (c) => (body += c));
  req.on('end', () => {
    seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
    if (req.url === '/v1/domains') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ items: [] }));
    } else if (req.url?.startsWith('/v1/domains/web')) {
      res.writeHead(409, { 'content-type': 'application/problem+json' }).end(
        JSON.stringify({ type: 'urn:vmctl:error:INVALID_STATE_TRANSITION', title: 'Not now', status: 409, detail: 'it is running', code: 'INVALID_STATE_TRANSITION' }),
      );
    } else if (req.url === '/v1/domains/nobody/console') {
      res.writeHead(409, { 'content-type': 'application/problem+json' }).end(
        JSON.stringify({ type: 'urn:vmctl:error:DOMAIN_NOT_RUNNING', title: 'The domain is not running', status: 409, detail: 'shutoff', code: 'DOMAIN_NOT_RUNNING' }),
      );
    } else {
      res.writeHead(502, { 'content-type': 'text/html' }).end('<h1>bad gateway</h1>');
    }
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmctl-client-'));
  unix = createServer(handler);
  wss = new WebSocketServer({ noServer: true });
  unix.on('upgrade', (req, socket, head) => {
    if (req.url === '/v1/domains/nobody/console') {
      socket.end('HTTP/1.1 409 Conflict\r\ncontent-type: application/problem+json\r\nconnection: close\r\n\r\n' +
        JSON.stringify({ type: 'urn:vmctl:error:DOMAIN_NOT_RUNNING', title: 'The domain is not running', status: 409, detail: 'shutoff', code: 'DOMAIN_NOT_RUNNING' }));
      return;
    }
    // like the daemon's replay: data right after the upgrade
    wss.handleUpgrade(req, socket, head, (ws) => ws.send(Buffer.from('replayed')));
  });
  await new Promise<void>((r) => unix.listen(join(dir, 'd.sock'), r));
  tcp = createServer(handler);
  await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
});
after(async () => {
  wss.close();
  await new Promise((r) => unix.close(r));
  await new Promise((r) => tcp.close(r));
  rmSync(dir, { recursive: true, force: true });
});

test('fillPath() fills and escapes path parameters and drops undefined query values', () => {
  assert.equal(fillPath('/v1/domains/{name}/state', { name: 'a b' }), '/v1/domains/a%20b/state');
  assert.equal(fillPath('/v1/domains', {}, { state: 'running', x: undefined }), '/v1/domains?state=running');
});

test('ApiClient.request() answers the decoded body over the Unix socket', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'd.sock') });
  const r = await c.request('get', '/v1/domains');
  assert.equal(r.status, 200);
  assert.deepEqual(r.data.items, []);
});

test('ApiClient.request() sends JSON bodies, the query and headers', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'd.sock') });
  await assert.rejects(c.request('patch', '/v1/domains/{name}', { params: { name: 'web' }, headers: { 'if-match': '"x.1"' }, body: { vcpus: 2 } }));
  const last = seen.at(-1)!;
  assert.equal(last.method, 'PATCH');
  assert.equal(last.headers['if-match'], '"x.1"');
  assert.equal(last.headers['content-type'], 'application/json');
  assert.deepEqual(JSON.parse(last.body), { vcpus: 2 });
});

test('ApiClient.request() turns a problem+json answer into ApiProblemError with its exit code', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'd.sock') });
  const err = await c.request('post', '/v1/domains/{name}/actions/start', { params: { name: 'web' } }).catch((e: unknown) => e);
  assert.ok(err instanceof ApiProblemError);
  assert.equal(err.problem.code, 'INVALID_STATE_TRANSITION');
  assert.equal(err.exitCode, EXIT.CONFLICT);
});

test('ApiClient.request() reports an answer that is not a problem with its status and text', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'd.sock') });
  const err = await c.request('get', '/v1/host').catch((e: unknown) => e);
  assert.ok(err instanceof ApiProblemError);
  assert.equal(err.problem.title, 'HTTP 502');
  assert.match(err.problem.detail, /bad gateway/);
  assert.equal(err.exitCode, EXIT.ERROR);
});

test('ApiClient.request() sends the bearer token on TCP', async () => {
  const { port } = tcp.address() as AddressInfo;
  const c = new ApiClient({ kind: 'tcp', url: new URL(`http://127.0.0.1:${port}`), token: 'sekrit' });
  await c.request('get', '/v1/domains');
  assert.equal(seen.at(-1)!.headers.authorization, 'Bearer sekrit');
});

test('ApiClient.request() without a daemon is ConnectError (exit 5) that names the socket', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'none.sock') });
  const err = await c.request('get', '/v1/domains').catch((e: unknown) => e);
  assert.ok(err instanceof ConnectError);
  assert.equal(err.exitCode, EXIT.UNREACHABLE);
  assert.match(err.message, /no socket at .*none\.sock/);
});

test('ApiClient.websocket() hears a message sent with the upgrade answer', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'd.sock') });
  const got: string[] = [];
  const ws = await c.websocket('/v1/domains/web/console', (b) => got.push(b.toString()));
  for (let i = 0; i < 100 && !got.length; i++) await new Promise((r) => setTimeout(r, 10));
  ws.terminate();
  assert.deepEqual(got, ['replayed']);
});

test('ApiClient.websocket() rejects with the problem the daemon answered instead of upgrading', async () => {
  const c = new ApiClient({ kind: 'unix', socket: join(dir, 'd.sock') });
  const err = await c.websocket('/v1/domains/nobody/console', () => {}).catch((e: unknown) => e);
  assert.ok(err instanceof ApiProblemError, String(err));
  assert.equal(err.problem.code, 'DOMAIN_NOT_RUNNING');
  assert.equal(err.exitCode, EXIT.CONFLICT);
});
