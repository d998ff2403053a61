/**
 * virtio-rng, the entropy device (virtio 1.2 §5.4): device type 4, one queue (requestq), no
 * feature bits of its own and no configuration space. The driver posts device-writable
 * buffers; the device fills them from the host's CSPRNG (WebCrypto's getRandomValues, which
 * Node serves from OpenSSL's DRBG seeded by the kernel) and returns how many bytes it wrote.
 *
 * §5.4.6.2: the device MUST place one or more random bytes into the buffer, but MAY use less
 * than all of it. We fill at most 64 KiB per request — getRandomValues's own limit per call,
 * and enough that one notification cannot keep the device thread busy for long — writing
 * straight into guest memory through zero-copy views.
 *
 * §5.4.6.1: the driver MUST NOT place driver-readable buffers into the queue. Any it does
 * place are skipped and counted; the request is still answered.
 */
import { webcrypto } from 'node:crypto';
import type { DeviceMetrics } from '../../bus/device.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import {
  serveQueue,
  VIRTIO_ID_RNG,
  VIRTIO_RING_FEATURES,
  type VirtioActivation,
  type VirtioDevice,
} from './device.js';
import type { DescriptorChain } from './queue.js';

export const VIRTIO_RNG_QUEUE_SIZE = 256;
/** The most bytes one request gets. */
export const VIRTIO_RNG_MAX_REQUEST_BYTES = 64 * 1024;
/** getRandomValues refuses more than this per call (WebCrypto). */
const GET_RANDOM_VALUES_MAX = 65536;

/** Nothing to keep: the device's only state is its queue, which the transport saves. */
export type VirtioRngState = Record<string, never>;

export interface VirtioRngMetrics extends DeviceMetrics {
  /** requests answered */
  requests: number;
  /** random bytes handed to the guest */
  bytes: number;
  /** driver-readable buffers skipped (§5.4.6.1) */
  readableBuffers: number;
}

export interface VirtioRngOptions {
  /** fills a buffer with random bytes; the host CSPRNG unless a test passes another */
  fill?: (buf: Uint8Array) => void;
  state?: VirtioRngState;
}

export class VirtioRng implements VirtioDevice {
  readonly deviceType = VIRTIO_ID_RNG;
  readonly deviceFeatures = VIRTIO_RING_FEATURES;
  readonly queueMaxSizes: readonly number[] = [VIRTIO_RNG_QUEUE_SIZE];
  readonly configSize = 0;
  readonly metrics: VirtioRngMetrics = { missedReads: 0, missedWrites: 0, requests: 0, bytes: 0, readableBuffers: 0 };

  readonly #fill: (buf: Uint8Array) => void;
  #active: VirtioActivation | undefined;
  #scheduled = false;

  constructor(options: VirtioRngOptions = {}) {
    this.#fill = options.fill ?? ((buf) => void webcrypto.getRandomValues(buf));
  }

  readConfig(_offset: number, data: Uint8Array): void {
    this.metrics.missedReads++;
    data.fill(0);
  }

  writeConfig(_offset: number, _data: Uint8Array): void {
    this.metrics.missedWrites++;
  }

  activate(activation: VirtioActivation): void {
    this.#active = activation;
    // Buffers posted before DRIVER_OK wait for a notification that may already have come.
    this.#process();
  }

  queueNotify(index: number): void {
    if (index !== 0) return;
    this.#process();
  }

  reset(): void {
    this.#active = undefined;
  }

  save(): VirtioRngState {
    return {};
  }

  /**
   * Answers up to a queue's worth of requests, then yields to the event loop if more are
   * waiting, so a driver that keeps refilling cannot hold the device thread.
   */
  #process(): void {
    const a = this.#active;
    if (a === undefined) return;
    const full = serveQueue(a, 0, (chain) => {
      const written = this.#answer(a.memory, chain);
      this.metrics.requests++;
      this.metrics.bytes += written;
      return written;
    });
    if (full && !this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#active === a) this.#process();
      });
    }
  }

  /** Fills the chain's device-writable buffers, up to the per-request cap. */
  #answer(memory: GuestMemory, chain: DescriptorChain): number {
    let written = 0;
    for (let i = 0; i < chain.length && written < VIRTIO_RNG_MAX_REQUEST_BYTES; i++) {
      if (!chain.writable(i)) {
        this.metrics.readableBuffers++;
        continue;
      }
      let addr = chain.addr(i);
      let left = Math.min(chain.len(i), VIRTIO_RNG_MAX_REQUEST_BYTES - written);
      while (left > 0) {
        const n = Math.min(left, GET_RANDOM_VALUES_MAX);
        const view = memory.view(addr, n);
        if (view !== undefined) {
          this.#fill(view);
        } else {
          // The buffer straddles two host chunks of guest RAM: fill a copy.
          const tmp = new Uint8Array(n);
          this.#fill(tmp);
          memory.write(addr, tmp);
        }
        addr += n;
        left -= n;
        written += n;
      }
    }
    return written;
  }
}
