/**
 * Runs where a real KVM is (inside the KVM rig, for display-linux.test.ts): boots Debian's
 * generic kernel with the display initramfs under vmm with a VNC display on a Unix socket,
 * and looks at the Linux text console through our RFB client:
 *
 *   1. the console's shell prompt on the serial port (the guest is up);
 *   2. the screen: the bochs DRM driver set a mode, fbcon draws text (lit pixels on black);
 *   3. a line typed as RFB key events (i8042 → tty1's shell) runs — it writes a token to the
 *      serial port — and its echo and output change the screen, seen through incremental
 *      updates (the dirty log of video memory);
 *   4. poweroff on the serial console ends vmm with 0.
 *
 * Each step prints a `DISPLAY-PROBE {json}` line for the test to check; a failure prints
 * `DISPLAY-PROBE {"step":"error",...}` with the serial console's tail and exits 1.
 *
 *   node --import tsx test/linux/display-probe.ts --kernel VMLINUZ --initrd CPIO [--dump DIR]
 *
 * `--dump DIR` writes the screens it checked as PPM images.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RfbClient } from '../lib/rfb-client.js';
import { VmmProcess } from '../lib/vmm-process.js';

const { values: args } = parseArgs({
  options: { kernel: { type: 'string' }, initrd: { type: 'string' }, dump: { type: 'string' } },
});
if (!args.kernel || !args.initrd) throw new Error('usage: display-probe.ts --kernel VMLINUZ --initrd CPIO [--dump DIR]');

const PROMPT = /guest# /;
/** the serial console goes last: /dev/console (init's shell) is ttyS0; the kernel prints on both */
const CMDLINE = 'console=tty0 console=ttyS0 quiet panic=-1';
/** Typed at tty1's shell: $((...)) makes the token differ from the echo of the typed line. */
const TYPED = 'echo vnc-$((6*7)) | tee /dev/ttyS0';
const TOKEN = /vnc-42\r?\n/;
/** a keysym a US keyboard makes with Shift */
const SHIFTED = new Set('~!@#$%^&*()_+{}|:"<>?'.split(''));
const XK_SHIFT_L = 0xffe1;
const XK_RETURN = 0xff0d;

const t0 = performance.now();
const elapsed = () => Number(((performance.now() - t0) / 1000).toFixed(1));
function report(step: string, data: Record<string, unknown> = {}): void {
  console.log(`DISPLAY-PROBE ${JSON.stringify({ step, t: elapsed(), ...data })}`);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What the screen shows, roughly: pixels that are not the background and the text rows they fall in. */
interface ScreenStats {
  width: number;
  height: number;
  lit: number;
  colours: number;
  /** 16-pixel rows (fbcon's 8×16 font) holding lit pixels */
  textRows: number;
}

function stats(c: RfbClient): ScreenStats {
  // Raw pixel values, not rgb(): this runs under TCG in the rig, where every call counts.
  const px = c.pixels;
  const background = px[px.length - 1];
  const colours = new Set<number>();
  const rows = new Set<number>();
  let lit = 0;
  for (let y = 0; y < c.height; y++) {
    const row = px.subarray(y * c.width, (y + 1) * c.width);
    for (let x = 0; x < row.length; x++) {
      const v = row[x]!;
      if (v === background) continue;
      lit++;
      rows.add(y >> 4);
      if (colours.size < 256) colours.add(v);
    }
  }
  colours.add(background!);
  return { width: c.width, height: c.height, lit, colours: colours.size, textRows: rows.size };
}

/** Pixels that differ between two copies of the same-sized screen. */
function changed(a: Uint32Array, b: Uint32Array): number {
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

function dump(c: RfbClient, name: string): void {
  if (!args.dump) return;
  const header = Buffer.from(`P6\n${c.width} ${c.height}\n255\n`, 'latin1');
  const body = Buffer.alloc(c.width * c.height * 3);
  for (let y = 0, o = 0; y < c.height; y++) {
    for (let x = 0; x < c.width; x++, o += 3) {
      const v = c.rgb(x, y);
      body[o] = v >> 16;
      body[o + 1] = (v >> 8) & 0xff;
      body[o + 2] = v & 0xff;
    }
  }
  writeFileSync(join(args.dump, `${name}.ppm`), Buffer.concat([header, body]));
}

async function connect(path: string, ms: number): Promise<RfbClient> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await RfbClient.connect({ path });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await sleep(100);
    }
  }
}

/** Asks for the whole screen and applies it (a DesktopSize change first, when the mode changed). */
async function refresh(c: RfbClient): Promise<void> {
  c.requestUpdate(false);
  const u = await c.nextUpdate(30_000);
  if (u.rects.some((r) => r.encoding === -223)) {
    c.requestUpdate(false);
    await c.nextUpdate(30_000);
  }
}

/** Types `text` and Return as RFB key events, with Shift around the shifted symbols. */
async function type(c: RfbClient, text: string): Promise<void> {
  const press = async (keysym: number) => {
    c.key(true, keysym);
    await sleep(10);
    c.key(false, keysym);
    await sleep(10);
  };
  for (const ch of text) {
    const shift = SHIFTED.has(ch) || (ch >= 'A' && ch <= 'Z');
    if (shift) c.key(true, XK_SHIFT_L);
    await press(ch.charCodeAt(0));
    if (shift) c.key(false, XK_SHIFT_L);
  }
  await press(XK_RETURN);
}

const dir = mkdtempSync(join(tmpdir(), 'vmctl-display-'));
const sock = join(dir, 'vnc.sock');
const vmm = new VmmProcess([
  'run', '--kernel', args.kernel, '--initrd', args.initrd, '--cmdline', CMDLINE,
  '--memory', '512M', '--display', `vnc=unix:${sock}`,
]);
let rfb: RfbClient | undefined;
try {
  rfb = await connect(sock, 30_000);
  await rfb.handshake();
  // Raw (a Unix socket: bytes are cheap) and DesktopSize, for the driver's mode change.
  rfb.setEncodings([0, -223]);
  report('vnc', { width: rfb.width, height: rfb.height });

  await vmm.waitFor(/VMCTL-GUEST-READY/, 240_000);
  await vmm.waitFor(PROMPT, 60_000);
  // $((...)) again keeps the answer apart from the echo of the line
  vmm.write('echo "@@$((1+1)) $(uname -r) $(cat /sys/class/graphics/fb0/name)"\n');
  const [, release, fb] = await vmm.waitFor(/@@2 (\S+) ([^\r\n]*)\r?\n/, 30_000);
  report('prompt', { release, fb });

  // tty1's shell prints a banner and its prompt: three lines of text in the driver's mode.
  let screen: ScreenStats;
  const deadline = Date.now() + 60_000;
  for (;;) {
    await refresh(rfb);
    screen = stats(rfb);
    if (screen.textRows >= 3 || Date.now() > deadline) break;
    await sleep(500);
  }
  dump(rfb, 'before');
  report('screen', { ...screen });
  const before = rfb.pixels.slice();

  await type(rfb, TYPED);
  await vmm.waitFor(TOKEN, 60_000);
  report('typed', { serial: true });
  // Incremental updates from here on, as a viewer asks: only what the guest redrew comes
  // back (the dirty log of video memory). Wait for the output's line and the next prompt.
  let updates = 0;
  let bytes = 0;
  let after = stats(rfb);
  const until = Date.now() + 30_000;
  while (after.textRows < screen.textRows + 2 && Date.now() < until) {
    rfb.requestUpdate(true);
    try {
      const u = await rfb.nextUpdate(2000);
      updates++;
      bytes += u.bytes;
    } catch {
      // nothing changed in the last two seconds
    }
    after = stats(rfb);
  }
  dump(rfb, 'after');
  report('changed', { pixels: changed(before, rfb.pixels), updates, bytes, ...after });

  vmm.write('poweroff\n');
  const exit = await vmm.finish(60_000);
  report('exit', { code: exit.code, signal: exit.signal });
} catch (err) {
  report('error', {
    message: (err as Error).message.slice(0, 2000),
    serial: vmm.stdout.slice(-3000),
    stderr: vmm.stderr.slice(-2000),
  });
  process.exitCode = 1;
} finally {
  rfb?.close();
  vmm.child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
}
