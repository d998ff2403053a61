/**
 * Configuration mechanism #1 (PCI Local Bus Specification 3.0, §3.2.2.3.2): CONFIG_ADDRESS
 * at port 0xCF8 and CONFIG_DATA at 0xCFC–0xCFF, one device over the eight ports.
 *
 *   CONFIG_ADDRESS: bit 31 enable, 23:16 bus, 15:11 device, 10:8 function, 7:2 register
 *
 * Only a 32-bit access to 0xCF8 reaches CONFIG_ADDRESS; narrower ones in 0xCF8–0xCFB are
 * ordinary I/O cycles. On a PC one of them is the reset control register at 0xCF9 (a byte
 * access), which shares this range: pass it as `resetControl` and byte accesses to 0xCF9
 * go to it. CONFIG_DATA takes 1, 2 or 4 bytes at any of its ports; the register is
 * CONFIG_ADDRESS's dword plus the port's offset. With the enable bit clear, CONFIG_DATA
 * reads all-ones and ignores writes.
 */
import { readLe, writeLe, type BusDevice, type DeviceMetrics } from '../bus/device.js';
import type { PciConfigAccess } from './bus.js';

export const PCI_CONFIG_ADDRESS_PORT = 0xcf8;
export const PCI_CONFIG_DATA_PORT = 0xcfc;
/** the ports this device decodes, 0xCF8–0xCFF */
export const PCI_CONFIG_IO_WINDOW = 8;

export const PCI_CONFIG_ADDRESS_ENABLE = 0x80000000;
/** the CONFIG_ADDRESS bits that hold a value: enable, bus, device, function, register */
const PCI_CONFIG_ADDRESS_MASK = 0x80fffffc;

const CONFIG_ADDRESS = 0; // offsets in the window
const RESET_CONTROL = 1;
const CONFIG_DATA = 4;

export interface PciConfigIoState {
  address: number;
}

export interface PciConfigIoOptions {
  bus: PciConfigAccess;
  /** the device at 0xCF9 (RST_CNT), reached by byte accesses */
  resetControl?: BusDevice;
  state?: PciConfigIoState;
}

export class PciConfigIo implements BusDevice {
  readonly metrics: DeviceMetrics = { missedReads: 0, missedWrites: 0 };
  readonly #bus: PciConfigAccess;
  readonly #resetControl: BusDevice | undefined;
  #address = 0;

  constructor(options: PciConfigIoOptions) {
    this.#bus = options.bus;
    this.#resetControl = options.resetControl;
    if (options.state) this.#address = options.state.address & PCI_CONFIG_ADDRESS_MASK;
  }

  save(): PciConfigIoState {
    return { address: this.#address };
  }

  read(offset: number, data: Uint8Array): void {
    if (offset === CONFIG_ADDRESS && data.length === 4) {
      writeLe(data, this.#address);
    } else if (offset === RESET_CONTROL && data.length === 1 && this.#resetControl) {
      this.#resetControl.read(0, data);
    } else if (offset >= CONFIG_DATA && offset + data.length <= PCI_CONFIG_IO_WINDOW && this.#enabled()) {
      this.#bus.configRead(this.#busNo(), this.#device(), this.#function(), this.#register() + offset - CONFIG_DATA, data);
    } else {
      if (offset < CONFIG_DATA) this.metrics.missedReads++;
      data.fill(0xff);
    }
  }

  write(offset: number, data: Uint8Array): void {
    if (offset === CONFIG_ADDRESS && data.length === 4) {
      this.#address = (readLe(data) & PCI_CONFIG_ADDRESS_MASK) >>> 0;
    } else if (offset === RESET_CONTROL && data.length === 1 && this.#resetControl) {
      this.#resetControl.write(0, data);
    } else if (offset >= CONFIG_DATA && offset + data.length <= PCI_CONFIG_IO_WINDOW && this.#enabled()) {
      this.#bus.configWrite(this.#busNo(), this.#device(), this.#function(), this.#register() + offset - CONFIG_DATA, data);
    } else if (offset < CONFIG_DATA) {
      this.metrics.missedWrites++;
    }
  }

  #enabled(): boolean {
    return (this.#address & PCI_CONFIG_ADDRESS_ENABLE) !== 0;
  }
  #busNo(): number {
    return (this.#address >>> 16) & 0xff;
  }
  #device(): number {
    return (this.#address >>> 11) & 0x1f;
  }
  #function(): number {
    return (this.#address >>> 8) & 0x7;
  }
  #register(): number {
    return this.#address & 0xfc;
  }
}
