// SPDX-License-Identifier: GPL-2.0
/* select/pselect6/poll/ppoll on local, remote and mixed sets: results, timeouts, errno, signals (run natively and under rsys). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"
#include "udp.h"

/*
 * "Remote" fds are AF_INET UDP sockets: under rsys-load run they live at the
 * delegate, natively they are ordinary sockets; "local" fds are pipes. The
 * driver (wait_test.sh) runs this program both ways; WAIT_RSYS=1 says which.
 */
static const char *ip;
static bool under_rsys;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void pipe_drain(int fd)
{
	char b[16];
	int fl = fcntl(fd, F_GETFL);

	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
	while (read(fd, b, sizeof(b)) > 0)
		;
	fcntl(fd, F_SETFL, fl);
}

/* A helper thread that does one thing after a delay. */
struct later {
	pthread_t t;
	int ms;
	int fd;			/* write a byte to it / close it */
	struct udp *u;		/* or fire a datagram */
	bool do_close;
	pid_t tid;		/* or signal this thread */
	int sig;
};

static void *later_fn(void *arg)
{
	struct later *l = arg;
	struct timespec ts = { l->ms / 1000, (l->ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	if (l->sig)
		syscall(SYS_tgkill, getpid(), l->tid, l->sig);
	else if (l->u)
		udp_fire(l->u);
	else if (l->do_close)
		close(l->fd);
	else if (write(l->fd, "x", 1) != 1)
		perror("later write");
	return NULL;
}

static void later_start(struct later *l)
{
	pthread_create(&l->t, NULL, later_fn, l);
}

static void later_join(struct later *l)
{
	pthread_join(l->t, NULL);
}

/*
 * A descriptor number that is certainly closed, whatever the caller left open
 * (a CI runner may hand us fd 200, say): the lowest free one from 100 up.
 */
static int closed_fd(void)
{
	int fd = fcntl(0, F_DUPFD, 100);

	if (fd < 0)
		return 100;
	close(fd);
	return fd;
}

static int maxfd(int a, int b)
{
	return (a > b ? a : b) + 1;
}

static volatile sig_atomic_t got_sig;

static void on_sig(int sig)
{
	(void)sig;
	got_sig = 1;
}

static void set_handler(int sig, int flags)
{
	struct sigaction sa = { .sa_handler = on_sig, .sa_flags = flags };

	sigemptyset(&sa.sa_mask);
	sigaction(sig, &sa, NULL);
}

/* The pipes, the remote UDP pair and a closed fd number, made by main() before the cases run. */
static struct udp u;
static int p[2], q[2], gone;

/* r = { local, remote } (p[0], u.rx) */
static int mixed_set(fd_set *r)
{
	FD_ZERO(r);
	FD_SET(p[0], r);
	FD_SET(u.rx, r);
	return maxfd(p[0], u.rx);
}

/* pf[0..1] = { local, remote }, both POLLIN */
static void mixed_poll(struct pollfd *pf)
{
	pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = u.rx, .events = POLLIN };
}

/* 1: only the local fd is ready */
TEST(select_local_ready)
{
	fd_set r;
	int n;

	write(p[1], "x", 1);
	n = select(mixed_set(&r), &r, NULL, NULL, NULL);
	CHECK(n == 1 && FD_ISSET(p[0], &r) && !FD_ISSET(u.rx, &r),
	      "select mixed, only local ready: %d", n);
	pipe_drain(p[0]);
}

/* 2: only the remote fd is ready */
TEST(select_remote_ready)
{
	fd_set r;
	int n;

	udp_fire(&u);
	usleep(20000);
	n = select(mixed_set(&r), &r, NULL, NULL, NULL);
	CHECK(n == 1 && !FD_ISSET(p[0], &r) && FD_ISSET(u.rx, &r),
	      "select mixed, only remote ready: %d", n);
}

/*
 * 3: both ready: Linux reports both. rsys polls the local half before
 * it sends the remote one, and a ready local half wins at once: only
 * the local fd (rsys-load(8), BUGS), unless an earlier wait's reply
 * showed the remote fd ready and no call on it started since.
 */
TEST(select_both_ready)
{
	socklen_t len = sizeof(int);
	int n, n2, type;
	fd_set r;

	write(p[1], "x", 1);
	udp_fire(&u);
	usleep(20000);
	/* a call on the socket: rsys forgets what it knew of its readiness */
	getsockopt(u.rx, SOL_SOCKET, SO_TYPE, &type, &len);
	n = select(mixed_set(&r), &r, NULL, NULL, NULL);
	if (under_rsys)
		CHECK(n == 1 && FD_ISSET(p[0], &r) && !FD_ISSET(u.rx, &r),
		      "select mixed, both ready: %d (the local half, polled first, wins)", n);
	else
		CHECK(n == 2 && FD_ISSET(p[0], &r) && FD_ISSET(u.rx, &r),
		      "select mixed, both ready: %d", n);
	/* once a wait of its own saw the remote fd ready, rsys reports both, as Linux */
	FD_ZERO(&r); FD_SET(u.rx, &r);
	select(u.rx + 1, &r, NULL, NULL, NULL);
	n2 = select(mixed_set(&r), &r, NULL, NULL, NULL);
	CHECK(n2 == 2 && FD_ISSET(p[0], &r) && FD_ISSET(u.rx, &r),
	      "select mixed, both ready, the remote fd known ready: %d", n2);
	pipe_drain(p[0]);
	udp_drain(&u);
}

/* 4: the local fd becomes ready during the wait; remaining time written back */
TEST(select_local_later)
{
	struct later l = { .ms = 100, .fd = p[1] };
	struct timeval tv = { 2, 0 };
	fd_set r;
	int n;

	later_start(&l);
	n = select(mixed_set(&r), &r, NULL, NULL, &tv);
	later_join(&l);
	CHECK(n == 1 && FD_ISSET(p[0], &r) && !FD_ISSET(u.rx, &r),
	      "select mixed, local becomes ready: %d", n);
	CHECK(tv.tv_sec == 1 && tv.tv_usec > 500000, "select writes back the time left: %ld.%06ld",
	      (long)tv.tv_sec, (long)tv.tv_usec);
	pipe_drain(p[0]);
}

/* 5: the remote fd becomes ready during the wait */
TEST(select_remote_later)
{
	struct later l = { .ms = 100, .u = &u };
	struct timeval tv = { 2, 0 };
	fd_set r;
	int n;

	later_start(&l);
	n = select(mixed_set(&r), &r, NULL, NULL, &tv);
	later_join(&l);
	CHECK(n == 1 && !FD_ISSET(p[0], &r) && FD_ISSET(u.rx, &r) && tv.tv_sec == 1,
	      "select mixed, remote becomes ready: %d, %ld s left", n, (long)tv.tv_sec);
	udp_drain(&u);
}

/* 6: nothing becomes ready: timeout, sets cleared, no time left */
TEST(select_timeout)
{
	struct timeval tv = { 0, 200000 };
	double t0, el;
	fd_set r;
	int n;

	t0 = now();
	n = select(mixed_set(&r), &r, NULL, NULL, &tv);
	el = now() - t0;
	CHECK(n == 0 && !FD_ISSET(p[0], &r) && !FD_ISSET(u.rx, &r) && !tv.tv_sec &&
	      !tv.tv_usec && el > 0.19 && el < 1.0,
	      "select mixed timeout: %d after %.3f s, %ld.%06ld left", n, el,
	      (long)tv.tv_sec, (long)tv.tv_usec);
}

/* 7: zero timeout polls once, both halves */
TEST(select_zero_timeout)
{
	struct timeval tv = { 0, 0 };
	fd_set r, w;
	int n;

	udp_fire(&u);
	usleep(20000);
	mixed_set(&r);
	FD_ZERO(&w); FD_SET(p[1], &w);
	n = select(maxfd(p[1], u.rx), &r, &w, NULL, &tv);
	CHECK(n == 2 && FD_ISSET(u.rx, &r) && FD_ISSET(p[1], &w) && !FD_ISSET(p[0], &r),
	      "select mixed, zero timeout, read remote + write local: %d", n);
	udp_drain(&u);
}

/* 8: all remote: write side ready, read side not */
TEST(select_all_remote)
{
	fd_set r, w;
	int n;

	FD_ZERO(&r); FD_SET(u.rx, &r);
	FD_ZERO(&w); FD_SET(u.tx, &w);
	n = select(maxfd(u.rx, u.tx), &r, &w, NULL, NULL);
	CHECK(n == 1 && FD_ISSET(u.tx, &w) && !FD_ISSET(u.rx, &r), "select all remote: %d", n);
}

/*
 * Readiness rsys knows must not outlive the calls that take it away: a
 * datagram makes the remote fd readable (the same answer twice, the second
 * from what the monitor knows); once read, it is not, with or without a
 * local fd beside it; a second datagram makes it readable again.
 */
TEST(select_remote_read_away)
{
	struct timeval tv = { 0, 0 };
	int n1, n2, n3, n4, n5;
	fd_set r;

	pipe_drain(p[0]);
	udp_drain(&u);
	udp_fire(&u);
	usleep(20000);
	FD_ZERO(&r); FD_SET(u.rx, &r);
	n1 = select(u.rx + 1, &r, NULL, NULL, NULL);
	FD_ZERO(&r); FD_SET(u.rx, &r);
	n2 = select(u.rx + 1, &r, NULL, NULL, NULL);
	udp_drain(&u);
	FD_ZERO(&r); FD_SET(u.rx, &r);
	n3 = select(u.rx + 1, &r, NULL, NULL, &tv);
	tv = (struct timeval){ 0, 0 };
	n4 = select(mixed_set(&r), &r, NULL, NULL, &tv);
	udp_fire(&u);
	usleep(20000);
	FD_ZERO(&r); FD_SET(u.rx, &r);
	tv = (struct timeval){ 0, 0 };
	n5 = select(u.rx + 1, &r, NULL, NULL, &tv);
	udp_drain(&u);
	CHECK(n1 == 1 && n2 == 1 && n3 == 0 && n4 == 0 && n5 == 1,
	      "select readable, again, after reading (alone, mixed), after a new datagram: %d %d %d %d %d (want 1 1 0 0 1)",
	      n1, n2, n3, n4, n5);
}

/* 9: EBADF for a closed fd in a mixed set (a timeout so that a miss fails, not hangs) */
TEST(select_ebadf)
{
	struct timeval tv = { 1, 0 };
	fd_set r;
	int n, e;

	FD_ZERO(&r); FD_SET(u.rx, &r); FD_SET(q[0], &r); FD_SET(gone, &r);
	n = select(gone + 1, &r, NULL, NULL, &tv);
	e = errno;
	CHECK(n == -1 && e == EBADF, "select mixed with a closed fd: %d %s", n, strerror(e));
}

/* 10: EINVAL for a negative timeout */
TEST(select_einval)
{
	struct timeval tv = { -1, 0 };
	fd_set r;
	int n, e;

	FD_ZERO(&r); FD_SET(u.rx, &r); FD_SET(q[0], &r);
	n = select(maxfd(u.rx, q[0]), &r, NULL, NULL, &tv);
	e = errno;
	CHECK(n == -1 && e == EINVAL, "select negative timeout: %d %s", n, strerror(e));
}

/* 11: EFAULT for an unreadable timeout (the sets are fine) */
TEST(select_efault)
{
	fd_set r;
	int n, e;

	FD_ZERO(&r); FD_SET(u.rx, &r); FD_SET(q[0], &r);
	n = syscall(SYS_select, maxfd(u.rx, q[0]), &r, NULL, NULL, (void *)8);
	e = errno;
	CHECK(n == -1 && e == EFAULT, "select bad timeout pointer: %d %s", n, strerror(e));
}

/* 12: raw pselect6 writes the time left back too (glibc hides it) */
TEST(pselect6_local_later)
{
	struct later l = { .ms = 100, .fd = p[1] };
	struct timespec ts = { 2, 0 };
	fd_set r;
	int n;

	later_start(&l);
	n = syscall(SYS_pselect6, mixed_set(&r), &r, NULL, NULL, &ts, NULL);
	later_join(&l);
	CHECK(n == 1 && FD_ISSET(p[0], &r) && ts.tv_sec == 1,
	      "pselect6 mixed, local ready later: %d, %ld s left", n, (long)ts.tv_sec);
	pipe_drain(p[0]);
}

/* 13: pselect6 with a bad sigset size */
TEST(pselect6_sigsetsize)
{
	struct timespec ts = { 0, 1000000 };
	sigset_t ss;
	struct { sigset_t *p; size_t size; } pack = { &ss, 7 };
	fd_set r;
	int n, e;

	sigemptyset(&ss);
	n = syscall(SYS_pselect6, mixed_set(&r), &r, NULL, NULL, &ts, &pack);
	e = errno;
	CHECK(n == -1 && e == EINVAL, "pselect6 sigset size 7: %d %s", n, strerror(e));
}

/* 14: poll mixed, only local ready; remote entry's revents cleared */
TEST(poll_local_ready)
{
	struct pollfd pf[3];
	int n;

	write(p[1], "x", 1);
	pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN, .revents = 0x7 };
	pf[1] = (struct pollfd){ .fd = u.rx, .events = POLLIN, .revents = 0x7 };
	pf[2] = (struct pollfd){ .fd = -1, .events = POLLIN, .revents = 0x7 };
	n = poll(pf, 3, -1);
	CHECK(n == 1 && pf[0].revents == POLLIN && !pf[1].revents && !pf[2].revents,
	      "poll mixed, only local ready: %d %#x %#x %#x", n, pf[0].revents, pf[1].revents,
	      pf[2].revents);
	pipe_drain(p[0]);
}

/* 15: poll mixed, remote becomes ready */
TEST(poll_remote_later)
{
	struct later l = { .ms = 100, .u = &u };
	struct pollfd pf[2];
	int n;

	later_start(&l);
	mixed_poll(pf);
	n = poll(pf, 2, 2000);
	later_join(&l);
	CHECK(n == 1 && !pf[0].revents && pf[1].revents == POLLIN,
	      "poll mixed, remote becomes ready: %d %#x %#x", n, pf[0].revents, pf[1].revents);
	udp_drain(&u);
}

/* 16: poll mixed timeout */
TEST(poll_timeout)
{
	struct pollfd pf[2];
	double t0, el;
	int n;

	mixed_poll(pf);
	t0 = now();
	n = poll(pf, 2, 150);
	el = now() - t0;
	CHECK(n == 0 && !pf[0].revents && !pf[1].revents && el > 0.14 && el < 1.0,
	      "poll mixed timeout: %d after %.3f s", n, el);
}

/* 17: POLLNVAL for a closed fd next to a remote one */
TEST(poll_pollnval)
{
	struct pollfd pf[2];
	int n;

	pf[0] = (struct pollfd){ .fd = gone, .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = u.rx, .events = POLLIN };
	n = poll(pf, 2, 1000);
	CHECK(n == 1 && pf[0].revents == POLLNVAL && !pf[1].revents,
	      "poll mixed, closed fd: %d %#x %#x", n, pf[0].revents, pf[1].revents);
}

/* 18: POLLHUP of a local pipe whose writer is gone, next to a remote fd */
TEST(poll_pollhup)
{
	struct pollfd pf[2];
	int h[2], n;

	if (pipe(h))
		REQUIRE(false, "pipe: %s", strerror(errno));
	close(h[1]);
	pf[0] = (struct pollfd){ .fd = h[0], .events = POLLIN };
	pf[1] = (struct pollfd){ .fd = u.rx, .events = POLLIN };
	n = poll(pf, 2, 1000);
	CHECK(n == 1 && (pf[0].revents & POLLHUP) && !pf[1].revents,
	      "poll mixed, POLLHUP: %d %#x %#x", n, pf[0].revents, pf[1].revents);
	close(h[0]);
}

/* 19: ppoll writes the time left back */
TEST(ppoll_remote_later)
{
	struct later l = { .ms = 100, .u = &u };
	struct timespec ts = { 2, 0 };
	struct pollfd pf[2];
	int n;

	later_start(&l);
	mixed_poll(pf);
	n = syscall(SYS_ppoll, pf, 2, &ts, NULL, 8);
	later_join(&l);
	CHECK(n == 1 && pf[1].revents == POLLIN && ts.tv_sec == 1,
	      "ppoll mixed, remote ready later: %d, %ld s left", n, (long)ts.tv_sec);
	udp_drain(&u);
}

/* SIGUSR1 to this thread in 100 ms (@l, to be joined). */
static void sigusr1_later(struct later *l)
{
	got_sig = 0;
	*l = (struct later){ .ms = 100, .tid = gettid(), .sig = SIGUSR1 };
	later_start(l);
}

/* 20: a signal with a handler (no SA_RESTART) interrupts a mixed select: EINTR */
TEST(select_signal)
{
	struct timeval tv = { 1, 0 };
	struct later l;
	fd_set r;
	int n, e;

	set_handler(SIGUSR1, 0);
	sigusr1_later(&l);
	n = select(mixed_set(&r), &r, NULL, NULL, &tv);
	e = errno;
	later_join(&l);
	CHECK(n == -1 && e == EINTR && got_sig, "select mixed + signal: %d %s", n,
	      n < 0 ? strerror(e) : "no error");
}

/*
 * 21: with SA_RESTART Linux's select still fails with EINTR. Under rsys
 * the kernel restarts the seccomp notification the signal interrupted;
 * the monitor learns from BPF (rsys_signal_deliver) that this is such a
 * restart and answers EINTR with the time left, as Linux.
 */
TEST(select_sa_restart)
{
	struct timeval tv = { 1, 500000 };
	struct later l;
	fd_set r;
	int n, e;

	set_handler(SIGUSR1, SA_RESTART);
	sigusr1_later(&l);
	n = select(mixed_set(&r), &r, NULL, NULL, &tv);
	e = errno;
	later_join(&l);
	CHECK(n == -1 && e == EINTR && got_sig && tv.tv_sec == 1,
	      "select mixed + SA_RESTART signal: %d %s, %ld s left", n,
	      n < 0 ? strerror(e) : "no error", (long)tv.tv_sec);
}

/* 21b: the same for poll */
TEST(poll_sa_restart)
{
	struct pollfd pf[2];
	struct later l;
	int n, e;

	set_handler(SIGUSR1, SA_RESTART);
	sigusr1_later(&l);
	mixed_poll(pf);
	n = poll(pf, 2, 1500);
	e = errno;
	later_join(&l);
	CHECK(n == -1 && e == EINTR && got_sig, "poll mixed + SA_RESTART signal: %d %s", n,
	      n < 0 ? strerror(e) : "no error");
}

/* 22: poll interrupted: EINTR */
TEST(poll_signal)
{
	struct pollfd pf[2];
	struct later l;
	int n, e;

	set_handler(SIGUSR1, 0);
	sigusr1_later(&l);
	mixed_poll(pf);
	n = poll(pf, 2, 1000);
	e = errno;
	later_join(&l);
	CHECK(n == -1 && e == EINTR && got_sig, "poll mixed + signal: %d %s", n,
	      n < 0 ? strerror(e) : "no error");
}

/*
 * 30, 31: pselect6 and ppoll whose mask lets in a signal the thread
 * blocks (the race-free idiom): EINTR once the handler ran, the time
 * left written back.
 */
static void sigusr1_block(int how)
{
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(how, &block, NULL);
}

TEST(pselect6_mask)
{
	struct timespec ts = { 2, 0 };
	sigset_t none;
	struct { sigset_t *p; size_t size; } pack = { &none, 8 };
	struct later l;
	fd_set r;
	int n, e;

	set_handler(SIGUSR1, 0);
	sigemptyset(&none);
	sigusr1_block(SIG_BLOCK);
	sigusr1_later(&l);
	n = syscall(SYS_pselect6, mixed_set(&r), &r, NULL, NULL, &ts, &pack);
	e = errno;
	later_join(&l);
	sigusr1_block(SIG_UNBLOCK);
	CHECK(n == -1 && e == EINTR && got_sig && ts.tv_sec == 1,
	      "pselect6 mask lets a blocked signal in: %d %s, handler %s, %ld s left", n,
	      n < 0 ? strerror(e) : "no error", got_sig ? "ran" : "did not run", (long)ts.tv_sec);
}

TEST(ppoll_mask)
{
	struct timespec ts = { 2, 0 };
	struct pollfd pf[2];
	struct later l;
	sigset_t none;
	int n, e;

	set_handler(SIGUSR1, 0);
	sigemptyset(&none);
	sigusr1_block(SIG_BLOCK);
	sigusr1_later(&l);
	mixed_poll(pf);
	n = syscall(SYS_ppoll, pf, 2, &ts, &none, 8);	/* glibc's ppoll hides the time left */
	e = errno;
	later_join(&l);
	sigusr1_block(SIG_UNBLOCK);
	CHECK(n == -1 && e == EINTR && got_sig && ts.tv_sec == 1,
	      "ppoll mask lets a blocked signal in: %d %s, handler %s, %ld s left", n,
	      n < 0 ? strerror(e) : "no error", got_sig ? "ran" : "did not run", (long)ts.tv_sec);
}

/* 23: another thread closes the local fd during the wait: its bit is set at the timeout (POLLNVAL) */
TEST(select_local_closed)
{
	struct timeval tv = { 0, 400000 };
	struct later l;
	fd_set r;
	int c[2], n;

	if (pipe(c))
		REQUIRE(false, "pipe: %s", strerror(errno));
	l = (struct later){ .ms = 100, .fd = c[0], .do_close = true };
	later_start(&l);
	FD_ZERO(&r); FD_SET(c[0], &r); FD_SET(u.rx, &r);
	n = select(maxfd(c[0], u.rx), &r, NULL, NULL, &tv);
	later_join(&l);
	CHECK(n == 1 && FD_ISSET(c[0], &r), "select mixed, local fd closed by another thread: %d, bit %d",
	      n, FD_ISSET(c[0], &r));
	close(c[1]);
}

/* 24: ... and the remote one */
TEST(select_remote_closed)
{
	struct timeval tv = { 0, 400000 };
	struct later l;
	struct udp v;
	fd_set r;
	int n;

	if (udp_open(&v, ip))
		REQUIRE(false, "UDP socket on %s: %s", ip, strerror(errno));
	l = (struct later){ .ms = 100, .fd = v.rx, .do_close = true };
	later_start(&l);
	FD_ZERO(&r); FD_SET(p[0], &r); FD_SET(v.rx, &r);
	n = select(maxfd(p[0], v.rx), &r, NULL, NULL, &tv);
	later_join(&l);
	CHECK(n == 1 && FD_ISSET(v.rx, &r), "select mixed, remote fd closed by another thread: %d", n);
	close(v.tx);
}

/* 26: nfds = FD_SETSIZE */
TEST(select_fd_setsize)
{
	fd_set r;
	int n;

	write(p[1], "x", 1);
	mixed_set(&r);
	n = select(FD_SETSIZE, &r, NULL, NULL, NULL);
	CHECK(n == 1 && FD_ISSET(p[0], &r) && !FD_ISSET(u.rx, &r),
	      "select mixed, nfds FD_SETSIZE: %d", n);
	pipe_drain(p[0]);
}

/* 27: a long poll array: the remote entry last, many local ones, one ready */
TEST(poll_300_entries)
{
	struct pollfd big[300];
	int i, n, bad = 0;

	for (i = 0; i < 299; i++)
		big[i] = (struct pollfd){ .fd = i == 150 ? p[1] : p[0], .events = i == 150 ? POLLOUT : POLLIN };
	big[299] = (struct pollfd){ .fd = u.rx, .events = POLLIN };
	n = poll(big, 300, 1000);
	for (i = 0; i < 300; i++)
		bad += (big[i].revents != 0) != (i == 150);
	CHECK(n == 1 && !bad && big[150].revents == POLLOUT, "poll mixed, 300 entries: %d", n);
}

/* 28: POLLHUP from a remote TCP socket whose peer closed (the world's echo server) */
TEST(poll_remote_pollhup)
{
	struct sockaddr_in echo = { .sin_family = AF_INET, .sin_port = htons(7) };
	struct pollfd pf[2];
	int t, n;

	if (!getenv("WAIT_ECHO"))
		SKIP_CASE("WAIT_ECHO (a TCP echo server) not set");
	t = socket(AF_INET, SOCK_STREAM, 0);
	inet_pton(AF_INET, getenv("WAIT_ECHO"), &echo.sin_addr);
	if (t < 0 || connect(t, (struct sockaddr *)&echo, sizeof(echo)) || shutdown(t, SHUT_WR)) {
		CHECK(false, "connect to the echo server: %s", strerror(errno));
	} else {
		pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = t, .events = POLLIN | POLLRDHUP };
		n = poll(pf, 2, 5000);
		CHECK(n == 1 && !pf[0].revents && pf[1].revents == (POLLIN | POLLRDHUP | POLLHUP),
		      "poll mixed, remote POLLHUP: %d %#x %#x", n, pf[0].revents, pf[1].revents);
	}
	close(t);
}

/* 29: POLLERR from a remote UDP socket connected to a closed port */
TEST(poll_remote_pollerr)
{
	struct sockaddr_in none = u.addr;
	int e2 = socket(AF_INET, SOCK_DGRAM, 0);
	struct pollfd pf[2];
	int n;

	none.sin_port = htons(9);	/* discard: nobody listens here */
	if (e2 < 0 || connect(e2, (struct sockaddr *)&none, sizeof(none)) || send(e2, "x", 1, 0) != 1) {
		CHECK(false, "UDP to a closed port: %s", strerror(errno));
	} else {
		pf[0] = (struct pollfd){ .fd = p[0], .events = POLLIN };
		pf[1] = (struct pollfd){ .fd = e2, .events = POLLIN };
		n = poll(pf, 2, 5000);
		CHECK(n == 1 && !pf[0].revents && (pf[1].revents & POLLERR),
		      "poll mixed, remote POLLERR: %d %#x %#x", n, pf[0].revents, pf[1].revents);
	}
	close(e2);
}

int main(void)
{
	ip = getenv("WAIT_IP") ? getenv("WAIT_IP") : "127.0.0.1";
	under_rsys = getenv("WAIT_RSYS") && !strcmp(getenv("WAIT_RSYS"), "1");
	if (pipe(p) || pipe(q))
		ktap_exit_skip("pipe: %s", strerror(errno));
	if (udp_open(&u, ip))
		ktap_exit_skip("UDP socket on %s: %s", ip, strerror(errno));
	gone = closed_fd();
	return ktap_run();
}
