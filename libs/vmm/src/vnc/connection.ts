/**
 * One RFB client, from the version handshake to its last update (RFC 6143 §7).
 *
 *   version → security (None, or VNC Authentication) → ClientInit/ServerInit → messages
 *
 * Framebuffer updates answer requests (§7.5.3): a non-incremental request is answered at
 * once with the area asked for; an incremental one waits until something in the area changed
 * (the server's refresh timer calls `pump()`). An update is produced in three steps so that
 * the screen can change, or the machine go away, at any time without harm: the rectangles'
 * pixels are converted and encoded synchronously (copies, in the format of that moment), then
 * compressed through the connection's zlib stream in order, then written in one piece.
 *
 * Anything malformed closes this connection and only this one; every error is counted and
 * logged once per connection.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Framebuffer, FramebufferMode, FramebufferTracker, Rect } from '../devices/display/framebuffer.js';
import { vncAuthResponse } from './des.js';
import { BUTTON_LEFT, BUTTON_MIDDLE, BUTTON_RIGHT, type GuestInput, type KeyQueue } from './input.js';
import { keysymScancodes, xtKeycodeScancodes } from './keysym.js';
import { colourMap332, PixelConverter, SERVER_PIXEL_FORMAT, type PixelFormat } from './pixel-format.js';
import {
  ENCODING_COMPRESS_LEVEL_0,
  ENCODING_COMPRESS_LEVEL_9,
  ENCODING_DESKTOP_SIZE,
  ENCODING_QEMU_EXTENDED_KEY_EVENT,
  ENCODING_RAW,
  ENCODING_ZRLE,
  RFB_VERSION_3_8,
  RFB_VERSION_LENGTH,
  SECURITY_NONE,
  SECURITY_VNC_AUTH,
  VNC_AUTH_CHALLENGE_LENGTH,
  concat,
  framebufferUpdateHeader,
  parseClientMessage,
  parseVersion,
  rectHeader,
  securityResult,
  securityTypes,
  serverInit,
  setColourMapEntries,
  u32,
  type ClientMessage,
  type ProtocolMinor,
} from './protocol.js';
import { ZlibStream, ZrleTileEncoder, cpixelLayout } from './zrle.js';

/** What a connection sees of the machine: its screen and its input devices. */
export interface VncDisplay {
  framebuffer: Framebuffer;
  input: GuestInput;
}

export interface VncMetrics {
  connections: number;
  active: number;
  /** connections closed for a protocol violation */
  protocolErrors: number;
  authFailures: number;
  updates: number;
  rects: number;
  bytesSent: number;
  /** key events for keysyms not on a PC keyboard */
  unmappedKeys: number;
  /** cut text bytes skipped */
  cutTextBytes: number;
}

/** The server's side of a connection. */
export interface ConnectionHost {
  readonly name: string;
  readonly metrics: VncMetrics;
  readonly keys: KeyQueue;
  display(): VncDisplay | undefined;
  /** a framebuffer to show while there is no machine (between reboots) */
  readonly blank: Framebuffer;
  /** an update request is waiting: keep the refresh timer running */
  wake(): void;
  /** the client asked for exclusive access (ClientInit shared-flag 0) */
  exclusive(conn: VncConnection): void;
  closed(conn: VncConnection): void;
  log(msg: string): void;
}

export interface SecurityConfig {
  /** VNC Authentication with this password (its first 8 bytes); undefined: None */
  password?: Uint8Array;
}

/** The whole handshake must be done in this time, or the connection is closed. */
export const HANDSHAKE_TIMEOUT_MS = 10_000;
/** A failed authentication is answered after this delay, to slow password guessing. */
export const AUTH_FAILURE_DELAY_MS = 300;
/** A client that does not read: no new update while this much is still queued for it. */
const HIGH_WATER = 8 * 1024 * 1024;
/**
 * Incremental updates to one client at most this often (~60 per second): a guest that draws
 * without pause would otherwise have us encode as fast as the client can ask.
 */
export const MIN_UPDATE_INTERVAL_MS = 16;
/** More dirty rectangles than this are merged into their bounding box. */
const MAX_RECTS = 64;
/** Keys one client may hold down at once (released when it goes away). */
const MAX_PRESSED = 128;

type Phase = 'version' | 'security' | 'auth' | 'failed' | 'init' | 'normal' | 'closed';

interface UpdateRequest {
  incremental: boolean;
  rect: Rect;
}

export class VncConnection {
  readonly #sock: Socket;
  readonly #host: ConnectionHost;
  readonly #security: SecurityConfig;
  #phase: Phase = 'version';
  #minor: ProtocolMinor = 8;
  #buf: Buffer = Buffer.alloc(0);
  #skip = 0;
  #challenge: Uint8Array | undefined;
  #handshakeTimer: NodeJS.Timeout | undefined;
  #failTimer: NodeJS.Timeout | undefined;

  #format: PixelFormat = SERVER_PIXEL_FORMAT;
  #converter = new PixelConverter(SERVER_PIXEL_FORMAT);
  #encoding = ENCODING_RAW;
  #desktopSize = false;
  #compressLevel = 6;
  #zlib: ZlibStream | undefined;
  readonly #zrle = new ZrleTileEncoder();
  #values = new Uint32Array(0);

  #fb: Framebuffer | undefined;
  #tracker: FramebufferTracker | undefined;
  #unsubscribe: (() => void) | undefined;
  /** the framebuffer size the client knows */
  #width = 0;
  #height = 0;
  #request: UpdateRequest | undefined;
  #forced: Rect | undefined;
  #dirty: Rect[] = [];
  #sending = false;
  #lastUpdate = -Infinity;
  #paceTimer: NodeJS.Timeout | undefined;

  readonly #pressed = new Map<string, number[]>();
  #pointer: { x: number; y: number; buttons: number; mask: number } | undefined;

  constructor(sock: Socket, host: ConnectionHost, security: SecurityConfig) {
    this.#sock = sock;
    this.#host = host;
    this.#security = security;
    host.metrics.connections++;
    host.metrics.active++;
    sock.setNoDelay?.(true);
    sock.on('data', (b: Buffer) => this.#onData(b));
    sock.on('error', () => this.close());
    sock.on('close', () => this.close());
    this.#handshakeTimer = setTimeout(() => this.#fail('the handshake took too long'), HANDSHAKE_TIMEOUT_MS);
    this.#handshakeTimer.unref();
    this.#write(Buffer.from(RFB_VERSION_3_8, 'latin1'));
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** An update request is waiting to be answered. */
  get waiting(): boolean {
    return this.#request !== undefined && this.#phase === 'normal';
  }

  close(): void {
    if (this.#phase === 'closed') return;
    this.#phase = 'closed';
    if (this.#handshakeTimer !== undefined) clearTimeout(this.#handshakeTimer);
    if (this.#failTimer !== undefined) clearTimeout(this.#failTimer);
    if (this.#paceTimer !== undefined) clearTimeout(this.#paceTimer);
    // Keys this client held down would otherwise stay down in the guest.
    for (const release of this.#pressed.values()) this.#host.keys.push(release);
    this.#pressed.clear();
    this.#detach();
    this.#zlib?.close();
    this.#sock.destroy();
    this.#host.metrics.active--;
    this.#host.closed(this);
  }

  /** The machine changed (built, rebuilt or gone): follow its framebuffer. */
  displayChanged(): void {
    if (this.#phase !== 'normal') return;
    this.#attach();
    void this.pump();
  }

  // --- input ---

  #onData(chunk: Buffer): void {
    if (this.#phase === 'closed' || this.#phase === 'failed') return;
    try {
      let data = chunk;
      if (this.#skip > 0) {
        const n = Math.min(this.#skip, data.length);
        this.#skip -= n;
        this.#host.metrics.cutTextBytes += n;
        data = data.subarray(n);
      }
      this.#buf = this.#buf.length === 0 ? data : Buffer.concat([this.#buf, data]);
      while (this.#reading() && this.#buf.length > 0) {
        const used = this.#step(this.#buf);
        if (used === 0) break;
        this.#buf = this.#buf.subarray(used);
        if (this.#skip > 0) {
          const n = Math.min(this.#skip, this.#buf.length);
          this.#skip -= n;
          this.#host.metrics.cutTextBytes += n;
          this.#buf = this.#buf.subarray(n);
        }
      }
    } catch (err) {
      // Our bug, not the client's: drop this client, keep the worker.
      this.#host.log(`vnc: internal error, closing the connection: ${(err as Error).stack ?? String(err)}`);
      this.close();
    }
  }

  /** Still taking the client's bytes (a method, so TypeScript does not narrow the phase). */
  #reading(): boolean {
    return this.#phase !== 'closed' && this.#phase !== 'failed';
  }

  /** Handles what it can at the start of `b`; returns the bytes used (0: need more). */
  #step(b: Buffer): number {
    switch (this.#phase) {
      case 'version':
        return this.#onVersion(b);
      case 'security':
        return this.#onSecurityChoice(b);
      case 'auth':
        return this.#onAuthResponse(b);
      case 'init':
        return this.#onClientInit(b);
      case 'normal':
        return this.#onMessage(b);
      default:
        return 0;
    }
  }

  #onVersion(b: Buffer): number {
    if (b.length < RFB_VERSION_LENGTH) return 0;
    const minor = parseVersion(b.subarray(0, RFB_VERSION_LENGTH));
    if (minor === undefined) {
      this.#fail(`not an RFB 3.x client: ${JSON.stringify(b.subarray(0, RFB_VERSION_LENGTH).toString('latin1'))}`);
      return RFB_VERSION_LENGTH;
    }
    this.#minor = minor;
    const type = this.#security.password !== undefined ? SECURITY_VNC_AUTH : SECURITY_NONE;
    if (minor === 3) {
      // 3.3: the server decides (§7.1.2 of RFC 6143 describes 3.3's u32 security-type).
      this.#write(u32(type));
      this.#startSecurity(type);
    } else {
      this.#write(securityTypes([type]));
      this.#phase = 'security';
    }
    return RFB_VERSION_LENGTH;
  }

  #onSecurityChoice(b: Buffer): number {
    const type = b[0]!;
    const offered = this.#security.password !== undefined ? SECURITY_VNC_AUTH : SECURITY_NONE;
    if (type !== offered) {
      if (this.#minor >= 8) this.#write(securityResult(false, 8, `security type ${type} was not offered`));
      this.#fail(`chose security type ${type}, which was not offered`);
      return 1;
    }
    this.#startSecurity(type);
    return 1;
  }

  #startSecurity(type: number): void {
    if (type === SECURITY_NONE) {
      // §7.2.1: 3.8 sends a SecurityResult for None too; 3.3 and 3.7 do not.
      if (this.#minor >= 8) this.#write(securityResult(true, 8));
      this.#phase = 'init';
      return;
    }
    this.#challenge = randomBytes(VNC_AUTH_CHALLENGE_LENGTH);
    this.#write(this.#challenge);
    this.#phase = 'auth';
  }

  #onAuthResponse(b: Buffer): number {
    if (b.length < VNC_AUTH_CHALLENGE_LENGTH) return 0;
    const expected = vncAuthResponse(this.#security.password!, this.#challenge!);
    const ok = timingSafeEqual(expected, b.subarray(0, VNC_AUTH_CHALLENGE_LENGTH));
    if (ok) {
      this.#write(securityResult(true, this.#minor));
      this.#phase = 'init';
    } else {
      this.#host.metrics.authFailures++;
      this.#host.log('vnc: authentication failed');
      // Read nothing more; answer after a delay, then close.
      this.#phase = 'failed';
      const minor = this.#minor;
      this.#failTimer = setTimeout(() => {
        this.#write(securityResult(false, minor));
        this.#sock.end();
        this.close();
      }, AUTH_FAILURE_DELAY_MS);
      this.#failTimer.unref();
    }
    return VNC_AUTH_CHALLENGE_LENGTH;
  }

  #onClientInit(b: Buffer): number {
    const shared = b[0] !== 0;
    if (this.#handshakeTimer !== undefined) clearTimeout(this.#handshakeTimer);
    this.#handshakeTimer = undefined;
    this.#phase = 'normal';
    if (!shared) this.#host.exclusive(this);
    this.#attach();
    const mode = this.#currentFb().mode;
    this.#width = mode.width;
    this.#height = mode.height;
    this.#write(serverInit(mode.width, mode.height, SERVER_PIXEL_FORMAT, this.#host.name));
    return 1;
  }

  #onMessage(b: Buffer): number {
    const r = parseClientMessage(b);
    if (r.kind === 'incomplete') return 0;
    if (r.kind === 'error') {
      this.#host.metrics.protocolErrors++;
      this.#fail(r.reason);
      return b.length;
    }
    this.#handle(r.message);
    return r.size;
  }

  #handle(m: ClientMessage): void {
    switch (m.type) {
      case 'set-pixel-format':
        this.#format = m.format;
        this.#converter = new PixelConverter(m.format);
        if (!m.format.trueColour) this.#write(setColourMapEntries(colourMap332()));
        return;
      case 'set-encodings':
        this.#setEncodings(m.encodings);
        return;
      case 'update-request': {
        const rect = { x: m.x, y: m.y, width: m.width, height: m.height };
        this.#request = { incremental: m.incremental, rect };
        if (!m.incremental) this.#forced = this.#forced === undefined ? rect : union(this.#forced, rect);
        this.#host.wake();
        void this.pump();
        return;
      }
      case 'key':
        this.#key(m.down, keysymScancodes(m.keysym, m.down));
        return;
      case 'qemu-key':
        this.#key(m.down, xtKeycodeScancodes(m.keycode, m.down) ?? keysymScancodes(m.keysym, m.down));
        return;
      case 'pointer':
        this.#pointerEvent(m.buttons, m.x, m.y);
        return;
      case 'cut-text':
        // The clipboard is not shared with the guest; the text is skipped unread.
        this.#skip = m.length;
        return;
    }
  }

  #setEncodings(encodings: number[]): void {
    let chosen = ENCODING_RAW;
    let picked = false;
    this.#desktopSize = false;
    let qemuKeys = false;
    for (const e of encodings) {
      // §7.5.2: the client lists encodings in its order of preference.
      if (!picked && (e === ENCODING_ZRLE || e === ENCODING_RAW)) {
        chosen = e;
        picked = true;
      } else if (e === ENCODING_DESKTOP_SIZE) this.#desktopSize = true;
      else if (e === ENCODING_QEMU_EXTENDED_KEY_EVENT) qemuKeys = true;
      else if (e >= ENCODING_COMPRESS_LEVEL_0 && e <= ENCODING_COMPRESS_LEVEL_9) this.#compressLevel = e - ENCODING_COMPRESS_LEVEL_0;
    }
    this.#encoding = chosen;
    if (qemuKeys) {
      // Acknowledge with a pseudo-rectangle, as QEMU does: the client then sends XT codes.
      this.#write(concat(framebufferUpdateHeader(1), rectHeader(0, 0, 0, 0, ENCODING_QEMU_EXTENDED_KEY_EVENT)));
    }
  }

  #key(down: boolean, codes: number[] | undefined): void {
    if (codes === undefined) {
      this.#host.metrics.unmappedKeys++;
      return;
    }
    if (codes.length === 0) return;
    // Held keys are known by their make code, however the client named them.
    const last = codes.length - 1;
    const id = codes.map((c, i) => (i === last ? c & 0x7f : c)).join(',');
    if (down) {
      if (!this.#pressed.has(id) && this.#pressed.size < MAX_PRESSED && codes[0] !== 0xe1) {
        this.#pressed.set(id, codes.map((c, i) => (i === last ? c | 0x80 : c)));
      }
    } else {
      this.#pressed.delete(id);
    }
    this.#host.keys.push(codes);
  }

  #pointerEvent(mask: number, x: number, y: number): void {
    // RFB: bit 0 left, 1 middle, 2 right; bits 3 and 4 are the wheel, a press per step.
    const buttons = (mask & 1 ? BUTTON_LEFT : 0) | (mask & 2 ? BUTTON_MIDDLE : 0) | (mask & 4 ? BUTTON_RIGHT : 0);
    const input = this.#host.display()?.input;
    const last = this.#pointer;
    const lastMask = last?.mask ?? 0;
    const wheel = (mask & 8 && !(lastMask & 8) ? 1 : 0) - (mask & 16 && !(lastMask & 16) ? 1 : 0);
    this.#pointer = { x, y, buttons, mask };
    if (input === undefined) return;
    const mode = this.#currentFb().mode;
    const nx = Math.min(1, x / Math.max(1, mode.width - 1));
    const ny = Math.min(1, y / Math.max(1, mode.height - 1));
    if (input.mouseAbsolute?.(nx, ny, buttons, wheel)) return;
    // A relative mouse: the PS/2 one has no wheel.
    const dx = last === undefined ? 0 : x - last.x;
    const dy = last === undefined ? 0 : y - last.y;
    if (dx !== 0 || dy !== 0 || buttons !== (last?.buttons ?? 0)) input.mouseRelative(dx, dy, buttons);
  }

  // --- output ---

  #currentFb(): Framebuffer {
    return this.#host.display()?.framebuffer ?? this.#host.blank;
  }

  #attach(): void {
    const fb = this.#currentFb();
    if (fb === this.#fb) return;
    this.#detach();
    this.#fb = fb;
    this.#tracker = fb.track();
    this.#unsubscribe = fb.onModeChange(() => this.#host.wake());
  }

  #detach(): void {
    this.#unsubscribe?.();
    this.#tracker?.close();
    this.#unsubscribe = undefined;
    this.#tracker = undefined;
    this.#fb = undefined;
    this.#dirty = [];
  }

  /** Sends an update if one is asked for and there is something to send. Never rejects. */
  async pump(): Promise<void> {
    try {
      await this.#pump();
    } catch (err) {
      // Our bug or a host fault (the dirty log could not be read): this client goes.
      if (this.#reading()) {
        this.#host.log(`vnc: update failed, closing the connection: ${(err as Error).stack ?? String(err)}`);
        this.close();
      }
    }
  }

  async #pump(): Promise<void> {
    if (this.#phase !== 'normal' || this.#sending || this.#request === undefined) return;
    if (this.#sock.writableLength > HIGH_WATER) return;
    const wait = this.#lastUpdate + MIN_UPDATE_INTERVAL_MS - performance.now();
    if (this.#request.incremental && wait > 0) {
      if (this.#paceTimer === undefined) {
        this.#paceTimer = setTimeout(() => {
          this.#paceTimer = undefined;
          void this.pump();
        }, wait);
        this.#paceTimer.unref();
      }
      return;
    }
    this.#attach();
    const fb = this.#fb!;
    const mode = fb.mode;
    if (mode.width !== this.#width || mode.height !== this.#height) {
      if (this.#desktopSize) {
        // §7.8.2: the new size, alone; the client then asks for the whole new screen.
        this.#width = mode.width;
        this.#height = mode.height;
        this.#request = undefined;
        this.#forced = undefined;
        this.#dirty = [];
        this.#tracker!.markAll();
        this.#write(concat(framebufferUpdateHeader(1), rectHeader(0, 0, mode.width, mode.height, ENCODING_DESKTOP_SIZE)));
        this.#host.metrics.updates++;
        return;
      }
      // A client that cannot resize keeps its size; it sees what fits.
    }
    const screen = { x: 0, y: 0, width: Math.min(this.#width, mode.width), height: Math.min(this.#height, mode.height) };
    for (const r of this.#tracker!.takeDirty()) this.#dirty.push(r);
    if (this.#dirty.length > MAX_RECTS) this.#dirty = [boundingBox(this.#dirty)];
    const region = intersect(this.#request.rect, screen);
    const rects: Rect[] = [];
    if (region !== undefined) {
      const forced = this.#forced !== undefined ? intersect(this.#forced, region) : undefined;
      if (forced !== undefined) rects.push(forced);
      const keep: Rect[] = [];
      for (const d of this.#dirty) {
        const part = intersect(d, region);
        if (part !== undefined && !(forced !== undefined && contains(forced, part))) rects.push(part);
        // Changes outside the requested area wait for a request that covers them.
        if (part === undefined || !contains(region, d)) keep.push(d);
      }
      this.#dirty = keep;
    }
    if (rects.length === 0) {
      // Nothing yet: an incremental request waits; a non-incremental one for an area off the
      // screen gets an empty update.
      if (this.#request.incremental) return;
      this.#request = undefined;
      this.#forced = undefined;
      this.#write(framebufferUpdateHeader(0));
      return;
    }
    this.#request = undefined;
    this.#forced = undefined;
    this.#sending = true;
    this.#lastUpdate = performance.now();
    try {
      await this.#sendUpdate(fb, mode, rects.length > MAX_RECTS ? [boundingBox(rects)] : rects);
    } finally {
      this.#sending = false;
    }
  }

  async #sendUpdate(fb: Framebuffer, mode: FramebufferMode, rects: Rect[]): Promise<void> {
    const pixels = fb.pixels;
    if (pixels.buffer.byteLength === 0) return; // video memory already unmapped: nothing to show
    const converter = this.#converter;
    const encoding = this.#encoding;
    const cpixel = cpixelLayout(converter.format);
    // 1. Convert and encode now, while these pixels are the screen's.
    const bodies: Uint8Array[] = [];
    for (const r of rects) {
      const count = r.width * r.height;
      if (this.#values.length < count) this.#values = new Uint32Array(count);
      const values = this.#values.subarray(0, count);
      converter.convert(pixels, mode, r, values);
      if (encoding === ENCODING_ZRLE) {
        bodies.push(this.#zrle.encode(values, r.width, r.height, cpixel).slice());
      } else {
        const out = new Uint8Array(count * converter.bytesPerPixel);
        converter.writePixels(values, count, out, 0);
        bodies.push(out);
      }
    }
    // 2. Compress, in order, through the connection's one zlib stream.
    const parts: Uint8Array[] = [framebufferUpdateHeader(rects.length)];
    for (let i = 0; i < rects.length; i++) {
      const r = rects[i]!;
      if (encoding === ENCODING_ZRLE) {
        this.#zlib ??= new ZlibStream(this.#compressLevel);
        await this.#zlib.setLevel(this.#compressLevel);
        const z = await this.#zlib.compress(bodies[i]!);
        parts.push(rectHeader(r.x, r.y, r.width, r.height, ENCODING_ZRLE), u32(z.length), z);
      } else {
        parts.push(rectHeader(r.x, r.y, r.width, r.height, ENCODING_RAW), bodies[i]!);
      }
    }
    if (!this.#reading()) return;
    // 3. One write, so nothing else the server sends lands inside the update.
    const bytes = this.#write(concat(...parts));
    this.#host.metrics.updates++;
    this.#host.metrics.rects += rects.length;
    this.#host.metrics.bytesSent += bytes;
  }

  #write(bytes: Uint8Array): number {
    if (!this.#sock.destroyed) this.#sock.write(bytes);
    return bytes.length;
  }

  /** Closes the connection for a protocol violation (or a stalled handshake). */
  #fail(reason: string): void {
    if (this.#phase === 'closed') return;
    this.#host.log(`vnc: closing a connection: ${reason}`);
    this.#sock.end();
    this.close();
  }
}

function intersect(a: Rect, b: Rect): Rect | undefined {
  const x0 = Math.max(a.x, b.x);
  const y0 = Math.max(a.y, b.y);
  const x1 = Math.min(a.x + a.width, b.x + b.width);
  const y1 = Math.min(a.y + a.height, b.y + b.height);
  return x1 > x0 && y1 > y0 ? { x: x0, y: y0, width: x1 - x0, height: y1 - y0 } : undefined;
}

function contains(outer: Rect, inner: Rect): boolean {
  return inner.x >= outer.x && inner.y >= outer.y && inner.x + inner.width <= outer.x + outer.width && inner.y + inner.height <= outer.y + outer.height;
}

function union(a: Rect, b: Rect): Rect {
  return boundingBox([a, b]);
}

function boundingBox(rects: readonly Rect[]): Rect {
  let x0 = Infinity;
  let y0 = Infinity;
  let x1 = -Infinity;
  let y1 = -Infinity;
  for (const r of rects) {
    x0 = Math.min(x0, r.x);
    y0 = Math.min(y0, r.y);
    x1 = Math.max(x1, r.x + r.width);
    y1 = Math.max(y1, r.y + r.height);
  }
  return { x: x0, y: y0, width: x1 - x0, height: y1 - y0 };
}
