import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzEveryRegister, inb, inw, outb } from '../../testing/pio.js';
import { PostCode, POST_CODE_WINDOW } from './post-code.js';

test('post-code remembers the last byte written and reads it back', () => {
  const dev = new PostCode();

  outb(dev, 0, 0x12);
  outb(dev, 0, 0xab);

  assert.equal(inb(dev, 0), 0xab);
  assert.equal(dev.lastCode, 0xab);
});

test('post-code counts writes', () => {
  const dev = new PostCode();

  for (let i = 0; i < 1000; i++) outb(dev, 0, i & 0xff);

  assert.equal(dev.writes, 1000);
});

test('post-code floats the bytes of a wider read that fall past port 0x80', () => {
  const dev = new PostCode();
  outb(dev, 0, 0x42);

  const value = inw(dev, 0);

  assert.equal(value, 0xff42);
});

test('post-code restores the last code from saved state', () => {
  const dev = new PostCode();
  outb(dev, 0, 0x99);

  const restored = new PostCode({ state: JSON.parse(JSON.stringify(dev.save())) });

  assert.equal(inb(restored, 0), 0x99);
});

test('post-code counts accesses at offsets it does not decode', () => {
  const dev = new PostCode();

  outb(dev, 1, 0x10);
  const value = inb(dev, 1);

  assert.equal(value, 0xff);
  assert.equal(dev.lastCode, 0);
  assert.deepEqual(dev.metrics, { missedReads: 1, missedWrites: 1 });
});

test('post-code never throws on any value, offset or width', () => {
  const dev = new PostCode();

  assert.doesNotThrow(() => fuzzEveryRegister(dev, POST_CODE_WINDOW));
  assert.doesNotThrow(() => dev.write(0, new Uint8Array(0)));
});
