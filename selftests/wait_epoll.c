// SPDX-License-Identifier: GPL-2.0
/* epoll interest lists with local and remote fds: level, one-shot, user data, errors, fd closed while registered. */
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "udp.h"

/* Remote fds are AF_INET UDP sockets (at the delegate under rsys-load run); local ones pipes. */

/* The epoll instance, a pipe and a remote UDP pair, made by main() before the cases run. */
static int ep, p[2];
static struct udp u;

/* A datagram to rx, and a moment for it to arrive. */
static void fire(struct udp *u)
{
	struct timespec settle = { 0, 20000000 };

	udp_fire(u);
	nanosleep(&settle, NULL);
}

static int add(int ep, int fd, uint32_t events, uint64_t data)
{
	struct epoll_event ev = { .events = events, .data.u64 = data };

	return epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

TEST(add_local_remote)
{
	CHECK(add(ep, p[0], EPOLLIN, 0x1111) == 0 && add(ep, u.rx, EPOLLIN, 0xabcdef0123ULL) == 0,
	      "add a local and a remote fd");
}

TEST(add_twice)
{
	int n = add(ep, u.rx, EPOLLIN, 1), e = errno;

	CHECK(n == -1 && e == EEXIST, "add twice: %d %s", n, strerror(e));
}

TEST(nothing_ready)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 100);

	CHECK(n == 0, "nothing ready: timeout %d", n);
}

TEST(remote_ready)
{
	struct epoll_event ev[8];
	int n;

	fire(&u);
	n = epoll_wait(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == 0xabcdef0123ULL,
	      "remote ready, user data kept: %d %#x %#llx", n, ev[0].events,
	      (unsigned long long)ev[0].data.u64);
}

TEST(level_triggered)
{
	struct epoll_event ev[8];
	int n = epoll_wait(ep, ev, 8, 1000);

	CHECK(n == 1 && ev[0].data.u64 == 0xabcdef0123ULL, "level-triggered: reported again: %d", n);
	udp_drain(&u);
}

TEST(local_ready)
{
	struct epoll_event ev[8];
	int n;
	char b;

	if (write(p[1], "x", 1) != 1)
		REQUIRE(false, "write to the pipe: %s", strerror(errno));
	n = epoll_wait(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].events == EPOLLIN && ev[0].data.u64 == 0x1111,
	      "local ready: %d %#llx", n, (unsigned long long)ev[0].data.u64);
	if (read(p[0], &b, 1) != 1)
		CHECK(false, "read the pipe: %s", strerror(errno));
}

TEST(mod_oneshot)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 7 };

	CHECK(epoll_ctl(ep, EPOLL_CTL_MOD, u.rx, &ev) == 0, "EPOLL_CTL_MOD to one-shot");
}

TEST(oneshot)
{
	struct epoll_event ev[8];
	int n, e;

	fire(&u);
	n = epoll_wait(ep, ev, 8, 1000);
	e = n == 1 ? (int)ev[0].data.u64 : -1;
	n = n == 1 ? epoll_wait(ep, ev, 8, 100) : -2;
	CHECK(e == 7 && n == 0, "one-shot: reported once (data %d), then silent (%d)", e, n);
}

TEST(rearm)
{
	struct epoll_event ev[8] = { { .events = EPOLLIN, .data.u64 = 8 } };
	int n;

	epoll_ctl(ep, EPOLL_CTL_MOD, u.rx, &ev[0]);
	n = epoll_wait(ep, ev, 8, 1000);
	CHECK(n == 1 && ev[0].data.u64 == 8, "re-armed by EPOLL_CTL_MOD: %d", n);
	udp_drain(&u);
}

TEST(del)
{
	CHECK(epoll_ctl(ep, EPOLL_CTL_DEL, u.rx, NULL) == 0, "EPOLL_CTL_DEL of the remote fd");
}

TEST(del_twice)
{
	int n = epoll_ctl(ep, EPOLL_CTL_DEL, u.rx, NULL), e = errno;

	CHECK(n == -1 && e == ENOENT, "second EPOLL_CTL_DEL: %d %s", n, strerror(e));
	/* back in the interest list for the cases below */
	add(ep, u.rx, EPOLLIN, 9);
}

static volatile sig_atomic_t got_sig;

static void on_sig(int sig)
{
	(void)sig;
	got_sig = 1;
}

/* A child that sends SIGUSR1 to this process 100 ms from now (process-directed). */
static pid_t sigusr1_later(void)
{
	pid_t child = fork();

	if (!child) {
		struct timespec d = { 0, 100000000 };

		nanosleep(&d, NULL);
		kill(getppid(), SIGUSR1);
		_exit(0);
	}
	return child;
}

/*
 * epoll_pwait's mask lets in a signal the thread blocks: a child sends it to
 * the process after 100 ms; the wait (a local and a remote fd, neither
 * ready) ends with EINTR once the handler ran, as the race-free idiom expects.
 */
TEST(pwait_mask)
{
	struct sigaction sa = { .sa_handler = on_sig };
	struct epoll_event ev[8];
	struct timespec t0, t1;
	sigset_t block, none;
	double el;
	pid_t child;
	int n, e;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&none);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, NULL);
	got_sig = 0;
	child = sigusr1_later();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	n = epoll_pwait(ep, ev, 8, 3000, &none);
	e = errno;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	el = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (child > 0)
		waitpid(child, NULL, 0);
	sigprocmask(SIG_UNBLOCK, &block, NULL);
	CHECK(n == -1 && e == EINTR && got_sig && el < 2.0,
	      "epoll_pwait mask lets a blocked signal in: %d %s, handler %s", n,
	      n < 0 ? strerror(e) : "no error", got_sig ? "ran" : "did not run");
}

/* A handler with SA_RESTART still ends epoll_wait with EINTR (signal(7)). */
TEST(sa_restart)
{
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = SA_RESTART };
	struct epoll_event ev[8];
	pid_t child;
	int n, e;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	got_sig = 0;
	child = sigusr1_later();
	n = epoll_wait(ep, ev, 8, 1500);
	e = errno;
	if (child > 0)
		waitpid(child, NULL, 0);
	CHECK(n == -1 && e == EINTR && got_sig, "epoll_wait + SA_RESTART signal: %d %s", n,
	      n < 0 ? strerror(e) : "no error");
}

/*
 * Edge-triggered remote fd: reported when data arrives, not again while it
 * lies unread; after the program read it all, the next arrival is reported.
 */
TEST(edge_triggered)
{
	struct epoll_event ev[8] = { { .events = EPOLLIN | EPOLLET, .data.u64 = 0xe7 } };
	int n1, n2, n3;

	udp_drain(&u);
	epoll_ctl(ep, EPOLL_CTL_MOD, u.rx, &ev[0]);
	fire(&u);
	n1 = epoll_wait(ep, ev, 8, 1000);
	n1 = n1 == 1 && ev[0].data.u64 == 0xe7 ? 1 : -n1 - 10;
	n2 = epoll_wait(ep, ev, 8, 100);
	udp_drain(&u);
	fire(&u);
	n3 = epoll_wait(ep, ev, 8, 1000);
	udp_drain(&u);
	CHECK(n1 == 1 && n2 == 0 && n3 == 1,
	      "EPOLLET remote fd: on arrival %d, again while unread %d, next arrival %d", n1, n2, n3);
	ev[0] = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 9 };
	epoll_ctl(ep, EPOLL_CTL_MOD, u.rx, &ev[0]);
}

/* Closed while registered: it leaves the interest list. */
TEST(closed_while_registered)
{
	struct epoll_event ev[8];
	int n;

	fire(&u);
	close(u.rx);
	n = epoll_wait(ep, ev, 8, 100);
	CHECK(n == 0, "remote fd closed while registered: not reported (%d)", n);
}

int main(void)
{
	const char *ip = getenv("WAIT_IP") ? getenv("WAIT_IP") : "127.0.0.1";

	if (pipe(p))
		ktap_exit_skip("pipe: %s", strerror(errno));
	if (udp_open(&u, ip))
		ktap_exit_skip("UDP socket on %s: %s", ip, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		ktap_exit_skip("epoll_create1: %s", strerror(errno));
	return ktap_run();
}
