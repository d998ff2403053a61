/**
 * Fakes of the KVM-backed PCI interfaces, for unit tests: an MSI router that records routes
 * and interrupts, and an ioevent registry whose "eventfds" a test signals by hand.
 */
import type { IoEventRegistration, IoEventRegistry } from './ioevent.js';
import type { MsiMessage, MsiRouter } from './msi-router.js';

export class FakeMsiRouter implements MsiRouter {
  #next = 24;
  /** routes as installed by the last commit */
  readonly installed = new Map<number, MsiMessage>();
  readonly #staged = new Map<number, MsiMessage | undefined>();
  /** every trigger, in order, with the message the GSI was routed to at the time */
  readonly delivered: { gsi: number; msi: MsiMessage | undefined }[] = [];
  commits = 0;

  allocateGsi(): number {
    return this.#next++;
  }

  setRoute(gsi: number, msi: MsiMessage | undefined): void {
    this.#staged.set(gsi, msi && { ...msi });
  }

  commit(): void {
    for (const [gsi, msi] of this.#staged) {
      if (msi === undefined) this.installed.delete(gsi);
      else this.installed.set(gsi, msi);
    }
    this.#staged.clear();
    this.commits++;
  }

  trigger(gsi: number): void {
    this.delivered.push({ gsi, msi: this.installed.get(gsi) });
  }
}

export interface FakeIoEvent {
  space: 'mmio' | 'pio';
  addr: number;
  len: number;
  /** what the poller would call when the eventfd becomes readable */
  fire: () => void;
}

export class FakeIoEventRegistry implements IoEventRegistry {
  /** registrations alive now */
  readonly live: FakeIoEvent[] = [];
  registered = 0;
  unregistered = 0;

  register(space: 'mmio' | 'pio', addr: number, len: number, handler: () => void): IoEventRegistration {
    const entry: FakeIoEvent = { space, addr, len, fire: handler };
    this.live.push(entry);
    this.registered++;
    let done = false;
    return {
      space,
      addr,
      len,
      unregister: () => {
        if (done) return;
        done = true;
        this.unregistered++;
        this.live.splice(this.live.indexOf(entry), 1);
      },
    };
  }

  /** The registration covering `addr`, if any. */
  at(addr: number): FakeIoEvent | undefined {
    return this.live.find((e) => e.addr === addr);
  }
}
