import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../app.js';
import { harness, type Harness } from '../testing/harness.js';

const TOKEN = 'w'.repeat(40);
let h: Harness;
let tcp: FastifyInstance;
let bare: FastifyInstance;

before(async () => {
  h = await harness();
  const web = join(h.dir, 'web');
  mkdirSync(web);
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>vmctl</title>');
  writeFileSync(join(web, 'app.js'), 'console.log(1)');
  writeFileSync(join(web, 'notes.txt'), 'not served');
  tcp = await buildApp({ ...h.daemon.appOptions(TOKEN), webDir: web });
  bare = await buildApp({ ...h.daemon.appOptions(), webDir: join(h.dir, 'nothing-here') });
});
after(async () => {
  await tcp.close();
  await bare.close();
  await h.close();
});

test('the web console is served without the token, with a strict content security policy', async () => {
  const r = await tcp.inject({ method: 'GET', url: '/ui/' });
  assert.equal(r.statusCode, 200);
  assert.match(r.headers['content-type'] as string, /^text\/html/);
  assert.match(r.body, /<title>vmctl<\/title>/);
  assert.match(r.headers['content-security-policy'] as string, /default-src 'none'; script-src 'self'/);
  assert.equal(r.headers['x-content-type-options'], 'nosniff');
  const js = await tcp.inject({ method: 'GET', url: '/ui/app.js' });
  assert.equal(js.statusCode, 200);
  assert.match(js.headers['content-type'] as string, /^text\/javascript/);
});

test('/ and /ui redirect to /ui/', async () => {
  for (const url of ['/', '/ui']) {
    const r = await tcp.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 302, url);
    assert.equal(r.headers.location, '/ui/');
  }
});

test('the API beside it still needs the token', async () => {
  const r = await tcp.inject({ method: 'GET', url: '/v1/domains' });
  assert.equal(r.statusCode, 401);
  assert.equal(r.json().code, 'UNAUTHORIZED');
});

test('only the built files are served: no other types, no way out of the directory', async () => {
  for (const url of ['/ui/notes.txt', '/ui/missing.js', '/ui/..%2fpackage.json', '/ui/%2e%2e%2f%2e%2e%2fetc/passwd']) {
    const r = await tcp.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 404, url);
    assert.equal(r.json().code, 'ROUTE_NOT_FOUND', url);
  }
  // a path that leaves /ui/ is no longer the web console's: the API's rules apply
  for (const url of ['/ui/../package.json', '/ui/%2e%2e/%2e%2e/etc/passwd']) {
    const r = await tcp.inject({ method: 'GET', url });
    assert.equal(r.statusCode, 401, url);
  }
});

test('a daemon whose web console was not built says how to build it (404)', async () => {
  const r = await bare.inject({ method: 'GET', url: '/ui/' });
  assert.equal(r.statusCode, 404);
  assert.match(r.json().detail, /not built.*npm run build -w @vmctl\/daemon/);
});
