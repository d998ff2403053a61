/**
 * The device flags of `vmm run`: `--disk path[,ro][,serial=ID]` and
 * `--net tap=NAME[,mac=52:54:00:12:34:56]`. Pure parsing: what the flags mean, checked,
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
