/**
 * The POST diagnostic port (0x80): firmware and kernels write progress codes to it, and
 * Linux writes it as a short I/O delay. It keeps the last code, which reads back, and a
 * count of writes. Kept as cheap as a device can be: the exit-cost benchmark hammers it.
 */
import type { BusDevice, DeviceMetrics } from '../../bus/device.js';

export const POST_CODE_PORT = 0x80;
export const POST_CODE_WINDOW = 1;

export interface PostCodeState {
  lastCode: number;
}

export interface PostCodeOptions {
  state?: PostCodeState;
}

export class PostCode implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };
  /** the last code written */
  lastCode = 0;
  /** writes seen since the device was created (a counter, not state) */
  writes = 0;

  constructor(options: PostCodeOptions = {}) {
    if (options.state !== undefined) this.lastCode = options.state.lastCode & 0xff;
  }

  save(): PostCodeState {
    return { lastCode: this.lastCode };
  }

  read(offset: number, data: Uint8Array): void {
    // A byte past the port is another device's (0x81 is a DMA page register): floating.
    data.fill(0xff);
    if (offset === 0) data[0] = this.lastCode;
    else this.metrics.missedReads++;
  }

  write(offset: number, data: Uint8Array): void {
    if (offset !== 0 || data.length === 0) {
      this.metrics.missedWrites++;
      return;
    }
    this.lastCode = data[0]!;
    this.writes++;
  }
}
