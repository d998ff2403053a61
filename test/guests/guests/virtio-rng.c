/*
 * virtio-rng: the entropy device (virtio 1.2 §5.4) through lib/virtio.
 *
 * Four requests of 64 bytes go on the queue at once, each a chain of two
 * 32-byte device-writable buffers (so `indirect` has chains to put in
 * tables); the device may fill fewer bytes than offered (used.len), so a
 * request comes back until its 64 bytes are full.
 *
 * Output (after the pci:/virtio: lines of lib/virtio):
 *   rng: got 256 bytes
 *   rng: ok                 the 256 bytes are not all equal
 *   virtio: queue 0 added=A used=U kicks=K skipped=S
 * Exit 0; 1 with `rng: ...` (or a virtio: line) saying what failed, e.g.
 * `rng: all 256 bytes are 0xNN`.
 * Command line: the common virtio options (indirect, isr, pci=...).
 */
#include "virtio.h"

#define NREQ    4
#define REQ_LEN 64
#define MAX_ROUNDS 64   /* a device that keeps giving 0 bytes */

static u8 buf[NREQ][REQ_LEN];
static u32 have[NREQ];  /* bytes filled so far */

static int submit(struct virtq *vq, int r)
{
	/* The rest of request r, split into two buffers where it can be. */
	u32 left = REQ_LEN - have[r];
	struct vq_buf b[2];
	unsigned n = 1;
	b[0].addr = &buf[r][have[r]];
	b[0].len = left;
	if (left >= 2) {
		b[0].len = left / 2;
		b[1].addr = &buf[r][have[r] + left / 2];
		b[1].len = left - left / 2;
		n = 2;
	}
	return vq_add(vq, b, 0, n, &have[r]);
}

int guest_main(void)
{
	struct virtio_dev v;

	uart_init();
	if (virtio_open(&v, VIRTIO_ID_RNG, 0, 0) < 0)
		return 1;
	struct virtq *vq = virtio_queue(&v, 0, 16);
	if (!vq || virtio_ready(&v) < 0)
		return 1;

	for (int r = 0; r < NREQ; r++)
		if (submit(vq, r) < 0) {
			printf("rng: queue full\n");
			return 1;
		}
	vq_kick(vq);

	int done = 0, rounds = 0;
	u32 total = 0;
	while (done < NREQ) {
		u32 len;
		u32 *tok = vq_wait(vq, &len, VIRTIO_TIMEOUT);
		if (!tok) {
			printf("rng: no answer (got %u bytes)\n", total);
			return 1;
		}
		int r = (int)(tok - have);
		u32 left = REQ_LEN - have[r];
		if (len > left) {
			printf("rng: device wrote %u bytes into a %u-byte request\n", len, left);
			return 1;
		}
		have[r] += len;
		total += len;
		if (have[r] == REQ_LEN) {
			done++;
			continue;
		}
		if (++rounds > MAX_ROUNDS) {
			printf("rng: device keeps returning short reads (got %u bytes)\n", total);
			return 1;
		}
		if (submit(vq, r) < 0)
			return 1;
		vq_kick(vq);
	}
	printf("rng: got %u bytes\n", total);

	const u8 *p = &buf[0][0];
	int varied = 0;
	for (u32 i = 1; i < NREQ * REQ_LEN; i++)
		if (p[i] != p[0])
			varied = 1;
	if (!varied)
		printf("rng: all %u bytes are 0x%02x\n", total, p[0]);
	else
		printf("rng: ok\n");
	virtio_report(&v);
	virtio_reset(&v);
	return varied ? 0 : 1;
}
