/* SPDX-License-Identifier: GPL-2.0 */
/* Reading and writing rsys wire frames (include/rsys/proto.h) and transport addresses. */
#ifndef RSYS_FRAME_H
#define RSYS_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <rsys/proto.h>

/*
 * Send @f followed by f->len bytes of @payload as one frame (magic and
 * version are filled in). Handles short writes and EINTR. 0 or -errno.
 * Callers sharing @fd between threads serialise with their own lock.
 */
int frame_send(int fd, struct rsys_frame *f, const void *payload);
/* ... with @sendfd (>= 0) passed along (SCM_RIGHTS, RSYS_F_FD set); unix sockets only. */
int frame_send_fd(int fd, struct rsys_frame *f, const void *payload, int sendfd);

/*
 * Receive one frame into @f and its payload into @buf (@cap bytes).
 * 0, -ECONNRESET on orderly EOF, -EPROTO on a bad magic/version/op or a
 * payload larger than @cap or RSYS_MAX_PAYLOAD, or -errno.
 */
int frame_recv(int fd, struct rsys_frame *f, void *buf, size_t cap);
/*
 * ... and the fd of a frame with RSYS_F_FD into *@rfd (-1 if none; the
 * caller closes it). A frame with the flag and no fd, or an fd without the
 * flag, is -EPROTO. frame_recv() refuses both.
 */
int frame_recv_fd(int fd, struct rsys_frame *f, void *buf, size_t cap, int *rfd);

/*
 * Buffered reading of frames: one recvmsg brings every frame already
 * queued on the socket (header and payload together), where frame_recv()
 * takes two per frame. The payloads stay in the reader's buffer. Not to be
 * mixed with frame_recv() on the same fd.
 */
#define FRAME_READER_FDS	4	/* fds received ahead of their frames' parsing */

struct frame_reader {
	int fd;
	bool fds;		/* fds may come (unix socket): frames with RSYS_F_FD take them */
	uint8_t *buf;
	size_t cap, head, tail;	/* bytes [head, tail) of buf are not parsed yet */
	uint64_t pos;		/* stream offset of buf[head] */
	struct {
		int fd;
		uint64_t start, end;	/* stream offsets of the read that brought it */
	} q[FRAME_READER_FDS];	/* fds received, oldest first, not yet given out */
	unsigned int nq;
};

/* 0 or -ENOMEM. */
int frame_reader_init(struct frame_reader *fr, int fd, bool fds);
/* Frees the buffer and closes the fds not given out. */
void frame_reader_free(struct frame_reader *fr);
/*
 * One read from the fd (@wait: blocking, else MSG_DONTWAIT): the bytes
 * read (> 0), -ECONNRESET on EOF between frames, -EPROTO on EOF inside one
 * or an fd that may not come, or -errno (-EAGAIN).
 */
int frame_reader_fill(struct frame_reader *fr, bool wait);
/*
 * The next whole frame read: 1, with its header in @f, its payload at
 * *@payload (writable; valid until the next frame_reader_fill()) and its
 * fd (RSYS_F_FD) in *@rfd, else -1 (the caller closes it); 0 when more
 * bytes are needed; -EPROTO on a bad magic/version/op/flag or length, a
 * frame with RSYS_F_FD without an fd that came with its first byte, or an
 * fd that came with none such. As frame_recv_fd(), it accepts RSYS_F_REPLY
 * in either direction.
 */
int frame_reader_next(struct frame_reader *fr, struct rsys_frame *f, uint8_t **payload, int *rfd);

/*
 * Transport addresses: "unix:PATH", "tcp:HOST:PORT" (HOST an IPv4/IPv6
 * literal or name), "vsock:CID:PORT" (parsed; may fail with EAFNOSUPPORT).
 * On error a message naming @addr is printed on @err (may be NULL).
 */
int addr_parse(const char *addr, struct sockaddr_storage *ss, socklen_t *len, FILE *err);
/* Connected stream socket (SOCK_CLOEXEC) to @addr, or -errno. */
int addr_connect(const char *addr, FILE *err);
/* Listening stream socket on @addr (a stale unix socket file is replaced), or -errno. */
int addr_listen(const char *addr, int backlog, FILE *err);

/*
 * The delegate's counters (RSYS_OP_STATS) over a fresh session of our own on
 * @addr. 0 or -errno.
 */
int delegate_stats(const char *addr, struct rsys_delegate_stats *st);

#endif
