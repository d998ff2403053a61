/**
 * What vmctl prints: tables and key/value blocks for people, JSON for scripts
 * (`--output json`), names one per line (`--output name`).
 */
import { Option } from 'commander';
import type { components } from './api/schema.js';

export type Domain = components['schemas']['Domain'];
export type DomainStatus = components['schemas']['DomainStatus'];
export type Event = components['schemas']['Event'];
export type Host = components['schemas']['Host'];

export type OutputFormat = 'table' | 'json' | 'name';

/** `-o, --output` with the formats a command offers. */
export function outputOption(formats: OutputFormat[] = ['table', 'json']): Option {
  return new Option('-o, --output <format>', 'output format').choices(formats).default('table');
}

export interface Out {
  write(text: string): void;
}

export const stdout: Out = { write: (t) => void process.stdout.write(t) };

export function printJson(out: Out, value: unknown): void {
  out.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('   ')
      .trimEnd();
  return [line(head), ...rows.map(line)].join('\n') + '\n';
}

/** `key: value` lines with the values aligned. */
export function keyValues(pairs: [string, string][]): string {
  const w = Math.max(...pairs.map(([k]) => k.length)) + 1;
  return pairs.map(([k, v]) => `${`${k}:`.padEnd(w)}  ${v}`).join('\n') + '\n';
}

export function formatMiB(mib: number): string {
  if (mib >= 1024 && mib % 1024 === 0) return `${mib / 1024} GiB`;
  return `${mib} MiB`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

/** "3d 4h", "5m 2s", "800 ms": how long ago, roughly. */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = Math.floor(ms / 1000);
  const parts: [number, string][] = [
    [Math.floor(s / 86400), 'd'],
    [Math.floor((s % 86400) / 3600), 'h'],
    [Math.floor((s % 3600) / 60), 'm'],
    [s % 60, 's'],
  ];
  const first = parts.findIndex(([n]) => n > 0);
  return parts
    .slice(first, first + 2)
    .filter(([n]) => n > 0)
    .map(([n, u]) => `${n}${u}`)
    .join(' ');
}

export function formatDisk(d: Domain['disks'][number]): string {
  const opts = [d.format, ...(d.readonly ? ['ro'] : []), ...(d.serial ? [`serial=${d.serial}`] : [])];
  return `${d.path} (${opts.join(', ')})`;
}

export function formatNic(n: Domain['nics'][number]): string {
  const mac = n.mac ? ` mac ${n.mac}` : '';
  return n.type === 'bridge' ? `bridge ${n.bridge}${mac}` : `tap ${n.ifname ?? '(created at start)'}${mac}`;
}

/** "running (pid 1234)", "shutoff (poweroff)": a state as one phrase. */
export function formatState(s: Pick<DomainStatus, 'state' | 'reason' | 'pid'>): string {
  const extra = [...(s.pid ? [`pid ${s.pid}`] : []), ...(s.reason && !s.pid ? [s.reason] : [])];
  return extra.length ? `${s.state} (${extra.join(', ')})` : s.state;
}

export function domainsTable(domains: Domain[]): string {
  return table(
    ['NAME', 'STATE', 'VCPUS', 'MEMORY', 'DISKS', 'NICS', 'AUTOSTART'],
    domains.map((d) => [d.name, d.state, String(d.vcpus), formatMiB(d.memory_mib), String(d.disks.length), String(d.nics.length), d.autostart ? 'yes' : 'no']),
  );
}

export function domainDetails(d: Domain, s: DomainStatus, now = Date.now()): string {
  const pairs: [string, string][] = [
    ['name', d.name],
    ['uuid', d.uuid],
    ['state', `${s.state}${s.reason ? ` (${s.reason})` : ''} since ${s.since}`],
  ];
  if (s.pid) pairs.push(['pid', String(s.pid)]);
  if (s.started_at) pairs.push(['uptime', formatDuration(now - Date.parse(s.started_at))]);
  if (s.stats) {
    pairs.push(['worker memory', formatBytes(s.stats.rss_bytes)]);
    if (s.stats.reboots) pairs.push(['reboots', String(s.stats.reboots)]);
  }
  pairs.push(['vcpus', String(d.vcpus)], ['memory', formatMiB(d.memory_mib)], ['kernel', d.boot.kernel]);
  if (d.boot.initrd) pairs.push(['initrd', d.boot.initrd]);
  pairs.push(['cmdline', d.boot.cmdline ?? 'console=ttyS0 (default)']);
  d.disks.forEach((disk, i) => pairs.push([`disk ${i}`, formatDisk(disk)]));
  d.nics.forEach((nic, i) => pairs.push([`nic ${i}`, formatNic(nic)]));
  pairs.push(
    ['serial log', d.serial.log ? 'yes' : 'no'],
    ['display', d.display ? `${d.display.type} (vmctl vnc ${d.name})` : 'none'],
    ['autostart', d.autostart ? 'yes' : 'no'],
    ['on poweroff', d.on_poweroff],
    ['on reboot', d.on_reboot],
    ['on crash', d.on_crash],
    ['created', d.created_at],
    ['updated', d.updated_at],
  );
  return keyValues(pairs);
}

export function formatEvent(e: Event): string {
  const what = e.type === 'state-changed' ? `${e.previous ?? '?'} → ${e.state ?? '?'}` : e.type;
  const why = e.reason ? ` (${e.reason})` : '';
  const detail = e.detail ? `: ${e.detail.split('\n')[0]}` : '';
  return `${e.at}  #${e.id}  ${e.domain}  ${what}${why}${detail}\n`;
}

export function hostDetails(h: Host): string {
  const caps = Object.entries(h.kvm.capabilities);
  const missing = caps.filter(([, ok]) => !ok).map(([c]) => c);
  return keyValues([
    ['hostname', h.hostname],
    ['cpus', String(h.cpus)],
    ['memory', formatBytes(h.memory_bytes)],
    ['kvm', h.kvm.usable ? `usable, API ${h.kvm.api_version}${h.kvm.pvm ? ', kvm_pvm (guest kernel code is emulated)' : ''}` : h.kvm.present ? 'present but not usable' : 'absent'],
    ['kvm modules', h.kvm.modules.join(', ') || 'none'],
    ['max vcpus', h.kvm.max_vcpus === null ? 'unknown' : String(h.kvm.max_vcpus)],
    ['capabilities', `${caps.length - missing.length}/${caps.length}${missing.length ? ` (missing: ${missing.join(', ')})` : ''}`],
    ['vmctl', h.versions.vmctl],
    ['node', h.versions.node],
    ['control protocol', String(h.versions.control_protocol)],
  ]);
}
