// SPDX-License-Identifier: GPL-2.0
/* Direct mode: the program holds the service domain's real sockets; only the calls that decide where packets go are trapped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/sockios.h>

#include <rsys/sockopt.h>
#include "direct.h"
#include "events.h"
#include "log.h"
#include "procfs.h"
#include "sockcalls.h"

/*
 * Why this is safe (doc/rsys-load.8, DIRECT MODE). The filter traps the
 * calls that can change where packets go; everything else (data, waits,
 * close, dup, accept) runs in the kernel on the real socket. A trapped call
 * is never let through with SECCOMP_USER_NOTIF_FLAG_CONTINUE when its
 * outcome depends on something another thread can still change:
 *  - memory (address, msghdr, control messages, option value): the monitor
 *    copies it once and the call is made on that copy;
 *  - the fd number: another thread may dup2 a service socket onto it after
 *    the check. The monitor takes the file itself (pidfd_getfd) and makes
 *    the call on that file: connect, bind, listen, sends with an address
 *    and options of a service socket go, with the file, to the delegate
 *    (RSYS_F_FD), which applies its egress policy and allowlists to the
 *    copy it was given. sendmsg on a unix socket is made by the monitor on
 *    its copy, with the program's credentials, after checking that no fd of
 *    a service socket (nor a pidfd) is passed with SCM_RIGHTS. Nothing else
 *    is made with the monitor's privileges. Other calls on a local socket
 *    (netlink, and connect, bind, listen, options of unix ones) continue only
 *    where the fd number cannot change under them: the process has one
 *    thread, and no other process shares its fd table (the filter refuses
 *    clone(CLONE_FILES) without CLONE_THREAD). With more threads, connect,
 *    bind, listen and options of unix and netlink sockets, and their sends
 *    that the monitor cannot make, go to a helper that makes them on the
 *    monitor's copy in the program's place, with its ids and none of the
 *    monitor's privileges (local_call).
 *  - register arguments cannot change: an option or ioctl on the allowlist
 *    continues whatever socket the number names by then.
 */

#define D_MAX_ADDR	((socklen_t)sizeof(struct sockaddr_storage))
#define D_MAX_OPT	4096
#define D_MAX_IOV	1024		/* UIO_MAXIOV */
#define D_MAX_LOCAL	(256u * 1024)	/* local sendmsg: bytes per call */
#define D_MAX_FDS	253		/* SCM_MAX_FD */
#define D_POLL_MS	50		/* a blocked local sendmsg checks for a signal this often */

#ifndef SIOCGSTAMP_NEW
#define SIOCGSTAMP_NEW		_IOR(SOCK_IOC_TYPE, 0x06, long long[2])
#define SIOCGSTAMPNS_NEW	_IOR(SOCK_IOC_TYPE, 0x07, long long[2])
#endif

/* One call of a service socket at the delegate. */
struct dcall {
	struct remote_req r;
	struct sv_call *c;
	int ev;				/* trace event (enum rsys_ev_call), -1 for none */
	int flags;			/* send: msg flags (SIGPIPE) */
	uint64_t mmsg_len;		/* sendmmsg: the caller's &msg_len */
	socklen_t alen;			/* the address at the start of buf */
	char *buf;
};

static struct dcall *dcall_new(struct sv_call *c, uint16_t op)
{
	struct dcall *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->c = c;
	d->ev = -1;
	d->r.f.op = op;
	d->r.arg = d;
	d->r.call = c;
	d->r.fd = -1;
	d->r.rfd = -1;
	return d;
}

static void dcall_free(struct dcall *d)
{
	free(d->buf);
	free(d);
}

/* Send @d's request (with the socket @fd if >= 0); the call is answered from @done. */
static enum sv_verdict dcall_submit(struct dcall *d, int fd, remote_done_fn done)
{
	struct sv_call *c = d->c;
	struct sv *sv = c->sv;
	int ret;

	d->r.done = done;
	d->r.has_fd = fd >= 0;
	d->r.fd = fd;
	d->r.payload = d->buf;
	/* Counted first: once sent, the call may be answered (and @c freed) at any time. */
	maps_count_class(sv->maps, RSYS_CLASS_REMOTE, 1);
	ret = remote_submit(sv->remote, &d->r);
	if (ret) {
		dcall_free(d);
		return sv_error(c, -ENETDOWN);
	}
	return SV_PENDING;
}

static int64_t dcall_result(const struct dcall *d)
{
	return d->r.lost ? -ENETDOWN : d->r.f.a[0];
}

static void socket_done(struct remote_req *r)
{
	struct dcall *d = r->arg;
	struct sv_call *c = d->c;
	int64_t ret = dcall_result(d);
	int vfd;

	if (ret >= 0 && r->rfd < 0)
		ret = -EPROTO;
	if (ret < 0) {
		if (r->rfd >= 0)
			close(r->rfd);
		sv_reply(c, ret);
		dcall_free(d);
		return;
	}
	/* The program's reference becomes the only one once ours is closed. */
	vfd = sv_addfd(c, r->rfd, -1, d->flags & SOCK_CLOEXEC ? O_CLOEXEC : 0, true);
	close(r->rfd);
	if (vfd < 0)
		sv_reply(c, vfd);	/* EMFILE; ENOENT: the caller is gone */
	else
		sv_call_free(c);
	dcall_free(d);
}

enum sv_verdict direct_socket(struct sv_call *c)
{
	int domain = c->sys.args[0], type = c->sys.args[1];
	struct dcall *d;

	if (!policy_is_remote_family(c->sv->policy, domain))
		return sv_error(c, -EAFNOSUPPORT);
	d = dcall_new(c, RSYS_OP_SOCKFD);
	if (!d)
		return sv_error(c, -ENOMEM);
	d->r.f.a[0] = domain;
	d->r.f.a[1] = type;
	d->r.f.a[2] = (int)c->sys.args[2];
	d->flags = type;
	return dcall_submit(d, -1, socket_done);
}

/* connect, bind, listen, setsockopt answered: a[0] is the result. */
static void verdict_done(struct remote_req *r)
{
	struct dcall *d = r->arg;
	int64_t ret = dcall_result(d);

	if (d->ev >= 0)
		mon_event_call(d->c, d->ev, 0, d->buf, d->alen, ret, r->lost ? 0 : r->f.a[5], r->lost);
	sv_reply(d->c, ret);
	dcall_free(d);
}

static void send_done(struct remote_req *r)
{
	struct dcall *d = r->arg;
	struct sv_call *c = d->c;
	int64_t ret = dcall_result(d);

	if (d->alen)
		mon_event_call(c, RSYS_EV_SENDTO, 0, d->buf, d->alen, ret, r->lost ? 0 : r->f.a[5],
			       r->lost);
	if (ret == -EPIPE && !(d->flags & MSG_NOSIGNAL))
		sv_signal(c, SIGPIPE);
	if (ret >= 0 && d->mmsg_len) {
		unsigned int len = ret;
		int err = sv_write_mem(c, d->mmsg_len, &len, sizeof(len));

		ret = err ? err : 1;
	}
	sv_reply(c, ret);
	dcall_free(d);
}

/* The family of socket @fd (a copy), or -errno (-ENOTSOCK for another file). */
static int sock_family(int fd)
{
	socklen_t len = sizeof(int);
	int v;

	return getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 ? -errno : v;
}

/* Copy @len bytes at @addr of the caller into a new d->buf of @cap bytes. */
static int dcall_read(struct dcall *d, uint64_t addr, size_t len, size_t cap)
{
	d->buf = malloc(cap ? cap : 1);
	if (!d->buf)
		return -ENOMEM;
	return sv_read_mem(d->c, d->buf, addr, len);
}

/* connect/bind(fd, addr, len) of the service socket @fd. */
static enum sv_verdict svc_addr_call(struct sv_call *c, int fd, uint16_t op, int ev)
{
	int len = (int)c->sys.args[2];
	struct dcall *d;
	int ret;

	if (len < 0 || len > (int)D_MAX_ADDR)
		return sv_error(c, -EINVAL);
	d = dcall_new(c, op);
	if (!d)
		return sv_error(c, -ENOMEM);
	ret = dcall_read(d, c->sys.args[1], len, len);
	if (ret) {
		dcall_free(d);
		return sv_error(c, ret);
	}
	d->r.f.len = len;
	d->alen = len;
	d->ev = ev;
	return dcall_submit(d, fd, verdict_done);
}

static enum sv_verdict svc_listen(struct sv_call *c, int fd)
{
	struct dcall *d = dcall_new(c, RSYS_OP_LISTEN);

	if (!d)
		return sv_error(c, -ENOMEM);
	d->r.f.a[1] = (int)c->sys.args[1];
	d->ev = RSYS_EV_LISTEN;
	return dcall_submit(d, fd, verdict_done);
}

static enum sv_verdict svc_setsockopt(struct sv_call *c, int fd)
{
	int len = (int)c->sys.args[4];
	struct dcall *d;
	int ret;

	if (len < 0 || len > D_MAX_OPT)
		return sv_error(c, -EINVAL);
	d = dcall_new(c, RSYS_OP_SETSOCKOPT);
	if (!d)
		return sv_error(c, -ENOMEM);
	ret = dcall_read(d, c->sys.args[3], len, len);
	if (ret) {
		dcall_free(d);
		return sv_error(c, ret);
	}
	d->r.f.a[1] = (int)c->sys.args[1];
	d->r.f.a[2] = (int)c->sys.args[2];
	d->r.f.len = len;
	return dcall_submit(d, fd, verdict_done);
}

/*
 * The message to send, copied: @iov (@niov of the caller's buffers, read
 * here), the address @addr (@alen) and control messages @ctl (@clen).
 */
struct dmsg {
	uint64_t addr, ctl;
	size_t alen, clen;
	struct iovec *iov;
	size_t niov;
	size_t total;			/* data bytes in the caller's buffers */
};

static int dmsg_iov(struct sv_call *c, struct dmsg *m, uint64_t addr, uint64_t n)
{
	size_t i;
	int ret;

	if (n > D_MAX_IOV)
		return -EMSGSIZE;
	m->iov = calloc(n ? n : 1, sizeof(*m->iov));
	if (!m->iov)
		return -ENOMEM;
	m->niov = n;
	ret = sv_read_mem(c, m->iov, addr, n * sizeof(*m->iov));
	for (i = 0; !ret && i < n; i++) {
		if ((ssize_t)m->iov[i].iov_len < 0 || m->total + m->iov[i].iov_len > SSIZE_MAX)
			return -EINVAL;
		m->total += m->iov[i].iov_len;
	}
	return ret;
}

/* Read the msghdr at @msg into @m. */
static int dmsg_read(struct sv_call *c, struct dmsg *m, uint64_t msg)
{
	struct msghdr h;
	int ret;

	ret = sv_read_mem(c, &h, msg, sizeof(h));
	if (!ret)
		ret = dmsg_iov(c, m, (uintptr_t)h.msg_iov, h.msg_iovlen);
	if (ret)
		return ret;
	if (h.msg_name && h.msg_namelen) {
		if (h.msg_namelen > D_MAX_ADDR)
			return -EINVAL;
		m->addr = (uintptr_t)h.msg_name;
		m->alen = h.msg_namelen;
	}
	if (h.msg_control && h.msg_controllen) {
		if (h.msg_controllen > RSYS_MAX_CONTROL)
			return -ENOBUFS;
		m->ctl = (uintptr_t)h.msg_control;
		m->clen = h.msg_controllen;
	}
	return 0;
}

/*
 * Copy address, control messages and up to @max data bytes of @m into
 * @buf, in this order; the data bytes copied, or -errno.
 */
static ssize_t dmsg_copy(struct sv_call *c, const struct dmsg *m, char *buf, size_t max)
{
	size_t n = m->total < max ? m->total : max, done = 0, i, l;
	int ret;

	ret = sv_read_mem(c, buf, m->addr, m->alen);
	if (!ret)
		ret = sv_read_mem(c, buf + m->alen, m->ctl, m->clen);
	buf += m->alen + m->clen;
	for (i = 0; !ret && i < m->niov && done < n; i++) {
		l = m->iov[i].iov_len < n - done ? m->iov[i].iov_len : n - done;
		ret = sv_read_mem(c, buf + done, (uintptr_t)m->iov[i].iov_base, l);
		done += l;
	}
	return ret ? ret : (ssize_t)done;
}

/* Who makes a local_sendmsg, and how. */
enum ls_kind {
	LS_TCP,		/* the monitor, a TCP send on its copy (the address ignored) */
	LS_UNIX,	/* the monitor with the program's SCM_CREDENTIALS; the helper to a path name */
	LS_HELPER,	/* the helper (a netlink socket's: its rights must be the program's) */
};

static enum sv_verdict local_sendmsg(struct sv_call *c, int fd, struct dmsg *m, int flags,
				     uint64_t mmsg_len, enum ls_kind kind);

static int sock_int(int fd, int name)
{
	socklen_t len = sizeof(int);
	int v;

	return getsockopt(fd, SOL_SOCKET, name, &v, &len) < 0 ? -errno : v;
}

/* The value (the first, for Uid and Gid) of field @name of @c's process's /proc status, or -1. */
static long call_status(struct sv_call *c, const char *name)
{
	const char *const names[] = { name };
	uint64_t v;

	return proc_status(0, c->tgid, names, &v, 1) == 1 ? (long)v : -1;
}

/*
 * TCP ignores a send's address unless it is a fast open (MSG_FASTOPEN, or
 * the deferred connect of TCP_FASTOPEN_CONNECT, whose address connect()
 * gave): without control messages and with plain flags, no round trip to
 * the delegate is needed (sockperf sends so). In a single-threaded process
 * (and not sendmmsg, whose other messages are unread) the kernel makes the
 * call: nothing can swap the fd before it runs, the address it ignores,
 * and the only control messages TCP reads (SOL_SOCKET's mark, which needs
 * CAP_NET_ADMIN over the service domain, priority, timestamps) move no
 * packet elsewhere should shared memory change them after the check; so
 * a blocking send sends everything and a signal ends it as Linux's.
 * Else the monitor sends the copied data on its copy of the socket,
 * without the address (at most 256 KiB, and it may return short).
 */
static bool tcp_plain_send(int fd, const struct dmsg *m, int flags)
{
	const int plain = MSG_DONTWAIT | MSG_NOSIGNAL | MSG_MORE | MSG_EOR | MSG_OOB;

	return !m->clen && !(flags & ~plain) && sock_int(fd, SO_TYPE) == SOCK_STREAM &&
	       sock_int(fd, SO_PROTOCOL) == IPPROTO_TCP;
}

/* A send with an address, control messages or MSG_FASTOPEN on the service socket @fd. */
static enum sv_verdict svc_send(struct sv_call *c, int fd, struct dmsg *m, int flags,
				uint64_t mmsg_len, int stype)
{
	size_t max = RSYS_MAX_PAYLOAD - m->alen - m->clen;
	struct dcall *d;
	ssize_t n;

	if (tcp_plain_send(fd, m, flags) && !mmsg_len && sv_threads(c) == 1)
		return SV_CONTINUE;	/* see tcp_plain_send: the kernel's send is Linux's */
	if (tcp_plain_send(fd, m, flags)) {
		struct dmsg data = { .iov = m->iov, .niov = m->niov, .total = m->total };
		int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);

		if (copy < 0)
			return sv_error(c, -errno);
		return local_sendmsg(c, copy, &data, flags, mmsg_len, LS_TCP);	/* owns copy */
	}
	/* A datagram goes whole or not at all; a stream send may be short. */
	if (stype != SOCK_STREAM && m->total > max)
		return sv_error(c, -EMSGSIZE);
	d = dcall_new(c, RSYS_OP_SEND);
	if (!d || !(d->buf = malloc(RSYS_MAX_PAYLOAD))) {
		free(d);
		return sv_error(c, -ENOMEM);
	}
	n = dmsg_copy(c, m, d->buf, max);
	if (n < 0) {
		dcall_free(d);
		return sv_error(c, n);
	}
	d->r.f.a[1] = flags;
	d->r.f.a[2] = m->alen;
	d->r.f.a[3] = m->clen;
	d->r.f.len = m->alen + m->clen + n;
	d->alen = m->alen;
	d->flags = flags;
	d->mmsg_len = mmsg_len;
	return dcall_submit(d, fd, send_done);
}

/* A pidfd would let its receiver take the program's sockets (pidfd_getfd). */
static bool is_pidfd(int fd)
{
	char link[64];

	if (fd_link(fd, link, sizeof(link)))
		return true;	/* fail closed */
	/* "anon_inode:[pidfd]", or "pidfd:[N]" where pidfs names them */
	return strstr(link, "pidfd") != NULL;
}

/*
 * Replace the program's fd numbers of the SCM_RIGHTS messages in @ctl
 * (@clen bytes, aligned) by the monitor's copies (recorded in @mine, *@nmine).
 * Refused: a socket of a remote family (a service socket must not leave the
 * monitored programs), a pidfd, and SCM_CREDENTIALS (the monitor could claim
 * any). 0 or -errno.
 */
static int local_fds(struct sv_call *c, void *ctl, size_t clen, int *mine, int *nmine)
{
	struct msghdr msg = { .msg_control = ctl, .msg_controllen = clen };
	struct cmsghdr *cm;
	size_t i, n;

	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int *fds = (int *)CMSG_DATA(cm);

		if (cm->cmsg_len < CMSG_LEN(0) || cm->cmsg_len > clen - ((char *)cm - (char *)ctl))
			return -EINVAL;
		if (cm->cmsg_level != SOL_SOCKET)
			continue;
		if (cm->cmsg_type != SCM_RIGHTS) {
			pr_warn("direct mode: sendmsg with control message type %d refused (pid %d)\n",
				cm->cmsg_type, c->tgid);
			return -EPERM;
		}
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			int fd, fam;

			if (*nmine >= D_MAX_FDS)
				return -EINVAL;
			fd = sv_fd_dup(c, fds[i]);
			if (fd < 0)
				return -EBADF;
			mine[(*nmine)++] = fd;
			fam = sock_family(fd);
			if ((fam >= 0 && policy_is_remote_family(c->sv->policy, fam)) || is_pidfd(fd)) {
				pr_warn_few("direct mode: sendmsg passing fd %d refused: a socket of the service domain (or a pidfd) must not leave the program (pid %d)\n",
					    fds[i], c->tgid);
				return -EPERM;
			}
			fds[i] = fd;
		}
	}
	return 0;
}

/* A local sendmsg the monitor makes on its copy: what a thread that may block needs. */
struct lsend {
	struct sv_call *c;
	int fd;				/* the monitor's copy of the socket */
	int flags;
	uint64_t mmsg_len;
	struct msghdr msg;
	struct iovec iov;
	int mine[D_MAX_FDS];		/* copies of the fds passed */
	int nmine;
	union {
		struct cmsghdr align;
		char buf[RSYS_MAX_CONTROL + CMSG_SPACE(sizeof(struct ucred))];
	} ctl;
	struct sockaddr_storage addr;
	char data[];
};

static void lsend_free(struct lsend *l)
{
	int i;

	for (i = 0; i < l->nmine; i++)
		close(l->mine[i]);
	if (l->fd >= 0)
		close(l->fd);
	free(l);
}

static int64_t lsend_once(struct lsend *l)
{
	ssize_t n = sendmsg(l->fd, &l->msg, l->flags | MSG_DONTWAIT | MSG_NOSIGNAL);

	return n < 0 ? -errno : n;
}

/* Our copies go first: once answered, the program's close() must be the last one. */
static void lsend_answer(struct lsend *l, int64_t ret)
{
	struct sv_call *c = l->c;
	uint64_t mmsg_len = l->mmsg_len;
	int flags = l->flags;

	lsend_free(l);
	if (ret == -EPIPE && !(flags & MSG_NOSIGNAL))
		sv_signal(c, SIGPIPE);
	if (ret >= 0 && mmsg_len) {
		unsigned int len = ret;
		int err = sv_write_mem(c, mmsg_len, &len, sizeof(len));

		ret = err ? err : 1;
	}
	sv_reply(c, ret);
}

/* A blocking send that found no room: wait for it here, not in the supervisor. */
static void *lsend_thread(void *arg)
{
	struct lsend *l = arg;
	struct pollfd p = { .fd = l->fd, .events = POLLOUT };
	int64_t ret = -EAGAIN;

	while (ret == -EAGAIN && sv_call_valid(l->c)) {
		poll(&p, 1, D_POLL_MS);
		ret = lsend_once(l);
	}
	lsend_answer(l, ret == -EAGAIN ? -EINTR : ret);
	return NULL;
}

/*
 * connect, bind and listen on a local socket (unix or netlink) of a
 * process with more than one thread. The kernel cannot make them on the
 * program's fd number: another thread could make it name a service socket
 * first (a dup2 after the check). So they are made on the monitor's copy of
 * the file, by a helper process in the caller's place; so are a unix send
 * to a path name, which the monitor's own send (local_sendmsg) would
 * resolve in the wrong root with the wrong rights, and a netlink send of a
 * threaded process, whose rights must be the program's. Forked from the
 * monitor, it leaves every fd but its own, enters the sandbox's user and
 * mount namespaces, takes the caller's root, working directory and umask
 * and becomes root of the sandbox without a capability, as the program is.
 * A path then resolves, and a socket file is created and checked, as for
 * the program (an abstract address is looked up in the socket's own network
 * namespace). The one difference: a peer's SO_PEERCRED says the helper's
 * pid, with the program's uid and gid, and so do a send's credentials
 * (SCM_CREDENTIALS, with SO_PASSCRED). A blocking call waits in the helper;
 * once the call is gone (a signal ended it) the helper is killed.
 */
enum { LC_SOCK = 3, LC_ROOT, LC_CWD, LC_USERNS, LC_MNTNS, LC_RES, LC_NFDS };

/* What the helper writes: LC_DONE and the call's result, or LC_BROKEN, the step that failed and its errno. */
enum { LC_DONE, LC_BROKEN };

struct lcall {
	struct sv_call *c;
	int fd[LC_NFDS];		/* the helper's, by its numbers (LC_RES: the pipe's write end) */
	int res;			/* the pipe's read end */
	struct lsend *send;		/* a send (its fds passed, from LC_NFDS on), else: */
	int nr;
	int backlog;			/* listen; setsockopt: the level */
	int name;			/* setsockopt */
	unsigned int umask;
	socklen_t alen;			/* connect, bind: the address; setsockopt: the value */
	union {
		struct sockaddr_storage addr;
		char opt[D_MAX_OPT];
	};
};

static void lcall_free(struct lcall *l)
{
	int i;

	for (i = LC_SOCK; i < LC_NFDS; i++)
		if (l->fd[i] >= 0)
			close(l->fd[i]);
	if (l->res >= 0)
		close(l->res);
	if (l->send)
		lsend_free(l->send);
	free(l);
}

/* The helper's send: local_fds() put the monitor's copies in SCM_RIGHTS, in order; ours follow LC_NFDS. */
static int lcall_sendmsg(struct lsend *ls)
{
	struct cmsghdr *cm;
	int k = LC_NFDS;
	size_t i;

	for (cm = CMSG_FIRSTHDR(&ls->msg); cm; cm = CMSG_NXTHDR(&ls->msg, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS)
			for (i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				((int *)CMSG_DATA(cm))[i] = k++;
	return sendmsg(LC_SOCK, &ls->msg, ls->flags | MSG_NOSIGNAL);
}

/* The helper, after fork(): system calls only. */
static void __attribute__((noreturn)) lcall_child(const struct lcall *l)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct none[2] = { { 0 } };
	int nmine = l->send ? l->send->nmine : 0, n = LC_NFDS + nmine;
	int tmp[LC_NFDS + D_MAX_FDS], i, msg[3] = { LC_BROKEN }, step = 0;
	long ret;

	/*
	 * Our fds at our numbers (a send's passed fds from LC_NFDS on), the
	 * monitor's closed: first out of the way, then in place.
	 */
	for (i = LC_SOCK; i < n; i++) {
		tmp[i] = fcntl(i < LC_NFDS ? l->fd[i] : l->send->mine[i - LC_NFDS], F_DUPFD, n);
		if (tmp[i] < 0)
			_exit(1);
	}
	for (i = LC_SOCK; i < n; i++)
		if (dup2(tmp[i], i) != i)
			_exit(1);
	if (syscall(SYS_close_range, n, ~0U, 0))
		_exit(1);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* The host's groups (root's) would still open files by group: dropped while we may. */
	if ((++step, !syscall(SYS_setgroups, 0, NULL)) && (++step, !setns(LC_USERNS, CLONE_NEWUSER)) &&
	    (++step, !setns(LC_MNTNS, CLONE_NEWNS)) && (++step, !fchdir(LC_ROOT)) &&
	    (++step, !chroot(".")) && (++step, !fchdir(LC_CWD)) &&
	    (++step, !syscall(SYS_setresgid, 0, 0, 0)) && (++step, !syscall(SYS_setresuid, 0, 0, 0)) &&
	    (++step, !syscall(SYS_capset, &h, none)) && (++step, !prctl(PR_SET_DUMPABLE, 0))) {
		close(LC_ROOT);
		close(LC_CWD);
		close(LC_USERNS);
		close(LC_MNTNS);
		umask(l->umask);
		if (l->send)
			ret = lcall_sendmsg(l->send);
		else if (l->nr == SYS_connect)
			ret = connect(LC_SOCK, (const struct sockaddr *)&l->addr, l->alen);
		else if (l->nr == SYS_bind)
			ret = bind(LC_SOCK, (const struct sockaddr *)&l->addr, l->alen);
		else if (l->nr == SYS_setsockopt)
			ret = setsockopt(LC_SOCK, l->backlog, l->name, l->opt, l->alen);
		else
			ret = listen(LC_SOCK, l->backlog);
		msg[0] = LC_DONE;
		msg[1] = ret < 0 ? -errno : ret;
	} else {
		msg[1] = step;
		msg[2] = errno;
	}
	if (write(LC_RES, msg, sizeof(msg)) != sizeof(msg))
		_exit(1);
	_exit(0);
}

/* Wait for the helper's answer here, not in the supervisor; kill it once the call is gone. */
static void *lcall_thread(void *arg)
{
	struct lcall *l = arg;
	struct pollfd p = { .fd = l->res, .events = POLLIN };
	int ret = -EINTR, n = 0, i, msg[3] = { LC_BROKEN, 0, EPIPE };
	pid_t pid;

	pid = fork();
	if (pid == 0)
		lcall_child(l);
	if (pid < 0) {
		ret = -errno;
		pr_warn("direct mode: cannot fork a helper for a local socket's call: %s\n", err_str(errno));
		goto out;
	}
	/* The helper's fds are its own now: its copy of the socket is the one the call is made on. */
	for (i = LC_SOCK; i < LC_NFDS; i++) {
		close(l->fd[i]);
		l->fd[i] = -1;
	}
	while ((n = poll(&p, 1, D_POLL_MS)) == 0 && sv_call_valid(l->c))
		;
	if (n <= 0) {
		kill(pid, SIGKILL);
	} else if (read(l->res, msg, sizeof(msg)) != sizeof(msg)) {
		msg[0] = LC_BROKEN;	/* EOF: it died before it answered */
	} else if (msg[0] == LC_DONE) {
		ret = msg[1];
	}
	waitpid(pid, NULL, 0);
	if (n > 0 && msg[0] != LC_DONE) {
		pr_warn("direct mode: the helper of a local socket's call could not take pid %d's place (step %d: %s): refused\n",
			l->c->tgid, msg[1], err_str(msg[2]));
		ret = -EPERM;
	}
out:
	if (l->send) {
		lsend_answer(l->send, ret);	/* frees it */
		l->send = NULL;
	} else {
		sv_reply(l->c, ret);
	}
	lcall_free(l);
	return NULL;
}

/* /proc/@tid/@what opened with @flags as fd @i of @l. */
static int lcall_open(struct lcall *l, int i, pid_t tid, const char *what, int flags)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", tid, what);
	l->fd[i] = open(path, flags | O_CLOEXEC);
	return l->fd[i] < 0 ? -errno : 0;
}

/* A helper's call of @c on the local socket @fd (our copy, which this takes), or NULL with *@err. */
static struct lcall *lcall_new(struct sv_call *c, int fd, int *err)
{
	const char *const names[] = { "Umask" };
	struct lcall *l = calloc(1, sizeof(*l));
	uint64_t umask_v = 0;
	int i, ret = 0;

	if (!l) {
		close(fd);
		*err = -ENOMEM;
		return NULL;
	}
	for (i = 0; i < LC_NFDS; i++)
		l->fd[i] = -1;
	l->res = -1;
	l->c = c;
	l->fd[LC_SOCK] = fd;
	l->nr = c->sys.nr;
	if (proc_status(0, c->tid, names, &umask_v, 1) != 1)
		ret = -ESRCH;
	l->umask = umask_v & 0777;
	if (!ret)
		ret = lcall_open(l, LC_ROOT, c->tid, "root", O_PATH | O_DIRECTORY);
	if (!ret)
		ret = lcall_open(l, LC_CWD, c->tid, "cwd", O_PATH | O_DIRECTORY);
	if (!ret)
		ret = lcall_open(l, LC_USERNS, c->tid, "ns/user", O_RDONLY);
	if (!ret)
		ret = lcall_open(l, LC_MNTNS, c->tid, "ns/mnt", O_RDONLY);
	if (ret) {
		lcall_free(l);
		*err = ret;
		return NULL;
	}
	return l;
}

/* Start @l's helper; the call's answer is the helper thread's from here. 0 or -errno (@l freed). */
static int lcall_start(struct lcall *l)
{
	pthread_t t;
	int p[2], ret;

	if (pipe2(p, O_CLOEXEC)) {
		ret = -errno;
		lcall_free(l);
		return ret;
	}
	l->res = p[0];
	l->fd[LC_RES] = p[1];
	ret = pthread_create(&t, NULL, lcall_thread, l);
	if (ret) {
		lcall_free(l);
		return -ret;
	}
	pthread_detach(t);
	return 0;
}

/* connect/bind/listen/setsockopt of @c on the local socket @fd (our copy, which this takes). */
static enum sv_verdict local_call(struct sv_call *c, int fd)
{
	const __u64 *a = c->sys.args;
	int ret = 0, len = (int)a[2];
	struct lcall *l = lcall_new(c, fd, &ret);

	if (!l)
		return sv_error(c, ret);
	l->backlog = (int)a[1];
	if (l->nr == SYS_setsockopt) {
		/* At most D_MAX_OPT bytes of value, as for a service socket (svc_setsockopt). */
		len = (int)a[4];
		l->name = (int)a[2];
		ret = len < 0 || len > D_MAX_OPT ? -EINVAL : 0;
		if (!ret)
			ret = sv_read_mem(c, l->opt, a[3], len);
		l->alen = len;
	} else if (l->nr != SYS_listen) {
		ret = -EINVAL;
		if (len >= 0 && len <= (int)sizeof(l->addr))
			ret = sv_read_mem(c, &l->addr, a[1], len);
		l->alen = len;
	}
	if (!ret)
		ret = lcall_start(l);
	else
		lcall_free(l);
	return ret ? sv_error(c, ret) : SV_PENDING;
}

/*
 * The message goes out with the program's credentials, not the monitor's:
 * a receiver (SO_PASSCRED) sees the pid, uid and gid it would see natively,
 * never root. Appended to the control messages at @clen; their new length.
 */
static size_t local_creds(struct sv_call *c, struct lsend *l, size_t clen)
{
	struct cmsghdr *cm = (struct cmsghdr *)(l->ctl.buf + CMSG_ALIGN(clen));
	long uid = call_status(c, "Uid"), gid = call_status(c, "Gid");
	struct ucred uc = { .pid = c->tgid, .uid = uid, .gid = gid };

	if (uid < 0 || gid < 0)
		return 0;
	memset(cm, 0, CMSG_SPACE(sizeof(uc)));
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_CREDENTIALS;
	cm->cmsg_len = CMSG_LEN(sizeof(uc));
	memcpy(CMSG_DATA(cm), &uc, sizeof(uc));
	return CMSG_ALIGN(clen) + CMSG_SPACE(sizeof(uc));
}

/*
 * sendmsg on the local socket @fd (the monitor's copy, which it owns now)
 * of what the monitor copied and checked: made by the monitor (LS_TCP; a
 * unix socket's, LS_UNIX, with the program's credentials, see local_creds)
 * or by the helper in the program's place (local_call: LS_HELPER, and a
 * unix send to a path name).
 */
static enum sv_verdict local_sendmsg(struct sv_call *c, int fd, struct dmsg *m, int flags,
				     uint64_t mmsg_len, enum ls_kind kind)
{
	size_t max = m->total < D_MAX_LOCAL ? m->total : D_MAX_LOCAL;
	struct lsend *l = calloc(1, sizeof(*l) + (max ? max : 1));
	const struct sockaddr_un *sun;
	int64_t ret;
	size_t clen;
	ssize_t n;
	pthread_t t;
	int fl, err = 0;
	bool helper;

	if (!l) {
		close(fd);
		return sv_error(c, -ENOMEM);
	}
	l->c = c;
	l->fd = fd;
	l->flags = flags;
	l->mmsg_len = mmsg_len;
	ret = sv_read_mem(c, &l->addr, m->addr, m->alen);
	if (!ret)
		ret = sv_read_mem(c, l->ctl.buf, m->ctl, m->clen);
	n = ret ? 0 : dmsg_copy(c, &(struct dmsg){ .iov = m->iov, .niov = m->niov,
						   .total = m->total }, l->data, max);
	if (!ret && n < 0)
		ret = n;
	/* A path name is resolved in the caller's root and with its rights: the helper's to do. */
	sun = (const struct sockaddr_un *)&l->addr;
	helper = kind == LS_HELPER || (kind == LS_UNIX && m->alen > offsetof(struct sockaddr_un, sun_path) &&
				       sun->sun_family == AF_UNIX && sun->sun_path[0]);
	if (!ret)
		ret = local_fds(c, l->ctl.buf, m->clen, l->mine, &l->nmine);
	clen = m->clen;
	if (!ret && kind == LS_UNIX && !helper) {
		clen = local_creds(c, l, m->clen);
		if (!clen)
			ret = -ESRCH;
	}
	if (ret) {
		lsend_free(l);
		return sv_error(c, ret);
	}
	l->iov = (struct iovec){ l->data, n };
	l->msg = (struct msghdr){
		.msg_name = m->alen ? &l->addr : NULL, .msg_namelen = m->alen,
		.msg_iov = &l->iov, .msg_iovlen = 1,
		.msg_control = clen ? l->ctl.buf : NULL, .msg_controllen = clen,
	};
	if (helper) {
		struct lcall *lc = lcall_new(c, fd, &err);

		l->fd = -1;	/* the helper's now */
		if (lc) {
			lc->send = l;
			err = lcall_start(lc);	/* frees @l on failure */
			if (!err)
				return SV_PENDING;
			return sv_error(c, err);
		}
		lsend_free(l);
		return sv_error(c, err);
	}
	ret = lsend_once(l);
	fl = fcntl(fd, F_GETFL);
	if (ret != -EAGAIN || (flags & MSG_DONTWAIT) || fl < 0 || (fl & O_NONBLOCK) ||
	    pthread_create(&t, NULL, lsend_thread, l)) {
		lsend_answer(l, ret);
		return SV_PENDING;	/* answered */
	}
	pthread_detach(t);
	return SV_PENDING;
}

/* The file of the caller's argument 0, or -errno as the call would fail. */
static int arg_file(struct sv_call *c)
{
	int fd = sv_fd_dup(c, (int)c->sys.args[0]);

	return fd == -ENOENT || fd == -EBADF ? -EBADF : fd;
}

/*
 * A call on a local socket (or another file) that the kernel may run only
 * where the fd number cannot change before it does: SV_CONTINUE (@fd
 * closed) in a single-threaded process, else SV_PENDING: the caller goes on
 * with @fd (the helper's, local_call or local_sendmsg, or local_refuse).
 */
static enum sv_verdict local_single(struct sv_call *c, int fd)
{
	if (sv_threads(c) != 1)
		return SV_PENDING;
	close(fd);
	return SV_CONTINUE;
}

/* A call of a multithreaded process on a local socket that no one may make for it. */
static enum sv_verdict local_refuse(struct sv_call *c, int fd)
{
	close(fd);
	pr_warn_few("direct mode: system call %d on a local socket refused in a multithreaded process (pid %d): another thread could swap the fd\n",
		    c->sys.nr, c->tgid);
	return sv_error(c, -EPERM);
}

/* local_single(), else local_refuse(). */
static enum sv_verdict local_continue(struct sv_call *c, int fd)
{
	enum sv_verdict v = local_single(c, fd);

	return v == SV_PENDING ? local_refuse(c, fd) : v;
}

/* The start of every trapped fd call: the file, and its family if a socket. */
static enum sv_verdict fd_call(struct sv_call *c, int *fdp, int *famp)
{
	int fd = arg_file(c);

	if (fd < 0)
		return sv_error(c, fd);
	*famp = sock_family(fd);
	*fdp = fd;
	if (*famp < 0) {	/* -ENOTSOCK included */
		close(fd);
		return sv_error(c, *famp);
	}
	return SV_PENDING;	/* go on */
}

static bool remote_family(struct sv_call *c, int fam)
{
	return policy_is_remote_family(c->sv->policy, fam);
}

/*
 * fd_call() of a call the delegate makes on a service socket: SV_PENDING
 * with the socket in *@fdp to go on with. On a local socket the kernel
 * makes it (local_continue), but connect, bind, listen and options of a
 * unix or netlink socket in a multithreaded process go to a helper
 * (local_call: SV_PENDING with *@fdp -1, the call is the helper's).
 */
static enum sv_verdict svc_fd_call(struct sv_call *c, int *fdp)
{
	enum sv_verdict v;
	int fam;

	v = fd_call(c, fdp, &fam);
	if (v != SV_PENDING || remote_family(c, fam))
		return v;
	if (fam != AF_UNIX && fam != AF_NETLINK)
		return local_continue(c, *fdp);
	v = local_single(c, *fdp);
	if (v != SV_PENDING)
		return v;
	v = local_call(c, *fdp);
	*fdp = -1;
	return v;
}

/* The submit sends a copy of @fd: ours is closed once it is on the wire. */
static enum sv_verdict svc_done_with(int fd, enum sv_verdict v)
{
	close(fd);
	return v;
}

enum sv_verdict direct_connect(struct sv_call *c)
{
	enum sv_verdict v;
	int fd;

	v = svc_fd_call(c, &fd);
	if (v != SV_PENDING || fd < 0)
		return v;
	return svc_done_with(fd, c->sys.nr == SYS_connect ?
			     svc_addr_call(c, fd, RSYS_OP_CONNECT, RSYS_EV_CONNECT) :
			     svc_addr_call(c, fd, RSYS_OP_BIND, RSYS_EV_BIND));
}

enum sv_verdict direct_listen(struct sv_call *c)
{
	enum sv_verdict v;
	int fd;

	v = svc_fd_call(c, &fd);
	if (v != SV_PENDING || fd < 0)
		return v;
	return svc_done_with(fd, svc_listen(c, fd));
}

/* Options whose effect does not depend on the socket: IPV6_V6ONLY is judged at bind, so it goes there. */
static bool direct_sockopt_ok(int level, int name)
{
	return rsys_sockopt_allowed(level, name) && !(level == IPPROTO_IPV6 && name == IPV6_V6ONLY);
}

enum sv_verdict direct_setsockopt(struct sv_call *c)
{
	enum sv_verdict v;
	int fd;

	/*
	 * The filter lets the allowlist through; should one come anyway (the
	 * registers decide), it is harmless on whatever socket the number names.
	 */
	if (direct_sockopt_ok((int)c->sys.args[1], (int)c->sys.args[2]))
		return SV_CONTINUE;
	v = svc_fd_call(c, &fd);
	if (v != SV_PENDING || fd < 0)
		return v;
	return svc_done_with(fd, svc_setsockopt(c, fd));
}

static int sock_type(int fd)
{
	return sock_int(fd, SO_TYPE);
}

enum sv_verdict direct_sendto(struct sv_call *c)
{
	const __u64 *a = c->sys.args;
	struct iovec iov = { (void *)(uintptr_t)a[1], a[2] };
	struct dmsg m = { .iov = &iov, .niov = 1, .total = a[2] };
	enum sv_verdict v;
	int fd, fam;

	v = fd_call(c, &fd, &fam);
	if (v != SV_PENDING)
		return v;
	if (!remote_family(c, fam)) {
		v = local_single(c, fd);
		if (v != SV_PENDING)
			return v;
		/* No control messages, so no fd can leave: the monitor only needs a stable fd number. */
		if ((fam != AF_UNIX && fam != AF_NETLINK) || (uint32_t)a[5] > D_MAX_ADDR)
			return local_refuse(c, fd);
		m.addr = a[4];
		m.alen = a[4] ? (uint32_t)a[5] : 0;
		return local_sendmsg(c, fd, &m, (int)a[3], 0, fam == AF_UNIX ? LS_UNIX : LS_HELPER);
	}
	if ((ssize_t)a[2] < 0 || (uint32_t)a[5] > D_MAX_ADDR) {
		close(fd);
		return sv_error(c, -EINVAL);
	}
	if (a[4]) {
		m.addr = a[4];
		m.alen = (uint32_t)a[5];
	}
	return svc_done_with(fd, svc_send(c, fd, &m, (int)a[3], 0, sock_type(fd)));
}

/* sendmsg of the msghdr at @msg with @flags; sendmmsg: one message, its msg_len at @mmsg_len. */
static enum sv_verdict direct_msghdr(struct sv_call *c, uint64_t msg, int flags, uint64_t mmsg_len)
{
	struct dmsg m = { 0 };
	enum sv_verdict v;
	int fd, fam, ret;

	v = fd_call(c, &fd, &fam);
	if (v != SV_PENDING)
		return v;
	ret = dmsg_read(c, &m, msg);
	if (ret) {
		free(m.iov);
		close(fd);
		return sv_error(c, ret);
	}
	if (fam == AF_UNIX) {
		v = local_sendmsg(c, fd, &m, flags, mmsg_len, LS_UNIX);	/* owns fd */
	} else if (!remote_family(c, fam)) {
		v = local_single(c, fd);
		/* netlink's rights must be the program's: the helper's (its SCM_RIGHTS are checked too) */
		if (v == SV_PENDING)
			v = fam == AF_NETLINK ? local_sendmsg(c, fd, &m, flags, mmsg_len, LS_HELPER) :
						local_refuse(c, fd);
	} else
		v = svc_done_with(fd, svc_send(c, fd, &m, flags, mmsg_len, sock_type(fd)));
	free(m.iov);
	return v;
}

enum sv_verdict direct_sendmsg(struct sv_call *c)
{
	return direct_msghdr(c, c->sys.args[1], c->sys.args[2], 0);
}

enum sv_verdict direct_sendmmsg(struct sv_call *c)
{
	uint64_t vec = c->sys.args[1];

	if (!(unsigned int)c->sys.args[2])
		return sv_error(c, 0);
	return direct_msghdr(c, vec, c->sys.args[3], vec + offsetof(struct mmsghdr, msg_len));
}

/*
 * Socket ioctls (type 0x89) are trapped: those that only read the socket's
 * own state continue; the others (interface and routing tables, ARP) would
 * act on the service domain and are refused on its sockets, as the
 * delegate refuses them in remote mode. Every other ioctl runs untrapped.
 */
enum sv_verdict direct_ioctl(struct sv_call *c)
{
	unsigned int req = c->sys.args[1];
	int fd, fam;

	switch (req) {
	case SIOCATMARK: case SIOCGSTAMP: case SIOCGSTAMPNS: case SIOCOUTQNSD:
	case SIOCGSTAMP_NEW: case SIOCGSTAMPNS_NEW:
		return SV_CONTINUE;
	}
	fd = arg_file(c);
	if (fd < 0)
		return sv_error(c, fd);
	fam = sock_family(fd);
	close(fd);
	if (fam >= 0 && remote_family(c, fam))
		return sv_error(c, -ENOTTY);
	/* Without a capability over the service domain, what a swapped fd could do here only reads. */
	return SV_CONTINUE;
}
