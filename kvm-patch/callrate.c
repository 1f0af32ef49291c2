// SPDX-License-Identifier: GPL-2.0
/*
 * Run in the compute VM by vm_test.sh: how long one system call takes in
 * the guest (getppid, which every layer passes through untouched), timed
 * by the guest's clock over at least MIN_NS in batches. Prints one line:
 * "callrate: getppid N calls in T s: X us/call".
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <sys/syscall.h>

#define MIN_NS	500000000LL	/* 0.5 s */
#define BATCH	64

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	long long min_ns = argc > 1 ? atoll(argv[1]) * 1000000LL : MIN_NS;
	long long start, t, calls = 0;
	int i;

	if (min_ns <= 0)
		min_ns = MIN_NS;
	start = now_ns();
	do {
		for (i = 0; i < BATCH; i++)
			syscall(SYS_getppid);
		calls += BATCH;
		t = now_ns() - start;
	} while (t < min_ns);
	printf("callrate: getppid %lld calls in %.3f s: %.2f us/call\n", calls, t / 1e9,
	       t / 1e3 / (double)calls);
	return 0;
}
