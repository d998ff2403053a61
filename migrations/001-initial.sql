-- vmctld's store, version 1: domain definitions, their runtime state, lifecycle events and
-- daemon bookkeeping. Applied once, in a transaction, by apps/daemon/src/store/database.ts.

-- A domain's definition. Scalars are columns; nested shapes (boot, disks, nics, serial) are
-- JSON validated by the API's zod schemas before they get here.
CREATE TABLE domains (
  uuid        TEXT PRIMARY KEY,
  name        TEXT NOT NULL UNIQUE,
  vcpus       INTEGER NOT NULL CHECK (vcpus >= 1),
  memory_mib  INTEGER NOT NULL CHECK (memory_mib >= 1),
  boot        TEXT NOT NULL,
  disks       TEXT NOT NULL DEFAULT '[]',
  nics        TEXT NOT NULL DEFAULT '[]',
  serial      TEXT NOT NULL DEFAULT '{"log":false}',
  autostart   INTEGER NOT NULL DEFAULT 0 CHECK (autostart IN (0, 1)),
  on_poweroff TEXT NOT NULL CHECK (on_poweroff IN ('destroy', 'restart')),
  on_reboot   TEXT NOT NULL CHECK (on_reboot IN ('restart', 'destroy')),
  on_crash    TEXT NOT NULL CHECK (on_crash IN ('preserve', 'destroy', 'restart')),
  -- bumped on every update; the ETag is derived from uuid and generation
  generation  INTEGER NOT NULL DEFAULT 1,
  created_at  TEXT NOT NULL,
  updated_at  TEXT NOT NULL
);

-- What a domain is doing. One row per domain, gone with it.
CREATE TABLE domain_state (
  uuid        TEXT PRIMARY KEY REFERENCES domains(uuid) ON DELETE CASCADE,
  state       TEXT NOT NULL CHECK (state IN ('shutoff', 'starting', 'running', 'paused', 'stopping', 'crashed')),
  reason      TEXT,
  since       TEXT NOT NULL,
  pid         INTEGER,
  started_at  TEXT
);

-- Lifecycle events. No foreign key: events outlive the domain they tell about.
CREATE TABLE events (
  id          INTEGER PRIMARY KEY AUTOINCREMENT,
  at          TEXT NOT NULL,
  type        TEXT NOT NULL,
  domain      TEXT NOT NULL,
  uuid        TEXT NOT NULL,
  state       TEXT,
  previous    TEXT,
  reason      TEXT,
  detail      TEXT
);
CREATE INDEX events_domain ON events (domain, id);

-- Daemon bookkeeping: the host boot id seen last (to tell a host reboot from a crash).
CREATE TABLE meta (
  key         TEXT PRIMARY KEY,
  value       TEXT NOT NULL
);
