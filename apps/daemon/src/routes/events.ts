/**
 * /v1/events: lifecycle events over a WebSocket, one JSON text message each. `?domain=`
 * keeps one domain's; `?since=<id>` first replays the kept events after that id, so a client
 * that reconnects with the last id it saw misses nothing.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { EventBus } from '../events.js';
import { EventsQuery, type Event } from '../schemas/event.js';
import { ApiError } from '../errors.js';
import { errorResponses, SWITCHING_PROTOCOLS } from './responses.js';

/** A client that lets this much pile up unread is cut off rather than let grow the daemon. */
const MAX_BUFFERED = 16 * 1024 * 1024;
const PING_MS = 30_000;

export const eventRoutes: FastifyPluginAsyncZod<{ events: EventBus }> = async (app, { events }) => {
  app.route({
    method: 'GET',
    url: '/v1/events',
    config: { ticket: 'events' },
    schema: {
      tags: ['events'],
      summary: 'Stream lifecycle events (WebSocket)',
      description: 'Upgrade to a WebSocket; the server sends each event (schema `Event`) as a JSON text message, oldest first. Messages from the client are ignored. On the TCP listener the upgrade request needs the bearer token like any other, or a ticket from `POST /v1/events/ticket` as `?ticket=`.',
      querystring: EventsQuery,
      response: { 101: SWITCHING_PROTOCOLS, ...errorResponses('VALIDATION_FAILED', 'INVALID_TICKET', 'UPGRADE_REQUIRED') },
    },
    handler: async () => {
      throw new ApiError('UPGRADE_REQUIRED', '/v1/events is a WebSocket endpoint');
    },
    wsHandler: (socket, req) => {
      const { domain, since } = req.query;
      const send = (e: Event) => {
        if (domain && e.domain !== domain) return;
        if (socket.bufferedAmount > MAX_BUFFERED) {
          socket.close(1008, 'too slow: events are piling up');
          return;
        }
        socket.send(JSON.stringify(e));
      };
      // subscribe and replay in the same tick: no event can slip between the two
      const unsubscribe = events.subscribe(send);
      if (since !== undefined) for (const e of events.since(since, domain)) send(e);
      const ping = setInterval(() => socket.ping(), PING_MS);
      socket.on('close', () => {
        clearInterval(ping);
        unsubscribe();
      });
      socket.on('error', () => socket.terminate());
    },
  });
};
