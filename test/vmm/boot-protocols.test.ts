/**
 * The boot protocols beyond a one-CPU PVH boot, checked from inside real guests on this
 * machine's /dev/kvm: the Linux boot protocol's 64-bit bzImage entry (the zero page's e820
 * map, command line, initrd and RSDP, as test/guests/out/bzimage.bin reports them) and SMP
 * start-up (test/guests/out/smp.elf wakes the APs with INIT/SIPI/SIPI through its local
 * APIC and every CPU reports in).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { haveKvm } from '../lib/kvm.js';
import { GUESTS, guest, runVmm } from '../lib/vmm-process.js';
import { ACPI_TABLES_END, ACPI_TABLES_START, E820_RAM, e820Map, MIB } from '../../libs/vmm/src/memory/layout.js';

const kvm = haveKvm();
const opts = { skip: !kvm, timeout: 60000 };
const BZIMAGE = join(GUESTS, 'bzimage.bin');

/** The 32-bit FNV-1a hash the bzimage guest prints as `sum=`. */
function fnv1a(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (const b of bytes) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h;
}

const hex16 = (n: number) => n.toString(16).padStart(16, '0');

/** The `bz: e820` lines the guest must print for `bytes` of RAM, in the VMM's order. */
function expectedE820(bytes: number): string[] {
  return e820Map(bytes).map((e) => `bz: e820 0x${hex16(e.addr)} 0x${hex16(e.size)} ${e.type}`);
}

function lines(stdout: string, prefix: string): string[] {
  return stdout.split('\n').filter((l) => l.startsWith(prefix));
}

/** The setup header of the bzImage the guests were built into (for init_size). */
function bzInitSize(): number {
  return readFileSync(BZIMAGE).readUInt32LE(0x260);
}

function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'vmm-boot-'));
  return fn(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

for (const [mem, bytes] of [
  ['64M', 64 * MIB],
  ['4608M', 4608 * MIB], // RAM on both sides of the 32-bit hole
] as const) {
  test(`bzImage: the zero page carries the e820 map, command line and initrd (${mem})`, opts, () =>
    withTempDir(async (dir) => {
      // An odd size, so that a loader rounding the size or the copy would show.
      const initrd = randomBytes(300_001);
      const initrdPath = join(dir, 'initrd.img');
      writeFileSync(initrdPath, initrd);
      const cmdline = 'hello bz root=/dev/vda console=ttyS0,115200 quiet x="a b"';
      const r = await runVmm(['run', '--kernel', BZIMAGE, '--initrd', initrdPath, '--cmdline', cmdline, '--memory', mem, '--debug-exit']);
      assert.equal(r.code, 0, `exit ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);

      assert.match(r.stdout, /^bz: boot_params=0x[0-9a-f]+ protocol=2\.15 loader=0xff$/m);
      assert.deepEqual(lines(r.stdout, 'bz: e820 '), expectedE820(bytes));
      assert.deepEqual(lines(r.stdout, 'bz: cmdline='), [`bz: cmdline=${cmdline}`]);

      const m = r.stdout.match(/^bz: initrd addr=0x([0-9a-f]+) size=(\d+) sum=0x([0-9a-f]{8})$/m);
      assert.ok(m, `no initrd line in ${JSON.stringify(r.stdout)}`);
      const addr = parseInt(m[1]!, 16);
      assert.equal(Number(m[2]), initrd.length, 'initrd size');
      assert.equal(parseInt(m[3]!, 16), fnv1a(initrd), 'initrd FNV-1a');
      // Where the boot protocol allows it: page-aligned, in RAM, above the kernel's
      // init_size, below initrd_addr_max (0x7fffffff) and 4 GiB.
      assert.equal(addr % 4096, 0, `initrd at 0x${addr.toString(16)} is not page-aligned`);
      assert.ok(addr >= 0x100000 + bzInitSize(), `initrd at 0x${addr.toString(16)} overlaps the kernel's init_size`);
      assert.ok(addr + initrd.length <= 0x80000000, 'initrd above initrd_addr_max');
      assert.ok(
        e820Map(bytes).some((e) => e.type === E820_RAM && addr >= e.addr && addr + initrd.length <= e.addr + e.size),
        `initrd at 0x${addr.toString(16)} is not inside one RAM entry`,
      );

      // acpi_rsdp_addr: the RSDP in the VMM's ACPI area; the guest checked its signature and
      // checksum (it exits 1 on a bad one).
      const rsdp = r.stdout.match(/^bz: rsdp=0x([0-9a-f]+)$/m);
      assert.ok(rsdp, `no rsdp line in ${JSON.stringify(r.stdout)}`);
      const rsdpAddr = parseInt(rsdp[1]!, 16);
      assert.ok(rsdpAddr >= ACPI_TABLES_START && rsdpAddr < ACPI_TABLES_END, `rsdp at 0x${rsdpAddr.toString(16)}`);
    }),
  );
}

test('bzImage: without --initrd the zero page says there is none; an empty command line arrives empty', opts, async () => {
  const r = await runVmm(['run', '--kernel', BZIMAGE, '--cmdline', '', '--memory', '64M', '--debug-exit']);
  assert.equal(r.code, 0, `exit ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);
  assert.deepEqual(lines(r.stdout, 'bz: e820 '), expectedE820(64 * MIB));
  assert.deepEqual(lines(r.stdout, 'bz: cmdline='), ['bz: cmdline=']);
  assert.match(r.stdout, /^bz: initrd none$/m);
});

for (const cpus of [1, 2, 4]) {
  test(`SMP: with --cpus ${cpus} every CPU comes up at CPL3 with its own APIC ID and runs a PIO storm`, opts, async () => {
    const n = 2000;
    const r = await runVmm(['run', '--kernel', guest('smp'), '--cpus', String(cpus), '--cmdline', `cpus=${cpus} storm=${n}`, '--memory', '64M', '--debug-exit']);
    assert.equal(r.code, 0, `exit ${r.code}; stdout: ${r.stdout} stderr: ${r.stderr}`);

    const up = [...r.stdout.matchAll(/^smp: cpu (\d+) up \(apic (\d+)\)$/gm)].map((m) => ({ cpu: Number(m[1]), apic: Number(m[2]) }));
    assert.deepEqual(up.map((u) => u.cpu).sort((a, b) => a - b), [...Array(cpus).keys()], 'each CPU index reported once');
    assert.equal(new Set(up.map((u) => u.apic)).size, cpus, `APIC IDs not distinct: ${JSON.stringify(up)}`);
    assert.equal(up.find((u) => u.cpu === 0)?.apic, 0, 'the BSP is APIC 0');

    const storms = [...r.stdout.matchAll(/^smp: cpu (\d+) pio n=(\d+) tsc=(\d+)$/gm)];
    assert.deepEqual(storms.map((m) => Number(m[1])).sort((a, b) => a - b), [...Array(cpus).keys()], 'each CPU ran its storm');
    for (const m of storms) {
      assert.equal(Number(m[2]), n);
      assert.ok(Number(m[3]) > 0);
    }
    assert.match(r.stdout, new RegExp(`^smp: all ${cpus} cpus up$`, 'm'));
    assert.doesNotMatch(r.stdout, /missing|share apic|note:/);
  });
}

test('SMP: a CPU the guest expects but the VMM does not have is reported missing (exit 1)', opts, async () => {
  const r = await runVmm(['run', '--kernel', guest('smp'), '--cpus', '2', '--cmdline', 'cpus=3', '--memory', '64M', '--debug-exit']);
  assert.match(r.stdout, /^smp: cpu 1 up \(apic 1\)$/m);
  assert.match(r.stdout, /^smp: cpu 2 missing$/m);
  assert.doesNotMatch(r.stdout, /all \d+ cpus up/);
  assert.equal(r.code, 1, r.stderr);
});
