/** Lifecycle events in SQLite: appended as they happen, read back for `?since=` replays. */
import type { Db } from './database.js';
import type { Event, NewEvent } from '../schemas/event.js';

/** How many events the store keeps; older ones are pruned. */
export const EVENTS_KEPT = 10_000;

interface Row {
  id: number;
  at: string;
  type: Event['type'];
  domain: string;
  uuid: string;
  state: Event['state'] | null;
  previous: Event['previous'] | null;
  reason: string | null;
  detail: string | null;
}

function fromRow(r: Row): Event {
  const e: Event = { id: r.id, at: r.at, type: r.type, domain: r.domain, uuid: r.uuid };
  if (r.state) e.state = r.state;
  if (r.previous) e.previous = r.previous;
  if (r.reason !== null) e.reason = r.reason;
  if (r.detail !== null) e.detail = r.detail;
  return e;
}

export class EventRepository {
  private readonly stmts;
  private appended = 0;

  constructor(db: Db) {
    this.stmts = {
      insert: db.prepare(`INSERT INTO events (at, type, domain, uuid, state, previous, reason, detail)
        VALUES (@at, @type, @domain, @uuid, @state, @previous, @reason, @detail)`),
      since: db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      sinceForDomain: db.prepare('SELECT * FROM events WHERE domain = ? AND id > ? ORDER BY id LIMIT ?'),
      prune: db.prepare('DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?'),
    };
  }

  append(e: NewEvent, at: string): Event {
    const r = this.stmts.insert.run({
      at,
      type: e.type,
      domain: e.domain,
      uuid: e.uuid,
      state: e.state ?? null,
      previous: e.previous ?? null,
      reason: e.reason ?? null,
      detail: e.detail ?? null,
    });
    if (++this.appended % 1000 === 0) this.stmts.prune.run(EVENTS_KEPT);
    return { ...e, id: Number(r.lastInsertRowid), at };
  }

  /** Events with id > `since`, oldest first, optionally for one domain name. */
  since(since: number, domain?: string, limit = EVENTS_KEPT): Event[] {
    const rows = (domain ? this.stmts.sinceForDomain.all(domain, since, limit) : this.stmts.since.all(since, limit)) as Row[];
    return rows.map(fromRow);
  }
}
