/**
 * virtio-blk: virtio-blk.elf's `bench=` mode (test/guests/README.md) under vmm and QEMU, same
 * raw image, same cache mode, same guest, interleaved rounds. The guest keeps `qd` requests of
 * `size` bytes in flight on one queue (polling the used ring, one kick per refill) and times
 * N of them with rdtsc: MB/s and IOPS are computed from that TSC delta, so boot and exit do
 * not count.
 *
 * The image is bench/out/blk.img (256 MiB of pseudo-random bytes, all blocks allocated), read
 * once before the first round so that both VMMs serve it from the host page cache. Cache mode
 * on both: the host page cache, writes are write-back (vmm's raw backend has no O_DIRECT; QEMU
 * `cache=writeback`), FLUSH is fdatasync. After each run the bench fdatasyncs the image so a
 * run's dirty pages are not written back during the next one.
 *
 * QEMU: `-M microvm,pcie=on` (no firmware: the guest places the BARs and finds ECAM from its
 * command line), `-drive ...,format=raw,aio=threads,cache=writeback -device
 * virtio-blk-pci,disable-legacy=on` (lib/machines.ts).
 */
import { closeSync, existsSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { randomFillSync } from 'node:crypto';
import { resolve } from 'node:path';
import { command, guestExitCode, ROOT, type GuestRun } from './lib/machines.js';
import { failure, run, show } from './lib/proc.js';
import { contention, cpuSnapshot } from './lib/host.js';
import { rotate, round, summarize, type Summary } from './lib/stats.js';

export const BLK_IMAGE = resolve(ROOT, 'bench/out/blk.img');
export const BLK_IMAGE_MIB = 256;
const GUEST_MIB = 64;

export type IoVmm = 'vmm' | 'qemu';
const BLK_VMMS: readonly IoVmm[] = ['vmm', 'qemu'];

export interface BlkCase {
  id: string;
  label: string;
  kind: 'seqread' | 'seqwrite' | 'randread' | 'randwrite';
  qd: number;
  size: number;
  /** requests per run: a second or so here, long enough for the vmm's JIT to be warm for most of it */
  n: number;
  /** what the table shows: MB/s for large requests, IOPS for small ones */
  metric: 'mbps' | 'iops';
}

export const BLK_CASES: readonly BlkCase[] = [
  { id: 'seqread', label: '1 MiB sequential read, QD32', kind: 'seqread', qd: 32, size: 1 << 20, n: 4096, metric: 'mbps' },
  { id: 'seqwrite', label: '1 MiB sequential write, QD32', kind: 'seqwrite', qd: 32, size: 1 << 20, n: 2048, metric: 'mbps' },
  { id: 'randread-qd1', label: '4 KiB random read, QD1', kind: 'randread', qd: 1, size: 4096, n: 32768, metric: 'iops' },
  { id: 'randread-qd32', label: '4 KiB random read, QD32', kind: 'randread', qd: 32, size: 4096, n: 131072, metric: 'iops' },
];

export interface BlkRun {
  round: number;
  vmm: IoVmm;
  case: string;
  tsc: number | null;
  mbps: number | null;
  iops: number | null;
  /** queue notifications the guest wrote, and the ones it left out because the device said NO_NOTIFY */
  kicks: number | null;
  kicksSkipped: number | null;
  wallMs: number;
  guestExit: number | null;
  otherCpus: number;
  error?: string;
}

export interface BlkCaseResult {
  mbps: Record<IoVmm, Summary | null>;
  iops: Record<IoVmm, Summary | null>;
  /** vmm / QEMU of the medians: above 1 the vmm is faster */
  ratio: number;
  /**
   * vmm / QEMU round by round (the two runs of a round are back to back, so they share the
   * machine's load more than runs of different rounds do): median (min–max) over the rounds
   */
  pairedRatio: Summary | null;
}

export interface BlkResults {
  image: { path: string; sizeMiB: number; cache: string };
  guestMiB: number;
  rounds: number;
  cases: readonly BlkCase[];
  runs: BlkRun[];
  results: Record<string, BlkCaseResult>;
  contention: { otherCpus: number; stealCpus: number };
  commands: Record<IoVmm, Record<string, string>>;
}

const BENCH_LINE = /blk: bench (\w+) n=(\d+) bytes=(\d+) tsc=(\d+) qd=(\d+) size=(\d+)/;
const QUEUE_LINE = /virtio: queue 0 added=\d+ used=\d+ kicks=(\d+) skipped=(\d+)/;

/** The image: created (pseudo-random, every block written) if missing or of another size. */
function prepareImage(log: (s: string) => void): void {
  const bytes = BLK_IMAGE_MIB * 1024 * 1024;
  if (existsSync(BLK_IMAGE)) {
    const fd = openSync(BLK_IMAGE, 'r');
    const size = fstatSync(fd).size;
    closeSync(fd);
    if (size === bytes) return;
  }
  log(`  creating ${BLK_IMAGE} (${BLK_IMAGE_MIB} MiB)`);
  const fd = openSync(BLK_IMAGE, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20);
    for (let off = 0; off < bytes; off += chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk, 0, chunk.length, off);
    }
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads the whole image, so that both VMMs find it in the host page cache. */
function warmImage(): void {
  const fd = openSync(BLK_IMAGE, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    while (readSync(fd, chunk, 0, chunk.length, null) > 0);
  } finally {
    closeSync(fd);
  }
}

/** Writes a run's dirty pages back now, outside any measurement. */
function syncImage(): void {
  const fd = openSync(BLK_IMAGE, 'r+');
  try {
    fdatasyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function guestRun(c: BlkCase): GuestRun {
  return {
    guest: 'virtio-blk.elf',
    memMiB: GUEST_MIB,
    cmdline: `bench=${c.kind} qd=${c.qd} size=${c.size} n=${c.n}`,
    disk: BLK_IMAGE,
  };
}

async function once(vmm: IoVmm, c: BlkCase, tscHz: number, roundNo: number): Promise<BlkRun> {
  const before = cpuSnapshot();
  const res = await run(command(vmm, guestRun(c)), 120_000);
  const { otherCpus } = contention(before, cpuSnapshot());
  if (c.kind === 'seqwrite' || c.kind === 'randwrite') syncImage();
  const m = BENCH_LINE.exec(res.stdout);
  const q = QUEUE_LINE.exec(res.stdout);
  const tsc = m && Number(m[2]) === c.n ? Number(m[4]) : null;
  const seconds = tsc === null ? null : tsc / tscHz;
  const r: BlkRun = {
    round: roundNo,
    vmm,
    case: c.id,
    tsc,
    mbps: seconds === null ? null : round((c.n * c.size) / seconds / 1e6, 1),
    iops: seconds === null ? null : Math.round(c.n / seconds),
    kicks: q ? Number(q[1]) : null,
    kicksSkipped: q ? Number(q[2]) : null,
    wallMs: round(res.exitMs, 1),
    guestExit: guestExitCode(vmm, res.status),
    otherCpus,
  };
  if (tsc === null || r.guestExit !== 0) {
    r.error = failure(res);
  }
  return r;
}

export async function benchBlk(opts: { rounds: number; tscHz: number; log: (s: string) => void; cases?: readonly BlkCase[] }): Promise<BlkResults> {
  const cases = opts.cases ?? BLK_CASES;
  prepareImage(opts.log);
  warmImage();
  const runs: BlkRun[] = [];
  const before = cpuSnapshot();
  for (let i = 1; i <= opts.rounds; i++) {
    for (const c of cases) {
      for (const vmm of rotate(BLK_VMMS, i - 1)) {
        const r = await once(vmm, c, opts.tscHz, i);
        runs.push(r);
        const value = c.metric === 'mbps' ? `${r.mbps?.toFixed(0) ?? '—'} MB/s` : `${r.iops ?? '—'} IOPS`;
        opts.log(
          `  round ${i} ${c.id.padEnd(13)} ${vmm.padEnd(4)} ${value.padStart(12)}  kicks ${r.kicks ?? '—'} (skipped ${r.kicksSkipped ?? '—'})  (${(r.wallMs / 1000).toFixed(1)} s, others busy ${r.otherCpus.toFixed(2)} CPUs)${r.error ? `  ERROR ${r.error}` : ''}`,
        );
      }
    }
  }
  const after = cpuSnapshot();

  const results: Record<string, BlkCaseResult> = {};
  for (const c of cases) {
    const ok = (vmm: IoVmm) => runs.filter((r) => r.vmm === vmm && r.case === c.id && !r.error);
    const mbps = Object.fromEntries(BLK_VMMS.map((v) => [v, summarize(ok(v).map((r) => r.mbps!))])) as Record<IoVmm, Summary | null>;
    const iops = Object.fromEntries(BLK_VMMS.map((v) => [v, summarize(ok(v).map((r) => r.iops!))])) as Record<IoVmm, Summary | null>;
    const pick = c.metric === 'mbps' ? mbps : iops;
    const value = (r: BlkRun | undefined) => (r === undefined || r.error ? null : c.metric === 'mbps' ? r.mbps : r.iops);
    const paired: number[] = [];
    for (let i = 1; i <= opts.rounds; i++) {
      const v = value(runs.find((r) => r.round === i && r.case === c.id && r.vmm === 'vmm'));
      const q = value(runs.find((r) => r.round === i && r.case === c.id && r.vmm === 'qemu'));
      if (v !== null && q !== null && q > 0) paired.push(round(v / q, 3));
    }
    results[c.id] = { mbps, iops, ratio: pick.vmm && pick.qemu ? round(pick.vmm.median / pick.qemu.median, 3) : NaN, pairedRatio: summarize(paired) };
  }
  return {
    image: {
      path: BLK_IMAGE,
      sizeMiB: BLK_IMAGE_MIB,
      cache: 'host page cache, write-back, on both (vmm raw backend: no O_DIRECT; QEMU cache=writeback); image read into the page cache first, fdatasync after each write run',
    },
    guestMiB: GUEST_MIB,
    rounds: opts.rounds,
    cases,
    runs,
    results,
    contention: contention(before, after),
    commands: Object.fromEntries(
      BLK_VMMS.map((v) => [v, Object.fromEntries(cases.map((c) => [c.id, show(command(v, guestRun(c)))]))]),
    ) as Record<IoVmm, Record<string, string>>,
  };
}
