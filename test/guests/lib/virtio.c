/*
 * Modern virtio-pci and split virtqueues, polled (see virtio.h).  Written
 * from the virtio 1.2 specification; section numbers are cited where a
 * MUST is being kept.
 *
 * Memory: the rings and indirect tables come from a static pool in the
 * image (.bss), handed out page by page and never freed; the guests use
 * one device each.  The boot page tables map RAM 1:1, so a pointer is the
 * address the device is given.
 */
#include "virtio.h"

/* ---- ring memory ---- */

#define POOL_SIZE (512 * 1024)
static u8 pool[POOL_SIZE] __attribute__((aligned(4096)));
static size_t pool_used;

static void *pool_alloc(size_t bytes)
{
	bytes = (bytes + 4095) & ~(size_t)4095;
	if (pool_used + bytes > POOL_SIZE)
		return NULL;
	void *p = pool + pool_used;
	pool_used += bytes;
	memset(p, 0, bytes);
	return p;
}

/* ---- the transport's regions: memory or I/O BARs ---- */

static u8 rd8(const struct virtio_region *r, u32 off)
{
	return r->io ? inb((u16)(r->base + off)) : mmio_read8(r->base + off);
}
static u16 rd16(const struct virtio_region *r, u32 off)
{
	return r->io ? inw((u16)(r->base + off)) : mmio_read16(r->base + off);
}
static u32 rd32(const struct virtio_region *r, u32 off)
{
	return r->io ? inl((u16)(r->base + off)) : mmio_read32(r->base + off);
}
static void wr8(const struct virtio_region *r, u32 off, u8 x)
{
	if (r->io)
		outb((u16)(r->base + off), x);
	else
		mmio_write8(r->base + off, x);
}
static void wr16(const struct virtio_region *r, u32 off, u16 x)
{
	if (r->io)
		outw((u16)(r->base + off), x);
	else
		mmio_write16(r->base + off, x);
}
static void wr32(const struct virtio_region *r, u32 off, u32 x)
{
	if (r->io)
		outl((u16)(r->base + off), x);
	else
		mmio_write32(r->base + off, x);
}

/*
 * 64-bit fields of the common configuration as two 32-bit writes, low
 * half first: §4.1.3.1 lets the driver access each half on its own, and
 * devices need not support 64-bit accesses.
 */
static void wr64(const struct virtio_region *r, u32 off, u64 x)
{
	wr32(r, off, (u32)x);
	wr32(r, off + 4, (u32)(x >> 32));
}

const char *virtio_type_name(u16 type)
{
	switch (type) {
	case VIRTIO_ID_NET: return "net";
	case VIRTIO_ID_BLOCK: return "blk";
	case VIRTIO_ID_RNG: return "rng";
	case VIRTIO_ID_INPUT: return "input";
	default: return "?";
	}
}

u8 virtio_status(struct virtio_dev *v)
{
	return rd8(&v->common, VIRTIO_PCI_COMMON_STATUS);
}

static void set_status(struct virtio_dev *v, u8 bits)
{
	wr8(&v->common, VIRTIO_PCI_COMMON_STATUS, (u8)(virtio_status(v) | bits));
}

void virtio_reset(struct virtio_dev *v)
{
	wr8(&v->common, VIRTIO_PCI_COMMON_STATUS, 0);
	/* §4.1.4.3.2: wait for device_status to read 0 before going on. */
	u64 t0 = rdtsc();
	while (virtio_status(v) != 0) {
		if (rdtsc() - t0 > VIRTIO_TIMEOUT) {
			printf("virtio: reset did not complete (status 0x%x)\n", virtio_status(v));
			v->broken = 1;
			return;
		}
		cpu_relax();
	}
}

static int fail(struct virtio_dev *v, const char *why)
{
	printf("virtio: %s\n", why);
	if (v->common.len)
		set_status(v, VIRTIO_STATUS_FAILED);
	v->broken = 1;
	return -1;
}

/* ---- configuration space (§4.1.4.6) ---- */

static u8 generation(struct virtio_dev *v)
{
	return rd8(&v->common, VIRTIO_PCI_COMMON_CFGGENERATION);
}

static int cfg_in_range(struct virtio_dev *v, u32 off, u32 size)
{
	return off + size <= v->device.len;
}

/* Fields of 32 bits or less are read whole: one access, atomic (§2.5.1). */
u8 virtio_cfg8(struct virtio_dev *v, u32 off)
{
	return cfg_in_range(v, off, 1) ? rd8(&v->device, off) : 0;
}

void virtio_cfg_write8(struct virtio_dev *v, u32 off, u8 x)
{
	if (cfg_in_range(v, off, 1))
		wr8(&v->device, off, x);
}

u16 virtio_cfg16(struct virtio_dev *v, u32 off)
{
	return cfg_in_range(v, off, 2) ? rd16(&v->device, off) : 0;
}

u32 virtio_cfg32(struct virtio_dev *v, u32 off)
{
	return cfg_in_range(v, off, 4) ? rd32(&v->device, off) : 0;
}

/*
 * A 64-bit field is two 32-bit reads that may straddle a change: repeat
 * until config_generation is the same before and after (§2.5.1).
 */
u64 virtio_cfg64(struct virtio_dev *v, u32 off)
{
	if (!cfg_in_range(v, off, 8))
		return 0;
	u8 before, after;
	u64 x;
	int tries = 0;
	do {
		before = generation(v);
		x = rd32(&v->device, off) | (u64)rd32(&v->device, off + 4) << 32;
		after = generation(v);
	} while (before != after && ++tries < 100);
	return x;
}

/* ---- finding the device and its structures (§4.1.4) ---- */

static int pci_scanned;

static const char *bar_kind(enum pci_bar_kind k)
{
	switch (k) {
	case PCI_BAR_IO: return "io";
	case PCI_BAR_MEM32: return "mem32";
	case PCI_BAR_MEM64: return "mem64";
	default: return "none";
	}
}

static int read_caps(struct virtio_dev *v)
{
	const struct pci_dev *d = v->pci;
	struct pci_bar bars[PCI_NUM_BARS];
	int bar_state[PCI_NUM_BARS] = { 0 };    /* 0 unread, 1 usable, -1 not */
	unsigned found = 0;
	char name[8];
	pci_name(d, name);

	for (u8 p = pci_find_cap(d, PCI_CAP_ID_VNDR, 0); p; p = pci_find_cap(d, PCI_CAP_ID_VNDR, p)) {
		u8 cap_len = pci_read8(d, (u16)(p + 2));
		u8 type = pci_read8(d, (u16)(p + VIRTIO_PCI_CAP_CFG_TYPE));
		u8 bar = pci_read8(d, (u16)(p + VIRTIO_PCI_CAP_BAR));
		/*
		 * §4.1.4.1: ignore reserved cfg_type and bar values; use the
		 * first instance of each structure type (the device may offer
		 * alternatives after it).  The PCI configuration access
		 * structure (type 5) and newer ones are not used here.
		 */
		if (type < VIRTIO_PCI_CAP_COMMON_CFG || type > VIRTIO_PCI_CAP_DEVICE_CFG)
			continue;
		if (bar >= PCI_NUM_BARS || (found & (1u << type)) || cap_len < 16)
			continue;
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG && cap_len < 20)
			continue;
		u32 off = pci_read32(d, (u16)(p + VIRTIO_PCI_CAP_OFFSET));
		u32 len = pci_read32(d, (u16)(p + VIRTIO_PCI_CAP_LENGTH));
		if (bar_state[bar] == 0) {
			if (pci_bar_setup(d, bar, &bars[bar]) < 0 || bars[bar].kind == PCI_BAR_NONE) {
				printf("pci: %s bar%u unusable\n", name, bar);
				bar_state[bar] = -1;
			} else {
				bar_state[bar] = 1;
				printf("pci: %s bar%u %s addr=0x%llx size=0x%llx%s\n", name, bar,
				       bar_kind(bars[bar].kind), bars[bar].addr, bars[bar].size,
				       bars[bar].assigned ? " assigned" : "");
			}
		}
		if (bar_state[bar] < 0)
			continue;
		if ((u64)off + len > bars[bar].size) {
			printf("virtio: cap type %u runs past bar%u (0x%x+0x%x)\n", type, bar, off, len);
			continue;
		}
		struct virtio_region *r = type == VIRTIO_PCI_CAP_COMMON_CFG ? &v->common
					: type == VIRTIO_PCI_CAP_NOTIFY_CFG ? &v->notify
					: type == VIRTIO_PCI_CAP_ISR_CFG    ? &v->isr
									    : &v->device;
		r->base = bars[bar].addr + off;
		r->len = len;
		r->io = bars[bar].kind == PCI_BAR_IO;
		r->bar = bar;
		r->offset = off;
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG)
			v->notify_mult = pci_read32(d, (u16)(p + VIRTIO_PCI_NOTIFY_CAP_MULT));
		found |= 1u << type;
	}
	if (!(found & (1u << VIRTIO_PCI_CAP_COMMON_CFG)) || v->common.len < VIRTIO_PCI_COMMON_MIN_LEN)
		return fail(v, "no usable common configuration capability");
	if (!(found & (1u << VIRTIO_PCI_CAP_NOTIFY_CFG)))
		return fail(v, "no usable notify capability");
	if (!(found & (1u << VIRTIO_PCI_CAP_ISR_CFG)) || v->isr.len < 1)
		return fail(v, "no usable ISR capability");

	printf("virtio: %s %s common=%u:0x%x isr=%u:0x%x device=", name, virtio_type_name(v->type),
	       v->common.bar, v->common.offset, v->isr.bar, v->isr.offset);
	if (found & (1u << VIRTIO_PCI_CAP_DEVICE_CFG))
		printf("%u:0x%x", v->device.bar, v->device.offset);
	else
		printf("none");
	printf(" notify=%u:0x%x mult=%u\n", v->notify.bar, v->notify.offset, v->notify_mult);

	/* What the BARs need decoded, and DMA; MSI-X (if any) stays off (§4.1.5.3). */
	u16 set = PCI_COMMAND_MASTER, clear = 0;
	for (int i = 0; i < PCI_NUM_BARS; i++)
		if (bar_state[i] > 0)
			set |= bars[i].kind == PCI_BAR_IO ? PCI_COMMAND_IO : PCI_COMMAND_MEMORY;
	/* Polling needs no INTx; waiting on ISR leaves the line as the device drives it. */
	if (v->isr_mode)
		clear |= PCI_COMMAND_INTX_DISABLE;
	else
		set |= PCI_COMMAND_INTX_DISABLE;
	u8 msix = pci_find_cap(d, PCI_CAP_ID_MSIX, 0);
	if (msix) {
		u16 ctl = pci_read16(d, (u16)(msix + 2));
		if (ctl & 0x8000)
			pci_write16(d, (u16)(msix + 2), ctl & 0x7FFF);
	}
	pci_command(d, set, clear);
	return 0;
}

int virtio_open(struct virtio_dev *v, u16 type, int n, u64 wanted)
{
	memset(v, 0, sizeof(*v));
	v->type = type;
	v->isr_mode = cmdline_has("isr");
	if (!pci_scanned) {
		if (pci_init() < 0)
			return -1;
		pci_scan(1);
		pci_scanned = 1;
	}
	u16 devid = (u16)(VIRTIO_PCI_DEVICE_MODERN_BASE + type);
	v->pci = pci_find(VIRTIO_PCI_VENDOR, devid, n);
	if (!v->pci) {
		printf("virtio: no %s device (%04x:%04x) on bus 0\n", virtio_type_name(type),
		       VIRTIO_PCI_VENDOR, devid);
		return -1;
	}
	if (read_caps(v) < 0)
		return -1;

	/* §3.1.1, steps 1-6. */
	virtio_reset(v);
	if (v->broken)
		return -1;
	set_status(v, VIRTIO_STATUS_ACKNOWLEDGE);
	set_status(v, VIRTIO_STATUS_DRIVER);

	wr32(&v->common, VIRTIO_PCI_COMMON_DFSELECT, 0);
	u64 offered = rd32(&v->common, VIRTIO_PCI_COMMON_DF);
	wr32(&v->common, VIRTIO_PCI_COMMON_DFSELECT, 1);
	offered |= (u64)rd32(&v->common, VIRTIO_PCI_COMMON_DF) << 32;
	v->features = offered;

	if (!(offered & VIRTIO_BIT(VIRTIO_F_VERSION_1)))
		return fail(v, "device does not offer VIRTIO_F_VERSION_1");
	/*
	 * ACCESS_PLATFORM only says the device goes through the platform's
	 * address translation; there is none here, so accepting it changes
	 * nothing, while refusing it may make the device refuse us (§6.1).
	 */
	wanted |= VIRTIO_BIT(VIRTIO_F_VERSION_1) | VIRTIO_BIT(VIRTIO_F_ACCESS_PLATFORM);
	if (cmdline_has("indirect")) {
		if (offered & VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC))
			wanted |= VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
		else
			printf("virtio: indirect descriptors not offered\n");
	} else {
		wanted &= ~VIRTIO_BIT(VIRTIO_F_INDIRECT_DESC);
	}
	/* Nothing here drives event indices or packed rings, whatever the caller asked. */
	wanted &= ~(VIRTIO_BIT(VIRTIO_F_EVENT_IDX) | VIRTIO_BIT(VIRTIO_F_RING_PACKED));
	v->negotiated = offered & wanted;

	wr32(&v->common, VIRTIO_PCI_COMMON_GFSELECT, 0);
	wr32(&v->common, VIRTIO_PCI_COMMON_GF, (u32)v->negotiated);
	wr32(&v->common, VIRTIO_PCI_COMMON_GFSELECT, 1);
	wr32(&v->common, VIRTIO_PCI_COMMON_GF, (u32)(v->negotiated >> 32));
	printf("virtio: features device=0x%llx driver=0x%llx\n", offered, v->negotiated);

	set_status(v, VIRTIO_STATUS_FEATURES_OK);
	/* §3.1.1 step 6: the device may refuse the subset; only the read-back tells. */
	if (!(virtio_status(v) & VIRTIO_STATUS_FEATURES_OK))
		return fail(v, "device did not accept the features (FEATURES_OK not set)");
	v->num_queues = rd16(&v->common, VIRTIO_PCI_COMMON_NUMQ);
	return 0;
}

/* ---- queues (§4.1.5.1.3) ---- */

struct virtq *virtio_queue(struct virtio_dev *v, u16 index, u16 max_size)
{
	if (v->broken)
		return NULL;
	if (index >= VIRTIO_MAX_QUEUES || index >= v->num_queues) {
		printf("virtio: queue %u not present (num_queues=%u)\n", index, v->num_queues);
		return NULL;
	}
	struct virtq *vq = &v->vq[index];
	memset(vq, 0, sizeof(*vq));
	vq->vdev = v;
	vq->index = index;

	wr16(&v->common, VIRTIO_PCI_COMMON_Q_SELECT, index);
	u16 dev_max = rd16(&v->common, VIRTIO_PCI_COMMON_Q_SIZE);
	if (dev_max == 0) {
		printf("virtio: queue %u not available (size 0)\n", index);
		return NULL;
	}
	if (rd16(&v->common, VIRTIO_PCI_COMMON_Q_ENABLE) != 0)
		printf("virtio: queue %u enabled before setup (after reset)\n", index);
	/* Split queue sizes are powers of two (§2.7); pick the largest that fits. */
	u16 limit = dev_max < max_size ? dev_max : max_size;
	if (limit > VQ_MAX_SIZE)
		limit = VQ_MAX_SIZE;
	u16 size = 1;
	while ((u16)(size * 2) != 0 && size * 2 <= limit)
		size = (u16)(size * 2);
	vq->size = size;
	wr16(&v->common, VIRTIO_PCI_COMMON_Q_SIZE, size);

	u16 noff = rd16(&v->common, VIRTIO_PCI_COMMON_Q_NOFF);
	u64 nbyte = (u64)noff * v->notify_mult;
	/* §4.1.4.4: the notify structure covers queue_notify_off * multiplier + 2. */
	if (nbyte + 2 > v->notify.len) {
		printf("virtio: queue %u notify offset 0x%llx outside the notify region (len 0x%x)\n",
		       index, nbyte, v->notify.len);
		fail(v, "bad notify offset");
		return NULL;
	}
	vq->notify = v->notify.base + nbyte;
	vq->notify_io = v->notify.io;

	/* Alignment (§2.7): 16 for descriptors, 2 avail, 4 used; pages are plenty. */
	vq->desc = pool_alloc(16u * size);
	vq->avail = pool_alloc(6u + 2u * size);
	vq->used = pool_alloc(6u + 8u * size);
	vq->indirect = virtio_has(v, VIRTIO_F_INDIRECT_DESC);
	if (vq->indirect)
		vq->itables = pool_alloc((size_t)size * VQ_INDIRECT_MAX * sizeof(struct virtq_desc));
	if (!vq->desc || !vq->avail || !vq->used || (vq->indirect && !vq->itables)) {
		fail(v, "out of ring memory");
		return NULL;
	}
	for (u16 i = 0; i < size; i++)
		vq->desc[i].next = (u16)(i + 1);
	vq->free_head = 0;
	vq->num_free = size;
	/* Polling: ask the device not to interrupt (a hint, §2.7.7). */
	vq->avail->flags = v->isr_mode ? 0 : VIRTQ_AVAIL_F_NO_INTERRUPT;
	vq->isr_epoch_seen = v->isr_epoch;

	wr64(&v->common, VIRTIO_PCI_COMMON_Q_DESCLO, (u64)(unsigned long)vq->desc);
	wr64(&v->common, VIRTIO_PCI_COMMON_Q_AVAILLO, (u64)(unsigned long)vq->avail);
	wr64(&v->common, VIRTIO_PCI_COMMON_Q_USEDLO, (u64)(unsigned long)vq->used);
	wr16(&v->common, VIRTIO_PCI_COMMON_Q_ENABLE, 1);
	if (rd16(&v->common, VIRTIO_PCI_COMMON_Q_ENABLE) != 1)
		printf("virtio: queue %u: queue_enable reads back 0\n", index);

	printf("virtio: queue %u size=%u max=%u notify=%u:0x%llx indirect=%d mode=%s\n", index, size,
	       dev_max, v->notify.bar, v->notify.offset + nbyte, vq->indirect,
	       v->isr_mode ? "isr" : "poll");
	return vq;
}

int virtio_ready(struct virtio_dev *v)
{
	if (v->broken)
		return -1;
	set_status(v, VIRTIO_STATUS_DRIVER_OK);
	u8 s = virtio_status(v);
	if (s & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED) || !(s & VIRTIO_STATUS_DRIVER_OK)) {
		printf("virtio: device status 0x%x after DRIVER_OK\n", s);
		v->broken = 1;
		return -1;
	}
	return 0;
}

/* ---- split virtqueue operations (§2.7.13, §2.7.14) ---- */

int vq_add(struct virtq *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token)
{
	unsigned n = n_out + n_in;
	/* §2.7.5.3.1 / §2.7.13: no empty chains, none longer than the queue. */
	if (n == 0 || n > vq->size || !token || vq->vdev->broken)
		return -1;
	int indirect = vq->indirect && n > 1 && n <= VQ_INDIRECT_MAX;
	unsigned need = indirect ? 1 : n;
	if (vq->num_free < need)
		return -1;

	u16 head = vq->free_head;
	if (indirect) {
		struct virtq_desc *t = vq->itables + (size_t)head * VQ_INDIRECT_MAX;
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = (u64)(unsigned long)bufs[i].addr;
			t[i].len = bufs[i].len;
			t[i].flags = (u16)((i >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
					   (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
			t[i].next = (u16)(i + 1);
		}
		/* §2.7.5.3.1: INDIRECT alone, never with NEXT (or WRITE). */
		vq->desc[head].addr = (u64)(unsigned long)t;
		vq->desc[head].len = (u32)(n * sizeof(struct virtq_desc));
		vq->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		vq->free_head = vq->desc[head].next;
	} else {
		/* The free list is linked through `next`, so the chain is already linked. */
		u16 i = head, last = head;
		for (unsigned k = 0; k < n; k++) {
			vq->desc[i].addr = (u64)(unsigned long)bufs[k].addr;
			vq->desc[i].len = bufs[k].len;
			vq->desc[i].flags = (u16)((k >= n_out ? VIRTQ_DESC_F_WRITE : 0) |
						  (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
			last = i;
			i = vq->desc[i].next;
		}
		vq->free_head = vq->desc[last].next;
	}
	vq->num_free = (u16)(vq->num_free - need);
	vq->token[head] = token;
	vq->ndesc[head] = (u16)need;

	/*
	 * Descriptors, then the ring entry, then idx (§2.7.13): x86 keeps
	 * stores in order, so the compiler is all that needs holding back.
	 */
	vq->avail->ring[vq->avail_idx & (vq->size - 1)] = head;
	barrier();
	vq->avail_idx++;
	vq->avail->idx = vq->avail_idx;
	vq->added++;
	return 0;
}

void vq_kick(struct virtq *vq)
{
	if (vq->kicked_idx == vq->avail_idx)
		return;
	vq->kicked_idx = vq->avail_idx;
	/* §2.7.10: read used->flags only after avail->idx is visible. */
	virtio_mb();
	if (vq->used->flags & VIRTQ_USED_F_NO_NOTIFY) {
		vq->kicks_skipped++;
		return;
	}
	/* §4.1.5.2: without NOTIFICATION_DATA, the 16-bit queue index. */
	if (vq->notify_io)
		outw((u16)vq->notify, vq->index);
	else
		mmio_write16(vq->notify, vq->index);
	vq->kicks++;
}

static void broken(struct virtq *vq, const char *what, u32 val)
{
	printf("virtio: queue %u %s %u\n", vq->index, what, val);
	vq->vdev->broken = 1;
}

void *vq_get(struct virtq *vq, u32 *len)
{
	if (vq->vdev->broken)
		return NULL;
	u16 used_idx = vq->used->idx;
	if (used_idx == vq->last_used)
		return NULL;
	if ((u16)(used_idx - vq->last_used) > vq->size) {
		broken(vq, "used->idx ran ahead by", (u16)(used_idx - vq->last_used));
		return NULL;
	}
	/* idx before the element: loads are not reordered on x86; stop the compiler. */
	barrier();
	volatile struct virtq_used_elem *e = &vq->used->ring[vq->last_used & (vq->size - 1)];
	u32 id = e->id, n = e->len;
	if (id >= vq->size || !vq->token[id]) {
		broken(vq, "used an id not in flight:", id);
		return NULL;
	}
	vq->last_used++;

	/* Back onto the free list: the head, or the whole direct chain. */
	u16 last = (u16)id;
	for (u16 k = 1; k < vq->ndesc[id]; k++)
		last = vq->desc[last].next;
	vq->desc[last].next = vq->free_head;
	vq->free_head = (u16)id;
	vq->num_free = (u16)(vq->num_free + vq->ndesc[id]);

	void *token = vq->token[id];
	vq->token[id] = NULL;
	vq->completed++;
	if (len)
		*len = n;
	return token;
}

void *vq_wait(struct virtq *vq, u32 *len, u64 timeout)
{
	struct virtio_dev *v = vq->vdev;
	u64 t0 = rdtsc();
	for (;;) {
		if (v->broken)
			return NULL;
		if (vq->used->idx != vq->last_used) {
			/*
			 * ISR mode: take what is in the used ring only once an
			 * ISR read has shown the queue bit since this queue was
			 * last seen empty (any queue's read counts: ISR is
			 * per device and reading it clears it, §4.1.4.5).
			 */
			if (!v->isr_mode || vq->isr_epoch_seen != v->isr_epoch)
				return vq_get(vq, len);
		} else {
			vq->isr_epoch_seen = v->isr_epoch;
		}
		if (v->isr_mode) {
			u8 isr = rd8(&v->isr, 0);
			v->isr_reads++;
			if (isr & VIRTIO_PCI_ISR_QUEUE)
				v->isr_epoch++;
		} else {
			cpu_relax();
		}
		if (rdtsc() - t0 > timeout) {
			printf("virtio: queue %u timed out: used->idx=%u last_used=%u avail->idx=%u status=0x%x\n",
			       vq->index, vq->used->idx, vq->last_used, vq->avail_idx, virtio_status(v));
			return NULL;
		}
	}
}

void virtio_report(struct virtio_dev *v)
{
	for (int i = 0; i < VIRTIO_MAX_QUEUES; i++) {
		struct virtq *vq = &v->vq[i];
		if (!vq->size)
			continue;
		printf("virtio: queue %u added=%llu used=%llu kicks=%llu skipped=%llu\n", vq->index,
		       vq->added, vq->completed, vq->kicks, vq->kicks_skipped);
	}
	if (v->isr_mode)
		printf("virtio: isr reads=%llu hits=%u\n", v->isr_reads, v->isr_epoch);
}
