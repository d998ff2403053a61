/**
 * ZRLE, RFB encoding 16 (RFC 6143 §7.7.6): the rectangle in 64×64 tiles, each tile as raw
 * CPIXELs, one solid colour, a packed palette (2–16 colours), plain RLE or palette RLE —
 * whichever is smallest — and the whole rectangle's tile data through zlib. The zlib stream is
 * one per connection for its whole life (the client keeps one inflater), each rectangle ending
 * on a sync flush so the client can decode it at once.
 */
import { constants as zc, createDeflate, type Deflate } from 'node:zlib';
import type { PixelFormat } from './pixel-format.js';

export const ZRLE_TILE = 64;

// Tile sub-encodings.
export const ZRLE_RAW = 0;
export const ZRLE_SOLID = 1;
export const ZRLE_PLAIN_RLE = 128;
/** palette RLE is 128 + palette size (2..127) */
export const ZRLE_PALETTE_RLE = 128;
const MAX_PALETTE_RLE = 127;
const MAX_PACKED = 16;

/** How a pixel value becomes a CPIXEL: `size` bytes of `value >>> shift`, in the format's byte order. */
export interface CpixelLayout {
  size: number;
  shift: number;
  bigEndian: boolean;
}

/**
 * §7.7.6: a CPIXEL is 3 bytes when the format is true colour, 32 bits per pixel, depth 24 or
 * less, and all colour bits lie in the least (or the most) significant three bytes; else it
 * is a PIXEL.
 */
export function cpixelLayout(pf: PixelFormat): CpixelLayout {
  const bytes = pf.bitsPerPixel / 8;
  if (pf.trueColour && pf.bitsPerPixel === 32 && pf.depth <= 24) {
    const mask = ((pf.redMax << pf.redShift) | (pf.greenMax << pf.greenShift) | (pf.blueMax << pf.blueShift)) >>> 0;
    if ((mask & 0xff000000) === 0) return { size: 3, shift: 0, bigEndian: pf.bigEndian };
    if ((mask & 0xff) === 0) return { size: 3, shift: 8, bigEndian: pf.bigEndian };
  }
  return { size: bytes, shift: 0, bigEndian: pf.bigEndian };
}

function writeCpixel(out: Uint8Array, pos: number, value: number, c: CpixelLayout): number {
  const v = value >>> c.shift;
  if (c.bigEndian) {
    for (let i = c.size - 1; i >= 0; i--) out[pos++] = v >>> (8 * i);
  } else {
    for (let i = 0; i < c.size; i++) out[pos++] = v >>> (8 * i);
  }
  return pos;
}

/** Bytes of a run length (§7.7.6: (length − 1) as 255s and a final byte below 255). */
function runLengthBytes(run: number): number {
  return Math.floor((run - 1) / 255) + 1;
}

function writeRunLength(out: Uint8Array, pos: number, run: number): number {
  let left = run - 1;
  while (left >= 255) {
    out[pos++] = 255;
    left -= 255;
  }
  out[pos++] = left;
  return pos;
}

export interface ZrleStats {
  raw: number;
  solid: number;
  packed: number;
  plainRle: number;
  paletteRle: number;
}

/**
 * Encodes a width × height rectangle of pixel values (row-major, `width` per row) as ZRLE
 * tile data, before zlib. Reuses its buffers between calls.
 */
export class ZrleTileEncoder {
  readonly stats: ZrleStats = { raw: 0, solid: 0, packed: 0, plainRle: 0, paletteRle: 0 };
  #out = new Uint8Array(64 * 1024);
  readonly #palette = new Map<number, number>();
  readonly #paletteValues = new Uint32Array(MAX_PALETTE_RLE);

  encode(values: Uint32Array, width: number, height: number, c: CpixelLayout): Uint8Array {
    // Worst case: every tile raw, plus its sub-encoding byte.
    const tiles = Math.ceil(width / ZRLE_TILE) * Math.ceil(height / ZRLE_TILE);
    const worst = width * height * c.size + tiles;
    if (this.#out.length < worst) this.#out = new Uint8Array(worst);
    let pos = 0;
    for (let ty = 0; ty < height; ty += ZRLE_TILE) {
      const th = Math.min(ZRLE_TILE, height - ty);
      for (let tx = 0; tx < width; tx += ZRLE_TILE) {
        const tw = Math.min(ZRLE_TILE, width - tx);
        pos = this.#tile(values, width, tx, ty, tw, th, c, pos);
      }
    }
    return this.#out.subarray(0, pos);
  }

  #tile(values: Uint32Array, width: number, tx: number, ty: number, tw: number, th: number, c: CpixelLayout, pos: number): number {
    const out = this.#out;
    const palette = this.#palette;
    const pv = this.#paletteValues;
    palette.clear();
    // One pass: runs (in raster order across the tile's rows, as §7.7.6 lets runs wrap) and
    // the palette, looked up once per run.
    let runs = 0;
    let runBytes = 0; // plain RLE's length bytes
    let longRunBytes = 0; // palette RLE's: only runs longer than 1 carry a length
    let tooMany = false;
    this.#runs(values, width, tx, ty, tw, th, 0, (_, value, run) => {
      runs++;
      const rb = runLengthBytes(run);
      runBytes += rb;
      if (run > 1) longRunBytes += rb;
      if (!tooMany && !palette.has(value)) {
        if (palette.size === MAX_PALETTE_RLE) tooMany = true;
        else {
          pv[palette.size] = value;
          palette.set(value, palette.size);
        }
      }
      return 0;
    });

    const n = tooMany ? Infinity : palette.size;
    const cp = c.size;
    if (n === 1) {
      this.stats.solid++;
      out[pos++] = ZRLE_SOLID;
      return writeCpixel(out, pos, pv[0]!, c);
    }
    const raw = tw * th * cp;
    const plainRle = runs * cp + runBytes;
    const paletteRle = n <= MAX_PALETTE_RLE ? n * cp + runs + longRunBytes : Infinity;
    const bits = n <= 2 ? 1 : n <= 4 ? 2 : 4;
    const packed = n <= MAX_PACKED ? n * cp + th * Math.ceil((tw * bits) / 8) : Infinity;
    const best = Math.min(raw, plainRle, paletteRle, packed);

    if (best === packed) {
      this.stats.packed++;
      out[pos++] = n;
      for (let k = 0; k < n; k++) pos = writeCpixel(out, pos, pv[k]!, c);
      for (let y = 0; y < th; y++) {
        let acc = 0;
        let nbits = 0;
        let i = (ty + y) * width + tx;
        for (let x = 0; x < tw; x++, i++) {
          acc = (acc << bits) | palette.get(values[i]!)!;
          nbits += bits;
          if (nbits === 8) {
            out[pos++] = acc;
            acc = 0;
            nbits = 0;
          }
        }
        // Rows are padded to a whole byte (§7.7.6).
        if (nbits > 0) out[pos++] = acc << (8 - nbits);
      }
      return pos;
    }
    if (best === paletteRle) {
      this.stats.paletteRle++;
      out[pos++] = ZRLE_PALETTE_RLE + n;
      for (let k = 0; k < n; k++) pos = writeCpixel(out, pos, pv[k]!, c);
      return this.#runs(values, width, tx, ty, tw, th, pos, (p, v, len) => {
        const index = palette.get(v)!;
        if (len === 1) {
          out[p++] = index;
          return p;
        }
        out[p++] = index | 0x80;
        return writeRunLength(out, p, len);
      });
    }
    if (best === plainRle) {
      this.stats.plainRle++;
      out[pos++] = ZRLE_PLAIN_RLE;
      return this.#runs(values, width, tx, ty, tw, th, pos, (p, v, len) => writeRunLength(out, writeCpixel(out, p, v, c), len));
    }
    this.stats.raw++;
    out[pos++] = ZRLE_RAW;
    for (let y = 0; y < th; y++) {
      let i = (ty + y) * width + tx;
      for (let x = 0; x < tw; x++, i++) pos = writeCpixel(out, pos, values[i]!, c);
    }
    return pos;
  }

  #runs(
    values: Uint32Array,
    width: number,
    tx: number,
    ty: number,
    tw: number,
    th: number,
    pos: number,
    emit: (pos: number, value: number, run: number) => number,
  ): number {
    let prev = values[ty * width + tx]!;
    let run = 0;
    for (let y = 0; y < th; y++) {
      let i = (ty + y) * width + tx;
      for (let x = 0; x < tw; x++, i++) {
        const v = values[i]!;
        if (v === prev) {
          run++;
          continue;
        }
        pos = emit(pos, prev, run);
        prev = v;
        run = 1;
      }
    }
    return emit(pos, prev, run);
  }
}

/**
 * One connection's zlib stream. `compress()` calls must not overlap (the caller awaits each):
 * every call's output ends with a sync flush, so it is a complete piece of the stream.
 */
export class ZlibStream {
  readonly #deflate: Deflate;
  #chunks: Buffer[] = [];
  #level: number;
  #closed = false;

  constructor(level = 6) {
    this.#level = level;
    this.#deflate = createDeflate({ level });
    this.#deflate.on('data', (c: Buffer) => this.#chunks.push(c));
    // An error here is ours (zlib refusing its own input), reported through compress().
    this.#deflate.on('error', () => {});
  }

  get level(): number {
    return this.#level;
  }

  /** Changes the compression level for the data that follows (the stream goes on). */
  setLevel(level: number): Promise<void> {
    if (level === this.#level || this.#closed) return Promise.resolve();
    this.#level = level;
    return new Promise((resolve) => this.#deflate.params(level, zc.Z_DEFAULT_STRATEGY, () => resolve()));
  }

  compress(data: Uint8Array): Promise<Buffer> {
    if (this.#closed) return Promise.reject(new Error('the zlib stream is closed'));
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#deflate.once('error', onError);
      this.#deflate.write(data);
      this.#deflate.flush(zc.Z_SYNC_FLUSH, () => {
        this.#deflate.off('error', onError);
        const out = Buffer.concat(this.#chunks);
        this.#chunks = [];
        resolve(out);
      });
    });
  }

  close(): void {
    this.#closed = true;
    this.#deflate.destroy();
  }
}
