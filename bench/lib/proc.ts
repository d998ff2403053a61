/**
 * Child processes for the benchmark: every process the bench starts is tracked by pid and
 * ended by that pid (never by name) when the bench finishes, fails or is interrupted.
 */
import { spawn, type ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();

function forget(child: ChildProcess): void {
  live.delete(child);
}

/** Ends every process this bench started that is still running (SIGKILL, by pid). */
export function endAll(): void {
  for (const child of live) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
  live.clear();
}

process.on('exit', endAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    endAll();
    process.stderr.write(`bench: ${sig}, stopped\n`);
    process.exit(130);
  });
}

export interface Command {
  cmd: string;
  args: string[];
}

export function show(c: Command): string {
  return [c.cmd, ...c.args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** A finished run, with times in ms from just before spawn(). */
export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** first byte on stdout (the guest's serial console for every VMM here) */
  firstByteMs: number | null;
  exitMs: number;
  timedOut: boolean;
}

function msSince(t0: bigint): number {
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

/** Runs a command to completion with stdin closed, stdout and stderr captured. */
/** Why a run failed, for a report: how it ended and the last `tail` characters of its output. */
export function failure(res: RunResult, tail = 400): string {
  return `status ${res.status}${res.signal ? ` (${res.signal})` : ''}${res.timedOut ? ', timed out' : ''}; stdout: ${JSON.stringify(res.stdout.slice(-tail))}; stderr: ${JSON.stringify(res.stderr.slice(-tail))}`;
}

export function run(c: Command, timeoutMs: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(c.cmd, c.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    live.add(child);
    child.stdin.end();
    let firstByteMs: number | null = null;
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (b: Buffer) => {
      if (firstByteMs === null) firstByteMs = msSince(t0);
      out.push(b);
    });
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => {
      clearTimeout(timer);
      forget(child);
      reject(e);
    });
    // 'exit' is when the process ended; 'close' (all output read) may come later.
    let exitMs = 0;
    child.on('exit', () => (exitMs = msSince(t0)));
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      forget(child);
      resolve({
        status,
        signal,
        stdout: Buffer.concat(out).toString(),
        stderr: Buffer.concat(err).toString(),
        firstByteMs,
        exitMs,
        timedOut,
      });
    });
  });
}

/** A process kept running while the bench looks at it (the memory measure). */
export class Running {
  readonly pid: number;
  private out = '';
  private err = '';
  private waiters: { re: RegExp; resolve: () => void }[] = [];
  readonly closed: Promise<{ status: number | null; signal: NodeJS.Signals | null }>;

  private constructor(private readonly child: ChildProcess) {
    this.pid = child.pid!;
    child.stdout!.on('data', (b: Buffer) => {
      this.out += b.toString();
      this.waiters = this.waiters.filter((w) => (w.re.test(this.out) ? (w.resolve(), false) : true));
    });
    child.stderr!.on('data', (b: Buffer) => (this.err += b.toString()));
    this.closed = new Promise((resolve) =>
      child.on('close', (status, signal) => {
        forget(child);
        resolve({ status, signal });
      }),
    );
  }

  static start(c: Command): Promise<Running> {
    return new Promise((resolve, reject) => {
      const child = spawn(c.cmd, c.args, { stdio: ['pipe', 'pipe', 'pipe'] });
      live.add(child);
      child.once('error', (e) => {
        forget(child);
        reject(e);
      });
      child.once('spawn', () => resolve(new Running(child)));
    });
  }

  get stdout(): string {
    return this.out;
  }

  get stderr(): string {
    return this.err;
  }

  /** Resolves when stdout matches `re`; rejects after `timeoutMs` or if the process ends first. */
  waitFor(re: RegExp, timeoutMs: number): Promise<void> {
    if (re.test(this.out)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${re} on stdout after ${timeoutMs} ms`)), timeoutMs);
      void this.closed.then(() => {
        clearTimeout(timer);
        reject(new Error(`process ended before ${re} appeared on stdout`));
      });
      this.waiters.push({
        re,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
    });
  }

  write(s: string): void {
    this.child.stdin!.write(s);
  }

  /** Asks politely (`polite`, e.g. typing 'q' to the guest), then SIGTERM, then SIGKILL — all by pid. */
  async end(polite?: () => void, graceMs = 3000): Promise<void> {
    const done = this.closed.then(() => true);
    const after = (ms: number) => new Promise<false>((r) => setTimeout(() => r(false), ms).unref());
    if (polite) {
      polite();
      if (await Promise.race([done, after(graceMs)])) return;
    }
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    if (await Promise.race([done, after(graceMs)])) return;
    this.child.kill('SIGKILL');
    await this.closed;
  }
}
