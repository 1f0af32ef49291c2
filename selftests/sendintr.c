// SPDX-License-Identifier: GPL-2.0
/* 16 MiB blocking send/sendto/sendmsg/write/writev interrupted by SIGUSR1: the peer gets exactly what the calls report. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "ktap.h"

/*
 * Environment: SENDINTR_IP, the address to listen on (the sender connects
 * to it from the same program: under rsys both ends are remote sockets);
 * SENDINTR_RSYS=1 under rsys-load, where a send without SA_RESTART may fail
 * with EINTR after bytes went out (doc/rsys-load.8, BUGS), and the changed
 * data control runs.
 *
 * Every case: the receiver does not read until the call returns (or
 * RETURN_MS after the signal), so the send blocks once the socket buffers
 * are full; SIGUSR1 hits the sender SIGNAL_MS after the call started. After EINTR the same call is made once more (what a
 * sendall() loop does). Then the sender shuts down and the receiver reads
 * everything: the stream must be exactly the first "reported" bytes of
 * the buffer, nothing twice, nothing missing.
 */
#define LEN		(16u << 20)
#define RX_CAP		(2 * LEN + (1u << 20))
#define SIGNAL_MS	500
#define RETURN_MS	3000
#define NIOV		4
#define STORM_MS	10
#define STORM_MAX	1000

enum call { C_SEND, C_SENDTO, C_SENDMSG, C_WRITE, C_WRITEV, C_N };
static const char *const call_name[C_N] = { "send", "sendto", "sendmsg", "write", "writev" };

static unsigned char *buf, *rxbuf;
static volatile sig_atomic_t nsig;

static void on_usr1(int sig)
{
	(void)sig;
	nsig++;
}

struct rx {
	int fd, go;
	bool slow;		/* 64 KiB a millisecond at most */
	size_t got;
	pthread_t th;
};

/*
 * Once told to start, read until EOF: the first RX_CAP bytes are kept,
 * the rest only counted (a sender that repeats itself must not block).
 */
static void *rx_fn(void *arg)
{
	static unsigned char scratch[65536];
	struct rx *rx = arg;
	unsigned char *p;
	size_t want;
	uint64_t v;
	ssize_t n;

	if (read(rx->go, &v, sizeof(v)) != sizeof(v))
		return NULL;
	for (;;) {
		if (rx->slow)
			usleep(1000);
		p = rx->got < RX_CAP ? rxbuf + rx->got : scratch;
		want = rx->got < RX_CAP ? RX_CAP - rx->got : sizeof(scratch);
		if (rx->slow && want > sizeof(scratch))
			want = sizeof(scratch);
		n = read(rx->fd, p, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rx->got += n;
	}
	return NULL;
}

struct kick {
	pid_t tid;
	struct timespec at;	/* when the signal was sent */
	int returned, go;	/* eventfds: the call returned; the receiver may read */
	pthread_t th;
};

/*
 * Signal the sender once, then let the receiver read when the call has
 * returned, or after RETURN_MS anyway: a send that went on after the
 * signal (the old rsys restarted it from its first byte) then completes,
 * and the stream shows what it sent twice.
 */
static void *kick_fn(void *arg)
{
	struct kick *k = arg;
	struct timespec ts = { SIGNAL_MS / 1000, (SIGNAL_MS % 1000) * 1000000L };
	struct pollfd p = { .fd = k->returned, .events = POLLIN };
	uint64_t one = 1;

	nanosleep(&ts, NULL);
	clock_gettime(CLOCK_MONOTONIC, &k->at);
	syscall(SYS_tgkill, getpid(), k->tid, SIGUSR1);
	while (poll(&p, 1, RETURN_MS) < 0 && errno == EINTR)
		;
	if (write(k->go, &one, sizeof(one)) != sizeof(one))
		printf("# eventfd: %s\n", strerror(errno));
	return NULL;
}

/* Send @len bytes at @b with @c (writev: in NIOV pieces). */
static ssize_t do_call(enum call c, int fd, unsigned char *b, size_t len)
{
	struct iovec iov[NIOV];
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = 1 };
	int i;

	for (i = 0; i < NIOV; i++) {
		iov[i].iov_base = b + i * (len / NIOV);
		iov[i].iov_len = i < NIOV - 1 ? len / NIOV : len - i * (len / NIOV);
	}
	switch (c) {
	case C_SEND:
		return send(fd, b, len, 0);
	case C_SENDTO:
		return sendto(fd, b, len, 0, NULL, 0);
	case C_SENDMSG:
		iov[0].iov_base = b;
		iov[0].iov_len = len;
		return sendmsg(fd, &m, 0);
	case C_WRITE:
		return write(fd, b, len);
	default:
		return writev(fd, iov, NIOV);
	}
}

/* A connected pair on @ip: *@s the sender's end, *@r the receiver's. 0 or -1. */
static int tcp_pair(const char *ip, int *s, int *r)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t alen = sizeof(a);
	int l;

	*s = *r = -1;
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1 ||
	    bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &alen))
		goto err;
	*s = socket(AF_INET, SOCK_STREAM, 0);
	if (*s < 0 || connect(*s, (struct sockaddr *)&a, sizeof(a)))
		goto err;
	*r = accept(l, NULL, NULL);
	if (*r < 0)
		goto err;
	close(l);
	return 0;
err:
	printf("# tcp pair on %s: %s\n", ip, strerror(errno));
	if (l >= 0)
		close(l);
	if (*s >= 0)
		close(*s);
	return -1;
}

/* Does the stream hold @a's first @na bytes, then @b's first @nb? */
static bool stream_is(size_t got, const unsigned char *a, size_t na, const unsigned char *b,
		      size_t nb)
{
	return got == na + nb && !memcmp(rxbuf, a, na) && !memcmp(rxbuf + na, b, nb);
}

/*
 * One case: @c interrupted once; with @changed (rsys, after EINTR) the
 * retry sends other data, which must go out in full, not be taken for
 * the restart of the interrupted call.
 */
static void run_case(const char *ip, enum call c, bool restart, bool changed, bool rsys)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };
	const char *name = call_name[c], *how = restart ? "SA_RESTART" : "no SA_RESTART";
	struct rx rx = { .fd = -1 };
	struct kick k = { .tid = gettid(), .returned = eventfd(0, EFD_CLOEXEC) };
	unsigned char *b2 = NULL;
	ssize_t r1, r2 = -2;
	int e1, e2 = 0, s;
	uint64_t one = 1;
	struct timespec end;
	size_t rep;
	bool ok;

	sigaction(SIGUSR1, &sa, NULL);
	rx.go = k.go = eventfd(0, EFD_CLOEXEC);
	if (rx.go < 0 || k.returned < 0 || tcp_pair(ip, &s, &rx.fd)) {
		ktap_result(0, "%s, %s: setup", name, how);
		return;
	}
	pthread_create(&rx.th, NULL, rx_fn, &rx);
	pthread_create(&k.th, NULL, kick_fn, &k);
	nsig = 0;
	r1 = do_call(c, s, buf, LEN);
	e1 = errno;
	clock_gettime(CLOCK_MONOTONIC, &end);
	if (write(k.returned, &one, sizeof(one)) != sizeof(one))
		printf("# eventfd: %s\n", strerror(errno));
	pthread_join(k.th, NULL);
	if (r1 < 0 && e1 == EINTR) {
		if (changed) {
			b2 = malloc(LEN);
			if (!b2)
				exit(KSFT_FAIL);
			memcpy(b2, buf, LEN);
			b2[0] ^= 0xff;
		}
		r2 = do_call(c, s, b2 ? b2 : buf, LEN);
		e2 = errno;
	}
	shutdown(s, SHUT_WR);
	pthread_join(rx.th, NULL);
	close(s);
	close(rx.fd);
	close(rx.go);
	close(k.returned);

	rep = r1 > 0 ? (size_t)r1 : r2 > 0 ? (size_t)r2 : 0;
	printf("# transcript: %s, %s: ret %zd%s%s", name, how, r1,
	       r1 < 0 ? " " : "", r1 < 0 ? strerror(e1) : "");
	if (r2 != -2)
		printf(", %s retry %zd%s%s", changed ? "changed-data" : "same-data", r2,
		       r2 < 0 ? " " : "", r2 < 0 ? strerror(e2) : "");
	printf(", peer got %zu, signals %d, returned %.1f ms after the signal\n", rx.got, (int)nsig,
	       (end.tv_sec - k.at.tv_sec) * 1e3 + (end.tv_nsec - k.at.tv_nsec) / 1e6);

	if (changed) {
		/* r1 failed after some bytes; the other data went out whole after them */
		ok = r1 < 0 && r2 == (ssize_t)LEN && rx.got >= LEN && rx.got < 2 * LEN &&
		     stream_is(rx.got, buf, rx.got - LEN, b2, LEN);
		ktap_result(ok, "%s, %s, other data after EINTR: sent in full (peer %zu = %zu + %u)",
			    name, how, rx.got, rx.got - (ok ? LEN : 0), ok ? LEN : 0);
		free(b2);
		return;
	}
	ok = nsig == 1 && rep > 0 && rep < LEN && stream_is(rx.got, buf, rep, NULL, 0);
	/* Linux returns the count; under rsys a call without SA_RESTART may say EINTR first */
	if (r1 < 0 && !(rsys && !restart && e1 == EINTR))
		ok = false;
	ktap_result(ok, "%s, %s: %s %zu, peer got %s", name, how,
		    r1 > 0 ? "returned" : "EINTR, the retry returned", rep,
		    ok ? "exactly those bytes" : "something else");
	/* the line the shell test compares with the native run */
	printf("# shape: %s, %s: %s\n", name, how,
	       !ok ? "bad" : r1 > 0 ? "partial count, peer == count" : "EINTR, retry count == peer");
}

struct storm {
	pid_t tid;
	int stop;		/* eventfd: the sendall loop is over */
	pthread_t th;
};

/* SIGUSR1 to the sender every STORM_MS until told to stop (STORM_MAX at most). */
static void *storm_fn(void *arg)
{
	struct storm *st = arg;
	struct pollfd p = { .fd = st->stop, .events = POLLIN };
	int i;

	for (i = 0; i < STORM_MAX; i++) {
		if (poll(&p, 1, STORM_MS) != 0)
			break;
		syscall(SYS_tgkill, getpid(), st->tid, SIGUSR1);
	}
	return NULL;
}

/*
 * A sendall() loop of 16 MiB with @c to a slow reader while signals keep
 * coming: they land between chunks, during a restart's wait and during
 * its answer. The peer must get the 16 MiB once, in order.
 */
static void run_storm(const char *ip, enum call c, bool restart)
{
	struct sigaction sa = { .sa_handler = on_usr1, .sa_flags = restart ? SA_RESTART : 0 };
	const char *name = call_name[c], *how = restart ? "SA_RESTART" : "no SA_RESTART";
	struct storm st = { .tid = gettid(), .stop = eventfd(0, EFD_CLOEXEC) };
	struct rx rx = { .fd = -1, .slow = true };
	int s, calls = 0, eintr = 0, err = 0;
	uint64_t one = 1;
	size_t off = 0;
	ssize_t n;
	bool ok;

	sigaction(SIGUSR1, &sa, NULL);
	rx.go = eventfd(0, EFD_CLOEXEC);
	if (rx.go < 0 || st.stop < 0 || tcp_pair(ip, &s, &rx.fd)) {
		ktap_result(0, "%s, %s, signal storm: setup", name, how);
		return;
	}
	nsig = 0;
	if (write(rx.go, &one, sizeof(one)) != sizeof(one))
		printf("# eventfd: %s\n", strerror(errno));
	pthread_create(&rx.th, NULL, rx_fn, &rx);
	pthread_create(&st.th, NULL, storm_fn, &st);
	while (off < LEN && calls++ < 100000) {
		n = do_call(c, s, buf + off, LEN - off);
		if (n < 0 && errno == EINTR) {
			eintr++;
			continue;
		}
		if (n <= 0) {
			err = n ? errno : EPIPE;
			break;
		}
		off += n;
	}
	if (write(st.stop, &one, sizeof(one)) != sizeof(one))
		printf("# eventfd: %s\n", strerror(errno));
	pthread_join(st.th, NULL);
	shutdown(s, SHUT_WR);
	pthread_join(rx.th, NULL);
	close(s);
	close(rx.fd);
	close(rx.go);
	close(st.stop);
	ok = !err && off == LEN && stream_is(rx.got, buf, LEN, NULL, 0);
	printf("# transcript: %s, %s, signal storm: %d calls, %d EINTR, %d signals, sent %zu, peer got %zu%s%s\n",
	       name, how, calls, eintr, (int)nsig, off, rx.got, err ? ", error " : "",
	       err ? strerror(err) : "");
	ktap_result(ok, "%s, %s, sendall() under a signal every %d ms: peer got the %u bytes once",
		    name, how, STORM_MS, LEN);
}

int main(void)
{
	const char *ip = getenv("SENDINTR_IP") ?: "127.0.0.1";
	bool rsys = getenv("SENDINTR_RSYS") && !strcmp(getenv("SENDINTR_RSYS"), "1");
	size_t i;
	int c;

	buf = malloc(LEN);
	rxbuf = malloc(RX_CAP);
	if (!buf || !rxbuf)
		ktap_exit_skip("out of memory\n");
	/* self-describing: every 4-byte word holds its own index, so a repeat shows */
	for (i = 0; i < LEN / 4; i++)
		memcpy(buf + 4 * i, &(uint32_t){ i }, 4);
	alarm(300);	/* bounded whatever happens */

	ktap_plan(2 * C_N + 4 + (rsys ? 1 : 0));
	for (c = 0; c < C_N; c++) {
		run_case(ip, c, true, false, rsys);
		run_case(ip, c, false, false, rsys);
	}
	if (rsys)
		run_case(ip, C_SEND, false, true, rsys);
	run_storm(ip, C_SEND, true);
	run_storm(ip, C_SEND, false);
	run_storm(ip, C_WRITEV, true);
	run_storm(ip, C_WRITEV, false);
	return ktap_finish();
}
