/**
 * The default Linux guest driven through vmctld and vmctl, on a real KVM (the KVM rig on
 * this PVM machine): create on the embedded default guest, start, a command on the serial
 * console, detach, and a graceful shutdown through the ACPI power button. One rig boot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../lib/vmm-process.js';
import { rigNeeded, spawnInKvm } from '../rig/rig.js';

const where = rigNeeded() ? 'in the KVM rig' : 'directly';

function logFiles(dir: string): string[] {
  try {
    return readdirSync(dir).map((f) => join(dir, f));
  } catch {
    return [];
  }
}

function tail(file: string, bytes = 4000): string {
  try {
    return readFileSync(file, 'latin1').slice(-bytes);
  } catch (err) {
    return `(${(err as NodeJS.ErrnoException).code})`;
  }
}

test(`vmctl creates, starts, talks to and shuts down the default Linux guest through vmctld (${where})`, { timeout: 600_000 }, async (t) => {
  // the daemon's state in a host directory the rig shares, so its logs outlive a failed run
  const state = mkdtempSync(join(tmpdir(), 'vmctl-daemon-linux-'));
  const proc = spawnInKvm(['bash', join(ROOT, 'scripts/demo-session.sh'), 'linux', '--vcpus', '2', '--memory', '384'], {
    timeoutMs: 540_000,
    share: [state],
    env: { VMCTL_DEMO_DIR: join(state, 'demo') },
  });
  let passed = false;
  try {
    await proc.waitFor(/vmctl-demo: linux is running/, 240_000);
    t.diagnostic(`running ${proc.elapsed().toFixed(1)} s after the rig started`);
    await proc.waitFor(/guest# /, 300_000);
    t.diagnostic(`prompt ${proc.elapsed().toFixed(1)} s after the rig started`);
    proc.write('echo "@@$((20+22)) $(grep -c ^processor /proc/cpuinfo) $(hostname)"\n');
    const m = await proc.waitFor(/@@42 (\d+) (\S+)\r?\n/, 120_000);
    assert.equal(m[1], '2', '--vcpus 2 reached the guest');
    assert.equal(m[2], 'vmctl-guest');
    proc.write('\x1d'); // Ctrl-] detaches; the guest keeps running
    assert.equal((await proc.waitFor(/vmctl-demo: console closed \((\d+)\)/, 60_000))[1], '0');

    const sd = await proc.waitFor(/vmctl-demo: shutdown (\d+) in (\d+) ms/, 240_000);
    assert.equal(sd[1], '0', 'vmctl shutdown --wait succeeded');
    t.diagnostic(`graceful shutdown took ${sd[2]} ms`);
    assert.match(proc.stdout, /vmctl-demo: defined linux on the default guest: 2 vCPUs, 384 MiB, \S*vmlinuz/);
    assert.equal((await proc.waitFor(/vmctl-demo: state (\S+)/, 60_000))[1], 'shutoff');
    const events = (await proc.waitFor(/vmctl-demo: events ([^\n]*)\n/, 60_000))[1]!;
    t.diagnostic(`events: ${events}`);
    assert.match(events, /domain-created\S* .*state-changed:running/);
    // the guest powered itself off (power button → acpid → init → ACPI S5), not forced after the timeout
    // (reason `shutdown`: the guest went off by itself; `shutdown-timeout` had it been forced)
    assert.match(events, /state-changed:stopping:shutdown state-changed:shutoff:shutdown( |$)/);
    const r = await proc.finish(60_000);
    assert.equal(r.code, 0);
    passed = true;
  } finally {
    proc.kill('SIGKILL');
    await proc.finish().catch(() => {});
    if (!passed) {
      // what the daemon and the worker said, for the failure's report
      for (const f of [join(state, 'demo/vmctld.log'), ...logFiles(join(state, 'demo/state/logs'))]) {
        t.diagnostic(`${f}:\n${tail(f)}`);
      }
    }
    rmSync(state, { recursive: true, force: true });
  }
});
