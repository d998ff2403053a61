/**
 * The supervisor across daemon restarts, with the fake worker: workers outlive the daemon,
 * and the next daemon takes them back or settles what happened while it was away.
 */
import { afterEach, test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { harness, until, type Harness } from '../testing/harness.js';

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function define(g: Harness, name: string, extra: Record<string, unknown> = {}) {
  const r = await g.app.inject({ method: 'POST', url: '/v1/domains', payload: { name, boot: { kernel: g.kernel }, ...extra } });
  assert.equal(r.statusCode, 201, r.body);
}
const act = (g: Harness, name: string, action: string) => g.app.inject({ method: 'POST', url: `/v1/domains/${name}/actions/${action}` });
const status = async (g: Harness, name: string) => (await g.app.inject({ method: 'GET', url: `/v1/domains/${name}/state` })).json();

test('a restarted daemon re-attaches to running and paused workers, and controls them', async () => {
  const g = (h = await harness());
  await define(g, 'keep');
  await define(g, 'held');
  const { pid } = (await act(g, 'keep', 'start')).json();
  await act(g, 'held', 'start');
  await act(g, 'held', 'pause');
  await g.restart();
  assert.equal(process.kill(pid, 0), true, 'the worker outlived the daemon');
  const keep = await status(g, 'keep');
  assert.equal(keep.state, 'running');
  assert.equal(keep.pid, pid);
  assert.ok(keep.stats, 'the new daemon talks to the worker');
  assert.equal((await status(g, 'held')).state, 'paused');
  assert.equal((await act(g, 'held', 'resume')).json().state, 'running');
  // and it notices the worker's death like its own child's
  process.kill(pid, 'SIGKILL');
  await until('crashed', async () => (await status(g, 'keep')).state === 'crashed', 1000);
  assert.equal((await act(g, 'held', 'stop')).json().state, 'shutoff');
});

test('a worker without a pid file (the daemon died as it started) is found by its command line', async () => {
  const g = (h = await harness());
  await define(g, 'nopid');
  const { pid, uuid } = { ...(await act(g, 'nopid', 'start')).json(), uuid: g.daemon.store.domains.getByName('nopid')!.uuid };
  await g.app.close();
  g.daemon.close();
  rmSync(join(g.runtimeDir, 'vms', uuid, 'worker.pid'));
  await g.restart();
  const s = await status(g, 'nopid');
  assert.equal(s.state, 'running');
  assert.equal(s.pid, pid);
  await act(g, 'nopid', 'stop');
});

test('a worker that died while the daemon was down → crashed at restart, with an event', async () => {
  const g = (h = await harness());
  await define(g, 'lost');
  const { pid } = (await act(g, 'lost', 'start')).json();
  await g.app.close();
  g.daemon.close();
  process.kill(pid, 'SIGKILL');
  await until('the worker gone', () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
  await g.restart();
  const s = await status(g, 'lost');
  assert.equal(s.state, 'crashed');
  assert.equal(s.reason, 'worker-lost');
  assert.ok(g.events.some((e) => e.domain === 'lost' && e.state === 'crashed'));
});

test('after a host reboot (a new boot id) domains that were running are shutoff, and autostart ones start', async () => {
  const g = (h = await harness());
  await define(g, 'was-up');
  await define(g, 'auto', { autostart: true });
  const a = (await act(g, 'was-up', 'start')).json().pid;
  const b = (await act(g, 'auto', 'start')).json().pid;
  await g.app.close();
  g.daemon.close();
  for (const pid of [a, b]) process.kill(pid, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 100));
  // the previous run saw another boot: as if the host rebooted while the daemon was down
  const { openStore } = await import('../store/mod.js');
  const store = openStore(`${g.stateDir}/vmctl.db`);
  store.meta.set('boot_id', 'a-previous-boot');
  store.close();
  await g.restart();
  const up = await status(g, 'was-up');
  assert.equal(up.state, 'shutoff');
  assert.equal(up.reason, 'host-reboot');
  await g.daemon.supervisor.autostart();
  assert.equal((await status(g, 'auto')).state, 'running');
  assert.equal((await status(g, 'was-up')).state, 'shutoff', 'autostart leaves the others alone');
});

test('on_poweroff=restart starts the guest again when it powers off by itself, not when asked to shut down', async () => {
  const g = (h = await harness());
  await define(g, 'loop', { on_poweroff: 'restart' });
  const first = (await act(g, 'loop', 'start')).json().pid;
  const ws = await g.app.injectWS('/v1/domains/loop/console');
  ws.send('!poweroff');
  await until('a new worker', async () => {
    const s = await status(g, 'loop');
    return s.state === 'running' && s.pid !== first;
  });
  const r = await g.app.inject({ method: 'POST', url: '/v1/domains/loop/actions/shutdown?wait=true' });
  assert.equal(r.json().state, 'shutoff');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal((await status(g, 'loop')).state, 'shutoff', 'no restart after a requested shutdown');
});

test('on_crash=restart gives up after 5 restarts in a minute and leaves the domain crashed', async () => {
  const g = (h = await harness());
  await define(g, 'flaky', { on_crash: 'restart' });
  await act(g, 'flaky', 'start');
  for (let i = 0; i < 6; i++) {
    const s = await until('running', async () => {
      const s = await status(g, 'flaky');
      return s.state === 'running' && s.pid ? s : undefined;
    }, 10000);
    process.kill(s.pid, 'SIGKILL');
    await until('not running', async () => (await status(g, 'flaky')).pid !== s.pid, 10000);
  }
  const s = await until('given up', async () => {
    const s = await status(g, 'flaky');
    return s.reason === 'restart-limit' ? s : undefined;
  }, 10000);
  assert.equal(s.state, 'crashed');
});
