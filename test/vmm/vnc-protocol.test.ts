/**
 * The VNC server in-process, with a framebuffer in plain memory and fake input devices: the
 * handshakes, updates in each encoding and pixel format, mode changes, input, and hostile
 * clients, which lose their connection while the server keeps serving the others.
 */
import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { Framebuffer } from '../../libs/vmm/src/devices/display/framebuffer.js';
import { VncServer, type VncListenerConfig } from '../../libs/vmm/src/vnc/server.js';
import type { GuestInput } from '../../libs/vmm/src/vnc/input.js';
import { RfbClient } from '../lib/rfb-client.js';

class FakeInput implements GuestInput {
  keys: number[][] = [];
  moves: [number, number, number][] = [];
  keyboard(set1: readonly number[]): boolean {
    this.keys.push([...set1]);
    return true;
  }
  mouseRelative(dx: number, dy: number, buttons: number): boolean {
    this.moves.push([dx, dy, buttons]);
    return true;
  }
}

const W = 200;
const H = 120;

function pattern(x: number, y: number): number {
  return ((x * 3) & 0xff) << 16 | ((y * 5) & 0xff) << 8 | ((x ^ y) & 0xff);
}

/** A 200x120 XRGB8888 screen drawn with `pattern`. */
function screen(width = W, height = H): Framebuffer {
  const vram = new Uint8Array(1 << 20);
  const fb = new Framebuffer({ vram });
  const words = new Uint32Array(vram.buffer);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) words[y * width + x] = pattern(x, y);
  fb.setScanout({ width, height, format: 'XRGB8888', stride: width * 4, offset: 0 });
  return fb;
}

let dir: string;
let server: VncServer | undefined;
const logs: string[] = [];

async function start(listeners: (dir: string) => VncListenerConfig[], display = true) {
  dir = mkdtempSync(join(tmpdir(), 'vnc-test-'));
  const input = new FakeInput();
  const fb = screen();
  server = new VncServer({ listeners: listeners(dir), name: 'test guest', log: (m) => logs.push(m), refreshMs: 5, maxClients: 4 });
  await server.listen();
  if (display) server.setDisplay({ framebuffer: fb, input });
  return { server, input, fb, unix: { path: join(dir, 'vnc.sock') } };
}

const unixOnly = (d: string): VncListenerConfig[] => [{ listen: { kind: 'unix', path: join(d, 'vnc.sock') } }];

afterEach(async () => {
  await server?.close();
  server = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function checkPattern(c: RfbClient, x0 = 0, y0 = 0, w = W, h = H): void {
  for (let y = y0; y < y0 + h; y++) {
    for (let x = x0; x < x0 + w; x++) {
      const got = c.rgb(x, y);
      if (got !== pattern(x, y)) assert.fail(`pixel (${x},${y}) is 0x${got.toString(16)}, not 0x${pattern(x, y).toString(16)}`);
    }
  }
}

describe('VNC handshake', () => {
  test('security type None over a Unix socket: ServerInit has the mode, the name and XRGB8888', async () => {
    const { unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    assert.deepEqual(await c.handshake(), [1]);
    assert.equal(c.width, W);
    assert.equal(c.height, H);
    assert.equal(c.name, 'test guest');
    assert.deepEqual(
      { bpp: c.serverFormat.bitsPerPixel, depth: c.serverFormat.depth, tc: c.serverFormat.trueColour, shifts: [c.serverFormat.redShift, c.serverFormat.greenShift, c.serverFormat.blueShift] },
      { bpp: 32, depth: 24, tc: true, shifts: [16, 8, 0] },
    );
    c.close();
  });

  test('VNC Authentication on TCP: the right password gets in, a wrong one is refused with a reason', async () => {
    const { server: s } = await start(() => [{ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, password: Buffer.from('secret12') }]);
    const addr = s.addresses()[0]!;
    assert.equal(addr.kind, 'tcp');
    const target = { host: '127.0.0.1', port: (addr as { port: number }).port };
    const ok = await RfbClient.connect(target);
    assert.deepEqual(await ok.handshake({ password: 'secret12' }), [2]);
    ok.requestUpdate(false);
    await ok.nextUpdate();
    checkPattern(ok);
    ok.close();

    const bad = await RfbClient.connect(target);
    await assert.rejects(bad.handshake({ password: 'guess' }), /authentication failed: authentication failed/);
    await bad.waitClosed();
    assert.equal(s.metrics.authFailures, 1);
  });

  test('only the first 8 bytes of the password count, as in every VNC implementation', async () => {
    const { server: s } = await start(() => [{ listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, password: Buffer.from('longpassword') }]);
    const port = (s.addresses()[0] as { port: number }).port;
    const c = await RfbClient.connect({ host: '127.0.0.1', port });
    await c.handshake({ password: 'longpass-and-more' });
    c.close();
  });

  test('RFB 3.3 and 3.7 clients get the handshake of their version', async () => {
    const { server: s, unix } = await start((d) => [
      { listen: { kind: 'unix', path: join(d, 'vnc.sock') } },
      { listen: { kind: 'tcp', host: '127.0.0.1', port: 0 }, password: Buffer.from('pw') },
    ]);
    const port = (s.addresses()[1] as { port: number }).port;
    for (const version of ['003.003', '003.007'] as const) {
      const none = await RfbClient.connect(unix);
      assert.deepEqual(await none.handshake({ version }), [1]);
      none.requestUpdate(false);
      await none.nextUpdate();
      checkPattern(none);
      none.close();
      const auth = await RfbClient.connect({ host: '127.0.0.1', port });
      assert.deepEqual(await auth.handshake({ version, password: 'pw' }), [2]);
      auth.close();
    }
  });

  test('a client that is not RFB is closed', async () => {
    const { server: s, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.read(12);
    c.write(Buffer.from('GET / HTTP/1.1\r\n\r\n'));
    await c.waitClosed();
    assert.equal(s.clients, 0);
  });

  test('choosing a security type that was not offered closes the connection with a reason', async () => {
    const { unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.read(12);
    c.write(Buffer.from('RFB 003.008\n'));
    assert.deepEqual([...(await c.read(2))], [1, 1]);
    c.write([2]);
    const result = await c.read(4);
    assert.equal(result.readUInt32BE(0), 1);
    await c.waitClosed();
  });
});

describe('VNC framebuffer updates', () => {
  test('Raw in the server format: a non-incremental request gets the whole screen at once', async () => {
    const { unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.requestUpdate(false);
    const u = await c.nextUpdate();
    assert.deepEqual(u.rects, [{ x: 0, y: 0, width: W, height: H, encoding: 0 }]);
    checkPattern(c);
    c.close();
  });

  test('ZRLE in noVNC\'s format (red at shift 0), with a compression level, over several updates', async () => {
    const { fb, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.setPixelFormat({ bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 });
    c.setEncodings([7, 16, 0, -223, -256 + 2]);
    c.requestUpdate(false);
    const u = await c.nextUpdate();
    assert.equal(u.rects[0]!.encoding, 16);
    assert.ok(u.bytes < W * H * 4, `ZRLE (${u.bytes} bytes) is smaller than raw`);
    checkPattern(c);
    // A change, and a second request: the same zlib stream goes on.
    const words = new Uint32Array(fb.vram.buffer);
    for (let x = 0; x < W; x++) words[60 * W + x] = 0x123456;
    fb.markDirty(60 * W * 4, W * 4);
    c.requestUpdate(true);
    const u2 = await c.nextUpdate();
    assert.ok(u2.rects.every((r) => r.encoding === 16));
    for (let x = 0; x < W; x++) assert.equal(c.rgb(x, 60), 0x123456);
    checkPattern(c, 0, 0, W, 50);
    c.close();
  });

  test('16-bit big-endian and 8-bit colour-map formats are converted', async () => {
    const { unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.setPixelFormat({ bitsPerPixel: 16, depth: 16, bigEndian: true, trueColour: true, redMax: 31, greenMax: 63, blueMax: 31, redShift: 11, greenShift: 5, blueShift: 0 });
    c.requestUpdate(false);
    await c.nextUpdate();
    const near = (a: number, b: number, tol: number) => [16, 8, 0].every((s) => Math.abs(((a >> s) & 0xff) - ((b >> s) & 0xff)) <= tol);
    for (const [x, y] of [[0, 0], [10, 20], [199, 119], [57, 3]] as const) assert.ok(near(c.rgb(x, y), pattern(x, y), 8), `(${x},${y})`);

    c.setPixelFormat({ bitsPerPixel: 8, depth: 8, bigEndian: false, trueColour: false, redMax: 0, greenMax: 0, blueMax: 0, redShift: 0, greenShift: 0, blueShift: 0 });
    c.setEncodings([16]);
    c.requestUpdate(false);
    await c.nextUpdate();
    assert.equal(c.colourMap.length, 256);
    for (const [x, y] of [[0, 0], [10, 20], [199, 119]] as const) assert.ok(near(c.rgb(x, y), pattern(x, y), 40), `(${x},${y}) 8-bit`);
    c.close();
  });

  test('an incremental request waits for a change and gets only the changed band', async () => {
    const { fb, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.requestUpdate(false);
    await c.nextUpdate();
    c.requestUpdate(true);
    await assert.rejects(c.nextUpdate(200), /timed out/, 'nothing changed: no update');
    const words = new Uint32Array(fb.vram.buffer);
    // Page 20 of video memory: bytes 81920..86015, lines 102..107 of an 800-byte stride.
    for (let i = 20 * 1024; i < 21 * 1024; i++) words[i] = 0xabcdef;
    fb.markDirty(20 * 4096, 4096);
    const u = await c.nextUpdate();
    assert.equal(u.rects.length, 1);
    const r = u.rects[0]!;
    assert.ok(r.y <= 102 && r.y + r.height >= 108 && r.height <= 8, JSON.stringify(r));
    assert.equal(c.rgb((20 * 1024) % W, Math.floor((20 * 1024) / W)), 0xabcdef);
    c.close();
  });

  test('a mode change is sent as DesktopSize, then the whole new screen', async () => {
    const { fb, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.setEncodings([0, -223]);
    c.requestUpdate(false);
    await c.nextUpdate();
    c.requestUpdate(true);
    fb.setScanout({ width: 100, height: 50, format: 'XRGB8888', stride: 400, offset: 0 });
    const u = await c.nextUpdate();
    assert.deepEqual(u.rects, [{ x: 0, y: 0, width: 100, height: 50, encoding: -223 }]);
    assert.equal(c.width, 100);
    c.requestUpdate(true);
    const full = await c.nextUpdate();
    assert.deepEqual(full.rects, [{ x: 0, y: 0, width: 100, height: 50, encoding: 0 }]);
    c.close();
  });

  test('without a machine the screen is blank 640x480, and clients follow the next machine', async () => {
    const { server: s, unix } = await start(unixOnly, false);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    assert.deepEqual([c.width, c.height], [640, 480]);
    c.setEncodings([16, -223]);
    c.requestUpdate(false);
    await c.nextUpdate();
    assert.equal(c.rgb(320, 240), 0);
    c.requestUpdate(true);
    s.setDisplay({ framebuffer: screen(), input: new FakeInput() });
    assert.equal((await c.nextUpdate()).rects[0]!.encoding, -223);
    c.requestUpdate(true);
    await c.nextUpdate();
    checkPattern(c);
    c.close();
  });
});

describe('VNC input', () => {
  test('key events become set 1 scan codes; keys still held are released when the client goes', async () => {
    const { server: s, input, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.key(true, 0x61); // a
    c.key(false, 0x61);
    c.key(true, 0xff52); // Up
    c.key(true, 0xffe1); // Shift_L, held
    c.key(true, 0x20ac); // EuroSign: not on a US PC keyboard
    c.setEncodings([0, -258]);
    await c.nextUpdate();
    assert.ok(c.qemuKeysAcked);
    c.qemuKey(true, 0, 0xc8); // Up again, by XT keycode (auto-repeat): e0 48
    c.close();
    await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(input.keys.slice(0, 4), [[0x1e], [0x9e], [0xe0, 0x48], [0x2a]]);
    assert.deepEqual(input.keys[4], [0xe0, 0x48]);
    // Held keys are released (once each, in no particular order).
    assert.deepEqual(input.keys.slice(5).map((k) => k.join(',')).sort(), ['170', '224,200'].sort());
    assert.equal(s.metrics.unmappedKeys, 1);
  });

  test('pointer events become relative PS/2 motion with the buttons in PS/2 order', async () => {
    const { input, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.pointer(0, 100, 100);
    c.pointer(0, 110, 95);
    c.pointer(1, 110, 95); // left
    c.pointer(4, 110, 95); // right
    c.pointer(2, 110, 95); // middle
    c.requestUpdate(false);
    await c.nextUpdate();
    assert.deepEqual(input.moves, [[10, -5, 0], [0, 0, 1], [0, 0, 2], [0, 0, 4]]);
    c.close();
  });
});

describe('VNC absolute pointer', () => {
  test('with a tablet whose driver is up, pointer events are absolute positions with wheel steps', async () => {
    const { server: s, unix } = await start(unixOnly);
    const abs: [number, number, number, number][] = [];
    const input = new FakeInput();
    let tabletUp = false;
    s.setDisplay({
      framebuffer: screen(),
      input: Object.assign(input, {
        mouseAbsolute: (x: number, y: number, b: number, w: number) => {
          if (!tabletUp) return false;
          abs.push([x, y, b, w]);
          return true;
        },
      }),
    });
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.pointer(0, 10, 10); // no driver yet: the PS/2 mouse
    c.pointer(0, 20, 10);
    c.requestUpdate(false);
    await c.nextUpdate();
    tabletUp = true;
    c.pointer(0, W - 1, H - 1);
    c.pointer(8, 0, 0); // wheel up pressed
    c.pointer(0, 0, 0); // released: not another step
    c.pointer(16 | 4, 0, 0); // wheel down with the right button
    c.requestUpdate(false);
    await c.nextUpdate();
    assert.deepEqual(input.moves, [[10, 0, 0]]);
    assert.deepEqual(abs, [[1, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 2, -1]]);
    c.close();
  });
});

describe('VNC hostile clients', () => {
  async function expectClosed(send: (c: RfbClient) => void, s: VncServer, unix: { path: string }): Promise<void> {
    const c = await RfbClient.connect(unix);
    await c.handshake();
    send(c);
    await c.waitClosed();
    // The server still serves everyone else.
    const other = await RfbClient.connect(unix);
    await other.handshake();
    other.requestUpdate(false);
    await other.nextUpdate();
    checkPattern(other);
    other.close();
    assert.ok(s.metrics.protocolErrors >= 1);
  }

  test('an unknown message type closes that connection only', async () => {
    const { server: s, unix } = await start(unixOnly);
    const bystander = await RfbClient.connect(unix);
    await bystander.handshake();
    await expectClosed((c) => c.write([42, 0, 0, 0]), s, unix);
    bystander.requestUpdate(false);
    await bystander.nextUpdate();
    checkPattern(bystander);
    bystander.close();
  });

  test('huge cut text closes the connection; small cut text is skipped', async () => {
    const { server: s, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.cutText('x'.repeat(5000));
    c.requestUpdate(false);
    await c.nextUpdate();
    assert.equal(s.metrics.cutTextBytes, 5000);
    c.close();
    await expectClosed((cc) => cc.write([6, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff]), s, unix);
  });

  test('a bad pixel format, too many encodings and an unknown QEMU message close the connection', async () => {
    const { server: s, unix } = await start(unixOnly);
    await expectClosed((c) => c.write([0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]), s, unix);
    await expectClosed((c) => c.write([0, 0, 0, 0, 32, 24, 0, 1, 0, 200, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0]), s, unix);
    await expectClosed((c) => c.write([0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 30, 8, 0, 0, 0, 0]), s, unix);
    await expectClosed((c) => c.write([2, 0, 0xff, 0xff]), s, unix);
    await expectClosed((c) => c.write([255, 1, 0, 0]), s, unix);
    assert.equal(s.metrics.protocolErrors, 5);
  });

  test('requests for areas off the screen get empty updates; byte-by-byte messages still parse', async () => {
    const { input, unix } = await start(unixOnly);
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.requestUpdate(false, 5000, 5000, 10, 10);
    assert.deepEqual((await c.nextUpdate()).rects, []);
    for (const b of [4, 1, 0, 0, 0, 0, 0, 0x61]) c.write([b]);
    c.requestUpdate(false, 0, 0, 65535, 65535);
    const u = await c.nextUpdate();
    assert.deepEqual(u.rects, [{ x: 0, y: 0, width: W, height: H, encoding: 0 }]);
    assert.deepEqual(input.keys, [[0x1e]]);
    c.close();
  });

  test('a dirty log that cannot be read closes that client, not the server', async () => {
    const { server: s, unix } = await start(unixOnly);
    const broken = new Framebuffer({ vram: new Uint8Array(1 << 20), dirtyLog: { collect: () => { throw new Error('KVM_GET_DIRTY_LOG failed: EBADF'); } } });
    broken.setScanout({ width: W, height: H, format: 'XRGB8888', stride: W * 4, offset: 0 });
    s.setDisplay({ framebuffer: broken, input: new FakeInput() });
    const c = await RfbClient.connect(unix);
    await c.handshake();
    c.requestUpdate(false);
    await c.waitClosed();
    assert.ok(logs.some((l) => /EBADF/.test(l)));
    s.setDisplay({ framebuffer: screen(), input: new FakeInput() });
    const other = await RfbClient.connect(unix);
    await other.handshake();
    other.requestUpdate(false);
    await other.nextUpdate();
    checkPattern(other);
    other.close();
  });

  test('clients sending random bytes at every stage are closed or ignored; the server keeps serving', async () => {
    const { server: s, unix } = await start(unixOnly);
    let seed = 99;
    const rand = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed >>> 0;
    };
    for (let i = 0; i < 24; i++) {
      const c = await RfbClient.connect(unix);
      const stage = i % 3;
      if (stage > 0) await c.handshake();
      if (stage === 2) c.setEncodings([16, -223]);
      const junk = Uint8Array.from({ length: 1 + (rand() % 3000) }, () => rand() & 0xff);
      if (stage === 0) await c.read(12);
      c.write(junk);
      await new Promise((r) => setTimeout(r, 10));
      c.close();
    }
    await new Promise((r) => setTimeout(r, 100));
    const ok = await RfbClient.connect(unix);
    await ok.handshake();
    ok.requestUpdate(false);
    await ok.nextUpdate();
    checkPattern(ok);
    ok.close();
    assert.ok(s.metrics.connections >= 25);
  });

  test('connections past the limit are refused, and a non-shared client ends the others', async () => {
    const { server: s, unix } = await start(unixOnly);
    const clients = [];
    for (let i = 0; i < 4; i++) {
      const c = await RfbClient.connect(unix);
      await c.handshake();
      clients.push(c);
    }
    const fifth = await RfbClient.connect(unix);
    await fifth.waitClosed();
    assert.equal(s.refused, 1);
    clients[3]!.close();
    await clients[3]!.waitClosed();
    await new Promise((r) => setTimeout(r, 50));
    const solo = await RfbClient.connect(unix);
    await solo.handshake({ shared: false });
    for (const c of clients.slice(0, 3)) await c.waitClosed();
    assert.equal(s.clients, 1);
    solo.close();
  });

  test('a client that never finishes the handshake does not hold the server (raw socket, closed by us)', async () => {
    const { server: s, unix } = await start(unixOnly);
    const sock = connect(unix.path);
    await new Promise((r) => sock.once('connect', r));
    sock.write('RFB 003.0');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.clients, 1);
    sock.destroy();
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(s.clients, 0);
  });
});
