/** The store: one SQLite database and the repositories that are its only users. */
import { openDatabase, type Db } from './database.js';
import { DomainRepository } from './domain-repository.js';
import { EventRepository } from './event-repository.js';
import { MetaRepository } from './meta-repository.js';

export interface Store {
  db: Db;
  domains: DomainRepository;
  events: EventRepository;
  meta: MetaRepository;
  close(): void;
}

export function openStore(file: string): Store {
  const db = openDatabase(file);
  return {
    db,
    domains: new DomainRepository(db),
    events: new EventRepository(db),
    meta: new MetaRepository(db),
    close: () => db.close(),
  };
}
