/**
 * Display: the fb test guest at 1024x768x32 on the bochs display, watched over VNC by the
 * test RFB client (ZRLE in noVNC's pixel format, compression level 6), vmm vs QEMU microvm
 * (`-device bochs-display -vnc unix:...`), same guest, same client, same run.
 *
 *   full   the guest redraws the whole screen without pause (its pattern, shifted a pixel per
 *          frame); the client asks for the next incremental update as soon as one arrives:
 *          frames/s and bytes/frame.
 *   line   the same with one 16-line band rewritten (a line of text changing).
 *   idle   a still screen: the VMM's CPU with no client, then with a client waiting on an
 *          incremental request (what noVNC does all the time). Reported for the whole process
 *          and for its main thread (vmm: the device thread, where VNC runs; QEMU: its main
 *          loop, where its VNC runs). The guest spins at CPL3 meanwhile (it cannot `hlt`
 *          there), so the vCPU thread's 100% is part of the process figure for both.
 *
 * QEMU's VNC server refreshes at most every 30 ms and compares each update with its own copy
 * of the screen; ours answers a request as soon as the dirty log shows a change and sends the
 * dirty pages' lines as they are.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GUESTS, QEMU, QEMU_MICROVM_ECAM, VMM_CLI } from './lib/machines.js';
import { Running, show, type Command } from './lib/proc.js';
import { round, sleep, summarize, type Summary } from './lib/stats.js';
import { RfbClient } from '../test/lib/rfb-client.js';

const WIDTH = 1024;
const HEIGHT = 768;
const MEM_MIB = 64;
const CLK_TCK = 100;

type Who = 'vmm' | 'qemu';
const WHO: readonly Who[] = ['vmm', 'qemu'];
const LABEL: Record<Who, string> = { vmm: 'vmm (vmctl)', qemu: 'QEMU microvm' };

export interface DisplayRun {
  round: number;
  who: Who;
  fullFps?: number;
  fullBytesPerFrame?: number;
  fullCpu?: number;
  lineFps?: number;
  lineBytesPerFrame?: number;
  lineCpu?: number;
  /** CPU (1.0 = one core) with no client: the process, and its main thread */
  idleCpu?: number;
  idleMainCpu?: number;
  /** the same with a client waiting on an incremental request */
  idleClientCpu?: number;
  idleClientMainCpu?: number;
  error?: string;
}

export interface DisplayRow {
  fullFps: Summary | null;
  fullBytesPerFrame: Summary | null;
  fullCpu: Summary | null;
  lineFps: Summary | null;
  lineBytesPerFrame: Summary | null;
  lineCpu: Summary | null;
  idleCpu: Summary | null;
  idleMainCpu: Summary | null;
  idleClientCpu: Summary | null;
  idleClientMainCpu: Summary | null;
}

export interface DisplayResults {
  width: number;
  height: number;
  seconds: number;
  runs: DisplayRun[];
  rows: Record<Who, DisplayRow>;
  commands: Record<Who, string>;
}

function command(who: Who, socket: string, cmdline: string): Command {
  const elf = resolve(GUESTS, 'fb.elf');
  if (who === 'vmm') {
    return {
      cmd: process.execPath,
      args: [VMM_CLI, 'run', '--kernel', elf, '--memory', `${MEM_MIB}M`, '--cmdline', cmdline, '--debug-exit', '--display', `vnc=unix:${socket}`],
    };
  }
  return {
    cmd: QEMU,
    args: [
      '-accel', 'kvm', '-M', 'microvm,pcie=on', '-kernel', elf,
      '-append', `ecam=0x${QEMU_MICROVM_ECAM.toString(16)} ${cmdline}`,
      '-nodefaults', '-no-user-config', '-nographic', '-serial', 'stdio', '-m', `${MEM_MIB}M`,
      '-device', 'isa-debug-exit,iobase=0xf4,iosize=4',
      '-device', 'bochs-display', '-vnc', `unix:${socket}`,
    ],
  };
}

/** CPU seconds used so far by the process and by its main thread. */
function cpuSeconds(pid: number): { process: number; main: number } {
  const ticks = (path: string) => {
    const stat = readFileSync(path, 'utf8');
    // Fields after the parenthesised command name: utime and stime are fields 14 and 15.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  };
  return { process: ticks(`/proc/${pid}/stat`), main: ticks(`/proc/${pid}/task/${pid}/stat`) };
}

async function connect(socket: string): Promise<RfbClient> {
  let lastErr: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      const c = await RfbClient.connect({ path: socket });
      await c.handshake();
      c.setPixelFormat({ bitsPerPixel: 32, depth: 24, bigEndian: false, trueColour: true, redMax: 255, greenMax: 255, blueMax: 255, redShift: 0, greenShift: 8, blueShift: 16 });
      c.setEncodings([16, 0, -223, -256 + 6]);
      return c;
    } catch (err) {
      lastErr = err;
      await sleep(50);
    }
  }
  throw new Error(`cannot connect to ${socket}: ${(lastErr as Error).message}`);
}

/** Until the client has the 1024x768 screen (a first update may still show the old size). */
async function firstFrame(c: RfbClient): Promise<void> {
  c.requestUpdate(false);
  await c.nextUpdate();
  for (let i = 0; i < 10 && (c.width !== WIDTH || c.height !== HEIGHT); i++) {
    c.requestUpdate(false);
    await c.nextUpdate();
  }
  if (c.width !== WIDTH || c.height !== HEIGHT) throw new Error(`the screen is ${c.width}x${c.height}`);
}

async function animated(who: Who, mode: 'full' | 'line', seconds: number): Promise<{ fps: number; bytesPerFrame: number; cpu: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-display-'));
  const socket = join(dir, 'vnc.sock');
  const vm = await Running.start(command(who, socket, `xres=${WIDTH} yres=${HEIGHT} anim=${mode}`));
  try {
    await vm.waitFor(/fb: animating/, 30000);
    const c = await connect(socket);
    await firstFrame(c);
    const cpu0 = cpuSeconds(vm.pid);
    const t0 = performance.now();
    let frames = 0;
    let bytes = 0;
    while (performance.now() - t0 < seconds * 1000) {
      c.requestUpdate(true);
      const u = await c.nextUpdate();
      if (u.rects.some((r) => r.encoding >= 0)) {
        frames++;
        bytes += u.bytes;
      }
    }
    const elapsed = (performance.now() - t0) / 1000;
    const cpu1 = cpuSeconds(vm.pid);
    c.close();
    return { fps: frames / elapsed, bytesPerFrame: frames ? bytes / frames : 0, cpu: (cpu1.process - cpu0.process) / elapsed };
  } finally {
    await vm.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function idle(who: Who, seconds: number): Promise<{ cpu: number; main: number; clientCpu: number; clientMain: number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-display-'));
  const socket = join(dir, 'vnc.sock');
  const vm = await Running.start(command(who, socket, `xres=${WIDTH} yres=${HEIGHT} nokbd`));
  try {
    await vm.waitFor(/fb: idle/, 30000);
    await sleep(1000);
    const a0 = cpuSeconds(vm.pid);
    const t0 = performance.now();
    await sleep(seconds * 1000);
    const a1 = cpuSeconds(vm.pid);
    const e0 = (performance.now() - t0) / 1000;
    const c = await connect(socket);
    await firstFrame(c);
    c.requestUpdate(true);
    await sleep(500);
    const b0 = cpuSeconds(vm.pid);
    const t1 = performance.now();
    await sleep(seconds * 1000);
    const b1 = cpuSeconds(vm.pid);
    const e1 = (performance.now() - t1) / 1000;
    c.close();
    return {
      cpu: (a1.process - a0.process) / e0,
      main: (a1.main - a0.main) / e0,
      clientCpu: (b1.process - b0.process) / e1,
      clientMain: (b1.main - b0.main) / e1,
    };
  } finally {
    await vm.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchDisplay(opts: { rounds: number; seconds?: number; log: (s: string) => void }): Promise<DisplayResults> {
  const seconds = opts.seconds ?? 3;
  const runs: DisplayRun[] = [];
  for (let r = 0; r < opts.rounds; r++) {
    for (const who of r % 2 ? [...WHO].reverse() : WHO) {
      const run: DisplayRun = { round: r, who };
      try {
        const full = await animated(who, 'full', seconds);
        const line = await animated(who, 'line', seconds);
        const still = await idle(who, seconds);
        Object.assign(run, {
          fullFps: round(full.fps, 2),
          fullBytesPerFrame: Math.round(full.bytesPerFrame),
          fullCpu: round(full.cpu),
          lineFps: round(line.fps, 2),
          lineBytesPerFrame: Math.round(line.bytesPerFrame),
          lineCpu: round(line.cpu),
          idleCpu: round(still.cpu),
          idleMainCpu: round(still.main),
          idleClientCpu: round(still.clientCpu),
          idleClientMainCpu: round(still.clientMain),
        });
        opts.log(
          `  round ${r} ${who}: full ${full.fps.toFixed(1)} fps ${Math.round(full.bytesPerFrame)} B/frame; ` +
            `line ${line.fps.toFixed(1)} fps ${Math.round(line.bytesPerFrame)} B/frame; ` +
            `idle main thread ${(still.main * 100).toFixed(1)}% (client waiting: ${(still.clientMain * 100).toFixed(1)}%)`,
        );
      } catch (err) {
        run.error = (err as Error).message;
        opts.log(`  round ${r} ${who}: ${run.error}`);
      }
      runs.push(run);
    }
  }
  const pick = (who: Who, k: keyof DisplayRun) =>
    summarize(runs.filter((x) => x.who === who && typeof x[k] === 'number').map((x) => x[k] as number));
  const row = (who: Who): DisplayRow => ({
    fullFps: pick(who, 'fullFps'),
    fullBytesPerFrame: pick(who, 'fullBytesPerFrame'),
    fullCpu: pick(who, 'fullCpu'),
    lineFps: pick(who, 'lineFps'),
    lineBytesPerFrame: pick(who, 'lineBytesPerFrame'),
    lineCpu: pick(who, 'lineCpu'),
    idleCpu: pick(who, 'idleCpu'),
    idleMainCpu: pick(who, 'idleMainCpu'),
    idleClientCpu: pick(who, 'idleClientCpu'),
    idleClientMainCpu: pick(who, 'idleClientMainCpu'),
  });
  return {
    width: WIDTH,
    height: HEIGHT,
    seconds,
    runs,
    rows: { vmm: row('vmm'), qemu: row('qemu') },
    commands: { vmm: show(command('vmm', '/tmp/vnc.sock', 'anim=full')), qemu: show(command('qemu', '/tmp/vnc.sock', 'anim=full')) },
  };
}

export function displayTable(r: DisplayResults): string {
  const m = (s: Summary | null, f: (x: number) => string) => (s ? f(s.median) : '—');
  const num = (d: number) => (x: number) => x.toFixed(d);
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  const kib = (x: number) => `${(x / 1024).toFixed(1)} KiB`;
  const lines = [
    `display ${r.width}x${r.height}x32 over VNC (ZRLE), medians of ${r.runs.length / 2} rounds, ${r.seconds} s each`,
    `| | full-screen fps | bytes/frame | CPU | one-line fps | bytes/frame | CPU | idle: main thread | with a client waiting | process idle (incl. spinning vCPU) |`,
    `|---|---|---|---|---|---|---|---|---|---|`,
  ];
  for (const who of WHO) {
    const x = r.rows[who];
    lines.push(
      `| ${LABEL[who]} | ${m(x.fullFps, num(1))} | ${m(x.fullBytesPerFrame, kib)} | ${m(x.fullCpu, pct)} | ${m(x.lineFps, num(1))} | ` +
        `${m(x.lineBytesPerFrame, kib)} | ${m(x.lineCpu, pct)} | ${m(x.idleMainCpu, pct)} | ${m(x.idleClientMainCpu, pct)} | ${m(x.idleCpu, pct)} |`,
    );
  }
  return lines.join('\n');
}
