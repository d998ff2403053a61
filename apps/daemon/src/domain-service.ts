/**
 * Domain definitions: create, read, replace, patch, delete — the store, the host path checks,
 * ETags, and the events that tell about each change. Lifecycle actions go to the supervisor.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { ApiError } from './errors.js';
import type { EventBus } from './events.js';
import type { HostPathPolicy } from './host-paths.js';
import type { Action, Domain, DomainDefinition, DomainPatch, DomainSpec, DomainStateName, DomainStatus } from './schemas/domain.js';
import { StoreConflictError, type DomainRecord, type DomainRepository } from './store/domain-repository.js';
import type { ActionOptions, ActionResult, Supervisor } from './supervisor/supervisor.js';
import { isActive } from './supervisor/state-machine.js';

export function etagOf(rec: Pick<DomainRecord, 'uuid' | 'generation'>): string {
  return `"${rec.uuid}.${rec.generation}"`;
}

export function toDomain(rec: DomainRecord): Domain {
  return {
    name: rec.name,
    uuid: rec.uuid,
    ...rec.definition,
    state: rec.runtime.state,
    created_at: rec.created_at,
    updated_at: rec.updated_at,
    etag: etagOf(rec),
  };
}

/** RFC 9110 If-Match with strong comparison: `*`, or a list of entity tags. */
export function ifMatchHolds(header: string | undefined, etag: string): boolean {
  if (header === undefined) return true;
  const h = header.trim();
  if (h === '*') return true;
  return h.split(',').some((t) => t.trim() === etag);
}

/** A locally administered unicast MAC: 02:xx:xx:xx:xx:xx. */
export function randomMac(): string {
  return ['02', ...[...randomBytes(5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function definitionOf(spec: Omit<DomainSpec, 'name' | 'uuid'>, defaultBoot: () => DomainDefinition['boot'] | null): DomainDefinition {
  const { vcpus, memory_mib, disks, nics, serial, display, autostart, on_poweroff, on_reboot, on_crash } = spec;
  const boot = spec.boot ?? defaultBoot();
  if (!boot) throw new ApiError('NO_DEFAULT_GUEST', 'The definition has no "boot" and this host has no default guest: give boot.kernel (and initrd), or build the default guest with scripts/guest-assets.sh');
  return { vcpus, memory_mib, boot, disks, nics, serial, display, autostart, on_poweroff, on_reboot, on_crash };
}

/** Gives every NIC a MAC: the one it names, else the one at its index before, else a new one. */
function withMacs(nics: DomainDefinition['nics'], before: DomainDefinition['nics'] = []): DomainDefinition['nics'] {
  return nics.map((n, i) => (n.mac ? n : { ...n, mac: before[i]?.mac ?? randomMac() }));
}

export class DomainService {
  constructor(
    private readonly repo: DomainRepository,
    private readonly events: EventBus,
    private readonly supervisor: Supervisor,
    private readonly paths: HostPathPolicy,
    /** the boot of a definition that leaves it out (null: there is none on this host) */
    private readonly defaultBoot: () => DomainDefinition['boot'] | null = () => null,
  ) {}

  list(state?: DomainStateName): Domain[] {
    return this.repo.list(state).map(toDomain);
  }

  /** The domain named `name`, or undefined. */
  find(name: string): DomainRecord | undefined {
    return this.repo.getByName(name);
  }

  get(name: string): DomainRecord {
    const rec = this.repo.getByName(name);
    if (!rec) throw new ApiError('DOMAIN_NOT_FOUND', `Domain "${name}" does not exist`);
    return rec;
  }

  create(spec: DomainSpec): DomainRecord {
    const definition = definitionOf(spec, this.defaultBoot);
    definition.nics = withMacs(definition.nics);
    this.paths.checkDefinition(definition);
    const uuid = spec.uuid ?? randomUUID();
    let rec: DomainRecord;
    try {
      rec = this.repo.insert({ uuid, name: spec.name, definition, at: new Date().toISOString() });
    } catch (err) {
      if (err instanceof StoreConflictError) {
        const byName = this.repo.getByName(spec.name);
        throw new ApiError('DOMAIN_EXISTS', byName ? `Domain "${spec.name}" already exists` : `A domain with UUID ${uuid} already exists`);
      }
      throw err;
    }
    this.events.publish({ type: 'domain-created', domain: rec.name, uuid: rec.uuid, state: rec.runtime.state });
    return rec;
  }

  /** PUT: the whole definition; defaults fill what the body leaves out. */
  replace(name: string, spec: DomainSpec, ifMatch: string | undefined): DomainRecord {
    const rec = this.get(name);
    this.checkIdentity(rec, spec);
    return this.write(rec, definitionOf(spec, this.defaultBoot), ifMatch);
  }

  /** PATCH: the fields given replace the stored ones. */
  patch(name: string, patch: DomainPatch, ifMatch: string | undefined): DomainRecord {
    const rec = this.get(name);
    this.checkIdentity(rec, patch);
    const { name: _n, uuid: _u, ...fields } = patch;
    const merged: DomainDefinition = { ...rec.definition };
    for (const [k, v] of Object.entries(fields)) {
      if (v !== undefined) (merged as Record<string, unknown>)[k] = v;
    }
    return this.write(rec, merged, ifMatch);
  }

  private checkIdentity(rec: DomainRecord, body: { name?: string | undefined; uuid?: string | undefined }): void {
    if (body.name !== undefined && body.name !== rec.name) {
      throw new ApiError('IMMUTABLE_FIELD', `Cannot rename domain "${rec.name}" to "${body.name}": names are fixed (create a new domain instead)`);
    }
    if (body.uuid !== undefined && body.uuid !== rec.uuid) {
      throw new ApiError('IMMUTABLE_FIELD', `Cannot change the UUID of domain "${rec.name}"`);
    }
  }

  private write(rec: DomainRecord, definition: DomainDefinition, ifMatch: string | undefined): DomainRecord {
    if (!ifMatchHolds(ifMatch, etagOf(rec))) {
      throw new ApiError('PRECONDITION_FAILED', `Domain "${rec.name}" is at ${etagOf(rec)}, not ${ifMatch}`);
    }
    definition.nics = withMacs(definition.nics, rec.definition.nics);
    this.paths.checkDefinition(definition);
    const updated = this.repo.update(rec.uuid, rec.generation, definition, new Date().toISOString());
    if (!updated) {
      // someone else wrote between our read and our write
      if (!this.repo.getByUuid(rec.uuid)) throw new ApiError('DOMAIN_NOT_FOUND', `Domain "${rec.name}" was deleted`);
      throw new ApiError('PRECONDITION_FAILED', `Domain "${rec.name}" changed while this update was applied; read it again`);
    }
    this.events.publish({ type: 'domain-updated', domain: updated.name, uuid: updated.uuid, state: updated.runtime.state });
    return updated;
  }

  /** Deletes a domain; a domain with a worker only with `force` (it is stopped first). */
  async delete(name: string, force: boolean): Promise<void> {
    const rec = this.get(name);
    await this.supervisor.withLock(rec.uuid, async () => {
      const cur = this.repo.getByUuid(rec.uuid);
      if (!cur) throw new ApiError('DOMAIN_NOT_FOUND', `Domain "${name}" does not exist`);
      if (isActive(cur.runtime.state) && !force) {
        throw new ApiError('DOMAIN_RUNNING', `Cannot delete domain "${name}": it is ${cur.runtime.state}; stop it first or pass force=true`, { state: cur.runtime.state });
      }
      await this.supervisor.stopForDelete(cur.uuid);
      this.repo.delete(cur.uuid);
      this.events.publish({ type: 'domain-deleted', domain: cur.name, uuid: cur.uuid });
    });
  }

  status(name: string): Promise<DomainStatus> {
    return this.supervisor.status(this.get(name).uuid);
  }

  act(name: string, action: Action, opts: ActionOptions = {}): Promise<ActionResult> {
    return this.supervisor.act(this.get(name).uuid, action, opts);
  }
}
