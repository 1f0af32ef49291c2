/* SPDX-License-Identifier: GPL-2.0 */
/* Internal interfaces of rsys-delegate: sessions, handles, delegate threads and the op table. */
#ifndef RSYS_DELEGATE_H
#define RSYS_DELEGATE_H

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <rsys/policy.h>
#include <rsys/proto.h>

/* Signal that interrupts a delegate thread's blocking syscall (empty handler, no SA_RESTART). */
#define DELEGATE_CANCEL_SIG	SIGUSR1

/* The client index of every TLS client (certificates, not uids, identify them). */
#define CLIENT_TLS		POLICY_MAX_CLIENTS

/* The daemon's configuration and counters, shared by every session. */
struct delegate {
	const struct policy *policy;	/* NULL: everything allowed */
	unsigned int limit_fds;
	unsigned int limit_inflight;
	unsigned int limit_sessions;	/* per client uid */
	unsigned int limit_linger;	/* s: answered sends of an ended session (session_end) */
	uint32_t client_uids[POLICY_MAX_CLIENTS];	/* peers served on unix: */
	int n_client_uids;
	unsigned int client_sessions[CLIENT_TLS + 1];	/* open, per client; atomic */
	struct ssl_ctx_st *tls;		/* tcp:/vsock: (mutual TLS), else NULL */
	bool trace;			/* --trace: decisions go to the trace reader too */
	unsigned int busy_poll_us;	/* --busy-poll: a session reader's poll before it sleeps (busy_poll_cpus) */
	bool egress_guard;		/* guard.c's programs judge our sockets' addressed datagrams */
	unsigned int max_handles;	/* sockets, all sessions (fits RLIMIT_NOFILE) */
	unsigned int max_workers;	/* delegate and flusher threads, all sessions */
	unsigned int workers;		/* running now; atomic */
	unsigned int handles_used;	/* slots reserved, all sessions; atomic */
	size_t buffered;		/* queued requests and replies, all sessions; atomic */
	struct rsys_delegate_stats stats;	/* updated with __atomic builtins */
};

extern struct delegate dlg;

#define stat_add(field, v)	__atomic_add_fetch(&dlg.stats.field, (v), __ATOMIC_RELAXED)
#define stat_sub(field, v)	__atomic_sub_fetch(&dlg.stats.field, (v), __ATOMIC_RELAXED)

/*
 * One remote socket. A handle is (generation << 32 | slot); slots are reused
 * with a new generation so stale handles fail with EBADF.
 */
struct handle {
	int fd;
	uint32_t gen;
	int refs;		/* lookups in progress, +1 while open */
	bool used;		/* slot taken: reserved, open or waiting for its last user */
	bool open;		/* reachable by handle_get() */
	bool nonblock;		/* O_NONBLOCK on fd */
	bool linger;		/* SO_LINGER on: close may block */
	bool rcvlowat;		/* SO_RCVLOWAT > 1: a blocking recv waits for more than is queued */
	bool sndtimeo;		/* SO_SNDTIMEO was set: a blocking send may end early */
	int family;		/* AF_INET, AF_INET6 */
	int proto;		/* IPPROTO_TCP, IPPROTO_UDP, ... for the egress check */
	uint32_t next_free;
};

struct request {
	struct rsys_frame f;
	uint8_t *payload;
	struct request *next;
	pthread_t thread;	/* the delegate thread executing it */
	int64_t done;		/* bytes of a send already sent by op_try_now() */
	bool cancelled;
};

/* One client connection. */
struct session {
	int fd;
	unsigned int id;
	int client;			/* index in dlg.client_uids */
	struct rsys_frame hello;	/* the first request, read by the listener */
	pthread_mutex_t out_lock;	/* the reply queue: */
	pthread_cond_t out_cond;	/* writing ended, queue shrank */
	bool writing;			/* a thread is writing replies */
	struct outbuf *outq, *outq_tail;	/* replies waiting to be written */
	size_t outq_bytes;
	pthread_mutex_t lock;		/* everything below */
	pthread_cond_t work;		/* queue gained a request, or closing */
	pthread_cond_t idle;		/* a delegate thread ended */
	struct handle *handles;		/* dlg.limit_fds slots */
	uint32_t free_head;		/* first free slot, limit_fds if none */
	struct request *queue, *queue_tail;
	struct request *running;	/* executing in delegate threads */
	unsigned int queued;
	unsigned int outstanding;	/* queued + running */
	unsigned int workers, idle_workers;
	unsigned int kicks;		/* cancelled requests still running */
	bool closing;
	bool pinned;			/* its threads run on @cpus, its client's (session_cpus) */
	cpu_set_t cpus;
};

/* Reply buffer of one executing request. */
struct reply {
	struct rsys_frame f;
	uint8_t *buf;		/* RSYS_MAX_PAYLOAD bytes */
	int fd;			/* SOCKFD: the socket to pass with the reply, else -1 */
};

/* main.c */
void stats_read(struct rsys_delegate_stats *out);

/*
 * guard.c: move into a cgroup of our own whose cgroup/sendmsg4/6 programs
 * judge, by @p's egress rules, every datagram a socket we create sends with
 * an address (rsys-delegate(8), EGRESS GUARD). 0 or -errno (nothing kept).
 */
int egress_guard_start(const struct policy *p);
void egress_guard_stop(void);
/* May a socket of @type and @proto be handed out whole (direct mode)? Always without the guard. */
bool egress_guard_covers(int type, int proto);
/* Sends the programs refused so far. */
uint64_t egress_guard_denied(void);

/* session.c */
/*
 * Serve the client connected on @fd, client_uids[@client] or CLIENT_TLS, in a new thread
 * that answers @hello first; on success it owns @fd.
 */
int session_start(int fd, int client, const struct rsys_frame *hello);
/* A free slot for a new socket, or NULL with *@err -EMFILE (session) or -ENFILE (all sessions). */
struct handle *handle_reserve(struct session *s, uint64_t *h, int *err);
void handle_publish(struct session *s, struct handle *hd, int fd, int family, int proto,
		    bool nonblock);
void handle_unreserve(struct session *s, struct handle *hd);
struct handle *handle_get(struct session *s, uint64_t h);
void handle_put(struct session *s, struct handle *hd);
int handle_close(struct session *s, uint64_t h);

/* ops.c */
enum op_mode {
	OP_NOW,		/* cannot block: the reader executes it */
	OP_TRY_FIRST,	/* may block: op_try_now() in the reader, then a delegate thread */
	OP_THREAD,	/* may block: straight to a delegate thread */
};

/* Validate @f's arguments and payload size and choose how to run it; 0, or -errno to answer at once. */
int op_check(struct session *s, const struct rsys_frame *f, enum op_mode *mode);
/* Execute a checked request; fills r->f.a[] (a[0] the result) and r->f.len bytes of r->buf. */
void op_exec(struct session *s, const struct rsys_frame *f, const uint8_t *payload,
	     struct reply *r);
/*
 * Direct mode: make the socket @fd that came with request @f (RSYS_F_FD) a
 * handle for this one call, in f->a[0]. It must be a socket of our own
 * network namespace, of a remote family, stream or datagram. 0, or -errno
 * (then @fd is closed).
 */
int op_adopt(struct session *s, struct rsys_frame *f, int fd);
/* The call @f is answered: drop the handle op_adopt() made for it, if any. */
void op_adopted_done(struct session *s, const struct rsys_frame *f);

/*
 * A call that may block often need not: try an OP_TRY_FIRST call (RECV, SEND,
 * POLL) without blocking, so that the reader answers it without a thread
 * switch. True when @r holds the answer. Otherwise the call goes to a delegate
 * thread; for a stream send that went out in part, @f and @payload are
 * trimmed to the rest and *@done is set to the bytes already sent.
 */
bool op_try_now(struct session *s, struct rsys_frame *f, uint8_t *payload, struct reply *r,
		int64_t *done);

#endif
