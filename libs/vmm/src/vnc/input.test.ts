import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KEY_QUEUE_LIMIT, KEY_QUEUE_MAX_AGE_MS, KeyQueue, type GuestInput } from './input.js';

class Keyboard implements GuestInput {
  room = Infinity;
  got: number[][] = [];
  keyboard(set1: readonly number[]): boolean {
    if (this.room < set1.length) return false;
    this.room -= set1.length;
    this.got.push([...set1]);
    return true;
  }
  mouseRelative(): boolean {
    return true;
  }
}

test('KeyQueue delivers at once while the keyboard has room', () => {
  const q = new KeyQueue();
  const kb = new Keyboard();
  q.setInput(kb);
  q.push([0x1e]);
  q.push([0x9e]);
  assert.deepEqual(kb.got, [[0x1e], [0x9e]]);
  assert.equal(q.pending, 0);
  assert.equal(q.metrics.delivered, 2);
});

test('KeyQueue keeps events in order until the keyboard has room, then delivers them', () => {
  let now = 0;
  const q = new KeyQueue(() => now);
  const kb = new Keyboard();
  kb.room = 1;
  q.setInput(kb);
  q.push([0x1e]);
  q.push([0xe0, 0x48]);
  q.push([0x9e]);
  assert.equal(q.pending, 2);
  kb.room = 10;
  now = 100;
  q.flush();
  assert.deepEqual(kb.got, [[0x1e], [0xe0, 0x48], [0x9e]]);
  assert.equal(q.pending, 0);
  q.clear();
});

test('KeyQueue is bounded: past the limit, and past the age limit, events are dropped and counted', () => {
  let now = 0;
  const q = new KeyQueue(() => now);
  const kb = new Keyboard();
  kb.room = 0;
  q.setInput(kb);
  for (let i = 0; i < KEY_QUEUE_LIMIT + 10; i++) q.push([0x1e]);
  assert.equal(q.pending, KEY_QUEUE_LIMIT);
  assert.equal(q.metrics.dropped, 10);
  now = KEY_QUEUE_MAX_AGE_MS + 1;
  q.flush();
  assert.equal(q.pending, 0, 'a guest that never reads gets nothing after the age limit');
  assert.equal(q.metrics.dropped, KEY_QUEUE_LIMIT + 10);
});

test('KeyQueue without a machine drops events, and losing the machine drops what waited', () => {
  const q = new KeyQueue();
  q.push([0x1e]);
  assert.equal(q.metrics.dropped, 1);
  const kb = new Keyboard();
  kb.room = 0;
  q.setInput(kb);
  q.push([0x1e]);
  q.setInput(undefined);
  assert.equal(q.pending, 0);
  assert.equal(q.metrics.dropped, 2);
});
