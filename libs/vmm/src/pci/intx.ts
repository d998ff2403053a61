/**
 * Legacy PCI interrupts (INTA#..INTD#) and how they reach the IOAPIC.
 *
 * The routing: a function in slot `s` of bus 0 whose Interrupt Pin register says `p`
 * (1 = INTA# .. 4 = INTD#) drives IOAPIC input
 *
 *     GSI = 16 + ((s + p - 1) mod 8)
 *
 * the classic rotation of a PCI slot's pins (each slot's INTA# lands on a different line, so
 * single-function devices in neighbouring slots do not share), spread over the eight IOAPIC
 * inputs 16–23 that the ISA IRQs leave free. Those lines are level-triggered and active-low
 * as every PCI interrupt is; with no interrupt source override in the MADT, ACPI gives a GSI
 * of 16 and up exactly that polarity and trigger mode.
 *
 * The ACPI DSDT describes this with a _PRT under the host bridge: one
 * `Package { 0xSSSSFFFF, pin - 1, 0, GSI }` per slot and pin, which `pciIntxRoutes()` lists.
 *
 * PCI interrupts are wired-OR: several functions can hold one line. KVM_IRQ_LINE takes one
 * level per GSI from userspace, so `IntxRouter` keeps the OR itself and drives the GSI only
 * when the first source asserts or the last one releases.
 */
import type { IrqLine } from '../bus/device.js';

export const PCI_INTX_GSI_BASE = 16;
export const PCI_INTX_GSI_COUNT = 8;
export const PCI_SLOTS = 32;

/** The GSI of a bus-0 function's interrupt pin (1..4). */
export function pciIntxGsi(slot: number, pin: number): number {
  return PCI_INTX_GSI_BASE + ((slot + pin - 1) % PCI_INTX_GSI_COUNT);
}

/** One _PRT entry: ACPI's pin numbers are 0..3 for INTA#..INTD#. */
export interface PciIntxRoute {
  slot: number;
  /** 0 = INTA# .. 3 = INTD#, as _PRT writes it */
  pin: number;
  gsi: number;
  /** the _PRT Address field: device in the high word, 0xFFFF = any function */
  address: number;
}

/** Every slot and pin of bus 0, for the DSDT's _PRT. */
export function pciIntxRoutes(): PciIntxRoute[] {
  const routes: PciIntxRoute[] = [];
  for (let slot = 0; slot < PCI_SLOTS; slot++) {
    for (let pin = 1; pin <= 4; pin++) {
      routes.push({ slot, pin: pin - 1, gsi: pciIntxGsi(slot, pin), address: ((slot << 16) | 0xffff) >>> 0 });
    }
  }
  return routes;
}

/** Wire-ORs INTx# sources onto shared GSIs. */
export class IntxRouter {
  readonly #gsiLine: (gsi: number) => IrqLine;
  readonly #lines = new Map<number, IrqLine>();
  readonly #asserted = new Map<number, number>();

  /** `gsiLine(gsi)` gives the interrupt controller input (KVM_IRQ_LINE on that GSI). */
  constructor(gsiLine: (gsi: number) => IrqLine) {
    this.#gsiLine = gsiLine;
  }

  /** The INTx# line of the function in `slot` using `pin` (1..4). */
  line(slot: number, pin: number): IrqLine {
    const gsi = pciIntxGsi(slot, pin);
    let level = false;
    return {
      set: (next: boolean) => {
        if (next === level) return;
        level = next;
        this.#drive(gsi, next ? 1 : -1);
      },
    };
  }

  /** How many sources hold `gsi` asserted. */
  assertedCount(gsi: number): number {
    return this.#asserted.get(gsi) ?? 0;
  }

  #drive(gsi: number, delta: number): void {
    const before = this.#asserted.get(gsi) ?? 0;
    const after = before + delta;
    this.#asserted.set(gsi, after);
    if ((before === 0) === (after === 0)) return;
    let line = this.#lines.get(gsi);
    if (line === undefined) {
      line = this.#gsiLine(gsi);
      this.#lines.set(gsi, line);
    }
    line.set(after > 0);
  }
}
