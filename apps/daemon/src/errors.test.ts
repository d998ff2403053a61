import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiError, ERROR_CODES, ERROR_CODE_LIST, toProblem, type ErrorCode } from './errors.js';
import { OPENAPI_FILE } from './openapi.js';

const SRC = fileURLToPath(new URL('.', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return sources(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

test('every error code has a status, a title and a description', () => {
  for (const code of ERROR_CODE_LIST) {
    const spec = ERROR_CODES[code];
    assert.ok(spec.status >= 400 && spec.status < 600, code);
    assert.ok(spec.title.length > 0, code);
    assert.ok(spec.description.length > 20, `${code} needs a real description`);
  }
});

test('every error code the source uses is in the registry', () => {
  const used = new Set<string>();
  for (const file of sources(SRC)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/new ApiError\(\s*'([A-Z_]+)'/g)) used.add(m[1]!);
  }
  assert.ok(used.size > 5, 'the scan found the ApiError uses');
  for (const code of used) assert.ok(code in ERROR_CODES, `${code} is thrown but not in the registry`);
});

test('every error code is documented in openapi/vmctl.json: the ErrorCode enum, x-error-codes and the table', () => {
  const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
  const enumCodes: string[] = doc.components.schemas.ErrorCode.enum;
  for (const code of ERROR_CODE_LIST) {
    assert.ok(enumCodes.includes(code), `${code} is missing from the ErrorCode schema`);
    assert.equal(doc['x-error-codes'][code]?.status, ERROR_CODES[code].status, `${code} is missing from x-error-codes`);
    assert.ok(doc.info.description.includes(`| \`${code}\` | ${ERROR_CODES[code].status} |`), `${code} is missing from the error table`);
  }
});

test('every error code some operation can answer is listed on that operation', () => {
  const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
  const listed = new Set<string>();
  for (const methods of Object.values(doc.paths as Record<string, Record<string, { responses: Record<string, { description: string }> }>>)) {
    for (const op of Object.values(methods)) {
      for (const res of Object.values(op.responses)) for (const m of res.description.matchAll(/`([A-Z_]+)`/g)) listed.add(m[1]!);
    }
  }
  for (const code of ERROR_CODE_LIST.filter((c) => c !== 'ROUTE_NOT_FOUND' && c !== 'BAD_REQUEST')) {
    assert.ok(listed.has(code), `no operation lists ${code} among its responses`);
  }
});

test('toProblem() keeps an ApiError\'s code, status and extensions', () => {
  const p = toProblem(new ApiError('INVALID_STATE_TRANSITION', 'Cannot pause', { state: 'shutoff' }));
  assert.deepEqual(p, {
    type: 'urn:vmctl:error:INVALID_STATE_TRANSITION',
    title: ERROR_CODES.INVALID_STATE_TRANSITION.title,
    status: 409,
    detail: 'Cannot pause',
    code: 'INVALID_STATE_TRANSITION',
    state: 'shutoff',
  });
});

test('toProblem() maps fastify body errors to stable codes', () => {
  const fastifyError = (code: string, statusCode: number) => Object.assign(new Error(code), { code, statusCode });
  const cases: [string, number, ErrorCode][] = [
    ['FST_ERR_CTP_BODY_TOO_LARGE', 413, 'BODY_TOO_LARGE'],
    ['FST_ERR_CTP_INVALID_MEDIA_TYPE', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['FST_ERR_CTP_EMPTY_JSON_BODY', 400, 'MALFORMED_BODY'],
    ['FST_ERR_CTP_INVALID_JSON_BODY', 400, 'MALFORMED_BODY'],
    ['FST_ERR_SOMETHING_NEW', 400, 'BAD_REQUEST'],
  ];
  for (const [code, status, want] of cases) assert.equal(toProblem(fastifyError(code, status)).code, want, code);
});

test('toProblem() hides what an unexpected error says', () => {
  const p = toProblem(new Error('EACCES /var/lib/vmctl/secret'));
  assert.equal(p.code, 'INTERNAL');
  assert.equal(p.status, 500);
  assert.doesNotMatch(p.detail, /secret/);
});
