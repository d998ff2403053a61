/**
 * Startup: hello.elf (prints one line, exits) with 64 MiB of RAM. Times are from just before
 * the bench's spawn() to the first byte on the child's stdout (the guest's serial console)
 * and to the child's exit, as a user at a shell sees them. A bare `node -e 0` is timed in
 * the same rounds: it is the part of vmm's time that Node itself costs before any vmm code.
 */
import { command, guestExitCode, VMMS, type VmmName } from './lib/machines.js';
import { run, show, type Command } from './lib/proc.js';
import { contention, cpuSnapshot } from './lib/host.js';
import { rotate, round, summarize, type Summary } from './lib/stats.js';

const HELLO = { guest: 'hello.elf', memMiB: 64 };
const NODE_BARE: Command = { cmd: process.execPath, args: ['-e', '0'] };

export interface StartupRun {
  round: number;
  who: VmmName | 'node';
  firstByteMs: number | null;
  exitMs: number;
  error?: string;
}

export interface StartupResults {
  runs: StartupRun[];
  firstByteMs: Record<VmmName, Summary | null>;
  exitMs: Record<VmmName | 'node', Summary | null>;
  ratios: { vmmOverQemu: { firstByte: number; exit: number }; vmmOverC: { firstByte: number; exit: number } };
  contention: { otherCpus: number; stealCpus: number };
  commands: Record<VmmName | 'node', string>;
}

export async function benchStartup(opts: { rounds: number; log: (s: string) => void }): Promise<StartupResults> {
  const runs: StartupRun[] = [];
  const before = cpuSnapshot();
  for (let i = 1; i <= opts.rounds; i++) {
    for (const who of rotate([...VMMS, 'node'] as const, i - 1)) {
      const res = await run(who === 'node' ? NODE_BARE : command(who, HELLO), 60_000);
      const r: StartupRun = {
        round: i,
        who,
        firstByteMs: res.firstByteMs === null ? null : round(res.firstByteMs, 2),
        exitMs: round(res.exitMs, 2),
      };
      const code = who === 'node' ? res.status : guestExitCode(who, res.status);
      if (code !== 0 || (who !== 'node' && !res.stdout.includes('Hello from the vmctl test guest'))) {
        r.error = `status ${res.status}; stdout ${JSON.stringify(res.stdout.slice(-200))}; stderr ${JSON.stringify(res.stderr.slice(-200))}`;
      }
      runs.push(r);
    }
    opts.log(
      `  round ${i}: ` +
        runs
          .filter((r) => r.round === i)
          .map((r) => `${r.who} ${r.firstByteMs?.toFixed(0) ?? '—'}/${r.exitMs.toFixed(0)} ms${r.error ? ' ERROR' : ''}`)
          .join(', '),
    );
  }
  const after = cpuSnapshot();

  const ok = (who: VmmName | 'node') => runs.filter((r) => r.who === who && !r.error);
  const firstByteMs = Object.fromEntries(VMMS.map((v) => [v, summarize(ok(v).map((r) => r.firstByteMs!))])) as StartupResults['firstByteMs'];
  const exitMs = Object.fromEntries([...VMMS, 'node'].map((v) => [v, summarize(ok(v as VmmName).map((r) => r.exitMs))])) as StartupResults['exitMs'];
  const ratio = (a: Summary | null, b: Summary | null) => (a && b ? round(a.median / b.median, 2) : NaN);
  return {
    runs,
    firstByteMs,
    exitMs,
    ratios: {
      vmmOverQemu: { firstByte: ratio(firstByteMs.vmm, firstByteMs.qemu), exit: ratio(exitMs.vmm, exitMs.qemu) },
      vmmOverC: { firstByte: ratio(firstByteMs.vmm, firstByteMs.c), exit: ratio(exitMs.vmm, exitMs.c) },
    },
    contention: contention(before, after),
    commands: {
      ...(Object.fromEntries(VMMS.map((v) => [v, show(command(v, HELLO))])) as Record<VmmName, string>),
      node: show(NODE_BARE),
    },
  };
}
