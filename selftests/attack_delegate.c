// SPDX-License-Identifier: GPL-2.0
/* Attacks on rsys-delegate over the raw wire protocol, and their native controls; driven by attack_delegate_test.sh. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <sys/socket.h>

#include "wire.h"

#ifndef SO_ZEROCOPY
#define SO_ZEROCOPY	60
#endif
#ifndef MSG_ZEROCOPY
#define MSG_ZEROCOPY	0x4000000
#endif

#define TOKEN		"rsys-attack-token\n"

/* An IPv4 or IPv6 literal and a port as a sockaddr; its length, or 0. */
static socklen_t sockaddr_of(const char *host, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(atoi(port));
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(atoi(port));
		return sizeof(*sin6);
	}
	return 0;
}

/* A wire result as the shell compares it: "0", a count, or the errno name. */
static const char *res(int64_t ret)
{
	static char buf[32];

	if (ret == INT64_MIN)
		return "NOREPLY";
	if (ret >= 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)ret);
		return buf;
	}
	return strerrorname_np(-ret) ?: "E?";
}

static int64_t d_socket(int fd, int family, int type)
{
	return call(fd, RSYS_OP_SOCKET, NULL, 0, family, type, 0, 0, NULL);
}

/* A TCP socket of session @fd connected to @ss: its handle, or -1. */
static int64_t d_connected(int fd, const struct sockaddr_storage *ss, socklen_t len)
{
	int64_t h = d_socket(fd, ss->ss_family, SOCK_STREAM);

	return h < 0 || call(fd, RSYS_OP_CONNECT, ss, len, h, 0, 0, 0, NULL) ? -1 : h;
}

/* Through the delegate: connect to HOST:PORT, send TOKEN, read the echo. 0 when it came back. */
static int fetch(int fd, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(host, port, &ss);
	int64_t h, ret;

	h = d_socket(fd, ss.ss_family, SOCK_STREAM);
	if (h < 0 || !len) {
		printf("socket -> %s\n", res(h));
		return 1;
	}
	ret = call(fd, RSYS_OP_CONNECT, &ss, len, h, 0, 0, 0, NULL);
	if (ret) {
		printf("connect -> %s\n", res(ret));
		return 1;
	}
	ret = call(fd, RSYS_OP_SEND, TOKEN, strlen(TOKEN), h, 0, 0, 0, NULL);
	ret = ret < 0 ? ret : call(fd, RSYS_OP_RECV, NULL, 0, h, 256, 0, 0, NULL);
	if (ret != (int64_t)strlen(TOKEN) || memcmp(rbuf, TOKEN, ret)) {
		printf("send/recv -> %s\n", res(ret));
		return 1;
	}
	call(fd, RSYS_OP_CLOSE, NULL, 0, h, 0, 0, 0, NULL);
	return 0;
}

static int become(uid_t uid)
{
	if (!uid)
		return 0;
	if (setgroups(0, NULL) || setgid(uid) || setuid(uid)) {
		perror("setuid");
		return -1;
	}
	return 0;
}

/* fetch ADDR UID HOST PORT: as UID, fetch the echo of the world through the delegate. */
static int cmd_fetch(char **av)
{
	int fd;

	if (become(atoi(av[1])))
		return 2;
	fd = addr_connect(av[0], stdout);
	if (fd < 0)
		return 1;
	if (call(fd, RSYS_OP_HELLO, NULL, 0, RSYS_VERSION, 0, 0, 0, NULL) != RSYS_VERSION) {
		printf("no session: the delegate refused uid %s\n", av[1]);
		return 1;
	}
	if (fetch(fd, av[2], av[3]))
		return 1;
	printf("fetched the world's echo as uid %s\n", av[1]);
	return 0;
}

/* The options of the attacks: source routes, root-only buffer sizes, zerocopy. */
static const struct {
	const char *name;
	int family, level, opt;
	uint8_t val[24];
	socklen_t len;
} bad_opts[] = {
	/* Loose source route via 198.18.0.1: type 131, length 7, pointer 4. */
	{ "IP_OPTIONS(LSRR)", AF_INET, IPPROTO_IP, IP_OPTIONS, { 131, 7, 4, 198, 18, 0, 1, 0 }, 8 },
	/* Segment routing header (type 4) with one segment, 2001:db8::1. */
	{ "IPV6_RTHDR(SRH)", AF_INET6, IPPROTO_IPV6, IPV6_RTHDR,
	  { 0, 2, 4, 0, 0, 0, 0, 0, 0x20, 0x01, 0x0d, 0xb8, [23] = 1 }, 24 },
	{ "SO_RCVBUFFORCE", AF_INET, SOL_SOCKET, SO_RCVBUFFORCE, { 0, 0, 0x10 }, 4 },
	{ "SO_ZEROCOPY", AF_INET, SOL_SOCKET, SO_ZEROCOPY, { 1 }, 4 },
	{ "SO_MARK", AF_INET, SOL_SOCKET, SO_MARK, { 1 }, 4 },
	{ "IP_TRANSPARENT", AF_INET, IPPROTO_IP, IP_TRANSPARENT, { 1 }, 4 },
};

/* opts ADDR: each option through the delegate; 0 when every one is refused. */
static int cmd_opts(char **av)
{
	int fd = session_connect(av[0]), bad = 0;
	size_t i;

	if (fd < 0)
		return 2;
	for (i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		int64_t h = d_socket(fd, bad_opts[i].family, SOCK_STREAM), ret;

		ret = call(fd, RSYS_OP_SETSOCKOPT, bad_opts[i].val, bad_opts[i].len, h,
			   bad_opts[i].level, bad_opts[i].opt, 0, NULL);
		printf("delegate: setsockopt %s -> %s\n", bad_opts[i].name, res(ret));
		bad += ret != -ENOPROTOOPT;
		call(fd, RSYS_OP_CLOSE, NULL, 0, h, 0, 0, 0, NULL);
	}
	return !!bad;
}

/* native-opts: the same options natively as root; 0 when the kernel takes every one. */
static int cmd_native_opts(char **av)
{
	int bad = 0;
	size_t i;

	(void)av;
	for (i = 0; i < sizeof(bad_opts) / sizeof(bad_opts[0]); i++) {
		int s = socket(bad_opts[i].family, SOCK_STREAM, 0), ret;
		socklen_t len = bad_opts[i].len;

		ret = setsockopt(s, bad_opts[i].level, bad_opts[i].opt, bad_opts[i].val, len);
		printf("native: setsockopt %s -> %s\n", bad_opts[i].name,
		       ret ? strerrorname_np(errno) : "0");
		bad += ret != 0;
		close(s);
	}
	return !!bad;
}

/* zerocopy ADDR HOST PORT: a MSG_ZEROCOPY send through the delegate; 0 when refused. */
static int cmd_zerocopy(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[1], av[2], &ss);
	int fd = session_connect(av[0]);
	int64_t h, ret;

	if (fd < 0 || !len)
		return 2;
	h = d_socket(fd, ss.ss_family, SOCK_STREAM);
	ret = call(fd, RSYS_OP_CONNECT, &ss, len, h, 0, 0, 0, NULL);
	if (ret) {
		printf("connect -> %s\n", res(ret));
		return 2;
	}
	ret = call(fd, RSYS_OP_SEND, TOKEN, strlen(TOKEN), h, MSG_ZEROCOPY, 0, 0, NULL);
	printf("delegate: send(MSG_ZEROCOPY) -> %s\n", res(ret));
	ret = ret == -EPERM ? 0 : 1;
	/* The session goes on: an ordinary send still works. */
	if (call(fd, RSYS_OP_SEND, TOKEN, strlen(TOKEN), h, 0, 0, 0, NULL) != (int64_t)strlen(TOKEN))
		ret = 1;
	return ret;
}

/* native-zerocopy HOST PORT: SO_ZEROCOPY + MSG_ZEROCOPY natively; 0 when the kernel takes it. */
static int cmd_native_zerocopy(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[0], av[1], &ss);
	int s = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;
	ssize_t n;

	if (s < 0 || connect(s, (struct sockaddr *)&ss, len) ||
	    setsockopt(s, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one))) {
		printf("native: setup: %s\n", strerrorname_np(errno));
		return 1;
	}
	n = send(s, TOKEN, strlen(TOKEN), MSG_ZEROCOPY);
	printf("native: send(MSG_ZEROCOPY) -> %s\n", n < 0 ? strerrorname_np(errno) : "sent");
	return n < 0;
}

/* connect ADDR HOST PORT [v4]: a connect through the delegate from an IPv6 (or v4) socket; prints the result. */
static int cmd_connect(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[1], av[2], &ss);
	int fd = session_connect(av[0]);
	int64_t h;

	if (fd < 0 || !len)
		return 2;
	h = d_socket(fd, av[3] ? AF_INET : AF_INET6, SOCK_STREAM);
	printf("%s\n", res(call(fd, RSYS_OP_CONNECT, &ss, len, h, 0, 0, 0, NULL)));
	return 0;
}

/* bind ADDR HOST PORT V6ONLY: a bind of an IPv6 socket through the delegate; prints the result. */
static int cmd_bind(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[1], av[2], &ss);
	int fd = session_connect(av[0]), v6only = atoi(av[3]);
	int64_t h, ret;

	if (fd < 0 || !len)
		return 2;
	h = d_socket(fd, AF_INET6, SOCK_STREAM);
	ret = call(fd, RSYS_OP_SETSOCKOPT, &v6only, sizeof(v6only), h, IPPROTO_IPV6, IPV6_V6ONLY, 0,
		   NULL);
	if (!ret)
		ret = call(fd, RSYS_OP_BIND, &ss, len, h, 0, 0, 0, NULL);
	printf("%s\n", res(ret));
	return 0;
}

/* native-connect HOST PORT: natively from an IPv6 socket; prints the result. */
static int cmd_native_connect(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[0], av[1], &ss);
	int s = socket(AF_INET6, SOCK_STREAM, 0);

	printf("%s\n", connect(s, (struct sockaddr *)&ss, len) ? strerrorname_np(errno) : "0");
	return 0;
}

/* serve HOST PORT: listen (never accept: the backlog completes connects) until killed. */
static int cmd_serve(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[0], av[1], &ss);
	int s = socket(ss.ss_family, SOCK_STREAM, 0), one = 1;

	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6)
		setsockopt(s, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(s, (struct sockaddr *)&ss, len) || listen(s, 1024)) {
		perror("serve");
		return 1;
	}
	if (av[2])
		close(open(av[2], O_CREAT | O_WRONLY, 0600));
	for (;;)
		pause();
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* flood ADDR N HOST PORT: N connections that never say HELLO, then a legitimate session. */
static int cmd_flood(char **av)
{
	int n = atoi(av[1]), i, open_ = 0, fd, ret;
	double t0;

	for (i = 0; i < n; i++)
		open_ += addr_connect(av[0], NULL) >= 0;
	t0 = now_s();
	fd = session_connect(av[0]);
	ret = fd < 0 ? 1 : fetch(fd, av[2], av[3]);
	printf("%d idle connections open; legitimate session %s in %.3f s\n", open_,
	       ret ? "NOT served" : "served", now_s() - t0);
	return ret || open_ != n;
}

/* True when the delegate closed @fd (EOF or reset) within @ms. */
static bool closed_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;

	return poll(&p, 1, ms) == 1 && read(fd, &c, 1) <= 0;
}

/* idle ADDR SECONDS: one connection without HELLO, one with; only the first is dropped. */
static int cmd_idle(char **av)
{
	int ms = atoi(av[1]) * 1000, idle = addr_connect(av[0], NULL), live = session_connect(av[0]);
	struct rsys_frame half = { .magic = RSYS_MAGIC, .version = RSYS_VERSION, .op = RSYS_OP_HELLO };
	int slow = addr_connect(av[0], NULL);
	bool idle_closed, slow_closed, live_closed;

	/* Half a HELLO, then silence: the deadline is for the whole HELLO. */
	if (slow < 0 || write(slow, &half, 8) != 8)
		return 2;
	idle_closed = closed_within(idle, ms);
	slow_closed = closed_within(slow, 100);
	live_closed = closed_within(live, 0);
	printf("after %s s: no HELLO %s, half a HELLO %s, a session %s\n", av[1],
	       idle_closed ? "dropped" : "still open", slow_closed ? "dropped" : "still open",
	       live_closed ? "dropped" : "still open");
	return !(idle_closed && slow_closed && !live_closed);
}

/* sessions ADDR N: open N sessions; prints how many were served and the first refusal. */
static int cmd_sessions(char **av)
{
	int n = atoi(av[1]), i, served = 0, fd;
	int64_t ret, first_err = 0;

	for (i = 0; i < n; i++) {
		fd = addr_connect(av[0], NULL);
		ret = fd < 0 ? INT64_MIN : call(fd, RSYS_OP_HELLO, NULL, 0, RSYS_VERSION, 0, 0, 0, NULL);
		if (ret == RSYS_VERSION)
			served++;
		else if (!first_err)
			first_err = ret;
	}
	printf("%d served, first refusal %s\n", served, first_err ? res(first_err) : "none");
	return 0;
}

/* handles ADDR NSESS: sockets in NSESS sessions until each refuses one; prints the counts. */
static int cmd_handles(char **av)
{
	int n = atoi(av[1]), i, fd;
	int64_t h;

	for (i = 0; i < n; i++) {
		int got = 0;

		fd = session_connect(av[0]);
		if (fd < 0)
			return 2;
		while ((h = d_socket(fd, AF_INET, SOCK_STREAM)) >= 0)
			got++;
		printf("session %d: %d sockets, then %s\n", i, got, res(h));
	}
	return 0;
}

/*
 * threads ADDR NSESS HOST PORT: in each of NSESS sessions, 64 blocking
 * recvs on a connection to HOST:PORT that never answers; prints how many
 * were refused at once, then whether a new session is still served.
 */
static int cmd_threads(char **av)
{
	int n = atoi(av[1]), i, j, fds[64], eagain = 0, sent = 0, ret;
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[2], av[3], &ss);
	struct rsys_frame f;

	if (n > 64 || !len)
		return 2;
	for (i = 0; i < n; i++) {
		int64_t h;

		fds[i] = session_connect(av[0]);
		h = fds[i] < 0 ? -1 : d_connected(fds[i], &ss, len);
		if (h < 0)
			return 2;
		for (j = 0; j < 64; j++)
			sent += req_send(fds[i], RSYS_OP_RECV, NULL, 0, h, 16, 0, 0) != 0;
	}
	/* The refusals come back at once; the others stay blocked. */
	for (i = 0; i < n; i++) {
		struct pollfd p = { .fd = fds[i], .events = POLLIN };

		while (poll(&p, 1, 500) == 1 && !frame_recv(fds[i], &f, rbuf, sizeof(rbuf)))
			eagain += f.a[0] == -EAGAIN;
	}
	printf("%d blocking recvs, %d answered EAGAIN\n", sent, eagain);
	for (i = 0; i < n; i++)
		close(fds[i]);
	usleep(200000);
	i = session_connect(av[0]);
	ret = i < 0 ? 1 : fetch(i, av[2], av[3]);
	printf("afterwards a new session is %s\n", ret ? "NOT served" : "served");
	return ret;
}

/*
 * linger ADDR N HOST PORT BEHIND: N sessions that each listen on HOST:PORT+i
 * (never accepting), connect to it and leave 1 MiB of sends blocked on that
 * connection, marked RSYS_SEND_BEHIND when BEHIND is 1, and disconnect; then
 * whether a new session is served. The sessions of answered sends outlive
 * their connection (up to 60 s): they must still count against "limit
 * sessions".
 */
static int cmd_linger(char **av)
{
	static uint8_t data[RSYS_MAX_PAYLOAD];
	int n = atoi(av[1]), i, j, fd, small = 4096;
	struct sockaddr_storage ss;
	socklen_t len;
	int64_t l, h, ret;
	char port[16];

	for (i = 0; i < n; i++) {
		snprintf(port, sizeof(port), "%d", atoi(av[3]) + i);
		len = sockaddr_of(av[2], port, &ss);
		fd = session_connect(av[0]);
		if (fd < 0 || !len)
			return 2;
		l = d_socket(fd, ss.ss_family, SOCK_STREAM);
		h = d_socket(fd, ss.ss_family, SOCK_STREAM);
		if (call(fd, RSYS_OP_BIND, &ss, len, l, 0, 0, 0, NULL) ||
		    call(fd, RSYS_OP_LISTEN, NULL, 0, l, 1, 0, 0, NULL) ||
		    call(fd, RSYS_OP_SETSOCKOPT, &small, sizeof(small), h, SOL_SOCKET, SO_SNDBUF, 0,
			 NULL) ||
		    call(fd, RSYS_OP_CONNECT, &ss, len, h, 0, 0, 0, NULL)) {
			printf("session %d: cannot set up the connection\n", i);
			return 2;
		}
		for (j = 0; j < 4; j++) {
			struct rsys_frame f = { .op = RSYS_OP_SEND, .id = next_id++, .len = sizeof(data),
						.a = { h, 0, 0, 0, atoi(av[4]) ? RSYS_SEND_BEHIND : 0 } };

			if (frame_send(fd, &f, data))
				return 2;
		}
		usleep(200000);	/* the sends are running, blocked */
		close(fd);
	}
	usleep(200000);
	fd = addr_connect(av[0], NULL);
	ret = fd < 0 ? INT64_MIN : call(fd, RSYS_OP_HELLO, NULL, 0, RSYS_VERSION, 0, 0, 0, NULL);
	printf("a new session is %s\n", ret == RSYS_VERSION ? "served" : res(ret));
	return 0;
}

/*
 * hold ADDR HOST PORT SECONDS: a session with a connection to HOST:PORT and
 * a recv on it that nothing answers (a delegate thread waits in it), for
 * SECONDS; says "holding" once the recv is at the delegate.
 */
static int cmd_hold(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[1], av[2], &ss);
	int fd = session_connect(av[0]);
	int64_t h;

	if (fd < 0 || !len)
		return 2;
	h = d_connected(fd, &ss, len);
	if (h < 0 || !req_send(fd, RSYS_OP_RECV, NULL, 0, h, 16, 0, 0))
		return 2;
	printf("holding\n");
	sleep(atoi(av[3]));
	return 0;
}

/*
 * sockfd ADDR UID HOST PORT: as UID, ask for a socket of the delegate's own
 * (direct mode's SOCKFD) and reach HOST:PORT with it, past every egress rule.
 */
static int cmd_sockfd(char **av)
{
	struct sockaddr_storage ss;
	socklen_t len = sockaddr_of(av[2], av[3], &ss);
	struct pollfd p;
	struct rsys_frame f;
	uint64_t id;
	char buf[64];
	int fd, sfd = -1;

	if (become(atoi(av[1])))
		return 2;
	fd = session_connect(av[0]);
	if (fd < 0 || !len)
		return 1;
	id = req_send(fd, RSYS_OP_SOCKFD, NULL, 0, ss.ss_family, SOCK_STREAM, 0, 0);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	if (!id || poll(&p, 1, REPLY_TIMEOUT_MS) != 1 ||
	    frame_recv_fd(fd, &f, rbuf, sizeof(rbuf), &sfd) || f.id != id) {
		printf("SOCKFD: no reply\n");
		return 1;
	}
	if (sfd < 0) {
		printf("SOCKFD as uid %s -> %s, no socket\n", av[1], res(f.a[0]));
		return 1;
	}
	if (connect(sfd, (struct sockaddr *)&ss, len) || send(sfd, TOKEN, strlen(TOKEN), 0) < 0 ||
	    recv(sfd, buf, sizeof(buf), 0) <= 0) {
		printf("SOCKFD gave a socket, but it reached nothing: %s\n", strerror(errno));
		return 1;
	}
	printf("SOCKFD as uid %s: a socket of the service domain reached %s:%s\n", av[1], av[2], av[3]);
	return 0;
}

static const struct {
	const char *name;
	int args;
	int (*fn)(char **av);
} cmds[] = {
	{ "fetch", 4, cmd_fetch },
	{ "sockfd", 4, cmd_sockfd },
	{ "opts", 1, cmd_opts },
	{ "native-opts", 0, cmd_native_opts },
	{ "zerocopy", 3, cmd_zerocopy },
	{ "native-zerocopy", 2, cmd_native_zerocopy },
	{ "connect", 3, cmd_connect },
	{ "native-connect", 2, cmd_native_connect },
	{ "bind", 4, cmd_bind },
	{ "serve", 2, cmd_serve },
	{ "flood", 4, cmd_flood },
	{ "idle", 2, cmd_idle },
	{ "sessions", 2, cmd_sessions },
	{ "handles", 2, cmd_handles },
	{ "threads", 4, cmd_threads },
	{ "linger", 5, cmd_linger },
	{ "hold", 4, cmd_hold },
};

int main(int argc, char **argv)
{
	size_t i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 0; argc > 1 && i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name) && argc - 2 >= cmds[i].args)
			return cmds[i].fn(argv + 2);
	fprintf(stderr, "usage: attack_delegate CMD ARGS... (see attack_delegate_test.sh)\n");
	return 2;
}
