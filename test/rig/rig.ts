/**
 * Runs commands where a real KVM is, for the tests that boot Linux: directly when this
 * machine's /dev/kvm is hardware-backed, else inside the KVM rig (test/rig/rig.sh: QEMU under
 * TCG with nested AMD-V, the host's root shared read-only with a RAM overlay). See README.md.
 *
 *   const r = await runInKvm(['node', 'libs/vmm/dist/cli.js', 'run', ...], { timeoutMs: 120_000 });
 *   r.code, r.stdout, r.stderr, r.timings
 *
 *   const p = spawnInKvm(['sh'], { tty: true });     // type into a shell on the rig's console
 *   await p.waitFor(/# $/); p.write('echo hi\n'); await p.waitFor(/hi/); p.end(); await p.finish();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Readable, Writable } from 'node:stream';

export const RIG_SH = fileURLToPath(new URL('./rig.sh', import.meta.url));

export interface RigOptions {
  /** Whole run, rig boot included (default 300 s). The rig boots in ~5–15 s here. */
  timeoutMs?: number;
  /** Extra environment for the command. In the rig the command otherwise gets only PATH, HOME,
   *  LANG, TERM, CI and VMCTL_* from this process; directly it inherits process.env. */
  env?: Record<string, string>;
  /** Host directories the command may write to and the host reads back (rig: 9p, read-write). */
  share?: string[];
  /** Working directory (default process.cwd()). */
  cwd?: string;
  /** Rig RAM (default 4G) and CPUs (default 2). */
  memory?: string;
  smp?: number;
  /** auto (default; $VMCTL_RIG overrides), or force the rig or direct execution. */
  mode?: 'auto' | 'rig' | 'direct';
  /** Copy the rig's console to this process's stderr as it arrives. */
  verbose?: boolean;
}

export interface RunOptions extends RigOptions {
  /** Data for the command's stdin (default: none, /dev/null). */
  input?: string | Buffer;
}

export interface SpawnOptions extends RigOptions {
  /** The command's stdio is the rig's serial console (a tty: echo, ^C, job control); stdout
   *  then carries the console, markers included. Directly, there is no tty: plain pipes. */
  tty?: boolean;
}

/** Seconds. `guest*` are the rig kernel's uptime at each marker; `wall*` are measured here
 *  from spawning rig.sh. Absent when the step was not reached or the run was direct. */
export interface RigTimings {
  wallKernelInit?: number;
  wallKvm?: number;
  wallStart?: number;
  wallExit?: number;
  wallEnd?: number;
  guestInit?: number;
  guestKvm?: number;
  guestStart?: number;
  guestExit?: number;
}

export interface RigResult {
  /** The command's exit status (128+n when a signal n ended it). */
  code: number;
  stdout: string;
  stderr: string;
  /** The rig's serial console (kernel messages at loglevel 3, markers); empty when direct. */
  console: string;
  inRig: boolean;
  timings: RigTimings;
}

/** True when the rig is needed: no /dev/kvm, or a PVM one (it cannot boot Linux). */
export function rigNeeded(mode: RigOptions['mode'] = 'auto'): boolean {
  const m = mode === 'auto' ? process.env.VMCTL_RIG ?? 'auto' : mode;
  if (['always', 'rig', '1', 'yes'].includes(m)) return true;
  if (['never', 'direct', '0', 'no'].includes(m)) return false;
  return !existsSync('/dev/kvm') || existsSync('/sys/module/kvm_pvm');
}

export class RigError extends Error {
  constructor(
    message: string,
    readonly result: Partial<RigResult>,
  ) {
    super(message);
    this.name = 'RigError';
  }
}

/**
 * A command running under rig.sh. Output accumulates in `stdout`, `stderr` and `console`;
 * `waitFor` watches them.
 */
export class RigProcess {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  console = '';
  inRig: boolean;
  readonly timings: RigTimings = {};
  private readonly t0 = process.hrtime.bigint();
  private rigResult: string | undefined;
  private timedOut = false;
  private killTimers: NodeJS.Timeout[] = [];
  private waiters: { stream: 'stdout' | 'stderr' | 'console'; re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  private readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly timeoutMs: number;

  constructor(cmd: string[], opts: SpawnOptions & { stdin: boolean }) {
    if (cmd.length === 0) throw new Error('rig: empty command');
    this.timeoutMs = opts.timeoutMs ?? 300_000;
    this.inRig = rigNeeded(opts.mode);
    const args = ['--console-fd', '3'];
    if (this.inRig) args.push('--rig', '--timeout', String(Math.ceil(this.timeoutMs / 1000)));
    else args.push('--direct');
    if (opts.tty) args.push('--interactive');
    if (!opts.stdin) args.push('--no-stdin');
    for (const dir of opts.share ?? []) args.push('--share', dir);
    for (const [k, v] of Object.entries(opts.env ?? {})) args.push('--env', `${k}=${v}`);
    if (opts.cwd) args.push('--cwd', opts.cwd);
    if (opts.memory) args.push('--memory', opts.memory);
    if (opts.smp) args.push('--smp', String(opts.smp));
    args.push('--', ...cmd);
    // Its own process group, so a timeout ends rig.sh, its relays and QEMU together.
    this.child = spawn('bash', [RIG_SH, ...args], {
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...(this.inRig ? {} : opts.env) },
    });
    const out = this.child.stdio[1] as Readable;
    const err = this.child.stdio[2] as Readable;
    const con = this.child.stdio[3] as Readable;
    out.on('data', (b: Buffer) => this.append('stdout', b));
    err.on('data', (b: Buffer) => this.append('stderr', b));
    let partial = '';
    con.on('data', (b: Buffer) => {
      const text = b.toString('latin1');
      if (opts.verbose) process.stderr.write(text);
      this.append('console', b);
      partial += text;
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) this.onConsoleLine(line.replace(/\r$/, ''));
    });
    const closed = new Promise<void>((resolve) => this.child.on('close', () => resolve()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => closed.then(() => resolve({ code, signal }))));
    // rig.sh stops QEMU at --timeout; this is the backstop (and the only timer when direct).
    const grace = this.inRig ? 20_000 : 0;
    this.killTimers.push(
      setTimeout(() => {
        this.timedOut = true;
        this.kill('SIGTERM');
        this.killTimers.push(setTimeout(() => this.kill('SIGKILL'), 5000));
      }, this.timeoutMs + grace),
    );
  }

  /** Seconds since rig.sh was spawned. */
  elapsed(): number {
    return Number(process.hrtime.bigint() - this.t0) / 1e9;
  }

  private onConsoleLine(line: string): void {
    let m: RegExpMatchArray | null;
    if ((m = line.match(/^VMCTL-RIG-T (\w+) ([\d.]+)/))) {
      const guest = Number(m[2]);
      const t = this.elapsed();
      switch (m[1]) {
        case 'init': this.timings.guestInit = guest; this.timings.wallKernelInit = t; break;
        case 'kvm': this.timings.guestKvm = guest; this.timings.wallKvm = t; break;
        case 'start': this.timings.guestStart = guest; this.timings.wallStart = t; break;
        case 'exit': this.timings.guestExit = guest; this.timings.wallExit = t; break;
      }
    } else if ((m = line.match(/^VMCTL-RIG-RESULT (.*)$/))) {
      this.rigResult = m[1];
    } else if (line === 'VMCTL-RIG-DIRECT') {
      this.inRig = false;
    }
  }

  private append(stream: 'stdout' | 'stderr' | 'console', b: Buffer): void {
    this[stream] += b.toString(stream === 'console' ? 'latin1' : 'utf8');
    this.waiters = this.waiters.filter((w) => {
      if (w.stream !== stream) return true;
      const m = this[stream].match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** Resolves when `stream` (default stdout) matches `re`; rejects after `ms` or at exit. */
  waitFor(re: RegExp, ms = 60_000, stream: 'stdout' | 'stderr' | 'console' = 'stdout'): Promise<RegExpMatchArray> {
    const m = this[stream].match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const fail = (why: string) =>
        reject(new Error(`rig: ${why} waiting for ${re} on ${stream}; ${stream}: ${JSON.stringify(this[stream].slice(-2000))}; stderr: ${JSON.stringify(this.stderr.slice(-2000))}`));
      const timer = setTimeout(() => fail('timed out'), ms);
      const w = { stream, re, resolve: (mm: RegExpMatchArray) => { clearTimeout(timer); resolve(mm); } };
      this.waiters.push(w);
      void this.exited.then(() => {
        if (this.waiters.includes(w)) {
          this.waiters = this.waiters.filter((x) => x !== w);
          clearTimeout(timer);
          fail('exited');
        }
      });
    });
  }

  /** Writes to the command's stdin (or, with tty, types on its console). */
  write(data: string | Buffer): void {
    const stdin = this.child.stdio[0] as Writable | null;
    if (!stdin) throw new Error('rig: spawned without stdin');
    stdin.write(data);
  }

  /** Closes the command's stdin. */
  end(): void {
    (this.child.stdio[0] as Writable | null)?.end();
  }

  /** Signals rig.sh's whole process group (rig.sh, its relays, QEMU). */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.child.pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      /* already gone */
    }
  }

  /** Waits for the end; resolves with the command's status, rejects with a RigError when the
   *  rig failed or the time ran out. `ms` (optional) kills the run early. */
  async finish(ms?: number): Promise<RigResult> {
    let early: NodeJS.Timeout | undefined;
    if (ms !== undefined) {
      early = setTimeout(() => {
        this.timedOut = true;
        this.kill('SIGTERM');
        this.killTimers.push(setTimeout(() => this.kill('SIGKILL'), 5000));
      }, ms);
    }
    const { code, signal } = await this.exited;
    if (early) clearTimeout(early);
    for (const t of this.killTimers) clearTimeout(t);
    this.timings.wallEnd = this.elapsed();
    const result: RigResult = {
      code: code ?? 128 + signalNumber(signal),
      stdout: this.stdout,
      stderr: this.stderr,
      console: this.console,
      inRig: this.inRig,
      timings: this.timings,
    };
    const tail = () => `\nstderr: ${this.stderr.slice(-3000)}\nconsole: ${this.console.slice(-3000)}`;
    if (this.timedOut || this.rigResult === 'timeout') {
      throw new RigError(`rig: timed out after ${this.timeoutMs} ms running the command${tail()}`, result);
    }
    if (this.inRig && !this.rigResult?.startsWith('exit ')) {
      throw new RigError(`rig: failed (${this.rigResult ?? `rig.sh ended with ${code ?? signal}`})${tail()}`, result);
    }
    return result;
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  return signal ? (constants.signals[signal] ?? 0) : 0;
}

/** Runs `cmd` where a real KVM is and collects its output. Rejects with a RigError when the rig
 *  fails or the time runs out; the command's own failure is just a nonzero `code`. */
export async function runInKvm(cmd: string[], opts: RunOptions = {}): Promise<RigResult> {
  const p = new RigProcess(cmd, { ...opts, stdin: opts.input !== undefined });
  if (opts.input !== undefined) {
    p.write(opts.input);
    p.end();
  }
  return p.finish();
}

/** Starts `cmd` where a real KVM is and streams it: write to its stdin, wait for output. */
export function spawnInKvm(cmd: string[], opts: SpawnOptions = {}): RigProcess {
  return new RigProcess(cmd, { ...opts, stdin: true });
}
