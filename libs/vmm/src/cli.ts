#!/usr/bin/env node
/**
 * `vmm run`: boots one guest with its serial console on this terminal, like `lkvm run`.
 *
 * Exit status:
 *   0    the guest powered off
 *   N    the value the guest wrote to the debug-exit port (with --debug-exit)
 *   124  the guest asked for a reset and --no-reboot was given
 *   125  the VMM failed: bad arguments, unreadable files, KVM refused something
 *   126  the guest crashed (the vCPU could not continue)
 *   130  stopped from the host (Ctrl-A x, SIGINT, SIGTERM)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parseSize } from './memory/layout.js';
import { VmmError } from './errors.js';
import { EXIT_VMM_ERROR } from './exit-codes.js';
import { prewarmVcpuThreads } from './vcpu/spawn.js';
import { parseDiskOption, parseDisplayOption, parseNetOption, type DiskOption, type DisplayOption, type NetOption } from './device-options.js';

const USAGE = `usage: vmm run --kernel FILE [options]

  --kernel FILE      guest kernel: an ELF with a PVH entry note
  --initrd FILE      initial ramdisk
  --cmdline STR      kernel command line (default "console=ttyS0")
  --memory SIZE      guest RAM, e.g. 256M, 2G (default 256M)
  --cpus N           vCPUs (default 1)
  --disk PATH[,ro][,serial=ID]
                     a virtio-blk disk over a raw image (repeatable)
  --net tap=NAME[,mac=52:54:00:12:34:56]
                     a virtio-net device on a tap (created if missing; repeatable)
  --rng              attach a virtio-rng device (entropy from the host)
  --console serial|virtio
                     the console device: the 16550 UART (default) or virtio-console (hvc0)
  --display vnc=HOST:PORT|vnc=:PORT|vnc=unix:PATH[,password-file=FILE]
                     a bochs-display framebuffer (PCI 1234:1111) with PS/2 keyboard and mouse,
                     served over VNC (RFB 3.8: Raw, ZRLE, DesktopSize) on that address
                     (repeatable: one server, several listeners). TCP is loopback unless a
                     password file is given (VNC Authentication; its first line, 8 bytes used)
  --debug-exit       attach the debug-exit port 0xf4: a guest write ends the VMM with that value
  --no-reboot        exit (status 124) when the guest resets instead of rebooting it

Worker mode (how vmctld runs guests):
  --control SOCKET   serve the control protocol on this Unix socket
  --console-socket SOCKET
                     serve the serial console on this Unix socket (with 1 MiB replay)
                     instead of the terminal
  --pid-file FILE    write the worker's pid here while it runs
  --vm-id ID         the domain this worker runs (reported by describe)

On a terminal the console is raw. Ctrl-A then: x quits, p presses the ACPI power button,
d sends Ctrl-Alt-Del, r prints every vCPU's registers on stderr, Ctrl-A sends Ctrl-A.
SIGPWR also presses the power button; SIGUSR1 also prints the registers.
`;

function fail(msg: string): never {
  process.stderr.write(`vmm: ${msg}\n`);
  process.exit(EXIT_VMM_ERROR);
}

interface RunOptions {
  kernel: string;
  rng: boolean;
  disks: DiskOption[];
  nets: NetOption[];
  console: 'serial' | 'virtio';
  displays: DisplayOption[];
  control?: string;
  consoleSocket?: string;
  pidFile?: string;
  vmId: string;
  initrd?: string;
  cmdline: string;
  memory: number;
  cpus: number;
  debugExit: boolean;
  noReboot: boolean;
}

function parse(argv: string[]): RunOptions {
  if (argv[0] !== 'run') {
    if (argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
      process.stdout.write(USAGE);
      process.exit(0);
    }
    fail(`unknown command ${JSON.stringify(argv[0] ?? '')}\n${USAGE}`);
  }
  let values;
  try {
    ({ values } = parseArgs({
      args: argv.slice(1),
      options: {
        kernel: { type: 'string' },
        initrd: { type: 'string' },
        cmdline: { type: 'string', default: 'console=ttyS0' },
        memory: { type: 'string', default: '256M' },
        cpus: { type: 'string', default: '1' },
        'debug-exit': { type: 'boolean', default: false },
        'no-reboot': { type: 'boolean', default: false },
        rng: { type: 'boolean', default: false },
        disk: { type: 'string', multiple: true, default: [] },
        net: { type: 'string', multiple: true, default: [] },
        console: { type: 'string', default: 'serial' },
        display: { type: 'string', multiple: true, default: [] },
        control: { type: 'string' },
        'console-socket': { type: 'string' },
        'pid-file': { type: 'string' },
        'vm-id': { type: 'string', default: '' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  if (!values.kernel) fail(`--kernel is required\n${USAGE}`);
  const memory = parseSize(values.memory!);
  if (memory === undefined) fail(`--memory: cannot read ${JSON.stringify(values.memory)} as a size`);
  if (values.console !== 'serial' && values.console !== 'virtio') fail(`--console: serial or virtio, not ${JSON.stringify(values.console)}`);
  let disks: DiskOption[];
  let nets: NetOption[];
  let displays: DisplayOption[];
  try {
    disks = values.disk!.map(parseDiskOption);
    nets = values.net!.map(parseNetOption);
    displays = values.display!.map(parseDisplayOption);
  } catch (err) {
    fail((err as Error).message);
  }
  const cpus = Number(values.cpus);
  if (!Number.isInteger(cpus)) fail(`--cpus: ${JSON.stringify(values.cpus)} is not a whole number`);
  return {
    kernel: values.kernel,
    ...(values.initrd ? { initrd: values.initrd } : {}),
    cmdline: values.cmdline!,
    memory,
    cpus,
    debugExit: values['debug-exit']!,
    noReboot: values['no-reboot']!,
    rng: values.rng!,
    disks,
    nets,
    console: values.console,
    displays,
    ...(values.control ? { control: values.control } : {}),
    ...(values['console-socket'] ? { consoleSocket: values['console-socket'] } : {}),
    ...(values['pid-file'] ? { pidFile: values['pid-file'] } : {}),
    vmId: values['vm-id']!,
  };
}

function readFile(what: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    fail(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** A VNC password: the file's first line (VNC Authentication uses its first 8 bytes). */
function readPassword(path: string): Uint8Array {
  const line = Buffer.from(readFile('VNC password file', path)).toString('utf8').split(/\r?\n/)[0] ?? '';
  if (line.length === 0) fail(`VNC password file ${path}: the first line is empty`);
  return Buffer.from(line, 'utf8');
}

/** Console input: raw on a terminal, with Ctrl-A as the escape key. */
class ConsoleInput {
  private escape = false;
  private readonly tty = process.stdin.isTTY === true;
  constructor(
    private readonly deliver: (bytes: Uint8Array) => void,
    private readonly commands: { quit: () => void; powerButton: () => void; ctrlAltDel: () => void; registers: () => void },
  ) {
    if (this.tty) process.stdin.setRawMode(true);
    process.stdin.on('data', this.onData);
    process.stdin.on('error', () => {});
  }
  private onData = (chunk: Buffer): void => {
    if (!this.tty) {
      this.deliver(chunk);
      return;
    }
    const out: number[] = [];
    for (const b of chunk) {
      if (this.escape) {
        this.escape = false;
        if (b === 0x78 /* x */) {
          this.commands.quit();
          return;
        }
        if (b === 0x70 /* p */) this.commands.powerButton();
        else if (b === 0x64 /* d */) this.commands.ctrlAltDel();
        else if (b === 0x72 /* r */) this.commands.registers();
        else if (b === 0x01) out.push(0x01);
        continue;
      }
      if (b === 0x01) this.escape = true;
      else out.push(b);
    }
    if (out.length) this.deliver(Uint8Array.from(out));
  };
  close(): void {
    process.stdin.off('data', this.onData);
    if (this.tty) process.stdin.setRawMode(false);
    process.stdin.pause();
    process.stdin.unref?.();
  }
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  // Boot the vCPU threads now, while this thread loads the VMM and builds the VM.
  prewarmVcpuThreads(opts.cpus);
  const { GuestRunner } = await import('./runner.js');
  const { formatVcpuState } = await import('./vcpu/state.js');
  const { TapBackend } = await import('./devices/virtio/net/tap.js');
  // Taps are opened once: the interface lives as long as its fd, across guest reboots.
  let nets;
  try {
    nets = opts.nets.map((n) => ({ backend: TapBackend.open(n.tap), ...(n.mac ? { mac: n.mac } : {}) }));
  } catch (err) {
    fail((err as Error).message);
  }
  const vnc = opts.displays.map((d) => ({
    listen: d.vnc,
    ...(d.passwordFile ? { password: readPassword(d.passwordFile) } : {}),
  }));
  const kernel = readFile('kernel', opts.kernel);
  const initrd = opts.initrd ? readFile('initrd', opts.initrd) : undefined;

  const runner = new GuestRunner({
    kernelPath: opts.kernel,
    kernel,
    ...(initrd ? { initrd } : {}),
    cmdline: opts.cmdline,
    memory: opts.memory,
    cpus: opts.cpus,
    debugExit: opts.debugExit,
    noReboot: opts.noReboot,
    rng: opts.rng,
    disks: opts.disks,
    nets,
    console: opts.console,
    vnc,
    vmId: opts.vmId,
    serialOutput: (bytes) => process.stdout.write(bytes),
    ...(opts.control ? { controlSocket: opts.control } : {}),
    ...(opts.consoleSocket ? { consoleSocket: opts.consoleSocket } : {}),
    ...(opts.pidFile ? { pidFile: opts.pidFile } : {}),
    log: (msg) => process.stderr.write(`vmm: ${msg}\n`),
  });
  const printRegisters = (): void => {
    void runner.vcpuStates().then((states) => {
      if (!states) process.stderr.write('vmm: no vCPU state: the guest is not running, or a vCPU did not park\n');
      else for (const s of states) process.stderr.write(`vmm: ${formatVcpuState(s)}\n`);
    });
  };
  // With a console socket the terminal is not the console: stdin is not read.
  const input = opts.consoleSocket
    ? undefined
    : new ConsoleInput((b) => runner.serialInput(b), {
        quit: () => runner.stop(),
        powerButton: () => runner.pressPowerButton(),
        ctrlAltDel: () => runner.ctrlAltDel(),
        registers: printRegisters,
      });
  // If whoever reads our output goes away, the guest keeps running; its output is dropped.
  process.stdout.on('error', () => {});
  process.on('SIGINT', () => runner.stop());
  process.on('SIGTERM', () => runner.stop());
  process.on('SIGPWR', () => runner.pressPowerButton());
  process.on('SIGUSR1', printRegisters);

  let status = EXIT_VMM_ERROR;
  try {
    ({ status } = await runner.run());
  } catch (err) {
    input?.close();
    if (err instanceof VmmError) fail(err.message);
    const e = err as Error & { ioctl?: string; code?: string };
    fail(e.ioctl ? `${e.ioctl} failed: ${e.code ?? e.message}` : (e.stack ?? String(err)));
  }
  input?.close();
  process.stdout.write('', () => process.exit(status));
}

void main();
