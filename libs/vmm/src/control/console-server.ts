/**
 * The serial console socket: raw bytes both ways. The worker keeps the last `replayBytes`
 * of guest output and replays them to each client that connects, then streams; any client
 * may type. It outlives guest reboots: the worker rebuilds the machine, not this server.
 */
import type { Server, Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { listenUnix } from './unix-socket.js';

export class ConsoleServer {
  private readonly ring: Uint8Array;
  private start = 0;
  private len = 0;
  private readonly clients = new Set<Socket>();
  private server?: Server;
  input: (bytes: Uint8Array) => void = () => {};

  constructor(
    private readonly path: string,
    replayBytes = 1024 * 1024,
  ) {
    this.ring = new Uint8Array(replayBytes);
  }

  async listen(): Promise<void> {
    this.server = await listenUnix(this.path, (sock) => this.attach(sock));
  }

  private attach(sock: Socket): void {
    this.clients.add(sock);
    const replay = this.replay();
    if (replay.length) sock.write(replay);
    sock.on('data', (b: Buffer) => this.input(b));
    sock.on('error', () => sock.destroy());
    sock.on('close', () => this.clients.delete(sock));
  }

  /** Guest output: kept for replay and sent to every client. */
  output(bytes: Uint8Array): void {
    this.keep(bytes);
    for (const c of this.clients) {
      // A client that does not read must not grow our memory without bound: drop it.
      if (c.writableLength > 4 * this.ring.length) c.destroy();
      else c.write(bytes);
    }
  }

  private keep(bytes: Uint8Array): void {
    const cap = this.ring.length;
    if (bytes.length >= cap) {
      this.ring.set(bytes.subarray(bytes.length - cap));
      this.start = 0;
      this.len = cap;
      return;
    }
    let end = (this.start + this.len) % cap;
    const first = Math.min(bytes.length, cap - end);
    this.ring.set(bytes.subarray(0, first), end);
    this.ring.set(bytes.subarray(first), 0);
    end = (end + bytes.length) % cap;
    this.len = Math.min(cap, this.len + bytes.length);
    this.start = (end - this.len + cap) % cap;
  }

  /** The kept output, oldest first. */
  replay(): Uint8Array {
    const out = new Uint8Array(this.len);
    const first = Math.min(this.len, this.ring.length - this.start);
    out.set(this.ring.subarray(this.start, this.start + first));
    out.set(this.ring.subarray(0, this.len - first), first);
    return out;
  }

  async close(): Promise<void> {
    for (const c of this.clients) c.end();
    await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
    rmSync(this.path, { force: true });
  }
}
