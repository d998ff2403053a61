/**
 * A debug-exit port (by default 0xf4), as test guests use to end a run with a status: a
 * write of any width at any offset hands its value to `onExit`. The wiring attaches it only
 * when a test asks for it, so a production guest cannot stop its VMM this way.
 */
import type { BusDevice, DeviceMetrics } from '../../bus/device.js';

export const DEBUG_EXIT_PORT = 0xf4;
export const DEBUG_EXIT_WINDOW = 4;

/** Nothing to keep: the device has no registers. */
export type DebugExitState = Record<string, never>;

export interface DebugExitOptions {
  /**
   * Called synchronously from the guest's write with the value written, little-endian
   * (the low 4 bytes of an 8-byte MMIO write).
   */
  onExit: (value: number) => void;
  state?: DebugExitState;
}

export class DebugExit implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };
  readonly #onExit: (value: number) => void;

  constructor(options: DebugExitOptions) {
    this.#onExit = options.onExit;
  }

  save(): DebugExitState {
    return {};
  }

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
  }

  write(_offset: number, data: Uint8Array): void {
    let value = 0;
    for (let i = Math.min(data.length, 4) - 1; i >= 0; i--) value = value * 256 + data[i]!;
    this.#onExit(value);
  }
}
