/**
 * PCI configuration-space register names and bits.
 *
 * Written from the PCI Local Bus Specification 3.0: §6.1 (the predefined header), §6.2.2
 * (Command), §6.2.3 (Status), §6.2.5 (Base Address Registers), §6.7 (capabilities list) and
 * §6.8.2 (the MSI-X capability and table). Names follow Linux's include/uapi/linux/pci_regs.h,
 * so a reader can grep either side.
 */

/** A conventional function's configuration space; ECAM reaches 4 KiB per function. */
export const PCI_CONFIG_SPACE_SIZE = 256;
export const PCIE_CONFIG_SPACE_SIZE = 4096;

// The type 0 / type 1 common header (§6.1).
export const PCI_VENDOR_ID = 0x00; // 16 bits
export const PCI_DEVICE_ID = 0x02; // 16 bits
export const PCI_COMMAND = 0x04; // 16 bits
export const PCI_STATUS = 0x06; // 16 bits
export const PCI_REVISION_ID = 0x08; // 8 bits
export const PCI_CLASS_PROG = 0x09; // 8 bits: programming interface
export const PCI_CLASS_DEVICE = 0x0a; // 16 bits: sub-class (low byte) and base class (high byte)
export const PCI_CACHE_LINE_SIZE = 0x0c;
export const PCI_LATENCY_TIMER = 0x0d;
export const PCI_HEADER_TYPE = 0x0e;
export const PCI_BIST = 0x0f;
export const PCI_BASE_ADDRESS_0 = 0x10; // six dwords, 0x10..0x27 (type 0)
export const PCI_SUBSYSTEM_VENDOR_ID = 0x2c;
export const PCI_SUBSYSTEM_ID = 0x2e;
export const PCI_ROM_ADDRESS = 0x30;
export const PCI_CAPABILITY_LIST = 0x34; // 8 bits: offset of the first capability
export const PCI_INTERRUPT_LINE = 0x3c;
export const PCI_INTERRUPT_PIN = 0x3d; // 0 = none, 1..4 = INTA#..INTD#
export const PCI_MIN_GNT = 0x3e;
export const PCI_MAX_LAT = 0x3f;

/** Where the capabilities of a type 0 function may start (§6.7: above the header). */
export const PCI_CAP_START = 0x40;

export const PCI_HEADER_TYPE_NORMAL = 0x00;
export const PCI_HEADER_TYPE_BRIDGE = 0x01;
export const PCI_HEADER_TYPE_MULTI_FUNCTION = 0x80;

/** Number of BARs in a type 0 header. */
export const PCI_NUM_BARS = 6;

// Command register (§6.2.2).
export const PCI_COMMAND_IO = 0x0001; // I/O space decode
export const PCI_COMMAND_MEMORY = 0x0002; // memory space decode
export const PCI_COMMAND_MASTER = 0x0004; // bus master (DMA) enable
export const PCI_COMMAND_SPECIAL = 0x0008;
export const PCI_COMMAND_INVALIDATE = 0x0010;
export const PCI_COMMAND_VGA_PALETTE = 0x0020;
export const PCI_COMMAND_PARITY = 0x0040;
export const PCI_COMMAND_SERR = 0x0100;
export const PCI_COMMAND_FAST_BACK = 0x0200;
export const PCI_COMMAND_INTX_DISABLE = 0x0400;
/** The command bits our functions implement; the others are hardwired to 0. */
export const PCI_COMMAND_WRITABLE =
  PCI_COMMAND_IO | PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER | PCI_COMMAND_PARITY | PCI_COMMAND_SERR | PCI_COMMAND_INTX_DISABLE;

// Status register (§6.2.3). The error bits are write-1-to-clear.
export const PCI_STATUS_INTERRUPT = 0x0008; // INTx# is asserted (read-only)
export const PCI_STATUS_CAP_LIST = 0x0010; // a capabilities list exists (read-only)
export const PCI_STATUS_66MHZ = 0x0020;
export const PCI_STATUS_FAST_BACK = 0x0080;
export const PCI_STATUS_PARITY = 0x0100; // master data parity error
export const PCI_STATUS_DEVSEL_MEDIUM = 0x0200;
export const PCI_STATUS_SIG_TARGET_ABORT = 0x0800;
export const PCI_STATUS_REC_TARGET_ABORT = 0x1000;
export const PCI_STATUS_REC_MASTER_ABORT = 0x2000;
export const PCI_STATUS_SIG_SYSTEM_ERROR = 0x4000;
export const PCI_STATUS_DETECTED_PARITY = 0x8000;
/** the status bits software clears by writing 1 */
export const PCI_STATUS_W1C =
  PCI_STATUS_PARITY |
  PCI_STATUS_SIG_TARGET_ABORT |
  PCI_STATUS_REC_TARGET_ABORT |
  PCI_STATUS_REC_MASTER_ABORT |
  PCI_STATUS_SIG_SYSTEM_ERROR |
  PCI_STATUS_DETECTED_PARITY;

// Base address registers (§6.2.5.1).
export const PCI_BASE_ADDRESS_SPACE_IO = 0x01;
export const PCI_BASE_ADDRESS_MEM_TYPE_32 = 0x00;
export const PCI_BASE_ADDRESS_MEM_TYPE_64 = 0x04;
export const PCI_BASE_ADDRESS_MEM_PREFETCH = 0x08;
/** the address bits of a memory BAR's low dword (bits 3:0 are type and flags) */
export const PCI_BASE_ADDRESS_MEM_MASK = 0xfffffff0;
/** the address bits of an I/O BAR (bits 1:0 are the space flag and a reserved bit) */
export const PCI_BASE_ADDRESS_IO_MASK = 0xfffffffc;

// Capability IDs (PCI Code and ID Assignment Specification).
export const PCI_CAP_ID_MSI = 0x05;
export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_EXP = 0x10;
export const PCI_CAP_ID_MSIX = 0x11;
/** every capability starts with its ID and the offset of the next one */
export const PCI_CAP_LIST_ID = 0;
export const PCI_CAP_LIST_NEXT = 1;

// MSI-X capability (§6.8.2).
export const PCI_MSIX_FLAGS = 2; // 16 bits: Message Control
export const PCI_MSIX_FLAGS_QSIZE = 0x07ff; // Table Size, encoded as N-1
export const PCI_MSIX_FLAGS_MASKALL = 0x4000; // Function Mask
export const PCI_MSIX_FLAGS_ENABLE = 0x8000; // MSI-X Enable
export const PCI_MSIX_TABLE = 4; // 32 bits: Table Offset (31:3) and BIR (2:0)
export const PCI_MSIX_PBA = 8; // 32 bits: PBA Offset (31:3) and BIR (2:0)
export const PCI_MSIX_BIR_MASK = 0x7;
export const PCI_CAP_MSIX_SIZEOF = 12;

// MSI-X table entry (§6.8.2.6 – §6.8.2.9): 16 bytes per vector.
export const PCI_MSIX_ENTRY_SIZE = 16;
export const PCI_MSIX_ENTRY_LOWER_ADDR = 0x0;
export const PCI_MSIX_ENTRY_UPPER_ADDR = 0x4;
export const PCI_MSIX_ENTRY_DATA = 0x8;
export const PCI_MSIX_ENTRY_VECTOR_CTRL = 0xc;
export const PCI_MSIX_ENTRY_CTRL_MASKBIT = 0x1;
/** the most vectors an MSI-X table may hold (an 11-bit N-1 field) */
export const PCI_MSIX_MAX_VECTORS = 2048;

// Class codes (PCI Code and ID Assignment Specification), as the 24-bit class register.
export const PCI_CLASS_BRIDGE_HOST = 0x060000;
export const PCI_CLASS_OTHERS = 0xff0000;
