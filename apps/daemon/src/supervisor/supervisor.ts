/**
 * The supervisor: one vmm worker per running domain, started, watched, and taken back after
 * a daemon restart. It applies the lifecycle state machine (state-machine.ts), stores every
 * state change and publishes it as an event.
 *
 * Actions on one domain run one at a time (a per-domain queue); the end of a worker is
 * handled outside the queue, because an action may be waiting for exactly that end.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import type { CONTROL_PROTOCOL_VERSION, ControlEvent, EXIT_VMM_ERROR as VMM_EXIT_VMM_ERROR, GuestStopReason, WorkerDescription, WorkerStats as ControlWorkerStats } from '@vmctl/vmm';
import { ApiError } from '../errors.js';
import type { EventBus } from '../events.js';
import type { HostPathPolicy } from '../host-paths.js';
import { WorkerStats, type Action, type DomainStateName, type DomainStatus } from '../schemas/domain.js';
import type { DomainRecord } from '../store/domain-repository.js';
import type { Store } from '../store/mod.js';
import { ConsoleLog } from './console-log.js';
import { ControlClient, ControlRequestError, type ControlRequestBody } from './control-client.js';
import { KeyedQueue } from './keyed-queue.js';
import { linkTaps } from './tap-links.js';
import { canTransition, checkAction, isActive } from './state-machine.js';
import {
  isAlive,
  isWorkerOf,
  logTail,
  prepareWorkerDir,
  readPid,
  removeWorkerDir,
  scanWorkers,
  spawnWorker,
  unsupported,
  workerArgs,
  workerPaths,
  type WorkerCommand,
  type WorkerPaths,
} from './worker-process.js';

/** The protocol version this daemon speaks; a bump in protocol.ts fails this line's type check. */
export const PROTOCOL_VERSION: typeof CONTROL_PROTOCOL_VERSION = 1;

export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

export interface SupervisorOptions {
  store: Store;
  events: EventBus;
  runtimeDir: string;
  stateDir: string;
  worker: WorkerCommand;
  /** checked before every start; null skips the check (tests with a fake worker) */
  kvmDevice: string | null;
  paths: HostPathPolicy;
  log: Logger;
  /** spawn → running, at most (default 15 s) */
  startTimeoutMs?: number;
  /** `stop` request → worker gone, before SIGKILL (default 10 s) */
  stopTimeoutMs?: number;
  /** iproute2's `ip`, which wires NIC taps (default `ip`) */
  ip?: string;
}

export interface ActionOptions {
  /** shutdown: seconds before forcing (default 60) */
  timeout?: number;
  /** shutdown: answer only once the domain is off */
  wait?: boolean;
}

export interface ActionResult {
  status: DomainStatus;
  /** true when the action goes on after the answer (a shutdown in progress) */
  pending: boolean;
}

interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
  error?: Error;
}

/** A worker this daemon is attached to. */
interface Worker {
  uuid: string;
  pid: number;
  paths: WorkerPaths;
  client: ControlClient;
  consoleSocket: string;
  /** set when this daemon spawned the worker: its exit status is known */
  child?: ChildProcess;
  exit?: Promise<ExitInfo>;
  logOffset: number;
  /** true once hello/subscribe/describe succeeded */
  attached: boolean;
  /** the daemon closed the connection on purpose (daemon shutdown): not an end */
  detached: boolean;
  ending: boolean;
  /** why the daemon expects this worker to end, so that its end is not taken for a crash */
  intent?: { kind: 'stop' | 'shutdown'; reason: string };
  guestStopped?: { reason: GuestStopReason; exitCode: number; detail?: string };
  shutdownTimer?: NodeJS.Timeout;
  consoleLog?: ConsoleLog;
  /** resolves once the end was handled and the store updated */
  ended: Promise<void>;
  resolveEnded: () => void;
}

/** What settling a worker's end needs to know. */
type EndContext = Pick<Worker, 'uuid' | 'paths' | 'logOffset' | 'intent' | 'guestStopped'>;

/** `vmm`'s status when the VMM itself failed (bad flags, unreadable files, KVM refused). */
const EXIT_VMM_ERROR: typeof VMM_EXIT_VMM_ERROR = 125;

export const DEFAULT_SHUTDOWN_TIMEOUT_S = 60;
/** on_crash/on_poweroff = restart: at most this many restarts per window, then crashed. */
const RESTART_LIMIT = 5;
const RESTART_WINDOW_MS = 60_000;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** True if `p` settles within `ms`. */
async function settles(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)));
  try {
    return await Promise.race([p.then(() => true, () => true), t]);
  } finally {
    clearTimeout(timer);
  }
}

/** `p`'s value if it comes within `ms`, else undefined (for promises of a defined value). */
async function within<T extends object>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p, t]);
  } finally {
    clearTimeout(timer);
  }
}

function toStats(s: ControlWorkerStats): WorkerStats {
  return {
    uptime_ms: s.uptimeMs,
    rss_bytes: s.rssBytes,
    reboots: s.reboots,
    vcpus: s.vcpus.map((v) => ({ exits: v.exits, missed_pio: v.missedPio, missed_mmio: v.missedMmio })),
  };
}

export class Supervisor {
  readonly locks = new KeyedQueue();
  private readonly workers = new Map<string, Worker>();
  private readonly changes = new EventEmitter();
  private readonly restarts = new Map<string, number[]>();
  private readonly startTimeoutMs: number;
  private readonly stopTimeoutMs: number;
  private closed = false;

  constructor(private readonly opts: SupervisorOptions) {
    this.startTimeoutMs = opts.startTimeoutMs ?? 15_000;
    this.stopTimeoutMs = opts.stopTimeoutMs ?? 10_000;
    this.changes.setMaxListeners(0);
  }

  private get repo() {
    return this.opts.store.domains;
  }

  private paths(uuid: string): WorkerPaths {
    return workerPaths(this.opts.runtimeDir, this.opts.stateDir, uuid);
  }

  // ─── state ──────────────────────────────────────────────────────────────────────────

  /** Stores a state change and, if the state changed, publishes it. */
  private setState(uuid: string, to: DomainStateName, reason: string, extra: { pid?: number; started_at?: string; detail?: string } = {}): void {
    const rec = this.repo.getByUuid(uuid);
    if (!rec) return; // deleted meanwhile
    const from = rec.runtime.state;
    if (from !== to && !canTransition(from, to)) {
      this.opts.log.warn({ domain: rec.name, from, to, reason }, 'unexpected state change; applying what the worker reports');
    }
    const active = isActive(to);
    const now = new Date().toISOString();
    this.repo.setRuntime(uuid, {
      state: to,
      reason,
      since: from === to ? rec.runtime.since : now,
      pid: active ? (extra.pid ?? rec.runtime.pid) : null,
      started_at: active ? (extra.started_at ?? rec.runtime.started_at ?? now) : null,
    });
    if (from !== to) {
      this.opts.events.publish({ type: 'state-changed', domain: rec.name, uuid, state: to, previous: from, reason, ...(extra.detail ? { detail: extra.detail } : {}) });
      this.changes.emit('change', uuid);
    }
  }

  /** Resolves with the state once `pred` holds (or the domain is gone), or undefined after `ms`. */
  private waitForState(uuid: string, pred: (s: DomainStateName) => boolean, ms: number): Promise<DomainStateName | 'gone' | undefined> {
    return new Promise((resolve) => {
      const check = () => {
        const s = this.repo.getByUuid(uuid)?.runtime.state;
        if (s === undefined || pred(s)) {
          done();
          resolve(s ?? 'gone');
        }
      };
      const onChange = (u: string) => u === uuid && check();
      const timer = setTimeout(() => {
        done();
        resolve(undefined);
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.changes.off('change', onChange);
      };
      this.changes.on('change', onChange);
      check();
    });
  }

  private record(uuid: string): DomainRecord {
    const rec = this.repo.getByUuid(uuid);
    if (!rec) throw new ApiError('DOMAIN_NOT_FOUND', `Domain ${uuid} no longer exists`);
    return rec;
  }

  // ─── public API ─────────────────────────────────────────────────────────────────────

  /** Runs `task` in the domain's queue: after every earlier action on it has finished. */
  withLock<T>(uuid: string, task: () => Promise<T>): Promise<T> {
    return this.locks.run(uuid, task);
  }

  async act(uuid: string, action: Action, opts: ActionOptions = {}): Promise<ActionResult> {
    // The lock covers the action and the state it leaves (the answer), not the wait for a
    // shutdown to finish, so that a stop can still come in. (`done` is wrapped: an async
    // function would adopt a returned promise and wait for it.)
    const { status, done } = await this.withLock(uuid, async (): Promise<{ status: DomainStatus; done?: Promise<void> }> => {
      let done: Promise<void> | undefined;
      switch (action) {
        case 'start':
          await this.startLocked(uuid, 'user');
          break;
        case 'stop':
          await this.stopLocked(uuid, 'user');
          break;
        case 'shutdown':
          ({ done } = await this.shutdownLocked(uuid, opts.timeout ?? DEFAULT_SHUTDOWN_TIMEOUT_S));
          break;
        case 'pause':
          await this.simple(uuid, 'pause', { type: 'pause' }, 'paused');
          break;
        case 'resume':
          await this.simple(uuid, 'resume', { type: 'resume' }, 'running');
          break;
        case 'reboot':
          await this.simple(uuid, 'reboot', { type: 'ctrl-alt-del' });
          break;
        case 'reset':
          await this.simple(uuid, 'reset', { type: 'reset' });
          break;
      }
      return { status: await this.status(uuid), ...(done ? { done } : {}) };
    });
    if (done && opts.wait) {
      await done;
      return { status: await this.status(uuid), pending: false };
    }
    return { status, pending: action === 'shutdown' && status.state === 'stopping' };
  }

  async status(uuid: string): Promise<DomainStatus> {
    const rec = this.record(uuid);
    const w = this.workers.get(uuid);
    let stats: WorkerStats | null = null;
    if (w?.attached && (rec.runtime.state === 'running' || rec.runtime.state === 'paused')) {
      try {
        // the worker's word is checked like any input: a shape this daemon does not know is no stats
        const parsed = WorkerStats.safeParse(toStats(await w.client.request<ControlWorkerStats>({ type: 'stats' }, 2000)));
        stats = parsed.success ? parsed.data : null;
      } catch {
        stats = null;
      }
    }
    const fresh = this.repo.getByUuid(uuid) ?? rec;
    return {
      name: fresh.name,
      uuid: fresh.uuid,
      state: fresh.runtime.state,
      reason: fresh.runtime.reason,
      since: fresh.runtime.since,
      pid: fresh.runtime.pid,
      started_at: fresh.runtime.started_at,
      stats,
    };
  }

  /** The console socket of the domain's live worker. */
  consoleSocket(uuid: string): string | undefined {
    const w = this.workers.get(uuid);
    return w?.attached && !w.ending ? w.consoleSocket : undefined;
  }

  /**
   * The VNC socket of the domain's live worker. A worker has one when its domain had a
   * display when it started (a display added later comes with the next start).
   */
  vncSocket(uuid: string): string | undefined {
    const w = this.workers.get(uuid);
    return w?.attached && !w.ending && existsSync(w.paths.vnc) ? w.paths.vnc : undefined;
  }

  hasWorker(uuid: string): boolean {
    return this.workers.has(uuid);
  }

  /** For delete: stops the domain if it has a worker. Call inside withLock. */
  async stopForDelete(uuid: string): Promise<void> {
    const rec = this.record(uuid);
    if (isActive(rec.runtime.state) || this.workers.has(uuid)) await this.stopLocked(uuid, 'deleted');
    removeWorkerDir(this.paths(uuid));
  }

  // ─── start ──────────────────────────────────────────────────────────────────────────

  private async startLocked(uuid: string, reason: string): Promise<void> {
    const rec = this.record(uuid);
    checkAction(rec.name, rec.runtime.state, 'start');
    if (this.closed) throw new ApiError('WORKER_START_FAILED', 'The daemon is shutting down');
    if (this.opts.kvmDevice && !existsSync(this.opts.kvmDevice)) {
      throw new ApiError('KVM_UNAVAILABLE', `Cannot start domain "${rec.name}": ${this.opts.kvmDevice} does not exist on this host`);
    }
    this.opts.paths.checkDefinition(rec.definition);
    const why = unsupported(rec.definition);
    if (why) throw new ApiError('UNSUPPORTED_CONFIG', `Cannot start domain "${rec.name}": ${why}`);
    this.setState(uuid, 'starting', reason);
    let launched: Worker | { early: EndContext; exit: ExitInfo };
    try {
      launched = await this.launch(rec);
    } catch (err) {
      this.setState(uuid, 'shutoff', 'start-failed', { detail: (err as Error).message });
      throw err;
    }
    if ('early' in launched) {
      // the guest ran and ended before the daemon got hold of its worker (a guest that
      // powers off at once): a start all the same, and its end settled as usual
      this.setState(uuid, 'running', reason);
      this.settleEnd(launched.early, launched.exit);
      return;
    }
    const w = launched;
    const state = await this.waitForState(uuid, (s) => s !== 'starting', this.startTimeoutMs);
    if (state === undefined) {
      await this.forceStop(w, 'start-timeout');
      throw new ApiError('WORKER_START_FAILED', `Domain "${rec.name}": the worker did not report its guest running within ${this.startTimeoutMs} ms. ${logTail(w.paths.log, w.logOffset)}`.trim());
    }
  }

  /**
   * Spawns the worker and attaches to it. Throws WORKER_START_FAILED (the worker killed) if
   * the worker fails; returns `early` if it ran its guest to the end before we could attach.
   */
  private async launch(rec: DomainRecord): Promise<Worker | { early: EndContext; exit: ExitInfo }> {
    const paths = this.paths(rec.uuid);
    prepareWorkerDir(paths);
    const { child, logOffset } = spawnWorker(this.opts.worker, workerArgs(rec.uuid, rec.definition, paths), paths);
    const exit = new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => resolve({ code, signal }));
      child.once('error', (error) => resolve({ code: null, signal: null, error }));
    });
    const failed = (why: string) => {
      if (child.pid && isAlive(child.pid)) process.kill(child.pid, 'SIGKILL');
      const tail = logTail(paths.log, logOffset);
      return new ApiError('WORKER_START_FAILED', `Cannot start domain "${rec.name}": ${why}${tail ? `\n${tail}` : ''}`);
    };

    /** The worker is gone before we attached: a failure, or a guest that already ended. */
    const endedEarly = async (ended: ExitInfo, when: string, guestStopped?: Worker['guestStopped']) => {
      await sleep(20); // let the log settle
      if (ended.error) throw failed(`cannot run the worker: ${ended.error.message}`);
      if (ended.signal || ended.code === null || ended.code === EXIT_VMM_ERROR) {
        throw failed(`the worker exited (${ended.signal ? `signal ${ended.signal}` : `status ${ended.code}`}) ${when}`);
      }
      return { early: { uuid: rec.uuid, paths, logOffset, ...(guestStopped ? { guestStopped } : {}) }, exit: ended };
    };

    // wait for the control socket: the worker creates it before it builds the guest
    const deadline = Date.now() + this.startTimeoutMs;
    let client: ControlClient | undefined;
    while (!client) {
      const ended = await within(exit, 5);
      if (ended) return endedEarly(ended, 'before it opened its control socket');
      if (Date.now() > deadline) throw failed(`no control socket after ${this.startTimeoutMs} ms`);
      if (!existsSync(paths.control)) continue;
      client = await ControlClient.connect(paths.control).catch(() => undefined);
    }
    // the worker opened its taps before its control socket: wire them before the guest is ours
    try {
      await linkTaps(rec.uuid, rec.definition, this.opts.ip);
    } catch (err) {
      client.close();
      throw failed(`cannot set up its network: ${(err as Error).message}`);
    }

    const w = this.newWorker(rec.uuid, child.pid!, paths, client, logOffset);
    w.child = child;
    w.exit = exit;
    try {
      await this.attach(w, rec);
    } catch (err) {
      client.close();
      const ended = await within(exit, 1000);
      if (ended) return endedEarly(ended, 'during the control handshake', w.guestStopped);
      throw failed(`the worker did not complete the control handshake: ${(err as Error).message}`);
    }
    return w;
  }

  private newWorker(uuid: string, pid: number, paths: WorkerPaths, client: ControlClient, logOffset: number): Worker {
    let resolveEnded!: () => void;
    const ended = new Promise<void>((r) => (resolveEnded = r));
    return { uuid, pid, paths, client, consoleSocket: paths.console, logOffset, attached: false, detached: false, ending: false, ended, resolveEnded };
  }

  /** hello → subscribe → describe; then the worker's events and end are ours to handle. */
  private async attach(w: Worker, rec: DomainRecord): Promise<WorkerDescription> {
    w.client.on('event', (e) => this.onWorkerEvent(w, e));
    w.client.on('close', () => void this.onWorkerClosed(w));
    await w.client.request({ type: 'hello', version: PROTOCOL_VERSION }, 5000);
    await w.client.request({ type: 'subscribe' }, 5000);
    const d = await w.client.request<WorkerDescription>({ type: 'describe' }, 5000);
    if (d?.vmId !== rec.uuid) throw new Error(`the worker serves ${d?.vmId}, not ${rec.uuid}`);
    // the console is where this daemon told the worker to put it, whatever the worker says
    if (Number.isSafeInteger(d.pid) && d.pid > 1) w.pid = d.pid;
    w.attached = true;
    this.workers.set(rec.uuid, w);
    if (rec.definition.serial.log) {
      w.consoleLog = new ConsoleLog(w.consoleSocket, join(this.opts.stateDir, 'logs', `${rec.uuid}.console.log`), `attached to worker ${d.pid}`);
    }
    const startedAt = typeof d.startedAt === 'string' && !Number.isNaN(Date.parse(d.startedAt)) ? new Date(d.startedAt).toISOString() : undefined;
    this.applyWorkerState(w, d.state, w.pid, startedAt);
    if (w.client.isClosed) void this.onWorkerClosed(w);
    return d;
  }

  // ─── worker events and ends ─────────────────────────────────────────────────────────

  private applyWorkerState(w: Worker, ws: WorkerDescription['state'], pid?: number, startedAt?: string): void {
    const rec = this.repo.getByUuid(w.uuid);
    if (!rec) return;
    const cur = rec.runtime.state;
    const extra = { ...(pid ? { pid } : {}), ...(startedAt ? { started_at: startedAt } : {}) };
    switch (ws) {
      case 'running':
        if (cur === 'starting') this.setState(w.uuid, 'running', rec.runtime.reason ?? 'user', extra);
        else if (cur === 'paused') this.setState(w.uuid, 'running', 'resumed', extra);
        else if (cur === 'running') this.setState(w.uuid, 'running', rec.runtime.reason ?? 'user', extra);
        break;
      case 'paused':
        if (cur === 'starting' || cur === 'running') this.setState(w.uuid, 'paused', cur === 'starting' ? (rec.runtime.reason ?? 'user') : 'paused', extra);
        else if (cur === 'paused') this.setState(w.uuid, 'paused', rec.runtime.reason ?? 'user', extra);
        break;
      case 'stopping':
        if (cur === 'running' || cur === 'paused' || cur === 'starting') this.setState(w.uuid, 'stopping', w.intent?.reason ?? 'guest', extra);
        break;
      default:
        // starting: nothing to say yet; stopped/crashed: the end of the worker tells
        break;
    }
  }

  private onWorkerEvent(w: Worker, e: ControlEvent): void {
    switch (e.event) {
      case 'state':
        if (w.attached && !w.ending) this.applyWorkerState(w, e.state);
        break;
      case 'guest-reboot': {
        const rec = this.repo.getByUuid(w.uuid);
        if (rec) this.opts.events.publish({ type: 'guest-reboot', domain: rec.name, uuid: w.uuid, reason: e.reason });
        break;
      }
      case 'guest-stopped':
        w.guestStopped = { reason: e.reason, exitCode: e.exitCode, ...(e.detail ? { detail: e.detail } : {}) };
        break;
    }
  }

  /** The control socket closed: find out how the worker ended and settle the domain's state. */
  private async onWorkerClosed(w: Worker): Promise<void> {
    if (w.detached || w.ending || !w.attached) return;
    w.ending = true;
    clearTimeout(w.shutdownTimer);
    w.consoleLog?.close();
    let exit: ExitInfo | undefined;
    if (w.exit) {
      exit = await within(w.exit, 3000);
    } else {
      // not our child: its parent reaps it; wait until the pid is gone
      for (let i = 0; i < 50 && isAlive(w.pid); i++) await sleep(20);
    }
    if (!exit && isAlive(w.pid) && isWorkerOf(w.pid, w.uuid)) {
      // it closed its control socket but lives on: it can no longer be managed
      this.opts.log.warn({ uuid: w.uuid, pid: w.pid }, 'worker closed its control socket but did not exit; killing it');
      process.kill(w.pid, 'SIGKILL');
    }
    if (this.workers.get(w.uuid) === w) this.workers.delete(w.uuid);
    try {
      this.settleEnd(w, exit);
    } catch (err) {
      this.opts.log.error({ err, uuid: w.uuid }, 'failed to record the end of a worker');
    } finally {
      w.resolveEnded();
    }
  }

  /** What the worker's end means for the domain, by intent, then the guest's word, then the exit status. */
  private settleEnd(w: EndContext, exit: ExitInfo | undefined): void {
    const rec = this.repo.getByUuid(w.uuid);
    removeWorkerDir(w.paths);
    if (!rec) return;
    if (w.intent) {
      this.setState(w.uuid, 'shutoff', w.intent.reason);
      return;
    }
    const def = rec.definition;
    const outcome = this.outcome(w, exit);
    switch (outcome.kind) {
      case 'poweroff':
        this.setState(w.uuid, 'shutoff', 'poweroff', outcome.detail ? { detail: outcome.detail } : {});
        if (def.on_poweroff === 'restart') this.scheduleRestart(w.uuid, 'poweroff');
        return;
      case 'reset':
        this.setState(w.uuid, 'shutoff', 'guest-reboot');
        return;
      case 'stopped':
        this.setState(w.uuid, 'shutoff', 'stopped');
        return;
      case 'crash': {
        const tail = logTail(w.paths.log, w.logOffset, 1000);
        const detail = [outcome.detail, tail].filter(Boolean).join('\n');
        this.setState(w.uuid, 'crashed', outcome.reason, { detail });
        if (def.on_crash === 'destroy') this.setState(w.uuid, 'shutoff', 'crashed');
        else if (def.on_crash === 'restart') this.scheduleRestart(w.uuid, 'crash');
        return;
      }
    }
  }

  private outcome(w: EndContext, exit: ExitInfo | undefined): { kind: 'poweroff' | 'reset' | 'stopped'; detail?: string } | { kind: 'crash'; reason: string; detail: string } {
    const g = w.guestStopped;
    if (g) {
      switch (g.reason) {
        case 'poweroff':
          return { kind: 'poweroff' };
        case 'debug-exit':
          return { kind: 'poweroff', detail: `the guest exited with code ${g.exitCode}` };
        case 'reset':
          return { kind: 'reset' };
        case 'stopped':
          return { kind: 'stopped' };
        case 'crashed':
          return { kind: 'crash', reason: 'guest-crashed', detail: g.detail ?? 'the guest crashed' };
      }
    }
    if (exit?.signal) return { kind: 'crash', reason: 'worker-killed', detail: `the worker was killed by ${exit.signal}` };
    switch (exit?.code) {
      case 0:
        return { kind: 'poweroff' };
      case 124:
        return { kind: 'reset' };
      case 130:
        return { kind: 'stopped' };
      case 126:
        return { kind: 'crash', reason: 'guest-crashed', detail: 'the guest crashed' };
      case undefined:
      case null:
        return { kind: 'crash', reason: 'worker-exited', detail: 'the worker ended without saying why' };
      default:
        return { kind: 'crash', reason: 'worker-exited', detail: `the worker exited with status ${exit?.code}` };
    }
  }

  private scheduleRestart(uuid: string, why: string): void {
    if (this.closed) return;
    const now = Date.now();
    const recent = (this.restarts.get(uuid) ?? []).filter((t) => now - t < RESTART_WINDOW_MS);
    if (recent.length >= RESTART_LIMIT) {
      this.setState(uuid, 'crashed', 'restart-limit', { detail: `restarted ${RESTART_LIMIT} times within ${RESTART_WINDOW_MS / 1000} s; giving up` });
      return;
    }
    recent.push(now);
    this.restarts.set(uuid, recent);
    void this.withLock(uuid, () => this.startLocked(uuid, `restart-after-${why}`)).catch((err) => {
      this.opts.log.warn({ uuid, err: (err as Error).message }, 'restart failed');
    });
  }

  // ─── other actions ──────────────────────────────────────────────────────────────────

  private requireWorker(rec: DomainRecord): Worker {
    const w = this.workers.get(rec.uuid);
    if (!w || w.ending) throw new ApiError('WORKER_UNAVAILABLE', `Domain "${rec.name}" has no live worker`);
    return w;
  }

  /** A control request, with the worker's failures mapped to API errors. */
  private async call<T>(w: Worker, rec: DomainRecord, body: ControlRequestBody, timeoutMs?: number): Promise<T> {
    try {
      return await w.client.request<T>(body, timeoutMs);
    } catch (err) {
      if (!(err instanceof ControlRequestError)) throw err;
      switch (err.code) {
        case 'INVALID_STATE':
          throw new ApiError('INVALID_STATE_TRANSITION', `Cannot ${body.type} domain "${rec.name}": ${err.message}`, { state: rec.runtime.state });
        case 'CLOSED':
          throw new ApiError('WORKER_UNAVAILABLE', `Domain "${rec.name}": the worker went away during ${body.type}`);
        case 'TIMEOUT':
          throw new ApiError('WORKER_TIMEOUT', `Domain "${rec.name}": ${err.message}`);
        default:
          throw new ApiError('WORKER_ERROR', `Domain "${rec.name}": the worker refused ${body.type}: ${err.code}: ${err.message}`);
      }
    }
  }

  private async simple(uuid: string, action: Action, body: ControlRequestBody, then?: DomainStateName): Promise<void> {
    const rec = this.record(uuid);
    checkAction(rec.name, rec.runtime.state, action);
    const w = this.requireWorker(rec);
    await this.call(w, rec, body);
    if (then && !w.ending) this.setState(uuid, then, 'user');
  }

  private async stopLocked(uuid: string, reason: string): Promise<void> {
    const rec = this.record(uuid);
    if (reason === 'user') checkAction(rec.name, rec.runtime.state, 'stop');
    const w = this.workers.get(uuid);
    if (!w) {
      if (rec.runtime.state !== 'shutoff') this.setState(uuid, 'shutoff', reason);
      return;
    }
    await this.forceStop(w, reason);
  }

  /** Ends a worker now: `stop`, then SIGKILL if it lingers. Resolves when its end is recorded. */
  private async forceStop(w: Worker, reason: string): Promise<void> {
    w.intent = { kind: 'stop', reason };
    clearTimeout(w.shutdownTimer);
    if (!w.ending) {
      const cur = this.repo.getByUuid(w.uuid)?.runtime.state;
      if (cur && cur !== 'stopping') this.setState(w.uuid, 'stopping', reason);
      await w.client.request({ type: 'stop' }, 5000).catch(() => undefined);
    }
    if (!(await settles(w.ended, this.stopTimeoutMs))) {
      this.opts.log.warn({ uuid: w.uuid, pid: w.pid }, 'worker did not stop; killing it');
      if (isAlive(w.pid)) process.kill(w.pid, 'SIGKILL');
      if (!(await settles(w.ended, 5000))) {
        throw new ApiError('WORKER_TIMEOUT', `The worker of domain ${w.uuid} (pid ${w.pid}) did not end after SIGKILL`);
      }
    }
  }

  /** Presses the power button; returns, wrapped, the promise of the domain off. */
  private async shutdownLocked(uuid: string, timeoutS: number): Promise<{ done: Promise<void> }> {
    const rec = this.record(uuid);
    checkAction(rec.name, rec.runtime.state, 'shutdown');
    const w = this.requireWorker(rec);
    if (timeoutS === 0) {
      await this.forceStop(w, 'shutdown-forced');
      return { done: w.ended };
    }
    if (rec.runtime.state === 'paused') await this.call(w, rec, { type: 'resume' });
    w.intent = { kind: 'shutdown', reason: 'shutdown' };
    this.setState(uuid, 'stopping', 'shutdown');
    try {
      await this.call(w, rec, { type: 'power-button' });
    } catch (err) {
      if (!w.ending) {
        w.intent = undefined;
        this.setState(uuid, 'running', 'shutdown-failed');
      }
      throw err;
    }
    this.armShutdownTimer(w, timeoutS);
    return { done: w.ended };
  }

  private armShutdownTimer(w: Worker, timeoutS: number): void {
    clearTimeout(w.shutdownTimer);
    w.shutdownTimer = setTimeout(() => {
      if (w.ending || this.closed) return;
      this.opts.log.info({ uuid: w.uuid, timeoutS }, 'guest did not shut down in time; forcing it off');
      void this.forceStop(w, 'shutdown-timeout').catch((err) => this.opts.log.error({ err, uuid: w.uuid }, 'forced stop failed'));
    }, timeoutS * 1000);
  }

  // ─── daemon start and stop ──────────────────────────────────────────────────────────

  /**
   * At daemon start: takes back every live worker (pid file + control socket), and settles
   * domains whose worker is gone — crashed, or shutoff when the host rebooted meanwhile
   * (the boot id changed) or the domain was already stopping.
   */
  async recover(): Promise<void> {
    const bootId = readBootId();
    const lastBoot = this.opts.store.meta.get('boot_id');
    const hostRebooted = lastBoot !== undefined && bootId !== undefined && lastBoot !== bootId;
    if (bootId) this.opts.store.meta.set('boot_id', bootId);

    const running = scanWorkers();
    const known = new Set<string>();
    await Promise.all(
      this.repo.list().map(async (rec) => {
        known.add(rec.uuid);
        await this.withLock(rec.uuid, () => this.recoverOne(rec, hostRebooted, running.get(rec.uuid)));
      }),
    );
    // workers of domains the store does not know (deleted while the daemon was down?)
    let dirs: string[] = [];
    try {
      dirs = readdirSync(join(this.opts.runtimeDir, 'vms'));
    } catch {
      // no runtime dir yet
    }
    for (const uuid of dirs.filter((d) => !known.has(d))) {
      const pid = readPid(this.paths(uuid).pidFile);
      if (pid && isAlive(pid) && isWorkerOf(pid, uuid)) this.opts.log.warn({ uuid, pid }, 'a worker runs for a domain the store does not know; leaving it alone');
      else removeWorkerDir(this.paths(uuid));
    }
  }

  private async recoverOne(rec: DomainRecord, hostRebooted: boolean, seen: number | undefined): Promise<void> {
    const paths = this.paths(rec.uuid);
    const pid = readPid(paths.pidFile) ?? seen;
    if (pid && isAlive(pid) && isWorkerOf(pid, rec.uuid)) {
      try {
        const client = await ControlClient.connect(paths.control);
        const w = this.newWorker(rec.uuid, pid, paths, client, 0);
        try {
          w.logOffset = existsSync(paths.log) ? readFileSync(paths.log).length : 0;
        } catch {
          w.logOffset = 0;
        }
        if (rec.runtime.state === 'stopping') {
          // a shutdown was under way: keep treating the end as asked for, and still force it
          w.intent = { kind: 'shutdown', reason: rec.runtime.reason ?? 'shutdown' };
          this.armShutdownTimer(w, DEFAULT_SHUTDOWN_TIMEOUT_S);
        }
        if (!isActive(rec.runtime.state)) this.setState(rec.uuid, 'starting', 'daemon-restart');
        await this.attach(w, rec);
        this.opts.log.info({ domain: rec.name, pid }, 're-attached to worker');
        return;
      } catch (err) {
        this.opts.log.error({ domain: rec.name, pid, err: (err as Error).message }, 'worker is alive but does not answer; killing it');
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone meanwhile
        }
        removeWorkerDir(paths);
        this.setState(rec.uuid, 'crashed', 'worker-unresponsive', { detail: (err as Error).message });
        return;
      }
    }
    removeWorkerDir(paths);
    if (!isActive(rec.runtime.state)) return;
    if (hostRebooted) this.setState(rec.uuid, 'shutoff', 'host-reboot');
    else if (rec.runtime.state === 'stopping') this.setState(rec.uuid, 'shutoff', rec.runtime.reason ?? 'stopped');
    else {
      this.setState(rec.uuid, 'crashed', 'worker-lost', { detail: 'the worker ended while the daemon was not running' });
      if (rec.definition.on_crash === 'destroy') this.setState(rec.uuid, 'shutoff', 'crashed');
      else if (rec.definition.on_crash === 'restart') this.scheduleRestart(rec.uuid, 'crash');
    }
  }

  /** Starts every shutoff domain marked autostart; resolves when all have been tried. */
  async autostart(): Promise<void> {
    const recs = this.repo.list('shutoff').filter((r) => r.definition.autostart);
    await Promise.all(
      recs.map((rec) =>
        this.withLock(rec.uuid, () => this.startLocked(rec.uuid, 'autostart')).catch((err) => {
          this.opts.log.error({ domain: rec.name, err: (err as Error).message }, 'autostart failed');
        }),
      ),
    );
  }

  /** Daemon shutdown: lets go of the workers (they and their guests keep running). */
  detachAll(): void {
    this.closed = true;
    for (const w of this.workers.values()) {
      w.detached = true;
      clearTimeout(w.shutdownTimer);
      w.consoleLog?.close();
      w.client.close();
    }
    this.workers.clear();
  }
}

function readBootId(): string | undefined {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  } catch {
    return undefined;
  }
}
