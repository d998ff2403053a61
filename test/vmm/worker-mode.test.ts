/**
 * `vmm run` as vmctld runs it: control socket, console socket with replay, pid file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveKvm } from '../lib/kvm.js';
import { guest, VmmProcess } from '../lib/vmm-process.js';
import { ControlClient } from '../lib/control-client.js';

const kvm = haveKvm();
const opts = { skip: !kvm, timeout: 60000 };

async function waitForFile(path: string, ms = 10000): Promise<void> {
  const end = Date.now() + ms;
  while (!existsSync(path)) {
    if (Date.now() > end) throw new Error(`${path} never appeared`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function startWorker(name: string, extra: string[] = []) {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-worker-'));
  const paths = { control: join(dir, 'control.sock'), console: join(dir, 'console.sock'), pid: join(dir, 'vmm.pid') };
  const p = new VmmProcess([
    'run', '--kernel', guest(name), '--memory', '64M', '--vm-id', 'test-vm',
    '--control', paths.control, '--console-socket', paths.console, '--pid-file', paths.pid, ...extra,
  ]);
  return { p, paths };
}

/** Connects to the console socket and collects what it says. */
async function attachConsole(path: string) {
  const sock = connect(path);
  const c = { text: '', sock };
  sock.on('data', (b) => (c.text += b.toString('latin1')));
  await new Promise((r) => sock.once('connect', r));
  return {
    ...c,
    get text() {
      return c.text;
    },
    async waitFor(re: RegExp, ms = 15000) {
      const end = Date.now() + ms;
      while (!re.test(c.text)) {
        if (Date.now() > end) throw new Error(`console never matched ${re}: ${JSON.stringify(c.text)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

test('a worker serves describe, stats, pause/resume and stop over its control socket', opts, async () => {
  const { p, paths } = startWorker('echo');
  try {
    await waitForFile(paths.control);
    const ctl = await ControlClient.connect(paths.control);
    assert.deepEqual(await ctl.request('hello', { version: 1 }), { id: 1, ok: true, result: { version: 1 } });
    const bad = await ctl.request('hello', { version: 99 });
    assert.equal(bad.ok, false);
    assert.equal(!bad.ok && bad.error.code, 'VERSION_MISMATCH');
    await ctl.request('subscribe');
    const con = await attachConsole(paths.console);
    await con.waitFor(/echo: ready/);

    const d = await ctl.request('describe');
    assert.ok(d.ok);
    const desc = d.result as { pid: number; state: string; vmId: string };
    assert.equal(desc.pid, p.child.pid);
    assert.equal(desc.state, 'running');
    assert.equal(desc.vmId, 'test-vm');
    assert.equal(readFileSync(paths.pid, 'utf8').trim(), String(p.child.pid));

    assert.deepEqual(await ctl.request('pause'), { id: 5, ok: true });
    await ctl.waitEvent((e) => e.event === 'state' && e.state === 'paused');
    const stats = await ctl.request('stats');
    assert.ok(stats.ok && (stats.result as { vcpus: unknown[] }).vcpus.length === 1);
    con.sock.write('x');
    await new Promise((r) => setTimeout(r, 300));
    assert.doesNotMatch(con.text, /ready\r?\n.*x/s, 'a paused guest does not echo');
    assert.deepEqual((await ctl.request('resume')).ok, true);
    await con.waitFor(/echo: ready[\s\S]*x/);

    const unknown = await ctl.request('fly');
    assert.equal(!unknown.ok && unknown.error.code, 'UNKNOWN_REQUEST');
    ctl.raw('{not json');
    assert.equal((await ctl.request('describe')).ok, true, 'the connection survives a malformed line');

    assert.equal((await ctl.request('stop')).ok, true);
    const stopped = await ctl.waitEvent((e) => e.event === 'guest-stopped');
    assert.equal(stopped.event === 'guest-stopped' && stopped.reason, 'stopped');
    const { code } = await p.finish();
    assert.equal(code, 130);
    assert.equal(existsSync(paths.pid), false, 'the pid file is removed');
    assert.equal(existsSync(paths.control), false, 'the control socket is removed');
    ctl.close();
    con.sock.destroy();
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('the console socket replays earlier output to a late client and survives a reset', opts, async () => {
  const { p, paths } = startWorker('echo');
  try {
    await waitForFile(paths.console);
    const first = await attachConsole(paths.console);
    await first.waitFor(/echo: ready/);
    first.sock.write('abc');
    await first.waitFor(/abc/);
    first.sock.destroy();

    const late = await attachConsole(paths.console);
    await late.waitFor(/echo: ready[\s\S]*abc/);

    const ctl = await ControlClient.connect(paths.control);
    await ctl.request('subscribe');
    assert.equal((await ctl.request('reset')).ok, true);
    await ctl.waitEvent((e) => e.event === 'guest-reboot');
    await late.waitFor(/abc[\s\S]*echo: ready/);
    late.sock.write('q');
    const stopped = await ctl.waitEvent((e) => e.event === 'guest-stopped');
    assert.equal(stopped.event === 'guest-stopped' && stopped.reason, 'poweroff');
    assert.equal((await p.finish()).code, 0);
    ctl.close();
    late.sock.destroy();
  } finally {
    p.child.kill('SIGKILL');
  }
});
