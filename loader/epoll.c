// SPDX-License-Identifier: GPL-2.0
/* Remote interest lists of the trusted processes' epoll instances (epoll.h). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/kcmp.h>

#include "epoll.h"
#include "procfs.h"

/* One epoll instance of one process; identified by its vfd and checked with kcmp(KCMP_FILE). */
struct ep {
	pid_t tgid;
	int vfd;
	int dup;		/* the monitor's copy of the instance */
	struct ep_reg *regs;
	size_t n, cap;
	struct ep *next;
};

static pthread_mutex_t ep_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ep *ep_list;

static void ep_free(struct ep *e)
{
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

int ep_ctl(struct sv_call *c, int epfd, int op, int fd, uint64_t handle, uint32_t events,
	   uint64_t data)
{
	struct ep_reg *r;
	struct ep *e;
	int dup = -1, ret = 0;

	/*
	 * An instance the monitor knows is an epoll fd: the kcmp of ep_find()
	 * proves @epfd is that open file still. Only an unknown one needs a
	 * copy and a look at what it is (4 more syscalls for each call).
	 */
	pthread_mutex_lock(&ep_lock);
	e = ep_find(c, epfd);
	if (!e) {
		pthread_mutex_unlock(&ep_lock);
		dup = sv_fd_dup(c, epfd);
		if (dup < 0)
			return -EBADF;
		if (!is_epoll(dup)) {
			close(dup);
			return -EINVAL;
		}
		pthread_mutex_lock(&ep_lock);
		e = ep_find(c, epfd);	/* another thread of the process may have added it */
	}
	if (fd == epfd) {
		ret = -EINVAL;
		goto out;
	}
	if (!e && op == EPOLL_CTL_ADD) {
		ep_sweep();
		e = calloc(1, sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
		e->tgid = c->tgid;
		e->vfd = epfd;
		e->dup = dup;
		dup = -1;
		e->next = ep_list;
		ep_list = e;
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
		e->regs[e->n++] = (struct ep_reg){ fd, handle, events, data, false, false };
		break;
	case EPOLL_CTL_MOD:
		if (!r) {
			ret = -ENOENT;
			break;
		}
		r->events = events;
		r->data = data;
		r->disabled = false;
		r->quiet = false;
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
out:
	pthread_mutex_unlock(&ep_lock);
	if (dup >= 0)
		close(dup);
	return ret;
}

int ep_snapshot(struct sv_call *c, int epfd, struct ep_reg **regs, int *epdup)
{
	struct ep_reg *out = NULL;
	uint64_t h;
	struct ep *e;
	size_t i;
	int n = 0;

	pthread_mutex_lock(&ep_lock);
	e = ep_find(c, epfd);
	for (i = 0; e && i < e->n;) {
		/* a remote fd closed (last placeholder) leaves the interest list, as in Linux */
		if (sv_fd_remote(c, e->regs[i].vfd, &h) != 1 || h != e->regs[i].handle) {
			e->regs[i] = e->regs[--e->n];
			continue;
		}
		i++;
	}
	if (e && e->n) {
		out = malloc(e->n * sizeof(*out));
		*epdup = dup(e->dup);
		if (!out || *epdup < 0) {
			free(out);
			if (*epdup >= 0)
				close(*epdup);
			n = -ENOMEM;
		} else {
			memcpy(out, e->regs, e->n * sizeof(*out));
			n = e->n;
		}
	}
	pthread_mutex_unlock(&ep_lock);
	*regs = out;
	return n;
}

void ep_fired(pid_t tgid, int epfd, int vfd)
{
	struct ep_reg *r;
	struct ep *e;

	pthread_mutex_lock(&ep_lock);
	for (e = ep_list; e; e = e->next) {
		if (e->tgid == tgid && e->vfd == epfd) {
			r = ep_reg_find(e, vfd);
			if (r && (r->events & EPOLLONESHOT))
				r->disabled = true;
			else if (r && (r->events & EPOLLET))
				r->quiet = true;
			break;
		}
	}
	pthread_mutex_unlock(&ep_lock);
}

void ep_used(pid_t tgid, uint64_t handle)
{
	struct ep *e;
	size_t i;

	/* most processes have no epoll instance with remote interest */
	if (!__atomic_load_n(&ep_list, __ATOMIC_RELAXED))
		return;
	pthread_mutex_lock(&ep_lock);
	for (e = ep_list; e; e = e->next)
		for (i = 0; e->tgid == tgid && i < e->n; i++)
			if (e->regs[i].handle == handle)
				e->regs[i].quiet = false;
	pthread_mutex_unlock(&ep_lock);
}
