/*
 * virtio-net: the network device (virtio 1.2 §5.1) through lib/virtio,
 * receiveq1 (queue 0) and transmitq1 (queue 1), polled.  Features:
 * VIRTIO_NET_F_MAC and VIRTIO_NET_F_STATUS only -- no offloads, no
 * MRG_RXBUF, no control queue -- so every packet carries the 12-byte
 * struct virtio_net_hdr of VERSION_1 (§5.1.6), all zero on transmit.
 * Receive buffers are one 2 KiB device-writable descriptor each (header
 * and frame together, §5.1.6.3); a transmitted packet is a chain of two
 * (header, frame), which `indirect` puts in an indirect table.
 *
 * Command line:
 *   src=A.B.C.D      our IPv4 address (default 10.0.2.15)
 *   dst=A.B.C.D      the peer (default 10.0.2.2)
 *   dstmac=MAC       the peer's MAC; without it the guest asks by ARP
 *   port=N           the peer's UDP port (default 7777)
 *   sport=N          our UDP port (default 7777)
 *   arp              stop after the ARP exchange
 *   and the common virtio options (indirect, isr, pci=...).
 *
 * Functional run (default): resolves dst by ARP (unless dstmac=), sends a
 * UDP datagram "vmctl-net ping seq=K" to dst:port (again every ~1 s, at
 * most 5 times), answers ARP requests for src meanwhile, and when a UDP
 * datagram for src:sport arrives, sends its payload back to where it came
 * from and exits 0.  Output:
 *   net: mac=52:54:00:12:34:56
 *   net: link up                        (or: net: link down / status not offered)
 *   net: src=10.0.0.2 dst=10.0.0.1 port=7777 sport=7777
 *   net: tx arp who-has 10.0.0.1
 *   net: rx len=42 flags=0x00 gso=0 hdr_len=0 num_buffers=1 dst=52:54:00:12:34:56 src=... type=0x0806
 *   net: arp 10.0.0.1 is-at aa:bb:cc:dd:ee:ff
 *   net: tx udp 10.0.0.2:7777 -> 10.0.0.1:7777 len=22
 *   net: rx len=... type=0x0800
 *   net: udp from 10.0.0.1:7777 len=L
 *   net: echoed L bytes
 *   net: arp request from 10.0.0.1, replied    (whenever one comes)
 * One `net: rx` line per frame received (the first 16), with the fields
 * of its virtio_net_hdr and Ethernet header.  Exit 1 after `net: ...`
 * saying what did not happen (e.g. `net: no udp reply`).
 *
 * Benchmarks (N frames, timed with rdtsc, T the TSC delta):
 *   bench=tx n=N size=S   S-byte Ethernet frames (60..1514, default 1514):
 *                         UDP to dst:port when dst= is given (resolved by
 *                         ARP or dstmac=), else broadcast frames of
 *                         EtherType 0x88B5; T from the first submission to
 *                         the last completion.
 *                         net: bench tx n=N bytes=B tsc=T size=S
 *   bench=rx n=N          prints `net: bench rx ready` (and, with dst=,
 *                         sends the datagram "vmctl-net bench rx ready n=N"
 *                         to dst:port), then counts IPv4 UDP frames for
 *                         src; T from the first to the N-th.
 *                         net: bench rx n=N bytes=B tsc=T
 *                         With dst=, the datagram "vmctl-net bench rx done"
 *                         follows: a sender that outruns the guest loses
 *                         frames, so it should send until that arrives.
 * B counts Ethernet frame bytes (virtio_net_hdr excluded).
 */
#include "virtio.h"

/* Feature bits (§5.1.3). */
#define VIRTIO_NET_F_MAC        5
#define VIRTIO_NET_F_STATUS     16
#define VIRTIO_NET_F_MRG_RXBUF  15

/* struct virtio_net_config (§5.1.4). */
#define VIRTIO_NET_CFG_MAC      0       /* u8[6] */
#define VIRTIO_NET_CFG_STATUS   6       /* le16 */
#define VIRTIO_NET_S_LINK_UP    1

#define RXQ 0
#define TXQ 1

/* struct virtio_net_hdr with VERSION_1: num_buffers always present (§5.1.6). */
struct virtio_net_hdr {
	u8 flags;
	u8 gso_type;
	u16 hdr_len;
	u16 gso_size;
	u16 csum_start;
	u16 csum_offset;
	u16 num_buffers;
} __attribute__((packed));
#define NET_HDR_LEN 12

#define ETH_HLEN        14
#define ETH_P_IP        0x0800
#define ETH_P_ARP       0x0806
#define ETH_P_BENCH     0x88B5  /* IEEE 802 local experimental */
#define ETH_ZLEN        60      /* minimum frame, FCS excluded */
#define ETH_FRAME_MAX   1514
#define IP_HLEN         20
#define UDP_HLEN        8
#define IPPROTO_UDP     17
#define ARP_LEN         28

#define RX_BUF_LEN      2048    /* >= 1526: header + the largest frame (§5.1.6.3.1) */
#define NRX             VQ_MAX_SIZE
#define NTX             128
#define RX_PRINT_MAX    16

static struct virtio_dev vdev;
static struct virtq *rxq, *txq;

static u8 rx_bufs[NRX][RX_BUF_LEN] __attribute__((aligned(4096)));
struct tx_slot {
	struct virtio_net_hdr hdr;
	u8 frame[ETH_FRAME_MAX + 2];
};
static struct tx_slot tx_slots[NTX];
static struct tx_slot *tx_free[NTX];
static int ntx_free;

static u8 my_mac[6], peer_mac[6];
static const u8 bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
static int have_peer_mac;
static u32 my_ip = 0x0A00020F, peer_ip = 0x0A000202;   /* 10.0.2.15, 10.0.2.2 */
static u16 peer_port = 7777, my_port = 7777;
static unsigned rx_printed;
static int num_buffers_noted;

/* ---- bytes ---- */

static void put16(u8 *p, u16 v) { p[0] = (u8)(v >> 8); p[1] = (u8)v; }
static void put32(u8 *p, u32 v) { put16(p, (u16)(v >> 16)); put16(p + 2, (u16)v); }
static u16 get16(const u8 *p) { return (u16)(p[0] << 8 | p[1]); }
static u32 get32(const u8 *p) { return (u32)get16(p) << 16 | get16(p + 2); }

static const char *mac_str(const u8 *m, char buf[18])
{
	static const char hex[] = "0123456789abcdef";
	for (int i = 0; i < 6; i++) {
		buf[i * 3] = hex[m[i] >> 4];
		buf[i * 3 + 1] = hex[m[i] & 15];
		buf[i * 3 + 2] = i < 5 ? ':' : 0;
	}
	return buf;
}

static const char *ip_str(u32 ip, char buf[16])
{
	char *p = buf;
	for (int i = 3; i >= 0; i--) {
		unsigned b = (ip >> (i * 8)) & 0xFF;
		if (b >= 100)
			*p++ = (char)('0' + b / 100);
		if (b >= 10)
			*p++ = (char)('0' + b / 10 % 10);
		*p++ = (char)('0' + b % 10);
		if (i)
			*p++ = '.';
	}
	*p = 0;
	return buf;
}

static int parse_ip(const char *s, u32 *out)
{
	u32 ip = 0;
	for (int i = 0; i < 4; i++) {
		unsigned v = 0, digits = 0;
		while (*s >= '0' && *s <= '9' && digits < 4) {
			v = v * 10 + (unsigned)(*s++ - '0');
			digits++;
		}
		if (!digits || v > 255 || (i < 3 && *s++ != '.'))
			return 0;
		ip = ip << 8 | v;
	}
	if (*s)
		return 0;
	*out = ip;
	return 1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_mac(const char *s, u8 *out)
{
	for (int i = 0; i < 6; i++) {
		int h = hexval(s[0]), l = h < 0 ? -1 : hexval(s[1]);
		if (l < 0)
			return 0;
		out[i] = (u8)(h << 4 | l);
		s += 2;
		if (i < 5 && *s++ != ':')
			return 0;
	}
	return *s == 0;
}

/* The Internet checksum (RFC 1071) of len bytes, added to `sum`. */
static u32 csum_add(u32 sum, const u8 *p, u32 len)
{
	for (u32 i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (u32)p[len - 1] << 8;
	return sum;
}

static u16 csum_fold(u32 sum)
{
	while (sum >> 16)
		sum = (sum & 0xFFFF) + (sum >> 16);
	return (u16)~sum;
}

/* ---- transmit ---- */

static void tx_reclaim(void)
{
	struct tx_slot *s;
	while ((s = vq_get(txq, NULL)) != NULL)
		tx_free[ntx_free++] = s;
}

static struct tx_slot *tx_alloc(void)
{
	tx_reclaim();
	u64 t0 = rdtsc();
	while (ntx_free == 0) {
		struct tx_slot *s = vq_wait(txq, NULL, VIRTIO_TIMEOUT);
		if (!s)
			return NULL;
		tx_free[ntx_free++] = s;
		if (rdtsc() - t0 > VIRTIO_TIMEOUT)
			return NULL;
	}
	struct tx_slot *s = tx_free[--ntx_free];
	memset(&s->hdr, 0, sizeof(s->hdr));     /* no offloads: all zero (§5.1.6.2) */
	return s;
}

/* Queues a frame already built in s->frame; pads it to the Ethernet minimum. */
static int tx_queue(struct tx_slot *s, u32 len)
{
	if (len < ETH_ZLEN) {
		memset(s->frame + len, 0, ETH_ZLEN - len);
		len = ETH_ZLEN;
	}
	struct vq_buf b[2] = { { &s->hdr, NET_HDR_LEN }, { s->frame, len } };
	if (vq_add(txq, b, 2, 0, s) < 0) {
		tx_free[ntx_free++] = s;
		return -1;
	}
	return 0;
}

static int tx_send(struct tx_slot *s, u32 len)
{
	if (tx_queue(s, len) < 0) {
		printf("net: transmit queue full\n");
		return -1;
	}
	vq_kick(txq);
	return 0;
}

/* Waits until the device has used every queued frame. */
static int tx_drain(void)
{
	while (ntx_free < NTX) {
		struct tx_slot *s = vq_wait(txq, NULL, VIRTIO_TIMEOUT);
		if (!s) {
			printf("net: transmitted frames were not returned\n");
			return -1;
		}
		tx_free[ntx_free++] = s;
	}
	return 0;
}

static u8 *eth_header(u8 *f, const u8 *dst, u16 type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, my_mac, 6);
	put16(f + 12, type);
	return f + ETH_HLEN;
}

static int send_arp(u16 op, const u8 *dst_mac, const u8 *tha, u32 tpa)
{
	struct tx_slot *s = tx_alloc();
	if (!s)
		return -1;
	u8 *a = eth_header(s->frame, dst_mac, ETH_P_ARP);
	put16(a, 1);                    /* htype: Ethernet */
	put16(a + 2, ETH_P_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, my_mac, 6);
	put32(a + 14, my_ip);
	memcpy(a + 18, tha, 6);
	put32(a + 24, tpa);
	return tx_send(s, ETH_HLEN + ARP_LEN);
}

/* Builds Ethernet + IPv4 + UDP around `payload` in a slot; returns the frame length. */
static u32 build_udp(struct tx_slot *s, const u8 *dst_mac, u32 dst_ip, u16 dport, const void *payload,
		     u32 plen)
{
	static u16 ip_id;
	u8 *ip = eth_header(s->frame, dst_mac, ETH_P_IP);
	u8 *udp = ip + IP_HLEN;
	memcpy(udp + UDP_HLEN, payload, plen);
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, (u16)(IP_HLEN + UDP_HLEN + plen));
	put16(ip + 4, ip_id++);
	put16(ip + 6, 0x4000);          /* DF */
	ip[8] = 64;
	ip[9] = IPPROTO_UDP;
	put16(ip + 10, 0);
	put32(ip + 12, my_ip);
	put32(ip + 16, dst_ip);
	put16(ip + 10, csum_fold(csum_add(0, ip, IP_HLEN)));
	put16(udp, my_port);
	put16(udp + 2, dport);
	put16(udp + 4, (u16)(UDP_HLEN + plen));
	put16(udp + 6, 0);
	/* Pseudo-header: addresses, protocol, UDP length. */
	u32 sum = csum_add(0, ip + 12, 8) + IPPROTO_UDP + UDP_HLEN + plen;
	u16 c = csum_fold(csum_add(sum, udp, UDP_HLEN + plen));
	put16(udp + 6, c ? c : 0xFFFF);
	return ETH_HLEN + IP_HLEN + UDP_HLEN + plen;
}

static int send_udp(const u8 *dst_mac, u32 dst_ip, u16 dport, const void *payload, u32 plen)
{
	struct tx_slot *s = tx_alloc();
	if (!s)
		return -1;
	return tx_send(s, build_udp(s, dst_mac, dst_ip, dport, payload, plen));
}

/* ---- receive ---- */

static int rx_post(u8 *buf)
{
	struct vq_buf b = { buf, RX_BUF_LEN };
	return vq_add(rxq, &b, 0, 1, buf);
}

/* What a received frame turned out to be, for the callers' loops. */
enum rx_kind { RX_OTHER, RX_ARP_REPLY, RX_UDP };
struct rx_info {
	enum rx_kind kind;
	u32 len;                /* frame bytes */
	const u8 *frame;
	u32 src_ip;
	u16 src_port;
	const u8 *payload;
	u32 plen;
};

/* Looks at one frame: answers ARP requests for us, learns the peer's MAC. */
static void rx_frame(const u8 *buf, u32 used_len, struct rx_info *ri, int quiet)
{
	const struct virtio_net_hdr *h = (const struct virtio_net_hdr *)buf;
	const u8 *f = buf + NET_HDR_LEN;
	u32 len = used_len - NET_HDR_LEN;
	char m1[18], m2[18], ipb[16];

	memset(ri, 0, sizeof(*ri));
	ri->frame = f;
	ri->len = len;
	if (!quiet && rx_printed < RX_PRINT_MAX) {
		rx_printed++;
		printf("net: rx len=%u flags=0x%02x gso=%u hdr_len=%u num_buffers=%u dst=%s src=%s type=0x%04x\n",
		       len, h->flags, h->gso_type, h->hdr_len, h->num_buffers, mac_str(f, m1),
		       mac_str(f + 6, m2), len >= ETH_HLEN ? get16(f + 12) : 0);
	}
	/* §5.1.6.4: without MRG_RXBUF the device sets num_buffers to 1. */
	if (h->num_buffers != 1 && !num_buffers_noted) {
		num_buffers_noted = 1;
		printf("net: note: num_buffers=%u (the spec says 1 without MRG_RXBUF)\n", h->num_buffers);
	}
	if (len < ETH_HLEN)
		return;
	u16 type = get16(f + 12);
	const u8 *p = f + ETH_HLEN;
	u32 plen = len - ETH_HLEN;

	if (type == ETH_P_ARP && plen >= ARP_LEN && get16(p) == 1 && get16(p + 2) == ETH_P_IP) {
		u16 op = get16(p + 6);
		u32 spa = get32(p + 14), tpa = get32(p + 24);
		if (op == 1 && tpa == my_ip) {
			send_arp(2, p + 8, p + 8, spa);
			if (!quiet)
				printf("net: arp request from %s, replied\n", ip_str(spa, ipb));
		} else if (op == 2 && spa == peer_ip && tpa == my_ip) {
			memcpy(peer_mac, p + 8, 6);
			have_peer_mac = 1;
			ri->kind = RX_ARP_REPLY;
		}
		return;
	}
	if (type != ETH_P_IP || plen < IP_HLEN + UDP_HLEN || (p[0] >> 4) != 4)
		return;
	u32 ihl = (u32)(p[0] & 15) * 4;
	u32 tot = get16(p + 2);
	if (ihl < IP_HLEN || tot > plen || tot < ihl + UDP_HLEN || p[9] != IPPROTO_UDP ||
	    get32(p + 16) != my_ip || (get16(p + 6) & 0x3FFF))        /* no fragments */
		return;
	const u8 *udp = p + ihl;
	u32 ulen = get16(udp + 4);
	if (ulen < UDP_HLEN || ulen > tot - ihl || get16(udp + 2) != my_port)
		return;
	ri->kind = RX_UDP;
	ri->src_ip = get32(p + 12);
	ri->src_port = get16(udp);
	ri->payload = udp + UDP_HLEN;
	ri->plen = ulen - UDP_HLEN;
}

/*
 * The next frame within `timeout` TSC cycles: processed by rx_frame, its
 * buffer back on the ring.  0, or -1 on timeout.  The frame's bytes stay
 * valid until the device reuses the buffer, i.e. until the next call.
 */
static int rx_next(struct rx_info *ri, u64 timeout, int quiet)
{
	static u8 copy[RX_BUF_LEN];
	u32 len;
	u8 *buf = vq_wait(rxq, &len, timeout);
	if (!buf)
		return -1;
	if (len < NET_HDR_LEN || len > RX_BUF_LEN) {
		printf("net: rx used len %u outside %u..%u\n", len, NET_HDR_LEN, RX_BUF_LEN);
		len = len < NET_HDR_LEN ? NET_HDR_LEN : RX_BUF_LEN;
	}
	/* Copy out so the buffer can go straight back to the device. */
	memcpy(copy, buf, len);
	rx_post(buf);
	vq_kick(rxq);
	rx_frame(copy, len, ri, quiet);
	return 0;
}

/* ---- the functional test ---- */

#define SECOND_TSC 2500000000ull        /* about a second at 2.5 GHz */

static int resolve_peer(void)
{
	char ipb[16], mb[18];
	for (int attempt = 0; attempt < 5 && !have_peer_mac; attempt++) {
		printf("net: tx arp who-has %s\n", ip_str(peer_ip, ipb));
		static const u8 zero[6];
		if (send_arp(1, bcast, zero, peer_ip) < 0)
			return -1;
		u64 t0 = rdtsc();
		struct rx_info ri;
		while (!have_peer_mac && rdtsc() - t0 < SECOND_TSC)
			if (rx_next(&ri, SECOND_TSC, 0) < 0)
				break;
	}
	if (!have_peer_mac) {
		printf("net: no arp reply from %s\n", ip_str(peer_ip, ipb));
		return -1;
	}
	printf("net: arp %s is-at %s\n", ip_str(peer_ip, ipb), mac_str(peer_mac, mb));
	return 0;
}

static int test_udp(void)
{
	char b1[16], b2[16];
	for (int seq = 1; seq <= 5; seq++) {
		static char msg[32] = "vmctl-net ping seq=0";
		msg[19] = (char)('0' + seq);
		u32 plen = (u32)strlen(msg);
		printf("net: tx udp %s:%u -> %s:%u len=%u\n", ip_str(my_ip, b1), my_port, ip_str(peer_ip, b2),
		       peer_port, plen);
		if (send_udp(peer_mac, peer_ip, peer_port, msg, plen) < 0)
			return -1;
		u64 t0 = rdtsc();
		struct rx_info ri;
		while (rdtsc() - t0 < SECOND_TSC) {
			if (rx_next(&ri, SECOND_TSC, 0) < 0)
				break;
			if (ri.kind != RX_UDP)
				continue;
			printf("net: udp from %s:%u len=%u\n", ip_str(ri.src_ip, b1), ri.src_port, ri.plen);
			/* Back to the sender: its MAC is the frame's source. */
			static u8 payload[ETH_FRAME_MAX];
			static u8 mac[6];
			u32 n = ri.plen;
			memcpy(payload, ri.payload, n);
			memcpy(mac, ri.frame + 6, 6);
			if (n > ETH_FRAME_MAX - ETH_HLEN - IP_HLEN - UDP_HLEN)
				n = ETH_FRAME_MAX - ETH_HLEN - IP_HLEN - UDP_HLEN;
			struct tx_slot *s = tx_alloc();
			if (!s)
				return -1;
			u16 dport = ri.src_port;
			u32 dip = ri.src_ip;
			if (tx_send(s, build_udp(s, mac, dip, dport, payload, n)) < 0 || tx_drain() < 0)
				return -1;
			printf("net: echoed %u bytes\n", n);
			return 0;
		}
	}
	printf("net: no udp reply\n");
	return -1;
}

/* ---- benchmarks ---- */

static int bench_tx(u64 n, u64 size, int udp)
{
	if (size < ETH_ZLEN || size > ETH_FRAME_MAX) {
		printf("net: bad size=%llu (%u..%u)\n", size, ETH_ZLEN, ETH_FRAME_MAX);
		return 1;
	}
	if (udp && size < ETH_HLEN + IP_HLEN + UDP_HLEN) {
		printf("net: size=%llu too small for UDP\n", size);
		return 1;
	}
	/* Every slot gets its frame once; the benchmark resends them as they are. */
	static u8 payload[ETH_FRAME_MAX];
	for (u32 i = 0; i < sizeof(payload); i++)
		payload[i] = (u8)i;
	tx_reclaim();
	for (int i = 0; i < NTX; i++) {
		struct tx_slot *s = &tx_slots[i];
		memset(&s->hdr, 0, sizeof(s->hdr));
		if (udp) {
			build_udp(s, peer_mac, peer_ip, peer_port, payload,
				  (u32)size - ETH_HLEN - IP_HLEN - UDP_HLEN);
		} else {
			u8 *p = eth_header(s->frame, bcast, ETH_P_BENCH);
			memcpy(p, payload, size - ETH_HLEN);
		}
	}
	if (ntx_free != NTX) {
		printf("net: transmit queue busy before the benchmark\n");
		return 1;
	}
	u64 sent = 0, done = 0;
	u64 t0 = rdtsc();
	while (done < n) {
		while (sent < n && ntx_free > 0) {
			struct tx_slot *s = tx_free[--ntx_free];
			struct vq_buf b[2] = { { &s->hdr, NET_HDR_LEN }, { s->frame, (u32)size } };
			if (vq_add(txq, b, 2, 0, s) < 0) {
				tx_free[ntx_free++] = s;
				break;
			}
			sent++;
		}
		vq_kick(txq);
		struct tx_slot *s = vq_wait(txq, NULL, VIRTIO_TIMEOUT);
		if (!s) {
			printf("net: bench tx stalled after %llu of %llu frames\n", done, n);
			return 1;
		}
		do {
			tx_free[ntx_free++] = s;
			done++;
		} while ((s = vq_get(txq, NULL)) != NULL);
		/* Keep the receive side from filling up with whatever arrives meanwhile. */
		u32 len;
		u8 *rb;
		while ((rb = vq_get(rxq, &len)) != NULL)
			rx_post(rb);
		vq_kick(rxq);
	}
	u64 t = rdtsc() - t0;
	printf("net: bench tx n=%llu bytes=%llu tsc=%llu size=%llu\n", n, n * size, t, size);
	return 0;
}

static int bench_rx(u64 n, int announce)
{
	char msg[48] = "vmctl-net bench rx ready n=";
	char num[21];
	int k = 0;
	u64 v = n;
	do {
		num[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	size_t l = strlen(msg);
	while (k)
		msg[l++] = num[--k];
	msg[l] = 0;

	printf("net: bench rx ready\n");
	if (announce && send_udp(peer_mac, peer_ip, peer_port, msg, (u32)l) < 0)
		return 1;
	u64 count = 0, bytes = 0, t0 = 0, t1 = 0;
	while (count < n) {
		struct rx_info ri;
		u32 len;
		u8 *buf = vq_wait(rxq, &len, count ? 10 * SECOND_TSC : 30 * SECOND_TSC);
		if (!buf) {
			printf("net: bench rx got %llu of %llu frames\n", count, n);
			return 1;
		}
		/* Drain everything that is there, then hand the buffers back with one kick. */
		do {
			if (len >= NET_HDR_LEN && len <= RX_BUF_LEN) {
				rx_frame(buf, len, &ri, 1);
				if (ri.kind == RX_UDP && count < n) {
					if (count == 0)
						t0 = rdtsc();
					count++;
					bytes += ri.len;
					if (count == n)
						t1 = rdtsc();
				}
			}
			rx_post(buf);
		} while ((buf = vq_get(rxq, &len)) != NULL);
		vq_kick(rxq);
		tx_reclaim();
	}
	printf("net: bench rx n=%llu bytes=%llu tsc=%llu\n", n, bytes, t1 - t0);
	if (announce) {
		static const char done[] = "vmctl-net bench rx done";
		if (send_udp(peer_mac, peer_ip, peer_port, done, sizeof(done) - 1) < 0 || tx_drain() < 0)
			return 1;
	}
	return 0;
}

int guest_main(void)
{
	char s[32], ipb[16], ipb2[16], mb[18];
	u64 v;

	uart_init();
	int have_dst = cmdline_str("dst", s, sizeof(s));
	if (have_dst && !parse_ip(s, &peer_ip)) {
		printf("net: bad dst=%s\n", s);
		return 1;
	}
	if (cmdline_str("src", s, sizeof(s)) && !parse_ip(s, &my_ip)) {
		printf("net: bad src=%s\n", s);
		return 1;
	}
	if (cmdline_str("dstmac", s, sizeof(s))) {
		if (!parse_mac(s, peer_mac)) {
			printf("net: bad dstmac=%s\n", s);
			return 1;
		}
		have_peer_mac = 1;
	}
	if (cmdline_u64("port", &v))
		peer_port = (u16)v;
	if (cmdline_u64("sport", &v))
		my_port = (u16)v;

	if (virtio_open(&vdev, VIRTIO_ID_NET, 0,
			VIRTIO_BIT(VIRTIO_NET_F_MAC) | VIRTIO_BIT(VIRTIO_NET_F_STATUS)) < 0)
		return 1;
	rxq = virtio_queue(&vdev, RXQ, VQ_MAX_SIZE);
	txq = virtio_queue(&vdev, TXQ, VQ_MAX_SIZE);
	if (!rxq || !txq)
		return 1;

	if (virtio_has(&vdev, VIRTIO_NET_F_MAC)) {
		for (int i = 0; i < 6; i++)
			my_mac[i] = virtio_cfg8(&vdev, VIRTIO_NET_CFG_MAC + (u32)i);
		printf("net: mac=%s\n", mac_str(my_mac, mb));
	} else {
		/* §5.1.5: without VIRTIO_NET_F_MAC the driver makes one up. */
		u64 r = rdtsc();
		u8 gen[6] = { 0x52, 0x54, 0x00, (u8)(r >> 16), (u8)(r >> 8), (u8)r };
		memcpy(my_mac, gen, 6);
		printf("net: mac=%s (generated)\n", mac_str(my_mac, mb));
	}

	/* Receive buffers before DRIVER_OK (§5.1.5 step 3); the kick waits for it (§3.1.1). */
	for (unsigned i = 0; i < rxq->size && i < NRX; i++)
		if (rx_post(rx_bufs[i]) < 0)
			break;
	for (int i = 0; i < NTX; i++)
		tx_free[ntx_free++] = &tx_slots[i];
	if (virtio_ready(&vdev) < 0)
		return 1;
	vq_kick(rxq);

	if (virtio_has(&vdev, VIRTIO_NET_F_STATUS))
		printf("net: link %s\n",
		       virtio_cfg16(&vdev, VIRTIO_NET_CFG_STATUS) & VIRTIO_NET_S_LINK_UP ? "up" : "down");
	else
		printf("net: link status not offered\n");
	printf("net: src=%s dst=%s port=%u sport=%u\n", ip_str(my_ip, ipb), ip_str(peer_ip, ipb2), peer_port,
	       my_port);

	int rc;
	if (cmdline_str("bench", s, sizeof(s))) {
		u64 n = 10000, size = ETH_FRAME_MAX;
		cmdline_u64("n", &n);
		cmdline_u64("size", &size);
		if (n == 0) {
			printf("net: bad n=0\n");
			return 1;
		}
		if (have_dst && !have_peer_mac && resolve_peer() < 0)
			return 1;
		if (!strcmp(s, "tx")) {
			rc = bench_tx(n, size, have_dst);
		} else if (!strcmp(s, "rx")) {
			rc = bench_rx(n, have_dst);
		} else {
			printf("net: bad bench=%s (tx, rx)\n", s);
			rc = 1;
		}
	} else if (!have_peer_mac && resolve_peer() < 0) {
		rc = 1;
	} else if (cmdline_has("arp")) {
		rc = tx_drain() < 0 ? 1 : 0;
	} else {
		rc = test_udp() < 0 ? 1 : 0;
	}
	virtio_report(&vdev);
	virtio_reset(&vdev);
	return rc;
}
