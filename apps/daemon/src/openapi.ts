/**
 * The OpenAPI 3.1 document, generated from the routes' zod schemas by @fastify/swagger and
 * fastify-type-provider-zod, then completed here: the error-code table (from errors.ts), the
 * bearer scheme, and problem+json on every error response. `npm run openapi -w @vmctl/daemon`
 * writes it to openapi/vmctl.json; a test fails when the checked-in copy is stale.
 */
import { fileURLToPath } from 'node:url';
import type { SwaggerOptions } from '@fastify/swagger';
import { jsonSchemaTransform, jsonSchemaTransformObject } from 'fastify-type-provider-zod';
import { ERROR_CODES, ERROR_CODE_LIST } from './errors.js';
import { VMCTL_VERSION } from './host-info.js';

export const OPENAPI_FILE = fileURLToPath(new URL('../../../openapi/vmctl.json', import.meta.url));

function errorTable(): string {
  const rows = ERROR_CODE_LIST.map((c) => `| \`${c}\` | ${ERROR_CODES[c].status} | ${ERROR_CODES[c].description.replaceAll('|', '\\|')} |`);
  return ['| code | status | when |', '|---|---|---|', ...rows].join('\n');
}

const DESCRIPTION = `The vmctl daemon's API: domains (virtual machines) — their definitions, lifecycle actions and state — lifecycle events, the serial console, and the host.

**Transport.** vmctld listens on a Unix socket (\`/run/vmctl/vmctld.sock\`, mode 0660) with no further authentication: access to the socket is the permission. With \`--listen host:port\` it also listens on TCP, where every request, WebSocket upgrades included, needs \`Authorization: Bearer <token>\`. A WebSocket upgrade may instead carry a console ticket as \`?ticket=\` (\`POST /v1/domains/{name}/console-ticket\`, \`POST /v1/events/ticket\`): single-use, good for 30 s, so that a browser never puts the token in a URL. The web console (\`/ui/\`) is served to anyone and asks for the token itself.

**Definitions and state** are separate, as in libvirt: PUT/PATCH change the definition (applied at the next start); actions change the state. Updates take \`If-Match\` with the ETag of the last read and are refused with 412 when the domain changed since.

**Lifecycle.** shutoff → starting → running ⇄ paused → stopping → shutoff, plus crashed (the worker or the guest died). Actions on one domain run one at a time, in order; an action the current state does not allow is a 409 \`INVALID_STATE_TRANSITION\`.

**Errors** are \`application/problem+json\` (RFC 9457) with a stable \`code\`:

${errorTable()}
`;

export const swaggerOptions: SwaggerOptions = {
  openapi: {
    openapi: '3.1.0',
    info: { title: 'vmctl', version: VMCTL_VERSION, description: DESCRIPTION, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
    servers: [{ url: 'http://localhost', description: 'The Unix socket /run/vmctl/vmctld.sock, or the TCP address given with --listen' }],
    tags: [
      { name: 'domains', description: 'Domain definitions and state' },
      { name: 'actions', description: 'Lifecycle actions' },
      { name: 'events', description: 'Lifecycle events (WebSocket)' },
      { name: 'console', description: 'The serial console (WebSocket)' },
      { name: 'host', description: 'The host' },
    ],
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Needed on the TCP listener only' } },
    },
    security: [{}, { bearer: [] }],
  },
  transform: jsonSchemaTransform,
  transformObject: (doc) => {
    const out = jsonSchemaTransformObject(doc) as OpenApiDocument;
    pruneSchemas(out, KEEP_SCHEMAS);
    optionalNullableBodies(out);
    out['x-error-codes'] = Object.fromEntries(ERROR_CODE_LIST.map((c) => [c, { ...ERROR_CODES[c] }]));
    return out as ReturnType<typeof jsonSchemaTransformObject>;
  },
};

interface OpenApiDocument {
  components?: { schemas?: Record<string, unknown> };
  [key: string]: unknown;
}

/** A body that may be null (the actions' "no body, or {}") is not required. */
function optionalNullableBodies(doc: OpenApiDocument): void {
  const paths = (doc.paths ?? {}) as Record<string, Record<string, { requestBody?: { required?: boolean; content?: Record<string, { schema?: { anyOf?: { type?: string }[] } }> } }>>;
  for (const ops of Object.values(paths)) {
    for (const op of Object.values(ops)) {
      const rb = op.requestBody;
      if (rb && Object.values(rb.content ?? {}).some((c) => c.schema?.anyOf?.some((s) => s.type === 'null'))) rb.required = false;
    }
  }
}

/** Schemas no route names but clients need: the messages of the events WebSocket. */
const KEEP_SCHEMAS = ['Event'];

/**
 * Drops the component schemas nothing refers to. The type provider registers an input and
 * an output variant of every named schema; most routes use only one of the two.
 */
function pruneSchemas(doc: OpenApiDocument, keep: string[]): void {
  const schemas = doc.components?.schemas;
  if (!schemas) return;
  const PREFIX = '#/components/schemas/';
  const used = new Set<string>(keep);
  const visit = (node: unknown): void => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string' && v.startsWith(PREFIX)) {
          const name = v.slice(PREFIX.length);
          if (!used.has(name)) {
            used.add(name);
            visit(schemas[name]);
          }
        } else visit(v);
      }
    }
  };
  const { components: _c, ...rest } = doc;
  visit(rest);
  for (const k of keep) visit(schemas[k]);
  for (const name of Object.keys(schemas)) if (!used.has(name)) delete schemas[name];
}

/** The document as it is checked in: stable key order, two-space indent, final newline. */
export function serialiseDocument(doc: unknown): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}
