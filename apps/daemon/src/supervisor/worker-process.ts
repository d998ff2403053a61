/**
 * A worker as a process: where its files live, how it is started, and how the daemon tells
 * a live worker of a domain from a stale pid file.
 *
 *   <runtime>/vms/<uuid>/control.sock   the control protocol (the worker creates it, 0600)
 *   <runtime>/vms/<uuid>/console.sock   the serial console, raw bytes
 *   <runtime>/vms/<uuid>/vnc.sock       the display over VNC (security None: only the daemon
 *                                       reaches it, 0600), when the domain has a display
 *   <runtime>/vms/<uuid>/worker.pid     written by the worker
 *   <state>/logs/<uuid>.log             the worker's stdout and stderr
 *
 * Workers are started detached, in their own session, with no pipe to the daemon: a daemon
 * restart (or crash) leaves them and their guests running, and the next daemon takes them
 * back through the files above.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { DomainDefinition, Nic } from '../schemas/domain.js';

/** How to run a worker: `execPath` then `args` then `run ...` flags. */
export interface WorkerCommand {
  execPath: string;
  args: string[];
}

export interface WorkerPaths {
  dir: string;
  control: string;
  console: string;
  vnc: string;
  pidFile: string;
  log: string;
}

/** A worker log above this size is rotated (to .log.1) when the worker starts again. */
const LOG_ROTATE_BYTES = 1024 * 1024;

export function workerPaths(runtimeDir: string, stateDir: string, uuid: string): WorkerPaths {
  const dir = join(runtimeDir, 'vms', uuid);
  return {
    dir,
    control: join(dir, 'control.sock'),
    console: join(dir, 'console.sock'),
    vnc: join(dir, 'vnc.sock'),
    pidFile: join(dir, 'worker.pid'),
    log: join(stateDir, 'logs', `${uuid}.log`),
  };
}

/**
 * The tap device a domain's NIC `index` uses: the one it names, else one the worker creates
 * for this start, named from the domain's UUID (`vm` + 10 hex digits + `n` + index: 14
 * characters, under Linux's 15).
 */
export function tapName(uuid: string, nic: Nic, index: number): string {
  if (nic.type === 'tap' && nic.ifname) return nic.ifname;
  return `vm${uuid.replace(/-/g, '').slice(0, 10)}n${index}`;
}

/**
 * Why the worker cannot run this definition as it stands, or undefined. The checks the zod
 * schemas cannot make because they are about what `vmm run` takes: it reads raw images only,
 * and its flags separate options with commas.
 */
export function unsupported(def: DomainDefinition): string | undefined {
  for (const [i, d] of def.disks.entries()) {
    if (d.format !== 'raw') return `disks[${i}] is ${d.format}; the VMM reads raw images only so far`;
    if (d.path.includes(',')) return `disks[${i}].path ${d.path} contains a comma, which the VMM's --disk flag cannot take`;
  }
  return undefined;
}

/** The `vmm run` flags for a domain's definition. */
export function workerArgs(uuid: string, def: DomainDefinition, paths: WorkerPaths): string[] {
  const disks = def.disks.flatMap((d) => ['--disk', [d.path, ...(d.readonly ? ['ro'] : []), ...(d.serial ? [`serial=${d.serial}`] : [])].join(',')]);
  const nets = def.nics.flatMap((n, i) => ['--net', [`tap=${tapName(uuid, n, i)}`, ...(n.mac ? [`mac=${n.mac}`] : [])].join(',')]);
  return [
    'run',
    '--kernel', def.boot.kernel,
    ...(def.boot.initrd ? ['--initrd', def.boot.initrd] : []),
    '--cmdline', def.boot.cmdline ?? 'console=ttyS0',
    '--memory', `${def.memory_mib}M`,
    '--cpus', String(def.vcpus),
    ...disks,
    ...nets,
    '--control', paths.control,
    '--console-socket', paths.console,
    ...(def.display ? ['--display', `vnc=unix:${paths.vnc}`] : []),
    '--pid-file', paths.pidFile,
    '--vm-id', uuid,
    ...(def.on_reboot === 'destroy' ? ['--no-reboot'] : []),
  ];
}

/** Clears what a previous worker of this domain left and makes the directories. */
export function prepareWorkerDir(paths: WorkerPaths): void {
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  for (const f of [paths.control, paths.console, paths.vnc, paths.pidFile]) rmSync(f, { force: true });
  mkdirSync(join(paths.log, '..'), { recursive: true, mode: 0o700 });
  try {
    if (statSync(paths.log).size > LOG_ROTATE_BYTES) renameSync(paths.log, `${paths.log}.1`);
  } catch {
    // no log yet
  }
}

export function removeWorkerDir(paths: WorkerPaths): void {
  rmSync(paths.dir, { recursive: true, force: true });
}

/** Starts a worker detached, its output appended to its log; the daemon does not wait for it. */
export function spawnWorker(command: WorkerCommand, args: string[], paths: WorkerPaths): { child: ChildProcess; logOffset: number } {
  const logFd = openSync(paths.log, 'a', 0o600);
  try {
    const logOffset = fstatSync(logFd).size;
    const child = spawn(command.execPath, [...command.args, ...args], {
      detached: true,
      stdio: ['ignore', logFd, logFd],
    });
    child.unref();
    return { child, logOffset };
  } finally {
    closeSync(logFd);
  }
}

export function readPid(pidFile: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile, 'utf8').trim());
    return Number.isSafeInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // a zombie is dead for our purposes
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * True when `pid` is a worker started for domain `uuid` (its command line carries
 * `--vm-id <uuid>`): a pid file can outlive its process and the pid be reused.
 */
export function isWorkerOf(pid: number, uuid: string): boolean {
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    const i = argv.indexOf('--vm-id');
    return i >= 0 && argv[i + 1] === uuid;
  } catch {
    return false;
  }
}

/**
 * Every worker process on the host, by the domain it serves (`--vm-id`): finds a worker whose
 * pid file was never written (the daemon died while it started).
 */
export function scanWorkers(): Map<string, number> {
  const found = new Map<string, number>();
  let pids: string[] = [];
  try {
    pids = readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return found;
  }
  for (const p of pids) {
    try {
      const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf('--vm-id');
      if (i >= 0 && argv[i + 1] && argv.includes('run')) found.set(argv[i + 1]!, Number(p));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return found;
}

/** The end of a worker's log (from byte `from` on, to skip earlier runs), for error messages. */
export function logTail(file: string, from = 0, bytes = 2000): string {
  if (!existsSync(file)) return '';
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const start = Math.max(from, size - bytes, 0);
    const len = Math.max(0, size - start);
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, start);
    return buf.toString('utf8').trim();
  } finally {
    closeSync(fd);
  }
}
