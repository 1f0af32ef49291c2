// SPDX-License-Identifier: GPL-2.0
/* fd-semantics scenarios printing a deterministic transcript, diffed native vs rsys by fdsem_test.sh. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "ktap.h"

/*
 * Usage: fdsem SCENARIO | fdsem --list
 * Every line of the transcript is "call = result" where result is the return
 * value or "-1 ERRNAME": fd numbers, errno and data are printed, nothing that
 * legitimately differs between runs (ephemeral ports, pids). A self-check that
 * fails prints "FAIL: ..." and makes the exit status 1. Servers: world_server.c.
 */

#define ECHO_PORT	7
#define HOLD_PORT	7002
#define QUERY_PORT	7003
#define CLOSED_PORT	1
#define SERVICE_PORT	7100	/* bound in the service netns by the names/accept scenarios */

static const char *world_ip = "198.18.0.1";
static const char *service_ip = "198.18.0.2";
static const char *self_exe;	/* re-executed by the cloexec scenario */
static int failed;

/* Print "CALL = RET" or "CALL = -1 ENAME" and return @ret, errno preserved. */
static long __attribute__((format(printf, 3, 4))) trace(long ret, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	if (ret < 0)
		printf(" = -1 %s\n", strerrorname_np(err) ?: "E?");
	else
		printf(" = %ld\n", ret);
	errno = err;
	return ret;
}

/* The call runs before the format's arguments are read: they may show its results. */
#define T(call, fmt, ...)						\
	({								\
		long __r = (call);					\
		int __e = errno;					\
		trace(__r, __e, fmt, ##__VA_ARGS__);			\
	})

static void __attribute__((format(printf, 2, 3))) check(bool ok, const char *fmt, ...)
{
	va_list ap;

	if (ok)
		return;
	printf("FAIL: ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	failed = 1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct sockaddr_in sin_of(const char *ip, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, ip, &sin.sin_addr);
	return sin;
}

/* "ADDR:PORT"; an ephemeral port (not chosen by the test) prints as "*". */
static const char *addr_str(const struct sockaddr *sa, socklen_t len, bool ephemeral)
{
	static char buf[INET6_ADDRSTRLEN + 16];
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *sin = (const void *)sa;

		inet_ntop(AF_INET, &sin->sin_addr, ip, sizeof(ip));
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *sin6 = (const void *)sa;

		inet_ntop(AF_INET6, &sin6->sin6_addr, ip, sizeof(ip));
		port = ntohs(sin6->sin6_port);
	} else {
		snprintf(ip, sizeof(ip), "family %d len %u", sa->sa_family, len);
	}
	if (ephemeral && port)
		snprintf(buf, sizeof(buf), "%s:*", ip);
	else
		snprintf(buf, sizeof(buf), "%s:%d", ip, port);
	return buf;
}

static void print_name(int fd, bool peer, bool ephemeral)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	long r;

	memset(&ss, 0, sizeof(ss));
	r = peer ? getpeername(fd, (struct sockaddr *)&ss, &len) :
		   getsockname(fd, (struct sockaddr *)&ss, &len);
	if (r < 0)
		T(r, "%s(%d)", peer ? "getpeername" : "getsockname", fd);
	else
		printf("%s(%d) = 0 len %u %s\n", peer ? "getpeername" : "getsockname", fd, len,
		       addr_str((struct sockaddr *)&ss, len, ephemeral));
}

static const char *flags_str(long fl)
{
	static char buf[64];

	if (fl < 0)
		return "-1";
	snprintf(buf, sizeof(buf), "%s%s%s", (fl & O_ACCMODE) == O_RDWR ? "O_RDWR" :
		 (fl & O_ACCMODE) == O_WRONLY ? "O_WRONLY" : "O_RDONLY",
		 fl & O_NONBLOCK ? "|O_NONBLOCK" : "", fl & O_APPEND ? "|O_APPEND" : "");
	return buf;
}

static long getfl(int fd)
{
	long fl = fcntl(fd, F_GETFL);

	if (fl < 0)
		return T(fl, "fcntl(%d, F_GETFL)", fd);
	printf("fcntl(%d, F_GETFL) = %s\n", fd, flags_str(fl));
	return fl;
}

/* socket() + connect() to world:@port, printed. */
static int tcp_connect_flags(const char *ip, int port, int type_flags)
{
	struct sockaddr_in sin = sin_of(ip, port);
	int fd;

	fd = T(socket(AF_INET, SOCK_STREAM | type_flags, 0), "socket(AF_INET, SOCK_STREAM%s)",
	       type_flags & SOCK_CLOEXEC ? "|SOCK_CLOEXEC" : "");
	if (fd < 0)
		return fd;
	if (T(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d, %s:%d)", fd, ip,
	      port) < 0)
		check(false, "connect to %s:%d", ip, port);
	return fd;
}

static int tcp_connect(int port)
{
	return tcp_connect_flags(world_ip, port, 0);
}

/* Read exactly @len bytes (blocking). Returns bytes read before EOF/error. */
static ssize_t recv_exact(int fd, void *buf, size_t len)
{
	size_t got = 0;
	ssize_t r;

	while (got < len) {
		r = recv(fd, (char *)buf + got, len - got, 0);
		if (r <= 0)
			break;
		got += r;
	}
	return got;
}

/* Send @msg on @wfd and read it back from @rfd (the same echo connection). */
static void echo(int wfd, int rfd, const char *msg)
{
	size_t len = strlen(msg);
	char buf[256] = "";
	ssize_t r;

	r = send(wfd, msg, len, MSG_NOSIGNAL);
	r = r == (ssize_t)len ? recv_exact(rfd, buf, len) : r;
	printf("echo(%d -> %d, \"%s\") = %s\n", wfd, rfd, msg,
	       r == (ssize_t)len && !memcmp(buf, msg, len) ? "ok" : "mismatch");
	check(r == (ssize_t)len && !memcmp(buf, msg, len), "echo via %d/%d", wfd, rfd);
}

/* Connect to the hold service under @token, not printed (the token is run specific). */
static int hold_connect(const char *token, int type_flags)
{
	struct sockaddr_in sin = sin_of(world_ip, HOLD_PORT);
	char line[64];
	int fd, n;

	fd = socket(AF_INET, SOCK_STREAM | type_flags, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		check(false, "hold connect: %s", strerrorname_np(errno));
		return fd;
	}
	n = snprintf(line, sizeof(line), "%s\n", token);
	check(send(fd, line, n, 0) == n, "hold token send");
	printf("hold connection = %d\n", fd);
	return fd;
}

/* Ask the world whether @token's hold connection saw EOF (waits up to @wait_ms for it). */
static const char *hold_state(const char *token, int wait_ms)
{
	static char answer[16];
	struct sockaddr_in sin = sin_of(world_ip, QUERY_PORT);
	char line[64];
	int fd, n;
	ssize_t r;

	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return "query-failed";
	n = snprintf(line, sizeof(line), "%s %d\n", token, wait_ms);
	send(fd, line, n, 0);
	r = recv_exact(fd, answer, sizeof(answer) - 1);
	close(fd);
	answer[r > 0 ? r : 0] = '\0';
	answer[strcspn(answer, "\n")] = '\0';
	return answer;
}

static void make_token(char *buf, size_t len, const char *what)
{
	snprintf(buf, len, "%s-%d-%ld", what, getpid(), (long)time(NULL));
}

static int lowest_free(void)
{
	int fd = T(dup(0), "dup(0)");

	close(fd);
	return fd;
}

static void sc_numbering(void)
{
	int a, b, c, d, u, p[2], sv[2];

	a = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	b = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(pipe(p), "pipe() -> [%d, %d]", p[0], p[1]);
	T(close(a), "close(%d)", a);
	c = tcp_connect(ECHO_PORT);
	check(c == a, "socket reuses the lowest free fd %d, got %d", a, c);
	u = T(socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET, SOCK_DGRAM)");
	T(close(p[0]), "close(%d)", p[0]);
	d = T(socket(AF_INET6, SOCK_STREAM, 0), "socket(AF_INET6, SOCK_STREAM)");
	check(d == p[0], "remote socket fills a local hole");
	T(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair(AF_UNIX) -> [%d, %d]", sv[0], sv[1]);
	echo(c, c, "numbering");
	T(close(b), "close(%d)", b);
	T(close(sv[0]), "close(%d)", sv[0]);
	T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(close(u), "close(%d)", u);
	lowest_free();
}

static void sc_dup(void)
{
	char token[64], buf[8] = "";
	int s, d, t, p[2];

	s = tcp_connect(ECHO_PORT);
	d = T(dup(s), "dup(%d)", s);
	echo(d, s, "via dup");
	T(dup2(s, 10), "dup2(%d, 10)", s);
	echo(10, s, "via dup2");

	/* dup2 onto a remote fd closes that remote socket (the server sees EOF). */
	make_token(token, sizeof(token), "dup2");
	t = hold_connect(token, 0);
	printf("hold before dup2: %s\n", hold_state(token, 200));
	T(dup2(s, t), "dup2(%d, %d)", s, t);
	printf("hold after dup2: %s\n", hold_state(token, 5000));
	echo(t, s, "onto remote");

	/* A local fd onto a remote one and a remote fd onto a local one. */
	T(pipe(p), "pipe() -> [%d, %d]", p[0], p[1]);
	T(dup2(p[0], d), "dup2(%d, %d)", p[0], d);
	T(fcntl(d, F_GETFD), "fcntl(%d, F_GETFD)", d);
	T(write(p[1], "z", 1), "write(%d)", p[1]);
	T(read(d, buf, 1), "read(%d) \"%s\"", d, buf[0] ? buf : "z");
	T(dup2(s, p[1]), "dup2(%d, %d)", s, p[1]);
	echo(p[1], s, "onto local");

	T(dup2(s, s), "dup2(%d, %d)", s, s);
	T(dup2(99, 99), "dup2(99, 99)");
	T(dup2(98, 20), "dup2(98, 20)");
	T(dup2(s, -1), "dup2(%d, -1)", s);
	T(dup2(s, 1 << 20), "dup2(%d, 1<<20)", s);
	T(dup3(s, s, 0), "dup3(%d, %d, 0)", s, s);
	T(dup3(s, 20, O_CLOEXEC), "dup3(%d, 20, O_CLOEXEC)", s);
	T(fcntl(20, F_GETFD), "fcntl(20, F_GETFD)");
	T(dup3(s, 21, 0), "dup3(%d, 21, 0)", s);
	T(fcntl(21, F_GETFD), "fcntl(21, F_GETFD)");
	T(dup3(s, 22, 0x40), "dup3(%d, 22, 0x40)", s);

	/* The connection lives on while any copy is open. */
	T(close(s), "close(%d)", s);
	echo(20, 21, "after close");
	lowest_free();
}

static void sc_fcntl(void)
{
	struct rlimit rl;
	int s, c;

	s = tcp_connect(ECHO_PORT);
	T(fcntl(s, F_DUPFD, 50), "fcntl(%d, F_DUPFD, 50)", s);
	T(fcntl(s, F_DUPFD, 50), "fcntl(%d, F_DUPFD, 50)", s);
	T(fcntl(s, F_DUPFD_CLOEXEC, 50), "fcntl(%d, F_DUPFD_CLOEXEC, 50)", s);
	T(fcntl(52, F_GETFD), "fcntl(52, F_GETFD)");
	T(fcntl(50, F_GETFD), "fcntl(50, F_GETFD)");
	T(fcntl(50, F_SETFD, FD_CLOEXEC), "fcntl(50, F_SETFD, FD_CLOEXEC)");
	T(fcntl(50, F_GETFD), "fcntl(50, F_GETFD)");
	T(fcntl(s, F_GETFD), "fcntl(%d, F_GETFD)", s);
	T(fcntl(50, F_SETFD, 0), "fcntl(50, F_SETFD, 0)");
	T(fcntl(50, F_GETFD), "fcntl(50, F_GETFD)");
	T(fcntl(s, F_DUPFD, 0), "fcntl(%d, F_DUPFD, 0)", s);
	T(fcntl(s, F_DUPFD, -1), "fcntl(%d, F_DUPFD, -1)", s);
	getrlimit(RLIMIT_NOFILE, &rl);
	T(fcntl(s, F_DUPFD, (long)rl.rlim_cur), "fcntl(%d, F_DUPFD, RLIMIT_NOFILE)", s);
	T(close(50), "close(50)");
	T(fcntl(s, F_DUPFD, 50), "fcntl(%d, F_DUPFD, 50)", s);
	c = T(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC)");
	T(fcntl(c, F_GETFD), "fcntl(%d, F_GETFD)", c);
	echo(52, 51, "fcntl dups");
	lowest_free();
}

static void sc_nonblock(void)
{
	char buf[64];
	int s, d, on = 1, off = 0, n = -1, i;
	long fl;

	s = tcp_connect(ECHO_PORT);
	d = T(dup(s), "dup(%d)", s);
	fl = getfl(s);
	T(fcntl(s, F_SETFL, fl | O_NONBLOCK), "fcntl(%d, F_SETFL, O_NONBLOCK)", s);
	getfl(s);
	getfl(d);	/* file status flags belong to the open file, shared by dups */
	T(recv(s, buf, sizeof(buf), 0), "recv(%d)", s);
	T(read(d, buf, sizeof(buf)), "read(%d)", d);
	T(fcntl(s, F_SETFL, fl & ~O_NONBLOCK), "fcntl(%d, F_SETFL, 0)", s);
	getfl(d);
	T(ioctl(d, FIONBIO, &on), "ioctl(%d, FIONBIO, 1)", d);
	getfl(s);
	T(recv(s, buf, sizeof(buf), 0), "recv(%d)", s);
	T(ioctl(d, FIONBIO, &off), "ioctl(%d, FIONBIO, 0)", d);
	getfl(s);
	T(recv(s, buf, sizeof(buf), MSG_DONTWAIT), "recv(%d, MSG_DONTWAIT)", s);

	T(ioctl(s, FIONREAD, &n), "ioctl(%d, FIONREAD) -> %d", s, n);
	T(send(s, "hello world", 11, 0), "send(%d, 11)", s);
	for (i = 0; i < 500; i++) {
		if (ioctl(s, FIONREAD, &n) < 0 || n >= 11)
			break;
		sleep_ms(10);
	}
	printf("ioctl(%d, FIONREAD) = 0 -> %d\n", s, n);
	T(recv(s, buf, sizeof(buf), 0), "recv(%d)", s);

	s = T(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK)");
	getfl(s);
	lowest_free();
}

/*
 * Waits on a socket after its non-blocking mode changed (issue: a wait after
 * F_SETFL/FIONBIO went to the placeholder and never saw the data).
 */
enum nb_wait { NBW_SELECT, NBW_PSELECT, NBW_POLL, NBW_PPOLL, NBW_EPOLL, NBW_N };
static const char *const nb_wait_name[NBW_N] = { "select", "pselect6", "poll", "ppoll", "epoll_wait" };

/* Wait up to 1 s for @fd to be readable (@out: writable) with @w; prints the result. */
static void nb_wait(enum nb_wait w, int fd, bool out)
{
	struct timespec ts = { 1, 0 };
	struct timeval tv = { 1, 0 };
	struct pollfd pfd = { .fd = fd, .events = out ? POLLOUT : POLLIN };
	struct epoll_event ev = { .events = pfd.events }, got = {};
	fd_set set;
	int r = -1, e = 0, ep;
	bool ready = false;

	FD_ZERO(&set);
	FD_SET(fd, &set);
	switch (w) {
	case NBW_SELECT:
		r = select(fd + 1, out ? NULL : &set, out ? &set : NULL, NULL, &tv);
		ready = r > 0 && FD_ISSET(fd, &set);
		break;
	case NBW_PSELECT:
		r = pselect(fd + 1, out ? NULL : &set, out ? &set : NULL, NULL, &ts, NULL);
		ready = r > 0 && FD_ISSET(fd, &set);
		break;
	case NBW_POLL:
		r = poll(&pfd, 1, 1000);
		ready = r > 0 && (pfd.revents & pfd.events);
		break;
	case NBW_PPOLL:
		r = ppoll(&pfd, 1, &ts, NULL);
		ready = r > 0 && (pfd.revents & pfd.events);
		break;
	case NBW_EPOLL:
		ep = epoll_create1(EPOLL_CLOEXEC);
		if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			check(false, "epoll setup: %s", strerrorname_np(errno));
		} else {
			r = epoll_wait(ep, &got, 1, 1000);
			ready = r > 0 && (got.events & ev.events);
		}
		if (ep >= 0)
			close(ep);
		break;
	default:
		break;
	}
	e = errno;
	if (r < 0)
		printf("%s(%d, %s) = -1 %s\n", nb_wait_name[w], fd, out ? "out" : "in", strerrorname_np(e));
	else
		printf("%s(%d, %s) = %d%s\n", nb_wait_name[w], fd, out ? "out" : "in", r,
		       ready ? " ready" : "");
	check(ready, "%s on fd %d saw no readiness", nb_wait_name[w], fd);
}

/* Make @fd non-blocking (@on) or blocking the way @how names, printed. */
static void nb_set(int fd, const char *how, bool on)
{
	int v = on;
	long fl;

	if (!strcmp(how, "FIONBIO")) {
		T(ioctl(fd, FIONBIO, &v), "ioctl(%d, FIONBIO, %d)", fd, v);
		return;
	}
	fl = fcntl(fd, F_GETFL);
	T(fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK), "fcntl(%d, F_SETFL, %s)", fd,
	  on ? "O_NONBLOCK" : "0");
}

/* Data arrives on @fd while @w waits for it, then is read. */
static void nb_echo_wait(int fd, enum nb_wait w, bool nonblock)
{
	char buf[16];

	if (nonblock)
		T(recv(fd, buf, sizeof(buf), 0), "recv(%d) before data", fd);
	T(send(fd, "ping", 4, 0), "send(%d, 4)", fd);
	nb_wait(w, fd, false);
	T(recv_exact(fd, buf, 4), "recv(%d, 4)", fd);
}

static void sc_nbwait(void)
{
	static const char *const ways[] = { "FIONBIO", "F_SETFL" };
	struct sockaddr_in lsin = sin_of(service_ip, SERVICE_PORT + 2);
	struct sockaddr_in esin = sin_of(world_ip, ECHO_PORT);
	int l, s, c, a, one = 1, w, i;
	char buf[16];

	/* Any earlier wait: the cache of the process is settled from here on. */
	nb_wait(NBW_POLL, 1, true);
	l = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), "setsockopt(%d, SO_REUSEADDR, 1)", l);
	T(bind(l, (struct sockaddr *)&lsin, sizeof(lsin)), "bind(%d, %s:%d)", l, service_ip, SERVICE_PORT + 2);
	T(listen(l, 8), "listen(%d, 8)", l);
	for (w = 0; w < NBW_N; w++) {
		printf("-- %s\n", nb_wait_name[w]);
		for (i = 0; i < 2; i++) {
			/* set by one way, cleared by the other */
			s = tcp_connect(ECHO_PORT);
			nb_set(s, ways[i], true);
			nb_echo_wait(s, w, true);
			nb_set(s, ways[!i], false);
			nb_echo_wait(s, w, false);
			close(s);

			/* a listener made non-blocking (Python's settimeout() + accept()) */
			nb_set(l, ways[i], true);
			T(accept(l, NULL, NULL), "accept(%d) (no client)", l);
			c = tcp_connect_flags(service_ip, SERVICE_PORT + 2, 0);
			nb_wait(w, l, false);
			a = T(accept(l, NULL, NULL), "accept(%d)", l);
			nb_set(l, ways[!i], false);
			close(a);
			close(c);
		}
		/* born non-blocking: SOCK_NONBLOCK and accept4 */
		s = T(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK)");
		T(connect(s, (struct sockaddr *)&esin, sizeof(esin)), "connect(%d, %s:%d)", s, world_ip, ECHO_PORT);
		nb_wait(w, s, true);
		nb_echo_wait(s, w, true);
		close(s);
		c = tcp_connect_flags(service_ip, SERVICE_PORT + 2, 0);
		nb_wait(w, l, false);
		a = T(accept4(l, NULL, NULL, SOCK_NONBLOCK), "accept4(%d, SOCK_NONBLOCK)", l);
		T(recv(a, buf, sizeof(buf), 0), "recv(%d) before data", a);
		T(send(c, "ping", 4, 0), "send(%d, 4)", c);
		nb_wait(w, a, false);
		T(recv_exact(a, buf, 4), "recv(%d, 4)", a);
		close(a);
		close(c);
	}
	lowest_free();
}

enum drop_how { DROP_CLOSE, DROP_DUP2, DROP_CLOSE_RANGE, DROP_EXIT };

static const char *const drop_name[] = { "close", "dup2/dup3 onto it", "close_range", "exit" };

/* A listener on @sin, or -1 (errno set). */
static int listener_on(const struct sockaddr_in *sin)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (fd < 0 || bind(fd, (const struct sockaddr *)sin, sizeof(*sin)) || listen(fd, 1)) {
		int err = errno;

		if (fd >= 0)
			close(fd);
		errno = err;
		return -1;
	}
	return fd;
}

/*
 * Let go of the last fd of listener @fd (the highest open fd) as @how says:
 * dup2 of a local fd onto it or dup3 of another socket onto it (every other
 * time), close_range from it. 0 or -1 with errno.
 */
static int drop_listener(int fd, enum drop_how how, int i)
{
	int other, ret;

	if (how == DROP_CLOSE)
		return close(fd);
	if (how == DROP_CLOSE_RANGE)
		return close_range(fd, ~0U, 0);
	other = i % 2 ? socket(AF_INET, SOCK_STREAM, 0) : open("/dev/null", O_RDONLY);
	if (other < 0)
		return -1;
	ret = i % 2 ? dup3(other, fd, O_CLOEXEC) : dup2(other, fd);
	close(other);
	return ret == fd ? close(fd) : -1;
}

/* A child process listens on @sin and exits; 0 once it is reaped, -1 with the child's errno. */
static int listen_in_child(const struct sockaddr_in *sin)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (!pid)
		_exit(listener_on(sin) < 0 ? errno : 0);	/* exit_group with the listener open */
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) {
		errno = ECHILD;
		return -1;
	}
	errno = WEXITSTATUS(st);
	return errno ? -1 : 0;
}

/*
 * The last fd of a listener goes away (@how), then the program acts on the
 * port, 1000 times: a rebind must not fail with EADDRINUSE, a connect to
 * the closed listener must be refused. For exit, a child listens and
 * exits; the parent reaps it, connects, then binds the port itself.
 */
static void closeport_loop(enum drop_how how)
{
	struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT + 3);
	int i, fd, c, rebind_ok = 0, refused = 0, err = 0;

	for (i = 0; i < 1000; i++) {
		if (how == DROP_EXIT) {
			if (listen_in_child(&sin) && !err)
				err = errno ? errno : ECHILD;
		} else {
			fd = listener_on(&sin);
			if (fd >= 0)
				rebind_ok++;
			else if (!err)
				err = errno;
			if (fd >= 0 && drop_listener(fd, how, i) && !err)
				err = errno;
		}
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno == ECONNREFUSED)
			refused++;
		else if (!err)
			err = errno ? errno : EISCONN;
		close(c);
		if (how == DROP_EXIT) {
			fd = listener_on(&sin);
			if (fd >= 0)
				rebind_ok++;
			else if (!err)
				err = errno;
			close(fd);
		}
	}
	printf("listen then %s then connect and bind, 1000 times: bound %d, refused %d, "
	       "first error %s\n", drop_name[how], rebind_ok, refused,
	       err ? strerrorname_np(err) : "none");
	check(rebind_ok == 1000 && refused == 1000, "%s then rebind/connect", drop_name[how]);
	lowest_free();
}

static void sc_closeport(void)
{
	closeport_loop(DROP_CLOSE);
}

static void sc_closeport_dup2(void)
{
	closeport_loop(DROP_DUP2);
}

static void sc_closeport_range(void)
{
	closeport_loop(DROP_CLOSE_RANGE);
}

static void sc_closeport_exit(void)
{
	closeport_loop(DROP_EXIT);
}

#define EXEC_ROUNDS	200

/*
 * Round @round of closeport_exec, in a fresh image: the close-on-exec
 * listener of the previous image is gone, so the port is refused and free
 * at once; listen on it again and execute the next round. The counts and
 * the first error so far travel in argv.
 */
static void closeport_exec_round(char **argv)
{
	struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT + 3);
	int round = atoi(argv[2]), bound = atoi(argv[3]), refused = atoi(argv[4]);
	int err = atoi(argv[5]), c, fd;
	char a[4][16];

	if (round) {
		c = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&sin, sizeof(sin)) < 0 && errno == ECONNREFUSED)
			refused++;
		else if (!err)
			err = errno ? errno : EISCONN;
		close(c);
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && !bind(fd, (struct sockaddr *)&sin, sizeof(sin)) && !listen(fd, 1))
		bound += round > 0;
	else if (!err)
		err = errno;
	if (round < EXEC_ROUNDS) {
		snprintf(a[0], sizeof(a[0]), "%d", round + 1);
		snprintf(a[1], sizeof(a[1]), "%d", bound);
		snprintf(a[2], sizeof(a[2]), "%d", refused);
		snprintf(a[3], sizeof(a[3]), "%d", err);
		execl(self_exe, self_exe, "closeport-exec", a[0], a[1], a[2], a[3], (char *)NULL);
		err = errno;
	}
	close(fd);
	printf("listen then execve (close-on-exec) then connect and bind, %d times: bound %d, "
	       "refused %d, first error %s\n", EXEC_ROUNDS, bound, refused,
	       err ? strerrorname_np(err) : "none");
	check(bound == EXEC_ROUNDS && refused == EXEC_ROUNDS, "execve then rebind/connect");
}

static void sc_closeport_exec(void)
{
	execl(self_exe, self_exe, "closeport-exec", "0", "0", "0", "0", (char *)NULL);
	T(-1, "execl(%s)", self_exe);
}

/* Print the control messages of @m, their data decoded where it is the same from run to run. */
static void print_cmsgs(struct msghdr *m)
{
	char ip[INET6_ADDRSTRLEN];
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		const void *d = CMSG_DATA(cm);
		size_t dlen = cm->cmsg_len - CMSG_LEN(0);

		printf("  cmsg level %d type %d len %zu", cm->cmsg_level, cm->cmsg_type,
		       (size_t)cm->cmsg_len);
		if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO &&
		    dlen >= sizeof(struct in_pktinfo)) {
			const struct in_pktinfo *pi = d;

			printf(" ifindex %d", pi->ipi_ifindex);
			printf(" spec_dst %s", inet_ntop(AF_INET, &pi->ipi_spec_dst, ip, sizeof(ip)));
			printf(" addr %s", inet_ntop(AF_INET, &pi->ipi_addr, ip, sizeof(ip)));
		} else if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO &&
			   dlen >= sizeof(struct in6_pktinfo)) {
			const struct in6_pktinfo *pi = d;

			printf(" ifindex %u addr %s", pi->ipi6_ifindex,
			       inet_ntop(AF_INET6, &pi->ipi6_addr, ip, sizeof(ip)));
		} else if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_TOS && dlen >= 1) {
			printf(" value %u", *(const uint8_t *)d);
		} else if (dlen >= sizeof(int) && cm->cmsg_level != SOL_SOCKET) {
			printf(" value %d", *(const int *)d);
		}
		printf("\n");
	}
}

/* recvmsg on @fd with @room bytes for control messages (NULL when 0), printed. */
static void cmsg_recv(int fd, size_t room)
{
	union {
		struct cmsghdr align;
		char buf[512];
	} ctl;
	char data[64];
	struct iovec iov = { data, sizeof(data) };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1,
			    .msg_control = room ? ctl.buf : NULL, .msg_controllen = room };
	long r;

	memset(&ctl, 0, sizeof(ctl));
	r = recvmsg(fd, &m, 0);
	if (r < 0) {
		T(r, "recvmsg(%d, room %zu)", fd, room);
		return;
	}
	printf("recvmsg(%d, room %zu) = %ld controllen %zu%s%s\n", fd, room, r,
	       (size_t)m.msg_controllen, m.msg_flags & MSG_CTRUNC ? " MSG_CTRUNC" : "",
	       m.msg_flags & MSG_TRUNC ? " MSG_TRUNC" : "");
	if (m.msg_controllen <= room)
		print_cmsgs(&m);
}

/* sendmsg of "dgram" to @to on @fd with one int control message (@level, @type, @val). */
static void cmsg_send(int fd, const struct sockaddr *to, socklen_t tolen, int level, int type,
		      int val)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct iovec iov = { "dgram", 5 };
	struct msghdr m = { .msg_name = (void *)to, .msg_namelen = tolen, .msg_iov = &iov,
			    .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);

	memset(&ctl, 0, sizeof(ctl));
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &val, sizeof(val));
	T(sendmsg(fd, &m, 0), "sendmsg(%d, cmsg level %d type %d value %d)", fd, level, type, val);
}

/* Ancillary data both ways on UDP over IPv4 and IPv6, with Linux's truncation rules. */
static void sc_cmsg(void)
{
	static const size_t rooms[] = { 0, 4, sizeof(struct cmsghdr), CMSG_SPACE(sizeof(int)) - 1,
					CMSG_SPACE(sizeof(int)), CMSG_SPACE(sizeof(struct in_pktinfo)) + 3,
					512 };
	struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT + 4);
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6, .sin6_port = htons(SERVICE_PORT + 4),
				     .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int r, s, one = 1;
	size_t i;

	r = T(socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET, SOCK_DGRAM)");
	s = T(socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET, SOCK_DGRAM)");
	T(bind(r, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d, %s:%d)", r, service_ip, SERVICE_PORT + 4);
	T(setsockopt(r, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one)), "setsockopt(%d, IP_PKTINFO, 1)", r);
	T(setsockopt(r, IPPROTO_IP, IP_RECVTOS, &one, sizeof(one)), "setsockopt(%d, IP_RECVTOS, 1)", r);
	T(setsockopt(r, IPPROTO_IP, IP_RECVTTL, &one, sizeof(one)), "setsockopt(%d, IP_RECVTTL, 1)", r);
	for (i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
		cmsg_send(s, (struct sockaddr *)&sin, sizeof(sin), IPPROTO_IP, i % 2 ? IP_TTL : IP_TOS,
			  i % 2 ? 7 + (int)i : 0x10 + 4 * (int)i);
		cmsg_recv(r, rooms[i]);
	}
	close(s);
	close(r);

	r = T(socket(AF_INET6, SOCK_DGRAM, 0), "socket(AF_INET6, SOCK_DGRAM)");
	s = T(socket(AF_INET6, SOCK_DGRAM, 0), "socket(AF_INET6, SOCK_DGRAM)");
	T(bind(r, (struct sockaddr *)&sin6, sizeof(sin6)), "bind(%d, [::1]:%d)", r, SERVICE_PORT + 4);
	T(setsockopt(r, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one, sizeof(one)), "setsockopt(%d, IPV6_RECVPKTINFO, 1)", r);
	T(setsockopt(r, IPPROTO_IPV6, IPV6_RECVHOPLIMIT, &one, sizeof(one)), "setsockopt(%d, IPV6_RECVHOPLIMIT, 1)", r);
	T(setsockopt(r, IPPROTO_IPV6, IPV6_RECVTCLASS, &one, sizeof(one)), "setsockopt(%d, IPV6_RECVTCLASS, 1)", r);
	for (i = 0; i < sizeof(rooms) / sizeof(rooms[0]); i++) {
		cmsg_send(s, (struct sockaddr *)&sin6, sizeof(sin6), IPPROTO_IPV6,
			  i % 2 ? IPV6_HOPLIMIT : IPV6_TCLASS, i % 2 ? 9 + (int)i : 0x20 + 4 * (int)i);
		cmsg_recv(r, rooms[i]);
	}
	close(s);
	close(r);
	lowest_free();
}

static void sc_ebadf(void)
{
	struct sockaddr_in sin = sin_of(world_ip, ECHO_PORT);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int s, p[2], n, one = 1;
	char buf[8];

	T(close(77), "close(77)");
	T(close(-1), "close(-1)");
	s = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(close(s), "close(%d)", s);
	T(close(s), "close(%d)", s);
	T(send(s, "x", 1, 0), "send(%d)", s);
	T(recv(s, buf, 1, 0), "recv(%d)", s);
	T(connect(s, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d)", s);
	T(getsockname(s, (struct sockaddr *)&ss, &len), "getsockname(%d)", s);
	T(setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), "setsockopt(%d)", s);
	T(fcntl(s, F_GETFD), "fcntl(%d, F_GETFD)", s);
	T(fcntl(s, F_GETFL), "fcntl(%d, F_GETFL)", s);
	T(dup(s), "dup(%d)", s);
	T(ioctl(s, FIONREAD, &n), "ioctl(%d, FIONREAD)", s);
	T(shutdown(s, SHUT_RDWR), "shutdown(%d)", s);
	T(listen(s, 1), "listen(%d)", s);
	T(pipe(p), "pipe() -> [%d, %d]", p[0], p[1]);
	T(connect(p[0], (struct sockaddr *)&sin, sizeof(sin)), "connect(%d)", p[0]);
	T(getsockname(p[0], (struct sockaddr *)&ss, &len), "getsockname(%d)", p[0]);
	T(send(p[1], "x", 1, 0), "send(%d)", p[1]);
	lowest_free();
}

static void sc_emfile(void)
{
	struct rlimit old, rl;
	int fds[32], n = 0, sv[2], p[2], fd, i;

	getrlimit(RLIMIT_NOFILE, &old);
	rl = old;
	rl.rlim_cur = 10;
	T(setrlimit(RLIMIT_NOFILE, &rl), "setrlimit(RLIMIT_NOFILE, 10)");
	while (n < 32) {
		fd = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
		if (fd < 0)
			break;
		fds[n++] = fd;
	}
	check(n == 7, "7 sockets fit under RLIMIT_NOFILE 10, got %d", n);
	T(dup(3), "dup(3)");
	T(fcntl(3, F_DUPFD, 0), "fcntl(3, F_DUPFD, 0)");
	T(fcntl(3, F_DUPFD, 10), "fcntl(3, F_DUPFD, 10)");
	T(dup2(3, 10), "dup2(3, 10)");
	T(dup2(3, 9), "dup2(3, 9)");
	T(pipe(p), "pipe()");
	T(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair(AF_UNIX)");
	T(close(5), "close(5)");
	fd = tcp_connect(ECHO_PORT);
	if (fd >= 0)
		echo(fd, fd, "at the limit");
	T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	for (i = 0; i < n; i++)
		close(fds[i]);
	T(setrlimit(RLIMIT_NOFILE, &old), "setrlimit(RLIMIT_NOFILE, old)");
	lowest_free();
}

/* After execve: which fds survived, do the remote ones still work? */
static void cloexec_child(const char *token)
{
	int fd;

	printf("-- after execve\n");
	for (fd = 3; fd <= 13; fd++)
		T(fcntl(fd, F_GETFD), "fcntl(%d, F_GETFD)", fd);
	echo(3, 5, "survivor");
	printf("cloexec hold after execve: %s\n", hold_state(token, 5000));
	T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	lowest_free();
}

static void sc_cloexec(void)
{
	char token[64];
	int a, e, f, g, p[2], q[2];

	a = tcp_connect(ECHO_PORT);			/* 3: survives */
	make_token(token, sizeof(token), "cloexec");
	hold_connect(token, SOCK_CLOEXEC);		/* 4: closed by execve */
	T(dup3(a, 10, O_CLOEXEC), "dup3(%d, 10, O_CLOEXEC)", a);
	T(fcntl(a, F_DUPFD_CLOEXEC, 11), "fcntl(%d, F_DUPFD_CLOEXEC, 11)", a);
	e = T(dup(a), "dup(%d)", a);			/* 5: cloexec set then cleared: survives */
	T(fcntl(e, F_SETFD, FD_CLOEXEC), "fcntl(%d, F_SETFD, FD_CLOEXEC)", e);
	T(fcntl(e, F_SETFD, 0), "fcntl(%d, F_SETFD, 0)", e);
	f = T(dup(a), "dup(%d)", a);			/* 6: closed by execve */
	T(fcntl(f, F_SETFD, FD_CLOEXEC), "fcntl(%d, F_SETFD, FD_CLOEXEC)", f);
	g = T(dup(a), "dup(%d)", a);			/* 7: closed by execve */
	T(ioctl(g, FIOCLEX), "ioctl(%d, FIOCLEX)", g);
	T(fcntl(g, F_GETFD), "fcntl(%d, F_GETFD)", g);
	T(pipe2(p, O_CLOEXEC), "pipe2(O_CLOEXEC) -> [%d, %d]", p[0], p[1]);
	T(pipe(q), "pipe() -> [%d, %d]", q[0], q[1]);
	printf("cloexec hold before execve: %s\n", hold_state(token, 200));
	fflush(stdout);
	execl(self_exe, self_exe, "cloexec-child", token, (char *)NULL);
	T(-1, "execl(%s)", self_exe);
	check(false, "execve failed");
}

static void sc_fork(void)
{
	char token[64], buf[32] = "", go = 'g';
	int s, h, sync[2], status;
	pid_t pid;
	ssize_t r;

	s = tcp_connect(ECHO_PORT);
	make_token(token, sizeof(token), "fork");
	h = hold_connect(token, 0);
	T(pipe(sync), "pipe() -> [%d, %d]", sync[0], sync[1]);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* The child prints nothing: its exit status reports its checks. */
		close(sync[1]);
		if (send(s, "from-child", 10, 0) != 10)
			_exit(2);
		if (read(sync[0], &go, 1) != 1)
			_exit(3);
		_exit(0);	/* implicit close of s and h */
	}
	check(pid > 0, "fork");
	close(sync[0]);
	r = recv_exact(s, buf, 10);
	printf("parent recv(%d) = %zd \"%s\"\n", s, r, buf);
	T(close(h), "parent close(%d)", h);
	printf("hold while the child holds it: %s\n", hold_state(token, 500));
	T(write(sync[1], &go, 1), "write(%d)", sync[1]);
	waitpid(pid, &status, 0);
	printf("child exit = %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	printf("hold after the child exited: %s\n", hold_state(token, 5000));
	echo(s, s, "parent after child");

	/* A child that closes explicitly does not close the parent's copy. */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		_exit(close(s) ? 1 : 0);
	waitpid(pid, &status, 0);
	printf("child exit = %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	echo(s, s, "parent after child close");
	lowest_free();
}

#define NTHREADS	4
#define CHUNK		4096
#define CHUNKS		16

struct thread_result {
	int idx;
	int errors;
	uint32_t sent_sum, recv_sum;
	long bytes;
};

static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static void *io_thread(void *arg)
{
	struct thread_result *res = arg;
	struct sockaddr_in sin = sin_of(world_ip, ECHO_PORT);
	unsigned char out[CHUNK], in[CHUNK];
	int i, j, fd;

	res->sent_sum = res->recv_sum = 2166136261u;
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
		res->errors++;
		return NULL;
	}
	for (i = 0; i < CHUNKS; i++) {
		for (j = 0; j < CHUNK; j++)
			out[j] = (unsigned char)(res->idx * 31 + i * 7 + j);
		if (send(fd, out, CHUNK, 0) != CHUNK || recv_exact(fd, in, CHUNK) != CHUNK) {
			res->errors++;
			break;
		}
		res->sent_sum = fnv1a(res->sent_sum, out, CHUNK);
		res->recv_sum = fnv1a(res->recv_sum, in, CHUNK);
		res->bytes += CHUNK;
	}
	/* Churn: sockets created and closed concurrently by every thread. */
	for (i = 0; i < 20; i++) {
		j = socket(AF_INET, SOCK_DGRAM, 0);
		if (j < 0 || close(j) < 0)
			res->errors++;
	}
	if (close(fd) < 0)
		res->errors++;
	return NULL;
}

static void sc_threads(void)
{
	struct thread_result res[NTHREADS] = {};
	pthread_t th[NTHREADS];
	int i;

	for (i = 0; i < NTHREADS; i++) {
		res[i].idx = i;
		check(!pthread_create(&th[i], NULL, io_thread, &res[i]), "pthread_create");
	}
	for (i = 0; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < NTHREADS; i++) {
		printf("thread %d: bytes %ld errors %d sum %08x %s\n", i, res[i].bytes, res[i].errors,
		       res[i].recv_sum, res[i].recv_sum == res[i].sent_sum ? "match" : "MISMATCH");
		check(!res[i].errors && res[i].recv_sum == res[i].sent_sum, "thread %d I/O", i);
	}
	lowest_free();
}

static void sc_nbconnect(void)
{
	struct sockaddr_in sin = sin_of(world_ip, ECHO_PORT), bad = sin_of(world_ip, CLOSED_PORT);
	struct sockaddr_storage ss;
	socklen_t len, elen;
	int s, err = -1, i;

	s = T(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK)");
	T(connect(s, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d, %s:%d)", s, world_ip, ECHO_PORT);
	for (i = 0; i < 500; i++) {
		len = sizeof(ss);
		if (!getpeername(s, (struct sockaddr *)&ss, &len))
			break;
		sleep_ms(10);
	}
	print_name(s, true, false);
	elen = sizeof(err);
	T(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen), "getsockopt(%d, SO_ERROR) -> %d", s, err);
	T(connect(s, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d) again", s);
	T(fcntl(s, F_SETFL, 0), "fcntl(%d, F_SETFL, 0)", s);
	echo(s, s, "nonblocking connect");

	s = T(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK)");
	T(connect(s, (struct sockaddr *)&bad, sizeof(bad)), "connect(%d, %s:%d)", s, world_ip, CLOSED_PORT);
	for (i = 0; i < 500; i++) {
		elen = sizeof(err);
		err = 0;
		if (getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err)
			break;
		sleep_ms(10);
	}
	printf("getsockopt(%d, SO_ERROR) after wait -> %s\n", s, err ? strerrorname_np(err) : "0");
	elen = sizeof(err);
	T(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &elen), "getsockopt(%d, SO_ERROR) -> %d", s, err);
	lowest_free();
}

static void sc_names(void)
{
	struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT), far = sin_of(world_ip, SERVICE_PORT);
	struct sockaddr_storage ss;
	socklen_t len;
	int s, b, c, v, one = 1, val;

	s = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	print_name(s, false, false);
	print_name(s, true, false);
	T(close(s), "close(%d)", s);
	s = tcp_connect(ECHO_PORT);
	print_name(s, false, true);
	print_name(s, true, false);
	len = 4;
	T(getsockname(s, (struct sockaddr *)&ss, &len), "getsockname(%d, len 4) -> len %u", s, len);

	b = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(setsockopt(b, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), "setsockopt(%d, SO_REUSEADDR, 1)", b);
	len = sizeof(val);
	T(getsockopt(b, SOL_SOCKET, SO_REUSEADDR, &val, &len), "getsockopt(%d, SO_REUSEADDR) -> %d len %u", b, val, len);
	T(bind(b, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d, %s:%d)", b, service_ip, SERVICE_PORT);
	print_name(b, false, false);
	T(bind(b, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d) again", b);
	T(listen(b, 4), "listen(%d, 4)", b);
	len = sizeof(val);
	T(getsockopt(b, SOL_SOCKET, SO_ACCEPTCONN, &val, &len), "getsockopt(%d, SO_ACCEPTCONN) -> %d", b, val);
	len = sizeof(val);
	T(getsockopt(b, SOL_SOCKET, SO_TYPE, &val, &len), "getsockopt(%d, SO_TYPE) -> %d", b, val);
	len = sizeof(val);
	T(getsockopt(b, SOL_SOCKET, SO_DOMAIN, &val, &len), "getsockopt(%d, SO_DOMAIN) -> %d", b, val);
	len = sizeof(val);
	T(getsockopt(b, SOL_SOCKET, SO_PROTOCOL, &val, &len), "getsockopt(%d, SO_PROTOCOL) -> %d", b, val);
	len = sizeof(val);
	T(getsockopt(b, IPPROTO_TCP, 9999, &val, &len), "getsockopt(%d, IPPROTO_TCP, 9999)", b);

	c = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(bind(c, (struct sockaddr *)&far, sizeof(far)), "bind(%d, %s:%d)", c, world_ip, SERVICE_PORT);
	T(bind(c, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d, %s:%d)", c, service_ip, SERVICE_PORT);
	v = T(socket(AF_INET6, SOCK_STREAM, 0), "socket(AF_INET6, SOCK_STREAM)");
	print_name(v, false, false);
	lowest_free();
}

static void sc_accept(void)
{
	struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT + 1);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int l, c, a, b, one = 1;
	char buf[16] = "";

	l = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)), "setsockopt(%d, SO_REUSEADDR, 1)", l);
	T(bind(l, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d, %s:%d)", l, service_ip, SERVICE_PORT + 1);
	T(listen(l, 4), "listen(%d, 4)", l);
	c = tcp_connect_flags(service_ip, SERVICE_PORT + 1, 0);
	a = T(accept(l, (struct sockaddr *)&ss, &len), "accept(%d) -> len %u", l, len);
	print_name(a, true, true);
	print_name(a, false, false);
	T(send(c, "hi", 2, 0), "send(%d, \"hi\")", c);
	T(recv_exact(a, buf, 2), "recv(%d) \"%s\"", a, buf);
	T(fcntl(a, F_GETFD), "fcntl(%d, F_GETFD)", a);
	tcp_connect_flags(service_ip, SERVICE_PORT + 1, 0);
	b = T(accept4(l, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK), "accept4(%d, SOCK_CLOEXEC|SOCK_NONBLOCK)", l);
	T(fcntl(b, F_GETFD), "fcntl(%d, F_GETFD)", b);
	getfl(b);
	T(recv(b, buf, sizeof(buf), 0), "recv(%d)", b);
	T(fcntl(l, F_SETFL, O_NONBLOCK), "fcntl(%d, F_SETFL, O_NONBLOCK)", l);
	T(accept(l, NULL, NULL), "accept(%d) (nonblocking, no client)", l);
	T(accept(c, NULL, NULL), "accept(%d) (not listening)", c);
	lowest_free();
}

static void sc_shutdown(void)
{
	char buf[16] = "";
	int s, u, t;

	s = tcp_connect(ECHO_PORT);
	T(send(s, "bye", 3, 0), "send(%d, \"bye\")", s);
	T(shutdown(s, SHUT_WR), "shutdown(%d, SHUT_WR)", s);
	T(recv_exact(s, buf, 3), "recv(%d) \"%s\"", s, buf);
	T(recv(s, buf, sizeof(buf), 0), "recv(%d) (EOF)", s);
	T(send(s, "x", 1, MSG_NOSIGNAL), "send(%d) after SHUT_WR", s);
	T(shutdown(s, 7), "shutdown(%d, 7)", s);
	u = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(shutdown(u, SHUT_RDWR), "shutdown(%d, SHUT_RDWR) unconnected", u);
	t = tcp_connect(ECHO_PORT);
	T(shutdown(t, SHUT_RD), "shutdown(%d, SHUT_RD)", t);
	T(recv(t, buf, sizeof(buf), 0), "recv(%d) after SHUT_RD", t);
	lowest_free();
}

static void sc_udp(void)
{
	struct sockaddr_in sin = sin_of(world_ip, ECHO_PORT);
	struct sockaddr_storage from;
	socklen_t len = sizeof(from);
	char buf[32] = "";
	int u;

	u = T(socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET, SOCK_DGRAM)");
	T(sendto(u, "ping", 4, 0, (struct sockaddr *)&sin, sizeof(sin)), "sendto(%d, \"ping\", %s:%d)", u,
	  world_ip, ECHO_PORT);
	T(recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &len), "recvfrom(%d) \"%s\" from %s",
	  u, buf, addr_str((struct sockaddr *)&from, len, false));
	T(recvfrom(u, buf, sizeof(buf), MSG_DONTWAIT, NULL, NULL), "recvfrom(%d, MSG_DONTWAIT)", u);
	T(connect(u, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d, %s:%d)", u, world_ip, ECHO_PORT);
	print_name(u, true, false);
	print_name(u, false, true);
	T(send(u, "0123456789", 10, 0), "send(%d, 10)", u);
	memset(buf, 0, sizeof(buf));
	T(recv(u, buf, 4, MSG_TRUNC), "recv(%d, 4, MSG_TRUNC) \"%.4s\"", u, buf);
	T(send(u, "peek", 4, 0), "send(%d, 4)", u);
	memset(buf, 0, sizeof(buf));
	T(recv(u, buf, sizeof(buf), MSG_PEEK), "recv(%d, MSG_PEEK) \"%s\"", u, buf);
	memset(buf, 0, sizeof(buf));
	T(recv(u, buf, sizeof(buf), 0), "recv(%d) \"%s\"", u, buf);
	lowest_free();
}

static void sc_iov(void)
{
	char a[4] = "", b[4] = "", c[4] = "";
	struct iovec out[3] = { { "abc", 3 }, { "defgh", 5 }, { "ij", 2 } };
	struct iovec in[3] = { { a, 4 }, { b, 4 }, { c, 4 } };
	int s, n = 0, i;

	s = tcp_connect(ECHO_PORT);
	T(writev(s, out, 3), "writev(%d, 3 iovecs)", s);
	for (i = 0; i < 500; i++) {
		if (ioctl(s, FIONREAD, &n) < 0 || n >= 10)
			break;
		sleep_ms(10);
	}
	T(readv(s, in, 3), "readv(%d, 4+4+4) \"%.4s|%.4s|%.4s\"", s, a, b, c);
	T(readv(s, in, 0), "readv(%d, 0 iovecs)", s);
	T(syscall(SYS_writev, s, out, -1), "writev(%d, -1 iovecs)", s);
	T(preadv(s, in, 1, 0), "preadv(%d)", s);
	T(pwritev(s, out, 1, 0), "pwritev(%d)", s);
	lowest_free();
}

static void sc_msg(void)
{
	struct sockaddr_in sin = sin_of(world_ip, ECHO_PORT);
	struct sockaddr_storage from;
	char a[8] = "", b[8] = "";
	struct iovec out[2] = { { "hello ", 6 }, { "msg", 3 } };
	struct iovec in[2] = { { a, 5 }, { b, 4 } };
	struct msghdr m = { .msg_iov = out, .msg_iovlen = 2 };
	int s, u;

	s = tcp_connect(ECHO_PORT);
	T(sendmsg(s, &m, 0), "sendmsg(%d, 2 iovecs)", s);
	memset(&m, 0, sizeof(m));
	m.msg_iov = in;
	m.msg_iovlen = 2;
	m.msg_name = &from;
	m.msg_namelen = sizeof(from);
	T(recvmsg(s, &m, MSG_WAITALL), "recvmsg(%d, 5+4, MSG_WAITALL) \"%.5s|%.4s\" namelen %u flags %#x",
	  s, a, b, m.msg_namelen, m.msg_flags);
	T(recvmsg(s, &m, MSG_DONTWAIT), "recvmsg(%d, MSG_DONTWAIT)", s);

	u = T(socket(AF_INET, SOCK_DGRAM, 0), "socket(AF_INET, SOCK_DGRAM)");
	memset(&m, 0, sizeof(m));
	m.msg_iov = out;
	m.msg_iovlen = 2;
	m.msg_name = &sin;
	m.msg_namelen = sizeof(sin);
	T(sendmsg(u, &m, 0), "sendmsg(%d, 2 iovecs, to %s:%d)", u, world_ip, ECHO_PORT);
	memset(&m, 0, sizeof(m));
	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	m.msg_iov = in;
	m.msg_iovlen = 1;
	m.msg_name = &from;
	m.msg_namelen = sizeof(from);
	T(recvmsg(u, &m, 0), "recvmsg(%d, 5) \"%.5s\" from %s flags %s", u, a,
	  addr_str((struct sockaddr *)&from, m.msg_namelen, false),
	  m.msg_flags & MSG_TRUNC ? "MSG_TRUNC" : "0");
	lowest_free();
}

static void sc_refused(void)
{
	struct sockaddr_in bad = sin_of(world_ip, CLOSED_PORT), good = sin_of(world_ip, ECHO_PORT);
	socklen_t len = sizeof(int);
	int s, err = -1;

	s = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
	T(connect(s, (struct sockaddr *)&bad, sizeof(bad)), "connect(%d, %s:%d)", s, world_ip, CLOSED_PORT);
	T(connect(s, (struct sockaddr *)&bad, sizeof(bad)), "connect(%d, %s:%d)", s, world_ip, CLOSED_PORT);
	T(getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len), "getsockopt(%d, SO_ERROR) -> %d", s, err);
	T(connect(s, (struct sockaddr *)&good, sizeof(good)), "connect(%d, %s:%d)", s, world_ip, ECHO_PORT);
	echo(s, s, "after refused");
	lowest_free();
}

static volatile sig_atomic_t signals;

static void on_signal(int sig)
{
	(void)sig;
	signals++;
}

struct later {
	pthread_t target;
	int fd;			/* send "late" on it after the signal, or -1 */
};

/* Signal the blocked main thread after 200 ms, then maybe send data 400 ms later. */
static void *later_thread(void *arg)
{
	struct later *l = arg;

	sleep_ms(200);
	pthread_kill(l->target, SIGUSR1);
	if (l->fd >= 0) {
		sleep_ms(400);
		send(l->fd, "late", 4, 0);
	}
	return NULL;
}

static void sc_eintr(void)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct later l = { .target = pthread_self(), .fd = -1 };
	char buf[8] = "";
	pthread_t th;
	int s;

	s = tcp_connect(ECHO_PORT);
	/* No SA_RESTART: a blocked remote recv fails with EINTR and eats no data. */
	T(sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1, no SA_RESTART)");
	pthread_create(&th, NULL, later_thread, &l);
	T(recv(s, buf, sizeof(buf), 0), "recv(%d) interrupted", s);
	pthread_join(th, NULL);
	printf("signals = %d\n", signals);
	echo(s, s, "after EINTR");

	/* SA_RESTART: the same recv is restarted and gets the data sent later. */
	sa.sa_flags = SA_RESTART;
	T(sigaction(SIGUSR1, &sa, NULL), "sigaction(SIGUSR1, SA_RESTART)");
	l.fd = s;
	pthread_create(&th, NULL, later_thread, &l);
	T(recv(s, buf, 4, MSG_WAITALL), "recv(%d, 4, MSG_WAITALL) restarted \"%.4s\"", s, buf);
	pthread_join(th, NULL);
	printf("signals = %d\n", signals);
	echo(s, s, "after restart");
	lowest_free();
}

static void sc_rcvtimeo(void)
{
	struct timeval tv = { 0, 200000 }, got = { 0, 0 };
	socklen_t len = sizeof(got);
	char buf[8];
	int s;

	s = tcp_connect(ECHO_PORT);
	T(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), "setsockopt(%d, SO_RCVTIMEO, 200 ms)", s);
	T(getsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &got, &len), "getsockopt(%d, SO_RCVTIMEO) -> %ld.%06ld len %u",
	  s, (long)got.tv_sec, (long)got.tv_usec, len);
	T(recv(s, buf, sizeof(buf), 0), "recv(%d) timed out", s);
	echo(s, s, "after timeout");
	lowest_free();
}

#define BIG	(1024 * 1024)
#define WAITALL	(600 * 1024)

struct sender {
	int fd;
	size_t len;
	const unsigned char *buf;
	ssize_t ret;
};

static void *send_thread(void *arg)
{
	struct sender *sd = arg;

	sd->ret = send(sd->fd, sd->buf, sd->len, 0);
	return NULL;
}

/* One call moving more than a wire frame's payload: blocking send/recv are not cut short. */
static void sc_bigio(void)
{
	unsigned char *out = malloc(BIG), *in = malloc(BIG);
	struct sender sd;
	pthread_t th;
	ssize_t r;
	size_t i;
	int s;

	for (i = 0; i < BIG; i++)
		out[i] = (unsigned char)(i * 131 + (i >> 12));
	s = tcp_connect(ECHO_PORT);
	sd = (struct sender){ .fd = s, .len = BIG, .buf = out };
	pthread_create(&th, NULL, send_thread, &sd);
	r = recv_exact(s, in, BIG);
	pthread_join(th, NULL);
	printf("send(%d, %d) = %zd\n", s, BIG, sd.ret);
	printf("received %zd bytes, %s\n", r, r == BIG && !memcmp(in, out, BIG) ? "match" : "MISMATCH");
	check(sd.ret == BIG && r == BIG && !memcmp(in, out, BIG), "1 MiB echo");

	sd = (struct sender){ .fd = s, .len = WAITALL, .buf = out + 1 };
	pthread_create(&th, NULL, send_thread, &sd);
	memset(in, 0, BIG);
	T(recv(s, in, WAITALL, MSG_WAITALL), "recv(%d, %d, MSG_WAITALL) %s", s, WAITALL,
	  !memcmp(in, out + 1, WAITALL) ? "match" : "MISMATCH");
	pthread_join(th, NULL);
	printf("send(%d, %d) = %zd\n", s, WAITALL, sd.ret);
	free(out);
	free(in);
	lowest_free();
}

#define BEHIND_ROUNDS	300
#define BEHIND_LEN	61000
#define SLOW_TOTAL	(512 * 1024)	/* sent to a slow reader, in SLOW_CHUNK sends */
#define SLOW_CHUNK	(16 * 1024)
#define SLOW_READ	4096		/* the reader's bites, one a millisecond */

static unsigned char slow_byte(size_t p)
{
	return (unsigned char)(p * 131 + (p >> 16));
}

/* Reads its socket slowly until EOF: the bytes that came, and whether each was the one sent. */
struct slow_reader {
	int fd;
	size_t got;
	bool match;
};

static void *slow_read(void *arg)
{
	struct slow_reader *sr = arg;
	unsigned char buf[SLOW_READ];
	ssize_t r, i;

	sr->match = true;
	while ((r = recv(sr->fd, buf, sizeof(buf), 0)) > 0) {
		for (i = 0; i < r; i++)
			sr->match &= buf[i] == slow_byte(sr->got + i);
		sr->got += r;
		usleep(1000);
	}
	return NULL;
}

/*
 * Blocking sends on a connected TCP stream, which rsys answers once their
 * bytes are copied and makes at the delegate meanwhile (write-behind):
 * round trips, sends back to back and a shutdown right after them lose and
 * reorder nothing.
 */
static void sc_behind(void)
{
	unsigned char *out = malloc(BEHIND_LEN), *in = malloc(BEHIND_LEN);
	char msg[16], buf[16];
	int s, i, echoed = 0;
	ssize_t r;

	for (i = 0; i < BEHIND_LEN; i++)
		out[i] = (unsigned char)(i * 7 + (i >> 9));
	s = tcp_connect(ECHO_PORT);
	for (i = 0; i < BEHIND_ROUNDS; i++) {
		snprintf(msg, sizeof(msg), "ping %08d", i);
		if (send(s, msg, 13, MSG_NOSIGNAL) == 13 && recv_exact(s, buf, 13) == 13 &&
		    !memcmp(buf, msg, 13))
			echoed++;
	}
	printf("%d round trips: %d echoed\n", BEHIND_ROUNDS, echoed);
	check(echoed == BEHIND_ROUNDS, "round trips");
	T(send(s, out, 1000, 0), "send(%d, 1000)", s);
	T(send(s, out + 1000, 20000, 0), "send(%d, 20000)", s);
	T(send(s, out + 21000, BEHIND_LEN - 21000, 0), "send(%d, %d)", s, BEHIND_LEN - 21000);
	T(shutdown(s, SHUT_WR), "shutdown(%d, SHUT_WR)", s);
	T(send(s, out, 1, MSG_NOSIGNAL), "send(%d, 1) after shutdown", s);
	r = recv_exact(s, in, BEHIND_LEN);
	printf("echoed %zd bytes, %s\n", r, r == BEHIND_LEN && !memcmp(in, out, BEHIND_LEN) ?
	       "match" : "MISMATCH");
	check(r == BEHIND_LEN && !memcmp(in, out, BEHIND_LEN), "sends then shutdown");
	T(recv(s, in, 1, 0), "recv(%d, 1) at the end", s);
	T(close(s), "close(%d)", s);
	free(out);
	free(in);

	/*
	 * A peer that reads slowly through small buffers: every send waits for
	 * room, so the last one is still at the delegate when shutdown comes.
	 */
	{
		struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT + 5);
		struct slow_reader sr = { .fd = -1 };
		int l, c, one = 1, small = 16 * 1024;
		unsigned char chunk[SLOW_CHUNK];
		size_t sent = 0;
		pthread_t th;

		l = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		T(setsockopt(l, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), "setsockopt(%d, SO_RCVBUF)", l);
		T(bind(l, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d, %s:%d)", l, service_ip,
		  SERVICE_PORT + 5);
		T(listen(l, 1), "listen(%d, 1)", l);
		c = socket(AF_INET, SOCK_STREAM, 0);
		T(setsockopt(c, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), "setsockopt(%d, SO_SNDBUF)", c);
		T(connect(c, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d)", c);
		sr.fd = T(accept(l, NULL, NULL), "accept(%d)", l);
		pthread_create(&th, NULL, slow_read, &sr);
		while (sent < SLOW_TOTAL) {
			for (i = 0; i < SLOW_CHUNK; i++)
				chunk[i] = slow_byte(sent + i);
			if (send(c, chunk, SLOW_CHUNK, 0) != SLOW_CHUNK)
				break;
			sent += SLOW_CHUNK;
		}
		printf("sent %zu bytes in %d-byte sends\n", sent, SLOW_CHUNK);
		T(shutdown(c, SHUT_WR), "shutdown(%d, SHUT_WR)", c);
		pthread_join(th, NULL);
		printf("the slow reader got %zu bytes then EOF, %s\n", sr.got, sr.match ? "match" : "MISMATCH");
		check(sent == SLOW_TOTAL && sr.got == SLOW_TOTAL && sr.match, "sends to a slow reader");
		T(close(sr.fd), "close(%d)", sr.fd);
		T(close(c), "close(%d)", c);
		T(close(l), "close(%d)", l);
	}

	/*
	 * The peer resets the connection after a send got through; the next
	 * send meets the reset. Linux reports it to that send, or to SO_ERROR
	 * when the send went out first: once either way, then EPIPE.
	 */
	{
		struct sockaddr_in sin = sin_of(service_ip, SERVICE_PORT + 6);
		struct linger lg = { .l_onoff = 1, .l_linger = 0 };
		socklen_t len = sizeof(int);
		struct pollfd p;
		int l, c, a, one = 1, err = 0, send_err = 0, seen;
		char b;

		l = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
		setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		T(bind(l, (struct sockaddr *)&sin, sizeof(sin)), "bind(%d, %s:%d)", l, service_ip,
		  SERVICE_PORT + 6);
		T(listen(l, 1), "listen(%d, 1)", l);
		c = T(socket(AF_INET, SOCK_STREAM, 0), "socket(AF_INET, SOCK_STREAM)");
		T(connect(c, (struct sockaddr *)&sin, sizeof(sin)), "connect(%d)", c);
		a = T(accept(l, NULL, NULL), "accept(%d)", l);
		T(send(c, "x", 1, MSG_NOSIGNAL), "send(%d, 1)", c);
		T(recv(a, &b, 1, 0), "recv(%d, 1)", a);
		T(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), "setsockopt(%d, SO_LINGER 0)", a);
		T(close(a), "close(%d): reset", a);
		p = (struct pollfd){ .fd = c, .events = POLLIN };
		T(poll(&p, 1, 5000), "poll(%d) for the reset", c);
		if (send(c, "y", 1, MSG_NOSIGNAL) < 0)
			send_err = errno;
		getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &len);
		seen = !!send_err + !!err;
		printf("the reset was reported %d time(s): %s\n", seen,
		       strerror(send_err ? send_err : err));
		check(seen == 1 && (send_err ? send_err : err) == ECONNRESET, "a reset after a send");
		T(send(c, "z", 1, MSG_NOSIGNAL), "send(%d, 1) after the reset", c);
		T(close(c), "close(%d)", c);
		T(close(l), "close(%d)", l);
	}
	lowest_free();
}

#define EXIT_LAST	(64 * 1024)	/* send_exit's last send */

/*
 * fdsem sendexit TOKEN BYTES: BYTES to the hold service under TOKEN in
 * SLOW_CHUNK sends, the last EXIT_LAST bytes in one, through a small send
 * buffer, then exit at once, the socket open: the kernel sends what it took
 * after the program is gone, and so must rsys (fdsem_test.sh asks the world
 * how many bytes came). Under a "held-" TOKEN the world reads nothing until
 * the test releases it, so the last send, more than both ends' buffers
 * hold, outlasts the program at the delegate (natively: in its send()).
 */
static void send_exit(const char *token, size_t total)
{
	static unsigned char chunk[EXIT_LAST];
	int fd, small = 4 * 1024;
	size_t sent = 0, i, n;

	fd = hold_connect(token, 0);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	while (sent < total) {
		n = total - sent;	/* the last EXIT_LAST bytes in one send */
		if (n > EXIT_LAST)
			n = n - EXIT_LAST < SLOW_CHUNK ? n - EXIT_LAST : SLOW_CHUNK;
		for (i = 0; i < n; i++)
			chunk[i] = slow_byte(sent + i);
		if (send(fd, chunk, n, 0) != (ssize_t)n)
			break;
		sent += n;
	}
	printf("sent %zu bytes\n", sent);
	_exit(sent == total ? KSFT_PASS : KSFT_FAIL);
}

/* posix_spawn (clone with CLONE_VM|CLONE_VFORK) inherits remote fds except close-on-exec ones. */
static void sc_spawn(void)
{
	char *argv[] = { (char *)self_exe, "spawn-child", NULL };
	char *fa_argv[] = { (char *)self_exe, "spawn-child-fa", NULL };
	posix_spawn_file_actions_t fa;
	extern char **environ;
	int s, t, err, status = 0;
	pid_t pid;

	s = tcp_connect(ECHO_PORT);
	tcp_connect_flags(world_ip, ECHO_PORT, SOCK_CLOEXEC);
	fflush(stdout);
	/* The child prints first: report the parent's side once it is gone. */
	err = posix_spawn(&pid, self_exe, NULL, NULL, argv, environ);
	if (!err)
		waitpid(pid, &status, 0);
	printf("posix_spawn(spawn-child) = %s\n", err ? strerrorname_np(err) : "0");
	printf("child exit = %d\n", !err && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	echo(s, s, "parent after spawn");

	/* File actions run in the child on its own table: the parent's fds stay as they were. */
	t = tcp_connect(ECHO_PORT);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, s, 10);
	posix_spawn_file_actions_addclose(&fa, t);
	fflush(stdout);
	err = posix_spawn(&pid, self_exe, &fa, NULL, fa_argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (!err)
		waitpid(pid, &status, 0);
	printf("posix_spawn(spawn-child-fa, dup2 %d to 10, close %d) = %s\n", s, t,
	       err ? strerrorname_np(err) : "0");
	printf("child exit = %d\n", !err && WIFEXITED(status) ? WEXITSTATUS(status) : -1);
	T(fcntl(10, F_GETFD), "fcntl(10, F_GETFD)");
	echo(t, t, "parent's fd the child closed");
	echo(s, s, "parent's fd the child dup'ed");
	lowest_free();
}

static void spawn_child_fa(void)
{
	printf("-- spawned child, file actions\n");
	T(fcntl(10, F_GETFD), "fcntl(10, F_GETFD)");
	T(fcntl(5, F_GETFD), "fcntl(5, F_GETFD)");
	echo(10, 10, "spawned child, fd 10");
	lowest_free();
}

static void spawn_child(void)
{
	printf("-- spawned child\n");
	T(fcntl(3, F_GETFD), "fcntl(3, F_GETFD)");
	T(fcntl(4, F_GETFD), "fcntl(4, F_GETFD)");
	echo(3, 3, "spawned child");
	lowest_free();
}

static const struct scenario {
	const char *name;
	void (*fn)(void);
} scenarios[] = {
	{ "numbering", sc_numbering },
	{ "dup", sc_dup },
	{ "fcntl", sc_fcntl },
	{ "nonblock", sc_nonblock },
	{ "nbwait", sc_nbwait },
	{ "closeport", sc_closeport },
	{ "closeport_dup2", sc_closeport_dup2 },
	{ "closeport_range", sc_closeport_range },
	{ "closeport_exit", sc_closeport_exit },
	{ "closeport_exec", sc_closeport_exec },
	{ "cmsg", sc_cmsg },
	{ "ebadf", sc_ebadf },
	{ "emfile", sc_emfile },
	{ "cloexec", sc_cloexec },
	{ "fork", sc_fork },
	{ "threads", sc_threads },
	{ "nbconnect", sc_nbconnect },
	{ "names", sc_names },
	{ "accept", sc_accept },
	{ "shutdown", sc_shutdown },
	{ "udp", sc_udp },
	{ "iov", sc_iov },
	{ "msg", sc_msg },
	{ "refused", sc_refused },
	{ "eintr", sc_eintr },
	{ "rcvtimeo", sc_rcvtimeo },
	{ "bigio", sc_bigio },
	{ "spawn", sc_spawn },
	{ "behind", sc_behind },
};

#define N_SCENARIOS (sizeof(scenarios) / sizeof(scenarios[0]))

int main(int argc, char **argv)
{
	const char *env;
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	self_exe = "/proc/self/exe";
	if ((env = getenv("RSYS_WORLD_IP")))
		world_ip = env;
	if ((env = getenv("RSYS_SERVICE_IP")))
		service_ip = env;
	if (argc == 2 && !strcmp(argv[1], "--list")) {
		for (i = 0; i < N_SCENARIOS; i++)
			printf("%s\n", scenarios[i].name);
		return 0;
	}
	if (argc == 2 && !strcmp(argv[1], "spawn-child")) {
		spawn_child();
		return failed ? KSFT_FAIL : KSFT_PASS;
	}
	if (argc == 2 && !strcmp(argv[1], "spawn-child-fa")) {
		spawn_child_fa();
		return failed ? KSFT_FAIL : KSFT_PASS;
	}
	if (argc == 6 && !strcmp(argv[1], "closeport-exec")) {
		closeport_exec_round(argv);
		return failed ? KSFT_FAIL : KSFT_PASS;
	}
	if (argc == 3 && !strcmp(argv[1], "cloexec-child")) {
		cloexec_child(argv[2]);
		return failed ? KSFT_FAIL : KSFT_PASS;
	}
	if (argc == 4 && !strcmp(argv[1], "sendexit")) {
		send_exit(argv[2], strtoul(argv[3], NULL, 0));
		return KSFT_FAIL;	/* not reached */
	}
	if (argc != 2) {
		fprintf(stderr, "Usage: %s SCENARIO | --list (run by selftests/fdsem_test.sh)\n", argv[0]);
		return KSFT_FAIL;
	}
	/*
	 * Same start everywhere: only 0-2 open, a bound on run time (survives
	 * execve; RSYS_FDSEM_ALARM seconds where calls are slow: a nested VM).
	 */
	close_range(3, ~0U, 0);
	env = getenv("RSYS_FDSEM_ALARM");
	alarm(env && atoi(env) > 0 ? atoi(env) : 30);
	for (i = 0; i < N_SCENARIOS; i++) {
		if (strcmp(argv[1], scenarios[i].name))
			continue;
		printf("-- %s\n", scenarios[i].name);
		scenarios[i].fn();
		return failed ? KSFT_FAIL : KSFT_PASS;
	}
	fprintf(stderr, "Error: unknown scenario '%s' (fdsem --list)\n", argv[1]);
	return KSFT_FAIL;
}
