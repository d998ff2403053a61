/**
 * Puts a vmctl machine's ACPI tables in guest memory:
 *
 *   RSDP → XSDT → FADT → FACS, DSDT
 *               → MADT
 *               → MCFG (with PCI)
 *               → extra tables
 *
 * They are laid out from ACPI_TABLES_START (0xe0000), RSDP first, where a legacy OS scans for
 * it; the area is reserved in the e820 map. The RSDP's address goes to the guest in the PVH
 * start info (rsdp_paddr) or the Linux boot_params (acpi_rsdp_addr).
 */
import { VmmError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { ACPI_TABLES_END, ACPI_TABLES_START, PCI_ECAM_BASE, PCI_ECAM_BUSES } from '../memory/layout.js';
import { RESET_CONTROL_HARD_RESET, RESET_CONTROL_PORT } from '../devices/legacy/reset-control.js';
import { type PciRoute, dsdt } from './dsdt.js';
import { SDT_HEADER_SIZE, SDT_LENGTH, checksum } from './sdt.js';
import {
  FACS_ALIGN,
  FACS_SIZE,
  FADT_SIZE,
  IOAPIC_GSI_BASE,
  IOAPIC_PINS,
  ISA_IRQ_COUNT,
  RSDP_ALIGN,
  RSDP_SIZE,
  type ResetRegister,
  facs,
  fadt,
  madt,
  mcfg,
  rsdp,
  xsdt,
  xsdtSize,
} from './tables.js';

/** The ISA IRQ of the SCI: builder.ts wires the PM1 block's `sci` line to it. */
export const ACPI_SCI_IRQ = 9;
/** The FADT's reset register by default: the reset control register, a hard reset. */
export const ACPI_RESET_CF9: ResetRegister = { port: RESET_CONTROL_PORT, value: RESET_CONTROL_HARD_RESET };
/** The most vCPUs the MADT can list: xAPIC IDs are 8 bits and 0xff is the broadcast ID. */
export const ACPI_MAX_CPUS = 255;
/** Tables other than the RSDP and FACS start on this boundary (ACPI asks for none). */
const TABLE_ALIGN = 16;

/** The PCI host bridge of pci/bus.ts: bus 0 of segment 0, ECAM at PCI_ECAM_BASE. */
export interface AcpiPciOptions {
  /** the _PRT: `PciBus.intxRoutes()`; each GSI one of the IOAPIC's inputs 16-23 */
  routes: readonly PciRoute[];
}

export interface AcpiOptions {
  /** vCPUs: vCPU i is ACPI processor UID i with local APIC ID i */
  cpus: number;
  /**
   * PCI: adds \_SB.PCI0 (with `routes` as its _PRT) and \_SB.MRES (the ECAM window) to the
   * DSDT and an MCFG to the XSDT, and makes `msi` default to true
   */
  pci?: AcpiPciOptions;
  /** AML terms to put in the DSDT's \_SB, after the legacy devices (and PCI) */
  devices?: readonly Uint8Array[];
  /** more complete tables (header and checksum included), listed in the XSDT after the MADT (and MCFG) */
  tables?: readonly Uint8Array[];
  /** the platform delivers MSIs (clears the FADT's MSI_NOT_SUPPORTED); default true with `pci`, else false */
  msi?: boolean;
  /** a VGA-compatible display exists (clears VGA_NOT_PRESENT); default false */
  vga?: boolean;
  /** the FADT's RESET_REG and RESET_VALUE; default ACPI_RESET_CF9 */
  reset?: ResetRegister;
}

export interface AcpiTables {
  /** the guest-physical address of the RSDP */
  rsdp: number;
}

/**
 * Builds every table, lays them out in the ACPI area, clears the area and writes them.
 * Throws INVALID_CONFIG for a vCPU count the MADT cannot describe, a PCI route the _PRT and
 * MADT cannot describe, an extra table that is not a well-formed SDT, or tables that outgrow
 * the area.
 */
export function writeAcpiTables(mem: GuestMemory, options: AcpiOptions): AcpiTables {
  const { cpus } = options;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > ACPI_MAX_CPUS) {
    throw new VmmError('INVALID_CONFIG', `Cannot build ACPI tables: cpus must be between 1 and ${ACPI_MAX_CPUS}, not ${cpus}`);
  }
  const extra = options.tables ?? [];
  extra.forEach(checkTable);
  const { pci } = options;
  if (pci !== undefined) checkRoutes(pci.routes);

  const dsdtTable = dsdt({ pci, devices: options.devices ?? [] });
  const madtTable = madt({ cpus, sciIrq: ACPI_SCI_IRQ });
  const facsTable = facs();
  // One ECAM window, buses 0-255 of segment 0: the whole of PciEcam's.
  const ecam = { base: PCI_ECAM_BASE, segment: 0, startBus: 0, endBus: PCI_ECAM_BUSES - 1 };
  const mcfgTables = pci !== undefined ? [mcfg([ecam])] : [];

  let next = ACPI_TABLES_START;
  const place = (size: number, align: number): number => {
    const at = Math.ceil(next / align) * align;
    next = at + size;
    return at;
  };
  const rsdpAt = place(RSDP_SIZE, RSDP_ALIGN);
  const xsdtAt = place(xsdtSize(2 + mcfgTables.length + extra.length), TABLE_ALIGN);
  const fadtAt = place(FADT_SIZE, TABLE_ALIGN);
  const facsAt = place(FACS_SIZE, FACS_ALIGN);
  const dsdtAt = place(dsdtTable.length, TABLE_ALIGN);
  const madtAt = place(madtTable.length, TABLE_ALIGN);
  const mcfgAt = mcfgTables.map((t) => place(t.length, TABLE_ALIGN));
  const extraAt = extra.map((t) => place(t.length, TABLE_ALIGN));
  if (next > ACPI_TABLES_END) {
    throw new VmmError(
      'INVALID_CONFIG',
      `Cannot build ACPI tables: they need ${next - ACPI_TABLES_START} bytes, ` +
        `the area holds ${ACPI_TABLES_END - ACPI_TABLES_START}`,
    );
  }

  const fadtTable = fadt({
    facsAddress: facsAt,
    dsdtAddress: dsdtAt,
    sciIrq: ACPI_SCI_IRQ,
    reset: options.reset ?? ACPI_RESET_CF9,
    msi: options.msi ?? pci !== undefined,
    vga: options.vga ?? false,
  });
  const xsdtTable = xsdt([fadtAt, madtAt, ...mcfgAt, ...extraAt]);

  mem.fill(ACPI_TABLES_START, ACPI_TABLES_END - ACPI_TABLES_START, 0);
  mem.write(rsdpAt, rsdp(xsdtAt));
  mem.write(xsdtAt, xsdtTable);
  mem.write(fadtAt, fadtTable);
  mem.write(facsAt, facsTable);
  mem.write(dsdtAt, dsdtTable);
  mem.write(madtAt, madtTable);
  mcfgTables.forEach((t, i) => mem.write(mcfgAt[i]!, t));
  extra.forEach((t, i) => mem.write(extraAt[i]!, t));
  return { rsdp: rsdpAt };
}

/** An extra table must at least be an SDT: a header, its own length, a zero sum. */
function checkTable(table: Uint8Array, index: number): void {
  const length = table.length >= SDT_HEADER_SIZE ? new DataView(table.buffer, table.byteOffset).getUint32(SDT_LENGTH, true) : -1;
  if (length !== table.length || checksum(table) !== 0) {
    throw new VmmError('INVALID_CONFIG', `Cannot add ACPI table ${index}: not a complete table with a valid length and checksum`);
  }
}

/**
 * A _PRT entry must name a slot (0-31) and pin (0-3) once, and a GSI of the IOAPIC past the
 * ISA IRQs: the MADT's overrides cover only GSIs 0-15, so 16-23 are level, active low, as a
 * PCI interrupt is, and anything past the IOAPIC's last input reaches nothing.
 */
function checkRoutes(routes: readonly PciRoute[]): void {
  const seen = new Set<number>();
  const first = IOAPIC_GSI_BASE + ISA_IRQ_COUNT;
  const last = IOAPIC_GSI_BASE + IOAPIC_PINS - 1;
  for (const { slot, pin, gsi } of routes) {
    const what = `Cannot route PCI slot ${slot} pin ${pin} to GSI ${gsi}`;
    if (!Number.isInteger(slot) || slot < 0 || slot > 31 || !Number.isInteger(pin) || pin < 0 || pin > 3) {
      throw new VmmError('INVALID_CONFIG', `${what}: slots are 0-31 and pins 0 (INTA#) to 3 (INTD#)`);
    }
    if (!Number.isInteger(gsi) || gsi < first || gsi > last) {
      throw new VmmError('INVALID_CONFIG', `${what}: PCI interrupts go to the IOAPIC's GSIs ${first}-${last}`);
    }
    if (seen.has(slot * 4 + pin)) throw new VmmError('INVALID_CONFIG', `${what}: that slot and pin are already routed`);
    seen.add(slot * 4 + pin);
  }
}
