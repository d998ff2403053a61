import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fuzzEveryRegister, inl, outb, outl, outw } from '../../testing/pio.js';
import { DebugExit, DEBUG_EXIT_WINDOW } from './debug-exit.js';

function setup() {
  const exits: number[] = [];
  const dev = new DebugExit({ onExit: (v) => exits.push(v) });
  return { dev, exits };
}

test('debug-exit calls onExit with the value of a write of any width', () => {
  const { dev, exits } = setup();

  outb(dev, 0, 0x31);
  outw(dev, 0, 0x1234);
  outl(dev, 0, 0xdeadbeef);

  assert.deepEqual(exits, [0x31, 0x1234, 0xdeadbeef]);
});

test('debug-exit takes the low four bytes of an 8-byte write', () => {
  const { dev, exits } = setup();

  dev.write(0, new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]));

  assert.deepEqual(exits, [0x04030201]);
});

test('debug-exit reads as zero', () => {
  const { dev, exits } = setup();

  const value = inl(dev, 0);

  assert.equal(value, 0);
  assert.deepEqual(exits, []);
});

test('debug-exit saves an empty state', () => {
  const { dev } = setup();

  const state = JSON.parse(JSON.stringify(dev.save()));

  assert.deepEqual(new DebugExit({ onExit: () => {}, state }).save(), {});
});

test('debug-exit never throws on any value, offset or width', () => {
  const { dev } = setup();

  assert.doesNotThrow(() => fuzzEveryRegister(dev, DEBUG_EXIT_WINDOW));
  assert.doesNotThrow(() => dev.write(0, new Uint8Array(0)));
});
