/**
 * virtio-console (virtio 1.2 §5.3): device type 3 with one port, port 0 — receiveq (queue 0,
 * host → guest) and transmitq (queue 1, guest → host). No VIRTIO_CONSOLE_F_MULTIPORT, so no
 * control queues. Offered: VIRTIO_CONSOLE_F_EMERG_WRITE always, VIRTIO_CONSOLE_F_SIZE when
 * the owner gives a size.
 *
 * It plugs in where the 16550 does: `output(bytes)` gets what the guest writes, and host
 * input goes in through `input(bytes)`, which, like `Uart16550.receive()`, takes what it has
 * room for and returns the count; the caller keeps the rest and offers it again when
 * `rxSpace` fires. Input waits in a bounded buffer (64 KiB by default) until the guest posts
 * receive buffers, and is delivered into as many of them as it fills.
 *
 * Guest output has no back-pressure: each transmit buffer is copied out and handed on at
 * once (the owner bounds what it keeps, as the console socket does). Copying is bounded per
 * buffer (VIRTIO_CONSOLE_TX_MAX_BYTES: a chain may alias gigabytes of guest RAM), and per
 * event-loop turn (a queue's worth of buffers).
 */
import type { DeviceMetrics } from '../../bus/device.js';
import { VmmError } from '../../errors.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import {
  serveQueue,
  VIRTIO_ID_CONSOLE,
  VIRTIO_RING_FEATURES,
  type VirtioActivation,
  type VirtioDevice,
} from './device.js';
import { isQueueError, readFromChain, writeToChain, type DescriptorChain } from './queue.js';

// Feature bits (§5.3.3).
export const VIRTIO_CONSOLE_F_SIZE = 1n << 0n;
export const VIRTIO_CONSOLE_F_MULTIPORT = 1n << 1n;
export const VIRTIO_CONSOLE_F_EMERG_WRITE = 1n << 2n;

// struct virtio_console_config (§5.3.4, virtio 1.2 and Linux's uapi: cols first, then rows).
export const VIRTIO_CONSOLE_CFG_COLS = 0; // le16
export const VIRTIO_CONSOLE_CFG_ROWS = 2; // le16
export const VIRTIO_CONSOLE_CFG_MAX_NR_PORTS = 4; // le32
export const VIRTIO_CONSOLE_CFG_EMERG_WR = 8; // le32
export const VIRTIO_CONSOLE_CONFIG_SIZE = 12;

/** Queue indices of port 0 (§5.3.2). */
export const VIRTIO_CONSOLE_RECEIVEQ = 0;
export const VIRTIO_CONSOLE_TRANSMITQ = 1;

export const VIRTIO_CONSOLE_QUEUE_SIZE = 128;
/** Host input kept for the guest by default. */
export const VIRTIO_CONSOLE_RX_BUFFER_BYTES = 64 * 1024;
/** The most bytes taken from one transmit buffer; the rest is dropped and counted. */
export const VIRTIO_CONSOLE_TX_MAX_BYTES = 64 * 1024;

export interface VirtioConsoleState {
  /** host input not yet delivered, base64 */
  pending: string;
  cols: number;
  rows: number;
}

export interface VirtioConsoleMetrics extends DeviceMetrics {
  /** bytes delivered to the guest */
  rxBytes: number;
  /** bytes the guest wrote (transmitq and emerg_wr) */
  txBytes: number;
  /** transmit bytes dropped past VIRTIO_CONSOLE_TX_MAX_BYTES in one buffer */
  txDropped: number;
  /** device-readable buffers in the receiveq and device-writable ones in the transmitq, skipped (§5.3.6.1) */
  wrongDirection: number;
  /** characters written to emerg_wr */
  emergencyWrites: number;
}

export interface VirtioConsoleOptions {
  /** what the guest writes; the array is the callee's to keep */
  output: (bytes: Uint8Array) => void;
  /** called when `input()` would take bytes again after it turned some away */
  rxSpace?: () => void;
  /** host input kept for the guest at most (default 64 KiB) */
  rxBufferBytes?: number;
  /** the console's size: offers VIRTIO_CONSOLE_F_SIZE (see `resize`) */
  size?: { cols: number; rows: number };
  state?: VirtioConsoleState;
}

export class VirtioConsole implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_CONSOLE;
  readonly deviceFeatures: bigint;
  readonly queueMaxSizes: readonly number[] = [VIRTIO_CONSOLE_QUEUE_SIZE, VIRTIO_CONSOLE_QUEUE_SIZE];
  readonly configSize = VIRTIO_CONSOLE_CONFIG_SIZE;
  readonly metrics: VirtioConsoleMetrics = {
    missedReads: 0,
    missedWrites: 0,
    rxBytes: 0,
    txBytes: 0,
    txDropped: 0,
    wrongDirection: 0,
    emergencyWrites: 0,
  };

  readonly #output: (bytes: Uint8Array) => void;
  readonly #rxSpace: (() => void) | undefined;
  /** pending host input: a ring of `#rx.length` bytes */
  readonly #rx: Uint8Array;
  #rxStart = 0;
  #rxLen = 0;
  /** input() turned bytes away: tell the owner when there is room again */
  #rxRefused = false;
  #cols = 0;
  #rows = 0;
  #active: VirtioActivation | undefined;
  #txScheduled = false;

  constructor(options: VirtioConsoleOptions) {
    const size = options.rxBufferBytes ?? VIRTIO_CONSOLE_RX_BUFFER_BYTES;
    if (!Number.isInteger(size) || size < 1 || size > 16 * 1024 * 1024) {
      throw new VmmError('INVALID_CONFIG', `virtio-console input buffer of ${size} bytes: 1 byte to 16 MiB`);
    }
    this.#output = options.output;
    this.#rxSpace = options.rxSpace;
    this.#rx = new Uint8Array(size);
    this.deviceFeatures = VIRTIO_RING_FEATURES | VIRTIO_CONSOLE_F_EMERG_WRITE | (options.size ? VIRTIO_CONSOLE_F_SIZE : 0n);
    const s = options.state;
    const dims = s ?? options.size;
    if (dims) this.#setSize(dims.cols, dims.rows);
    if (s) {
      const pending = Buffer.from(s.pending, 'base64');
      this.#rxLen = Math.min(pending.length, this.#rx.length);
      this.#rx.set(pending.subarray(0, this.#rxLen));
    }
  }

  /** Host input bytes waiting for the guest. */
  get pendingInput(): number {
    return this.#rxLen;
  }

  /**
   * Host input for the guest. Takes as many bytes as the input buffer has room for and
   * returns that count; the caller keeps the rest and offers them again when `rxSpace` fires.
   */
  input(bytes: Uint8Array): number {
    const cap = this.#rx.length;
    const taken = Math.min(bytes.length, cap - this.#rxLen);
    const end = (this.#rxStart + this.#rxLen) % cap;
    const first = Math.min(taken, cap - end);
    this.#rx.set(bytes.subarray(0, first), end);
    this.#rx.set(bytes.subarray(first, taken), 0);
    this.#rxLen += taken;
    if (taken < bytes.length) this.#rxRefused = true;
    if (taken > 0) this.#deliver();
    return taken;
  }

  /** Changes the console size; with VIRTIO_CONSOLE_F_SIZE negotiated the driver hears of it (§5.3.6). */
  resize(cols: number, rows: number): void {
    this.#setSize(cols, rows);
    const a = this.#active;
    if (a !== undefined && (a.features & VIRTIO_CONSOLE_F_SIZE) !== 0n) a.interrupt.notifyConfig();
  }

  readConfig(offset: number, data: Uint8Array): void {
    const cfg = new Uint8Array(VIRTIO_CONSOLE_CONFIG_SIZE);
    const dv = new DataView(cfg.buffer);
    if ((this.deviceFeatures & VIRTIO_CONSOLE_F_SIZE) !== 0n) {
      dv.setUint16(VIRTIO_CONSOLE_CFG_COLS, this.#cols, true);
      dv.setUint16(VIRTIO_CONSOLE_CFG_ROWS, this.#rows, true);
    }
    // max_nr_ports is valid only with MULTIPORT; emerg_wr reads as 0.
    for (let i = 0; i < data.length; i++) {
      const at = offset + i;
      data[i] = at >= 0 && at < VIRTIO_CONSOLE_CONFIG_SIZE ? cfg[at]! : 0;
    }
    if (offset < 0 || offset + data.length > VIRTIO_CONSOLE_CONFIG_SIZE) this.metrics.missedReads++;
  }

  writeConfig(offset: number, data: Uint8Array): void {
    if (offset === VIRTIO_CONSOLE_CFG_EMERG_WR && data.length >= 1) {
      // §5.3.5.1: the device MUST allow a write to emerg_wr, even on an unconfigured device,
      // and SHOULD transmit its lower byte.
      this.metrics.emergencyWrites++;
      this.metrics.txBytes++;
      this.#output(Uint8Array.of(data[0]!));
      return;
    }
    // cols, rows and max_nr_ports are the device's.
    this.metrics.missedWrites++;
  }

  activate(activation: VirtioActivation): void {
    this.#active = activation;
    // Buffers posted before DRIVER_OK wait for notifications that may already have come.
    this.#deliver();
    this.#transmit();
  }

  queueNotify(index: number): void {
    if (index === VIRTIO_CONSOLE_RECEIVEQ) this.#deliver();
    else if (index === VIRTIO_CONSOLE_TRANSMITQ) this.#transmit();
  }

  /** The driver reset the device. Undelivered host input stays for the next driver. */
  reset(): void {
    this.#active = undefined;
  }

  save(): VirtioConsoleState {
    const out = new Uint8Array(this.#rxLen);
    const first = Math.min(this.#rxLen, this.#rx.length - this.#rxStart);
    out.set(this.#rx.subarray(this.#rxStart, this.#rxStart + first));
    out.set(this.#rx.subarray(0, this.#rxLen - first), first);
    return { pending: Buffer.from(out).toString('base64'), cols: this.#cols, rows: this.#rows };
  }

  #setSize(cols: number, rows: number): void {
    if (!Number.isInteger(cols) || !Number.isInteger(rows) || cols < 0 || rows < 0 || cols > 0xffff || rows > 0xffff) {
      throw new VmmError('INVALID_CONFIG', `virtio-console size ${cols}x${rows}: columns and rows are 0..65535`);
    }
    this.#cols = cols;
    this.#rows = rows;
  }

  /** Moves pending input into the receive buffers the guest has posted. */
  #deliver(): void {
    const a = this.#active;
    const q = a?.queues[VIRTIO_CONSOLE_RECEIVEQ];
    if (a === undefined || q === undefined) return;
    let pushed = false;
    // Pop only while there is input: an empty buffer stays with the driver's ring.
    while (this.#rxLen > 0) {
      const chain = q.pop();
      if (chain === undefined) break;
      if (isQueueError(chain)) {
        a.interrupt.queueError(VIRTIO_CONSOLE_RECEIVEQ, chain);
        return;
      }
      if (chain.readableBytes > 0) this.metrics.wrongDirection++; // §5.3.6.1: skipped
      const n = this.#fill(a.memory, chain);
      q.pushUsed(chain.head, n);
      pushed = true;
    }
    if (pushed && q.needsNotification()) a.interrupt.notifyQueue(VIRTIO_CONSOLE_RECEIVEQ);
    if (this.#rxRefused && this.#rxLen < this.#rx.length) {
      this.#rxRefused = false;
      this.#rxSpace?.();
    }
  }

  /** Writes pending input into one chain's device-writable buffers; returns the bytes written. */
  #fill(memory: GuestMemory, chain: DescriptorChain): number {
    const cap = this.#rx.length;
    const n = Math.min(this.#rxLen, chain.writableBytes);
    const first = Math.min(n, cap - this.#rxStart);
    let done = writeToChain(memory, chain, this.#rx.subarray(this.#rxStart, this.#rxStart + first));
    if (n > first) done += writeToChain(memory, chain, this.#rx.subarray(0, n - first), first);
    this.#rxStart = (this.#rxStart + done) % cap;
    this.#rxLen -= done;
    if (this.#rxLen === 0) this.#rxStart = 0;
    this.metrics.rxBytes += done;
    return done;
  }

  /** Hands what the guest wrote to `output`: a queue's worth per turn, then yields. */
  #transmit(): void {
    const a = this.#active;
    if (a === undefined) return;
    const full = serveQueue(a, VIRTIO_CONSOLE_TRANSMITQ, (chain) => {
      this.#send(a.memory, chain);
      // §5.3.6: the device writes nothing into a transmit buffer.
      return 0;
    });
    if (full) this.#scheduleTransmit(a);
  }

  #send(memory: GuestMemory, chain: DescriptorChain): void {
    if (chain.writableBytes > 0) this.metrics.wrongDirection++; // §5.3.6.1: ignored
    const n = Math.min(chain.readableBytes, VIRTIO_CONSOLE_TX_MAX_BYTES);
    this.metrics.txDropped += chain.readableBytes - n;
    if (n === 0) return;
    const bytes = new Uint8Array(n);
    readFromChain(memory, chain, bytes);
    this.metrics.txBytes += n;
    this.#output(bytes);
  }

  #scheduleTransmit(a: VirtioActivation): void {
    if (this.#txScheduled) return;
    this.#txScheduled = true;
    setImmediate(() => {
      this.#txScheduled = false;
      if (this.#active === a) this.#transmit();
    });
  }
}
