// SPDX-License-Identifier: GPL-2.0
/* epoll_pwait2 on a remote socket (timeout, readiness, bad timespec) and a remote recv interrupted by a signal after a quiet period. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "ktap.h"

#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static long pwait2(int ep, struct epoll_event *ev, int max, const struct timespec *ts)
{
	return syscall(SYS_epoll_pwait2, ep, ev, max, ts, NULL, 8);
}

static void on_alarm(int sig)
{
	(void)sig;
}

/* One remote UDP socket and an epoll instance on it, made by main() before the cases run. */
static struct sockaddr_in a = { .sin_family = AF_INET };
static int rx, tx, ep;
static const char *daddr;
static struct epoll_event ev[4] = { { .events = EPOLLIN, .data.u64 = 0x5eed0000cafeULL } };
/* the delegate's counters before the interrupted recv; stats: they could be read */
static struct rsys_delegate_stats s0;
static bool stats;

TEST(timeout)
{
	struct timespec ts = { 0, 300 * 1000 * 1000 };
	double t0, t;
	long n;

	t0 = now();
	n = pwait2(ep, ev, 4, &ts);
	t = now() - t0;
	/* generous bounds: this machine is shared and loaded */
	CHECK(n == 0 && t >= 0.25 && t < 5, "epoll_pwait2 0.3 s timeout on a quiet remote socket: %ld%s",
	      n, t >= 0.25 && t < 5 ? "" : " (wrong duration)");
}

TEST(datagram)
{
	struct timespec ts = { 5, 0 };
	char b[16];
	long n;

	sendto(tx, "x", 1, 0, (struct sockaddr *)&a, sizeof(a));
	n = pwait2(ep, ev, 4, &ts);
	CHECK(n == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == 0x5eed0000cafeULL,
	      "datagram: EPOLLIN with the user data kept: %ld %#x %#llx", n, n == 1 ? ev[0].events : 0,
	      n == 1 ? (unsigned long long)ev[0].data.u64 : 0ULL);
	while (recv(rx, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

TEST(bad_nsec)
{
	struct timespec ts = { 0, 1000000000 };
	long n = pwait2(ep, ev, 4, &ts);
	int e = errno;

	CHECK(n == -1 && e == EINVAL, "tv_nsec = 1e9: %ld %s", n, n < 0 ? strerror(e) : "");
}

TEST(bad_sec)
{
	struct timespec ts = { -1, 0 };
	long n = pwait2(ep, ev, 4, &ts);
	int e = errno;

	CHECK(n == -1 && e == EINVAL, "tv_sec = -1: %ld %s", n, n < 0 ? strerror(e) : "");
}

TEST(zero_timeout)
{
	struct timespec ts = { 0, 0 };
	long n = pwait2(ep, ev, 4, &ts);

	CHECK(n == 0, "zero timeout, nothing ready: %ld", n);
}

/* A remote recv interrupted by a signal after 2 s without any syscall. */
TEST(recv_interrupted)
{
	struct sigaction sa = { .sa_handler = on_alarm };
	struct timespec quiet = { 2, 0 };
	double t0, t;
	char b[16];
	ssize_t r;
	int e;

	stats = daddr && !delegate_stats(daddr, &s0);
	sigaction(SIGALRM, &sa, NULL);
	nanosleep(&quiet, NULL);
	alarm(1);
	t0 = now();
	r = recv(rx, b, sizeof(b), 0);
	e = errno;
	t = now() - t0;
	CHECK(r == -1 && e == EINTR && t < 10, "recv after a quiet period, interrupted by SIGALRM: %zd %s",
	      r, r < 0 ? strerror(e) : "");
}

/* The cancelled recv must leave the delegate within 1 s. */
TEST(delegate_inflight)
{
	struct rsys_delegate_stats s1 = { 0 };
	double t0, t;
	int i;

	if (!stats)
		SKIP_CASE("no delegate (natively, or WAIT_DELEGATE unset/unreachable)");
	t0 = now();
	for (i = 0; i < 100; i++) {
		if (delegate_stats(daddr, &s1) || (s1.inflight <= s0.inflight && s1.cancelled > s0.cancelled))
			break;
		usleep(10000);
	}
	t = now() - t0;
	CHECK(s1.inflight <= s0.inflight && s1.cancelled > s0.cancelled && t <= 1.0,
	      "delegate inflight back to %llu (now %llu) and cancelled %llu -> %llu within %.2f s",
	      (unsigned long long)s0.inflight, (unsigned long long)s1.inflight,
	      (unsigned long long)s0.cancelled, (unsigned long long)s1.cancelled, t);
}

int main(void)
{
	const char *ip = getenv("WAIT_IP") ? getenv("WAIT_IP") : "127.0.0.1";
	struct timespec ts = { 0, 0 };
	socklen_t len = sizeof(a);

	daddr = getenv("WAIT_DELEGATE");
	inet_pton(AF_INET, ip, &a.sin_addr);
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(rx, (struct sockaddr *)&a, &len))
		ktap_exit_skip("UDP socket on %s: %s", ip, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, rx, ev))
		ktap_exit_skip("epoll: %s", strerror(errno));
	if (pwait2(ep, ev, 4, &ts) < 0 && errno == ENOSYS)
		ktap_exit_skip("epoll_pwait2 not supported by this kernel");
	return ktap_run();
}
