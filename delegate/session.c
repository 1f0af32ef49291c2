// SPDX-License-Identifier: GPL-2.0
/* rsys-delegate sessions: per-client reader, handle table, delegate thread pool and cancellation. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "busypoll.h"
#include "deadline.h"
#include "delegate.h"
#include "frame.h"
#include "log.h"

/* How often a cancelled request that is still running is signalled again. */
#define KICK_INTERVAL_MS	2

static unsigned int session_ids;

static void slot_free(struct session *s, struct handle *hd)
{
	__atomic_sub_fetch(&dlg.handles_used, 1, __ATOMIC_RELAXED);
	hd->used = false;
	hd->open = false;
	hd->fd = -1;
	hd->next_free = s->free_head;
	s->free_head = hd - s->handles;
}

struct handle *handle_reserve(struct session *s, uint64_t *h, int *err)
{
	struct handle *hd;

	pthread_mutex_lock(&s->lock);
	if (s->free_head >= dlg.limit_fds) {
		pthread_mutex_unlock(&s->lock);
		*err = -EMFILE;
		return NULL;
	}
	/* The sessions together must not run the delegate out of fds. */
	if (__atomic_add_fetch(&dlg.handles_used, 1, __ATOMIC_RELAXED) > dlg.max_handles) {
		__atomic_sub_fetch(&dlg.handles_used, 1, __ATOMIC_RELAXED);
		pthread_mutex_unlock(&s->lock);
		pr_warn("session %u: refusing a socket: %u sockets open in all sessions\n", s->id,
			dlg.max_handles);
		*err = -ENFILE;
		return NULL;
	}
	hd = &s->handles[s->free_head];
	s->free_head = hd->next_free;
	hd->used = true;
	hd->open = false;
	hd->refs = 0;
	hd->fd = -1;
	hd->linger = false;
	hd->rcvlowat = false;
	hd->sndtimeo = false;
	/* 31 bits: a handle must read as a non-negative result in a[0]. */
	hd->gen = (hd->gen + 1) & INT32_MAX;
	if (!hd->gen)
		hd->gen = 1;
	*h = (uint64_t)hd->gen << 32 | (uint64_t)(hd - s->handles);
	pthread_mutex_unlock(&s->lock);
	return hd;
}

void handle_publish(struct session *s, struct handle *hd, int fd, int family, int proto,
		    bool nonblock)
{
	pthread_mutex_lock(&s->lock);
	hd->fd = fd;
	hd->family = family;
	hd->nonblock = nonblock;
	hd->proto = proto;
	hd->refs = 1;		/* dropped by handle_close() */
	hd->open = true;
	pthread_mutex_unlock(&s->lock);
	stat_add(handles, 1);
}

void handle_unreserve(struct session *s, struct handle *hd)
{
	pthread_mutex_lock(&s->lock);
	slot_free(s, hd);
	pthread_mutex_unlock(&s->lock);
}

struct handle *handle_get(struct session *s, uint64_t h)
{
	uint64_t idx = h & UINT32_MAX;
	struct handle *hd = NULL;

	pthread_mutex_lock(&s->lock);
	if (idx < dlg.limit_fds && s->handles[idx].open && s->handles[idx].gen == h >> 32) {
		hd = &s->handles[idx];
		hd->refs++;
	}
	pthread_mutex_unlock(&s->lock);
	return hd;
}

/* Drop a reference; the last one closes the socket. Called with s->lock held. */
static int handle_unref_locked(struct session *s, struct handle *hd)
{
	int fd = -1;

	if (--hd->refs == 0) {
		fd = hd->fd;
		slot_free(s, hd);
	}
	return fd;
}

static void close_fd(int fd)
{
	if (fd < 0)
		return;
	close(fd);
	stat_sub(handles, 1);
}

void handle_put(struct session *s, struct handle *hd)
{
	int fd;

	pthread_mutex_lock(&s->lock);
	fd = handle_unref_locked(s, hd);
	pthread_mutex_unlock(&s->lock);
	close_fd(fd);
}

/*
 * The handle stops naming the socket at once; the socket itself is closed
 * when the calls still using it return, as close() does natively.
 */
int handle_close(struct session *s, uint64_t h)
{
	uint64_t idx = h & UINT32_MAX;
	struct handle *hd;
	int fd;

	pthread_mutex_lock(&s->lock);
	if (idx >= dlg.limit_fds || !s->handles[idx].open || s->handles[idx].gen != h >> 32) {
		pthread_mutex_unlock(&s->lock);
		return -EBADF;
	}
	hd = &s->handles[idx];
	hd->open = false;
	fd = handle_unref_locked(s, hd);
	pthread_mutex_unlock(&s->lock);
	close_fd(fd);
	return 0;
}

/*
 * Replies. Frames never interleave: one thread at a time owns the
 * connection for writing (s->writing). Delegate threads may block writing.
 * The reader must not: a client writing a large request while we write a
 * large reply would wait on us forever. So the reader writes without
 * blocking, and whatever does not fit is queued (s->outq) and written by a
 * flusher thread, or by the next delegate thread that replies.
 * Invariant: !s->writing implies an empty s->outq.
 */
struct outbuf {
	struct outbuf *next;
	size_t len, off;
	uint8_t data[];
};

#define OUTQ_MAX	(1u << 20)	/* queued reply bytes before the reader stops reading */
#define BUFFERED_MAX	(64u << 20)	/* queued requests and replies, all sessions */

static void buffered_add(ssize_t n)
{
	__atomic_add_fetch(&dlg.buffered, n, __ATOMIC_RELAXED);
}

static bool buffered_full(void)
{
	return __atomic_load_n(&dlg.buffered, __ATOMIC_RELAXED) > BUFFERED_MAX;
}

/* Write @len bytes of @buf from *@off on, blocking: 0 or -errno. */
static int write_rest(int fd, const uint8_t *buf, size_t len, size_t *off)
{
	while (*off < len) {
		ssize_t n = send(fd, buf + *off, len - *off, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		*off += n;
	}
	return 0;
}

/* Write frame @f + @payload from byte *@off on without blocking: 0 when done, -EAGAIN, or -errno. */
static int frame_send_nowait(int fd, struct rsys_frame *f, const void *payload, size_t *off)
{
	size_t total = sizeof(*f) + f->len;

	f->magic = RSYS_MAGIC;
	f->version = RSYS_VERSION;
	while (*off < total) {
		struct iovec iov[2];
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = 1 };
		ssize_t n;

		if (*off < sizeof(*f)) {
			iov[0] = (struct iovec){ (char *)f + *off, sizeof(*f) - *off };
			if (f->len) {
				iov[1] = (struct iovec){ (void *)payload, f->len };
				m.msg_iovlen = 2;
			}
		} else {
			iov[0] = (struct iovec){ (char *)payload + (*off - sizeof(*f)), total - *off };
		}
		n = sendmsg(fd, &m, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		*off += n;
	}
	return 0;
}

static struct outbuf *outbuf_new(struct rsys_frame *f, const void *payload)
{
	struct outbuf *ob = malloc(sizeof(*ob) + sizeof(*f) + f->len);

	if (!ob)
		return NULL;
	f->magic = RSYS_MAGIC;
	f->version = RSYS_VERSION;
	ob->next = NULL;
	ob->len = sizeof(*f) + f->len;
	ob->off = 0;
	memcpy(ob->data, f, sizeof(*f));
	if (f->len)
		memcpy(ob->data + sizeof(*f), payload, f->len);
	return ob;
}

/* Write one queued frame, blocking; drops it if the client is gone. */
static void outbuf_write(struct session *s, struct outbuf *ob)
{
	int err = write_rest(s->fd, ob->data, ob->len, &ob->off);

	if (err)
		pr_debug("session %u: reply lost: %s\n", s->id, err_str(-err));
	free(ob);
}

/* Owner of s->writing: write everything queued, then give the connection up. */
static void outq_flush(struct session *s)
{
	struct outbuf *ob;

	pthread_mutex_lock(&s->out_lock);
	while ((ob = s->outq)) {
		s->outq = ob->next;
		if (!s->outq)
			s->outq_tail = NULL;
		s->outq_bytes -= ob->len - ob->off;
		buffered_add(-(ssize_t)(ob->len - ob->off));
		pthread_mutex_unlock(&s->out_lock);
		outbuf_write(s, ob);
		pthread_mutex_lock(&s->out_lock);
	}
	s->writing = false;
	pthread_cond_broadcast(&s->out_cond);
	pthread_mutex_unlock(&s->out_lock);
}

/*
 * A session runs on its client's CPUs: those a unix client's process may
 * use when the session starts, within the delegate's own. Every remote call
 * is a wake-up from rsys-load to the delegate and one back; on another CPU
 * each is an inter-processor interrupt, which a virtual machine pays with
 * an exit to its hypervisor. "taskset -c 0 rsys-load run" then keeps the
 * program, its monitor and the session on one CPU, and no one pays that.
 * Only the session's own threads follow: the listener and other clients'
 * sessions keep the delegate's affinity. A TLS client's CPUs are not ours
 * to know (its end here is the relay's).
 */
static void session_cpus(struct session *s)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	cpu_set_t mine, theirs;

	if (s->client == CLIENT_TLS || getsockopt(s->fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) ||
	    cr.pid <= 0 || sched_getaffinity(cr.pid, sizeof(theirs), &theirs) ||
	    sched_getaffinity(0, sizeof(mine), &mine))
		return;
	CPU_AND(&theirs, &theirs, &mine);
	if (!CPU_COUNT(&theirs) || CPU_EQUAL(&theirs, &mine))
		return;
	s->cpus = theirs;
	s->pinned = true;
	pr_info("session %u: on the %d CPU(s) of its client (pid %d)\n", s->id, CPU_COUNT(&theirs),
		cr.pid);
}

/* A detached thread of @s running @fn, on the session's CPUs (session_cpus) if it can. */
static int session_thread(struct session *s, void *(*fn)(void *), size_t stack)
{
	pthread_attr_t attr;
	pthread_t t;
	int err;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (stack)
		pthread_attr_setstacksize(&attr, stack);
	if (s->pinned)
		pthread_attr_setaffinity_np(&attr, sizeof(s->cpus), &s->cpus);
	err = pthread_create(&t, &attr, fn, s);
	if (err == EINVAL && s->pinned) {
		/* Its CPUs went offline since: anywhere, then. */
		pr_info("session %u: its client's CPUs are gone, running anywhere\n", s->id);
		s->pinned = false;
		pthread_attr_destroy(&attr);
		return session_thread(s, fn, stack);
	}
	pthread_attr_destroy(&attr);
	return err;
}

/* Start a detached thread of @s running @fn, within the global thread cap; s->lock held. */
static int thread_spawn(struct session *s, void *(*fn)(void *), size_t stack)
{
	int err;

	if (__atomic_add_fetch(&dlg.workers, 1, __ATOMIC_RELAXED) > dlg.max_workers) {
		__atomic_sub_fetch(&dlg.workers, 1, __ATOMIC_RELAXED);
		pr_warn("session %u: no thread for a request: %u delegate threads running in all sessions\n",
			s->id, dlg.max_workers);
		return -EAGAIN;
	}
	err = session_thread(s, fn, stack);
	if (err) {
		__atomic_sub_fetch(&dlg.workers, 1, __ATOMIC_RELAXED);
		return -err;
	}
	s->workers++;
	stat_add(threads, 1);
	return 0;
}

/* A delegate thread leaves its session; called with s->lock held, which it drops. */
static void worker_exit(struct session *s)
{
	/* After this unlock the session may be freed: touch nothing of it. */
	s->workers--;
	pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	stat_sub(threads, 1);
	__atomic_sub_fetch(&dlg.workers, 1, __ATOMIC_RELAXED);
}

static void *flusher_main(void *arg)
{
	struct session *s = arg;

	outq_flush(s);
	pthread_mutex_lock(&s->lock);
	worker_exit(s);
	return NULL;
}

static void outq_push(struct session *s, struct outbuf *ob, bool head)
{
	if (head) {
		ob->next = s->outq;
		s->outq = ob;
		if (!s->outq_tail)
			s->outq_tail = ob;
	} else {
		if (s->outq_tail)
			s->outq_tail->next = ob;
		else
			s->outq = ob;
		s->outq_tail = ob;
	}
	s->outq_bytes += ob->len - ob->off;
	buffered_add(ob->len - ob->off);
}

/* A delegate thread's reply that passes the socket @fd (SOCKFD): written blocking, like any of theirs. */
static void send_reply_fd(struct session *s, struct rsys_frame *f, const void *payload, int fd)
{
	int err;

	stat_add(requests, 1);
	pthread_mutex_lock(&s->out_lock);
	while (s->writing)
		pthread_cond_wait(&s->out_cond, &s->out_lock);
	s->writing = true;
	pthread_mutex_unlock(&s->out_lock);
	err = frame_send_fd(s->fd, f, payload, fd);
	if (err)
		pr_debug("session %u: reply lost: %s\n", s->id, err_str(-err));
	outq_flush(s);
}

static void send_reply(struct session *s, struct rsys_frame *f, const void *payload, bool may_block)
{
	struct outbuf *ob;
	size_t off = 0;
	int err;

	pr_debug("session %u: request %llu op %u -> %lld (%u bytes)\n", s->id,
		 (unsigned long long)f->id, f->op, (long long)f->a[0], f->len);
	stat_add(requests, 1);
	pthread_mutex_lock(&s->out_lock);
	if (may_block) {
		while (s->writing)
			pthread_cond_wait(&s->out_cond, &s->out_lock);
		s->writing = true;
		pthread_mutex_unlock(&s->out_lock);
		err = frame_send(s->fd, f, payload);
		if (err)
			pr_debug("session %u: reply lost: %s\n", s->id, err_str(-err));
		outq_flush(s);
		return;
	}
	if (s->writing) {
		ob = outbuf_new(f, payload);
		if (ob)
			outq_push(s, ob, false);
		pthread_mutex_unlock(&s->out_lock);
		if (!ob)
			pr_warn("session %u: out of memory, reply dropped\n", s->id);
		return;
	}
	s->writing = true;
	pthread_mutex_unlock(&s->out_lock);

	err = frame_send_nowait(s->fd, f, payload, &off);
	if (err != -EAGAIN) {
		if (err)
			pr_debug("session %u: reply lost: %s\n", s->id, err_str(-err));
		outq_flush(s);
		return;
	}
	/* The client is not reading now: the rest goes to a flusher thread. */
	ob = outbuf_new(f, payload);
	if (!ob) {
		/* Half a frame is on the wire: the stream cannot be resynchronised. */
		pr_warn("session %u: out of memory, closing the connection\n", s->id);
		shutdown(s->fd, SHUT_RDWR);
		outq_flush(s);
		return;
	}
	ob->off = off;
	pthread_mutex_lock(&s->out_lock);
	outq_push(s, ob, true);
	pthread_mutex_unlock(&s->out_lock);
	pthread_mutex_lock(&s->lock);
	err = thread_spawn(s, flusher_main, 64 * 1024);
	pthread_mutex_unlock(&s->lock);
	/* No thread to spare: this session's reader writes, blocking, instead. */
	if (err)
		outq_flush(s);
}

/*
 * The reader stops reading while too many replies wait for the client to
 * read them, or while the sessions together buffer too much and this one
 * is among those whose client is behind; a client that reads its replies
 * keeps being served.
 */
static void outq_wait(struct session *s)
{
	struct timespec ts;
	bool said = false;

	pthread_mutex_lock(&s->out_lock);
	while (s->outq_bytes > OUTQ_MAX || (s->outq_bytes && buffered_full())) {
		if (!said)
			pr_info("session %u: client not reading its replies (%zu bytes queued), waiting\n",
				s->id, s->outq_bytes);
		said = true;
		/* Other sessions' queues shrinking do not signal us: look again soon. */
		deadline_ms(&ts, 100);
		pthread_cond_timedwait(&s->out_cond, &s->out_lock, &ts);
	}
	pthread_mutex_unlock(&s->out_lock);
}

static void send_error(struct session *s, const struct rsys_frame *req, int64_t ret)
{
	struct rsys_frame f = {
		.op = req->op,
		.id = req->id,
		.flags = RSYS_F_REPLY,
		.a = { ret },
	};

	send_reply(s, &f, NULL, false);
}

/* A request that submit() queued is done with. */
static void request_free(struct request *req)
{
	buffered_add(-(ssize_t)req->f.len);
	free(req);
}

/* Consume a cancel signal that arrived after the syscall it was meant for. */
static void drain_cancel_signal(void)
{
	struct timespec zero = { 0 };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, DELEGATE_CANCEL_SIG);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

static void *worker_main(void *arg)
{
	struct session *s = arg;
	struct reply r = { .buf = malloc(RSYS_MAX_PAYLOAD) };
	struct request *req, **pp;
	bool cancelled;

	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (!s->queue && !s->closing) {
			s->idle_workers++;
			pthread_cond_wait(&s->work, &s->lock);
			s->idle_workers--;
		}
		if (!s->queue)
			break;
		req = s->queue;
		s->queue = req->next;
		if (!s->queue)
			s->queue_tail = NULL;
		s->queued--;
		req->thread = pthread_self();
		req->next = s->running;
		s->running = req;
		pthread_mutex_unlock(&s->lock);

		if (r.buf) {
			op_exec(s, &req->f, req->payload, &r);
			/* The rest of a partly sent stream: count what went out before. */
			if (req->done)
				r.f.a[0] = r.f.a[0] < 0 ? req->done : r.f.a[0] + req->done;
		} else {
			memset(&r.f, 0, sizeof(r.f));
			r.f.op = req->f.op;
			r.f.id = req->f.id;
			r.f.flags = RSYS_F_REPLY;
			r.f.a[0] = -ENOMEM;
			r.fd = -1;
		}
		op_adopted_done(s, &req->f);

		pthread_mutex_lock(&s->lock);
		for (pp = &s->running; *pp != req; pp = &(*pp)->next)
			;
		*pp = req->next;
		s->outstanding--;
		cancelled = req->cancelled;
		if (cancelled)
			s->kicks--;
		pthread_mutex_unlock(&s->lock);

		if (cancelled)
			drain_cancel_signal();
		if (r.fd >= 0) {
			send_reply_fd(s, &r.f, r.buf, r.fd);
			close(r.fd);
		} else {
			send_reply(s, &r.f, r.buf, true);
		}
		request_free(req);
		pthread_mutex_lock(&s->lock);
	}
	worker_exit(s);
	free(r.buf);
	return NULL;
}


/*
 * Queue a request that may block. A session has at most limit_inflight of
 * them outstanding, each with its own delegate thread; one more is answered
 * EAGAIN at once (HELLO tells the client the limit), and so is one that
 * finds no thread under the global cap.
 */
static void submit(struct session *s, const struct rsys_frame *f, const uint8_t *payload,
		   int64_t done)
{
	struct request *req;
	int err = -EAGAIN;

	if (buffered_full()) {
		pr_warn("session %u: request refused: %u bytes buffered in all sessions\n", s->id,
			BUFFERED_MAX);
		op_adopted_done(s, f);
		send_error(s, f, done ? done : -ENOBUFS);
		return;
	}
	req = malloc(sizeof(*req) + f->len);
	if (!req) {
		op_adopted_done(s, f);
		send_error(s, f, done ? done : -ENOMEM);
		return;
	}
	req->f = *f;
	req->payload = (uint8_t *)(req + 1);
	memcpy(req->payload, payload, f->len);
	req->next = NULL;
	req->done = done;
	req->cancelled = false;

	pthread_mutex_lock(&s->lock);
	if (s->outstanding >= dlg.limit_inflight)
		goto err_unlock;
	if (s->queued + 1 > s->idle_workers && s->workers < dlg.limit_inflight) {
		/*
		 * Queued behind this session's busy threads, the request could
		 * wait for ever (a recv that only this send would end): refuse.
		 */
		err = thread_spawn(s, worker_main, 256 * 1024);
		if (err)
			goto err_unlock;
	}
	if (s->queue_tail)
		s->queue_tail->next = req;
	else
		s->queue = req;
	s->queue_tail = req;
	pr_debug("session %u: request %llu op %u (%u bytes) to a delegate thread\n", s->id,
		 (unsigned long long)f->id, f->op, f->len);
	s->queued++;
	s->outstanding++;
	buffered_add(f->len);
	pthread_cond_signal(&s->work);
	pthread_mutex_unlock(&s->lock);
	return;

err_unlock:
	pthread_mutex_unlock(&s->lock);
	free(req);
	/* Part of a send already went out: that is the result, as natively. */
	op_adopted_done(s, f);
	send_error(s, f, done ? done : err);
}

/* Signal every cancelled request that is still running; s->lock held. */
static void kick_locked(struct session *s)
{
	struct request *req;

	for (req = s->running; req; req = req->next)
		if (req->cancelled)
			pthread_kill(req->thread, DELEGATE_CANCEL_SIG);
}

static void cancel(struct session *s, uint64_t id)
{
	struct request *req, **pp, *prev = NULL;

	pthread_mutex_lock(&s->lock);
	for (pp = &s->queue; (req = *pp); prev = req, pp = &req->next) {
		if (req->f.id != id)
			continue;
		/* Not started: skip it. */
		*pp = req->next;
		if (s->queue_tail == req)
			s->queue_tail = prev;
		s->queued--;
		s->outstanding--;
		pthread_mutex_unlock(&s->lock);
		stat_add(cancelled, 1);
		/* Part of a send may have gone out before it was queued: that is the result. */
		op_adopted_done(s, &req->f);
		send_error(s, &req->f, req->done ? req->done : -EINTR);
		request_free(req);
		return;
	}
	for (req = s->running; req; req = req->next) {
		if (req->f.id != id || req->cancelled)
			continue;
		/*
		 * The signal may land just before the thread enters its syscall;
		 * the reader signals again every KICK_INTERVAL_MS until it returns.
		 */
		req->cancelled = true;
		s->kicks++;
		pthread_kill(req->thread, DELEGATE_CANCEL_SIG);
		stat_add(cancelled, 1);
		break;
	}
	pthread_mutex_unlock(&s->lock);
}

/* Wait for the client while cancelled requests run, signalling them again meanwhile. */
static void wait_input(struct session *s)
{
	struct pollfd p = { .fd = s->fd, .events = POLLIN };

	pthread_mutex_lock(&s->lock);
	while (s->kicks) {
		pthread_mutex_unlock(&s->lock);
		if (poll(&p, 1, KICK_INTERVAL_MS) > 0)
			return;
		pthread_mutex_lock(&s->lock);
		kick_locked(s);
	}
	pthread_mutex_unlock(&s->lock);
}

/* The memory and the locks of @s, once nothing uses it; session_start() set them up. */
static void session_free(struct session *s)
{
	pthread_cond_destroy(&s->idle);
	pthread_cond_destroy(&s->work);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->out_cond);
	pthread_mutex_destroy(&s->out_lock);
	free(s->handles);
	free(s);
}

/* A send the client answered before it was made (RSYS_SEND_BEHIND): its end is ours. */
static bool answered_send(const struct request *req)
{
	return req->f.op == RSYS_OP_SEND && (req->f.a[4] & RSYS_SEND_BEHIND);
}

/*
 * Drop the queued requests and cancel the running ones, but with @keep_sends
 * the answered sends, which stay queued and run. Returns how many of those
 * are left. Called with s->lock held.
 */
static unsigned int end_requests(struct session *s, bool keep_sends)
{
	struct request *req, **pp, *last = NULL;
	unsigned int kept = 0;

	for (pp = &s->queue; (req = *pp);) {
		if (keep_sends && answered_send(req)) {
			kept++;
			last = req;
			pp = &req->next;
			continue;
		}
		*pp = req->next;
		s->queued--;
		s->outstanding--;
		request_free(req);
	}
	s->queue_tail = last;
	for (req = s->running; req; req = req->next) {
		if (keep_sends && answered_send(req)) {
			kept++;
			continue;
		}
		if (!req->cancelled)
			s->kicks++;
		req->cancelled = true;
	}
	return kept;
}

/*
 * End every request, wait for the delegate threads, close every socket.
 * Sends the client answered before they were made (write-behind) still go
 * out, for up to "limit linger" seconds, as the kernel still sends what a closed
 * socket's buffer holds: their sockets close after them.
 */
static void session_end(struct session *s)
{
	struct timespec ts, linger_end;
	unsigned int kept;
	uint32_t i;

	/*
	 * Replies still owed are lost with the client anyway; shutting the
	 * connection down also frees a thread stuck writing to a client that
	 * stopped reading.
	 */
	shutdown(s->fd, SHUT_RDWR);
	pthread_mutex_lock(&s->lock);
	s->closing = true;
	kept = end_requests(s, true);
	if (kept)
		pr_info("session %u: %u answered sends still going out (up to %u s)\n", s->id, kept,
			dlg.limit_linger);
	pthread_cond_broadcast(&s->work);
	deadline_ms(&linger_end, dlg.limit_linger * 1000L);
	while (s->workers) {
		kick_locked(s);
		deadline_ms(&ts, s->kicks ? KICK_INTERVAL_MS : 100);
		if (kept && (ts.tv_sec > linger_end.tv_sec ||
			     (ts.tv_sec == linger_end.tv_sec && ts.tv_nsec >= linger_end.tv_nsec))) {
			kept = end_requests(s, false);
			pr_warn("session %u: answered sends still not out after %u s: cancelled\n",
				s->id, dlg.limit_linger);
			continue;
		}
		pthread_cond_timedwait(&s->idle, &s->lock, &ts);
	}
	pthread_mutex_unlock(&s->lock);

	for (i = 0; i < dlg.limit_fds; i++) {
		if (!s->handles[i].used)
			continue;
		__atomic_sub_fetch(&dlg.handles_used, 1, __ATOMIC_RELAXED);
		if (s->handles[i].fd >= 0)
			close_fd(s->handles[i].fd);
	}
	close(s->fd);
	session_free(s);
}

/* Answer request @f (payload in @buf) now, or hand it to a delegate thread. */
static void request_handle(struct session *s, struct rsys_frame *f, uint8_t *buf, struct reply *r)
{
	enum op_mode mode;
	int64_t done = 0;
	int err;

	/* An adopted socket is dropped before the answer: the program's close() must be the last. */
	err = op_check(s, f, &mode);
	if (err) {
		op_adopted_done(s, f);
		send_error(s, f, err);
	} else if (mode == OP_NOW) {
		op_exec(s, f, buf, r);
		op_adopted_done(s, f);
		send_reply(s, &r->f, r->buf, false);
	} else if (mode == OP_TRY_FIRST && op_try_now(s, f, buf, r, &done)) {
		op_adopted_done(s, f);
		send_reply(s, &r->f, r->buf, false);
	} else {
		submit(s, f, buf, done);	/* a delegate thread drops an adopted socket */
	}
}

/*
 * The next request of @s into @f and *@payload (in @rd's buffer, valid
 * until the next call), its fd into *@fd: 0 or -errno. Requests already
 * read are served before the reader waits for the client again, polling
 * for @poll_us microseconds first (busypoll.h).
 */
static int request_next(struct session *s, struct frame_reader *rd, struct rsys_frame *f,
			uint8_t **payload, int *fd, unsigned int poll_us)
{
	struct busy_poll bp;
	int ret;

	for (;;) {
		outq_wait(s);
		ret = frame_reader_next(rd, f, payload, fd);
		if (ret)
			return ret < 0 ? ret : 0;
		wait_input(s);
		ret = -EAGAIN;
		busy_poll_start(&bp, poll_us);
		while (ret == -EAGAIN && busy_poll_more(&bp))
			ret = frame_reader_fill(rd, false);
		if (ret == -EAGAIN)
			ret = frame_reader_fill(rd, true);
		if (ret < 0)
			return ret;
	}
}

static void *session_main(void *arg)
{
	struct session *s = arg;
	struct reply r = { .buf = malloc(RSYS_MAX_PAYLOAD) };
	uint8_t *buf = malloc(RSYS_MAX_PAYLOAD), *payload;
	struct frame_reader rd;
	struct rsys_frame f;
	/* on its client's single CPU (session_cpus) the reader does not poll */
	unsigned int poll_us = busy_poll_cpus(dlg.busy_poll_us);
	int err, fd, client;

	/* Only a unix client can pass a socket (direct mode); from others an fd is an error. */
	err = frame_reader_init(&rd, s->fd, s->client != CLIENT_TLS);
	if (err || !buf || !r.buf) {
		pr_warn("session %u: out of memory\n", s->id);
		if (!err)
			frame_reader_free(&rd);
		goto out;
	}
	request_handle(s, &s->hello, buf, &r);
	for (;;) {
		err = request_next(s, &rd, &f, &payload, &fd, poll_us);
		if (!err && fd >= 0) {
			err = op_adopt(s, &f, fd);
			if (err) {
				send_error(s, &f, err);
				continue;
			}
		}
		if (err == -ECONNRESET)
			break;
		if (err == -EPROTO || (!err && (f.flags & RSYS_F_REPLY))) {
			stat_add(bad_frames, 1);
			pr_info("session %u: malformed frame, closing the connection\n", s->id);
			break;
		}
		if (err) {
			pr_info("session %u: %s, closing the connection\n", s->id, err_str(-err));
			break;
		}
		if (f.op == RSYS_OP_CANCEL) {
			pr_debug("session %u: cancel %llu\n", s->id, (unsigned long long)f.a[0]);
			cancel(s, f.a[0]);
			continue;
		}
		request_handle(s, &f, payload, &r);
	}
	frame_reader_free(&rd);
out:
	pr_info("session %u: ended\n", s->id);
	free(buf);
	free(r.buf);
	client = s->client;
	/* answered sends may keep it a while: it counts against its client until then */
	session_end(s);
	__atomic_sub_fetch(&dlg.client_sessions[client], 1, __ATOMIC_RELAXED);
	stat_sub(sessions, 1);
	stat_sub(threads, 1);
	return NULL;
}

int session_start(int fd, int client, const struct rsys_frame *hello)
{
	struct session *s;
	uint32_t i;
	int err;

	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->handles = calloc(dlg.limit_fds, sizeof(*s->handles));
	if (!s->handles) {
		free(s);
		return -ENOMEM;
	}
	/*
	 * Random first generations make another session's handle values
	 * meaningless here too: they fail with EBADF instead of naming one of
	 * this session's sockets.
	 */
	if (getrandom(s->handles, dlg.limit_fds * sizeof(*s->handles), 0) < 0)
		pr_debug("getrandom: %s\n", err_str(errno));
	for (i = 0; i < dlg.limit_fds; i++) {
		s->handles[i] = (struct handle){
			.fd = -1,
			.gen = s->handles[i].gen,
			.next_free = i + 1,
		};
	}
	s->fd = fd;
	s->client = client;
	s->hello = *hello;
	s->id = __atomic_add_fetch(&session_ids, 1, __ATOMIC_RELAXED);
	pthread_mutex_init(&s->out_lock, NULL);
	pthread_cond_init(&s->out_cond, NULL);
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->idle, NULL);

	if (client == CLIENT_TLS)
		pr_info("session %u: started (TLS client)\n", s->id);
	else
		pr_info("session %u: started (uid %u)\n", s->id, dlg.client_uids[client]);
	stat_add(sessions, 1);
	stat_add(threads, 1);
	__atomic_add_fetch(&dlg.client_sessions[client], 1, __ATOMIC_RELAXED);
	session_cpus(s);
	err = session_thread(s, session_main, 0);
	if (err) {
		stat_sub(sessions, 1);
		stat_sub(threads, 1);
		__atomic_sub_fetch(&dlg.client_sessions[client], 1, __ATOMIC_RELAXED);
		session_free(s);
		return -err;
	}
	return 0;
}
