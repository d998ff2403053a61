/**
 * RFB pixel formats (RFC 6143 §7.4) and the conversion from the framebuffer's layout into the
 * one a client asked for with SetPixelFormat.
 *
 * A client's format is hostile input: it is checked before use (bits per pixel 8, 16 or 32;
 * every channel's maximum a run of low bits that fits, shifted, in the pixel). True colour is
 * what every current client asks for; an 8-bit colour-map client gets a fixed 3-3-2 palette.
 */
import type { DisplayFormat } from '../devices/display/dispi.js';
import type { FramebufferMode, Rect } from '../devices/display/framebuffer.js';

export interface PixelFormat {
  bitsPerPixel: number;
  depth: number;
  bigEndian: boolean;
  trueColour: boolean;
  redMax: number;
  greenMax: number;
  blueMax: number;
  redShift: number;
  greenShift: number;
  blueShift: number;
}

/** What the server offers in ServerInit: the framebuffer's own XRGB8888, little-endian. */
export const SERVER_PIXEL_FORMAT: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 32,
  depth: 24,
  bigEndian: false,
  trueColour: true,
  redMax: 255,
  greenMax: 255,
  blueMax: 255,
  redShift: 16,
  greenShift: 8,
  blueShift: 0,
});

/** The palette-mode format: 3 bits red, 3 green, 2 blue, as indices into the colour map we send. */
export const COLOUR_MAP_332: Readonly<PixelFormat> = Object.freeze({
  bitsPerPixel: 8,
  depth: 8,
  bigEndian: false,
  trueColour: false,
  redMax: 7,
  greenMax: 7,
  blueMax: 3,
  redShift: 5,
  greenShift: 2,
  blueShift: 0,
});

export const PIXEL_FORMAT_SIZE = 16;

/** PIXEL_FORMAT (§7.4): 16 bytes. */
export function parsePixelFormat(b: Uint8Array): PixelFormat {
  const v = new DataView(b.buffer, b.byteOffset, PIXEL_FORMAT_SIZE);
  return {
    bitsPerPixel: v.getUint8(0),
    depth: v.getUint8(1),
    bigEndian: v.getUint8(2) !== 0,
    trueColour: v.getUint8(3) !== 0,
    redMax: v.getUint16(4),
    greenMax: v.getUint16(6),
    blueMax: v.getUint16(8),
    redShift: v.getUint8(10),
    greenShift: v.getUint8(11),
    blueShift: v.getUint8(12),
  };
}

export function encodePixelFormat(pf: PixelFormat): Uint8Array {
  const b = new Uint8Array(PIXEL_FORMAT_SIZE);
  const v = new DataView(b.buffer);
  v.setUint8(0, pf.bitsPerPixel);
  v.setUint8(1, pf.depth);
  v.setUint8(2, pf.bigEndian ? 1 : 0);
  v.setUint8(3, pf.trueColour ? 1 : 0);
  v.setUint16(4, pf.redMax);
  v.setUint16(6, pf.greenMax);
  v.setUint16(8, pf.blueMax);
  v.setUint8(10, pf.redShift);
  v.setUint8(11, pf.greenShift);
  v.setUint8(12, pf.blueShift);
  return b;
}

/** Why a client's pixel format cannot be served, or undefined when it can. */
export function checkPixelFormat(pf: PixelFormat): string | undefined {
  if (pf.bitsPerPixel !== 8 && pf.bitsPerPixel !== 16 && pf.bitsPerPixel !== 32) {
    return `bits-per-pixel ${pf.bitsPerPixel} (8, 16 or 32)`;
  }
  if (!pf.trueColour) {
    return pf.bitsPerPixel === 8 ? undefined : `a colour map with ${pf.bitsPerPixel} bits per pixel (only 8)`;
  }
  for (const [name, max, shift] of [
    ['red', pf.redMax, pf.redShift],
    ['green', pf.greenMax, pf.greenShift],
    ['blue', pf.blueMax, pf.blueShift],
  ] as const) {
    // §7.4: the maximum is 2^N - 1 for N bits of that colour.
    if (max === 0 || (max & (max + 1)) !== 0) return `${name}-max ${max} is not 2^N - 1`;
    const bits = Math.log2(max + 1);
    if (shift + bits > pf.bitsPerPixel) return `${name} (${bits} bits at shift ${shift}) does not fit in ${pf.bitsPerPixel} bits`;
  }
  return undefined;
}

/** The format conversion actually uses: the 3-3-2 map for colour-map clients. */
export function effectiveFormat(pf: PixelFormat): PixelFormat {
  return pf.trueColour ? pf : { ...COLOUR_MAP_332, bigEndian: pf.bigEndian };
}

/** The 256 colour-map entries (16-bit r, g, b) of the 3-3-2 palette, for SetColourMapEntries. */
export function colourMap332(): Uint16Array {
  const out = new Uint16Array(256 * 3);
  for (let i = 0; i < 256; i++) {
    out[i * 3] = Math.round((((i >> 5) & 7) * 65535) / 7);
    out[i * 3 + 1] = Math.round((((i >> 2) & 7) * 65535) / 7);
    out[i * 3 + 2] = Math.round(((i & 3) * 65535) / 3);
  }
  return out;
}

function expandTable(bits: number): Uint8Array {
  const t = new Uint8Array(1 << bits);
  const max = (1 << bits) - 1;
  for (let i = 0; i <= max; i++) t[i] = Math.round((i * 255) / max);
  return t;
}
const EXPAND5 = expandTable(5);
const EXPAND6 = expandTable(6);
const EXPAND3 = expandTable(3);
const EXPAND2 = expandTable(2);

/**
 * Turns framebuffer pixels into a client's pixel values (as numbers; `writePixels` lays them
 * out), through per-channel tables: value = R[r] | G[g] | B[b] for 8-bit intensities.
 */
export class PixelConverter {
  readonly format: PixelFormat;
  /** bytes per pixel on the wire */
  readonly bytesPerPixel: number;
  readonly #r = new Uint32Array(256);
  readonly #g = new Uint32Array(256);
  readonly #b = new Uint32Array(256);
  /** the client's format is the server's own: XRGB8888 values pass through */
  readonly #identity: boolean;

  constructor(clientFormat: PixelFormat) {
    const pf = effectiveFormat(clientFormat);
    this.format = pf;
    this.bytesPerPixel = pf.bitsPerPixel / 8;
    for (let i = 0; i < 256; i++) {
      this.#r[i] = (Math.floor((i * pf.redMax + 127) / 255) << pf.redShift) >>> 0;
      this.#g[i] = (Math.floor((i * pf.greenMax + 127) / 255) << pf.greenShift) >>> 0;
      this.#b[i] = (Math.floor((i * pf.blueMax + 127) / 255) << pf.blueShift) >>> 0;
    }
    const s = SERVER_PIXEL_FORMAT;
    this.#identity =
      pf.trueColour &&
      pf.bitsPerPixel === 32 &&
      pf.redMax === 255 &&
      pf.greenMax === 255 &&
      pf.blueMax === 255 &&
      pf.redShift === s.redShift &&
      pf.greenShift === s.greenShift &&
      pf.blueShift === s.blueShift;
  }

  /**
   * Converts `rect` of the framebuffer (`pixels`, laid out as `mode` says; the rectangle must
   * lie inside the mode) into `out`, row by row, `rect.width` values per row.
   */
  convert(pixels: Uint8Array, mode: FramebufferMode, rect: Rect, out: Uint32Array): void {
    const { x, y, width, height } = rect;
    const R = this.#r;
    const G = this.#g;
    const B = this.#b;
    const stride = mode.stride;
    let o = 0;
    switch (mode.format) {
      case 'XRGB8888': {
        const aligned = (pixels.byteOffset & 3) === 0 && (stride & 3) === 0;
        const words = aligned ? new Uint32Array(pixels.buffer, pixels.byteOffset, pixels.length >>> 2) : undefined;
        for (let row = 0; row < height; row++) {
          const base = (y + row) * stride + x * 4;
          if (words !== undefined) {
            let w = base >>> 2;
            if (this.#identity) {
              for (let i = 0; i < width; i++) out[o++] = words[w++]! & 0xffffff;
            } else {
              for (let i = 0; i < width; i++) {
                const v = words[w++]!;
                out[o++] = R[(v >>> 16) & 0xff]! | G[(v >>> 8) & 0xff]! | B[v & 0xff]!;
              }
            }
          } else {
            for (let i = 0, p = base; i < width; i++, p += 4) out[o++] = R[pixels[p + 2]!]! | G[pixels[p + 1]!]! | B[pixels[p]!]!;
          }
        }
        break;
      }
      case 'RGB888':
        for (let row = 0; row < height; row++) {
          for (let i = 0, p = (y + row) * stride + x * 3; i < width; i++, p += 3) out[o++] = R[pixels[p + 2]!]! | G[pixels[p + 1]!]! | B[pixels[p]!]!;
        }
        break;
      case 'RGB565':
        for (let row = 0; row < height; row++) {
          for (let i = 0, p = (y + row) * stride + x * 2; i < width; i++, p += 2) {
            const v = pixels[p]! | (pixels[p + 1]! << 8);
            out[o++] = R[EXPAND5[v >>> 11]!]! | G[EXPAND6[(v >>> 5) & 0x3f]!]! | B[EXPAND5[v & 0x1f]!]!;
          }
        }
        break;
      case 'XRGB1555':
        for (let row = 0; row < height; row++) {
          for (let i = 0, p = (y + row) * stride + x * 2; i < width; i++, p += 2) {
            const v = pixels[p]! | (pixels[p + 1]! << 8);
            out[o++] = R[EXPAND5[(v >>> 10) & 0x1f]!]! | G[EXPAND5[(v >>> 5) & 0x1f]!]! | B[EXPAND5[v & 0x1f]!]!;
          }
        }
        break;
      case 'RGB332':
        for (let row = 0; row < height; row++) {
          for (let i = 0, p = (y + row) * stride + x; i < width; i++, p++) {
            const v = pixels[p]!;
            out[o++] = R[EXPAND3[v >>> 5]!]! | G[EXPAND3[(v >>> 2) & 7]!]! | B[EXPAND2[v & 3]!]!;
          }
        }
        break;
      default:
        assertNever(mode.format);
    }
  }

  /** Writes `count` values from `values` as PIXELs (§7.4) into `out` at `pos`; returns the end. */
  writePixels(values: Uint32Array, count: number, out: Uint8Array, pos: number): number {
    const big = this.format.bigEndian;
    switch (this.bytesPerPixel) {
      case 1:
        for (let i = 0; i < count; i++) out[pos++] = values[i]!;
        return pos;
      case 2:
        for (let i = 0; i < count; i++) {
          const v = values[i]!;
          if (big) {
            out[pos++] = v >>> 8;
            out[pos++] = v;
          } else {
            out[pos++] = v;
            out[pos++] = v >>> 8;
          }
        }
        return pos;
      default:
        for (let i = 0; i < count; i++) {
          const v = values[i]!;
          if (big) {
            out[pos++] = v >>> 24;
            out[pos++] = v >>> 16;
            out[pos++] = v >>> 8;
            out[pos++] = v;
          } else {
            out[pos++] = v;
            out[pos++] = v >>> 8;
            out[pos++] = v >>> 16;
            out[pos++] = v >>> 24;
          }
        }
        return pos;
    }
  }
}

function assertNever(x: never): never {
  throw new Error(`unexpected display format ${String(x as DisplayFormat)}`);
}
