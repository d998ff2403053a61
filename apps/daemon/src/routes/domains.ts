/** /v1/domains: definitions — list, create, read, replace, patch, delete — and state. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { etagOf, toDomain, type DomainService } from '../domain-service.js';
import { DeleteQuery, Domain, DomainList, DomainPatch, DomainReplace, DomainSpec, DomainStatus, ListQuery, NameParams } from '../schemas/domain.js';
import { BODY_ERRORS, errorResponses, json } from './responses.js';

/** A definition is small; anything bigger is a mistake or an attack. */
export const DOMAIN_BODY_LIMIT = 64 * 1024;

const IfMatchHeaders = z.object({
  'if-match': z.string().max(1024).optional().meta({ description: 'An ETag from a previous read; the update is refused (412) if the domain changed since' }),
});

export const domainRoutes: FastifyPluginAsyncZod<{ service: DomainService }> = async (app, { service }) => {
  app.get('/v1/domains', {
    // Every item was validated on its way in; checking 1,000 of them again on the way out
    // costs more than the rest of the request (DESIGN.md §4: list 1,000 < 20 ms).
    serializerCompiler: () => (data) => JSON.stringify(data),
    schema: {
      tags: ['domains'],
      summary: 'List domains',
      description: 'Every domain with its definition and current state, sorted by name.',
      querystring: ListQuery,
      response: { 200: json(DomainList, 'The domains'), ...errorResponses('VALIDATION_FAILED') },
    },
  }, async (req) => ({ items: service.list(req.query.state) }));

  app.post('/v1/domains', {
    bodyLimit: DOMAIN_BODY_LIMIT,
    schema: {
      tags: ['domains'],
      summary: 'Define a domain',
      description: 'Stores a new definition (state shutoff). Host paths must exist and be regular files. The worker gets the `disks` (virtio-blk) and `nics` (virtio-net over tap) at each start. Answers 201 with `Location` and `ETag` headers.',
      body: DomainSpec,
      response: { 201: json(Domain, 'The new domain'), ...errorResponses(...BODY_ERRORS, 'DOMAIN_EXISTS', 'NO_DEFAULT_GUEST', 'PATH_NOT_ALLOWED', 'PATH_NOT_FOUND') },
    },
  }, async (req, reply) => {
    const rec = service.create(req.body);
    return reply.code(201).header('location', `/v1/domains/${rec.name}`).header('etag', etagOf(rec)).send(toDomain(rec));
  });

  app.get('/v1/domains/:name', {
    schema: {
      tags: ['domains'],
      summary: 'Read a domain',
      description: 'The definition and current state; the `ETag` header (also the `etag` field) is what `If-Match` takes.',
      params: NameParams,
      response: { 200: json(Domain, 'The domain'), ...errorResponses('VALIDATION_FAILED', 'DOMAIN_NOT_FOUND') },
    },
  }, async (req, reply) => {
    const rec = service.get(req.params.name);
    return reply.header('etag', etagOf(rec)).send(toDomain(rec));
  });

  app.put('/v1/domains/:name', {
    bodyLimit: DOMAIN_BODY_LIMIT,
    schema: {
      tags: ['domains'],
      summary: 'Replace a domain\'s definition',
      description: 'The whole definition (fields left out take their defaults). `name` and `uuid`, if given, must be the current ones. With `If-Match`, refused with 412 if the domain changed since it was read. A running domain keeps running; the new definition applies at its next start.',
      params: NameParams,
      headers: IfMatchHeaders,
      body: DomainReplace,
      response: { 200: json(Domain, 'The updated domain'), ...errorResponses(...BODY_ERRORS, 'DOMAIN_NOT_FOUND', 'IMMUTABLE_FIELD', 'PRECONDITION_FAILED', 'NO_DEFAULT_GUEST', 'PATH_NOT_ALLOWED', 'PATH_NOT_FOUND') },
    },
  }, async (req, reply) => {
    const rec = service.replace(req.params.name, { ...req.body, name: req.body.name ?? req.params.name }, req.headers['if-match']);
    return reply.header('etag', etagOf(rec)).send(toDomain(rec));
  });

  app.patch('/v1/domains/:name', {
    bodyLimit: DOMAIN_BODY_LIMIT,
    schema: {
      tags: ['domains'],
      summary: 'Change part of a domain\'s definition',
      description: 'Each field given replaces the stored one (objects and arrays wholesale). With `If-Match`, refused with 412 if the domain changed since it was read. Applies at the next start.',
      params: NameParams,
      headers: IfMatchHeaders,
      body: DomainPatch,
      response: { 200: json(Domain, 'The updated domain'), ...errorResponses(...BODY_ERRORS, 'DOMAIN_NOT_FOUND', 'IMMUTABLE_FIELD', 'PRECONDITION_FAILED', 'PATH_NOT_ALLOWED', 'PATH_NOT_FOUND') },
    },
  }, async (req, reply) => {
    const rec = service.patch(req.params.name, req.body, req.headers['if-match']);
    return reply.header('etag', etagOf(rec)).send(toDomain(rec));
  });

  app.delete('/v1/domains/:name', {
    schema: {
      tags: ['domains'],
      summary: 'Delete a domain',
      description: 'Removes the definition. Refused (409 DOMAIN_RUNNING) while the domain has a worker, unless `force=true`, which stops it first.',
      params: NameParams,
      querystring: DeleteQuery,
      response: { 204: z.undefined().meta({ description: 'Deleted' }), ...errorResponses('VALIDATION_FAILED', 'DOMAIN_NOT_FOUND', 'DOMAIN_RUNNING', 'WORKER_TIMEOUT') },
    },
  }, async (req, reply) => {
    await service.delete(req.params.name, req.query.force ?? false);
    return reply.code(204).send();
  });

  app.get('/v1/domains/:name/state', {
    schema: {
      tags: ['domains'],
      summary: 'Read a domain\'s state',
      description: 'The lifecycle state, why and since when, the worker\'s pid, and live counters from the worker while it runs.',
      params: NameParams,
      response: { 200: json(DomainStatus, 'The domain\'s state'), ...errorResponses('VALIDATION_FAILED', 'DOMAIN_NOT_FOUND') },
    },
  }, async (req) => service.status(req.params.name));
};
