/**
 * The display through vmctld, end to end: a real daemon and a real worker running the fb test
 * guest with a display. The project's RFB client, over the daemon's VNC WebSocket (opened with
 * a console ticket, noVNC's `binary` subprotocol), reads the guest's pattern and types a key
 * that the guest echoes on its serial console, read through the console WebSocket. Then
 * `vmctl vnc --listen` forwards a local TCP port to the same display for an ordinary VNC
 * client, and Escape ends the guest, which closes the WebSocket.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import WebSocket, { createWebSocketStream } from 'ws';
import { haveKvm } from '../lib/kvm.js';
import { guest, ROOT } from '../lib/vmm-process.js';
import { ConsoleClient, DaemonProcess } from '../lib/daemon-process.js';
import { RfbClient } from '../lib/rfb-client.js';

const CLI = join(ROOT, 'apps/cli/dist/main.js');
const kvm = haveKvm();
const opts = { skip: !kvm, timeout: 120000 };

const BARS = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000];

/** The fb guest's pattern at 640x480 (test/guests/guests/fb.c). */
function pattern(x: number, y: number): number {
  if (y < 240) return BARS[Math.floor((x * 8) / 640)]!;
  return ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x ^ y) & 0xff);
}

function checkScreen(c: RfbClient, rows: [number, number] = [0, c.height]): void {
  for (let y = rows[0]; y < rows[1]; y++) {
    for (let x = 0; x < c.width; x++) {
      const got = c.rgb(x, y);
      if (got !== pattern(x, y)) assert.fail(`pixel (${x},${y}) is 0x${got.toString(16)}, the guest drew 0x${pattern(x, y).toString(16)}`);
    }
  }
}

/** noVNC's pixel format: 32 bits, little-endian RGB in the low three bytes. */
const NOVNC_FORMAT = { bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 };

let d: DaemonProcess;

before(async () => {
  if (!kvm) return;
  d = new DaemonProcess();
  await d.start();
});
after(async () => {
  await d?.cleanup();
});

/** Opens the VNC WebSocket of `name` with a fresh ticket; resolves once open, or with the refusal's status. */
async function openVnc(name: string, ticket?: string): Promise<{ ws?: WebSocket; status: number; ticket: string }> {
  const t = ticket ?? (await d.req('POST', `/v1/domains/${name}/console-ticket`)).body.ticket;
  const ws = new WebSocket(`ws+unix://${d.socket}:/v1/domains/${name}/vnc?ticket=${t}`, ['binary']);
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, status: 101, ticket: t }));
    ws.once('unexpected-response', (_req, res) => {
      ws.on('error', () => {});
      ws.terminate();
      resolve({ status: res.statusCode!, ticket: t });
    });
    ws.once('error', reject);
  });
}

test('the fb guest\'s screen through the daemon\'s VNC WebSocket; a key typed there is echoed on the serial console', opts, async () => {
  const r = await d.req('POST', '/v1/domains', { name: 'fb', memory_mib: 64, boot: { kernel: guest('fb') }, display: { type: 'vnc' } });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  assert.equal((await d.req('POST', '/v1/domains/fb/actions/start')).status, 200);
  const con = new ConsoleClient(d, 'fb');
  await con.opened;
  await con.waitFor(/kbd: ready/);
  assert.match(con.text, /fb: mode 640x480x32/);

  const { ws, status, ticket } = await openVnc('fb');
  assert.equal(status, 101);
  assert.equal(ws!.protocol, 'binary', 'noVNC\'s subprotocol is accepted');
  const closed = new Promise<number>((res) => ws!.once('close', (code) => res(code)));
  const rfb = RfbClient.over(createWebSocketStream(ws!));
  assert.deepEqual(await rfb.handshake(), [1], 'security None behind the daemon\'s authentication');
  assert.deepEqual([rfb.width, rfb.height], [640, 480]);
  rfb.setPixelFormat(NOVNC_FORMAT);
  rfb.setEncodings([16, 0, -223]);
  rfb.requestUpdate(false);
  const full = await rfb.nextUpdate();
  assert.equal(full.rects[0]!.encoding, 16, 'ZRLE');
  checkScreen(rfb);

  // the ticket was good for that one connection
  assert.equal((await openVnc('fb', ticket)).status, 401);

  rfb.key(true, 0x61);
  rfb.key(false, 0x61);
  await con.waitFor(/kbd: 1e\s+kbd: 9e/);
  rfb.requestUpdate(true);
  await rfb.nextUpdate();
  for (let y = 472; y < 480; y++) for (let x = 0; x < 8; x++) assert.equal(rfb.rgb(x, y), 0xffffff, 'the block the guest paints for a key');

  // an ordinary VNC client through `vmctl vnc --listen`
  assert.ok(existsSync(CLI), `${CLI} is missing: npm run build -w apps/cli`);
  const cli = spawn(process.execPath, [CLI, '--socket', d.socket, 'vnc', 'fb', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    let out = '';
    cli.stdout.on('data', (b) => (out += b));
    cli.stderr.on('data', (b) => (out += b));
    const deadline = Date.now() + 15000;
    let port: number | undefined;
    while (port === undefined) {
      port = Number(/Forwarding 127\.0\.0\.1:(\d+)/.exec(out)?.[1]) || undefined;
      if (Date.now() > deadline || cli.exitCode !== null) assert.fail(`vmctl vnc did not start forwarding: ${out}`);
      await new Promise((res) => setTimeout(res, 20));
    }
    const tcp = await RfbClient.connect({ host: '127.0.0.1', port });
    assert.deepEqual(await tcp.handshake(), [1]);
    tcp.requestUpdate(false);
    await tcp.nextUpdate();
    checkScreen(tcp, [0, 400]);
    tcp.key(true, 0x62); // b: make 0x30
    await con.waitFor(/kbd: 30/);
    tcp.close();
    const exited = new Promise<number | null>((res) => cli.once('exit', (code) => res(code)));
    cli.kill('SIGTERM');
    assert.equal(await exited, 0, out);
  } finally {
    if (cli.exitCode === null && cli.signalCode === null) cli.kill('SIGKILL');
  }

  // Escape ends the guest: the domain powers off and the WebSocket closes normally
  rfb.key(true, 0xff1b);
  await con.waitFor(/fb: bye/);
  assert.equal(await closed, 1000);
  con.close();
  rfb.close();
  for (let i = 0; i < 100 && (await d.req('GET', '/v1/domains/fb/state')).body.state !== 'shutoff'; i++) await new Promise((res) => setTimeout(res, 50));
  assert.equal((await d.req('GET', '/v1/domains/fb/state')).body.state, 'shutoff');
});

test('a running domain without a display answers 409 NO_DISPLAY on its VNC endpoint', opts, async () => {
  await d.req('POST', '/v1/domains', { name: 'plain', memory_mib: 64, boot: { kernel: guest('echo') } });
  assert.equal((await d.req('POST', '/v1/domains/plain/actions/start')).status, 200);
  const r = await d.req('GET', '/v1/domains/plain/vnc');
  assert.equal(r.status, 409);
  assert.equal(r.body.code, 'NO_DISPLAY');
  assert.equal((await openVnc('plain')).status, 409);
  await d.req('POST', '/v1/domains/plain/actions/stop');
});
