/**
 * The worker's VNC server: RFB 3.8 (RFC 6143) on TCP (loopback unless told otherwise) and/or
 * Unix sockets, showing the machine's framebuffer and feeding its keyboard and mouse.
 *
 * It outlives the machine: on a guest reboot the runner hands it the new machine's display
 * and connected clients carry on (they see a blank screen in between). Each listener has its
 * own security: VNC Authentication when it has a password, None otherwise (a Unix socket the
 * daemon puts its own authentication in front of, or a loopback port).
 *
 * Idle cost: nothing runs unless a client waits for an update; then a timer reads the dirty
 * log `refreshMs` apart (one ioctl and a scan of a 512-byte bitmap for 16 MiB of video memory).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { Framebuffer } from '../devices/display/framebuffer.js';
import { listenUnix } from '../control/unix-socket.js';
import { KeyQueue } from './input.js';
import { VncConnection, type ConnectionHost, type SecurityConfig, type VncDisplay, type VncMetrics } from './connection.js';

export type { VncDisplay, VncMetrics } from './connection.js';

export type VncListen = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export interface VncListenerConfig extends SecurityConfig {
  listen: VncListen;
}

export interface VncServerOptions {
  listeners: VncListenerConfig[];
  /** the desktop name clients show */
  name: string;
  log: (msg: string) => void;
  /** connections at once, over all listeners; more are closed at once */
  maxClients?: number;
  /** how often a waiting client's screen is checked for changes */
  refreshMs?: number;
}

export const DEFAULT_MAX_CLIENTS = 16;
export const DEFAULT_REFRESH_MS = 33;

export class VncServer implements ConnectionHost {
  readonly name: string;
  readonly metrics: VncMetrics = {
    connections: 0,
    active: 0,
    protocolErrors: 0,
    authFailures: 0,
    updates: 0,
    rects: 0,
    bytesSent: 0,
    unmappedKeys: 0,
    cutTextBytes: 0,
  };
  readonly keys = new KeyQueue();
  readonly blank = new Framebuffer({ vram: new Uint8Array(4096) });
  readonly #options: VncServerOptions;
  readonly #servers: { server: Server; config: VncListenerConfig }[] = [];
  readonly #connections = new Set<VncConnection>();
  #display: VncDisplay | undefined;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** refused because of maxClients */
  refused = 0;

  constructor(options: VncServerOptions) {
    this.#options = options;
    this.name = options.name;
  }

  async listen(): Promise<void> {
    for (const config of this.#options.listeners) {
      const onConnection = (sock: Socket) => this.#accept(sock, config);
      let server: Server;
      if (config.listen.kind === 'unix') {
        server = await listenUnix(config.listen.path, onConnection);
      } else {
        const { host, port } = config.listen;
        server = createServer(onConnection);
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host, port }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      }
      server.on('error', (err) => this.log(`vnc: listener error: ${err.message}`));
      this.#servers.push({ server, config });
    }
  }

  /** Where the server listens, with the real port of a TCP listener asked for port 0. */
  addresses(): VncListen[] {
    return this.#servers.map(({ server, config }) => {
      if (config.listen.kind === 'unix') return config.listen;
      const a = server.address();
      return { kind: 'tcp', host: config.listen.host, port: typeof a === 'object' && a !== null ? a.port : config.listen.port };
    });
  }

  /** The machine's screen and input (undefined while there is no machine). */
  setDisplay(display: VncDisplay | undefined): void {
    this.#display = display;
    this.keys.setInput(display?.input);
    for (const c of this.#connections) c.displayChanged();
    this.wake();
  }

  display(): VncDisplay | undefined {
    return this.#display;
  }

  get clients(): number {
    return this.#connections.size;
  }

  wake(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => this.#tick(), this.#options.refreshMs ?? DEFAULT_REFRESH_MS);
    this.#timer.unref();
  }

  exclusive(conn: VncConnection): void {
    for (const c of this.#connections) if (c !== conn) c.close();
  }

  closed(conn: VncConnection): void {
    this.#connections.delete(conn);
  }

  log(msg: string): void {
    this.#options.log(msg);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    for (const c of [...this.#connections]) c.close();
    this.keys.clear();
    await Promise.all(
      this.#servers.map(
        ({ server, config }) =>
          new Promise<void>((resolve) =>
            server.close(() => {
              if (config.listen.kind === 'unix') rmSync(config.listen.path, { force: true });
              resolve();
            }),
          ),
      ),
    );
  }

  #accept(sock: Socket, config: VncListenerConfig): void {
    if (this.#closed || this.#connections.size >= (this.#options.maxClients ?? DEFAULT_MAX_CLIENTS)) {
      this.refused++;
      sock.destroy();
      return;
    }
    this.#connections.add(new VncConnection(sock, this, { ...(config.password ? { password: config.password } : {}) }));
  }

  #tick(): void {
    this.#timer = undefined;
    let waiting = false;
    for (const c of this.#connections) {
      void c.pump();
      if (c.waiting) waiting = true;
    }
    if (waiting) this.wake();
  }
}
