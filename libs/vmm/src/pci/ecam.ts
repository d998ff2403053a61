/**
 * The Enhanced Configuration Access Mechanism: configuration space mapped in memory, 4 KiB
 * per function (PCI Express Base Specification §7.2.2; the PCI Firmware Specification 3.x
 * §4.1.2 describes it to the OS through the ACPI MCFG table).
 *
 *   offset = bus << 20 | device << 15 | function << 12 | register
 *
 * The window covers buses 0–255 (256 MiB at PCI_ECAM_BASE). Accesses of 1, 2 or 4 bytes go
 * to the function as they are; an 8-byte access (which PCIe does not define for
 * configuration space) is served as two dwords.
 */
import type { BusDevice } from '../bus/device.js';
import type { PciConfigAccess } from './bus.js';

export class PciEcam implements BusDevice {
  readonly #bus: PciConfigAccess;

  constructor(bus: PciConfigAccess) {
    this.#bus = bus;
  }

  read(offset: number, data: Uint8Array): void {
    if (data.length === 8) {
      this.read(offset, data.subarray(0, 4));
      this.read(offset + 4, data.subarray(4, 8));
      return;
    }
    this.#bus.configRead(offset >>> 20, (offset >>> 15) & 0x1f, (offset >>> 12) & 0x7, offset & 0xfff, data);
  }

  write(offset: number, data: Uint8Array): void {
    if (data.length === 8) {
      this.write(offset, data.subarray(0, 4));
      this.write(offset + 4, data.subarray(4, 8));
      return;
    }
    this.#bus.configWrite(offset >>> 20, (offset >>> 15) & 0x1f, (offset >>> 12) & 0x7, offset & 0xfff, data);
  }
}
