import { readLe, writeLe, type BusDevice } from '../bus/device.js';

/**
 * x86 `in`/`out` against one device, for tests: each call makes one access of the given
 * width at an offset into the device's window, as the bus would forward it.
 */
export function inb(device: BusDevice, offset: number): number {
  return access(device, offset, 1);
}

export function inw(device: BusDevice, offset: number): number {
  return access(device, offset, 2);
}

export function inl(device: BusDevice, offset: number): number {
  return access(device, offset, 4);
}

export function outb(device: BusDevice, offset: number, value: number): void {
  store(device, offset, 1, value);
}

export function outw(device: BusDevice, offset: number, value: number): void {
  store(device, offset, 2, value);
}

export function outl(device: BusDevice, offset: number, value: number): void {
  store(device, offset, 4, value);
}

function access(device: BusDevice, offset: number, width: number): number {
  const data = new Uint8Array(width);
  device.read(offset, data);
  return readLe(data);
}

function store(device: BusDevice, offset: number, width: number, value: number): void {
  const data = new Uint8Array(width);
  writeLe(data, value);
  device.write(offset, data);
}

/**
 * Hammers a device with every byte value at every offset of `window` (and a few past it),
 * in every width, reading back after each write. Tests use it to show guest input never
 * makes a device throw.
 */
export function fuzzEveryRegister(device: BusDevice, window: number, widths: readonly number[] = [1, 2, 4, 8, 3]): void {
  for (const width of widths) {
    const data = new Uint8Array(width);
    for (let offset = 0; offset < window + 2; offset++) {
      for (let value = 0; value < 256; value++) {
        data.fill(value);
        device.write(offset, data);
        device.read(offset, data);
      }
    }
  }
}
