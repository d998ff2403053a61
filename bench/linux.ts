/**
 * Linux boot: the default guest (Debian's cloud kernel + the vmctl initramfs, 512 MiB, one
 * vCPU) from spawn to its VMCTL-GUEST-READY marker on the serial console, vmm against QEMU
 * microvm with the same kernel, initramfs and command line. Both run where a real KVM is —
 * inside the KVM rig on a PVM host, in the same rig boot — so the ratio compares like with
 * like even though the rig's software-emulated CPU makes absolute times long.
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './lib/machines.js';
import { round, summarize, type Summary } from './lib/stats.js';
import { rigNeeded, runInKvm } from '../test/rig/rig.js';

type Who = 'vmm' | 'qemu';

export interface LinuxBootResults {
  where: 'rig' | 'direct';
  kernelRelease: string;
  runs: { who: Who; round: number; ms: number | null; error?: string }[];
  markerMs: Record<Who, Summary | null>;
  ratioVmmOverQemu: number;
}

function assets(): Record<string, string> {
  const out = execFileSync('bash', [join(ROOT, 'scripts/guest-assets.sh'), '--quiet'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

export async function benchLinux(opts: { rounds: number; log: (s: string) => void }): Promise<LinuxBootResults> {
  const a = assets();
  const where = rigNeeded() ? 'rig' : 'direct';
  opts.log(`  ${where === 'rig' ? 'in the KVM rig (this /dev/kvm cannot boot Linux)' : 'directly on /dev/kvm'}, kernel ${a.GUEST_KERNEL_RELEASE}`);
  const res = await runInKvm(['bash', join(ROOT, 'bench/tools/linux-boot.sh'), a.GUEST_KERNEL!, a.GUEST_INITRD!, String(opts.rounds)], {
    timeoutMs: 120_000 + opts.rounds * 2 * 270_000,
  });
  if (res.code !== 0) throw new Error(`linux boot bench: status ${res.code}; ${res.stderr.slice(-500)}`);
  const runs: LinuxBootResults['runs'] = [];
  for (const line of res.stdout.split('\n')) {
    const m = /^BOOT (vmm|qemu) (\d+) (\d+|fail)(.*)$/.exec(line.trim());
    if (!m) continue;
    const run = { who: m[1] as Who, round: Number(m[2]), ms: m[3] === 'fail' ? null : Number(m[3]) };
    runs.push(m[3] === 'fail' ? { ...run, error: m[4]!.trim() } : run);
    opts.log(`  round ${run.round}: ${run.who} ${run.ms === null ? `FAILED ${m[4]!.trim()}` : `${run.ms} ms`}`);
  }
  const ok = (who: Who) => runs.filter((r) => r.who === who && r.ms !== null).map((r) => r.ms!);
  const markerMs = { vmm: summarize(ok('vmm')), qemu: summarize(ok('qemu')) };
  const ratio = markerMs.vmm && markerMs.qemu ? round(markerMs.vmm.median / markerMs.qemu.median, 3) : NaN;
  return { where, kernelRelease: a.GUEST_KERNEL_RELEASE!, runs, markerMs, ratioVmmOverQemu: ratio };
}

export function linuxTable(r: LinuxBootResults): string {
  const cell = (s: Summary | null) => (s ? `${(s.median / 1000).toFixed(2)} s (${(s.min / 1000).toFixed(2)}–${(s.max / 1000).toFixed(2)})` : 'n/a');
  const n = r.markerMs.vmm?.n ?? 0;
  return [
    `Linux boot — ${r.kernelRelease} + vmctl initramfs, 512 MiB, 1 vCPU, ${n} runs each${r.where === 'rig' ? ', inside the KVM rig' : ''}; spawn → VMCTL-GUEST-READY, median (min–max)`,
    `  vmm                ${cell(r.markerMs.vmm)}`,
    `  QEMU microvm       ${cell(r.markerMs.qemu)}`,
    `  vmm / QEMU         ${Number.isFinite(r.ratioVmmOverQemu) ? `${r.ratioVmmOverQemu.toFixed(2)}×` : 'n/a'}`,
  ].join('\n');
}
