/**
 * The host side of a domain's NICs. The worker opens (and, when missing, creates) each tap
 * before it opens its control socket; once that socket is there, the daemon brings up the
 * taps it named itself and adds a `bridge` NIC's tap to its bridge, with iproute2.
 */
import { execFile } from 'node:child_process';
import type { DomainDefinition } from '../schemas/domain.js';
import { tapName } from './worker-process.js';

/** The `ip` commands that wire a domain's taps, in order. Pure, for tests. */
export function tapLinkCommands(uuid: string, def: Pick<DomainDefinition, 'nics'>): string[][] {
  return def.nics.flatMap((n, i) => {
    const tap = tapName(uuid, n, i);
    if (n.type === 'bridge') return [['link', 'set', 'dev', tap, 'master', n.bridge, 'up']];
    if (!n.ifname) return [['link', 'set', 'dev', tap, 'up']];
    return []; // a tap the user named is the user's to configure
  });
}

/** Runs the commands; rejects with iproute2's message on the first that fails. */
export async function linkTaps(uuid: string, def: Pick<DomainDefinition, 'nics'>, ip = 'ip'): Promise<void> {
  for (const args of tapLinkCommands(uuid, def)) {
    await new Promise<void>((resolve, reject) => {
      execFile(ip, args, { timeout: 5000 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`ip ${args.join(' ')}: ${stderr.trim() || err.message}`));
        else resolve();
      });
    });
  }
}
