// SPDX-License-Identifier: GPL-2.0
/*
 * Static, in the compute VM's image: a TCP socket to http://ADDR/ used
 * across fork, one line per step:
 * - the child sends the request on the socket it inherited and reads the
 *   reply to its end; its exit leaves the parent's copy open (SO_TYPE), and
 *   the parent then reads the server's end of file on it;
 * - a forking server's pattern: the parent closes its copy right after the
 *   fork, and the child, which makes no system call until then, still has
 *   the connection.
 * vm_test.sh runs it natively in the first level's service namespace and
 * as a trusted guest process (the socket rsys-delegate's): the transcripts
 * must match.
 * Usage: forkfd ADDR (port 80)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpconn.h"

static const char req[] = "GET / HTTP/1.0\r\n\r\n";

static int conn(const char *addr)
{
	int s = http_conn(addr);

	printf("connect: %d\n", s);
	return s;
}

/* In a child: the request on @s, then the reply to its end; its status line printed. */
static int child_fetch(int s)
{
	char buf[8192];
	ssize_t n, got = 0;

	n = send(s, req, sizeof(req) - 1, 0);
	printf("child: request sent: %zd%s%s\n", n, n < 0 ? " " : "", n < 0 ? strerrorname_np(errno) : "");
	if (n < 0)
		return 1;
	while ((n = recv(s, buf + got, sizeof(buf) - 1 - got, 0)) > 0 && got + n < (ssize_t)sizeof(buf) - 1)
		got += n;
	if (n < 0) {
		printf("child: recv: %s\n", strerrorname_np(errno));
		return 1;
	}
	buf[got] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("child: reply: %s, then end of file\n", buf);
	return 0;
}

static void reap(pid_t pid)
{
	int st = 0;

	waitpid(pid, &st, 0);
	printf("child: exit status %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

int main(int argc, char **argv)
{
	int s, ret, type = 0;
	socklen_t len = sizeof(type);
	struct timespec t0, t;
	char c;
	pid_t pid;

	if (argc != 2) {
		fprintf(stderr, "usage: forkfd ADDR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	s = conn(argv[1]);
	pid = fork();
	if (pid == 0)
		_exit(child_fetch(s));
	reap(pid);
	ret = getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &len);
	printf("parent: getsockopt(SO_TYPE) after the child ended: %d %d\n", ret, type);
	printf("parent: recv: %zd\n", recv(s, &c, 1, 0));
	printf("parent: close: %d\n", close(s));

	/* The parent closes its copy at once; the child's first call comes 0.2 s later. */
	s = conn(argv[1]);
	pid = fork();
	if (pid == 0) {
		clock_gettime(CLOCK_MONOTONIC, &t0);
		do
			clock_gettime(CLOCK_MONOTONIC, &t);
		while ((t.tv_sec - t0.tv_sec) * 1000000000L + t.tv_nsec - t0.tv_nsec < 200000000L);
		_exit(child_fetch(s));
	}
	printf("parent: close right after the fork: %d\n", close(s));
	reap(pid);
	return 0;
}
