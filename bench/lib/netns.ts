/**
 * The network namespace the net bench runs in: created by the bench, holding one persistent
 * tap (both VMMs attach to it in turn) with the host's address, and deleted at the end — also
 * when the bench fails or is interrupted. Nothing outside it is touched.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

function ip(args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

export class BenchNetns {
  readonly name: string;
  readonly tap: string;
  readonly hostIp: string;
  readonly tapMac: string;
  #alive = true;
  readonly #onExit = () => this.delete();

  /**
   * `ip netns add NAME`, lo up, a persistent tap `TAP` (mode tap) with `hostIp`/24, up, and a
   * permanent neighbour entry for the guest (so the host never asks it by ARP mid-run).
   */
  constructor(opts: { name: string; tap: string; hostIp: string; guestIp: string; guestMac: string }) {
    this.name = opts.name;
    this.tap = opts.tap;
    this.hostIp = opts.hostIp;
    ip(['netns', 'add', this.name]);
    process.on('exit', this.#onExit);
    try {
      this.ip('link', 'set', 'lo', 'up');
      this.ip('tuntap', 'add', 'dev', this.tap, 'mode', 'tap');
      this.ip('addr', 'add', `${opts.hostIp}/24`, 'dev', this.tap);
      this.ip('link', 'set', 'dev', this.tap, 'up');
      this.ip('neigh', 'replace', opts.guestIp, 'lladdr', opts.guestMac, 'dev', this.tap, 'nud', 'permanent');
      const m = /link\/ether ([0-9a-f:]{17})/.exec(this.ip('link', 'show', 'dev', this.tap));
      if (!m) throw new Error(`no MAC address on ${this.tap}`);
      this.tapMac = m[1]!;
    } catch (err) {
      this.delete();
      throw err;
    }
  }

  ip(...args: string[]): string {
    return ip(['-n', this.name, ...args]);
  }

  /** Deletes the tap and the namespace (idempotent). */
  delete(): void {
    if (!this.#alive) return;
    this.#alive = false;
    process.off('exit', this.#onExit);
    try {
      this.ip('link', 'del', 'dev', this.tap);
    } catch {
      // not created, or already gone with its namespace
    }
    try {
      ip(['netns', 'del', this.name]);
    } catch {
      // already gone
    }
  }
}

/** What is missing here for the net bench ('' if nothing). */
export function netnsMissing(): string {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  if (!existsSync('/dev/net/tun')) missing.push('/dev/net/tun');
  try {
    ip(['-V']);
  } catch {
    missing.push('ip(8)');
  }
  return missing.join(', ');
}
