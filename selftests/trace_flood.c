// SPDX-License-Identifier: GPL-2.0
/*
 * A trace producer for trace_test.sh: N events as fast as lib/trace.c sends
 * them, then, once GO_FILE exists (the reader is awake again), the close that
 * reports what was lost.
 *
 * Usage: trace_flood N GO_FILE   (prints "emitted N" when the events are out)
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "trace.h"

#define FLOOD_WAIT_TENTHS	600	/* for GO_FILE: 60 s */
#define FLOOD_CLOSE_MS		10000	/* for room at the reader to report the loss */

int main(int argc, char **argv)
{
	struct rsys_event ev = { .call = RSYS_EV_SENDTO, .verdict = RSYS_VERDICT_OBSERVED };
	long i, n;
	int t;

	if (argc != 3 || (n = atol(argv[1])) <= 0) {
		fprintf(stderr, "usage: trace_flood N GO_FILE\n");
		return 1;
	}
	trace_init(RSYS_SRC_TEST);
	if (!trace_wanted()) {
		fprintf(stderr, "trace_flood: no trace reader on %s\n", trace_sock_path());
		return 1;
	}
	for (i = 0; i < n; i++) {
		ev.pid = getpid();
		ev.ret = i;
		ev.time_ns = 0;
		trace_emit(&ev);
	}
	printf("emitted %ld\n", n);
	fflush(stdout);
	for (t = 0; t < FLOOD_WAIT_TENTHS && access(argv[2], F_OK); t++)
		usleep(100000);
	trace_close(FLOOD_CLOSE_MS);
	return 0;
}
