import { VmmError } from '../errors.js';
import type { BusDevice } from './device.js';

export interface BusRange {
  base: number;
  size: number;
}

interface Entry extends BusRange {
  name: string;
  device: BusDevice;
}

/**
 * A bus maps address ranges to devices and forwards each access with the offset into the
 * device's own window. Ranges may not be empty or overlap (a typed error at wiring time).
 * An access that hits no device, or straddles a device's end, is counted and answered with
 * all-ones on reads (an open bus reads as 0xff..ff on PC hardware) and ignored on writes.
 */
abstract class Bus {
  protected entries: Entry[] = [];
  /** accesses that found no device */
  unhandledReads = 0;
  unhandledWrites = 0;

  constructor(readonly kind: 'pio' | 'mmio', private readonly limit: number) {}

  insert(name: string, base: number, size: number, device: BusDevice): void {
    if (!(size > 0) || !Number.isSafeInteger(base) || base < 0 || base + size > this.limit) {
      throw new VmmError('BUS_RANGE_EMPTY', `Cannot attach ${name}: range 0x${base.toString(16)}+${size} is empty or out of the ${this.kind} space`);
    }
    for (const e of this.entries) {
      if (base < e.base + e.size && e.base < base + size) {
        throw new VmmError(
          'BUS_RANGE_OVERLAP',
          `Cannot attach ${name}: ${this.kind} range 0x${base.toString(16)}+${size} overlaps ${e.name} at 0x${e.base.toString(16)}+${e.size}`,
        );
      }
    }
    this.entries.push({ name, base, size, device });
    this.entries.sort((a, b) => a.base - b.base);
    this.rebuild();
  }

  remove(name: string): void {
    this.entries = this.entries.filter((e) => e.name !== name);
    this.rebuild();
  }

  /** The ranges with a device, for the vCPU threads' routing tables. */
  ranges(): BusRange[] {
    return this.entries.map(({ base, size }) => ({ base, size }));
  }

  protected abstract rebuild(): void;
  protected abstract find(addr: number): Entry | undefined;

  /** Dispatches a read. Returns false (and fills `data` with 0xff) when no device answers. */
  read(addr: number, data: Uint8Array): boolean {
    const e = this.find(addr);
    if (e === undefined || addr + data.length > e.base + e.size) {
      data.fill(0xff);
      this.unhandledReads++;
      return false;
    }
    e.device.read(addr - e.base, data);
    return true;
  }

  /** Dispatches a write. Returns false when no device takes it. */
  write(addr: number, data: Uint8Array): boolean {
    const e = this.find(addr);
    if (e === undefined || addr + data.length > e.base + e.size) {
      this.unhandledWrites++;
      return false;
    }
    e.device.write(addr - e.base, data);
    return true;
  }
}

/** The x86 port I/O space: 64 Ki ports, looked up through a flat table (no search per exit). */
export class PioBus extends Bus {
  private readonly table = new Int16Array(0x10000).fill(-1);

  constructor() {
    super('pio', 0x10000);
  }

  protected rebuild(): void {
    this.table.fill(-1);
    this.entries.forEach((e, i) => this.table.fill(i, e.base, e.base + e.size));
  }

  protected find(port: number): Entry | undefined {
    const i = port >= 0 && port < 0x10000 ? this.table[port]! : -1;
    return i < 0 ? undefined : this.entries[i];
  }
}

/** The guest-physical MMIO space, searched by binary search over sorted ranges. */
export class MmioBus extends Bus {
  constructor() {
    super('mmio', 2 ** 52);
  }

  protected rebuild(): void {}

  protected find(addr: number): Entry | undefined {
    let lo = 0;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entries[mid]!;
      if (addr < e.base) hi = mid - 1;
      else if (addr >= e.base + e.size) lo = mid + 1;
      else return e;
    }
    return undefined;
  }
}
