/**
 * What /v1/host reports: the machine, the versions serving it, and what its KVM offers.
 * KVM is probed through @vmctl/kvm-native (loaded lazily: a daemon on a host without the
 * addon still answers, with `usable: false`).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, hostname, totalmem } from 'node:os';
import type { Host } from './schemas/host.js';
import { PROTOCOL_VERSION } from './supervisor/supervisor.js';

const require = createRequire(import.meta.url);

export const VMCTL_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
})();

const KVM_MODULES = ['kvm', 'kvm_intel', 'kvm_amd', 'kvm_pvm'];

/** The capabilities the VMM relies on, by the name /v1/host reports. */
const CAPS = {
  irqchip: 'KVM_CAP_IRQCHIP',
  pit2: 'KVM_CAP_PIT2',
  ioeventfd: 'KVM_CAP_IOEVENTFD',
  irqfd: 'KVM_CAP_IRQFD',
  irq_routing: 'KVM_CAP_IRQ_ROUTING',
  signal_msi: 'KVM_CAP_SIGNAL_MSI',
  immediate_exit: 'KVM_CAP_IMMEDIATE_EXIT',
  readonly_mem: 'KVM_CAP_READONLY_MEM',
} as const;

interface KvmProbe {
  usable: boolean;
  api_version: number | null;
  max_vcpus: number | null;
  capabilities: Record<string, boolean>;
}

function probeKvm(device: string): KvmProbe {
  const none: KvmProbe = { usable: false, api_version: null, max_vcpus: null, capabilities: {} };
  if (!existsSync(device)) return none;
  try {
    const native = require('@vmctl/kvm-native') as typeof import('@vmctl/kvm-native');
    const kvm = new native.Kvm(device);
    try {
      const c = native.constants;
      const capabilities: Record<string, boolean> = {};
      for (const [name, cap] of Object.entries(CAPS)) capabilities[name] = kvm.checkExtension(c[cap]) > 0;
      return { usable: true, api_version: kvm.getApiVersion(), max_vcpus: kvm.checkExtension(c.KVM_CAP_MAX_VCPUS) || null, capabilities };
    } finally {
      kvm.close();
    }
  } catch {
    return none;
  }
}

export function hostInfo(kvmDevice = '/dev/kvm', defaultGuest: Host['default_guest'] = null): Host {
  let modules: string[] = [];
  try {
    const loaded = new Set(readdirSync('/sys/module'));
    modules = KVM_MODULES.filter((m) => loaded.has(m));
  } catch {
    // no sysfs
  }
  const probe = probeKvm(kvmDevice);
  return {
    hostname: hostname(),
    cpus: availableParallelism(),
    memory_bytes: totalmem(),
    versions: { vmctl: VMCTL_VERSION, node: process.versions.node, control_protocol: PROTOCOL_VERSION },
    kvm: {
      present: existsSync(kvmDevice),
      usable: probe.usable,
      api_version: probe.api_version,
      pvm: modules.includes('kvm_pvm'),
      modules,
      max_vcpus: probe.max_vcpus,
      capabilities: probe.capabilities,
    },
    default_guest: defaultGuest,
  };
}
