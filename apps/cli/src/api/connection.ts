/**
 * Where the daemon is and how to prove who we are. In order: `--url` (or VMCTL_URL) for the
 * daemon's TCP listener, with a bearer token from `--token`, `--token-file`, VMCTL_TOKEN or
 * VMCTL_TOKEN_FILE; else `--socket` (or VMCTL_SOCKET); else the daemon's default Unix socket,
 * /run/vmctl/vmctld.sock (vmctld's `--runtime-dir` default plus `vmctld.sock`).
 */
import { readFileSync } from 'node:fs';
import { UsageError } from '../errors.js';

export const DEFAULT_SOCKET = '/run/vmctl/vmctld.sock';

export type Connection =
  | { kind: 'unix'; socket: string }
  | { kind: 'tcp'; url: URL; token?: string };

export interface ConnectionOptions {
  socket?: string;
  url?: string;
  token?: string;
  tokenFile?: string;
}

function readToken(file: string): string {
  let token: string;
  try {
    token = readFileSync(file, 'utf8').trim();
  } catch (err) {
    throw new UsageError(`cannot read the token file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!token) throw new UsageError(`the token file ${file} is empty`);
  return token;
}

export function resolveConnection(opts: ConnectionOptions, env: NodeJS.ProcessEnv = process.env): Connection {
  const urlText = opts.url ?? env.VMCTL_URL;
  if (opts.url && opts.socket) throw new UsageError('--url and --socket exclude each other');
  if (urlText && !opts.socket) {
    let url: URL;
    try {
      url = new URL(urlText);
    } catch {
      throw new UsageError(`--url: ${JSON.stringify(urlText)} is not a URL (expected http://HOST:PORT)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--url: ${urlText} is not http:// or https://`);
    const tokenFile = opts.tokenFile ?? (opts.token === undefined ? env.VMCTL_TOKEN_FILE : undefined);
    const token = opts.token ?? (tokenFile ? readToken(tokenFile) : env.VMCTL_TOKEN);
    return { kind: 'tcp', url, ...(token ? { token } : {}) };
  }
  return { kind: 'unix', socket: opts.socket ?? env.VMCTL_SOCKET ?? DEFAULT_SOCKET };
}

/** For messages: where we tried to go. */
export function describeConnection(c: Connection): string {
  return c.kind === 'unix' ? c.socket : c.url.origin;
}
