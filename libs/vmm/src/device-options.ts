/**
 * The device flags of `vmm run`: `--disk path[,ro][,serial=ID]`,
 * `--net tap=NAME[,mac=52:54:00:12:34:56]` and `--display vnc=LISTEN[,password-file=FILE]`. Pure parsing: what the flags mean, checked,
 * with errors that say which part is wrong.
 */
import { VmmError } from './errors.js';
import { parseMac as parseMacAddress } from './devices/virtio/net/mac.js';

export interface DiskOption {
  path: string;
  readOnly: boolean;
  /** the virtio-blk serial (GET_ID), at most 20 bytes of printable ASCII */
  serial?: string;
}

export interface NetOption {
  tap: string;
  /** six bytes */
  mac?: Uint8Array;
}

/** Where a VNC server listens: a TCP address or a Unix socket path. */
export type VncListenOption = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export interface DisplayOption {
  vnc: VncListenOption;
  /** VNC Authentication with the password in this file (its first line) */
  passwordFile?: string;
}

function bad(flag: string, text: string, why: string): never {
  throw new VmmError('INVALID_CONFIG', `${flag} ${JSON.stringify(text)}: ${why}`);
}

/** Splits `a,b=c` into a first positional part and key=value pairs (bare keys map to ''). */
function split(text: string): { first: string; pairs: [string, string][] } {
  const [first = '', ...rest] = text.split(',');
  return {
    first,
    pairs: rest.map((p) => {
      const eq = p.indexOf('=');
      return eq < 0 ? [p, ''] : [p.slice(0, eq), p.slice(eq + 1)];
    }),
  };
}

export function parseDiskOption(text: string): DiskOption {
  const { first, pairs } = split(text);
  if (!first) bad('--disk', text, 'a path comes first');
  const disk: DiskOption = { path: first, readOnly: false };
  for (const [k, v] of pairs) {
    if (k === 'ro' && v === '') disk.readOnly = true;
    else if (k === 'serial') {
      if (!/^[\x20-\x7e]{1,20}$/.test(v)) bad('--disk', text, 'serial is 1 to 20 printable ASCII characters');
      disk.serial = v;
    } else bad('--disk', text, `unknown option ${JSON.stringify(k)} (ro, serial=ID)`);
  }
  return disk;
}

export function parseNetOption(text: string): NetOption {
  const { first, pairs } = split(text);
  const all: [string, string][] = [];
  if (first.includes('=')) all.push([first.slice(0, first.indexOf('=')), first.slice(first.indexOf('=') + 1)]);
  else if (first) bad('--net', text, 'expected tap=NAME');
  all.push(...pairs);
  let tap: string | undefined;
  let mac: Uint8Array | undefined;
  for (const [k, v] of all) {
    if (k === 'tap') {
      // Linux interface names: at most 15 bytes, no '/', no whitespace
      if (!/^[A-Za-z0-9_.:-]{1,15}$/.test(v)) bad('--net', text, 'tap is an interface name of 1 to 15 characters');
      tap = v;
    } else if (k === 'mac') {
      try {
        mac = parseMacAddress(v);
      } catch {
        bad('--net', text, 'mac is six hex bytes like 52:54:00:12:34:56, not multicast');
      }
    } else bad('--net', text, `unknown option ${JSON.stringify(k)} (tap=NAME, mac=..)`);
  }
  if (!tap) bad('--net', text, 'tap=NAME is required');
  return { tap, ...(mac ? { mac } : {}) };
}

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;

/**
 * `vnc=HOST:PORT`, `vnc=[IPv6]:PORT`, `vnc=:PORT` or `vnc=PORT` (loopback), `vnc=unix:PATH`;
 * then `,password-file=FILE` for VNC Authentication. A TCP port beyond loopback must have a
 * password: the screen and keyboard of a guest are not for anyone on the network.
 */
export function parseDisplayOption(text: string): DisplayOption {
  const { first, pairs } = split(text);
  if (!first.startsWith('vnc=')) bad('--display', text, 'expected vnc=HOST:PORT or vnc=unix:PATH');
  const where = first.slice(4);
  let vnc: VncListenOption;
  if (where.startsWith('unix:')) {
    const path = where.slice(5);
    if (!path || path.includes('\0')) bad('--display', text, 'unix: needs a socket path');
    vnc = { kind: 'unix', path };
  } else {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]*)):(\d{1,5})$/.exec(where) ?? /^()()(\d{1,5})$/.exec(where);
    if (m === null) bad('--display', text, 'the address is HOST:PORT, [IPv6]:PORT, :PORT or unix:PATH');
    const host = m[1] || m[2] || '127.0.0.1';
    const port = Number(m[3]);
    if (port > 65535) bad('--display', text, 'the port is 0 to 65535');
    if (!/^[A-Za-z0-9.:-]+$/.test(host)) bad('--display', text, `${JSON.stringify(host)} is not a host name or address`);
    vnc = { kind: 'tcp', host, port };
  }
  let passwordFile: string | undefined;
  for (const [k, v] of pairs) {
    if (k === 'password-file' && v) passwordFile = v;
    else bad('--display', text, `unknown option ${JSON.stringify(k)} (password-file=FILE)`);
  }
  if (vnc.kind === 'tcp' && !LOOPBACK.test(vnc.host) && passwordFile === undefined) {
    bad('--display', text, 'a VNC port beyond loopback needs password-file=FILE');
  }
  return { vnc, ...(passwordFile ? { passwordFile } : {}) };
}
