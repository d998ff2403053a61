/*
 * virtio-blk: the block device (virtio 1.2 §5.2) through lib/virtio, one
 * request queue, polled.
 *
 * Functional run (default):
 *   blk: capacity=N sectors
 *   blk: size_max=S seg_max=G blk_size=B ro=R flush=F discard=D write-zeroes=W
 *   blk: serial=SERIAL                  (VIRTIO_BLK_T_GET_ID; up to 20 bytes)
 * then, on a writable disk:
 *   blk: pattern seed=S sectors=0,1,MID,LAST multi=M+128
 *   blk: pattern ok                     each written range read back equal
 *   blk: flush ok                       (or: blk: flush not offered)
 *   blk: discard ok                     (or: blk: discard not offered)
 *   blk: write-zeroes ok                the 64 KiB range reads back as zeros
 *                                       (or: blk: write-zeroes not offered)
 * and on a read-only one (VIRTIO_BLK_F_RO; command line `mode=ro` says to
 * expect it):
 *   blk: ro write refused               a write got VIRTIO_BLK_S_IOERR
 *   blk: ro data unchanged              and sector 0 reads back as before
 *   blk: flush ok
 * and last the queue counters (`virtio: queue 0 ...`).  Exit 0; 1 after a
 * `blk: ...` line saying what failed.
 *
 * The pattern (so a host test can check the image afterwards): sector s is
 * 128 little-endian u32 words; words 0-3 are s (low, high) and the seed
 * (low, high); word w >= 4 is x ^ (x >> 15) with
 * x = s*0x9E3779B1 ^ seed*0x85EBCA77 ^ w*0xC2B2AE3D (32-bit arithmetic, on
 * the low 32 bits of s and seed).  MID = capacity/2, LAST = capacity-1,
 * M = (capacity/4) rounded down to 128; the 64 KiB write at M is one
 * request of 16 4-KiB segments (fewer, larger ones where seg_max or the
 * queue size allow fewer than 16 segments).  After a
 * run with write-zeroes, M..M+127 hold zeros.
 *
 * Command line: seed=N (default 1), mode=ro, and the common virtio options
 * (indirect, isr, pci=...).  The disk needs at least 1024 sectors.
 *
 * Benchmark: bench=seqread|seqwrite|randread|randwrite qd=Q (1..64,
 * default 1) size=BYTES (multiple of 512, default 4096, at most 4 MiB)
 * n=N (default 4096) issues N requests, keeping Q in flight, from sector 0
 * (sequential, wrapping at the end of the disk) or at random size-aligned
 * offsets, and prints
 *   blk: bench seqread n=N bytes=B tsc=T qd=Q size=S
 * where T is the rdtsc delta from the first submission to the last
 * completion (the host converts it to time).  Exit 0 if every request
 * completed with VIRTIO_BLK_S_OK.
 */
#include "virtio.h"

/* Feature bits (§5.2.3). */
#define VIRTIO_BLK_F_SIZE_MAX           1
#define VIRTIO_BLK_F_SEG_MAX            2
#define VIRTIO_BLK_F_RO                 5
#define VIRTIO_BLK_F_BLK_SIZE           6
#define VIRTIO_BLK_F_FLUSH              9
#define VIRTIO_BLK_F_DISCARD            13
#define VIRTIO_BLK_F_WRITE_ZEROES       14

/* struct virtio_blk_config (§5.2.4). */
#define VIRTIO_BLK_CFG_CAPACITY         0       /* le64, 512-byte sectors */
#define VIRTIO_BLK_CFG_SIZE_MAX         8       /* le32 */
#define VIRTIO_BLK_CFG_SEG_MAX          12      /* le32 */
#define VIRTIO_BLK_CFG_BLK_SIZE         20      /* le32 */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS 36   /* le32 */
#define VIRTIO_BLK_CFG_MAX_DISCARD_SEG  40      /* le32 */
#define VIRTIO_BLK_CFG_DISCARD_ALIGN    44      /* le32, sectors */
#define VIRTIO_BLK_CFG_MAX_WZ_SECTORS   48      /* le32 */
#define VIRTIO_BLK_CFG_MAX_WZ_SEG       52      /* le32 */

/* Request types and status (§5.2.6). */
#define VIRTIO_BLK_T_IN                 0
#define VIRTIO_BLK_T_OUT                1
#define VIRTIO_BLK_T_FLUSH              4
#define VIRTIO_BLK_T_GET_ID             8
#define VIRTIO_BLK_T_DISCARD            11
#define VIRTIO_BLK_T_WRITE_ZEROES       13
#define VIRTIO_BLK_S_OK                 0
#define VIRTIO_BLK_S_IOERR              1
#define VIRTIO_BLK_S_UNSUPP             2
#define VIRTIO_BLK_ID_BYTES             20

#define SECTOR          512
#define MULTI_BYTES     (64 * 1024)
#define MULTI_SECTORS   (MULTI_BYTES / SECTOR)
#define MIN_CAPACITY    1024
#define MAX_SEGS        64      /* data segments per request we build */
#define STATUS_UNSET    0xFF    /* a status byte the device never wrote */

struct blk_req_hdr {
	u32 type;
	u32 reserved;
	u64 sector;
};

struct blk_discard_wz {
	u64 sector;
	u32 num_sectors;
	u32 flags;
};

/* One request in flight: header and status, each its own descriptor. */
struct slot {
	struct blk_req_hdr hdr;
	struct blk_discard_wz range;
	u8 status;
	u32 in_bytes;           /* what the device may write: data + status */
};

static struct virtio_dev vdev;
static struct virtq *vq;
static u32 size_max, seg_max;
static int len_notes;

static u8 wbuf[MULTI_BYTES] __attribute__((aligned(4096)));
static u8 rbuf[MULTI_BYTES] __attribute__((aligned(4096)));

/* ---- requests ---- */

/*
 * Data segments one request may have: seg_max if the device gave one, and
 * what fits in a chain -- the queue size without indirect descriptors
 * (§2.7.13.1: no chain longer than the queue), an indirect table with
 * them -- less the header and status descriptors.
 */
static u32 max_segs(void)
{
	u32 m = MAX_SEGS;
	if (seg_max && seg_max < m)
		m = seg_max;
	u32 chain = vq->indirect ? VQ_INDIRECT_MAX : vq->size;
	if (chain - 2 < m)
		m = chain - 2;
	return m;
}

/*
 * Builds and queues the chain for one request: header, data (in segments
 * of at most `seg` bytes, at most max_segs() of them), status.
 */
static int queue_req(struct slot *s, u32 type, u64 sector, void *data, u32 len, int dev_writes, u32 seg)
{
	struct vq_buf b[MAX_SEGS + 2];
	unsigned n = 0;

	if (size_max && seg > size_max)
		seg = size_max;
	if (seg == 0)
		seg = len ? len : 1;
	s->hdr.type = type;
	s->hdr.reserved = 0;
	s->hdr.sector = sector;
	s->status = STATUS_UNSET;
	b[n++] = (struct vq_buf){ &s->hdr, sizeof(s->hdr) };
	for (u32 off = 0; off < len; off += seg) {
		if (n > max_segs())
			return -2;      /* more segments than a request may have */
		b[n++] = (struct vq_buf){ (u8 *)data + off, len - off < seg ? len - off : seg };
	}
	unsigned n_data = n - 1;
	b[n++] = (struct vq_buf){ &s->status, 1 };
	s->in_bytes = 1 + (dev_writes ? len : 0);
	unsigned n_out = dev_writes ? 1 : 1 + n_data;
	return vq_add(vq, b, n_out, n - n_out, s);
}

static void check_len(struct slot *s, u32 used_len)
{
	if (used_len == s->in_bytes || len_notes >= 3)
		return;
	len_notes++;
	printf("blk: note: used len %u for type %u, expected %u (data + status)\n", used_len,
	       s->hdr.type, s->in_bytes);
}

/* One request, waited for.  The status byte, or -1 if it never completed. */
static int do_req(u32 type, u64 sector, void *data, u32 len, int dev_writes, u32 seg)
{
	static struct slot s;
	int r = queue_req(&s, type, sector, data, len, dev_writes, seg);
	if (r < 0) {
		printf("blk: cannot queue type %u (%u bytes, seg %u): %s\n", type, len, seg,
		       r == -2 ? "too many segments" : "queue full");
		return -1;
	}
	vq_kick(vq);
	u32 used_len;
	struct slot *done = vq_wait(vq, &used_len, VIRTIO_TIMEOUT);
	if (!done) {
		printf("blk: request type %u sector %llu did not complete\n", type, sector);
		return -1;
	}
	if (done != &s) {
		printf("blk: completion for a request not in flight\n");
		return -1;
	}
	if (s.status == VIRTIO_BLK_S_OK)
		check_len(&s, used_len);
	if (s.status == STATUS_UNSET)
		printf("blk: device left the status byte unwritten (type %u)\n", type);
	return s.status;
}

static int blk_read(u64 sector, void *buf, u32 len, u32 seg)
{
	return do_req(VIRTIO_BLK_T_IN, sector, buf, len, 1, seg);
}

static int blk_write(u64 sector, const void *buf, u32 len, u32 seg)
{
	return do_req(VIRTIO_BLK_T_OUT, sector, (void *)(unsigned long)buf, len, 0, seg);
}

/* ---- the pattern ---- */

static void fill_sector(u8 *p, u64 sector, u64 seed)
{
	u32 *w = (u32 *)p;
	w[0] = (u32)sector;
	w[1] = (u32)(sector >> 32);
	w[2] = (u32)seed;
	w[3] = (u32)(seed >> 32);
	for (u32 i = 4; i < SECTOR / 4; i++) {
		u32 x = (u32)sector * 0x9E3779B1u ^ (u32)seed * 0x85EBCA77u ^ i * 0xC2B2AE3Du;
		w[i] = x ^ (x >> 15);
	}
}

static void fill(u8 *p, u64 sector, u32 count, u64 seed)
{
	for (u32 i = 0; i < count; i++)
		fill_sector(p + i * SECTOR, sector + i, seed);
}

/* Writes `count` sectors of pattern at `sector` and reads them back. */
static int pattern_range(u64 sector, u32 count, u64 seed, u32 seg)
{
	u32 len = count * SECTOR;
	fill(wbuf, sector, count, seed);
	int st = blk_write(sector, wbuf, len, seg);
	if (st != VIRTIO_BLK_S_OK) {
		printf("blk: write of %u sectors at %llu failed: status %d\n", count, sector, st);
		return -1;
	}
	memset(rbuf, 0xAA, len);
	st = blk_read(sector, rbuf, len, seg);
	if (st != VIRTIO_BLK_S_OK) {
		printf("blk: read of %u sectors at %llu failed: status %d\n", count, sector, st);
		return -1;
	}
	for (u32 i = 0; i < count; i++) {
		if (memcmp(rbuf + i * SECTOR, wbuf + i * SECTOR, SECTOR) != 0) {
			printf("blk: sector %llu reads back different from what was written\n", sector + i);
			return -1;
		}
	}
	return 0;
}

static int all_zero(const u8 *p, u32 len)
{
	for (u32 i = 0; i < len; i++)
		if (p[i])
			return 0;
	return 1;
}

/* ---- the functional test ---- */

/* DISCARD or WRITE_ZEROES of [sector, sector+count) (§5.2.6). */
static int range_req(u32 type, u64 sector, u32 count)
{
	static struct slot s;
	s.range = (struct blk_discard_wz){ .sector = sector, .num_sectors = count, .flags = 0 };
	s.hdr = (struct blk_req_hdr){ .type = type, .reserved = 0, .sector = 0 };
	s.status = STATUS_UNSET;
	s.in_bytes = 1;
	struct vq_buf b[3] = {
		{ &s.hdr, sizeof(s.hdr) },
		{ &s.range, sizeof(s.range) },
		{ &s.status, 1 },
	};
	if (vq_add(vq, b, 2, 1, &s) < 0)
		return -1;
	vq_kick(vq);
	u32 used_len;
	if (vq_wait(vq, &used_len, VIRTIO_TIMEOUT) != &s)
		return -1;
	if (s.status == VIRTIO_BLK_S_OK)
		check_len(&s, used_len);
	return s.status;
}

static int test_serial(void)
{
	static u8 id[VIRTIO_BLK_ID_BYTES + 1];
	memset(id, 0, sizeof(id));
	int st = do_req(VIRTIO_BLK_T_GET_ID, 0, id, VIRTIO_BLK_ID_BYTES, 1, 0);
	if (st == VIRTIO_BLK_S_UNSUPP) {
		printf("blk: serial unsupported\n");
		return 0;
	}
	if (st != VIRTIO_BLK_S_OK) {
		printf("blk: GET_ID failed: status %d\n", st);
		return -1;
	}
	/* NUL-terminated unless it is the full 20 bytes (§5.2.6). */
	for (int i = 0; i < VIRTIO_BLK_ID_BYTES && id[i]; i++)
		if (id[i] < 0x20 || id[i] > 0x7E)
			id[i] = '?';
	printf("blk: serial=%s\n", (const char *)id);
	return 0;
}

static int test_flush(void)
{
	if (!virtio_has(&vdev, VIRTIO_BLK_F_FLUSH)) {
		printf("blk: flush not offered\n");
		return 0;
	}
	/* §5.2.6.1: sector is 0 for a flush. */
	int st = do_req(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, 0, 0);
	if (st != VIRTIO_BLK_S_OK) {
		printf("blk: flush failed: status %d\n", st);
		return -1;
	}
	printf("blk: flush ok\n");
	return 0;
}

static int test_rw(u64 cap, u64 seed)
{
	u64 mid = cap / 2, last = cap - 1, multi = (cap / 4) & ~(u64)(MULTI_SECTORS - 1);
	printf("blk: pattern seed=%llu sectors=0,1,%llu,%llu multi=%llu+%u\n", seed, mid, last, multi,
	       MULTI_SECTORS);
	if (pattern_range(0, 1, seed, 0) || pattern_range(1, 1, seed, 0) ||
	    pattern_range(mid, 1, seed, 0) || pattern_range(last, 1, seed, 0))
		return -1;
	/* 64 KiB as 16 segments of 4 KiB, or fewer larger ones where a request may not have 16. */
	u32 seg = 4096;
	while ((MULTI_BYTES + seg - 1) / seg > max_segs())
		seg *= 2;
	if (pattern_range(multi, MULTI_SECTORS, seed, seg))
		return -1;
	/* Sectors 0 and 1 again, as one two-sector read. */
	fill(wbuf, 0, 2, seed);
	memset(rbuf, 0xAA, 2 * SECTOR);
	if (blk_read(0, rbuf, 2 * SECTOR, 0) != VIRTIO_BLK_S_OK || memcmp(rbuf, wbuf, 2 * SECTOR)) {
		printf("blk: sectors 0-1 read together differ from the pattern\n");
		return -1;
	}
	printf("blk: pattern ok\n");

	if (test_flush())
		return -1;

	if (!virtio_has(&vdev, VIRTIO_BLK_F_DISCARD)) {
		printf("blk: discard not offered\n");
	} else {
		u32 max = virtio_cfg32(&vdev, VIRTIO_BLK_CFG_MAX_DISCARD_SECTORS);
		u32 align = virtio_cfg32(&vdev, VIRTIO_BLK_CFG_DISCARD_ALIGN);
		u32 count = max && max < MULTI_SECTORS ? max : MULTI_SECTORS;
		if (align > 1 && (multi % align || count % align)) {
			printf("blk: discard skipped (alignment %u sectors)\n", align);
		} else {
			int st = range_req(VIRTIO_BLK_T_DISCARD, multi, count);
			if (st != VIRTIO_BLK_S_OK) {
				printf("blk: discard failed: status %d\n", st);
				return -1;
			}
			printf("blk: discard ok\n");
		}
	}

	if (!virtio_has(&vdev, VIRTIO_BLK_F_WRITE_ZEROES)) {
		printf("blk: write-zeroes not offered\n");
	} else {
		u32 max = virtio_cfg32(&vdev, VIRTIO_BLK_CFG_MAX_WZ_SECTORS);
		u32 count = max && max < MULTI_SECTORS ? max : MULTI_SECTORS;
		int st = range_req(VIRTIO_BLK_T_WRITE_ZEROES, multi, count);
		if (st != VIRTIO_BLK_S_OK) {
			printf("blk: write-zeroes failed: status %d\n", st);
			return -1;
		}
		memset(rbuf, 0xAA, count * SECTOR);
		st = blk_read(multi, rbuf, count * SECTOR, seg);
		if (st != VIRTIO_BLK_S_OK || !all_zero(rbuf, count * SECTOR)) {
			printf("blk: range does not read back as zeros after write-zeroes\n");
			return -1;
		}
		printf("blk: write-zeroes ok\n");
	}
	return 0;
}

static int test_ro(u64 seed)
{
	static u8 before[SECTOR];
	if (blk_read(0, before, SECTOR, 0) != VIRTIO_BLK_S_OK) {
		printf("blk: read of sector 0 failed\n");
		return -1;
	}
	/* §5.2.6.2: on a read-only device a write gets VIRTIO_BLK_S_IOERR. */
	fill(wbuf, 0, 1, seed ^ 0x5A5A5A5Au);
	int st = blk_write(0, wbuf, SECTOR, 0);
	if (st != VIRTIO_BLK_S_IOERR) {
		printf("blk: ro write got status %d, expected %d (IOERR)\n", st, VIRTIO_BLK_S_IOERR);
		return -1;
	}
	printf("blk: ro write refused\n");
	if (blk_read(0, rbuf, SECTOR, 0) != VIRTIO_BLK_S_OK || memcmp(rbuf, before, SECTOR)) {
		printf("blk: sector 0 changed on a read-only disk\n");
		return -1;
	}
	printf("blk: ro data unchanged\n");
	return test_flush();
}

/* ---- the benchmark ---- */

#define BENCH_BUF       (4u << 20)
#define BENCH_QD_MAX    64
static u8 bench_buf[BENCH_BUF] __attribute__((aligned(4096)));
static struct slot bench_slots[BENCH_QD_MAX];

static u64 rng_state = 0x9E3779B97F4A7C15ull;
static u64 xorshift(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static int bench(const char *kind, u64 cap)
{
	u64 qd = 1, size = 4096, n = 4096;
	cmdline_u64("qd", &qd);
	cmdline_u64("size", &size);
	cmdline_u64("n", &n);
	int write = !strcmp(kind, "seqwrite") || !strcmp(kind, "randwrite");
	int rnd = !strcmp(kind, "randread") || !strcmp(kind, "randwrite");
	if (!write && !rnd && strcmp(kind, "seqread")) {
		printf("blk: bad bench=%s (seqread, seqwrite, randread, randwrite)\n", kind);
		return 1;
	}
	if (qd < 1 || qd > BENCH_QD_MAX || size < SECTOR || size % SECTOR || size > BENCH_BUF || n < 1) {
		printf("blk: bad bench parameters qd=%llu size=%llu n=%llu\n", qd, size, n);
		return 1;
	}
	u64 per = size / SECTOR;
	if (per > cap) {
		printf("blk: size=%llu is larger than the disk\n", size);
		return 1;
	}
	if (write && virtio_has(&vdev, VIRTIO_BLK_F_RO)) {
		printf("blk: bench=%s on a read-only disk\n", kind);
		return 1;
	}
	u32 seg = (u32)size;
	if (size_max && seg > size_max)
		seg = size_max;
	/* Requests share the buffer when they do not all fit: data is not checked. */
	u64 nbuf = BENCH_BUF / size;
	if (write)
		fill(bench_buf, 0, (u32)(BENCH_BUF / SECTOR), 1);

	struct slot *free_slots[BENCH_QD_MAX];
	int nfree = 0;
	for (u64 i = 0; i < qd; i++)
		free_slots[nfree++] = &bench_slots[i];
	u64 blocks = cap / per, next_seq = 0, issued = 0, done = 0, errors = 0;
	u64 inflight = 0;

	u64 t0 = rdtsc();
	while (done < n) {
		while (issued < n && nfree > 0) {
			struct slot *s = free_slots[nfree - 1];
			u64 block = rnd ? xorshift() % blocks : next_seq;
			if (!rnd && ++next_seq >= blocks)
				next_seq = 0;
			void *data = bench_buf + (issued % nbuf) * size;
			int r = queue_req(s, write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN, block * per, data,
					  (u32)size, !write, seg);
			if (r == -2 || (r < 0 && inflight == 0)) {
				printf("blk: cannot queue a %llu-byte request (seg_max=%u size_max=%u)\n", size,
				       seg_max, size_max);
				return 1;
			}
			if (r < 0)
				break;  /* ring full: wait for completions */
			nfree--;
			issued++;
			inflight++;
		}
		vq_kick(vq);
		u32 len;
		struct slot *s = vq_wait(vq, &len, VIRTIO_TIMEOUT);
		if (!s) {
			printf("blk: bench stalled after %llu of %llu requests\n", done, n);
			return 1;
		}
		/* Everything that is back, then refill with one kick. */
		do {
			if (s->status != VIRTIO_BLK_S_OK)
				errors++;
			free_slots[nfree++] = s;
			done++;
			inflight--;
			s = vq_get(vq, &len);
		} while (s);
	}
	u64 t = rdtsc() - t0;
	printf("blk: bench %s n=%llu bytes=%llu tsc=%llu qd=%llu size=%llu\n", kind, n, n * size, t, qd, size);
	if (errors) {
		printf("blk: bench: %llu requests failed\n", errors);
		return 1;
	}
	return 0;
}

int guest_main(void)
{
	u64 seed = 1;
	char mode[8], kind[16];

	uart_init();
	cmdline_u64("seed", &seed);
	int want_ro = cmdline_str("mode", mode, sizeof(mode)) && !strcmp(mode, "ro");

	u64 wanted = VIRTIO_BIT(VIRTIO_BLK_F_SIZE_MAX) | VIRTIO_BIT(VIRTIO_BLK_F_SEG_MAX) |
		     VIRTIO_BIT(VIRTIO_BLK_F_RO) | VIRTIO_BIT(VIRTIO_BLK_F_BLK_SIZE) |
		     VIRTIO_BIT(VIRTIO_BLK_F_FLUSH) | VIRTIO_BIT(VIRTIO_BLK_F_DISCARD) |
		     VIRTIO_BIT(VIRTIO_BLK_F_WRITE_ZEROES);
	if (virtio_open(&vdev, VIRTIO_ID_BLOCK, 0, wanted) < 0)
		return 1;
	vq = virtio_queue(&vdev, 0, VQ_MAX_SIZE);
	if (!vq || virtio_ready(&vdev) < 0)
		return 1;

	u64 cap = virtio_cfg64(&vdev, VIRTIO_BLK_CFG_CAPACITY);
	size_max = virtio_has(&vdev, VIRTIO_BLK_F_SIZE_MAX) ? virtio_cfg32(&vdev, VIRTIO_BLK_CFG_SIZE_MAX) : 0;
	seg_max = virtio_has(&vdev, VIRTIO_BLK_F_SEG_MAX) ? virtio_cfg32(&vdev, VIRTIO_BLK_CFG_SEG_MAX) : 0;
	u32 blk_size = virtio_has(&vdev, VIRTIO_BLK_F_BLK_SIZE) ? virtio_cfg32(&vdev, VIRTIO_BLK_CFG_BLK_SIZE) : 0;
	int ro = virtio_has(&vdev, VIRTIO_BLK_F_RO);
	printf("blk: capacity=%llu sectors\n", cap);
	printf("blk: size_max=%u seg_max=%u blk_size=%u ro=%d flush=%d discard=%d write-zeroes=%d\n",
	       size_max, seg_max, blk_size, ro, virtio_has(&vdev, VIRTIO_BLK_F_FLUSH),
	       virtio_has(&vdev, VIRTIO_BLK_F_DISCARD), virtio_has(&vdev, VIRTIO_BLK_F_WRITE_ZEROES));
	if (size_max && size_max < SECTOR) {
		printf("blk: size_max=%u is below a sector\n", size_max);
		return 1;
	}

	int rc = 0;
	if (cmdline_str("bench", kind, sizeof(kind))) {
		if (cap == 0) {
			printf("blk: empty disk\n");
			return 1;
		}
		rc = bench(kind, cap);
	} else if (test_serial()) {
		rc = 1;
	} else if (ro != want_ro) {
		printf(ro ? "blk: device is read-only but mode=ro was not given\n"
			  : "blk: mode=ro but the device is writable\n");
		rc = 1;
	} else if (ro) {
		rc = test_ro(seed) ? 1 : 0;
	} else if (cap < MIN_CAPACITY) {
		printf("blk: disk too small (%llu sectors, need %u)\n", cap, MIN_CAPACITY);
		rc = 1;
	} else {
		rc = test_rw(cap, seed) ? 1 : 0;
	}
	virtio_report(&vdev);
	virtio_reset(&vdev);
	return rc;
}
