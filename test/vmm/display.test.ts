/**
 * The display end to end on /dev/kvm: the fb test guest finds the bochs display on PCI, sets a
 * mode through the DISPI registers and draws a pattern into the framebuffer BAR (a KVM memory
 * slot: no exits); our RFB client reads it back over VNC (VNC Authentication on TCP, None on a
 * Unix socket), sees the guest's later drawing through the dirty log, and types into the
 * guest, which echoes the scan codes it receives on its UART. A malformed client loses its
 * connection; the worker and the guest carry on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveKvm } from '../lib/kvm.js';
import { guest, VmmProcess } from '../lib/vmm-process.js';
import { RfbClient } from '../lib/rfb-client.js';

const opts = { skip: !haveKvm(), timeout: 90000 };

const BARS = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000];

/** The fb guest's pattern (test/guests/guests/fb.c). */
function pattern(x: number, y: number, w: number, h: number): number {
  if (y < h / 2) return BARS[Math.floor((x * 8) / w)]!;
  return ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x ^ y) & 0xff);
}

/** 8-bit channels after a trip through RGB565. */
function via565(rgb: number): number {
  const r = (rgb >> 19) & 0x1f;
  const g = (rgb >> 10) & 0x3f;
  const b = (rgb >> 3) & 0x1f;
  return (Math.round((r * 255) / 31) << 16) | (Math.round((g * 255) / 63) << 8) | Math.round((b * 255) / 31);
}

function checkScreen(c: RfbClient, expect: (x: number, y: number) => number, rows: [number, number] = [0, c.height]): void {
  for (let y = rows[0]; y < rows[1]; y++) {
    for (let x = 0; x < c.width; x++) {
      const got = c.rgb(x, y);
      const want = expect(x, y);
      if (got !== want) assert.fail(`pixel (${x},${y}) is 0x${got.toString(16)}, the guest drew 0x${want.toString(16)}`);
    }
  }
}

async function vncPort(p: VmmProcess): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const m = /vnc: listening on 127\.0\.0\.1:(\d+)/.exec(p.stderr);
    if (m) return Number(m[1]);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no VNC port in ${JSON.stringify(p.stderr)}`);
}

test('the fb guest draws through the bochs display; VNC clients see it and type into it', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-display-'));
  const pwFile = join(dir, 'pw');
  writeFileSync(pwFile, 'sesame\n');
  const unix = join(dir, 'vnc.sock');
  const p = new VmmProcess([
    'run', '--kernel', guest('fb'), '--memory', '64M', '--debug-exit',
    '--display', `vnc=127.0.0.1:0,password-file=${pwFile}`,
    '--display', `vnc=unix:${unix}`,
  ]);
  try {
    await p.waitFor(/kbd: ready/);
    assert.match(p.stdout, /pci: 00:01\.0 1234:1111 class=038000/);
    assert.match(p.stdout, /fb: dispi id=0xb0c5 vram=16M/);
    assert.match(p.stdout, /fb: mode 640x480x32 stride=2560/);
    const port = await vncPort(p);
    const expect = (x: number, y: number) => pattern(x, y, 640, 480);

    // VNC Authentication on TCP, Raw.
    const a = await RfbClient.connect({ host: '127.0.0.1', port });
    assert.deepEqual(await a.handshake({ password: 'sesame' }), [2]);
    assert.deepEqual([a.width, a.height], [640, 480]);
    a.requestUpdate(false);
    await a.nextUpdate();
    checkScreen(a, expect);

    // None on the Unix socket, ZRLE in noVNC's pixel format.
    const b = await RfbClient.connect({ path: unix });
    assert.deepEqual(await b.handshake(), [1]);
    b.setPixelFormat({ bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 });
    b.setEncodings([16, 0, -223]);
    b.requestUpdate(false);
    const full = await b.nextUpdate();
    assert.equal(full.rects[0]!.encoding, 16);
    assert.ok(full.bytes < (640 * 480 * 4) / 2, `ZRLE full screen: ${full.bytes} bytes`);
    checkScreen(b, expect);

    // Nothing changes: an incremental request is not answered.
    b.requestUpdate(true);
    await assert.rejects(b.nextUpdate(300), /timed out/);

    // A key: the guest echoes make and break and paints a block at the bottom left, which
    // the waiting client gets through the dirty log — and only that part of the screen.
    a.key(true, 0x61);
    a.key(false, 0x61);
    await p.waitFor(/kbd: 1e\nkbd: 9e\n/);
    const u = await b.nextUpdate();
    assert.ok(u.rects.every((r) => r.y + r.height > 472 && r.y >= 400), `only the bottom changed: ${JSON.stringify(u.rects)}`);
    for (let y = 472; y < 480; y++) for (let x = 0; x < 8; x++) assert.equal(b.rgb(x, y), 0xffffff);
    checkScreen(b, expect, [0, 400]);

    // A malformed client is dropped; the worker and the guest go on.
    const bad = await RfbClient.connect({ path: unix });
    await bad.handshake();
    bad.write([0x99, 1, 2, 3]);
    await bad.waitClosed();
    a.key(true, 0xff52); // Up: e0 48
    await p.waitFor(/kbd: e0\nkbd: 48\n/);

    // Mouse motion reaches the PS/2 mouse the guest enabled: one 3-byte packet (up = +y).
    a.pointer(0, 100, 100);
    a.pointer(1, 110, 95);
    await p.waitFor(/aux: 09\naux: 0a\naux: 05\n/);

    // Escape ends the guest.
    a.key(true, 0xff1b);
    await p.waitFor(/fb: bye/);
    const { code } = await p.finish();
    assert.equal(code, 0, p.stderr);
    a.close();
    b.close();
  } finally {
    p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the DISPI ports and a 16-bit mode: the client gets RGB565 converted to its format', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-display-'));
  const unix = join(dir, 'vnc.sock');
  const p = new VmmProcess([
    'run', '--kernel', guest('fb'), '--memory', '64M', '--debug-exit',
    '--cmdline', 'dispi=ports bpp=16 xres=320 yres=200',
    '--display', `vnc=unix:${unix}`,
  ]);
  try {
    await p.waitFor(/kbd: ready/);
    assert.match(p.stdout, /fb: mode 320x200x16 stride=640/);
    const c = await RfbClient.connect({ path: unix });
    await c.handshake();
    assert.deepEqual([c.width, c.height], [320, 200]);
    c.setEncodings([16]);
    c.requestUpdate(false);
    await c.nextUpdate();
    checkScreen(c, (x, y) => via565(pattern(x, y, 320, 200)));
    c.key(true, 0xff1b);
    await p.waitFor(/fb: bye/);
    assert.equal((await p.finish()).code, 0, p.stderr);
    c.close();
  } finally {
    p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a client connected before the guest sets its mode is told the new size', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-display-'));
  const unix = join(dir, 'vnc.sock');
  const p = new VmmProcess([
    'run', '--kernel', guest('fb'), '--memory', '64M', '--debug-exit',
    '--cmdline', 'xres=800 yres=600',
    '--display', `vnc=unix:${unix}`,
  ]);
  try {
    // The socket exists before the guest runs; connect as early as possible.
    let c: RfbClient | undefined;
    for (let i = 0; i < 200 && !c; i++) {
      try {
        c = await RfbClient.connect({ path: unix });
      } catch {
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.ok(c, 'connected');
    await c.handshake();
    c.setEncodings([16, -223]);
    c.requestUpdate(false);
    await c.nextUpdate();
    await p.waitFor(/fb: drawn 800x600x32/);
    // Updates until the client has the new size and the pattern.
    for (let i = 0; i < 5 && (c.width !== 800 || c.rgb(799, 599) !== pattern(799, 599, 800, 600)); i++) {
      c.requestUpdate(c.width === 800);
      await c.nextUpdate();
    }
    assert.deepEqual([c.width, c.height], [800, 600]);
    checkScreen(c, (x, y) => pattern(x, y, 800, 600));
    c.close();
  } finally {
    p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});

test('with the tablet driven by the guest, pointer events arrive as absolute positions', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-display-'));
  const unix = join(dir, 'vnc.sock');
  const p = new VmmProcess([
    'run', '--kernel', guest('fb'), '--memory', '64M', '--debug-exit', '--cmdline', 'tablet',
    '--display', `vnc=unix:${unix}`,
  ]);
  try {
    await p.waitFor(/kbd: ready/);
    assert.match(p.stdout, /virtio: 00:02\.0 input /);
    assert.match(p.stdout, /tablet: name "vmctl tablet"/);
    const c = await RfbClient.connect({ path: unix });
    await c.handshake();
    c.pointer(0, 639, 479);
    await p.waitFor(/tablet: 3 0 32767\ntablet: 3 1 32767\ntablet: 0 0 0\n/);
    c.pointer(1, 0, 0);
    await p.waitFor(/tablet: 3 0 0\ntablet: 3 1 0\ntablet: 1 110 1\ntablet: 0 0 0\n/);
    assert.doesNotMatch(p.stdout, /aux: /, 'the PS/2 mouse got nothing');
    c.key(true, 0xff1b);
    await p.waitFor(/fb: bye/);
    assert.equal((await p.finish()).code, 0, p.stderr);
    c.close();
  } finally {
    p.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
});
