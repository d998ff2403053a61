/**
 * Domain definitions and their runtime state in SQLite. With the other repositories, the
 * only code that speaks SQL. Callers pass and get plain, already-validated objects.
 *
 * The daemon is the store's only writer, so reads come from a write-through copy in memory:
 * every write goes to SQLite first (committed before the caller answers anyone) and then
 * replaces the record in memory. Listing 1,000 domains from SQLite costs ~10 ms here, from
 * memory well under 1 (DESIGN.md §4). Records handed out are never mutated afterwards.
 */
import type { Db } from './database.js';
import type { DomainDefinition, DomainStateName } from '../schemas/domain.js';

export interface DomainRuntime {
  state: DomainStateName;
  reason: string | null;
  since: string;
  pid: number | null;
  started_at: string | null;
}

export interface DomainRecord {
  uuid: string;
  name: string;
  definition: DomainDefinition;
  /** bumped by every update; with the uuid it makes the ETag */
  generation: number;
  created_at: string;
  updated_at: string;
  runtime: DomainRuntime;
}

/** A write that would break a uniqueness rule (name or uuid already taken). */
export class StoreConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StoreConflictError';
  }
}

interface Row {
  uuid: string;
  name: string;
  vcpus: number;
  memory_mib: number;
  boot: string;
  disks: string;
  nics: string;
  serial: string;
  /** JSON, or NULL for no display (migration 002) */
  display: string | null;
  autostart: number;
  on_poweroff: DomainDefinition['on_poweroff'];
  on_reboot: DomainDefinition['on_reboot'];
  on_crash: DomainDefinition['on_crash'];
  generation: number;
  created_at: string;
  updated_at: string;
  state: DomainStateName;
  reason: string | null;
  since: string;
  pid: number | null;
  started_at: string | null;
}

const SELECT = `SELECT d.*, s.state, s.reason, s.since, s.pid, s.started_at
  FROM domains d JOIN domain_state s ON s.uuid = d.uuid`;

function fromRow(r: Row): DomainRecord {
  return {
    uuid: r.uuid,
    name: r.name,
    definition: {
      vcpus: r.vcpus,
      memory_mib: r.memory_mib,
      boot: JSON.parse(r.boot),
      disks: JSON.parse(r.disks),
      nics: JSON.parse(r.nics),
      serial: JSON.parse(r.serial),
      display: r.display === null ? null : JSON.parse(r.display),
      autostart: r.autostart === 1,
      on_poweroff: r.on_poweroff,
      on_reboot: r.on_reboot,
      on_crash: r.on_crash,
    },
    generation: r.generation,
    created_at: r.created_at,
    updated_at: r.updated_at,
    runtime: { state: r.state, reason: r.reason, since: r.since, pid: r.pid, started_at: r.started_at },
  };
}

function definitionParams(d: DomainDefinition) {
  return {
    vcpus: d.vcpus,
    memory_mib: d.memory_mib,
    boot: JSON.stringify(d.boot),
    disks: JSON.stringify(d.disks),
    nics: JSON.stringify(d.nics),
    serial: JSON.stringify(d.serial),
    display: d.display === null ? null : JSON.stringify(d.display),
    autostart: d.autostart ? 1 : 0,
    on_poweroff: d.on_poweroff,
    on_reboot: d.on_reboot,
    on_crash: d.on_crash,
  };
}

export class DomainRepository {
  private readonly stmts;
  /** uuid → record, loaded on first use */
  private cache?: Map<string, DomainRecord>;
  private readonly byName = new Map<string, string>();
  /** all records sorted by name; rebuilt after an insert or a delete */
  private sorted?: DomainRecord[];

  constructor(private readonly db: Db) {
    this.stmts = {
      list: db.prepare(`${SELECT} ORDER BY d.name`),
      byUuid: db.prepare(`${SELECT} WHERE d.uuid = ?`),
      insert: db.prepare(`INSERT INTO domains (uuid, name, vcpus, memory_mib, boot, disks, nics, serial, display, autostart, on_poweroff, on_reboot, on_crash, generation, created_at, updated_at)
        VALUES (@uuid, @name, @vcpus, @memory_mib, @boot, @disks, @nics, @serial, @display, @autostart, @on_poweroff, @on_reboot, @on_crash, 1, @created_at, @updated_at)`),
      insertState: db.prepare(`INSERT INTO domain_state (uuid, state, reason, since, pid, started_at) VALUES (@uuid, @state, @reason, @since, @pid, @started_at)`),
      update: db.prepare(`UPDATE domains SET vcpus = @vcpus, memory_mib = @memory_mib, boot = @boot, disks = @disks, nics = @nics, serial = @serial, display = @display,
        autostart = @autostart, on_poweroff = @on_poweroff, on_reboot = @on_reboot, on_crash = @on_crash,
        generation = generation + 1, updated_at = @updated_at
        WHERE uuid = @uuid AND generation = @generation`),
      delete: db.prepare('DELETE FROM domains WHERE uuid = ?'),
      setState: db.prepare(`UPDATE domain_state SET state = @state, reason = @reason, since = @since, pid = @pid, started_at = @started_at WHERE uuid = @uuid`),
    };
  }

  private records(): Map<string, DomainRecord> {
    if (!this.cache) {
      this.cache = new Map();
      for (const row of this.stmts.list.all() as Row[]) this.remember(fromRow(row));
    }
    return this.cache;
  }

  private remember(rec: DomainRecord): DomainRecord {
    const cache = this.cache!;
    const old = cache.get(rec.uuid);
    if (!old || old.name !== rec.name) this.sorted = undefined;
    cache.set(rec.uuid, rec);
    this.byName.set(rec.name, rec.uuid);
    return rec;
  }

  /** Re-reads one record from SQLite into memory. */
  private reload(uuid: string): DomainRecord | undefined {
    const row = this.stmts.byUuid.get(uuid) as Row | undefined;
    return row && this.remember(fromRow(row));
  }

  list(state?: DomainStateName): DomainRecord[] {
    const cache = this.records();
    this.sorted ??= [...cache.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    // the sorted array holds records as they were when it was built; map to the current ones
    const all = this.sorted.map((r) => cache.get(r.uuid)!);
    return state ? all.filter((r) => r.runtime.state === state) : all;
  }

  getByName(name: string): DomainRecord | undefined {
    this.records();
    const uuid = this.byName.get(name);
    return uuid === undefined ? undefined : this.cache!.get(uuid);
  }

  getByUuid(uuid: string): DomainRecord | undefined {
    return this.records().get(uuid);
  }

  /** Stores a new domain in state shutoff; throws StoreConflictError if the name or uuid is taken. */
  insert(d: { uuid: string; name: string; definition: DomainDefinition; at: string }): DomainRecord {
    const runtime: DomainRuntime = { state: 'shutoff', reason: 'defined', since: d.at, pid: null, started_at: null };
    try {
      this.db.transaction(() => {
        this.stmts.insert.run({ uuid: d.uuid, name: d.name, ...definitionParams(d.definition), created_at: d.at, updated_at: d.at });
        this.stmts.insertState.run({ uuid: d.uuid, ...runtime });
      })();
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
        throw new StoreConflictError((err as Error).message);
      }
      throw err;
    }
    this.records();
    return this.reload(d.uuid)!;
  }

  /**
   * Replaces the definition if the stored generation is still `generation`; returns the
   * updated record, or undefined if someone else updated (or deleted) it first.
   */
  update(uuid: string, generation: number, definition: DomainDefinition, at: string): DomainRecord | undefined {
    const r = this.stmts.update.run({ uuid, generation, ...definitionParams(definition), updated_at: at });
    this.records();
    return r.changes === 1 ? this.reload(uuid) : undefined;
  }

  delete(uuid: string): boolean {
    const deleted = this.stmts.delete.run(uuid).changes === 1;
    const rec = this.records().get(uuid);
    if (rec) {
      this.cache!.delete(uuid);
      this.byName.delete(rec.name);
      this.sorted = undefined;
    }
    return deleted;
  }

  setRuntime(uuid: string, runtime: DomainRuntime): void {
    const r = this.stmts.setState.run({ uuid, ...runtime });
    const rec = this.records().get(uuid);
    if (r.changes === 1 && rec) this.remember({ ...rec, runtime: { ...runtime } });
  }
}
