/**
 * The fixed-layout ACPI tables of a vmctl machine: RSDP, XSDT, FADT, FACS, MADT and MCFG.
 * Each is a pure function from the platform's facts (and the guest addresses of the tables it
 * points at) to the table's bytes, checksum included. The DSDT, which is AML, is in dsdt.ts; where
 * the tables go in guest memory is acpi.ts's business.
 *
 * Written from the ACPI specification (6.3 layouts), "ACPI Software Programming Model":
 * Root System Description Pointer, Extended System Description Table, Fixed ACPI Description
 * Table, Firmware ACPI Control Structure, Multiple APIC Description Table; and the MCFG from
 * the PCI Firmware Specification 3.x, "MCFG Table Description".
 */
import { IOAPIC_BASE, LAPIC_BASE } from '../memory/layout.js';
import { PM1_BASE_PORT, PM1_CNT, PM1_CNT_LEN, PM1_EVT_LEN } from '../devices/legacy/pm1.js';
import { RTC_CENTURY } from '../devices/legacy/rtc.js';
import {
  ACPI_OEM_ID,
  GAS_ACCESS_BYTE,
  GAS_ACCESS_WORD,
  GAS_SYSTEM_IO,
  SDT_HEADER_SIZE,
  checksum,
  putAscii,
  putGas,
  sdt,
} from './sdt.js';

// ---------------------------------------------------------------------------------------
// RSDP: where an OS starts. Revision 2 carries the XSDT's 64-bit address and a second
// checksum over the whole structure; the first covers only the ACPI 1.0 part (20 bytes).

export const RSDP_SIZE = 36;
export const RSDP_V1_SIZE = 20;
/** The RSDP must sit on a 16-byte boundary (the legacy scan looks at paragraph starts). */
export const RSDP_ALIGN = 16;
export const RSDP_SIGNATURE = 'RSD PTR ';
export const RSDP_CHECKSUM = 8;
export const RSDP_OEM_ID = 9;
export const RSDP_REVISION = 15;
export const RSDP_RSDT_ADDRESS = 16;
export const RSDP_LENGTH = 20;
export const RSDP_XSDT_ADDRESS = 24;
export const RSDP_EXTENDED_CHECKSUM = 32;

/**
 * The RSDP, pointing at the XSDT. RsdtAddress stays 0: an OS that reads revision 2 uses the
 * XSDT, and we keep one root table rather than two that must agree.
 */
export function rsdp(xsdtAddress: number): Uint8Array {
  const t = new Uint8Array(RSDP_SIZE);
  const dv = new DataView(t.buffer);
  putAscii(t, 0, RSDP_SIGNATURE, 8);
  putAscii(t, RSDP_OEM_ID, ACPI_OEM_ID, 6);
  dv.setUint8(RSDP_REVISION, 2);
  dv.setUint32(RSDP_RSDT_ADDRESS, 0, true);
  dv.setUint32(RSDP_LENGTH, RSDP_SIZE, true);
  dv.setBigUint64(RSDP_XSDT_ADDRESS, BigInt(xsdtAddress), true);
  t[RSDP_CHECKSUM] = checksum(t.subarray(0, RSDP_V1_SIZE));
  t[RSDP_EXTENDED_CHECKSUM] = checksum(t);
  return t;
}

// ---------------------------------------------------------------------------------------
// XSDT: the header and a 64-bit address per table (FADT, MADT, and whatever comes later).

export function xsdtSize(entries: number): number {
  return SDT_HEADER_SIZE + 8 * entries;
}

export function xsdt(tableAddresses: readonly number[]): Uint8Array {
  const body = new Uint8Array(8 * tableAddresses.length);
  const dv = new DataView(body.buffer);
  tableAddresses.forEach((a, i) => dv.setBigUint64(8 * i, BigInt(a), true));
  return sdt('XSDT', 1, body);
}

// ---------------------------------------------------------------------------------------
// FACS: the firmware/OS shared area (waking vector, global lock). Not a checksummed SDT.

export const FACS_SIZE = 64;
/** The FACS must sit on a 64-byte boundary. */
export const FACS_ALIGN = 64;
export const FACS_LENGTH = 4;
export const FACS_HARDWARE_SIGNATURE = 8;
export const FACS_FIRMWARE_WAKING_VECTOR = 12;
export const FACS_GLOBAL_LOCK = 16;
export const FACS_FLAGS = 20;
export const FACS_X_FIRMWARE_WAKING_VECTOR = 24;
export const FACS_VERSION = 32;
export const FACS_OSPM_FLAGS = 36;

/**
 * An FACS with no waking vector (nothing sleeps and wakes here: only S5 exists), no S4BIOS,
 * and the global lock free. Version 2 is the layout with X_Firmware_Waking_Vector and OSPM
 * flags.
 */
export function facs(): Uint8Array {
  const t = new Uint8Array(FACS_SIZE);
  const dv = new DataView(t.buffer);
  putAscii(t, 0, 'FACS', 4);
  dv.setUint32(FACS_LENGTH, FACS_SIZE, true);
  dv.setUint8(FACS_VERSION, 2);
  return t;
}

// ---------------------------------------------------------------------------------------
// FADT (signature "FACP"): the fixed hardware and where the DSDT and FACS are.

export const FADT_REVISION = 6;
/** ACPI 6.3: the minor version of revision 6 */
export const FADT_MINOR_VERSION = 3;
export const FADT_SIZE = 276;
// Field offsets (ACPI 6.3, table "FADT Format").
export const FADT_FIRMWARE_CTRL = 36;
export const FADT_DSDT = 40;
export const FADT_PREFERRED_PM_PROFILE = 45;
export const FADT_SCI_INT = 46;
export const FADT_SMI_CMD = 48;
export const FADT_PM1A_EVT_BLK = 56;
export const FADT_PM1A_CNT_BLK = 64;
export const FADT_PM_TMR_BLK = 76;
export const FADT_PM1_EVT_LEN = 88;
export const FADT_PM1_CNT_LEN = 89;
export const FADT_P_LVL2_LAT = 96;
export const FADT_P_LVL3_LAT = 98;
export const FADT_CENTURY = 108;
export const FADT_IAPC_BOOT_ARCH = 109;
export const FADT_FLAGS = 112;
export const FADT_RESET_REG = 116;
export const FADT_RESET_VALUE = 128;
export const FADT_MINOR_VERSION_OFFSET = 131;
export const FADT_X_FIRMWARE_CTRL = 132;
export const FADT_X_DSDT = 140;
export const FADT_X_PM1A_EVT_BLK = 148;
export const FADT_X_PM1A_CNT_BLK = 172;
export const FADT_HYPERVISOR_VENDOR_ID = 268;

// IAPC_BOOT_ARCH.
export const IAPC_BOOT_ARCH_LEGACY_DEVICES = 1 << 0;
export const IAPC_BOOT_ARCH_8042 = 1 << 1;
export const IAPC_BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2;
export const IAPC_BOOT_ARCH_MSI_NOT_SUPPORTED = 1 << 3;
export const IAPC_BOOT_ARCH_PCIE_ASPM_CONTROLS = 1 << 4;
export const IAPC_BOOT_ARCH_CMOS_RTC_NOT_PRESENT = 1 << 5;

// Fixed feature flags.
export const FADT_F_WBINVD = 1 << 0;
export const FADT_F_WBINVD_FLUSH = 1 << 1;
export const FADT_F_PROC_C1 = 1 << 2;
export const FADT_F_P_LVL2_UP = 1 << 3;
/** set: the power button is a control-method device or absent; clear: the fixed one */
export const FADT_F_PWR_BUTTON = 1 << 4;
/** set: the sleep button is a control-method device or absent */
export const FADT_F_SLP_BUTTON = 1 << 5;
/** set: RTC wake status is not in the fixed register space */
export const FADT_F_FIX_RTC = 1 << 6;
export const FADT_F_RTC_S4 = 1 << 7;
export const FADT_F_TMR_VAL_EXT = 1 << 8;
export const FADT_F_DCK_CAP = 1 << 9;
export const FADT_F_RESET_REG_SUP = 1 << 10;
export const FADT_F_SEALED_CASE = 1 << 11;
export const FADT_F_HEADLESS = 1 << 12;
export const FADT_F_HW_REDUCED_ACPI = 1 << 20;

/** P_LVL2_LAT above 100 µs and P_LVL3_LAT above 1000 µs say "no C2" and "no C3". */
const C2_NOT_SUPPORTED = 101;
const C3_NOT_SUPPORTED = 1001;

/** The register a guest writes to reset the machine, and the value that does it. */
export interface ResetRegister {
  port: number;
  value: number;
}

export interface FadtOptions {
  facsAddress: number;
  dsdtAddress: number;
  /** the ISA IRQ the PM1 block raises (SCI_INT) */
  sciIrq: number;
  reset: ResetRegister;
  /** MSI works on this platform (clears MSI_NOT_SUPPORTED) */
  msi: boolean;
  /** a VGA-compatible display exists (clears VGA_NOT_PRESENT) */
  vga: boolean;
}

/**
 * A revision-6 FADT for a full (not hardware-reduced) ACPI PC: the PM1a event and control
 * blocks of devices/legacy/pm1.ts, both as 32-bit port numbers and as GAS; no SMI_CMD, so
 * the platform is always in ACPI mode (PM1_CNT.SCI_EN reads 1); no PM timer (optional since
 * ACPI 5.0A) and no GPE blocks; a fixed-feature power button; reset through `reset`.
 */
export function fadt(o: FadtOptions): Uint8Array {
  const body = new Uint8Array(FADT_SIZE - SDT_HEADER_SIZE);
  const dv = new DataView(body.buffer);
  const at = (offset: number) => offset - SDT_HEADER_SIZE;
  const pm1EvtBlk = PM1_BASE_PORT;
  const pm1CntBlk = PM1_BASE_PORT + PM1_CNT;

  // The FACS is below 4 GiB, so FIRMWARE_CTRL holds it and X_FIRMWARE_CTRL must be zero.
  dv.setUint32(at(FADT_FIRMWARE_CTRL), o.facsAddress, true);
  dv.setUint32(at(FADT_DSDT), o.dsdtAddress, true);
  dv.setUint8(at(FADT_PREFERRED_PM_PROFILE), 0); // unspecified
  dv.setUint16(at(FADT_SCI_INT), o.sciIrq, true);
  dv.setUint32(at(FADT_SMI_CMD), 0, true); // no SMI: ACPI_ENABLE/ACPI_DISABLE are unused
  dv.setUint32(at(FADT_PM1A_EVT_BLK), pm1EvtBlk, true);
  dv.setUint32(at(FADT_PM1A_CNT_BLK), pm1CntBlk, true);
  dv.setUint8(at(FADT_PM1_EVT_LEN), PM1_EVT_LEN);
  dv.setUint8(at(FADT_PM1_CNT_LEN), PM1_CNT_LEN);
  dv.setUint16(at(FADT_P_LVL2_LAT), C2_NOT_SUPPORTED, true);
  dv.setUint16(at(FADT_P_LVL3_LAT), C3_NOT_SUPPORTED, true);
  dv.setUint8(at(FADT_CENTURY), RTC_CENTURY);
  dv.setUint16(
    at(FADT_IAPC_BOOT_ARCH),
    // The UART and RTC are ISA (LPC) devices the OS needs drivers for; the 8042 is at 0x60/0x64.
    IAPC_BOOT_ARCH_LEGACY_DEVICES |
      IAPC_BOOT_ARCH_8042 |
      (o.vga ? 0 : IAPC_BOOT_ARCH_VGA_NOT_PRESENT) |
      (o.msi ? 0 : IAPC_BOOT_ARCH_MSI_NOT_SUPPORTED),
    true,
  );
  dv.setUint32(
    at(FADT_FLAGS),
    // HLT is C1 on every vCPU; the power button is the fixed one (PWR_BUTTON clear); there is
    // no sleep button and no RTC wake in PM1; HW_REDUCED_ACPI is clear.
    FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON | FADT_F_FIX_RTC | FADT_F_RESET_REG_SUP,
    true,
  );
  putGas(dv, at(FADT_RESET_REG), { spaceId: GAS_SYSTEM_IO, bitWidth: 8, accessSize: GAS_ACCESS_BYTE, address: o.reset.port });
  dv.setUint8(at(FADT_RESET_VALUE), o.reset.value);
  dv.setUint8(at(FADT_MINOR_VERSION_OFFSET), FADT_MINOR_VERSION);
  dv.setBigUint64(at(FADT_X_DSDT), BigInt(o.dsdtAddress), true);
  // The PM1 registers are 16 bits wide: word accesses, the block's whole width.
  putGas(dv, at(FADT_X_PM1A_EVT_BLK), {
    spaceId: GAS_SYSTEM_IO,
    bitWidth: 8 * PM1_EVT_LEN,
    accessSize: GAS_ACCESS_WORD,
    address: pm1EvtBlk,
  });
  putGas(dv, at(FADT_X_PM1A_CNT_BLK), {
    spaceId: GAS_SYSTEM_IO,
    bitWidth: 8 * PM1_CNT_LEN,
    accessSize: GAS_ACCESS_WORD,
    address: pm1CntBlk,
  });
  // PM1b, PM2, PM timer, GPE0/1, sleep control/status and the hypervisor vendor id stay 0.
  return sdt('FACP', FADT_REVISION, body);
}

// ---------------------------------------------------------------------------------------
// MADT (signature "APIC"): the interrupt controllers.

export const MADT_REVISION = 5;
export const MADT_LOCAL_APIC_ADDRESS = 36;
export const MADT_FLAGS = 40;
export const MADT_ENTRIES = 44;
export const MADT_PCAT_COMPAT = 1 << 0;

// Interrupt controller structure types and lengths.
export const MADT_TYPE_LOCAL_APIC = 0;
export const MADT_TYPE_IO_APIC = 1;
export const MADT_TYPE_INTERRUPT_SOURCE_OVERRIDE = 2;
export const MADT_TYPE_LOCAL_APIC_NMI = 4;
const LOCAL_APIC_LEN = 8;
const IO_APIC_LEN = 12;
const INTERRUPT_SOURCE_OVERRIDE_LEN = 10;
const LOCAL_APIC_NMI_LEN = 6;

export const MADT_LOCAL_APIC_ENABLED = 1 << 0;
/** ACPI processor UID 0xff in a Local APIC NMI structure: every processor */
export const MADT_ALL_PROCESSORS = 0xff;
/** The ISA bus, as the Bus field of an Interrupt Source Override. */
const ISA_BUS = 0;

// MPS INTI flags.
export const MPS_INTI_POLARITY_CONFORMS = 0b00;
export const MPS_INTI_POLARITY_ACTIVE_HIGH = 0b01;
export const MPS_INTI_POLARITY_ACTIVE_LOW = 0b11;
export const MPS_INTI_TRIGGER_CONFORMS = 0b00 << 2;
export const MPS_INTI_TRIGGER_EDGE = 0b01 << 2;
export const MPS_INTI_TRIGGER_LEVEL = 0b11 << 2;

/**
 * The IOAPIC's ID. KVM's in-kernel IOAPIC comes out of reset with ID 0, and the MADT must say
 * what the hardware says; since the xAPIC, IOAPIC and local APIC IDs no longer share one
 * namespace, so 0 does not clash with the BSP's APIC ID. (An ID equal to the vCPU count
 * would also break above 15 vCPUs: KVM keeps only 4 bits of the IOAPIC ID.)
 */
export const IOAPIC_ID = 0;
/**
 * The IOAPIC's first GSI and its number of inputs: KVM's in-kernel IOAPIC has 24
 * (KVM_IOAPIC_NUM_PINS), GSIs 0-23.
 */
export const IOAPIC_GSI_BASE = 0;
export const IOAPIC_PINS = 24;
/**
 * GSIs 0-15 are the ISA IRQs (edge-triggered, active high unless an override says otherwise);
 * the overrides below cover only those. GSIs 16-23 have none, so ACPI gives them the PCI
 * interrupt's polarity and trigger mode (level, active low) and a _PRT can route to them.
 */
export const ISA_IRQ_COUNT = 16;
/** The ISA IRQ of the PIT, and the IOAPIC pin KVM's in-kernel IOAPIC wires it to. */
export const PIT_ISA_IRQ = 0;
export const PIT_GSI = 2;
/** The LAPIC input the NMI is wired to (see vcpu/cpu-setup.ts's virtual wire). */
export const NMI_LINT = 1;

export interface MadtOptions {
  /** vCPU i gets ACPI processor UID i and local APIC ID i */
  cpus: number;
  /** the SCI's ISA IRQ: level-triggered, active high */
  sciIrq: number;
}

/** The number of interrupt controller structures madt() writes for `cpus` vCPUs. */
export function madtEntryCount(cpus: number): number {
  return cpus + 1 /* IOAPIC */ + 2 /* overrides */ + 1 /* NMI */;
}

export function madt(o: MadtOptions): Uint8Array {
  const size = o.cpus * LOCAL_APIC_LEN + IO_APIC_LEN + 2 * INTERRUPT_SOURCE_OVERRIDE_LEN + LOCAL_APIC_NMI_LEN;
  const body = new Uint8Array(MADT_ENTRIES - SDT_HEADER_SIZE + size);
  const dv = new DataView(body.buffer);
  dv.setUint32(MADT_LOCAL_APIC_ADDRESS - SDT_HEADER_SIZE, LAPIC_BASE, true);
  // PCAT_COMPAT: there are 8259 PICs too (KVM's in-kernel PIC), which the OS must mask.
  dv.setUint32(MADT_FLAGS - SDT_HEADER_SIZE, MADT_PCAT_COMPAT, true);
  let p = MADT_ENTRIES - SDT_HEADER_SIZE;

  for (let id = 0; id < o.cpus; id++) {
    dv.setUint8(p, MADT_TYPE_LOCAL_APIC);
    dv.setUint8(p + 1, LOCAL_APIC_LEN);
    dv.setUint8(p + 2, id); // ACPI processor UID
    dv.setUint8(p + 3, id); // APIC ID, as cpuidFor() reports it
    dv.setUint32(p + 4, MADT_LOCAL_APIC_ENABLED, true);
    p += LOCAL_APIC_LEN;
  }

  dv.setUint8(p, MADT_TYPE_IO_APIC);
  dv.setUint8(p + 1, IO_APIC_LEN);
  dv.setUint8(p + 2, IOAPIC_ID);
  dv.setUint32(p + 4, IOAPIC_BASE, true);
  dv.setUint32(p + 8, IOAPIC_GSI_BASE, true); // pins 0-23 are GSIs 0-23
  p += IO_APIC_LEN;

  const override = (source: number, gsi: number, flags: number) => {
    dv.setUint8(p, MADT_TYPE_INTERRUPT_SOURCE_OVERRIDE);
    dv.setUint8(p + 1, INTERRUPT_SOURCE_OVERRIDE_LEN);
    dv.setUint8(p + 2, ISA_BUS);
    dv.setUint8(p + 3, source);
    dv.setUint32(p + 4, gsi, true);
    dv.setUint16(p + 8, flags, true);
    p += INTERRUPT_SOURCE_OVERRIDE_LEN;
  };
  // The PIT's IRQ 0 is IOAPIC pin 2 (pin 0 is the PIC's INTR), edge/high as ISA is.
  override(PIT_ISA_IRQ, PIT_GSI, MPS_INTI_POLARITY_CONFORMS | MPS_INTI_TRIGGER_CONFORMS);
  // The SCI is a level interrupt; the PM1 device drives its line high while asserted.
  // Without this entry an OS takes the ACPI default for the SCI: level, active low.
  override(o.sciIrq, o.sciIrq, MPS_INTI_POLARITY_ACTIVE_HIGH | MPS_INTI_TRIGGER_LEVEL);

  dv.setUint8(p, MADT_TYPE_LOCAL_APIC_NMI);
  dv.setUint8(p + 1, LOCAL_APIC_NMI_LEN);
  dv.setUint8(p + 2, MADT_ALL_PROCESSORS);
  dv.setUint16(p + 3, MPS_INTI_POLARITY_CONFORMS | MPS_INTI_TRIGGER_CONFORMS, true);
  dv.setUint8(p + 5, NMI_LINT);
  p += LOCAL_APIC_NMI_LEN;

  return sdt('APIC', MADT_REVISION, body);
}

// ---------------------------------------------------------------------------------------
// MCFG: where PCI configuration space is memory-mapped (ECAM). After the header, 8 reserved
// bytes, then one 16-byte allocation per PCI segment group and bus range.

export const MCFG_REVISION = 1;
export const MCFG_ALLOCATIONS = 44;
export const MCFG_ALLOCATION_SIZE = 16;

/** One ECAM window: bus `startBus`'s configuration space is at `base` + startBus << 20. */
export interface McfgAllocation {
  /** the address of bus 0's configuration space (even when startBus is not 0) */
  base: number;
  /** the PCI segment group (_SEG of the host bridge) */
  segment: number;
  startBus: number;
  endBus: number;
}

export function mcfgSize(allocations: number): number {
  return MCFG_ALLOCATIONS + MCFG_ALLOCATION_SIZE * allocations;
}

export function mcfg(allocations: readonly McfgAllocation[]): Uint8Array {
  const body = new Uint8Array(mcfgSize(allocations.length) - SDT_HEADER_SIZE);
  const dv = new DataView(body.buffer);
  allocations.forEach((a, i) => {
    const bus = (b: number) => Number.isInteger(b) && b >= 0 && b <= 0xff;
    const segment = Number.isInteger(a.segment) && a.segment >= 0 && a.segment <= 0xffff;
    if (!segment || !bus(a.startBus) || !bus(a.endBus) || a.startBus > a.endBus) {
      throw new RangeError(`MCFG allocation ${i}: segment ${a.segment}, buses ${a.startBus}-${a.endBus} is not a bus range`);
    }
    if (!Number.isSafeInteger(a.base) || a.base < 0 || a.base % (1 << 20) !== 0) {
      throw new RangeError(`MCFG allocation ${i}: base ${a.base} is not 1 MiB-aligned`);
    }
    const p = MCFG_ALLOCATIONS - SDT_HEADER_SIZE + MCFG_ALLOCATION_SIZE * i;
    dv.setBigUint64(p, BigInt(a.base), true);
    dv.setUint16(p + 8, a.segment, true);
    dv.setUint8(p + 10, a.startBus);
    dv.setUint8(p + 11, a.endBus);
    // bytes 12-15 reserved
  });
  return sdt('MCFG', MCFG_REVISION, body);
}
