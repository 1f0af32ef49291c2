// SPDX-License-Identifier: GPL-2.0
/* Reading and writing rsys wire frames and parsing/opening transport addresses (see frame.h). */
#include <errno.h>
#include <netdb.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include "frame.h"

static int write_full(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= n;
	}
	return 0;
}

/* 1 when @len bytes were read, 0 on EOF before the first byte, -EPROTO on EOF after it, or -errno. */
static int read_full(int fd, void *buf, size_t len)
{
	char *p = buf;
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return got ? -EPROTO : 0;
		got += n;
	}
	return 1;
}

int frame_send(int fd, struct rsys_frame *f, const void *payload)
{
	int err;

	if (f->len > RSYS_MAX_PAYLOAD || (f->len && !payload))
		return -EINVAL;
	f->magic = RSYS_MAGIC;
	f->version = RSYS_VERSION;
	if (!f->len)
		return write_full(fd, f, sizeof(*f));
	/* One writev-like send keeps small frames in one segment. */
	if (f->len <= 4096) {
		char buf[sizeof(*f) + 4096];

		memcpy(buf, f, sizeof(*f));
		memcpy(buf + sizeof(*f), payload, f->len);
		return write_full(fd, buf, sizeof(*f) + f->len);
	}
	err = write_full(fd, f, sizeof(*f));
	if (err)
		return err;
	return write_full(fd, payload, f->len);
}

int frame_recv(int fd, struct rsys_frame *f, void *buf, size_t cap)
{
	int ret;

	ret = read_full(fd, f, sizeof(*f));
	if (ret <= 0)
		return ret ? ret : -ECONNRESET;
	if (f->magic != RSYS_MAGIC || f->version != RSYS_VERSION ||
	    f->op == 0 || f->op >= RSYS_OP_MAX || (f->flags & ~RSYS_F_REPLY) ||
	    f->len > cap || f->len > RSYS_MAX_PAYLOAD)
		return -EPROTO;
	if (!f->len)
		return 0;
	ret = read_full(fd, buf, f->len);
	if (ret < 0)
		return ret;
	/* EOF inside a frame is a truncated frame, not an orderly end. */
	return ret ? 0 : -EPROTO;
}

static int parse_port(const char *s, unsigned int *port)
{
	char *end;
	unsigned long v;

	if (!*s)
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > 65535 || *s == '-' || *s == '+')
		return -EINVAL;
	*port = v;
	return 0;
}

static int parse_unix(const char *path, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)ss;
	size_t n = strlen(path);

	if (!n || n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	*len = offsetof(struct sockaddr_un, sun_path) + n + 1;
	return 0;
}

static int parse_tcp(const char *rest, struct sockaddr_storage *ss, socklen_t *len)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
	struct addrinfo *res;
	char host[256];
	const char *colon, *h = rest;
	size_t hlen;
	unsigned int port;

	/* "[v6]:port", or a bare host: the port follows the last colon. */
	colon = strrchr(rest, ':');
	if (!colon || colon == rest)
		return -EINVAL;
	hlen = colon - rest;
	if (rest[0] == '[') {
		if (hlen < 3 || rest[hlen - 1] != ']')
			return -EINVAL;
		h = rest + 1;
		hlen -= 2;
	}
	if (hlen >= sizeof(host) || parse_port(colon + 1, &port))
		return -EINVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';
	if (getaddrinfo(host, colon + 1, &hints, &res))
		return -EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

static int parse_vsock(const char *rest, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_vm *svm = (struct sockaddr_vm *)ss;
	char cid[16];
	const char *colon = strchr(rest, ':');
	unsigned long v, port;
	char *end;

	if (!colon || colon == rest || (size_t)(colon - rest) >= sizeof(cid))
		return -EINVAL;
	memcpy(cid, rest, colon - rest);
	cid[colon - rest] = '\0';
	errno = 0;
	v = strtoul(cid, &end, 10);
	if (errno || *end || v > UINT32_MAX || cid[0] == '-')
		return -EINVAL;
	/* vsock ports are 32 bits wide, unlike TCP ports. */
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || !colon[1] || colon[1] == '-' || port > UINT32_MAX)
		return -EINVAL;
	svm->svm_family = AF_VSOCK;
	svm->svm_cid = v;
	svm->svm_port = port;
	*len = sizeof(*svm);
	return 0;
}

int addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len, FILE *err)
{
	int ret;

	memset(ss, 0, sizeof(*ss));
	if (!strncmp(addr, "unix:", 5))
		ret = parse_unix(addr + 5, ss, len);
	else if (!strncmp(addr, "tcp:", 4))
		ret = parse_tcp(addr + 4, ss, len);
	else if (!strncmp(addr, "vsock:", 6))
		ret = parse_vsock(addr + 6, ss, len);
	else
		ret = -EINVAL;
	if (ret && err)
		fprintf(err, "Error: bad address '%s': expected unix:PATH, tcp:HOST:PORT or vsock:CID:PORT%s\n",
			addr, ret == -ENAMETOOLONG ? " (unix path empty or too long)" : "");
	return ret ? -EINVAL : 0;
}

int addr_connect(const char *addr, FILE *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ret;

	ret = addr_parse(addr, &ss, &len, err);
	if (ret)
		return ret;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err_msg;
	}
	while (connect(fd, (struct sockaddr *)&ss, len) < 0) {
		if (errno == EINTR)
			continue;
		ret = -errno;
		close(fd);
		goto err_msg;
	}
	return fd;

err_msg:
	if (err)
		fprintf(err, "Error: cannot connect to %s: %s\n", addr, strerror(-ret));
	return ret;
}

/* Remove @path only if it is a socket nobody listens on any more. */
static void unlink_stale(const struct sockaddr_un *sun, socklen_t len)
{
	struct stat st;
	int fd;

	if (stat(sun->sun_path, &st) || !S_ISSOCK(st.st_mode))
		return;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (const struct sockaddr *)sun, len) < 0 && errno == ECONNREFUSED)
		unlink(sun->sun_path);
	close(fd);
}

int addr_listen(const char *addr, int backlog, FILE *err)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd, ret, one = 1;

	ret = addr_parse(addr, &ss, &len, err);
	if (ret)
		return ret;
	if (ss.ss_family == AF_UNIX)
		unlink_stale((struct sockaddr_un *)&ss, len);
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err_msg;
	}
	if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6)
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0) {
		ret = -errno;
		close(fd);
		goto err_msg;
	}
	return fd;

err_msg:
	if (err)
		fprintf(err, "Error: cannot listen on %s: %s%s\n", addr, strerror(-ret),
			ret == -EADDRINUSE ? " (is another rsys-delegate running?)" : "");
	return ret;
}

/* Counters of the delegate: a fresh session of our own on @addr. */
int delegate_stats(const char *addr, struct rsys_delegate_stats *st)
{
	struct rsys_frame f = { .op = RSYS_OP_HELLO, .id = 1, .a = { RSYS_VERSION } };
	int fd = addr_connect(addr, NULL), ret;

	if (fd < 0)
		return fd;
	ret = frame_send(fd, &f, NULL);
	if (!ret)
		ret = frame_recv(fd, &f, NULL, 0);
	f = (struct rsys_frame){ .op = RSYS_OP_STATS, .id = 2 };
	if (!ret)
		ret = frame_send(fd, &f, NULL);
	if (!ret)
		ret = frame_recv(fd, &f, st, sizeof(*st));
	close(fd);
	return ret;
}
