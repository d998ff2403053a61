/**
 * The lifecycle through the API, with the fake worker (src/testing/fake-worker.ts) standing in
 * for `vmm run`: real processes, sockets and signals, no KVM.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { harness, until, type Harness } from '../testing/harness.js';

let h: Harness;

before(async () => {
  h = await harness();
});
after(async () => {
  await h.close();
});

async function define(name: string, extra: Record<string, unknown> = {}, cmdline = '') {
  const r = await h.app.inject({ method: 'POST', url: '/v1/domains', payload: { name, boot: { kernel: h.kernel, cmdline }, ...extra } });
  assert.equal(r.statusCode, 201, r.body);
  return r.json();
}

function act(name: string, action: string, query = '') {
  return h.app.inject({ method: 'POST', url: `/v1/domains/${name}/actions/${action}${query}` });
}

async function state(name: string): Promise<string> {
  return (await h.app.inject({ method: 'GET', url: `/v1/domains/${name}/state` })).json().state;
}

describe('start, pause, resume, stop', () => {
  test('start answers once the worker reports the guest running, with its pid', async () => {
    await define('life');
    const r = await act('life', 'start');
    assert.equal(r.statusCode, 200, r.body);
    const s = r.json();
    assert.equal(s.state, 'running');
    assert.equal(typeof s.pid, 'number');
    assert.ok(s.started_at);
    const transitions = h.events.filter((e) => e.domain === 'life' && e.type === 'state-changed').map((e) => `${e.previous}→${e.state}`);
    assert.deepEqual(transitions, ['shutoff→starting', 'starting→running']);
  });

  test('state includes live stats from the worker', async () => {
    const s = (await h.app.inject({ method: 'GET', url: '/v1/domains/life/state' })).json();
    assert.equal(typeof s.stats.uptime_ms, 'number');
    assert.ok(s.stats.rss_bytes > 0);
  });

  test('start on a running domain is 409 INVALID_STATE_TRANSITION with the state', async () => {
    const r = await act('life', 'start');
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().code, 'INVALID_STATE_TRANSITION');
    assert.equal(r.json().state, 'running');
  });

  test('pause then resume', async () => {
    assert.equal((await act('life', 'pause')).json().state, 'paused');
    assert.equal((await act('life', 'pause')).statusCode, 409);
    assert.equal((await act('life', 'resume')).json().state, 'running');
  });

  test('delete of a running domain is refused (409 DOMAIN_RUNNING)', async () => {
    const r = await h.app.inject({ method: 'DELETE', url: '/v1/domains/life' });
    assert.equal(r.statusCode, 409);
    assert.equal(r.json().code, 'DOMAIN_RUNNING');
    assert.equal(await state('life'), 'running');
  });

  test('stop ends the worker and the domain is shutoff (reason user)', async () => {
    const pid = (await h.app.inject({ method: 'GET', url: '/v1/domains/life/state' })).json().pid;
    const r = await act('life', 'stop');
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().state, 'shutoff');
    assert.equal(r.json().reason, 'user');
    assert.equal(r.json().pid, null);
    assert.throws(() => process.kill(pid, 0));
  });

  test('a domain can start again after a stop', async () => {
    assert.equal((await act('life', 'start')).json().state, 'running');
    assert.equal((await act('life', 'stop')).json().state, 'shutoff');
  });
});

describe('graceful shutdown', () => {
  test('the guest powers off on the power button; with wait=true the answer is shutoff', async () => {
    await define('polite');
    await act('polite', 'start');
    const r = await act('polite', 'shutdown', '?wait=true');
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().state, 'shutoff');
    assert.equal(r.json().reason, 'shutdown');
  });

  test('without wait the answer is 202 stopping, and the domain ends shutoff', async () => {
    await act('polite', 'start');
    const r = await act('polite', 'shutdown');
    assert.equal(r.statusCode, 202, r.body);
    assert.equal(r.json().state, 'stopping');
    await until('polite shutoff', async () => (await state('polite')) === 'shutoff');
  });

  test('a guest that ignores the power button is forced off after the timeout', async () => {
    await define('stubborn', {}, 'fake.ignore-power-button');
    await act('stubborn', 'start');
    const t0 = Date.now();
    const r = await act('stubborn', 'shutdown', '?timeout=1&wait=true');
    assert.equal(r.json().state, 'shutoff');
    assert.equal(r.json().reason, 'shutdown-timeout');
    assert.ok(Date.now() - t0 >= 1000, 'it waited for the timeout');
  });

  test('stop during a graceful shutdown forces it at once', async () => {
    await act('stubborn', 'start');
    assert.equal((await act('stubborn', 'shutdown', '?timeout=60')).statusCode, 202);
    assert.equal((await act('stubborn', 'start')).statusCode, 409, 'start is illegal while stopping');
    const r = await act('stubborn', 'stop');
    assert.equal(r.json().state, 'shutoff');
  });
});

describe('the guest and the worker end by themselves', () => {
  test('the worker killed with SIGKILL → crashed and an event within 1 s', async () => {
    await define('victim');
    const { pid } = (await act('victim', 'start')).json();
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const e = await until('a crashed event', () => h.events.find((e) => e.domain === 'victim' && e.state === 'crashed'), 1000);
    assert.ok(Date.now() - t0 < 1000);
    assert.equal(e.reason, 'worker-killed');
    assert.equal(await state('victim'), 'crashed');
  });

  test('a crashed domain starts again, or is acknowledged with stop', async () => {
    assert.equal((await act('victim', 'start')).json().state, 'running');
    process.kill((await h.app.inject({ method: 'GET', url: '/v1/domains/victim/state' })).json().pid, 'SIGKILL');
    await until('crashed', async () => (await state('victim')) === 'crashed');
    const r = await act('victim', 'stop');
    assert.equal(r.json().state, 'shutoff');
  });

  test('on_crash=restart starts the domain again', async () => {
    await define('phoenix', { on_crash: 'restart' });
    const { pid } = (await act('phoenix', 'start')).json();
    process.kill(pid, 'SIGKILL');
    await until('restarted', async () => {
      const s = (await h.app.inject({ method: 'GET', url: '/v1/domains/phoenix/state' })).json();
      return s.state === 'running' && s.pid !== pid;
    });
    assert.ok(h.events.some((e) => e.domain === 'phoenix' && e.state === 'crashed'));
    await act('phoenix', 'stop');
  });

  test('on_crash=destroy leaves the domain shutoff after the crash event', async () => {
    await define('ashes', { on_crash: 'destroy' });
    const { pid } = (await act('ashes', 'start')).json();
    process.kill(pid, 'SIGKILL');
    await until('shutoff', async () => (await state('ashes')) === 'shutoff');
    const seq = h.events.filter((e) => e.domain === 'ashes' && e.type === 'state-changed').map((e) => e.state);
    assert.deepEqual(seq.slice(-2), ['crashed', 'shutoff']);
  });

  test('a worker that fails to start → 500 WORKER_START_FAILED with its log, domain shutoff', async () => {
    await define('broken', {}, 'fake.fail');
    const r = await act('broken', 'start');
    assert.equal(r.statusCode, 500, r.body);
    assert.equal(r.json().code, 'WORKER_START_FAILED');
    assert.match(r.json().detail, /failing as asked/);
    const s = (await h.app.inject({ method: 'GET', url: '/v1/domains/broken/state' })).json();
    assert.equal(s.state, 'shutoff');
    assert.equal(s.reason, 'start-failed');
  });

  test('a guest that powers off before the daemon attaches: start succeeds, the domain is shutoff (poweroff)', async () => {
    await define('quick', {}, 'fake.quick');
    const r = await act('quick', 'start');
    assert.equal(r.statusCode, 200, r.body);
    assert.equal(r.json().state, 'shutoff');
    assert.equal(r.json().reason, 'poweroff');
    const seq = h.events.filter((e) => e.domain === 'quick' && e.type === 'state-changed').map((e) => e.state);
    assert.deepEqual(seq, ['starting', 'running', 'shutoff']);
  });

  test('a start that waits for a slow boot answers running', async () => {
    await define('slow', {}, 'fake.boot-ms=300');
    const r = await act('slow', 'start');
    assert.equal(r.json().state, 'running');
    await act('slow', 'stop');
  });
});

describe('serialised actions', () => {
  test('concurrent actions on one domain run in order, each seeing the state the last left', async () => {
    await define('busy');
    const results = await Promise.all(['start', 'pause', 'resume', 'stop', 'start', 'stop'].map((a) => act('busy', a)));
    assert.deepEqual(results.map((r) => r.statusCode), [200, 200, 200, 200, 200, 200]);
    assert.deepEqual(results.map((r) => r.json().state), ['running', 'paused', 'running', 'shutoff', 'running', 'shutoff']);
  });

  test('two concurrent starts: one wins, the other is 409', async () => {
    const [a, b] = await Promise.all([act('busy', 'start'), act('busy', 'start')]);
    assert.deepEqual([a.statusCode, b.statusCode].sort(), [200, 409]);
    await act('busy', 'stop');
  });
});

describe('delete', () => {
  test('force=true stops a running domain and deletes it', async () => {
    await define('doomed');
    const { pid } = (await act('doomed', 'start')).json();
    const r = await h.app.inject({ method: 'DELETE', url: '/v1/domains/doomed?force=true' });
    assert.equal(r.statusCode, 204, r.body);
    assert.throws(() => process.kill(pid, 0));
    assert.equal((await h.app.inject({ method: 'GET', url: '/v1/domains/doomed' })).statusCode, 404);
  });
});

test('an action announced as JSON with an empty body, or with {}, is taken', async () => {
  await define('lenient');
  const empty = await h.app.inject({ method: 'POST', url: '/v1/domains/lenient/actions/start', headers: { 'content-type': 'application/json' }, payload: '' });
  assert.equal(empty.statusCode, 200, empty.body);
  const obj = await h.app.inject({ method: 'POST', url: '/v1/domains/lenient/actions/stop', payload: {} });
  assert.equal(obj.statusCode, 200, obj.body);
});

describe('devices', () => {
  test('the worker gets the domain\'s disks and NICs as --disk and --net flags', async () => {
    const disk = `${h.dir}/disk0.raw`;
    writeFileSync(disk, Buffer.alloc(4096));
    await define('devices', { disks: [{ path: disk, readonly: true, serial: 'd0' }], nics: [{ type: 'tap', ifname: 'tap9', mac: '02:00:00:00:00:09' }] });
    const { pid } = (await act('devices', 'start')).json();
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    assert.equal(argv[argv.indexOf('--disk') + 1], `${disk},ro,serial=d0`);
    assert.equal(argv[argv.indexOf('--net') + 1], 'tap=tap9,mac=02:00:00:00:00:09');
    await act('devices', 'stop');
  });

  test('a qcow2 disk is stored, but start is 422 UNSUPPORTED_CONFIG and the domain stays shutoff', async () => {
    const disk = `${h.dir}/disk1.qcow2`;
    writeFileSync(disk, Buffer.alloc(4096));
    await define('qcow', { disks: [{ path: disk, format: 'qcow2' }] });
    const r = await act('qcow', 'start');
    assert.equal(r.statusCode, 422, r.body);
    assert.equal(r.json().code, 'UNSUPPORTED_CONFIG');
    assert.match(r.json().detail, /qcow2/);
    assert.equal(await state('qcow'), 'shutoff');
  });
});
