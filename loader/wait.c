// SPDX-License-Identifier: GPL-2.0
/* select/pselect6/poll/ppoll/epoll_wait split by the fd table: local half in the monitor, remote half at the delegate, first wins. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "rsys.h"
#include "epoll.h"
#include "fdcache.h"
#include "log.h"
#include "procfs.h"
#include "seccomp_compat.h"
#include "supervisor.h"

/* What select() asks poll for and which revents set its bits (fs/select.c). */
#define POLLIN_SET	(POLLIN | POLLRDNORM | POLLRDBAND | POLLHUP | POLLERR | POLLNVAL)
#define POLLOUT_SET	(POLLOUT | POLLWRNORM | POLLWRBAND | POLLERR | POLLNVAL)
#define POLLEX_SET	(POLLPRI | POLLNVAL)

/* The poll bits that put a select fd in its read, write and except set. */
static const short sel_mask[3] = { POLLIN_SET, POLLOUT_SET, POLLEX_SET };
#define SEL_WANT_IN	(POLLIN | POLLRDNORM | POLLRDBAND)
#define SEL_WANT_OUT	(POLLOUT | POLLWRNORM | POLLWRBAND)

#define BITS_PER_LONG	(8 * sizeof(unsigned long))
#define FDS_LONGS(n)	(((n) + BITS_PER_LONG - 1) / BITS_PER_LONG)
#define FDS_BYTES(n)	(FDS_LONGS(n) * sizeof(unsigned long))
#define NR_OPEN_DEFAULT	BITS_PER_LONG	/* smallest fd table the kernel allocates */
#define WAIT_MAX_POLLFDS (1u << 20)	/* beyond that the kernel is left to say EINVAL */

enum wait_kind { WK_SELECT, WK_PSELECT6, WK_POLL, WK_PPOLL, WK_EPOLL };

/* One fd being waited for: a set bit of select or one pollfd entry. */
struct witem {
	int vfd;
	short events;		/* poll events asked for */
	short revents;		/* result of the winning half */
	uint8_t sel;		/* select: bit 0 read, 1 write, 2 except */
	bool remote;
	bool skip;		/* poll entry with fd < 0 */
	bool owned;		/* local: its lp[] copy is the call's (else the fd cache's) */
	uint64_t handle;
	uint32_t epevents;	/* epoll: the registration's events and data */
	uint64_t epdata;
	uint32_t epfired;	/* epoll: reported, and noted by ep_fired() (EPOLLET, EPOLLONESHOT) */
};

/*
 * States of a split wait (its flags under wait_lock say which):
 *
 *   SET UP      wcall_run(): halves sorted; a call with no remote fd left
 *               goes back to the kernel (SV_CONTINUE), one with a zero
 *               timeout polls both halves once (merge).
 *   SUBMITTED   the remote half is at the delegate (submitted): a signal
 *               for the caller cancels it (waiter_check_calls).
 *   ARMED       waited: the local copies are in the waiter's epoll
 *               (registered, armed). A remote reply that came before this
 *               was noted (early) and is queued now.
 *   RESOLVED    one winner, decided under wait_lock (resolved): the remote
 *               reply (wait_remote_done, then the waiter: wq_push), a local
 *               event (waiter_local_event), the deadline, or the waiter
 *               taking it (waiter_take: a mask signal, an epoll interest
 *               list that changed: rearm). The loser is ended: local copies
 *               dropped, remote half cancelled (its reply is discarded when
 *               it comes: remote_done after resolved).
 *   ANSWERED    the caller got its result (sv_reply, or sv_continue for
 *               the kernel to finish), or an epoll wait started again
 *               (epoll_again) as a new wcall; the last reference frees it.
 *
 * A remote or split call in flight. Owned jointly by the waiter side (the
 * handler, then the waiter thread) and the remote side (the request until
 * its done() ran), and by wcall_run() while it sets the call up: @refs
 * counts them; whoever drops the last frees it.
 */
struct wcall {
	struct sv_call *c;
	enum wait_kind kind;
	int nfds;			/* select: bits; poll: entries; epoll: maxevents */
	int epfd;			/* epoll: the instance's vfd and the monitor's copy */
	int epdup;
	unsigned int epgen;		/* epoll: the interest list's generation (ep_gen) */
	struct epoll_event *lev;	/* epoll: the local events taken for the answer (wcall_epoll_local) */
	int nlev;
	uint64_t uptr[3];		/* select: in/out/ex sets; poll: the array in uptr[0] */
	uint64_t utime;			/* timeout to write back (0 = none) */
	struct timespec deadline;	/* CLOCK_MONOTONIC; valid when timeout_ms > 0 */
	int timeout_ms;			/* -1 infinite, 0 poll once */
	struct witem *it;
	size_t n;
	struct pollfd *lp;		/* local half: the monitor's copies of the local fds */
	size_t *lidx;			/* lp[i] is it[lidx[i]] */
	size_t nl;
	struct rsys_pollfd *rp;		/* remote half: request, then reply */
	uint32_t *rgen;			/* rp[i]'s remote_ready_gen() when asked */
	size_t *ridx;
	size_t nr;
	struct remote_req req;
	int64_t rret;			/* remote result */
	int64_t start_ns;		/* CLOCK_MONOTONIC when the call came (wcall_set_timeout) */
	uint64_t sigmask;		/* pselect6/ppoll/epoll_pwait(2): the mask of the wait */
	bool has_mask;
	bool merge;			/* timeout 0: both halves' results count */
	bool waited;			/* the waiter thread owns the local half and resolves */
	bool registered;		/* lp[] is in the waiter's epoll */
	/* under wait_lock */
	bool resolved;
	bool remote_done;
	bool armed;			/* waited: lp[] registered, the waiter may resolve */
	bool early;			/* waited: the reply came before armed */
	bool submitted;			/* the request is out: it can be cancelled */
	bool rearm;			/* epoll: on rq_head, its interest list changed */
	int refs;
	struct wcall *qnext, *rnext;
	struct wcall *wnext, **wpprev;	/* on watch_head while the remote half may block */
	struct witem its[];		/* it[] points here: one allocation per call */
};

/*
 * The waiter thread waits for the local halves of split calls (epoll on
 * the monitor's copies of their fds) and for remote replies handed over by
 * done() through @wq/@wake_fd; it is the only one that resolves split calls
 * that have a registered local half.
 */
static pthread_mutex_t wait_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t waiter_once = PTHREAD_ONCE_INIT;
static int waiter_epfd = -1, wake_fd = -1;
static pthread_t waiter_thread;
static bool waiter_started, waiter_stopping;	/* wait_stop() */
static struct wcall *wq_head, *wq_tail;
static struct wcall *rq_head;	/* epoll waits to start again (wait_epoll_changed) */

/*
 * Calls whose remote half is in flight, checked every WAIT_CHECK_MS by the
 * waiter thread: a signal makes the notification invalid (the kernel then
 * restarts the call or fails it with EINTR) and the delegate's half must be
 * cancelled, not left blocked. @waiter_idle: the waiter sleeps without a
 * timeout and must be woken to start checking.
 */
#define WAIT_CHECK_MS	20
static struct wcall *watch_head;
static bool waiter_idle;

/*
 * Waits found interrupted (and taken off the watch list), until their
 * thread's next wait: if the kernel restarts one, that is the one.
 */
struct intr_rec {
	pid_t tid;
	struct sv_syscall call;	/* a restart comes back with the same */
	int64_t start_ns;
	struct timespec deadline;
	int timeout_ms;
	bool by_monitor;		/* answered by the monitor (-ERESTARTNOHAND, epoll -EINTR) */
	int64_t intr_ns;		/* ... at this time */
};

#define INTR_RECS	32
static struct intr_rec intr_recs[INTR_RECS];
static unsigned int intr_next;

/* Called with wait_lock held. */
static void watch_add(struct wcall *w)
{
	w->wnext = watch_head;
	if (watch_head)
		watch_head->wpprev = &w->wnext;
	w->wpprev = &watch_head;
	watch_head = w;
}

/* Note @w, whose caller a signal interrupted, for its restart (wcall_restarted). With wait_lock held. */
static void intr_note(struct wcall *w)
{
	intr_recs[intr_next++ % INTR_RECS] = (struct intr_rec){
		w->c->tid, w->c->sys, w->start_ns, w->deadline, w->timeout_ms,
		sv_call_interrupted(w->c), sv_call_intr_ns(w->c) };
}

/* Called with wait_lock held. A wait the monitor ended for a signal is noted on its way out. */
static void watch_del(struct wcall *w)
{
	if (!w->wpprev)
		return;
	if (sv_call_interrupted(w->c))
		intr_note(w);
	*w->wpprev = w->wnext;
	if (w->wnext)
		w->wnext->wpprev = w->wpprev;
	w->wpprev = NULL;
}

static void wcall_free(struct wcall *w)
{
	size_t i;

	for (i = 0; w->lp && i < w->nl; i++)
		if (w->lp[i].fd >= 0 && w->it[w->lidx[i]].owned)
			close(w->lp[i].fd);
	if (w->epdup >= 0)
		close(w->epdup);
	free(w->lev);
	free(w->rp);	/* rp, ridx, lidx and lp are one block (wcall_prepare) */
	free(w);
}

static void wcall_put(struct wcall *w)
{
	int left;

	pthread_mutex_lock(&wait_lock);
	left = --w->refs;
	pthread_mutex_unlock(&wait_lock);
	if (!left)
		wcall_free(w);
}

static int64_t ts_ns(const struct timespec *t)
{
	return (int64_t)t->tv_sec * 1000000000 + t->tv_nsec;
}

/* Time left until @w's deadline, never negative. */
static struct timespec wcall_remaining(const struct wcall *w)
{
	struct timespec now, r = { 0, 0 };
	int64_t left;

	clock_gettime(CLOCK_MONOTONIC, &now);
	left = ts_ns(&w->deadline) - ts_ns(&now);
	if (left > 0) {
		r.tv_sec = left / 1000000000;
		r.tv_nsec = left % 1000000000;
	}
	return r;
}

/* The time left as select (timeval) or pselect6/ppoll (timespec) write it back. */
union wtime {
	struct timeval tv;
	struct timespec ts;
};

/*
 * Linux writes the time left back for select, pselect6 and ppoll (not for
 * a zero timeout): add that piece to @l/@r; 1 if added, else 0.
 */
static int wcall_timeout_piece(struct wcall *w, union wtime *t, struct iovec *l, struct iovec *r)
{
	struct timespec left;

	if (!w->utime || w->timeout_ms <= 0)
		return 0;
	left = wcall_remaining(w);
	if (w->kind == WK_SELECT) {
		t->tv.tv_sec = left.tv_sec;
		t->tv.tv_usec = left.tv_nsec / 1000;
		*l = (struct iovec){ &t->tv, sizeof(t->tv) };
	} else {
		t->ts = left;
		*l = (struct iovec){ &t->ts, sizeof(t->ts) };
	}
	*r = (struct iovec){ (void *)(uintptr_t)w->utime, l->iov_len };
	return 1;
}

/*
 * Write the result pieces (@nres of them) and the time left with one
 * validity check and one system call. As Linux, a fault in a result piece
 * stops the result but the time left is still written. 0 or -EFAULT.
 */
static int wcall_write_pieces(struct wcall *w, struct iovec *l, struct iovec *r, int nres)
{
	union wtime t;
	int n = nres, failed, err;

	n += wcall_timeout_piece(w, &t, &l[n], &r[n]);
	err = sv_write_memv(w->c, l, r, n, &failed);
	if (err != -EFAULT)
		return 0;	/* -ENOENT: the reply is dropped anyway */
	if (failed < nres && n > nres)
		sv_write_memv(w->c, &l[nres], &r[nres], 1, &failed);
	return failed < nres ? -EFAULT : 0;
}

/* Only the time left (select, pselect6, ppoll), as Linux writes it when a wait ends early. */
static void wcall_write_time_left(struct wcall *w)
{
	struct iovec l[1], r[1];

	wcall_write_pieces(w, l, r, 0);
}

/* epoll_wait: the ready remote registrations as struct epoll_event, at most maxevents. */
static int64_t wcall_write_events(struct wcall *w)
{
	struct epoll_event *ev = calloc(w->nfds < (int)w->n ? w->nfds : (int)w->n, sizeof(*ev));
	uint32_t got;
	int64_t count = 0;
	size_t i;

	if (!ev)
		return -ENOMEM;
	for (i = 0; i < w->n && count < w->nfds; i++) {
		if (!w->it[i].remote)
			continue;
		got = (uint16_t)w->it[i].revents & (w->it[i].epevents | EPOLLERR | EPOLLHUP);
		if (!got)
			continue;
		ev[count].events = got;
		ev[count].data.u64 = w->it[i].epdata;
		count++;
		if (w->it[i].epevents & (EPOLLONESHOT | EPOLLET)) {
			ep_fired(w->c->tgid, w->epfd, w->it[i].vfd, got);
			w->it[i].epfired = got;
		}
	}
	if (count && sv_write_mem(w->c, w->uptr[0], ev, count * sizeof(*ev)) == -EFAULT)
		count = -EFAULT;
	free(ev);
	return count;
}

/*
 * Write the result into the caller's memory as Linux does; the value to
 * answer with. Items of the losing half have revents 0 (their bits cleared).
 */
static int64_t wcall_write_result(struct wcall *w)
{
	unsigned long small_set[3 * FDS_LONGS(FD_SETSIZE)], *set;
	size_t bytes = FDS_BYTES(w->nfds), i;
	struct pollfd small_pfd[64], *pfd;
	struct iovec l[4], r[4];
	int64_t count = 0;
	int k, n = 0;

	if (w->kind == WK_EPOLL)
		return wcall_write_events(w);
	if (w->kind == WK_SELECT || w->kind == WK_PSELECT6) {
		if (w->nfds <= FD_SETSIZE) {
			set = small_set;
			memset(set, 0, 3 * bytes);
		} else {
			set = calloc(3, bytes);
			if (!set)
				return -ENOMEM;
		}
		for (i = 0; i < w->n; i++) {
			struct witem *it = &w->it[i];

			for (k = 0; k < 3; k++) {
				if (!(it->sel & (1 << k)) || !(it->revents & sel_mask[k]))
					continue;
				set[k * FDS_LONGS(w->nfds) + it->vfd / BITS_PER_LONG] |=
					1UL << (it->vfd % BITS_PER_LONG);
				count++;
			}
		}
		for (k = 0; k < 3; k++) {
			if (!w->uptr[k])
				continue;
			l[n] = (struct iovec){ set + k * FDS_LONGS(w->nfds), bytes };
			r[n++] = (struct iovec){ (void *)(uintptr_t)w->uptr[k], bytes };
		}
		if (wcall_write_pieces(w, l, r, n))
			count = -EFAULT;
		if (set != small_set)
			free(set);
	} else {
		if (w->n <= sizeof(small_pfd) / sizeof(small_pfd[0])) {
			pfd = small_pfd;
		} else {
			pfd = calloc(w->n, sizeof(*pfd));
			if (!pfd)
				return -ENOMEM;
		}
		for (i = 0; i < w->n; i++) {
			pfd[i].fd = w->it[i].vfd;
			pfd[i].events = w->it[i].events;
			pfd[i].revents = w->it[i].revents;
			if (pfd[i].revents)
				count++;
		}
		l[0] = (struct iovec){ pfd, w->n * sizeof(*pfd) };
		r[0] = (struct iovec){ (void *)(uintptr_t)w->uptr[0], l[0].iov_len };
		if (wcall_write_pieces(w, l, r, 1))
			count = -EFAULT;
		if (pfd != small_pfd)
			free(pfd);
	}
	return count;
}

static void wcall_answer(struct wcall *w, int64_t err)
{
	int64_t ret = err < 0 ? err : wcall_write_result(w);
	pid_t tgid = w->c->tgid;
	size_t i;

	if ((sv_reply(w->c, ret) && ret != -EFAULT) || w->kind != WK_EPOLL)
		return;
	/*
	 * The caller never got these events (a signal ended its wait first:
	 * sv_check_signals; or -EFAULT, where Linux keeps them ready): an
	 * EPOLLET or EPOLLONESHOT registration noted as reported would stay
	 * silent for good, as no call of the program on that fd follows to end
	 * it. Noted before the answer, as a call that follows the events must
	 * find them noted; taken back here.
	 */
	for (i = 0; i < w->n; i++)
		if (w->it[i].epfired)
			ep_unfired(tgid, w->epfd, w->it[i].vfd, w->it[i].handle, w->it[i].epfired);
}

/* Poll the local half once; fill its items' revents. Number of ready items. */
static int wcall_poll_local(struct wcall *w)
{
	size_t i;
	int n = 0;

	if (!w->nl)
		return 0;
	if (poll(w->lp, w->nl, 0) < 0)
		return 0;
	for (i = 0; i < w->nl; i++) {
		w->it[w->lidx[i]].revents = w->lp[i].fd < 0 ? POLLNVAL : w->lp[i].revents;
		if (w->it[w->lidx[i]].revents)
			n++;
	}
	return n;
}

/* Take the remote reply (valid only inside done()) into the items. */
static void wcall_take_reply(struct wcall *w, const struct remote_req *r)
{
	const struct rsys_pollfd *rp = r->rpayload;
	size_t i;

	w->rret = r->f.a[0];
	if (w->rret < 0)
		return;
	if (r->f.len != w->nr * sizeof(*rp) || !rp) {
		w->rret = -EIO;
		return;
	}
	for (i = 0; i < w->nr; i++) {
		w->it[w->ridx[i]].revents = rp[i].revents;
		if (rp[i].revents && !(rp[i].revents & POLLNVAL))
			remote_ready_note(w->c->sv->remote, w->rp[i].handle, w->rgen[i],
					  rp[i].revents);
	}
}

/* Clear the revents of the half that lost. */
static void wcall_clear(struct wcall *w, bool remote)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (w->it[i].remote == remote)
			w->it[i].revents = 0;
}

/*
 * select: are all the remote fds known ready (remote_ready_bits) for every
 * set they are in? Then they are ready now, and Linux would report just
 * that: their revents are what is known.
 */
static bool wcall_known_ready(struct wcall *w)
{
	size_t i;
	int k;

	if (w->kind != WK_SELECT && w->kind != WK_PSELECT6)
		return false;
	for (i = 0; i < w->nr; i++) {
		struct witem *it = &w->it[w->ridx[i]];

		it->revents = remote_ready_bits(w->c->sv->remote, it->handle);
		for (k = 0; k < 3; k++)
			if ((it->sel & (1 << k)) && !(it->revents & sel_mask[k])) {
				wcall_clear(w, true);	/* the delegate will say */
				return false;
			}
	}
	return true;
}

/* The local half is over: stop watching it and close the monitor's copies at once. */
static void wcall_drop_local(struct wcall *w)
{
	size_t i;

	for (i = 0; i < w->nl; i++) {
		if (w->lp[i].fd < 0)
			continue;
		if (w->registered)
			epoll_ctl(waiter_epfd, EPOLL_CTL_DEL, w->lp[i].fd, NULL);
		if (w->it[w->lidx[i]].owned)
			close(w->lp[i].fd);
		w->lp[i].fd = -1;
	}
	w->registered = false;
}

/*
 * The wait ended with nothing ready: Linux's last scan reports an fd that
 * another thread closed meanwhile as POLLNVAL (select sets its bits).
 */
static void wcall_check_closed(struct wcall *w)
{
	size_t i;
	int fd;

	for (i = 0; i < w->n; i++) {
		if (w->it[i].skip)
			continue;
		fd = sv_fd_dup(w->c, w->it[i].vfd);
		if (fd < 0)
			w->it[i].revents = POLLNVAL;
		else
			close(fd);
	}
}

/* The remote half has answered: it wins unless the call was resolved already. */
static void wcall_remote_won(struct wcall *w)
{
	int local = 0;

	if (w->merge)
		local = wcall_poll_local(w);
	else
		wcall_clear(w, false);
	wcall_drop_local(w);
	if (w->rret == 0 && !local && w->kind != WK_EPOLL)
		wcall_check_closed(w);
	maps_count_class(w->c->sv->maps, RSYS_CLASS_CANCEL, w->nl && !local);
	wcall_answer(w, w->rret);
}

/* Hand @w, whose remote half has answered, to the waiter thread. Called with wait_lock held. */
static void wq_push(struct wcall *w)
{
	w->qnext = NULL;
	if (wq_tail)
		wq_tail->qnext = w;
	else
		wq_head = w;
	wq_tail = w;
}

/*
 * done() of the remote half, on the event thread. Calls without a
 * registered local half are resolved right here; the others are handed to
 * the waiter thread, which owns their local half.
 */
static void wait_remote_done(struct remote_req *r)
{
	struct wcall *w = r->arg;
	uint64_t one = 1;

	pthread_mutex_lock(&wait_lock);
	w->remote_done = true;
	watch_del(w);
	if (w->resolved) {
		/* a cancelled half: its reply is discarded as it arrives */
		pthread_mutex_unlock(&wait_lock);
		wcall_put(w);
		return;
	}
	wcall_take_reply(w, r);
	if (!w->waited) {
		w->resolved = true;
		pthread_mutex_unlock(&wait_lock);
		wcall_remote_won(w);
		wcall_put(w);
		wcall_put(w);
		return;
	}
	if (!w->armed) {
		/* wcall_run() hands it to the waiter once the local half is registered */
		w->early = true;
		pthread_mutex_unlock(&wait_lock);
		return;
	}
	wq_push(w);
	pthread_mutex_unlock(&wait_lock);
	if (write(wake_fd, &one, sizeof(one)) < 0)
		pr_warn("waiter wake-up failed: %s\n", err_str(errno));
}

/*
 * The waiter thread ends @w, which it resolved under wait_lock (noting
 * whether the remote half was still out, @cancel): the local half is
 * dropped and the remote one cancelled. Cancel before answering: remote.c
 * looks at the call of a pending request until its cancel is sent. The
 * cancel is one async frame; its reply is discarded by wait_remote_done()
 * whenever it comes.
 */
static void waiter_end_halves(struct wcall *w, bool cancel)
{
	wcall_drop_local(w);
	if (cancel) {
		remote_cancel(w->c->sv->remote, &w->req);
		maps_count_class(w->c->sv->maps, RSYS_CLASS_CANCEL, 1);
	}
}

/* Resolve @w for the waiter thread, with wait_lock held: is its remote half still out? */
static bool waiter_resolve(struct wcall *w)
{
	w->resolved = true;
	watch_del(w);
	return !w->remote_done;
}

/*
 * The local half of epoll wait @w is ready: its events, taken from the
 * instance itself (the monitor's copy, lp[0]) as the caller's own wait
 * would take them, after those an earlier answer did not deliver
 * (ep_stash), written to the caller and kept in w->lev for
 * wcall_epoll_reply(). The count, 0 when none is ready any more (another
 * thread of the caller took them), or -errno. Not left to the kernel
 * (CONTINUE): there the caller would wait its whole timeout again when
 * they are gone, and for local fds only.
 */
static int64_t wcall_epoll_local(struct wcall *w)
{
	int max = w->nfds < 65536 ? w->nfds : 65536, n, k;
	struct epoll_event *ev;

	/* as many as the caller asked for: a program may count on getting all that are ready */
	ev = malloc((size_t)max * sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	k = ep_stash_take(w->c->tgid, w->epfd, w->lp[0].fd, ev, max);
	n = k < max ? epoll_wait(w->lp[0].fd, ev + k, max - k, 0) : 0;
	if (n < 0 && !k) {
		free(ev);
		return -errno;
	}
	n = n < 0 ? k : n + k;
	if (!n) {
		free(ev);
		return 0;
	}
	w->lev = ev;
	w->nlev = n;
	return sv_write_mem(w->c, w->uptr[0], ev, n * sizeof(*ev)) == -EFAULT ? -EFAULT : n;
}

/*
 * Answer epoll wait @w with @n, its local events (wcall_epoll_local). The
 * kernel's instance gave them up to the monitor: events the caller did not
 * get (a signal ended its wait first, or -EFAULT, where Linux puts them
 * back) are kept for the instance's next wait (ep_stash), or an EPOLLET
 * fd among them would never be reported again.
 */
static void wcall_epoll_reply(struct wcall *w, int64_t n)
{
	pid_t tgid = w->c->tgid;

	if ((!sv_reply(w->c, n) || n == -EFAULT) && w->nlev > 0)
		ep_stash(tgid, w->epfd, w->lev, w->nlev);
	free(w->lev);
	w->lev = NULL;
	w->nlev = 0;
}

static void epoll_again(struct wcall *w);

/* The waiter thread saw a local fd of @w ready: the local half wins if it really is. */
static void waiter_local_event(struct wcall *w)
{
	int64_t n = 0;
	bool cancel;

	pthread_mutex_lock(&wait_lock);
	if (!w->armed || w->resolved || !wcall_poll_local(w)) {
		pthread_mutex_unlock(&wait_lock);
		return;
	}
	cancel = waiter_resolve(w);
	pthread_mutex_unlock(&wait_lock);
	wcall_clear(w, true);
	if (w->kind == WK_EPOLL)
		n = wcall_epoll_local(w);
	waiter_end_halves(w, cancel);
	if (w->kind != WK_EPOLL)
		wcall_answer(w, 0);
	else if (n)
		wcall_epoll_reply(w, n);
	else
		epoll_again(w);	/* gone: the wait goes on */
	wcall_put(w);
}

static void waiter_remote_replies(void)
{
	struct wcall *w;
	uint64_t v;
	bool was;

	if (read(wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		pr_warn("waiter: eventfd: %s\n", err_str(errno));
	for (;;) {
		pthread_mutex_lock(&wait_lock);
		w = wq_head;
		if (w) {
			wq_head = w->qnext;
			if (!wq_head)
				wq_tail = NULL;
			was = w->resolved;
			w->resolved = true;
		}
		pthread_mutex_unlock(&wait_lock);
		if (!w)
			return;
		if (!was) {
			wcall_drop_local(w);
			wcall_remote_won(w);
			wcall_put(w);	/* the waiter's reference */
		}
		wcall_put(w);		/* the remote half's, handed over by done() */
	}
}

/*
 * Whether the kernel can run @w itself, with the caller's own arguments:
 * there a remote fd is its placeholder, an AF_UNIX socket nobody writes
 * to, never readable nor exceptional but writable. epoll instances hold
 * no remote fd at all (epoll.c).
 */
static bool wcall_kernel_may_run(const struct wcall *w)
{
	size_t i;

	if (w->kind == WK_EPOLL)
		return true;
	for (i = 0; i < w->n; i++)
		if (w->it[i].remote && (w->it[i].events & SEL_WANT_OUT))
			return false;
	return true;
}

/*
 * A signal pending for the thread (SigPnd) or its process (ShdPnd) that
 * @mask lets through: a wait under that mask would end now.
 */
static bool sig_pending_unmasked(pid_t tgid, pid_t tid, uint64_t mask)
{
	static const char *const names[] = { "SigPnd", "ShdPnd" };
	uint64_t pend[2] = { 0, 0 };

	proc_status(tgid, tid, names, pend, 2);
	return (pend[0] | pend[1]) & ~mask;
}

/*
 * The waiter thread ends @w unless it was resolved already: false then.
 * Both halves are over when it returns true; the caller still answers.
 */
static bool waiter_take(struct wcall *w)
{
	bool cancel;

	pthread_mutex_lock(&wait_lock);
	if (w->resolved) {
		pthread_mutex_unlock(&wait_lock);
		return false;
	}
	cancel = waiter_resolve(w);
	pthread_mutex_unlock(&wait_lock);
	waiter_end_halves(w, cancel);
	return true;
}

/*
 * The caller of @w (pselect6, ppoll, epoll_pwait) blocks a signal that
 * the call's mask lets through, and it is pending: natively the wait ends
 * now, with EINTR once the handler ran, or restarts. The monitor cannot
 * change the caller's mask, the kernel can: both halves are cancelled and
 * the call goes on in the kernel (from the time left), which finds the
 * signal and does exactly that.
 */
static void waiter_mask_signal(struct wcall *w)
{
	if (!waiter_take(w))
		return;
	wcall_write_time_left(w);
	sv_continue(w->c);
	wcall_put(w);	/* the waiter side's reference */
}

/*
 * Cancel the remote halves of calls whose caller was interrupted by a
 * signal; end the waits whose own signal mask lets a pending signal in.
 */
static void waiter_check_calls(void)
{
	struct wcall *w, *next, *gone[32], *masked[32];
	struct remote *rc[32];
	int n = 0, nm = 0, i;

	pthread_mutex_lock(&wait_lock);
	for (w = watch_head; w && n < 32; w = next) {
		next = w->wnext;
		if (!w->submitted)
			continue;
		if (sv_call_valid(w->c)) {
			if (w->has_mask && nm < 32 && wcall_kernel_may_run(w)) {
				w->refs++;
				masked[nm++] = w;
			}
			continue;
		}
		/* hold it so that done() cannot free it; the call itself may end meanwhile */
		if (!sv_call_interrupted(w->c))
			intr_note(w);	/* seccomp gave up on it (watch_del notes the others) */
		watch_del(w);
		w->refs++;
		rc[n] = w->c->sv->remote;
		gone[n++] = w;
	}
	pthread_mutex_unlock(&wait_lock);
	/* not under wait_lock: sending may block while done() must go on */
	for (i = 0; i < n; i++) {
		remote_cancel(rc[i], &gone[i]->req);
		wcall_put(gone[i]);
	}
	for (i = 0; i < nm; i++) {
		w = masked[i];
		if (sig_pending_unmasked(w->c->tgid, w->c->tid, w->sigmask))
			waiter_mask_signal(w);
		wcall_put(w);
	}
}

static int64_t mono_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return ts_ns(&now) / 1000000;
}

static void waiter_rearms(void);

static void *waiter_main(void *arg)
{
	int64_t last = mono_ms();
	struct epoll_event ev;
	int n, timeout;

	(void)arg;
	while (!__atomic_load_n(&waiter_stopping, __ATOMIC_ACQUIRE)) {
		pthread_mutex_lock(&wait_lock);
		timeout = watch_head ? WAIT_CHECK_MS : -1;
		waiter_idle = !watch_head;
		pthread_mutex_unlock(&wait_lock);
		/* one event at a time: a call resolved now never shows up stale later */
		n = epoll_wait(waiter_epfd, &ev, 1, timeout);
		if (n < 0 && errno != EINTR) {
			pr_warn("waiter: epoll_wait: %s\n", err_str(errno));
			return NULL;
		}
		if (mono_ms() - last >= WAIT_CHECK_MS) {
			waiter_check_calls();
			last = mono_ms();
		}
		if (n <= 0)
			continue;
		if (ev.data.ptr) {
			waiter_local_event(ev.data.ptr);
		} else {
			waiter_remote_replies();
			waiter_rearms();
		}
	}
	return NULL;
}

static void waiter_init(void)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	waiter_epfd = epoll_create1(EPOLL_CLOEXEC);
	wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (waiter_epfd < 0 || wake_fd < 0 ||
	    epoll_ctl(waiter_epfd, EPOLL_CTL_ADD, wake_fd, &ev) ||
	    pthread_create(&waiter_thread, NULL, waiter_main, NULL)) {
		pr_warn("cannot start the split-wait thread: %s\n", err_str(errno));
		if (waiter_epfd >= 0)
			close(waiter_epfd);
		waiter_epfd = -1;
		return;
	}
	__atomic_store_n(&waiter_started, true, __ATOMIC_RELEASE);
}

void wait_stop(void)
{
	uint64_t one = 1;

	if (!__atomic_load_n(&waiter_started, __ATOMIC_ACQUIRE))
		return;
	__atomic_store_n(&waiter_stopping, true, __ATOMIC_RELEASE);
	if (write(wake_fd, &one, sizeof(one)) < 0)
		pr_warn("waiter wake-up failed: %s\n", err_str(errno));
	pthread_join(waiter_thread, NULL);
}

/* The start, the timeout in ms (-1 infinite) and the deadline, from a relative timespec. */
static void wcall_set_timeout(struct wcall *w, const struct timespec *t)
{
	struct timespec now;
	int64_t ms;

	clock_gettime(CLOCK_MONOTONIC, &now);
	w->start_ns = ts_ns(&now);
	if (!t) {
		w->timeout_ms = -1;
		return;
	}
	ms = ((int64_t)t->tv_sec * 1000000000 + t->tv_nsec + 999999) / 1000000;
	w->timeout_ms = ms > 0x7fffffff ? 0x7fffffff : ms;
	w->deadline.tv_sec = now.tv_sec + t->tv_sec;
	w->deadline.tv_nsec = now.tv_nsec + t->tv_nsec;
	if (w->deadline.tv_nsec >= 1000000000) {
		w->deadline.tv_sec++;
		w->deadline.tv_nsec -= 1000000000;
	}
}

/* Split @w's items into the local and remote halves; the number of remote items. */
static size_t wcall_classify(struct wcall *w)
{
	size_t i;

	for (i = 0; i < w->n; i++)
		if (!w->it[i].skip)
			w->it[i].remote = sv_fd_remote(w->c, w->it[i].vfd, &w->it[i].handle) == 1;
	for (i = 0; i < w->n; i++) {
		if (w->it[i].skip)
			continue;
		if (w->it[i].remote)
			w->nr++;
		else
			w->nl++;
	}
	return w->nr;
}

/*
 * Prepare both halves: copies of the local fds in the monitor, the remote
 * request's payload. 0, or -EBADF (select on a closed fd) / -ENOMEM.
 */
static int wcall_prepare(struct wcall *w)
{
	size_t i, l = 0, r = 0;
	int fd;

	/* one block, most aligned first: rp[nr], ridx[nr], lidx[nl], lp[nl], rgen[nr] */
	w->rp = calloc(1, w->nr * sizeof(*w->rp) + (w->nr + w->nl) * sizeof(size_t) +
			  (w->nl ? w->nl : 1) * sizeof(*w->lp) + w->nr * sizeof(*w->rgen));
	if (!w->rp)
		return -ENOMEM;
	w->ridx = (size_t *)(w->rp + w->nr);
	w->lidx = w->ridx + w->nr;
	w->lp = (struct pollfd *)(w->lidx + w->nl);
	w->rgen = (uint32_t *)(w->lp + (w->nl ? w->nl : 1));
	for (i = 0; i < w->n; i++) {
		struct witem *it = &w->it[i];

		if (it->skip)
			continue;
		if (it->remote) {
			w->rp[r].handle = it->handle;
			w->rp[r].events = it->events;
			w->rgen[r] = remote_ready_gen(w->c->sv->remote, it->handle);
			w->ridx[r++] = i;
			continue;
		}
		if (w->kind == WK_EPOLL) {
			fd = w->epdup;	/* now owned by lp[] */
			w->epdup = -1;
			it->owned = true;
		} else {
			fd = fdc_local_copy(w->c->proc, it->vfd, &it->owned);
		}
		if (fd < 0 && (w->kind == WK_SELECT || w->kind == WK_PSELECT6)) {
			w->nl = l;
			return fd == -EBADF || fd == -ENOENT ? -EBADF : fd;
		}
		/* poll: a closed fd is POLLNVAL, which wcall_poll_local reports */
		w->lp[l].fd = fd < 0 ? -1 : fd;
		w->lp[l].events = it->events;
		w->lidx[l++] = i;
	}
	return 0;
}

/*
 * The call goes on after its handler: the fd cache's copies may be
 * forgotten meanwhile, so the local half gets copies of its own. 0 or -errno.
 */
static int wcall_own_local(struct wcall *w)
{
	struct witem *it;
	size_t i;
	int fd;

	for (i = 0; i < w->nl; i++) {
		it = &w->it[w->lidx[i]];
		if (w->lp[i].fd < 0 || it->owned)
			continue;
		fd = fcntl(w->lp[i].fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			return -errno;
		w->lp[i].fd = fd;
		it->owned = true;
	}
	return 0;
}

/*
 * Is @w the restart of its thread's previous wait, which a signal
 * interrupted in the monitor's hands? The kernel's seccomp code restarts
 * such a call after a handler with SA_RESTART (rsys_signal_deliver saw
 * that), where Linux fails select, poll and epoll waits with EINTR
 * whatever the handler's flags (signal(7)): R_EINTR. One that no handler
 * interrupted (a stop and SIGCONT, say: the monitor answered
 * -ERESTARTNOHAND, or seccomp gave up on it) is restarted by the kernel
 * as Linux's, which waits only the time left (select and pselect6 from
 * the time they wrote back, poll and ppoll from their restart block):
 * R_RESUME. Either way @w takes over the interrupted wait's deadline.
 * After a handler that did not restart it (EINTR came back), or with no
 * wait of this thread interrupted, it is a new call: R_NEW (costs
 * nothing then).
 */
enum restart { R_NEW, R_EINTR, R_RESUME };

static enum restart wcall_restarted(struct wcall *w)
{
	pid_t tid = w->c->tid;
	struct rsys_sigdeliver d = { 0 };
	struct intr_rec old = { 0 };
	struct timespec left;
	enum restart how;
	struct wcall *o;
	unsigned int i;

	pthread_mutex_lock(&wait_lock);
	for (o = watch_head; o; o = o->wnext)
		if (o->c->tid == tid && o->submitted)
			break;
	if (o)
		old = (struct intr_rec){ tid, o->c->sys, o->start_ns, o->deadline, o->timeout_ms,
					 sv_call_interrupted(o->c), sv_call_intr_ns(o->c) };
	for (i = 0; i < INTR_RECS; i++) {
		if (intr_recs[i].tid != tid)
			continue;
		if (!old.tid)
			old = intr_recs[i];
		intr_recs[i].tid = 0;	/* this wait is the thread's next one */
	}
	pthread_mutex_unlock(&wait_lock);
	if (!old.tid || memcmp(&old.call, &w->c->sys, sizeof(old.call)))
		return R_NEW;	/* not the same call from the same place */
	if (!maps_sig_delivered(w->c->sv->maps, tid, &d) && (int64_t)d.ns >= old.start_ns)
		how = d.code == SV_ERESTARTSYS ? R_EINTR : R_NEW;	/* a handler ran */
	else	/* the monitor's answers record every handler; seccomp's only SA_RESTART ones */
		how = old.by_monitor && w->kind != WK_EPOLL ? R_RESUME : R_NEW;
	if (how == R_NEW)
		return how;
	w->deadline = old.deadline;
	w->timeout_ms = old.timeout_ms;
	if (how == R_RESUME && w->timeout_ms > 0) {
		/*
		 * select, pselect6 and ppoll restart from the time left they
		 * wrote back when interrupted (the time stopped does not count),
		 * poll from its restart block's end time.
		 */
		if (w->kind != WK_POLL) {
			int64_t end = w->start_ns + ts_ns(&old.deadline) - old.intr_ns;

			w->deadline = (struct timespec){ end / 1000000000, end % 1000000000 };
		}
		left = wcall_remaining(w);
		w->timeout_ms = (left.tv_sec * 1000000000LL + left.tv_nsec + 999999) / 1000000;
	}
	return how;
}

/*
 * Run a call with a remote half (for epoll, possibly empty: wait_epoll).
 * The local half is polled at once:
 * if it is ready it wins before the remote half is even sent (the cheapest
 * cancel there is). Otherwise the remote POLL goes out and the local half is
 * watched by the waiter thread; whichever completes first answers, the
 * other is cancelled asynchronously.
 */
static enum sv_verdict wcall_start(struct wcall *w)
{
	struct epoll_event ev;
	struct sv_call *c = w->c;
	pid_t tgid = c->tgid;
	uint64_t one = 1;
	bool wake;
	int local, err;
	size_t i;

	err = wcall_prepare(w);
	if (err)
		goto reply;
	local = wcall_poll_local(w);
	if (w->kind == WK_EPOLL && ep_stashed(tgid, w->epfd))
		local = 1;	/* events an earlier answer did not deliver */
	maps_count_class(c->sv->maps, w->nl ? RSYS_CLASS_SPLIT : RSYS_CLASS_REMOTE, 1);
	/* Nothing to ask the delegate: both halves are what they are now. */
	if (wcall_known_ready(w)) {
		c->ret = wcall_write_result(w);
		wcall_free(w);
		return SV_REPLY;
	}
	if (local && w->kind == WK_EPOLL) {
		int64_t n = wcall_epoll_local(w);

		if (n) {
			wcall_epoll_reply(w, n);	/* @c is answered and gone */
			wcall_free(w);
			return SV_PENDING;
		}
		local = 0;	/* another thread took them: wait */
	}
	if (local && w->timeout_ms != 0) {
		maps_count_class(c->sv->maps, RSYS_CLASS_CANCEL, 1);
		c->ret = wcall_write_result(w);
		wcall_free(w);
		return SV_REPLY;
	}
	err = wcall_own_local(w);
	if (err)
		goto reply;
	w->merge = w->timeout_ms == 0;
	w->req.f.op = RSYS_OP_POLL;
	w->req.f.a[0] = w->nr;
	w->req.f.a[1] = w->timeout_ms;
	w->req.f.len = w->nr * sizeof(*w->rp);
	w->req.payload = w->rp;
	w->req.done = wait_remote_done;
	w->req.arg = w;
	w->req.call = c;
	/*
	 * A call's own mask is the kernel's to apply (waiter_mask_signal); else
	 * as Linux's: select and poll restart when no handler ran (after a stop,
	 * say), epoll fails with EINTR even then.
	 */
	if (w->has_mask && wcall_kernel_may_run(w))
		sv_on_signal(c, SV_INTR_NONE);
	else
		sv_on_signal(c, w->kind == WK_EPOLL ? SV_INTR_EINTR : SV_INTR_NOHAND);
	pthread_once(&waiter_once, waiter_init);
	if (waiter_epfd < 0) {
		err = -ENOMEM;
		goto reply;
	}
	/*
	 * No lock is held while sending: done() must never wait for one, or a
	 * full socket both ways would stop the event thread reading replies.
	 * A third reference keeps @w while this function still looks at it.
	 */
	w->refs = 3;
	w->waited = w->nl && !w->merge;
	pthread_mutex_lock(&wait_lock);
	watch_add(w);
	pthread_mutex_unlock(&wait_lock);
	err = remote_submit(c->sv->remote, &w->req);
	if (err) {
		pthread_mutex_lock(&wait_lock);
		watch_del(w);
		pthread_mutex_unlock(&wait_lock);
		goto reply;
	}
	if (w->waited) {
		ev.data.ptr = w;
		for (i = 0; i < w->nl; i++) {
			/* poll and epoll share the event bits */
			ev.events = (uint16_t)w->lp[i].events;
			if (w->lp[i].fd >= 0)
				epoll_ctl(waiter_epfd, EPOLL_CTL_ADD, w->lp[i].fd, &ev);
		}
		w->registered = true;
	}
	pthread_mutex_lock(&wait_lock);
	w->submitted = true;	/* from now on a signal to the caller cancels it */
	wake = waiter_idle;
	waiter_idle = false;
	if (w->waited) {
		w->armed = true;
		if (w->early) {
			wq_push(w);
			wake = true;
		}
	}
	pthread_mutex_unlock(&wait_lock);
	if (wake && write(wake_fd, &one, sizeof(one)) < 0)
		pr_warn("waiter wake-up failed: %s\n", err_str(errno));
	/*
	 * A change of the interest list since the snapshot found no armed
	 * wait to restart. (@c may be answered and gone by now: not @tgid.)
	 */
	if (w->kind == WK_EPOLL && ep_gen(tgid, w->epfd) != w->epgen)
		wait_epoll_changed(tgid, w->epfd);
	wcall_put(w);
	return SV_PENDING;
reply:
	c->ret = err;
	wcall_free(w);
	return SV_REPLY;
}

/* wcall_start() for a new call, or the restart of one a signal interrupted (wcall_restarted). */
static enum sv_verdict wcall_run(struct wcall *w)
{
	if (wcall_restarted(w) == R_EINTR) {
		wcall_write_time_left(w);
		w->c->ret = -EINTR;
		wcall_free(w);
		return SV_REPLY;
	}
	return wcall_start(w);
}

/* A call with room for @nitems items. */
static struct wcall *wcall_new(struct sv_call *c, enum wait_kind kind, size_t nitems)
{
	struct wcall *w = calloc(1, sizeof(*w) + nitems * sizeof(w->its[0]));

	if (w) {
		w->c = c;
		w->kind = kind;
		w->epdup = -1;
		w->it = w->its;
	}
	return w;
}

/* The kernel clamps select's nfds to the size of the fd table (FDSize in /proc). */
static int select_clamp(struct sv_call *c, int nfds)
{
	static const char *const name[] = { "FDSize" };
	uint64_t max = 0;

	if (nfds <= (int)NR_OPEN_DEFAULT)
		return nfds;
	proc_status(0, c->tid, name, &max, 1);
	return max > 0 && max < (uint64_t)nfds ? (int)max : nfds;
}

/*
 * The hot path of every select: all (up to 3) fd sets in one
 * process_vm_readv and no NOTIF_ID_VALID check: most calls end in
 * CONTINUE, for which stale data would do no harm, and every write of a
 * result checks the notification first (sv_write_mem). 0 or -EFAULT.
 */
static int read_sets(struct sv_call *c, const __u64 *a, unsigned long *set, size_t longs)
{
	struct iovec local[3], remote[3];
	size_t len = longs * sizeof(*set), total = 0;
	int k, n = 0;

	for (k = 0; k < 3; k++) {
		if (!a[1 + k])
			continue;
		local[n] = (struct iovec){ set + k * longs, len };
		remote[n] = (struct iovec){ (void *)(uintptr_t)a[1 + k], len };
		total += len;
		n++;
	}
	if (!n)
		return 0;
	return sv_peek_memv(c, local, remote, n) == (ssize_t)total ? 0 : -EFAULT;
}

/*
 * Read a timeout argument as the kernel does: a struct timeval (select,
 * whose microseconds may carry into seconds) or a struct timespec. 0,
 * -EFAULT or -EINVAL.
 */
static int read_timeout(struct sv_call *c, uint64_t addr, bool timeval, struct timespec *ts)
{
	struct timeval tv;

	if (timeval) {
		if (sv_read_mem(c, &tv, addr, sizeof(tv)))
			return -EFAULT;
		ts->tv_sec = tv.tv_sec + tv.tv_usec / 1000000;
		ts->tv_nsec = (tv.tv_usec % 1000000) * 1000;
	} else if (sv_read_mem(c, ts, addr, sizeof(*ts))) {
		return -EFAULT;
	}
	return ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000 ? -EINVAL : 0;
}

/*
 * Read a sigmask argument as the kernel does (size must be sizeof(sigset_t),
 * both readable) and keep it: a signal it lets through ends the wait.
 */
static int read_sigmask(struct wcall *w, uint64_t uset, uint64_t size)
{
	if (!uset)
		return 0;
	if (size != sizeof(w->sigmask))
		return -EINVAL;
	if (sv_read_mem(w->c, &w->sigmask, uset, sizeof(w->sigmask)))
		return -EFAULT;
	w->has_mask = true;
	return 0;
}

/* Any remote fd among the @longs words of @set (in|out|ex)? The hot path's only question. */
static bool sets_have_remote(struct sv_call *c, const unsigned long *set, size_t longs)
{
	unsigned long word;
	uint64_t h;
	size_t i;

	for (i = 0; i < longs; i++) {
		word = set[i] | set[longs + i] | set[2 * longs + i];
		while (word) {
			if (sv_fd_remote(c, i * BITS_PER_LONG + __builtin_ctzl(word), &h) == 1)
				return true;
			word &= word - 1;
		}
	}
	return false;
}

static enum sv_verdict wait_fdsets(struct sv_call *c, enum wait_kind kind)
{
	unsigned long small[3 * FDS_LONGS(FD_SETSIZE)];
	const __u64 *a = c->sys.args;
	int nfds = (int)a[0], fd, k;
	unsigned long *set = small;
	struct timespec ts, *tp = NULL;
	struct wcall *w = NULL;
	size_t longs, n = 0;
	int err = -ENOMEM;

	if (nfds <= 0)
		return SV_CONTINUE;	/* no fds (or EINVAL): the kernel's business */
	/* Fast path: no remote vfd below nfds, nothing to read from the caller. */
	if (fdc_all_local(c->proc, c->tid, nfds))
		return SV_CONTINUE;
	nfds = select_clamp(c, nfds);
	longs = FDS_LONGS(nfds);
	if (nfds > FD_SETSIZE) {
		set = calloc(3, longs * sizeof(*set));
		if (!set)
			goto reply;
	} else {
		memset(set, 0, 3 * longs * sizeof(*set));
	}
	/* EFAULT, or all fds local: the kernel runs the call (and reports the error) */
	if (read_sets(c, a, set, longs) || !sets_have_remote(c, set, longs))
		goto local;
	w = wcall_new(c, kind, nfds);
	if (!w)
		goto reply;
	for (fd = 0; fd < nfds; fd++) {
		uint8_t sel = 0;

		for (k = 0; k < 3; k++)
			if (set[k * longs + fd / BITS_PER_LONG] & (1UL << (fd % BITS_PER_LONG)))
				sel |= 1 << k;
		if (!sel)
			continue;
		w->it[n].vfd = fd;
		w->it[n].sel = sel;
		w->it[n].events = (sel & 1 ? SEL_WANT_IN : 0) | (sel & 2 ? SEL_WANT_OUT : 0) |
				  (sel & 4 ? POLLPRI : 0);
		n++;
	}
	w->n = n;
	if (!wcall_classify(w))
		goto local;
	if (set != small)
		free(set);
	set = NULL;
	w->nfds = nfds;
	for (k = 0; k < 3; k++)
		w->uptr[k] = a[1 + k];
	/* now everything the kernel would check first, in its order */
	if (a[4]) {
		err = read_timeout(c, a[4], kind == WK_SELECT, &ts);
		if (err)
			goto reply;
		tp = &ts;
		w->utime = a[4];
	}
	if (kind == WK_PSELECT6 && a[5]) {
		uint64_t pack[2];

		err = -EFAULT;
		if (sv_read_mem(c, pack, a[5], sizeof(pack)))
			goto reply;
		err = read_sigmask(w, pack[0], pack[1]);
		if (err)
			goto reply;
	}
	wcall_set_timeout(w, tp);
	return wcall_run(w);
local:
	if (set != small)
		free(set);
	if (w)
		wcall_free(w);
	return SV_CONTINUE;
reply:
	if (set != small)
		free(set);
	if (w)
		wcall_free(w);
	c->ret = err;
	return SV_REPLY;
}

static enum sv_verdict wait_pollfds(struct sv_call *c, enum wait_kind kind)
{
	const __u64 *a = c->sys.args;
	struct pollfd small[64], *pfd = small;
	struct iovec local, remote;
	uint64_t nfds = a[1], h;
	struct timespec ts, *tp = NULL;
	struct wcall *w = NULL;
	struct rlimit rl;
	int err = -ENOMEM;
	size_t i;

	if (!nfds || nfds > WAIT_MAX_POLLFDS)
		return SV_CONTINUE;
	/* Fast path: the process holds no remote vfd at all. */
	if (fdc_all_local(c->proc, c->tid, UINT_MAX))
		return SV_CONTINUE;
	if (nfds > 1024 && (prlimit(c->tgid, RLIMIT_NOFILE, NULL, &rl) || nfds > rl.rlim_cur))
		return SV_CONTINUE;	/* EINVAL from the kernel */
	if (nfds > sizeof(small) / sizeof(small[0])) {
		pfd = calloc(nfds, sizeof(*pfd));
		if (!pfd)
			goto reply;
	}
	/* as read_sets(): no NOTIF_ID_VALID check on the hot path, results are written checked */
	local = (struct iovec){ pfd, nfds * sizeof(*pfd) };
	remote = (struct iovec){ (void *)(uintptr_t)a[0], nfds * sizeof(*pfd) };
	if (sv_peek_memv(c, &local, &remote, 1) != (ssize_t)local.iov_len)
		goto local;	/* EFAULT from the kernel */
	for (i = 0; i < nfds; i++)
		if (pfd[i].fd >= 0 && sv_fd_remote(c, pfd[i].fd, &h) == 1)
			break;
	if (i == nfds)
		goto local;
	w = wcall_new(c, kind, nfds);
	if (!w)
		goto reply;
	for (i = 0; i < nfds; i++) {
		w->it[i].vfd = pfd[i].fd;
		w->it[i].events = pfd[i].events;
		w->it[i].skip = pfd[i].fd < 0;
	}
	w->n = nfds;
	if (!wcall_classify(w))
		goto local;
	if (pfd != small)
		free(pfd);
	pfd = NULL;
	w->nfds = nfds;
	w->uptr[0] = a[0];
	if (kind == WK_POLL) {
		if ((int)a[2] >= 0) {
			ts.tv_sec = (int)a[2] / 1000;
			ts.tv_nsec = ((int)a[2] % 1000) * 1000000;
			tp = &ts;
		}
	} else {
		if (a[2]) {
			err = read_timeout(c, a[2], false, &ts);
			if (err)
				goto reply;
			tp = &ts;
			w->utime = a[2];
		}
		err = read_sigmask(w, a[3], a[4]);
		if (err)
			goto reply;
	}
	wcall_set_timeout(w, tp);
	return wcall_run(w);
local:
	if (pfd != small)
		free(pfd);
	if (w)
		wcall_free(w);
	return SV_CONTINUE;
reply:
	if (pfd != small)
		free(pfd);
	if (w)
		wcall_free(w);
	c->ret = err;
	return SV_REPLY;
}

enum sv_verdict wait_select(struct sv_call *c)
{
	return wait_fdsets(c, WK_SELECT);
}

enum sv_verdict wait_pselect6(struct sv_call *c)
{
	return wait_fdsets(c, WK_PSELECT6);
}

enum sv_verdict wait_poll(struct sv_call *c)
{
	return wait_pollfds(c, WK_POLL);
}

enum sv_verdict wait_ppoll(struct sv_call *c)
{
	return wait_pollfds(c, WK_PPOLL);
}

/* An epoll instance is a real one in the process; remote fds are kept out of it (epoll.c). */
enum sv_verdict wait_epoll_create1(struct sv_call *c)
{
	(void)c;
	return SV_CONTINUE;
}

enum sv_verdict wait_epoll_ctl(struct sv_call *c)
{
	const __u64 *a = c->sys.args;
	struct epoll_event ev = { 0, { 0 } };
	uint64_t h;

	if (sv_fd_remote(c, (int)a[2], &h) != 1)
		return SV_CONTINUE;
	if ((int)a[1] != EPOLL_CTL_DEL && sv_read_mem(c, &ev, a[3], sizeof(ev))) {
		c->ret = -EFAULT;
		return SV_REPLY;
	}
	c->ret = ep_ctl(c, (int)a[0], (int)a[1], (int)a[2], h, ev.events, ev.data.u64);
	return SV_REPLY;
}

/*
 * An epoll wait on @epfd of @c as a split call: the instance itself is the
 * local half (the kernel reports its local fds), its live remote
 * registrations the remote half. NULL when the kernel alone can do the
 * wait: the monitor knows of no remote registration live, and @hold does
 * not say to hold the wait even so. One snapshot of the interest list, and
 * at most one thread count; an instance the monitor has not seen yet is
 * looked up only for a wait it holds (then known from now on).
 */
enum ep_hold {
	EP_HOLD_LIVE,		/* only with a live remote registration (a wait that polls) */
	EP_HOLD_THREADS,	/* or if another thread could add one meanwhile (a blocking wait) */
	EP_HOLD_ALWAYS,		/* in any case (a held wait started again) */
};

static bool ep_hold_empty(struct sv_call *c, enum ep_hold hold, int *threads)
{
	if (hold != EP_HOLD_THREADS)
		return hold == EP_HOLD_ALWAYS;
	if (!*threads)
		*threads = sv_threads(c);
	return *threads > 1;
}

static struct wcall *wcall_epoll(struct sv_call *c, int epfd, int maxevents, enum ep_hold hold)
{
	struct ep_reg *regs;
	struct wcall *w;
	int n, i, epdup, threads = 0;
	unsigned int gen;
	size_t k = 0;
	uint32_t ev;

	n = ep_snapshot(c, epfd, false, &regs, &epdup, &gen);
	if (n == -ENOENT && ep_hold_empty(c, hold, &threads))
		n = ep_snapshot(c, epfd, true, &regs, &epdup, &gen);
	if (n < 0)
		return NULL;	/* the kernel has the error to tell, if any */
	w = wcall_new(c, WK_EPOLL, n + 1);
	if (!w) {
		free(regs);
		close(epdup);
		return NULL;
	}
	w->epdup = epdup;
	w->epfd = epfd;
	w->epgen = gen;
	w->nfds = maxevents;
	w->it[k++] = (struct witem){ .vfd = epfd, .events = POLLIN };
	for (i = 0; i < n; i++) {
		if (!ep_reg_live(&regs[i], &ev))
			continue;
		w->it[k++] = (struct witem){ .vfd = regs[i].vfd, .remote = true,
					     .handle = regs[i].handle, .events = (uint16_t)ev,
					     .epevents = ev | (regs[i].events & ~0xffffu),
					     .epdata = regs[i].data };
	}
	free(regs);
	w->n = k;
	w->nl = 1;
	w->nr = k - 1;
	if (!w->nr && !ep_hold_empty(c, hold, &threads)) {
		wcall_free(w);
		return NULL;
	}
	return w;
}

/*
 * epoll_wait/epoll_pwait/epoll_pwait2 on an instance with remote interest.
 * epoll_pwait2's timeout is a timespec (NULL: none), read before the signal
 * mask as the kernel does. Another thread may add a remote registration
 * meanwhile (or make an EPOLLET one fire again), which the kernel would not
 * see: a blocking wait in a process with more threads is held by the
 * monitor even with none live, and starts again on each change
 * (wait_epoll_changed).
 */
enum ep_kind { EP_WAIT, EP_PWAIT, EP_PWAIT2 };

static enum sv_verdict wait_epoll(struct sv_call *c, enum ep_kind kind)
{
	const __u64 *a = c->sys.args;
	struct timespec ts, *tp = NULL;
	struct wcall *w;
	bool stashed;
	int err;

	if ((int)a[2] <= 0 || (int)a[2] > (int)(0x7fffffff / sizeof(struct epoll_event)))
		return SV_CONTINUE;	/* EINVAL from the kernel */
	/* events an earlier answer did not deliver: only the monitor has them */
	stashed = ep_stashed(c->tgid, (int)a[0]);
	w = wcall_epoll(c, (int)a[0], (int)a[2],
			stashed ? EP_HOLD_ALWAYS :
			kind == EP_PWAIT2 || (int)a[3] != 0 ? EP_HOLD_THREADS : EP_HOLD_LIVE);
	if (!w)
		return SV_CONTINUE;
	w->uptr[0] = a[1];
	if (kind == EP_PWAIT2) {
		if (a[3]) {
			err = read_timeout(c, a[3], false, &ts);
			if (err)
				goto reply;
			tp = &ts;
		}
	} else if ((int)a[3] >= 0) {
		ts.tv_sec = (int)a[3] / 1000;
		ts.tv_nsec = ((int)a[3] % 1000) * 1000000L;
		tp = &ts;
	}
	if (kind != EP_WAIT) {
		err = read_sigmask(w, a[4], a[5]);
		if (err)
			goto reply;
	}
	wcall_set_timeout(w, tp);
	if (!w->nr && !w->timeout_ms && !stashed) {
		wcall_free(w);
		return SV_CONTINUE;	/* a zero timeout polls once: the kernel's */
	}
	return wcall_run(w);
reply:
	wcall_free(w);
	c->ret = err;
	return SV_REPLY;
}

/*
 * Start epoll wait @w, which the waiter thread resolved, again: same
 * caller, buffer, mask and deadline, and the instance's interest list of
 * now. The caller's call goes on to the new wait.
 */
static void epoll_again(struct wcall *w)
{
	struct sv_call *c = w->c;
	struct timespec left;
	struct wcall *nw;

	nw = wcall_epoll(c, w->epfd, w->nfds, EP_HOLD_ALWAYS);
	if (!nw) {
		sv_continue(c);	/* the instance is gone: the kernel's error */
		return;
	}
	nw->uptr[0] = w->uptr[0];
	nw->sigmask = w->sigmask;
	nw->has_mask = w->has_mask;
	nw->start_ns = w->start_ns;
	nw->deadline = w->deadline;
	nw->timeout_ms = w->timeout_ms;
	if (nw->timeout_ms > 0) {
		left = wcall_remaining(nw);
		/* at least 1 ms: a zero timeout would poll both halves once */
		nw->timeout_ms = (left.tv_sec * 1000000000LL + left.tv_nsec + 999999) / 1000000;
		if (!nw->timeout_ms)
			nw->timeout_ms = 1;
	}
	sv_verdict_do(c, wcall_start(nw));
}

/*
 * The waiter thread starts the epoll wait @w again (wait_epoll_changed),
 * unless it ended meanwhile.
 */
static void waiter_rearm(struct wcall *w)
{
	pthread_mutex_lock(&wait_lock);
	w->rearm = false;
	pthread_mutex_unlock(&wait_lock);
	if (!waiter_take(w))
		return;
	epoll_again(w);
	wcall_put(w);	/* the waiter side's reference */
}

static void waiter_rearms(void)
{
	struct wcall *w;

	for (;;) {
		pthread_mutex_lock(&wait_lock);
		w = rq_head;
		if (w)
			rq_head = w->rnext;
		pthread_mutex_unlock(&wait_lock);
		if (!w)
			return;
		waiter_rearm(w);
		wcall_put(w);	/* rq_head's */
	}
}

void wait_epoll_changed(pid_t tgid, int epfd)
{
	struct wcall *w;
	uint64_t one = 1;
	bool wake = false;

	pthread_mutex_lock(&wait_lock);
	for (w = watch_head; w; w = w->wnext) {
		if (w->kind != WK_EPOLL || w->c->tgid != tgid || w->epfd != epfd ||
		    !w->armed || w->rearm)
			continue;
		w->rearm = true;
		w->refs++;
		w->rnext = rq_head;
		rq_head = w;
		wake = true;
	}
	pthread_mutex_unlock(&wait_lock);
	if (wake && write(wake_fd, &one, sizeof(one)) < 0)
		pr_warn("waiter wake-up failed: %s\n", err_str(errno));
}

enum sv_verdict wait_epoll_wait(struct sv_call *c)
{
	return wait_epoll(c, EP_WAIT);
}

enum sv_verdict wait_epoll_pwait(struct sv_call *c)
{
	return wait_epoll(c, EP_PWAIT);
}

enum sv_verdict wait_epoll_pwait2(struct sv_call *c)
{
	return wait_epoll(c, EP_PWAIT2);
}
