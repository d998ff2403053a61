/** A small client of the worker control protocol, for tests. */
import { connect, type Socket } from 'node:net';
import type { ControlEvent, ControlResponse } from '../../libs/vmm/src/control/protocol.js';

export class ControlClient {
  private sock: Socket;
  private nextId = 1;
  private buf = '';
  private pending = new Map<number, (r: ControlResponse) => void>();
  readonly events: ControlEvent[] = [];
  private eventWaiters: { pred: (e: ControlEvent) => boolean; resolve: (e: ControlEvent) => void }[] = [];

  private constructor(sock: Socket) {
    this.sock = sock;
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      this.buf += chunk;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        const msg = JSON.parse(this.buf.slice(0, nl));
        this.buf = this.buf.slice(nl + 1);
        if ('event' in msg) {
          this.events.push(msg);
          this.eventWaiters = this.eventWaiters.filter((w) => !(w.pred(msg) && (w.resolve(msg), true)));
        } else this.pending.get(msg.id)?.(msg);
      }
    });
  }

  static connect(path: string): Promise<ControlClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once('connect', () => resolve(new ControlClient(s)));
      s.once('error', reject);
    });
  }

  /** Sends a request and resolves with its response. */
  request(type: string, extra: Record<string, unknown> = {}): Promise<ControlResponse> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(id, resolve);
      this.sock.write(JSON.stringify({ id, type, ...extra }) + '\n');
    });
  }

  raw(line: string): void {
    this.sock.write(line + '\n');
  }

  waitEvent(pred: (e: ControlEvent) => boolean, ms = 15000): Promise<ControlEvent> {
    const found = this.events.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no matching event; saw ${JSON.stringify(this.events)}`)), ms);
      this.eventWaiters.push({ pred, resolve: (e) => { clearTimeout(t); resolve(e); } });
    });
  }

  close(): void {
    this.sock.destroy();
  }
}
