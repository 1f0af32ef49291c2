// SPDX-License-Identifier: GPL-2.0
/*
 * Run in the compute VM by vm_test.sh: how long one system call takes in
 * the guest (getppid, which every layer passes through untouched), timed
 * by the guest's clock over at least MIN_NS in batches. Prints one line:
 * "callrate: getppid N calls in T s: X us/call". With "sock ADDR" it
 * connects to ADDR port 80 and times getsockopt(SO_ERROR) on that socket
 * instead ("callrate: getsockopt ..."): a remote call for a trusted guest
 * process of rsys-load vm --policy. The select modes time select() with a
 * zero timeout, the rows of the original system's Table 1: "select-local"
 * on a pipe (select(LocalFD)); "select-local-held ADDR" on the pipe while
 * the process holds a socket (select(LocalFD,[RemoteFD])); "select-remote
 * ADDR" on the socket (select(RemoteFD)); "select-mixed ADDR" on both
 * (select([LocalFD],RemoteFD)).
 * Usage: callrate [MS [sock ADDR | select-local | select-local-held ADDR |
 *                      select-remote ADDR | select-mixed ADDR]]
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/select.h>
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

/* The select modes: which fds are in the set (and whether a socket is held at all). */
static const struct {
	const char *mode, *row;
	int pipe_in, sock, sock_in;
} selects[] = {
	{ "select-local", "select(LocalFD)", 1, 0, 0 },
	{ "select-local-held", "select(LocalFD,[RemoteFD])", 1, 1, 0 },
	{ "select-remote", "select(RemoteFD)", 0, 1, 1 },
	{ "select-mixed", "select([LocalFD],RemoteFD)", 1, 1, 1 },
};

int main(int argc, char **argv)
{
	long long min_ns = argc > 1 ? atoll(argv[1]) * 1000000LL : MIN_NS;
	long long start, t, calls = 0;
	int i, s = -1, err, p[2], sel = -1, nfds = 0;
	const char *name = "getppid";
	struct timeval tv;
	socklen_t len;
	fd_set set;

	if (min_ns <= 0)
		min_ns = MIN_NS;
	for (i = 0; argc > 2 && i < (int)(sizeof(selects) / sizeof(selects[0])); i++)
		if (!strcmp(argv[2], selects[i].mode))
			sel = i;
	if (argc > 2 && sel < 0 && strcmp(argv[2], "sock")) {
		fprintf(stderr, "callrate: unknown mode %s\n", argv[2]);
		return 2;
	}
	if (argc > 2 && (sel < 0 || selects[sel].sock)) {
		if (argc < 4)
			return 2;
		s = connected(argv[3]);
		if (s < 0)
			return 1;
		name = "getsockopt";
	}
	if (sel >= 0) {
		if (pipe(p))
			return 1;
		name = selects[sel].row;
		nfds = (p[0] > s ? p[0] : s) + 1;
	}
	start = now_ns();
	do {
		for (i = 0; i < BATCH; i++) {
			if (sel >= 0) {
				FD_ZERO(&set);
				if (selects[sel].pipe_in)
					FD_SET(p[0], &set);
				if (selects[sel].sock_in)
					FD_SET(s, &set);
				tv.tv_sec = tv.tv_usec = 0;
				select(nfds, &set, NULL, NULL, &tv);
			} else if (s < 0) {
				syscall(SYS_getppid);
			} else {
				len = sizeof(err);
				getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
			}
		}
		calls += BATCH;
		t = now_ns() - start;
	} while (t < min_ns);
	printf("callrate: %s %lld calls in %.3f s: %.2f us/call\n", name, calls, t / 1e9,
	       t / 1e3 / (double)calls);
	return 0;
}
