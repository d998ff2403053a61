import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiProblemError, formatProblem } from './errors.js';
import { EXIT, exitCodeForStatus } from './exit-codes.js';

test('exitCodeForStatus() maps the daemon\'s HTTP statuses to the documented exit codes', () => {
  assert.equal(exitCodeForStatus(404), EXIT.NOT_FOUND);
  assert.equal(exitCodeForStatus(409), EXIT.CONFLICT);
  assert.equal(exitCodeForStatus(412), EXIT.CONFLICT);
  assert.equal(exitCodeForStatus(401), EXIT.UNREACHABLE);
  for (const s of [400, 413, 415, 422]) assert.equal(exitCodeForStatus(s), EXIT.USAGE, String(s));
  for (const s of [500, 502, 503, 504, 426]) assert.equal(exitCodeForStatus(s), EXIT.ERROR, String(s));
});

test('the exit codes are the documented numbers', () => {
  assert.deepEqual(EXIT, { OK: 0, ERROR: 1, USAGE: 2, NOT_FOUND: 3, CONFLICT: 4, UNREACHABLE: 5 });
});

test('formatProblem() gives the title and code, then the detail or each invalid field', () => {
  const conflict = new ApiProblemError(409, { type: 't', title: 'The domain already exists', status: 409, detail: 'Domain "a" already exists', code: 'DOMAIN_EXISTS' });
  assert.equal(formatProblem(conflict.problem), 'The domain already exists (DOMAIN_EXISTS)\n  Domain "a" already exists');
  const invalid = { type: 't', title: 'The request is not valid', status: 400, detail: 'x', code: 'VALIDATION_FAILED' as const, errors: [{ path: '/body/vcpus', message: 'Too small' }] };
  assert.equal(formatProblem(invalid), 'The request is not valid (VALIDATION_FAILED)\n  /body/vcpus: Too small');
});
