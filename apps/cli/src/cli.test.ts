import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from './cli.js';
import { EXIT } from './exit-codes.js';

/** Runs vmctl in-process, with commander's own output silenced. */
async function vmctl(args: string[]): Promise<{ code: number; err: string }> {
  let err = '';
  const write = process.stderr.write;
  process.stderr.write = ((t: string) => ((err += t), true)) as typeof process.stderr.write;
  try {
    const code = await run(args, (t) => (err += t));
    return { code, err };
  } finally {
    process.stderr.write = write;
  }
}

test('run() ends an unknown command or option with the usage status', async () => {
  assert.equal((await vmctl(['frobnicate'])).code, EXIT.USAGE);
  assert.equal((await vmctl(['list', '--bogus'])).code, EXIT.USAGE);
  assert.equal((await vmctl(['list', '-o', 'xml'])).code, EXIT.USAGE);
  assert.equal((await vmctl(['start'])).code, EXIT.USAGE, 'a missing argument');
});

test('run() refuses a definition it can tell is wrong before connecting', async () => {
  const r = await vmctl(['--socket', '/nonexistent/vmctld.sock', 'create', 'web', '--kernel', '/k', '--memory', 'lots']);
  assert.equal(r.code, EXIT.USAGE);
  assert.match(r.err, /--memory "lots"/);
  assert.equal((await vmctl(['--socket', '/nonexistent/vmctld.sock', 'create', 'web', '--initrd', '/i'])).code, EXIT.USAGE, 'an initrd without a kernel');
  // no boot flags at all is a definition for the host's default guest: it goes to the daemon
  assert.equal((await vmctl(['--socket', '/nonexistent/vmctld.sock', 'create', 'web'])).code, EXIT.UNREACHABLE);
});

test('run() says where it looked when the daemon is not there (exit 5)', async () => {
  const sock = join(mkdtempSync(join(tmpdir(), 'vmctl-cli-')), 'vmctld.sock');
  const r = await vmctl(['--socket', sock, 'list']);
  assert.equal(r.code, EXIT.UNREACHABLE);
  assert.match(r.err, /^vmctl: cannot connect to vmctld: no socket at .*vmctld\.sock/);
});
