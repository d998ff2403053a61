/**
 * ACPI fixed-hardware power management: the PM1a event block (PM1_STS, PM1_EN) and the
 * PM1a control block (PM1_CNT), one device over ports 0x600..0x605.
 *
 * Written from the ACPI specification, "ACPI Hardware Specification: Fixed Hardware
 * Registers" (PM1 event and control registers). It carries the two things a VMM needs from
 * ACPI: the power button (an SCI the guest answers by shutting down) and the guest's
 * request to enter S5 (soft off). The FADT must describe PM1a_EVT_BLK at 0x600 (length 4)
 * and PM1a_CNT_BLK at 0x604 (length 2), and the DSDT's \_S5 must give SLP_TYPa = 5.
 */
import type { BusDevice, DeviceMetrics, IrqLine } from '../../bus/device.js';

export const PM1_BASE_PORT = 0x600;
export const PM1_WINDOW = 6;
export const PM1_EVT_LEN = 4;
export const PM1_CNT_LEN = 2;
export const PM1_STS = 0; // 16 bits
export const PM1_EN = 2; // 16 bits
export const PM1_CNT = 4; // 16 bits

// PM1_STS: each bit is cleared by writing 1 to it.
export const PM1_STS_TMR = 0x0001;
export const PM1_STS_BM = 0x0010;
export const PM1_STS_GBL = 0x0020;
export const PM1_STS_PWRBTN = 0x0100;
export const PM1_STS_SLPBTN = 0x0200;
export const PM1_STS_RTC = 0x0400;
export const PM1_STS_PCIEXP_WAKE = 0x4000;
export const PM1_STS_WAK = 0x8000;

// PM1_EN: each enable sits at its status bit's position.
export const PM1_EN_TMR = 0x0001;
export const PM1_EN_GBL = 0x0020;
export const PM1_EN_PWRBTN = 0x0100;
export const PM1_EN_SLPBTN = 0x0200;
export const PM1_EN_RTC = 0x0400;
export const PM1_EN_PCIEXP_WAKE_DIS = 0x4000;
/** the enables that let a status bit raise the SCI */
const PM1_EN_SCI_SOURCES = PM1_EN_TMR | PM1_EN_GBL | PM1_EN_PWRBTN | PM1_EN_SLPBTN | PM1_EN_RTC;
const PM1_EN_MASK = PM1_EN_SCI_SOURCES | PM1_EN_PCIEXP_WAKE_DIS;

// PM1_CNT.
export const PM1_CNT_SCI_EN = 0x0001;
export const PM1_CNT_BM_RLD = 0x0002;
export const PM1_CNT_GBL_RLS = 0x0004; // write-only
export const PM1_CNT_SLP_TYP_MASK = 0x1c00;
export const PM1_CNT_SLP_TYP_SHIFT = 10;
export const PM1_CNT_SLP_EN = 0x2000; // write-only
/** the sleep type this platform's \_S5 names */
export const PM1_SLP_TYP_S5 = 5;
/** bits that hold what was written; SCI_EN is fixed at 1 and write-only bits read 0 */
const PM1_CNT_STORED = PM1_CNT_BM_RLD | PM1_CNT_SLP_TYP_MASK;

export interface Pm1ControlState {
  status: number;
  enable: number;
  control: number;
}

export interface Pm1ControlOptions {
  /** the SCI (the FADT's SCI_INT); high while an enabled status bit is set */
  sci: IrqLine;
  /** the guest entered S5; called synchronously from its write */
  onPowerOff: () => void;
  state?: Pm1ControlState;
}

export class Pm1Control implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };

  readonly #sci: IrqLine;
  readonly #onPowerOff: () => void;
  #status = 0;
  #enable = 0;
  #control = 0;
  #sciLevel = false;

  constructor(options: Pm1ControlOptions) {
    this.#sci = options.sci;
    this.#onPowerOff = options.onPowerOff;
    const s = options.state;
    if (s !== undefined) {
      this.#status = s.status & 0xffff;
      this.#enable = s.enable & PM1_EN_MASK;
      this.#control = s.control & PM1_CNT_STORED;
      // The line restored from a snapshot starts low; raise it if an event is pending.
      this.#updateSci();
    }
  }

  save(): Pm1ControlState {
    return { status: this.#status, enable: this.#enable, control: this.#control };
  }

  /** A press of the power button: the guest's OSPM sees PWRBTN_STS and shuts down. */
  pressPowerButton(): void {
    this.#status |= PM1_STS_PWRBTN;
    this.#updateSci();
  }

  read(offset: number, data: Uint8Array): void {
    // The registers are 16 bits wide; any width or alignment reaches them byte by byte.
    for (let i = 0; i < data.length; i++) data[i] = this.#readByte(offset + i);
  }

  write(offset: number, data: Uint8Array): void {
    for (let i = 0; i < data.length; i++) this.#writeByte(offset + i, data[i]!);
  }

  #readByte(offset: number): number {
    switch (offset) {
      case PM1_STS:
        return this.#status & 0xff;
      case PM1_STS + 1:
        return this.#status >> 8;
      case PM1_EN:
        return this.#enable & 0xff;
      case PM1_EN + 1:
        return this.#enable >> 8;
      case PM1_CNT:
        // Always in ACPI mode: there is no SMI handler to hand events to.
        return (this.#control | PM1_CNT_SCI_EN) & 0xff;
      case PM1_CNT + 1:
        return this.#control >> 8;
      default:
        this.metrics.missedReads++;
        return 0xff;
    }
  }

  #writeByte(offset: number, value: number): void {
    switch (offset) {
      case PM1_STS:
      case PM1_STS + 1: {
        const shift = (offset - PM1_STS) * 8;
        this.#status &= ~(value << shift);
        this.#updateSci();
        return;
      }
      case PM1_EN:
        this.#enable = ((this.#enable & 0xff00) | value) & PM1_EN_MASK;
        this.#updateSci();
        return;
      case PM1_EN + 1:
        this.#enable = ((this.#enable & 0x00ff) | (value << 8)) & PM1_EN_MASK;
        this.#updateSci();
        return;
      case PM1_CNT:
        this.#writeControl((this.#control & 0xff00) | value);
        return;
      case PM1_CNT + 1:
        // SLP_TYP and SLP_EN share this byte, so a sleep request arrives whole.
        this.#writeControl((this.#control & 0x00ff) | (value << 8));
        return;
      default:
        this.metrics.missedWrites++;
    }
  }

  #writeControl(value: number): void {
    this.#control = value & PM1_CNT_STORED;
    if ((value & PM1_CNT_SLP_EN) === 0) return;
    const sleepType = (value & PM1_CNT_SLP_TYP_MASK) >> PM1_CNT_SLP_TYP_SHIFT;
    // Only S5 exists here; a request for another sleep state is ignored, as a platform
    // that does not list it in its DSDT would.
    if (sleepType === PM1_SLP_TYP_S5) this.#onPowerOff();
    else this.metrics.missedWrites++;
  }

  #updateSci(): void {
    const level = (this.#status & this.#enable & PM1_EN_SCI_SOURCES) !== 0;
    if (level !== this.#sciLevel) {
      this.#sciLevel = level;
      this.#sci.set(level);
    }
  }
}
