#!/usr/bin/env node
/**
 * vmctld: opens the store, takes back running workers, and serves the API on a Unix socket
 * (and, with --listen and --token-file, on TCP with a bearer token).
 *
 * Exit status: 0 after SIGTERM/SIGINT (workers and their guests keep running); 1 when it
 * cannot start (bad flags, store, socket in use).
 */
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { LogController, type FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { createDaemon } from './daemon.js';
import { createLogger, type LevelName } from './log.js';

const USAGE = `usage: vmctld [options]

  --state-dir DIR      definitions, events, worker logs (default /var/lib/vmctl)
  --runtime-dir DIR    sockets and pid files (default /run/vmctl)
  --socket PATH        the API's Unix socket (default <runtime-dir>/vmctld.sock), mode 0660
  --socket-group NAME  group owning the socket (name or gid), so its members may use the API
  --listen HOST:PORT   also serve on TCP; needs --token-file
  --token-file FILE    the bearer token TCP clients must send (one line, at least 32 characters)
  --allow-path DIR     host paths (kernels, disks) must lie under DIR; repeatable (default: anywhere)
  --vmm PATH           the worker command (default: the vmm of @vmctl/vmm, libs/vmm)
  --kvm-device PATH    checked before each start (default /dev/kvm; "none" skips the check)
  --default-guest-dir DIR
                       the default guest (vmlinuz, initramfs.cpio) that definitions without
                       "boot" run (default /var/cache/vmctl/assets/guest; "none": no default)
  --no-autostart       do not start autostart domains
  --log-level LEVEL    trace, debug, info, warn, error (default info)
`;

function fail(msg: string): never {
  process.stderr.write(`vmctld: ${msg}\n`);
  process.exit(1);
}

function parse() {
  try {
    const { values } = parseArgs({
      options: {
        'state-dir': { type: 'string', default: '/var/lib/vmctl' },
        'runtime-dir': { type: 'string', default: '/run/vmctl' },
        socket: { type: 'string' },
        'socket-group': { type: 'string' },
        listen: { type: 'string' },
        'token-file': { type: 'string' },
        'allow-path': { type: 'string', multiple: true, default: [] },
        vmm: { type: 'string' },
        'kvm-device': { type: 'string', default: '/dev/kvm' },
        'no-autostart': { type: 'boolean', default: false },
        'default-guest-dir': { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
      allowPositionals: false,
    });
    return values;
  } catch (err) {
    fail(`${(err as Error).message}\n${USAGE}`);
  }
}

function groupId(group: string): number {
  if (/^\d+$/.test(group)) return Number(group);
  const line = readFileSync('/etc/group', 'utf8')
    .split('\n')
    .find((l) => l.split(':')[0] === group);
  if (!line) fail(`--socket-group: no group ${JSON.stringify(group)}`);
  return Number(line.split(':')[2]);
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    fail(`--token-file: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (token.length < 32 || /\s/.test(token)) fail(`--token-file: the token in ${file} must be one word of at least 32 characters`);
  if ((statSync(file).mode & 0o077) !== 0) process.stderr.write(`vmctld: warning: ${file} is readable by group or others\n`);
  return token;
}

function parseListen(spec: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:]+)\]|([^:]+)):(\d{1,5})$/.exec(spec);
  if (!m || Number(m[3]) > 65535) fail(`--listen: expected HOST:PORT, got ${JSON.stringify(spec)}`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** Refuses to start over a live daemon; removes a stale socket. */
async function claimSocket(path: string): Promise<void> {
  if (!existsSync(path)) return;
  const live = await new Promise<boolean>((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
  if (live) fail(`another vmctld is listening on ${path}`);
  rmSync(path, { force: true });
}

async function main(): Promise<void> {
  const v = parse();
  if (v.help) {
    process.stdout.write(USAGE);
    return;
  }
  const level = v['log-level'] as LevelName;
  if (!['trace', 'debug', 'info', 'warn', 'error'].includes(level)) fail(`--log-level: unknown level ${JSON.stringify(level)}`);
  if (v.listen && !v['token-file']) fail('--listen needs --token-file: TCP is served only with a bearer token');
  const tcp = v.listen ? parseListen(v.listen) : undefined;
  const token = v['token-file'] ? readToken(v['token-file']) : undefined;
  const gid = v['socket-group'] ? groupId(v['socket-group']) : undefined;
  const runtimeDir = v['runtime-dir']!;
  const socketPath = v.socket ?? join(runtimeDir, 'vmctld.sock');
  const log = createLogger(level, { name: 'vmctld' });

  mkdirSync(runtimeDir, { recursive: true, mode: 0o755 });
  mkdirSync(dirname(socketPath), { recursive: true, mode: 0o755 });
  await claimSocket(socketPath);

  let daemon;
  try {
    daemon = createDaemon({
      stateDir: v['state-dir']!,
      runtimeDir,
      log,
      ...(v.vmm ? { vmm: v.vmm } : {}),
      kvmDevice: v['kvm-device'] === 'none' ? null : v['kvm-device']!,
      allowPaths: v['allow-path']!,
      ...(v['default-guest-dir'] ? { defaultGuestDir: v['default-guest-dir'] === 'none' ? null : v['default-guest-dir'] } : {}),
    });
  } catch (err) {
    fail((err as Error).message);
  }
  await daemon.supervisor.recover();

  const servers: FastifyInstance[] = [];
  // requests are not logged one by one: errors are, by the app's error handler
  const serverOptions = { loggerInstance: log, logController: new LogController({ disableRequestLogging: true }), forceCloseConnections: true };
  const unix = await buildApp(daemon.appOptions(), serverOptions);
  await unix.listen({ path: socketPath });
  chmodSync(socketPath, 0o660);
  if (gid !== undefined) chownSync(socketPath, -1, gid);
  servers.push(unix);
  log.info({ socket: socketPath }, 'listening');
  if (tcp) {
    const app = await buildApp(daemon.appOptions(token), serverOptions);
    await app.listen({ host: tcp.host, port: tcp.port });
    servers.push(app);
    log.info({ address: `${tcp.host}:${tcp.port}` }, 'listening on TCP (bearer token required)');
  }

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping; workers keep running');
    // a client that holds a connection open must not keep the daemon from stopping
    await Promise.race([Promise.allSettled(servers.map((s) => s.close())), new Promise((r) => setTimeout(r, 3000).unref())]);
    daemon.close();
    rmSync(socketPath, { force: true });
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  if (!v['no-autostart']) void daemon.supervisor.autostart();
}

main().catch((err) => fail((err as Error).stack ?? String(err)));
