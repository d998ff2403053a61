/**
 * Opens the daemon's SQLite store and brings its schema up to date.
 *
 * Migrations are the files `migrations/NNN-name.sql` at the repository root, applied in
 * order, each in its own transaction, and recorded in `schema_version`. A store written by a
 * newer daemon (a version this one does not know) is refused rather than guessed at.
 */
import Database from 'better-sqlite3';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export type Db = Database.Database;

export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../../migrations/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATION_RE = /^(\d{3})-([a-z0-9-]+)\.sql$/;

export function readMigrations(dir = MIGRATIONS_DIR): Migration[] {
  const migrations = readdirSync(dir)
    .map((file) => ({ file, m: MIGRATION_RE.exec(file) }))
    .filter((x): x is { file: string; m: RegExpExecArray } => x.m !== null)
    .map(({ file, m }) => ({ version: Number(m[1]), name: m[2]!, sql: readFileSync(join(dir, file), 'utf8') }))
    .sort((a, b) => a.version - b.version);
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`Cannot migrate: expected migration ${String(i + 1).padStart(3, '0')}, found ${String(m.version).padStart(3, '0')}-${m.name}`);
  });
  return migrations;
}

/** Applies the migrations the store has not seen; returns the versions applied. */
export function migrate(db: Db, migrations: Migration[] = readMigrations()): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at TEXT NOT NULL
  )`);
  const current = (db.prepare('SELECT MAX(version) AS v FROM schema_version').get() as { v: number | null }).v ?? 0;
  const newest = migrations.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new Error(`Cannot open the store: its schema is version ${current}, this daemon knows up to ${newest} (was it written by a newer vmctld?)`);
  }
  const record = db.prepare('INSERT INTO schema_version (version, name, applied_at) VALUES (?, ?, ?)');
  const applied: number[] = [];
  for (const m of migrations.filter((m) => m.version > current)) {
    db.transaction(() => {
      db.exec(m.sql);
      record.run(m.version, m.name, new Date().toISOString());
    })();
    applied.push(m.version);
  }
  return applied;
}

/**
 * Opens (creating if needed) the store at `file` (`:memory:` for tests): WAL journal so
 * readers never wait for the writer, foreign keys on, a busy timeout instead of SQLITE_BUSY,
 * and `synchronous=FULL` because a definition is promised durable once the API has answered.
 */
export function openDatabase(file: string, migrations?: Migration[]): Db {
  const db = new Database(file);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db, migrations);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
