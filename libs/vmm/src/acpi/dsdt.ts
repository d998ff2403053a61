/**
 * The DSDT: the AML namespace of a vmctl machine. Today it holds the S5 sleep package and the
 * PC's legacy ISA devices in \_SB, so an OS finds them the ACPI way (Linux's 8250_pnp, i8042
 * and rtc_cmos drivers bind to their _HIDs). More devices (a PCI host bridge, virtio-mmio
 * devices) are more AML terms passed in `devices`, and land in \_SB beside these.
 *
 * Written from the ACPI specification: "\_Sx (System States)", "Device Configuration"
 * (_HID, _UID, _CRS) and the PNP IDs of the devices.
 */
import { PM1_SLP_TYP_S5 } from '../devices/legacy/pm1.js';
import { concat, device, eisaId, integer, io, irqNoFlags, name, pkg, resourceTemplate, scope } from './aml.js';
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

export interface DsdtOptions {
  /** AML terms (devices, mostly) to put in \_SB after the legacy devices */
  devices?: readonly Uint8Array[];
}

/** The DSDT: \_S5 and \_SB with the PC legacy devices and `devices`. */
export function dsdt(options: DsdtOptions = {}): Uint8Array {
  const body = concat(
    sleepStateS5(),
    scope('\\_SB', ...PC_LEGACY_DEVICES.map(isaDevice), ...(options.devices ?? [])),
  );
  return sdt('DSDT', DSDT_REVISION, body);
}
