/*
 * tsc-hz: measures the host TSC frequency against CLOCK_MONOTONIC_RAW.
 *
 *   tsc-hz [samples] [ms]      default: 7 samples of 200 ms
 *
 * Prints one frequency in Hz per line, one line per sample. Each sample brackets a sleep
 * with (clock, rdtsc) pairs; the clock read on each side is the mean of the reads just
 * before and after rdtsc, so a preemption between them shows up as an outlier that the
 * caller's median discards.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <x86intrin.h>

static double now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static void sample(double *ns, uint64_t *tsc)
{
	double a = now_ns();
	*tsc = __rdtsc();
	double b = now_ns();
	*ns = (a + b) / 2;
}

int main(int argc, char **argv)
{
	int samples = argc > 1 ? atoi(argv[1]) : 7;
	long ms = argc > 2 ? atol(argv[2]) : 200;
	struct timespec nap = { ms / 1000, (ms % 1000) * 1000000L };

	for (int i = 0; i < samples; i++) {
		double ns0, ns1;
		uint64_t c0, c1;
		sample(&ns0, &c0);
		nanosleep(&nap, NULL);
		sample(&ns1, &c1);
		printf("%.0f\n", (double)(c1 - c0) * 1e9 / (ns1 - ns0));
	}
	return 0;
}
