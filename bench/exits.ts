/**
 * Exit cost: exitstorm.elf does N `out` to port 0x80, then N 32-bit MMIO writes to an
 * unbacked address (0xD0000000), timing each loop with rdtsc at CPL3. Each is a full trip
 * guest → KVM → the VMM's userspace → KVM → guest. Under every VMM here the port and the
 * address are served without a device: vmm's vCPU thread (POST-code device / unclaimed MMIO
 * counter), kvmrun's switch, QEMU's memory dispatch.
 */
import { command, guestExitCode, VMMS, type VmmName } from './lib/machines.js';
import { failure, run, show } from './lib/proc.js';
import { contention, cpuSnapshot } from './lib/host.js';
import { rotate, round, summarize, type Summary } from './lib/stats.js';

const STORM = /storm: (pio|mmio) n=(\d+) tsc=(\d+)/g;

export interface ExitRun {
  round: number;
  vmm: VmmName;
  pioTsc: number | null;
  mmioTsc: number | null;
  /** µs per exit, from the guest's TSC deltas */
  pioUs: number | null;
  mmioUs: number | null;
  /** process start → exit, and the part of it the guest's loops did not cover */
  wallMs: number;
  outsideLoopsMs: number | null;
  guestExit: number | null;
  /** CPUs other processes kept busy during this run (see lib/host.ts) */
  otherCpus: number;
  error?: string;
}

export interface ExitResults {
  n: number;
  rounds: number;
  runs: ExitRun[];
  /** µs per exit over the rounds */
  perExitUs: Record<VmmName, { pio: Summary | null; mmio: Summary | null }>;
  /** ratios of medians */
  ratios: { vmmOverC: { pio: number; mmio: number }; vmmOverQemu: { pio: number; mmio: number } };
  contention: { otherCpus: number; stealCpus: number };
  commands: Record<VmmName, string>;
}

function parseStorm(stdout: string): { pio?: [number, number]; mmio?: [number, number] } {
  const r: { pio?: [number, number]; mmio?: [number, number] } = {};
  for (const m of stdout.matchAll(STORM)) r[m[1] as 'pio' | 'mmio'] = [Number(m[2]), Number(m[3])];
  return r;
}

async function storm(vmm: VmmName, n: number, tscHz: number, roundNo: number): Promise<ExitRun> {
  const cmd = command(vmm, { guest: 'exitstorm.elf', memMiB: 64, cmdline: `n=${n}` });
  const before = cpuSnapshot();
  const res = await run(cmd, 600_000);
  const { otherCpus } = contention(before, cpuSnapshot());
  const s = parseStorm(res.stdout);
  const us = (x?: [number, number]) => (x && x[0] === n ? (x[1] / n / tscHz) * 1e6 : null);
  const pioUs = us(s.pio);
  const mmioUs = us(s.mmio);
  const guestMs = s.pio && s.mmio ? ((s.pio[1] + s.mmio[1]) / tscHz) * 1e3 : null;
  const r: ExitRun = {
    round: roundNo,
    vmm,
    pioTsc: s.pio?.[1] ?? null,
    mmioTsc: s.mmio?.[1] ?? null,
    pioUs: pioUs === null ? null : round(pioUs, 4),
    mmioUs: mmioUs === null ? null : round(mmioUs, 4),
    wallMs: round(res.exitMs, 1),
    outsideLoopsMs: guestMs === null ? null : round(res.exitMs - guestMs, 1),
    guestExit: guestExitCode(vmm, res.status),
    otherCpus,
  };
  if (pioUs === null || mmioUs === null || r.guestExit !== 0) {
    r.error = failure(res, 300);
  }
  return r;
}

/**
 * Picks N so that the fastest loop (normally the C floor's) takes about `targetSeconds`:
 * a short kvmrun run measures the current per-exit cost.
 */
export async function chooseN(tscHz: number, targetSeconds: number): Promise<number> {
  const probe = await storm('c', 3000, tscHz, 0);
  const fastest = Math.min(probe.pioUs ?? Infinity, probe.mmioUs ?? Infinity);
  if (!Number.isFinite(fastest)) throw new Error(`exitstorm probe under kvmrun failed: ${probe.error}`);
  return Math.max(10_000, Math.ceil((targetSeconds * 1e6) / fastest / 1000) * 1000);
}

export async function benchExits(opts: {
  n: number;
  rounds: number;
  tscHz: number;
  log: (s: string) => void;
}): Promise<ExitResults> {
  const runs: ExitRun[] = [];
  const before = cpuSnapshot();
  for (let i = 1; i <= opts.rounds; i++) {
    for (const vmm of rotate(VMMS, i - 1)) {
      const r = await storm(vmm, opts.n, opts.tscHz, i);
      runs.push(r);
      opts.log(
        `  round ${i} ${vmm.padEnd(4)} pio ${r.pioUs?.toFixed(2) ?? '—'} µs  mmio ${r.mmioUs?.toFixed(2) ?? '—'} µs  (${(r.wallMs / 1000).toFixed(1)} s, others busy ${r.otherCpus.toFixed(2)} CPUs)${r.error ? `  ERROR ${r.error}` : ''}`,
      );
    }
  }
  const after = cpuSnapshot();

  const ok = (vmm: VmmName) => runs.filter((r) => r.vmm === vmm && !r.error);
  const perExitUs = Object.fromEntries(
    VMMS.map((vmm) => [
      vmm,
      {
        pio: summarize(ok(vmm).map((r) => r.pioUs!)),
        mmio: summarize(ok(vmm).map((r) => r.mmioUs!)),
      },
    ]),
  ) as ExitResults['perExitUs'];
  const ratio = (a: Summary | null, b: Summary | null) => (a && b ? round(a.median / b.median, 3) : NaN);
  return {
    n: opts.n,
    rounds: opts.rounds,
    runs,
    perExitUs,
    ratios: {
      vmmOverC: { pio: ratio(perExitUs.vmm.pio, perExitUs.c.pio), mmio: ratio(perExitUs.vmm.mmio, perExitUs.c.mmio) },
      vmmOverQemu: {
        pio: ratio(perExitUs.vmm.pio, perExitUs.qemu.pio),
        mmio: ratio(perExitUs.vmm.mmio, perExitUs.qemu.mmio),
      },
    },
    contention: contention(before, after),
    commands: Object.fromEntries(
      VMMS.map((vmm) => [vmm, show(command(vmm, { guest: 'exitstorm.elf', memMiB: 64, cmdline: `n=${opts.n}` }))]),
    ) as Record<VmmName, string>,
  };
}
