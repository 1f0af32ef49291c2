// SPDX-License-Identifier: GPL-2.0
/* 16 threads in blocking receives on TCP sockets, with senders, signals, timeouts and shutdowns: no data lost or twice, no hang. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"

/*
 * Environment: STRESS_IP, the address to listen on (both ends of every
 * connection are this program's: under rsys both are remote sockets);
 * STRESS_SECONDS, how long the senders send (default 8).
 *
 * Receiver thread i reads connection i until EOF in one of four ways
 * (i % MODES): recv; recv on a socket with SO_RCVTIMEO (EAGAIN: again);
 * poll with a timeout, then read; readv into two pieces. Every STRESS_IDLE
 * receives it blocks in recv on its idle connection, which nobody writes
 * to, until the canceller thread shuts it down (recv must then return 0),
 * and makes a new idle connection. Sender thread i writes connection i in
 * pieces of random size and pace, then shuts it down. The signaller sends
 * SIGUSR1 (SA_RESTART) and SIGUSR2 (no SA_RESTART) to random receivers
 * every few milliseconds. The stream of connection i is pattern(i, offset):
 * a byte lost or received twice shifts it.
 */
#define NRX		16
#define MODES		4
#define MAX_PIECE	16384
#define STRESS_IDLE	64
#define SIGNAL_MIN_US	1000
#define SIGNAL_SPAN_US	3000
#define HANG_S		60	/* after the senders stop: longer means a thread hangs */

enum mode { M_RECV, M_RCVTIMEO, M_POLL, M_READV };
static const char *const mode_name[MODES] = { "recv", "recv+SO_RCVTIMEO", "poll+read", "readv" };

struct conn {
	int idx;
	int rx, tx;			/* the receiving and the sending end */
	int lfd;			/* this receiver's listener for idle connections */
	pthread_mutex_t idle_lock;
	int idle, idle_peer;		/* under idle_lock: the idle connection, -1 when none */
	bool idle_blocked;		/* under idle_lock: the receiver is (about to be) in recv on it */
	uint64_t sent, got;
	uint64_t bad_at;		/* first offset with a wrong byte, UINT64_MAX if none */
	unsigned long eintr, timeouts, shutdowns, idle_errors, errors;
	int last_err;
	bool done;			/* under idle_lock: the receiver has returned */
	pthread_t rx_th, tx_th;
};

static struct conn conns[NRX];
static struct sockaddr_in addr;
static atomic_bool senders_stop, all_stop;
static atomic_ulong signals_sent;
static _Atomic int idle_pending;
static sigset_t storm_set;		/* SIGUSR1, SIGUSR2 */

static inline unsigned char pattern(int i, uint64_t off)
{
	return (unsigned char)(off * 131 + (off >> 8) + i * 7);
}

static void on_signal(int sig)
{
	(void)sig;
}

/* The next pseudo-random number of the thread's own state. */
static unsigned int rnd(unsigned int *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static int listener(void)
{
	struct sockaddr_in a = addr;
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_port = 0;
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, NRX) ||
	    getsockname(l, (struct sockaddr *)&a, &len)) {
		if (l >= 0)
			close(l);
		return -1;
	}
	return l;
}

/* A connection to the listener @l: the connecting end in *@c, the accepted one in *@s. */
static int connect_pair(int l, int *c, int *s)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	*s = -1;
	*c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*c < 0 || getsockname(l, (struct sockaddr *)&a, &len))
		return -1;
	while (connect(*c, (struct sockaddr *)&a, sizeof(a)))
		if (errno != EINTR)
			return -1;
	do
		*s = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	while (*s < 0 && errno == EINTR);
	return *s < 0 ? -1 : 0;
}

/* Check @n received bytes at @b against the stream of @c. */
static void check_bytes(struct conn *c, const unsigned char *b, size_t n)
{
	size_t k;

	for (k = 0; k < n && c->bad_at == UINT64_MAX; k++)
		if (b[k] != pattern(c->idx, c->got + k))
			c->bad_at = c->got + k;
	c->got += n;
}

/*
 * Block in recv on the idle connection until the canceller shuts it down:
 * 0 is the only right answer (EINTR: again). Then a new idle connection.
 */
static void idle_wait(struct conn *c)
{
	sigset_t old;
	char b;
	ssize_t n;

	pthread_mutex_lock(&c->idle_lock);
	c->idle_blocked = true;
	pthread_mutex_unlock(&c->idle_lock);
	atomic_fetch_add(&idle_pending, 1);
	do
		n = recv(c->idle, &b, 1, 0);
	while (n < 0 && errno == EINTR && ++c->eintr);
	pthread_mutex_lock(&c->idle_lock);
	if (c->idle_blocked) {
		/* not shut down: nothing may have ended the recv */
		c->idle_blocked = false;
		atomic_fetch_sub(&idle_pending, 1);
		c->idle_errors++;
	}
	if (n != 0) {
		c->idle_errors++;
		c->last_err = n < 0 ? errno : 0;
	}
	close(c->idle);
	close(c->idle_peer);
	/* a connect that a signal interrupts goes on in the background: no signal here */
	pthread_sigmask(SIG_BLOCK, &storm_set, &old);
	if (connect_pair(c->lfd, &c->idle, &c->idle_peer)) {
		c->idle_errors++;
		c->last_err = errno;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_mutex_unlock(&c->idle_lock);
	c->shutdowns++;
}

/* From now on the storm leaves @c's receiver alone (it may be joined and gone). */
static void rx_end(struct conn *c)
{
	pthread_mutex_lock(&c->idle_lock);
	c->done = true;
	pthread_mutex_unlock(&c->idle_lock);
}

static void *rx_fn(void *arg)
{
	struct conn *c = arg;
	enum mode m = c->idx % MODES;
	unsigned char buf[2 * MAX_PIECE];
	struct pollfd p = { .fd = c->rx, .events = POLLIN };
	struct iovec iov[2] = { { buf, 1000 }, { buf + 1000, sizeof(buf) - 1000 } };
	unsigned long calls = 0;
	ssize_t n;

	for (;;) {
		if (++calls % STRESS_IDLE == 0 && !atomic_load(&senders_stop))
			idle_wait(c);
		switch (m) {
		case M_POLL:
			n = poll(&p, 1, 25);
			if (n <= 0) {
				if (n < 0 && errno != EINTR)
					goto err;
				c->timeouts += n == 0;
				c->eintr += n < 0;
				continue;
			}
			n = read(c->rx, buf, sizeof(buf));
			break;
		case M_READV:
			n = readv(c->rx, iov, 2);
			break;
		default:
			n = recv(c->rx, buf, sizeof(buf), 0);
		}
		if (n == 0)
			break;
		if (n < 0 && errno == EINTR) {
			c->eintr++;
			continue;
		}
		if (n < 0 && errno == EAGAIN && m == M_RCVTIMEO) {
			c->timeouts++;
			continue;
		}
		if (n < 0)
			goto err;
		check_bytes(c, buf, n);
	}
	rx_end(c);
	return NULL;
err:
	c->errors++;
	c->last_err = errno;
	rx_end(c);
	return NULL;
}

static void *tx_fn(void *arg)
{
	struct conn *c = arg;
	unsigned char buf[MAX_PIECE];
	unsigned int seed = 0x9e3779b9u * (c->idx + 1);
	size_t len, k, off;
	ssize_t n;

	while (!atomic_load(&senders_stop)) {
		len = 1 + rnd(&seed) % MAX_PIECE;
		for (k = 0; k < len; k++)
			buf[k] = pattern(c->idx, c->sent + k);
		for (off = 0; off < len; off += n) {
			n = send(c->tx, buf + off, len - off, MSG_NOSIGNAL);
			if (n < 0 && errno == EINTR) {
				n = 0;
				continue;
			}
			if (n < 0) {
				c->errors++;
				c->last_err = errno;
				goto out;
			}
		}
		c->sent += len;
		/* the receiver catches up and blocks; now and then its timeout expires */
		if (rnd(&seed) % 64 == 0)
			usleep(30000 + rnd(&seed) % 30000);
		else if (rnd(&seed) % 4 == 0)
			usleep(rnd(&seed) % 2000);
	}
out:
	shutdown(c->tx, SHUT_WR);
	return NULL;
}

/* Signal random receivers and shut down the idle connections they block on. */
static void *storm_fn(void *arg)
{
	unsigned int seed = 12345;
	struct conn *c;
	int i;

	(void)arg;
	while (!atomic_load(&all_stop)) {
		usleep(SIGNAL_MIN_US + rnd(&seed) % SIGNAL_SPAN_US);
		c = &conns[rnd(&seed) % NRX];
		pthread_mutex_lock(&c->idle_lock);
		if (!c->done && !atomic_load(&senders_stop) &&
		    !pthread_kill(c->rx_th, rnd(&seed) % 2 ? SIGUSR1 : SIGUSR2))
			atomic_fetch_add(&signals_sent, 1);
		pthread_mutex_unlock(&c->idle_lock);
		if (!atomic_load(&idle_pending))
			continue;
		for (i = 0; i < NRX; i++) {
			c = &conns[i];
			pthread_mutex_lock(&c->idle_lock);
			if (c->idle_blocked) {
				/* the recv may not have started yet: it then returns 0 at once */
				shutdown(c->idle, SHUT_RDWR);
				c->idle_blocked = false;
				atomic_fetch_sub(&idle_pending, 1);
			}
			pthread_mutex_unlock(&c->idle_lock);
		}
	}
	return NULL;
}

static int conn_setup(struct conn *c, int l, int i)
{
	struct timeval tv = { 0, 20000 };

	c->idx = i;
	c->bad_at = UINT64_MAX;
	pthread_mutex_init(&c->idle_lock, NULL);
	c->lfd = listener();
	if (c->lfd < 0 || connect_pair(l, &c->rx, &c->tx) ||
	    connect_pair(c->lfd, &c->idle, &c->idle_peer))
		return -1;
	if (i % MODES == M_RCVTIMEO &&
	    setsockopt(c->rx, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)))
		return -1;
	return 0;
}

/* What the run (the first case) saw; the cases after it judge it. */
static unsigned long eintr, timeouts, shutdowns;
static int seconds;
static bool hung;

/* Start the receivers, senders and the storm; stop the senders after @seconds. */
static void storm_run(pthread_t *storm)
{
	int i;

	for (i = 0; i < NRX; i++) {
		pthread_create(&conns[i].rx_th, NULL, rx_fn, &conns[i]);
		pthread_create(&conns[i].tx_th, NULL, tx_fn, &conns[i]);
	}
	pthread_create(storm, NULL, storm_fn, NULL);
	printf("# %d receivers, %d s\n", NRX, seconds);
	fflush(stdout);
	sleep(seconds);
	atomic_store(&senders_stop, true);
}

/* Every receiver ends, with every byte its sender sent, once and in order. */
TEST(every_byte_once)
{
	struct timespec deadline;
	pthread_t storm;
	int i;

	storm_run(&storm);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += HANG_S;
	for (i = 0; i < NRX; i++) {
		struct conn *c = &conns[i];

		if (pthread_timedjoin_np(c->tx_th, NULL, &deadline) ||
		    pthread_timedjoin_np(c->rx_th, NULL, &deadline)) {
			CHECK(false, "receiver %d (%s): hangs %d s after the senders stopped", i,
			      mode_name[i % MODES], HANG_S);
			hung = true;
			continue;
		}
		eintr += c->eintr;
		timeouts += c->timeouts;
		shutdowns += c->shutdowns;
		CHECK(!c->errors && !c->idle_errors && c->bad_at == UINT64_MAX &&
		      c->got == c->sent && c->sent > 0,
		      "receiver %d (%s): got %llu of %llu bytes, first wrong byte at %lld, %lu errors, %lu idle errors (last: %s)",
		      i, mode_name[i % MODES], (unsigned long long)c->got,
		      (unsigned long long)c->sent,
		      c->bad_at == UINT64_MAX ? -1LL : (long long)c->bad_at, c->errors,
		      c->idle_errors, c->last_err ? strerror(c->last_err) : "none");
	}
	atomic_store(&all_stop, true);
	if (!hung)
		pthread_join(storm, NULL);
	printf("# %lu signals, %lu EINTR, %lu timeouts, %lu idle shutdowns\n",
	       (unsigned long)atomic_load(&signals_sent), eintr, timeouts, shutdowns);
}

/* The run exercised what it is for: signals interrupted calls, timeouts and shutdowns ended them */
TEST(signals_and_timeouts)
{
	CHECK(!hung && eintr > 0 && timeouts > 0, "signals interrupted receives and timeouts expired");
}

TEST(shutdowns)
{
	CHECK(!hung && shutdowns > 0, "shutdowns ended blocked receives");
}

int main(void)
{
	const char *ip = getenv("STRESS_IP") ?: "127.0.0.1";
	const char *secs = getenv("STRESS_SECONDS");
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	int l, i, ret;

	seconds = secs ? atoi(secs) : 8;
	addr.sin_family = AF_INET;
	if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1 || seconds <= 0)
		ktap_exit_skip("bad STRESS_IP or STRESS_SECONDS");
	sigaction(SIGUSR1, &sa, NULL);
	sa.sa_flags = 0;
	sigaction(SIGUSR2, &sa, NULL);
	sigemptyset(&storm_set);
	sigaddset(&storm_set, SIGUSR1);
	sigaddset(&storm_set, SIGUSR2);

	l = listener();
	if (l < 0)
		ktap_exit_skip("cannot listen on %s: %s", ip, strerror(errno));
	for (i = 0; i < NRX; i++)
		if (conn_setup(&conns[i], l, i))
			ktap_exit_fail("connection %d set up: %s", i, strerror(errno));
	ret = ktap_run();
	if (hung) {
		fflush(stdout);
		_exit(ret);
	}
	return ret;
}
