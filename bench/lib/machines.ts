/**
 * The three ways the bench runs a test guest, with the same guest, RAM and command line:
 *
 *   vmm     vmctl's VMM: `node libs/vmm/dist/bundle/cli.js run ... --debug-exit`
 *   c       kvmrun, the minimal C VMM in test/guests/tools (the floor)
 *   qemu    QEMU with KVM, `-M microvm` (qboot + the pvh.bin option ROM boot the PVH ELF);
 *           `-M microvm,pcie=on` when the run has a virtio-blk or virtio-net PCI device
 *
 * and how each reports the guest's exit code.
 */
import { resolve } from 'node:path';
import type { Command } from './proc.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const GUESTS = resolve(ROOT, 'test/guests/out');
/** VMCTL_BENCH_VMM_CLI runs another build of the vmm (say, a copy of an earlier bundle) for before/after comparisons. */
export const VMM_CLI = process.env.VMCTL_BENCH_VMM_CLI ?? resolve(ROOT, 'libs/vmm/dist/bundle/cli.js');
export const KVMRUN = resolve(GUESTS, 'kvmrun');
export const QEMU = 'qemu-system-x86_64';

export type VmmName = 'vmm' | 'c' | 'qemu';
export const VMMS: readonly VmmName[] = ['vmm', 'c', 'qemu'];
export const LABEL: Record<VmmName, string> = { vmm: 'vmm (vmctl)', c: 'C (kvmrun)', qemu: 'QEMU microvm' };

export interface GuestRun {
  /** file name in test/guests/out */
  guest: string;
  memMiB: number;
  cmdline?: string;
  /** extra node flags for the vmm (profiling) */
  nodeFlags?: string[];
  /** a raw disk image as a virtio-blk PCI device (vmm and QEMU only) */
  disk?: string;
  /** a tap as a virtio-net PCI device (vmm and QEMU only); the tap must exist in the caller's namespace */
  net?: { tap: string; mac: string; vhost?: boolean };
  /** run inside this network namespace (`ip netns exec NAME`, which execs: the pid stays the VMM's) */
  netns?: string;
}

/**
 * QEMU's block and network devices for the PCI guests: modern-only virtio-pci (what vmm
 * offers), raw image with the thread-pool AIO engine and the host page cache (cache=writeback,
 * vmm's raw backend's mode: no O_DIRECT, FLUSH → fdatasync), tap without vhost unless asked.
 */
export const QEMU_BLK = (image: string) => [
  '-drive',
  `file=${image},if=none,id=d0,format=raw,aio=threads,cache=writeback`,
  '-device',
  'virtio-blk-pci,drive=d0,disable-legacy=on',
];
export const QEMU_NET = (n: NonNullable<GuestRun['net']>) => [
  '-netdev',
  `tap,id=n0,ifname=${n.tap},script=no,downscript=no,vhost=${n.vhost ? 'on' : 'off'}`,
  '-device',
  `virtio-net-pci,netdev=n0,disable-legacy=on,mac=${n.mac}`,
];
/**
 * microvm with PCIe has no firmware that places BARs and no ACPI MCFG: the test guests find
 * ECAM at this address from their command line and place the BARs themselves (see
 * test/guests/README.md, "Under QEMU"). It boots in ~0.2 s where pc/q35 go through SeaBIOS
 * (~5 s here).
 */
export const QEMU_MICROVM_ECAM = 0xe0000000;

/**
 * QEMU's machine options per guest. The echo guest takes UART interrupts through the 8259
 * (LAPIC LINT0 in ExtINT mode, as a PC BIOS leaves it). qboot, microvm's firmware, leaves
 * LINT0 masked, so with a LAPIC present KVM never delivers the PIC's interrupt (checked with
 * pic=on and kernel-irqchip on/split/off: the guest falls back to polling). Without a LAPIC
 * (`-cpu qemu64,-apic`) the PIC's INTR reaches the CPU directly and the guest gets its IRQ 4.
 */
function qemuMachine(r: GuestRun): { machine: string; cpu?: string } {
  if (r.disk !== undefined || r.net !== undefined) return { machine: 'microvm,pcie=on' };
  return r.guest === 'echo.elf' ? { machine: 'microvm,pic=on', cpu: 'qemu64,-apic' } : { machine: 'microvm' };
}

/** `ip netns exec NS` in front of a command when the run asks for a namespace. */
function inNetns(r: GuestRun, c: Command): Command {
  return r.netns === undefined ? c : { cmd: 'ip', args: ['netns', 'exec', r.netns, c.cmd, ...c.args] };
}

export function command(vmm: VmmName, r: GuestRun): Command {
  return inNetns(r, bareCommand(vmm, r));
}

function bareCommand(vmm: VmmName, r: GuestRun): Command {
  const elf = resolve(GUESTS, r.guest);
  const pci = r.disk !== undefined || r.net !== undefined;
  if (pci && vmm === 'c') throw new Error('kvmrun has no PCI devices');
  switch (vmm) {
    case 'vmm':
      return {
        cmd: process.execPath,
        args: [
          ...(r.nodeFlags ?? []),
          VMM_CLI,
          'run',
          '--kernel',
          elf,
          '--memory',
          `${r.memMiB}M`,
          '--cmdline',
          r.cmdline ?? '',
          '--debug-exit',
          ...(r.disk !== undefined ? ['--disk', r.disk] : []),
          ...(r.net !== undefined ? ['--net', `tap=${r.net.tap},mac=${r.net.mac}`] : []),
        ],
      };
    case 'c':
      return { cmd: KVMRUN, args: ['-m', String(r.memMiB), ...(r.cmdline ? ['-c', r.cmdline] : []), elf] };
    case 'qemu': {
      const { machine, cpu } = qemuMachine(r);
      const cmdline = pci ? `ecam=0x${QEMU_MICROVM_ECAM.toString(16)} ${r.cmdline ?? ''}`.trim() : r.cmdline;
      return {
        cmd: QEMU,
        args: [
          '-accel',
          'kvm',
          '-M',
          machine,
          ...(cpu ? ['-cpu', cpu] : []),
          '-kernel',
          elf,
          ...(cmdline ? ['-append', cmdline] : []),
          '-nodefaults',
          '-no-user-config',
          '-nographic',
          '-serial',
          'stdio',
          '-m',
          `${r.memMiB}M`,
          '-device',
          'isa-debug-exit,iobase=0xf4,iosize=4',
          ...(r.disk !== undefined ? QEMU_BLK(r.disk) : []),
          ...(r.net !== undefined ? QEMU_NET(r.net) : []),
        ],
      };
    }
  }
}

/** The guest's exit code from the process status, or null if the guest did not exit itself. */
export function guestExitCode(vmm: VmmName, status: number | null): number | null {
  if (status === null) return null;
  if (vmm === 'qemu') return status & 1 ? status >> 1 : null; // isa-debug-exit: (code << 1) | 1
  return status;
}
