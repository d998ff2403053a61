/**
 * A network namespace of a test's own, so that taps, addresses and traffic never touch the
 * host's networking: created by `NetNamespace.create()`, deleted by `delete()` (and, as a
 * safety net, when the process exits). Processes started in it are tracked by pid and
 * killed by pid, never by name.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

export function which(cmd: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** What is missing on this machine for tests that create namespaces and taps ('' if nothing). */
export function netnsMissing(): string {
  return [
    process.getuid?.() === 0 ? '' : 'root',
    existsSync('/dev/net/tun') ? '' : '/dev/net/tun',
    which('ip') ? '' : 'ip(8)',
  ].filter(Boolean).join(', ');
}

export class NetNamespace {
  readonly #children = new Set<ChildProcess>();
  #alive = true;
  readonly #onExit = () => this.delete();

  private constructor(readonly name: string) {
    process.on('exit', this.#onExit);
  }

  /** `ip netns add NAME`, with its loopback up. */
  static create(name: string): NetNamespace {
    execFileSync('ip', ['netns', 'add', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ns = new NetNamespace(name);
    ns.ip('link', 'set', 'lo', 'up');
    return ns;
  }

  /** `ip -n NAME ...`; its stdout. */
  ip(...args: string[]): string {
    return execFileSync('ip', ['-n', this.name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
  }

  /** The argv prefix that runs a command inside the namespace. */
  get prefix(): string[] {
    return ['ip', 'netns', 'exec', this.name];
  }

  /** Whether the interface `dev` exists in the namespace. */
  hasLink(dev: string): boolean {
    try {
      this.ip('link', 'show', 'dev', dev);
      return true;
    } catch {
      return false;
    }
  }

  /** Waits until the interface `dev` exists in the namespace. */
  async waitForLink(dev: string, ms = 10_000): Promise<void> {
    const end = Date.now() + ms;
    while (!this.hasLink(dev)) {
      if (Date.now() > end) throw new Error(`${dev} never appeared in namespace ${this.name}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Starts `node -e script` inside the namespace; killed by pid at delete() if still running. */
  node(script: string): NsProcess {
    const child = spawn(this.prefix[0]!, [...this.prefix.slice(1), process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.track(child);
    return new NsProcess(child);
  }

  /** Kills `child` (by its pid) when the namespace is deleted, if it has not ended by then. */
  track(child: ChildProcess): void {
    this.#children.add(child);
    child.on('exit', () => this.#children.delete(child));
  }

  /** Ends the processes started in it (by pid), then `ip netns del`. Safe to call twice. */
  delete(): void {
    if (!this.#alive) return;
    this.#alive = false;
    process.off('exit', this.#onExit);
    for (const c of this.#children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        try {
          process.kill(c.pid, 'SIGKILL');
        } catch { /* already gone */ }
      }
    }
    try {
      execFileSync('ip', ['netns', 'del', this.name], { stdio: 'ignore' });
    } catch { /* already gone */ }
  }
}

/** A process inside a namespace whose stdout is read line by line. */
export class NsProcess {
  readonly lines: string[] = [];
  stderr = '';
  readonly done: Promise<number>;
  #buffered = '';
  #wake: (() => void) | undefined;

  constructor(readonly child: ChildProcess) {
    child.stdout!.on('data', (d: Buffer) => {
      this.#buffered += d.toString();
      const parts = this.#buffered.split('\n');
      this.#buffered = parts.pop()!;
      this.lines.push(...parts);
      this.#wake?.();
    });
    child.stderr!.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.done = new Promise((resolve) => child.on('exit', (code) => {
      this.#wake?.();
      resolve(code ?? -1);
    }));
  }

  /** The first line (from the start) matching `re`; rejects after `ms` or when the process ends. */
  async line(re: RegExp, ms = 10_000): Promise<string> {
    const end = Date.now() + ms;
    for (;;) {
      const found = this.lines.find((l) => re.test(l));
      if (found !== undefined) return found;
      if (this.child.exitCode !== null || Date.now() > end) {
        throw new Error(`no line matching ${re} (exit ${this.child.exitCode}); stdout: ${JSON.stringify(this.lines)} stderr: ${this.stderr}`);
      }
      await new Promise<void>((r) => {
        this.#wake = r;
        setTimeout(r, 50);
      });
      this.#wake = undefined;
    }
  }
}
