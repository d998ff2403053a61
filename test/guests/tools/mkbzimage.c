/*
 * mkbzimage: turns the bzImage test guest's protected-mode ELF (linked at
 * 1 MiB by link-bz.ld) into a bzImage, the Linux x86 boot protocol's
 * format (Documentation/arch/x86/boot.rst):
 *
 *   offset 0          boot sector (512 bytes), setup header at 0x1f1
 *   offset 512        setup_sects (here 1) sectors of real-mode setup
 *   (setup_sects+1)*512   the protected-mode part, a flat copy of the
 *                     ELF's PT_LOAD segments from physical 0x100000 on
 *
 *   mkbzimage guest.elf out.bin
 *
 * The header is protocol 2.15: LOADED_HIGH, XLF_KERNEL_64 (64-bit entry at
 * offset 0x200 of the protected-mode part; the only entry that works),
 * not relocatable, preferred (and only) load address 0x100000, init_size
 * covering .bss and the stacks.  There is no real-mode setup code: a loader
 * that runs it (a 16-bit boot) halts.
 */
#include <elf.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_ADDR       0x100000u
#define ENTRY64_OFFSET  0x200u
#define KERNEL_INFO_OFF 0x100u
#define SECTOR          512u
#define SETUP_SECTS     1u              /* the header fits in the first setup sector */
#define SETUP_SIZE      ((SETUP_SECTS + 1) * SECTOR)
#define ALIGN           0x1000u         /* page tables, ISR page: 4 KiB aligned */
#define CMDLINE_SIZE    4095u           /* longest command line, without its NUL */
#define VERSION_OFF     0x300u          /* kernel_version string, in the setup sector */
static const char version[] = "vmctl bzimage test guest (64-bit boot protocol only)";

/* Setup header offsets (boot.rst, "The real-mode kernel header"). */
enum {
	SETUP_SECTS_O = 0x1f1, ROOT_FLAGS = 0x1f2, SYSSIZE = 0x1f4, VID_MODE = 0x1fa,
	BOOT_FLAG = 0x1fe, JUMP = 0x200, HEADER = 0x202, VERSION = 0x206,
	START_SYS_SEG = 0x20c, KERNEL_VERSION = 0x20e, LOADFLAGS = 0x211,
	SETUP_MOVE_SIZE = 0x212, CODE32_START = 0x214, INITRD_ADDR_MAX = 0x22c,
	KERNEL_ALIGNMENT = 0x230, RELOCATABLE = 0x234, MIN_ALIGNMENT = 0x235,
	XLOADFLAGS = 0x236, CMDLINE_SIZE_O = 0x238, PREF_ADDRESS = 0x258,
	INIT_SIZE = 0x260, HANDOVER_OFFSET = 0x264, KERNEL_INFO_OFFSET = 0x268,
	HEADER_END = 0x26c,
};
#define LOADED_HIGH     0x01
#define XLF_KERNEL_64   0x0001

static void die(const char *fmt, const char *arg)
{
	fprintf(stderr, "mkbzimage: ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	exit(1);
}

static void put16(uint8_t *p, uint16_t v) { p[0] = v; p[1] = v >> 8; }
static void put32(uint8_t *p, uint32_t v) { put16(p, v); put16(p + 2, v >> 16); }
static void put64(uint8_t *p, uint64_t v) { put32(p, v); put32(p + 4, v >> 32); }

static uint8_t *read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		die("cannot open %s", path);
	size_t cap = 1 << 20, n = 0;
	uint8_t *buf = malloc(cap);
	for (;;) {
		if (!buf)
			die("out of memory reading %s", path);
		n += fread(buf + n, 1, cap - n, f);
		if (n < cap)
			break;
		cap *= 2;
		buf = realloc(buf, cap);
	}
	if (ferror(f))
		die("cannot read %s", path);
	fclose(f);
	*len = n;
	return buf;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: mkbzimage guest.elf out.bin\n");
		return 2;
	}
	size_t elen;
	uint8_t *elf = read_file(argv[1], &elen);
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)elf;
	if (elen < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		die("%s is not an x86-64 ELF64", argv[1]);
	if (eh->e_entry != LOAD_ADDR + ENTRY64_OFFSET)
		die("%s: the entry point is not at 0x100200 (see link-bz.ld)", argv[1]);
	if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > elen)
		die("%s: program headers run past the end of the file", argv[1]);

	/* The extent of the loaded image: file contents, and memory incl. .bss. */
	uint64_t file_end = LOAD_ADDR, mem_end = LOAD_ADDR;
	const Elf64_Phdr *ph = (const Elf64_Phdr *)(elf + eh->e_phoff);
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		if (ph[i].p_type != PT_LOAD || ph[i].p_memsz == 0)
			continue;
		if (ph[i].p_paddr < LOAD_ADDR || ph[i].p_offset + ph[i].p_filesz > elen)
			die("%s: a PT_LOAD segment lies below 1 MiB or outside the file", argv[1]);
		if (ph[i].p_filesz && ph[i].p_paddr + ph[i].p_filesz > file_end)
			file_end = ph[i].p_paddr + ph[i].p_filesz;
		if (ph[i].p_paddr + ph[i].p_memsz > mem_end)
			mem_end = ph[i].p_paddr + ph[i].p_memsz;
	}
	uint64_t pm_size = file_end - LOAD_ADDR;
	uint64_t init_size = (mem_end - LOAD_ADDR + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	if (pm_size <= ENTRY64_OFFSET || init_size > 0x40000000)
		die("%s: implausible image size", argv[1]);

	size_t out_len = SETUP_SIZE + pm_size;
	uint8_t *out = calloc(1, out_len);
	if (!out)
		die("out of memory for %s", argv[2]);
	uint8_t *pm = out + SETUP_SIZE;
	for (unsigned i = 0; i < eh->e_phnum; i++)
		if (ph[i].p_type == PT_LOAD && ph[i].p_filesz)
			memcpy(pm + (ph[i].p_paddr - LOAD_ADDR), elf + ph[i].p_offset, ph[i].p_filesz);
	if (memcmp(pm + KERNEL_INFO_OFF, "LToP", 4) != 0)
		die("%s: no kernel_info (\"LToP\") at offset 0x100", argv[1]);

	/*
	 * Real-mode code, never meant to run: `cli; hlt; jmp .-1` at the boot
	 * sector's start and at the setup entry the jump at 0x200 leads to.
	 */
	static const uint8_t halt16[] = { 0xfa, 0xf4, 0xeb, 0xfd };
	memcpy(out, halt16, sizeof(halt16));
	memcpy(out + HEADER_END, halt16, sizeof(halt16));
	static const char note[] = "vmctl bzimage test guest: boot it with a 64-bit boot protocol loader.";
	memcpy(out + 0x10, note, sizeof(note));
	memcpy(out + VERSION_OFF, version, sizeof(version));

	out[SETUP_SECTS_O] = SETUP_SECTS;
	put16(out + ROOT_FLAGS, 0);
	put32(out + SYSSIZE, (uint32_t)((pm_size + 15) / 16));
	put16(out + VID_MODE, 0xffff);                  /* "normal" */
	put16(out + BOOT_FLAG, 0xaa55);
	out[JUMP] = 0xeb;                               /* jmp short to the end of the header */
	out[JUMP + 1] = HEADER_END - (JUMP + 2);
	memcpy(out + HEADER, "HdrS", 4);
	put16(out + VERSION, 0x020f);                   /* 2.15 */
	put16(out + START_SYS_SEG, 0x1000);
	put16(out + KERNEL_VERSION, VERSION_OFF - 0x200);
	out[LOADFLAGS] = LOADED_HIGH;
	put16(out + SETUP_MOVE_SIZE, 0x8000);
	put32(out + CODE32_START, LOAD_ADDR);
	put32(out + INITRD_ADDR_MAX, 0x7fffffff);
	put32(out + KERNEL_ALIGNMENT, ALIGN);
	out[RELOCATABLE] = 0;
	out[MIN_ALIGNMENT] = 12;                        /* log2(ALIGN) */
	put16(out + XLOADFLAGS, XLF_KERNEL_64);
	put32(out + CMDLINE_SIZE_O, CMDLINE_SIZE);
	put64(out + PREF_ADDRESS, LOAD_ADDR);
	put32(out + INIT_SIZE, (uint32_t)init_size);
	put32(out + HANDOVER_OFFSET, 0);                /* no EFI handover */
	put32(out + KERNEL_INFO_OFFSET, KERNEL_INFO_OFF);

	FILE *f = fopen(argv[2], "wb");
	if (!f)
		die("cannot create %s", argv[2]);
	if (fwrite(out, 1, out_len, f) != out_len || fclose(f) != 0) {
		remove(argv[2]);
		die("cannot write %s", argv[2]);
	}
	free(out);
	free(elf);
	return 0;
}
