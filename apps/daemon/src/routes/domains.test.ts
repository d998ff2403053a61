import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildApp } from '../app.js';
import { harness, type Harness } from '../testing/harness.js';

let h: Harness;

before(async () => {
  h = await harness();
});
after(async () => {
  await h.close();
});

async function create(name: string, extra: Record<string, unknown> = {}) {
  return h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name, boot: { kernel: h.kernel }, ...extra } });
}

/** Everything a failed request must leave as it was. */
function snapshot(): string {
  return JSON.stringify({ domains: h.daemon.store.domains.list(), events: h.daemon.events.since(0) });
}

describe('POST /v1/domains', () => {
  test('creates a domain with defaults, answering 201 with Location and ETag', async () => {
    const r = await create('web-1');
    assert.equal(r.statusCode, 201, r.body);
    assert.equal(r.headers.location, '/v1/domains/web-1');
    const d = r.json();
    assert.equal(r.headers.etag, d.etag);
    assert.match(d.uuid, /^[0-9a-f-]{36}$/);
    assert.deepEqual(
      { vcpus: d.vcpus, memory_mib: d.memory_mib, disks: d.disks, nics: d.nics, serial: d.serial, autostart: d.autostart, on_poweroff: d.on_poweroff, on_reboot: d.on_reboot, on_crash: d.on_crash, state: d.state },
      { vcpus: 1, memory_mib: 256, disks: [], nics: [], serial: { log: false }, autostart: false, on_poweroff: 'destroy', on_reboot: 'restart', on_crash: 'preserve', state: 'shutoff' },
    );
    assert.ok(h.events.some((e) => e.type === 'domain-created' && e.domain === 'web-1'));
  });

  test('refuses a second domain with the same name (409 DOMAIN_EXISTS)', async () => {
    await create('dup');
    const before = snapshot();
    const r = await create('dup');
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().code, 'DOMAIN_EXISTS');
    assert.equal(snapshot(), before);
  });

  test('keeps a UUID the client chose, and refuses it twice', async () => {
    const uuid = '6f1c1f2e-3c1a-4b7e-9d55-0a1b2c3d4e5f';
    const r = await create('chosen', { uuid });
    assert.equal(r.json().uuid, uuid);
    const again = await create('chosen-2', { uuid });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, 'DOMAIN_EXISTS');
  });

  test('assigns a locally administered MAC to a NIC without one', async () => {
    const r = await create('nic', { nics: [{ type: 'bridge', bridge: 'br0' }, { type: 'tap', mac: '52:54:00:12:34:56' }] });
    assert.equal(r.statusCode, 201, r.body);
    const [a, b] = r.json().nics;
    assert.match(a.mac, /^02(:[0-9a-f]{2}){5}$/);
    assert.equal(b.mac, '52:54:00:12:34:56');
  });

  test('stores disks it cannot attach yet, with their defaults', async () => {
    const disk = join(h.dir, 'disk.raw');
    writeFileSync(disk, Buffer.alloc(4096));
    const r = await create('disky', { disks: [{ path: disk }] });
    assert.equal(r.statusCode, 201, r.body);
    assert.deepEqual(r.json().disks, [{ path: disk, format: 'raw', readonly: false }]);
  });
});

describe('host paths', () => {
  test('a kernel that does not exist is 422 PATH_NOT_FOUND', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'nokernel', boot: { kernel: '/nonexistent/vmlinux' } } });
    assert.equal(r.statusCode, 422);
    assert.equal(r.json().code, 'PATH_NOT_FOUND');
  });

  test('a directory is not a kernel (422 PATH_NOT_FOUND)', async () => {
    const r = await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'dirkernel', boot: { kernel: h.dir } } });
    assert.equal(r.statusCode, 422);
    assert.equal(r.json().code, 'PATH_NOT_FOUND');
  });

  for (const kernel of ['relative/vmlinux', '/a/../etc/shadow', '/a/./b', '//etc/passwd', '/etc/', '/a\u0000b', '/a\nb']) {
    test(`${JSON.stringify(kernel)} is refused by validation (400) before the host is looked at`, async () => {
      const r = await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'badpath', boot: { kernel } } });
      assert.equal(r.statusCode, 400, r.body);
      assert.equal(r.json().code, 'VALIDATION_FAILED');
      assert.equal(r.json().errors[0].path, '/body/boot/kernel');
    });
  }

  test('with --allow-path, paths outside, and symlinks leading outside, are 422 PATH_NOT_ALLOWED', async () => {
    const images = join(h.dir, 'images');
    mkdirSync(images, { recursive: true });
    writeFileSync(join(images, 'k.elf'), 'k');
    symlinkSync('/etc/passwd', join(images, 'escape'));
    const g = await harness({ allowPaths: [images] });
    try {
      const post = (kernel: string) => g.app.inject({ method: 'POST', url: '/v1/domains', payload: { name: 'p', boot: { kernel } } });
      assert.equal((await post(g.kernel)).json().code, 'PATH_NOT_ALLOWED');
      assert.equal((await post(join(images, 'escape'))).json().code, 'PATH_NOT_ALLOWED');
      assert.equal((await post(join(images, 'k.elf'))).statusCode, 201);
    } finally {
      await g.close();
    }
  });
});

describe('GET /v1/domains', () => {
  test('lists domains sorted by name and filters by state', async () => {
    await create('zz-last');
    await create('aa-first');
    const r = await h.app.inject({ method: 'GET', url: '/v1/domains' });
    const names = r.json().items.map((d: { name: string }) => d.name);
    assert.deepEqual(names, [...names].sort());
    assert.ok(names.includes('aa-first') && names.includes('zz-last'));
    const running = await h.app.inject({ method: 'GET', url: '/v1/domains?state=running' });
    assert.deepEqual(running.json().items, []);
  });

  test('refuses an unknown query parameter or state (400)', async () => {
    for (const url of ['/v1/domains?bogus=1', '/v1/domains?state=flying']) {
      const r = await h.app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 400, url);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
    }
  });
});

describe('GET /v1/domains/{name}', () => {
  test('answers the domain with its ETag', async () => {
    await create('readme');
    const r = await h.app.inject({ method: 'GET', url: '/v1/domains/readme' });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers.etag, r.json().etag);
  });

  test('answers 404 DOMAIN_NOT_FOUND for an unknown name and 400 for an invalid one', async () => {
    const missing = await h.app.inject({ method: 'GET', url: '/v1/domains/nobody' });
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.json().code, 'DOMAIN_NOT_FOUND');
    const invalid = await h.app.inject({ method: 'GET', url: '/v1/domains/Not_A_Label' });
    assert.equal(invalid.statusCode, 400);
    assert.equal(invalid.json().errors[0].path, '/params/name');
  });

  test('/state tells state, reason and since', async () => {
    await create('stated');
    const r = await h.app.inject({ method: 'GET', url: '/v1/domains/stated/state' });
    assert.equal(r.statusCode, 200);
    const s = r.json();
    assert.equal(s.state, 'shutoff');
    assert.equal(s.reason, 'defined');
    assert.equal(s.pid, null);
    assert.equal(s.stats, null);
  });
});

describe('PUT and PATCH /v1/domains/{name}', () => {
  let etag: string;
  beforeEach(async () => {
    await h.app.inject({ method: 'DELETE', url: '/v1/domains/upd' });
    const r = await create('upd', { vcpus: 2 });
    etag = r.headers.etag as string;
  });

  test('PATCH with the current ETag changes the given fields and the ETag', async () => {
    const r = await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', headers: { 'if-match': etag }, payload: { memory_mib: 512 } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().memory_mib, 512);
    assert.equal(r.json().vcpus, 2);
    assert.notEqual(r.headers.etag, etag);
    assert.ok(h.events.some((e) => e.type === 'domain-updated' && e.domain === 'upd'));
  });

  test('PATCH with a stale ETag is 412 and changes nothing', async () => {
    await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', payload: { vcpus: 3 } });
    const before = snapshot();
    const r = await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', headers: { 'if-match': etag }, payload: { vcpus: 4 } });
    assert.equal(r.statusCode, 412);
    assert.equal(r.json().code, 'PRECONDITION_FAILED');
    assert.equal(snapshot(), before);
  });

  test('PUT replaces the whole definition: fields left out take their defaults', async () => {
    const r = await h.app.inject({ method: 'PUT', url: '/v1/domains/upd', headers: { 'if-match': etag }, payload: { boot: { kernel: h.kernel, cmdline: 'console=ttyS0 quiet' } } });
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().vcpus, 1);
    assert.equal(r.json().boot.cmdline, 'console=ttyS0 quiet');
  });

  test('If-Match: * matches any version', async () => {
    const r = await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', headers: { 'if-match': '*' }, payload: { autostart: true } });
    assert.equal(r.statusCode, 200);
  });

  test('renaming or changing the UUID is 409 IMMUTABLE_FIELD', async () => {
    for (const payload of [{ name: 'other' }, { uuid: '00000000-0000-4000-8000-000000000000' }]) {
      const r = await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', payload });
      assert.equal(r.statusCode, 409);
      assert.equal(r.json().code, 'IMMUTABLE_FIELD');
    }
  });

  test('a NIC keeps its MAC when the NIC list is rewritten without MACs', async () => {
    const first = await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', payload: { nics: [{ type: 'tap' }] } });
    const mac = first.json().nics[0].mac;
    const again = await h.app.inject({ method: 'PATCH', url: '/v1/domains/upd', payload: { nics: [{ type: 'tap', ifname: 'tap7' }] } });
    assert.equal(again.json().nics[0].mac, mac);
  });
});

describe('DELETE /v1/domains/{name}', () => {
  test('deletes a shutoff domain (204) and tells about it', async () => {
    await create('gone');
    const r = await h.app.inject({ method: 'DELETE', url: '/v1/domains/gone' });
    assert.equal(r.statusCode, 204);
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/domains/gone' })).statusCode, 404);
    assert.ok(h.events.some((e) => e.type === 'domain-deleted' && e.domain === 'gone'));
  });
});

describe('hostile input', () => {
  const big = 'x'.repeat(70 * 1024);
  const cases: { what: string; method: 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'GET'; url: string; payload?: unknown; headers?: Record<string, string>; status: number; code: string }[] = [
    { what: 'an unknown field', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k' }, cpu_model: 'host' }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an unknown nested field', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k', firmware: '/f' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'vcpus as a string', method: 'POST', url: '/v1/domains', payload: { name: 'h1', vcpus: '2', boot: { kernel: '/k' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'fractional vcpus', method: 'POST', url: '/v1/domains', payload: { name: 'h1', vcpus: 1.5, boot: { kernel: '/k' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'zero vcpus', method: 'POST', url: '/v1/domains', payload: { name: 'h1', vcpus: 0, boot: { kernel: '/k' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'a petabyte of memory', method: 'POST', url: '/v1/domains', payload: { name: 'h1', memory_mib: 2 ** 40, boot: { kernel: '/k' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'a name with a dot', method: 'POST', url: '/v1/domains', payload: { name: 'a.b', boot: { kernel: '/k' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'a 64-character name', method: 'POST', url: '/v1/domains', payload: { name: 'a'.repeat(64), boot: { kernel: '/k' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'no boot, and no default guest', method: 'POST', url: '/v1/domains', payload: { name: 'h1' }, status: 422, code: 'NO_DEFAULT_GUEST' },
    { what: 'a cmdline with a newline', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k', cmdline: 'a\nb' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'the same disk twice', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k' }, disks: [{ path: '/d' }, { path: '/d' }] }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'a multicast MAC', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k' }, nics: [{ type: 'tap', mac: '01:00:5e:00:00:01' }] }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an unknown NIC type', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k' }, nics: [{ type: 'vde' }] }, status: 400, code: 'VALIDATION_FAILED' },
    { what: '17 disks', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k' }, disks: Array.from({ length: 17 }, (_, i) => ({ path: `/d${i}` })) }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an array body', method: 'POST', url: '/v1/domains', payload: [1, 2], status: 400, code: 'VALIDATION_FAILED' },
    { what: 'a prototype-polluting body', method: 'POST', url: '/v1/domains', payload: '{"name":"h1","boot":{"kernel":"/k"},"__proto__":{"admin":true}}', headers: { 'content-type': 'application/json' }, status: 400, code: 'MALFORMED_BODY' },
    { what: 'malformed JSON', method: 'POST', url: '/v1/domains', payload: '{"name":', headers: { 'content-type': 'application/json' }, status: 400, code: 'MALFORMED_BODY' },
    { what: 'a body over 64 KiB', method: 'POST', url: '/v1/domains', payload: { name: 'h1', boot: { kernel: '/k', cmdline: big } }, status: 413, code: 'BODY_TOO_LARGE' },
    { what: 'a text/plain body', method: 'POST', url: '/v1/domains', payload: 'name=h1', headers: { 'content-type': 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
    { what: 'PUT with an unknown field', method: 'PUT', url: '/v1/domains/victim', payload: { boot: { kernel: '/k' }, state: 'running' }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'PUT with a wrong type', method: 'PUT', url: '/v1/domains/victim', payload: { boot: { kernel: 42 } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'PUT over 64 KiB', method: 'PUT', url: '/v1/domains/victim', payload: { boot: { kernel: '/k', cmdline: big } }, status: 413, code: 'BODY_TOO_LARGE' },
    { what: 'PATCH with an unknown field', method: 'PATCH', url: '/v1/domains/victim', payload: { etag: 'x' }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'PATCH with null', method: 'PATCH', url: '/v1/domains/victim', payload: { vcpus: null }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'PATCH with a traversal path', method: 'PATCH', url: '/v1/domains/victim', payload: { boot: { kernel: '/var/lib/../../etc/shadow' } }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'PATCH with a missing kernel', method: 'PATCH', url: '/v1/domains/victim', payload: { boot: { kernel: '/no/such/kernel' } }, status: 422, code: 'PATH_NOT_FOUND' },
    { what: 'PATCH over 64 KiB', method: 'PATCH', url: '/v1/domains/victim', payload: { boot: { kernel: '/k', cmdline: big } }, status: 413, code: 'BODY_TOO_LARGE' },
    { what: 'DELETE with an unknown query parameter', method: 'DELETE', url: '/v1/domains/victim?really=yes', status: 400, code: 'VALIDATION_FAILED' },
    { what: 'DELETE with force=maybe', method: 'DELETE', url: '/v1/domains/victim?force=maybe', status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an action with a body', method: 'POST', url: '/v1/domains/victim/actions/start', payload: { now: true }, status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an action with a query parameter', method: 'POST', url: '/v1/domains/victim/actions/stop?force=true', status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an unknown action', method: 'POST', url: '/v1/domains/victim/actions/explode', status: 404, code: 'ROUTE_NOT_FOUND' },
    { what: 'shutdown with a negative timeout', method: 'POST', url: '/v1/domains/victim/actions/shutdown?timeout=-1', status: 400, code: 'VALIDATION_FAILED' },
    { what: 'shutdown with a huge timeout', method: 'POST', url: '/v1/domains/victim/actions/shutdown?timeout=99999', status: 400, code: 'VALIDATION_FAILED' },
    { what: 'an action body over the limit', method: 'POST', url: '/v1/domains/victim/actions/pause', payload: { pad: big }, status: 413, code: 'BODY_TOO_LARGE' },
    { what: 'an action on an invalid name', method: 'POST', url: '/v1/domains/..%2f..%2fetc/actions/start', status: 400, code: 'VALIDATION_FAILED' },
    { what: 'pause on a shutoff domain', method: 'POST', url: '/v1/domains/victim/actions/pause', status: 409, code: 'INVALID_STATE_TRANSITION' },
    { what: 'a console on a shutoff domain', method: 'GET', url: '/v1/domains/victim/console', status: 409, code: 'DOMAIN_NOT_RUNNING' },
    { what: 'the events endpoint without an upgrade', method: 'GET', url: '/v1/events', status: 426, code: 'UPGRADE_REQUIRED' },
  ];

  before(async () => {
    await create('victim');
  });

  for (const c of cases) {
    test(`${c.what} → ${c.status} ${c.code}, problem+json, nothing changed`, async () => {
      const before = snapshot();
      const r = await h.app.inject({
        method: c.method,
        url: c.url,
        ...(c.payload !== undefined ? { payload: c.payload as string } : {}),
        ...(c.headers ? { headers: c.headers } : {}),
      });
      assert.equal(r.statusCode, c.status, r.body);
      assert.equal(r.headers['content-type'], 'application/problem+json; charset=utf-8');
      const p = r.json();
      assert.equal(p.code, c.code);
      assert.equal(p.status, c.status);
      assert.equal(p.type, `urn:vmctl:error:${c.code}`);
      assert.equal(typeof p.title, 'string');
      assert.equal(typeof p.detail, 'string');
      assert.equal(snapshot(), before);
    });
  }
});

describe('authentication', () => {
  test('with a token, requests without it are 401 with WWW-Authenticate; with it they pass', async () => {
    const token = 'a'.repeat(40);
    const app = await buildApp(h.daemon.appOptions(token));
    try {
      const none = await app.inject({ method: 'GET', url: '/v1/domains' });
      assert.equal(none.statusCode, 401);
      assert.equal(none.json().code, 'UNAUTHORIZED');
      assert.match(String(none.headers['www-authenticate']), /^Bearer/);
      const wrong = await app.inject({ method: 'GET', url: '/v1/domains', headers: { authorization: `Bearer ${'b'.repeat(40)}` } });
      assert.equal(wrong.statusCode, 401);
      const ok = await app.inject({ method: 'GET', url: '/v1/domains', headers: { authorization: `Bearer ${token}` } });
      assert.equal(ok.statusCode, 200);
    } finally {
      await app.close();
    }
  });

  test('the events WebSocket needs the token too', async () => {
    const token = 'c'.repeat(40);
    const app = await buildApp(h.daemon.appOptions(token));
    try {
      await assert.rejects(app.injectWS('/v1/events'), /401/);
      const ws = await app.injectWS('/v1/events', { headers: { authorization: `Bearer ${token}` } });
      ws.terminate();
    } finally {
      await app.close();
    }
  });
});

test('GET /v1/host reports KVM and versions', async () => {
  const r = await h.app.inject({ method: 'GET', url: '/v1/host' });
  assert.equal(r.statusCode, 200);
  const host = r.json();
  assert.equal(host.versions.control_protocol, 1);
  assert.equal(typeof host.kvm.present, 'boolean');
  assert.equal(host.versions.node, process.versions.node);
});
