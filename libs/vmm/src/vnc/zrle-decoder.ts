/**
 * For tests: a ZRLE tile decoder (RFC 6143 §7.7.6), the client's side of `ZrleTileEncoder`,
 * written separately from the encoder so that a round trip checks one against the spec rather
 * than against itself. Input is the tile data after zlib inflation.
 */
import type { CpixelLayout } from './zrle.js';

export class ZrleDecodeError extends Error {}

/** Decodes a width × height rectangle; returns its pixel values and how many bytes it used. */
export function decodeZrleTiles(data: Uint8Array, width: number, height: number, c: CpixelLayout): { values: Uint32Array; used: number } {
  const values = new Uint32Array(width * height);
  let pos = 0;
  const need = (n: number): void => {
    if (pos + n > data.length) throw new ZrleDecodeError(`ZRLE data ends at ${data.length}, needed ${pos + n}`);
  };
  const cpixel = (): number => {
    need(c.size);
    let v = 0;
    if (c.bigEndian) for (let i = 0; i < c.size; i++) v = (v << 8) | data[pos++]!;
    else for (let i = 0; i < c.size; i++) v |= data[pos++]! << (8 * i);
    return (v << c.shift) >>> 0;
  };
  const u8 = (): number => {
    need(1);
    return data[pos++]!;
  };
  const runLength = (): number => {
    let len = 1;
    for (;;) {
      const b = u8();
      len += b;
      if (b !== 255) return len;
    }
  };
  for (let ty = 0; ty < height; ty += 64) {
    const th = Math.min(64, height - ty);
    for (let tx = 0; tx < width; tx += 64) {
      const tw = Math.min(64, width - tx);
      const count = tw * th;
      // Pixels of the tile are written in raster order straight into the rectangle.
      let n = 0;
      let col = 0;
      let at = ty * width + tx;
      const put = (v: number): void => {
        if (n >= count) throw new ZrleDecodeError(`a run overflows its ${tw}x${th} tile`);
        values[at++] = v;
        n++;
        if (++col === tw) {
          col = 0;
          at += width - tw;
        }
      };
      const sub = u8();
      if (sub === 0) {
        while (n < count) put(cpixel());
      } else if (sub === 1) {
        const v = cpixel();
        while (n < count) put(v);
      } else if (sub >= 2 && sub <= 16) {
        const palette: number[] = [];
        for (let i = 0; i < sub; i++) palette.push(cpixel());
        const bits = sub <= 2 ? 1 : sub <= 4 ? 2 : 4;
        for (let y = 0; y < th; y++) {
          let byte = 0;
          let left = 0;
          for (let x = 0; x < tw; x++) {
            if (left === 0) {
              byte = u8();
              left = 8;
            }
            left -= bits;
            const index = (byte >> left) & ((1 << bits) - 1);
            if (index >= palette.length) throw new ZrleDecodeError(`packed index ${index} past a ${palette.length}-colour palette`);
            put(palette[index]!);
          }
        }
      } else if (sub === 128) {
        while (n < count) {
          const v = cpixel();
          const len = runLength();
          for (let i = 0; i < len; i++) put(v);
        }
      } else if (sub >= 130) {
        const palette: number[] = [];
        for (let i = 0; i < sub - 128; i++) palette.push(cpixel());
        while (n < count) {
          const b = u8();
          const index = b & 0x7f;
          if (index >= palette.length) throw new ZrleDecodeError(`RLE index ${index} past a ${palette.length}-colour palette`);
          const len = b & 0x80 ? runLength() : 1;
          for (let i = 0; i < len; i++) put(palette[index]!);
        }
      } else {
        throw new ZrleDecodeError(`sub-encoding ${sub} is not defined`);
      }
    }
  }
  return { values, used: pos };
}
