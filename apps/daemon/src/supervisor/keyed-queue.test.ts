import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyedQueue } from './keyed-queue.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('KeyedQueue runs tasks of one key one at a time, in arrival order', async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  const task = (name: string, ms: number) => async () => {
    log.push(`${name}+`);
    await sleep(ms);
    log.push(`${name}-`);
    return name;
  };
  const results = await Promise.all([q.run('a', task('1', 30)), q.run('a', task('2', 1)), q.run('a', task('3', 10))]);
  assert.deepEqual(results, ['1', '2', '3']);
  assert.deepEqual(log, ['1+', '1-', '2+', '2-', '3+', '3-']);
});

test('KeyedQueue runs tasks of different keys concurrently', async () => {
  const q = new KeyedQueue();
  const log: string[] = [];
  await Promise.all([
    q.run('a', async () => {
      log.push('a+');
      await sleep(20);
      log.push('a-');
    }),
    q.run('b', async () => {
      log.push('b+');
      await sleep(1);
      log.push('b-');
    }),
  ]);
  assert.deepEqual(log, ['a+', 'b+', 'b-', 'a-']);
});

test('KeyedQueue goes on after a task fails, and forgets idle keys', async () => {
  const q = new KeyedQueue();
  await assert.rejects(q.run('a', async () => Promise.reject(new Error('boom'))), /boom/);
  assert.equal(await q.run('a', async () => 'next'), 'next');
  await sleep(0);
  assert.equal(q.busy('a'), false);
});
