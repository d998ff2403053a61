/*
 * fb: the Bochs VBE display (PCI 1234:1111) and the PS/2 keyboard and
 * mouse, as a remote console sees them.
 *
 * Finds the display on PCI (lib/pci), checks the DISPI interface ID
 * (BAR2 + 0x500 + 2*index, or ports 0x1CE/0x1CF with `dispi=ports`), sets a
 * mode (default 640x480x32), draws a known pattern into the linear
 * framebuffer (BAR0) and says so.  Then it enables the PS/2 mouse and
 * echoes every byte the i8042 delivers, taken by the IRQ1/IRQ12 handlers:
 * `kbd: XX` for keyboard bytes, `aux: XX` for mouse bytes.  Each keyboard
 * make code also paints an 8x8 white block along the bottom line (the n-th
 * at x = 8n), so a viewer sees the keys arrive.  Escape (make 0x01) ends
 * the guest with exit code 0.
 *
 * The pattern (pixel = 0x00RRGGBB), with W x H the mode:
 *   y <  H/2: eight vertical bars, bar = x * 8 / W, colours
 *             white, yellow, cyan, green, magenta, red, blue, black
 *   y >= H/2: R = x & 0xff, G = y & 0xff, B = (x ^ y) & 0xff
 * In 16 bpp the same colours are stored as RGB565.
 *
 * Output:
 *   fb: dispi id=0xb0c5 vram=16M
 *   fb: mode 640x480x32 stride=2560 lfb=0xc0000000
 *   fb: drawn 640x480x32
 *   kbd: ready
 *   kbd: 1e / aux: 08 ...
 *   fb: bye
 * With `tablet`, it also drives the virtio-input device (1AF4:1052) as a
 * driver would (lib/virtio): checks its name, keeps 32 event buffers
 * posted and prints each event as `tablet: TYPE CODE VALUE` (hex, value
 * signed decimal).
 * Command line: xres=N yres=N bpp=32|16, dispi=ports, tablet, and the pci
 * options.
 * anim=full redraws the whole screen, shifted a pixel each time, as fast as
 * it can; anim=line rewrites one 16-line band at mid-screen (for the
 * benchmark).  Both print `fb: animating full|line` and never take keys;
 * nokbd leaves the drawn screen alone (`fb: idle`) without touching the
 * i8042.
 */
#include "virtio.h"

const char guest_irqs_on = 1;

#define BOCHS_VENDOR 0x1234
#define BOCHS_DEVICE 0x1111
#define DISPI_MMIO   0x500
#define DISPI_PORT_INDEX 0x1CE
#define DISPI_PORT_DATA  0x1CF

#define VBE_DISPI_INDEX_ID     0x0
#define VBE_DISPI_INDEX_XRES   0x1
#define VBE_DISPI_INDEX_YRES   0x2
#define VBE_DISPI_INDEX_BPP    0x3
#define VBE_DISPI_INDEX_ENABLE 0x4
#define VBE_DISPI_INDEX_VIRT_WIDTH 0x6
#define VBE_DISPI_INDEX_VIDEO_MEMORY_64K 0xa
#define VBE_DISPI_ENABLED      0x01
#define VBE_DISPI_LFB_ENABLED  0x40

#define I8042_DATA   0x60
#define I8042_STATUS 0x64
#define I8042_STR_OBF 0x01
#define I8042_STR_IBF 0x02
#define I8042_STR_AUXDATA 0x20

static u64 mmio;        /* BAR2 */
static int use_ports;

static u16 dispi_read(u16 index)
{
	if (use_ports) {
		outw(DISPI_PORT_INDEX, index);
		return inw(DISPI_PORT_DATA);
	}
	return mmio_read16(mmio + DISPI_MMIO + 2u * index);
}

static void dispi_write(u16 index, u16 v)
{
	if (use_ports) {
		outw(DISPI_PORT_INDEX, index);
		outw(DISPI_PORT_DATA, v);
		return;
	}
	mmio_write16(mmio + DISPI_MMIO + 2u * index, v);
}

static const u32 bars[8] = {
	0xffffff, 0xffff00, 0x00ffff, 0x00ff00, 0xff00ff, 0xff0000, 0x0000ff, 0x000000,
};

static u32 pattern(u32 x, u32 y, u32 w, u32 h)
{
	if (y < h / 2)
		return bars[x * 8 / w];
	return ((x & 0xff) << 16) | ((y & 0xff) << 8) | ((x ^ y) & 0xff);
}

static volatile u8 *lfb;
static u32 xres = 640, yres = 480, bpp = 32, stride;

static void put(u32 x, u32 y, u32 rgb)
{
	if (bpp == 32) {
		*(volatile u32 *)(lfb + (u64)y * stride + 4u * x) = rgb;
	} else {
		u16 v = (u16)(((rgb >> 8) & 0xf800) | ((rgb >> 5) & 0x07e0) | ((rgb >> 3) & 0x001f));
		*(volatile u16 *)(lfb + (u64)y * stride + 2u * x) = v;
	}
}

static void fill(u32 x0, u32 y0, u32 w, u32 h, u32 rgb)
{
	for (u32 y = y0; y < y0 + h && y < yres; y++)
		for (u32 x = x0; x < x0 + w && x < xres; x++)
			put(x, y, rgb);
}

/* ---- the i8042, through IRQ1 and IRQ12 (CPL0, emulated on PVM: short) ---- */
#define RING 512
static volatile u16 ring[RING];         /* byte | 0x100 for aux data */
static volatile u32 head, tail;

void guest_irq(unsigned irq)
{
	if (irq != 1 && irq != 12)
		return;
	for (int i = 0; i < 4; i++) {
		u8 st = inb(I8042_STATUS);
		if (!(st & I8042_STR_OBF))
			break;
		u8 b = inb(I8042_DATA);
		u32 h = head;
		if (h - tail < RING) {
			ring[h % RING] = (u16)(b | ((st & I8042_STR_AUXDATA) ? 0x100 : 0));
			head = h + 1;
		}
	}
}

static int i8042_wait_write(void)
{
	for (int i = 0; i < 100000; i++)
		if (!(inb(I8042_STATUS) & I8042_STR_IBF))
			return 0;
	return -1;
}

static int i8042_read(u8 *out)
{
	for (int i = 0; i < 100000; i++) {
		if (inb(I8042_STATUS) & I8042_STR_OBF) {
			*out = inb(I8042_DATA);
			return 0;
		}
	}
	return -1;
}

/* Interrupts for both ports and the mouse reporting; done before the PIC lets IRQs in. */
static int i8042_setup(void)
{
	u8 b = 0, cmd = 0;
	for (int i = 0; i < 64 && (inb(I8042_STATUS) & I8042_STR_OBF); i++)
		(void)inb(I8042_DATA);
	if (i8042_wait_write() < 0)
		return -1;
	outb(I8042_STATUS, 0x20);               /* read the command byte */
	if (i8042_read(&cmd) < 0)
		return -1;
	cmd = (u8)((cmd | 0x03) & ~0x30);       /* KBDINT|AUXINT, both ports enabled */
	outb(I8042_STATUS, 0x60);
	i8042_wait_write();
	outb(I8042_DATA, cmd);
	i8042_wait_write();
	outb(I8042_STATUS, 0xD4);               /* to the mouse: */
	i8042_wait_write();
	outb(I8042_DATA, 0xF4);                 /* enable reporting */
	if (i8042_read(&b) < 0 || b != 0xFA) {
		printf("fb: mouse did not ack (0x%x)\n", b);
		return -1;
	}
	return 0;
}

/*
 * For the benchmark: change the screen for ever, as fast as the vCPU can.
 * full: the whole pattern, shifted one pixel further each frame; line: one
 * 16-line band at mid-screen, thin stripes that move each frame (a line of
 * text being rewritten).
 */
static void animate(int full)
{
	printf("fb: animating %s\n", full ? "full" : "line");
	for (u32 frame = 1;; frame++) {
		if (full) {
			for (u32 y = 0; y < yres; y++)
				for (u32 x = 0; x < xres; x++)
					put(x, y, pattern((x + frame) % xres, y, xres, yres));
		} else {
			u32 y0 = yres / 2;
			for (u32 y = y0; y < y0 + 16 && y < yres; y++)
				for (u32 x = 0; x < xres; x++)
					put(x, y, ((x + frame) % 7 < 2) ? 0xffffff : 0x000000);
		}
	}
}

/* ---- the virtio-input tablet (virtio 1.2 §5.8), polled ---- */
#define TABLET_BUFS 32
struct input_event { u16 type, code; int value; };
static struct input_event tablet_ev[TABLET_BUFS];
static struct virtio_dev tablet;
static struct virtq *tablet_q;

static int tablet_setup(void)
{
	char name[32];
	if (virtio_open(&tablet, VIRTIO_ID_INPUT, 0, 0) < 0)
		return -1;
	/* select = ID_NAME, subsel = 0; size at 2, the string from 8. */
	virtio_cfg_write8(&tablet, 0, 0x01);
	virtio_cfg_write8(&tablet, 1, 0);
	u8 size = virtio_cfg8(&tablet, 2);
	u32 i;
	for (i = 0; i < size && i < sizeof(name) - 1; i++)
		name[i] = (char)virtio_cfg8(&tablet, 8 + i);
	name[i] = 0;
	printf("tablet: name \"%s\"\n", name);
	tablet_q = virtio_queue(&tablet, 0, TABLET_BUFS);
	if (!tablet_q)
		return -1;
	for (i = 0; i < TABLET_BUFS; i++) {
		struct vq_buf b = { &tablet_ev[i], sizeof(tablet_ev[i]) };
		vq_add(tablet_q, &b, 0, 1, &tablet_ev[i]);
	}
	if (virtio_ready(&tablet) < 0)
		return -1;
	vq_kick(tablet_q);
	return 0;
}

static void tablet_poll(void)
{
	u32 len;
	struct input_event *e;
	int again = 0;
	while ((e = vq_get(tablet_q, &len)) != NULL) {
		if (len == sizeof(*e))
			printf("tablet: %x %x %d\n", e->type, e->code, e->value);
		struct vq_buf b = { e, sizeof(*e) };
		vq_add(tablet_q, &b, 0, 1, e);
		again = 1;
	}
	if (again)
		vq_kick(tablet_q);
}

int guest_main(void)
{
	u64 v;

	uart_init();
	use_ports = cmdline_has("dispi=ports");
	if (cmdline_u64("xres", &v)) xres = (u32)v;
	if (cmdline_u64("yres", &v)) yres = (u32)v;
	if (cmdline_u64("bpp", &v)) bpp = (u32)v;
	if (bpp != 32 && bpp != 16) {
		printf("fb: bpp=%u: only 32 and 16 are drawn\n", bpp);
		return 1;
	}

	if (pci_init() < 0)
		return 1;
	pci_scan(1);
	const struct pci_dev *d = pci_find(BOCHS_VENDOR, BOCHS_DEVICE, 0);
	if (!d) {
		printf("fb: no display (1234:1111) on bus 0\n");
		return 1;
	}
	struct pci_bar fbbar, regs;
	if (pci_bar_setup(d, 0, &fbbar) < 0 || fbbar.kind == PCI_BAR_NONE || fbbar.kind == PCI_BAR_IO ||
	    pci_bar_setup(d, 2, &regs) < 0 || regs.kind == PCI_BAR_NONE || regs.kind == PCI_BAR_IO) {
		printf("fb: unusable BARs\n");
		return 1;
	}
	pci_command(d, PCI_COMMAND_MEMORY, 0);
	mmio = regs.addr;
	lfb = (volatile u8 *)(unsigned long)fbbar.addr;

	u16 id = dispi_read(VBE_DISPI_INDEX_ID);
	u32 vram = (u32)dispi_read(VBE_DISPI_INDEX_VIDEO_MEMORY_64K) * 64 * 1024;
	printf("fb: dispi id=0x%x vram=%uM\n", id, vram >> 20);
	if ((id & 0xfff0) != 0xb0c0) {
		printf("fb: not a DISPI interface\n");
		return 1;
	}

	dispi_write(VBE_DISPI_INDEX_ENABLE, 0);
	dispi_write(VBE_DISPI_INDEX_BPP, (u16)bpp);
	dispi_write(VBE_DISPI_INDEX_XRES, (u16)xres);
	dispi_write(VBE_DISPI_INDEX_YRES, (u16)yres);
	dispi_write(VBE_DISPI_INDEX_ENABLE, VBE_DISPI_ENABLED | VBE_DISPI_LFB_ENABLED);
	/*
	 * Lines are VIRT_WIDTH pixels apart, and never fewer than XRES (QEMU's
	 * bochs-display leaves VIRT_WIDTH at 0 until a driver writes it).
	 */
	u32 vw = dispi_read(VBE_DISPI_INDEX_VIRT_WIDTH);
	stride = (vw > xres ? vw : xres) * (bpp / 8);
	if (dispi_read(VBE_DISPI_INDEX_XRES) != xres || dispi_read(VBE_DISPI_INDEX_YRES) != yres ||
	    dispi_read(VBE_DISPI_INDEX_BPP) != bpp) {
		printf("fb: the mode did not take: %ux%ux%u virt_width=%u\n", dispi_read(VBE_DISPI_INDEX_XRES),
		       dispi_read(VBE_DISPI_INDEX_YRES), dispi_read(VBE_DISPI_INDEX_BPP), dispi_read(VBE_DISPI_INDEX_VIRT_WIDTH));
		return 1;
	}
	printf("fb: mode %ux%ux%u stride=%u lfb=0x%llx\n", xres, yres, bpp, stride, fbbar.addr);

	for (u32 y = 0; y < yres; y++)
		for (u32 x = 0; x < xres; x++)
			put(x, y, pattern(x, y, xres, yres));
	printf("fb: drawn %ux%ux%u\n", xres, yres, bpp);

	if (cmdline_has("anim=full"))
		animate(1);
	if (cmdline_has("anim=line"))
		animate(0);
	if (cmdline_has("nokbd")) {
		/* A still screen and nothing else (the idle benchmark; VMMs without an i8042). */
		printf("fb: idle\n");
		for (;;)
			cpu_relax();
	}

	if (i8042_setup() < 0)
		return 1;
	int use_tablet = cmdline_has("tablet");
	if (use_tablet && tablet_setup() < 0)
		return 1;
	/* IRQ1 (keyboard), IRQ2 (the slave PIC) and IRQ12 (mouse). */
	pic_set_masks((u8)~((1u << 1) | (1u << 2)), (u8)~(1u << 4));
	printf("kbd: ready\n");

	u32 makes = 0;
	for (;;) {
		while (head == tail) {
			if (use_tablet)
				tablet_poll();
			cpu_relax();
		}
		u16 e = ring[tail % RING];
		tail = tail + 1;
		u8 b = (u8)e;
		if (e & 0x100) {
			printf("aux: %02x\n", b);
			continue;
		}
		printf("kbd: %02x\n", b);
		if (b == 0x01)
			break;
		if (b < 0x80 && b != 0xe0) {
			fill((makes * 8) % xres, yres - 8, 8, 8, 0xffffff);
			makes++;
		}
	}
	pic_set_masks(0xff, 0xff);
	printf("fb: bye\n");
	return 0;
}
