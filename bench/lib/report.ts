/** The human-readable table. */
import type { ExitResults } from '../exits.js';
import type { StartupResults } from '../startup.js';
import type { MemoryResults } from '../memory.js';
import type { BlkResults } from '../blk.js';
import type { NetResults, NetVmm } from '../net.js';
import { LABEL, VMMS, type VmmName } from './machines.js';
import type { Summary } from './stats.js';

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => '  ' + cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('   ');
  return [line(head), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].join('\n');
}

/** "12.3 (11.9–13.0)": median and range over the runs. */
function cell(s: Summary | null, digits: number): string {
  if (!s) return 'n/a';
  return `${s.median.toFixed(digits)} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** "1.02× (0.91–1.10)": the median and range of per-round ratios. */
function pairedCell(s: Summary | null): string {
  return s ? `${s.median.toFixed(2)}× (${s.min.toFixed(2)}–${s.max.toFixed(2)})` : 'n/a';
}

function times(x: number): string {
  return Number.isFinite(x) ? `${x.toFixed(2)}×` : 'n/a';
}

function noise(c: { otherCpus: number; stealCpus: number }): string {
  return `other work on the machine meanwhile: ${c.otherCpus.toFixed(2)} CPUs busy, steal ${c.stealCpus.toFixed(2)} CPUs`;
}

export function exitsTable(e: ExitResults, tscMHz: number): string {
  const rows = VMMS.map((v: VmmName) => [LABEL[v], cell(e.perExitUs[v].pio, 2), cell(e.perExitUs[v].mmio, 2)]);
  rows.push(['vmm / C', times(e.ratios.vmmOverC.pio), times(e.ratios.vmmOverC.mmio)]);
  rows.push(['vmm / QEMU', times(e.ratios.vmmOverQemu.pio), times(e.ratios.vmmOverQemu.mmio)]);
  return [
    `Exit cost — exitstorm.elf, n=${e.n} per loop, ${e.rounds} interleaved rounds; µs per exit, median (min–max); TSC ${tscMHz.toFixed(2)} MHz`,
    table(['', 'PIO out 0x80', 'MMIO write 0xD0000000'], rows),
    `  ${noise(e.contention)}`,
  ].join('\n');
}

export function startupTable(s: StartupResults): string {
  const rows = VMMS.map((v: VmmName) => [LABEL[v], cell(s.firstByteMs[v], 1), cell(s.exitMs[v], 1)]);
  rows.push(['node -e 0 (reference)', '', cell(s.exitMs.node, 1)]);
  rows.push(['vmm / QEMU', times(s.ratios.vmmOverQemu.firstByte), times(s.ratios.vmmOverQemu.exit)]);
  rows.push(['vmm / C', times(s.ratios.vmmOverC.firstByte), times(s.ratios.vmmOverC.exit)]);
  const n = s.exitMs.vmm?.n ?? 0;
  return [
    `Startup — hello.elf, 64 MiB, ${n} runs each; ms from spawn(), median (min–max)`,
    table(['', 'first serial byte', 'process exit'], rows),
    `  ${noise(s.contention)}`,
  ].join('\n');
}

export function memoryTable(m: MemoryResults): string {
  const who = [...VMMS, 'node'] as const;
  const label = (w: (typeof who)[number]) => (w === 'node' ? 'bare node (idle, reference)' : LABEL[w]);
  const rows = who.map((w) => {
    const r = m.rows[w];
    return [
      label(w),
      cell(r.rssMiB, 1),
      cell(r.pssMiB, 1),
      r.guestTouchedMiB ? cell(r.guestTouchedMiB, 1) : '—',
      cell(r.rssMinusGuestMiB, 1),
      cell(r.pssMinusGuestMiB, 1),
      cell(r.anonMinusGuestMiB, 1),
      r.threads === null ? '—' : String(r.threads),
    ];
  });
  rows.push(['vmm / QEMU', '', '', '', times(m.ratios.vmmOverQemu.rssMinusGuest), times(m.ratios.vmmOverQemu.pssMinusGuest), times(m.ratios.vmmOverQemu.anonMinusGuest), '']);
  const n = m.rows.vmm.rssMiB?.n ?? 0;
  return [
    `Memory — echo.elf idle, ${m.guestMiB} MiB guest, measured ${m.settleMs} ms after "echo: ready", ${n} runs each; MiB, median (min–max)`,
    table(['', 'RSS', 'PSS', 'guest RAM touched', 'RSS − guest', 'PSS − guest', 'anon − guest', 'threads'], rows),
    `  ${noise(m.contention)}`,
  ].join('\n');
}

export function blkTable(b: BlkResults): string {
  const rows = b.cases.map((c) => {
    const r = b.results[c.id]!;
    const s = c.metric === 'mbps' ? r.mbps : r.iops;
    const unit = c.metric === 'mbps' ? 'MB/s' : 'IOPS';
    return [c.label, unit, cell(s.vmm, 0), cell(s.qemu, 0), times(r.ratio), pairedCell(r.pairedRatio)];
  });
  const n = Math.min(...b.cases.map((c) => (c.metric === 'mbps' ? b.results[c.id]!.mbps : b.results[c.id]!.iops).vmm?.n ?? 0));
  return [
    `virtio-blk — virtio-blk.elf bench, ${b.image.sizeMiB} MiB raw image in the host page cache (write-back on both), ${n} runs each; median (min–max); vmm / QEMU above 1.00× = vmm faster`,
    table(['', '', LABEL.vmm, 'QEMU virtio-blk-pci aio=threads', 'vmm / QEMU', 'round by round'], rows),
    `  ${noise(b.contention)}`,
  ].join('\n');
}

export function netTable(r: NetResults): string {
  const label: Record<NetVmm, string> = { vmm: LABEL.vmm, qemu: 'QEMU vhost=off', 'qemu-vhost': 'QEMU vhost=on' };
  const rows: string[][] = [];
  for (const c of r.cases) {
    const x = r.results[c.id]!;
    rows.push([
      c.label,
      ...r.vmms.map((v) => `${cell(x.pps[v] ?? null, 0)} pps, ${x.mbps[v]?.median.toFixed(0) ?? 'n/a'} MB/s`),
      times(x.ratio),
      pairedCell(x.pairedRatio),
      ...(x.ratioVhost !== undefined ? [times(x.ratioVhost)] : []),
    ]);
  }
  const n = Math.min(...r.cases.map((c) => r.results[c.id]!.pps.vmm?.n ?? 0));
  return [
    `virtio-net — virtio-net.elf bench over a tap in a namespace, ${n} runs each; packets/s median (min–max), MB/s median; vmm / QEMU above 1.00× = vmm faster`,
    table(['', ...r.vmms.map((v) => label[v]), 'vmm / QEMU', 'round by round', ...(r.vmms.includes('qemu-vhost') ? ['vmm / QEMU vhost'] : [])], rows),
    `  vhost-net: ${r.vhostNet}`,
    `  ${noise(r.contention)}`,
  ].join('\n');
}
