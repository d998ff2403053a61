import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createCipheriv } from 'node:crypto';
import { xorshift32 } from '../testing/xorshift.js';
import { desEncryptBlock, vncAuthResponse } from './des.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s, 'hex'));

test('desEncryptBlock() matches the FIPS 46-3 worked example and known-answer vectors', () => {
  assert.equal(Buffer.from(desEncryptBlock(hex('133457799bbcdff1'), hex('0123456789abcdef'))).toString('hex'), '85e813540f0ab405');
  // NBS SP 500-20 variable-plaintext test, key 0101..01 (parity bits only).
  assert.equal(Buffer.from(desEncryptBlock(hex('0101010101010101'), hex('8000000000000000'))).toString('hex'), '95f8a5e5dd31d900');
  assert.equal(Buffer.from(desEncryptBlock(hex('0101010101010101'), hex('0000000000000001'))).toString('hex'), '166b40b44aba4bd6');
});

test('desEncryptBlock() agrees with OpenSSL\'s two-key triple DES with equal keys (= single DES)', () => {
  const rand = xorshift32(46);
  for (let i = 0; i < 50; i++) {
    const key = Uint8Array.from({ length: 8 }, () => rand() & 0xff);
    const block = Uint8Array.from({ length: 8 }, () => rand() & 0xff);
    const c = createCipheriv('des-ede-ecb', Buffer.concat([key, key]), null);
    c.setAutoPadding(false);
    assert.deepEqual(Buffer.from(desEncryptBlock(key, block)), c.update(block));
  }
});

test('vncAuthResponse() keys DES with the password bytes bit-reversed, zero-padded to 8, cut at 8', () => {
  const challenge = Uint8Array.from({ length: 16 }, (_, i) => i * 17);
  // 'a' = 0x61 → 0x86 reversed; the rest of the key is zero.
  const key = hex('8600000000000000');
  const expected = Buffer.concat([desEncryptBlock(key, challenge.subarray(0, 8)), desEncryptBlock(key, challenge.subarray(8))]);
  assert.deepEqual(Buffer.from(vncAuthResponse(Buffer.from('a'), challenge)), expected);
  assert.deepEqual(vncAuthResponse(Buffer.from('12345678'), challenge), vncAuthResponse(Buffer.from('12345678and more'), challenge));
  assert.throws(() => vncAuthResponse(Buffer.from('a'), new Uint8Array(8)), RangeError);
});
