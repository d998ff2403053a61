import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConsoleServer } from './console-server.js';

test('ConsoleServer keeps only the newest bytes for replay', () => {
  const c = new ConsoleServer('/nonexistent', 8);
  c.output(Uint8Array.from([1, 2, 3, 4, 5]));
  c.output(Uint8Array.from([6, 7, 8, 9, 10]));
  assert.deepEqual([...c.replay()], [3, 4, 5, 6, 7, 8, 9, 10]);
  c.output(Uint8Array.from({ length: 20 }, (_, i) => i));
  assert.deepEqual([...c.replay()], [12, 13, 14, 15, 16, 17, 18, 19]);
});

test('ConsoleServer replays output to a late client, then streams, and takes its input', async () => {
  const path = join(mkdtempSync(join(tmpdir(), 'vmm-console-')), 'console.sock');
  const server = new ConsoleServer(path);
  const typed: string[] = [];
  server.input = (b) => typed.push(Buffer.from(b).toString());
  await server.listen();
  server.output(Buffer.from('boot log\n'));
  const sock = connect(path);
  let got = '';
  sock.on('data', (b) => (got += b.toString()));
  await new Promise((r) => sock.once('connect', r));
  await new Promise((r) => setTimeout(r, 50));
  server.output(Buffer.from('live\n'));
  sock.write('ls\n');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(got, 'boot log\nlive\n');
  assert.deepEqual(typed, ['ls\n']);
  sock.destroy();
  await server.close();
});
