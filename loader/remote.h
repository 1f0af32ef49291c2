/* SPDX-License-Identifier: GPL-2.0 */
/* Delegate client: one session per rsys-load run, requests multiplexed by id, replies dispatched to callbacks. */
#ifndef RSYS_REMOTE_H
#define RSYS_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <rsys/proto.h>

struct remote;
struct remote_req;
struct ready_slot;
struct sv_call;

typedef void (*remote_done_fn)(struct remote_req *r);

struct remote_req {
	/*
	 * Request: the caller sets f.op, f.a[] and f.len (payload bytes).
	 * On completion f holds the reply header: f.a[0] is the result
	 * (>= 0 or -errno), f.len the reply payload bytes.
	 */
	struct rsys_frame f;
	const void *payload;		/* request payload; read only inside remote_submit() */
	const void *rpayload;		/* reply payload; valid only while done() runs */
	bool lost;			/* the session died: f.a[0] is -ECONNRESET */
	bool has_fd;			/* direct mode: pass @fd with the request (RSYS_F_FD) */
	int fd;				/* the caller's; remote_submit() sends a copy */
	int rfd;			/* SOCKFD reply: the socket; done() owns it, -1 if none */
	remote_done_fn done;		/* called exactly once, from the event thread */
	void *arg;			/* the caller's */
	struct sv_call *call;		/* if set: the request is cancelled when this notification becomes invalid */
	/* private to remote.c */
	uint64_t id;
	bool cancel_sent;
	struct ready_slot *ready;	/* the slot whose calls in flight it counts in */
	struct remote_req *next;
};

struct tls_files;

/*
 * Connect to the delegate at @addr and say HELLO; tcp: and vsock: go
 * through mutual TLS with the files of @tls. 0 or -errno (message on @err).
 */
int remote_open(struct remote **rcp, const char *addr, const struct tls_files *tls, FILE *err);
void remote_close(struct remote *rc);

/* True if the session can pass fds (unix:): what direct mode needs. */
bool remote_passes_fds(const struct remote *rc);

/* The delegate's policy file, in which the rule lines of its verdicts (RSYS_RULE_*) count; "" if none. */
const char *remote_policy_file(const struct remote *rc);
/* Does the delegate's egress guard judge its sockets' datagrams sent with an address (RSYS_HELLO_EGRESS_GUARD)? */
bool remote_egress_guard(const struct remote *rc);

/* Called by the event thread: its sends are queued, never blocking it. */
void remote_set_event_thread(struct remote *rc);

/*
 * Wait until the frames the event thread has queued so far are on the wire
 * (a CLOSE it sent must reach the delegate before the caller's next frame).
 */
void remote_flush(struct remote *rc);

/* The session's socket, for the event thread's epoll. */
int remote_fd(const struct remote *rc);
/*
 * Readable when a request with a call was submitted after the event thread
 * chose to sleep without a timeout (remote_may_sleep()): it must then run
 * remote_check_calls() periodically. The event thread empties it with
 * remote_wake_clear().
 */
int remote_wake_fd(const struct remote *rc);
void remote_wake_clear(struct remote *rc);
/* Event thread: true if no request waits on a call; until the next check, a new one wakes it. */
bool remote_may_sleep(struct remote *rc);
/* False once the session has ended (EOF, protocol error). */
bool remote_alive(const struct remote *rc);

/*
 * Send @r; its done() runs later from the event thread. 0, or -errno when
 * nothing was sent (session dead: -ECONNRESET); done() is then not called.
 * @r must stay valid until done() has run. There is no synchronous call:
 * handlers must never block on the delegate (see supervisor.h).
 */
int remote_submit(struct remote *rc, struct remote_req *r);

/*
 * Readiness the delegate reported (remote.c says why it holds): take
 * remote_ready_gen() of @handle before a POLL that asks for it is
 * submitted, give it to remote_ready_note() with the bits its reply says
 * are ready; remote_ready_bits() is what is known ready now (0 when
 * unknown: a call on the handle started since, or is still out).
 */
uint32_t remote_ready_gen(struct remote *rc, uint64_t handle);
void remote_ready_note(struct remote *rc, uint64_t handle, uint32_t gen, uint16_t bits);
uint16_t remote_ready_bits(struct remote *rc, uint64_t handle);

/* Fire-and-forget request without a reply callback (e.g. RSYS_OP_CLOSE). */
int remote_post(struct remote *rc, uint16_t op, int64_t a0, int64_t a1);

/* Ask the delegate to interrupt @r (if it is still pending); done() still runs once. */
void remote_cancel(struct remote *rc, struct remote_req *r);
/*
 * remote_cancel() in two steps, for callers holding a lock that must not
 * be held while sending (supervisor.c, "the lock rule"): take the id of
 * @r's cancel (0 if @r is no longer pending or its cancel is out) under
 * the lock, send it after unlocking. A cancel that arrives after its
 * request's reply is ignored by the delegate.
 */
uint64_t remote_cancel_take(struct remote *rc, struct remote_req *r);
void remote_cancel_send(struct remote *rc, uint64_t id);

/*
 * Event-thread side: read one reply and run its done(). On the end of the
 * session completes every pending request with lost set and returns -errno.
 */
int remote_on_readable(struct remote *rc);
/*
 * Cancel pending requests whose notification became invalid or whose call a
 * signal ended (sv_call_interrupted); true if some still wait on a call.
 */
bool remote_check_calls(struct remote *rc);

#endif
