/**
 * Wires the daemon's parts in a visible order — store, events, path policy, supervisor,
 * domain service — for server.ts and for tests. Listening is server.ts's business.
 */
import { DEFAULT_GUEST_DIR, defaultGuestBoot } from './default-guest.js';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { AppOptions } from './app.js';
import { DomainService } from './domain-service.js';
import { EventBus } from './events.js';
import { HostPathPolicy } from './host-paths.js';
import { hostInfo } from './host-info.js';
import type { JsonLogger } from './log.js';
import { openStore, type Store } from './store/mod.js';
import { Supervisor } from './supervisor/supervisor.js';
import { TicketStore } from './tickets.js';
import type { WorkerCommand } from './supervisor/worker-process.js';

/** The `vmm` command of the @vmctl/vmm workspace package: its package.json's `bin.vmm`. */
export function defaultVmmCli(): string {
  let dir = dirname(createRequire(import.meta.url).resolve('@vmctl/vmm'));
  while (!existsSync(join(dir, 'package.json'))) {
    if (dirname(dir) === dir) throw new Error('Cannot find the package.json of @vmctl/vmm');
    dir = dirname(dir);
  }
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { bin?: { vmm?: string } };
  return join(dir, pkg.bin?.vmm ?? 'dist/cli.js');
}

/** How to run the worker at `path`: TypeScript (a test's fake worker) goes through tsx. */
export function workerCommand(path: string): WorkerCommand {
  return { execPath: process.execPath, args: path.endsWith('.ts') ? ['--import', 'tsx', path] : [path] };
}

export interface DaemonOptions {
  stateDir: string;
  runtimeDir: string;
  log: JsonLogger;
  /** the `vmm` command (default: the workspace's libs/vmm/dist/cli.js) */
  vmm?: string;
  /** checked before every start; null skips the check (default /dev/kvm) */
  kvmDevice?: string | null;
  /** directories host paths must lie in; empty = anywhere */
  allowPaths?: string[];
  startTimeoutMs?: number;
  stopTimeoutMs?: number;
  /** iproute2's `ip`, which wires the taps of NICs (default `ip`; tests pass a stand-in) */
  ip?: string;
  /** where the default guest's vmlinuz and initramfs.cpio are (default DEFAULT_GUEST_DIR);
   *  null: no default guest, every definition names its boot */
  defaultGuestDir?: string | null;
}

export interface Daemon {
  store: Store;
  events: EventBus;
  supervisor: Supervisor;
  service: DomainService;
  /** console tickets, shared by every listener: one issued on the Unix socket opens a WebSocket on TCP */
  tickets: TicketStore;
  appOptions(token?: string): AppOptions;
  /** lets go of the workers (they keep running) and closes the store */
  close(): void;
}

export function createDaemon(opts: DaemonOptions): Daemon {
  mkdirSync(opts.stateDir, { recursive: true, mode: 0o700 });
  mkdirSync(join(opts.runtimeDir, 'vms'), { recursive: true, mode: 0o700 });
  const store = openStore(join(opts.stateDir, 'vmctl.db'));
  const events = new EventBus(store.events);
  const paths = new HostPathPolicy(opts.allowPaths ?? []);
  const kvmDevice = opts.kvmDevice === undefined ? '/dev/kvm' : opts.kvmDevice;
  const supervisor = new Supervisor({
    store,
    events,
    runtimeDir: opts.runtimeDir,
    stateDir: opts.stateDir,
    worker: workerCommand(opts.vmm ?? defaultVmmCli()),
    kvmDevice,
    paths,
    log: opts.log.child({ component: 'supervisor' }),
    ...(opts.startTimeoutMs !== undefined ? { startTimeoutMs: opts.startTimeoutMs } : {}),
    ...(opts.stopTimeoutMs !== undefined ? { stopTimeoutMs: opts.stopTimeoutMs } : {}),
    ...(opts.ip !== undefined ? { ip: opts.ip } : {}),
  });
  const guestDir = opts.defaultGuestDir === undefined ? DEFAULT_GUEST_DIR : opts.defaultGuestDir;
  const defaultBoot = () => (guestDir === null ? null : defaultGuestBoot(guestDir));
  const service = new DomainService(store.domains, events, supervisor, paths, defaultBoot);
  const host = () => hostInfo(kvmDevice ?? '/dev/kvm', defaultBoot());
  const tickets = new TicketStore();
  return {
    store,
    events,
    supervisor,
    service,
    tickets,
    appOptions: (token) => ({ service, supervisor, events, host, tickets, ...(token !== undefined ? { token } : {}) }),
    close: () => {
      supervisor.detachAll();
      store.close();
    },
  };
}
