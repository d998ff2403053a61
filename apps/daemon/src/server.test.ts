/**
 * vmctld as a process: its listeners, their permissions and authentication, and its flags.
 * Workers are the fake one (no KVM needed).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { FAKE_WORKER, killWorkers } from './testing/harness.js';

const SERVER = fileURLToPath(new URL('./server.ts', import.meta.url));
const TOKEN = 't'.repeat(48);

let dir: string;
let child: ChildProcess;
let port: number;
let log = '';

function args(...extra: string[]): string[] {
  return ['--import', 'tsx', SERVER, '--state-dir', join(dir, 'state'), '--runtime-dir', join(dir, 'run'), '--vmm', FAKE_WORKER, '--kvm-device', 'none', ...extra];
}

function get(opts: { socketPath?: string; port?: number; path: string; token?: string }): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const r = request({ agent: false, ...(opts.socketPath ? { socketPath: opts.socketPath } : { host: '127.0.0.1', port: opts.port }), path: opts.path, headers: opts.token ? { authorization: `Bearer ${opts.token}` } : {} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    r.on('error', reject);
    r.end();
  });
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const p = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return p;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vmctld-server-'));
  writeFileSync(join(dir, 'token'), `${TOKEN}\n`, { mode: 0o600 });
  port = await freePort();
  child = spawn(process.execPath, args('--listen', `127.0.0.1:${port}`, '--token-file', join(dir, 'token')), { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout!.on('data', (b) => (log += b));
  child.stderr!.on('data', (b) => (log += b));
  const deadline = Date.now() + 20000;
  for (;;) {
    try {
      if ((await get({ socketPath: join(dir, 'run', 'vmctld.sock'), path: '/v1/host' })).status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`vmctld did not come up: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
});

after(() => {
  child.kill('SIGKILL');
  killWorkers(join(dir, 'run'));
  rmSync(dir, { recursive: true, force: true });
});

test('vmctld serves its Unix socket with mode 0660 and no authentication', async () => {
  const sock = join(dir, 'run', 'vmctld.sock');
  assert.equal(statSync(sock).mode & 0o777, 0o660);
  assert.equal((await get({ socketPath: sock, path: '/v1/domains' })).status, 200);
});

test('vmctld on TCP answers only with the bearer token', async () => {
  const none = await get({ port, path: '/v1/domains' });
  assert.equal(none.status, 401);
  assert.equal(JSON.parse(none.body).code, 'UNAUTHORIZED');
  assert.equal((await get({ port, path: '/v1/domains', token: 'x'.repeat(48) })).status, 401);
  assert.equal((await get({ port, path: '/v1/domains', token: TOKEN })).status, 200);
});

test('vmctld on TCP refuses a WebSocket without the token and accepts one with it', async () => {
  const refused = await new Promise<string>((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events`);
    ws.on('unexpected-response', (_req, res) => resolve(String(res.statusCode)));
    ws.on('open', () => resolve('open'));
    ws.on('error', (e) => resolve(e.message));
  });
  assert.equal(refused, '401');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
  await new Promise((resolve, reject) => {
    ws.on('open', resolve);
    ws.on('error', reject);
  });
  ws.terminate();
});

test('a second vmctld on the same socket refuses to start', () => {
  const r = spawnSync(process.execPath, args(), { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /another vmctld is listening/);
});

test('--listen without --token-file is refused', () => {
  const r = spawnSync(process.execPath, args('--listen', '127.0.0.1:1'), { encoding: 'utf8', timeout: 20000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--listen needs --token-file/);
});

test('SIGTERM stops vmctld cleanly and leaves its workers running', async () => {
  const sock = join(dir, 'run', 'vmctld.sock');
  const post = (path: string, body?: unknown) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const r = request({ agent: false, socketPath: sock, method: 'POST', path, headers: data ? { 'content-type': 'application/json' } : {} }, (res) => {
        let b = '';
        res.on('data', (c) => (b += c));
        res.on('end', () => resolve({ status: res.statusCode!, body: b }));
      });
      r.on('error', reject);
      r.end(data);
    });
  const kernel = join(dir, 'kernel');
  writeFileSync(kernel, 'k');
  assert.equal((await post('/v1/domains', { name: 'stays', boot: { kernel } })).status, 201);
  const { pid } = JSON.parse((await post('/v1/domains/stays/actions/start')).body);
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([exited, new Promise((r) => (timer = setTimeout(() => r('timed out'), 10000)))]);
  clearTimeout(timer);
  assert.equal(code, 0, log);
  assert.equal(process.kill(pid, 0), true, 'the worker still runs');
});
