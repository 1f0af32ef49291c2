/* SPDX-License-Identifier: GPL-2.0 */
/* Reading and writing rsys wire frames (include/rsys/proto.h) and transport addresses. */
#ifndef RSYS_FRAME_H
#define RSYS_FRAME_H

#include <stddef.h>
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
