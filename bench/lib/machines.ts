/**
 * The three ways the bench runs a test guest, with the same guest, RAM and command line:
 *
 *   vmm     vmctl's VMM: `node libs/vmm/dist/bundle/cli.js run ... --debug-exit`
 *   c       kvmrun, the minimal C VMM in test/guests/tools (the floor)
 *   qemu    QEMU with KVM, `-M microvm` (qboot + the pvh.bin option ROM boot the PVH ELF)
 *
 * and how each reports the guest's exit code.
 */
import { resolve } from 'node:path';
import type { Command } from './proc.js';

export const ROOT = resolve(import.meta.dirname, '../..');
export const GUESTS = resolve(ROOT, 'test/guests/out');
export const VMM_CLI = resolve(ROOT, 'libs/vmm/dist/bundle/cli.js');
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
}

/**
 * QEMU's machine options per guest. The echo guest takes UART interrupts through the 8259
 * (LAPIC LINT0 in ExtINT mode, as a PC BIOS leaves it). qboot, microvm's firmware, leaves
 * LINT0 masked, so with a LAPIC present KVM never delivers the PIC's interrupt (checked with
 * pic=on and kernel-irqchip on/split/off: the guest falls back to polling). Without a LAPIC
 * (`-cpu qemu64,-apic`) the PIC's INTR reaches the CPU directly and the guest gets its IRQ 4.
 */
function qemuMachine(guest: string): { machine: string; cpu?: string } {
  return guest === 'echo.elf' ? { machine: 'microvm,pic=on', cpu: 'qemu64,-apic' } : { machine: 'microvm' };
}

export function command(vmm: VmmName, r: GuestRun): Command {
  const elf = resolve(GUESTS, r.guest);
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
        ],
      };
    case 'c':
      return { cmd: KVMRUN, args: ['-m', String(r.memMiB), ...(r.cmdline ? ['-c', r.cmdline] : []), elf] };
    case 'qemu': {
      const { machine, cpu } = qemuMachine(r.guest);
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
          ...(r.cmdline ? ['-append', r.cmdline] : []),
          '-nodefaults',
          '-no-user-config',
          '-nographic',
          '-serial',
          'stdio',
          '-m',
          `${r.memMiB}M`,
          '-device',
          'isa-debug-exit,iobase=0xf4,iosize=4',
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
