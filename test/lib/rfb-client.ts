/**
 * A minimal RFB 3.8 client (RFC 6143) for the tests: the handshake with None or VNC
 * Authentication, SetPixelFormat, SetEncodings, update requests, and Raw, ZRLE and the
 * DesktopSize / QEMU extended key event pseudo-rectangles decoded into a local copy of the
 * screen (pixel values in the client's format). Also sends raw bytes, for malformed-message
 * tests. Runs over a TCP or Unix socket, or over any byte stream (`RfbClient.over()`: vmctld's
 * VNC WebSocket through ws's createWebSocketStream, say).
 */
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import { constants as zc, createInflate, type Inflate } from 'node:zlib';
import { vncAuthResponse } from '../../libs/vmm/src/vnc/des.js';
import { encodePixelFormat, parsePixelFormat, SERVER_PIXEL_FORMAT, type PixelFormat } from '../../libs/vmm/src/vnc/pixel-format.js';
import { cpixelLayout } from '../../libs/vmm/src/vnc/zrle.js';
import { decodeZrleTiles } from '../../libs/vmm/src/vnc/zrle-decoder.js';

export type RfbTarget = { host: string; port: number } | { path: string };

export interface UpdateInfo {
  rects: { x: number; y: number; width: number; height: number; encoding: number }[];
  /** bytes of the whole FramebufferUpdate message */
  bytes: number;
}

export class RfbClosedError extends Error {}

export class RfbClient {
  readonly sock: Duplex;
  width = 0;
  height = 0;
  name = '';
  serverFormat: PixelFormat = SERVER_PIXEL_FORMAT;
  format: PixelFormat = SERVER_PIXEL_FORMAT;
  /** the screen, one client pixel value per pixel */
  pixels = new Uint32Array(0);
  colourMap: number[][] = [];
  qemuKeysAcked = false;
  closed = false;
  /** bytes received and not read yet, as they arrived (joined only when a read needs them:
   *  a full screen comes in dozens of chunks) */
  #chunks: Buffer[] = [];
  #buffered = 0;
  #waiter: (() => void) | undefined;
  /** the client's one zlib stream for ZRLE, as RFC 6143 §7.7.6 has it */
  #inflate: Inflate | undefined;
  #inflated: Buffer[] = [];

  private constructor(sock: Duplex) {
    this.sock = sock;
    sock.on('data', (b: Buffer) => {
      this.#chunks.push(b);
      this.#buffered += b.length;
      this.#wake();
    });
    sock.on('close', () => {
      this.closed = true;
      this.#wake();
    });
    sock.on('error', () => {});
  }

  static connect(target: RfbTarget): Promise<RfbClient> {
    return new Promise((resolve, reject) => {
      const sock = 'path' in target ? connect(target.path) : connect(target.port, target.host);
      sock.once('connect', () => resolve(new RfbClient(sock)));
      sock.once('error', reject);
    });
  }

  /** A client on a stream that is already connected. */
  static over(stream: Duplex): RfbClient {
    return new RfbClient(stream);
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** The next `n` bytes from the server. */
  async read(n: number, ms = 10000): Promise<Buffer> {
    const deadline = Date.now() + ms;
    while (this.#buffered < n) {
      if (this.closed) throw new RfbClosedError(`the server closed the connection (wanted ${n} bytes, have ${this.#buffered})`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${n} bytes (have ${this.#buffered})`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
    if (n === 0) return Buffer.alloc(0);
    if (this.#chunks[0]!.length < n) this.#chunks = [Buffer.concat(this.#chunks)];
    const first = this.#chunks[0]!;
    const out = first.subarray(0, n);
    if (first.length === n) this.#chunks.shift();
    else this.#chunks[0] = first.subarray(n);
    this.#buffered -= n;
    return out;
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(ms = 5000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('the server did not close the connection');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 50);
        this.#waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  write(bytes: Uint8Array | number[]): void {
    this.sock.write(Uint8Array.from(bytes as ArrayLike<number>));
  }

  /**
   * The handshake up to ServerInit. `password` answers VNC Authentication; `version` picks
   * the protocol the client claims. Returns the security types offered (3.3: the one chosen).
   */
  async handshake(opts: { password?: string; version?: '003.003' | '003.007' | '003.008'; shared?: boolean } = {}): Promise<number[]> {
    const version = (await this.read(12)).toString('latin1');
    if (version !== 'RFB 003.008\n') throw new Error(`server version ${JSON.stringify(version)}`);
    const v = opts.version ?? '003.008';
    this.write(Buffer.from(`RFB ${v}\n`, 'latin1'));
    let types: number[];
    let chosen: number;
    if (v === '003.003') {
      chosen = (await this.read(4)).readUInt32BE(0);
      types = [chosen];
    } else {
      const n = (await this.read(1))[0]!;
      if (n === 0) throw new Error(`refused: ${await this.#reason()}`);
      types = [...(await this.read(n))];
      chosen = opts.password !== undefined ? 2 : 1;
      if (!types.includes(chosen)) throw new Error(`security type ${chosen} not offered: ${types}`);
      this.write([chosen]);
    }
    if (chosen === 2) {
      const challenge = await this.read(16);
      this.write(vncAuthResponse(Buffer.from(opts.password ?? '', 'utf8'), challenge));
    }
    if (chosen === 2 || v === '003.008') {
      const result = (await this.read(4)).readUInt32BE(0);
      if (result !== 0) throw new Error(`authentication failed${v === '003.008' ? `: ${await this.#reason()}` : ''}`);
    }
    this.write([opts.shared === false ? 0 : 1]);
    const init = await this.read(24);
    this.width = init.readUInt16BE(0);
    this.height = init.readUInt16BE(2);
    this.serverFormat = parsePixelFormat(init.subarray(4, 20));
    this.format = this.serverFormat;
    this.name = (await this.read(init.readUInt32BE(20))).toString('utf8');
    this.pixels = new Uint32Array(this.width * this.height);
    return types;
  }

  async #reason(): Promise<string> {
    const len = (await this.read(4)).readUInt32BE(0);
    return (await this.read(len)).toString('utf8');
  }

  setPixelFormat(pf: PixelFormat): void {
    this.format = pf;
    this.write([0, 0, 0, 0, ...encodePixelFormat(pf)]);
  }

  setEncodings(encodings: number[]): void {
    const b = Buffer.alloc(4 + 4 * encodings.length);
    b[0] = 2;
    b.writeUInt16BE(encodings.length, 2);
    encodings.forEach((e, i) => b.writeInt32BE(e, 4 + 4 * i));
    this.write(b);
  }

  requestUpdate(incremental: boolean, x = 0, y = 0, width = this.width, height = this.height): void {
    const b = Buffer.alloc(10);
    b[0] = 3;
    b[1] = incremental ? 1 : 0;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    b.writeUInt16BE(width, 6);
    b.writeUInt16BE(height, 8);
    this.write(b);
  }

  key(down: boolean, keysym: number): void {
    const b = Buffer.alloc(8);
    b[0] = 4;
    b[1] = down ? 1 : 0;
    b.writeUInt32BE(keysym, 4);
    this.write(b);
  }

  qemuKey(down: boolean, keysym: number, keycode: number): void {
    const b = Buffer.alloc(12);
    b[0] = 255;
    b[1] = 0;
    b.writeUInt16BE(down ? 1 : 0, 2);
    b.writeUInt32BE(keysym, 4);
    b.writeUInt32BE(keycode, 8);
    this.write(b);
  }

  pointer(buttons: number, x: number, y: number): void {
    const b = Buffer.alloc(6);
    b[0] = 5;
    b[1] = buttons;
    b.writeUInt16BE(x, 2);
    b.writeUInt16BE(y, 4);
    this.write(b);
  }

  cutText(text: string): void {
    const t = Buffer.from(text, 'latin1');
    const b = Buffer.alloc(8);
    b[0] = 6;
    b.writeUInt32BE(t.length, 4);
    this.write(Buffer.concat([b, t]));
  }

  /**
   * Reads server messages until a FramebufferUpdate has been applied to `pixels` (colour-map
   * messages are applied on the way). Returns what the update held.
   */
  async nextUpdate(ms = 10000): Promise<UpdateInfo> {
    for (;;) {
      const type = (await this.read(1, ms))[0]!;
      if (type === 1) {
        const h = await this.read(5, ms);
        const first = h.readUInt16BE(1);
        const n = h.readUInt16BE(3);
        const rgb = await this.read(6 * n, ms);
        for (let i = 0; i < n; i++) this.colourMap[first + i] = [rgb.readUInt16BE(6 * i), rgb.readUInt16BE(6 * i + 2), rgb.readUInt16BE(6 * i + 4)];
        continue;
      }
      if (type !== 0) throw new Error(`unexpected server message type ${type}`);
      return this.#update(ms);
    }
  }

  async #update(ms: number): Promise<UpdateInfo> {
    const h = await this.read(3, ms);
    const n = h.readUInt16BE(1);
    const info: UpdateInfo = { rects: [], bytes: 4 };
    for (let i = 0; i < n; i++) {
      const r = await this.read(12, ms);
      const rect = { x: r.readUInt16BE(0), y: r.readUInt16BE(2), width: r.readUInt16BE(4), height: r.readUInt16BE(6), encoding: r.readInt32BE(8) };
      info.rects.push(rect);
      info.bytes += 12;
      if (rect.encoding === -223) {
        this.width = rect.width;
        this.height = rect.height;
        this.pixels = new Uint32Array(this.width * this.height);
        continue;
      }
      if (rect.encoding === -258) {
        this.qemuKeysAcked = true;
        continue;
      }
      if (rect.x + rect.width > this.width || rect.y + rect.height > this.height) {
        throw new Error(`rectangle ${JSON.stringify(rect)} outside the ${this.width}x${this.height} screen`);
      }
      let values: Uint32Array;
      if (rect.encoding === 0) {
        const bpp = this.format.bitsPerPixel / 8;
        const raw = await this.read(rect.width * rect.height * bpp, ms);
        info.bytes += raw.length;
        values = new Uint32Array(rect.width * rect.height);
        if (bpp === 4 && !this.format.bigEndian) new Uint8Array(values.buffer).set(raw);
        else for (let p = 0; p < values.length; p++) values[p] = readPixel(raw, p * bpp, bpp, this.format.bigEndian);
      } else if (rect.encoding === 16) {
        const len = (await this.read(4, ms)).readUInt32BE(0);
        const z = await this.read(len, ms);
        info.bytes += 4 + len;
        const tiles = await this.#inflateRect(z);
        const decoded = decodeZrleTiles(tiles, rect.width, rect.height, cpixelLayout(this.format));
        if (decoded.used !== tiles.length) throw new Error(`ZRLE rectangle used ${decoded.used} of ${tiles.length} bytes`);
        values = decoded.values;
      } else {
        throw new Error(`encoding ${rect.encoding} was not asked for`);
      }
      for (let y = 0; y < rect.height; y++) {
        this.pixels.set(values.subarray(y * rect.width, (y + 1) * rect.width), (rect.y + y) * this.width + rect.x);
      }
    }
    return info;
  }

  /** Inflates one rectangle's zlib data; the server flushed it, so all of it comes out now. */
  #inflateRect(z: Buffer): Promise<Buffer> {
    if (this.#inflate === undefined) {
      this.#inflate = createInflate();
      this.#inflate.on('data', (b: Buffer) => this.#inflated.push(b));
    }
    const inflate = this.#inflate;
    return new Promise((resolve, reject) => {
      inflate.once('error', reject);
      inflate.write(z);
      inflate.flush(zc.Z_SYNC_FLUSH, () => {
        inflate.off('error', reject);
        const out = Buffer.concat(this.#inflated);
        this.#inflated = [];
        resolve(out);
      });
    });
  }

  /** The pixel at (x, y) as 0xRRGGBB, 8 bits per channel, from the client's format. */
  rgb(x: number, y: number): number {
    const v = this.pixels[y * this.width + x]!;
    const f = this.format;
    if (!f.trueColour) {
      const [r, g, b] = this.colourMap[v] ?? [0, 0, 0];
      return ((r! >> 8) << 16) | ((g! >> 8) << 8) | (b! >> 8);
    }
    const c = (max: number, shift: number) => Math.round((((v >>> shift) & max) * 255) / max);
    return (c(f.redMax, f.redShift) << 16) | (c(f.greenMax, f.greenShift) << 8) | c(f.blueMax, f.blueShift);
  }

  close(): void {
    this.sock.destroy();
    this.#inflate?.destroy();
  }
}

function readPixel(b: Buffer, off: number, bpp: number, bigEndian: boolean): number {
  if (bpp === 1) return b[off]!;
  if (bpp === 2) return bigEndian ? b.readUInt16BE(off) : b.readUInt16LE(off);
  return bigEndian ? b.readUInt32BE(off) : b.readUInt32LE(off);
}
