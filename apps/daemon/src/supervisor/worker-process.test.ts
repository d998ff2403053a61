import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DomainDefinition } from '../schemas/domain.js';
import { tapName, unsupported, workerArgs, workerPaths } from './worker-process.js';

const UUID = '0b8f6d6e-7d3e-4c1f-9a55-2f3b8a0c1d2e';
const paths = workerPaths('/run/vmctl', '/var/lib/vmctl', UUID);

function def(extra: Partial<DomainDefinition> = {}): DomainDefinition {
  return {
    vcpus: 2,
    memory_mib: 64,
    boot: { kernel: '/k.elf' },
    disks: [],
    nics: [],
    serial: { log: false },
    display: null,
    autostart: false,
    on_poweroff: 'destroy',
    on_reboot: 'restart',
    on_crash: 'preserve',
    ...extra,
  };
}

/** The values of every occurrence of `flag`. */
function values(args: string[], flag: string): string[] {
  return args.flatMap((a, i) => (a === flag ? [args[i + 1]!] : []));
}

test('workerArgs() passes the boot, memory, vCPUs and worker sockets', () => {
  const args = workerArgs(UUID, def({ boot: { kernel: '/k.elf', initrd: '/i.img', cmdline: 'quiet' } }), paths);
  assert.equal(args[0], 'run');
  assert.deepEqual(values(args, '--kernel'), ['/k.elf']);
  assert.deepEqual(values(args, '--initrd'), ['/i.img']);
  assert.deepEqual(values(args, '--cmdline'), ['quiet']);
  assert.deepEqual(values(args, '--memory'), ['64M']);
  assert.deepEqual(values(args, '--cpus'), ['2']);
  assert.deepEqual(values(args, '--vm-id'), [UUID]);
  assert.deepEqual(values(args, '--console-socket'), [paths.console]);
});

test('workerArgs() serves a display over VNC on the worker\'s vnc.sock, and none without one', () => {
  assert.deepEqual(values(workerArgs(UUID, def({ display: { type: 'vnc' } }), paths), '--display'), [`vnc=unix:${paths.vnc}`]);
  assert.equal(paths.vnc, `/run/vmctl/vms/${UUID}/vnc.sock`);
  assert.deepEqual(values(workerArgs(UUID, def(), paths), '--display'), []);
});

test('workerArgs() gives each disk a --disk flag, in order, with ro and serial', () => {
  const args = workerArgs(UUID, def({
    disks: [
      { path: '/img/root.raw', format: 'raw', readonly: false, serial: 'root' },
      { path: '/img/data.raw', format: 'raw', readonly: true },
    ],
  }), paths);
  assert.deepEqual(values(args, '--disk'), ['/img/root.raw,serial=root', '/img/data.raw,ro']);
});

test('workerArgs() gives each NIC a --net flag with its tap and MAC', () => {
  const args = workerArgs(UUID, def({
    nics: [
      { type: 'tap', ifname: 'tap7', mac: '02:00:00:00:00:01' },
      { type: 'tap', mac: '02:00:00:00:00:02' },
      { type: 'bridge', bridge: 'br0', mac: '02:00:00:00:00:03' },
    ],
  }), paths);
  assert.deepEqual(values(args, '--net'), [
    'tap=tap7,mac=02:00:00:00:00:01',
    'tap=vm0b8f6d6e7dn1,mac=02:00:00:00:00:02',
    'tap=vm0b8f6d6e7dn2,mac=02:00:00:00:00:03',
  ]);
});

test('workerArgs() passes no device flags for a domain without disks or NICs', () => {
  const args = workerArgs(UUID, def(), paths);
  assert.ok(!args.includes('--disk') && !args.includes('--net'));
});

test('tapName() keeps a named tap and names the others within 15 characters', () => {
  assert.equal(tapName(UUID, { type: 'tap', ifname: 'mine' }, 0), 'mine');
  const generated = tapName(UUID, { type: 'bridge', bridge: 'br0' }, 7);
  assert.equal(generated, 'vm0b8f6d6e7dn7');
  assert.ok(generated.length <= 15);
});

test('unsupported() refuses qcow2 disks and disk paths with commas, and accepts raw', () => {
  assert.equal(unsupported(def({ disks: [{ path: '/a.raw', format: 'raw', readonly: false }] })), undefined);
  assert.match(unsupported(def({ disks: [{ path: '/a.qcow2', format: 'qcow2', readonly: false }] }))!, /disks\[0\] is qcow2/);
  assert.match(unsupported(def({ disks: [{ path: '/a,b.raw', format: 'raw', readonly: false }] }))!, /comma/);
});
