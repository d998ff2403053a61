import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { generateTypes, SCHEMA_FILE } from '../../scripts/openapi-types.js';

test('src/api/schema.ts is what openapi-typescript generates from openapi/vmctl.json (run `npm run openapi -w @vmctl/cli` if not)', async () => {
  const checkedIn = readFileSync(SCHEMA_FILE, 'utf8');
  assert.ok(checkedIn === (await generateTypes()), `${SCHEMA_FILE} is stale: run npm run openapi -w @vmctl/cli and commit the result`);
});
