/*
 * PCI for the test guests: configuration space, bus-0 enumeration and BAR
 * decoding, from the CPL3 body.  Written from the PCI Local Bus
 * Specification 3.0 (§3.2.2.3.2 configuration mechanism #1, §6.1-§6.2 the
 * type 0 header, §6.7 capabilities) and PCI Express Base §7.2.2 (ECAM).
 *
 * Configuration access: through ECAM when the ACPI MCFG table (reached from
 * hvm_start_info.rsdp_paddr) describes segment 0 bus 0 below 4 GiB -- one
 * MMIO exit per access -- else mechanism #1 at 0xCF8/0xCFC (two port
 * exits per access).  Command line `pci=cf8` forces the latter, `pci=ecam`
 * requires the former, and `ecam=ADDR` names the ECAM base of bus 0 where
 * ACPI does not (QEMU's microvm describes its ECAM only in the DSDT).
 */
#ifndef PCI_H
#define PCI_H

#include "guest.h"

/* Type 0 configuration header (PCI 3.0 §6.1). */
#define PCI_VENDOR_ID           0x00    /* u16 */
#define PCI_DEVICE_ID           0x02    /* u16 */
#define PCI_COMMAND             0x04    /* u16 */
#define PCI_STATUS              0x06    /* u16 */
#define PCI_REVISION_ID         0x08    /* u8; class code in bits 31:8 of the dword */
#define PCI_HEADER_TYPE         0x0E    /* u8 */
#define PCI_BASE_ADDRESS_0      0x10    /* u32 x 6 */
#define PCI_SUBSYSTEM_VENDOR_ID 0x2C
#define PCI_SUBSYSTEM_ID        0x2E
#define PCI_CAPABILITY_LIST     0x34    /* u8 */
#define PCI_INTERRUPT_LINE      0x3C
#define PCI_INTERRUPT_PIN       0x3D

#define PCI_COMMAND_IO          0x0001
#define PCI_COMMAND_MEMORY      0x0002
#define PCI_COMMAND_MASTER      0x0004
#define PCI_COMMAND_INTX_DISABLE 0x0400
#define PCI_STATUS_INTERRUPT    0x0008
#define PCI_STATUS_CAP_LIST     0x0010
#define PCI_HEADER_TYPE_MULTI   0x80

#define PCI_BAR_SPACE_IO        0x1
#define PCI_BAR_MEM_TYPE_MASK   0x6
#define PCI_BAR_MEM_TYPE_64     0x4
#define PCI_BAR_MEM_PREFETCH    0x8
#define PCI_NUM_BARS            6

#define PCI_CAP_ID_VNDR         0x09    /* vendor-specific: virtio's structures */
#define PCI_CAP_ID_MSIX         0x11

/* One function found on bus 0. */
struct pci_dev {
	u8 bus, dev, fn;
	u8 header_type;
	u16 vendor, device;
	u32 class;      /* base class << 16 | subclass << 8 | prog-if */
};

enum pci_bar_kind { PCI_BAR_NONE, PCI_BAR_IO, PCI_BAR_MEM32, PCI_BAR_MEM64 };

struct pci_bar {
	enum pci_bar_kind kind;
	int prefetch;
	int assigned;   /* 1: the address was given by pci_bar_setup, not found */
	u64 addr;
	u64 size;
};

/* Chooses the configuration mechanism; prints `pci: config via ...`.  0 ok. */
int pci_init(void);
/* True when configuration accesses go through ECAM. */
int pci_use_ecam(void);

u8 pci_read8(const struct pci_dev *d, u16 off);
u16 pci_read16(const struct pci_dev *d, u16 off);
u32 pci_read32(const struct pci_dev *d, u16 off);
void pci_write8(const struct pci_dev *d, u16 off, u8 v);
void pci_write16(const struct pci_dev *d, u16 off, u16 v);
void pci_write32(const struct pci_dev *d, u16 off, u32 v);

/*
 * Enumerates bus 0 (every device, every function of multi-function ones)
 * into a static table, printing `pci: BB:DD.F vvvv:dddd class=cccccc` per
 * function when `print`.  Returns the number found.
 */
int pci_scan(int print);
int pci_count(void);
const struct pci_dev *pci_get(int i);
/* The n-th (from 0) function with this vendor and device ID, or NULL. */
const struct pci_dev *pci_find(u16 vendor, u16 device, int n);

/*
 * Decodes and sizes BAR `i` (PCI 3.0 §6.2.5.1: decode is off while the
 * all-ones pattern is in the BAR).  A memory BAR the firmware left at 0, or
 * put where the guest's identity map does not reach (>= 4 GiB), is given a
 * naturally aligned address in PCI_ASSIGN_WINDOW that overlaps no other BAR
 * on bus 0.  Returns 0, or -1 for the upper half of a 64-bit BAR or a BAR
 * that could not be placed.
 */
int pci_bar_setup(const struct pci_dev *d, int i, struct pci_bar *bar);
#define PCI_ASSIGN_WINDOW_START 0xC0000000ull
#define PCI_ASSIGN_WINDOW_END   0xD0000000ull   /* 0xD0000000 stays unbacked (exitstorm) */

/* Sets bits in the command register (and clears `clear`). */
void pci_command(const struct pci_dev *d, u16 set, u16 clear);

/* Offset of the first capability with `id` after `from` (0: from the start), or 0. */
u8 pci_find_cap(const struct pci_dev *d, u8 id, u8 from);

/* "BB:DD.F" into buf (8 bytes). */
const char *pci_name(const struct pci_dev *d, char buf[8]);

#endif
