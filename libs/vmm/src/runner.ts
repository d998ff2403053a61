/**
 * Runs one guest for as long as it lives: builds the Machine, rebuilds it when the guest
 * resets (unless told not to), and serves the console and control sockets when asked.
 * `vmm run` is this, with the console on the terminal or on a socket.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { Machine, type MachineExit } from './builder.js';
import type { DiskOption } from './device-options.js';
import type { NetBackend } from './devices/virtio/net/backend.js';
import { ConsoleServer } from './control/console-server.js';
import { ControlError, ControlServer } from './control/control-server.js';
import type { VncListenerConfig, VncServer } from './vnc/server.js';
import { CONTROL_PROTOCOL_VERSION, type GuestStopReason, type WorkerDescription, type WorkerState, type WorkerStats } from './control/protocol.js';

import type { VcpuState } from './vcpu/state.js';
import { EXIT_GUEST_CRASHED, EXIT_POWEROFF, EXIT_RESET, EXIT_STOPPED } from './exit-codes.js';

export interface RunnerOptions {
  kernelPath: string;
  kernel: Uint8Array;
  initrd?: Uint8Array;
  cmdline: string;
  memory: number;
  cpus: number;
  debugExit: boolean;
  noReboot: boolean;
  rng?: boolean;
  disks?: DiskOption[];
  /** taps, opened once for the worker's life (a tap closes when its fd does) */
  nets?: { backend: NetBackend; mac?: Uint8Array }[];
  console?: 'serial' | 'virtio';
  /** a display, served over VNC on these listeners (it outlives guest reboots) */
  vnc?: VncListenerConfig[];
  vmId: string;
  /** serial output goes here when there is no console socket */
  serialOutput: (bytes: Uint8Array) => void;
  controlSocket?: string;
  consoleSocket?: string;
  pidFile?: string;
  log: (msg: string) => void;
}

export interface RunResult {
  exit: MachineExit;
  status: number;
}

export function exitStatus(e: MachineExit): number {
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

function stopReason(e: MachineExit): GuestStopReason {
  return e.kind;
}

export class GuestRunner {
  private machine?: Machine;
  private state: WorkerState = 'starting';
  private stopping = false;
  private reboots = 0;
  private readonly startedAt = new Date();
  private readonly console?: ConsoleServer;
  private readonly control?: ControlServer;
  private vnc?: VncServer;
  private pendingInput: Uint8Array[] = [];

  constructor(private readonly opts: RunnerOptions) {
    if (opts.consoleSocket) this.console = new ConsoleServer(opts.consoleSocket);

    if (opts.controlSocket) {
      this.control = new ControlServer(opts.controlSocket, {
        describe: () => this.describe(),
        stats: () => this.stats(),
        pause: () => this.pause(),
        resume: () => this.resume(),
        powerButton: async () => this.requireRunning('power-button').pressPowerButton(),
        ctrlAltDel: async () => {
          if (!this.requireRunning('ctrl-alt-del').ctrlAltDel()) {
            throw new ControlError('INVALID_STATE', 'the guest keyboard is not scanning');
          }
        },
        reset: async () => this.requireRunning('reset').reset(),
        stop: async () => {
          this.stop();
        },
      });
    }
  }

  private requireRunning(what: string): Machine {
    if (!this.machine || (this.state !== 'running' && this.state !== 'paused')) {
      throw new ControlError('INVALID_STATE', `cannot ${what}: the guest is ${this.state}`);
    }
    return this.machine;
  }

  private setState(state: WorkerState): void {
    this.state = state;
    this.control?.emit({ event: 'state', state, at: new Date().toISOString() });
  }

  describe(): WorkerDescription {
    const o = this.opts;
    return {
      version: CONTROL_PROTOCOL_VERSION,
      pid: process.pid,
      state: this.state,
      vmId: o.vmId,
      startedAt: this.startedAt.toISOString(),
      config: { memory: o.memory, cpus: o.cpus, kernel: o.kernelPath, cmdline: o.cmdline },
      consoleSocket: o.consoleSocket ?? '',
    };
  }

  stats(): WorkerStats {
    return {
      uptimeMs: Date.now() - this.startedAt.getTime(),
      rssBytes: process.memoryUsage.rss(),
      vcpus: this.machine?.counters() ?? [],
      reboots: this.reboots,
    };
  }

  private async pause(): Promise<void> {
    const m = this.requireRunning('pause');
    if (this.state === 'paused') return;
    if (!(await m.pause())) {
      m.resume();
      throw new ControlError('INTERNAL', 'a vCPU did not pause in time');
    }
    this.setState('paused');
  }

  private async resume(): Promise<void> {
    const m = this.requireRunning('resume');
    if (this.state !== 'paused') return;
    m.resume();
    this.setState('running');
  }

  /** Serial input from the terminal or a console client. */
  serialInput(bytes: Uint8Array): void {
    if (this.machine) this.machine.serialInput(bytes);
    else this.pendingInput.push(bytes);
  }

  pressPowerButton(): void {
    this.machine?.pressPowerButton();
  }

  /** Every vCPU's registers, read with the vCPUs parked for a moment (a paused guest stays
   * paused). Undefined when no guest runs or a vCPU would not park. */
  async vcpuStates(): Promise<VcpuState[] | undefined> {
    const m = this.machine;
    if (!m || (this.state !== 'running' && this.state !== 'paused')) return undefined;
    const wasPaused = this.state === 'paused';
    try {
      if (!wasPaused && !(await m.pause())) return undefined;
      return m.vcpuStates();
    } finally {
      if (!wasPaused) m.resume();
    }
  }

  ctrlAltDel(): void {
    this.machine?.ctrlAltDel();
  }

  /** Ends the guest from the host side. */
  stop(): void {
    this.stopping = true;
    if (this.state !== 'stopped' && this.state !== 'crashed') this.setState('stopping');
    void this.machine?.stop();
  }

  async run(): Promise<RunResult> {
    const o = this.opts;
    if (this.console) {
      this.console.input = (b) => this.serialInput(b);
      await this.console.listen();
    }
    await this.control?.listen();
    if (o.vnc && o.vnc.length > 0) {
      // Loaded only when asked for: most workers have no display, and startup time counts.
      const { VncServer } = await import('./vnc/server.js');
      this.vnc = new VncServer({ listeners: o.vnc, name: `vmctl ${o.vmId || o.kernelPath}`, log: o.log });
      await this.vnc.listen();
      for (const a of this.vnc.addresses()) o.log(`vnc: listening on ${a.kind === 'unix' ? a.path : `${a.host}:${a.port}`}`);
    }
    if (o.pidFile) writeFileSync(o.pidFile, `${process.pid}\n`);
    const output = this.console ? (b: Uint8Array) => this.console!.output(b) : o.serialOutput;
    try {
      for (;;) {
        this.machine = new Machine({
          kernel: o.kernel,
          ...(o.initrd ? { initrd: o.initrd } : {}),
          cmdline: o.cmdline,
          memory: o.memory,
          cpus: o.cpus,
          debugExit: o.debugExit,
          rng: o.rng ?? false,
          disks: o.disks ?? [],
          nets: o.nets ?? [],
          console: o.console ?? 'serial',
          ...(this.vnc ? { display: {} } : {}),
          serialOutput: output,
        });
        if (this.vnc && this.machine.framebuffer) this.vnc.setDisplay({ framebuffer: this.machine.framebuffer, input: this.machine.input });
        this.machine.start();
        for (const b of this.pendingInput.splice(0)) this.machine.serialInput(b);
        if (!this.stopping) this.setState('running');
        let exit = await this.machine.exited;
        // A guest that resets while the host is stopping it has been stopped.
        if (this.stopping && exit.kind === 'reset') exit = { kind: 'stopped' };
        // The screen goes before its memory does.
        this.vnc?.setDisplay(undefined);
        await this.machine.destroy();
        this.machine = undefined;
        const hostReset = exit.kind === 'reset' && exit.reason === 'host';
        if (exit.kind === 'reset' && (hostReset || !o.noReboot) && !this.stopping) {
          this.reboots++;
          o.log(`guest reset (${exit.reason}); rebooting`);
          this.control?.emit({ event: 'guest-reboot', reason: exit.reason, at: new Date().toISOString() });
          continue;
        }
        if (exit.kind === 'crashed') o.log(`guest crashed: ${exit.detail}`);
        if (exit.kind === 'reset') o.log(`guest reset (${exit.reason}); --no-reboot given, exiting`);
        const status = exitStatus(exit);
        this.setState(exit.kind === 'crashed' ? 'crashed' : 'stopped');
        this.control?.emit({
          event: 'guest-stopped',
          reason: stopReason(exit),
          ...(exit.kind === 'crashed' ? { detail: exit.detail } : {}),
          exitCode: status,
          at: new Date().toISOString(),
        });
        return { exit, status };
      }
    } finally {
      for (const n of o.nets ?? []) n.backend.close();
      await this.control?.close();
      await this.console?.close();
      await this.vnc?.close();
      if (o.pidFile) rmSync(o.pidFile, { force: true });
    }
  }
}
