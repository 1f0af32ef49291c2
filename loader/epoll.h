/* SPDX-License-Identifier: GPL-2.0 */
/* The monitor's side of epoll instances whose interest list holds remote fds. */
#ifndef RSYS_EPOLL_H
#define RSYS_EPOLL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "supervisor.h"

/*
 * An epoll instance stays a real one in the process and keeps its local
 * fds; its remote fds (placeholders) are never added to it: the monitor
 * keeps them here, per instance, and waits for them with RSYS_OP_POLL.
 */
struct ep_reg {
	int vfd;
	uint64_t handle;
	uint32_t events;	/* EPOLLIN... | EPOLLET | EPOLLONESHOT */
	uint64_t data;		/* the caller's epoll_data, returned as is */
	bool disabled;		/* EPOLLONESHOT fired: silent until EPOLL_CTL_MOD */
	uint32_t fired;		/* EPOLLET: events reported, silent until the fd is used or modified */
};

/* Is @r to be waited for now, and for which *@events? (ep_fired and ep_used tell.) */
bool ep_reg_live(const struct ep_reg *r, uint32_t *events);

/*
 * EPOLL_CTL_ADD/MOD/DEL of remote @fd (delegate handle @handle) on @epfd of
 * the caller, with Linux's errors (EBADF, EINVAL, EEXIST, ENOENT). 0 or -errno.
 */
int ep_ctl(struct sv_call *c, int epfd, int op, int fd, uint64_t handle, uint32_t events,
	   uint64_t data);

/*
 * The live remote registrations of @epfd, copied to *@regs (caller frees;
 * NULL when none), a monitor copy of the epoll fd in *@epdup (caller
 * closes) and the list's generation in *@gen (ep_gen). Returns how many (0
 * or more), -ENOENT when the monitor does not know the instance (with
 * @track, it does from now on if @epfd is one), or another -errno.
 * Registrations whose fd was closed meanwhile are dropped, as the kernel
 * drops them.
 */
int ep_snapshot(struct sv_call *c, int epfd, bool track, struct ep_reg **regs, int *epdup,
		unsigned int *gen);

/*
 * How many times the interest list of @epfd of @tgid changed (ep_ctl, and
 * ep_used making a registration live again), as ep_snapshot's *@gen: a wait
 * that took its snapshot before a change looks again (wait_epoll_changed).
 */
unsigned int ep_gen(pid_t tgid, int epfd);

/*
 * The registration of @vfd on @epfd of @tgid was reported with @events: an
 * EPOLLONESHOT one is disabled until EPOLL_CTL_MOD; an EPOLLET one is not
 * reported those events again until then or until the program makes a call
 * on that fd that could end them (ep_used), and nothing at all after an
 * error or hang-up. Remote readiness is polled as a level: that call is
 * the edge rsys can see.
 */
void ep_fired(pid_t tgid, int epfd, int vfd, uint32_t events);

/*
 * The events ep_fired() noted for @vfd (remote socket @handle) on @epfd
 * never reached the program (its wait was ended by a signal first): its
 * registration may report them again, and waits held on the instance look
 * again. At worst a reported event comes twice, which an EPOLLET program
 * handles (EAGAIN); not taking it back loses it for good.
 */
void ep_unfired(pid_t tgid, int epfd, int vfd, uint64_t handle, uint32_t events);

/*
 * Local events that the monitor took from instance @epfd of @tgid for an
 * answer that never reached the program (a signal ended its wait first):
 * the kernel gave them up, so they are kept for the instance's next wait,
 * which takes them first (ep_stash_take); held waits on it look again.
 * Where there is no memory for them they are lost, with a warning.
 */
void ep_stash(pid_t tgid, int epfd, const struct epoll_event *ev, int n);

/* Does @epfd of @tgid have kept events? (Cheap when no instance has any.) */
bool ep_stashed(pid_t tgid, int epfd);

/*
 * Up to @max kept events of @epfd of @tgid, moved to @ev; the count. Those
 * whose registration is gone (no registration of the instance, whose copy
 * in the monitor is @epcopy, has their data any more: deleted, or its fd
 * closed) are dropped, as Linux drops a deleted registration's events.
 */
int ep_stash_take(pid_t tgid, int epfd, int epcopy, struct epoll_event *ev, int max);

/*
 * @tgid makes a call on the remote socket @handle that may end its
 * readiness for @events (EPOLLIN for a receive, EPOLLOUT for a send, both
 * for others): its EPOLLET registrations may report them again (and waits
 * held on their instances look again).
 */
void ep_used(pid_t tgid, uint64_t handle, uint32_t events);

#endif
