// SPDX-License-Identifier: GPL-2.0
/*
 * Static, in the compute VM's image: waits over a pipe and a TCP socket to
 * http://ADDR/ together (select, pselect6, poll, ppoll, epoll) and prints what each
 * returned, one line per step. vm_test.sh runs it natively in the first
 * level's service namespace and as a trusted guest process (the socket
 * rsys-delegate's, the pipe the guest kernel's): the transcripts must match.
 * It also gives getsockopt kernel addresses, the VMM's scratch one among them,
 * and waits in a ppoll whose signal mask alone lets a child's SIGUSR1 in.
 * Usage: splitwait ADDR (port 80)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "httpconn.h"

static const char *addr;

static void request(int s)
{
	static const char req[] = "GET / HTTP/1.0\r\n\r\n";

	if (write(s, req, sizeof(req) - 1) != sizeof(req) - 1)
		printf("request: %s\n", strerror(errno));
}

/* What select said about the pipe's read end @p and socket @s. */
static void sel(const char *what, int p, int s, long ms, bool psel)
{
	struct timeval tv = { ms / 1000, ms % 1000 * 1000 };
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000 };
	fd_set r;
	int n;

	FD_ZERO(&r);
	FD_SET(p, &r);
	FD_SET(s, &r);
	if (psel)
		n = pselect(s > p ? s + 1 : p + 1, &r, NULL, NULL, ms < 0 ? NULL : &ts, NULL);
	else
		n = select(s > p ? s + 1 : p + 1, &r, NULL, NULL, ms < 0 ? NULL : &tv);
	printf("%s: %d pipe=%d sock=%d\n", what, n, n > 0 && FD_ISSET(p, &r), n > 0 && FD_ISSET(s, &r));
}

static void pol(const char *what, int p, int s, int ms, bool ppol)
{
	struct pollfd pf[2] = { { .fd = p, .events = POLLIN }, { .fd = s, .events = POLLIN } };
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
	int n = ppol ? ppoll(pf, 2, ms < 0 ? NULL : &ts, NULL) : poll(pf, 2, ms);

	printf("%s: %d pipe=%#x sock=%#x fds=%d,%d\n", what, n, pf[0].revents, pf[1].revents,
	       pf[0].fd == p, pf[1].fd == s);
}

/* What an epoll_wait (epoll_pwait2) on instance @ep, watching @p and @s for input, said. */
static void epl(const char *what, int ep, int p, int s, int ms, bool pwait2)
{
	struct timespec ts = { ms / 1000, ms % 1000 * 1000000L };
	struct epoll_event ev[4];
	int n, i, pr = 0, sr = 0;

	n = pwait2 ? epoll_pwait2(ep, ev, 4, ms < 0 ? NULL : &ts, NULL) : epoll_wait(ep, ev, 4, ms);
	for (i = 0; i < n; i++) {
		pr |= ev[i].data.fd == p ? (int)ev[i].events : 0;
		sr |= ev[i].data.fd == s ? (int)ev[i].events : 0;
	}
	printf("%s: %d pipe=%#x sock=%#x\n", what, n, pr, sr);
}

static int epoll_of(int p, int s)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(EPOLL_CLOEXEC), r;

	ev.data.fd = p;
	printf("epoll_ctl(ADD pipe): %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, p, &ev));
	ev.data.fd = s;
	printf("epoll_ctl(ADD sock): %d\n", epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev));
	r = epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
	printf("epoll_ctl(ADD sock again): %d %s\n", r, r ? strerrorname_np(errno) : "");
	return ep;
}

/* Read the reply to its end: its status line and length as one line. */
static void reply(int s)
{
	char buf[4096], *eol;
	size_t len = 0;
	ssize_t n;

	while ((n = read(s, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += n;
	buf[len] = '\0';
	eol = strstr(buf, "\r\n");
	if (eol)
		*eol = '\0';
	printf("reply: %s (%zu bytes)\n", buf, len);
}

/*
 * Kernel addresses are no buffer: natively EFAULT, and under rsys-load vm
 * too, KF_SCRATCH_VA included (the VMM's scratch memory for calls it makes
 * up for the monitor must not be reachable through a program's own call).
 */
static void scratch(int s)
{
	static const unsigned long addrs[] = { 0xffffff8000000000UL, 0xffffffff81000000UL };
	socklen_t len = sizeof(int);
	unsigned int i;
	int r;

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		r = getsockopt(s, SOL_SOCKET, SO_ERROR, (void *)addrs[i], &len);
		printf("getsockopt into %#lx: %d %s\n", addrs[i], r, r ? strerror(errno) : "");
		r = getsockopt(s, SOL_SOCKET, SO_ERROR, &r, (socklen_t *)addrs[i]);
		printf("getsockopt with its length at %#lx: %d %s\n", addrs[i], r, r ? strerror(errno) : "");
	}
}

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

/* ppoll over pipe @p and socket @s with a mask that lets SIGUSR1 in, blocked otherwise: a child sends it. */
static void masked(int p, int s)
{
	struct pollfd pf[2] = { { .fd = p, .events = POLLIN }, { .fd = s, .events = POLLIN } };
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct timespec ts = { 3, 0 };
	sigset_t block, none;
	pid_t pid;
	int n;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigemptyset(&none);
	sigaction(SIGUSR1, &sa, NULL);
	sigprocmask(SIG_BLOCK, &block, NULL);
	pid = fork();
	if (pid == 0) {
		usleep(300000);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	n = ppoll(pf, 2, &ts, &none);
	printf("ppoll letting SIGUSR1 in only while it waits, a child sends it: %d %s (handler: %d)\n",
	       n, n < 0 ? strerrorname_np(errno) : "", (int)usr1);
	waitpid(pid, NULL, 0);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
}

/* A child writes a byte into the pipe after @ms: the parent's wait must end then. */
static pid_t later(int w, int ms)
{
	pid_t pid = fork();

	if (pid == 0) {
		usleep(ms * 1000);
		if (write(w, "x", 1) != 1)
			_exit(1);
		_exit(0);
	}
	return pid;
}

int main(int argc, char **argv)
{
	int p[2], s, t, ep;
	char c;

	if (argc != 2) {
		fprintf(stderr, "usage: splitwait ADDR\n");
		return 2;
	}
	addr = argv[1];
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (pipe(p))
		return 1;
	s = http_conn(addr);
	ep = epoll_of(p[0], s);
	sel("select, nothing ready, 200 ms", p[0], s, 200, false);
	pol("poll, nothing ready, 200 ms", p[0], s, 200, false);
	epl("epoll_wait, nothing ready, 200 ms", ep, p[0], s, 200, false);
	if (write(p[1], "x", 1) != 1)
		return 1;
	sel("select, the pipe ready", p[0], s, 5000, false);
	pol("ppoll, the pipe ready", p[0], s, 5000, true);
	epl("epoll_pwait2, the pipe ready", ep, p[0], s, 5000, true);
	if (read(p[0], &c, 1) != 1)
		return 1;
	request(s);
	epl("epoll_wait, the reply comes", ep, p[0], s, 5000, false);
	sel("select, the reply there", p[0], s, 5000, false);
	pol("poll, the reply there", p[0], s, 5000, false);
	reply(s);
	close(s);
	close(ep);

	t = http_conn(addr);
	masked(p[0], t);
	later(p[1], 300);
	sel("pselect6 without timeout, a child writes the pipe", p[0], t, -1, true);
	wait(NULL);
	if (read(p[0], &c, 1) != 1)
		return 1;
	scratch(t);
	request(t);
	pol("poll without timeout, the reply comes", p[0], t, -1, false);
	sel("select without timeout, the reply there", p[0], t, -1, false);
	reply(t);
	close(t);
	return 0;
}
