/* The PVH start info and the command line it points to. */
#include "guest.h"

/*
 * start_info, the memmap and the cmdline are all placed by the VMM in low
 * RAM, which the boot page tables map 1:1 and user-accessible, so the CPL3
 * body simply reads them in place.  Anything above 4 GiB is not mapped.
 */
#define MAPPED_LIMIT 0x100000000ull

const struct hvm_start_info *start_info(void)
{
	static int complained;
	u32 pa = pvh_start_info_paddr;
	const struct hvm_start_info *si = (const struct hvm_start_info *)(unsigned long)pa;
	if (pa == 0 || si->magic != HVM_START_MAGIC) {
		if (!complained) {
			complained = 1;
			printf("guest: bad hvm_start_info at 0x%x (magic 0x%x)\n", pa,
			       pa ? si->magic : 0);
		}
		return NULL;
	}
	return si;
}

const char *cmdline(void)
{
	const struct hvm_start_info *si = start_info();
	if (!si || si->cmdline_paddr == 0 || si->cmdline_paddr >= MAPPED_LIMIT)
		return "";
	return (const char *)(unsigned long)si->cmdline_paddr;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n'; }

int cmdline_u64(const char *key, u64 *out)
{
	const char *s = cmdline();
	size_t klen = strlen(key);
	while (*s) {
		while (is_space(*s))
			s++;
		const char *tok = s;
		while (*s && !is_space(*s))
			s++;
		if ((size_t)(s - tok) <= klen || strncmp(tok, key, klen) != 0 || tok[klen] != '=')
			continue;
		const char *v = tok + klen + 1;
		u64 n = 0;
		unsigned base = 10;
		if (v[0] == '0' && (v[1] == 'x' || v[1] == 'X')) {
			base = 16;
			v += 2;
		}
		int any = 0;
		for (; v < s; v++) {
			unsigned d;
			if (*v >= '0' && *v <= '9')
				d = (unsigned)(*v - '0');
			else if (base == 16 && *v >= 'a' && *v <= 'f')
				d = (unsigned)(*v - 'a' + 10);
			else if (base == 16 && *v >= 'A' && *v <= 'F')
				d = (unsigned)(*v - 'A' + 10);
			else
				return 0;       /* malformed: the caller uses its default */
			n = n * base + d;
			any = 1;
		}
		if (!any)
			return 0;
		*out = n;
		return 1;
	}
	return 0;
}

int cmdline_has(const char *word)
{
	const char *s = cmdline();
	size_t wlen = strlen(word);
	while (*s) {
		while (is_space(*s))
			s++;
		const char *tok = s;
		while (*s && !is_space(*s))
			s++;
		if ((size_t)(s - tok) == wlen && strncmp(tok, word, wlen) == 0)
			return 1;
	}
	return 0;
}

int cmdline_str(const char *key, char *buf, size_t size)
{
	const char *s = cmdline();
	size_t klen = strlen(key);
	while (*s) {
		while (is_space(*s))
			s++;
		const char *tok = s;
		while (*s && !is_space(*s))
			s++;
		if ((size_t)(s - tok) <= klen || strncmp(tok, key, klen) != 0 || tok[klen] != '=')
			continue;
		size_t vlen = (size_t)(s - tok) - klen - 1;
		if (vlen + 1 > size)
			return 0;       /* too long for the caller: as if absent */
		memcpy(buf, tok + klen + 1, vlen);
		buf[vlen] = 0;
		return 1;
	}
	return 0;
}
