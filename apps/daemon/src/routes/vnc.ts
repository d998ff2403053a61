/**
 * /v1/domains/{name}/vnc: the domain's display as RFB 3.8 over a binary WebSocket, as noVNC
 * speaks it (the `binary` subprotocol is accepted). Each client gets its own connection to
 * the worker's VNC socket, whose security type is None: the daemon's own authentication — the
 * Unix socket's permissions, or the bearer token or a console ticket on TCP — stands in front
 * of it. Bytes pass unchanged both ways; the worker's VNC server parses them and closes a
 * connection that breaks the protocol, which closes the WebSocket.
 */
import { connect, type Socket } from 'node:net';
import type { WebSocket } from 'ws';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { DomainService } from '../domain-service.js';
import { ApiError } from '../errors.js';
import { NameParams } from '../schemas/domain.js';
import { TicketQuery } from '../schemas/ticket.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { errorResponses, SWITCHING_PROTOCOLS } from './responses.js';

/** Screen updates waiting for a slow client, beyond which the worker's socket is paused. */
const HIGH_WATER = 4 * 1024 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    vncSocket?: string;
  }
}

/** Carries bytes both ways between a WebSocket and a stream socket, each side paced by the other. */
export function bridge(ws: WebSocket, sock: Socket, what: string): void {
  let paused = false;
  const drain = () => {
    if (ws.readyState !== ws.OPEN) return;
    if (ws.bufferedAmount < HIGH_WATER / 2) {
      paused = false;
      sock.resume();
    } else setTimeout(drain, 10);
  };
  sock.on('data', (b: Buffer) => {
    if (ws.readyState !== ws.OPEN) return;
    ws.send(b, { binary: true });
    if (!paused && ws.bufferedAmount > HIGH_WATER) {
      paused = true;
      sock.pause();
      setTimeout(drain, 10);
    }
  });
  sock.on('drain', () => ws.resume());
  sock.on('error', (err: NodeJS.ErrnoException) => {
    if (ws.readyState === ws.OPEN) ws.close(1011, `cannot reach the ${what}: ${err.code ?? err.message}`);
    sock.destroy();
  });
  sock.on('close', () => {
    if (ws.readyState !== ws.OPEN) return;
    ws.close(1000, `the ${what} closed the connection`);
    // a client that never answers the close handshake is cut off, not waited for
    setTimeout(() => ws.terminate(), 2000).unref();
  });
  ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
    const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    if (sock.destroyed) return;
    // the worker reads slower than the client sends: stop reading the client until it caught up
    if (!sock.write(bytes)) ws.pause();
  });
  ws.on('close', () => sock.destroy());
  ws.on('error', () => ws.terminate());
}

export const vncRoutes: FastifyPluginAsyncZod<{ service: DomainService; supervisor: Supervisor }> = async (app, { service, supervisor }) => {
  app.route({
    method: 'GET',
    url: '/v1/domains/:name/vnc',
    config: { ticket: 'domain' },
    schema: {
      tags: ['console'],
      summary: 'Attach to the display over VNC (WebSocket)',
      description: 'Upgrade to a WebSocket carrying RFB 3.8 (RFC 6143) as binary messages both ways, security type None, as noVNC speaks it (subprotocol `binary`, if asked for). The worker\'s VNC server offers Raw and ZRLE with DesktopSize; keys and pointer go to the guest\'s PS/2 keyboard and mouse and its virtio tablet. Several clients may attach at once. Closes (1000) when the worker ends. Refused before the upgrade with 409 NO_DISPLAY when the domain has no display, and 409 DOMAIN_NOT_RUNNING when it has no worker.',
      params: NameParams,
      querystring: TicketQuery,
      response: { 101: SWITCHING_PROTOCOLS, ...errorResponses('VALIDATION_FAILED', 'INVALID_TICKET', 'DOMAIN_NOT_FOUND', 'NO_DISPLAY', 'DOMAIN_NOT_RUNNING', 'UPGRADE_REQUIRED') },
    },
    preHandler: async (req) => {
      const rec = service.get((req.params as { name: string }).name);
      if (!rec.definition.display) throw new ApiError('NO_DISPLAY', `Domain "${rec.name}" has no display: add display: {type: vnc} to its definition and start it again`);
      if (!supervisor.consoleSocket(rec.uuid)) throw new ApiError('DOMAIN_NOT_RUNNING', `Domain "${rec.name}" is ${rec.runtime.state}: it has no display to attach to`, { state: rec.runtime.state });
      const path = supervisor.vncSocket(rec.uuid);
      if (!path) throw new ApiError('NO_DISPLAY', `Domain "${rec.name}" was started before it had a display; it gets one at its next start`);
      req.vncSocket = path;
    },
    handler: async () => {
      throw new ApiError('UPGRADE_REQUIRED', 'The VNC endpoint is a WebSocket endpoint');
    },
    wsHandler: (ws, req) => bridge(ws, connect(req.vncSocket!), 'display'),
  });
};
