/**
 * Memory: each VMM runs echo.elf with 256 MiB of RAM. The guest prints "echo: ready" and
 * then waits for serial input (spinning at CPL3 — it cannot `hlt` there — and checking the
 * UART now and then). One second after that line the bench reads the VMM process's RSS and
 * PSS and how much of guest RAM the host has allocated, then types 'q' and the guest exits.
 * A bare idle `node` is measured the same way, as the floor any Node process starts from.
 *
 * PSS divides shared file pages between the processes that map them, so it depends on what
 * else runs on the machine: this bench is itself a node process, so node's binary already
 * counts half in the vmm's PSS (as it would beside the daemon). RssAnon − guest RAM touched
 * is the VMM's own private memory, which no neighbour changes.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { command, GUESTS, VMMS, type VmmName } from './lib/machines.js';
import { Running, show, type Command } from './lib/proc.js';
import { guestRam, procMemory, type ProcMemory } from './lib/procmem.js';
import { contention, cpuSnapshot } from './lib/host.js';
import { rotate, round, sleep, summarize, type Summary } from './lib/stats.js';

const MEM_MIB = 256;
const ECHO = { guest: 'echo.elf', memMiB: MEM_MIB };
const READY = /echo: ready/;
const NODE_IDLE: Command = {
  cmd: process.execPath,
  args: ['-e', "process.stdout.write('echo: ready\\n'); setInterval(() => {}, 1 << 30)"],
};

type Who = VmmName | 'node';

export interface MemoryRun extends Partial<ProcMemory> {
  round: number;
  who: Who;
  guestTouchedKiB: number | null;
  guestBase?: string;
  guestMapping?: string;
  error?: string;
}

export interface MemoryRow {
  rssMiB: Summary | null;
  pssMiB: Summary | null;
  guestTouchedMiB: Summary | null;
  rssMinusGuestMiB: Summary | null;
  pssMinusGuestMiB: Summary | null;
  /** private anonymous memory of the VMM itself: RssAnon − guest RAM touched (no sharing) */
  anonMinusGuestMiB: Summary | null;
  rssAnonMiB: Summary | null;
  rssFileMiB: Summary | null;
  threads: number | null;
}

export interface MemoryResults {
  guestMiB: number;
  settleMs: number;
  runs: MemoryRun[];
  rows: Record<Who, MemoryRow>;
  ratios: { vmmOverQemu: { rssMinusGuest: number; pssMinusGuest: number; anonMinusGuest: number } };
  contention: { otherCpus: number; stealCpus: number };
  commands: Record<Who, string>;
}

async function measure(who: Who, roundNo: number, settleMs: number, kernel: Buffer): Promise<MemoryRun> {
  const cmd = who === 'node' ? NODE_IDLE : command(who, ECHO);
  const p = await Running.start(cmd);
  const r: MemoryRun = { round: roundNo, who, guestTouchedKiB: null };
  try {
    await p.waitFor(READY, 60_000);
    await sleep(settleMs);
    Object.assign(r, procMemory(p.pid));
    if (who !== 'node') {
      const g = guestRam(p.pid, MEM_MIB * 1024 * 1024, kernel);
      if (g) {
        r.guestTouchedKiB = g.touchedKiB;
        r.guestBase = g.base;
        r.guestMapping = g.mapping;
      } else {
        r.error = 'guest RAM mapping not found';
      }
    }
  } catch (err) {
    r.error = `${(err as Error).message}; stdout ${JSON.stringify(p.stdout.slice(-200))}; stderr ${JSON.stringify(p.stderr.slice(-200))}`;
  } finally {
    // vmm and QEMU pass 'q' to the guest, which exits; kvmrun takes no console input.
    await p.end(who === 'vmm' || who === 'qemu' ? () => p.write('q') : undefined);
  }
  return r;
}

const mib = (kib: number) => round(kib / 1024, 1);

export async function benchMemory(opts: { rounds: number; settleMs: number; log: (s: string) => void }): Promise<MemoryResults> {
  const kernel = readFileSync(resolve(GUESTS, ECHO.guest));
  const everyone: Who[] = [...VMMS, 'node'];
  const runs: MemoryRun[] = [];
  const before = cpuSnapshot();
  for (let i = 1; i <= opts.rounds; i++) {
    for (const who of rotate(everyone, i - 1)) {
      const r = await measure(who, i, opts.settleMs, kernel);
      runs.push(r);
      opts.log(
        `  round ${i} ${who.padEnd(4)} rss ${r.vmRssKiB ? mib(r.vmRssKiB) : '—'} MiB  pss ${r.pssKiB ? mib(r.pssKiB) : '—'} MiB  guest touched ${r.guestTouchedKiB === null ? '—' : mib(r.guestTouchedKiB)} MiB${r.error ? `  ERROR ${r.error}` : ''}`,
      );
    }
  }
  const after = cpuSnapshot();

  const row = (who: Who): MemoryRow => {
    const ok = runs.filter((r) => r.who === who && !r.error && r.vmRssKiB !== undefined);
    const g = (r: MemoryRun) => r.guestTouchedKiB ?? 0;
    const s = (f: (r: MemoryRun) => number) => summarize(ok.map((r) => mib(f(r))));
    return {
      rssMiB: s((r) => r.vmRssKiB!),
      pssMiB: s((r) => r.pssKiB!),
      guestTouchedMiB: who === 'node' ? null : s(g),
      rssMinusGuestMiB: s((r) => r.vmRssKiB! - g(r)),
      pssMinusGuestMiB: s((r) => r.pssKiB! - g(r)),
      anonMinusGuestMiB: s((r) => r.rssAnonKiB! - g(r)),
      rssAnonMiB: s((r) => r.rssAnonKiB!),
      rssFileMiB: s((r) => r.rssFileKiB!),
      threads: ok[0]?.threads ?? null,
    };
  };
  const rows = Object.fromEntries(everyone.map((w) => [w, row(w)])) as Record<Who, MemoryRow>;
  const ratio = (a: Summary | null, b: Summary | null) => (a && b ? round(a.median / b.median, 2) : NaN);
  return {
    guestMiB: MEM_MIB,
    settleMs: opts.settleMs,
    runs,
    rows,
    ratios: {
      vmmOverQemu: {
        rssMinusGuest: ratio(rows.vmm.rssMinusGuestMiB, rows.qemu.rssMinusGuestMiB),
        pssMinusGuest: ratio(rows.vmm.pssMinusGuestMiB, rows.qemu.pssMinusGuestMiB),
        anonMinusGuest: ratio(rows.vmm.anonMinusGuestMiB, rows.qemu.anonMinusGuestMiB),
      },
    },
    contention: contention(before, after),
    commands: {
      ...(Object.fromEntries(VMMS.map((v) => [v, show(command(v, ECHO))])) as Record<VmmName, string>),
      node: show(NODE_IDLE),
    },
  };
}
