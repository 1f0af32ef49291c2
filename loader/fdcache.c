// SPDX-License-Identifier: GPL-2.0
/* Per-process vfd cache and placeholder anchors (fdcache.h); mirrors remote vfds into the BPF fd table. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fdcache.h"

#define FDC_BUCKETS	256
#define FDC_MAX_VFD	65536	/* larger vfds are resolved on every call */

enum fdc_state { FDC_UNKNOWN = 0, FDC_LOCAL, FDC_REMOTE };

struct fdc_ent {
	uint8_t state;
	int flags;		/* FDC_REMOTE: O_NONBLOCK | O_CLOEXEC as published in the BPF table */
	int copy;		/* FDC_LOCAL: the monitor's copy + 1 (0: none), see fdc_local_copy() */
	struct anchor *a;
};

struct sv_proc {
	pid_t tgid;
	int exit_fd;			/* fdc_source.exit_fd, or -errno */
	int refs;			/* calls in progress + 1 while alive; under fdc_lock */
	unsigned int n;			/* entries in ents */
	struct fdc_ent *ents;
	/*
	 * Summary for the all-local fast path of select/poll: how many cached
	 * entries are remote and the lowest of them. It is exact only while
	 * !unsure: after fork (inherited placeholders), execve and calls that
	 * may add a placeholder behind the cache (F_DUPFD, SCM_RIGHTS) the
	 * table is re-read from the source before the summary is trusted again.
	 */
	unsigned int nremote;
	unsigned int lo_remote;		/* UINT_MAX when nremote == 0 */
	bool unsure;
	bool big;			/* a remote vfd >= FDC_MAX_VFD: never sure */
	/*
	 * Placeholders being installed (fdc_install_begin/end): ADDFD with
	 * SECCOMP_ADDFD_FLAG_SEND answers the call as it installs, so another
	 * thread of the program may use the new vfd before the cache hears of
	 * it. Meanwhile no entry is trusted, and a lookup keeps what it found
	 * only if no install began or ended while it looked (@install_gen).
	 */
	unsigned int installing;
	unsigned int install_gen;
	unsigned int unsure_gen;	/* bumped by every fdc_unsure() */
	ino_t *exec_ino;		/* anchors of its remote vfds at its last execve */
	unsigned int n_exec;
	struct sv_proc *next;
};

struct fdc_tid {
	pid_t tid;
	struct sv_proc *p;
	struct fdc_tid *next;
};

static pthread_mutex_t fdc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sv_proc *procs;
static struct fdc_tid *tids[FDC_BUCKETS];
static struct anchor *anchors[FDC_BUCKETS];
static struct rsys_maps *fdc_maps;
static const struct fdc_source *src;

void fdc_init(struct rsys_maps *maps, const struct fdc_source *source)
{
	fdc_maps = maps;
	src = source;
}

struct sv_proc *fdc_proc(pid_t tid, pid_t *tgid, bool *created)
{
	struct fdc_tid *t;
	struct sv_proc *p;
	pid_t g;

	pthread_mutex_lock(&fdc_lock);
	for (t = tids[tid % FDC_BUCKETS]; t; t = t->next) {
		if (t->tid == tid) {
			*tgid = t->p->tgid;
			*created = false;
			t->p->refs++;
			pthread_mutex_unlock(&fdc_lock);
			return t->p;
		}
	}
	pthread_mutex_unlock(&fdc_lock);

	g = src->tgid(tid);
	if (g <= 0)
		return NULL;
	t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	pthread_mutex_lock(&fdc_lock);
	for (p = procs; p; p = p->next)
		if (p->tgid == g)
			break;
	*created = !p;
	if (!p) {
		p = calloc(1, sizeof(*p));
		if (!p) {
			pthread_mutex_unlock(&fdc_lock);
			free(t);
			return NULL;
		}
		p->tgid = g;
		p->refs = 1;
		p->lo_remote = UINT_MAX;
		p->unsure = true;	/* placeholders inherited over fork */
		p->exit_fd = src->exit_fd(g);
		p->next = procs;
		procs = p;
	}
	p->refs++;
	t->tid = tid;
	t->p = p;
	t->next = tids[tid % FDC_BUCKETS];
	tids[tid % FDC_BUCKETS] = t;
	pthread_mutex_unlock(&fdc_lock);
	*tgid = g;
	return p;
}

int fdc_proc_exit_fd(const struct sv_proc *p)
{
	return p->exit_fd >= 0 ? p->exit_fd : -1;
}

/* Close the monitor's copies of local vfds of @p; under fdc_lock or with @p unreachable. */
static void proc_drop_copies(struct sv_proc *p)
{
	unsigned int i;

	for (i = 0; i < p->n; i++) {
		if (p->ents[i].copy) {
			close(p->ents[i].copy - 1);
			p->ents[i].copy = 0;
		}
	}
}

static void proc_free(struct sv_proc *p)
{
	proc_drop_copies(p);
	if (p->exit_fd >= 0)
		close(p->exit_fd);
	free(p->exec_ino);
	free(p->ents);
	free(p);
}

void fdc_proc_put(struct sv_proc *p)
{
	bool last;

	pthread_mutex_lock(&fdc_lock);
	last = --p->refs == 0;
	pthread_mutex_unlock(&fdc_lock);
	if (last)
		proc_free(p);
}

void fdc_proc_exit(struct sv_proc *p)
{
	struct sv_proc **pp;
	struct fdc_tid **tp, *t;
	int i;

	pthread_mutex_lock(&fdc_lock);
	for (pp = &procs; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	for (i = 0; i < FDC_BUCKETS; i++) {
		for (tp = &tids[i]; *tp;) {
			t = *tp;
			if (t->p == p) {
				*tp = t->next;
				free(t);
			} else {
				tp = &t->next;
			}
		}
	}
	pthread_mutex_unlock(&fdc_lock);
	maps_fd_clear(fdc_maps, p->tgid);
	fdc_proc_put(p);
}

static struct fdc_ent *ent_get(struct sv_proc *p, unsigned int vfd, bool grow)
{
	struct fdc_ent *e;
	unsigned int n;

	if (vfd < p->n)
		return &p->ents[vfd];
	if (!grow || vfd >= FDC_MAX_VFD)
		return NULL;
	n = p->n ? p->n : 64;
	while (n <= vfd)
		n *= 2;
	e = realloc(p->ents, n * sizeof(*e));
	if (!e)
		return NULL;
	memset(e + p->n, 0, (n - p->n) * sizeof(*e));
	p->ents = e;
	p->n = n;
	return &p->ents[vfd];
}

/* Set entry @vfd of @p, keeping the remote summary right; under fdc_lock. */
static void ent_set(struct sv_proc *p, unsigned int vfd, enum fdc_state state, struct anchor *a)
{
	struct fdc_ent *e = &p->ents[vfd];
	unsigned int i;

	if (e->state == FDC_REMOTE)
		p->nremote--;
	if (state == FDC_REMOTE)
		p->nremote++;
	if (e->copy) {
		close(e->copy - 1);
		e->copy = 0;
	}
	e->state = state;
	e->a = a;
	if (state == FDC_REMOTE) {
		if (vfd < p->lo_remote)
			p->lo_remote = vfd;
	} else if (vfd == p->lo_remote) {
		p->lo_remote = UINT_MAX;
		for (i = vfd + 1; p->nremote && i < p->n; i++) {
			if (p->ents[i].state == FDC_REMOTE) {
				p->lo_remote = i;
				break;
			}
		}
	}
}

static struct anchor *anchor_by_ino(ino_t ino)
{
	struct anchor *a;

	for (a = anchors[ino % FDC_BUCKETS]; a; a = a->next)
		if (a->ino == ino)
			return a;
	return NULL;
}

static void mirror_set(struct sv_proc *p, int vfd, struct anchor *a, int flags)
{
	struct rsys_fd_val v = {
		.domain = RSYS_DOM_REMOTE,
		.flags = ((flags & O_CLOEXEC) ? RSYS_FD_CLOEXEC : 0) |
			 ((flags & O_NONBLOCK) ? RSYS_FD_NONBLOCK : 0),
		.handle = a->handle,
	};

	maps_fd_set(fdc_maps, p->tgid, vfd, &v);
}

int fdc_fd_flags(pid_t tid, int vfd)
{
	return src->fd_flags(tid, vfd);
}

int fdc_lookup(struct sv_proc *p, pid_t tid, int vfd, uint64_t *handle)
{
	struct fdc_ent *e;
	struct anchor *a = NULL;
	unsigned int gen;
	ino_t ino;
	bool keep;
	int ret;

	if (vfd < 0)
		return 0;
	pthread_mutex_lock(&fdc_lock);
	e = ent_get(p, vfd, false);
	if (e && e->state != FDC_UNKNOWN && !p->installing) {
		ret = e->state == FDC_REMOTE;
		if (ret)
			*handle = e->a->handle;
		pthread_mutex_unlock(&fdc_lock);
		return ret;
	}
	gen = p->install_gen;
	pthread_mutex_unlock(&fdc_lock);

	ret = src->fd_ino(tid, vfd, &ino);
	if (ret < 0)
		return 0;	/* not open: the kernel answers EBADF */

	pthread_mutex_lock(&fdc_lock);
	if (ret == 1)
		a = anchor_by_ino(ino);
	/* An install meanwhile may have put another file at @vfd: what we saw is not kept. */
	keep = !p->installing && p->install_gen == gen;
	e = keep ? ent_get(p, vfd, true) : NULL;
	if (e)
		ent_set(p, vfd, a ? FDC_REMOTE : FDC_LOCAL, a);
	else if (a && keep)
		p->big = true;
	if (a)
		*handle = a->handle;
	pthread_mutex_unlock(&fdc_lock);
	if (a && keep)
		fdc_set_remote(p, vfd, a, fdc_fd_flags(tid, vfd));
	return a != NULL;
}

void fdc_install_begin(struct sv_proc *p)
{
	pthread_mutex_lock(&fdc_lock);
	p->installing++;
	p->install_gen++;
	pthread_mutex_unlock(&fdc_lock);
}

void fdc_install_end(struct sv_proc *p)
{
	pthread_mutex_lock(&fdc_lock);
	p->installing--;
	p->install_gen++;
	pthread_mutex_unlock(&fdc_lock);
}

bool fdc_surely_local(struct sv_proc *p, int vfd)
{
	struct fdc_ent *e;
	bool ret;

	pthread_mutex_lock(&fdc_lock);
	e = vfd >= 0 ? ent_get(p, vfd, false) : NULL;
	if (p->installing)
		ret = false;
	else if (e && e->state != FDC_UNKNOWN)
		ret = e->state == FDC_LOCAL;
	else
		ret = !p->unsure && !p->big;
	pthread_mutex_unlock(&fdc_lock);
	return ret;
}

int fdc_local_copy(struct sv_proc *p, int vfd, bool *owned)
{
	struct fdc_ent *e;
	bool local;
	int fd;

	*owned = false;
	pthread_mutex_lock(&fdc_lock);
	e = vfd >= 0 ? ent_get(p, vfd, false) : NULL;
	local = e && e->state == FDC_LOCAL;
	fd = local && e->copy ? e->copy - 1 : -1;
	pthread_mutex_unlock(&fdc_lock);
	if (fd >= 0)
		return fd;
	fd = src->fd_copy(p->tgid, p->exit_fd, vfd);
	if (fd < 0)
		return fd;
	if (local) {
		pthread_mutex_lock(&fdc_lock);
		/* still the same local vfd with no copy (the supervisor thread is the only writer) */
		e = ent_get(p, vfd, false);
		if (e && e->state == FDC_LOCAL && !e->copy) {
			e->copy = fd + 1;
			pthread_mutex_unlock(&fdc_lock);
			return fd;
		}
		pthread_mutex_unlock(&fdc_lock);
	}
	*owned = true;
	return fd;
}

void fdc_set_remote(struct sv_proc *p, int vfd, struct anchor *a, int flags)
{
	struct fdc_ent *e;

	pthread_mutex_lock(&fdc_lock);
	e = ent_get(p, vfd, true);
	if (e) {
		ent_set(p, vfd, FDC_REMOTE, a);
		e->flags = flags & (O_NONBLOCK | O_CLOEXEC);
	} else {
		p->big = true;
	}
	pthread_mutex_unlock(&fdc_lock);
	mirror_set(p, vfd, a, flags);
}

int fdc_copy(struct sv_proc *p, int from, int to, int flags)
{
	struct fdc_ent *e;
	struct anchor *a = NULL;

	pthread_mutex_lock(&fdc_lock);
	e = ent_get(p, from, false);
	if (e && e->state == FDC_REMOTE)
		a = e->a;
	pthread_mutex_unlock(&fdc_lock);
	if (!a)
		return -ENOENT;
	fdc_set_remote(p, to, a, flags);
	return 0;
}

void fdc_set_flags(struct sv_proc *p, unsigned int lo, unsigned int hi, int set, int clear)
{
	struct anchor *a;
	unsigned int vfd;
	int flags;

	/* Unknown vfds need nothing: their flags are read when they are resolved. */
	for (vfd = lo; vfd <= hi; vfd++) {
		pthread_mutex_lock(&fdc_lock);
		if (vfd >= p->n) {
			pthread_mutex_unlock(&fdc_lock);
			break;
		}
		a = p->ents[vfd].state == FDC_REMOTE ? p->ents[vfd].a : NULL;
		if (a)
			flags = p->ents[vfd].flags = (p->ents[vfd].flags | set) & ~clear;
		pthread_mutex_unlock(&fdc_lock);
		if (a)
			mirror_set(p, vfd, a, flags);
	}
	if (src->set_flags)
		src->set_flags(p->tgid, lo, hi, set, clear);
}

void fdc_forget(struct sv_proc *p, unsigned int lo, unsigned int hi, bool sure)
{
	unsigned int vfd;
	bool remote = false;

	pthread_mutex_lock(&fdc_lock);
	if (hi >= p->n)
		hi = p->n ? p->n - 1 : 0;
	for (vfd = lo; vfd < p->n && vfd <= hi; vfd++) {
		if (p->ents[vfd].state == FDC_REMOTE) {
			maps_fd_del(fdc_maps, p->tgid, vfd);
			remote = true;
		}
		ent_set(p, vfd, FDC_UNKNOWN, NULL);
	}
	/* A remote vfd that may still be open is no longer counted in the summary. */
	if (remote && !sure) {
		p->unsure = true;
		p->unsure_gen++;
	}
	pthread_mutex_unlock(&fdc_lock);
}

/* Remember the anchors of @p's remote vfds (for fdc_exec_closes); under fdc_lock. */
static void proc_note_exec(struct sv_proc *p)
{
	unsigned int vfd, n = 0;
	ino_t *ino;

	free(p->exec_ino);
	p->exec_ino = NULL;
	p->n_exec = 0;
	if (!p->nremote)
		return;
	ino = calloc(p->nremote, sizeof(*ino));
	if (!ino)
		return;		/* they are closed shortly after the exec */
	for (vfd = 0; vfd < p->n && n < p->nremote; vfd++)
		if (p->ents[vfd].state == FDC_REMOTE)
			ino[n++] = p->ents[vfd].a->ino;
	p->exec_ino = ino;
	p->n_exec = n;
}

void fdc_exec(struct sv_proc *p)
{
	pthread_mutex_lock(&fdc_lock);
	proc_note_exec(p);
	proc_drop_copies(p);
	if (p->n)
		memset(p->ents, 0, p->n * sizeof(*p->ents));
	p->nremote = 0;
	p->lo_remote = UINT_MAX;
	p->big = false;
	p->unsure = true;
	p->unsure_gen++;
	pthread_mutex_unlock(&fdc_lock);
	/* Surviving remote vfds are re-published when they are next resolved. */
	maps_fd_clear(fdc_maps, p->tgid);
}

/* True when the last placeholder of @a is gone; under fdc_lock. */
static bool anchor_hung_up(const struct anchor *a)
{
	struct pollfd pfd = { .fd = a->fd, .events = POLLRDHUP };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & (POLLRDHUP | POLLHUP));
}

int fdc_exec_closes(struct sv_proc *p, uint64_t **handles, bool *others)
{
	unsigned int i, n = 0;
	struct anchor *a;
	uint64_t *h;

	*handles = NULL;
	*others = false;
	pthread_mutex_lock(&fdc_lock);
	if (!p->n_exec) {
		pthread_mutex_unlock(&fdc_lock);
		return 0;
	}
	h = calloc(p->n_exec, sizeof(*h));
	for (i = 0; h && i < p->n_exec; i++) {
		a = anchor_by_ino(p->exec_ino[i]);
		if (!a || a->closed) {
			*others = true;
		} else if (anchor_hung_up(a)) {
			a->closed = true;
			h[n++] = a->handle;
		}
	}
	*others |= !h;
	free(p->exec_ino);
	p->exec_ino = NULL;
	p->n_exec = 0;
	pthread_mutex_unlock(&fdc_lock);
	*handles = h;
	return n;
}

void fdc_unsure(struct sv_proc *p)
{
	pthread_mutex_lock(&fdc_lock);
	p->unsure = true;
	p->unsure_gen++;
	pthread_mutex_unlock(&fdc_lock);
}

struct rescan {
	struct sv_proc *p;
	pid_t tid;
};

static void rescan_one(int vfd, void *arg)
{
	struct rescan *r = arg;
	uint64_t h;

	fdc_lookup(r->p, r->tid, vfd, &h);
}

/* Resolve every open vfd of @p (the source's fd_each) so the summary is exact again. */
static void proc_rescan(struct sv_proc *p, pid_t tid)
{
	struct rescan r = { .p = p, .tid = tid };
	unsigned int gen;

	pthread_mutex_lock(&fdc_lock);
	gen = p->unsure_gen;
	pthread_mutex_unlock(&fdc_lock);
	if (src->fd_each(tid, rescan_one, &r))
		return;
	pthread_mutex_lock(&fdc_lock);
	if (p->unsure_gen == gen)
		p->unsure = false;
	pthread_mutex_unlock(&fdc_lock);
}

bool fdc_all_local(struct sv_proc *p, pid_t tid, unsigned int nfds)
{
	bool unsure, ret;

	pthread_mutex_lock(&fdc_lock);
	unsure = p->unsure;
	pthread_mutex_unlock(&fdc_lock);
	if (unsure)
		proc_rescan(p, tid);
	pthread_mutex_lock(&fdc_lock);
	ret = !p->unsure && !p->big && !p->installing && (!p->nremote || p->lo_remote >= nfds);
	pthread_mutex_unlock(&fdc_lock);
	return ret;
}

int fdc_next_remote(struct sv_proc *p, unsigned int lo, unsigned int hi)
{
	unsigned int vfd;
	int ret = -1;

	pthread_mutex_lock(&fdc_lock);
	for (vfd = lo; vfd < p->n && vfd <= hi; vfd++) {
		if (p->ents[vfd].state == FDC_REMOTE) {
			ret = vfd;
			break;
		}
	}
	pthread_mutex_unlock(&fdc_lock);
	return ret;
}

bool fdc_files_shared(struct sv_proc *p)
{
	struct sv_proc *q;
	bool shared = false;

	pthread_mutex_lock(&fdc_lock);
	for (q = procs; q && !shared; q = q->next)
		shared = q != p && src->files_shared(p->tgid, q->tgid);
	pthread_mutex_unlock(&fdc_lock);
	return shared;
}

struct anchor *fdc_anchor_add(uint64_t handle, int fd, ino_t ino)
{
	struct anchor *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->handle = handle;
	a->fd = fd;
	a->ino = ino;
	pthread_mutex_lock(&fdc_lock);
	a->next = anchors[ino % FDC_BUCKETS];
	anchors[ino % FDC_BUCKETS] = a;
	pthread_mutex_unlock(&fdc_lock);
	return a;
}

int fdc_anchor_close_begin(ino_t ino, uint64_t *handle)
{
	struct anchor *a;
	int ret;

	pthread_mutex_lock(&fdc_lock);
	a = anchor_by_ino(ino);
	ret = a && !a->closed;
	if (ret) {
		a->closed = true;
		*handle = a->handle;
	}
	pthread_mutex_unlock(&fdc_lock);
	return ret;
}

bool fdc_anchor_close_end(ino_t ino)
{
	struct anchor *a;
	bool last = true;	/* gone already: the event thread saw the hang-up */

	/* a->fd stays open while a is in the hash (fdc_anchor_del closes it after unlinking). */
	pthread_mutex_lock(&fdc_lock);
	a = anchor_by_ino(ino);
	if (a) {
		last = anchor_hung_up(a);
		if (!last)
			a->closed = false;
	}
	pthread_mutex_unlock(&fdc_lock);
	return last;
}

bool fdc_anchor_del(struct anchor *a)
{
	struct anchor **ap;
	struct sv_proc *p;
	unsigned int vfd;
	bool mine;

	pthread_mutex_lock(&fdc_lock);
	mine = !a->closed;
	for (ap = &anchors[a->ino % FDC_BUCKETS]; *ap; ap = &(*ap)->next) {
		if (*ap == a) {
			*ap = a->next;
			break;
		}
	}
	/* Stale entries (a vfd closed behind our back) must not keep pointing at it. */
	for (p = procs; p; p = p->next) {
		for (vfd = 0; vfd < p->n; vfd++) {
			if (p->ents[vfd].a == a) {
				ent_set(p, vfd, FDC_UNKNOWN, NULL);
				maps_fd_del(fdc_maps, p->tgid, vfd);
			}
		}
	}
	pthread_mutex_unlock(&fdc_lock);
	close(a->fd);
	free(a);
	return mine;
}
