/* SPDX-License-Identifier: GPL-2.0 */
/* Sizes and default limits that rsys-load, rsys-delegate and the policy parser share. */
#ifndef RSYS_LIMITS_H
#define RSYS_LIMITS_H

#include <stdint.h>
#include <sys/socket.h>
#include <rsys/proto.h>

/* A socket address in a request or a reply. */
#define RSYS_MAX_ADDR		((uint32_t)sizeof(struct sockaddr_storage))
/* A socket option value (GETSOCKOPT/SETSOCKOPT), both directions. */
#define RSYS_MAX_OPT		4096
/* The data of one RECV: its reply carries them, the peer address and control messages. */
#define RSYS_MAX_RECV		(RSYS_MAX_PAYLOAD - RSYS_MAX_ADDR - RSYS_MAX_CONTROL)

/* The delegate's limits when its policy has no "limit" line for them (policy/README.md). */
#define RSYS_DEF_LIMIT_FDS	256	/* remote handles per session */
#define RSYS_DEF_LIMIT_INFLIGHT	64	/* requests executing per session */
#define RSYS_DEF_LIMIT_SESSIONS	256	/* sessions per client uid */
#define RSYS_DEF_LIMIT_LINGER	60	/* s an ended session's answered sends may still take */

#endif
