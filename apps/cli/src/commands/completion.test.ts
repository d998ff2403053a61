import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createProgram } from '../program.js';
import { bashCompletion } from './completion.js';

const script = bashCompletion(createProgram());

/** What bash completes for the words typed so far (the last one is being completed). */
function complete(words: string[], stub = ''): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-completion-'));
  const file = join(dir, 'c.sh');
  // a `vmctl` function stands in for the binary when names are asked for
  writeFileSync(file, `${script}\nvmctl() { ${stub || 'printf "web\\nweb2\\ndb\\n"'}; }\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')})\nCOMP_CWORD=${words.length - 1}\n_vmctl\nprintf '%s\\n' "\${COMPREPLY[@]}"\n`);
  return execFileSync('bash', [file], { encoding: 'utf8' }).split('\n').filter(Boolean);
}

test('bashCompletion() is valid bash', () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-completion-'));
  writeFileSync(join(dir, 'c.sh'), script);
  execFileSync('bash', ['-n', join(dir, 'c.sh')]);
});

test('bashCompletion() completes subcommands', () => {
  assert.deepEqual(complete(['vmctl', 'sh']), ['show', 'shutdown']);
  assert.ok(complete(['vmctl', '']).includes('console'));
});

test('bashCompletion() completes a command\'s options and an option\'s choices', () => {
  assert.ok(complete(['vmctl', 'shutdown', 'web', '--']).includes('--timeout'));
  assert.deepEqual(complete(['vmctl', 'list', '-o', '']), ['table', 'json', 'name']);
  assert.deepEqual(complete(['vmctl', 'create', 'x', '--on-crash', 'r']), ['restart']);
});

test('bashCompletion() completes domain names from the daemon for commands that take one', () => {
  assert.deepEqual(complete(['vmctl', 'start', 'we']), ['web', 'web2']);
  assert.deepEqual(complete(['vmctl', '--socket', '/s', 'console', 'd']), ['db']);
  assert.deepEqual(complete(['vmctl', 'list', '']), []);
});

test('bashCompletion() asks for names through the same --socket as the command line', () => {
  assert.deepEqual(complete(['vmctl', '--socket', '/x.sock', 'start', ''], 'echo "$@" | tr " " "\\n" | grep -x /x.sock'), ['/x.sock']);
});
