/**
 * The modern (virtio 1.x, non-transitional) PCI transport: any `VirtioDevice` as a PCI
 * function (virtio 1.2 §4.1).
 *
 * What the guest sees:
 *
 *   vendor 0x1AF4, device 0x1040 + type, revision 1, subsystem 0x1AF4:0x1040 + type (§4.1.2)
 *   BAR1  32-bit memory, MSI-X table (offset 0) and PBA (offset 0x800); one vector per
 *         queue plus one for configuration changes
 *   BAR4  64-bit memory, 16 KiB, the virtio structures, one page each:
 *         0x0000 common configuration   0x1000 ISR status
 *         0x2000 device configuration   0x3000 notifications (4 bytes per queue)
 *   capabilities: MSI-X, then vendor-specific (0x09) virtio_pci_cap structures for common,
 *   notify (notify_off_multiplier 4, queue_notify_off = queue index), ISR, device (when the
 *   device has configuration) and PCI configuration access (§4.1.4)
 *   INTA#, for drivers that do not enable MSI-X
 *
 * BAR4 is non-prefetchable: reading ISR status clears it.
 *
 * Notifications arrive two ways and end in the same `queueNotify(i)`: an MMIO write exit
 * routed through the bus to the notify page, or — when the builder gives an
 * `IoEventRegistry` — a KVM ioeventfd on each queue's notify address, registered whenever
 * BAR4 is decoded and moved with it, so that the data path needs no vCPU exit.
 *
 * Interrupts go through the MSI-X table when the driver enabled MSI-X (a vector per event,
 * VIRTIO_MSI_NO_VECTOR for none), otherwise through INTA# with the ISR bits (§4.1.4.5,
 * §4.1.5.3, §4.1.5.4).
 */
import type { BusDevice, DeviceMetrics } from '../../bus/device.js';
import { VmmError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { PciFunction, type PciFunctionState } from '../../pci/function.js';
import type { IoEventRegistration, IoEventRegistry } from '../../pci/ioevent.js';
import type { MsiRouter } from '../../pci/msi-router.js';
import { MsixCapability, type MsixState } from '../../pci/msix.js';
import { PCI_CAP_ID_VNDR, PCI_CLASS_OTHERS } from '../../pci/registers.js';
import {
  VIRTIO_CONFIG_S_DRIVER_OK,
  VIRTIO_CONFIG_S_FEATURES_OK,
  VIRTIO_CONFIG_S_NEEDS_RESET,
  VIRTIO_F_EVENT_IDX,
  VIRTIO_F_INDIRECT_DESC,
  VIRTIO_F_VERSION_1,
  VIRTIO_ID_BLOCK,
  VIRTIO_ID_CONSOLE,
  VIRTIO_ID_NET,
  VIRTIO_ID_VSOCK,
  type VirtioDevice,
  type VirtioInterrupt,
} from './device.js';
import { isQueueError, VIRTQ_MAX_SIZE, Virtqueue, type QueueError, type QueueState } from './queue.js';

export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
/** §4.1.2: non-transitional device ID = 0x1040 + virtio device ID */
export const VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
/** §4.1.2.1: non-transitional devices SHOULD have a revision ID of 1 or higher */
export const VIRTIO_PCI_REVISION = 1;

// virtio_pci_cap.cfg_type (§4.1.4)
export const VIRTIO_PCI_CAP_COMMON_CFG = 1;
export const VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
export const VIRTIO_PCI_CAP_ISR_CFG = 3;
export const VIRTIO_PCI_CAP_DEVICE_CFG = 4;
export const VIRTIO_PCI_CAP_PCI_CFG = 5;

// struct virtio_pci_cap field offsets
export const VIRTIO_PCI_CAP_CFG_TYPE = 3;
export const VIRTIO_PCI_CAP_BAR = 4;
export const VIRTIO_PCI_CAP_ID = 5;
export const VIRTIO_PCI_CAP_OFFSET = 8;
export const VIRTIO_PCI_CAP_LENGTH = 12;
export const VIRTIO_PCI_CAP_SIZEOF = 16;
/** virtio_pci_notify_cap.notify_off_multiplier, and virtio_pci_cfg_cap.pci_cfg_data */
export const VIRTIO_PCI_NOTIFY_CAP_MULT = 16;
export const VIRTIO_PCI_CFG_CAP_DATA = 16;
export const VIRTIO_PCI_NOTIFY_CAP_SIZEOF = 20;
export const VIRTIO_PCI_CFG_CAP_SIZEOF = 20;

// struct virtio_pci_common_cfg (§4.1.4.3)
export const VIRTIO_PCI_COMMON_DFSELECT = 0x00; // le32 device_feature_select
export const VIRTIO_PCI_COMMON_DF = 0x04; // le32 device_feature (RO)
export const VIRTIO_PCI_COMMON_GFSELECT = 0x08; // le32 driver_feature_select
export const VIRTIO_PCI_COMMON_GF = 0x0c; // le32 driver_feature
export const VIRTIO_PCI_COMMON_MSIX = 0x10; // le16 config_msix_vector
export const VIRTIO_PCI_COMMON_NUMQ = 0x12; // le16 num_queues (RO)
export const VIRTIO_PCI_COMMON_STATUS = 0x14; // u8 device_status
export const VIRTIO_PCI_COMMON_CFGGENERATION = 0x15; // u8 config_generation (RO)
export const VIRTIO_PCI_COMMON_Q_SELECT = 0x16; // le16 queue_select
export const VIRTIO_PCI_COMMON_Q_SIZE = 0x18; // le16 queue_size
export const VIRTIO_PCI_COMMON_Q_MSIX = 0x1a; // le16 queue_msix_vector
export const VIRTIO_PCI_COMMON_Q_ENABLE = 0x1c; // le16 queue_enable
export const VIRTIO_PCI_COMMON_Q_NOFF = 0x1e; // le16 queue_notify_off (RO)
export const VIRTIO_PCI_COMMON_Q_DESCLO = 0x20; // le64 queue_desc
export const VIRTIO_PCI_COMMON_Q_DESCHI = 0x24;
export const VIRTIO_PCI_COMMON_Q_AVAILLO = 0x28; // le64 queue_driver
export const VIRTIO_PCI_COMMON_Q_AVAILHI = 0x2c;
export const VIRTIO_PCI_COMMON_Q_USEDLO = 0x30; // le64 queue_device
export const VIRTIO_PCI_COMMON_Q_USEDHI = 0x34;
/** the virtio 1.0/1.1 structure; 1.2's queue_notify_data and queue_reset need features we do not offer */
export const VIRTIO_PCI_COMMON_CFG_SIZE = 0x38;

export const VIRTIO_MSI_NO_VECTOR = 0xffff;
export const VIRTIO_PCI_ISR_QUEUE = 0x1;
export const VIRTIO_PCI_ISR_CONFIG = 0x2;

/** Where things are. */
export const VIRTIO_PCI_MSIX_BAR = 1;
export const VIRTIO_PCI_BAR = 4;
export const VIRTIO_PCI_BAR_SIZE = 0x4000;
export const VIRTIO_PCI_COMMON_OFFSET = 0x0000;
export const VIRTIO_PCI_ISR_OFFSET = 0x1000;
export const VIRTIO_PCI_DEVICE_OFFSET = 0x2000;
export const VIRTIO_PCI_NOTIFY_OFFSET = 0x3000;
export const VIRTIO_PCI_REGION_SIZE = 0x1000;
/** notify address of queue q = notify offset + q * 4; §4.1.4.4.1 wants an even power of 2 or 0 */
export const VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER = 4;
/** the width drivers write notifications with (the 16-bit queue index, §4.1.5.2) */
export const VIRTIO_PCI_NOTIFY_WIDTH = 2;
const MAX_QUEUES = VIRTIO_PCI_REGION_SIZE / VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER;
const MSIX_PBA_OFFSET = 0x800;

/** PCI class codes for virtio device types, as other VMMs present them. */
const CLASS_BY_TYPE: Record<number, number> = {
  [VIRTIO_ID_NET]: 0x020000, // network, Ethernet
  [VIRTIO_ID_BLOCK]: 0x010000, // mass storage, SCSI
  [VIRTIO_ID_CONSOLE]: 0x078000, // communication, other
  [VIRTIO_ID_VSOCK]: 0x078000,
};

interface QueueConfig {
  size: number;
  msixVector: number;
  enabled: boolean;
  descLo: number;
  descHi: number;
  driverLo: number;
  driverHi: number;
  deviceLo: number;
  deviceHi: number;
}

export interface VirtioPciState {
  pci: PciFunctionState;
  msix: MsixState;
  status: number;
  deviceFeatureSelect: number;
  driverFeatureSelect: number;
  /** hex */
  driverFeatures: string;
  configVector: number;
  queueSelect: number;
  isr: number;
  configGeneration: number;
  configChanged: boolean;
  queues: QueueConfig[];
  /** ring positions of the queues in use (after DRIVER_OK), by queue index */
  rings: (QueueState | null)[];
}

export interface VirtioPciMetrics extends DeviceMetrics {
  /** queue notifications passed to the device */
  notifies: number;
  /** notifications before DRIVER_OK, after NEEDS_RESET, or for a disabled queue */
  notifiesIgnored: number;
  /** writes the spec forbids (read-only fields, queue fields after enable, bad sizes) */
  forbiddenWrites: number;
  /** FEATURES_OK refused: features not offered, or VERSION_1 missing */
  featuresRefused: number;
  /** times the device was marked DEVICE_NEEDS_RESET */
  needsReset: number;
  /** interrupts raised, through MSI-X or INTx# */
  interrupts: number;
  /** notify addresses KVM would not take an ioeventfd for (they exit to the bus instead) */
  ioeventfdFailures: number;
}

export interface VirtioPciOptions {
  device: VirtioDevice;
  memory: GuestMemory;
  msiRouter: MsiRouter;
  /** where to register queue-notify ioeventfds; without it notifications exit to the bus */
  ioEvents?: IoEventRegistry;
  /** PCI class code; by default chosen from the device type */
  classCode?: number;
  state?: VirtioPciState;
}

export interface NotifyAddress {
  queue: number;
  gpa: number;
  len: number;
}

export class VirtioPciDevice extends PciFunction {
  readonly device: VirtioDevice;
  readonly msix: MsixCapability;
  readonly transportMetrics: VirtioPciMetrics = {
    missedReads: 0,
    missedWrites: 0,
    notifies: 0,
    notifiesIgnored: 0,
    forbiddenWrites: 0,
    featuresRefused: 0,
    needsReset: 0,
    interrupts: 0,
    ioeventfdFailures: 0,
  };
  /** the last queue error that marked the device DEVICE_NEEDS_RESET */
  lastQueueError: QueueError | undefined;

  readonly #memory: GuestMemory;
  readonly #ioEvents: IoEventRegistry | undefined;
  readonly #offered: bigint;
  readonly #numQueues: number;
  readonly #interrupt: VirtioInterrupt;
  #registrations: IoEventRegistration[] = [];

  #status = 0;
  #dfSelect = 0;
  #gfSelect = 0;
  #driverFeatures = 0n;
  /** the driver wrote a feature bit in a select window past the ones we model */
  #strayFeatureBits = false;
  #configVector = VIRTIO_MSI_NO_VECTOR;
  #queueSelect = 0;
  #queues: QueueConfig[];
  #isr = 0;
  #configGeneration = 0;
  #configChanged = false;
  #active: (Virtqueue | undefined)[] | undefined;

  constructor(options: VirtioPciOptions) {
    const device = options.device;
    const numQueues = device.queueMaxSizes.length;
    if (numQueues > MAX_QUEUES || device.queueMaxSizes.some((s) => !(s >= 1 && s <= VIRTQ_MAX_SIZE && (s & (s - 1)) === 0))) {
      throw new VmmError('INVALID_CONFIG', `virtio device type ${device.deviceType}: queue sizes must be powers of two up to ${VIRTQ_MAX_SIZE}, at most ${MAX_QUEUES} queues`);
    }
    if (device.configSize > VIRTIO_PCI_REGION_SIZE) {
      throw new VmmError('INVALID_CONFIG', `virtio device type ${device.deviceType}: configuration space of ${device.configSize} bytes does not fit`);
    }
    const vectors = numQueues + 1;
    const msix = new MsixCapability({
      vectors,
      router: options.msiRouter,
      tableOffset: 0,
      pbaOffset: Math.max(MSIX_PBA_OFFSET, vectors * 16),
      ...(options.state ? { state: options.state.msix } : {}),
    });
    const msixBarSize = Math.max(0x1000, 2 ** Math.ceil(Math.log2(msix.pbaOffset + msix.pbaSize)));
    // BAR4's accesses go to methods of this object, which does not exist before super().
    const bar4: { target?: BusDevice } = {};
    const typeId = VIRTIO_PCI_DEVICE_ID_BASE + device.deviceType;
    super({
      vendorId: VIRTIO_PCI_VENDOR_ID,
      deviceId: typeId,
      revisionId: VIRTIO_PCI_REVISION,
      // §4.1.2.1: subsystem device ID SHOULD be 0x40 or higher for non-transitional devices.
      subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
      subsystemId: typeId,
      classCode: options.classCode ?? CLASS_BY_TYPE[device.deviceType] ?? PCI_CLASS_OTHERS,
      interruptPin: 1,
      bars: [
        undefined,
        { kind: 'memory32', size: msixBarSize, region: msix },
        undefined,
        undefined,
        { kind: 'memory64', size: VIRTIO_PCI_BAR_SIZE, region: forwardTo(bar4) },
      ],
    });
    bar4.target = { read: (o, d) => this.#barRead(o, d), write: (o, d) => this.#barWrite(o, d) };
    this.device = device;
    this.msix = msix;
    this.#memory = options.memory;
    this.#ioEvents = options.ioEvents;
    // §6.2: a device MUST offer VIRTIO_F_VERSION_1; the packed ring and the rest are not ours.
    this.#offered = device.deviceFeatures | VIRTIO_F_VERSION_1;
    this.#numQueues = numQueues;
    this.#queues = this.#defaultQueues();
    this.#interrupt = {
      notifyQueue: (i) => this.#notifyQueueInterrupt(i),
      notifyConfig: () => {
        this.#configChanged = true;
        this.#signalConfig();
      },
      queueError: (i, err) => this.#queueError(i, err),
    };

    msix.install(this, VIRTIO_PCI_MSIX_BAR, VIRTIO_PCI_MSIX_BAR, () => this.#updateIntx());
    this.#addVirtioCap(VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_COMMON_OFFSET, VIRTIO_PCI_COMMON_CFG_SIZE);
    const notify = this.#addVirtioCap(
      VIRTIO_PCI_CAP_NOTIFY_CFG,
      VIRTIO_PCI_NOTIFY_OFFSET,
      Math.max(VIRTIO_PCI_NOTIFY_WIDTH, (numQueues - 1) * VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER + VIRTIO_PCI_NOTIFY_WIDTH),
      VIRTIO_PCI_NOTIFY_CAP_SIZEOF,
    );
    this.config.setU32(notify + VIRTIO_PCI_NOTIFY_CAP_MULT, VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER);
    this.#addVirtioCap(VIRTIO_PCI_CAP_ISR_CFG, VIRTIO_PCI_ISR_OFFSET, 1);
    if (device.configSize > 0) this.#addVirtioCap(VIRTIO_PCI_CAP_DEVICE_CFG, VIRTIO_PCI_DEVICE_OFFSET, device.configSize);
    this.#addPciCfgCap();

    if (options.state) this.#restore(options.state);
  }

  // --- notifications ---

  /** A queue notification, from the notify page or an ioeventfd. */
  queueNotify(index: number): void {
    const q = this.#active?.[index];
    if (q === undefined || (this.#status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) {
      // §2.1.2: nothing is consumed before DRIVER_OK; a broken device waits for a reset.
      this.transportMetrics.notifiesIgnored++;
      return;
    }
    this.transportMetrics.notifies++;
    this.device.queueNotify(index);
  }

  /** The guest-physical notify address of each queue while BAR4 is decoded. */
  notifyAddresses(): NotifyAddress[] {
    const base = this.barAddress(VIRTIO_PCI_BAR);
    if (base === undefined) return [];
    const out: NotifyAddress[] = [];
    for (let q = 0; q < this.#numQueues; q++) {
      out.push({ queue: q, gpa: base + VIRTIO_PCI_NOTIFY_OFFSET + q * VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER, len: VIRTIO_PCI_NOTIFY_WIDTH });
    }
    return out;
  }

  /** The device status byte (§2.1). */
  get status(): number {
    return this.#status;
  }

  /** The features the driver wrote (negotiated once FEATURES_OK is set). */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }

  get isr(): number {
    return this.#isr;
  }

  /** Stops notification ioeventfds; call before the VM goes away. */
  close(): void {
    for (const r of this.#registrations) r.unregister();
    this.#registrations = [];
  }

  save(): VirtioPciState {
    return {
      pci: this.savePci(),
      msix: this.msix.save(),
      status: this.#status,
      deviceFeatureSelect: this.#dfSelect,
      driverFeatureSelect: this.#gfSelect,
      driverFeatures: this.#driverFeatures.toString(16),
      configVector: this.#configVector,
      queueSelect: this.#queueSelect,
      isr: this.#isr,
      configGeneration: this.#configGeneration,
      configChanged: this.#configChanged,
      queues: this.#queues.map((q) => ({ ...q })),
      rings: this.#queues.map((_, i) => this.#active?.[i]?.save() ?? null),
    };
  }

  protected override barMoved(index: number, base: number | undefined): void {
    if (index !== VIRTIO_PCI_BAR || this.#ioEvents === undefined) return;
    for (const r of this.#registrations) r.unregister();
    this.#registrations = [];
    if (base === undefined) return;
    for (const n of this.notifyAddresses()) {
      try {
        this.#registrations.push(this.#ioEvents.register('mmio', n.gpa, n.len, () => this.queueNotify(n.queue)));
      } catch {
        // The guest moved the BAR (this runs inside its configuration write), so KVM's
        // refusal must not become an exception: the notification then exits to the bus,
        // which works, only slower.
        this.transportMetrics.ioeventfdFailures++;
      }
    }
  }

  // --- BAR4 ---

  #barRead(offset: number, data: Uint8Array): void {
    const region = Math.floor(offset / VIRTIO_PCI_REGION_SIZE);
    const off = offset % VIRTIO_PCI_REGION_SIZE;
    if (off + data.length > VIRTIO_PCI_REGION_SIZE) {
      this.transportMetrics.missedReads++;
      data.fill(0);
      return;
    }
    switch (region * VIRTIO_PCI_REGION_SIZE) {
      case VIRTIO_PCI_COMMON_OFFSET:
        this.#commonRead(off, data);
        return;
      case VIRTIO_PCI_ISR_OFFSET:
        this.#isrRead(off, data);
        return;
      case VIRTIO_PCI_DEVICE_OFFSET:
        this.#deviceConfigRead(off, data);
        return;
      default:
        // The notify page reads as zeros.
        data.fill(0);
    }
  }

  #barWrite(offset: number, data: Uint8Array): void {
    const region = Math.floor(offset / VIRTIO_PCI_REGION_SIZE);
    const off = offset % VIRTIO_PCI_REGION_SIZE;
    if (off + data.length > VIRTIO_PCI_REGION_SIZE) {
      this.transportMetrics.missedWrites++;
      return;
    }
    switch (region * VIRTIO_PCI_REGION_SIZE) {
      case VIRTIO_PCI_COMMON_OFFSET:
        this.#commonWrite(off, data);
        return;
      case VIRTIO_PCI_DEVICE_OFFSET:
        if (off + data.length <= this.device.configSize) this.device.writeConfig(off, data);
        else this.transportMetrics.missedWrites++;
        return;
      case VIRTIO_PCI_NOTIFY_OFFSET: {
        const q = off / VIRTIO_PCI_NOTIFY_OFF_MULTIPLIER;
        if (Number.isInteger(q) && q < this.#numQueues) this.queueNotify(q);
        else this.transportMetrics.missedWrites++;
        return;
      }
      default:
        // ISR status is read-only.
        this.transportMetrics.missedWrites++;
    }
  }

  #isrRead(off: number, data: Uint8Array): void {
    data.fill(0);
    if (off !== 0) return;
    // §4.1.4.5.1: the device MUST reset ISR status to 0 on driver read (and so de-assert INTx#).
    data[0] = this.#isr;
    this.#isr = 0;
    this.#updateIntx();
  }

  #deviceConfigRead(off: number, data: Uint8Array): void {
    if (off + data.length > this.device.configSize) {
      this.transportMetrics.missedReads++;
      data.fill(0);
      return;
    }
    // §4.1.4.3.1: config_generation MUST change once the driver has read configuration that
    // changed since its last read. The change is noted and the counter moves at this read,
    // as the spec suggests, so it cannot wrap back to a value the driver saw.
    if (this.#configChanged) {
      this.#configChanged = false;
      this.#configGeneration = (this.#configGeneration + 1) & 0xff;
    }
    this.device.readConfig(off, data);
  }

  // --- common configuration ---

  #commonRead(off: number, data: Uint8Array): void {
    // Any width reads the bytes of whatever fields it covers.
    for (let i = 0; i < data.length; i++) {
      const o = off + i;
      if (o >= VIRTIO_PCI_COMMON_CFG_SIZE) {
        data[i] = 0;
        continue;
      }
      const [start] = commonField(o);
      data[i] = (this.#commonValue(start) >>> (8 * (o - start))) & 0xff;
    }
  }

  #commonValue(field: number): number {
    const q = this.#queueSelect < this.#numQueues ? this.#queues[this.#queueSelect] : undefined;
    switch (field) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        return this.#dfSelect;
      case VIRTIO_PCI_COMMON_DF:
        // §4.1.4.3.1: bits dfselect*32.. of the offered features; 0 past the ones we have.
        return this.#dfSelect < 2 ? Number((this.#offered >> BigInt(32 * this.#dfSelect)) & 0xffffffffn) : 0;
      case VIRTIO_PCI_COMMON_GFSELECT:
        return this.#gfSelect;
      case VIRTIO_PCI_COMMON_GF:
        return this.#gfSelect < 2 ? Number((this.#driverFeatures >> BigInt(32 * this.#gfSelect)) & 0xffffffffn) : 0;
      case VIRTIO_PCI_COMMON_MSIX:
        return this.#configVector;
      case VIRTIO_PCI_COMMON_NUMQ:
        return this.#numQueues;
      case VIRTIO_PCI_COMMON_STATUS:
        return this.#status;
      case VIRTIO_PCI_COMMON_CFGGENERATION:
        return this.#configGeneration;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        return this.#queueSelect;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        // §4.1.4.3.1: 0 for a queue that does not exist.
        return q?.size ?? 0;
      case VIRTIO_PCI_COMMON_Q_MSIX:
        return q?.msixVector ?? VIRTIO_MSI_NO_VECTOR;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        return q?.enabled ? 1 : 0;
      case VIRTIO_PCI_COMMON_Q_NOFF:
        return q ? this.#queueSelect : 0;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
        return q?.descLo ?? 0;
      case VIRTIO_PCI_COMMON_Q_DESCHI:
        return q?.descHi ?? 0;
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
        return q?.driverLo ?? 0;
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
        return q?.driverHi ?? 0;
      case VIRTIO_PCI_COMMON_Q_USEDLO:
        return q?.deviceLo ?? 0;
      case VIRTIO_PCI_COMMON_Q_USEDHI:
        return q?.deviceHi ?? 0;
      default:
        return 0;
    }
  }

  #commonWrite(off: number, data: Uint8Array): void {
    // §4.1.3.1: the driver MUST access each field with its own width; 64-bit fields as two
    // 32-bit halves (an 8-byte write to the low half is taken as both). Others are dropped.
    if (data.length === 8 && (off === VIRTIO_PCI_COMMON_Q_DESCLO || off === VIRTIO_PCI_COMMON_Q_AVAILLO || off === VIRTIO_PCI_COMMON_Q_USEDLO)) {
      this.#commonWrite(off, data.subarray(0, 4));
      this.#commonWrite(off + 4, data.subarray(4, 8));
      return;
    }
    const [start, width] = off < VIRTIO_PCI_COMMON_CFG_SIZE ? commonField(off) : [off, 0];
    if (start !== off || width !== data.length) {
      this.transportMetrics.missedWrites++;
      return;
    }
    let v = 0;
    for (let i = data.length - 1; i >= 0; i--) v = v * 256 + data[i]!;
    const q = this.#queueSelect < this.#numQueues ? this.#queues[this.#queueSelect] : undefined;
    const queueLocked = q === undefined || q.enabled || (this.#status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
    switch (off) {
      case VIRTIO_PCI_COMMON_DFSELECT:
        this.#dfSelect = v;
        return;
      case VIRTIO_PCI_COMMON_GFSELECT:
        this.#gfSelect = v;
        return;
      case VIRTIO_PCI_COMMON_GF:
        this.#writeDriverFeatures(v);
        return;
      case VIRTIO_PCI_COMMON_MSIX:
        this.#configVector = this.#validVector(v);
        return;
      case VIRTIO_PCI_COMMON_STATUS:
        this.#writeStatus(v);
        return;
      case VIRTIO_PCI_COMMON_Q_SELECT:
        this.#queueSelect = v;
        return;
      case VIRTIO_PCI_COMMON_Q_MSIX:
        if (q) q.msixVector = this.#validVector(v);
        else this.transportMetrics.forbiddenWrites++;
        return;
      case VIRTIO_PCI_COMMON_Q_SIZE:
        // §4.1.4.3.2: the driver MUST NOT write a size that is not a power of 2; we also keep
        // it at most the maximum, and fixed once the queue is enabled.
        if (queueLocked || v === 0 || (v & (v - 1)) !== 0 || v > this.device.queueMaxSizes[this.#queueSelect]!) {
          this.transportMetrics.forbiddenWrites++;
        } else {
          q.size = v;
        }
        return;
      case VIRTIO_PCI_COMMON_Q_ENABLE:
        // §4.1.4.3.2: the driver MUST NOT write 0. Enabling after DRIVER_OK needs
        // VIRTIO_F_RING_RESET, which we do not offer.
        if (queueLocked || v !== 1) this.transportMetrics.forbiddenWrites++;
        else q.enabled = true;
        return;
      case VIRTIO_PCI_COMMON_Q_DESCLO:
      case VIRTIO_PCI_COMMON_Q_DESCHI:
      case VIRTIO_PCI_COMMON_Q_AVAILLO:
      case VIRTIO_PCI_COMMON_Q_AVAILHI:
      case VIRTIO_PCI_COMMON_Q_USEDLO:
      case VIRTIO_PCI_COMMON_Q_USEDHI:
        if (queueLocked) {
          this.transportMetrics.forbiddenWrites++;
          return;
        }
        if (off === VIRTIO_PCI_COMMON_Q_DESCLO) q.descLo = v;
        else if (off === VIRTIO_PCI_COMMON_Q_DESCHI) q.descHi = v;
        else if (off === VIRTIO_PCI_COMMON_Q_AVAILLO) q.driverLo = v;
        else if (off === VIRTIO_PCI_COMMON_Q_AVAILHI) q.driverHi = v;
        else if (off === VIRTIO_PCI_COMMON_Q_USEDLO) q.deviceLo = v;
        else q.deviceHi = v;
        return;
      default:
        // device_feature, num_queues, config_generation, queue_notify_off: read-only
        // (§4.1.4.3.2: the driver MUST NOT write them).
        this.transportMetrics.forbiddenWrites++;
    }
  }

  #writeDriverFeatures(v: number): void {
    // Features are fixed once FEATURES_OK is set (§3.1.1 step 5).
    if ((this.#status & VIRTIO_CONFIG_S_FEATURES_OK) !== 0) {
      this.transportMetrics.forbiddenWrites++;
      return;
    }
    if (this.#gfSelect >= 2) {
      // No feature lives there; a 1 is a feature we never offered.
      if (v !== 0) this.#strayFeatureBits = true;
      return;
    }
    const shift = BigInt(32 * this.#gfSelect);
    this.#driverFeatures = (this.#driverFeatures & ~(0xffffffffn << shift)) | (BigInt(v) << shift);
  }

  /** §4.1.5.1.2.1: a vector outside the table reads back as NO_VECTOR (the mapping failed). */
  #validVector(v: number): number {
    return v < this.msix.vectors ? v : VIRTIO_MSI_NO_VECTOR;
  }

  // --- device status (§2.1, §3.1) ---

  #writeStatus(value: number): void {
    if (value === 0) {
      this.#reset();
      return;
    }
    const old = this.#status;
    // The driver only sets bits (§2.1.1: it MUST NOT clear one), and NEEDS_RESET is the device's.
    let next = old | (value & ~VIRTIO_CONFIG_S_NEEDS_RESET);
    if ((next & ~old & VIRTIO_CONFIG_S_FEATURES_OK) !== 0 && !this.#featuresAcceptable()) {
      // §2.2.2: a device that cannot use the features MUST fail to set FEATURES_OK.
      next &= ~VIRTIO_CONFIG_S_FEATURES_OK;
      this.transportMetrics.featuresRefused++;
    }
    const driverOk = (next & ~old & VIRTIO_CONFIG_S_DRIVER_OK) !== 0;
    if (driverOk && (next & VIRTIO_CONFIG_S_FEATURES_OK) === 0) {
      // A 1.x device works only with negotiated features.
      next &= ~VIRTIO_CONFIG_S_DRIVER_OK;
      this.transportMetrics.forbiddenWrites++;
      this.#status = next;
      return;
    }
    this.#status = next;
    if (driverOk) this.#activate();
  }

  #featuresAcceptable(): boolean {
    const f = this.#driverFeatures;
    if (this.#strayFeatureBits || (f & ~this.#offered) !== 0n || (f & VIRTIO_F_VERSION_1) === 0n) return false;
    return this.device.acceptFeatures?.(f) ?? true;
  }

  #activate(): void {
    const f = this.#driverFeatures;
    const options = { eventIdx: (f & VIRTIO_F_EVENT_IDX) !== 0n, indirect: (f & VIRTIO_F_INDIRECT_DESC) !== 0n };
    const queues: (Virtqueue | undefined)[] = [];
    for (let i = 0; i < this.#numQueues; i++) {
      const q = this.#createQueue(i, options);
      if (isQueueError(q)) {
        this.#queueError(i, q);
        return;
      }
      queues.push(q);
    }
    this.#active = queues;
    this.device.activate({ memory: this.#memory, queues, interrupt: this.#interrupt, features: f });
  }

  #createQueue(i: number, options: { eventIdx: boolean; indirect: boolean }, state?: QueueState): Virtqueue | QueueError | undefined {
    const c = this.#queues[i]!;
    if (!c.enabled) return undefined;
    const layout = {
      size: c.size,
      desc: c.descHi * 2 ** 32 + c.descLo,
      avail: c.driverHi * 2 ** 32 + c.driverLo,
      used: c.deviceHi * 2 ** 32 + c.deviceLo,
    };
    return Virtqueue.create(this.#memory, layout, options, state);
  }

  #reset(): void {
    // §2.4.1 / §4.1.4.3.1: the device resets, then presents 0 in device_status and the
    // defaults in every queue field; all events are unmapped from MSI-X vectors (§4.1.5.1.2.1).
    this.device.reset();
    this.#active = undefined;
    this.#status = 0;
    this.#dfSelect = 0;
    this.#gfSelect = 0;
    this.#driverFeatures = 0n;
    this.#strayFeatureBits = false;
    this.#configVector = VIRTIO_MSI_NO_VECTOR;
    this.#queueSelect = 0;
    this.#queues = this.#defaultQueues();
    this.#isr = 0;
    this.lastQueueError = undefined;
    this.#updateIntx();
  }

  #defaultQueues(): QueueConfig[] {
    return this.device.queueMaxSizes.map((size) => ({
      size,
      msixVector: VIRTIO_MSI_NO_VECTOR,
      enabled: false,
      descLo: 0,
      descHi: 0,
      driverLo: 0,
      driverHi: 0,
      deviceLo: 0,
      deviceHi: 0,
    }));
  }

  #queueError(_index: number, err: QueueError): void {
    this.lastQueueError = err;
    if ((this.#status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) return;
    this.#status |= VIRTIO_CONFIG_S_NEEDS_RESET;
    this.transportMetrics.needsReset++;
    // §2.1.2: after setting DEVICE_NEEDS_RESET with DRIVER_OK set, the device MUST send a
    // configuration change notification.
    if ((this.#status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0) this.#signalConfig();
  }

  // --- interrupts ---

  #notifyQueueInterrupt(index: number): void {
    if (this.#active === undefined || (this.#status & VIRTIO_CONFIG_S_NEEDS_RESET) !== 0) return;
    const c = this.#queues[index];
    if (c === undefined) return;
    if (this.msix.enabled) {
      if (c.msixVector === VIRTIO_MSI_NO_VECTOR) return;
      this.transportMetrics.interrupts++;
      this.msix.notify(c.msixVector);
      return;
    }
    // §4.1.4.5.1: with MSI-X disabled, set the queue bit in ISR status, then interrupt.
    this.#isr |= VIRTIO_PCI_ISR_QUEUE;
    this.transportMetrics.interrupts++;
    this.#updateIntx();
  }

  #signalConfig(): void {
    // §4.1.4.5.1: the configuration bit is set before every configuration change notification.
    this.#isr |= VIRTIO_PCI_ISR_CONFIG;
    this.transportMetrics.interrupts++;
    if (this.msix.enabled) {
      if (this.#configVector !== VIRTIO_MSI_NO_VECTOR) this.msix.notify(this.#configVector);
      return;
    }
    this.#updateIntx();
  }

  /** INTx# follows ISR status while MSI-X is off (§4.1.4.5.1); with MSI-X on it is never used. */
  #updateIntx(): void {
    this.setIntx(this.#isr !== 0 && !this.msix.enabled);
  }

  // --- capabilities ---

  #addVirtioCap(type: number, offset: number, length: number, capLength = VIRTIO_PCI_CAP_SIZEOF): number {
    const c = this.config;
    const at = c.addCapability(PCI_CAP_ID_VNDR, capLength);
    c.setU8(at + 2, capLength); // cap_len
    c.setU8(at + VIRTIO_PCI_CAP_CFG_TYPE, type);
    c.setU8(at + VIRTIO_PCI_CAP_BAR, VIRTIO_PCI_BAR);
    c.setU8(at + VIRTIO_PCI_CAP_ID, 0);
    c.setU32(at + VIRTIO_PCI_CAP_OFFSET, offset);
    c.setU32(at + VIRTIO_PCI_CAP_LENGTH, length);
    return at;
  }

  /**
   * The PCI configuration access capability (§4.1.4.8; 4.1.4.7 in virtio 1.0): the driver
   * writes bar, offset and length, and pci_cfg_data becomes a window onto that BAR. The
   * device MUST present one, and MUST perform the BAR access on each access to the window.
   */
  #addPciCfgCap(): void {
    const c = this.config;
    const at = c.addCapability(PCI_CAP_ID_VNDR, VIRTIO_PCI_CFG_CAP_SIZEOF);
    c.setU8(at + 2, VIRTIO_PCI_CFG_CAP_SIZEOF);
    c.setU8(at + VIRTIO_PCI_CAP_CFG_TYPE, VIRTIO_PCI_CAP_PCI_CFG);
    c.setWritable(at + VIRTIO_PCI_CAP_BAR, 1, 0xff);
    c.setWritable(at + VIRTIO_PCI_CAP_OFFSET, 4, 0xffffffff);
    c.setWritable(at + VIRTIO_PCI_CAP_LENGTH, 4, 0xffffffff);
    c.setWritable(at + VIRTIO_PCI_CFG_CAP_DATA, 4, 0xffffffff);
    const window = (): { bar: number; offset: number; length: number } | undefined => {
      const bar = c.getU8(at + VIRTIO_PCI_CAP_BAR);
      const offset = c.getU32(at + VIRTIO_PCI_CAP_OFFSET);
      const length = c.getU32(at + VIRTIO_PCI_CAP_LENGTH);
      const spec = this.bars[bar];
      // §4.1.4.8.2: the driver MUST use an aligned access of 1, 2 or 4 bytes inside a BAR.
      if ((length !== 1 && length !== 2 && length !== 4) || offset % length !== 0 || spec === undefined || offset + length > spec.size) {
        this.transportMetrics.forbiddenWrites++;
        return undefined;
      }
      return { bar, offset, length };
    };
    this.addConfigHook({
      offset: at + VIRTIO_PCI_CFG_CAP_DATA,
      length: 4,
      beforeRead: () => {
        const w = window();
        if (w === undefined) return;
        const buf = new Uint8Array(w.length);
        this.bars[w.bar]!.region.read(w.offset, buf);
        for (let i = 0; i < w.length; i++) c.setU8(at + VIRTIO_PCI_CFG_CAP_DATA + i, buf[i]!);
      },
      afterWrite: () => {
        const w = window();
        if (w === undefined) return;
        const buf = new Uint8Array(w.length);
        for (let i = 0; i < w.length; i++) buf[i] = c.getU8(at + VIRTIO_PCI_CFG_CAP_DATA + i);
        this.bars[w.bar]!.region.write(w.offset, buf);
      },
    });
  }

  // --- snapshots ---

  #restore(s: VirtioPciState): void {
    this.restorePci(s.pci);
    this.#status = s.status & 0xff;
    this.#dfSelect = s.deviceFeatureSelect >>> 0;
    this.#gfSelect = s.driverFeatureSelect >>> 0;
    this.#driverFeatures = BigInt(`0x${s.driverFeatures || '0'}`);
    this.#configVector = this.#validVector(s.configVector);
    this.#queueSelect = s.queueSelect & 0xffff;
    this.#isr = s.isr & 0x3;
    this.#configGeneration = s.configGeneration & 0xff;
    this.#configChanged = s.configChanged;
    this.#queues = this.#defaultQueues().map((d, i) => {
      const q = s.queues[i];
      return q ? { ...q, msixVector: this.#validVector(q.msixVector) } : d;
    });
    if ((this.#status & VIRTIO_CONFIG_S_DRIVER_OK) !== 0 && (this.#status & VIRTIO_CONFIG_S_NEEDS_RESET) === 0) {
      const f = this.#driverFeatures;
      const options = { eventIdx: (f & VIRTIO_F_EVENT_IDX) !== 0n, indirect: (f & VIRTIO_F_INDIRECT_DESC) !== 0n };
      const queues: (Virtqueue | undefined)[] = [];
      for (let i = 0; i < this.#numQueues; i++) {
        const q = this.#createQueue(i, options, s.rings[i] ?? undefined);
        if (isQueueError(q)) {
          this.#queueError(i, q);
          return;
        }
        queues.push(q);
      }
      this.#active = queues;
      this.device.activate({ memory: this.#memory, queues, interrupt: this.#interrupt, features: f });
    }
    this.#updateIntx();
  }
}

/** The field of virtio_pci_common_cfg that holds byte `off`: [start, width]. */
function commonField(off: number): [number, number] {
  if (off < VIRTIO_PCI_COMMON_MSIX) return [off & ~3, 4];
  if (off < VIRTIO_PCI_COMMON_STATUS) return [off & ~1, 2];
  if (off < VIRTIO_PCI_COMMON_Q_SELECT) return [off, 1];
  if (off < VIRTIO_PCI_COMMON_Q_DESCLO) return [off & ~1, 2];
  return [off & ~3, 4];
}

/** A BusDevice that forwards to one set later (a BAR's region must exist before `super()`). */
function forwardTo(holder: { target?: BusDevice }): BusDevice {
  return {
    read: (offset, data) => holder.target!.read(offset, data),
    write: (offset, data) => holder.target!.write(offset, data),
  };
}
