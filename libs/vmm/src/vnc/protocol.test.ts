import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodePixelFormat, SERVER_PIXEL_FORMAT } from './pixel-format.js';
import {
  MAX_CUT_TEXT,
  MAX_ENCODINGS,
  parseClientMessage,
  parseVersion,
  rectHeader,
  securityResult,
  serverInit,
  setColourMapEntries,
} from './protocol.js';

const b = (...bytes: number[]) => Uint8Array.from(bytes);

test('parseVersion() serves 3.3, 3.7 and 3.8 (and later 3.x as 3.8), and refuses anything else', () => {
  const v = (s: string) => parseVersion(Buffer.from(s, 'latin1'));
  assert.equal(v('RFB 003.008\n'), 8);
  assert.equal(v('RFB 003.889\n'), 8);
  assert.equal(v('RFB 003.007\n'), 7);
  assert.equal(v('RFB 003.003\n'), 3);
  assert.equal(v('RFB 003.005\n'), 3);
  assert.equal(v('RFB 004.000\n'), undefined);
  assert.equal(v('RFB 003.002\n'), undefined);
  assert.equal(v('RFB 003.008 '), undefined);
  assert.equal(v('GET / HTTP/1'), undefined);
});

test('parseClientMessage() reads each message type and says when more bytes are needed', () => {
  const msgs: [Uint8Array, unknown][] = [
    [b(0, 0, 0, 0, ...encodePixelFormat(SERVER_PIXEL_FORMAT)), { type: 'set-pixel-format', format: SERVER_PIXEL_FORMAT }],
    [b(2, 0, 0, 2, 0, 0, 0, 16, 0xff, 0xff, 0xff, 0x21), { type: 'set-encodings', encodings: [16, -223] }],
    [b(3, 1, 0, 1, 0, 2, 0x02, 0x80, 0x01, 0xe0), { type: 'update-request', incremental: true, x: 1, y: 2, width: 640, height: 480 }],
    [b(4, 1, 0, 0, 0, 0, 0xff, 0x0d), { type: 'key', down: true, keysym: 0xff0d }],
    [b(5, 5, 0, 10, 1, 0), { type: 'pointer', buttons: 5, x: 10, y: 256 }],
    [b(6, 0, 0, 0, 0, 0, 0, 3), { type: 'cut-text', length: 3 }],
    [b(255, 0, 0, 1, 0, 0, 0, 0x61, 0, 0, 0, 0x1e), { type: 'qemu-key', down: true, keysym: 0x61, keycode: 0x1e }],
  ];
  for (const [bytes, message] of msgs) {
    assert.deepEqual(parseClientMessage(bytes), { kind: 'message', message, size: bytes.length });
    for (let n = 0; n < bytes.length; n++) assert.deepEqual(parseClientMessage(bytes.subarray(0, n)), { kind: 'incomplete' }, `${JSON.stringify(message)} cut at ${n}`);
    const more = Uint8Array.from([...bytes, 9, 9, 9]);
    assert.equal((parseClientMessage(more) as { size: number }).size, bytes.length, 'trailing bytes are the next message');
  }
});

test('parseClientMessage() refuses unknown types, bad pixel formats, too many encodings and too much cut text', () => {
  const err = (bytes: Uint8Array, re: RegExp) => {
    const r = parseClientMessage(bytes);
    assert.equal(r.kind, 'error');
    assert.match((r as { reason: string }).reason, re);
  };
  err(b(1), /unknown client message type 1/);
  err(b(7), /unknown client message type 7/);
  err(b(0, 0, 0, 0, 24, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0), /bits-per-pixel 24/);
  err(b(2, 0, (MAX_ENCODINGS + 1) >> 8, (MAX_ENCODINGS + 1) & 0xff), /encodings/);
  const big = MAX_CUT_TEXT + 1;
  err(b(6, 0, 0, 0, big >>> 24, (big >> 16) & 0xff, (big >> 8) & 0xff, big & 0xff), /ClientCutText/);
  err(b(6, 0, 0, 0, 0xff, 0xff, 0xff, 0xff), /ClientCutText/);
  err(b(255, 1), /sub-type 1/);
});

test('server messages: ServerInit, SecurityResult by version, rectangle headers, colour maps', () => {
  const init = serverInit(640, 480, SERVER_PIXEL_FORMAT, 'vm');
  assert.deepEqual([...init.subarray(0, 4)], [2, 128, 1, 224]);
  assert.deepEqual([...init.subarray(20)], [0, 0, 0, 2, 0x76, 0x6d]);
  assert.deepEqual([...securityResult(true, 8)], [0, 0, 0, 0]);
  assert.deepEqual([...securityResult(false, 7)], [0, 0, 0, 1]);
  assert.deepEqual([...securityResult(false, 8, 'no')], [0, 0, 0, 1, 0, 0, 0, 2, 0x6e, 0x6f]);
  assert.deepEqual([...rectHeader(1, 2, 3, 4, -223)], [0, 1, 0, 2, 0, 3, 0, 4, 0xff, 0xff, 0xff, 0x21]);
  assert.deepEqual([...setColourMapEntries(Uint16Array.of(1, 2, 3))], [1, 0, 0, 0, 0, 1, 0, 1, 0, 2, 0, 3]);
});

test('parseClientMessage() never throws on random bytes, and never claims more than it was given', () => {
  let seed = 12345;
  const rand = () => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return seed >>> 0;
  };
  const kinds = new Set<string>();
  for (let i = 0; i < 20000; i++) {
    const len = rand() % 40;
    const bytes = Uint8Array.from({ length: len }, () => rand() & 0xff);
    // Bias the type byte towards real message types so their bodies get fuzzed too.
    if (len > 0 && rand() % 2) bytes[0] = [0, 2, 3, 4, 5, 6, 255][rand() % 7]!;
    const r = parseClientMessage(bytes);
    kinds.add(r.kind);
    if (r.kind === 'message') assert.ok(r.size > 0 && r.size <= len);
  }
  assert.deepEqual([...kinds].sort(), ['error', 'incomplete', 'message']);
});
