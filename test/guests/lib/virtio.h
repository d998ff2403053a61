/*
 * A small polling virtio driver for the test guests: the modern virtio-pci
 * transport (virtio 1.2 §4.1; vendor 0x1AF4, device 0x1040 + type only)
 * and split virtqueues (§2.7), for the CPL3 body.  No interrupts: the
 * driver polls used->idx in RAM (native speed at CPL3), or, with command
 * line `isr`, reads the ISR status register (one exit per read) and looks
 * at a used ring only after it has shown the queue interrupt bit.  MSI-X
 * stays disabled, so ISR status works as for INTx (§4.1.4.5).
 *
 * Command-line options every virtio guest takes (read by virtio_open):
 *   indirect   negotiate VIRTIO_F_INDIRECT_DESC (if offered) and put every
 *              chain of 2+ buffers in an indirect table (§2.7.5.3)
 *   isr        wait through the ISR status register, as above
 *   pci=cf8    configuration through 0xCF8/0xCFC even if ACPI names ECAM
 *   pci=ecam   require ECAM
 */
#ifndef VIRTIO_H
#define VIRTIO_H

#include "pci.h"

#define VIRTIO_PCI_VENDOR               0x1AF4
#define VIRTIO_PCI_DEVICE_MODERN_BASE   0x1040  /* + device type (§4.1.2) */

/* Device types (§5). */
#define VIRTIO_ID_NET           1
#define VIRTIO_ID_BLOCK         2
#define VIRTIO_ID_RNG           4
#define VIRTIO_ID_INPUT         18

/* Device status (§2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE       0x01
#define VIRTIO_STATUS_DRIVER            0x02
#define VIRTIO_STATUS_DRIVER_OK         0x04
#define VIRTIO_STATUS_FEATURES_OK       0x08
#define VIRTIO_STATUS_NEEDS_RESET       0x40
#define VIRTIO_STATUS_FAILED            0x80

/* Reserved feature bits (§6). */
#define VIRTIO_F_INDIRECT_DESC          28
#define VIRTIO_F_EVENT_IDX              29
#define VIRTIO_F_VERSION_1              32
#define VIRTIO_F_ACCESS_PLATFORM        33
#define VIRTIO_F_RING_PACKED            34
#define VIRTIO_BIT(n)                   (1ull << (n))

/* virtio_pci_cap (§4.1.4): a vendor-specific PCI capability. */
#define VIRTIO_PCI_CAP_CFG_TYPE         3       /* u8 */
#define VIRTIO_PCI_CAP_BAR              4       /* u8 */
#define VIRTIO_PCI_CAP_ID               5       /* u8 */
#define VIRTIO_PCI_CAP_OFFSET           8       /* le32 */
#define VIRTIO_PCI_CAP_LENGTH           12      /* le32 */
#define VIRTIO_PCI_NOTIFY_CAP_MULT      16      /* le32, notify capability only */
#define VIRTIO_PCI_CAP_COMMON_CFG       1
#define VIRTIO_PCI_CAP_NOTIFY_CFG       2
#define VIRTIO_PCI_CAP_ISR_CFG          3
#define VIRTIO_PCI_CAP_DEVICE_CFG       4
#define VIRTIO_PCI_CAP_PCI_CFG          5

/* struct virtio_pci_common_cfg (§4.1.4.3). */
#define VIRTIO_PCI_COMMON_DFSELECT      0x00    /* le32 device_feature_select */
#define VIRTIO_PCI_COMMON_DF            0x04    /* le32 device_feature */
#define VIRTIO_PCI_COMMON_GFSELECT      0x08    /* le32 driver_feature_select */
#define VIRTIO_PCI_COMMON_GF            0x0C    /* le32 driver_feature */
#define VIRTIO_PCI_COMMON_MSIX          0x10    /* le16 config_msix_vector */
#define VIRTIO_PCI_COMMON_NUMQ          0x12    /* le16 num_queues */
#define VIRTIO_PCI_COMMON_STATUS        0x14    /* u8 device_status */
#define VIRTIO_PCI_COMMON_CFGGENERATION 0x15    /* u8 config_generation */
#define VIRTIO_PCI_COMMON_Q_SELECT      0x16    /* le16 */
#define VIRTIO_PCI_COMMON_Q_SIZE        0x18    /* le16 */
#define VIRTIO_PCI_COMMON_Q_MSIX        0x1A    /* le16 */
#define VIRTIO_PCI_COMMON_Q_ENABLE      0x1C    /* le16 */
#define VIRTIO_PCI_COMMON_Q_NOFF        0x1E    /* le16 queue_notify_off */
#define VIRTIO_PCI_COMMON_Q_DESCLO      0x20    /* le64 queue_desc, as two le32 */
#define VIRTIO_PCI_COMMON_Q_DESCHI      0x24
#define VIRTIO_PCI_COMMON_Q_AVAILLO     0x28    /* le64 queue_driver */
#define VIRTIO_PCI_COMMON_Q_AVAILHI     0x2C
#define VIRTIO_PCI_COMMON_Q_USEDLO      0x30    /* le64 queue_device */
#define VIRTIO_PCI_COMMON_Q_USEDHI      0x34
#define VIRTIO_PCI_COMMON_MIN_LEN       0x38    /* the 1.0 structure */

#define VIRTIO_PCI_ISR_QUEUE            0x1
#define VIRTIO_PCI_ISR_CONFIG           0x2

/* Split virtqueue (§2.7). */
struct virtq_desc {
	u64 addr;
	u32 len;
	u16 flags;
	u16 next;
};
#define VIRTQ_DESC_F_NEXT       1
#define VIRTQ_DESC_F_WRITE      2
#define VIRTQ_DESC_F_INDIRECT   4

struct virtq_avail {
	u16 flags;
	u16 idx;
	u16 ring[];     /* then le16 used_event (EVENT_IDX only, unused here) */
};
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1

struct virtq_used_elem {
	u32 id;
	u32 len;
};
struct virtq_used {
	u16 flags;
	u16 idx;
	struct virtq_used_elem ring[];
};
#define VIRTQ_USED_F_NO_NOTIFY  1

#define VQ_MAX_SIZE     256     /* we ask for at most this many entries */
#define VQ_INDIRECT_MAX 32      /* descriptors per indirect table */
#define VIRTIO_MAX_QUEUES 2

/* One buffer of a chain: guest-physical == virtual here (identity map). */
struct vq_buf {
	const void *addr;
	u32 len;
};

struct virtio_dev;

struct virtq {
	struct virtio_dev *vdev;
	u16 index;
	u16 size;
	u16 num_free;
	u16 free_head;
	u16 avail_idx;          /* the next value of avail->idx */
	u16 kicked_idx;         /* avail_idx at the last notification decision */
	u16 last_used;          /* used->idx consumed so far */
	int indirect;           /* chains of 2+ buffers go in an indirect table */
	volatile struct virtq_desc *desc;
	volatile struct virtq_avail *avail;
	volatile struct virtq_used *used;
	struct virtq_desc *itables;     /* size tables of VQ_INDIRECT_MAX, by head */
	u64 notify;             /* notification address (memory or port) */
	int notify_io;
	u32 isr_epoch_seen;
	void *token[VQ_MAX_SIZE];
	u16 ndesc[VQ_MAX_SIZE];
	u64 added, completed, kicks, kicks_skipped;
};

/* A structure of the transport: where a capability points. */
struct virtio_region {
	u64 base;               /* memory address or port */
	u32 len;
	int io;                 /* in an I/O BAR */
	u8 bar;
	u32 offset;             /* within the BAR */
};

struct virtio_dev {
	const struct pci_dev *pci;
	u16 type;
	struct virtio_region common, notify, isr, device;
	u32 notify_mult;
	u64 features;           /* offered by the device */
	u64 negotiated;         /* accepted by the driver */
	int isr_mode;
	u32 isr_epoch;          /* ISR reads that showed the queue bit */
	u64 isr_reads;
	int broken;
	u16 num_queues;
	struct virtq vq[VIRTIO_MAX_QUEUES];
};

const char *virtio_type_name(u16 type);

/*
 * Finds the n-th (from 0) modern virtio-pci device of `type` on bus 0
 * (enumerating it, printed, on the first call), places its BARs, reads its
 * capabilities, enables memory decoding and bus mastering, and runs the
 * initialisation of §3.1.1 up to FEATURES_OK: reset, ACKNOWLEDGE, DRIVER,
 * features = offered & (`wanted` | VERSION_1 | ACCESS_PLATFORM, plus
 * INDIRECT_DESC with `indirect`), FEATURES_OK and its read-back.  Prints
 *   virtio: BB:DD.F TYPE common=B:OFF isr=B:OFF device=B:OFF notify=B:OFF mult=M
 *   virtio: features device=0x... driver=0x...
 * Returns 0, or -1 with a `virtio: ...` line saying why (device FAILED).
 */
int virtio_open(struct virtio_dev *v, u16 type, int n, u64 wanted);
/* Sets up queue `index` with at most `max_size` entries (§4.1.5.1.3). */
struct virtq *virtio_queue(struct virtio_dev *v, u16 index, u16 max_size);
/* DRIVER_OK: the device is live.  0, or -1 if the device shows NEEDS_RESET/FAILED. */
int virtio_ready(struct virtio_dev *v);
/* Reset (status 0, then wait for it to read back 0). */
void virtio_reset(struct virtio_dev *v);
u8 virtio_status(struct virtio_dev *v);
static inline int virtio_has(const struct virtio_dev *v, int bit)
{
	return (v->negotiated >> bit) & 1;
}

/* Device configuration space, read consistently (config_generation, §4.1.4.3.1). */
u8 virtio_cfg8(struct virtio_dev *v, u32 off);
u16 virtio_cfg16(struct virtio_dev *v, u32 off);
u32 virtio_cfg32(struct virtio_dev *v, u32 off);
u64 virtio_cfg64(struct virtio_dev *v, u32 off);
/* A byte of device configuration the driver may write (e.g. virtio-input's select). */
void virtio_cfg_write8(struct virtio_dev *v, u32 off, u8 x);

/*
 * Adds a chain: `n_out` device-readable buffers then `n_in` device-
 * writable ones, and makes it available at once (the device may start on
 * it before the kick).  `token` (non-NULL) comes back from vq_get.  0, or
 * -1 if the queue has no room (or the chain is empty or too long).
 */
int vq_add(struct virtq *vq, const struct vq_buf *bufs, unsigned n_out, unsigned n_in, void *token);
/* Notifies the device of what was added since the last kick, unless it said NO_NOTIFY. */
void vq_kick(struct virtq *vq);
/* The token of the next used chain and the bytes the device wrote, or NULL. */
void *vq_get(struct virtq *vq, u32 *len);
/* Like vq_get, but waits up to `timeout` TSC cycles; prints why on timeout. */
void *vq_wait(struct virtq *vq, u32 *len, u64 timeout);
/* Prints `virtio: queue Q added=A used=U kicks=K skipped=S` (and ISR counts). */
void virtio_report(struct virtio_dev *v);

/* Full barrier: a store (avail->idx) before a load (used->flags). */
static inline void virtio_mb(void) { __asm__ volatile("mfence" ::: "memory"); }

/* Waits are in TSC cycles; the guest does not know the rate (1-5 GHz assumed). */
#define VIRTIO_TIMEOUT  10000000000ull  /* 2-10 s; ~4 s here */

#endif
