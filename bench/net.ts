/**
 * virtio-net: virtio-net.elf's `bench=tx` and `bench=rx` modes (test/guests/README.md) under
 * vmm and QEMU, over the same tap in a network namespace the bench creates, interleaved
 * rounds. Rates come from the guest's rdtsc deltas.
 *
 * - guest → tap (`bench=tx`): the guest keeps its transmit ring full of S-byte broadcast
 *   frames (EtherType 0x88B5, which the host's stack drops on arrival: nothing answers, no
 *   socket copies them), one kick per refill; T runs from the first submission to the last
 *   completion.
 * - tap → guest (`bench=rx`): bench/tools/udp-flood, inside the namespace, sends UDP datagrams
 *   to the guest with sendmmsg as fast as it can from the guest's "ready" datagram until its
 *   "done" one; the guest counts N frames for its address, T from the first to the N-th.
 *   On this 2-core host the sender, the guest's polling vCPU and the VMM's device thread
 *   share two CPUs, the same for both VMMs; what the sender offered and what was lost is in
 *   the JSON (`offeredPps`).
 *
 * QEMU: `-M microvm,pcie=on`, `-netdev tap,...,vhost=off -device virtio-net-pci,disable-legacy=on`
 * (lib/machines.ts); with /dev/vhost-net present a third row runs QEMU with vhost=on.
 */
import { existsSync } from 'node:fs';
import { command, guestExitCode, type GuestRun, type VmmName } from './lib/machines.js';
import { failure, run, Running, show } from './lib/proc.js';
import { contention, cpuSnapshot } from './lib/host.js';
import { BenchNetns } from './lib/netns.js';
import { tool } from './lib/tools.js';
import { rotate, round, sleep, summarize, type Summary } from './lib/stats.js';

const GUEST_MIB = 64;
const HOST_IP = '10.77.0.1';
const GUEST_IP = '10.77.0.2';
const GUEST_MAC = '52:54:00:12:34:56';
const PORT = 7777;
/** Ethernet + IPv4 + UDP headers: a UDP payload of P bytes is a frame of P + 42 */
const UDP_FRAME_OVERHEAD = 42;

export type NetVmm = 'vmm' | 'qemu' | 'qemu-vhost';

export interface NetCase {
  id: string;
  label: string;
  dir: 'tx' | 'rx';
  /** Ethernet frame bytes (virtio_net_hdr excluded) */
  frame: number;
  /** frames per run: a second or more here, so that the vmm's JIT is warm for most of it */
  n: number;
}

export const NET_CASES: readonly NetCase[] = [
  { id: 'tx-1514', label: 'guest → tap, 1514-byte frames', dir: 'tx', frame: 1514, n: 500_000 },
  { id: 'tx-60', label: 'guest → tap, 60-byte frames', dir: 'tx', frame: 60, n: 500_000 },
  { id: 'rx-1514', label: 'tap → guest, 1514-byte frames', dir: 'rx', frame: 1514, n: 200_000 },
  { id: 'rx-60', label: 'tap → guest, 60-byte frames', dir: 'rx', frame: 60, n: 200_000 },
];

export interface NetRun {
  round: number;
  vmm: NetVmm;
  case: string;
  tsc: number | null;
  pps: number | null;
  mbps: number | null;
  /** rx: datagrams per second the sender pushed at the tap (what the guest did not take was dropped) */
  offeredPps: number | null;
  /** the guest's notifications of the queue measured (VM exits) and the ones it left out (NO_NOTIFY) */
  kicks: number | null;
  kicksSkipped: number | null;
  wallMs: number;
  guestExit: number | null;
  otherCpus: number;
  error?: string;
}

export interface NetCaseResult {
  pps: Partial<Record<NetVmm, Summary | null>>;
  mbps: Partial<Record<NetVmm, Summary | null>>;
  /** vmm / QEMU (vhost=off) of the median packet rates: above 1 the vmm is faster */
  ratio: number;
  /** vmm / QEMU vhost=on, when vhost-net is available */
  ratioVhost?: number;
  /** vmm / QEMU (vhost=off) round by round, median (min–max): the runs of a round are back to back */
  pairedRatio: Summary | null;
}

export interface NetResults {
  rounds: number;
  guestMiB: number;
  cases: readonly NetCase[];
  vmms: NetVmm[];
  vhostNet: string;
  runs: NetRun[];
  results: Record<string, NetCaseResult>;
  contention: { otherCpus: number; stealCpus: number };
  commands: Record<string, Record<string, string>>;
}

const TX_LINE = /net: bench tx n=(\d+) bytes=(\d+) tsc=(\d+) size=(\d+)/;
const RX_LINE = /net: bench rx n=(\d+) bytes=(\d+) tsc=(\d+)/;
const FLOOD_LINE = /udp-flood: sent=(\d+) done=(\d) ms=([\d.]+)/;

function guestRun(c: NetCase, vmm: NetVmm, ns: BenchNetns): GuestRun {
  const cmdline =
    c.dir === 'tx'
      ? `bench=tx n=${c.n} size=${c.frame}`
      : `bench=rx n=${c.n} src=${GUEST_IP} dst=${HOST_IP} dstmac=${ns.tapMac} port=${PORT} sport=${PORT}`;
  return {
    guest: 'virtio-net.elf',
    memMiB: GUEST_MIB,
    cmdline,
    net: { tap: ns.tap, mac: GUEST_MAC, vhost: vmm === 'qemu-vhost' },
    netns: ns.name,
  };
}

function base(vmm: NetVmm): VmmName {
  return vmm === 'vmm' ? 'vmm' : 'qemu';
}

async function once(vmm: NetVmm, c: NetCase, ns: BenchNetns, flood: string, tscHz: number, roundNo: number): Promise<NetRun> {
  const before = cpuSnapshot();
  let sender: Running | undefined;
  if (c.dir === 'rx') {
    sender = await Running.start({
      cmd: 'ip',
      args: ['netns', 'exec', ns.name, flood, HOST_IP, String(PORT), String(c.frame - UDP_FRAME_OVERHEAD), '40'],
    });
    await sender.waitFor(/udp-flood: listening/, 10_000);
  }
  const res = await run(command(base(vmm), guestRun(c, vmm, ns)), 120_000);
  let offeredPps: number | null = null;
  if (sender) {
    // It ends on the guest's "done" datagram; if the guest never sent one, end it now.
    await Promise.race([sender.closed, sleep(3000)]);
    await sender.end(undefined, 2000);
    const f = FLOOD_LINE.exec(sender.stdout);
    if (f && Number(f[3]) > 0) offeredPps = Math.round(Number(f[1]) / (Number(f[3]) / 1000));
  }
  const { otherCpus } = contention(before, cpuSnapshot());
  const m = (c.dir === 'tx' ? TX_LINE : RX_LINE).exec(res.stdout);
  const k = new RegExp(`virtio: queue ${c.dir === 'tx' ? 1 : 0} added=\\d+ used=\\d+ kicks=(\\d+) skipped=(\\d+)`).exec(res.stdout);
  const tsc = m && Number(m[1]) === c.n ? Number(m[3]) : null;
  const seconds = tsc === null ? null : tsc / tscHz;
  const r: NetRun = {
    round: roundNo,
    vmm,
    case: c.id,
    tsc,
    pps: seconds === null ? null : Math.round(c.n / seconds),
    mbps: seconds === null || !m ? null : round(Number(m[2]) / seconds / 1e6, 1),
    offeredPps,
    kicks: k ? Number(k[1]) : null,
    kicksSkipped: k ? Number(k[2]) : null,
    wallMs: round(res.exitMs, 1),
    guestExit: guestExitCode(base(vmm), res.status),
    otherCpus,
  };
  if (tsc === null || r.guestExit !== 0) {
    r.error = `${failure(res)}${sender ? `; sender: ${JSON.stringify(sender.stdout.slice(-200) + sender.stderr.slice(-200))}` : ''}`;
  }
  return r;
}

export async function benchNet(opts: { rounds: number; tscHz: number; log: (s: string) => void; cases?: readonly NetCase[] }): Promise<NetResults> {
  const cases = opts.cases ?? NET_CASES;
  const flood = tool('udp-flood');
  const vhostNet = existsSync('/dev/vhost-net') ? 'available: QEMU also runs with vhost=on' : 'not available on this host (no /dev/vhost-net): QEMU runs with vhost=off only';
  const vmms: NetVmm[] = existsSync('/dev/vhost-net') ? ['vmm', 'qemu', 'qemu-vhost'] : ['vmm', 'qemu'];
  const ns = new BenchNetns({ name: `vmctl-bench-${process.pid}`, tap: `vbt${process.pid}`.slice(0, 15), hostIp: HOST_IP, guestIp: GUEST_IP, guestMac: GUEST_MAC });
  try {
    const runs: NetRun[] = [];
    const before = cpuSnapshot();
    for (let i = 1; i <= opts.rounds; i++) {
      for (const c of cases) {
        for (const vmm of rotate(vmms, i - 1)) {
          const r = await once(vmm, c, ns, flood, opts.tscHz, i);
          runs.push(r);
          opts.log(
            `  round ${i} ${c.id.padEnd(8)} ${vmm.padEnd(10)} ${String(r.pps ?? '—').padStart(7)} pps ${String(r.mbps?.toFixed(0) ?? '—').padStart(5)} MB/s${r.offeredPps !== null ? ` (offered ${r.offeredPps} pps)` : ''}  (${(r.wallMs / 1000).toFixed(1)} s, others busy ${r.otherCpus.toFixed(2)} CPUs)${r.error ? `  ERROR ${r.error}` : ''}`,
          );
        }
      }
    }
    const after = cpuSnapshot();
    const results: Record<string, NetCaseResult> = {};
    for (const c of cases) {
      const ok = (vmm: NetVmm) => runs.filter((r) => r.vmm === vmm && r.case === c.id && !r.error);
      const pps = Object.fromEntries(vmms.map((v) => [v, summarize(ok(v).map((r) => r.pps!))])) as Partial<Record<NetVmm, Summary | null>>;
      const mbps = Object.fromEntries(vmms.map((v) => [v, summarize(ok(v).map((r) => r.mbps!))])) as Partial<Record<NetVmm, Summary | null>>;
      const ratio = (a?: Summary | null, b?: Summary | null) => (a && b ? round(a.median / b.median, 3) : NaN);
      const paired: number[] = [];
      for (let i = 1; i <= opts.rounds; i++) {
        const v = runs.find((r) => r.round === i && r.case === c.id && r.vmm === 'vmm' && !r.error);
        const q = runs.find((r) => r.round === i && r.case === c.id && r.vmm === 'qemu' && !r.error);
        if (v && q && q.pps) paired.push(round(v.pps! / q.pps, 3));
      }
      results[c.id] = {
        pps,
        mbps,
        ratio: ratio(pps.vmm, pps.qemu),
        pairedRatio: summarize(paired),
        ...(vmms.includes('qemu-vhost') ? { ratioVhost: ratio(pps.vmm, pps['qemu-vhost']) } : {}),
      };
    }
    return {
      rounds: opts.rounds,
      guestMiB: GUEST_MIB,
      cases,
      vmms,
      vhostNet,
      runs,
      results,
      contention: contention(before, after),
      commands: Object.fromEntries(
        vmms.map((v) => [v, Object.fromEntries(cases.map((c) => [c.id, show(command(base(v), guestRun(c, v, ns)))]))]),
      ),
    };
  } finally {
    ns.delete();
  }
}
