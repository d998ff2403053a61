/** /v1/host: capabilities and versions. */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { Host } from '../schemas/host.js';
import { errorResponses, json } from './responses.js';

export const hostRoutes: FastifyPluginAsyncZod<{ host: () => Host }> = async (app, { host }) => {
  app.get('/v1/host', {
    schema: {
      tags: ['host'],
      summary: 'Host capabilities and versions',
      description: 'Whether KVM is present and usable (and whether it is kvm_pvm, where guest kernel code is emulated), the capabilities the VMM relies on, and the versions of vmctl, Node.js and the worker control protocol.',
      response: { 200: json(Host, 'The host'), ...errorResponses() },
    },
  }, async () => host());
};
