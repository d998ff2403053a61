/**
 * Puts a vmctl machine's ACPI tables in guest memory:
 *
 *   RSDP → XSDT → FADT → FACS, DSDT
 *               → MADT
 *               → extra tables (MCFG, ... as later issues add them)
 *
 * They are laid out from ACPI_TABLES_START (0xe0000), RSDP first, where a legacy OS scans for
 * it; the area is reserved in the e820 map. The RSDP's address goes to the guest in the PVH
 * start info (rsdp_paddr) or the Linux boot_params (acpi_rsdp_addr).
 */
import { VmmError } from '../errors.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { ACPI_TABLES_END, ACPI_TABLES_START } from '../memory/layout.js';
import { RESET_CONTROL_HARD_RESET, RESET_CONTROL_PORT } from '../devices/legacy/reset-control.js';
import { dsdt } from './dsdt.js';
import { SDT_HEADER_SIZE, SDT_LENGTH, checksum } from './sdt.js';
import {
  FACS_ALIGN,
  FACS_SIZE,
  FADT_SIZE,
  RSDP_ALIGN,
  RSDP_SIZE,
  type ResetRegister,
  facs,
  fadt,
  madt,
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

export interface AcpiOptions {
  /** vCPUs: vCPU i is ACPI processor UID i with local APIC ID i */
  cpus: number;
  /** AML terms to put in the DSDT's \_SB, after the legacy devices */
  devices?: readonly Uint8Array[];
  /** more complete tables (header and checksum included), listed in the XSDT after the MADT */
  tables?: readonly Uint8Array[];
  /** the platform delivers MSIs (clears the FADT's MSI_NOT_SUPPORTED); default false */
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
 * Throws INVALID_CONFIG for a vCPU count the MADT cannot describe, an extra table that is not
 * a well-formed SDT, or tables that outgrow the area.
 */
export function writeAcpiTables(mem: GuestMemory, options: AcpiOptions): AcpiTables {
  const { cpus } = options;
  if (!Number.isInteger(cpus) || cpus < 1 || cpus > ACPI_MAX_CPUS) {
    throw new VmmError('INVALID_CONFIG', `Cannot build ACPI tables: cpus must be between 1 and ${ACPI_MAX_CPUS}, not ${cpus}`);
  }
  const extra = options.tables ?? [];
  extra.forEach(checkTable);

  const dsdtTable = dsdt({ devices: options.devices ?? [] });
  const madtTable = madt({ cpus, sciIrq: ACPI_SCI_IRQ });
  const facsTable = facs();

  let next = ACPI_TABLES_START;
  const place = (size: number, align: number): number => {
    const at = Math.ceil(next / align) * align;
    next = at + size;
    return at;
  };
  const rsdpAt = place(RSDP_SIZE, RSDP_ALIGN);
  const xsdtAt = place(xsdtSize(2 + extra.length), TABLE_ALIGN);
  const fadtAt = place(FADT_SIZE, TABLE_ALIGN);
  const facsAt = place(FACS_SIZE, FACS_ALIGN);
  const dsdtAt = place(dsdtTable.length, TABLE_ALIGN);
  const madtAt = place(madtTable.length, TABLE_ALIGN);
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
    msi: options.msi ?? false,
    vga: options.vga ?? false,
  });
  const xsdtTable = xsdt([fadtAt, madtAt, ...extraAt]);

  mem.fill(ACPI_TABLES_START, ACPI_TABLES_END - ACPI_TABLES_START, 0);
  mem.write(rsdpAt, rsdp(xsdtAt));
  mem.write(xsdtAt, xsdtTable);
  mem.write(fadtAt, fadtTable);
  mem.write(facsAt, facsTable);
  mem.write(dsdtAt, dsdtTable);
  mem.write(madtAt, madtTable);
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
