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

export interface AppOptions {
  service: DomainService;
  supervisor: Supervisor;
  events: EventBus;
  host: () => Host;
  /** when set, every request needs `Authorization: Bearer <token>` (the TCP listener) */
  token?: string;
}

/** The default body limit; routes that take definitions set their own (64 KiB). */
export const BODY_LIMIT = 64 * 1024;
/** A console or events WebSocket message larger than this closes the socket. */
const WS_MAX_PAYLOAD = 1024 * 1024;

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
    return reply.code(problem.status).type(PROBLEM_CONTENT_TYPE).send({ ...problem, instance: req.url });
  });
  app.setNotFoundHandler((req, reply) => {
    const problem = toProblem(new ApiError('ROUTE_NOT_FOUND', `No route for ${req.method} ${req.url.split('?')[0]}`));
    return reply.code(404).type(PROBLEM_CONTENT_TYPE).send({ ...problem, instance: req.url });
  });

  // before the auth hook: its own onRequest hook marks upgrade requests, so that a refused
  // upgrade's socket is closed after the answer
  await app.register(websocket, { options: { maxPayload: WS_MAX_PAYLOAD } });
  if (opts.token !== undefined) {
    const token = opts.token;
    app.addHook('onRequest', async (req) => {
      if (!tokenMatches(req.headers.authorization, token)) {
        throw new ApiError('UNAUTHORIZED', 'This listener needs Authorization: Bearer <token>');
      }
    });
  }

  await app.register(swagger, swaggerOptions);

  await app.register(domainRoutes, { service: opts.service });
  await app.register(actionRoutes, { service: opts.service });
  await app.register(consoleRoutes, { service: opts.service, supervisor: opts.supervisor });
  await app.register(eventRoutes, { events: opts.events });
  await app.register(hostRoutes, { host: opts.host });

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
