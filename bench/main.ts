/**
 * `npm run bench`: vmctl's VMM against the C floor (kvmrun) and QEMU microvm, same guests,
 * same run. Prints a table and writes bench/results/<timestamp>.json and latest.json.
 *
 *   node --import tsx bench/main.ts [--only exits,startup,memory,blk,net,display] [--rounds 5] [--n N]
 *                                   [--startup-runs 10] [--memory-rounds 3]
 *
 * A benchmark, not a test: it measures and reports, and fails only when it cannot measure.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { benchExits, chooseN, type ExitResults } from './exits.js';
import { benchStartup, type StartupResults } from './startup.js';
import { benchMemory, type MemoryResults } from './memory.js';
import { apiTable, benchApi, type ApiResults } from './api.js';
import { benchBlk, type BlkResults } from './blk.js';
import { benchNet, type NetResults } from './net.js';
import { benchDisplay, displayTable, type DisplayResults } from './display.js';
import { benchLinux, linuxTable, type LinuxBootResults } from './linux.js';
import { hostInfo, load, tscFrequency } from './lib/host.js';
import { qemuFirmware, type QemuFirmware } from './lib/qemu-info.js';
import { ROOT } from './lib/machines.js';
import { blkTable, exitsTable, memoryTable, netTable, startupTable } from './lib/report.js';
import { endAll } from './lib/proc.js';

const SECTIONS = ['exits', 'startup', 'memory', 'blk', 'net', 'display', 'linux', 'api'] as const;
type Section = (typeof SECTIONS)[number];

const { values } = parseArgs({
  options: {
    only: { type: 'string', default: SECTIONS.join(',') },
    rounds: { type: 'string', default: '5' },
    n: { type: 'string' },
    'exit-seconds': { type: 'string', default: '1.5' },
    'startup-runs': { type: 'string', default: '10' },
    'memory-rounds': { type: 'string', default: '3' },
    'api-runs': { type: 'string', default: '30' },
    'linux-rounds': { type: 'string', default: '3' },
  },
  strict: true,
});

const only = new Set(values.only!.split(',').map((s) => s.trim()) as Section[]);
for (const s of only) if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section ${s} (${SECTIONS.join(', ')})`);

const log = (s: string) => process.stderr.write(`${s}\n`);

async function main(): Promise<void> {
  const started = new Date();
  const host = hostInfo();
  const loadBefore = load();
  log(`bench: ${host.cpu}, ${host.cores} CPUs, kernel ${host.kernel}, /dev/kvm by ${host.kvm}, node ${host.node}, ${host.qemu}`);
  log(`bench: load average ${loadBefore.join(' ')}`);

  const tsc = tscFrequency();
  log(`bench: TSC ${(tsc.hz / 1e6).toFixed(3)} MHz measured${tsc.kernelHz ? `, kernel says ${(tsc.kernelHz / 1e6).toFixed(3)} MHz` : ''}`);

  let firmware: QemuFirmware | { error: string };
  try {
    firmware = await qemuFirmware();
    log(`bench: QEMU microvm boots the PVH ELF with: ${firmware.roms.join(', ')}`);
  } catch (err) {
    firmware = { error: (err as Error).message };
    log(`bench: could not ask QEMU for its firmware: ${firmware.error}`);
  }

  let exits: ExitResults | undefined;
  let startup: StartupResults | undefined;
  let memory: MemoryResults | undefined;
  let api: ApiResults | undefined;
  let linux: LinuxBootResults | undefined;
  let blk: BlkResults | undefined;
  let net: NetResults | undefined;
  let display: DisplayResults | undefined;

  if (only.has('exits')) {
    const n = values.n ? Number(values.n) : await chooseN(tsc.hz, Number(values['exit-seconds']));
    log(`\nexits: n=${n}, ${values.rounds} rounds of vmm / C / QEMU`);
    exits = await benchExits({ n, rounds: Number(values.rounds), tscHz: tsc.hz, log });
  }
  if (only.has('startup')) {
    log(`\nstartup: ${values['startup-runs']} rounds`);
    startup = await benchStartup({ rounds: Number(values['startup-runs']), log });
  }
  if (only.has('memory')) {
    log(`\nmemory: ${values['memory-rounds']} rounds`);
    memory = await benchMemory({ rounds: Number(values['memory-rounds']), settleMs: 1000, log });
  }
  if (only.has('api')) {
    log(`\napi: ${values['api-runs']} create+start runs, 1,000 domains, autocannon`);
    api = await benchApi({ runs: Number(values['api-runs']), domains: 1000, listRuns: 50, cannonSeconds: 5, log });
  }
  if (only.has('blk')) {
    log(`\nblk: ${values.rounds} rounds of vmm / QEMU`);
    blk = await benchBlk({ rounds: Number(values.rounds), tscHz: tsc.hz, log });
  }
  if (only.has('net')) {
    log(`\nnet: ${values.rounds} rounds of vmm / QEMU`);
    net = await benchNet({ rounds: Number(values.rounds), tscHz: tsc.hz, log });
  }
  if (only.has('display')) {
    log(`\ndisplay: ${values.rounds} rounds of vmm / QEMU`);
    display = await benchDisplay({ rounds: Number(values.rounds), log });
  }
  if (only.has('linux')) {
    log(`\nlinux: ${values['linux-rounds']} rounds of vmm / QEMU microvm`);
    linux = await benchLinux({ rounds: Number(values['linux-rounds']), log });
  }

  const finished = new Date();
  const report = {
    version: 1,
    started: started.toISOString(),
    finished: finished.toISOString(),
    host: { ...host, loadBefore, loadAfter: load() },
    tsc,
    qemuFirmware: firmware,
    ...(exits ? { exits } : {}),
    ...(startup ? { startup } : {}),
    ...(memory ? { memory } : {}),
    ...(api ? { api } : {}),
    ...(linux ? { linux } : {}),
    ...(blk ? { blk } : {}),
    ...(net ? { net } : {}),
    ...(display ? { display } : {}),
  };

  const dir = resolve(ROOT, 'bench/results');
  mkdirSync(dir, { recursive: true });
  const file = resolve(dir, `${started.toISOString().replace(/:/g, '-')}.json`);
  const json = `${JSON.stringify(report, null, 2)}\n`;
  writeFileSync(file, json);
  writeFileSync(resolve(dir, 'latest.json'), json);

  const out: string[] = [
    '',
    `vmctl bench, ${started.toISOString()} — ${host.cpu}, /dev/kvm by ${host.kvm}, ${host.qemu.replace(/^QEMU emulator version /, 'QEMU ')}`,
    `load average ${loadBefore.join(' ')} before, ${report.host.loadAfter.join(' ')} after`,
  ];
  if (exits) out.push('', exitsTable(exits, tsc.hz / 1e6));
  if (startup) out.push('', startupTable(startup));
  if (memory) out.push('', memoryTable(memory));
  if (api) out.push('', apiTable(api));
  if (blk) out.push('', blkTable(blk));
  if (net) out.push('', netTable(net));
  if (display) out.push('', displayTable(display));
  if (linux) out.push('', linuxTable(linux));
  out.push('', `results: ${file}`, '');
  process.stdout.write(out.join('\n'));
}

main().catch((err) => {
  endAll();
  process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
