/**
 * The control protocol between vmctld and a vmm worker: closed, versioned, JSON.
 *
 * Transport: the worker listens on a Unix stream socket (`<runtime>/vms/<id>/control.sock`,
 * mode 0600). Each message is one JSON object on one line (newline-delimited JSON, UTF-8,
 * at most 1 MiB a line). The client sends requests; the worker answers each with a response
 * carrying the same `id`, and pushes events (no `id`) to every connected client that sent
 * `subscribe`. Unknown request types and malformed lines get an error response; the
 * connection stays open.
 *
 * The serial console is a separate socket (`console.sock`): raw bytes both ways; on connect
 * the worker first replays the last 1 MiB of output it kept, then streams. Several clients
 * may be attached at once; input from any of them goes to the guest.
 */

export const CONTROL_PROTOCOL_VERSION = 1;

/** What a worker says its guest is doing. */
export type WorkerState = 'starting' | 'running' | 'paused' | 'stopping' | 'stopped' | 'crashed';

export type ControlRequest =
  | { id: number; type: 'hello'; version: number }
  | { id: number; type: 'describe' }
  | { id: number; type: 'subscribe' }
  | { id: number; type: 'pause' }
  | { id: number; type: 'resume' }
  /** ACPI power button: the guest decides to shut down */
  | { id: number; type: 'power-button' }
  /** Ctrl-Alt-Del on the PS/2 keyboard */
  | { id: number; type: 'ctrl-alt-del' }
  /** hard reset: the machine is rebuilt and boots again */
  | { id: number; type: 'reset' }
  /** hard stop: the worker ends its guest and exits */
  | { id: number; type: 'stop' }
  | { id: number; type: 'stats' };

export type ControlRequestType = ControlRequest['type'];

export interface WorkerDescription {
  version: number;
  pid: number;
  state: WorkerState;
  /** the domain id the worker was started for */
  vmId: string;
  startedAt: string;
  config: { memory: number; cpus: number; kernel: string; cmdline: string };
  consoleSocket: string;
}

export interface WorkerStats {
  uptimeMs: number;
  rssBytes: number;
  vcpus: { exits: number; missedPio: number; missedMmio: number }[];
  reboots: number;
}

export type ControlErrorCode =
  | 'BAD_REQUEST'
  | 'UNKNOWN_REQUEST'
  | 'VERSION_MISMATCH'
  | 'INVALID_STATE'
  | 'INTERNAL';

export type ControlResponse =
  | { id: number; ok: true; result?: unknown }
  | { id: number; ok: false; error: { code: ControlErrorCode; message: string } };

/** Why a guest stopped, as the worker reports it just before it exits. */
export type GuestStopReason = 'poweroff' | 'reset' | 'debug-exit' | 'stopped' | 'crashed';

export type ControlEvent =
  | { event: 'state'; state: WorkerState; at: string }
  | { event: 'guest-reboot'; reason: string; at: string }
  | { event: 'guest-stopped'; reason: GuestStopReason; detail?: string; exitCode: number; at: string };

/** The longest line either side keeps waiting for its newline; a longer one ends the connection. */
export const CONTROL_MAX_LINE = 1024 * 1024;

/**
 * Splits the control socket's text stream into its newline-delimited messages, for both
 * ends: `push` each chunk; blank lines are skipped. Returns false when an unfinished line
 * has grown past `maxLine`: the peer is misbehaving and the caller ends the connection.
 */
export class LineSplitter {
  #buf = '';
  constructor(
    private readonly onLine: (line: string) => void,
    private readonly maxLine = CONTROL_MAX_LINE,
  ) {}

  push(chunk: string): boolean {
    this.#buf += chunk;
    let nl: number;
    while ((nl = this.#buf.indexOf('\n')) >= 0) {
      const line = this.#buf.slice(0, nl);
      this.#buf = this.#buf.slice(nl + 1);
      if (line.trim()) this.onLine(line);
    }
    return this.#buf.length <= this.maxLine;
  }
}
