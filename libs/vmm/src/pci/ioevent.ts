/**
 * Guest writes that the kernel turns into eventfd signals (KVM_IOEVENTFD), so a doorbell
 * such as a virtio queue notification costs no exit to userspace: KVM completes the write
 * in the kernel and signals the eventfd, which the device thread's event loop polls.
 *
 * Devices see only `IoEventRegistry`; `KvmIoEventRegistry` implements it over a VM, the
 * eventfd helpers and a poller on the device thread's loop (libs/kvm-native's `watchFd`).
 * A registration follows its BAR: a device unregisters when the BAR moves or stops decoding
 * and registers again at the new address.
 */

export interface IoEventRegistration {
  readonly space: 'mmio' | 'pio';
  readonly addr: number;
  readonly len: number;
  /** Stops the kernel from catching these writes; later writes exit to the bus again. */
  unregister(): void;
}

export interface IoEventRegistry {
  /**
   * Makes guest writes of `len` bytes (any value) at `addr` call `handler` on the device
   * thread, without a vCPU exit. Writes of another width still exit and reach the bus.
   */
  register(space: 'mmio' | 'pio', addr: number, len: number, handler: () => void): IoEventRegistration;
}

/** The parts of libs/kvm-native's `Vm` the registry uses. */
export interface IoEventFdVm {
  ioeventfd(e: { addr: number; len: number; fd: number; pio?: boolean; deassign?: boolean }): void;
}

export interface IoEventFdOps {
  eventfd(): number;
  /** reads (and so resets) the counter; 0n when nothing was signalled */
  eventfdRead(fd: number): bigint;
  closeFd(fd: number): void;
  /** polls `fd` for readability on this thread's loop; returns how to stop */
  watch(fd: number, onReadable: () => void): () => void;
}

export class KvmIoEventRegistry implements IoEventRegistry {
  readonly #vm: IoEventFdVm;
  readonly #ops: IoEventFdOps;
  /** registrations alive now */
  active = 0;

  constructor(vm: IoEventFdVm, ops: IoEventFdOps) {
    this.#vm = vm;
    this.#ops = ops;
  }

  register(space: 'mmio' | 'pio', addr: number, len: number, handler: () => void): IoEventRegistration {
    const ops = this.#ops;
    const vm = this.#vm;
    const fd = ops.eventfd();
    const pio = space === 'pio';
    try {
      vm.ioeventfd({ addr, len, fd, pio });
    } catch (err) {
      ops.closeFd(fd);
      throw err;
    }
    // Drain the counter before the handler runs: a write that lands during the handler
    // makes the fd readable again, so no notification is lost, and the poll does not spin.
    const stop = ops.watch(fd, () => {
      if (ops.eventfdRead(fd) !== 0n) handler();
    });
    this.active++;
    let done = false;
    return {
      space,
      addr,
      len,
      unregister: () => {
        if (done) return;
        done = true;
        this.active--;
        stop();
        try {
          vm.ioeventfd({ addr, len, fd, pio, deassign: true });
        } finally {
          ops.closeFd(fd);
        }
      },
    };
  }
}
