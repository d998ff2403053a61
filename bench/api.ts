/**
 * API: vmctld (apps/daemon/dist/server.js) on temporary directories, driven over its Unix
 * socket, with real `vmm` workers running echo.elf (it stays up until told otherwise).
 *
 *   - create+start: POST /v1/domains, then POST …/actions/start, which answers once the
 *     worker reports the guest running; timed from before the POST to that answer (the
 *     domain is stopped and deleted after each run, outside the timing);
 *   - list: GET /v1/domains with 1,000 domains defined, one request at a time on a kept-alive
 *     connection, and the `vmctl list -o json` command as a user runs it;
 *   - sustained GETs: autocannon, 50 connections, on GET /v1/domains/{name} and on the list.
 *
 * The daemon, the workers and autocannon share this machine's CPUs; the report says so.
 * Targets (DESIGN.md §4): p50 create+start < 100 ms; list of 1,000 < 20 ms.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import autocannon from 'autocannon';
import { DaemonProcess } from '../test/lib/daemon-process.js';
import { ROOT } from './lib/machines.js';
import { round } from './lib/stats.js';

const SERVER = resolve(ROOT, 'apps/daemon/dist/server.js');
const CLI = resolve(ROOT, 'apps/cli/dist/main.js');
const ECHO = resolve(ROOT, 'test/guests/out/echo.elf');

export interface Percentiles {
  p50: number;
  p99: number;
  min: number;
  max: number;
  n: number;
}

export interface CannonResult {
  path: string;
  connections: number;
  durationS: number;
  requestsPerS: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  bytesPerResponse: number;
}

export interface ApiResults {
  createStartMs: Percentiles;
  createMs: Percentiles;
  startMs: Percentiles;
  domains: number;
  listMs: Percentiles;
  listBytes: number;
  cliListMs: Percentiles;
  cannon: CannonResult[];
  targets: { createStartP50Ms: number; list1000Ms: number };
}

/** Nearest-rank percentiles. */
export function percentiles(xs: readonly number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b);
  const at = (p: number) => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: round(at(50), 2), p99: round(at(99), 2), min: round(s[0]!, 2), max: round(s.at(-1)!, 2), n: s.length };
}

interface Reply {
  status: number;
  body: string;
}

/**
 * The built vmctld on temporary directories; ends its workers and itself by pid. Requests go
 * one at a time on a kept-alive connection, and their bodies stay text (parsing is not timed).
 */
class Daemon extends DaemonProcess {
  readonly agent = new Agent({ keepAlive: true, maxSockets: 1 });

  constructor() {
    super({ dir: mkdtempSync(join(tmpdir(), 'vmctl-bench-api-')), command: [process.execPath, SERVER] });
  }

  override start(): Promise<void> {
    return super.start(['--log-level', 'warn']);
  }

  text(method: string, path: string, body?: unknown): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const r = request(
        { socketPath: this.socket, agent: this.agent, method, path, headers: data ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } : {} },
        (res) => {
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (c) => (text += c));
          res.on('end', () => resolve({ status: res.statusCode!, body: text }));
        },
      );
      r.on('error', reject);
      r.end(data);
    });
  }

  async ok(method: string, path: string, body?: unknown): Promise<Reply> {
    const r = await this.text(method, path, body);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.body}`);
    return r;
  }

  /** SIGKILLs the workers left under the runtime dir and the daemon; removes the directories. */
  close(): void {
    this.agent.destroy();
    this.cleanupSync();
  }
}

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;

async function createStart(d: Daemon, runs: number, log: (s: string) => void) {
  const total: number[] = [];
  const create: number[] = [];
  const start: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `cs-${i}`;
    const t0 = process.hrtime.bigint();
    await d.ok('POST', '/v1/domains', { name, memory_mib: 64, boot: { kernel: ECHO } });
    const t1 = process.hrtime.bigint();
    const s = await d.ok('POST', `/v1/domains/${name}/actions/start`);
    const t2 = process.hrtime.bigint();
    if (JSON.parse(s.body).state !== 'running') throw new Error(`${name} did not run: ${s.body}`);
    total.push(Number(t2 - t0) / 1e6);
    create.push(Number(t1 - t0) / 1e6);
    start.push(Number(t2 - t1) / 1e6);
    await d.ok('DELETE', `/v1/domains/${name}?force=true`);
  }
  log(`  create+start: ${runs} runs, p50 ${percentiles(total).p50} ms, p99 ${percentiles(total).p99} ms`);
  return { createStartMs: percentiles(total), createMs: percentiles(create), startMs: percentiles(start) };
}

async function cannon(d: Daemon, path: string, connections: number, durationS: number): Promise<CannonResult> {
  const r = await autocannon({ url: `http://localhost${path}`, socketPath: d.socket, connections, duration: durationS });
  return {
    path,
    connections,
    durationS,
    requestsPerS: round(r.requests.average, 1),
    latencyP50Ms: r.latency.p50,
    latencyP99Ms: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors,
    bytesPerResponse: r.requests.total ? Math.round(r.throughput.total / r.requests.total) : 0,
  };
}

export async function benchApi(opts: { runs: number; domains: number; listRuns: number; cannonSeconds: number; log: (s: string) => void }): Promise<ApiResults> {
  for (const f of [SERVER, CLI, ECHO]) if (!existsSync(f)) throw new Error(`${f} is missing: run npm run build`);
  const d = new Daemon();
  const cleanup = () => d.close();
  process.once('exit', cleanup);
  try {
    await d.start();
    // one start first: the page cache and the vmm bundle warm, as on any used host
    await d.ok('POST', '/v1/domains', { name: 'warm', memory_mib: 64, boot: { kernel: ECHO } });
    await d.ok('POST', '/v1/domains/warm/actions/start');
    await d.ok('DELETE', '/v1/domains/warm?force=true');
    const cs = await createStart(d, opts.runs, opts.log);

    for (let i = 0; i < opts.domains; i++) await d.ok('POST', '/v1/domains', { name: `d-${String(i).padStart(4, '0')}`, memory_mib: 64, boot: { kernel: ECHO } });
    const list: number[] = [];
    let listBytes = 0;
    for (let i = 0; i < opts.listRuns + 5; i++) {
      const t0 = process.hrtime.bigint();
      const r = await d.ok('GET', '/v1/domains');
      const t = ms(t0);
      listBytes = Buffer.byteLength(r.body);
      if (i >= 5) list.push(t); // the first few warm the JIT
    }
    opts.log(`  GET /v1/domains with ${opts.domains} domains (${listBytes} bytes): p50 ${percentiles(list).p50} ms, p99 ${percentiles(list).p99} ms`);

    const cli: number[] = [];
    for (let i = 0; i < 10; i++) {
      const t0 = process.hrtime.bigint();
      const r = spawnSync(process.execPath, [CLI, '--socket', d.socket, 'list', '-o', 'json'], { maxBuffer: 64 * 1024 * 1024 });
      if (r.status !== 0) throw new Error(`vmctl list failed: ${r.stderr}`);
      cli.push(ms(t0));
    }
    opts.log(`  vmctl list -o json with ${opts.domains} domains: p50 ${percentiles(cli).p50} ms`);

    const results: CannonResult[] = [];
    for (const path of ['/v1/domains/d-0000', '/v1/domains']) {
      const c = await cannon(d, path, 50, opts.cannonSeconds);
      results.push(c);
      opts.log(`  autocannon GET ${path}, 50 connections, ${opts.cannonSeconds} s: ${c.requestsPerS} req/s, p50 ${c.latencyP50Ms} ms, p99 ${c.latencyP99Ms} ms, non-2xx ${c.non2xx}, errors ${c.errors}`);
    }
    return { ...cs, domains: opts.domains, listMs: percentiles(list), listBytes, cliListMs: percentiles(cli), cannon: results, targets: { createStartP50Ms: 100, list1000Ms: 20 } };
  } finally {
    process.off('exit', cleanup);
    cleanup();
  }
}

export function apiTable(r: ApiResults): string {
  const row = (what: string, p: Percentiles, target = '') => `  ${what.padEnd(44)} ${String(p.p50).padStart(8)} ${String(p.p99).padStart(8)}   ${target}`;
  const mark = (v: number, t: number) => `target < ${t} ms: ${v < t ? 'met' : 'missed'}`;
  return [
    `API — vmctld on its Unix socket, echo.elf workers; ms (p50, p99); daemon, workers and load generator share the host`,
    `  ${''.padEnd(44)} ${'p50'.padStart(8)} ${'p99'.padStart(8)}`,
    row(`create + start → running (${r.createStartMs.n} runs)`, r.createStartMs, mark(r.createStartMs.p50, r.targets.createStartP50Ms)),
    row('  of which POST /v1/domains', r.createMs),
    row('  of which POST …/actions/start', r.startMs),
    row(`GET /v1/domains, ${r.domains} domains (${Math.round(r.listBytes / 1024)} KiB)`, r.listMs, mark(r.listMs.p50, r.targets.list1000Ms)),
    row(`vmctl list -o json, ${r.domains} domains (process)`, r.cliListMs),
    ...r.cannon.map((c) => `  autocannon GET ${c.path}: ${c.requestsPerS} req/s with ${c.connections} connections (latency p50 ${c.latencyP50Ms} ms, p99 ${c.latencyP99Ms} ms; non-2xx ${c.non2xx}, errors ${c.errors})`),
  ].join('\n');
}
