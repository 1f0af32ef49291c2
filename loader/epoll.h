/* SPDX-License-Identifier: GPL-2.0 */
/* The monitor's side of epoll instances whose interest list holds remote fds. */
#ifndef RSYS_EPOLL_H
#define RSYS_EPOLL_H

#include <stdbool.h>
#include <stdint.h>

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
	bool quiet;		/* EPOLLET fired: silent until the fd is used or modified */
};

/*
 * EPOLL_CTL_ADD/MOD/DEL of remote @fd (delegate handle @handle) on @epfd of
 * the caller, with Linux's errors (EBADF, EINVAL, EEXIST, ENOENT). 0 or -errno.
 */
int ep_ctl(struct sv_call *c, int epfd, int op, int fd, uint64_t handle, uint32_t events,
	   uint64_t data);

/*
 * The live remote registrations of @epfd, copied to *@regs (caller frees),
 * and a monitor copy of the epoll fd in *@epdup (caller closes). Returns how
 * many (0: none, nothing to free), or -errno. Registrations whose fd was
 * closed meanwhile are dropped, as the kernel drops them.
 */
int ep_snapshot(struct sv_call *c, int epfd, struct ep_reg **regs, int *epdup);

/*
 * The registration of @vfd on @epfd of @tgid was reported: an EPOLLONESHOT
 * one is disabled until EPOLL_CTL_MOD; an EPOLLET one stays quiet until
 * then or until the program makes a call on that fd (ep_used). Remote
 * readiness is polled as a level: that call is the edge rsys can see.
 */
void ep_fired(pid_t tgid, int epfd, int vfd);

/* @tgid makes a call on the remote socket @handle: its EPOLLET registrations may fire again. */
void ep_used(pid_t tgid, uint64_t handle);

#endif
