/**
 * /v1/domains/{name}/console: the serial console over a WebSocket, raw bytes both ways.
 * Each viewer gets its own connection to the worker's console socket, so each first receives
 * the worker's replay (the last 1 MiB of output) and then the live stream; what any viewer
 * sends goes to the guest. The worker outlives guest reboots, and so does the console.
 */
import { connect } from 'node:net';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { DomainService } from '../domain-service.js';
import { ApiError } from '../errors.js';
import { NameParams } from '../schemas/domain.js';
import { TicketQuery } from '../schemas/ticket.js';
import type { Supervisor } from '../supervisor/supervisor.js';
import { errorResponses, SWITCHING_PROTOCOLS } from './responses.js';

/** Output waiting for a slow viewer, beyond which the worker's socket is paused. */
const HIGH_WATER = 1024 * 1024;

declare module 'fastify' {
  interface FastifyRequest {
    consoleSocket?: string;
  }
}

export const consoleRoutes: FastifyPluginAsyncZod<{ service: DomainService; supervisor: Supervisor }> = async (app, { service, supervisor }) => {
  app.route({
    method: 'GET',
    url: '/v1/domains/:name/console',
    config: { ticket: 'domain' },
    schema: {
      tags: ['console'],
      summary: 'Attach to the serial console (WebSocket)',
      description: 'Upgrade to a WebSocket carrying the serial console as binary messages both ways (text messages from the client are sent as their UTF-8 bytes). On attach the last 1 MiB of output is replayed. Several viewers may attach at once. The socket stays open across guest reboots and closes (code 1000) when the worker ends. Refused with 409 DOMAIN_NOT_RUNNING before the upgrade if the domain has no worker. On the TCP listener a ticket from `POST /v1/domains/{name}/console-ticket`, as `?ticket=`, may stand in for the bearer token.',
      params: NameParams,
      querystring: TicketQuery,
      response: { 101: SWITCHING_PROTOCOLS, ...errorResponses('VALIDATION_FAILED', 'INVALID_TICKET', 'DOMAIN_NOT_FOUND', 'DOMAIN_NOT_RUNNING', 'UPGRADE_REQUIRED') },
    },
    preHandler: async (req) => {
      const rec = service.get((req.params as { name: string }).name);
      const path = supervisor.consoleSocket(rec.uuid);
      if (!path) throw new ApiError('DOMAIN_NOT_RUNNING', `Domain "${rec.name}" is ${rec.runtime.state}: it has no console to attach to`, { state: rec.runtime.state });
      req.consoleSocket = path;
    },
    handler: async () => {
      throw new ApiError('UPGRADE_REQUIRED', 'The console is a WebSocket endpoint');
    },
    wsHandler: (ws, req) => {
      const sock = connect(req.consoleSocket!);
      let paused = false;
      const drain = () => {
        if (ws.bufferedAmount < HIGH_WATER / 2) {
          paused = false;
          sock.resume();
        } else setTimeout(drain, 10);
      };
      sock.on('data', (b: Buffer) => {
        ws.send(b, { binary: true });
        if (!paused && ws.bufferedAmount > HIGH_WATER) {
          paused = true;
          sock.pause();
          setTimeout(drain, 10);
        }
      });
      sock.on('error', () => sock.destroy());
      sock.on('close', () => {
        if (ws.readyState !== ws.OPEN) return;
        ws.close(1000, 'the console closed: the worker ended');
        // a viewer that never answers the close handshake is cut off, not waited for
        setTimeout(() => ws.terminate(), 2000).unref();
      });
      ws.on('message', (data: Buffer | ArrayBuffer | Buffer[]) => {
        const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
        if (!sock.destroyed) sock.write(bytes);
      });
      ws.on('close', () => sock.destroy());
      ws.on('error', () => ws.terminate());
    },
  });
};
