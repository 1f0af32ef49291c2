// SPDX-License-Identifier: GPL-2.0
/* Remote interest lists of the trusted processes' epoll instances (epoll.h). */
#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "epoll.h"
#include "log.h"
#include "procfs.h"

/* One epoll instance of one process; identified by its vfd and checked with kcmp(KCMP_FILE). */
struct ep {
	pid_t tgid;
	int vfd;
	int dup;		/* the monitor's copy of the instance */
	struct ep_reg *regs;
	size_t n, cap;
	unsigned int gen;	/* counts the changes of the interest list (ep_gen) */
	struct epoll_event *stash;	/* local events not delivered (ep_stash) */
	int nstash;
	struct ep *next;
};

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep *ep_list;
static int ep_nstashed;		/* instances with kept events (atomic reads outside ep_lock) */

static void ep_free(struct ep *e)
{
	if (e->nstash)
		__atomic_sub_fetch(&ep_nstashed, 1, __ATOMIC_RELAXED);
	free(e->stash);
	close(e->dup);
	free(e->regs);
	free(e);
}

/* The monitor's pid, asked once: glibc does not cache it, and every epoll call compares files. */
static pid_t self_pid(void)
{
	static pid_t pid;
	pid_t p = __atomic_load_n(&pid, __ATOMIC_RELAXED);

	if (!p) {
		p = getpid();
		__atomic_store_n(&pid, p, __ATOMIC_RELAXED);
	}
	return p;
}

/* Same open file? (kcmp compares the struct file behind two fds.) */
static bool same_file(pid_t tgid, int vfd, int dup)
{
	return syscall(SYS_kcmp, self_pid(), tgid, KCMP_FILE, dup, vfd) == 0;
}

/* The instance behind @epfd of the caller, dropping stale ones. Called with ep_lock held. */
static struct ep *ep_find(struct sv_call *c, int epfd)
{
	struct ep **pp, *e;

	for (pp = &ep_list; (e = *pp); pp = &e->next) {
		if (e->tgid != c->tgid || e->vfd != epfd)
			continue;
		if (same_file(c->tgid, epfd, e->dup))
			return e;
		*pp = e->next;	/* closed and the number reused */
		ep_free(e);
		return NULL;
	}
	return NULL;
}

/* Drop the instances of processes that have exited. Called with ep_lock held. */
static void ep_sweep(void)
{
	struct ep **pp, *e;

	for (pp = &ep_list; (e = *pp);) {
		if (kill(e->tgid, 0) && errno == ESRCH) {
			*pp = e->next;
			ep_free(e);
			continue;
		}
		pp = &e->next;
	}
}

static struct ep_reg *ep_reg_find(struct ep *e, int vfd)
{
	size_t i;

	for (i = 0; i < e->n; i++)
		if (e->regs[i].vfd == vfd)
			return &e->regs[i];
	return NULL;
}

/* Is @fd of the caller an epoll instance? */
static bool is_epoll(int fd)
{
	char link[64];

	return !fd_link(fd, link, sizeof(link)) && !strcmp(link, "anon_inode:[eventpoll]");
}

/*
 * The instance behind @epfd of the caller, with ep_lock held on return
 * (also on failure). One the monitor does not know yet is checked (*@err
 * -EBADF: no such fd, -EINVAL: no epoll instance) and, with @create, added
 * with no registration (or *@err -ENOMEM); else NULL with *@err 0.
 */
static struct ep *ep_get(struct sv_call *c, int epfd, bool create, int *err)
{
	struct ep *e;
	int dup;

	*err = 0;
	pthread_mutex_lock(&ep_lock);
	e = ep_find(c, epfd);
	if (e)
		return e;
	/*
	 * Only an unknown instance needs a copy and a look at what it is (4
	 * more syscalls): for a known one the kcmp of ep_find() proves @epfd
	 * is that open file still.
	 */
	pthread_mutex_unlock(&ep_lock);
	dup = sv_fd_dup(c, epfd);
	if (dup >= 0 && !is_epoll(dup)) {
		close(dup);
		*err = -EINVAL;
	} else if (dup < 0) {
		*err = -EBADF;
	}
	pthread_mutex_lock(&ep_lock);
	if (*err)
		return NULL;
	e = ep_find(c, epfd);	/* another thread of the process may have added it */
	if (!e && create) {
		ep_sweep();
		e = calloc(1, sizeof(*e));
		if (!e) {
			*err = -ENOMEM;
		} else {
			e->tgid = c->tgid;
			e->vfd = epfd;
			e->dup = dup;
			dup = -1;
			e->next = ep_list;
			ep_list = e;
		}
	}
	if (dup >= 0)
		close(dup);
	return e;
}

int ep_ctl(struct sv_call *c, int epfd, int op, int fd, uint64_t handle, uint32_t events,
	   uint64_t data)
{
	struct ep_reg *r;
	struct ep *e;
	int ret;

	e = ep_get(c, epfd, op == EPOLL_CTL_ADD && fd != epfd, &ret);
	if (ret)
		goto out;
	if (fd == epfd) {
		ret = -EINVAL;
		goto out;
	}
	r = e ? ep_reg_find(e, fd) : NULL;
	if (r && r->handle != handle) {
		/* the fd was closed and reused: the old registration is gone */
		*r = e->regs[--e->n];
		r = NULL;
	}
	switch (op) {
	case EPOLL_CTL_ADD:
		if (r) {
			ret = -EEXIST;
			break;
		}
		if (e->n == e->cap) {
			size_t cap = e->cap ? 2 * e->cap : 8;
			struct ep_reg *n = realloc(e->regs, cap * sizeof(*n));

			if (!n) {
				ret = -ENOMEM;
				break;
			}
			e->regs = n;
			e->cap = cap;
		}
		e->regs[e->n++] = (struct ep_reg){ fd, handle, events, data, false, 0 };
		break;
	case EPOLL_CTL_MOD:
		if (!r) {
			ret = -ENOENT;
			break;
		}
		r->events = events;
		r->data = data;
		r->disabled = false;
		r->fired = 0;
		break;
	case EPOLL_CTL_DEL:
		if (!r) {
			ret = -ENOENT;
			break;
		}
		*r = e->regs[--e->n];
		break;
	default:
		ret = -EINVAL;
	}
	if (!ret)
		e->gen++;
out:
	pthread_mutex_unlock(&ep_lock);
	/* a wait held on the instance now watches another interest list */
	if (!ret)
		wait_epoll_changed(c->tgid, epfd);
	return ret;
}

int ep_snapshot(struct sv_call *c, int epfd, bool track, struct ep_reg **regs, int *epdup,
		unsigned int *gen)
{
	struct ep_reg *out = NULL;
	uint64_t h;
	struct ep *e;
	size_t i;
	int n;

	*regs = NULL;
	if (track) {
		e = ep_get(c, epfd, true, &n);
	} else {
		/* no look at an unknown fd: the hot path of every epoll wait */
		pthread_mutex_lock(&ep_lock);
		e = ep_find(c, epfd);
		n = 0;
	}
	if (!e) {
		pthread_mutex_unlock(&ep_lock);
		return n ? n : -ENOENT;
	}
	for (i = 0; i < e->n;) {
		/* a remote fd closed (last placeholder) leaves the interest list, as in Linux */
		if (sv_fd_remote(c, e->regs[i].vfd, &h) != 1 || h != e->regs[i].handle) {
			e->regs[i] = e->regs[--e->n];
			continue;
		}
		i++;
	}
	n = e->n;
	*gen = e->gen;
	*epdup = dup(e->dup);
	if (n)
		out = malloc(n * sizeof(*out));
	if (*epdup < 0 || (n && !out)) {
		free(out);
		if (*epdup >= 0)
			close(*epdup);
		n = -ENOMEM;
	} else if (n) {
		memcpy(out, e->regs, n * sizeof(*out));
		*regs = out;
	}
	pthread_mutex_unlock(&ep_lock);
	return n;
}

/* The instance @epfd of @tgid, without a look at the file. Called with ep_lock held. */
static struct ep *ep_lookup(pid_t tgid, int epfd)
{
	struct ep *e;

	for (e = ep_list; e; e = e->next)
		if (e->tgid == tgid && e->vfd == epfd)
			return e;
	return NULL;
}

unsigned int ep_gen(pid_t tgid, int epfd)
{
	unsigned int gen;
	struct ep *e;

	pthread_mutex_lock(&ep_lock);
	e = ep_lookup(tgid, epfd);
	gen = e ? e->gen : 0;
	pthread_mutex_unlock(&ep_lock);
	return gen;
}

/* Poll bits: everything but the flags and the error and hang-up that poll reports anyway. */
#define EP_POLL_BITS	0xffffu
#define EP_ALWAYS	(EPOLLERR | EPOLLHUP)

bool ep_reg_live(const struct ep_reg *r, uint32_t *events)
{
	uint32_t asked = r->events & EP_POLL_BITS & ~EP_ALWAYS;

	*events = r->events & EP_POLL_BITS & ~r->fired;
	/* one that asks for nothing but an error or hang-up (events 0) still gets those */
	return !r->disabled && !(r->fired & EP_ALWAYS) && (!asked || (asked & ~r->fired));
}

void ep_fired(pid_t tgid, int epfd, int vfd, uint32_t events)
{
	struct ep_reg *r;
	struct ep *e;

	pthread_mutex_lock(&ep_lock);
	e = ep_lookup(tgid, epfd);
	r = e ? ep_reg_find(e, vfd) : NULL;
	if (r && (r->events & EPOLLONESHOT))
		r->disabled = true;
	else if (r && (r->events & EPOLLET))
		r->fired |= events;
	pthread_mutex_unlock(&ep_lock);
}

void ep_unfired(pid_t tgid, int epfd, int vfd, uint64_t handle, uint32_t events)
{
	struct ep_reg *r;
	struct ep *e;
	bool woke = false;

	pthread_mutex_lock(&ep_lock);
	e = ep_lookup(tgid, epfd);
	r = e ? ep_reg_find(e, vfd) : NULL;
	if (r && r->handle == handle && (r->events & EPOLLONESHOT) && r->disabled) {
		r->disabled = false;
		woke = true;
	} else if (r && r->handle == handle && (r->fired & events)) {
		r->fired &= ~events;
		woke = true;
	}
	if (woke)
		e->gen++;
	pthread_mutex_unlock(&ep_lock);
	if (woke)
		wait_epoll_changed(tgid, epfd);
}

/* Cap on the events kept per instance: far above any wait's (one lost answer's) count. */
#define EP_STASH_MAX	65536

void ep_stash(pid_t tgid, int epfd, const struct epoll_event *ev, int n)
{
	struct epoll_event *m;
	struct ep *e;
	int lost = n;

	pthread_mutex_lock(&ep_lock);
	e = ep_lookup(tgid, epfd);
	if (e && e->nstash + n <= EP_STASH_MAX) {
		m = realloc(e->stash, (e->nstash + n) * sizeof(*m));
		if (m) {
			memcpy(m + e->nstash, ev, n * sizeof(*m));
			e->stash = m;
			if (!e->nstash)
				__atomic_add_fetch(&ep_nstashed, 1, __ATOMIC_RELAXED);
			e->nstash += n;
			e->gen++;
			lost = 0;
		}
	}
	pthread_mutex_unlock(&ep_lock);
	if (lost)
		pr_warn("pid %d: %d epoll event(s) of fd %d lost with an answer that did not arrive\n",
			tgid, lost, epfd);
	else
		wait_epoll_changed(tgid, epfd);
}

bool ep_stashed(pid_t tgid, int epfd)
{
	struct ep *e;
	bool ret;

	if (!__atomic_load_n(&ep_nstashed, __ATOMIC_RELAXED))
		return false;
	pthread_mutex_lock(&ep_lock);
	e = ep_lookup(tgid, epfd);
	ret = e && e->nstash;
	pthread_mutex_unlock(&ep_lock);
	return ret;
}

/*
 * The data of the registrations of the epoll instance @epcopy, from
 * /proc/self/fdinfo, in *@data (caller frees); how many, or -1 when that
 * cannot be told.
 */
static int ep_reg_data(int epcopy, uint64_t **data)
{
	uint64_t *v = NULL, *nv;
	unsigned long long d;
	int n = 0, cap = 0;
	char line[256], *p;
	FILE *f;

	f = proc_fdinfo(0, epcopy);
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		p = strstr(line, " data:");
		if (strncmp(line, "tfd:", 4) || !p || sscanf(p + 6, "%llx", &d) != 1)
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 16;
			nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				n = -1;
				break;
			}
			v = nv;
		}
		v[n++] = d;
	}
	fclose(f);
	*data = v;
	return n;
}

static bool ep_data_in(uint64_t d, const uint64_t *v, int n)
{
	int i;

	if (n < 0)
		return true;	/* cannot tell: kept */
	for (i = 0; i < n; i++)
		if (v[i] == d)
			return true;
	return false;
}

int ep_stash_take(pid_t tgid, int epfd, int epcopy, struct epoll_event *ev, int max)
{
	uint64_t *data = NULL;
	struct ep *e;
	int i, k = 0, nd;

	if (!__atomic_load_n(&ep_nstashed, __ATOMIC_RELAXED))
		return 0;
	pthread_mutex_lock(&ep_lock);
	e = ep_lookup(tgid, epfd);
	if (e && e->nstash) {
		nd = ep_reg_data(epcopy, &data);
		for (i = 0; i < e->nstash && k < max; i++)
			if (ep_data_in(e->stash[i].data.u64, data, nd))
				ev[k++] = e->stash[i];
		memmove(e->stash, e->stash + i, (e->nstash - i) * sizeof(*e->stash));
		e->nstash -= i;
		if (!e->nstash)
			__atomic_sub_fetch(&ep_nstashed, 1, __ATOMIC_RELAXED);
		free(data);
	}
	pthread_mutex_unlock(&ep_lock);
	return k;
}

void ep_used(pid_t tgid, uint64_t handle, uint32_t events)
{
	uint32_t clear = events ? events | EP_ALWAYS : 0;
	int woke[8], n = 0, i;
	struct ep *e;
	size_t k;

	/* most processes have no epoll instance with remote interest */
	if (!clear || !__atomic_load_n(&ep_list, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&ep_lock);
	for (e = ep_list; e; e = e->next) {
		for (k = 0; e->tgid == tgid && k < e->n; k++) {
			if (e->regs[k].handle != handle || !(e->regs[k].fired & clear))
				continue;
			e->regs[k].fired &= ~clear;
			e->gen++;
			if (n < 8)
				woke[n++] = e->vfd;
		}
	}
	pthread_mutex_unlock(&ep_lock);
	/* another thread's wait on the instance may report it again */
	for (i = 0; i < n; i++)
		wait_epoll_changed(tgid, woke[i]);
}
