/**
 * Runs vmctld as a child process on temporary directories, with real `vmm` workers, and
 * talks to it over its Unix socket: HTTP requests and WebSockets. For the end-to-end tests.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { ROOT } from './vmm-process.js';

export const SERVER = join(ROOT, 'apps/daemon/src/server.ts');
/** vmctld from its build, as installed */
export const BUILT_SERVER = join(ROOT, 'apps/daemon/dist/server.js');

export interface DaemonProcessOptions {
  /** where its directories go (default: a new temporary directory) */
  dir?: string;
  /** the command line before vmctld's options (default: vmctld from source, through tsx) */
  command?: readonly string[];
}

export interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: any;
}

export class DaemonProcess {
  readonly dir: string;
  readonly stateDir: string;
  readonly runtimeDir: string;
  readonly socket: string;
  readonly command: readonly string[];
  child?: ChildProcess;
  log = '';

  constructor(options: DaemonProcessOptions = {}) {
    this.dir = options.dir ?? mkdtempSync(join(tmpdir(), 'vmctld-e2e-'));
    this.command = options.command ?? [process.execPath, '--import', 'tsx', SERVER];
    this.stateDir = join(this.dir, 'state');
    this.runtimeDir = join(this.dir, 'run');
    this.socket = join(this.runtimeDir, 'vmctld.sock');
  }

  /** Starts the daemon and resolves once it answers on its socket. */
  async start(extra: string[] = []): Promise<void> {
    const argv = [...this.command, '--state-dir', this.stateDir, '--runtime-dir', this.runtimeDir, ...extra];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stdout!.on('data', (b) => (this.log += b));
    child.stderr!.on('data', (b) => (this.log += b));
    const deadline = Date.now() + 20000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`vmctld exited with ${child.exitCode}: ${this.log}`);
      if (existsSync(this.socket)) {
        try {
          if ((await this.req('GET', '/v1/host')).status === 200) return;
        } catch {
          // not yet
        }
      }
      if (Date.now() > deadline) throw new Error(`vmctld did not come up: ${this.log}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /**
   * Starts the daemon with a TCP listener too, on a free port of 127.0.0.1 that wants `token`
   * (from a token file in its directory); resolves with the listener's URL.
   */
  async startTcp(token: string, extra: string[] = []): Promise<string> {
    mkdirSync(this.dir, { recursive: true });
    const tokenFile = join(this.dir, 'token');
    writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
    const port = await freePort();
    await this.start(['--listen', `127.0.0.1:${port}`, '--token-file', tokenFile, ...extra]);
    return `http://127.0.0.1:${port}`;
  }

  /** SIGKILLs the daemon (its workers stay). */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  req(method: string, path: string, body?: unknown): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const r = request(
        { socketPath: this.socket, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
        },
      );
      r.on('error', reject);
      r.end(data);
    });
  }

  ws(path: string): WebSocket {
    return new WebSocket(`ws+unix://${this.socket}:${path}`);
  }

  /** SIGKILLs every worker left under the runtime dir, stops the daemon, removes the dirs. */
  async cleanup(): Promise<void> {
    await this.kill();
    this.#killWorkers();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** The same at once, for a process 'exit' handler: SIGKILLs the workers and the daemon, removes the dirs. */
  cleanupSync(): void {
    this.#killWorkers();
    if (this.child && this.child.exitCode === null) this.child.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }

  #killWorkers(): void {
    try {
      for (const d of readdirSync(join(this.runtimeDir, 'vms'))) {
        try {
          process.kill(Number(readFileSync(join(this.runtimeDir, 'vms', d, 'worker.pid'), 'utf8')), 'SIGKILL');
        } catch {
          // gone
        }
      }
    } catch {
      // no workers
    }
  }
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  await new Promise((r) => srv.close(r));
  return port;
}

/** A WebSocket client on the serial console that collects what the guest prints. */
export class ConsoleClient {
  text = '';
  readonly ws: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<number>;

  constructor(d: DaemonProcess, name: string) {
    this.ws = d.ws(`/v1/domains/${name}/console`);
    this.ws.on('message', (b: Buffer) => (this.text += b.toString('latin1')));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    this.closed = new Promise((r) => this.ws.on('close', (code) => r(code)));
  }

  async waitFor(re: RegExp, ms = 20000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const m = this.text.match(re);
      if (m) return m;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; console: ${JSON.stringify(this.text)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  send(text: string): void {
    this.ws.send(Buffer.from(text));
  }

  close(): void {
    this.ws.terminate();
  }
}

/** An /v1/events client that collects the events. */
export class EventsClient {
  events: any[] = [];
  readonly ws: WebSocket;
  readonly opened: Promise<void>;

  constructor(d: DaemonProcess, query = '') {
    this.ws = d.ws(`/v1/events${query}`);
    this.ws.on('message', (b: Buffer) => this.events.push(JSON.parse(b.toString())));
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
  }

  async waitFor(pred: (e: any) => boolean, ms = 20000): Promise<any> {
    const deadline = Date.now() + ms;
    for (;;) {
      const e = this.events.find(pred);
      if (e) return e;
      if (Date.now() > deadline) throw new Error(`timed out waiting for an event; got ${JSON.stringify(this.events)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  close(): void {
    this.ws.terminate();
  }
}
