import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { DEFAULT_SOCKET, resolveConnection } from './connection.js';

test('resolveConnection() defaults to the daemon\'s Unix socket', () => {
  assert.deepEqual(resolveConnection({}, {}), { kind: 'unix', socket: DEFAULT_SOCKET });
  assert.equal(DEFAULT_SOCKET, '/run/vmctl/vmctld.sock');
});

test('resolveConnection() takes --socket over VMCTL_SOCKET, and VMCTL_SOCKET over the default', () => {
  assert.deepEqual(resolveConnection({ socket: '/a.sock' }, { VMCTL_SOCKET: '/b.sock' }), { kind: 'unix', socket: '/a.sock' });
  assert.deepEqual(resolveConnection({}, { VMCTL_SOCKET: '/b.sock' }), { kind: 'unix', socket: '/b.sock' });
});

test('resolveConnection() takes --url with --token, else VMCTL_URL with VMCTL_TOKEN', () => {
  const a = resolveConnection({ url: 'http://10.0.0.1:7000', token: 't1' }, { VMCTL_TOKEN: 't2' });
  assert.equal(a.kind === 'tcp' && a.url.host, '10.0.0.1:7000');
  assert.equal(a.kind === 'tcp' && a.token, 't1');
  const b = resolveConnection({}, { VMCTL_URL: 'http://h:1', VMCTL_TOKEN: 't2' });
  assert.equal(b.kind === 'tcp' && b.token, 't2');
});

test('resolveConnection() reads --token-file and VMCTL_TOKEN_FILE, trimmed', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-conn-'));
  writeFileSync(join(dir, 'token'), 'secret-token\n');
  const a = resolveConnection({ url: 'http://h:1', tokenFile: join(dir, 'token') }, {});
  assert.equal(a.kind === 'tcp' && a.token, 'secret-token');
  const b = resolveConnection({ url: 'http://h:1' }, { VMCTL_TOKEN_FILE: join(dir, 'token') });
  assert.equal(b.kind === 'tcp' && b.token, 'secret-token');
  assert.throws(() => resolveConnection({ url: 'http://h:1', tokenFile: join(dir, 'missing') }, {}), UsageError);
});

test('resolveConnection() refuses a URL that is not http(s) and --url with --socket', () => {
  assert.throws(() => resolveConnection({ url: 'ftp://h' }, {}), UsageError);
  assert.throws(() => resolveConnection({ url: 'not a url' }, {}), UsageError);
  assert.throws(() => resolveConnection({ url: 'http://h:1', socket: '/s' }, {}), /exclude/);
});

test('resolveConnection() lets --socket win over VMCTL_URL from the environment', () => {
  assert.deepEqual(resolveConnection({ socket: '/s' }, { VMCTL_URL: 'http://h:1' }), { kind: 'unix', socket: '/s' });
});
