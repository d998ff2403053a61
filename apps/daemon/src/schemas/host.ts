/** The host resource: what this machine can run and what versions serve it. */
import { z } from 'zod';

export const Host = z
  .object({
    hostname: z.string(),
    cpus: z.int().meta({ description: 'Logical CPUs of the host' }),
    memory_bytes: z.number().meta({ description: 'Host RAM' }),
    versions: z.object({
      vmctl: z.string(),
      node: z.string(),
      control_protocol: z.int().meta({ description: 'The daemon↔worker control protocol version' }),
    }),
    kvm: z.object({
      present: z.boolean().meta({ description: '/dev/kvm exists' }),
      usable: z.boolean().meta({ description: 'The daemon opened /dev/kvm and read its API version' }),
      api_version: z.int().nullable(),
      pvm: z.boolean().meta({ description: 'KVM is provided by kvm_pvm: guest kernel-mode code is emulated (slow); user-mode code runs natively' }),
      modules: z.array(z.string()).meta({ description: 'Loaded KVM kernel modules (kvm, kvm_intel, kvm_amd, kvm_pvm)' }),
      max_vcpus: z.int().nullable(),
      capabilities: z.record(z.string(), z.boolean()).meta({ description: 'KVM capabilities the VMM relies on' }),
    }),
    default_guest: z
      .object({ kernel: z.string(), initrd: z.string().optional(), cmdline: z.string().optional() })
      .nullable()
      .meta({ description: 'The boot a definition without `boot` gets (vmctl\'s Linux guest); null when this host has none' }),
  })
  .meta({ id: 'Host', description: 'Host capabilities and versions.' });
export type Host = z.output<typeof Host>;
