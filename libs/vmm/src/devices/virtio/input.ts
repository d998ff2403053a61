/**
 * virtio-input as a tablet (virtio 1.2 §5.8): an absolute pointer, so a remote console's
 * mouse lands exactly where the viewer's pointer is, whatever acceleration the guest applies
 * to a relative mouse. Device type 18, no feature bits, two queues: eventq (device → driver,
 * one 8-byte `virtio_input_event` per buffer) and statusq (driver → device: LEDs and the
 * like, which a tablet reads and drops).
 *
 * The configuration space answers the driver's (select, subsel) questions (§5.8.4): the name,
 * the IDs, which event types and codes exist (EV_KEY: the three buttons; EV_ABS: X and Y;
 * EV_REL: the wheel) and each axis's range. The codes are Linux's input event codes, which
 * the spec adopts (§5.8.6).
 *
 * Host events wait in a bounded queue until the driver has posted buffers for them; when the
 * queue is full, the oldest are dropped (a pointer's latest position is what matters).
 */
import type { DeviceMetrics } from '../../bus/device.js';
import { serveQueue, VIRTIO_RING_FEATURES, type VirtioActivation, type VirtioDevice } from './device.js';
import { writeToChain } from './queue.js';

export const VIRTIO_ID_INPUT = 18;
export const VIRTIO_INPUT_EVENTQ = 0;
export const VIRTIO_INPUT_STATUSQ = 1;

// Configuration selectors (§5.8.4).
export const VIRTIO_INPUT_CFG_UNSET = 0x00;
export const VIRTIO_INPUT_CFG_ID_NAME = 0x01;
export const VIRTIO_INPUT_CFG_ID_SERIAL = 0x02;
export const VIRTIO_INPUT_CFG_ID_DEVIDS = 0x03;
export const VIRTIO_INPUT_CFG_PROP_BITS = 0x10;
export const VIRTIO_INPUT_CFG_EV_BITS = 0x11;
export const VIRTIO_INPUT_CFG_ABS_INFO = 0x12;

/** select, subsel, size, reserved[5], then a 128-byte union. */
export const VIRTIO_INPUT_CONFIG_SIZE = 136;
const CFG_SELECT = 0;
const CFG_SUBSEL = 1;
const CFG_SIZE = 2;
const CFG_UNION = 8;

// Linux input event codes (include/uapi/linux/input-event-codes.h).
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_REL = 0x02;
export const EV_ABS = 0x03;
export const SYN_REPORT = 0;
export const BTN_LEFT = 0x110;
export const BTN_RIGHT = 0x111;
export const BTN_MIDDLE = 0x112;
export const ABS_X = 0x00;
export const ABS_Y = 0x01;
export const REL_WHEEL = 0x08;
/** BUS_VIRTUAL (include/uapi/linux/input.h) */
const BUS_VIRTUAL = 0x06;

/** The axes run 0..ABS_MAX, as USB tablets' do. */
export const TABLET_ABS_MAX = 0x7fff;
export const VIRTIO_INPUT_EVENT_SIZE = 8;
export const VIRTIO_INPUT_QUEUE_SIZE = 64;
/** Events waiting for buffers; past this the oldest go. */
export const TABLET_PENDING_LIMIT = 256;

const NAME = 'vmctl tablet';

export interface VirtioTabletMetrics extends DeviceMetrics {
  /** events handed to the driver */
  events: number;
  /** events dropped because the driver posted no buffers for them in time */
  dropped: number;
  /** eventq buffers too short for an event */
  shortBuffers: number;
  /** statusq buffers read and dropped */
  statusBuffers: number;
}

/** The buttons held (queued events are not kept: a snapshot's guest sees the next ones). */
export interface VirtioTabletState {
  buttons: number;
}

export interface VirtioTabletOptions {
  state?: VirtioTabletState;
}

export class VirtioTablet implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_INPUT;
  readonly deviceFeatures = VIRTIO_RING_FEATURES;
  readonly queueMaxSizes: readonly number[] = [VIRTIO_INPUT_QUEUE_SIZE, VIRTIO_INPUT_QUEUE_SIZE];
  readonly configSize = VIRTIO_INPUT_CONFIG_SIZE;
  readonly metrics: VirtioTabletMetrics = { missedReads: 0, missedWrites: 0, events: 0, dropped: 0, shortBuffers: 0, statusBuffers: 0 };

  readonly #config = new Uint8Array(VIRTIO_INPUT_CONFIG_SIZE);
  #active: VirtioActivation | undefined;
  /** pending events, 8 bytes each */
  #pending: Uint8Array[] = [];
  #buttons = 0;

  constructor(options: VirtioTabletOptions = {}) {
    this.#select(VIRTIO_INPUT_CFG_UNSET, 0);
    this.#buttons = (options.state?.buttons ?? 0) & 7;
  }

  /** The driver is up: absolute pointer events reach the guest. */
  get ready(): boolean {
    return this.#active !== undefined && this.#active.queues[VIRTIO_INPUT_EVENTQ] !== undefined;
  }

  /**
   * The pointer at (x, y), each in [0, 1] of the screen, with buttons (bit 0 left, 1 right,
   * 2 middle) and wheel steps (positive: away from the user). False while no driver listens.
   */
  pointer(x: number, y: number, buttons: number, wheel = 0): boolean {
    if (!this.ready) return false;
    const ax = Math.round(clamp01(x) * TABLET_ABS_MAX);
    const ay = Math.round(clamp01(y) * TABLET_ABS_MAX);
    this.#queue(EV_ABS, ABS_X, ax);
    this.#queue(EV_ABS, ABS_Y, ay);
    const changed = (buttons ^ this.#buttons) & 7;
    if (changed & 1) this.#queue(EV_KEY, BTN_LEFT, buttons & 1 ? 1 : 0);
    if (changed & 2) this.#queue(EV_KEY, BTN_RIGHT, buttons & 2 ? 1 : 0);
    if (changed & 4) this.#queue(EV_KEY, BTN_MIDDLE, buttons & 4 ? 1 : 0);
    this.#buttons = buttons & 7;
    const w = Math.trunc(wheel) || 0;
    if (w !== 0) this.#queue(EV_REL, REL_WHEEL, Math.max(-127, Math.min(127, w)));
    this.#queue(EV_SYN, SYN_REPORT, 0);
    this.#deliver();
    return true;
  }

  // --- VirtioDevice ---

  readConfig(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      data[i] = o < VIRTIO_INPUT_CONFIG_SIZE ? this.#config[o]! : 0;
    }
  }

  writeConfig(offset: number, data: Uint8Array): void {
    // §5.8.4: the driver writes select and subsel; everything else is the device's.
    let select = this.#config[CFG_SELECT]!;
    let subsel = this.#config[CFG_SUBSEL]!;
    let touched = false;
    for (let i = 0; i < data.length; i++) {
      const o = offset + i;
      if (o === CFG_SELECT) select = data[i]!;
      else if (o === CFG_SUBSEL) subsel = data[i]!;
      else {
        this.metrics.missedWrites++;
        continue;
      }
      touched = true;
    }
    if (touched) this.#select(select, subsel);
  }

  activate(activation: VirtioActivation): void {
    this.#active = activation;
    this.#deliver();
    this.#drainStatus();
  }

  queueNotify(index: number): void {
    if (index === VIRTIO_INPUT_EVENTQ) this.#deliver();
    else if (index === VIRTIO_INPUT_STATUSQ) this.#drainStatus();
  }

  reset(): void {
    this.#active = undefined;
    this.#pending = [];
    this.#buttons = 0;
    this.#select(VIRTIO_INPUT_CFG_UNSET, 0);
  }

  save(): VirtioTabletState {
    return { buttons: this.#buttons };
  }

  // --- internals ---

  #select(select: number, subsel: number): void {
    const c = this.#config;
    c.fill(0);
    c[CFG_SELECT] = select;
    c[CFG_SUBSEL] = subsel;
    const u = c.subarray(CFG_UNION);
    const v = new DataView(c.buffer, c.byteOffset + CFG_UNION);
    let size = 0;
    switch (select) {
      case VIRTIO_INPUT_CFG_ID_NAME:
        if (subsel === 0) {
          const name = Buffer.from(NAME, 'latin1');
          u.set(name);
          size = name.length;
        }
        break;
      case VIRTIO_INPUT_CFG_ID_DEVIDS:
        if (subsel === 0) {
          v.setUint16(0, BUS_VIRTUAL, true);
          v.setUint16(2, 0x0627, true); // the vendor and product IDs QEMU's tablet reports
          v.setUint16(4, 0x0003, true);
          v.setUint16(6, 1, true);
          size = 8;
        }
        break;
      case VIRTIO_INPUT_CFG_EV_BITS:
        // A bitmap of the codes of event type `subsel`; size = bytes up to the last set bit.
        if (subsel === EV_KEY) size = setBits(u, [BTN_LEFT, BTN_RIGHT, BTN_MIDDLE]);
        else if (subsel === EV_ABS) size = setBits(u, [ABS_X, ABS_Y]);
        else if (subsel === EV_REL) size = setBits(u, [REL_WHEEL]);
        break;
      case VIRTIO_INPUT_CFG_ABS_INFO:
        if (subsel === ABS_X || subsel === ABS_Y) {
          v.setUint32(0, 0, true); // min
          v.setUint32(4, TABLET_ABS_MAX, true); // max
          size = 20; // min, max, fuzz, flat, res
        }
        break;
      default:
        // UNSET, ID_SERIAL, PROP_BITS and unknown selectors: nothing to say (§5.8.6.2: size 0).
        break;
    }
    c[CFG_SIZE] = size;
  }

  #queue(type: number, code: number, value: number): void {
    if (this.#pending.length >= TABLET_PENDING_LIMIT) {
      this.#pending.shift();
      this.metrics.dropped++;
    }
    const e = new Uint8Array(VIRTIO_INPUT_EVENT_SIZE);
    const v = new DataView(e.buffer);
    v.setUint16(0, type, true);
    v.setUint16(2, code, true);
    v.setInt32(4, value, true);
    this.#pending.push(e);
  }

  /** Puts waiting events in the buffers the driver posted, one per buffer (§5.8.6.1). */
  #deliver(): void {
    const a = this.#active;
    if (a === undefined) return;
    serveQueue(
      a,
      VIRTIO_INPUT_EVENTQ,
      (chain) => {
        const written = writeToChain(a.memory, chain, this.#pending[0]!);
        if (written < VIRTIO_INPUT_EVENT_SIZE) {
          // Too short for an event: returned empty, the event waits for the next buffer.
          this.metrics.shortBuffers++;
          return 0;
        }
        this.#pending.shift();
        this.metrics.events++;
        return VIRTIO_INPUT_EVENT_SIZE;
      },
      () => this.#pending.length > 0,
    );
  }

  /** Takes the driver's status events (LEDs and such) and gives the buffers back. */
  #drainStatus(): void {
    const a = this.#active;
    if (a === undefined) return;
    serveQueue(a, VIRTIO_INPUT_STATUSQ, () => {
      this.metrics.statusBuffers++;
      return 0;
    });
  }
}

function clamp01(x: number): number {
  return Number.isFinite(x) ? Math.max(0, Math.min(1, x)) : 0;
}

/** Sets `bits` in the bitmap `u` (bit n = byte n/8, bit n%8); returns the bytes used. */
function setBits(u: Uint8Array, bits: readonly number[]): number {
  let size = 0;
  for (const b of bits) {
    u[b >> 3] |= 1 << (b & 7);
    size = Math.max(size, (b >> 3) + 1);
  }
  return size;
}
