/**
 * A stock Debian kernel under vmm: the bzImage boot protocol, ACPI, SMP and the serial
 * console, on a real KVM (inside the KVM rig on this PVM machine). Each boot costs about a
 * minute here, so the tests are few and each checks several things.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, VMM } from '../lib/vmm-process.js';
import { rigNeeded, spawnInKvm } from '../rig/rig.js';

const slow = { timeout: 600_000 };
const MARKER = /VMCTL-GUEST-READY/;

function guestAssets(): Record<string, string> {
  const out = execFileSync('bash', [join(ROOT, 'scripts/guest-assets.sh'), '--quiet'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function bootLinux(extra: string[]) {
  const a = guestAssets();
  const cmd = ['node', VMM, 'run', '--kernel', a.GUEST_KERNEL!, '--initrd', a.GUEST_INITRD!, '--cmdline', 'console=ttyS0 quiet panic=-1', ...extra];
  return { proc: spawnInKvm(cmd, { timeoutMs: 540_000 }), release: a.GUEST_KERNEL_RELEASE! };
}

test(`Debian's cloud kernel boots under vmm through the bzImage protocol, with ACPI and 2 vCPUs, to its initramfs (${rigNeeded() ? 'in the KVM rig' : 'directly'})`, slow, async (t) => {
  const { proc } = bootLinux(['--memory', '512M', '--cpus', '2']);
  try {
    await proc.waitFor(MARKER, 480_000);
    t.diagnostic(`marker ${proc.elapsed().toFixed(1)} s after the rig started`);
    await proc.waitFor(/guest# /, 120_000);
  } finally {
    proc.kill('SIGKILL');
    // finish() also clears the run's timers, which would otherwise keep this process alive
    await proc.finish().catch(() => {});
  }
});
