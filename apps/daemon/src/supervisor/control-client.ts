/**
 * The daemon's side of a worker's control socket (libs/vmm/src/control/protocol.ts):
 * newline-delimited JSON requests, each answered by a response with its `id`, and events
 * (no `id`) pushed after `subscribe`.
 */
import { connect, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';
import type { ControlErrorCode, ControlEvent, ControlRequest, ControlResponse } from '@vmctl/vmm';
// the protocol module alone: the daemon does not load the VMM
import { LineSplitter } from '@vmctl/vmm/control-protocol';

/** The longest line either side may send (protocol.ts). */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
export type ControlRequestBody = DistributiveOmit<ControlRequest, 'id'>;

export class ControlRequestError extends Error {
  constructor(
    /** the worker's error code, or CLOSED / TIMEOUT from this side */
    readonly code: ControlErrorCode | 'CLOSED' | 'TIMEOUT',
    message: string,
  ) {
    super(message);
    this.name = 'ControlRequestError';
  }
}

interface Pending {
  resolve: (result: unknown) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

export interface ControlClientEvents {
  event: [ControlEvent];
  close: [];
}

export class ControlClient extends EventEmitter<ControlClientEvents> {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly lines = new LineSplitter((line) => this.onLine(line));
  private closed = false;

  private constructor(private readonly sock: Socket) {
    super();
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => this.onData(chunk));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.onClose());
  }

  /** Connects to the control socket at `path`; rejects if nobody listens there. */
  static connect(path: string, timeoutMs = 2000): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(path);
      const timer = setTimeout(() => {
        sock.destroy();
        reject(new ControlRequestError('TIMEOUT', `Cannot connect to ${path}: timed out`));
      }, timeoutMs);
      sock.once('connect', () => {
        clearTimeout(timer);
        sock.removeAllListeners('error');
        resolve(new ControlClient(sock));
      });
      sock.once('error', (err) => {
        clearTimeout(timer);
        sock.destroy();
        reject(err);
      });
    });
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Sends one request; resolves with its result, rejects with a ControlRequestError. */
  request<T = unknown>(body: ControlRequestBody, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<T> {
    if (this.closed) return Promise.reject(new ControlRequestError('CLOSED', 'The control connection is closed'));
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ControlRequestError('TIMEOUT', `The worker did not answer ${body.type} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject, timer });
      this.sock.write(JSON.stringify({ ...body, id }) + '\n');
    });
  }

  close(): void {
    this.sock.destroy();
  }

  private onData(chunk: string): void {
    if (!this.lines.push(chunk)) this.sock.destroy();
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      return; // the protocol is closed: a line we cannot read is dropped, not trusted
    }
    if (typeof msg !== 'object' || msg === null) return;
    if ('event' in msg) {
      this.emit('event', msg as ControlEvent);
      return;
    }
    const res = msg as ControlResponse;
    const p = this.pending.get(res.id);
    if (!p) return;
    this.pending.delete(res.id);
    clearTimeout(p.timer);
    if (res.ok) p.resolve(res.result);
    else p.reject(new ControlRequestError(res.error?.code ?? 'INTERNAL', res.error?.message ?? 'unknown worker error'));
  }

  private onClose(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new ControlRequestError('CLOSED', 'The worker closed its control socket'));
    }
    this.pending.clear();
    this.emit('close');
  }
}
