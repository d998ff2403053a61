/**
 * vmctld end to end: a real daemon on temporary directories, real `vmm` workers, test
 * guests on this machine's /dev/kvm, driven through the REST API and the WebSockets on the
 * daemon's Unix socket.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { haveKvm } from '../lib/kvm.js';
import { guest } from '../lib/vmm-process.js';
import { ConsoleClient, DaemonProcess, EventsClient } from '../lib/daemon-process.js';

const kvm = haveKvm();
const opts = { skip: !kvm, timeout: 120000 };

let d: DaemonProcess;

before(async () => {
  if (!kvm) return;
  d = new DaemonProcess();
  await d.start();
});
after(async () => {
  await d?.cleanup();
});

async function define(name: string, kernel: string, extra: Record<string, unknown> = {}) {
  const r = await d.req('POST', '/v1/domains', { name, memory_mib: 64, boot: { kernel: guest(kernel) }, ...extra });
  assert.equal(r.status, 201, JSON.stringify(r.body));
  return r.body;
}
const act = (name: string, action: string, query = '') => d.req('POST', `/v1/domains/${name}/actions/${action}${query}`);
const state = async (name: string) => (await d.req('GET', `/v1/domains/${name}/state`)).body;

describe('one guest through its life', opts, () => {
  test('the hello guest starts, prints, powers off by itself: shutoff (poweroff) and the events say so', async () => {
    const ev = new EventsClient(d, '?domain=hello');
    await ev.opened;
    await define('hello', 'hello');
    const r = await act('hello', 'start');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    await ev.waitFor((e) => e.state === 'shutoff' && e.reason === 'poweroff');
    assert.deepEqual(ev.events.filter((e) => e.type === 'state-changed').map((e) => e.state), ['starting', 'running', 'shutoff']);
    ev.close();
  });

  test('the echo guest: console in and out, replay after detach, reset keeps the console, q powers it off', async () => {
    await define('echo', 'echo');
    assert.equal((await act('echo', 'start')).body.state, 'running');
    const list = (await d.req('GET', '/v1/domains?state=running')).body.items.map((x: { name: string }) => x.name);
    assert.deepEqual(list, ['echo']);

    const c1 = new ConsoleClient(d, 'echo');
    await c1.opened;
    await c1.waitFor(/echo: ready/);
    c1.send('first line\r');
    await c1.waitFor(/first line/);
    c1.close();

    const c2 = new ConsoleClient(d, 'echo');
    await c2.opened;
    await c2.waitFor(/echo: ready[\s\S]*first line/); // the replay of what c1 saw
    const ev = new EventsClient(d, '?domain=echo');
    await ev.opened;
    assert.equal((await act('echo', 'reset')).status, 200);
    await ev.waitFor((e) => e.type === 'guest-reboot');
    await c2.waitFor(/first line[\s\S]*echo: ready/); // booted again, same socket
    assert.equal(c2.ws.readyState, c2.ws.OPEN);
    assert.equal((await state('echo')).state, 'running');

    c2.send('q');
    await c2.waitFor(/echo: bye/);
    assert.equal(await c2.closed, 1000);
    await ev.waitFor((e) => e.state === 'shutoff' && e.reason === 'poweroff');
    ev.close();
  });

  test('pause and resume a running guest', async () => {
    assert.equal((await act('echo', 'start')).body.state, 'running');
    assert.equal((await act('echo', 'pause')).body.state, 'paused');
    assert.equal((await act('echo', 'resume')).body.state, 'running');
    const c = new ConsoleClient(d, 'echo');
    await c.opened;
    c.send('still alive\r');
    await c.waitFor(/still alive/);
    c.close();
  });

  test('shutdown of a guest that ignores the power button forces it off after the timeout', async () => {
    const r = await act('echo', 'shutdown', '?timeout=1&wait=true');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.state, 'shutoff');
    assert.equal(r.body.reason, 'shutdown-timeout');
  });

  test('stop forces a running guest off; delete then removes it', async () => {
    await act('echo', 'start');
    assert.equal((await d.req('DELETE', '/v1/domains/echo')).status, 409);
    const r = await act('echo', 'stop');
    assert.equal(r.body.state, 'shutoff');
    assert.equal(r.body.reason, 'user');
    assert.equal((await d.req('DELETE', '/v1/domains/echo')).status, 204);
    assert.equal((await d.req('GET', '/v1/domains/echo')).status, 404);
  });
});

describe('failures', opts, () => {
  test('a worker killed with SIGKILL: crashed, and an event within 1 s', async () => {
    await define('victim', 'echo');
    const { pid } = (await act('victim', 'start')).body;
    const ev = new EventsClient(d, '?domain=victim');
    await ev.opened;
    const t0 = Date.now();
    process.kill(pid, 'SIGKILL');
    const e = await ev.waitFor((e) => e.state === 'crashed', 1000);
    assert.ok(Date.now() - t0 <= 1000, `the crash was seen after ${Date.now() - t0} ms`);
    assert.equal(e.reason, 'worker-killed');
    assert.equal((await state('victim')).state, 'crashed');
    ev.close();
    assert.equal((await act('victim', 'stop')).body.state, 'shutoff');
  });

  test('the daemon killed with SIGKILL while guests run: the next daemon takes them all back', async () => {
    const names = ['keep-a', 'keep-b', 'keep-c'];
    for (const n of names) await define(n, 'echo');
    const pids = new Map<string, number>();
    for (const n of names) pids.set(n, (await act(n, 'start')).body.pid);
    await act('keep-c', 'pause');
    await d.kill();
    for (const pid of pids.values()) assert.equal(process.kill(pid, 0), true, 'workers outlive the daemon');
    await d.start();
    for (const n of names) {
      const s = await state(n);
      assert.equal(s.pid, pids.get(n), n);
      assert.equal(s.state, n === 'keep-c' ? 'paused' : 'running', n);
      assert.ok(s.stats, `${n}: the new daemon talks to its worker`);
    }
    const c = new ConsoleClient(d, 'keep-a');
    await c.opened;
    await c.waitFor(/echo: ready/);
    c.send('hello again\r');
    await c.waitFor(/hello again/);
    c.close();
    // the new daemon notices a death among the workers it took back
    const ev = new EventsClient(d, '?domain=keep-b');
    await ev.opened;
    process.kill(pids.get('keep-b')!, 'SIGKILL');
    await ev.waitFor((e) => e.state === 'crashed', 1000);
    ev.close();
    for (const n of names) await d.req('DELETE', `/v1/domains/${n}?force=true`);
  });
});

describe('many guests', opts, () => {
  test('20 domains started and stopped concurrently', async () => {
    const names = Array.from({ length: 20 }, (_, i) => `many-${i}`);
    await Promise.all(names.map((n) => define(n, 'echo')));
    const started = await Promise.all(names.map((n) => act(n, 'start')));
    for (const r of started) assert.equal(r.body.state, 'running', JSON.stringify(r.body));
    assert.equal((await d.req('GET', '/v1/domains?state=running')).body.items.length, 20);
    const stopped = await Promise.all(names.map((n) => act(n, 'stop')));
    for (const r of stopped) assert.equal(r.body.state, 'shutoff', JSON.stringify(r.body));
    await Promise.all(names.map((n) => d.req('DELETE', `/v1/domains/${n}`)));
    assert.equal((await d.req('GET', '/v1/domains?state=running')).body.items.length, 0);
  });
});

test('GET /v1/host reports a usable KVM', opts, async () => {
  const r = await d.req('GET', '/v1/host');
  assert.equal(r.status, 200);
  assert.equal(r.body.kvm.present, true);
  assert.equal(r.body.kvm.usable, true);
  assert.equal(r.body.kvm.api_version, 12);
});

