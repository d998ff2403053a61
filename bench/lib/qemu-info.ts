/**
 * Which firmware QEMU's microvm uses to boot our PVH ELF: QEMU is started paused (-S) with a
 * monitor socket and asked `info roms`; then `quit`.
 */
import { connect } from 'node:net';
import { mkdirSync, rmSync } from 'node:fs';
import { resolve } from 'node:path';
import { command, ROOT } from './machines.js';
import { Running } from './proc.js';
import { sleep } from './stats.js';

export interface QemuFirmware {
  /** ROM and firmware images QEMU loaded (not the guest's own segments) */
  roms: string[];
  raw: string;
}

function monitor(path: string, commands: string[]): Promise<string> {
  return new Promise((resolveText, reject) => {
    const sock = connect(path);
    let text = '';
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => (text += d));
    sock.on('error', reject);
    sock.on('close', () => resolveText(text));
    sock.on('connect', () => {
      sock.write(commands.map((c) => `${c}\n`).join(''));
    });
  });
}

export async function qemuFirmware(): Promise<QemuFirmware> {
  const dir = resolve(ROOT, 'bench/out');
  mkdirSync(dir, { recursive: true });
  const sockPath = resolve(dir, `qemu-monitor-${process.pid}.sock`);
  rmSync(sockPath, { force: true });
  const base = command('qemu', { guest: 'hello.elf', memMiB: 64 });
  // Same machine, paused, with a monitor on a socket instead of the serial console on stdio.
  const args = base.args
    .filter((a, i, all) => !(a === '-nographic' || a === '-serial' || all[i - 1] === '-serial'))
    .concat(['-display', 'none', '-S', '-monitor', `unix:${sockPath},server=on,wait=off`]);
  const q = await Running.start({ cmd: base.cmd, args });
  try {
    for (let i = 0; i < 50; i++) {
      try {
        // `quit` makes QEMU close the socket, which ends the read.
        const raw = await monitor(sockPath, ['info roms', 'quit']);
        // The monitor echoes typed characters with terminal escapes; keep the answer lines.
        const lines = raw.split(/\r?\n/).filter((l) => /^(fw=|addr=|\/rom@)/.test(l));
        const roms = lines.filter((l) => !/ELF program header/.test(l)).map((l) => /name="([^"]+)"/.exec(l)?.[1] ?? l);
        return { roms, raw: lines.join('\n') };
      } catch {
        await sleep(100);
      }
    }
    throw new Error('QEMU monitor socket never answered');
  } finally {
    await q.end();
    rmSync(sockPath, { force: true });
  }
}
