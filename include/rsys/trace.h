/* SPDX-License-Identifier: GPL-2.0 */
/* One decision or observation of rsys (a trace event), as producers send it to "rsys-load trace". */
#ifndef RSYS_TRACE_H
#define RSYS_TRACE_H

#include <stdint.h>

/*
 * The channel: "rsys-load trace" listens on a unix SOCK_SEQPACKET socket
 * (RSYS_TRACE_SOCK, or $RSYS_TRACE_SOCK); every producer (each "rsys-load
 * run" monitor, rsys-delegate --trace) connects to it and sends one struct
 * rsys_event per message, never blocking. Events a full reader could not
 * take are counted and the count travels in the producer's next event.
 */
#define RSYS_TRACE_SOCK		"/run/rsys/trace.sock"
#define RSYS_TRACE_ENV		"RSYS_TRACE_SOCK"
#define RSYS_TRACE_VERSION	1

enum rsys_ev_src {
	RSYS_SRC_MONITOR = 1,	/* rsys-load run / learn */
	RSYS_SRC_DELEGATE,	/* rsys-delegate */
	RSYS_SRC_TEST,		/* selftests' producers */
};

enum rsys_ev_call {
	RSYS_EV_SOCKET = 1,
	RSYS_EV_CONNECT,
	RSYS_EV_BIND,
	RSYS_EV_LISTEN,
	RSYS_EV_SENDTO,		/* a send that names its destination */
	RSYS_EV_ACCEPT,
	RSYS_EV_CLOSE,		/* last placeholder of a remote socket closed: bytes moved */
	RSYS_EV_EXECVE,		/* passport check */
	RSYS_EV_SETSOCKOPT,
	RSYS_EV_CMSG,		/* a control message of a send */
	RSYS_EV_LOST,		/* nothing but the count of lost events */
	RSYS_EV_MAX
};

enum rsys_ev_verdict {
	RSYS_VERDICT_OBSERVED = 0,	/* no decision: an observation (close, accept) */
	RSYS_VERDICT_ALLOWED,		/* by the rule at rule_file:rule_line */
	RSYS_VERDICT_ALLOWED_ALL,	/* the delegate has no policy: everything is allowed */
	RSYS_VERDICT_UNCHECKED,		/* allowed without a rule: the kernel judges the address */
	RSYS_VERDICT_DENIED,		/* refused by the egress policy or an allowlist */
	RSYS_VERDICT_TRUSTED,		/* passport accepted */
	RSYS_VERDICT_UNTRUSTED,		/* passport refused */
	RSYS_VERDICT_ERROR,		/* the delegate failed or was unreachable */
	RSYS_VERDICT_KILLED,		/* the exec guard killed an exec the passport had not approved */
	RSYS_VERDICT_MAX
};

struct rsys_event {
	uint16_t version;	/* RSYS_TRACE_VERSION */
	uint16_t size;		/* sizeof(struct rsys_event) */
	uint8_t src;		/* enum rsys_ev_src */
	uint8_t call;		/* enum rsys_ev_call */
	uint8_t verdict;	/* enum rsys_ev_verdict */
	uint8_t family;		/* AF_INET, AF_INET6 or 0: no address */
	uint64_t time_ns;	/* CLOCK_REALTIME */
	uint32_t lost;		/* events of this producer lost just before this one */
	int32_t producer;	/* pid of the monitor or delegate that sent it */
	int32_t pid, tid;	/* compute-domain process and thread (host pids), 0 if unknown */
	uint32_t session;	/* delegate session id (delegate events), else 0 */
	int32_t ret;		/* the call's result: >= 0 or -errno */
	int32_t rule_line;	/* ALLOWED: the rule's line */
	uint16_t port;		/* host byte order */
	uint8_t proto;		/* IPPROTO_TCP, IPPROTO_UDP, 0 */
	uint8_t has_sha256;
	uint8_t addr[16];	/* network byte order; 4 bytes for AF_INET */
	uint64_t bytes_in, bytes_out;	/* CLOSE: bytes received and sent on the socket */
	uint8_t sha256[32];	/* the program's passport digest */
	char rule_file[256];	/* ALLOWED: the policy holding the rule */
	char prog[256];		/* the program's path */
};

#endif
