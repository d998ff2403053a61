/** Daemon bookkeeping in SQLite: a small key → value table. */
import type { Db } from './database.js';

export class MetaRepository {
  private readonly stmts;

  constructor(db: Db) {
    this.stmts = {
      get: db.prepare('SELECT value FROM meta WHERE key = ?'),
      set: db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  get(key: string): string | undefined {
    return (this.stmts.get.get(key) as { value: string } | undefined)?.value;
  }

  set(key: string, value: string): void {
    this.stmts.set.run(key, value);
  }
}
