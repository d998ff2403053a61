/**
 * Test scaffolding: a daemon on temporary state and runtime directories, its app built for
 * `inject()`, and a teardown that ends every worker the test left behind (workers are
 * detached on purpose, so nothing else would).
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.js';
import { createDaemon, type Daemon, type DaemonOptions } from '../daemon.js';
import { silentLogger } from '../log.js';
import type { Event } from '../schemas/event.js';
import { isAlive, readPid } from '../supervisor/worker-process.js';

export const FAKE_WORKER = fileURLToPath(new URL('./fake-worker.ts', import.meta.url));

export interface Harness {
  dir: string;
  stateDir: string;
  runtimeDir: string;
  /** a file to use as a kernel (the fake worker only checks that it exists) */
  kernel: string;
  daemon: Daemon;
  app: FastifyInstance;
  /** every event published since the harness started */
  events: Event[];
  /** a second daemon on the same directories, as after a restart */
  restart(): Promise<void>;
  close(): Promise<void>;
}

export async function harness(opts: Partial<DaemonOptions> & { dir?: string } = {}): Promise<Harness> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'vmctld-test-'));
  const stateDir = join(dir, 'state');
  const runtimeDir = join(dir, 'run');
  const kernel = join(dir, 'kernel.elf');
  writeFileSync(kernel, 'not really a kernel');
  const make = () =>
    createDaemon({ stateDir, runtimeDir, log: silentLogger(), vmm: FAKE_WORKER, kvmDevice: null, stopTimeoutMs: 3000, ip: 'true', defaultGuestDir: null, ...opts });
  const h: Harness = {
    dir,
    stateDir,
    runtimeDir,
    kernel,
    daemon: make(),
    app: undefined as unknown as FastifyInstance,
    events: [],
    async restart() {
      await h.app.close();
      h.daemon.close();
      h.daemon = make();
      h.daemon.events.subscribe((e) => h.events.push(e));
      await h.daemon.supervisor.recover();
      h.app = await buildApp(h.daemon.appOptions());
    },
    async close() {
      await h.app.close();
      h.daemon.close();
      // twice: a start (a restart policy) in flight may spawn a worker after the first sweep
      killWorkers(runtimeDir);
      await new Promise((r) => setTimeout(r, 300));
      killWorkers(runtimeDir);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  h.daemon.events.subscribe((e) => h.events.push(e));
  h.app = await buildApp(h.daemon.appOptions());
  return h;
}

/** SIGKILLs every worker with a pid file under `runtimeDir`. */
export function killWorkers(runtimeDir: string): void {
  let dirs: string[] = [];
  try {
    dirs = readdirSync(join(runtimeDir, 'vms'));
  } catch {
    return;
  }
  for (const d of dirs) {
    const pid = readPid(join(runtimeDir, 'vms', d, 'worker.pid'));
    if (pid && isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}

/** Polls `pred` every 10 ms until it holds; throws with `what` after `ms`. */
export async function until<T>(what: string, pred: () => T | undefined | false | Promise<T | undefined | false>, ms = 5000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
