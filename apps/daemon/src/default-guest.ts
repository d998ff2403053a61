/**
 * The host's default guest: vmctl's Linux kernel and initramfs (built by
 * scripts/guest-assets.sh), which a definition without `boot` runs. Looked up at each create,
 * so assets built after the daemon started are found.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import type { DomainDefinition } from './schemas/domain.js';

export const DEFAULT_GUEST_DIR = '/var/cache/vmctl/assets/guest';
/** The serial console, quiet boot, and a panic reboots (the domain's on_reboot decides) */
export const DEFAULT_GUEST_CMDLINE = 'console=ttyS0 quiet panic=-1';

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** The boot of the default guest in `dir`, or null when it is not (completely) there. */
export function defaultGuestBoot(dir: string): DomainDefinition['boot'] | null {
  const kernel = join(dir, 'vmlinuz');
  const initrd = join(dir, 'initramfs.cpio');
  return isFile(kernel) && isFile(initrd) ? { kernel, initrd, cmdline: DEFAULT_GUEST_CMDLINE } : null;
}
