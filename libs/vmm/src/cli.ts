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
import { Machine, type MachineExit } from './builder.js';
import { parseSize } from './memory/layout.js';
import { VmmError } from './errors.js';

export const EXIT_POWEROFF = 0;
export const EXIT_RESET = 124;
export const EXIT_VMM_ERROR = 125;
export const EXIT_GUEST_CRASHED = 126;
export const EXIT_STOPPED = 130;

const USAGE = `usage: vmm run --kernel FILE [options]

  --kernel FILE      guest kernel: an ELF with a PVH entry note
  --initrd FILE      initial ramdisk
  --cmdline STR      kernel command line (default "console=ttyS0")
  --memory SIZE      guest RAM, e.g. 256M, 2G (default 256M)
  --cpus N           vCPUs (default 1)
  --debug-exit       attach the debug-exit port 0xf4: a guest write ends the VMM with that value
  --no-reboot        exit (status 124) when the guest resets instead of rebooting it

On a terminal the console is raw. Ctrl-A then: x quits, p presses the ACPI power button,
d sends Ctrl-Alt-Del, Ctrl-A sends Ctrl-A. SIGPWR also presses the power button.
`;

function fail(msg: string): never {
  process.stderr.write(`vmm: ${msg}\n`);
  process.exit(EXIT_VMM_ERROR);
}

interface RunOptions {
  kernel: string;
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
  };
}

function readFile(what: string, path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (err) {
    fail(`cannot read ${what} ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

/** Console input: raw on a terminal, with Ctrl-A as the escape key. */
class ConsoleInput {
  private escape = false;
  private readonly tty = process.stdin.isTTY === true;
  constructor(
    private readonly deliver: (bytes: Uint8Array) => void,
    private readonly commands: { quit: () => void; powerButton: () => void; ctrlAltDel: () => void },
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

function exitStatus(e: MachineExit): number {
  switch (e.kind) {
    case 'poweroff':
      return EXIT_POWEROFF;
    case 'debug-exit':
      return e.code & 0xff;
    case 'reset':
      return EXIT_RESET;
    case 'crashed':
      return EXIT_GUEST_CRASHED;
    case 'stopped':
      return EXIT_STOPPED;
  }
}

async function main(): Promise<void> {
  const opts = parse(process.argv.slice(2));
  const kernel = readFile('kernel', opts.kernel);
  const initrd = opts.initrd ? readFile('initrd', opts.initrd) : undefined;

  let machine: Machine | undefined;
  let stopping = false;
  const input = new ConsoleInput((b) => machine?.serialInput(b), {
    quit: () => {
      stopping = true;
      void machine?.stop();
    },
    powerButton: () => machine?.pressPowerButton(),
    ctrlAltDel: () => machine?.ctrlAltDel(),
  });
  const onSignal = () => {
    stopping = true;
    void machine?.stop();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGPWR', () => machine?.pressPowerButton());

  let status = EXIT_VMM_ERROR;
  for (;;) {
    try {
      machine = new Machine({
        kernel,
        ...(initrd ? { initrd } : {}),
        cmdline: opts.cmdline,
        memory: opts.memory,
        cpus: opts.cpus,
        debugExit: opts.debugExit,
        serialOutput: (bytes) => process.stdout.write(bytes),
      });
      machine.start();
    } catch (err) {
      input.close();
      if (err instanceof VmmError) fail(err.message);
      const e = err as Error & { ioctl?: string; code?: string };
      fail(e.ioctl ? `${e.ioctl} failed: ${e.code ?? e.message}` : (e.stack ?? String(err)));
    }
    const exit = await machine.exited;
    machine.destroy();
    if (exit.kind === 'reset' && !opts.noReboot && !stopping) {
      process.stderr.write(`vmm: guest reset (${exit.reason}); rebooting\n`);
      continue;
    }
    if (exit.kind === 'crashed') process.stderr.write(`vmm: guest crashed: ${exit.detail}\n`);
    if (exit.kind === 'reset') process.stderr.write(`vmm: guest reset (${exit.reason}); --no-reboot given, exiting\n`);
    status = exitStatus(exit);
    break;
  }
  input.close();
  process.stdout.write('', () => process.exit(status));
}

void main();
