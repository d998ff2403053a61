/** What machine the numbers come from, and its TSC frequency. */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { resolve } from 'node:path';
import { QEMU, ROOT } from './machines.js';
import { median } from './stats.js';

export const TSC_HZ_TOOL = resolve(ROOT, 'bench/out/tsc-hz');

export interface HostInfo {
  cpu: string;
  cores: number;
  kernel: string;
  /** the module behind /dev/kvm */
  kvm: string;
  node: string;
  qemu: string;
}

function kvmModule(): string {
  for (const m of ['kvm_pvm', 'kvm_intel', 'kvm_amd']) if (existsSync(`/sys/module/${m}`)) return m;
  return 'unknown';
}

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n')[0]!.trim();
  } catch {
    return 'unavailable';
  }
}

export function hostInfo(): HostInfo {
  return {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    kernel: release(),
    kvm: kvmModule(),
    node: process.version,
    qemu: firstLine(QEMU, ['--version']),
  };
}

export function load(): number[] {
  return loadavg().map((x) => Math.round(x * 100) / 100);
}

export interface TscFrequency {
  hz: number;
  method: string;
  /** each calibration sample, Hz */
  samples: number[];
  /** what the kernel said at boot ("tsc: Detected ... MHz"), for comparison */
  kernelHz: number | null;
}

function kernelTscHz(): number | null {
  try {
    const log = execFileSync('dmesg', { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    const m = /tsc: Detected ([\d.]+) MHz/.exec(log);
    return m ? Math.round(Number(m[1]) * 1e6) : null;
  } catch {
    return null;
  }
}

/**
 * The TSC frequency, measured: bench/out/tsc-hz brackets 200 ms sleeps with rdtsc and
 * CLOCK_MONOTONIC_RAW (7 samples, median). The guests read the same TSC (rdtsc runs natively
 * at CPL3 and KVM only offsets it unless a TSC frequency is set, which none of the VMMs does).
 */
export function tscFrequency(): TscFrequency {
  const out = execFileSync(TSC_HZ_TOOL, ['7', '200'], { encoding: 'utf8' });
  const samples = out.trim().split('\n').map(Number);
  return {
    hz: median(samples),
    method: 'rdtsc vs CLOCK_MONOTONIC_RAW over 7 × 200 ms (bench/tools/tsc-hz.c), median',
    samples,
    kernelHz: kernelTscHz(),
  };
}

export interface CpuSnapshot {
  atMs: number;
  /** busy ticks of the whole machine (all CPUs), from /proc/stat */
  busy: number;
  /** ticks the hypervisor ran something else while this machine wanted its CPUs */
  steal: number;
  /** ticks of this process and of the children it has reaped */
  ours: number;
}

const TICK = 100; // USER_HZ: /proc tick unit on Linux x86

export function cpuSnapshot(): CpuSnapshot {
  const cpu = readText('/proc/stat')!.split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = cpu as [number, number, number, number, number, number, number, number];
  const self = readText('/proc/self/stat')!;
  const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number);
  // fields 14-17 (utime, stime, cutime, cstime) are at 11-14 after "pid (comm) "
  const ours = f[11]! + f[12]! + f[13]! + f[14]!;
  return { atMs: performance.now(), busy: user + nice + system + irq + softirq + steal, steal, ours };
}

/**
 * How busy the machine was with work other than this bench between two snapshots, in CPUs
 * (0 = nothing else ran, 1 = one core's worth of other work), and the hypervisor's steal.
 */
export function contention(a: CpuSnapshot, b: CpuSnapshot): { otherCpus: number; stealCpus: number } {
  const seconds = (b.atMs - a.atMs) / 1000;
  const per = (ticks: number) => Math.round((ticks / TICK / seconds) * 100) / 100;
  return { otherCpus: Math.max(0, per(b.busy - b.steal - (a.busy - a.steal) - (b.ours - a.ours))), stealCpus: per(b.steal - a.steal) };
}

export function readText(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
