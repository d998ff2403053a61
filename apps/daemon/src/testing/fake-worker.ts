/**
 * A stand-in for `vmm run` that speaks the worker control protocol (libs/vmm/src/control/
 * protocol.ts) without KVM, for the daemon's own tests: the supervisor's spawn, attach,
 * re-attach and crash handling are exercised in milliseconds, on any machine.
 *
 * Its "guest" is a console loop: it prints `fake: boot N` and echoes input; a chunk of input
 * that is exactly `!poweroff`, `!reboot` or `!crash` does that. With `--display vnc=unix:PATH` its
 * "VNC server" on PATH greets each client with the RFB 3.8 version line and then echoes what
 * it gets (a chunk that is exactly `!close` closes that connection). Knobs on the kernel command line:
 *   fake.ignore-power-button   the power button does nothing (tests the shutdown timeout)
 *   fake.boot-ms=N             report `starting` for N ms before `running`
 *   fake.fail                  exit 125 before opening the control socket
 *   fake.quick                 power off at once, before the daemon can attach (most times)
 */
import { createServer, type Socket } from 'node:net';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type { ControlEvent, ControlRequest, ControlResponse, WorkerDescription, WorkerState } from '@vmctl/vmm';
import { LineSplitter } from '@vmctl/vmm/control-protocol';

const { values } = parseArgs({
  args: process.argv.slice(3),
  options: {
    kernel: { type: 'string' },
    initrd: { type: 'string' },
    cmdline: { type: 'string', default: '' },
    memory: { type: 'string', default: '256M' },
    cpus: { type: 'string', default: '1' },
    control: { type: 'string' },
    'console-socket': { type: 'string' },
    'pid-file': { type: 'string' },
    'vm-id': { type: 'string' },
    'no-reboot': { type: 'boolean', default: false },
    disk: { type: 'string', multiple: true, default: [] },
    net: { type: 'string', multiple: true, default: [] },
    display: { type: 'string', multiple: true, default: [] },
  },
  strict: true,
});

function die(msg: string): never {
  process.stderr.write(`fake-worker: ${msg}\n`);
  process.exit(125);
}

if (process.argv[2] !== 'run') die('usage: fake-worker run ...');
if (!values.kernel || !existsSync(values.kernel)) die(`cannot read kernel ${values.kernel}`);
const cmdline = values.cmdline!.split(/\s+/);
if (cmdline.includes('fake.fail')) die('failing as asked (fake.fail)');
const bootMs = Number(cmdline.find((a) => a.startsWith('fake.boot-ms='))?.split('=')[1] ?? 0);
const ignorePowerButton = cmdline.includes('fake.ignore-power-button');
const quick = cmdline.includes('fake.quick');

const REPLAY = 1024 * 1024;
let state: WorkerState = 'starting';
let boots = 0;
let output = Buffer.alloc(0);
const subscribers = new Set<Socket>();
const viewers = new Set<Socket>();
const vncClients = new Set<Socket>();
const startedAt = new Date().toISOString();

function emit(e: ControlEvent): void {
  for (const s of subscribers) s.write(JSON.stringify(e) + '\n');
}
function setState(s: WorkerState): void {
  state = s;
  emit({ event: 'state', state: s, at: new Date().toISOString() });
}
function print(text: string): void {
  const b = Buffer.from(text);
  output = Buffer.concat([output, b]);
  if (output.length > REPLAY) output = output.subarray(output.length - REPLAY);
  for (const v of viewers) v.write(b);
}
function boot(): void {
  boots++;
  print(`fake: boot ${boots}\r\n`);
  for (const d of values.disk!) print(`fake: disk ${d}\r\n`);
  for (const n of values.net!) print(`fake: net ${n}\r\n`);
}
function end(reason: 'poweroff' | 'reset' | 'stopped' | 'crashed', code: number): void {
  setState(reason === 'crashed' ? 'crashed' : 'stopped');
  emit({ event: 'guest-stopped', reason, exitCode: code, at: new Date().toISOString() });
  control.close();
  consoleServer.close();
  vncServer.close();
  for (const s of [...subscribers, ...viewers, ...vncClients]) s.end();
  rmSync(values['pid-file']!, { force: true });
  setTimeout(() => process.exit(code), 20);
}
function reboot(why: string): void {
  if (values['no-reboot']) return end('reset', 124);
  emit({ event: 'guest-reboot', reason: why, at: new Date().toISOString() });
  boot();
}
function onGuestInput(b: Buffer): void {
  if (state !== 'running') return;
  const text = b.toString('latin1');
  if (text === '!poweroff') return end('poweroff', 0);
  if (text === '!reboot') return reboot('guest');
  if (text === '!crash') return end('crashed', 126);
  print(text.replaceAll('\r', '\r\n'));
}

function answer(req: ControlRequest): ControlResponse {
  const ok = (result?: unknown): ControlResponse => (result === undefined ? { id: req.id, ok: true } : { id: req.id, ok: true, result });
  const invalid = (): ControlResponse => ({ id: req.id, ok: false, error: { code: 'INVALID_STATE', message: `the guest is ${state}` } });
  switch (req.type) {
    case 'hello':
      return req.version === 1 ? ok({ version: 1 }) : { id: req.id, ok: false, error: { code: 'VERSION_MISMATCH', message: 'worker speaks version 1' } };
    case 'describe': {
      const d: WorkerDescription = {
        version: 1,
        pid: process.pid,
        state,
        vmId: values['vm-id']!,
        startedAt,
        config: { memory: 0, cpus: Number(values.cpus), kernel: values.kernel!, cmdline: values.cmdline! },
        consoleSocket: values['console-socket']!,
      };
      return ok(d);
    }
    case 'subscribe':
      return ok();
    case 'pause':
      if (state !== 'running') return invalid();
      setState('paused');
      return ok();
    case 'resume':
      if (state !== 'paused') return invalid();
      setState('running');
      return ok();
    case 'power-button':
      if (state !== 'running') return invalid();
      if (!ignorePowerButton) setTimeout(() => end('poweroff', 0), 50);
      return ok();
    case 'ctrl-alt-del':
    case 'reset':
      if (state !== 'running' && state !== 'paused') return invalid();
      setTimeout(() => reboot(req.type), 10);
      return ok();
    case 'stop':
      setTimeout(() => end('stopped', 130), 10);
      return ok();
    case 'stats':
      return ok({ uptimeMs: Math.round(process.uptime() * 1000), rssBytes: process.memoryUsage().rss, vcpus: [{ exits: 0, missedPio: 0, missedMmio: 0 }], reboots: boots - 1 });
    default:
      return { id: (req as { id: number }).id, ok: false, error: { code: 'UNKNOWN_REQUEST', message: 'unknown request' } };
  }
}

const control = createServer((sock) => {
  sock.setEncoding('utf8');
  const lines = new LineSplitter((line) => {
    let req: ControlRequest;
    try {
      req = JSON.parse(line) as ControlRequest;
    } catch {
      sock.write(JSON.stringify({ id: 0, ok: false, error: { code: 'BAD_REQUEST', message: 'not JSON' } }) + '\n');
      return;
    }
    if (req.type === 'subscribe') subscribers.add(sock);
    sock.write(JSON.stringify(answer(req)) + '\n');
  });
  sock.on('data', (chunk: string) => {
    if (!lines.push(chunk)) sock.destroy();
  });
  sock.on('error', () => sock.destroy());
  sock.on('close', () => subscribers.delete(sock));
});

const consoleServer = createServer((sock) => {
  sock.write(output);
  viewers.add(sock);
  sock.on('data', onGuestInput);
  sock.on('error', () => sock.destroy());
  sock.on('close', () => viewers.delete(sock));
});

const vncPath = values.display!.map((d) => /^vnc=unix:([^,]+)/.exec(d)?.[1]).find((p) => p !== undefined);
const vncServer = createServer((sock) => {
  sock.write('RFB 003.008\n');
  sock.on('data', (b: Buffer) => (b.toString('latin1') === '!close' ? sock.destroy() : sock.write(b)));
  sock.on('error', () => sock.destroy());
  vncClients.add(sock);
  sock.on('close', () => vncClients.delete(sock));
});
if (vncPath) vncServer.listen(vncPath);

process.on('SIGTERM', () => end('stopped', 130));
consoleServer.listen(values['console-socket']!, () => {
  control.listen(values.control!, () => {
    writeFileSync(values['pid-file']!, `${process.pid}\n`);
    if (quick) {
      state = 'running';
      boot();
      end('poweroff', 0);
      return;
    }
    setTimeout(() => {
      setState('running');
      boot();
    }, bootMs);
  });
});
