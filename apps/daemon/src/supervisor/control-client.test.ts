import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ControlClient, ControlRequestError } from './control-client.js';

let dir: string;
let server: Server;
let path: string;
let lastSocket: Socket | undefined;

/** A worker that answers describe, pushes an event on subscribe, and ignores `stats`. */
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'control-client-'));
  path = join(dir, 'control.sock');
  server = createServer((sock) => {
    lastSocket = sock;
    let buf = '';
    sock.on('data', (b) => {
      buf += b.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const req = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (req.type === 'describe') sock.write(JSON.stringify({ id: req.id, ok: true, result: { state: 'running' } }) + '\n');
        else if (req.type === 'subscribe') {
          // an event may come before the response, and a response may be split across writes
          sock.write(JSON.stringify({ event: 'state', state: 'paused', at: 'now' }) + '\n{"id":' + req.id);
          setTimeout(() => sock.write(',"ok":true}\n'), 5);
        } else if (req.type === 'pause') sock.write(JSON.stringify({ id: req.id, ok: false, error: { code: 'INVALID_STATE', message: 'not running' } }) + '\n');
        else if (req.type === 'stats') {
          // never answered
        } else sock.write('this is not json\n');
      }
    });
  });
  await new Promise<void>((r) => server.listen(path, r));
});
after(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

test('ControlClient matches responses to requests and hands events out', async () => {
  const c = await ControlClient.connect(path);
  const events: unknown[] = [];
  c.on('event', (e) => events.push(e));
  assert.deepEqual(await c.request({ type: 'describe' }), { state: 'running' });
  assert.equal(await c.request({ type: 'subscribe' }), undefined);
  assert.deepEqual(events, [{ event: 'state', state: 'paused', at: 'now' }]);
  c.close();
});

test('ControlClient rejects with the worker\'s error code', async () => {
  const c = await ControlClient.connect(path);
  await assert.rejects(c.request({ type: 'pause' }), (e: ControlRequestError) => e.code === 'INVALID_STATE' && /not running/.test(e.message));
  c.close();
});

test('ControlClient times a request out, and fails pending requests when the socket closes', async () => {
  const c = await ControlClient.connect(path);
  await assert.rejects(c.request({ type: 'stats' }, 30), (e: ControlRequestError) => e.code === 'TIMEOUT');
  const pending = c.request({ type: 'stats' });
  const closed = new Promise((r) => c.on('close', () => r(true)));
  lastSocket!.destroy();
  await assert.rejects(pending, (e: ControlRequestError) => e.code === 'CLOSED');
  assert.equal(await closed, true);
  await assert.rejects(c.request({ type: 'describe' }), (e: ControlRequestError) => e.code === 'CLOSED');
});

test('ControlClient.connect() rejects when nobody listens', async () => {
  await assert.rejects(ControlClient.connect(join(dir, 'nobody.sock')), /ENOENT/);
});
