import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiError } from './errors.js';
import { HostPathPolicy } from './host-paths.js';
import { isCleanAbsolutePath } from './schemas/common.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'host-paths-'));
  mkdirSync(join(dir, 'images'));
  writeFileSync(join(dir, 'images', 'k'), 'k');
  writeFileSync(join(dir, 'outside'), 'o');
  symlinkSync(join(dir, 'images', 'k'), join(dir, 'images', 'inner-link'));
  symlinkSync(join(dir, 'outside'), join(dir, 'images', 'outer-link'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const code = (fn: () => void) => {
  try {
    fn();
    return 'ok';
  } catch (e) {
    return (e as ApiError).code;
  }
};

test('isCleanAbsolutePath() accepts only absolute, normalised paths', () => {
  for (const p of ['/a', '/a/b.elf', '/var/lib/vmctl/x-1_2.raw']) assert.ok(isCleanAbsolutePath(p), p);
  for (const p of ['', '/', 'a', './a', '/a/', '/a//b', '/a/./b', '/a/../b', '/..', '/a\0b', '/a\tb']) assert.ok(!isCleanAbsolutePath(p), JSON.stringify(p));
});

test('HostPathPolicy without roots accepts any existing regular file', () => {
  const p = new HostPathPolicy();
  assert.equal(code(() => p.checkFile('k', join(dir, 'outside'))), 'ok');
  assert.equal(code(() => p.checkFile('k', join(dir, 'missing'))), 'PATH_NOT_FOUND');
  assert.equal(code(() => p.checkFile('k', dir)), 'PATH_NOT_FOUND');
  assert.equal(code(() => p.checkFile('k', '/dev/null')), 'PATH_NOT_FOUND');
});

test('HostPathPolicy with roots refuses paths outside them, symlinks included', () => {
  const p = new HostPathPolicy([join(dir, 'images')]);
  assert.equal(code(() => p.checkFile('k', join(dir, 'images', 'k'))), 'ok');
  assert.equal(code(() => p.checkFile('k', join(dir, 'images', 'inner-link'))), 'ok');
  assert.equal(code(() => p.checkFile('k', join(dir, 'images', 'outer-link'))), 'PATH_NOT_ALLOWED');
  assert.equal(code(() => p.checkFile('k', join(dir, 'outside'))), 'PATH_NOT_ALLOWED');
  assert.equal(code(() => p.checkFile('k', `${join(dir, 'images')}-evil/k`)), 'PATH_NOT_ALLOWED', 'a sibling with the root as prefix is outside');
});
