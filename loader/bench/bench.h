/* SPDX-License-Identifier: GPL-2.0 */
/* rsys-bench internals: the synthetic select workloads of the original Table 1 and their driver. */
#ifndef RSYS_BENCH_H
#define RSYS_BENCH_H

#include <stdbool.h>

/* One row of the table, in the order they are run and printed. */
enum bench_test {
	BENCH_NATIVE,		/* select on a ready local pipe, no rsys */
	BENCH_TRAPPED,		/* the same under rsys-load run: trapped, answered with CONTINUE */
	BENCH_LOCAL,		/* select(LocalFD) with a remote socket open in the process */
	BENCH_LOCAL_NRREMOTE,	/* select(LocalFD, [RemoteFD]): split, local wins, remote cancelled */
	BENCH_REMOTE,		/* select(RemoteFD): executed by the delegate */
	BENCH_NRLOCAL_REMOTE,	/* select([LocalFD], RemoteFD): split, remote wins, local cancelled */
	BENCH_NROWS,		/* the rows of Table 1 end here */
	/* select(LocalFD, [RemoteFD]) whose local fd gets ready after the remote half was sent */
	BENCH_LATE_LOCAL = BENCH_NROWS,
	BENCH_NTESTS
};

struct bench_info {
	const char *name;	/* exactly as printed and in -j output */
	const char *original;	/* the original's ratio, as its Table 1 printed it */
	double original_ratio;
	bool remote;		/* needs the monitor and the delegate */
};

extern const struct bench_info bench_tests[BENCH_NTESTS];

/*
 * Run workload @t for @iters iterations in this process and print its
 * median call x @iters and its wall seconds on stdout (the split tests
 * also print the seconds of the essential remote call and close that
 * follow the loop). 0 or exit status.
 */
int bench_worker(enum bench_test t, long iters);

/*
 * The floor under the trapped row on this machine: the same select loop,
 * trapped by a seccomp filter whose listener another process answers with
 * CONTINUE and nothing else (the two process switches any seccomp-notify
 * monitor pays). Median call x @iters in @seconds; 0 or -errno.
 */
int bench_floor(long iters, double *seconds);

#endif
