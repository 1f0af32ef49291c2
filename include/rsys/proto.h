/* SPDX-License-Identifier: GPL-2.0 */
/* Wire protocol between the rsys monitor (compute side) and rsys-delegate. */
#ifndef RSYS_PROTO_H
#define RSYS_PROTO_H

#include <stdint.h>

/*
 * Every message is one frame: a fixed header followed by @len payload bytes.
 * Fields are in the byte order of the machine (little-endian x86-64; both
 * ends must agree, checked by the magic). Requests carry a fresh @id chosen
 * by the client; the reply to a request carries the same @id and @op with
 * RSYS_F_REPLY set and the result in a[0]: >= 0 on success, -errno on
 * failure, exactly what the syscall would have returned natively.
 *
 * Requests are executed concurrently in delegate threads; replies may come
 * back in any order. A request may be cancelled by RSYS_OP_CANCEL naming its
 * id: if it has not started it is skipped, if it is blocked it is interrupted
 * (EINTR); either way exactly one reply still comes back for it.
 */
#define RSYS_MAGIC		0x52535953u	/* "RSYS" */
#define RSYS_VERSION		1
#define RSYS_NARGS		6
#define RSYS_MAX_PAYLOAD	(256u * 1024)	/* larger I/O is split by the client */
#define RSYS_MAX_CONTROL	4096u		/* control messages of one SEND or RECV */

#define RSYS_F_REPLY		0x1
/*
 * Direct mode (unix: transports only): an fd travels with the frame as
 * SCM_RIGHTS on its first bytes. On a request it is a socket of the
 * service domain the program holds: the delegate adopts it for this one
 * call (a0 names it instead of a handle; CONNECT, BIND, LISTEN, SEND and
 * SETSOCKOPT only) and closes its copy when the call is answered. On a
 * reply (SOCKFD) it is the new socket.
 */
#define RSYS_F_FD		0x2

/*
 * HELLO reply a3: the delegate's egress guard judges, in the kernel, every
 * datagram a socket it created sends with an address; direct mode need not
 * trap sendto() with an address (rsys-delegate(8), EGRESS GUARD).
 */
#define RSYS_HELLO_EGRESS_GUARD	0x1

struct rsys_frame {
	uint32_t magic;
	uint16_t version;
	uint16_t op;		/* enum rsys_op */
	uint64_t id;
	uint32_t len;		/* payload bytes following this header */
	uint32_t flags;		/* RSYS_F_* */
	int64_t a[RSYS_NARGS];
};

/*
 * Handles name remote sockets; they are only meaningful inside the session
 * (one client connection) that created them.
 *
 * Argument use per op (request a[], payload -> reply a[], payload):
 */
enum rsys_op {
	RSYS_OP_HELLO = 1,	/* a0 version -> a1 max handles, a2 max in flight, a3 RSYS_HELLO_* */
	RSYS_OP_SOCKET,		/* a0 domain, a1 type (SOCK_NONBLOCK honoured), a2 protocol -> a0 handle */
	RSYS_OP_CONNECT,	/* a0 h; payload sockaddr */
	RSYS_OP_BIND,		/* a0 h; payload sockaddr */
	RSYS_OP_LISTEN,		/* a0 h, a1 backlog */
	RSYS_OP_ACCEPT,		/* a0 h, a1 flags (SOCK_NONBLOCK) -> a0 new handle; payload peer sockaddr */
	RSYS_OP_SEND,		/* a0 h, a1 flags, a2 addrlen, a3 controllen, a4 RSYS_SEND_BEHIND; payload addr (a2 bytes), control (a3 bytes), data -> a0 bytes sent */
	RSYS_OP_RECV,		/* a0 h, a1 len, a2 flags, a3 want addr, a4 control room -> a0 bytes, a1 addrlen, a2 msg_flags, a4 controllen; payload data, addr, control */
	RSYS_OP_SHUTDOWN,	/* a0 h, a1 how */
	RSYS_OP_GETSOCKOPT,	/* a0 h, a1 level, a2 optname, a3 optlen -> a1 optlen; payload value */
	RSYS_OP_SETSOCKOPT,	/* a0 h, a1 level, a2 optname; payload value */
	RSYS_OP_GETSOCKNAME,	/* a0 h -> payload sockaddr */
	RSYS_OP_GETPEERNAME,	/* a0 h -> payload sockaddr */
	RSYS_OP_CLOSE,		/* a0 h */
	RSYS_OP_FCNTL,		/* a0 h, a1 cmd (F_GETFL, F_SETFL only), a2 arg -> a0 result */
	RSYS_OP_IOCTL,		/* a0 h, a1 request (FIONREAD, FIONBIO), a2 int arg -> a1 int out */
	RSYS_OP_POLL,		/* a0 n, a1 timeout ms (-1 = forever); payload n x struct rsys_pollfd -> a0 count; payload n x struct rsys_pollfd with revents */
	RSYS_OP_CANCEL,		/* a0 id of the request to cancel; no reply of its own */
	RSYS_OP_STATS,		/* -> payload struct rsys_delegate_stats */
	RSYS_OP_INFO,		/* -> payload the delegate's policy file path, for RSYS_RULE_* lines */
	RSYS_OP_SOCKFD,		/* a0 domain, a1 type, a2 protocol -> a0 0; the socket itself (RSYS_F_FD), no handle */
	RSYS_OP_MAX
};

/*
 * a5 of the CONNECT, BIND, LISTEN and SEND replies: the egress verdict, for
 * trace events. > 0: the line of the allowing rule in the delegate's policy
 * (RSYS_OP_INFO names it); else one of these.
 */
#define RSYS_RULE_NONE		0	/* no check was made (no address, or the kernel judges it) */
#define RSYS_RULE_NOPOLICY	(-1)	/* the delegate has no policy: everything is allowed */
#define RSYS_RULE_DENIED	(-2)	/* refused by the egress policy */

/*
 * a4 of a SEND reply that sent bytes: the socket is a connected TCP stream,
 * blocking, without a send timeout. Until the client changes it (options,
 * fcntl, ioctl, shutdown), a blocking send of it can only send everything
 * or fail on the connection: the client may answer such sends before their
 * reply (write-behind, rsys-load(8)).
 */
#define RSYS_SEND_STREAM	0x1

/*
 * a4 of a SEND request: the client answered this send already (write-behind).
 * When the session ends the delegate still makes it, for a while, before it
 * closes the socket, as the kernel sends a closed socket's buffer.
 */
#define RSYS_SEND_BEHIND	0x1

struct rsys_pollfd {
	uint64_t handle;
	int16_t events;
	int16_t revents;
	uint32_t pad;
};

struct rsys_delegate_stats {
	uint64_t sessions;	/* open client sessions */
	uint64_t handles;	/* open handles, all sessions */
	uint64_t threads;	/* delegate threads alive (excluding listener) */
	uint64_t inflight;	/* requests being executed */
	uint64_t requests;	/* requests served since start */
	uint64_t cancelled;	/* requests cancelled (skipped or interrupted) */
	uint64_t denied;	/* refused: egress policy, option/flag allowlists, client uids */
	uint64_t bad_frames;	/* malformed frames received */
};

#endif
