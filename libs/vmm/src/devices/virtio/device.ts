/**
 * What a virtio device implements, knowing nothing of its transport (virtio 1.2 §2, the
 * basic facilities): its type and features, its configuration space, its queues' sizes, and
 * what to do when the driver brings it up, notifies a queue, or resets it. virtio-pci (and
 * later virtio-mmio) is written once against this interface.
 */
import type { GuestMemory } from '../../memory/guest-memory.js';
import { isQueueError, type DescriptorChain, type QueueError, type Virtqueue } from './queue.js';

// Device IDs (§5).
export const VIRTIO_ID_NET = 1;
export const VIRTIO_ID_BLOCK = 2;
export const VIRTIO_ID_CONSOLE = 3;
export const VIRTIO_ID_RNG = 4;
export const VIRTIO_ID_BALLOON = 5;
export const VIRTIO_ID_VSOCK = 19;

// Device status bits (§2.1).
export const VIRTIO_CONFIG_S_ACKNOWLEDGE = 0x01;
export const VIRTIO_CONFIG_S_DRIVER = 0x02;
export const VIRTIO_CONFIG_S_DRIVER_OK = 0x04;
export const VIRTIO_CONFIG_S_FEATURES_OK = 0x08;
export const VIRTIO_CONFIG_S_NEEDS_RESET = 0x40;
export const VIRTIO_CONFIG_S_FAILED = 0x80;

// Feature bits that are not device-specific (§6).
export const VIRTIO_F_INDIRECT_DESC = 1n << 28n;
export const VIRTIO_F_EVENT_IDX = 1n << 29n;
export const VIRTIO_F_VERSION_1 = 1n << 32n;
export const VIRTIO_F_ACCESS_PLATFORM = 1n << 33n;
export const VIRTIO_F_RING_PACKED = 1n << 34n;
export const VIRTIO_F_IN_ORDER = 1n << 35n;
export const VIRTIO_F_NOTIFICATION_DATA = 1n << 38n;
export const VIRTIO_F_RING_RESET = 1n << 40n;

/**
 * The ring features our split-queue implementation supports; a device offers them along
 * with its own (§6.2: a device MUST offer VIRTIO_F_VERSION_1).
 */
export const VIRTIO_RING_FEATURES = VIRTIO_F_VERSION_1 | VIRTIO_F_INDIRECT_DESC | VIRTIO_F_EVENT_IDX;

/** How a device signals the driver; the transport decides what that means on its bus. */
export interface VirtioInterrupt {
  /** A used buffer notification for queue `index` (after `Virtqueue.needsNotification()`). */
  notifyQueue(index: number): void;
  /** A configuration change notification (the device's configuration space changed). */
  notifyConfig(): void;
  /**
   * The driver broke the protocol on queue `index` (a broken chain, rings out of RAM): the
   * transport sets DEVICE_NEEDS_RESET and notifies a configuration change (§2.1.2), and the
   * device gets no more notifications until the driver resets it.
   */
  queueError(index: number, error: QueueError): void;
}

/** What the device gets when the driver sets DRIVER_OK. */
export interface VirtioActivation {
  memory: GuestMemory;
  /** one per queue the device declared; undefined where the driver left the queue disabled */
  queues: readonly (Virtqueue | undefined)[];
  interrupt: VirtioInterrupt;
  /** the features the driver accepted */
  features: bigint;
}

export interface VirtioDevice {
  /** the virtio device ID (§5), e.g. VIRTIO_ID_RNG */
  readonly deviceType: number;
  /** every feature the device offers, ring features included */
  readonly deviceFeatures: bigint;
  /** the largest size of each queue, in queue order (powers of two, at most 32768) */
  readonly queueMaxSizes: readonly number[];
  /** bytes of device-specific configuration space (0 if none) */
  readonly configSize: number;

  /** Reads device configuration at `offset`; bytes past `configSize` read 0. */
  readConfig(offset: number, data: Uint8Array): void;
  /** Writes device configuration; fields the driver may not write are ignored. */
  writeConfig(offset: number, data: Uint8Array): void;

  /**
   * Optional: whether the device can work with this feature set, checked when the driver
   * sets FEATURES_OK (§2.2.2: otherwise the device MUST fail to set FEATURES_OK). The
   * transport has already checked the features were offered and include VERSION_1.
   */
  acceptFeatures?(features: bigint): boolean;

  /** The driver set DRIVER_OK: the device may use its queues from now on (§2.1.2). */
  activate(activation: VirtioActivation): void;
  /** The driver notified queue `index` (only between activate and reset). */
  queueNotify(index: number): void;
  /** The driver reset the device: drop the queues and go back to the state after creation. */
  reset(): void;
  /** The device's own state, JSON-serialisable, for snapshots. */
  save(): unknown;
}

/**
 * Serves queue `index` of an active device: takes the driver's chains while `more()` holds,
 * a queue's worth at most (a driver that keeps refilling cannot hold the device thread),
 * gives each to `use`, which returns its used length (the bytes the device wrote into it),
 * and sends one used buffer notification at the end if the driver wants it. A broken chain
 * is reported (queueError) and ends the turn. True when it stopped after a whole queue's
 * worth: more may be waiting.
 */
export function serveQueue(a: VirtioActivation, index: number, use: (chain: DescriptorChain) => number, more: () => boolean = () => true): boolean {
  const q = a.queues[index];
  if (q === undefined) return false;
  let n = 0;
  for (; n < q.size && more(); n++) {
    const chain = q.pop();
    if (chain === undefined) break;
    if (isQueueError(chain)) {
      a.interrupt.queueError(index, chain);
      return false;
    }
    q.pushUsed(chain.head, use(chain));
  }
  if (n > 0 && q.needsNotification()) a.interrupt.notifyQueue(index);
  return n === q.size;
}
