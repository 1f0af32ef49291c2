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
#include <sys/uio.h>
#include <sys/un.h>
#include <linux/vm_sockets.h>

#include "frame.h"
#include "log.h"

/*
 * Walk the SCM_RIGHTS fds of a received message: each goes to @keep, which
 * returns false for one it does not take; that one is closed. -EPROTO if
 * one was not taken or the control data were cut short.
 */
static int walk_fds(struct msghdr *m, bool (*keep)(void *arg, int fd), void *arg)
{
	struct cmsghdr *cm;
	int ret = 0;

	for (cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		int *fds = (int *)CMSG_DATA(cm);
		size_t i, n;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			if (keep(arg, fds[i]))
				continue;
			close(fds[i]);
			ret = -EPROTO;
		}
	}
	if (m->msg_flags & MSG_CTRUNC)
		ret = -EPROTO;
	return ret;
}

/* take_fds' keep: the first fd into *@arg (an int, if still -1). */
static bool keep_first(void *arg, int fd)
{
	int *rfd = arg;

	if (!rfd || *rfd >= 0)
		return false;
	*rfd = fd;
	return true;
}

/*
 * Take the fds of a received message: the first into *@rfd (if @rfd and it
 * is still -1), any other is closed. -EPROTO if one came where none may.
 */
static int take_fds(struct msghdr *m, int *rfd)
{
	return walk_fds(m, keep_first, rfd);
}

/*
 * 1 when @len bytes were read, 0 on EOF before the first byte, -EPROTO on
 * EOF after it, or -errno. An fd passed with the bytes goes to *@rfd (NULL:
 * none may come).
 */
static int read_full(int fd, void *buf, size_t len, int *rfd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	char *p = buf;
	size_t got = 0;
	int err = 0;

	while (got < len) {
		struct iovec iov = { p + got, len - got };
		struct msghdr m = {
			.msg_iov = &iov, .msg_iovlen = 1,
			.msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf),
		};
		ssize_t n = recvmsg(fd, &m, MSG_CMSG_CLOEXEC);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* not a socket (a test's pipe): plain reads */
			if (errno == ENOTSOCK)
				n = read(fd, p + got, len - got);
			if (n < 0)
				return -errno;
		} else if (m.msg_controllen && take_fds(&m, rfd)) {
			err = -EPROTO;
		}
		if (n == 0)
			return got ? -EPROTO : 0;
		got += n;
	}
	return err ? err : 1;
}

/*
 * Send the @n buffers of @iov (modified) with @sendfd (>= 0) attached to the
 * first byte; short writes continue where they stopped, without the fd.
 */
static int send_iov(int fd, struct iovec *iov, int n, int sendfd)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl = { 0 };
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = n };
	struct cmsghdr *cm;
	ssize_t k;

	if (sendfd >= 0) {
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &sendfd, sizeof(int));
	}
	while (m.msg_iovlen) {
		k = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			/* not a socket (a test's pipe): plain writes, no fd */
			if (errno == ENOTSOCK && sendfd < 0)
				k = writev(fd, m.msg_iov, m.msg_iovlen);
			if (k < 0)
				return -errno;
		}
		m.msg_control = NULL;
		m.msg_controllen = 0;
		while (m.msg_iovlen && (size_t)k >= m.msg_iov->iov_len) {
			k -= m.msg_iov->iov_len;
			m.msg_iov++;
			m.msg_iovlen--;
		}
		if (m.msg_iovlen) {
			m.msg_iov->iov_base = (char *)m.msg_iov->iov_base + k;
			m.msg_iov->iov_len -= k;
		}
	}
	return 0;
}

int frame_send_fd(int fd, struct rsys_frame *f, const void *payload, int sendfd)
{
	struct iovec iov[2] = { { f, sizeof(*f) }, { (void *)payload, f->len } };

	if (f->len > RSYS_MAX_PAYLOAD || (f->len && !payload))
		return -EINVAL;
	f->magic = RSYS_MAGIC;
	f->version = RSYS_VERSION;
	if (sendfd >= 0)
		f->flags |= RSYS_F_FD;
	/* One sendmsg, no copy: the frame goes out whole (with the fd) unless the socket is full. */
	return send_iov(fd, iov, f->len ? 2 : 1, sendfd);
}

int frame_send(int fd, struct rsys_frame *f, const void *payload)
{
	return frame_send_fd(fd, f, payload, -1);
}

int frame_recv_fd(int fd, struct rsys_frame *f, void *buf, size_t cap, int *rfd)
{
	uint32_t flags = RSYS_F_REPLY | (rfd ? RSYS_F_FD : 0);
	int ret;

	if (rfd)
		*rfd = -1;
	ret = read_full(fd, f, sizeof(*f), rfd);
	if (ret <= 0)
		ret = ret ? ret : -ECONNRESET;
	else if (f->magic != RSYS_MAGIC || f->version != RSYS_VERSION ||
		 f->op == 0 || f->op >= RSYS_OP_MAX || (f->flags & ~flags) ||
		 f->len > cap || f->len > RSYS_MAX_PAYLOAD)
		ret = -EPROTO;
	/* The fd comes with the header, and only with a frame that says so. */
	else if (rfd && (*rfd >= 0) != !!(f->flags & RSYS_F_FD))
		ret = -EPROTO;
	else if (!f->len)
		ret = 0;
	else
		/* EOF inside a frame is a truncated frame, not an orderly end. */
		ret = read_full(fd, buf, f->len, NULL) ?: -EPROTO;
	if (ret > 0)
		ret = 0;
	if (ret && rfd && *rfd >= 0) {
		close(*rfd);
		*rfd = -1;
	}
	return ret;
}

int frame_recv(int fd, struct rsys_frame *f, void *buf, size_t cap)
{
	return frame_recv_fd(fd, f, buf, cap, NULL);
}

int frame_reader_init(struct frame_reader *fr, int fd, bool fds)
{
	*fr = (struct frame_reader){ .fd = fd, .fds = fds };
	/* room for the largest frame, and for the small ones queued behind it */
	fr->cap = sizeof(struct rsys_frame) + RSYS_MAX_PAYLOAD + 64 * 1024;
	fr->buf = malloc(fr->cap);
	return fr->buf ? 0 : -ENOMEM;
}

void frame_reader_free(struct frame_reader *fr)
{
	while (fr->nq)
		close(fr->q[--fr->nq].fd);
	free(fr->buf);
	fr->buf = NULL;
}

struct reader_keep {
	struct frame_reader *fr;
	uint64_t start, end;
};

/* reader_take_fds' keep: queue @fd with the stream bytes its read brought. */
static bool keep_queued(void *arg, int fd)
{
	struct reader_keep *k = arg;
	struct frame_reader *fr = k->fr;

	if (!fr->fds || fr->nq >= FRAME_READER_FDS)
		return false;
	fr->q[fr->nq].fd = fd;
	fr->q[fr->nq].start = k->start;
	fr->q[fr->nq++].end = k->end;
	return true;
}

/*
 * Queue the fds of a received message, which brought the stream bytes
 * [@start, @end); -EPROTO if none may come or too many did.
 */
static int reader_take_fds(struct frame_reader *fr, struct msghdr *m, uint64_t start, uint64_t end)
{
	struct reader_keep k = { fr, start, end };

	return walk_fds(m, keep_queued, &k);
}

/* Make room after the unread bytes for the whole frame they start. */
static void reader_compact(struct frame_reader *fr)
{
	size_t need = sizeof(struct rsys_frame), have = fr->tail - fr->head;
	struct rsys_frame f;

	if (have >= sizeof(f)) {
		memcpy(&f, fr->buf + fr->head, sizeof(f));
		if (f.len <= RSYS_MAX_PAYLOAD)
			need += f.len;
	}
	/*
	 * A few bytes are moved to the front at once, so that a large frame
	 * they start fits without moving it (a copy of its payload) later.
	 */
	if (!have)
		fr->head = fr->tail = 0;
	else if (fr->head && (have <= 4096 || fr->head + need > fr->cap)) {
		memmove(fr->buf, fr->buf + fr->head, have);
		fr->head = 0;
		fr->tail = have;
	}
}

int frame_reader_fill(struct frame_reader *fr, bool wait)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * FRAME_READER_FDS)];
	} ctl;
	struct iovec iov;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	int err;

	reader_compact(fr);
	iov = (struct iovec){ fr->buf + fr->tail, fr->cap - fr->tail };
	for (;;) {
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		n = recvmsg(fr->fd, &m, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
		if (n >= 0 || errno != EINTR)
			break;
	}
	if (n < 0 && errno == ENOTSOCK) {
		/* not a socket (a test's pipe): plain reads */
		m.msg_controllen = 0;
		n = read(fr->fd, iov.iov_base, iov.iov_len);
	}
	if (n < 0)
		return -errno;
	if (m.msg_controllen) {
		uint64_t start = fr->pos + (fr->tail - fr->head);

		err = reader_take_fds(fr, &m, start, start + (n > 0 ? n : 0));
		if (err)
			return err;
	}
	if (n == 0)
		/* EOF inside a frame is a truncated frame, not an orderly end. */
		return fr->tail > fr->head ? -EPROTO : -ECONNRESET;
	fr->tail += n;
	return n;
}

int frame_reader_next(struct frame_reader *fr, struct rsys_frame *f, uint8_t **payload, int *rfd)
{
	uint32_t flags = RSYS_F_REPLY | (fr->fds ? RSYS_F_FD : 0);
	size_t have = fr->tail - fr->head;

	*rfd = -1;
	/*
	 * An fd comes with its frame's first byte (frame_send_fd() sends it
	 * with the header, and a unix stream read stops after the segment
	 * that carried fds): one whose read ended at or before this frame
	 * belonged to none.
	 */
	if (fr->nq && fr->q[0].end <= fr->pos)
		return -EPROTO;
	if (have < sizeof(*f))
		return 0;
	memcpy(f, fr->buf + fr->head, sizeof(*f));
	if (f->magic != RSYS_MAGIC || f->version != RSYS_VERSION || f->op == 0 ||
	    f->op >= RSYS_OP_MAX || (f->flags & ~flags) || f->len > RSYS_MAX_PAYLOAD)
		return -EPROTO;
	if (have < sizeof(*f) + f->len)
		return 0;
	/* Frames with an fd take the fds in the order they came, each one that came with it. */
	if (f->flags & RSYS_F_FD) {
		if (!fr->nq || fr->q[0].start > fr->pos)
			return -EPROTO;
		*rfd = fr->q[0].fd;
		memmove(fr->q, fr->q + 1, --fr->nq * sizeof(fr->q[0]));
	}
	*payload = fr->buf + fr->head + sizeof(*f);
	fr->head += sizeof(*f) + f->len;
	fr->pos += sizeof(*f) + f->len;
	return 1;
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
		fprintf(err, "Error: cannot connect to %s: %s\n", addr, err_str(-ret));
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
		fprintf(err, "Error: cannot listen on %s: %s%s\n", addr, err_str(-ret),
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
