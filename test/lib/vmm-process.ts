/**
 * Runs `vmm` as a child process and watches its console, for the integration tests.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const VMM = join(ROOT, 'libs/vmm/dist/bundle/cli.js');
export const GUESTS = join(ROOT, 'test/guests/out');

export function guest(name: string): string {
  return join(GUESTS, `${name}.elf`);
}

export class VmmProcess {
  readonly child: ChildProcessWithoutNullStreams;
  stdout = '';
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private waiters: { re: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];

  /** `prefix` runs vmm through another command, e.g. `ip netns exec NS` (which execs it: same pid). */
  constructor(args: string[], options: { prefix?: string[] } = {}) {
    const argv = [...(options.prefix ?? []), process.execPath, VMM, ...args];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: 'pipe' });
    this.child.stdout.on('data', (b: Buffer) => {
      this.stdout += b.toString('latin1');
      this.check();
    });
    this.child.stderr.on('data', (b: Buffer) => (this.stderr += b.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, signal) => resolve({ code, signal })));
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const m = this.stdout.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** Resolves when stdout matches `re`; rejects after `ms` with what was printed. */
  waitFor(re: RegExp, ms = 20000): Promise<RegExpMatchArray> {
    const m = this.stdout.match(re);
    if (m) return Promise.resolve(m);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stdout: ${JSON.stringify(this.stdout)} stderr: ${JSON.stringify(this.stderr)}`)), ms);
      this.waiters.push({ re, resolve: (mm) => { clearTimeout(timer); resolve(mm); } });
    });
  }

  write(text: string): void {
    this.child.stdin.write(text);
  }

  /** Waits for exit, killing the process after `ms`. */
  async finish(ms = 30000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Runs vmm to completion and returns its status and output. */
export async function runVmm(args: string[], ms = 30000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const p = new VmmProcess(args);
  p.child.stdin.end();
  const { code } = await p.finish(ms);
  return { code, stdout: p.stdout, stderr: p.stderr };
}
