/**
 * virtio-net, the network device (virtio 1.2 §5.1): device type 1, one receive and one
 * transmit queue (receiveq1 = 0, transmitq1 = 1; no control queue: nothing we offer needs
 * one), a MAC address and link status in configuration space, checksum and segmentation
 * offloads both ways, and mergeable receive buffers. Frames go to and come from a
 * `NetBackend` (a tap, `net/tap.ts`) with the 12-byte `virtio_net_hdr` of VERSION_1 in front,
 * so headers pass between guest and tap in the same format.
 *
 * Transmit (transmitq1). A notification drains the queue, at most `budget` chains per turn of
 * the event loop. Each chain's device-readable buffers are written to the backend as views of
 * guest RAM (no copy), except the header: its 12 bytes are copied and checked first (flags the
 * device does not recognise are cleared, §5.1.6.2.2; a gso_type the driver did not negotiate
 * drops the packet, §5.1.6.2.1). With a backend that has a transmit ring (a tap's io_uring,
 * `NetTxRing`) the turn's packets are queued there and written with one system call, and each
 * chain goes back to the driver once its packet is written; otherwise each packet is one
 * writev. When the backend is full the chain is given back to the ring (`Virtqueue.rewind`)
 * and the device waits until it is writable (or until the ring's packets in flight are done).
 * While it drains the ring the driver is asked not to notify (`setNotification`): packets it
 * adds meanwhile are found without a VM exit each.
 *
 * Receive (receiveq1). Nothing is polled: the backend's fd is watched for readability on this
 * thread's loop, and on each wakeup the device reads up to `budget` frames straight into the
 * guest's posted buffers (one readv per frame, views of guest RAM, plus one spare host byte
 * at the end that tells a frame cut short by small buffers). When the guest has posted too
 * few buffers, the device stops watching and waits for the guest's next notification, so the
 * frames wait in the tap (its own queue, where the kernel counts what overflows) instead of
 * being dropped here. The driver is asked to notify new receive buffers only then: while the
 * device has buffers, the backend's readability is all it needs. Frames that cannot be
 * delivered are counted (`metrics`), never silent.
 *
 * Mergeable receive buffers (VIRTIO_NET_F_MRG_RXBUF): offered by default. A guest that takes
 * them posts small buffers (Linux: ~1.5–4 KiB) instead of 64 KiB chains per packet when it
 * also takes the TSO offloads, and the device spreads a big frame over as many as it needs,
 * writing their count into `num_buffers` (§5.1.6.4.1). Since a frame's size is known only
 * once it is read, the device first takes enough buffers for the largest frame the guest
 * can receive (§5.1.6.3), reads, returns the ones used, and gives the rest back with
 * `rewind` at the end of the turn; it never holds a guest buffer between turns, so there is
 * no device state to snapshot beyond the MAC.
 *
 * Guest input is hostile: every chain is checked (header size, buffer directions, sizes,
 * iovec counts), bad ones are returned or dropped and counted, and nothing the guest does
 * makes the device throw. A broken ring goes to the transport (DEVICE_NEEDS_RESET).
 */
import type { DeviceMetrics } from '../../bus/device.js';
import { checkMac, formatMac, parseMac } from './net/mac.js';
import { VmmError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import {
  VIRTIO_ID_NET,
  VIRTIO_RING_FEATURES,
  type VirtioActivation,
  type VirtioDevice,
} from './device.js';
export { parseMac, formatMac } from './net/mac.js';
import { NO_OFFLOADS, type NetBackend, type NetBackendHandler, type NetOffloads, type NetRxRing, type NetTxRing } from './net/backend.js';
import { isQueueError, type DescriptorChain, type QueueError, type Virtqueue } from './queue.js';

// Feature bits (§5.1.3).
export const VIRTIO_NET_F_CSUM = 1n << 0n;
export const VIRTIO_NET_F_GUEST_CSUM = 1n << 1n;
export const VIRTIO_NET_F_MAC = 1n << 5n;
export const VIRTIO_NET_F_GUEST_TSO4 = 1n << 7n;
export const VIRTIO_NET_F_GUEST_TSO6 = 1n << 8n;
export const VIRTIO_NET_F_GUEST_ECN = 1n << 9n;
export const VIRTIO_NET_F_GUEST_UFO = 1n << 10n;
export const VIRTIO_NET_F_HOST_TSO4 = 1n << 11n;
export const VIRTIO_NET_F_HOST_TSO6 = 1n << 12n;
export const VIRTIO_NET_F_HOST_ECN = 1n << 13n;
export const VIRTIO_NET_F_HOST_UFO = 1n << 14n;
export const VIRTIO_NET_F_MRG_RXBUF = 1n << 15n;
export const VIRTIO_NET_F_STATUS = 1n << 16n;

// struct virtio_net_config (§5.1.4): mac[6], then le16 status. Nothing we offer brings the
// fields after it (max_virtqueue_pairs with MQ, mtu with MTU...), so the space ends there.
export const VIRTIO_NET_CFG_MAC = 0;
export const VIRTIO_NET_CFG_STATUS = 6;
export const VIRTIO_NET_CONFIG_SIZE = 8;
export const VIRTIO_NET_S_LINK_UP = 1;

// struct virtio_net_hdr (§5.1.6), VERSION_1 layout: num_buffers is always there.
export const VIRTIO_NET_HDR_SIZE = 12;
export const VIRTIO_NET_HDR_FLAGS = 0;
export const VIRTIO_NET_HDR_GSO_TYPE = 1;
export const VIRTIO_NET_HDR_HDR_LEN = 2;
export const VIRTIO_NET_HDR_GSO_SIZE = 4;
export const VIRTIO_NET_HDR_CSUM_START = 6;
export const VIRTIO_NET_HDR_CSUM_OFFSET = 8;
export const VIRTIO_NET_HDR_NUM_BUFFERS = 10;
export const VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
export const VIRTIO_NET_HDR_F_DATA_VALID = 2;
export const VIRTIO_NET_HDR_F_RSC_INFO = 4;
export const VIRTIO_NET_HDR_GSO_NONE = 0;
export const VIRTIO_NET_HDR_GSO_TCPV4 = 1;
export const VIRTIO_NET_HDR_GSO_UDP = 3;
export const VIRTIO_NET_HDR_GSO_TCPV6 = 4;
export const VIRTIO_NET_HDR_GSO_UDP_L4 = 5;
export const VIRTIO_NET_HDR_GSO_ECN = 0x80;

export const VIRTIO_NET_RX_QUEUE = 0;
export const VIRTIO_NET_TX_QUEUE = 1;
export const VIRTIO_NET_QUEUE_SIZE = 256;
/** Frames (or chains) handled per queue per turn of the event loop (Linux's NAPI weight). */
export const VIRTIO_NET_BUDGET = 64;

/**
 * The largest frame the guest can be handed (§5.1.6.3): 65589 bytes with a GUEST_TSO/UFO
 * offload (Ethernet, IPv6 header, 64 KiB payload); otherwise 1514, plus 4 for an 802.1Q tag,
 * which the tap passes on.
 */
export const VIRTIO_NET_MAX_GSO_FRAME = 65589;
export const VIRTIO_NET_MAX_FRAME = 1518;
/** The largest packet (header included) taken from the guest; TSO packets fit. */
export const VIRTIO_NET_MAX_TX_PACKET = VIRTIO_NET_HDR_SIZE + VIRTIO_NET_MAX_GSO_FRAME;

/** What a snapshot keeps: the queues belong to the transport, and no buffer is held between turns. */
export interface VirtioNetState {
  mac: string;
}

export interface VirtioNetMetrics extends DeviceMetrics {
  txPackets: number;
  /** frame bytes sent, headers excluded */
  txBytes: number;
  /** packets the device refused: header short, device-writable buffers, too long, too many buffers, an offload not negotiated */
  txDropped: number;
  /** packets the backend refused (link down, a frame the kernel rejects) */
  txErrors: number;
  /** times the backend was full and transmission waited */
  txBlocked: number;
  rxPackets: number;
  /** frame bytes delivered, headers excluded */
  rxBytes: number;
  /** frames read but not delivered: longer than the buffers posted, or an offload the guest does not take */
  rxDropped: number;
  /** receive chains returned unused: no room for the header, or too many buffers */
  rxBadBuffers: number;
  /** times the guest's receive buffers ran out (or were too few for the largest frame): reception paused until it posted more */
  rxNoBuffers: number;
  /** backend read failures */
  rxErrors: number;
  /** the backend failed (EPOLLERR on the tap) or refused an ioctl */
  backendErrors: number;
  /** exceptions caught in the device's own callbacks: bugs, reported once */
  faults: number;
}

export interface VirtioNetOptions {
  backend: NetBackend;
  /** "52:54:00:12:34:56" or 6 bytes; a random 52:54:00:xx:xx:xx when absent */
  mac?: string | Uint8Array;
  /** the size of each queue (a power of two), 256 by default */
  queueSize?: number;
  /** offer VIRTIO_NET_F_MRG_RXBUF (default true) */
  mergeableRxBuffers?: boolean;
  /** offer the checksum and segmentation offloads the backend supports (default true) */
  offloads?: boolean;
  /** frames or chains per queue per turn of the event loop */
  budget?: number;
  state?: VirtioNetState;
}

/** What the driver accepted, resolved once at DRIVER_OK. */
interface Session {
  activation: VirtioActivation;
  memory: GuestMemory;
  rx: Virtqueue | undefined;
  tx: Virtqueue | undefined;
  mergeable: boolean;
  /** flag bits kept in transmitted and received headers */
  txFlags: number;
  rxFlags: number;
  /** allowed gso_type values, as a bit mask of 1 << type, and whether the ECN bit may be set */
  txGso: number;
  txEcn: boolean;
  rxGso: number;
  rxEcn: boolean;
  /** receive buffer bytes to gather before reading (mergeable buffers) */
  rxWant: number;
  /** a queue broke: stop until reset */
  broken: boolean;
  rxWaiting: boolean;
  /** the driver is asked to notify receive buffers (only while the device waits for them) */
  rxNotify: boolean;
  rxBackoff: boolean;
  txBlocked: boolean;
  /** packets are in flight in the backend's transmit ring (written later: it was full) */
  txRingWait: boolean;
  txScheduled: boolean;
}

// What #send did with a packet.
/** written (or dropped and counted): the chain goes back now */
const TX_DONE = 0;
/** queued in the backend's transmit ring: the chain goes back when it is written */
const TX_QUEUED = 1;
/** the backend cannot take it now */
const TX_FULL = 2;

/** The offloads of GUEST_* features the driver accepted (what the backend may hand it). */
export function guestOffloadsOf(features: bigint): NetOffloads {
  return {
    csum: (features & VIRTIO_NET_F_GUEST_CSUM) !== 0n,
    tso4: (features & VIRTIO_NET_F_GUEST_TSO4) !== 0n,
    tso6: (features & VIRTIO_NET_F_GUEST_TSO6) !== 0n,
    ecn: (features & VIRTIO_NET_F_GUEST_ECN) !== 0n,
    ufo: (features & VIRTIO_NET_F_GUEST_UFO) !== 0n,
  };
}

/**
 * §5.1.3.1: some features require others (GUEST_TSO4 requires GUEST_CSUM...). A driver MUST
 * NOT accept a feature without the ones it requires (§2.2.1); a device that cannot work with
 * the set MUST fail FEATURES_OK (§2.2.2). Returns whether `features` is consistent.
 */
export function netFeaturesConsistent(features: bigint): boolean {
  const has = (f: bigint) => (features & f) !== 0n;
  const requires = (f: bigint, needs: bigint) => !has(f) || (features & needs) !== 0n;
  return (
    requires(VIRTIO_NET_F_GUEST_TSO4, VIRTIO_NET_F_GUEST_CSUM) &&
    requires(VIRTIO_NET_F_GUEST_TSO6, VIRTIO_NET_F_GUEST_CSUM) &&
    requires(VIRTIO_NET_F_GUEST_UFO, VIRTIO_NET_F_GUEST_CSUM) &&
    requires(VIRTIO_NET_F_GUEST_ECN, VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6) &&
    requires(VIRTIO_NET_F_HOST_TSO4, VIRTIO_NET_F_CSUM) &&
    requires(VIRTIO_NET_F_HOST_TSO6, VIRTIO_NET_F_CSUM) &&
    requires(VIRTIO_NET_F_HOST_UFO, VIRTIO_NET_F_CSUM) &&
    requires(VIRTIO_NET_F_HOST_ECN, VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6)
  );
}

/** 52:54:00 and three random bytes: QEMU's locally administered prefix, which guest tools know. */
function randomMac(): Uint8Array {
  const mac = new Uint8Array(6);
  mac.set([0x52, 0x54, 0x00]);
  globalThis.crypto.getRandomValues(mac.subarray(3));
  return mac;
}

/**
 * Appends zero-copy views of guest RAM [addr, addr+len) to `out`, split where the range
 * crosses from one host chunk of guest RAM to the next (a rare buffer; the split point is
 * found by bisection). Returns the views added, or -1 if part of the range is not RAM
 * (never, for a buffer of a chain `pop()` returned).
 */
export function appendViews(memory: GuestMemory, addr: number, len: number, out: Uint8Array[]): number {
  let added = 0;
  while (len > 0) {
    let v = memory.view(addr, len);
    if (v === undefined) {
      let lo = 1;
      let hi = len - 1;
      let fits = 0;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        if (memory.view(addr, mid) !== undefined) {
          fits = mid;
          lo = mid + 1;
        } else {
          hi = mid - 1;
        }
      }
      if (fits === 0) return -1;
      v = memory.view(addr, fits)!;
    }
    out.push(v);
    added++;
    addr += v.length;
    len -= v.length;
  }
  return added;
}

export class VirtioNet implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_NET;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[];
  readonly configSize = VIRTIO_NET_CONFIG_SIZE;
  readonly metrics: VirtioNetMetrics = {
    missedReads: 0,
    missedWrites: 0,
    txPackets: 0,
    txBytes: 0,
    txDropped: 0,
    txErrors: 0,
    txBlocked: 0,
    rxPackets: 0,
    rxBytes: 0,
    rxDropped: 0,
    rxBadBuffers: 0,
    rxNoBuffers: 0,
    rxErrors: 0,
    backendErrors: 0,
    faults: 0,
  };
  readonly mac: Uint8Array;

  readonly #backend: NetBackend;
  readonly #budget: number;
  readonly #config = new Uint8Array(VIRTIO_NET_CONFIG_SIZE);
  readonly #handler: NetBackendHandler;
  #session: Session | undefined;
  #backendFailed = false;
  #warned = false;

  // Receive buffers taken from the ring during one turn (see the file comment): their heads
  // and capacities, and their device-writable buffers as views, flat, in order.
  #rxHeads = new Uint16Array(0);
  #rxCaps = new Float64Array(0);
  #rxViewCounts = new Uint32Array(0);
  /** with a receive ring: where each chain's views start in #rxViews */
  #rxViewStarts = new Uint32Array(0);
  /** with a receive ring: chains to take per turn, following how many frames the last turn found */
  #rxBatch = 8;
  #rxPushed = false;
  /** chains of the receive ring's batch filled so far (all the first ones) */
  #rxFilled = 0;
  readonly #rxChainScratch: Uint8Array[] = [];
  readonly #rxRingDone = (i: number, bytes: number): void => this.#rxRingDeliver(i, bytes);
  #rxHeld = 0;
  #rxCapacity = 0;
  /** bad chains were returned to the used ring during this turn */
  #rxReturned = false;
  readonly #rxViews: Uint8Array[] = [];
  /** catches the bytes of a frame longer than the buffers, so that it is seen */
  readonly #rxSpare = new Uint8Array(1);
  // Transmit: the header's copy and the iovecs of one packet.
  readonly #txHeader = new Uint8Array(VIRTIO_NET_HDR_SIZE);
  readonly #txViews: Uint8Array[] = [];
  /** frame bytes of each packet queued in the backend's ring, by head */
  #txQueuedBytes = new Float64Array(0);
  /** used elements pushed in this turn (for the interrupt decision) */
  #txPushed = false;
  /** changes at every activation: a ring packet's token is epoch·2^16 + head, so a packet written after a reset is not answered on the new queue */
  #txEpoch = 0;
  readonly #txDone = (head: number, result: number): void => this.#txWritten(head, result);

  constructor(options: VirtioNetOptions) {
    const backend = options.backend;
    this.#backend = backend;
    this.#budget = options.budget ?? VIRTIO_NET_BUDGET;
    const size = options.queueSize ?? VIRTIO_NET_QUEUE_SIZE;
    if (!Number.isInteger(this.#budget) || this.#budget < 1) {
      throw new VmmError('INVALID_CONFIG', `virtio-net budget must be a positive integer, not ${options.budget}`);
    }
    this.queueMaxSizes = [size, size];

    const mac = options.state ? parseMac(options.state.mac) : typeof options.mac === 'string' ? parseMac(options.mac) : (options.mac ?? randomMac());
    checkMac(mac, formatMac(mac));
    this.mac = Uint8Array.from(mac);
    this.#config.set(this.mac, VIRTIO_NET_CFG_MAC);
    // The link is always up: the tap is ours for the device's whole life.
    new DataView(this.#config.buffer).setUint16(VIRTIO_NET_CFG_STATUS, VIRTIO_NET_S_LINK_UP, true);

    let f = VIRTIO_RING_FEATURES | VIRTIO_NET_F_MAC | VIRTIO_NET_F_STATUS;
    if (options.mergeableRxBuffers ?? true) f |= VIRTIO_NET_F_MRG_RXBUF;
    if (options.offloads ?? true) {
      const h = backend.hostOffloads;
      const g = backend.guestOffloads;
      // Offer only consistent sets (§5.1.3.1): nothing that needs a checksum offload without it.
      if (h.csum) {
        f |= VIRTIO_NET_F_CSUM;
        if (h.tso4) f |= VIRTIO_NET_F_HOST_TSO4;
        if (h.tso6) f |= VIRTIO_NET_F_HOST_TSO6;
        if (h.ecn && (h.tso4 || h.tso6)) f |= VIRTIO_NET_F_HOST_ECN;
        if (h.ufo) f |= VIRTIO_NET_F_HOST_UFO;
      }
      if (g.csum) {
        f |= VIRTIO_NET_F_GUEST_CSUM;
        if (g.tso4) f |= VIRTIO_NET_F_GUEST_TSO4;
        if (g.tso6) f |= VIRTIO_NET_F_GUEST_TSO6;
        if (g.ecn && (g.tso4 || g.tso6)) f |= VIRTIO_NET_F_GUEST_ECN;
        if (g.ufo) f |= VIRTIO_NET_F_GUEST_UFO;
      }
    }
    this.deviceFeatures = f;

    this.#handler = {
      readable: () => this.#guard(() => this.#receive()),
      writable: () => this.#guard(() => this.#onWritable()),
      failed: (errno) => this.#guard(() => this.#onBackendFailed(errno)),
    };
    backend.attach(this.#handler);
    if (backend.txRing !== undefined) backend.txRing.onLateDone = (head, result) => this.#guard(() => this.#txLateDone(head, result));
  }

  // --- VirtioDevice ---

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) data[i] = this.#config[offset + i] ?? 0;
  }

  writeConfig(_offset: number, _data: Uint8Array): void {
    // §5.1.4.2: the driver MUST NOT write any device configuration field.
    this.metrics.missedWrites++;
  }

  acceptFeatures(features: bigint): boolean {
    return netFeaturesConsistent(features);
  }

  activate(activation: VirtioActivation): void {
    const f = activation.features;
    const has = (bit: bigint) => (f & bit) !== 0n;
    const rx = activation.queues[VIRTIO_NET_RX_QUEUE];
    const tx = activation.queues[VIRTIO_NET_TX_QUEUE];
    const guestGso = has(VIRTIO_NET_F_GUEST_TSO4) || has(VIRTIO_NET_F_GUEST_TSO6) || has(VIRTIO_NET_F_GUEST_UFO);
    this.#session = {
      activation,
      memory: activation.memory,
      rx,
      tx,
      mergeable: has(VIRTIO_NET_F_MRG_RXBUF),
      // §5.1.6.2.2: the device MUST ignore flag bits it does not recognise; without CSUM the
      // driver MUST set flags to zero (§5.1.6.2.1), so none is recognised then.
      txFlags: has(VIRTIO_NET_F_CSUM) ? VIRTIO_NET_HDR_F_NEEDS_CSUM : 0,
      // §5.1.6.4.1: without GUEST_CSUM the device MUST set flags to zero; RSC_INFO needs RSC_EXT.
      rxFlags: has(VIRTIO_NET_F_GUEST_CSUM) ? VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID : 0,
      txGso: gsoMask(has(VIRTIO_NET_F_HOST_TSO4), has(VIRTIO_NET_F_HOST_TSO6), has(VIRTIO_NET_F_HOST_UFO)),
      txEcn: has(VIRTIO_NET_F_HOST_ECN),
      rxGso: gsoMask(has(VIRTIO_NET_F_GUEST_TSO4), has(VIRTIO_NET_F_GUEST_TSO6), has(VIRTIO_NET_F_GUEST_UFO)),
      rxEcn: has(VIRTIO_NET_F_GUEST_ECN),
      rxWant: VIRTIO_NET_HDR_SIZE + (guestGso ? VIRTIO_NET_MAX_GSO_FRAME : VIRTIO_NET_MAX_FRAME),
      broken: false,
      rxWaiting: false,
      rxNotify: true,
      rxBackoff: false,
      txBlocked: false,
      txRingWait: false,
      txScheduled: false,
    };
    if (tx !== undefined && this.#txQueuedBytes.length < tx.size) this.#txQueuedBytes = new Float64Array(tx.size);
    this.#txEpoch = (this.#txEpoch + 1) & 0xffff;
    if (rx !== undefined && this.#rxHeads.length < rx.size) {
      this.#rxHeads = new Uint16Array(rx.size);
      this.#rxCaps = new Float64Array(rx.size);
      this.#rxViewCounts = new Uint32Array(rx.size);
      this.#rxViewStarts = new Uint32Array(rx.size);
    }
    this.#rxHeld = 0;
    this.#rxCapacity = 0;
    this.#rxViews.length = 0;
    // The backend's readability drives reception: the driver need not notify new receive
    // buffers (a VM exit each) until the device runs out of them.
    this.#rxNotifications(this.#session, false);
    // The tap hands the guest partial checksums and GSO frames only if it takes them
    // (TUNSETOFFLOAD mirrors the GUEST_* features).
    this.#setBackendOffloads(guestOffloadsOf(f));
    this.#updateInterest();
    // Packets queued before DRIVER_OK wait for a notification that may already have come.
    this.#guard(() => this.#transmit());
  }

  queueNotify(index: number): void {
    const s = this.#session;
    if (s === undefined || s.broken) return;
    if (index === VIRTIO_NET_TX_QUEUE) {
      // While the backend is full, its writability (not the driver) says when to go on.
      if (!s.txBlocked) this.#guard(() => this.#transmit());
    } else if (index === VIRTIO_NET_RX_QUEUE && s.rxWaiting) {
      // New receive buffers: read what waited for them, and watch the backend again.
      s.rxWaiting = false;
      this.#guard(() => this.#receive());
      this.#updateInterest();
    }
  }

  reset(): void {
    this.#stop();
  }

  save(): VirtioNetState {
    return { mac: formatMac(this.mac) };
  }

  /**
   * Lets go of the backend (which stays open: its owner closes it). Call when the machine goes
   * away, before guest RAM does: packets still in the transmit ring are waited for (a second
   * at most), since the kernel reads them from guest RAM.
   */
  close(): void {
    this.#stop();
    this.#backend.txRing?.drainSync(1000);
    this.#backend.detach();
  }

  // --- receive ---

  /**
   * Reads up to `budget` frames into the guest's receive buffers. Runs when the backend is
   * readable (level-triggered: if frames remain after the budget, the next turn comes back).
   */
  #receive(): void {
    const s = this.#session;
    const q = s?.rx;
    if (s === undefined || q === undefined || s.broken || s.rxWaiting || s.rxBackoff) return;
    const backend = this.#backend;
    const ring = backend.rxRing;
    if (ring !== undefined && this.#receiveRing(s, q, ring)) return;
    const views = this.#rxViews;
    let pushed = false;
    this.#rxReturned = false;
    for (let frames = 0; frames < this.#budget; frames++) {
      const gathered = this.#gather(s, q);
      if (gathered === 'broken') {
        this.#rxHeld = 0;
        this.#rxCapacity = 0;
        views.length = 0;
        return;
      }
      if (gathered === 'wait') {
        // Too few buffers for a frame: wait for the guest to post more (its notification).
        s.rxWaiting = true;
        this.metrics.rxNoBuffers++;
        break;
      }
      views.push(this.#rxSpare);
      let n: number;
      try {
        n = backend.readv(views);
      } catch (err) {
        views.pop();
        this.#rxFailed(s, err);
        break;
      }
      views.pop();
      if (n < 0) break; // nothing waiting
      if (n > this.#rxCapacity || n < VIRTIO_NET_HDR_SIZE) {
        // Longer than every buffer we hold (the spare byte took the rest), or no header: the
        // frame is lost, the buffers are used again for the next.
        this.metrics.rxDropped++;
        continue;
      }
      if (!this.#deliver(s, q, n)) {
        this.metrics.rxDropped++;
        continue;
      }
      pushed = true;
    }
    // Buffers taken but not filled go back to the ring: none is held between turns.
    if (this.#rxHeld > 0) {
      q.rewind(this.#rxHeld);
      this.#rxHeld = 0;
      this.#rxCapacity = 0;
      views.length = 0;
    }
    if ((pushed || this.#rxReturned) && q.needsNotification()) s.activation.interrupt.notifyQueue(VIRTIO_NET_RX_QUEUE);
    if (s.rxWaiting) this.#updateInterest();
    else this.#rxNotifications(s, false);
  }

  /**
   * Reception through the backend's receive ring: takes up to #rxBatch chains, each able to
   * hold the largest frame the guest can get (every chain without MRG_RXBUF, §5.1.6.3.2;
   * with it, when the driver's buffers are that large), and reads as many frames as wait into
   * them with one call; the chains that got none go back to the ring. False when this turn
   * must take the per-frame path instead (mergeable buffers smaller than a frame).
   */
  #receiveRing(s: Session, q: Virtqueue, ring: NetRxRing): boolean {
    const views = this.#rxViews;
    const max = this.#backend.maxBuffers - 1; // one iovec for the ring's spare byte
    const want = Math.min(this.#rxBatch, ring.capacity, this.#budget, q.size);
    views.length = 0;
    this.#rxPushed = false;
    this.#rxReturned = false;
    let taken = 0;
    while (taken < want) {
      const c = q.pop();
      if (c === undefined) {
        if (taken > 0) break;
        if (!s.rxNotify) {
          // Ask for a notification when the driver adds buffers, then look once more (§2.7.10).
          this.#rxNotifications(s, true);
          continue;
        }
        s.rxWaiting = true;
        this.metrics.rxNoBuffers++;
        break;
      }
      if (isQueueError(c)) {
        if (taken > 0) q.rewind(taken);
        views.length = 0;
        this.#queueBroken(s, VIRTIO_NET_RX_QUEUE, c);
        return true;
      }
      const before = views.length;
      const cap = this.#rxChainViews(s.memory, c, max);
      if (cap < VIRTIO_NET_HDR_SIZE || (s.mergeable && cap < s.rxWant)) {
        views.length = before;
        if (taken > 0 || cap >= VIRTIO_NET_HDR_SIZE) {
          // Read with the chains taken (this one is read next turn), or, for mergeable
          // buffers smaller than a frame, on the per-frame path that spreads frames over them.
          q.rewind(1);
          if (taken > 0) break;
          return false;
        }
        // No room for a header (§5.1.6.3.1), or more buffers than one read takes: returned unused.
        q.pushUsed(c.head, 0);
        this.metrics.rxBadBuffers++;
        this.#rxReturned = true;
        continue;
      }
      const chain = this.#rxChainScratch;
      chain.length = 0;
      for (let v = before; v < views.length; v++) chain.push(views[v]!);
      if (!ring.queue(taken, chain)) {
        views.length = before;
        q.rewind(1);
        break;
      }
      this.#rxHeads[taken] = c.head;
      this.#rxCaps[taken] = cap;
      this.#rxViewStarts[taken] = before;
      this.#rxViewCounts[taken] = views.length - before;
      taken++;
    }
    if (taken > 0) {
      this.#rxFilled = 0;
      ring.flush(this.#rxRingDone);
      // The chains filled are the first ones (see #rxRingDeliver); the others go back.
      const n = this.#rxFilled;
      if (n < taken) q.rewind(taken - n);
      // As many chains next turn as there were frames this turn (twice, when all were full).
      this.#rxBatch = n === taken ? Math.min(2 * taken, VIRTIO_NET_QUEUE_SIZE) : Math.max(4, n + 1);
    }
    views.length = 0;
    if ((this.#rxPushed || this.#rxReturned) && q.needsNotification()) s.activation.interrupt.notifyQueue(VIRTIO_NET_RX_QUEUE);
    if (s.rxWaiting) this.#updateInterest();
    else this.#rxNotifications(s, false);
    return true;
  }

  /**
   * Chain `j` of the receive ring's batch got a frame of `n` bytes (header included). The
   * calls come in chain order; when an earlier chain got none (the frame arrived while the
   * batch ran), the frame moves down into the first chain not filled, so that the chains
   * filled are always the first ones and the rest can go back to the ring.
   */
  #rxRingDeliver(j: number, n: number): void {
    const s = this.#session!;
    const q = s.rx!;
    const views = this.#rxViews;
    let i = j;
    const first = this.#rxFilled;
    if (j > first && n <= this.#rxCaps[first]!) {
      copyAcross(views, this.#rxViewStarts[j]!, this.#rxViewCounts[j]!, this.#rxViewStarts[first]!, this.#rxViewCounts[first]!, n);
      i = first;
    } else {
      // It cannot move (a chain too small for it; never for the buffers a driver posts):
      // the chains before it go back empty.
      for (let k = first; k < j; k++) {
        q.pushUsed(this.#rxHeads[k]!, 0);
        this.metrics.rxBadBuffers++;
      }
    }
    this.#rxFilled = i + 1;
    const start = this.#rxViewStarts[i]!;
    const count = this.#rxViewCounts[i]!;
    const head = this.#rxHeads[i]!;
    // Longer than the chain (the spare byte took the rest; never for a frame the guest can
    // get), or a gso_type the guest did not negotiate: dropped, the chain returned empty.
    if (n > this.#rxCaps[i]! || !gsoAllowed(chainHeaderByte(views, start, count, VIRTIO_NET_HDR_GSO_TYPE), s.rxGso, s.rxEcn)) {
      this.metrics.rxDropped++;
      q.pushUsed(head, 0);
      this.#rxPushed = true;
      return;
    }
    setChainHeaderByte(views, start, count, VIRTIO_NET_HDR_FLAGS, chainHeaderByte(views, start, count, VIRTIO_NET_HDR_FLAGS) & s.rxFlags);
    // §5.1.6.4.1: num_buffers is 1: the frame is in one chain.
    setChainHeaderByte(views, start, count, VIRTIO_NET_HDR_NUM_BUFFERS, 1);
    setChainHeaderByte(views, start, count, VIRTIO_NET_HDR_NUM_BUFFERS + 1, 0);
    q.pushUsed(head, n);
    this.metrics.rxPackets++;
    this.metrics.rxBytes += n - VIRTIO_NET_HDR_SIZE;
    this.#rxPushed = true;
  }

  /**
   * Takes receive chains until the device holds room for the largest frame the guest can get
   * (mergeable buffers), or one chain (without them: §5.1.6.3.2, a frame uses a single
   * chain). 'read': read now. 'wait': too few buffers posted, wait for more. 'broken': the
   * ring is broken.
   */
  #gather(s: Session, q: Virtqueue): 'read' | 'wait' | 'broken' {
    const max = this.#backend.maxBuffers - 1; // one iovec for the spare byte
    const views = this.#rxViews;
    while (this.#rxHeld === 0 || (s.mergeable && this.#rxCapacity < s.rxWant)) {
      const c = q.pop();
      if (c === undefined) {
        // Short of room, but the ring may get more. Only when the device holds every buffer
        // the ring can has it no choice but to read with those (a longer frame is dropped).
        if (this.#rxHeld === q.size) break;
        if (!s.rxNotify) {
          // Ask for a notification when the driver adds buffers, then look once more: one
          // added while notifications were off brings none (§2.7.10).
          this.#rxNotifications(s, true);
          continue;
        }
        return 'wait';
      }
      if (isQueueError(c)) {
        this.#queueBroken(s, VIRTIO_NET_RX_QUEUE, c);
        return 'broken';
      }
      const before = views.length;
      const cap = this.#rxChainViews(s.memory, c, max - before);
      if (cap < VIRTIO_NET_HDR_SIZE) {
        views.length = before;
        if (this.#rxHeld > 0) {
          // It does not fit in this readv's iovecs, or it is bad: it waits until the held
          // chains are used, so that the ones given back at the end of the turn are always
          // the last taken. The frame is read with the room held.
          q.rewind(1);
          break;
        }
        // No room for a header (§5.1.6.3.1: each buffer MUST hold one), or more buffers than
        // one readv takes: returned unused.
        q.pushUsed(c.head, 0);
        this.metrics.rxBadBuffers++;
        this.#rxReturned = true;
        continue;
      }
      const i = this.#rxHeld++;
      this.#rxHeads[i] = c.head;
      this.#rxCaps[i] = cap;
      this.#rxViewCounts[i] = views.length - before;
      this.#rxCapacity += cap;
    }
    return 'read';
  }

  /**
   * Appends views of the chain's device-writable buffers (device-readable ones carry nothing
   * for us and are skipped). Returns their bytes, or -2 when they need more than `room`
   * iovecs (the views appended are the caller's to remove).
   */
  #rxChainViews(memory: GuestMemory, c: DescriptorChain, room: number): number {
    const views = this.#rxViews;
    const start = views.length;
    let bytes = 0;
    for (let i = 0; i < c.length; i++) {
      if (!c.writable(i)) continue;
      const added = appendViews(memory, c.addr(i), c.len(i), views);
      if (added < 0 || views.length - start > room) return -2;
      bytes += c.len(i);
    }
    return bytes;
  }

  /**
   * A frame of `n` bytes (header included) is in the held buffers: checks and completes its
   * header, and returns the chains it fills to the driver. False when it must be dropped.
   */
  #deliver(s: Session, q: Virtqueue, n: number): boolean {
    const views = this.#rxViews;
    // §5.1.6.4.1: no gso_type the guest did not negotiate (frames queued in the tap before a
    // renegotiation could carry one).
    if (!gsoAllowed(headerByte(views, VIRTIO_NET_HDR_GSO_TYPE), s.rxGso, s.rxEcn)) return false;
    setHeaderByte(views, VIRTIO_NET_HDR_FLAGS, headerByte(views, VIRTIO_NET_HDR_FLAGS) & s.rxFlags);
    // The chains the frame fills: all but the last completely (§5.1.6.4.1).
    let chains = 0;
    let viewsUsed = 0;
    for (let left = n; left > 0; chains++) {
      left -= this.#rxCaps[chains]!;
      viewsUsed += this.#rxViewCounts[chains]!;
    }
    // §5.1.6.4.1: num_buffers is the number of buffers the packet is spread over; 1 without
    // MRG_RXBUF. Written before the used ring shows any of them.
    setHeaderByte(views, VIRTIO_NET_HDR_NUM_BUFFERS, chains & 0xff);
    setHeaderByte(views, VIRTIO_NET_HDR_NUM_BUFFERS + 1, chains >>> 8);
    let left = n;
    for (let i = 0; i < chains; i++) {
      const len = Math.min(left, this.#rxCaps[i]!);
      q.pushUsed(this.#rxHeads[i]!, len);
      left -= len;
    }
    this.metrics.rxPackets++;
    this.metrics.rxBytes += n - VIRTIO_NET_HDR_SIZE;
    // Drop the chains used from the front of the held ones.
    const held = this.#rxHeld - chains;
    this.#rxHeads.copyWithin(0, chains, this.#rxHeld);
    this.#rxCaps.copyWithin(0, chains, this.#rxHeld);
    this.#rxViewCounts.copyWithin(0, chains, this.#rxHeld);
    this.#rxHeld = held;
    this.#rxCapacity = 0;
    for (let i = 0; i < held; i++) this.#rxCapacity += this.#rxCaps[i]!;
    views.copyWithin(0, viewsUsed);
    views.length -= viewsUsed;
    return true;
  }

  #rxNotifications(s: Session | undefined, on: boolean): void {
    if (s?.rx === undefined || s.rxNotify === on) return;
    s.rxNotify = on;
    s.rx.setNotification(on);
  }

  #rxFailed(s: Session, err: unknown): void {
    // A read that fails other than "nothing waiting" (the tap is going away): count it and
    // stop reading for a while rather than spin on a level-triggered watch.
    this.metrics.rxErrors++;
    this.#warnOnce(`virtio-net: backend read failed: ${(err as Error).message ?? err}`);
    s.rxBackoff = true;
    this.#updateInterest();
    setTimeout(() => {
      if (this.#session !== s) return;
      s.rxBackoff = false;
      this.#updateInterest();
    }, 100).unref();
  }

  // --- transmit ---

  /** Sends up to `budget` packets; more wait for the next turn. */
  #transmit(): void {
    const s = this.#session;
    const q = s?.tx;
    if (s === undefined || q === undefined || s.broken || s.txBlocked || s.txRingWait) return;
    const ring = this.#backend.txRing;
    this.#txPushed = false;
    // No notifications while the device drains the ring: the driver adds packets without a
    // VM exit each, and the device finds them in this loop.
    q.setNotification(false);
    for (let n = 0; n < this.#budget; n++) {
      let c = q.pop();
      if (c === undefined) {
        // Drained: notifications on again, then one more look, since a packet added while
        // they were off brings none (§2.7.10).
        q.setNotification(true);
        c = q.pop();
        if (c === undefined) break;
        q.setNotification(false);
      }
      if (isQueueError(c)) {
        this.#queueBroken(s, VIRTIO_NET_TX_QUEUE, c);
        return;
      }
      let r = this.#send(s, c, ring);
      if (r === TX_FULL && ring !== undefined && ring.flush(this.#txDone) === 0) r = this.#send(s, c, ring);
      if (r === TX_FULL) {
        // The backend is full: the chain goes back to the ring until it is writable (or, with
        // a transmit ring, until what it holds is written).
        q.rewind(1);
        this.metrics.txBlocked++;
        if (ring !== undefined) {
          s.txRingWait = true;
        } else {
          s.txBlocked = true;
          this.#updateInterest();
        }
        break;
      }
      if (r === TX_DONE) {
        // §2.7.8: used length is what the device wrote into the chain: nothing.
        q.pushUsed(c.head, 0);
        this.#txPushed = true;
      }
      if (n === this.#budget - 1 && !s.txScheduled) {
        s.txScheduled = true;
        setImmediate(() => {
          s.txScheduled = false;
          if (this.#session === s) this.#guard(() => this.#transmit());
        });
      }
    }
    if (ring !== undefined && ring.flush(this.#txDone) > 0) s.txRingWait = true;
    if (this.#txPushed && q.needsNotification()) s.activation.interrupt.notifyQueue(VIRTIO_NET_TX_QUEUE);
  }

  /** A packet of the transmit ring was written (or refused: -errno): its chain goes back. */
  #txWritten(token: number, result: number): void {
    const s = this.#session;
    const q = s?.tx;
    const head = token & 0xffff;
    // A packet from before a reset: its chain is no longer ours to return.
    if (q === undefined || token >>> 16 !== this.#txEpoch || head >= q.size) return;
    if (result < 0) {
      this.metrics.txErrors++;
    } else {
      this.metrics.txPackets++;
      this.metrics.txBytes += this.#txQueuedBytes[head]!;
    }
    q.pushUsed(head, 0);
    this.#txPushed = true;
  }

  /** The transmit ring wrote a packet after the turn that queued it (the backend had been full). */
  #txLateDone(token: number, result: number): void {
    this.#txPushed = false;
    this.#txWritten(token, result);
    const s = this.#session;
    const q = s?.tx;
    if (s === undefined || q === undefined) return;
    if (this.#txPushed && q.needsNotification()) s.activation.interrupt.notifyQueue(VIRTIO_NET_TX_QUEUE);
    if (s.txRingWait && (this.#backend.txRing?.inFlight ?? 0) === 0) {
      s.txRingWait = false;
      this.#transmit();
    }
  }

  /** Sends (or queues) one packet, or drops it (counted). */
  #send(s: Session, c: DescriptorChain, ring: NetTxRing | undefined): number {
    const m = this.metrics;
    // A packet is the device-readable header and frame (§5.1.6.2): nothing for us to write.
    if (c.writableBytes > 0 || c.readableBytes < VIRTIO_NET_HDR_SIZE || c.readableBytes > VIRTIO_NET_MAX_TX_PACKET) {
      m.txDropped++;
      return TX_DONE;
    }
    const memory = s.memory;
    const hdr = this.#txHeader;
    const views = this.#txViews;
    views.length = 0;
    views.push(hdr);
    // The header is copied (it may be split across buffers, and is checked), the rest is sent in place.
    let copied = 0;
    for (let i = 0; i < c.length; i++) {
      const addr = c.addr(i);
      const len = c.len(i);
      let skip = 0;
      if (copied < VIRTIO_NET_HDR_SIZE) {
        skip = Math.min(len, VIRTIO_NET_HDR_SIZE - copied);
        const v = memory.view(addr, skip);
        if (v !== undefined) hdr.set(v, copied);
        else memory.read(addr, hdr.subarray(copied, copied + skip));
        copied += skip;
      }
      if (skip < len && appendViews(memory, addr + skip, len - skip, views) < 0) {
        m.txDropped++;
        return TX_DONE;
      }
    }
    if (views.length > this.#backend.maxBuffers) {
      m.txDropped++;
      return TX_DONE;
    }
    // §5.1.6.2.2: flag bits the device does not recognise are ignored (cleared, so the kernel
    // never sees one the driver had no right to set); §5.1.6.2.1: no gso_type the driver did
    // not negotiate.
    hdr[VIRTIO_NET_HDR_FLAGS] &= s.txFlags;
    if (!gsoAllowed(hdr[VIRTIO_NET_HDR_GSO_TYPE]!, s.txGso, s.txEcn)) {
      m.txDropped++;
      return TX_DONE;
    }
    // §5.1.6.2.1: num_buffers is unused on transmit (the driver sets it to zero).
    hdr[VIRTIO_NET_HDR_NUM_BUFFERS] = 0;
    hdr[VIRTIO_NET_HDR_NUM_BUFFERS + 1] = 0;
    if (ring !== undefined) {
      if (!ring.queue(this.#txEpoch * 0x10000 + c.head, views)) return TX_FULL;
      this.#txQueuedBytes[c.head] = c.readableBytes - VIRTIO_NET_HDR_SIZE;
      return TX_QUEUED;
    }
    let n: number;
    try {
      n = this.#backend.writev(views);
    } catch {
      // Refused by the backend: the link is down (EIO), the kernel rejects the frame (EINVAL:
      // shorter than an Ethernet header, a bad GSO header...). Like a NIC, drop it.
      m.txErrors++;
      return TX_DONE;
    }
    if (n < 0) return TX_FULL;
    m.txPackets++;
    m.txBytes += c.readableBytes - VIRTIO_NET_HDR_SIZE;
    return TX_DONE;
  }

  #onWritable(): void {
    const s = this.#session;
    if (s === undefined || !s.txBlocked) return;
    s.txBlocked = false;
    this.#updateInterest();
    this.#transmit();
  }

  // --- state ---

  #queueBroken(s: Session, index: number, err: QueueError): void {
    // The transport marks the device DEVICE_NEEDS_RESET; nothing moves until the driver resets it.
    s.broken = true;
    this.#updateInterest();
    s.activation.interrupt.queueError(index, err);
  }

  #onBackendFailed(errno: number): void {
    this.metrics.backendErrors++;
    this.#backendFailed = true;
    this.#warnOnce(`virtio-net: the backend failed (errno ${errno}); the link is dead`);
  }

  #stop(): void {
    if (this.#session === undefined) return;
    this.#session = undefined;
    // The kernel may still read packets in flight from guest RAM the driver now owns again.
    this.#backend.txRing?.drainSync(100);
    this.#rxHeld = 0;
    this.#rxCapacity = 0;
    this.#rxViews.length = 0;
    this.#updateInterest();
    this.#setBackendOffloads(NO_OFFLOADS);
  }

  #updateInterest(): void {
    const s = this.#session;
    const read = s !== undefined && !s.broken && s.rx !== undefined && !s.rxWaiting && !s.rxBackoff && !this.#backendFailed;
    const write = s !== undefined && !s.broken && s.txBlocked && !this.#backendFailed;
    try {
      this.#backend.setInterest(read, write);
    } catch (err) {
      this.metrics.backendErrors++;
      this.#warnOnce(`virtio-net: cannot watch the backend: ${(err as Error).message ?? err}`);
    }
  }

  #setBackendOffloads(o: Readonly<NetOffloads>): void {
    try {
      this.#backend.setOffloads(o);
    } catch (err) {
      this.metrics.backendErrors++;
      this.#warnOnce(`virtio-net: cannot set the backend's offloads: ${(err as Error).message ?? err}`);
    }
  }

  /** Runs a callback from the backend or a timer: an exception there would end the VMM. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.metrics.faults++;
      this.#warnOnce(`virtio-net: ${(err as Error).stack ?? err}`);
    }
  }

  #warnOnce(message: string): void {
    if (this.#warned) return;
    this.#warned = true;
    process.emitWarning(message);
  }
}

/** 1 << gso_type for the types a side negotiated. */
function gsoMask(tso4: boolean, tso6: boolean, ufo: boolean): number {
  return (
    (1 << VIRTIO_NET_HDR_GSO_NONE) |
    (tso4 ? 1 << VIRTIO_NET_HDR_GSO_TCPV4 : 0) |
    (tso6 ? 1 << VIRTIO_NET_HDR_GSO_TCPV6 : 0) |
    (ufo ? 1 << VIRTIO_NET_HDR_GSO_UDP : 0)
  );
}

function gsoAllowed(gsoType: number, mask: number, ecn: boolean): boolean {
  const base = gsoType & ~VIRTIO_NET_HDR_GSO_ECN;
  if (base > 7 || (mask & (1 << base)) === 0) return false;
  // The ECN bit only qualifies a TCP segmentation request of a side that negotiated ECN.
  return (gsoType & VIRTIO_NET_HDR_GSO_ECN) === 0 || (ecn && base !== VIRTIO_NET_HDR_GSO_NONE);
}

/** Byte `off` of the header at the start of `views` (in the first, unless the driver split it). */
function headerByte(views: readonly Uint8Array[], off: number): number {
  for (let i = 0; i < views.length; i++) {
    const v = views[i]!;
    if (off < v.length) return v[off]!;
    off -= v.length;
  }
  return 0;
}

function setHeaderByte(views: readonly Uint8Array[], off: number, value: number): void {
  for (let i = 0; i < views.length; i++) {
    const v = views[i]!;
    if (off < v.length) {
      v[off] = value;
      return;
    }
    off -= v.length;
  }
}

/** Byte `off` of the header at the start of views [start, start+count). */
function chainHeaderByte(views: readonly Uint8Array[], start: number, count: number, off: number): number {
  for (let i = start; i < start + count; i++) {
    const v = views[i]!;
    if (off < v.length) return v[off]!;
    off -= v.length;
  }
  return 0;
}

function setChainHeaderByte(views: readonly Uint8Array[], start: number, count: number, off: number, value: number): void {
  for (let i = start; i < start + count; i++) {
    const v = views[i]!;
    if (off < v.length) {
      v[off] = value;
      return;
    }
    off -= v.length;
  }
}

/** Copies `n` bytes from the views [from, from+fromCount) to the views [to, to+toCount). */
function copyAcross(views: readonly Uint8Array[], from: number, fromCount: number, to: number, toCount: number, n: number): void {
  let fi = from;
  let fo = 0;
  let ti = to;
  let to_ = 0;
  while (n > 0 && fi < from + fromCount && ti < to + toCount) {
    const src = views[fi]!;
    const dst = views[ti]!;
    const len = Math.min(n, src.length - fo, dst.length - to_);
    dst.set(src.subarray(fo, fo + len), to_);
    n -= len;
    fo += len;
    to_ += len;
    if (fo === src.length) {
      fi++;
      fo = 0;
    }
    if (to_ === dst.length) {
      ti++;
      to_ = 0;
    }
  }
}
