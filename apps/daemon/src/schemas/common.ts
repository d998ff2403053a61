/**
 * Shapes shared by every resource: names, host paths, timestamps and the problem body.
 * These zod schemas are the single source of truth: they validate requests, type the
 * handlers, and generate openapi/vmctl.json.
 */
import { posix } from 'node:path';
import { z } from 'zod';
import { ERROR_CODE_LIST } from '../errors.js';

/** Lower-case DNS label: 1–63 of a-z, 0-9 and '-', not starting or ending with '-'. */
export const DOMAIN_NAME_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export const DomainName = z
  .string()
  .regex(DOMAIN_NAME_RE, 'must be a DNS label: 1–63 characters of a-z, 0-9 and "-", not starting or ending with "-"')
  .meta({ id: 'DomainName', description: 'A domain\'s name: unique, a lower-case DNS label (`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`).', example: 'web-1' });

export const Uuid = z.uuid().meta({ description: 'An RFC 9562 UUID', example: '0b8f6d6e-7d3e-4c1f-9a55-2f3b8a0c1d2e' });

export const Timestamp = z.iso.datetime().meta({ description: 'An RFC 3339 UTC timestamp', example: '2026-01-01T12:00:00.000Z' });

/** Longest host path we accept (Linux's PATH_MAX). */
export const MAX_PATH = 4096;

/**
 * True for an absolute path that is already in normal form: no `.` or `..` segments, no
 * doubled or trailing slashes, no NUL or control characters. Whether the path exists, is a
 * regular file and is inside the allowed directories is checked later, against the host.
 */
export function isCleanAbsolutePath(p: string): boolean {
  if (!p.startsWith('/') || p.length < 2) return false;
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(p)) return false;
  if (p.endsWith('/')) return false;
  if (posix.normalize(p) !== p) return false;
  return !p.split('/').some((seg) => seg === '..' || seg === '.');
}

export const HostPath = z
  .string()
  .max(MAX_PATH)
  .regex(/^\//, 'must be an absolute path')
  .refine(isCleanAbsolutePath, 'must be an absolute, normalised path without "." or ".." segments or control characters')
  .meta({
    description: 'An absolute, normalised path of a regular file on the daemon\'s host. Checked on create, update and start: it must exist, be a regular file, and lie (after resolving symlinks) inside the daemon\'s allowed directories.',
    example: '/var/lib/vmctl/images/vmlinux',
  });

export const ProblemCode = z.enum(ERROR_CODE_LIST as [string, ...string[]]).meta({
  id: 'ErrorCode',
  description: 'A stable error code; see the table in the document\'s description.',
});

export const Problem = z
  .object({
    type: z.string().meta({ description: 'A URI naming the problem type: `urn:vmctl:error:<code>`' }),
    title: z.string(),
    status: z.int(),
    detail: z.string(),
    code: ProblemCode,
    instance: z.string().optional(),
    errors: z
      .array(z.object({ path: z.string().meta({ description: 'JSON pointer into the request, prefixed by the part: /body, /params, /querystring, /headers' }), message: z.string() }))
      .optional()
      .meta({ description: 'For VALIDATION_FAILED: every field that failed' }),
    state: z.string().optional().meta({ description: 'For INVALID_STATE_TRANSITION: the domain\'s current state' }),
  })
  .meta({ id: 'Problem', description: 'An RFC 9457 problem: every error the API returns has this shape, as `application/problem+json`.' });

/** A response map entry for errors: problem+json with its description. */
export function problemResponse(description: string) {
  return { description, content: { 'application/problem+json': { schema: Problem } } };
}
