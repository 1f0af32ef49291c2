// SPDX-License-Identifier: GPL-2.0
/* kselftest for rsys-delegate over the wire: ops, errno passthrough, policy, isolation, limits, cancel, bad frames. */
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <rsys/proto.h>
#include "frame.h"
#include "ktap.h"
#include "wire.h"

static char tmpdir[] = "/tmp/rsys-delegate-test.XXXXXX";
static char sock_open[256], sock_pol[256], policy_path[256];
static pid_t pid_open = -1, pid_pol = -1;
/* rsys-delegate, and the loopback TCP server the delegates connect to (listening on lfd) */
static char delegate_bin[512];
static struct sockaddr_in server;
static int lfd;

/* On failure, show what the delegates logged as TAP comments. */
static void log_dump(const char *path)
{
	char line[512];
	FILE *f;

	if (!ktap_failed)
		return;
	f = fopen(path, "r");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("# %s%s", line, strchr(line, '\n') ? "" : "\n");
	fclose(f);
}

static void cleanup(void)
{
	char path[300];

	if (pid_open > 0)
		kill(pid_open, SIGKILL);
	if (pid_pol > 0)
		kill(pid_pol, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		;
	unlink(sock_open);
	unlink(sock_pol);
	unlink(policy_path);
	snprintf(path, sizeof(path), "%s/delegate.log", tmpdir);
	log_dump(path);
	unlink(path);
	rmdir(tmpdir);
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* rsys-delegate listening on @sock, with --policy @policy and --busy-poll @busy where not NULL. */
static pid_t delegate_start(const char *bin, const char *sock, const char *policy, const char *busy)
{
	const char *argv[10];
	char listen[300], log[300];
	pid_t pid;
	int i, fd;

	snprintf(listen, sizeof(listen), "unix:%s", sock);
	snprintf(log, sizeof(log), "%s/delegate.log", tmpdir);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd >= 0)
			dup2(fd, 2);
		i = 0;
		argv[i++] = bin;
		argv[i++] = "--listen";
		argv[i++] = listen;
		if (policy) {
			argv[i++] = "--policy";
			argv[i++] = policy;
		}
		if (busy) {
			argv[i++] = "--busy-poll";
			argv[i++] = busy;
		}
		argv[i++] = "-vv";
		argv[i] = NULL;
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	for (i = 0; i < 200; i++) {
		fd = addr_connect(listen, NULL);
		if (fd >= 0) {
			close(fd);
			return pid;
		}
		usleep(10000);
	}
	kill(pid, SIGKILL);
	return -1;
}

/* A session: connected, and past the HELLO every session starts with. */
static int session_open(const char *sock)
{
	char addr[300];

	snprintf(addr, sizeof(addr), "unix:%s", sock);
	return session_connect(addr);
}

static int stats_get(int fd, struct rsys_delegate_stats *st)
{
	struct rsys_frame f;

	if (call(fd, RSYS_OP_STATS, NULL, 0, 0, 0, 0, 0, &f) != 0 || f.len != sizeof(*st))
		return -1;
	memcpy(st, rbuf, sizeof(*st));
	return 0;
}

static int stats_of(const char *sock, struct rsys_delegate_stats *st)
{
	int fd = session_open(sock), ret;

	if (fd < 0)
		return -1;
	ret = stats_get(fd, st);
	close(fd);
	return ret;
}

/* Poll the delegate until only the stats session itself is left and nothing leaks. */
static int wait_quiet(const char *sock, struct rsys_delegate_stats *st)
{
	int i;

	for (i = 0; i < 100; i++) {
		if (stats_of(sock, st))
			return -1;
		if (st->sessions == 1 && st->handles == 0 && st->threads == 1 && st->inflight == 0)
			return 0;
		usleep(10000);
	}
	return -1;
}

static int64_t d_socket(int fd, int type)
{
	return call(fd, RSYS_OP_SOCKET, NULL, 0, AF_INET, type, 0, 0, NULL);
}

static int64_t d_connect(int fd, int64_t h, const struct sockaddr_in *sin)
{
	return call(fd, RSYS_OP_CONNECT, sin, sizeof(*sin), h, 0, 0, 0, NULL);
}

static int64_t d_close(int fd, int64_t h)
{
	return call(fd, RSYS_OP_CLOSE, NULL, 0, h, 0, 0, 0, NULL);
}

static int tcp_server(struct sockaddr_in *sin)
{
	socklen_t len = sizeof(*sin);
	int fd;

	memset(sin, 0, sizeof(*sin));
	sin->sin_family = AF_INET;
	sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)sin, sizeof(*sin)) ||
	    listen(fd, 16) || getsockname(fd, (struct sockaddr *)sin, &len))
		return -1;
	return fd;
}

/* A loopback port nobody listens on. */
static int closed_port(struct sockaddr_in *sin)
{
	int fd = tcp_server(sin);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int accept_timeout(int lfd)
{
	struct pollfd p = { .fd = lfd, .events = POLLIN };

	if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1)
		return -1;
	return accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
}

TEST(io)
{
	struct rsys_frame f;
	int fd, cfd = -1, i;
	int64_t h, ret;
	char buf[16] = { 0 };

	fd = session_open(sock_open);
	ret = call(fd, RSYS_OP_HELLO, NULL, 0, RSYS_VERSION, 0, 0, 0, &f);
	CHECK(ret == RSYS_VERSION && f.a[1] == 256 && f.a[2] == 64,
	      "hello: version %lld, limits %lld handles %lld in flight", (long long)ret,
	      (long long)f.a[1], (long long)f.a[2]);
	h = d_socket(fd, SOCK_STREAM);
	CHECK(h > 0, "socket(AF_INET, SOCK_STREAM) -> handle %#llx", (long long)h);
	ret = d_connect(fd, h, &server);
	CHECK(ret == 0, "connect to the test's loopback server -> %lld", (long long)ret);
	cfd = accept_timeout(lfd);
	ret = call(fd, RSYS_OP_SEND, "ping", 4, h, 0, 0, 0, NULL);
	CHECK(ret == 4 && cfd >= 0 && read(cfd, buf, sizeof(buf)) == 4 && !memcmp(buf, "ping", 4),
	      "send 'ping' -> %lld, server read it", (long long)ret);
	if (cfd >= 0 && write(cfd, "pong!", 5) != 5)
		ret = -1;
	ret = call(fd, RSYS_OP_RECV, NULL, 0, h, sizeof(buf), 0, 0, &f);
	CHECK(ret == 5 && f.len == 5 && !memcmp(rbuf, "pong!", 5),
	      "recv -> %lld '%.*s'", (long long)ret, (int)(f.len < 16 ? f.len : 16), rbuf);
	ret = call(fd, RSYS_OP_GETPEERNAME, NULL, 0, h, 0, 0, 0, &f);
	CHECK(ret == 0 && f.len == sizeof(server) &&
	      ((struct sockaddr_in *)rbuf)->sin_port == server.sin_port,
	      "getpeername -> the server's address");
	ret = call(fd, RSYS_OP_IOCTL, NULL, 0, h, FIONREAD, 0, 0, &f);
	CHECK(ret == 0 && f.a[1] == 0, "ioctl(FIONREAD) -> %lld, %lld bytes", (long long)ret,
	      (long long)f.a[1]);
	ret = call(fd, RSYS_OP_FCNTL, NULL, 0, h, F_SETFL, O_NONBLOCK, 0, NULL);
	ret = ret ?: call(fd, RSYS_OP_RECV, NULL, 0, h, sizeof(buf), 0, 0, NULL);
	CHECK(ret == -EAGAIN, "O_NONBLOCK via fcntl, recv with no data -> %lld (-EAGAIN)",
	      (long long)ret);
	if (cfd >= 0)
		close(cfd);
	ret = call(fd, RSYS_OP_FCNTL, NULL, 0, h, F_SETFL, 0, 0, NULL);
	usleep(20000);
	ret = ret ?: call(fd, RSYS_OP_RECV, NULL, 0, h, sizeof(buf), 0, 0, NULL);
	CHECK(ret == 0, "blocking recv after the peer closed -> %lld (EOF)", (long long)ret);
	/* The peer is gone: sends fail (ECONNRESET once, then EPIPE) without killing the delegate. */
	for (i = 0; i < 10; i++) {
		ret = call(fd, RSYS_OP_SEND, "x", 1, h, 0, 0, 0, NULL);
		if (ret == -EPIPE)
			break;
		usleep(20000);
	}
	CHECK(ret == -EPIPE, "send after the peer closed -> %lld (-EPIPE), no SIGPIPE",
	      (long long)ret);
	CHECK(d_close(fd, h) == 0, "close handle");
	close(fd);
}

TEST(errno_passthrough)
{
	struct sockaddr_in port;
	int fd, nfd;
	int64_t h, ret;
	int native_err = 0;

	fd = session_open(sock_open);
	if (closed_port(&port)) {
		close(fd);
		SKIP_CASE("no free loopback port");
	}
	nfd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(nfd, (struct sockaddr *)&port, sizeof(port)) < 0)
		native_err = errno;
	close(nfd);
	h = d_socket(fd, SOCK_STREAM);
	ret = d_connect(fd, h, &port);
	CHECK(ret == -ECONNREFUSED && native_err == ECONNREFUSED,
	      "connect to a closed port -> %lld (-ECONNREFUSED, native %d)", (long long)ret,
	      native_err);
	d_close(fd, h);
	h = d_socket(fd, SOCK_STREAM);
	ret = call(fd, RSYS_OP_RECV, NULL, 0, h, 16, 0, 0, NULL);
	CHECK(ret == -ENOTCONN, "recv on an unconnected TCP socket -> %lld (-ENOTCONN)",
	      (long long)ret);
	ret = call(fd, RSYS_OP_SOCKET, NULL, 0, AF_UNIX, SOCK_STREAM, 0, 0, NULL);
	CHECK(ret == -EAFNOSUPPORT, "socket(AF_UNIX) is not a remote family -> %lld",
	      (long long)ret);
	ret = call(fd, RSYS_OP_CONNECT, "\x02", 1, h, 0, 0, 0, NULL);
	CHECK(ret == -EINVAL, "connect with a 1-byte sockaddr -> %lld (-EINVAL)", (long long)ret);
	d_close(fd, h);
	close(fd);
}

TEST(udp)
{
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in me = lo, dsa, from;
	socklen_t len = sizeof(me);
	struct rsys_frame f;
	int fd, u;
	int64_t h, ret;
	uint8_t pay[sizeof(me) + 5];
	char buf[16];

	fd = session_open(sock_open);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bind(u, (struct sockaddr *)&me, sizeof(me));
	getsockname(u, (struct sockaddr *)&me, &len);
	h = d_socket(fd, SOCK_DGRAM);
	ret = call(fd, RSYS_OP_BIND, &lo, sizeof(lo), h, 0, 0, 0, NULL);
	ret = ret ?: call(fd, RSYS_OP_GETSOCKNAME, NULL, 0, h, 0, 0, 0, &f);
	memcpy(&dsa, rbuf, sizeof(dsa));
	CHECK(ret == 0 && f.len == sizeof(dsa) && dsa.sin_port,
	      "udp: bind 127.0.0.1:0, getsockname -> port %u", ntohs(dsa.sin_port));
	sendto(u, "datagram", 8, 0, (struct sockaddr *)&dsa, sizeof(dsa));
	ret = call(fd, RSYS_OP_RECV, NULL, 0, h, 4, MSG_TRUNC, 1, &f);
	memcpy(&from, rbuf + 4, sizeof(from));
	CHECK(ret == 8 && f.len == 4 + sizeof(from) && f.a[1] == sizeof(from) &&
	      (f.a[2] & MSG_TRUNC) && !memcmp(rbuf, "data", 4) && from.sin_port == me.sin_port &&
	      from.sin_addr.s_addr == me.sin_addr.s_addr,
	      "udp: recvfrom(4 bytes, MSG_TRUNC) -> %lld, 4 bytes + %lld-byte address of the sender",
	      (long long)ret, (long long)f.a[1]);
	/* MSG_NOSIGNAL on a receive: meaningless, ignored by Linux, passed by sockperf. */
	sendto(u, "nosig", 5, 0, (struct sockaddr *)&dsa, sizeof(dsa));
	ret = call(fd, RSYS_OP_RECV, NULL, 0, h, 16, MSG_NOSIGNAL, 0, &f);
	CHECK(ret == 5 && !memcmp(rbuf, "nosig", 5),
	      "udp: recv(MSG_NOSIGNAL) -> %lld (5, as Linux: the flag is ignored)", (long long)ret);
	ret = call(fd, RSYS_OP_SEND, NULL, 0, h, 0, 0, 0, NULL);
	CHECK(ret == -EDESTADDRREQ, "udp: send without an address -> %lld (-EDESTADDRREQ)",
	      (long long)ret);
	memcpy(pay, &me, sizeof(me));
	memcpy(pay + sizeof(me), "reply", 5);
	ret = call(fd, RSYS_OP_SEND, pay, sizeof(pay), h, 0, sizeof(me), 0, NULL);
	len = sizeof(from);
	CHECK(ret == 5 && recvfrom(u, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from,
				   &len) == 5 && from.sin_port == dsa.sin_port,
	      "udp: sendto with an address -> %lld, the test's socket got it", (long long)ret);
	d_close(fd, h);
	close(u);
	close(fd);
}

/* One control message of @len bytes at @data in @buf (room for it), returns the control length. */
static size_t cmsg_put(void *buf, int level, int type, const void *data, size_t len)
{
	struct cmsghdr *cm = buf;

	memset(buf, 0, CMSG_SPACE(len));
	cm->cmsg_level = level;
	cm->cmsg_type = type;
	cm->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(cm), data, len);
	return CMSG_SPACE(len);
}

/*
 * Control messages: an allowed one (IP_TOS) goes out and the receiver's
 * IP_RECVTOS comes back with the program's room; a source-routing one
 * (IP_RETOPTS), which Linux itself accepts, is refused by the delegate.
 */
TEST(cmsg)
{
	struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const uint8_t nops[4] = { 1, 1, 1, 0 };	/* IPOPT_NOP x3, IPOPT_END */
	union {
		struct cmsghdr align;
		uint8_t buf[256];
	} ctl;
	uint8_t pay[sizeof(lo) + 64 + 5];
	struct sockaddr_in dsa = lo;
	socklen_t len = sizeof(dsa);
	struct iovec iov = { "dgram", 5 };
	struct msghdr m = { .msg_name = &dsa, .msg_namelen = sizeof(dsa), .msg_iov = &iov,
			    .msg_iovlen = 1, .msg_control = ctl.buf };
	struct rsys_frame f;
	int fd, u, one = 1, tos = 0x28;
	int64_t h, r, ret, r2;
	size_t clen;

	fd = session_open(sock_open);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	bind(u, (struct sockaddr *)&lo, sizeof(lo));
	getsockname(u, (struct sockaddr *)&dsa, &len);
	m.msg_controllen = cmsg_put(ctl.buf, IPPROTO_IP, IP_RETOPTS, nops, sizeof(nops));
	CHECK(sendmsg(u, &m, 0) == 5 && recv(u, pay, sizeof(pay), MSG_DONTWAIT) == 5,
	      "cmsg: natively, a sendmsg with IP_RETOPTS goes out (positive control)");

	h = d_socket(fd, SOCK_DGRAM);
	r = d_socket(fd, SOCK_DGRAM);
	ret = call(fd, RSYS_OP_BIND, &lo, sizeof(lo), r, 0, 0, 0, NULL);
	ret = ret ?: call(fd, RSYS_OP_SETSOCKOPT, &one, sizeof(one), r, IPPROTO_IP, IP_RECVTOS, 0, NULL);
	ret = ret ?: call(fd, RSYS_OP_GETSOCKNAME, NULL, 0, r, 0, 0, 0, &f);
	memcpy(&dsa, rbuf, sizeof(dsa));
	memcpy(pay, &dsa, sizeof(dsa));
	clen = cmsg_put(pay + sizeof(dsa), IPPROTO_IP, IP_RETOPTS, nops, sizeof(nops));
	memcpy(pay + sizeof(dsa) + clen, "dgram", 5);
	ret = ret ?: call(fd, RSYS_OP_SEND, pay, sizeof(dsa) + clen + 5, h, 0, sizeof(dsa), clen, NULL);
	CHECK(ret == -EPERM, "cmsg: SEND with IP_RETOPTS -> %lld (-EPERM)", (long long)ret);

	{
		struct in_pktinfo pi = { .ipi_ifindex = 1 };

		clen = cmsg_put(pay + sizeof(dsa), IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
		memcpy(pay + sizeof(dsa) + clen, "dgram", 5);
		ret = call(fd, RSYS_OP_SEND, pay, sizeof(dsa) + clen + 5, h, 0, sizeof(dsa), clen, NULL);
		pi.ipi_ifindex = 0;
		cmsg_put(pay + sizeof(dsa), IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
		r2 = call(fd, RSYS_OP_SEND, pay, sizeof(dsa) + clen + 5, h, 0, sizeof(dsa), clen, NULL);
		CHECK(ret == -EPERM && r2 == 5,
		      "cmsg: IP_PKTINFO choosing interface 1 -> %lld (-EPERM), interface 0 -> %lld",
		      (long long)ret, (long long)r2);
		/* drop the datagram that went out */
		call(fd, RSYS_OP_RECV, NULL, 0, r, 16, 0, 0, NULL);
	}
	clen = cmsg_put(pay + sizeof(dsa), IPPROTO_IP, IP_TOS, &tos, sizeof(tos));
	memcpy(pay + sizeof(dsa) + clen, "dgram", 5);
	ret = call(fd, RSYS_OP_SEND, pay, sizeof(dsa) + clen + 5, h, 0, sizeof(dsa), clen, NULL);
	memset(&f, 0, sizeof(f));
	if (ret == 5) {
		/* a4: room for control messages */
		struct rsys_frame q = { .op = RSYS_OP_RECV, .id = next_id++, .a = { r, 16, 0, 0, 64 } };

		ret = frame_send(fd, &q, NULL) ? INT64_MIN : reply_recv(fd, q.id, &f);
	}
	memcpy(ctl.buf, rbuf + 5, sizeof(ctl.buf) - 5);
	CHECK(ret == 5 && f.a[4] == CMSG_SPACE(1) && f.len == 5 + CMSG_SPACE(1) &&
	      ctl.align.cmsg_level == IPPROTO_IP && ctl.align.cmsg_type == IP_TOS &&
	      ctl.buf[CMSG_LEN(0)] == tos,
	      "cmsg: SEND with IP_TOS 0x%x -> delivered; RECV with room -> %lld control bytes, IP_TOS 0x%x",
	      tos, (long long)f.a[4], ctl.buf[CMSG_LEN(0)]);
	d_close(fd, h);
	d_close(fd, r);
	close(u);
	close(fd);
}

TEST(policy)
{
	struct rsys_delegate_stats before = { 0 }, after = { 0 };
	struct sockaddr_in other = server, any = { .sin_family = AF_INET };
	int fd, cfd;
	int64_t h, ret;

	fd = session_open(sock_pol);
	stats_get(fd, &before);
	h = d_socket(fd, SOCK_STREAM);
	other.sin_addr.s_addr = htonl(0x7f000002);	/* 127.0.0.2: not allowed */
	ret = d_connect(fd, h, &other);
	CHECK(ret == -EPERM, "policy: connect to 127.0.0.2 -> %lld (-EPERM)", (long long)ret);
	ret = d_connect(fd, h, &server);
	cfd = accept_timeout(lfd);
	CHECK(ret == 0 && cfd >= 0, "policy: connect to the allowed 127.0.0.1 port -> %lld",
	      (long long)ret);
	if (cfd >= 0)
		close(cfd);
	d_close(fd, h);
	h = d_socket(fd, SOCK_DGRAM);
	ret = call(fd, RSYS_OP_SEND, &other, sizeof(other), h, 0, sizeof(other), 0, NULL);
	CHECK(ret == -EPERM, "policy: udp sendto 127.0.0.2 -> %lld (-EPERM)", (long long)ret);
	ret = call(fd, RSYS_OP_BIND, &any, sizeof(any), h, 0, 0, 0, NULL);
	CHECK(ret == -EPERM, "policy: bind udp without an 'allow bind udp' rule -> %lld",
	      (long long)ret);
	any.sin_family = AF_UNSPEC;
	ret = call(fd, RSYS_OP_CONNECT, &any, sizeof(any), h, 0, 0, 0, NULL);
	CHECK(ret == 0, "policy: connect(AF_UNSPEC) dissolves, never denied -> %lld",
	      (long long)ret);
	d_close(fd, h);
	ret = call(fd, RSYS_OP_SOCKET, NULL, 0, AF_INET, SOCK_RAW, IPPROTO_ICMP, 0, NULL);
	CHECK(ret == -EPERM, "policy: raw socket -> %lld (-EPERM)", (long long)ret);
	stats_get(fd, &after);
	CHECK(after.denied - before.denied == 4, "stats: denied grew by %llu (4)",
	      (unsigned long long)(after.denied - before.denied));
	close(fd);
}

TEST(isolation)
{
	int a = session_open(sock_open), b = session_open(sock_open);
	int64_t ha, hb, ret;

	ha = d_socket(a, SOCK_STREAM);
	hb = d_socket(b, SOCK_STREAM);
	ret = call(b, RSYS_OP_GETSOCKNAME, NULL, 0, ha, 0, 0, 0, NULL);
	CHECK(ha > 0 && ret == -EBADF, "session B naming session A's handle -> %lld (-EBADF)",
	      (long long)ret);
	ret = d_close(b, ha);
	CHECK(ret == -EBADF && call(a, RSYS_OP_GETSOCKNAME, NULL, 0, ha, 0, 0, 0, NULL) == 0,
	      "session B cannot close it; it still works in A");
	d_close(a, ha);
	ret = call(a, RSYS_OP_GETSOCKNAME, NULL, 0, ha, 0, 0, 0, NULL);
	CHECK(ret == -EBADF, "closed handle -> %lld (-EBADF)", (long long)ret);
	ret = d_socket(a, SOCK_STREAM);
	CHECK((ret & UINT32_MAX) == (ha & UINT32_MAX) && ret != ha &&
	      call(a, RSYS_OP_GETSOCKNAME, NULL, 0, ha, 0, 0, 0, NULL) == -EBADF,
	      "reused slot gets a new generation; the stale handle stays invalid");
	d_close(b, hb);
	close(a);
	close(b);
}

TEST(limit_fds)
{
	int fd = session_open(sock_pol), i, ok = 0;
	int64_t h[4], ret;

	for (i = 0; i < 4; i++)
		ok += (h[i] = d_socket(fd, SOCK_STREAM)) > 0;
	ret = d_socket(fd, SOCK_STREAM);
	CHECK(ok == 4 && ret == -EMFILE, "limit fds 4: 4 sockets, the 5th -> %lld (-EMFILE)",
	      (long long)ret);
	d_close(fd, h[2]);
	h[2] = d_socket(fd, SOCK_STREAM);
	CHECK(h[2] > 0, "after a close a socket fits again");
	/* Closing the session must close all four. */
	close(fd);
}

TEST(limit_inflight)
{
	int fd = session_open(sock_pol), cfd, i, eintr = 0;
	uint64_t id[4];
	int64_t h, ret;

	h = d_socket(fd, SOCK_STREAM);
	d_connect(fd, h, &server);
	cfd = accept_timeout(lfd);
	for (i = 0; i < 4; i++)
		id[i] = req_send(fd, RSYS_OP_RECV, NULL, 0, h, 16, 0, 0);
	ret = call(fd, RSYS_OP_RECV, NULL, 0, h, 16, 0, 0, NULL);
	CHECK(ret == -EAGAIN, "limit inflight 4: a 5th blocking recv -> %lld (-EAGAIN)",
	      (long long)ret);
	for (i = 0; i < 4; i++)
		req_send(fd, RSYS_OP_CANCEL, NULL, 0, id[i], 0, 0, 0);
	/* Replies come in any order. */
	for (i = 0; i < 4; i++) {
		struct rsys_frame f;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, REPLY_TIMEOUT_MS) == 1 && !frame_recv(fd, &f, rbuf, sizeof(rbuf)) &&
		    f.op == RSYS_OP_RECV && f.a[0] == -EINTR)
			eintr++;
	}
	CHECK(eintr == 4, "the 4 cancelled recvs each answered -EINTR (%d)", eintr);
	if (cfd >= 0)
		close(cfd);
	close(fd);
}

/* A blocking send larger than the socket buffer: part goes out at once, the rest blocks. */
TEST(big_send)
{
	static uint8_t big[200000], got[65536];
	int fd, cfd, small = 4096;
	size_t total = 0;
	bool ok;
	uint64_t id;
	int64_t h, ret;
	ssize_t n;
	int i;

	for (i = 0; i < (int)sizeof(big); i++)
		big[i] = i * 7;
	fd = session_open(sock_open);
	h = d_socket(fd, SOCK_STREAM);
	call(fd, RSYS_OP_SETSOCKOPT, &small, sizeof(small), h, SOL_SOCKET, SO_SNDBUF, 0, NULL);
	d_connect(fd, h, &server);
	cfd = accept_timeout(lfd);
	setsockopt(cfd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	id = req_send(fd, RSYS_OP_SEND, big, sizeof(big), h, 0, 0, 0);
	usleep(50000);
	ok = cfd >= 0;
	while (ok && total < sizeof(big)) {
		n = read(cfd, got, sizeof(got));
		if (n <= 0 || memcmp(got, big + total, n))
			ok = false;
		else
			total += n;
	}
	ret = reply_recv(fd, id, NULL);
	CHECK(ok && ret == (int64_t)sizeof(big),
	      "blocking send of %zu bytes through a 4 KiB buffer -> %lld, peer read %zu intact",
	      sizeof(big), (long long)ret, total);

	id = req_send(fd, RSYS_OP_SEND, big, sizeof(big), h, 0, 0, 0);
	usleep(50000);
	req_send(fd, RSYS_OP_CANCEL, NULL, 0, id, 0, 0, 0);
	ret = reply_recv(fd, id, NULL);
	CHECK(ret > 0 && ret < (int64_t)sizeof(big),
	      "cancel of a blocked send -> %lld: the bytes sent so far, as natively", (long long)ret);
	if (cfd >= 0)
		close(cfd);
	d_close(fd, h);
	close(fd);
}

/*
 * The client writes big requests without reading a big reply: the delegate
 * must keep reading (a reader blocked writing the reply would deadlock both).
 */
TEST(no_write_deadlock)
{
	static uint8_t big[250000];
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_in u_addr;
	socklen_t len = sizeof(u_addr);
	int fd, cfd, u, i, sent = 0, replies = 0, flags;
	int64_t h, hu;

	fd = session_open(sock_open);
	h = d_socket(fd, SOCK_STREAM);
	d_connect(fd, h, &server);
	cfd = accept_timeout(lfd);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	u_addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	bind(u, (struct sockaddr *)&u_addr, sizeof(u_addr));
	getsockname(u, (struct sockaddr *)&u_addr, &len);
	hu = d_socket(fd, SOCK_DGRAM);
	d_connect(fd, hu, &u_addr);
	/* 200 kB waiting in the delegate's socket: the recv reply is that big. */
	flags = fcntl(cfd, F_GETFL);
	fcntl(cfd, F_SETFL, flags | O_NONBLOCK);
	for (i = 0; i < 200; i++)
		if (write(cfd, big, 1000) != 1000)
			break;
	usleep(20000);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	req_send(fd, RSYS_OP_RECV, NULL, 0, h, 200000, 0, 0);
	for (i = 0; i < 4; i++)
		sent += req_send(fd, RSYS_OP_SEND, big, sizeof(big), hu, 0, 0, 0) != 0;
	for (i = 0; i < 5; i++) {
		struct rsys_frame f;
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1 || frame_recv(fd, &f, rbuf, sizeof(rbuf)))
			break;
		replies += (f.op == RSYS_OP_RECV && f.a[0] > 0) ||
			   (f.op == RSYS_OP_SEND && f.a[0] == -EMSGSIZE);
	}
	CHECK(sent == 4 && replies == 5,
	      "4 x 250 kB requests written while a 200 kB reply is unread: %d written, %d replies",
	      sent, replies);
	d_close(fd, h);
	d_close(fd, hu);
	close(u);
	if (cfd >= 0)
		close(cfd);
	close(fd);
}

TEST(cancel)
{
	struct rsys_delegate_stats st = { 0 };
	struct pollfd p;
	struct rsys_pollfd rp;
	int fd, cfd, i, good = 0;
	uint64_t id;
	int64_t h, ret;
	double t0, dt, worst = 0;

	fd = session_open(sock_open);
	h = d_socket(fd, SOCK_STREAM);
	d_connect(fd, h, &server);
	cfd = accept_timeout(lfd);

	id = req_send(fd, RSYS_OP_RECV, NULL, 0, h, 64, 0, 0);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	ret = poll(&p, 1, 100);
	CHECK(ret == 0, "blocking recv stays blocked (no reply after 100 ms)");
	t0 = now_ms();
	req_send(fd, RSYS_OP_CANCEL, NULL, 0, id, 0, 0, 0);
	ret = reply_recv(fd, id, NULL);
	dt = now_ms() - t0;
	CHECK(ret == -EINTR && dt < 100, "cancel of a blocked recv -> %lld (-EINTR) in %.2f ms",
	      (long long)ret, dt);

	/* Cancel sent right behind the request: the signal may land before recv blocks. */
	for (i = 0; i < 200; i++) {
		id = req_send(fd, RSYS_OP_RECV, NULL, 0, h, 64, 0, 0);
		req_send(fd, RSYS_OP_CANCEL, NULL, 0, id, 0, 0, 0);
		t0 = now_ms();
		ret = reply_recv(fd, id, NULL);
		dt = now_ms() - t0;
		if (dt > worst)
			worst = dt;
		good += ret == -EINTR;
	}
	CHECK(good == 200 && worst < 100,
	      "200 back-to-back recv+cancel: %d x -EINTR, one reply each, slowest %.2f ms", good,
	      worst);

	rp = (struct rsys_pollfd){ .handle = h, .events = POLLIN };
	id = req_send(fd, RSYS_OP_POLL, &rp, sizeof(rp), 1, -1, 0, 0);
	usleep(20000);
	req_send(fd, RSYS_OP_CANCEL, NULL, 0, id, 0, 0, 0);
	ret = reply_recv(fd, id, NULL);
	CHECK(ret == -EINTR, "cancel of poll(timeout -1) -> %lld (-EINTR)", (long long)ret);

	ret = call(fd, RSYS_OP_SEND, "after", 5, h, 0, 0, 0, NULL);
	CHECK(ret == 5, "the session keeps working after cancels (send -> %lld)",
	      (long long)ret);
	stats_get(fd, &st);
	CHECK(st.inflight == 0, "stats: nothing in flight after the cancels (%llu)",
	      (unsigned long long)st.inflight);

	/* A blocked request when the client goes away: the delegate must end it. */
	req_send(fd, RSYS_OP_RECV, NULL, 0, h, 64, MSG_PEEK, 0);
	req_send(fd, RSYS_OP_ACCEPT, NULL, 0, h, 0, 0, 0);
	usleep(20000);
	close(fd);
	if (cfd >= 0)
		close(cfd);
	ret = wait_quiet(sock_open, &st);
	CHECK(ret == 0,
	      "client gone with a blocked recv: sessions %llu handles %llu threads %llu inflight %llu (1/0/1/0)",
	      (unsigned long long)st.sessions, (unsigned long long)st.handles,
	      (unsigned long long)st.threads, (unsigned long long)st.inflight);
}

/* Send @len raw bytes on a new session; 1 if the delegate then closes the connection. */
static int garbage_closes(const void *bytes, size_t len, bool half_close)
{
	struct pollfd p;
	char c;
	int fd = session_open(sock_open), ret;

	if (fd < 0)
		return 0;
	if (write(fd, bytes, len) != (ssize_t)len) {
		close(fd);
		return 0;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	p = (struct pollfd){ .fd = fd, .events = POLLIN };
	ret = poll(&p, 1, REPLY_TIMEOUT_MS) == 1 && read(fd, &c, 1) == 0;
	close(fd);
	return ret;
}

TEST(garbage)
{
	struct rsys_delegate_stats before = { 0 }, after = { 0 };
	struct rsys_frame f = { .magic = RSYS_MAGIC, .version = RSYS_VERSION, .op = RSYS_OP_HELLO };
	struct rsys_frame g;
	uint8_t trunc[sizeof(f) + 10] = { 0 };
	int fd;
	int64_t ret;

	stats_of(sock_open, &before);
	g = f;
	g.magic = 0xdeadbeef;
	CHECK(garbage_closes(&g, sizeof(g), false), "bad magic closes the connection");
	g = f;
	g.len = 0xfffffff0;
	CHECK(garbage_closes(&g, sizeof(g), false), "huge len closes the connection");
	g = f;
	g.op = RSYS_OP_MAX + 7;
	CHECK(garbage_closes(&g, sizeof(g), false), "bad op closes the connection");
	g = f;
	g.len = 100;
	memcpy(trunc, &g, sizeof(g));
	CHECK(garbage_closes(trunc, sizeof(trunc), true),
	      "truncated frame (100-byte payload, 10 sent, EOF) closes the connection");
	g = f;
	g.flags = RSYS_F_REPLY;
	CHECK(garbage_closes(&g, sizeof(g), false), "a reply frame from the client closes it");

	fd = session_open(sock_open);
	ret = call(fd, RSYS_OP_HELLO, NULL, 0, RSYS_VERSION, 0, 0, 0, NULL);
	CHECK(ret == RSYS_VERSION, "a new session is still served (hello -> %lld)", (long long)ret);
	ret = call(fd, RSYS_OP_GETSOCKOPT, NULL, 0, 12345, SOL_SOCKET, SO_TYPE, 4, NULL);
	CHECK(ret == -EBADF, "a made-up handle -> %lld (-EBADF)", (long long)ret);
	ret = call(fd, RSYS_OP_POLL, NULL, 0, 100000, 0, 0, 0, NULL);
	CHECK(ret == -EINVAL, "poll with n beyond limit fds -> %lld (-EINVAL)", (long long)ret);
	ret = call(fd, RSYS_OP_HELLO, "xx", 2, RSYS_VERSION, 0, 0, 0, NULL);
	CHECK(ret == -EINVAL, "hello with a payload -> %lld (-EINVAL)", (long long)ret);
	close(fd);
	stats_of(sock_open, &after);
	CHECK(after.bad_frames - before.bad_frames == 5, "stats: bad_frames grew by %llu (5)",
	      (unsigned long long)(after.bad_frames - before.bad_frames));
}

static int write_policy(uint16_t port)
{
	FILE *f = fopen(policy_path, "w");

	if (!f)
		return -1;
	fprintf(f, "# delegate_test policy\n"
		   "remote inet inet6\n"
		   "allow tcp 127.0.0.1 %u\n"
		   "allow bind tcp 127.0.0.0/8 *\n"
		   "limit fds 4\n"
		   "limit inflight 4\n", port);
	return fclose(f);
}

/* Run @bin with @args, its stdout or stderr (@fdno) captured in @out; the exit status, or -1. */
static int run_capture(const char *bin, const char *const *args, int fdno, char *out, size_t cap)
{
	const char *argv[8] = { bin };
	int p[2], status, i;
	size_t got = 0;
	ssize_t n;
	pid_t pid;

	for (i = 0; args[i] && i < 6; i++)
		argv[i + 1] = args[i];
	if (pipe(p))
		return -1;
	pid = fork();
	if (!pid) {
		int null = open("/dev/null", O_WRONLY);

		dup2(null, 1);
		dup2(null, 2);
		dup2(p[1], fdno);
		execv(bin, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	while (got < cap - 1 && (n = read(p[0], out + got, cap - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	close(p[0]);
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

TEST(no_leaks)
{
	struct rsys_delegate_stats st = { 0 };
	int ret;

	ret = wait_quiet(sock_open, &st);
	CHECK(ret == 0,
	      "no leaks (no policy): sessions %llu handles %llu threads %llu inflight %llu",
	      (unsigned long long)st.sessions, (unsigned long long)st.handles,
	      (unsigned long long)st.threads, (unsigned long long)st.inflight);
	ret = wait_quiet(sock_pol, &st);
	CHECK(ret == 0,
	      "no leaks (policy): sessions %llu handles %llu threads %llu inflight %llu",
	      (unsigned long long)st.sessions, (unsigned long long)st.handles,
	      (unsigned long long)st.threads, (unsigned long long)st.inflight);
}

/* TCP has no peer credentials: without mutual TLS the delegate must refuse to listen. */
TEST(tcp_listen)
{
	struct sockaddr_in port;
	char addr[64], out[4096];
	const char *args[] = { "--listen", addr, NULL };
	int ret;

	if (closed_port(&port))
		SKIP_CASE("no free loopback port");
	snprintf(addr, sizeof(addr), "tcp:127.0.0.1:%u", ntohs(port.sin_port));
	ret = run_capture(delegate_bin, args, 2, out, sizeof(out));
	CHECK(ret == 1 && strstr(out, "TLS"),
	      "--listen %s without TLS: refused, exit %d, says why (TLS)", addr, ret);
}

/* rsys-delegate --policy with @text as its policy: exits 1 saying @want (FILE:LINE: ...)? */
static bool policy_refused(const char *text, int line, const char *want, char *out, size_t n)
{
	const char *args[] = { "--listen", "unix:/nonexistent/x.sock", "--policy", policy_path, NULL };
	char msg[300];
	FILE *f = fopen(policy_path, "w");

	if (!f)
		return false;
	fputs(text, f);
	fclose(f);
	snprintf(msg, sizeof(msg), "%s:%d: %s", policy_path, line, want);
	return run_capture(delegate_bin, args, 2, out, n) == 1 && strstr(out, msg);
}

TEST(cli)
{
	const char *help[] = { "--help", NULL };
	const char *none[] = { NULL };
	char out[4096];
	int ret;

	ret = run_capture(delegate_bin, help, 1, out, sizeof(out));
	CHECK(ret == 0 && !strncmp(out, "Usage: rsys-delegate", 20),
	      "--help: usage on stdout, exit %d", ret);
	ret = run_capture(delegate_bin, none, 2, out, sizeof(out));
	CHECK(ret == 1 && strstr(out, "Usage:"), "no address: usage on stderr, exit %d", ret);
	CHECK(policy_refused("# broken\nremote inet\nallow tcp 10.1.2.3/8 *\n", 3,
			     "bad CIDR '10.1.2.3/8'", out, sizeof(out)),
	      "bad policy: exit 1, FILE:3: bad CIDR '10.1.2.3/8'");
	CHECK(policy_refused("allow icmp 10.0.0.0/8\nallow icmp 10.0.0.0/8 *\n", 2,
			     "usage: allow [bind]", out, sizeof(out)) && !strstr(out, ":1:"),
	      "'allow icmp CIDR' parses, with PORTS it is refused: FILE:2: usage");
	CHECK(policy_refused("limit linger 3600\nlimit linger 5\n", 2, "duplicate 'limit linger' line",
			     out, sizeof(out)) && !strstr(out, ":1:"),
	      "'limit linger 3600' parses, a second one is refused: FILE:2: duplicate");
	CHECK(policy_refused("limit linger 0\n", 1, "bad limit linger '0': expected 1..3600 seconds",
			     out, sizeof(out)) &&
	      policy_refused("limit linger 3601\n", 1, "bad limit linger '3601'", out, sizeof(out)),
	      "'limit linger 0' and '3601' are refused: FILE:1: bad limit linger");
}

/* The sleeps (voluntary context switches) of all the threads of @pid, or -1. */
static long sleeps_of(pid_t pid)
{
	char path[64 + sizeof(((struct dirent *)0)->d_name)], line[256];
	long total = 0, v;
	struct dirent *d;
	DIR *dir;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	dir = opendir(path);
	if (!dir)
		return -1;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status", pid, d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1)
				total += v;
		fclose(f);
	}
	closedir(dir);
	return total;
}

/*
 * How often a delegate started with --busy-poll @busy sleeps while one
 * session sends 50 requests 1 ms apart (each answered at once by the
 * session's reader): -1 when it could not be measured.
 */
static long sleeps_per_50(const char *busy)
{
	char sock[300];
	struct rsys_delegate_stats st;
	long before, after = -1;
	pid_t pid;
	int fd, i;

	snprintf(sock, sizeof(sock), "%s/busy-%s.sock", tmpdir, busy);
	pid = delegate_start(delegate_bin, sock, NULL, busy);
	if (pid <= 0)
		return -1;
	fd = session_open(sock);
	if (fd >= 0 && !stats_get(fd, &st)) {
		before = sleeps_of(pid);
		for (i = 0; i < 50 && !stats_get(fd, &st); i++)
			usleep(1000);
		if (i == 50 && before >= 0)
			after = sleeps_of(pid) - before;
	}
	if (fd >= 0)
		close(fd);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return after;
}

/*
 * A session's reader polls for the next request before it sleeps
 * (--busy-poll): requests 1 ms apart find it awake with a 10 ms window;
 * with 0 (the control) it sleeps for each one. A reader that may use one
 * CPU only does not poll (busy_poll_cpus): that is checked with the
 * delegate on CPU 0.
 */
TEST(busy_poll)
{
	const char *bad[] = { "--listen", "unix:/nonexistent/x.sock", "--busy-poll", "10001", NULL };
	long polled, slept, pinned;
	char out[4096];
	cpu_set_t all, one;
	int ret;

	if (sched_getaffinity(0, sizeof(all), &all) || CPU_COUNT(&all) < 2 || !CPU_ISSET(0, &all))
		SKIP_CASE("busy polling needs two CPUs (CPU 0 among them); this test may use %d",
			  CPU_COUNT(&all));
	polled = sleeps_per_50("10000");
	slept = sleeps_per_50("0");
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	sched_setaffinity(0, sizeof(one), &one);	/* the delegate started next inherits it */
	pinned = sleeps_per_50("10000");
	sched_setaffinity(0, sizeof(all), &all);

	CHECK(polled >= 0 && polled < 10 && slept >= 40,
	      "--busy-poll 10000: %ld sleeps for 50 requests 1 ms apart (want < 10); "
	      "--busy-poll 0: %ld (want 40 or more)", polled, slept);
	CHECK(pinned >= 40, "--busy-poll 10000 on one CPU: %ld sleeps (want 40 or more: no polling)",
	      pinned);
	ret = run_capture(delegate_bin, bad, 2, out, sizeof(out));
	CHECK(ret == 1 && strstr(out, "--busy-poll 10001: not a number of microseconds (0 to 10000)"),
	      "--busy-poll 10001: refused, exit %d", ret);
	bad[3] = "1x";
	ret = run_capture(delegate_bin, bad, 2, out, sizeof(out));
	CHECK(ret == 1 && strstr(out, "--busy-poll 1x: not a number"), "--busy-poll 1x: refused, exit %d",
	      ret);
}

TEST(sigterm)
{
	int status;

	kill(pid_open, SIGTERM);
	CHECK(waitpid(pid_open, &status, 0) == pid_open && WIFEXITED(status) &&
	      !WEXITSTATUS(status) && access(sock_open, F_OK) && errno == ENOENT,
	      "SIGTERM: exit 0 and the socket is removed");
	pid_open = -1;
}

int main(void)
{
	const char *o = getenv("RSYS_O");
	int ret;

	snprintf(delegate_bin, sizeof(delegate_bin), "%s/rsys-delegate", o ? o : ".output");
	if (access(delegate_bin, X_OK))
		ktap_exit_skip("%s not built (set RSYS_O to the build directory)", delegate_bin);
	if (!mkdtemp(tmpdir))
		ktap_exit_skip("cannot create a temporary directory: %s", strerror(errno));
	atexit(cleanup);
	signal(SIGPIPE, SIG_IGN);
	snprintf(sock_open, sizeof(sock_open), "%s/open.sock", tmpdir);
	snprintf(sock_pol, sizeof(sock_pol), "%s/policy.sock", tmpdir);
	snprintf(policy_path, sizeof(policy_path), "%s/test.policy", tmpdir);

	lfd = tcp_server(&server);
	if (lfd < 0)
		ktap_exit_skip("no loopback TCP: %s", strerror(errno));
	if (write_policy(ntohs(server.sin_port)))
		ktap_exit_fail("write the test policy");
	pid_open = delegate_start(delegate_bin, sock_open, NULL, NULL);
	pid_pol = delegate_start(delegate_bin, sock_pol, policy_path, NULL);
	if (pid_open <= 0 || pid_pol <= 0)
		ktap_exit_fail("start %s without and with --policy", delegate_bin);
	ret = ktap_run();
	close(lfd);
	return ret;
}
