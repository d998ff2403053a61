/*
 * bzimage: what a Linux boot protocol loader hands a 64-bit bzImage in
 * boot_params (the "zero page"), printed from the CPL3 body.
 *
 * Output:
 *   bz: boot_params=0x<addr> protocol=<maj>.<min> loader=0x<type_of_loader>
 *   bz: e820 0x<addr, 16 hex digits> 0x<size, 16 hex digits> <type, decimal>   (per entry)
 *   bz: cmdline=<text>
 *   bz: initrd addr=0x<addr> size=<bytes, decimal> sum=0x<FNV-1a, 8 hex digits>
 *       (or: bz: initrd none)
 *   bz: rsdp=0x<acpi_rsdp_addr>
 * sum is the 32-bit FNV-1a hash of the initrd's bytes (offset basis
 * 0x811c9dc5, prime 0x01000193).  Exit 0; exit 1 (after a `bz: ...` line
 * saying why) if boot_params is missing or has no setup header, the e820
 * table is empty or longer than 128 entries, the command line or initrd
 * lies above 4 GiB (not mapped), or acpi_rsdp_addr is set but does not
 * point at a valid RSDP ("RSD PTR ", checksum of the first 20 bytes).
 */
#include "guest.h"

#define MAPPED_LIMIT 0x100000000ull
#define HDRS_MAGIC   0x53726448u        /* "HdrS" */

static u32 rd32(const u8 *bp, unsigned off) { return *(const u32 *)(bp + off); }
static u16 rd16(const u8 *bp, unsigned off) { return *(const u16 *)(bp + off); }

static u32 fnv1a(const u8 *p, u64 n)
{
	u32 h = 0x811c9dc5u;
	for (u64 i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x01000193u;
	}
	return h;
}

static int rsdp_valid(u64 addr)
{
	const u8 *p = (const u8 *)(unsigned long)addr;
	if (addr + 20 > MAPPED_LIMIT || memcmp(p, "RSD PTR ", 8) != 0)
		return 0;
	u8 sum = 0;
	for (int i = 0; i < 20; i++)
		sum += p[i];
	return sum == 0;
}

int guest_main(void)
{
	uart_init();
	u64 bpa = linux_boot_params;
	if (bpa == 0 || bpa + 4096 > MAPPED_LIMIT) {
		printf("bz: no usable boot_params (rsi=0x%llx)\n", bpa);
		return 1;
	}
	const u8 *bp = (const u8 *)(unsigned long)bpa;
	if (rd32(bp, BP_HDR_HEADER) != HDRS_MAGIC) {
		printf("bz: boot_params at 0x%llx holds no setup header\n", bpa);
		return 1;
	}
	u16 version = rd16(bp, BP_HDR_VERSION);
	printf("bz: boot_params=0x%llx protocol=%u.%u loader=0x%x\n", bpa, version >> 8,
	       version & 0xff, bp[BP_HDR_TYPE_OF_LOADER]);

	unsigned n = bp[BP_E820_ENTRIES];
	if (n == 0 || n > BP_E820_MAX) {
		printf("bz: e820 table has %u entries\n", n);
		return 1;
	}
	const struct boot_e820_entry *e = (const struct boot_e820_entry *)(bp + BP_E820_TABLE);
	for (unsigned i = 0; i < n; i++)
		printf("bz: e820 0x%016llx 0x%016llx %u\n", e[i].addr, e[i].size, e[i].type);

	u64 cmd = rd32(bp, BP_HDR_CMD_LINE_PTR) | (u64)rd32(bp, BP_EXT_CMD_LINE_PTR) << 32;
	if (cmd >= MAPPED_LIMIT) {
		printf("bz: cmdline out of reach at 0x%llx\n", cmd);
		return 1;
	}
	uart_puts("bz: cmdline=");
	if (cmd)
		uart_puts((const char *)(unsigned long)cmd);
	uart_putc('\n');

	u64 rd = rd32(bp, BP_HDR_RAMDISK_IMAGE) | (u64)rd32(bp, BP_EXT_RAMDISK_IMAGE) << 32;
	u64 rdsize = rd32(bp, BP_HDR_RAMDISK_SIZE) | (u64)rd32(bp, BP_EXT_RAMDISK_SIZE) << 32;
	if (rd == 0 || rdsize == 0) {
		uart_puts("bz: initrd none\n");
	} else if (rd + rdsize > MAPPED_LIMIT || rd + rdsize < rd) {
		printf("bz: initrd out of reach at 0x%llx size=%llu\n", rd, rdsize);
		return 1;
	} else {
		printf("bz: initrd addr=0x%llx size=%llu sum=0x%08x\n", rd, rdsize,
		       fnv1a((const u8 *)(unsigned long)rd, rdsize));
	}

	u64 rsdp = *(const u64 *)(bp + BP_ACPI_RSDP_ADDR);
	printf("bz: rsdp=0x%llx\n", rsdp);
	if (rsdp && !rsdp_valid(rsdp)) {
		printf("bz: no valid RSDP at 0x%llx\n", rsdp);
		return 1;
	}
	return 0;
}
