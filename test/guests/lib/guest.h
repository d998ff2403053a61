/*
 * The vmctl test-guest library.  Guest bodies run at CPL3 on an identity
 * map of the first 4 GiB, with every I/O port open to them (IOPL=3, and an
 * all-zero TSS I/O bitmap for PVM, which hides the guest's IOPL), so in/out
 * work directly.  They define `int guest_main(void)`; its return value
 * becomes the exit code.
 */
#ifndef GUEST_H
#define GUEST_H

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;
typedef signed long long s64;
typedef __SIZE_TYPE__ size_t;

#define NULL ((void *)0)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- port I/O: one instruction of exactly the named width each ---- */
static inline void outb(u16 port, u8 v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outw(u16 port, u16 v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(u16 port, u32 v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline u8 inb(u16 port) { u8 v; __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u16 inw(u16 port) { u16 v; __asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port)); return v; }
static inline u32 inl(u16 port) { u32 v; __asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port)); return v; }

/*
 * ---- MMIO: a plain mov of the given width, so the hypervisor's
 * instruction decoder sees the simplest possible access ----
 */
static inline void mmio_write8(u64 a, u8 v) { __asm__ volatile("movb %1, (%0)" : : "r"(a), "q"(v) : "memory"); }
static inline void mmio_write16(u64 a, u16 v) { __asm__ volatile("movw %1, (%0)" : : "r"(a), "r"(v) : "memory"); }
static inline void mmio_write32(u64 a, u32 v) { __asm__ volatile("movl %1, (%0)" : : "r"(a), "r"(v) : "memory"); }
static inline void mmio_write64(u64 a, u64 v) { __asm__ volatile("movq %1, (%0)" : : "r"(a), "r"(v) : "memory"); }
static inline u8 mmio_read8(u64 a) { u8 v; __asm__ volatile("movb (%1), %0" : "=q"(v) : "r"(a) : "memory"); return v; }
static inline u16 mmio_read16(u64 a) { u16 v; __asm__ volatile("movw (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline u32 mmio_read32(u64 a) { u32 v; __asm__ volatile("movl (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }
static inline u64 mmio_read64(u64 a) { u64 v; __asm__ volatile("movq (%1), %0" : "=r"(v) : "r"(a) : "memory"); return v; }

static inline u64 rdtsc(void)
{
	u32 lo, hi;
	__asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
	return ((u64)hi << 32) | lo;
}

static inline void cpu_relax(void) { __asm__ volatile("pause" ::: "memory"); }
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }

/* Current privilege level, from CS.RPL. */
static inline unsigned cpl(void)
{
	u16 cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	return cs & 3;
}

/*
 * Runs fn(arg) at CPL0 and returns its result.  For the few things a body
 * cannot do at CPL3, or to measure CPL0 behaviour: on PVM every instruction
 * fn executes is emulated.  The way in is int3 with a magic RAX (the #BP
 * gate is DPL3): PVM answers `int n` from CPL3 with #UD but delivers int3.
 */
#define CPL0_CALL_MAGIC 0x43504c30ull   /* "CPL0" */
static inline u64 cpl0_call(u64 (*fn)(u64), u64 arg)
{
	u64 ret = CPL0_CALL_MAGIC;
	/* The trap path restores every register but RAX, which carries the result. */
	__asm__ volatile("int3" : "+a"(ret) : "D"(fn), "S"(arg) : "memory", "cc");
	return ret;
}

/* ---- fixed ports of the vmctl test machine ---- */
#define PORT_UART0      0x3F8   /* 16550 COM1 */
#define PORT_I8042_CMD  0x64    /* i8042 command/status */
#define PORT_CMOS_INDEX 0x70
#define PORT_CMOS_DATA  0x71
#define PORT_POST       0x80    /* POST code; the exit-storm port */
#define PORT_DEBUG_EXIT 0xF4    /* 32-bit write = exit code */
#define PORT_PM1A_CNT   0x604   /* ACPI PM1a control */

/* ---- 16550 UART (COM1) ---- */
#define UART_RBR 0  /* read, DLAB=0 */
#define UART_THR 0  /* write, DLAB=0 */
#define UART_DLL 0  /* DLAB=1 */
#define UART_IER 1  /* DLAB=0 */
#define UART_DLM 1  /* DLAB=1 */
#define UART_IIR 2  /* read */
#define UART_FCR 2  /* write */
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_MSR 6
#define UART_SCR 7
#define UART_IER_ERBFI 0x01
#define UART_LSR_DR    0x01
#define UART_LSR_THRE  0x20
#define UART_MCR_DTR   0x01
#define UART_MCR_RTS   0x02
#define UART_MCR_OUT2  0x08     /* gates the IRQ line on a PC */

void uart_init(void);
void uart_putc(char c);
void uart_puts(const char *s);
void uart_put_hex(u64 v, int digits);
void uart_put_dec(u64 v);
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- 8259 PICs ---- */
void pic_init(u8 master_base, u8 slave_base, u8 master_mask, u8 slave_mask);
/* pic_init(0x20, 0x28, all masked): done at CPL0 for guest_irqs_on guests. */
void pic_init_masked(void);
void pic_set_masks(u8 master_mask, u8 slave_mask);
void pic_eoi(unsigned irq);

/* ---- PVH start info (xen public/arch-x86/hvm/start_info.h) ---- */
#define HVM_START_MAGIC 0x336ec578
struct hvm_start_info {
	u32 magic;
	u32 version;
	u32 flags;
	u32 nr_modules;
	u64 modlist_paddr;
	u64 cmdline_paddr;
	u64 rsdp_paddr;
	/* version >= 1 */
	u64 memmap_paddr;
	u32 memmap_entries;
	u32 reserved;
};
struct hvm_memmap_table_entry {
	u64 addr;
	u64 size;
	u32 type;
	u32 reserved;
};
#define E820_RAM 1

extern u32 pvh_start_info_paddr;        /* EBX at the PVH entry */
/* Checked start_info, or NULL (with a message) when the magic is wrong. */
const struct hvm_start_info *start_info(void);
/* The kernel command line ("" if none). */
const char *cmdline(void);
/* Finds `key=NUMBER` (decimal or 0x-hex) on the command line. */
int cmdline_u64(const char *key, u64 *out);
/* True if `word` appears on the command line as a whole token. */
int cmdline_has(const char *word);
/*
 * Copies the value of `key=VALUE` (NUL-terminated) into buf; 0 if the key
 * is absent or the value does not fit in `size` bytes.
 */
int cmdline_str(const char *key, char *buf, size_t size);

/*
 * ---- Linux boot protocol (bzimage.bin only: boot/linux64.S) ----
 * The physical address of boot_params (%rsi at the 64-bit entry); 0 in the
 * PVH guests.  Offsets: Documentation/arch/x86/zero-page.rst.
 */
extern u64 linux_boot_params;
#define BP_ACPI_RSDP_ADDR       0x070   /* u64 */
#define BP_EXT_RAMDISK_IMAGE    0x0c0   /* u32: bits 63:32 of ramdisk_image */
#define BP_EXT_RAMDISK_SIZE     0x0c4   /* u32 */
#define BP_EXT_CMD_LINE_PTR     0x0c8   /* u32 */
#define BP_E820_ENTRIES         0x1e8   /* u8 */
#define BP_HDR_HEADER           0x202   /* u32 "HdrS" */
#define BP_HDR_VERSION          0x206   /* u16 */
#define BP_HDR_TYPE_OF_LOADER   0x210   /* u8 */
#define BP_HDR_RAMDISK_IMAGE    0x218   /* u32 */
#define BP_HDR_RAMDISK_SIZE     0x21c   /* u32 */
#define BP_HDR_CMD_LINE_PTR     0x228   /* u32 */
#define BP_E820_TABLE           0x2d0   /* 128 x struct boot_e820_entry */
#define BP_E820_MAX             128
struct boot_e820_entry {
	u64 addr;
	u64 size;
	u32 type;
} __attribute__((packed));

/* ---- leaving ---- */
void exit(int code) __attribute__((noreturn));

/* ---- hooks a guest may define ---- */
int guest_main(void);
/* Defining this symbol (any value) starts the body with RFLAGS.IF=1. */
extern const char guest_irqs_on;
/* Called at CPL0 for PIC vectors 0x20..0x2F; EOI is sent afterwards. */
void guest_irq(unsigned irq);

/* ---- freestanding basics (gcc may emit calls to the first four) ---- */
void *memset(void *d, int c, size_t n);
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strncmp(const char *a, const char *b, size_t n);
int strcmp(const char *a, const char *b);

#endif
