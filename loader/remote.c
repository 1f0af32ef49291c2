// SPDX-License-Identifier: GPL-2.0
/* Delegate client (remote.h): request ids, pending table, reply dispatch, cancellation, session loss. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

#include "deadline.h"
#include "frame.h"
#include "lockdebug.h"
#include "log.h"
#include "remote.h"
#include "supervisor.h"
#include "tls.h"

#define REMOTE_BUCKETS	256
#define REMOTE_FLUSH_MS	2000	/* remote_close: how long queued frames may take to leave */

/* A frame queued by the event thread for the writer thread. */
struct wq_item {
	struct wq_item *next;
	int fd;				/* to pass along, or -1 */
	struct rsys_frame f;
	char payload[];
};

/*
 * What the delegate's POLL replies said is ready, per handle (wait.c's
 * select answers from it). Readiness that comes from the network only
 * grows until a call of ours takes it away: data, connections, errors and
 * hang-ups arrive and room to send frees up; receiving, accepting, sending,
 * options (SO_ERROR, SO_RCVLOWAT) and shutdown are our calls. So a bit a
 * POLL reply reported stays true until the next call on that handle starts.
 * A slot (handles hashed; several may share one) counts the calls in
 * flight on its handles and a generation that each start and end of one
 * moves: a POLL reply is kept only if none ran while it was out.
 */
#define READY_SLOTS	1024

struct ready_slot {
	uint64_t handle;
	uint32_t gen;
	uint16_t busy;			/* calls in flight on the slot's handles */
	uint16_t bits;			/* of @handle: poll bits known ready */
};

struct remote {
	int fd;
	bool alive;
	bool unix_fd;			/* a unix socket: fds may travel (direct mode) */
	bool egress_guard;		/* HELLO: RSYS_HELLO_EGRESS_GUARD */
	/*
	 * The event thread reads replies and must never block on a send: the
	 * delegate may be blocked writing replies to us. Its frames go
	 * through a queue served by the writer thread.
	 */
	pthread_t event_thread;
	bool has_event_thread;
	pthread_t writer;
	bool writer_started, writer_stop;
	pthread_mutex_t wq_lock;
	pthread_cond_t wq_cond;
	pthread_cond_t wq_sent_cond;	/* wq_sent moved */
	uint64_t wq_queued, wq_sent;	/* frames queued for the writer / written by it */
	struct wq_item *wq_head, *wq_tail;
	uint64_t next_id;
	pthread_mutex_t send_lock;	/* one frame at a time on the wire */
	pthread_mutex_t lock;		/* pending table, alive, next_id */
	struct remote_req *pending[REMOTE_BUCKETS];
	unsigned int n_waiting;		/* pending requests with a call */
	int wake_fd;			/* eventfd: a call to watch while the event thread sleeps */
	bool ev_asleep;			/* the event thread sleeps without a timeout */
	struct frame_reader rd;		/* replies: read by the event thread only */
	char policy_file[POLICY_PATH_MAX];	/* the delegate's, for the rules its verdicts name */
	struct ready_slot ready[READY_SLOTS];	/* under @lock */
};

static void *remote_writer(void *arg)
{
	struct remote *rc = arg;
	struct wq_item *it;

	pthread_mutex_lock(&rc->wq_lock);
	for (;;) {
		while (!rc->wq_head && !rc->writer_stop)
			pthread_cond_wait(&rc->wq_cond, &rc->wq_lock);
		it = rc->wq_head;
		if (!it)
			break;
		rc->wq_head = it->next;
		if (!rc->wq_head)
			rc->wq_tail = NULL;
		pthread_mutex_unlock(&rc->wq_lock);
		pthread_mutex_lock(&rc->send_lock);
		if (frame_send_fd(rc->fd, &it->f, it->payload, it->fd))
			pr_debug("delegate send failed (queued frame)\n");
		pthread_mutex_unlock(&rc->send_lock);
		if (it->fd >= 0)
			close(it->fd);
		free(it);
		pthread_mutex_lock(&rc->wq_lock);
		rc->wq_sent++;
		pthread_cond_broadcast(&rc->wq_sent_cond);
	}
	pthread_mutex_unlock(&rc->wq_lock);
	return NULL;
}

/* The other threads read has_event_thread without a lock: event_thread is set before it. */
void remote_set_event_thread(struct remote *rc)
{
	rc->event_thread = pthread_self();
	__atomic_store_n(&rc->has_event_thread, true, __ATOMIC_RELEASE);
}

/*
 * Send one frame, with @fd (>= 0) passed along; from the event thread it is
 * queued (a copy, and a copy of @fd) for the writer thread.
 */
static int wire_send(struct remote *rc, struct rsys_frame *f, const void *payload, int fd)
{
	struct wq_item *it;
	int ret = 0;

	if (fd >= 0 && !rc->unix_fd)
		return -EOPNOTSUPP;
	if (!__atomic_load_n(&rc->has_event_thread, __ATOMIC_ACQUIRE) ||
	    !pthread_equal(pthread_self(), rc->event_thread)) {
		rsys_assert_unlocked("a send to the delegate");
		pthread_mutex_lock(&rc->send_lock);
		ret = frame_send_fd(rc->fd, f, payload, fd);
		pthread_mutex_unlock(&rc->send_lock);
		return ret;
	}
	it = malloc(sizeof(*it) + f->len);
	if (!it)
		return -ENOMEM;
	it->fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
	if (fd >= 0 && it->fd < 0) {
		free(it);
		return -errno;
	}
	it->next = NULL;
	it->f = *f;
	if (f->len)
		memcpy(it->payload, payload, f->len);
	pthread_mutex_lock(&rc->wq_lock);
	if (!rc->writer_started) {
		ret = -pthread_create(&rc->writer, NULL, remote_writer, rc);
		rc->writer_started = !ret;
	}
	if (!ret) {
		if (rc->wq_tail)
			rc->wq_tail->next = it;
		else
			rc->wq_head = it;
		rc->wq_tail = it;
		rc->wq_queued++;
		pthread_cond_signal(&rc->wq_cond);
	}
	pthread_mutex_unlock(&rc->wq_lock);
	if (ret) {
		if (it->fd >= 0)
			close(it->fd);
		free(it);
	}
	return ret;
}

int remote_open(struct remote **rcp, const char *addr, const struct tls_files *tls, FILE *err)
{
	struct rsys_frame f = { .op = RSYS_OP_HELLO, .a = { RSYS_VERSION } };
	bool unix_addr = !strncmp(addr, "unix:", 5);
	struct remote *rc;
	bool guarded;
	int fd, ret;

	/* Only unix: carries the peer's identity; elsewhere both ends show certificates. */
	if (!unix_addr && !tls_files_complete(tls, "a tcp: or vsock: delegate", err))
		return -EINVAL;
	fd = addr_connect(addr, err);
	if (fd < 0)
		return fd;
	if (!unix_addr) {
		fd = tls_client_wrap(fd, addr, tls, err);
		if (fd < 0)
			return fd;
	}
	f.id = 1;
	ret = frame_send(fd, &f, NULL);
	if (!ret)
		ret = frame_recv(fd, &f, NULL, 0);
	if (!ret && (f.op != RSYS_OP_HELLO || f.id != 1 || !(f.flags & RSYS_F_REPLY)))
		ret = -EPROTO;
	if (!ret && f.a[0] < 0)
		ret = f.a[0];
	if (ret) {
		fprintf(err, "Error: delegate at %s refused the session: %s\n", addr, err_str(-ret));
		close(fd);
		return ret;
	}
	guarded = f.a[3] & RSYS_HELLO_EGRESS_GUARD;
	pr_info("delegate %s: max handles %lld, max in flight %lld\n", addr, (long long)f.a[1],
		(long long)f.a[2]);
	rc = calloc(1, sizeof(*rc));
	if (!rc) {
		close(fd);
		return -ENOMEM;
	}
	rc->egress_guard = guarded;
	/* Which policy the rule lines of its verdicts count in (trace events). */
	f = (struct rsys_frame){ .op = RSYS_OP_INFO, .id = 2 };
	ret = frame_send(fd, &f, NULL);
	if (!ret)
		ret = frame_recv(fd, &f, rc->policy_file, sizeof(rc->policy_file) - 1);
	if (ret || f.id != 2 || f.op != RSYS_OP_INFO) {
		fprintf(err, "Error: delegate at %s did not answer INFO: %s\n", addr,
			err_str(ret ? -ret : EPROTO));
		free(rc);
		close(fd);
		return ret ? ret : -EPROTO;
	}
	rc->policy_file[f.len] = '\0';
	rc->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	ret = rc->wake_fd < 0 ? -errno : frame_reader_init(&rc->rd, fd, unix_addr);
	if (ret) {
		if (rc->wake_fd >= 0)
			close(rc->wake_fd);
		free(rc);
		close(fd);
		return ret;
	}
	rc->fd = fd;
	rc->alive = true;
	rc->unix_fd = unix_addr;
	rc->next_id = 3;
	pthread_mutex_init(&rc->send_lock, NULL);
	pthread_mutex_init(&rc->lock, NULL);
	pthread_mutex_init(&rc->wq_lock, NULL);
	pthread_cond_init(&rc->wq_cond, NULL);
	pthread_cond_init(&rc->wq_sent_cond, NULL);
	*rcp = rc;
	return 0;
}

bool remote_passes_fds(const struct remote *rc)
{
	return rc->unix_fd;
}

bool remote_egress_guard(const struct remote *rc)
{
	return rc->egress_guard;
}

const char *remote_policy_file(const struct remote *rc)
{
	return rc->policy_file;
}

void remote_close(struct remote *rc)
{
	struct timespec ts;

	if (!rc)
		return;
	pthread_mutex_lock(&rc->wq_lock);
	rc->writer_stop = true;
	pthread_cond_signal(&rc->wq_cond);
	pthread_mutex_unlock(&rc->wq_lock);
	if (rc->writer_started) {
		/*
		 * The writer flushes what is queued (closes, cancels), but a
		 * delegate that no longer reads must not hang the monitor:
		 * then the session is shut down under it.
		 */
		deadline_ms(&ts, REMOTE_FLUSH_MS);
		if (pthread_timedjoin_np(rc->writer, NULL, &ts)) {
			pr_warn("delegate does not read: dropping the requests still queued\n");
			shutdown(rc->fd, SHUT_RDWR);
			pthread_join(rc->writer, NULL);
		}
	}
	close(rc->fd);
	close(rc->wake_fd);
	frame_reader_free(&rc->rd);
	free(rc);
}

void remote_flush(struct remote *rc)
{
	uint64_t target;

	pthread_mutex_lock(&rc->wq_lock);
	target = rc->wq_queued;
	while (rc->writer_started && !rc->writer_stop && rc->wq_sent < target)
		pthread_cond_wait(&rc->wq_sent_cond, &rc->wq_lock);
	pthread_mutex_unlock(&rc->wq_lock);
}

int remote_fd(const struct remote *rc)
{
	return rc->fd;
}

int remote_wake_fd(const struct remote *rc)
{
	return rc->wake_fd;
}

void remote_wake_clear(struct remote *rc)
{
	uint64_t v;

	if (read(rc->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_debug("wake eventfd: %s\n", err_str(errno));
}

bool remote_alive(const struct remote *rc)
{
	return __atomic_load_n(&rc->alive, __ATOMIC_ACQUIRE);
}

/*
 * With rc->lock held. A request with a call wakes the event thread if it
 * sleeps without a timeout: a signal to its caller must cancel it within
 * SV_CHECK_MS, not at the next event. A nonblocking eventfd write cannot
 * block (a full counter is already a wake-up).
 */
static void pending_add(struct remote *rc, struct remote_req *r)
{
	struct remote_req **b = &rc->pending[r->id % REMOTE_BUCKETS];
	uint64_t one = 1;

	r->next = *b;
	*b = r;
	if (!r->call)
		return;
	rc->n_waiting++;
	if (rc->ev_asleep) {
		rc->ev_asleep = false;
		if (write(rc->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
			pr_debug("wake eventfd: %s\n", err_str(errno));
	}
}

bool remote_may_sleep(struct remote *rc)
{
	bool ret;

	pthread_mutex_lock(&rc->lock);
	ret = !rc->n_waiting;
	rc->ev_asleep = ret;
	pthread_mutex_unlock(&rc->lock);
	return ret;
}

/* Unlink the pending request @id; NULL if unknown. Called with rc->lock held. */
static struct remote_req *pending_take(struct remote *rc, uint64_t id)
{
	struct remote_req **pp, *r;

	for (pp = &rc->pending[id % REMOTE_BUCKETS]; (r = *pp); pp = &r->next) {
		if (r->id == id) {
			*pp = r->next;
			if (r->call)
				rc->n_waiting--;
			return r;
		}
	}
	return NULL;
}

static struct ready_slot *ready_slot(struct remote *rc, uint64_t handle)
{
	return &rc->ready[(handle ^ handle >> 32) % READY_SLOTS];
}

/* Ops whose a0 names a handle; POLL only looks. Called with rc->lock held. */
static void ready_start(struct remote *rc, struct remote_req *r)
{
	struct ready_slot *s;

	r->ready = NULL;
	if (r->f.op == RSYS_OP_POLL || r->f.op == RSYS_OP_SOCKET || r->f.op == RSYS_OP_SOCKFD ||
	    r->f.op == RSYS_OP_STATS || r->f.op == RSYS_OP_INFO || r->f.op == RSYS_OP_HELLO ||
	    r->has_fd)
		return;
	s = ready_slot(rc, r->f.a[0]);
	s->gen++;
	s->busy++;
	s->bits = 0;
	r->ready = s;
}

/* @r's call has ended (replied, lost or never sent). Called with rc->lock held. */
static void ready_end(struct remote_req *r)
{
	if (!r->ready)
		return;
	r->ready->gen++;
	r->ready->busy--;
	r->ready->bits = 0;
	r->ready = NULL;
}

uint32_t remote_ready_gen(struct remote *rc, uint64_t handle)
{
	struct ready_slot *s = ready_slot(rc, handle);
	uint32_t gen;

	pthread_mutex_lock(&rc->lock);
	gen = s->busy ? 0 : s->gen | 1u << 31;
	pthread_mutex_unlock(&rc->lock);
	return gen;
}

void remote_ready_note(struct remote *rc, uint64_t handle, uint32_t gen, uint16_t bits)
{
	struct ready_slot *s = ready_slot(rc, handle);

	pthread_mutex_lock(&rc->lock);
	if (gen && !s->busy && (s->gen | 1u << 31) == gen) {
		s->handle = handle;
		s->bits = bits;
	}
	pthread_mutex_unlock(&rc->lock);
}

uint16_t remote_ready_bits(struct remote *rc, uint64_t handle)
{
	struct ready_slot *s = ready_slot(rc, handle);
	uint16_t bits;

	pthread_mutex_lock(&rc->lock);
	bits = s->handle == handle && !s->busy ? s->bits : 0;
	pthread_mutex_unlock(&rc->lock);
	return bits;
}

int remote_submit(struct remote *rc, struct remote_req *r)
{
	struct rsys_frame f;
	int ret;

	pthread_mutex_lock(&rc->lock);
	if (!rc->alive) {
		pthread_mutex_unlock(&rc->lock);
		return -ECONNRESET;
	}
	r->id = rc->next_id++;
	r->cancel_sent = false;
	r->lost = false;
	pending_add(rc, r);
	ready_start(rc, r);
	pthread_mutex_unlock(&rc->lock);

	/* r may complete (and be freed) as soon as it is on the wire: send a copy. */
	f = r->f;
	f.id = r->id;
	f.flags = 0;
	ret = wire_send(rc, &f, r->payload, r->has_fd ? r->fd : -1);
	if (ret) {
		pthread_mutex_lock(&rc->lock);
		/* Gone already if the event thread failed the whole session meanwhile. */
		if (pending_take(rc, f.id) != r)
			ret = 0;
		else
			ready_end(r);
		pthread_mutex_unlock(&rc->lock);
		if (ret)
			pr_debug("delegate send failed: %s\n", err_str(-ret));
		return ret ? -ECONNRESET : 0;
	}
	return 0;
}

int remote_post(struct remote *rc, uint16_t op, int64_t a0, int64_t a1)
{
	struct rsys_frame f = { .op = op, .a = { a0, a1 } };

	if (!remote_alive(rc))
		return -ECONNRESET;
	pthread_mutex_lock(&rc->lock);
	f.id = rc->next_id++;
	if (op == RSYS_OP_CLOSE) {
		struct ready_slot *s = ready_slot(rc, a0);

		s->gen++;
		s->bits = 0;
	}
	pthread_mutex_unlock(&rc->lock);
	return wire_send(rc, &f, NULL, -1);
}

uint64_t remote_cancel_take(struct remote *rc, struct remote_req *r)
{
	uint64_t id = 0;
	struct remote_req *p;

	pthread_mutex_lock(&rc->lock);
	for (p = rc->pending[r->id % REMOTE_BUCKETS]; p; p = p->next) {
		if (p == r && !r->cancel_sent) {
			r->cancel_sent = true;
			id = r->id;
			break;
		}
	}
	pthread_mutex_unlock(&rc->lock);
	return id;
}

void remote_cancel_send(struct remote *rc, uint64_t id)
{
	if (id)
		remote_post(rc, RSYS_OP_CANCEL, id, 0);
}

void remote_cancel(struct remote *rc, struct remote_req *r)
{
	remote_cancel_send(rc, remote_cancel_take(rc, r));
}

/* The session is over: every pending request completes as lost. */
static void remote_fail_all(struct remote *rc)
{
	struct remote_req *list = NULL, *r;
	int i;

	pthread_mutex_lock(&rc->lock);
	__atomic_store_n(&rc->alive, false, __ATOMIC_RELEASE);
	for (i = 0; i < REMOTE_BUCKETS; i++) {
		while ((r = rc->pending[i])) {
			rc->pending[i] = r->next;
			ready_end(r);
			r->next = list;
			list = r;
		}
	}
	rc->n_waiting = 0;
	pthread_mutex_unlock(&rc->lock);
	while ((r = list)) {
		list = r->next;
		r->f.a[0] = -ECONNRESET;
		r->f.len = 0;
		r->rpayload = NULL;
		r->rfd = -1;
		r->lost = true;
		r->done(r);
	}
}

/* Run the done() of the reply @f (payload @payload, socket @rfd or -1). */
static void reply_dispatch(struct remote *rc, const struct rsys_frame *f, const void *payload,
			   int rfd)
{
	struct remote_req *r;

	/* Only a SOCKFD reply brings a socket. */
	if (rfd >= 0 && f->op != RSYS_OP_SOCKFD) {
		close(rfd);
		rfd = -1;
	}
	pthread_mutex_lock(&rc->lock);
	r = pending_take(rc, f->id);
	if (r)
		ready_end(r);
	pthread_mutex_unlock(&rc->lock);
	if (!r) {
		pr_debug("reply to unknown request %llu (op %u)\n", (unsigned long long)f->id, f->op);
		if (rfd >= 0)
			close(rfd);
		return;
	}
	r->f = *f;
	r->rpayload = payload;
	r->rfd = rfd;
	r->done(r);
}

int remote_on_readable(struct remote *rc)
{
	struct rsys_frame f;
	uint8_t *payload;
	int ret, rfd;

	/* One read brings every reply queued: a busy session costs fewer syscalls than replies. */
	ret = frame_reader_fill(&rc->rd, false);
	if (ret == -EAGAIN)
		return 0;
	while (ret > 0) {
		ret = frame_reader_next(&rc->rd, &f, &payload, &rfd);
		if (ret > 0 && !(f.flags & RSYS_F_REPLY)) {
			if (rfd >= 0)
				close(rfd);
			ret = -EPROTO;
		}
		if (ret > 0)
			reply_dispatch(rc, &f, payload, rfd);
	}
	if (ret) {
		if (ret != -ECONNRESET)
			pr_warn("delegate session ended: %s\n", err_str(-ret));
		else
			pr_info("delegate closed the session\n");
		remote_fail_all(rc);
		return ret;
	}
	return 0;
}

bool remote_check_calls(struct remote *rc)
{
	uint64_t ids[64];
	struct remote_req *r;
	unsigned int n = 0, i;
	bool waiting;

	pthread_mutex_lock(&rc->lock);
	for (i = 0; i < REMOTE_BUCKETS && n < 64; i++) {
		for (r = rc->pending[i]; r && n < 64; r = r->next) {
			if (r->call && !r->cancel_sent &&
			    (sv_call_interrupted(r->call) || !sv_call_valid(r->call))) {
				r->cancel_sent = true;
				ids[n++] = r->id;
			}
		}
	}
	waiting = rc->n_waiting > 0;
	rc->ev_asleep = false;
	pthread_mutex_unlock(&rc->lock);
	for (i = 0; i < n; i++) {
		pr_debug("request %llu: caller interrupted, cancelling\n", (unsigned long long)ids[i]);
		remote_post(rc, RSYS_OP_CANCEL, ids[i], 0);
	}
	return waiting;
}
