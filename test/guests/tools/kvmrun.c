/*
 * kvmrun: the smallest useful KVM VMM for the vmctl test guests.
 *
 * It is the "floor" of the exit-cost benchmarks, so the run loop allocates
 * nothing and makes no system call per exit other than KVM_RUN itself
 * (UART output is buffered and written on '\n', when full, and at exit).
 *
 *   kvmrun [-m MiB] [-c cmdline] [-i input] [-t seconds] [-v] guest.elf
 *
 * Loads a PVH ELF (PT_LOAD segments at p_paddr, entry from the
 * XEN_ELFNOTE_PHYS32_ENTRY note), writes struct hvm_start_info with the
 * command line and a memory map, and starts one vCPU in the PVH entry state.
 *
 * Devices, deliberately few:
 *   0x3F8-0x3FF  16550 UART: THR -> stdout, LSR = THRE|TEMT (|DR), and a
 *                receive path fed from -i (one byte at a time, each made
 *                available after the guest next transmits, raising IRQ4
 *                when IER.ERBFI and MCR.OUT2 are set) to test interrupts.
 *   0x64         i8042: status reads 0; command 0xFE (reset) stops the VM.
 *   0xF4         debug exit: a write ends kvmrun with that code.
 *   0x604        ACPI PM1a control: a write with SLP_EN ends with code 0.
 *   in-kernel    PIC, IOAPIC, LAPIC (KVM_CREATE_IRQCHIP), PIT (KVM_CREATE_PIT2).
 * Everything else (0x80, unknown ports, unbacked MMIO) is ignored; reads
 * return all ones, like an ISA/PCI bus with nothing there.
 *
 * Exit status: the guest's code (0 = success), 3 on triple fault, 4 on a
 * KVM error, 124 on -t timeout; a guest-requested reset exits 0 after
 * printing "kvmrun: reset" on stderr.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MiB (1024ull * 1024)
#define GiB (1024ull * MiB)

/* Guest-physical layout of what kvmrun writes below the image. */
#define START_INFO_ADDR 0x6000
#define MEMMAP_ADDR     0x6040
#define CMDLINE_ADDR    0x7000
#define CMDLINE_MAX     0x1000
#define LOW_RAM_TOP     0xC0000000ull   /* 32-bit PCI/MMIO hole from 3 GiB */
#define HIGH_RAM_BASE   0x100000000ull

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define HVM_START_MAGIC 0x336ec578

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr;
	uint64_t memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static struct {
	uint8_t *ram;
	uint64_t low, high;     /* bytes below 3 GiB; bytes from 4 GiB */
	int vm, vcpu;
	struct kvm_run *run;
} g;

/* UART state: only what a guest can observe through the registers. */
static struct {
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	const char *input;      /* -i bytes not yet delivered */
	int rx_ready;           /* RBR holds *input */
	int irq_level;
} uart;

static char outbuf[4096];
static size_t outlen;

static volatile sig_atomic_t timed_out;
static int verbose;

static struct {
	uint64_t exits, io, mmio;
	struct timespec start, first_exit, first_out;
	int have_first_exit, have_first_out;
} st;

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("kvmrun: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(4);
}

static void flush_out(void)
{
	size_t off = 0;
	while (off < outlen) {
		ssize_t n = write(STDOUT_FILENO, outbuf + off, outlen - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		off += (size_t)n;
	}
	outlen = 0;
}

static double ms_between(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void dump_vcpu(void)
{
	struct kvm_regs r;
	struct kvm_sregs s;
	if (ioctl(g.vcpu, KVM_GET_REGS, &r) < 0 || ioctl(g.vcpu, KVM_GET_SREGS, &s) < 0)
		return;
	fprintf(stderr,
		"kvmrun: rip=0x%llx rsp=0x%llx rflags=0x%llx rax=0x%llx rbx=0x%llx rcx=0x%llx rdx=0x%llx\n"
		"kvmrun: cs=0x%x(type 0x%x l%d db%d dpl%d) ss=0x%x cr0=0x%llx cr2=0x%llx cr3=0x%llx cr4=0x%llx efer=0x%llx\n",
		r.rip, r.rsp, r.rflags, r.rax, r.rbx, r.rcx, r.rdx, s.cs.selector, s.cs.type, s.cs.l,
		s.cs.db, s.cs.dpl, s.ss.selector, s.cr0, s.cr2, s.cr3, s.cr4, s.efer);
}

static void finish(int code) __attribute__((noreturn));
static void finish(int code)
{
	struct timespec end;
	flush_out();
	if (verbose) {
		clock_gettime(CLOCK_MONOTONIC, &end);
		fprintf(stderr, "kvmrun: exit code %d after %.3f ms; %llu exits (%llu io, %llu mmio)",
			code, ms_between(&st.start, &end), (unsigned long long)st.exits,
			(unsigned long long)st.io, (unsigned long long)st.mmio);
		if (st.have_first_exit)
			fprintf(stderr, "; first exit at %.3f ms", ms_between(&st.start, &st.first_exit));
		if (st.have_first_out)
			fprintf(stderr, "; first UART byte at %.3f ms", ms_between(&st.start, &st.first_out));
		fputc('\n', stderr);
	}
	/* A nonzero guest code must not read as success after truncation to 8 bits. */
	exit(code == 0 ? 0 : (code & 0xFF) ? (code & 0xFF) : 1);
}

static void on_alarm(int sig)
{
	(void)sig;
	timed_out = 1;
	if (g.run)
		g.run->immediate_exit = 1;
}

static void *gpa(uint64_t addr, uint64_t len)
{
	if (addr + len >= addr && addr + len <= g.low)
		return g.ram + addr;
	if (addr >= HIGH_RAM_BASE && addr - HIGH_RAM_BASE + len <= g.high)
		return g.ram + g.low + (addr - HIGH_RAM_BASE);
	return NULL;
}

/* ---- ELF ---------------------------------------------------------------- */

static uint32_t load_elf(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		die("%s: %s", path, strerror(errno));
	size_t size = (size_t)sb.st_size;
	uint8_t *img = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (img == MAP_FAILED)
		die("%s: mmap: %s", path, strerror(errno));
	close(fd);

	const Elf64_Ehdr *eh = (const void *)img;
	if (size < sizeof(*eh) || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 ||
	    eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_machine != EM_X86_64)
		die("%s: not an x86-64 ELF64", path);
	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > size ||
	    (size - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
		die("%s: bad program headers", path);

	const Elf64_Phdr *ph = (const void *)(img + eh->e_phoff);
	uint32_t entry = 0;
	int have_entry = 0;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		const Elf64_Phdr *p = &ph[i];
		if (p->p_offset > size || p->p_filesz > size - p->p_offset)
			die("%s: segment %u outside the file", path, i);
		if (p->p_type == PT_LOAD) {
			if (p->p_filesz > p->p_memsz)
				die("%s: segment %u filesz > memsz", path, i);
			uint8_t *dst = gpa(p->p_paddr, p->p_memsz);
			if (!dst)
				die("%s: segment %u [0x%llx, +0x%llx) is outside guest RAM", path, i,
				    (unsigned long long)p->p_paddr, (unsigned long long)p->p_memsz);
			memcpy(dst, img + p->p_offset, p->p_filesz);
			memset(dst + p->p_filesz, 0, p->p_memsz - p->p_filesz);
		} else if (p->p_type == PT_NOTE) {
			/* Elf64_Nhdr, 4-byte aligned name and descriptor. */
			uint64_t o = p->p_offset, end = p->p_offset + p->p_filesz;
			while (o + sizeof(Elf64_Nhdr) <= end) {
				const Elf64_Nhdr *n = (const void *)(img + o);
				uint64_t name = o + sizeof(*n);
				uint64_t desc = name + ((n->n_namesz + 3ull) & ~3ull);
				uint64_t next = desc + ((n->n_descsz + 3ull) & ~3ull);
				if (next > end)
					break;
				if (n->n_type == XEN_ELFNOTE_PHYS32_ENTRY && n->n_namesz == 4 &&
				    memcmp(img + name, "Xen", 4) == 0 && n->n_descsz >= 4) {
					/* 32-bit by the ABI; some producers write 8 bytes. */
					memcpy(&entry, img + desc, 4);
					have_entry = 1;
				}
				o = next;
			}
		}
	}
	munmap(img, size);
	if (!have_entry)
		die("%s: no XEN_ELFNOTE_PHYS32_ENTRY note: not a PVH image", path);
	return entry;
}

/* ---- boot information --------------------------------------------------- */

static void write_start_info(const char *cmdline)
{
	size_t clen = strlen(cmdline);
	if (clen >= CMDLINE_MAX)
		die("command line longer than %d bytes", CMDLINE_MAX - 1);
	memcpy(gpa(CMDLINE_ADDR, clen + 1), cmdline, clen + 1);

	struct hvm_memmap_table_entry mm[5];
	unsigned n = 0;
	mm[n++] = (struct hvm_memmap_table_entry){ 0, 0x9fc00, 1, 0 };
	mm[n++] = (struct hvm_memmap_table_entry){ 0x9fc00, 0x400, 2, 0 };  /* EBDA */
	mm[n++] = (struct hvm_memmap_table_entry){ 0xf0000, 0x10000, 2, 0 }; /* BIOS area */
	mm[n++] = (struct hvm_memmap_table_entry){ 0x100000, g.low - 0x100000, 1, 0 };
	if (g.high)
		mm[n++] = (struct hvm_memmap_table_entry){ HIGH_RAM_BASE, g.high, 1, 0 };
	memcpy(gpa(MEMMAP_ADDR, sizeof(mm)), mm, n * sizeof(mm[0]));

	struct hvm_start_info si = {
		.magic = HVM_START_MAGIC,
		.version = 1,
		.cmdline_paddr = CMDLINE_ADDR,
		.memmap_paddr = MEMMAP_ADDR,
		.memmap_entries = n,
	};
	memcpy(gpa(START_INFO_ADDR, sizeof(si)), &si, sizeof(si));
}

/* ---- vCPU state ----------------------------------------------------------- */

static void setup_cpuid(int kvm)
{
	int nent = 128;
	for (;;) {
		struct kvm_cpuid2 *c = calloc(1, sizeof(*c) + (size_t)nent * sizeof(c->entries[0]));
		if (!c)
			die("out of memory");
		c->nent = (uint32_t)nent;
		if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, c) == 0) {
			if (ioctl(g.vcpu, KVM_SET_CPUID2, c) < 0)
				die("KVM_SET_CPUID2: %s", strerror(errno));
			free(c);
			return;
		}
		free(c);
		if (errno != E2BIG || nent > 4096)
			die("KVM_GET_SUPPORTED_CPUID: %s", strerror(errno));
		nent *= 2;
	}
}

static void setup_lapic(void)
{
	/*
	 * LINT0 = ExtINT so the in-kernel 8259 reaches the CPU (KVM only
	 * accepts PIC interrupts through an unmasked ExtINT LINT0 once the
	 * LAPIC is enabled), LINT1 = NMI, as a PC BIOS leaves them.
	 */
	struct kvm_lapic_state l;
	if (ioctl(g.vcpu, KVM_GET_LAPIC, &l) < 0)
		die("KVM_GET_LAPIC: %s", strerror(errno));
	uint32_t lint0 = 0x700, lint1 = 0x400;
	memcpy(&l.regs[0x350], &lint0, 4);
	memcpy(&l.regs[0x360], &lint1, 4);
	if (ioctl(g.vcpu, KVM_SET_LAPIC, &l) < 0)
		die("KVM_SET_LAPIC: %s", strerror(errno));
}

static void setup_regs(uint32_t entry)
{
	struct kvm_sregs s;
	if (ioctl(g.vcpu, KVM_GET_SREGS, &s) < 0)
		die("KVM_GET_SREGS: %s", strerror(errno));
	/* PVH entry: flat 32-bit protected mode, paging off. */
	struct kvm_segment code = {
		.base = 0, .limit = 0xffffffff, .selector = 0x10, .type = 0xb,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
	struct kvm_segment data = code;
	data.selector = 0x18;
	data.type = 0x3;
	s.cs = code;
	s.ds = s.es = s.fs = s.gs = s.ss = data;
	s.tr = (struct kvm_segment){ .base = 0, .limit = 0x67, .type = 0xb, .present = 1 };
	s.ldt = (struct kvm_segment){ .base = 0, .limit = 0xffff, .type = 0x2, .present = 1 };
	s.gdt.base = 0;
	s.gdt.limit = 0xffff;
	s.idt.base = 0;
	s.idt.limit = 0xffff;
	s.cr0 = 0x11;           /* PE | ET */
	s.cr3 = 0;
	s.cr4 = 0;
	s.efer = 0;
	if (ioctl(g.vcpu, KVM_SET_SREGS, &s) < 0)
		die("KVM_SET_SREGS: %s", strerror(errno));

	struct kvm_regs r;
	memset(&r, 0, sizeof(r));
	r.rflags = 0x2;
	r.rip = entry;
	r.rbx = START_INFO_ADDR;
	if (ioctl(g.vcpu, KVM_SET_REGS, &r) < 0)
		die("KVM_SET_REGS: %s", strerror(errno));
}

/* ---- devices -------------------------------------------------------------- */

static void uart_update_irq(void)
{
	int level = (uart.ier & 0x01) && uart.rx_ready && (uart.mcr & 0x08);
	if (level == uart.irq_level)
		return;
	uart.irq_level = level;
	struct kvm_irq_level l = { .irq = 4, .level = (uint32_t)level };
	if (ioctl(g.vm, KVM_IRQ_LINE, &l) < 0)
		die("KVM_IRQ_LINE: %s", strerror(errno));
}

static inline void uart_out(uint8_t c)
{
	if (verbose && !st.have_first_out) {
		clock_gettime(CLOCK_MONOTONIC, &st.first_out);
		st.have_first_out = 1;
	}
	outbuf[outlen++] = (char)c;
	if (c == '\n' || outlen == sizeof(outbuf))
		flush_out();
	/* Pace -i input: the next byte arrives once the guest has spoken. */
	if (*uart.input && !uart.rx_ready) {
		uart.rx_ready = 1;
		uart_update_irq();
	}
}

static uint8_t uart_read(unsigned reg)
{
	int dlab = uart.lcr & 0x80;
	switch (reg) {
	case 0:
		if (dlab)
			return uart.dll;
		if (uart.rx_ready) {
			uint8_t c = (uint8_t)*uart.input++;
			uart.rx_ready = 0;
			uart_update_irq();
			return c;
		}
		return 0;
	case 1:
		return dlab ? uart.dlm : uart.ier;
	case 2: {
		uint8_t fifo = (uart.fcr & 1) ? 0xC0 : 0;
		if ((uart.ier & 0x01) && uart.rx_ready)
			return fifo | 0x04;     /* received data available */
		return fifo | 0x01;             /* no interrupt pending */
	}
	case 3:
		return uart.lcr;
	case 4:
		return uart.mcr;
	case 5:
		return 0x60 | (uart.rx_ready ? 0x01 : 0);       /* THRE | TEMT | DR */
	case 6:
		return 0xB0;                    /* DCD | DSR | CTS: a cable is plugged in */
	default:
		return uart.scr;
	}
}

static void uart_write(unsigned reg, uint8_t v)
{
	int dlab = uart.lcr & 0x80;
	switch (reg) {
	case 0:
		if (dlab)
			uart.dll = v;
		else
			uart_out(v);
		break;
	case 1:
		if (dlab) {
			uart.dlm = v;
		} else {
			uart.ier = v & 0x0F;
			uart_update_irq();
		}
		break;
	case 2:
		uart.fcr = v;
		break;
	case 3:
		uart.lcr = v;
		break;
	case 4:
		uart.mcr = v & 0x1F;
		uart_update_irq();
		break;
	case 7:
		uart.scr = v;
		break;
	default:
		break;                  /* LSR/MSR writes are factory-test only */
	}
}

static void handle_io(void)
{
	struct kvm_run *run = g.run;
	uint8_t *data = (uint8_t *)run + run->io.data_offset;
	unsigned port = run->io.port, size = run->io.size;

	for (uint32_t i = 0; i < run->io.count; i++, data += size) {
		if (run->io.direction == KVM_EXIT_IO_OUT) {
			uint32_t v = 0;
			memcpy(&v, data, size);
			if (port >= 0x3F8 && port <= 0x3FF) {
				/* Wider accesses hit consecutive registers, as on ISA. */
				for (unsigned b = 0; b < size && port + b <= 0x3FF; b++)
					uart_write(port + b - 0x3F8, (uint8_t)(v >> (8 * b)));
			} else if (port == 0xF4) {
				finish((int)v);
			} else if (port == 0x604 && size >= 2 && (v & (1u << 13))) {
				finish(0);
			} else if (port == 0x64 && size == 1 && v == 0xFE) {
				flush_out();
				fputs("kvmrun: reset\n", stderr);
				finish(0);
			}
			/* 0x80 and everything else: ignored. */
		} else {
			if (port >= 0x3F8 && port <= 0x3FF) {
				for (unsigned b = 0; b < size; b++)
					data[b] = port + b <= 0x3FF ? uart_read(port + b - 0x3F8) : 0xFF;
			} else if (port == 0x64 && size == 1) {
				data[0] = 0;    /* i8042 status: buffers empty */
			} else {
				memset(data, 0xFF, size);
			}
		}
	}
}

/* ---- main ------------------------------------------------------------------- */

static void usage(void)
{
	fprintf(stderr, "usage: kvmrun [-m MiB] [-c cmdline] [-i input] [-t seconds] [-v] guest.elf\n");
	exit(2);
}

int main(int argc, char **argv)
{
	uint64_t mem_mib = 64;
	const char *cmdline = "";
	unsigned timeout = 0;
	int opt;

	uart.input = "";
	while ((opt = getopt(argc, argv, "m:c:i:t:v")) != -1) {
		switch (opt) {
		case 'm':
			mem_mib = strtoull(optarg, NULL, 0);
			break;
		case 'c':
			cmdline = optarg;
			break;
		case 'i':
			uart.input = optarg;
			break;
		case 't':
			timeout = (unsigned)strtoul(optarg, NULL, 0);
			break;
		case 'v':
			verbose = 1;
			break;
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	if (mem_mib < 2 || mem_mib > 64 * 1024)
		die("-m must be between 2 and 65536 MiB");

	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0)
		die("/dev/kvm: %s", strerror(errno));
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		die("unexpected KVM API version");
	g.vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (g.vm < 0)
		die("KVM_CREATE_VM: %s", strerror(errno));
	/* Needed by VMX hosts before the first run; harmless elsewhere. */
	ioctl(g.vm, KVM_SET_TSS_ADDR, 0xfffbd000ul);
	if (ioctl(g.vm, KVM_CREATE_IRQCHIP, 0) < 0)
		die("KVM_CREATE_IRQCHIP: %s", strerror(errno));
	struct kvm_pit_config pit = { .flags = 0 };
	if (ioctl(g.vm, KVM_CREATE_PIT2, &pit) < 0)
		die("KVM_CREATE_PIT2: %s", strerror(errno));

	uint64_t mem = mem_mib * MiB;
	g.low = mem < LOW_RAM_TOP ? mem : LOW_RAM_TOP;
	g.high = mem - g.low;
	g.ram = mmap(NULL, mem, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (g.ram == MAP_FAILED)
		die("mmap %llu MiB: %s", (unsigned long long)mem_mib, strerror(errno));
	struct kvm_userspace_memory_region r0 = {
		.slot = 0, .guest_phys_addr = 0, .memory_size = g.low, .userspace_addr = (uintptr_t)g.ram,
	};
	if (ioctl(g.vm, KVM_SET_USER_MEMORY_REGION, &r0) < 0)
		die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	if (g.high) {
		struct kvm_userspace_memory_region r1 = {
			.slot = 1, .guest_phys_addr = HIGH_RAM_BASE, .memory_size = g.high,
			.userspace_addr = (uintptr_t)(g.ram + g.low),
		};
		if (ioctl(g.vm, KVM_SET_USER_MEMORY_REGION, &r1) < 0)
			die("KVM_SET_USER_MEMORY_REGION: %s", strerror(errno));
	}

	uint32_t entry = load_elf(argv[optind]);
	write_start_info(cmdline);

	g.vcpu = ioctl(g.vm, KVM_CREATE_VCPU, 0);
	if (g.vcpu < 0)
		die("KVM_CREATE_VCPU: %s", strerror(errno));
	int run_size = ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (run_size <= 0)
		die("KVM_GET_VCPU_MMAP_SIZE: %s", strerror(errno));
	g.run = mmap(NULL, (size_t)run_size, PROT_READ | PROT_WRITE, MAP_SHARED, g.vcpu, 0);
	if (g.run == MAP_FAILED)
		die("mmap kvm_run: %s", strerror(errno));
	setup_cpuid(kvm);
	setup_lapic();
	setup_regs(entry);

	if (timeout) {
		/* No SA_RESTART: the signal must interrupt KVM_RUN. */
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_alarm;
		sigaction(SIGALRM, &sa, NULL);
		alarm(timeout);
	}

	clock_gettime(CLOCK_MONOTONIC, &st.start);
	struct kvm_run *run = g.run;
	for (;;) {
		if (ioctl(g.vcpu, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				if (timed_out) {
					flush_out();
					fprintf(stderr, "kvmrun: timeout after %u s\n", timeout);
					if (verbose)
						dump_vcpu();
					finish(124);
				}
				continue;
			}
			die("KVM_RUN: %s", strerror(errno));
		}
		st.exits++;
		if (verbose && !st.have_first_exit) {
			clock_gettime(CLOCK_MONOTONIC, &st.first_exit);
			st.have_first_exit = 1;
		}
		switch (run->exit_reason) {
		case KVM_EXIT_IO:
			st.io++;
			handle_io();
			break;
		case KVM_EXIT_MMIO:
			st.mmio++;
			if (!run->mmio.is_write)
				memset(run->mmio.data, 0xFF, sizeof(run->mmio.data));
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
			flush_out();
			fputs("kvmrun: guest shutdown (triple fault)\n", stderr);
			dump_vcpu();
			finish(3);
		case KVM_EXIT_INTERNAL_ERROR:
			flush_out();
			fprintf(stderr, "kvmrun: KVM internal error, suberror %u", run->internal.suberror);
			for (uint32_t i = 0; i < run->internal.ndata && i < 16; i++)
				fprintf(stderr, " 0x%llx", (unsigned long long)run->internal.data[i]);
			fputc('\n', stderr);
			dump_vcpu();
			finish(4);
		case KVM_EXIT_FAIL_ENTRY:
			flush_out();
			fprintf(stderr, "kvmrun: VM entry failed, reason 0x%llx\n",
				(unsigned long long)run->fail_entry.hardware_entry_failure_reason);
			dump_vcpu();
			finish(4);
		case KVM_EXIT_SYSTEM_EVENT:
			flush_out();
			fprintf(stderr, "kvmrun: system event %u\n", run->system_event.type);
			finish(run->system_event.type == KVM_SYSTEM_EVENT_SHUTDOWN ? 0 : 4);
		default:
			flush_out();
			fprintf(stderr, "kvmrun: unhandled exit reason %u\n", run->exit_reason);
			dump_vcpu();
			finish(4);
		}
	}
}
