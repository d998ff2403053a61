/**
 * Boots every test guest under `vmm run` on this machine's /dev/kvm and checks what it
 * printed and how the VMM exited.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { haveKvm } from '../lib/kvm.js';
import { guest, runVmm, VmmProcess } from '../lib/vmm-process.js';

const kvm = haveKvm();
const opts = { skip: !kvm, timeout: 60000 };

test('vmm run boots the hello guest, which prints its greeting and powers off (exit 0)', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('hello'), '--memory', '64M']);
  assert.match(r.stdout, /Hello from the vmctl test guest/);
  assert.equal(r.code, 0, r.stderr);
});

test('vmm run --debug-exit ends with the code the guest wrote', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('hello'), '--memory', '64M', '--debug-exit']);
  assert.match(r.stdout, /Hello from the vmctl test guest/);
  assert.equal(r.code, 0, r.stderr);
  const bad = await runVmm(['run', '--kernel', guest('reset'), '--memory', '64M', '--debug-exit', '--no-reboot']);
  assert.equal(bad.code, 124, 'a reset before any debug exit still reports the reset');
});

test('the echo guest echoes what is typed on the serial console, through rx interrupts', opts, async () => {
  const p = new VmmProcess(['run', '--kernel', guest('echo'), '--memory', '64M']);
  try {
    await p.waitFor(/echo: ready/);
    p.write('hello vmctl\n');
    await p.waitFor(/hello vmctl/);
    p.write('q');
    await p.waitFor(/echo: bye/);
    const irqs = Number((await p.waitFor(/echo: irqs=(\d+)/))[1]);
    assert.ok(irqs >= 1, `the guest took ${irqs} serial interrupts`);
    const { code } = await p.finish();
    assert.equal(code, 0, p.stderr);
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('SIGUSR1 makes vmm print every vCPU\'s registers, and the guest runs on', opts, async () => {
  const p = new VmmProcess(['run', '--kernel', guest('echo'), '--memory', '64M', '--cpus', '2']);
  try {
    await p.waitFor(/echo: ready/);
    p.child.kill('SIGUSR1');
    const deadline = Date.now() + 10_000;
    while (!/vmm: vcpu1 /.test(p.stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const line = (id: number): string => p.stderr.split('\n').find((l) => l.startsWith(`vmm: vcpu${id} `)) ?? '';
    // The BSP runs the guest in 64-bit mode with paging; the AP was never started by this guest.
    assert.match(line(0), /^vmm: vcpu0 (runnable|halted) long cpl[03] rip=0x[0-9a-f]+ .*cr0=0x8[0-9a-f]{7} .*efer=0x[0-9a-f]*5[0-9a-f]{2} exits=\d+$/, p.stderr);
    assert.match(line(1), /^vmm: vcpu1 uninitialized real cpl0 /, p.stderr);
    p.write('still here\n');
    await p.waitFor(/still here/);
    p.write('q');
    await p.waitFor(/echo: bye/);
    assert.equal((await p.finish()).code, 0, p.stderr);
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('the rtc guest reads the host time within 2 s and sees its alarm fire', opts, async () => {
  const before = Date.now();
  const r = await runVmm(['run', '--kernel', guest('rtc'), '--memory', '64M']);
  const after = Date.now();
  const m = r.stdout.match(/rtc: (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)/);
  assert.ok(m, `no rtc line in ${JSON.stringify(r.stdout)}`);
  const t = Date.parse(m[1]!);
  assert.ok(t >= before - 2000 && t <= after + 2000, `guest time ${m[1]} is not within 2 s of the host's`);
  assert.match(r.stdout, /rtc: alarm/);
  assert.equal(r.code, 0, r.stderr);
});

for (const [mem, bytes] of [['64M', 64 * 2 ** 20], ['300M', 300 * 2 ** 20]] as const) {
  test(`the memsize guest sees ${mem} of RAM in its boot memory map`, opts, async () => {
    const r = await runVmm(['run', '--kernel', guest('memsize'), '--memory', mem]);
    const m = r.stdout.match(/mem: ram_total=(\d+) ram_top=(\d+)/);
    assert.ok(m, r.stdout);
    assert.equal(Number(m[2]), bytes);
    assert.ok(Number(m[1]) > bytes - 2 * 2 ** 20 && Number(m[1]) <= bytes);
    assert.equal(r.code, 0, r.stderr);
  });
}

test('an i8042 reset makes vmm report the reset (--no-reboot: exit 124)', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('reset'), '--memory', '64M', '--no-reboot']);
  assert.match(r.stdout, /reset: pulsing/);
  assert.doesNotMatch(r.stdout, /still here/);
  assert.match(r.stderr, /reset/);
  assert.equal(r.code, 124);
});

test('without --no-reboot an i8042 reset reboots the guest in place', opts, async () => {
  const p = new VmmProcess(['run', '--kernel', guest('reset'), '--memory', '64M']);
  try {
    await p.waitFor(/reset: pulsing[\s\S]*reset: pulsing/);
    p.child.kill('SIGTERM');
    const { code } = await p.finish();
    assert.equal(code, 130);
    assert.match(p.stderr, /rebooting/);
  } finally {
    p.child.kill('SIGKILL');
  }
});

test('the exit-storm guest completes its PIO and MMIO exits', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('exitstorm'), '--memory', '64M', '--cmdline', 'n=2000']);
  assert.match(r.stdout, /storm: pio n=2000 tsc=\d+/);
  assert.match(r.stdout, /storm: mmio n=2000 tsc=\d+/);
  assert.equal(r.code, 0, r.stderr);
});

test('hostile port and MMIO accesses do not crash the VMM', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('hostile'), '--memory', '64M']);
  assert.match(r.stdout, /hostile: survived/);
  assert.equal(r.code, 0, r.stderr);
});

test('vmm reports its own errors with exit 125', opts, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-'));
  const junk = join(dir, 'junk');
  writeFileSync(junk, 'not a kernel');
  for (const args of [['run'], ['run', '--kernel', join(dir, 'missing')], ['run', '--kernel', junk], ['run', '--kernel', guest('hello'), '--memory', 'lots'], ['run', '--kernel', guest('hello'), '--bogus']]) {
    const r = await runVmm(args);
    assert.equal(r.code, 125, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^vmm: /);
  }
});
