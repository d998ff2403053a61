import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { migrate, openDatabase, readMigrations } from './database.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'vmctl-db-'));
}

test('openDatabase() applies every migration once and records it in schema_version', () => {
  const dir = tempDir();
  try {
    const file = join(dir, 'vmctl.db');
    const db = openDatabase(file);
    const versions = db.prepare('SELECT version FROM schema_version ORDER BY version').all() as { version: number }[];
    assert.deepEqual(versions.map((v) => v.version), readMigrations().map((m) => m.version));
    db.close();
    const again = openDatabase(file);
    assert.deepEqual(migrate(again), [], 'nothing to apply the second time');
    again.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('openDatabase() turns on WAL, foreign keys and a busy timeout', () => {
  const dir = tempDir();
  try {
    const db = openDatabase(join(dir, 'vmctl.db'));
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('migrate() refuses a store written by a newer daemon', () => {
  const db = openDatabase(':memory:');
  db.prepare("INSERT INTO schema_version (version, name, applied_at) VALUES (999, 'future', 'x')").run();
  assert.throws(() => migrate(db), /schema is version 999/);
  db.close();
});

test('a failing migration is rolled back whole and not recorded', () => {
  const dir = tempDir();
  try {
    mkdirSync(join(dir, 'm'));
    writeFileSync(join(dir, 'm', '001-good.sql'), 'CREATE TABLE a (x INTEGER);');
    writeFileSync(join(dir, 'm', '002-bad.sql'), 'CREATE TABLE b (x INTEGER); THIS IS NOT SQL;');
    assert.throws(() => openDatabase(join(dir, 'x.db'), readMigrations(join(dir, 'm'))));
    const db = openDatabase(join(dir, 'x.db'), readMigrations(join(dir, 'm')).slice(0, 1));
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as { name: string }[];
    assert.deepEqual(tables.map((t) => t.name), ['a', 'schema_version']);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readMigrations() refuses a gap in the numbering', () => {
  const dir = tempDir();
  try {
    writeFileSync(join(dir, '001-a.sql'), '');
    writeFileSync(join(dir, '003-c.sql'), '');
    assert.throws(() => readMigrations(dir), /expected migration 002/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
