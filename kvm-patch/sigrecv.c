// SPDX-License-Identifier: GPL-2.0
/*
 * Static, in the compute VM's image: a recv on a TCP socket to http://ADDR/
 * that blocks (nothing was asked yet) and what signals do to it, one line
 * per step:
 * - a SIGALRM handler without SA_RESTART ends it with EINTR after 1 s, and
 *   a child process spinning meanwhile got its CPU time (the wait did not
 *   hold the CPU); the request sent then is answered on the same socket,
 *   nothing lost or out of order;
 * - SIGSTOP and SIGCONT (no handler) restart it unseen, and so does a
 *   SIGALRM handler with SA_RESTART, twice: the first time it only sets the
 *   alarm again, the second time it sends the request, and the restarted
 *   recv returns the reply;
 * - a send after shutdown(SHUT_WR) fails with EPIPE and raises SIGPIPE: a
 *   handler runs, MSG_NOSIGNAL raises none, and a forked child whose
 *   SIGPIPE has its default action dies of it.
 * vm_test.sh runs it natively in the first level's service namespace and
 * as a trusted guest process (the socket rsys-delegate's): the transcripts
 * must match.
 * Usage: sigrecv ADDR (port 80)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpconn.h"

static const char req[] = "GET / HTTP/1.0\r\n\r\n";
static volatile sig_atomic_t handled, piped;
static int sock = -1;

static void on_alarm(int sig)
{
	(void)sig;
	handled++;
}

/* The first time only once more in 0.5 s (the recv restarts with nothing), then the request. */
static void on_alarm_send(int sig)
{
	int e = errno;

	(void)sig;
	if (++handled == 1)
		ualarm(500000, 0);
	else if (send(sock, req, sizeof(req) - 1, 0) != sizeof(req) - 1)
		handled += 100;
	errno = e;
}

static void on_pipe(int sig)
{
	(void)sig;
	piped++;
}

static void handle(int sig, void (*fn)(int), int flags)
{
	struct sigaction sa = { .sa_handler = fn, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* The reply's status line: what @n bytes in @buf start, read on until its end. */
static void status_line(const char *what, char *buf, ssize_t n, size_t size)
{
	ssize_t m;

	while (n > 0 && !memmem(buf, n, "\r\n", 2) && (size_t)n < size - 1 &&
	       (m = recv(sock, buf + n, size - 1 - n, 0)) > 0)
		n += m;
	if (n <= 0) {
		printf("%s: %zd %s\n", what, n, n < 0 ? strerror(errno) : "");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	printf("%s: %s (handler: %d)\n", what, buf, (int)handled);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	struct pollfd pf;
	pid_t spinner, stopper, pid;
	int st = 0;
	char buf[4096];
	int p[2];
	ssize_t n;
	double t;

	if (argc != 2) {
		fprintf(stderr, "usage: sigrecv ADDR\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);

	/* EINTR: a handler without SA_RESTART; a child spins meanwhile (0.3 s of its clock). */
	sock = http_conn(argv[1]);
	printf("connect: 0\n");
	if (pipe(p))
		return 1;
	spinner = fork();
	if (spinner == 0) {
		t = now();
		while (now() - t < 0.3)
			;
		_exit(write(p[1], "x", 1) != 1);
	}
	handle(SIGALRM, on_alarm, 0);
	alarm(1);
	n = recv(sock, buf, sizeof(buf), 0);
	printf("recv, a SIGALRM handler without SA_RESTART after 1 s: %zd %s (handler: %d)\n", n,
	       n < 0 ? strerrorname_np(errno) : "data", (int)handled);
	pf = (struct pollfd){ .fd = p[0], .events = POLLIN };
	printf("a child process spun while recv waited: %s\n", poll(&pf, 1, 0) == 1 ? "yes" : "no");
	waitpid(spinner, NULL, 0);
	n = send(sock, req, sizeof(req) - 1, 0);
	printf("request sent: %zd\n", n);
	n = recv(sock, buf, sizeof(buf), 0);
	status_line("reply on the same socket", buf, n, sizeof(buf));
	close(sock);

	/* Restarted: SIGSTOP and SIGCONT, then a handler with SA_RESTART that sends the request. */
	handled = 0;
	sock = http_conn(argv[1]);
	printf("connect: 0\n");
	stopper = fork();
	if (stopper == 0) {
		usleep(300000);
		kill(getppid(), SIGSTOP);
		usleep(200000);
		kill(getppid(), SIGCONT);
		_exit(0);
	}
	handle(SIGALRM, on_alarm_send, SA_RESTART);
	alarm(1);
	n = recv(sock, buf, sizeof(buf), 0);
	status_line("recv through SIGSTOP, SIGCONT and two SIGALRMs with SA_RESTART (the second sends the request)",
		    buf, n, sizeof(buf));
	waitpid(stopper, NULL, 0);
	close(sock);

	/* EPIPE and SIGPIPE: a handler, MSG_NOSIGNAL, then the default action in a child. */
	sock = http_conn(argv[1]);
	printf("connect: 0\n");
	printf("shutdown(SHUT_WR): %d\n", shutdown(sock, SHUT_WR));
	handle(SIGPIPE, on_pipe, 0);
	n = send(sock, req, sizeof(req) - 1, 0);
	printf("send after it, a SIGPIPE handler: %zd %s (SIGPIPE: %d)\n", n,
	       n < 0 ? strerrorname_np(errno) : "", (int)piped);
	n = send(sock, req, sizeof(req) - 1, MSG_NOSIGNAL);
	printf("send with MSG_NOSIGNAL: %zd %s (SIGPIPE: %d)\n", n,
	       n < 0 ? strerrorname_np(errno) : "", (int)piped);
	handle(SIGPIPE, SIG_DFL, 0);
	pid = fork();
	if (pid == 0) {
		send(sock, req, sizeof(req) - 1, 0);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	printf("a child's send, SIGPIPE's default action: %s\n",
	       WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE ? "killed by SIGPIPE" : "not killed");
	close(sock);
	return 0;
}
