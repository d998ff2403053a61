/*
 * PCI configuration space, bus-0 enumeration and BAR decoding (see pci.h).
 *
 * Everything runs at CPL3: the config ports are open through the TSS I/O
 * bitmap and ECAM is identity-mapped and user-accessible like the rest of
 * the first 4 GiB.  Each access is a VM exit (tens of microseconds on PVM),
 * so the code reads what it needs and no more: BARs of devices the guest
 * does not drive are only sized when a BAR has to be placed.
 */
#include "pci.h"

/* Configuration mechanism #1 (PCI 3.0 §3.2.2.3.2). */
#define PCI_CONFIG_ADDRESS      0xCF8
#define PCI_CONFIG_DATA         0xCFC
#define PCI_CONFIG_ENABLE       0x80000000u

#define MAX_FUNCS 256
#define MAPPED_LIMIT 0x100000000ull     /* the boot page tables map 4 GiB */

static struct pci_dev funcs[MAX_FUNCS];
static int nfuncs;

static u64 ecam_base;   /* 0: use 0xCF8 */
static u8 ecam_bus_start, ecam_bus_end;

/* ---- ACPI: find MCFG (ACPI 6.x §5.2.5 RSDP, §5.2.7/8 RSDT/XSDT; PCI FW 3.2 §4.1.2 MCFG) ---- */

static int acpi_checksum_ok(const u8 *p, u32 len)
{
	u8 sum = 0;
	for (u32 i = 0; i < len; i++)
		sum = (u8)(sum + p[i]);
	return sum == 0;
}

static const u8 *acpi_rsdp_at(u64 pa)
{
	if (pa == 0 || pa + 36 > MAPPED_LIMIT)
		return NULL;
	const u8 *p = (const u8 *)(unsigned long)pa;
	if (memcmp(p, "RSD PTR ", 8) != 0 || !acpi_checksum_ok(p, 20))
		return NULL;
	return p;
}

static const u8 *acpi_find_rsdp(void)
{
	const struct hvm_start_info *si = start_info();
	if (si && si->rsdp_paddr)
		return acpi_rsdp_at(si->rsdp_paddr);
	/*
	 * No pointer from the loader: the legacy-BIOS place (ACPI §5.2.5.1),
	 * the BIOS read-only area 0xE0000-0xFFFFF on 16-byte boundaries.
	 */
	for (u64 pa = 0xE0000; pa < 0x100000; pa += 16) {
		const u8 *p = acpi_rsdp_at(pa);
		if (p)
			return p;
	}
	return NULL;
}

static const u8 *acpi_table(u64 pa, const char sig[4])
{
	if (pa == 0 || pa + 36 > MAPPED_LIMIT)
		return NULL;
	const u8 *t = (const u8 *)(unsigned long)pa;
	u32 len;
	memcpy(&len, t + 4, 4);
	if (memcmp(t, sig, 4) != 0 || len < 36 || pa + len > MAPPED_LIMIT || !acpi_checksum_ok(t, len))
		return NULL;
	return t;
}

/* The MCFG entry for segment 0 that covers bus 0 and lies below 4 GiB. */
static int acpi_find_ecam(void)
{
	const u8 *rsdp = acpi_find_rsdp();
	if (!rsdp)
		return 0;
	const u8 *sdt = NULL;
	unsigned entsz = 4;
	if (rsdp[15] >= 2) {    /* revision 2+: the XSDT, 64-bit entries */
		u64 xsdt;
		memcpy(&xsdt, rsdp + 24, 8);
		sdt = acpi_table(xsdt, "XSDT");
		entsz = 8;
	}
	if (!sdt) {
		u32 rsdt;
		memcpy(&rsdt, rsdp + 16, 4);
		sdt = acpi_table(rsdt, "RSDT");
		entsz = 4;
	}
	if (!sdt)
		return 0;
	u32 len;
	memcpy(&len, sdt + 4, 4);
	for (u32 off = 36; off + entsz <= len; off += entsz) {
		u64 pa = 0;
		memcpy(&pa, sdt + off, entsz);
		const u8 *mcfg = acpi_table(pa, "MCFG");
		if (!mcfg)
			continue;
		u32 mlen;
		memcpy(&mlen, mcfg + 4, 4);
		/* Header (36), 8 reserved, then 16-byte allocation entries. */
		for (u32 e = 44; e + 16 <= mlen; e += 16) {
			u64 base;
			u16 seg;
			memcpy(&base, mcfg + e, 8);
			memcpy(&seg, mcfg + e + 8, 2);
			u8 start = mcfg[e + 10], end = mcfg[e + 11];
			if (seg != 0 || start != 0 || end < start)
				continue;
			if (base == 0 || base + ((u64)(end - start + 1) << 20) > MAPPED_LIMIT)
				continue;
			ecam_base = base;
			ecam_bus_start = start;
			ecam_bus_end = end;
			return 1;
		}
	}
	return 0;
}

int pci_init(void)
{
	char mode[8];
	int want = cmdline_str("pci", mode, sizeof(mode));
	u64 given;
	ecam_base = 0;
	if (cmdline_u64("ecam", &given) && given && given + (1 << 20) <= MAPPED_LIMIT) {
		/* Told on the command line (a VMM whose ACPI has no MCFG): bus 0 only. */
		ecam_base = given;
		ecam_bus_start = ecam_bus_end = 0;
	} else if (!(want && strcmp(mode, "cf8") == 0)) {
		acpi_find_ecam();
	}
	if (want && strcmp(mode, "ecam") == 0 && !ecam_base) {
		printf("pci: no ECAM (no MCFG for segment 0 bus 0 below 4 GiB)\n");
		return -1;
	}
	if (ecam_base)
		printf("pci: config via ecam 0x%llx buses %u-%u\n", ecam_base, ecam_bus_start, ecam_bus_end);
	else
		printf("pci: config via 0xcf8\n");
	return 0;
}

int pci_use_ecam(void) { return ecam_base != 0; }

/* ---- configuration access ---- */

static u64 ecam_addr(const struct pci_dev *d, u16 off)
{
	return ecam_base + ((u64)(d->bus - ecam_bus_start) << 20) + ((u64)d->dev << 15) +
	       ((u64)d->fn << 12) + (off & 0xFFF);
}

static void cf8_select(const struct pci_dev *d, u16 off)
{
	outl(PCI_CONFIG_ADDRESS, PCI_CONFIG_ENABLE | (u32)d->bus << 16 | (u32)d->dev << 11 |
					 (u32)d->fn << 8 | (off & 0xFC));
}

u8 pci_read8(const struct pci_dev *d, u16 off)
{
	if (ecam_base)
		return mmio_read8(ecam_addr(d, off));
	cf8_select(d, off);
	return inb((u16)(PCI_CONFIG_DATA + (off & 3)));
}

u16 pci_read16(const struct pci_dev *d, u16 off)
{
	if (ecam_base)
		return mmio_read16(ecam_addr(d, off));
	cf8_select(d, off);
	return inw((u16)(PCI_CONFIG_DATA + (off & 2)));
}

u32 pci_read32(const struct pci_dev *d, u16 off)
{
	if (ecam_base)
		return mmio_read32(ecam_addr(d, off));
	cf8_select(d, off);
	return inl(PCI_CONFIG_DATA);
}

void pci_write8(const struct pci_dev *d, u16 off, u8 v)
{
	if (ecam_base) {
		mmio_write8(ecam_addr(d, off), v);
		return;
	}
	cf8_select(d, off);
	outb((u16)(PCI_CONFIG_DATA + (off & 3)), v);
}

void pci_write16(const struct pci_dev *d, u16 off, u16 v)
{
	if (ecam_base) {
		mmio_write16(ecam_addr(d, off), v);
		return;
	}
	cf8_select(d, off);
	outw((u16)(PCI_CONFIG_DATA + (off & 2)), v);
}

void pci_write32(const struct pci_dev *d, u16 off, u32 v)
{
	if (ecam_base) {
		mmio_write32(ecam_addr(d, off), v);
		return;
	}
	cf8_select(d, off);
	outl(PCI_CONFIG_DATA, v);
}

/* ---- enumeration ---- */

const char *pci_name(const struct pci_dev *d, char buf[8])
{
	static const char hex[] = "0123456789abcdef";
	buf[0] = hex[d->bus >> 4];
	buf[1] = hex[d->bus & 15];
	buf[2] = ':';
	buf[3] = hex[d->dev >> 4];
	buf[4] = hex[d->dev & 15];
	buf[5] = '.';
	buf[6] = hex[d->fn & 7];
	buf[7] = 0;
	return buf;
}

static int probe(u8 dev, u8 fn, int print)
{
	struct pci_dev d = { .bus = 0, .dev = dev, .fn = fn };
	u32 id = pci_read32(&d, PCI_VENDOR_ID);
	u16 vendor = (u16)id;
	if (vendor == 0xFFFF || vendor == 0x0000)
		return 0;
	d.vendor = vendor;
	d.device = (u16)(id >> 16);
	d.class = pci_read32(&d, PCI_REVISION_ID) >> 8;
	d.header_type = pci_read8(&d, PCI_HEADER_TYPE);
	if (nfuncs < MAX_FUNCS)
		funcs[nfuncs++] = d;
	if (print) {
		char name[8];
		printf("pci: %s %04x:%04x class=%06x\n", pci_name(&d, name), d.vendor, d.device, d.class);
	}
	return 1;
}

int pci_scan(int print)
{
	nfuncs = 0;
	for (u8 dev = 0; dev < 32; dev++) {
		if (!probe(dev, 0, print))
			continue;
		if (!(funcs[nfuncs - 1].header_type & PCI_HEADER_TYPE_MULTI))
			continue;
		for (u8 fn = 1; fn < 8; fn++)
			probe(dev, fn, print);
	}
	return nfuncs;
}

int pci_count(void) { return nfuncs; }

const struct pci_dev *pci_get(int i) { return i >= 0 && i < nfuncs ? &funcs[i] : NULL; }

const struct pci_dev *pci_find(u16 vendor, u16 device, int n)
{
	for (int i = 0; i < nfuncs; i++)
		if (funcs[i].vendor == vendor && funcs[i].device == device && n-- == 0)
			return &funcs[i];
	return NULL;
}

void pci_command(const struct pci_dev *d, u16 set, u16 clear)
{
	u16 cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, (u16)((cmd & ~clear) | set));
}

u8 pci_find_cap(const struct pci_dev *d, u8 id, u8 from)
{
	if (!(pci_read16(d, PCI_STATUS) & PCI_STATUS_CAP_LIST))
		return 0;
	u8 p = from ? pci_read8(d, (u16)(from + 1)) : pci_read8(d, PCI_CAPABILITY_LIST);
	/* A malformed list may loop: 48 is the most 4-byte entries that fit. */
	for (int guard = 0; p >= 0x40 && guard < 48; guard++) {
		p &= 0xFC;
		if (pci_read8(d, p) == id)
			return p;
		p = pci_read8(d, (u16)(p + 1));
	}
	return 0;
}

/* ---- BARs ---- */

/* Reads and sizes BAR i with decoding off; leaves the BAR's address as found. */
static int bar_probe(const struct pci_dev *d, int i, struct pci_bar *bar)
{
	u16 off = (u16)(PCI_BASE_ADDRESS_0 + 4 * i);
	memset(bar, 0, sizeof(*bar));
	u32 lo = pci_read32(d, off);
	u16 cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & (u16)~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));

	pci_write32(d, off, 0xFFFFFFFFu);
	u32 mlo = pci_read32(d, off);
	pci_write32(d, off, lo);
	if (mlo == 0) {
		pci_write16(d, PCI_COMMAND, cmd);
		return 0;               /* not implemented */
	}
	if (lo & PCI_BAR_SPACE_IO) {
		bar->kind = PCI_BAR_IO;
		u32 mask = mlo & ~3u;
		bar->size = (u32)(~mask + 1) & 0xFFFF;
		bar->addr = lo & ~3u;
	} else if ((lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64 && i < PCI_NUM_BARS - 1) {
		bar->kind = PCI_BAR_MEM64;
		u32 hi = pci_read32(d, (u16)(off + 4));
		pci_write32(d, (u16)(off + 4), 0xFFFFFFFFu);
		u32 mhi = pci_read32(d, (u16)(off + 4));
		pci_write32(d, (u16)(off + 4), hi);
		u64 mask = ((u64)mhi << 32) | (mlo & ~0xFu);
		bar->size = ~mask + 1;
		bar->addr = ((u64)hi << 32) | (lo & ~0xFu);
	} else {
		bar->kind = PCI_BAR_MEM32;
		u32 mask = mlo & ~0xFu;
		bar->size = (u32)(~mask + 1);
		bar->addr = lo & ~0xFu;
	}
	bar->prefetch = !(lo & PCI_BAR_SPACE_IO) && (lo & PCI_BAR_MEM_PREFETCH);
	pci_write16(d, PCI_COMMAND, cmd);
	return 1;
}

/* ---- placing a BAR the firmware did not (or placed out of reach) ---- */

struct range {
	u64 lo, hi;     /* [lo, hi) */
};
#define MAX_USED 128
static struct range used[MAX_USED];
static int nused = -1;  /* -1: not collected yet */

static void use_range(u64 lo, u64 size)
{
	if (size && nused < MAX_USED)
		used[nused++] = (struct range){ lo, lo + size };
}

static int usable(u64 a)
{
	return a != 0 && a < MAPPED_LIMIT;
}

/*
 * What the window must avoid: every memory BAR already placed on bus 0,
 * the ECAM window, and whatever the memory map lists (RAM and reserved).
 */
static void collect_used(void)
{
	nused = 0;
	for (int f = 0; f < nfuncs; f++) {
		for (int i = 0; i < PCI_NUM_BARS; i++) {
			struct pci_bar b;
			if (!bar_probe(&funcs[f], i, &b))
				continue;
			if (b.kind != PCI_BAR_IO && usable(b.addr))
				use_range(b.addr, b.size);
			if (b.kind == PCI_BAR_MEM64)
				i++;
		}
	}
	if (ecam_base)
		use_range(ecam_base, (u64)(ecam_bus_end - ecam_bus_start + 1) << 20);
	const struct hvm_start_info *si = start_info();
	if (si && si->version >= 1 && si->memmap_paddr && si->memmap_entries < 1024) {
		const struct hvm_memmap_table_entry *e =
			(const struct hvm_memmap_table_entry *)(unsigned long)si->memmap_paddr;
		for (u32 k = 0; k < si->memmap_entries; k++)
			use_range(e[k].addr, e[k].size);
	}
}

static u64 place(u64 size)
{
	if (nused < 0)
		collect_used();
	/* Memory BARs get at least a page, as firmware does. */
	u64 align = size < 4096 ? 4096 : size;
	for (u64 a = PCI_ASSIGN_WINDOW_START; a + size <= PCI_ASSIGN_WINDOW_END; a += align) {
		int clash = 0;
		for (int k = 0; k < nused && !clash; k++)
			if (a < used[k].hi && used[k].lo < a + size)
				clash = 1;
		if (!clash) {
			use_range(a, align);
			return a;
		}
	}
	return 0;
}

int pci_bar_setup(const struct pci_dev *d, int i, struct pci_bar *bar)
{
	if (i < 0 || i >= PCI_NUM_BARS)
		return -1;
	/*
	 * The upper half of a 64-bit BAR is not a BAR of its own; which
	 * registers are upper halves shows only walking up from BAR0.
	 */
	for (int j = 0; j < i; j++) {
		u32 lo = pci_read32(d, (u16)(PCI_BASE_ADDRESS_0 + 4 * j));
		if (!(lo & PCI_BAR_SPACE_IO) && (lo & PCI_BAR_MEM_TYPE_MASK) == PCI_BAR_MEM_TYPE_64) {
			if (++j == i) {
				memset(bar, 0, sizeof(*bar));
				return -1;
			}
		}
	}
	if (!bar_probe(d, i, bar))
		return 0;
	if (bar->kind == PCI_BAR_IO || (usable(bar->addr) && bar->addr + bar->size <= MAPPED_LIMIT))
		return 0;

	u64 a = place(bar->size);
	if (!a)
		return -1;
	u16 off = (u16)(PCI_BASE_ADDRESS_0 + 4 * i);
	u16 cmd = pci_read16(d, PCI_COMMAND);
	pci_write16(d, PCI_COMMAND, cmd & (u16)~(PCI_COMMAND_IO | PCI_COMMAND_MEMORY));
	pci_write32(d, off, (u32)a | (pci_read32(d, off) & 0xFu));
	if (bar->kind == PCI_BAR_MEM64)
		pci_write32(d, (u16)(off + 4), (u32)(a >> 32));
	pci_write16(d, PCI_COMMAND, cmd);
	bar->addr = a;
	bar->assigned = 1;
	return 0;
}
