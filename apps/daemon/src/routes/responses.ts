/** Response maps for route schemas: the error codes a route can answer, grouped by status. */
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import { z } from 'zod';
import { problemResponse } from '../schemas/common.js';

/** A JSON success response with its description. */
export function json(schema: z.ZodType, description: string) {
  return { description, content: { 'application/json': { schema } } };
}

/** The 101 answer of a WebSocket endpoint. */
export const SWITCHING_PROTOCOLS = z.undefined().meta({ description: 'Switching to the WebSocket protocol' });

/** Every route can answer these. */
const ALWAYS: ErrorCode[] = ['UNAUTHORIZED', 'INTERNAL'];
/** Routes that take a JSON body can also answer these. */
export const BODY_ERRORS: ErrorCode[] = ['VALIDATION_FAILED', 'MALFORMED_BODY', 'BODY_TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE'];

export function errorResponses(...codes: ErrorCode[]): Record<number, ReturnType<typeof problemResponse>> {
  const byStatus = new Map<number, ErrorCode[]>();
  for (const code of new Set([...codes, ...ALWAYS])) {
    const status = ERROR_CODES[code].status;
    byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
  }
  const out: Record<number, ReturnType<typeof problemResponse>> = {};
  for (const [status, list] of [...byStatus].sort((a, b) => a[0] - b[0])) {
    out[status] = problemResponse(list.map((c) => `\`${c}\`: ${ERROR_CODES[c].title}.`).join(' '));
  }
  return out;
}
