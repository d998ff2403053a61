/**
 * The DSDT: the AML namespace of a vmctl machine. It holds the S5 sleep package and the PC's
 * legacy ISA devices in \_SB, so an OS finds them the ACPI way (Linux's 8250_pnp, i8042 and
 * rtc_cmos drivers bind to their _HIDs); with PCI, the host bridge \_SB.PCI0 (its bus, I/O
 * and memory windows and its _PRT) and \_SB.MRES, which reserves the ECAM window. More
 * devices are more AML terms passed in `devices`, and land in \_SB after these.
 *
 * Written from the ACPI specification: "\_Sx (System States)", "Device Configuration"
 * (_HID, _CID, _UID, _CRS, _PRT, _SEG, _BBN), and the PNP IDs of the devices; and from the
 * PCI Firmware Specification 3.x ("Host Bridge Device", "PCI Express Memory-mapped
 * Configuration Space": the ECAM range is reserved by a PNP0C02 device's _CRS).
 */
import { PM1_SLP_TYP_S5 } from '../devices/legacy/pm1.js';
import {
  PCI_CONFIG_IO_PORT,
  PCI_CONFIG_IO_SIZE,
  PCI_ECAM_BASE,
  PCI_ECAM_BUSES,
  PCI_ECAM_SIZE,
  PCI_IO_END,
  PCI_MMIO32_END,
  PCI_MMIO32_START,
} from '../memory/layout.js';
import {
  concat,
  device,
  dwordMemory,
  eisaId,
  integer,
  io,
  irqNoFlags,
  name,
  pkg,
  resourceTemplate,
  scope,
  wordBusNumber,
  wordIo,
} from './aml.js';
import { sdt } from './sdt.js';

/** Revision 2 and up: the AML uses 64-bit integers. */
export const DSDT_REVISION = 2;

/** A fixed I/O range of a legacy device. */
export interface PortRange {
  base: number;
  length: number;
}

/** A legacy ISA device as the DSDT describes it. */
export interface IsaDevice {
  /** its NameSeg under \_SB */
  name: string;
  /** its PNP id (_HID) */
  hid: string;
  /** _UID: needed to tell apart devices that share a _HID */
  uid?: number;
  ports: readonly PortRange[];
  /** ISA IRQs, edge-triggered and active high */
  irqs: readonly number[];
}

/**
 * The legacy devices builder.ts attaches, at the ports and IRQs it attaches them at.
 * The mouse has no ports of its own: it is the 8042's second (aux) channel.
 */
export const PC_LEGACY_DEVICES: readonly IsaDevice[] = [
  { name: 'COM1', hid: 'PNP0501', uid: 1, ports: [{ base: 0x3f8, length: 8 }], irqs: [4] },
  { name: 'KBD', hid: 'PNP0303', ports: [{ base: 0x60, length: 1 }, { base: 0x64, length: 1 }], irqs: [1] },
  { name: 'MOU', hid: 'PNP0F13', ports: [], irqs: [12] },
  { name: 'RTC', hid: 'PNP0B00', ports: [{ base: 0x70, length: 2 }], irqs: [8] },
];

/** Device(name) { _HID, [_UID,] _CRS } for a legacy ISA device. */
export function isaDevice(d: IsaDevice): Uint8Array {
  const crs = resourceTemplate(
    ...d.ports.map((p) => io({ min: p.base, max: p.base, alignment: 1, length: p.length })),
    ...(d.irqs.length > 0 ? [irqNoFlags(...d.irqs)] : []),
  );
  return device(
    d.name,
    name('_HID', eisaId(d.hid)),
    ...(d.uid !== undefined ? [name('_UID', integer(d.uid))] : []),
    name('_CRS', crs),
  );
}

/**
 * Name(\_S5, Package() { SLP_TYPa, SLP_TYPb, 0, 0 }): the values the OS writes to
 * PM1_CNT.SLP_TYP to power off. There is no PM1b block, so SLP_TYPb is never written; it
 * repeats SLP_TYPa, as is customary.
 */
export function sleepStateS5(): Uint8Array {
  return name('_S5', pkg(integer(PM1_SLP_TYP_S5), integer(PM1_SLP_TYP_S5), integer(0), integer(0)));
}

/**
 * Where one interrupt pin of one bus-0 slot goes: the fields of pci/intx.ts's PciIntxRoute
 * that a _PRT entry needs, so `PciBus.intxRoutes()` can be passed as it is.
 */
export interface PciRoute {
  /** the device number on bus 0 (0-31) */
  slot: number;
  /** 0 = INTA# .. 3 = INTD# */
  pin: number;
  /** the IOAPIC input (GSI) the pin drives */
  gsi: number;
}

export interface PciHostBridgeOptions {
  /** one _PRT entry each */
  routes: readonly PciRoute[];
}

/**
 * Name(_PRT, Package() { Package() { 0xSSSSFFFF, pin, 0, gsi }, ... }): the interrupt routing
 * of bus 0. Address is the device number in the high word and 0xFFFF (any function); Source 0
 * says the Source Index is a GSI, which ACPI takes as level-triggered, active low and
 * shareable (a PCI interrupt).
 */
export function pciRoutingTable(routes: readonly PciRoute[]): Uint8Array {
  for (const r of routes) {
    if (!Number.isInteger(r.slot) || r.slot < 0 || r.slot > 31 || !Number.isInteger(r.pin) || r.pin < 0 || r.pin > 3) {
      throw new RangeError(`_PRT entry for slot ${r.slot} pin ${r.pin}: slots are 0-31, pins 0-3`);
    }
  }
  return name(
    '_PRT',
    pkg(...routes.map((r) => pkg(integer(((r.slot << 16) | 0xffff) >>> 0), integer(r.pin), integer(0), integer(r.gsi)))),
  );
}

/**
 * \_SB.PCI0's _CRS: what the host bridge decodes for bus 0 and below. Buses 0-255 (the ECAM
 * window's); the configuration ports 0xCF8-0xCFF, which the bridge itself consumes; all other
 * I/O ports, as two windows around them; and the 32-bit memory window BARs live in. The ECAM
 * window itself is not the bridge's to hand out: \_SB.MRES reserves it.
 */
export function pciHostBridgeResources(): Uint8Array {
  const configEnd = PCI_CONFIG_IO_PORT + PCI_CONFIG_IO_SIZE;
  return resourceTemplate(
    wordBusNumber({ producer: true, min: 0, max: PCI_ECAM_BUSES - 1 }),
    io({ min: PCI_CONFIG_IO_PORT, max: PCI_CONFIG_IO_PORT, alignment: 1, length: PCI_CONFIG_IO_SIZE }),
    wordIo({ producer: true, min: 0, max: PCI_CONFIG_IO_PORT - 1 }),
    wordIo({ producer: true, min: configEnd, max: PCI_IO_END - 1 }),
    dwordMemory({ producer: true, min: PCI_MMIO32_START, max: PCI_MMIO32_END - 1, caching: 'non-cacheable' }),
  );
}

/**
 * Device(PCI0): the PCI Express host bridge of segment 0, bus 0 (PNP0A08, compatible with
 * the PCI one, PNP0A03, for an OS that knows only that), its resources and its _PRT. No _OSC:
 * the OS keeps the PCIe services (hot-plug, AER, PME) off, and there are none to have.
 */
export function pciHostBridge(options: PciHostBridgeOptions): Uint8Array {
  return device(
    'PCI0',
    name('_HID', eisaId('PNP0A08')),
    name('_CID', eisaId('PNP0A03')),
    name('_SEG', integer(0)),
    name('_BBN', integer(0)),
    name('_UID', integer(0)),
    name('_CRS', pciHostBridgeResources()),
    pciRoutingTable(options.routes),
  );
}

/**
 * Device(MRES): motherboard resources (PNP0C02) holding the ECAM window, so the OS keeps it
 * out of its address allocator (Linux also insists on this, or on an e820 reservation,
 * before it uses the MCFG's window).
 */
export function motherboardResources(): Uint8Array {
  return device(
    'MRES',
    name('_HID', eisaId('PNP0C02')),
    name('_CRS', resourceTemplate(dwordMemory({ min: PCI_ECAM_BASE, max: PCI_ECAM_BASE + PCI_ECAM_SIZE - 1 }))),
  );
}

export interface DsdtOptions {
  /** the PCI host bridge: adds \_SB.PCI0 and \_SB.MRES after the legacy devices */
  pci?: PciHostBridgeOptions;
  /** AML terms (devices, mostly) to put in \_SB after the legacy devices (and PCI) */
  devices?: readonly Uint8Array[];
}

/** The DSDT: \_S5 and \_SB with the PC legacy devices, the PCI host bridge and `devices`. */
export function dsdt(options: DsdtOptions = {}): Uint8Array {
  const pci = options.pci !== undefined ? [pciHostBridge(options.pci), motherboardResources()] : [];
  const body = concat(
    sleepStateS5(),
    scope('\\_SB', ...PC_LEGACY_DEVICES.map(isaDevice), ...pci, ...(options.devices ?? [])),
  );
  return sdt('DSDT', DSDT_REVISION, body);
}
