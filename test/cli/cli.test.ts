/**
 * vmctl end to end: the built `vmctl` (apps/cli/dist/main.js) against a real vmctld
 * (apps/daemon/dist/server.js) on temporary directories, with real `vmm` workers running test
 * guests on this machine's /dev/kvm. Checks what users and scripts see: output, exit codes,
 * the console (typing, detaching, the replay on re-attach, a reset), events, and that a
 * domain's disks reach the guest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { haveKvm } from '../lib/kvm.js';
import { BUILT_SERVER as SERVER, DaemonProcess } from '../lib/daemon-process.js';
import { NetNamespace, netnsMissing } from '../lib/netns.js';
import { guest, ROOT } from '../lib/vmm-process.js';

const CLI = join(ROOT, 'apps/cli/dist/main.js');

const kvm = haveKvm();
const opts = { skip: !kvm, timeout: 300000 };

/** vmctld from its build (as installed), not from source; `prefix` runs it in a network namespace. */
function builtDaemon(prefix: string[] = []): DaemonProcess {
  return new DaemonProcess({ command: [...prefix, process.execPath, SERVER] });
}

let d: DaemonProcess;
/** the daemon's TCP listener, and the token it wants there */
let url: string;
const TOKEN = 't'.repeat(40);

before(async () => {
  if (!kvm) return;
  for (const f of [CLI, SERVER]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build -w apps/cli -w apps/daemon first`);
  d = builtDaemon();
  url = await d.startTcp(TOKEN);
});
after(async () => {
  await d?.cleanup();
});

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs vmctl on the daemon's Unix socket, to its end. */
function vmctl(args: string[], env: Record<string, string> = {}, daemon: DaemonProcess = d): Promise<Result> {
  return vmctlRaw(['--socket', daemon.socket, ...args], env);
}

/** Runs vmctl with exactly these arguments, to its end. */
function vmctlRaw(args: string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b) => (stdout += b));
    child.stderr.on('data', (b) => (stderr += b));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function ok(args: string[], daemon: DaemonProcess = d): Promise<string> {
  const r = await vmctl(args, {}, daemon);
  assert.equal(r.code, 0, `vmctl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** `vmctl console NAME` as a user has it, with stdin and stdout piped. */
class ConsoleSession {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(name: string) {
    this.child = spawn(process.execPath, [CLI, '--socket', d.socket, 'console', name], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (b: Buffer) => (this.stdout += b.toString('latin1')));
    this.child.stderr!.on('data', (b: Buffer) => (this.stderr += b.toString('latin1')));
    this.exited = new Promise((r) => this.child.on('close', (code) => r(code)));
  }

  async waitFor(re: RegExp, ms = 20000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!re.test(this.stdout)) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${re}; console: ${JSON.stringify(this.stdout)}; stderr: ${this.stderr}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  type(text: string): void {
    this.child.stdin!.write(text);
  }
}

describe('vmctl with a real daemon and real guests', opts, () => {
  test('host and an empty list', async () => {
    const host = await ok(['host']);
    assert.match(host, /kvm:\s+usable/);
    assert.equal(await ok(['list']), 'No domains.\n');
    assert.deepEqual(JSON.parse(await ok(['list', '-o', 'json'])), []);
  });

  test('over TCP with the bearer token (flag or VMCTL_TOKEN), REST and WebSocket; a wrong token is exit 5', async () => {
    for (let i = 0; i < 100; i++) {
      if ((await vmctlRaw(['--url', url, '--token', TOKEN, 'list'])).code === 0) break; // the TCP listener comes up after the socket
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal((await vmctlRaw(['--url', url, '--token', TOKEN, 'list'])).stdout, 'No domains.\n');
    const ws = await vmctlRaw(['events', '--since', '0', '--count', '0'], { VMCTL_URL: url, VMCTL_TOKEN: TOKEN });
    assert.equal(ws.code, 0, ws.stderr);
    const wrong = await vmctlRaw(['--url', url, '--token', 'x'.repeat(40), 'list']);
    assert.equal(wrong.code, 5);
    assert.match(wrong.stderr, /Authentication required \(UNAUTHORIZED\)/);
    const wrongWs = await vmctlRaw(['--url', url, 'events'], { VMCTL_TOKEN: 'nope' });
    assert.equal(wrongWs.code, 5);
  });

  test('create from flags; creating it again is a conflict (exit 4) with the problem\'s title and detail', async () => {
    const out = await ok(['create', 'echo', '--kernel', 'test/guests/out/echo.elf', '--memory', '64M']);
    assert.match(out, /^Domain echo created \(uuid [0-9a-f-]{36}\)/);
    const again = await vmctl(['create', 'echo', '--kernel', guest('echo'), '--memory', '64']);
    assert.equal(again.code, 4);
    assert.match(again.stderr, /^vmctl: The domain already exists \(DOMAIN_EXISTS\)\n {2}Domain "echo" already exists/);
  });

  test('a domain that does not exist is exit 3 with the problem\'s title and detail', async () => {
    const r = await vmctl(['show', 'nobody']);
    assert.equal(r.code, 3);
    assert.match(r.stderr, /No such domain \(DOMAIN_NOT_FOUND\)\n {2}Domain "nobody" does not exist/);
    assert.equal(r.stdout, '');
  });

  test('usage errors and an unreachable daemon have their own exit codes', async () => {
    assert.equal((await vmctl(['frobnicate'])).code, 2);
    assert.equal((await vmctl(['create', 'bad', '--memory', 'lots', '--kernel', guest('echo')])).code, 2);
    const invalid = await vmctl(['create', 'Bad_Name', '--kernel', guest('echo')]);
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /VALIDATION_FAILED[\s\S]*\/body\/name/);
    const gone = await new Promise<Result>((resolve) => {
      const c = spawn(process.execPath, [CLI, '--socket', join(d.dir, 'no.sock'), 'list'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      c.stderr.on('data', (b) => (stderr += b));
      c.on('close', (code) => resolve({ code, stdout: '', stderr }));
    });
    assert.equal(gone.code, 5);
    assert.match(gone.stderr, /cannot connect to vmctld: no socket at/);
  });

  test('start answers running; a second start is a conflict (exit 4); list and show agree', async () => {
    assert.match(await ok(['start', 'echo']), /^echo: running \(pid \d+\)\n$/);
    const again = await vmctl(['start', 'echo']);
    assert.equal(again.code, 4);
    assert.match(again.stderr, /INVALID_STATE_TRANSITION/);
    assert.match(await ok(['list']), /^NAME\s+STATE\s+VCPUS\s+MEMORY[^\n]*\necho\s+running\s+1\s+64 MiB/);
    const list = JSON.parse(await ok(['list', '--output', 'json']));
    assert.equal(list[0].name, 'echo');
    assert.equal(list[0].state, 'running');
    assert.equal(await ok(['list', '-o', 'name']), 'echo\n');
    const shown = JSON.parse(await ok(['show', 'echo', '-o', 'json']));
    assert.equal(shown.status.state, 'running');
    assert.equal(shown.memory_mib, 64);
    assert.match(await ok(['show', 'echo']), /state:\s+running[\s\S]*kernel:\s+\/\S+\/echo\.elf/);
  });

  test('console: what is typed is echoed; Ctrl-] detaches and the guest runs on', async () => {
    const c = new ConsoleSession('echo');
    await c.waitFor(/echo: ready/);
    c.type('first line\r');
    await c.waitFor(/first line/);
    c.type('\x1d');
    assert.equal(await c.exited, 0);
    assert.match(c.stderr, /Detached from domain echo/);
    assert.match(await ok(['show', 'echo']), /state:\s+running/);
  });

  test('console: a re-attach replays what came before; the console stays through a reset; the guest\'s poweroff ends it', async () => {
    const c = new ConsoleSession('echo');
    await c.waitFor(/echo: ready[\s\S]*first line/); // the replay, before anything is typed
    assert.match(await ok(['reset', 'echo']), /^echo: running/);
    await c.waitFor(/first line[\s\S]*echo: ready/); // booted again, same console
    c.type('q');
    await c.waitFor(/echo: bye/);
    assert.equal(await c.exited, 0);
    assert.match(c.stderr, /Console closed/);
    assert.match(await ok(['show', 'echo']), /state:\s+shutoff \(poweroff\)/);
  });

  test('the console of a domain that is not running is a conflict (exit 4)', async () => {
    const r = await vmctl(['console', 'echo']);
    assert.equal(r.code, 4);
    assert.match(r.stderr, /DOMAIN_NOT_RUNNING/);
  });

  test('events: the domain\'s history as JSON lines', async () => {
    // created, shutoff → starting → running, the reset's guest-reboot, running → shutoff
    const out = await ok(['events', '--domain', 'echo', '--since', '0', '--count', '5', '-o', 'json']);
    const events = out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(events.map((e) => e.type), ['domain-created', 'state-changed', 'state-changed', 'guest-reboot', 'state-changed']);
    assert.deepEqual(events.map((e) => e.state ?? null), ['shutoff', 'starting', 'running', null, 'shutoff']);
    assert.equal(events[4].reason, 'poweroff');
    const text = await ok(['events', '--domain', 'echo', '--since', '0', '--count', '2']);
    assert.match(text, /#\d+\s+echo\s+domain-created\n.*shutoff → starting \(user\)\n$/);
  });

  test('pause, resume, shutdown with a timeout, stop', async () => {
    await ok(['start', 'echo']);
    assert.match(await ok(['pause', 'echo']), /^echo: paused/);
    assert.equal((await vmctl(['pause', 'echo'])).code, 4);
    assert.match(await ok(['resume', 'echo']), /^echo: running/);
    // echo.elf ignores the power button: forced off when the timeout runs out
    assert.match(await ok(['shutdown', 'echo', '--timeout', '1', '--wait']), /^echo: shutoff \(shutdown-timeout\)/);
    await ok(['start', 'echo']);
    const stopped = JSON.parse(await ok(['stop', 'echo', '-o', 'json']));
    assert.equal(stopped.state, 'shutoff');
    assert.equal(stopped.reason, 'user');
  });

  test('edit with flags, then in $EDITOR (If-Match), then a cancelled edit', async () => {
    assert.match(await ok(['edit', 'echo', '--vcpus', '2', '--memory', '96']), /^Domain echo updated\n$/);
    let shown = JSON.parse(await ok(['show', 'echo', '-o', 'json']));
    assert.equal(shown.vcpus, 2);
    assert.equal(shown.memory_mib, 96);
    const editor = join(d.dir, 'editor.sh');
    writeFileSync(editor, '#!/bin/sh\nsed -i "s/^vcpus: .*/vcpus: 1/; s/^autostart: .*/autostart: true/" "$1"\n', { mode: 0o755 });
    const r = await vmctl(['edit', 'echo'], { EDITOR: editor });
    assert.equal(r.code, 0, r.stderr);
    shown = JSON.parse(await ok(['show', 'echo', '-o', 'json']));
    assert.equal(shown.vcpus, 1);
    assert.equal(shown.autostart, true);
    const cancelled = await vmctl(['edit', 'echo'], { EDITOR: 'true' });
    assert.equal(cancelled.code, 0);
    assert.match(cancelled.stderr, /Edit cancelled/);
    await ok(['edit', 'echo', '--no-autostart']);
  });

  test('delete: refused while running (exit 4), --force stops and deletes', async () => {
    await ok(['start', 'echo']);
    const refused = await vmctl(['delete', 'echo']);
    assert.equal(refused.code, 4);
    assert.match(refused.stderr, /The domain is running \(DOMAIN_RUNNING\)/);
    assert.equal(await ok(['delete', 'echo', '--force']), 'Domain echo deleted\n');
    assert.equal((await vmctl(['show', 'echo'])).code, 3);
  });

  test('a YAML definition with a disk: the disk reaches the guest as virtio-blk with its serial', async () => {
    const image = join(d.dir, 'disk.raw');
    writeFileSync(image, '');
    truncateSync(image, 16384 * 512);
    const file = join(d.dir, 'blk.yaml');
    writeFileSync(file, [
      'name: blk',
      'memory_mib: 64',
      'boot:',
      `  kernel: ${guest('virtio-blk')}`,
      '  cmdline: seed=7',
      'disks:',
      '  - path: disk.raw   # relative to this file',
      '    serial: abc',
      'serial:',
      '  log: true',
      '',
    ].join('\n'));
    const created = JSON.parse(await ok(['create', '-f', file, '-o', 'json']));
    assert.deepEqual(created.disks, [{ path: image, format: 'raw', readonly: false, serial: 'abc' }]);
    await ok(['start', 'blk']);
    const log = join(d.stateDir, 'logs', `${created.uuid}.console.log`);
    const deadline = Date.now() + 30000;
    for (;;) {
      const text = existsSync(log) ? readFileSync(log, 'utf8') : '';
      if (/blk: write-zeroes ok/.test(text)) {
        assert.match(text, /blk: capacity=16384 sectors/);
        assert.match(text, /blk: serial=abc/);
        break;
      }
      if (Date.now() > deadline) throw new Error(`the virtio-blk guest did not finish: ${JSON.stringify(text)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    await ok(['delete', 'blk', '--force']);
  });
});

const netMissing = netnsMissing();
describe('NICs: a daemon in a network namespace of its own wires the taps it names', { skip: !kvm || netMissing ? `needs ${netMissing || '/dev/kvm'}` : false, timeout: 120000 }, () => {
  let ns: NetNamespace;
  let nd: DaemonProcess;

  before(async () => {
    ns = NetNamespace.create(`vmctl-cli-${process.pid}`);
    ns.ip('link', 'add', 'br0', 'type', 'bridge');
    ns.ip('link', 'set', 'br0', 'up');
    nd = builtDaemon(ns.prefix);
    await nd.start();
    ns.track(nd.child!);
  });
  after(async () => {
    await nd?.cleanup();
    ns?.delete();
  });

  test('a bridge NIC\'s tap joins its bridge and is up; a tap NIC without a name is created and up; both go with the worker', async () => {
    const created = JSON.parse(await ok(['create', 'netted', '--kernel', guest('echo'), '--memory', '64M', '--nic', 'bridge=br0', '--nic', 'tap,mac=02:00:00:00:00:42', '-o', 'json'], nd));
    assert.equal(created.nics[1].mac, '02:00:00:00:00:42');
    await ok(['start', 'netted'], nd);
    const prefix = `vm${created.uuid.replace(/-/g, '').slice(0, 10)}`;
    const bridged = ns.ip('-d', 'link', 'show', 'dev', `${prefix}n0`);
    assert.match(bridged, /master br0/);
    assert.match(bridged, /<[^>]*\bUP\b[^>]*>/);
    const tap = ns.ip('link', 'show', 'dev', `${prefix}n1`);
    assert.match(tap, /<[^>]*\bUP\b[^>]*>/);
    assert.match(tap, /link\/ether/);
    await ok(['stop', 'netted'], nd);
    assert.equal(ns.hasLink(`${prefix}n0`), false);
    assert.equal(ns.hasLink(`${prefix}n1`), false);
  });

  test('a NIC on a bridge that does not exist fails the start with the reason (exit 1), and the domain stays shutoff', async () => {
    await ok(['create', 'nobridge', '--kernel', guest('echo'), '--memory', '64M', '--nic', 'bridge=br9'], nd);
    const r = await vmctl(['start', 'nobridge'], {}, nd);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /WORKER_START_FAILED[\s\S]*cannot set up its network: ip link set dev vm\w+n0 master br9 up/);
    assert.match(await ok(['show', 'nobridge'], nd), /state:\s+shutoff \(start-failed\)/);
  });
});
