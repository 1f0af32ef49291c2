/* SPDX-License-Identifier: GPL-2.0 */
/* A raw wire-protocol client for the selftests: requests, replies and sessions of rsys-delegate. */
#ifndef RSYS_SELFTESTS_WIRE_H
#define RSYS_SELFTESTS_WIRE_H

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#include <rsys/proto.h>
#include "frame.h"

#define REPLY_TIMEOUT_MS	5000

static uint64_t next_id = 1;
static uint8_t rbuf[RSYS_MAX_PAYLOAD];	/* payload of the last reply */

static uint64_t req_send(int fd, int op, const void *p, uint32_t len, int64_t a0, int64_t a1,
			 int64_t a2, int64_t a3)
{
	struct rsys_frame f = { .op = op, .id = next_id++, .len = len, .a = { a0, a1, a2, a3 } };

	if (frame_send(fd, &f, p))
		return 0;
	return f.id;
}

/* Read the reply to @id: its a[0], or INT64_MIN when none came back in time. */
static int64_t reply_recv(int fd, uint64_t id, struct rsys_frame *f)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct rsys_frame tmp;

	if (!f)
		f = &tmp;
	if (poll(&p, 1, REPLY_TIMEOUT_MS) != 1)
		return INT64_MIN;
	if (frame_recv(fd, f, rbuf, sizeof(rbuf)) || f->id != id || !(f->flags & RSYS_F_REPLY))
		return INT64_MIN;
	return f->a[0];
}

static int64_t call(int fd, int op, const void *p, uint32_t len, int64_t a0, int64_t a1,
		    int64_t a2, int64_t a3, struct rsys_frame *f)
{
	uint64_t id = req_send(fd, op, p, len, a0, a1, a2, a3);

	return id ? reply_recv(fd, id, f) : INT64_MIN;
}

/* A session on @addr (unix:PATH): connected and past its HELLO; the fd, or -1. */
static int session_connect(const char *addr)
{
	int fd = addr_connect(addr, stderr);

	if (fd >= 0 && call(fd, RSYS_OP_HELLO, NULL, 0, RSYS_VERSION, 0, 0, 0, NULL) != RSYS_VERSION) {
		close(fd);
		return -1;
	}
	return fd;
}

#endif
