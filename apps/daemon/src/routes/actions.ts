/**
 * /v1/domains/{name}/actions/{action}: the lifecycle actions, one route each so that each is
 * documented with its own parameters. Actions on one domain run one at a time, in order.
 */
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { DomainService } from '../domain-service.js';
import { DomainStatus, EmptyBody, NameParams, ShutdownQuery, type Action } from '../schemas/domain.js';
import { ACTION_FROM } from '../supervisor/state-machine.js';
import { errorResponses, json } from './responses.js';

const DESCRIPTIONS: Record<Action, { summary: string; description: string }> = {
  start: {
    summary: 'Start a domain',
    description: 'Checks the host paths, spawns the domain\'s worker and answers once the guest runs (or has already ended, for a guest that powers off at once).',
  },
  shutdown: {
    summary: 'Shut a domain down gracefully',
    description: 'Presses the ACPI power button; if the guest is not off after `timeout` seconds (default 60), forces it off. Answers 202 (state stopping) at once, or 200 once the domain is shutoff with `wait=true`.',
  },
  stop: { summary: 'Stop a domain (force)', description: 'Ends the worker at once, like pulling the plug. From crashed, it acknowledges the crash (→ shutoff).' },
  reboot: { summary: 'Reboot a domain', description: 'Sends Ctrl-Alt-Del to the guest; the guest decides. The worker, and the console, stay.' },
  reset: { summary: 'Reset a domain', description: 'A hard reset: the machine is rebuilt and boots again in the same worker; the console stays.' },
  pause: { summary: 'Pause a domain', description: 'Stops the vCPUs; memory and devices stay.' },
  resume: { summary: 'Resume a paused domain', description: 'Lets the vCPUs run again.' },
};

const NoQuery = z.strictObject({});

export const actionRoutes: FastifyPluginAsyncZod<{ service: DomainService }> = async (app, { service }) => {
  for (const action of Object.keys(DESCRIPTIONS) as Action[]) {
    const { summary, description } = DESCRIPTIONS[action];
    const errors = errorResponses(
      'VALIDATION_FAILED', 'MALFORMED_BODY', 'UNSUPPORTED_MEDIA_TYPE', 'BODY_TOO_LARGE', 'DOMAIN_NOT_FOUND', 'INVALID_STATE_TRANSITION',
      'WORKER_UNAVAILABLE', 'WORKER_TIMEOUT', 'WORKER_ERROR',
      ...(action === 'start' ? (['PATH_NOT_FOUND', 'PATH_NOT_ALLOWED', 'UNSUPPORTED_CONFIG', 'KVM_UNAVAILABLE', 'WORKER_START_FAILED'] as const) : []),
    );
    app.post(`/v1/domains/:name/actions/${action}`, {
      bodyLimit: 1024,
      schema: {
        tags: ['actions'],
        summary,
        description: `${description} Allowed when the domain is ${ACTION_FROM[action].join(', ')}; otherwise 409 INVALID_STATE_TRANSITION. No body (or \`{}\`).`,
        params: NameParams,
        querystring: action === 'shutdown' ? ShutdownQuery : NoQuery,
        body: EmptyBody,
        response: {
          200: json(DomainStatus, action === 'shutdown' ? 'The domain is off (with wait=true, or timeout=0)' : 'The action is done; the domain\'s state after it'),
          ...(action === 'shutdown' ? { 202: json(DomainStatus, 'The power button was pressed; the domain is stopping') } : {}),
          ...errors,
        },
      },
    }, async (req, reply) => {
      const q = req.query as z.output<typeof ShutdownQuery>;
      const result = await service.act(req.params.name, action, action === 'shutdown' ? { ...(q.timeout !== undefined ? { timeout: q.timeout } : {}), wait: q.wait ?? false } : {});
      return reply.code(result.pending ? 202 : 200).send(result.status);
    });
  }
};
