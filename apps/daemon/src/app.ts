/**
 * vmctld's HTTP application as a fastify plugin: schemas and their compilers, the error
 * mapping, authentication, and the routes. `server.ts` registers it on each listener; tests
 * build it with `buildApp()` and drive it with `app.inject()`.
 */
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyPluginAsync, type FastifyServerOptions } from 'fastify';
import websocket from '@fastify/websocket';
import swagger from '@fastify/swagger';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { DomainService } from './domain-service.js';
import { ApiError, PROBLEM_CONTENT_TYPE, toProblem } from './errors.js';
import type { EventBus } from './events.js';
import { swaggerOptions } from './openapi.js';
import type { Host } from './schemas/host.js';
import type { Supervisor } from './supervisor/supervisor.js';
import { actionRoutes } from './routes/actions.js';
import { consoleRoutes } from './routes/console.js';
import { domainRoutes } from './routes/domains.js';
import { eventRoutes } from './routes/events.js';
import { hostRoutes } from './routes/host.js';
import { ticketRoutes } from './routes/tickets.js';
import { vncRoutes } from './routes/vnc.js';
import { webRoutes } from './routes/web.js';
import type { TicketScope, TicketStore } from './tickets.js';

export interface AppOptions {
  service: DomainService;
  supervisor: Supervisor;
  events: EventBus;
  host: () => Host;
  /** when set, every request needs `Authorization: Bearer <token>` (the TCP listener) */
  token?: string;
  /** console tickets: WebSockets take one (`?ticket=`) in place of the token */
  tickets: TicketStore;
  /** the built web console (default: dist/web) */
  webDir?: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** served without authentication, even on the TCP listener: the web console's files */
    public?: boolean;
    /** a WebSocket that takes a console ticket (`?ticket=`) for a domain, or for the events */
    ticket?: 'domain' | 'events';
  }
}

/** The default body limit; routes that take definitions set their own (64 KiB). */
export const BODY_LIMIT = 64 * 1024;
/** A console or events WebSocket message larger than this closes the socket. */
const WS_MAX_PAYLOAD = 1024 * 1024;

/** noVNC asks for the `binary` subprotocol; no other is spoken. */
function chooseProtocol(offered: Set<string>): string | false {
  return offered.has('binary') ? 'binary' : false;
}

/** A request's URL with any ticket blanked out, for problem bodies. */
function withoutTicket(url: string): string {
  return url.replace(/([?&]ticket=)[^&]*/g, '$1…');
}

function tokenMatches(header: string | undefined, token: string): boolean {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!m) return false;
  const given = Buffer.from(m[1]!);
  const want = Buffer.from(token);
  return given.length === want.length && timingSafeEqual(given, want);
}

export const vmctlApp: FastifyPluginAsync<AppOptions> = async (app, opts) => {
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  // JSON only: without this, fastify would hand a text/plain body to the schema as a string
  app.removeContentTypeParser('text/plain');
  // An empty body announced as JSON is no body (clients do send that with bodiless POSTs);
  // anything else goes through fastify's own parser, which refuses __proto__ and constructor.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    if (body === '') done(null, undefined);
    else parseJson(req, body as string, done);
  });

  app.setErrorHandler((err, req, reply) => {
    const problem = toProblem(err);
    if (problem.status >= 500) req.log.error({ err }, problem.detail);
    if (problem.code === 'UNAUTHORIZED') reply.header('www-authenticate', 'Bearer realm="vmctl"');
    return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send({ ...problem, instance: withoutTicket(req.url) });
  });
  app.setNotFoundHandler((req, reply) => {
    const problem = toProblem(new ApiError('ROUTE_NOT_FOUND', `No route for ${req.method} ${req.url.split('?')[0]}`));
    return reply.code(404).type(PROBLEM_CONTENT_TYPE).send({ ...problem, instance: withoutTicket(req.url) });
  });

  // before the auth hook: its own onRequest hook marks upgrade requests, so that a refused
  // upgrade's socket is closed after the answer
  await app.register(websocket, { options: { maxPayload: WS_MAX_PAYLOAD, handleProtocols: chooseProtocol } });
  // Authentication: the web console's files are public; a WebSocket upgrade that carries a
  // ticket is let in by the ticket alone (checked on every listener, so a bad one is refused
  // alike); everything else needs the bearer token where there is one (TCP).
  const { token, tickets, service } = opts;
  app.addHook('onRequest', async (req) => {
    const config = req.routeOptions.config ?? {};
    if (config.public) return;
    const ticket = (req.query as { ticket?: unknown } | undefined)?.ticket;
    if (config.ticket && req.ws && typeof ticket === 'string') {
      let scope: TicketScope = { kind: 'events' };
      if (config.ticket === 'domain') {
        // no domain of that name: refused like any ticket for another domain, so that a
        // caller without credentials learns nothing about which names exist
        const rec = service.find((req.params as { name?: string }).name ?? '');
        scope = { kind: 'domain', uuid: rec?.uuid ?? '' };
      }
      const refused = tickets.redeem(ticket, scope);
      if (refused === undefined) return;
      const why = { unknown: 'unknown or already used', expired: 'expired', 'wrong-scope': 'issued for another domain or endpoint' }[refused];
      throw new ApiError('INVALID_TICKET', `The ticket is ${why}; get a new one (each is good for one connection within ${tickets.ttlMs / 1000} s)`);
    }
    if (token !== undefined && !tokenMatches(req.headers.authorization, token)) {
      throw new ApiError('UNAUTHORIZED', 'This listener needs Authorization: Bearer <token>');
    }
  });

  await app.register(swagger, swaggerOptions);

  await app.register(domainRoutes, { service: opts.service });
  await app.register(actionRoutes, { service: opts.service });
  await app.register(consoleRoutes, { service: opts.service, supervisor: opts.supervisor });
  await app.register(vncRoutes, { service: opts.service, supervisor: opts.supervisor });
  await app.register(ticketRoutes, { service: opts.service, tickets: opts.tickets });
  await app.register(eventRoutes, { events: opts.events });
  await app.register(hostRoutes, { host: opts.host });
  await app.register(webRoutes, opts.webDir !== undefined ? { dir: opts.webDir } : {});

  app.get('/v1/openapi.json', { schema: { hide: true } as object }, async () => app.swagger());
};

// Like fastify-plugin: the app's decorators (injectWS, swagger), hooks and error handler
// belong to the instance it is registered on, which buildApp makes for it alone.
(vmctlApp as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;

/** A fastify instance with the app registered: what server.ts listens with and tests inject into. */
export async function buildApp(opts: AppOptions, server: FastifyServerOptions = {}): Promise<FastifyInstance> {
  const app = Fastify({ bodyLimit: BODY_LIMIT, ...server });
  await app.register(vmctlApp, opts);
  await app.ready();
  return app;
}
