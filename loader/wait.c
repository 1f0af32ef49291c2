// SPDX-License-Identifier: GPL-2.0
/* select/pselect6/poll/ppoll/epoll handlers: all-local calls run in the kernel; split calls are not served yet. */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/select.h>

#include "supervisor.h"

/* Verdict for a call whose fds are @fds[0..n): CONTINUE when none is remote. */
static enum sv_verdict wait_all_local(struct sv_call *c, const int *fds, size_t n)
{
	uint64_t h;
	size_t i;

	for (i = 0; i < n; i++) {
		if (sv_fd_remote(c, fds[i], &h) == 1) {
			c->ret = -ENOSYS;
			return SV_REPLY;
		}
	}
	return SV_CONTINUE;
}

/* select/pselect6: nfds, readfds, writefds, exceptfds. */
static enum sv_verdict wait_fdsets(struct sv_call *c)
{
	int nfds = (int)c->n.data.args[0];
	int fds[FD_SETSIZE];
	fd_set set[3];
	size_t n = 0;
	int i, fd;

	if (nfds <= 0)
		return SV_CONTINUE;
	if (nfds > FD_SETSIZE)
		nfds = FD_SETSIZE;
	for (i = 0; i < 3; i++) {
		FD_ZERO(&set[i]);
		if (c->n.data.args[1 + i] &&
		    sv_read_mem(c, &set[i], c->n.data.args[1 + i], (nfds + 7) / 8))
			return SV_CONTINUE;	/* the kernel reports EFAULT itself */
	}
	for (fd = 0; fd < nfds; fd++)
		if (FD_ISSET(fd, &set[0]) || FD_ISSET(fd, &set[1]) || FD_ISSET(fd, &set[2]))
			fds[n++] = fd;
	return wait_all_local(c, fds, n);
}

/* poll/ppoll: fds, nfds. */
static enum sv_verdict wait_pollfds(struct sv_call *c)
{
	unsigned long nfds = c->n.data.args[1];
	struct pollfd *pfd;
	enum sv_verdict v;
	int *fds;
	size_t i;

	if (!nfds || nfds > 65536)
		return SV_CONTINUE;
	pfd = calloc(nfds, sizeof(*pfd));
	fds = calloc(nfds, sizeof(*fds));
	if (!pfd || !fds) {
		free(pfd);
		free(fds);
		c->ret = -ENOMEM;
		return SV_REPLY;
	}
	if (sv_read_mem(c, pfd, c->n.data.args[0], nfds * sizeof(*pfd))) {
		v = SV_CONTINUE;
	} else {
		for (i = 0; i < nfds; i++)
			fds[i] = pfd[i].fd;
		v = wait_all_local(c, fds, nfds);
	}
	free(pfd);
	free(fds);
	return v;
}

enum sv_verdict wait_select(struct sv_call *c)
{
	return wait_fdsets(c);
}

enum sv_verdict wait_pselect6(struct sv_call *c)
{
	return wait_fdsets(c);
}

enum sv_verdict wait_poll(struct sv_call *c)
{
	return wait_pollfds(c);
}

enum sv_verdict wait_ppoll(struct sv_call *c)
{
	return wait_pollfds(c);
}

/* An epoll instance is local; only adding a remote fd to it is refused for now. */
enum sv_verdict wait_epoll_create1(struct sv_call *c)
{
	(void)c;
	return SV_CONTINUE;
}

enum sv_verdict wait_epoll_ctl(struct sv_call *c)
{
	int fd = (int)c->n.data.args[2];

	return wait_all_local(c, &fd, 1);
}

enum sv_verdict wait_epoll_wait(struct sv_call *c)
{
	(void)c;
	return SV_CONTINUE;
}

enum sv_verdict wait_epoll_pwait(struct sv_call *c)
{
	(void)c;
	return SV_CONTINUE;
}
