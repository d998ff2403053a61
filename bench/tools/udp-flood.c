/*
 * udp-flood: the host side of virtio-net.elf's `bench=rx`, run inside the bench's network
 * namespace. Binds BIND_IP:PORT, waits for the guest's datagram "vmctl-net bench rx ready
 * n=N", then sends PAYLOAD-byte UDP datagrams to the address and port it came from as fast
 * as sendmmsg(2) takes them, until "vmctl-net bench rx done" arrives or SECONDS pass.
 *
 *   udp-flood BIND_IP PORT PAYLOAD SECONDS
 *
 * Prints `udp-flood: listening` once bound, `udp-flood: ready from A.B.C.D:P` when the guest
 * announces itself, and `udp-flood: sent=S done=0|1 ms=T` at the end (exit 0 when the guest
 * said done). A sender that outruns the guest loses frames in the tap's queue; the guest
 * counts what it gets.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define MAX_PAYLOAD 1472

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: udp-flood BIND_IP PORT PAYLOAD SECONDS\n");
		return 2;
	}
	int payload = atoi(argv[3]);
	double seconds = atof(argv[4]);
	if (payload < 1 || payload > MAX_PAYLOAD || seconds <= 0) {
		fprintf(stderr, "udp-flood: PAYLOAD must be 1..%d and SECONDS > 0\n", MAX_PAYLOAD);
		return 2;
	}
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0) {
		perror("udp-flood: socket");
		return 1;
	}
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[2])) };
	if (inet_pton(AF_INET, argv[1], &me.sin_addr) != 1 || bind(s, (struct sockaddr *)&me, sizeof(me)) < 0) {
		perror("udp-flood: bind");
		return 1;
	}
	struct timeval tv = { .tv_sec = (long)seconds };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	printf("udp-flood: listening\n");
	fflush(stdout);

	char msg[128];
	struct sockaddr_in peer;
	socklen_t plen;
	for (;;) {
		plen = sizeof(peer);
		ssize_t n = recvfrom(s, msg, sizeof(msg) - 1, 0, (struct sockaddr *)&peer, &plen);
		if (n < 0) {
			fprintf(stderr, "udp-flood: no ready datagram: %s\n", strerror(errno));
			return 1;
		}
		msg[n] = 0;
		if (!strncmp(msg, "vmctl-net bench rx ready", 24))
			break;
	}
	char ip[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &peer.sin_addr, ip, sizeof(ip));
	printf("udp-flood: ready from %s:%u\n", ip, ntohs(peer.sin_port));
	fflush(stdout);
	if (connect(s, (struct sockaddr *)&peer, sizeof(peer)) < 0) {
		perror("udp-flood: connect");
		return 1;
	}

	static char buf[MAX_PAYLOAD];
	memset(buf, 0x5a, sizeof(buf));
	struct iovec iov = { .iov_base = buf, .iov_len = (size_t)payload };
	struct mmsghdr msgs[BATCH];
	memset(msgs, 0, sizeof(msgs));
	for (int i = 0; i < BATCH; i++) {
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	unsigned long long sent = 0;
	int done = 0;
	double t0 = now_ms(), deadline = t0 + seconds * 1e3;
	while (!done && now_ms() < deadline) {
		int n = sendmmsg(s, msgs, BATCH, 0);
		if (n > 0)
			sent += (unsigned)n;
		else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) {
			perror("udp-flood: sendmmsg");
			break;
		}
		/* The guest's "done" (and anything else it sends) waits here; look without blocking. */
		for (;;) {
			ssize_t r = recv(s, msg, sizeof(msg) - 1, MSG_DONTWAIT);
			if (r < 0)
				break;
			msg[r] = 0;
			if (!strncmp(msg, "vmctl-net bench rx done", 23))
				done = 1;
		}
	}
	printf("udp-flood: sent=%llu done=%d ms=%.1f\n", sent, done, now_ms() - t0);
	return done ? 0 : 1;
}
