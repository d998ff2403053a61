/**
 * The reset control register at port 0xcf9 (RST_CNT of Intel's PIIX4 and ICH south bridges):
 * the FADT's RESET_REG points here with RESET_VALUE 0x06, and Linux's `reboot=pci` writes it
 * directly.
 *
 * Written from Intel's ICH datasheets ("Reset Control Register"): SYS_RST picks a hard
 * (1) or soft (0) reset, FULL_RST a power cycle, and setting RST_CPU starts the reset the
 * other two bits describe. A VMM has one kind of reset, rebuilding the machine, so every
 * write that sets RST_CPU calls `onReset`, whatever SYS_RST and FULL_RST say; a write that
 * leaves RST_CPU clear only stores them (Linux writes 0x02, then 0x06).
 */
import type { BusDevice, DeviceMetrics } from '../../bus/device.js';

export const RESET_CONTROL_PORT = 0xcf9;
export const RESET_CONTROL_WINDOW = 1;

export const RST_CNT_SYS_RST = 0x02;
export const RST_CNT_RST_CPU = 0x04;
export const RST_CNT_FULL_RST = 0x08;
/** the bits that hold what was written; RST_CPU only acts and reads 0 */
const RST_CNT_STORED = RST_CNT_SYS_RST | RST_CNT_FULL_RST;
/** what the FADT's RESET_VALUE writes: a hard reset */
export const RESET_CONTROL_HARD_RESET = RST_CNT_SYS_RST | RST_CNT_RST_CPU;

export interface ResetControlState {
  /** SYS_RST and FULL_RST as last written */
  control: number;
}

export interface ResetControlOptions {
  /** the guest asked for a reset; called synchronously from its write */
  onReset: () => void;
  state?: ResetControlState;
}

export class ResetControl implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };
  readonly #onReset: () => void;
  #control = 0;

  constructor(options: ResetControlOptions) {
    this.#onReset = options.onReset;
    if (options.state !== undefined) this.#control = options.state.control & RST_CNT_STORED;
  }

  save(): ResetControlState {
    return { control: this.#control };
  }

  read(offset: number, data: Uint8Array): void {
    // Only a byte access reaches RST_CNT; wider ones at 0xcf8 are PCI's CONFIG_ADDRESS.
    data.fill(0xff);
    if (offset !== 0 || data.length !== 1) {
      this.metrics.missedReads++;
      return;
    }
    data[0] = this.#control;
  }

  write(offset: number, data: Uint8Array): void {
    if (offset !== 0 || data.length !== 1) {
      this.metrics.missedWrites++;
      return;
    }
    const value = data[0]!;
    this.#control = value & RST_CNT_STORED;
    if ((value & RST_CNT_RST_CPU) !== 0) this.#onReset();
  }
}
