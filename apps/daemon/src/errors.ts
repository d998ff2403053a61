/**
 * The daemon's errors: one registry of stable codes, each with its HTTP status and the text
 * that documents it, and one `toProblem(err)` that turns any error into an RFC 9457
 * `application/problem+json` body. Routes throw `ApiError`; nothing else picks a status.
 *
 * Codes are part of the API: scripts match on them. Add codes, never rename or reuse one.
 * A test fails when a code is missing from the OpenAPI document.
 */
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';

export interface ErrorSpec {
  status: number;
  title: string;
  /** when the API answers with this code: the documentation of the code */
  description: string;
}

export const ERROR_CODES = {
  VALIDATION_FAILED: {
    status: 400,
    title: 'The request is not valid',
    description: 'A path parameter, query parameter, header or body field failed validation: a wrong type, an unknown field, a value out of range. `errors` lists each problem with its JSON pointer. Nothing was changed.',
  },
  MALFORMED_BODY: {
    status: 400,
    title: 'The request body cannot be read',
    description: 'The body is not valid JSON, is empty where JSON was announced, or its length does not match Content-Length. Nothing was changed.',
  },
  BAD_REQUEST: {
    status: 400,
    title: 'Bad request',
    description: 'The HTTP request itself is malformed in a way no more specific code describes. Nothing was changed.',
  },
  UNAUTHORIZED: {
    status: 401,
    title: 'Authentication required',
    description: 'On the TCP listener every request, WebSockets included, needs `Authorization: Bearer <token>` with the token from the daemon\'s --token-file; a WebSocket upgrade may carry a console ticket (`?ticket=`) instead. The web console\'s page and scripts (`/ui/`) are served to anyone.',
  },
  INVALID_TICKET: {
    status: 401,
    title: 'The ticket is not valid',
    description: 'The `ticket` query parameter of a WebSocket upgrade is unknown, expired (tickets live 30 s), already used (each is good for one connection), or was issued for another domain or endpoint. Get a new one: `POST /v1/domains/{name}/console-ticket` or `POST /v1/events/ticket`.',
  },
  ROUTE_NOT_FOUND: {
    status: 404,
    title: 'No such endpoint',
    description: 'No route matches this method and path.',
  },
  DOMAIN_NOT_FOUND: {
    status: 404,
    title: 'No such domain',
    description: 'No domain has the name given in the path.',
  },
  DOMAIN_EXISTS: {
    status: 409,
    title: 'The domain already exists',
    description: 'Another domain already has this name or UUID. Names and UUIDs are unique.',
  },
  INVALID_STATE_TRANSITION: {
    status: 409,
    title: 'The action is not possible in the domain\'s current state',
    description: 'The lifecycle state machine does not allow this action now (for example `pause` on a domain that is shutoff, or `start` on one that is running). The problem\'s `state` field gives the current state. Nothing was changed.',
  },
  DOMAIN_RUNNING: {
    status: 409,
    title: 'The domain is running',
    description: 'The domain has a live worker, so it cannot be deleted; stop it first or pass `?force=true`.',
  },
  DOMAIN_NOT_RUNNING: {
    status: 409,
    title: 'The domain is not running',
    description: 'The request needs a live worker (the console, for example) and the domain has none.',
  },
  NO_DISPLAY: {
    status: 409,
    title: 'The domain has no display',
    description: 'The domain\'s definition has no `display`, or its worker was started before one was added (a display comes with the next start). Add `display: {type: vnc}` and start the domain again.',
  },
  IMMUTABLE_FIELD: {
    status: 409,
    title: 'The field cannot be changed',
    description: 'An update tried to change a domain\'s name or UUID; they are fixed when the domain is created.',
  },
  PRECONDITION_FAILED: {
    status: 412,
    title: 'The domain has changed',
    description: 'The `If-Match` header does not match the domain\'s current ETag: someone else updated it since you read it. Read it again and retry. Nothing was changed.',
  },
  BODY_TOO_LARGE: {
    status: 413,
    title: 'The request body is too large',
    description: 'Request bodies are limited (64 KiB for domain definitions). Nothing was changed.',
  },
  UPGRADE_REQUIRED: {
    status: 426,
    title: 'This endpoint is a WebSocket',
    description: 'The events, console and VNC endpoints speak WebSocket only: send the request as a WebSocket upgrade (`Connection: Upgrade`, `Upgrade: websocket`).',
  },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    title: 'Unsupported content type',
    description: 'Request bodies must be `application/json`.',
  },
  PATH_NOT_ALLOWED: {
    status: 422,
    title: 'The path is not allowed',
    description: 'A host path (kernel, initrd, disk) is not absolute and normalised, contains `..`, or resolves (symlinks included) outside the directories the daemon was told to allow with --allow-path.',
  },
  PATH_NOT_FOUND: {
    status: 422,
    title: 'The file does not exist',
    description: 'A host path (kernel, initrd, disk) does not exist, cannot be read by the daemon, or is not a regular file. Paths are checked on create, on update and on start.',
  },
  NO_DEFAULT_GUEST: {
    status: 422,
    title: 'No default guest on this host',
    description: 'The definition leaves out `boot`, and the host has no default guest to fill it with (its kernel and initramfs are built by `scripts/guest-assets.sh`; the daemon\'s --default-guest-dir names where). Give `boot` explicitly. Nothing was changed.',
  },
  UNSUPPORTED_CONFIG: {
    status: 422,
    title: 'The definition cannot run on this host',
    description: 'The definition is valid and stored, but the VMM cannot run it as it stands (a qcow2 disk, for example, or a disk path with a comma). `detail` says which part. Nothing was started.',
  },
  KVM_UNAVAILABLE: {
    status: 503,
    title: 'KVM is not available',
    description: 'The host has no usable /dev/kvm, so no domain can start.',
  },
  WORKER_START_FAILED: {
    status: 500,
    title: 'The worker did not start',
    description: 'The domain\'s vmm worker exited or did not answer on its control socket while starting. `detail` carries the end of the worker\'s log. The domain is back to shutoff.',
  },
  WORKER_ERROR: {
    status: 502,
    title: 'The worker refused the request',
    description: 'The domain\'s vmm worker answered the control request with an error; `detail` carries its message.',
  },
  WORKER_UNAVAILABLE: {
    status: 503,
    title: 'The worker is gone',
    description: 'The domain\'s vmm worker closed its control socket while the request was in flight (it exited or was killed). The domain\'s state tells what happened next.',
  },
  WORKER_TIMEOUT: {
    status: 504,
    title: 'The worker did not answer in time',
    description: 'The domain\'s vmm worker did not answer a control request within its deadline.',
  },
  INTERNAL: {
    status: 500,
    title: 'Internal error',
    description: 'The daemon failed in a way it did not expect. The daemon\'s log has the details.',
  },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERROR_CODES;
export const ERROR_CODE_LIST = Object.keys(ERROR_CODES) as ErrorCode[];

export interface ValidationIssue {
  /** JSON pointer into the request part, e.g. `/body/boot/kernel` */
  path: string;
  message: string;
}

/** Extra members of a problem body, beyond RFC 9457's. */
export interface ProblemExtensions {
  errors?: ValidationIssue[];
  state?: string;
}

export interface Problem extends ProblemExtensions {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance?: string;
}

/** An error the API reports with a stable code; `detail` is for people. */
export class ApiError extends Error {
  readonly status: number;
  constructor(
    readonly code: ErrorCode,
    readonly detail: string,
    readonly extensions: ProblemExtensions = {},
  ) {
    super(detail);
    this.name = 'ApiError';
    this.status = ERROR_CODES[code].status;
  }
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export function problemType(code: ErrorCode): string {
  return `urn:vmctl:error:${code}`;
}

function problem(code: ErrorCode, detail: string, extensions: ProblemExtensions = {}): Problem {
  const spec = ERROR_CODES[code];
  return { type: problemType(code), title: spec.title, status: spec.status, detail, code, ...extensions };
}

/** fastify's own errors (body parsing, limits) mapped to ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_BODY',
};

/**
 * Any error → a problem body. ApiErrors keep their code; request validation failures list
 * every issue; fastify's parser errors get their own codes; everything else is INTERNAL and
 * says nothing about the daemon's insides.
 */
export function toProblem(err: unknown): Problem {
  if (err instanceof ApiError) return problem(err.code, err.detail, err.extensions);
  if (hasZodFastifySchemaValidationErrors(err)) {
    const part = (err as { validationContext?: string }).validationContext ?? 'body';
    const errors = err.validation.map((v) => ({ path: `/${part}${v.instancePath === '/' ? '' : v.instancePath}`, message: v.message ?? 'invalid' }));
    const detail = errors.map((e) => `${e.path}: ${e.message}`).join('; ');
    return problem('VALIDATION_FAILED', detail, { errors });
  }
  if (isFastifyError(err)) {
    if (err.code === 'FST_ERR_RESPONSE_SERIALIZATION') return problem('INTERNAL', 'The daemon produced a response that does not match its own schema.');
    const code = FASTIFY_CODES[err.code];
    if (code) return problem(code, err.message);
    if (err instanceof SyntaxError || err.code?.startsWith('FST_ERR_CTP')) return problem('MALFORMED_BODY', err.message);
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) return problem('BAD_REQUEST', err.message);
  }
  if (err instanceof SyntaxError && (err as { statusCode?: number }).statusCode === 400) return problem('MALFORMED_BODY', err.message);
  return problem('INTERNAL', 'The daemon hit an unexpected error; its log has the details.');
}

function isFastifyError(err: unknown): err is Error & { code: string; statusCode?: number } {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'string';
}
