import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../errors.js';
import { parseListen } from './vnc.js';

test('parseListen() reads PORT, HOST:PORT and [IPv6]:PORT, defaulting to 127.0.0.1', () => {
  assert.deepEqual(parseListen('5901'), { host: '127.0.0.1', port: 5901 });
  assert.deepEqual(parseListen('127.0.0.2:0'), { host: '127.0.0.2', port: 0 });
  assert.deepEqual(parseListen('[::1]:5900'), { host: '::1', port: 5900 });
  assert.deepEqual(parseListen('localhost:5902'), { host: 'localhost', port: 5902 });
});

test('parseListen() refuses a non-loopback address: the forwarded display asks no password', () => {
  for (const bad of ['0.0.0.0:5900', '192.0.2.1:5900', '[::]:5900', 'example.com:5900']) {
    assert.throws(() => parseListen(bad), (e: unknown) => e instanceof UsageError && /loopback/.test((e as Error).message), bad);
  }
});

test('parseListen() refuses what is not an address', () => {
  for (const bad of ['', 'abc', '70000', ':5900', '127.0.0.1:', '1:2:3']) assert.throws(() => parseListen(bad), UsageError, bad);
});
