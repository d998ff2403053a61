/**
 * PCI bus 0: the functions in its 32 slots, configuration accesses routed to them, their
 * BARs placed the way firmware places them and decoded on the MMIO and port buses, and
 * their INTx# pins wired to IOAPIC inputs.
 *
 * - Configuration accesses come from the two access mechanisms, `PciConfigIo` (ports
 *   0xCF8/0xCFC) and `PciEcam` (the memory-mapped window), as (bus, device, function,
 *   register). Only bus 0 exists and only function 0 of a slot; everything else reads as
 *   all-ones, which is how a PCI master abort looks to software (PCI 3.0 §6.1: "returns
 *   0FFFFh for the Vendor ID").
 * - `attach()` plays the firmware's part: it gives every BAR a naturally aligned address
 *   from the 32-bit memory window or the I/O window (64-bit BARs too: they fit below 4 GiB
 *   and a 64-bit OS may move them), writes the GSI into Interrupt Line, and turns memory and
 *   I/O decoding on. The guest may then move or size BARs at will; `mapBar` follows.
 * - The slot 0 function is the host bridge.
 */
import type { BusDevice, IrqLine } from '../bus/device.js';
import type { BusRange, MmioBus, PioBus } from '../bus/io-bus.js';
import { VmmError } from '../errors.js';
import { PCI_IO_END, PCI_IO_START, PCI_MMIO32_END, PCI_MMIO32_START } from '../memory/layout.js';
import type { PciBarMapper, PciFunction } from './function.js';
import { PciHostBridge } from './host-bridge.js';
import { IntxRouter, PCI_SLOTS, pciIntxGsi, pciIntxRoutes, type PciIntxRoute } from './intx.js';
import { PCI_COMMAND_IO, PCI_COMMAND_MEMORY, PCI_INTERRUPT_LINE } from './registers.js';

/** A range of addresses, [start, end). */
export interface PciWindow {
  start: number;
  end: number;
}

/** Configuration accesses by bus, device, function and register, as both mechanisms make them. */
export interface PciConfigAccess {
  configRead(bus: number, device: number, fn: number, offset: number, data: Uint8Array): void;
  configWrite(bus: number, device: number, fn: number, offset: number, data: Uint8Array): void;
}

export interface PciBusOptions {
  mmio: MmioBus;
  pio: PioBus;
  /** the interrupt controller input for a GSI (KVM_IRQ_LINE on it) */
  gsiLine: (gsi: number) => IrqLine;
  /** where memory BARs go; default PCI_MMIO32_START..PCI_MMIO32_END */
  mmioWindow?: PciWindow;
  /** where I/O BARs go; default PCI_IO_START..PCI_IO_END */
  ioWindow?: PciWindow;
  /** the function at 00:00.0; default a `PciHostBridge` */
  hostBridge?: PciFunction;
}

export interface PciSlot {
  slot: number;
  name: string;
  fn: PciFunction;
}

/** Memory BARs get at least a page, as firmware does, so that no two devices share one. */
const MIN_MEMORY_BAR_ALIGNMENT = 4096;

export class PciBus implements PciConfigAccess {
  readonly intx: IntxRouter;
  readonly mmioWindow: PciWindow;
  readonly ioWindow: PciWindow;
  readonly metrics = { missedConfigReads: 0, missedConfigWrites: 0 };

  readonly #mmio: MmioBus;
  readonly #pio: PioBus;
  readonly #slots: (PciSlot | undefined)[] = new Array<PciSlot | undefined>(PCI_SLOTS).fill(undefined);
  #mmioNext: number;
  #ioNext: number;

  constructor(options: PciBusOptions) {
    this.#mmio = options.mmio;
    this.#pio = options.pio;
    this.intx = new IntxRouter(options.gsiLine);
    this.mmioWindow = options.mmioWindow ?? { start: PCI_MMIO32_START, end: PCI_MMIO32_END };
    this.ioWindow = options.ioWindow ?? { start: PCI_IO_START, end: PCI_IO_END };
    this.#mmioNext = this.mmioWindow.start;
    this.#ioNext = this.ioWindow.start;
    this.attach(0, options.hostBridge ?? new PciHostBridge(), 'host-bridge');
  }

  /**
   * Puts `fn` in `slot` as function 0, assigns its BARs and routes its interrupt pin. A
   * function restored from a snapshot keeps its BARs and Command register. Wiring errors
   * (slot taken, windows full) throw; nothing the guest does later can.
   */
  attach(slot: number, fn: PciFunction, name: string): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= PCI_SLOTS) {
      throw new VmmError('INVALID_CONFIG', `Cannot attach ${name}: PCI slot ${slot} does not exist`);
    }
    const taken = this.#slots[slot];
    if (taken !== undefined) {
      throw new VmmError('INVALID_CONFIG', `Cannot attach ${name}: PCI slot ${slot} holds ${taken.name}`);
    }
    if (fn.restored) {
      // A snapshot's function keeps the BARs the guest left; later allocations go past them.
      fn.bars.forEach((spec, index) => {
        if (spec === undefined) return;
        const base = fn.barRegisterAddress(index);
        const w = spec.kind === 'io' ? this.ioWindow : this.mmioWindow;
        if (base < w.start || base + spec.size > w.end) return;
        if (spec.kind === 'io') this.#ioNext = Math.max(this.#ioNext, base + spec.size);
        else this.#mmioNext = Math.max(this.#mmioNext, base + spec.size);
      });
      this.#slots[slot] = { slot, name, fn };
      fn.attach(this.#mapper(slot), fn.interruptPin >= 1 && fn.interruptPin <= 4 ? this.intx.line(slot, fn.interruptPin) : undefined);
      return;
    }
    // Largest first, as firmware does, so alignment wastes least.
    const order = fn.bars
      .map((spec, index) => ({ spec, index }))
      .filter((b) => b.spec !== undefined)
      .sort((a, b) => b.spec!.size - a.spec!.size);
    let command = 0;
    for (const { spec, index } of order) {
      if (spec!.kind === 'io') {
        fn.assignBar(index, this.#allocate('io', spec!.size, spec!.size, name));
        command |= PCI_COMMAND_IO;
      } else {
        fn.assignBar(index, this.#allocate('mmio', spec!.size, Math.max(spec!.size, MIN_MEMORY_BAR_ALIGNMENT), name));
        command |= PCI_COMMAND_MEMORY;
      }
    }
    const pin = fn.interruptPin;
    let line: IrqLine | undefined;
    if (pin >= 1 && pin <= 4) {
      fn.config.setU8(PCI_INTERRUPT_LINE, pciIntxGsi(slot, pin));
      line = this.intx.line(slot, pin);
    }
    this.#slots[slot] = { slot, name, fn };
    fn.setCommandBits(command);
    fn.attach(this.#mapper(slot), line);
  }

  /** The function at bus 0, `slot`, function 0. */
  device(slot: number): PciFunction | undefined {
    return this.#slots[slot]?.fn;
  }

  slots(): PciSlot[] {
    return this.#slots.filter((s): s is PciSlot => s !== undefined);
  }

  /** INTx# routing for the DSDT's _PRT (see intx.ts). */
  intxRoutes(): PciIntxRoute[] {
    return pciIntxRoutes();
  }

  /**
   * The ranges whose accesses belong to the device thread whatever the guest does with its
   * BARs: a vCPU thread's routing table is fixed when it starts, so it must send the whole
   * BAR windows there, not the BARs of the moment.
   */
  routedWindows(): { mmio: BusRange[]; pio: BusRange[] } {
    return {
      mmio: [{ base: this.mmioWindow.start, size: this.mmioWindow.end - this.mmioWindow.start }],
      pio: [{ base: this.ioWindow.start, size: this.ioWindow.end - this.ioWindow.start }],
    };
  }

  configRead(bus: number, device: number, fn: number, offset: number, data: Uint8Array): void {
    const f = bus === 0 && fn === 0 ? this.#slots[device]?.fn : undefined;
    if (f === undefined) {
      data.fill(0xff);
      return;
    }
    if ((offset & 3) + data.length > 4) {
      // Crosses a dword: no mechanism produces this, so take it a byte at a time.
      this.metrics.missedConfigReads++;
      for (let i = 0; i < data.length; i++) f.configRead(offset + i, data.subarray(i, i + 1));
      return;
    }
    f.configRead(offset, data);
  }

  configWrite(bus: number, device: number, fn: number, offset: number, data: Uint8Array): void {
    const f = bus === 0 && fn === 0 ? this.#slots[device]?.fn : undefined;
    if (f === undefined) return;
    if ((offset & 3) + data.length > 4) {
      this.metrics.missedConfigWrites++;
      for (let i = 0; i < data.length; i++) f.configWrite(offset + i, data.subarray(i, i + 1));
      return;
    }
    f.configWrite(offset, data);
  }

  #allocate(space: 'mmio' | 'io', size: number, align: number, name: string): number {
    const window = space === 'mmio' ? this.mmioWindow : this.ioWindow;
    const next = space === 'mmio' ? this.#mmioNext : this.#ioNext;
    const base = Math.ceil(next / align) * align;
    if (base + size > window.end) {
      throw new VmmError('INVALID_CONFIG', `Cannot attach ${name}: no room for a ${size}-byte BAR in the PCI ${space} window`);
    }
    if (space === 'mmio') this.#mmioNext = base + size;
    else this.#ioNext = base + size;
    return base;
  }

  #mapper(slot: number): PciBarMapper {
    return {
      mapBar: (index: number, space: 'mmio' | 'pio', base: number | undefined, size: number, region: BusDevice): boolean => {
        const bus = space === 'mmio' ? this.#mmio : this.#pio;
        const name = `pci 00:${slot.toString(16).padStart(2, '0')}.0 BAR${index}`;
        bus.remove(name);
        if (base === undefined) return true;
        try {
          bus.insert(name, base, size, region);
          return true;
        } catch (err) {
          if (err instanceof VmmError && (err.code === 'BUS_RANGE_OVERLAP' || err.code === 'BUS_RANGE_EMPTY')) return false;
          throw err;
        }
      },
    };
  }
}

/**
 * Merges ranges into a sorted list of disjoint ones, for a vCPU thread's routing table:
 * `disjointRanges([...machine.mmio.ranges(), ...pci.routedWindows().mmio])`.
 */
export function disjointRanges(ranges: readonly BusRange[]): BusRange[] {
  const sorted = ranges.filter((r) => r.size > 0).sort((a, b) => a.base - b.base);
  const out: BusRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && r.base <= last.base + last.size) {
      last.size = Math.max(last.size, r.base + r.size - last.base);
    } else {
      out.push({ base: r.base, size: r.size });
    }
  }
  return out;
}
