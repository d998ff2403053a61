/**
 * The RFB protocol, version 3.8 (RFC 6143), as pure functions: the handshake's and the client
 * messages' parsing, and the server messages' encoding. No sockets here (`server.ts` has them).
 *
 * Everything a client sends is hostile. A parser answers `incomplete` (wait for more bytes),
 * a message with its size, or an error that closes the connection: an unknown message type,
 * a pixel format we cannot serve, more encodings or cut text than any client needs.
 */
import { checkPixelFormat, encodePixelFormat, parsePixelFormat, PIXEL_FORMAT_SIZE, type PixelFormat } from './pixel-format.js';

export const RFB_VERSION_3_8 = 'RFB 003.008\n';
export const RFB_VERSION_LENGTH = 12;

// Security types (§7.1.2).
export const SECURITY_INVALID = 0;
export const SECURITY_NONE = 1;
export const SECURITY_VNC_AUTH = 2;
export const VNC_AUTH_CHALLENGE_LENGTH = 16;
export const SECURITY_RESULT_OK = 0;
export const SECURITY_RESULT_FAILED = 1;

// Client-to-server message types (§7.5).
export const CLIENT_SET_PIXEL_FORMAT = 0;
export const CLIENT_SET_ENCODINGS = 2;
export const CLIENT_FRAMEBUFFER_UPDATE_REQUEST = 3;
export const CLIENT_KEY_EVENT = 4;
export const CLIENT_POINTER_EVENT = 5;
export const CLIENT_CUT_TEXT = 6;
/** QEMU's client message; sub-type 0 is the extended key event (the community rfbproto). */
export const CLIENT_QEMU = 255;
export const QEMU_EXTENDED_KEY_EVENT = 0;

// Server-to-client message types (§7.6).
export const SERVER_FRAMEBUFFER_UPDATE = 0;
export const SERVER_SET_COLOUR_MAP_ENTRIES = 1;

// Encodings (§7.7, §7.8) and pseudo-encodings.
export const ENCODING_RAW = 0;
export const ENCODING_COPYRECT = 1;
export const ENCODING_ZRLE = 16;
export const ENCODING_DESKTOP_SIZE = -223;
/** QEMU extended key event: the client may send XT keycodes with its key events. */
export const ENCODING_QEMU_EXTENDED_KEY_EVENT = -258;
/** Compression level 0..9 are -256..-247 (the Tight family's pseudo-encodings, which ZRLE servers honour). */
export const ENCODING_COMPRESS_LEVEL_0 = -256;
export const ENCODING_COMPRESS_LEVEL_9 = -247;

/** More than any client asks for (noVNC lists about 20): a longer list closes the connection. */
export const MAX_ENCODINGS = 1024;
/** Cut text we are willing to skip; more is treated as an attack and closes the connection. */
export const MAX_CUT_TEXT = 1024 * 1024;

export type ProtocolMinor = 3 | 7 | 8;

/**
 * ProtocolVersion (§7.1.1): "RFB xxx.yyy\n". 3.3 and 3.7 are served as themselves, any later
 * 3.x as 3.8, and unknown minors below 7 as 3.3 (the RFC's advice). Undefined: not RFB 3.
 */
export function parseVersion(b: Uint8Array): ProtocolMinor | undefined {
  if (b.length !== RFB_VERSION_LENGTH) return undefined;
  const m = /^RFB (\d{3})\.(\d{3})\n$/.exec(Buffer.from(b).toString('latin1'));
  if (m === null || Number(m[1]) !== 3) return undefined;
  const minor = Number(m[2]);
  if (minor < 3) return undefined;
  return minor >= 8 ? 8 : minor === 7 ? 7 : 3;
}

export type ClientMessage =
  | { type: 'set-pixel-format'; format: PixelFormat }
  | { type: 'set-encodings'; encodings: number[] }
  | { type: 'update-request'; incremental: boolean; x: number; y: number; width: number; height: number }
  | { type: 'key'; down: boolean; keysym: number }
  | { type: 'pointer'; buttons: number; x: number; y: number }
  /** the text itself follows, `length` bytes, which the reader skips */
  | { type: 'cut-text'; length: number }
  | { type: 'qemu-key'; down: boolean; keysym: number; keycode: number };

export type ParseResult =
  | { kind: 'message'; message: ClientMessage; size: number }
  | { kind: 'incomplete' }
  | { kind: 'error'; reason: string };

const INCOMPLETE: ParseResult = { kind: 'incomplete' };

/** Parses the client message at the start of `b` (§7.5). */
export function parseClientMessage(b: Uint8Array): ParseResult {
  if (b.length < 1) return INCOMPLETE;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const type = b[0]!;
  switch (type) {
    case CLIENT_SET_PIXEL_FORMAT: {
      const size = 4 + PIXEL_FORMAT_SIZE;
      if (b.length < size) return INCOMPLETE;
      const format = parsePixelFormat(b.subarray(4, size));
      const bad = checkPixelFormat(format);
      if (bad !== undefined) return { kind: 'error', reason: `SetPixelFormat: cannot serve ${bad}` };
      return { kind: 'message', message: { type: 'set-pixel-format', format }, size };
    }
    case CLIENT_SET_ENCODINGS: {
      if (b.length < 4) return INCOMPLETE;
      const count = v.getUint16(2);
      if (count > MAX_ENCODINGS) return { kind: 'error', reason: `SetEncodings: ${count} encodings (at most ${MAX_ENCODINGS})` };
      const size = 4 + 4 * count;
      if (b.length < size) return INCOMPLETE;
      const encodings: number[] = [];
      for (let i = 0; i < count; i++) encodings.push(v.getInt32(4 + 4 * i));
      return { kind: 'message', message: { type: 'set-encodings', encodings }, size };
    }
    case CLIENT_FRAMEBUFFER_UPDATE_REQUEST: {
      if (b.length < 10) return INCOMPLETE;
      return {
        kind: 'message',
        message: { type: 'update-request', incremental: b[1] !== 0, x: v.getUint16(2), y: v.getUint16(4), width: v.getUint16(6), height: v.getUint16(8) },
        size: 10,
      };
    }
    case CLIENT_KEY_EVENT:
      if (b.length < 8) return INCOMPLETE;
      return { kind: 'message', message: { type: 'key', down: b[1] !== 0, keysym: v.getUint32(4) }, size: 8 };
    case CLIENT_POINTER_EVENT:
      if (b.length < 6) return INCOMPLETE;
      return { kind: 'message', message: { type: 'pointer', buttons: b[1]!, x: v.getUint16(2), y: v.getUint16(4) }, size: 6 };
    case CLIENT_CUT_TEXT: {
      if (b.length < 8) return INCOMPLETE;
      const length = v.getUint32(4);
      // A negative s32 here is the extended clipboard, which we never offered.
      if (length > MAX_CUT_TEXT) return { kind: 'error', reason: `ClientCutText: ${length} bytes (at most ${MAX_CUT_TEXT})` };
      return { kind: 'message', message: { type: 'cut-text', length }, size: 8 };
    }
    case CLIENT_QEMU: {
      if (b.length < 2) return INCOMPLETE;
      if (b[1] !== QEMU_EXTENDED_KEY_EVENT) return { kind: 'error', reason: `QEMU client message sub-type ${b[1]} is not supported` };
      if (b.length < 12) return INCOMPLETE;
      return { kind: 'message', message: { type: 'qemu-key', down: v.getUint16(2) !== 0, keysym: v.getUint32(4), keycode: v.getUint32(8) }, size: 12 };
    }
    default:
      return { kind: 'error', reason: `unknown client message type ${type}` };
  }
}

// --- server messages ---

/** The security types offered (3.7 and 3.8, §7.1.2). */
export function securityTypes(types: readonly number[]): Uint8Array {
  return Uint8Array.from([types.length, ...types]);
}

/** A reason string: u32 length and the text (§7.1.2, §7.1.3). */
export function reasonString(text: string): Uint8Array {
  const s = Buffer.from(text, 'utf8');
  const out = new Uint8Array(4 + s.length);
  new DataView(out.buffer).setUint32(0, s.length);
  out.set(s, 4);
  return out;
}

export function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0);
  return out;
}

/** SecurityResult (§7.1.3); 3.8 adds a reason to a failure. */
export function securityResult(ok: boolean, minor: ProtocolMinor, reason = 'authentication failed'): Uint8Array {
  if (ok) return u32(SECURITY_RESULT_OK);
  return minor >= 8 ? concat(u32(SECURITY_RESULT_FAILED), reasonString(reason)) : u32(SECURITY_RESULT_FAILED);
}

/** ServerInit (§7.3.2). */
export function serverInit(width: number, height: number, format: PixelFormat, name: string): Uint8Array {
  const n = Buffer.from(name, 'utf8');
  const out = new Uint8Array(4 + PIXEL_FORMAT_SIZE + 4 + n.length);
  const v = new DataView(out.buffer);
  v.setUint16(0, width);
  v.setUint16(2, height);
  out.set(encodePixelFormat(format), 4);
  v.setUint32(4 + PIXEL_FORMAT_SIZE, n.length);
  out.set(n, 8 + PIXEL_FORMAT_SIZE);
  return out;
}

/** FramebufferUpdate header (§7.6.1). */
export function framebufferUpdateHeader(rects: number): Uint8Array {
  const out = new Uint8Array(4);
  out[0] = SERVER_FRAMEBUFFER_UPDATE;
  new DataView(out.buffer).setUint16(2, rects);
  return out;
}

/** A rectangle header: x, y, width, height and the encoding (§7.6.1). */
export function rectHeader(x: number, y: number, width: number, height: number, encoding: number): Uint8Array {
  const out = new Uint8Array(12);
  const v = new DataView(out.buffer);
  v.setUint16(0, x);
  v.setUint16(2, y);
  v.setUint16(4, width);
  v.setUint16(6, height);
  v.setInt32(8, encoding);
  return out;
}

/** SetColourMapEntries (§7.6.2) for `rgb` (16-bit red, green, blue per entry) from entry 0. */
export function setColourMapEntries(rgb: Uint16Array): Uint8Array {
  const n = rgb.length / 3;
  const out = new Uint8Array(6 + rgb.length * 2);
  const v = new DataView(out.buffer);
  out[0] = SERVER_SET_COLOUR_MAP_ENTRIES;
  v.setUint16(2, 0);
  v.setUint16(4, n);
  for (let i = 0; i < rgb.length; i++) v.setUint16(6 + 2 * i, rgb[i]!);
  return out;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  return Buffer.concat(parts);
}
