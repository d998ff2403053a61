/**
 * `vmctl vnc NAME [--listen [HOST:]PORT]`: a domain's display. Without --listen it says how to
 * reach it. With --listen it forwards a local TCP port to the display through the daemon's VNC
 * WebSocket (/v1/domains/{name}/vnc), for ordinary VNC viewers: each connection to the port is
 * one WebSocket, bytes passed unchanged both ways, until Ctrl-C. The worker's VNC server asks
 * no password there (the daemon's authentication is in front of it), so the port is bound to
 * a loopback address only.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { Command } from 'commander';
import type WebSocket from 'ws';
import type { ApiClient } from '../api/client.js';
import { contextOf, type Context } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { EXIT } from '../exit-codes.js';

/** Screen updates waiting for a slow viewer, beyond which the WebSocket is paused. */
const HIGH_WATER = 4 * 1024 * 1024;

export interface ListenAddress {
  host: string;
  port: number;
}

/** `PORT`, `HOST:PORT` or `[IPv6]:PORT`; HOST must be a loopback address. */
export function parseListen(text: string): ListenAddress {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):)?(\d{1,5})$/.exec(text);
  if (!m || Number(m[3]) > 65535) throw new UsageError(`--listen ${JSON.stringify(text)}: expected PORT, HOST:PORT or [IPv6]:PORT`);
  const host = m[1] ?? m[2] ?? '127.0.0.1';
  if (!/^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/.test(host)) {
    throw new UsageError(`--listen ${text}: the forwarded display asks no password, so it listens on a loopback address only (127.0.0.1, ::1)`);
  }
  return { host, port: Number(m[3]) };
}

/** The display of `name` must exist and be up; says what is wrong otherwise. */
async function checkDisplay(client: ApiClient, name: string): Promise<{ state: string }> {
  const { data: d } = await client.request('get', '/v1/domains/{name}', { params: { name } });
  if (!d.display) throw new CliError(`Domain ${name} has no display: vmctl edit ${name} --display vnc, then start it again`, EXIT.CONFLICT);
  return { state: d.state };
}

/** Pipes one accepted TCP connection to a new VNC WebSocket of the domain. */
async function forward(ctx: Context, name: string, sock: Socket): Promise<void> {
  sock.pause();
  let ws: WebSocket | undefined;
  try {
    ws = await ctx.client.websocket(`/v1/domains/${encodeURIComponent(name)}/vnc`, (data) => {
      if (!sock.write(data)) ws?.pause();
    });
  } catch (err) {
    ctx.err.write(`vmctl: cannot open the display of ${name}: ${(err as Error).message}\n`);
    sock.destroy();
    return;
  }
  const open = ws;
  sock.on('drain', () => open.resume());
  sock.on('data', (b: Buffer) => {
    if (open.readyState !== open.OPEN) return;
    open.send(b, { binary: true });
    if (open.bufferedAmount > HIGH_WATER) {
      sock.pause();
      const wait = () => (open.bufferedAmount > HIGH_WATER / 2 && open.readyState === open.OPEN ? setTimeout(wait, 10) : sock.resume());
      setTimeout(wait, 10);
    }
  });
  sock.on('close', () => open.close(1000, 'the viewer left'));
  sock.on('error', () => sock.destroy());
  open.on('close', () => sock.end());
  open.on('error', () => open.terminate());
  sock.resume();
}

async function serve(ctx: Context, name: string, at: ListenAddress): Promise<void> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    void forward(ctx, name, sock);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new CliError(`cannot listen on ${at.host}:${at.port}: ${err.code ?? err.message}`)));
    server.listen({ host: at.host, port: at.port }, () => resolve());
  });
  const { port } = server.address() as { port: number };
  const hostPort = at.host.includes(':') ? `[${at.host}]:${port}` : `${at.host}:${port}`;
  ctx.out.write(`Forwarding ${hostPort} to the display of domain ${name}; Ctrl-C ends.\nConnect a VNC viewer to ${hostPort} (no password).\n`);
  await new Promise<void>((resolve) => {
    const end = () => {
      process.off('SIGINT', end);
      process.off('SIGTERM', end);
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    };
    process.once('SIGINT', end);
    process.once('SIGTERM', end);
  });
}

/** How to reach the display, for people. */
function instructions(ctx: Context, name: string, state: string): string {
  const c = ctx.client.connection;
  const web = c.kind === 'tcp'
    ? `${c.url.origin}${c.url.pathname.replace(/\/$/, '')}/ui/#/domains/${encodeURIComponent(name)}/display`
    : 'served on vmctld\'s TCP listener (vmctld --listen), at /ui/';
  return [
    `Domain ${name} has a VNC display (it is ${state}${state === 'running' || state === 'paused' ? '' : '; start it to see the screen'}).`,
    `  VNC viewer:   vmctl vnc ${name} --listen 127.0.0.1:5901, then connect the viewer to 127.0.0.1:5901`,
    `  web console:  ${web}`,
    `  WebSocket:    /v1/domains/${name}/vnc (RFB 3.8, security None, as noVNC speaks it)`,
    '',
  ].join('\n');
}

export const vncCommand = () =>
  new Command('vnc')
    .description('Show how to reach a domain\'s display, or forward a local port to it for a VNC viewer (--listen)')
    .argument('<name>', 'the domain')
    .option('--listen <[host:]port>', 'forward this loopback port to the display (port 0 picks one) until Ctrl-C')
    .action(async (name: string, opts: { listen?: string }, cmd: Command) => {
      const ctx = contextOf(cmd);
      const at = opts.listen !== undefined ? parseListen(opts.listen) : undefined;
      const { state } = await checkDisplay(ctx.client, name);
      if (!at) {
        ctx.out.write(instructions(ctx, name, state));
        return;
      }
      if (state !== 'running' && state !== 'paused') {
        throw new CliError(`Domain ${name} is ${state}: start it first (vmctl start ${name})`, EXIT.CONFLICT);
      }
      await serve(ctx, name, at);
    });
