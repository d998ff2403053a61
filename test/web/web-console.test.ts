/**
 * The web console in a real browser: Debian's chromium, driven by playwright-core, against a
 * real vmctld on TCP with a bearer token and real workers on /dev/kvm. Signs in with the
 * token, sees the domains and their states change live (start, shut down, stop from the
 * page), opens the fb guest's display in noVNC and checks the guest's pattern in a
 * screenshot, types into it, and types into the echo guest's serial console in xterm.js.
 * The token never appears in a URL: WebSockets open with console tickets.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { haveKvm } from '../lib/kvm.js';
import { DaemonProcess } from '../lib/daemon-process.js';
import { decodePng, rgbAt, type Image } from '../lib/png.js';
import { guest, ROOT } from '../lib/vmm-process.js';

const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => existsSync(p));
const WEB = join(ROOT, 'apps/daemon/dist/web/index.html');
const skip = !haveKvm() ? 'no usable /dev/kvm' : !CHROMIUM ? 'chromium is not installed (scripts/setup.sh installs it)' : false;
const opts = { skip, timeout: 180000 };

const TOKEN = 'browser-test-token-'.padEnd(48, 'x');
const BARS = [0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000];

/** The fb guest's pattern at 640x480 (test/guests/guests/fb.c). */
function pattern(x: number, y: number): number {
  if (y < 240) return BARS[Math.floor((x * 8) / 640)]!;
  return ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x ^ y) & 0xff);
}

let d: DaemonProcess;
let browser: Browser | undefined;
let url: string;

before(async () => {
  if (skip) return;
  assert.ok(existsSync(WEB), `${WEB} is missing: npm run build -w @vmctl/daemon`);
  d = new DaemonProcess();
  url = await d.startTcp(TOKEN);
  browser = await chromium.launch({
    executablePath: CHROMIUM!,
    // root (CI) cannot use chromium's sandbox; sRGB so that screenshot pixels are the guest's
    args: ['--no-sandbox', '--force-color-profile=srgb', '--disable-gpu'],
  });
});
after(async () => {
  await browser?.close();
  await d?.cleanup();
});

/** Polls `pred` until it holds. */
async function until<T>(what: string, pred: () => Promise<T | undefined | false>, ms = 20000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const stateOf = (page: Page, name: string) => page.locator(`tr[data-domain="${name}"] td.state`).textContent();
const clickAction = (page: Page, name: string, action: string) => page.locator(`tr[data-domain="${name}"] button[data-action="${action}"]`).click();

async function screenshot(page: Page): Promise<Image> {
  return decodePng(await page.locator('#screen canvas').screenshot());
}

test('the web console: sign in, live domain states, the display in noVNC, the serial console in xterm.js', opts, async () => {
  for (const [name, kernel, display] of [['fb', 'fb', { type: 'vnc' }], ['echo', 'echo', null]] as const) {
    const r = await d.req('POST', '/v1/domains', { name, memory_mib: 64, boot: { kernel: guest(kernel) }, display });
    assert.equal(r.status, 201, JSON.stringify(r.body));
  }
  assert.equal((await d.req('POST', '/v1/domains/fb/actions/start')).status, 200);

  const page = await browser!.newPage({ viewport: { width: 1280, height: 1100 }, deviceScaleFactor: 1 });
  const urls: string[] = [];
  const problems: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of 401/.test(m.text())) problems.push(m.text());
  });

  // The TCP listener wants the token: the page asks for it once.
  await page.goto(`${url}/`);
  assert.equal(new URL(page.url()).pathname, '/ui/');
  await page.locator('#login').waitFor({ state: 'visible' });
  await page.fill('#token', 'wrong');
  await page.click('#login button[type=submit]');
  await until('the refusal', async () => /refused/.test((await page.textContent('#login-error')) ?? ''));
  await page.fill('#token', TOKEN);
  await page.click('#login button[type=submit]');
  await page.locator('#domains').waitFor({ state: 'visible' });
  await page.locator('#login').waitFor({ state: 'hidden' });
  await until('both domains listed', async () => (await stateOf(page, 'fb')) === 'running' && (await stateOf(page, 'echo')) === 'shutoff');
  assert.equal(await page.locator('tr[data-domain="echo"] button[data-action="display"]').isDisabled(), true, 'echo has no display');

  // Start from the page; the state comes back through /v1/events.
  await clickAction(page, 'echo', 'start');
  await until('echo running', async () => (await stateOf(page, 'echo')) === 'running');

  // The display: noVNC over the VNC WebSocket shows the guest's pattern, pixel for pixel.
  await clickAction(page, 'fb', 'display');
  await until('noVNC connected', async () => /^connected/.test((await page.textContent('#viewer-state')) ?? ''));
  const shot = await until('the pattern on the canvas', async () => {
    const img = await screenshot(page);
    return img.width === 640 && img.height === 480 && rgbAt(img, 600, 470) === pattern(600, 470) ? img : undefined;
  });
  for (let y = 4; y < 480; y += 12) {
    for (let x = 2; x < 640; x += 10) {
      if (y >= 470 && x < 80) continue; // where keys paint their blocks
      assert.equal(rgbAt(shot, x, y).toString(16), pattern(x, y).toString(16), `pixel (${x},${y})`);
    }
  }
  // A key typed on the screen reaches the guest's PS/2 keyboard; the guest paints a block.
  await page.locator('#screen canvas').click({ position: { x: 320, y: 120 } });
  await page.keyboard.press('a');
  await until('the key\'s block at the bottom left', async () => rgbAt(await screenshot(page), 4, 476) === 0xffffff);
  await page.click('#viewer-close');
  assert.equal(await page.locator('#screen canvas').count(), 0);

  // The serial console: xterm.js over the console WebSocket, the replay first, then an echo.
  await clickAction(page, 'echo', 'console');
  const rows = page.locator('#terminal .xterm-rows');
  await until('the replayed boot line', async () => /echo: ready/.test((await rows.textContent()) ?? ''));
  await page.locator('#terminal .xterm').click();
  await page.keyboard.type('hello from the browser');
  await page.keyboard.press('Enter');
  await until('the echo', async () => /hello from the browser/.test((await rows.textContent()) ?? ''));

  // Shut down (the echo guest ignores the power button: stopping), then Stop.
  await clickAction(page, 'echo', 'shutdown');
  await until('echo stopping', async () => (await stateOf(page, 'echo')) === 'stopping');
  await clickAction(page, 'echo', 'stop');
  await until('echo shutoff', async () => (await stateOf(page, 'echo')) === 'shutoff');
  await until('the console closed', async () => /^closed/.test((await page.textContent('#viewer-state')) ?? ''));

  // The token went in headers only; every WebSocket was opened with a ticket.
  assert.ok(urls.every((u) => !u.includes(TOKEN)), 'the token is in a URL');
  const sockets = urls.filter((u) => u.startsWith('ws:'));
  assert.ok(sockets.some((u) => u.includes('/v1/events?ticket=')), JSON.stringify(sockets));
  assert.ok(sockets.some((u) => u.includes('/v1/domains/fb/vnc?ticket=')), JSON.stringify(sockets));
  assert.ok(sockets.some((u) => u.includes('/v1/domains/echo/console?ticket=')), JSON.stringify(sockets));
  assert.deepEqual(problems, [], 'errors in the page');
  await page.close();
});
