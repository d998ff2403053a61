/**
 * Console tickets: POST /v1/domains/{name}/console-ticket and POST /v1/events/ticket. Each
 * answers a secret good for one WebSocket within 30 s — the domain's console or VNC socket,
 * or the events stream — passed as `?ticket=`. This is how the web console opens WebSockets
 * on the TCP listener without putting the bearer token in a URL. (The authentication hook in
 * app.ts redeems them.)
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { DomainService } from '../domain-service.js';
import { EmptyBody, NameParams } from '../schemas/domain.js';
import { Ticket } from '../schemas/ticket.js';
import type { IssuedTicket, TicketStore } from '../tickets.js';
import { errorResponses, json } from './responses.js';

const toTicket = (t: IssuedTicket): Ticket => ({ ticket: t.ticket, expires_at: t.expiresAt.toISOString() });

export const ticketRoutes: FastifyPluginAsyncZod<{ service: DomainService; tickets: TicketStore }> = async (app, { service, tickets }) => {
  app.post('/v1/domains/:name/console-ticket', {
    bodyLimit: 1024,
    schema: {
      tags: ['console'],
      summary: 'Get a console ticket for a domain',
      description: 'A single-use ticket, good for 30 s, that opens one of this domain\'s WebSockets — `/v1/domains/{name}/console` or `/v1/domains/{name}/vnc` — as `?ticket=<ticket>` in place of the bearer token. No body (or `{}`).',
      params: NameParams,
      body: EmptyBody,
      response: {
        200: json(Ticket, 'The ticket'),
        ...errorResponses('VALIDATION_FAILED', 'MALFORMED_BODY', 'UNSUPPORTED_MEDIA_TYPE', 'BODY_TOO_LARGE', 'DOMAIN_NOT_FOUND'),
      },
    },
  }, async (req) => toTicket(tickets.issue({ kind: 'domain', uuid: service.get(req.params.name).uuid })));

  app.post('/v1/events/ticket', {
    bodyLimit: 1024,
    schema: {
      tags: ['events'],
      summary: 'Get a ticket for the events stream',
      description: 'A single-use ticket, good for 30 s, that opens `/v1/events` as `?ticket=<ticket>` in place of the bearer token. No body (or `{}`).',
      body: EmptyBody,
      response: {
        200: json(Ticket, 'The ticket'),
        ...errorResponses('VALIDATION_FAILED', 'MALFORMED_BODY', 'UNSUPPORTED_MEDIA_TYPE', 'BODY_TOO_LARGE'),
      },
    },
  }, async () => toTicket(tickets.issue({ kind: 'events' })));
};
