// SPDX-License-Identifier: GPL-2.0
/* epoll interest lists with local and remote fds: level, one-shot, user data, errors, fd closed while registered, changes by another thread during a wait. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
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

/*
 * Another thread changes the interest list while this one waits: Linux's
 * wait sees each change at once. A waiter thread runs epoll_wait (4 s) on
 * @ep; the case changes the list after 200 ms and makes its fd ready.
 */
struct waiter {
	pthread_t t;
	int ep, n;
	struct epoll_event ev[8];
	double took;		/* seconds in epoll_wait */
};

static double mono(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static void *waiter_main(void *arg)
{
	struct waiter *w = arg;
	double t0 = mono();

	w->n = epoll_wait(w->ep, w->ev, 8, 4000);
	w->took = mono() - t0;
	return NULL;
}

static void waiter_start(struct waiter *w, int ep)
{
	struct timespec d = { 0, 200000000 };

	w->ep = ep;
	pthread_create(&w->t, NULL, waiter_main, w);
	nanosleep(&d, NULL);	/* it is waiting by now */
}

/* The waiter returned the one event @data within 2 s (a missed change waits 4 s). */
static bool waiter_saw(struct waiter *w, uint64_t data)
{
	pthread_join(w->t, NULL);
	return w->n == 1 && w->ev[0].data.u64 == data && w->took < 2.0;
}

static const char *wait_ip(void)
{
	return getenv("WAIT_IP") ? getenv("WAIT_IP") : "127.0.0.1";
}

/* A new instance and a remote UDP pair, @v.rx registered with @events and @data. */
static int instance_with(struct udp *v, uint32_t events, uint64_t data)
{
	int e = epoll_create1(EPOLL_CLOEXEC);

	if (e < 0 || udp_open(v, wait_ip()) || add(e, v->rx, events, data))
		ktap_exit_fail("setup: %s", strerror(errno));
	return e;
}

static void udp_close(struct udp *u)
{
	close(u->rx);
	close(u->tx);
}

/* What the waiter got, for the CHECK lines. */
#define SEEN(w) (w).n, (unsigned long long)(w).ev[0].data.u64, (w).took

/* An instance that had only a local fd: the first remote one comes while a wait is on. */
TEST(thread_adds_first_remote)
{
	struct waiter w;
	struct udp v;
	int e = epoll_create1(EPOLL_CLOEXEC);

	if (e < 0 || udp_open(&v, wait_ip()) || add(e, p[0], EPOLLIN, 1))
		ktap_exit_fail("setup: %s", strerror(errno));
	waiter_start(&w, e);
	add(e, v.rx, EPOLLIN, 0xadd1);
	fire(&v);
	CHECK(waiter_saw(&w, 0xadd1),
	      "remote fd added by another thread during a wait: %d event(s), data %#llx, after %.2f s",
	      SEEN(w));
	close(e);
	udp_close(&v);
}

/* An instance waiting for a remote fd: another remote fd added meanwhile is watched too. */
TEST(thread_adds_second_remote)
{
	struct waiter w;
	struct udp v, x;
	int e = instance_with(&v, EPOLLIN, 1);

	if (udp_open(&x, wait_ip()))
		ktap_exit_fail("setup: %s", strerror(errno));
	waiter_start(&w, e);
	add(e, x.rx, EPOLLIN, 0xadd2);
	fire(&x);
	CHECK(waiter_saw(&w, 0xadd2),
	      "second remote fd added during a wait: %d event(s), data %#llx, after %.2f s", SEEN(w));
	close(e);
	udp_close(&v);
	udp_close(&x);
}

/* A one-shot registration that fired is re-armed by another thread (EPOLL_CTL_MOD). */
TEST(thread_rearms_oneshot)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLONESHOT, .data.u64 = 0x0f };
	struct waiter w;
	struct udp v;
	int e = instance_with(&v, ev.events, 0x0e), n;

	fire(&v);
	n = epoll_wait(e, w.ev, 8, 1000);	/* fires once, then disabled */
	waiter_start(&w, e);
	epoll_ctl(e, EPOLL_CTL_MOD, v.rx, &ev);
	CHECK(n == 1 && waiter_saw(&w, 0x0f),
	      "one-shot fired (%d), re-armed by another thread during a wait: %d event(s), data %#llx, after %.2f s",
	      n, SEEN(w));
	close(e);
	udp_close(&v);
}

/* An edge-triggered registration that fired: another thread reads it all, then more arrives. */
TEST(thread_reads_edge)
{
	struct waiter w;
	struct udp v;
	int e = instance_with(&v, EPOLLIN | EPOLLET, 0xed), n;

	fire(&v);
	n = epoll_wait(e, w.ev, 8, 1000);
	waiter_start(&w, e);
	udp_drain(&v);
	fire(&v);
	CHECK(n == 1 && waiter_saw(&w, 0xed),
	      "edge-triggered fd read by another thread, new arrival during a wait: %d event(s), data %#llx, after %.2f s",
	      SEEN(w));
	close(e);
	udp_close(&v);
}

/* Deleted by another thread during a wait: its arrival is not reported, the wait times out. */
TEST(thread_deletes)
{
	struct waiter w;
	struct udp v;
	int e = instance_with(&v, EPOLLIN, 0xde1);

	waiter_start(&w, e);
	epoll_ctl(e, EPOLL_CTL_DEL, v.rx, NULL);
	fire(&v);
	pthread_join(w.t, NULL);
	CHECK(w.n == 0 && w.took > 3.5,
	      "remote fd deleted during a wait: %d event(s) after %.2f s (timeout 4 s)", w.n, w.took);
	close(e);
	udp_close(&v);
}

/*
 * EPOLLET while signals keep ending the wait (an SA_RESTART handler, as Go's
 * preemption signal): every arrival is reported, also when a signal ended
 * the wait that first saw it. A storm thread signals this one every 50 us;
 * each round waits 1 ms with nothing ready, sends a datagram and waits
 * for it (1 s at most, again after EINTR). Under rsys a signal can end the wait after the monitor took the
 * event and before its answer reached the thread: an edge noted as
 * reported there would be silent for good.
 */
static pthread_t storm_target;
static volatile int storm_stop;

static void *storm_main(void *arg)
{
	struct timespec d = { 0, 50000 };

	(void)arg;
	while (!storm_stop) {
		pthread_kill(storm_target, SIGUSR2);
		nanosleep(&d, NULL);
	}
	return NULL;
}

/*
 * One storm of rounds on @e: @fire makes fd @fd (registered EPOLLET with
 * data @data) readable, @drain reads it all. The index of the first round
 * whose arrival was never reported (-1: none); *@intr counts the EINTRs,
 * *@odd other results.
 */
static int storm_rounds(int e, uint64_t data, void (*fire)(void *), void (*drain)(void *),
			void *arg, int *intr, int *odd)
{
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = SA_RESTART };
	struct epoll_event ev[8];
	int n, round, lost = -1;
	pthread_t t;
	double end;

	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR2, &sa, NULL);
	storm_target = pthread_self();
	storm_stop = 0;
	*intr = *odd = 0;
	if (pthread_create(&t, NULL, storm_main, NULL))
		ktap_exit_fail("pthread_create: %s", strerror(errno));
	for (round = 0; round < 300 && lost < 0; round++) {
		/* nothing ready yet: a wait the storm ends, natively too */
		if (epoll_wait(e, ev, 8, 1) < 0 && errno == EINTR)
			(*intr)++;
		fire(arg);
		for (end = mono() + 1.0, n = 0; n != 1 && mono() < end;) {
			n = epoll_wait(e, ev, 8, 100);
			if (n < 0 && errno == EINTR)
				(*intr)++;
			else if (n < 0 || n > 1 || (n == 1 && ev[0].data.u64 != data))
				(*odd)++;
		}
		if (n != 1)
			lost = round;
		drain(arg);
	}
	storm_stop = 1;
	pthread_join(t, NULL);
	signal(SIGUSR2, SIG_DFL);
	return lost;
}

static void udp_fire_cb(void *u)
{
	udp_fire(u);
}

static void udp_drain_cb(void *u)
{
	udp_drain(u);
}

static void pipe_fire_cb(void *fds)
{
	if (write(((int *)fds)[1], "x", 1) != 1)
		ktap_exit_fail("pipe write: %s", strerror(errno));
}

static void pipe_drain_cb(void *fds)
{
	char b[16];

	while (read(((int *)fds)[0], b, sizeof(b)) > 0)
		;
}

TEST(edge_signal_storm)
{
	int intr, odd, lost;
	struct udp v;
	int e = instance_with(&v, EPOLLIN | EPOLLET, 0x5e);

	lost = storm_rounds(e, 0x5e, udp_fire_cb, udp_drain_cb, &v, &intr, &odd);
	CHECK(lost < 0 && !odd && intr > 0,
	      "EPOLLET remote fd, waits ended by signals: arrival lost in round %d (-1: none of 300), %d EINTR, %d odd results",
	      lost, intr, odd);
	close(e);
	udp_close(&v);
}

/* The same for a local fd (a pipe) in an instance that also holds an idle remote one. */
TEST(edge_signal_storm_local)
{
	int intr, odd, lost, q[2];
	struct udp v;
	int e = instance_with(&v, EPOLLIN, 0x1d);

	if (pipe2(q, O_NONBLOCK) || add(e, q[0], EPOLLIN | EPOLLET, 0x5f))
		ktap_exit_fail("setup: %s", strerror(errno));
	lost = storm_rounds(e, 0x5f, pipe_fire_cb, pipe_drain_cb, q, &intr, &odd);
	CHECK(lost < 0 && !odd && intr > 0,
	      "EPOLLET local fd beside a remote one, waits ended by signals: arrival lost in round %d (-1: none of 300), %d EINTR, %d odd results",
	      lost, intr, odd);
	close(e);
	close(q[0]);
	close(q[1]);
	udp_close(&v);
}

int main(void)
{
	const char *ip = wait_ip();

	if (pipe(p))
		ktap_exit_skip("pipe: %s", strerror(errno));
	if (udp_open(&u, ip))
		ktap_exit_skip("UDP socket on %s: %s", ip, strerror(errno));
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		ktap_exit_skip("epoll_create1: %s", strerror(errno));
	return ktap_run();
}
