import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateOpenApi } from './openapi-document.js';
import { OPENAPI_FILE } from './openapi.js';

test('openapi/vmctl.json is what the schemas generate (run `npm run openapi -w @vmctl/daemon` if not)', async () => {
  const generated = await generateOpenApi();
  let checkedIn = '';
  try {
    checkedIn = readFileSync(OPENAPI_FILE, 'utf8');
  } catch {
    assert.fail(`${OPENAPI_FILE} is missing: run npm run openapi -w @vmctl/daemon`);
  }
  assert.ok(checkedIn === generated, `${OPENAPI_FILE} is stale: run npm run openapi -w @vmctl/daemon and commit the result`);
});

test('the document is OpenAPI 3.1 and documents every endpoint, WebSockets included', () => {
  const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
  assert.equal(doc.openapi, '3.1.0');
  const ops = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, m]) => Object.keys(m).map((k) => `${k.toUpperCase()} ${p}`));
  for (const op of [
    'GET /v1/domains', 'POST /v1/domains', 'GET /v1/domains/{name}', 'PUT /v1/domains/{name}', 'PATCH /v1/domains/{name}', 'DELETE /v1/domains/{name}',
    'GET /v1/domains/{name}/state', 'POST /v1/domains/{name}/actions/start', 'POST /v1/domains/{name}/actions/shutdown', 'POST /v1/domains/{name}/actions/stop',
    'POST /v1/domains/{name}/actions/reboot', 'POST /v1/domains/{name}/actions/reset', 'POST /v1/domains/{name}/actions/pause', 'POST /v1/domains/{name}/actions/resume',
    'GET /v1/events', 'GET /v1/domains/{name}/console', 'GET /v1/host',
  ]) {
    assert.ok(ops.includes(op), `${op} is not in the document`);
  }
  assert.ok(doc.components.schemas.Event, 'the events message schema is kept');
});

test('every error response of every operation is problem+json', () => {
  const doc = JSON.parse(readFileSync(OPENAPI_FILE, 'utf8'));
  for (const [path, methods] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, { content?: Record<string, unknown> }> }>>)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const [status, res] of Object.entries(op.responses)) {
        if (Number(status) >= 400) assert.deepEqual(Object.keys(res.content ?? {}), ['application/problem+json'], `${method} ${path} ${status}`);
      }
    }
  }
});
