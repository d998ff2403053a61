/**
 * The worker's control socket: newline-delimited JSON requests and responses, and events
 * pushed to subscribers (see protocol.ts). A malformed or unknown request gets an error
 * response and the connection stays usable.
 */
import type { Server, Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { listenUnix } from './unix-socket.js';
import {
  CONTROL_PROTOCOL_VERSION,
  LineSplitter,
  type ControlErrorCode,
  type ControlEvent,
  type ControlRequest,
  type ControlResponse,
} from './protocol.js';


/** What the worker does for each request; a thrown ControlError becomes an error response. */
export interface ControlHandlers {
  describe(): unknown;
  stats(): unknown;
  pause(): Promise<void>;
  resume(): Promise<void>;
  powerButton(): Promise<void>;
  ctrlAltDel(): Promise<void>;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export class ControlError extends Error {
  constructor(
    readonly code: ControlErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ControlError';
  }
}

const REQUEST_TYPES = new Set<string>(['hello', 'describe', 'subscribe', 'pause', 'resume', 'power-button', 'ctrl-alt-del', 'reset', 'stop', 'stats']);

/** Parses one request line; returns an error response for anything that is not a request. */
export function parseRequest(line: string): ControlRequest | ControlResponse {
  let msg: unknown;
  try {
    msg = JSON.parse(line);
  } catch {
    return { id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'not JSON' } };
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) {
    return { id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'a request is a JSON object' } };
  }
  const { id, type } = msg as { id?: unknown; type?: unknown };
  if (typeof id !== 'number' || !Number.isSafeInteger(id)) {
    return { id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'id must be an integer' } };
  }
  if (typeof type !== 'string' || !REQUEST_TYPES.has(type)) {
    return { id, ok: false, error: { code: 'UNKNOWN_REQUEST', message: `unknown request type ${JSON.stringify(type)}` } };
  }
  if (type === 'hello' && typeof (msg as { version?: unknown }).version !== 'number') {
    return { id, ok: false, error: { code: 'BAD_REQUEST', message: 'hello needs a numeric version' } };
  }
  return msg as ControlRequest;
}

export class ControlServer {
  private server?: Server;
  private readonly subscribers = new Set<Socket>();
  private readonly sockets = new Set<Socket>();

  constructor(
    private readonly path: string,
    private readonly handlers: ControlHandlers,
  ) {}

  async listen(): Promise<void> {
    this.server = await listenUnix(this.path, (sock) => this.serve(sock));
  }

  private serve(sock: Socket): void {
    this.sockets.add(sock);
    const lines = new LineSplitter((line) => void this.handle(sock, line));
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      if (!lines.push(chunk)) {
        this.send(sock, { id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'line too long' } });
        sock.destroy();
      }
    });
    sock.on('error', () => sock.destroy());
    sock.on('close', () => {
      this.subscribers.delete(sock);
      this.sockets.delete(sock);
    });
  }

  private send(sock: Socket, msg: ControlResponse | ControlEvent): void {
    if (!sock.destroyed) sock.write(JSON.stringify(msg) + '\n');
  }

  private async handle(sock: Socket, line: string): Promise<void> {
    const req = parseRequest(line);
    if ('ok' in req) {
      this.send(sock, req);
      return;
    }
    try {
      const result = await this.dispatch(sock, req);
      this.send(sock, result === undefined ? { id: req.id, ok: true } : { id: req.id, ok: true, result });
    } catch (err) {
      const code: ControlErrorCode = err instanceof ControlError ? err.code : 'INTERNAL';
      this.send(sock, { id: req.id, ok: false, error: { code, message: (err as Error).message } });
    }
  }

  private async dispatch(sock: Socket, req: ControlRequest): Promise<unknown> {
    const h = this.handlers;
    switch (req.type) {
      case 'hello':
        if (req.version !== CONTROL_PROTOCOL_VERSION) {
          throw new ControlError('VERSION_MISMATCH', `worker speaks version ${CONTROL_PROTOCOL_VERSION}, not ${req.version}`);
        }
        return { version: CONTROL_PROTOCOL_VERSION };
      case 'describe':
        return h.describe();
      case 'subscribe':
        this.subscribers.add(sock);
        return undefined;
      case 'stats':
        return h.stats();
      case 'pause':
        return h.pause();
      case 'resume':
        return h.resume();
      case 'power-button':
        return h.powerButton();
      case 'ctrl-alt-del':
        return h.ctrlAltDel();
      case 'reset':
        return h.reset();
      case 'stop':
        return h.stop();
    }
  }

  /** Pushes an event to every subscriber. */
  emit(event: ControlEvent): void {
    for (const s of this.subscribers) this.send(s, event);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.end();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    for (const s of this.sockets) s.destroy();
    rmSync(this.path, { force: true });
  }
}
