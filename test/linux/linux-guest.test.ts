/**
 * A stock Debian kernel under vmm: the bzImage boot protocol, ACPI, SMP, the serial console
 * and the virtio devices, on a real KVM (inside the KVM rig on this PVM machine). Each boot
 * costs about a minute here, so the tests are few and each checks several things.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { ROOT, VMM } from '../lib/vmm-process.js';
import { rigNeeded, spawnInKvm, type RigProcess } from '../rig/rig.js';
import { EXIT_POWEROFF, EXIT_RESET } from '../../libs/vmm/src/exit-codes.js';

const slow = { timeout: 600_000 };
const MARKER = /VMCTL-GUEST-READY/;
const PROMPT = /guest# /;
const where = rigNeeded() ? 'in the KVM rig' : 'directly';

function guestAssets(): Record<string, string> {
  const out = execFileSync('bash', [join(ROOT, 'scripts/guest-assets.sh'), '--quiet'], { encoding: 'utf8' });
  return Object.fromEntries(out.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

const assets = guestAssets();

function vmmRun(extra: string[]): string[] {
  return ['node', VMM, 'run', '--kernel', assets.GUEST_KERNEL!, '--initrd', assets.GUEST_INITRD!, '--cmdline', 'console=ttyS0 quiet panic=-1', ...extra];
}

/** Types `line` at the guest's shell once its prompt is up, and waits for `expect`. */
async function shell(proc: RigProcess, line: string, expect: RegExp, ms = 120_000): Promise<RegExpMatchArray> {
  proc.write(`${line}\n`);
  return proc.waitFor(expect, ms);
}

/** Waits for the run's end and returns its exit status; kills it first if `ms` pass. */
async function exitStatus(proc: RigProcess, ms: number): Promise<number> {
  const r = await proc.finish(ms);
  return r.code;
}

test(`Debian's cloud kernel boots under vmm with ACPI and 2 vCPUs, answers on the serial console, and powers off with exit 0 (${where})`, slow, async (t) => {
  const proc = spawnInKvm(vmmRun(['--memory', '512M', '--cpus', '2']), { timeoutMs: 540_000 });
  try {
    await proc.waitFor(MARKER, 420_000);
    t.diagnostic(`marker ${proc.elapsed().toFixed(1)} s after the rig started`);
    await proc.waitFor(PROMPT, 120_000);
    // $((...)) makes the answer differ from the echo of the typed line
    const m = await shell(
      proc,
      'echo "@@$((40+2)) $(uname -r) $(grep -c ^processor /proc/cpuinfo) $(grep MemTotal /proc/meminfo | tr -s " ")"',
      /@@42 (\S+) (\d+) MemTotal: (\d+) kB\r?\n/,
    );
    assert.equal(m[1], assets.GUEST_KERNEL_RELEASE);
    assert.equal(Number(m[2]), 2, 'two vCPUs online');
    const memKiB = Number(m[3]);
    // MemTotal is RAM less what the kernel keeps for itself: within 512 MiB, above 400 MiB
    assert.ok(memKiB > 400 * 1024 && memKiB <= 512 * 1024, `MemTotal ${memKiB} kB for --memory 512M`);
    proc.write('poweroff\n');
    assert.equal(await exitStatus(proc, 180_000), EXIT_POWEROFF, 'guest poweroff (ACPI S5) ends vmm with 0');
  } finally {
    proc.kill('SIGKILL');
    await proc.finish().catch(() => {});
  }
});

test(`the guest's reboot ends vmm --no-reboot with the reset exit code (${where})`, slow, async (t) => {
  const proc = spawnInKvm(vmmRun(['--memory', '256M', '--no-reboot']), { timeoutMs: 540_000 });
  try {
    await proc.waitFor(PROMPT, 480_000);
    t.diagnostic(`prompt ${proc.elapsed().toFixed(1)} s after the rig started`);
    proc.write('reboot\n');
    assert.equal(await exitStatus(proc, 180_000), EXIT_RESET);
  } finally {
    proc.kill('SIGKILL');
    await proc.finish().catch(() => {});
  }
});

test(`Linux drives vmm's virtio devices: ext4 on virtio-blk checked by the host, ping and HTTP over virtio-net, /dev/hwrng (${where})`, slow, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vmctl-linux-'));
  chmodSync(dir, 0o755);
  try {
    const image = join(dir, 'disk.img');
    writeFileSync(image, '');
    truncateSync(image, 64 * 1024 * 1024);
    const token = `vmctl-http-${randomBytes(6).toString('hex')}`;
    const www = join(dir, 'www');
    execFileSync('mkdir', ['-p', www]);
    writeFileSync(join(www, 'token.txt'), `${token}\n`);
    const fileText = `vmctl-disk-${randomBytes(6).toString('hex')}`;

    const cmd = [
      join(ROOT, 'test/linux/in-netns.sh'), 'vmtap0', '10.0.2.1/24', www, '--',
      ...vmmRun(['--memory', '256M', '--rng', '--disk', `${image},serial=lxdisk`, '--net', 'tap=vmtap0,mac=52:54:00:12:34:56']),
    ];
    const proc = spawnInKvm(cmd, { timeoutMs: 540_000, share: [dir] });
    try {
      await proc.waitFor(PROMPT, 480_000);
      t.diagnostic(`prompt ${proc.elapsed().toFixed(1)} s after the rig started`);

      // virtio-blk: the device, its serial, a filesystem the host checks afterwards
      let m = await shell(proc, 'echo "@@$((1+1)) $(cat /sys/block/vda/size) $(cat /sys/block/vda/serial)"', /@@2 (\d+) (\S+)\r?\n/);
      assert.equal(Number(m[1]), (64 * 1024 * 1024) / 512, '/dev/vda is the image, in 512-byte sectors');
      assert.equal(m[2], 'lxdisk');
      m = await shell(
        proc,
        `mkfs.ext4 -q -F /dev/vda && mount -t ext4 /dev/vda /mnt && echo ${fileText} > /mnt/hello.txt && sync && umount /mnt; echo "@@$((2+1)) $?"`,
        /@@3 (\d+)\r?\n/,
      );
      assert.equal(m[1], '0', 'mkfs, mount, write, sync, umount');

      // virtio-net: the MAC, a ping to the tap's host end, a file over TCP
      m = await shell(
        proc,
        'ip addr add 10.0.2.15/24 dev eth0 && ip link set eth0 up && sleep 1; echo "@@$((3+1)) $(cat /sys/class/net/eth0/address)"; ping -c 3 -W 5 10.0.2.1; echo "@@$((4+1)) $?"',
        /@@5 (\d+)\r?\n/,
      );
      assert.match(proc.stdout, /@@4 52:54:00:12:34:56/);
      assert.equal(m[1], '0', 'ping 10.0.2.1 answered');
      // (busybox 1.35's wget crashes with -q or -T here; without them it works)
      m = await shell(proc, 'wget -O - http://10.0.2.1:8080/token.txt; echo "@@$((5+1)) $?"', /@@6 (\d+)\r?\n/);
      assert.equal(m[1], '0', 'wget succeeded');
      assert.ok(proc.stdout.includes(`${token}\r\n`) || proc.stdout.includes(`${token}\n`), 'the served file arrived');

      // virtio-rng: the kernel picked it and it yields bytes
      m = await shell(
        proc,
        'echo "@@$((6+1)) $(cat /sys/class/misc/hw_random/rng_current) $(dd if=/dev/hwrng bs=32 count=1 2>/dev/null | od -An -tx1 | tr -d " \\n")"',
        /@@7 (\S+) ([0-9a-f]*)\r?\n/,
      );
      assert.match(m[1]!, /^virtio_rng/);
      assert.equal(m[2]!.length, 64, '32 bytes from /dev/hwrng');

      proc.write('poweroff\n');
      assert.equal(await exitStatus(proc, 180_000), EXIT_POWEROFF);
    } finally {
      proc.kill('SIGKILL');
      await proc.finish().catch(() => {});
    }

    // the host's view of what the guest wrote
    execFileSync('e2fsck', ['-fn', image], { stdio: 'pipe' });
    const read = execFileSync('debugfs', ['-R', 'cat /hello.txt', image], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    assert.equal(read.trim(), fileText);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
