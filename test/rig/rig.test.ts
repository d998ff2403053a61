/**
 * The KVM rig: commands run where a real KVM is (inside the rig on this PVM machine, directly
 * on hardware KVM), with their status, output, stdin, environment and shares carried through;
 * vmctl's VMM and QEMU both get a working /dev/kvm there, and the guest assets boot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, VMM, guest } from '../lib/vmm-process.js';
import { rigNeeded, runInKvm, spawnInKvm, type RigTimings } from './rig.js';

const inRig = rigNeeded();
const slow = { timeout: 400_000 };

function describeTimings(t: RigTimings): string {
  const f = (n?: number) => (n === undefined ? '-' : `${n.toFixed(2)}s`);
  return `rig start -> kernel /init ${f(t.wallKernelInit)}, -> /dev/kvm ${f(t.wallKvm)}, -> command start ${f(t.wallStart)}, -> command exit ${f(t.wallExit)}, -> end ${f(t.wallEnd)} (rig kernel uptime at /dev/kvm ${f(t.guestKvm)})`;
}

function guestAssets(): Record<string, string> {
  const out = execFileSync('bash', [join(ROOT, 'scripts/guest-assets.sh'), '--cached', '--quiet'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

test('a command gets a real /dev/kvm: vmm boots a test guest there; status, stdout and stderr come back', slow, async (t) => {
  const hello = guest('hello');
  const script = [
    'set -e',
    'ls -l /dev/kvm',
    `node -e "console.log('kvm-exists', require('fs').existsSync('/dev/kvm'))"`,
    `node ${VMM} run --kernel ${hello} --memory 64M`,
    'echo to-stderr >&2',
    'exit 3',
  ].join('\n');
  const r = await runInKvm(['sh', '-c', script], { timeoutMs: 300_000 });
  t.diagnostic(`${inRig ? 'rig' : 'direct'}: ${describeTimings(r.timings)}`);
  assert.equal(r.code, 3, `stdout: ${r.stdout}\nstderr: ${r.stderr}\nconsole: ${r.console}`);
  assert.match(r.stdout, /^c.* \/dev\/kvm$/m);
  assert.match(r.stdout, /kvm-exists true/);
  assert.match(r.stdout, /Hello from the vmctl test guest/);
  assert.equal(r.stderr.trim(), 'to-stderr');
  assert.equal(r.inRig, inRig);
  if (inRig) {
    // The rig's KVM is kvm_amd, not this machine's PVM.
    assert.match(r.console, /VMCTL-RIG-T kvm /);
  }
});

test('stdin, environment, working directory and a read-write share reach the command', slow, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-rig-share-'));
  try {
    writeFileSync(join(dir, 'from-host'), 'host wrote this\n');
    const scratch = `/tmp/vmctl-rig-scratch-${process.pid}`;
    const script = [
      'cat > "$SHARE/from-command"',
      'cat "$SHARE/from-host"',
      'echo "env: $GREETING"',
      'echo "cwd: $(pwd)"',
      `echo scratch > ${scratch}`, // outside the share: lands in the rig's RAM, not on the host
    ].join('\n');
    const r = await runInKvm(['sh', '-c', script], {
      timeoutMs: 300_000,
      input: 'piped in\n',
      env: { SHARE: dir, GREETING: "it's a 'quoted' $value" },
      share: [dir],
      cwd: '/usr/share',
    });
    assert.equal(r.code, 0, `stderr: ${r.stderr}\nconsole: ${r.console}`);
    assert.equal(r.stdout, "host wrote this\nenv: it's a 'quoted' $value\ncwd: /usr/share\n");
    assert.equal(readFileSync(join(dir, 'from-command'), 'utf8'), 'piped in\n');
    if (inRig) assert.equal(existsSync(scratch), false, 'a write outside the shares reached the host');
    else rmSync(scratch, { force: true });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the tty mode gives the command the console as its controlling terminal', { ...slow, skip: !inRig && 'no tty without the rig' }, async () => {
  const p = spawnInKvm(['sh', '-i'], { tty: true, timeoutMs: 300_000 });
  await p.waitFor(/# $/, 240_000);
  p.write('tty; echo "sum=$((40+2))"\n');
  await p.waitFor(/\/dev\/ttyS0\r?\n/);
  await p.waitFor(/sum=42/);
  p.write('exit 4\n');
  const r = await p.finish();
  assert.equal(r.code, 4);
});

test("Debian's cloud kernel and the guest initramfs boot to the readiness marker under QEMU on that KVM", slow, async (t) => {
  if (!inRig && !existsSync('/usr/bin/qemu-system-x86_64')) {
    // On a hardware KVM the command runs here, so QEMU must be here (the rig brings its own).
    execFileSync('bash', ['-c', 'apt-get update -qq && apt-get install -y -qq --no-install-recommends qemu-system-x86'], { stdio: 'inherit' });
  }
  const a = guestAssets();
  const qemu = [
    'qemu-system-x86_64', '-accel', 'kvm', '-M', 'microvm', '-m', '512M',
    '-kernel', a.GUEST_KERNEL, '-initrd', a.GUEST_INITRD, '-append', 'console=ttyS0 quiet',
    '-nographic', '-nodefaults', '-serial', 'stdio',
  ];
  const p = spawnInKvm(qemu, { timeoutMs: 300_000 });
  await p.waitFor(/VMCTL-GUEST-READY/, 280_000);
  const atMarker = p.elapsed();
  p.write('echo "guest says $((6*7))"\n');
  await p.waitFor(/guest says 42/);
  p.write('exit\n'); // the guest's shell ends, its init powers off, QEMU exits, the rig too
  p.end();
  const r = await p.finish();
  const start = r.timings.wallStart ?? 0;
  t.diagnostic(`${inRig ? 'rig' : 'direct'}: ${describeTimings(r.timings)}; guest marker ${atMarker.toFixed(2)}s after rig start, ${(atMarker - start).toFixed(2)}s after QEMU start`);
  assert.equal(r.code, 0, `stderr: ${r.stderr}\nconsole: ${r.console}`);
});
