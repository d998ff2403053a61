/**
 * What every emulated device on a bus implements.
 *
 * A device sees only an offset into its own window; `data` is the access, 1, 2, 4 or 8
 * bytes long, little-endian. A read fills `data`; a write consumes it. Accesses come from
 * the guest and are hostile: a device never throws on an odd offset or width. It ignores
 * the write or answers zeros (or 0xff, as the hardware would), and counts it.
 */
export interface BusDevice {
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
}

/** A device on the port I/O bus (x86 `in`/`out`). */
export type PioDevice = BusDevice;

/** A device on the memory-mapped I/O bus. */
export type MmioDevice = BusDevice;

/**
 * An interrupt line into the interrupt controller (an ISA IRQ pin on the in-kernel
 * PIC and IOAPIC, for the legacy devices). `set(true)` raises it, `set(false)` lowers it.
 * Devices call it only when their level changes.
 */
export interface IrqLine {
  set(level: boolean): void;
}

/** Counters a device keeps of guest accesses it could not make sense of. */
export interface DeviceMetrics {
  /** reads of registers that do not exist or with a width the device does not take */
  missedReads: number;
  /** writes the device ignored */
  missedWrites: number;
}

/** Reads a little-endian value of `data.length` bytes (≤ 4) as a number. */
export function readLe(data: Uint8Array): number {
  let v = 0;
  for (let i = data.length - 1; i >= 0; i--) v = (v * 256) + data[i]!;
  return v;
}

/** Writes `value` little-endian into all of `data` (bytes past 4 get zero). */
export function writeLe(data: Uint8Array, value: number): void {
  for (let i = 0; i < data.length; i++) {
    data[i] = i < 4 ? (value >>> (8 * i)) & 0xff : 0;
  }
}
