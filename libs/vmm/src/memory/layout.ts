/**
 * The guest-physical memory map of an x86-64 vmctl machine.
 *
 *   0            .. 0x9fc00       RAM (conventional memory; the BIOS data area lives at its start)
 *   0x9fc00      .. 0xa0000       reserved (EBDA)
 *   0xa0000      .. 0x100000      legacy VGA window and ROM area; 0xe0000..0xf0000 holds the
 *                                 ACPI tables (RSDP first), and 0xe0000..0x100000 is reserved
 *   0x100000     .. min(ram, 3 GiB)   RAM
 *   3 GiB        .. 4 GiB         the 32-bit PCI/MMIO hole: PCI BARs, ECAM, IOAPIC (0xfec00000),
 *                                 LAPIC (0xfee00000), firmware at the top
 *   4 GiB        .. 4 GiB + (ram - 3 GiB)   the rest of RAM
 *
 * Low RAM below 1 MiB is backed by the same memory slot as the rest; the reserved parts are
 * only declared reserved in the e820 map, as on real machines.
 */
export const MIB = 1024 * 1024;
export const GIB = 1024 * MIB;

/** End of RAM below the 32-bit hole. */
export const RAM_32BIT_END = 3 * GIB;
/** Start of RAM above the 32-bit hole. */
export const RAM_64BIT_START = 4 * GIB;
/** Start of the 32-bit MMIO hole. */
export const MMIO_HOLE_START = RAM_32BIT_END;
export const MMIO_HOLE_END = 4 * GIB;

export const EBDA_START = 0x9fc00;
export const LEGACY_HOLE_START = 0xa0000;
export const HIMEM_START = 0x100000;

/**
 * The ACPI tables. The RSDP goes first, at the start of the BIOS read-only area that a legacy
 * OS scans for it (0xe0000..0xfffff); the area is reserved in the e820 map, as the FACS must
 * not be reported as RAM.
 */
export const ACPI_TABLES_START = 0xe0000;
export const ACPI_TABLES_END = 0xf0000;

export const IOAPIC_BASE = 0xfec00000;
export const LAPIC_BASE = 0xfee00000;

/** KVM needs three pages for the TSS (VMX real-mode emulation) and one for the identity map. */
export const KVM_TSS_ADDR = 0xfffbd000;
export const KVM_IDENTITY_MAP_ADDR = 0xfffbc000;

/** Low-memory areas the loaders use. */
export const BOOT_GDT_ADDR = 0x500;
export const PVH_START_INFO_ADDR = 0x6000;
export const PVH_MODLIST_ADDR = 0x6800;
export const PVH_MEMMAP_ADDR = 0x7000;
/** Identity-mapping page tables for a 64-bit entry: PML4, PDPT, and four page directories. */
export const BOOT_PML4_ADDR = 0x9000;
export const BOOT_PDPT_ADDR = 0xa000;
export const BOOT_PD_ADDR = 0xb000;
/** The boot stack for a 64-bit entry grows down from here. */
export const BOOT_STACK_TOP = 0x8ff0;
export const CMDLINE_ADDR = 0x20000;
export const CMDLINE_MAX = 0x10000;

/** Smallest and largest guest RAM we accept. */
export const MIN_RAM = 16 * MIB;
export const MAX_RAM = 1024 * GIB;

export interface RamRegion {
  /** guest-physical start */
  gpa: number;
  size: number;
  /** offset of this region in the host mapping */
  hostOffset: number;
}

/** The RAM regions for `ramSize` bytes of guest memory. */
export function ramRegions(ramSize: number): RamRegion[] {
  if (ramSize <= RAM_32BIT_END) return [{ gpa: 0, size: ramSize, hostOffset: 0 }];
  return [
    { gpa: 0, size: RAM_32BIT_END, hostOffset: 0 },
    { gpa: RAM_64BIT_START, size: ramSize - RAM_32BIT_END, hostOffset: RAM_32BIT_END },
  ];
}

export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/**
 * The e820 map given to the guest (PVH memmap and boot_params alike): the fixed areas below
 * 1 MiB and the PCI ECAM window, then RAM from 1 MiB up, the last entry ending at the top of
 * RAM. (An OS sorts the map; Linux does.) The ECAM window is reserved as well as described in
 * the MCFG: Linux uses an MCFG window only once it finds it reserved, in e820 (early) or by an
 * ACPI motherboard device.
 */
export function e820Map(ramSize: number): E820Entry[] {
  const entries: E820Entry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: LEGACY_HOLE_START - EBDA_START, type: E820_RESERVED },
    { addr: ACPI_TABLES_START, size: HIMEM_START - ACPI_TABLES_START, type: E820_RESERVED },
    { addr: PCI_ECAM_BASE, size: PCI_ECAM_SIZE, type: E820_RESERVED },
  ];
  for (const r of ramRegions(ramSize)) {
    const start = Math.max(r.gpa, HIMEM_START);
    const end = r.gpa + r.size;
    if (end > start) entries.push({ addr: start, size: end - start, type: E820_RAM });
  }
  return entries;
}

/** Parses a size such as `256M`, `1G`, `512k` or plain bytes. Returns undefined if malformed. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([kKmMgGtT]?)(i?[bB])?$/.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const unit = (m[2] ?? '').toUpperCase();
  const mult = unit === 'K' ? 1024 : unit === 'M' ? MIB : unit === 'G' ? GIB : unit === 'T' ? 1024 * GIB : 1;
  const v = n * mult;
  return Number.isSafeInteger(v) ? v : undefined;
}

// --- PCI (appended block; pci/ uses these, the ACPI code describes them) ---

/**
 * The PCI windows inside the 32-bit MMIO hole and the port space:
 *
 *   0xC0000000 .. 0xD0000000   32-bit memory BARs (and 64-bit ones, placed below 4 GiB)
 *   0xD0000000                 left unbacked on purpose: test guests use it as MMIO to nowhere
 *   0xE0000000 .. 0xF0000000   ECAM, 1 MiB per bus for buses 0–255 (the MCFG table's range;
 *                              it must also be reserved in e820 or in the DSDT)
 *   ports 0xC000 .. 0xFFFF     I/O BARs
 *   ports 0xCF8 .. 0xCFF       configuration mechanism #1 (0xCF9 is the reset register)
 */
export const PCI_MMIO32_START = 0xc0000000;
export const PCI_MMIO32_END = 0xd0000000;
export const PCI_ECAM_BASE = 0xe0000000;
export const PCI_ECAM_BUSES = 256;
export const PCI_ECAM_SIZE = PCI_ECAM_BUSES * MIB;
export const PCI_IO_START = 0xc000;
export const PCI_IO_END = 0x10000;
export const PCI_CONFIG_IO_PORT = 0xcf8;
export const PCI_CONFIG_IO_SIZE = 8;
