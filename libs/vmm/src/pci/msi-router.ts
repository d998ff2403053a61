/**
 * How an MSI-X vector becomes an interrupt in the guest: each vector owns a KVM GSI whose
 * routing entry holds the vector's message (address and data), and an irqfd bound to that
 * GSI. Raising the vector is one eventfd write; KVM turns it into the MSI write the message
 * describes (KVM_IRQFD, KVM_SET_GSI_ROUTING in Documentation/virt/kvm/api.rst).
 *
 * `MsiRouter` is what MSI-X capabilities see; `KvmMsiRouter` implements it over a VM. Unit
 * tests use a fake that records routes and triggers.
 */
import { VmmError } from '../errors.js';

/** An MSI message: where the device writes, and what (PCI 3.0 §6.8.2.6 – §6.8.2.8). */
export interface MsiMessage {
  addressLo: number;
  addressHi: number;
  data: number;
}

export interface MsiRouter {
  /** A GSI for one vector. Throws when the VM has none left (a wiring error, not the guest's). */
  allocateGsi(): number;
  /** Points `gsi` at `msi`, or removes its route (undefined). Takes effect at `commit()`. */
  setRoute(gsi: number, msi: MsiMessage | undefined): void;
  /** Installs the routes changed since the last commit. */
  commit(): void;
  /** Raises the interrupt routed through `gsi`. */
  trigger(gsi: number): void;
}

/** A GSI routing entry, as KVM_SET_GSI_ROUTING takes it (libs/kvm-native's `GsiRoute`). */
export type KvmGsiRoute =
  | { gsi: number; type: 'irqchip'; irqchip: number; pin: number }
  | { gsi: number; type: 'msi'; addressLo: number; addressHi: number; data: number };

/** The parts of libs/kvm-native's `Vm` the router uses. */
export interface GsiRoutingVm {
  setGsiRouting(routes: KvmGsiRoute[]): void;
  irqfd(e: { fd: number; gsi: number; deassign?: boolean }): void;
}

/** libs/kvm-native's eventfd helpers. */
export interface EventFdOps {
  eventfd(): number;
  eventfdWrite(fd: number): void;
  closeFd(fd: number): void;
}

/** The irqchip numbers of include/uapi/linux/kvm.h (libs/kvm-native's `constants`). */
export interface IrqchipIds {
  KVM_IRQCHIP_PIC_MASTER: number;
  KVM_IRQCHIP_PIC_SLAVE: number;
  KVM_IRQCHIP_IOAPIC: number;
}

/** x86 MSIs are writes to the LAPIC window at 0xFEE00000 (Intel SDM vol. 3, §11.11.1). */
export const MSI_ADDRESS_MASK = 0xfff00000;
export const MSI_ADDRESS_BASE = 0xfee00000;

/** GSIs 0–23 are the IOAPIC's pins (0–15 also the PICs'); MSI routes start above them. */
export const MSI_FIRST_GSI = 24;
/** KVM_CAP_IRQ_ROUTING reports 4096 routing entries on the kernels we run on. */
export const KVM_MAX_GSI_ROUTES = 4096;

/**
 * The routes KVM installs by default when it creates the irqchip (virt/kvm/irqchip.c,
 * `kvm_setup_default_irq_routing`): GSI 0–15 to both the PIC pin and the IOAPIC pin of the
 * same number, GSI 16–23 to the IOAPIC. KVM_SET_GSI_ROUTING replaces the whole table, so
 * every commit must carry these again or the legacy IRQs would stop.
 */
export function irqchipRoutes(ids: IrqchipIds): KvmGsiRoute[] {
  const routes: KvmGsiRoute[] = [];
  for (let gsi = 0; gsi < 24; gsi++) {
    routes.push({ gsi, type: 'irqchip', irqchip: ids.KVM_IRQCHIP_IOAPIC, pin: gsi });
    if (gsi < 16) {
      routes.push({ gsi, type: 'irqchip', irqchip: gsi < 8 ? ids.KVM_IRQCHIP_PIC_MASTER : ids.KVM_IRQCHIP_PIC_SLAVE, pin: gsi % 8 });
    }
  }
  return routes;
}

export interface KvmMsiRouterOptions {
  vm: GsiRoutingVm;
  fds: EventFdOps;
  /** the irqchip routes to keep (see `irqchipRoutes`) */
  baseRoutes: KvmGsiRoute[];
  firstGsi?: number;
  maxRoutes?: number;
}

/** MsiRouter over a KVM VM: one irqfd per GSI, the routing table rewritten on commit. */
export class KvmMsiRouter implements MsiRouter {
  readonly #vm: GsiRoutingVm;
  readonly #fds: EventFdOps;
  readonly #baseRoutes: KvmGsiRoute[];
  readonly #maxRoutes: number;
  readonly #irqfds = new Map<number, number>();
  readonly #routes = new Map<number, MsiMessage>();
  #nextGsi: number;
  #dirty = false;
  /** KVM_SET_GSI_ROUTING calls made, for the stats */
  commits = 0;
  /** messages the guest programmed that are no x86 MSI (left unrouted: they go nowhere) */
  invalidMessages = 0;
  /** KVM_SET_GSI_ROUTING calls KVM refused */
  failedCommits = 0;
  /** the last refusal, for the logs */
  lastError: unknown;

  constructor(options: KvmMsiRouterOptions) {
    this.#vm = options.vm;
    this.#fds = options.fds;
    this.#baseRoutes = options.baseRoutes;
    this.#nextGsi = options.firstGsi ?? MSI_FIRST_GSI;
    this.#maxRoutes = options.maxRoutes ?? KVM_MAX_GSI_ROUTES;
  }

  allocateGsi(): number {
    const gsi = this.#nextGsi;
    if (this.#baseRoutes.length + this.#irqfds.size + 1 > this.#maxRoutes) {
      throw new VmmError('INVALID_CONFIG', `Cannot allocate an MSI route: all ${this.#maxRoutes} KVM GSI routes are in use`);
    }
    const fd = this.#fds.eventfd();
    try {
      this.#vm.irqfd({ fd, gsi });
    } catch (err) {
      this.#fds.closeFd(fd);
      throw err;
    }
    this.#irqfds.set(gsi, fd);
    this.#nextGsi++;
    return gsi;
  }

  setRoute(gsi: number, msi: MsiMessage | undefined): void {
    if (msi !== undefined && ((msi.addressLo & MSI_ADDRESS_MASK) >>> 0) !== MSI_ADDRESS_BASE) {
      // The message comes from the guest: one that is no MSI gets no route, and raising the
      // GSI then does nothing, as a write to nowhere would on hardware.
      this.invalidMessages++;
      msi = undefined;
    }
    const old = this.#routes.get(gsi);
    if (msi === undefined) {
      if (old === undefined) return;
      this.#routes.delete(gsi);
    } else {
      if (old && old.addressLo === msi.addressLo && old.addressHi === msi.addressHi && old.data === msi.data) return;
      this.#routes.set(gsi, { addressLo: msi.addressLo, addressHi: msi.addressHi, data: msi.data });
    }
    this.#dirty = true;
  }

  commit(): void {
    if (!this.#dirty) return;
    const routes = this.#baseRoutes.slice();
    for (const [gsi, m] of this.#routes) routes.push({ gsi, type: 'msi', addressLo: m.addressLo, addressHi: m.addressHi, data: m.data });
    this.#dirty = false;
    try {
      this.#vm.setGsiRouting(routes);
      this.commits++;
    } catch (err) {
      // Route contents are guest-chosen, so KVM's refusal is guest input too: count it and
      // keep the table KVM had. Commits reach here from a guest's MMIO write; they never throw.
      this.failedCommits++;
      this.lastError = err;
    }
  }

  trigger(gsi: number): void {
    const fd = this.#irqfds.get(gsi);
    if (fd !== undefined) this.#fds.eventfdWrite(fd);
  }

  /** Unbinds and closes every irqfd (before the VM is closed). */
  close(): void {
    for (const [gsi, fd] of this.#irqfds) {
      try {
        this.#vm.irqfd({ fd, gsi, deassign: true });
      } finally {
        this.#fds.closeFd(fd);
      }
    }
    this.#irqfds.clear();
  }
}
