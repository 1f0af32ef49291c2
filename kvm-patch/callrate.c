// SPDX-License-Identifier: GPL-2.0
/*
 * Run in the compute VM by vm_test.sh: how long one system call takes in
 * the guest (getppid, which every layer passes through untouched), timed
 * by the guest's clock over at least MIN_NS in batches. Prints one line:
 * "callrate: getppid N calls in T s: X us/call". With "sock ADDR" it
 * connects to ADDR port 80 and times getsockopt(SO_ERROR) on that socket
 * instead ("callrate: getsockopt ..."): a remote call for a trusted guest
 * process of rsys-load vm --policy.
 * Usage: callrate [MS [sock ADDR]]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/syscall.h>

#define MIN_NS	500000000LL	/* 0.5 s */
#define BATCH	64

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* A TCP socket connected to @addr port 80, or -1 after a message. */
static int connected(const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin))) {
		perror("callrate: connect");
		return -1;
	}
	return s;
}

int main(int argc, char **argv)
{
	long long min_ns = argc > 1 ? atoll(argv[1]) * 1000000LL : MIN_NS;
	long long start, t, calls = 0;
	int i, s = -1, err;
	socklen_t len;

	if (min_ns <= 0)
		min_ns = MIN_NS;
	if (argc > 3 && !strcmp(argv[2], "sock")) {
		s = connected(argv[3]);
		if (s < 0)
			return 1;
	}
	start = now_ns();
	do {
		for (i = 0; i < BATCH; i++) {
			if (s < 0) {
				syscall(SYS_getppid);
				continue;
			}
			len = sizeof(err);
			getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
		}
		calls += BATCH;
		t = now_ns() - start;
	} while (t < min_ns);
	printf("callrate: %s %lld calls in %.3f s: %.2f us/call\n", s < 0 ? "getppid" : "getsockopt",
	       calls, t / 1e9, t / 1e3 / (double)calls);
	return 0;
}
