/*
 * memsize: the memory map a PVH loader hands over in hvm_start_info.
 *
 * Output, one line per memmap entry and a summary:
 *   e820: 0x<addr, 16 hex digits> 0x<size, 16 hex digits> <type, decimal>
 *   mem: ram_total=<bytes> ram_top=<bytes>
 * ram_total sums the type-1 (RAM) entries; ram_top is the end of the
 * highest type-1 entry.  Exit 0, or 1 if start_info is bad, has no memmap
 * (version < 1) or the memmap holds no RAM.
 */
#include "guest.h"

/* Guards against a garbage entry count; real maps have a handful. */
#define MAX_ENTRIES 1024

int guest_main(void)
{
	uart_init();
	const struct hvm_start_info *si = start_info();
	if (!si)
		return 1;
	if (si->version < 1 || si->memmap_paddr == 0 || si->memmap_entries == 0) {
		printf("mem: no memmap in start_info (version %u)\n", si->version);
		return 1;
	}
	u32 n = si->memmap_entries;
	if (n > MAX_ENTRIES || si->memmap_paddr + (u64)n * sizeof(struct hvm_memmap_table_entry) >
				       0x100000000ull) {
		printf("mem: memmap out of reach (0x%llx, %u entries)\n", si->memmap_paddr, n);
		return 1;
	}
	const struct hvm_memmap_table_entry *e =
		(const struct hvm_memmap_table_entry *)(unsigned long)si->memmap_paddr;

	u64 total = 0, top = 0;
	for (u32 i = 0; i < n; i++) {
		printf("e820: 0x%016llx 0x%016llx %u\n", e[i].addr, e[i].size, e[i].type);
		if (e[i].type == E820_RAM) {
			total += e[i].size;
			if (e[i].addr + e[i].size > top)
				top = e[i].addr + e[i].size;
		}
	}
	printf("mem: ram_total=%llu ram_top=%llu\n", total, top);
	return total ? 0 : 1;
}
