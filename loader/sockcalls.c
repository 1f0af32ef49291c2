// SPDX-License-Identifier: GPL-2.0
/* Intercepted socket and fd-table calls: remote ones become delegate requests, local ones run in the kernel. */
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <rsys/limits.h>

#include "deadline.h"
#include "epoll.h"
#include "events.h"
#include "log.h"
#include "procfs.h"
#include "seccomp_compat.h"
#include "sockcalls.h"

#define SOP_MAX_IOV	1024			/* UIO_MAXIOV */
#define SOP_MAX_ADDR	RSYS_MAX_ADDR
#define SOP_MAX_OPT	RSYS_MAX_OPT
#define SOP_MAX_RECV	RSYS_MAX_RECV

/*
 * A running hash of the bytes a send got out, the same whatever the chunks
 * they went in: the restart of an interrupted send (or a retry of it) is
 * recognised by its data.
 */
struct shash {
	uint64_t h;
	uint64_t len;
	uint64_t word;			/* the len % 8 bytes of the word being filled */
};

/* One remote call in flight: the delegate request and what is needed to answer. */
struct sop {
	struct remote_req r;
	struct sv_call *c;		/* NULL once a write-behind send is answered */
	struct sv *sv;
	int lost_err;			/* result when the session dies */
	bool nonblock, cloexec;		/* socket/accept: the new placeholder */
	int flags;			/* send/recv msg flags; F_SETFL/FIONBIO: the new O_NONBLOCK */
	struct iovec *iov;		/* the caller's buffers (target addresses) */
	int niov;
	size_t total, done;
	uint64_t name, namelen;		/* target: peer address out, its length (socklen_t *) */
	uint64_t msg;			/* target struct msghdr * (recvmsg) */
	uint64_t mmsg_len;		/* target &mmsghdr.msg_len (sendmmsg/recvmmsg: one message) */
	socklen_t namecap;
	socklen_t alen;			/* send: destination address at the start of buf */
	size_t clen;			/* send: control messages after it (first chunk); recv: room for them */
	size_t doff;			/* send: where the data of the chunk in flight starts in buf */
	size_t pre;			/* send: data bytes read with the address (send_start) */
	bool want_addr;			/* recv: the reply carries the peer address */
	size_t chunk;			/* recv: bytes asked for in the request in flight */
	char *buf;			/* request payload */
	uint64_t out, outlen;		/* getsockopt / ioctl out pointers */
	uint64_t h;			/* the remote socket */
	int infd;			/* sendfile, splice: the monitor's copy of in_fd, -1 if none */
	int64_t pos;			/* sendfile: where the data was read */
	bool is_accept;			/* a "take" call: accept (else recv) */
	bool orphan;			/* its caller was interrupted: the result goes to the stash */
	bool counted;			/* in the REMOTE class counter already (one per call, not per chunk) */
	bool wb;			/* send: answered before it was made (write-behind) */
	bool stream;			/* send: the last reply said RSYS_SEND_STREAM */
	bool so_error;			/* getsockopt(SOL_SOCKET, SO_ERROR) */
	uint32_t wb_gen;		/* send: hstate.wb_gen at its start */
	int domain, stype, proto;	/* socket: its family, type and protocol, for trace events */
	int64_t rule;			/* the delegate's egress verdict (reply a5, RSYS_RULE_*) */
	struct shash sh;		/* send: of the o->done bytes sent */
	struct sop *hnext;		/* in hstate.inflight / waitq / sending / sendq */
};

/*
 * A call that takes something from a remote socket (recv, accept) whose
 * caller is interrupted by a signal leaves an orphan request behind. What
 * it still brings (data, a connection) is stashed and given to the next
 * take call on that socket, which first waits for the orphans to finish:
 * a program that retries after EINTR (or a restarted call) loses nothing
 * and sees nothing out of order.
 */
struct stash {
	struct stash *next;
	bool conn;			/* an accepted connection (else data) */
	int64_t n;			/* recv: bytes in data; accept: the new handle */
	size_t off;			/* recv: bytes already taken */
	socklen_t alen;
	int msg_flags;
	struct sockaddr_storage addr;
	char data[];
};

/*
 * A blocking send interrupted by a signal fails with EINTR, or is restarted
 * (SA_RESTART), even if some of its chunks went out: the kernel ends the
 * seccomp wait at once and the monitor cannot answer it any more. What such
 * a send got out is kept, per thread, until the thread's next send on the
 * socket: if that one starts with the same bytes (the restarted call, or
 * the retry of a sendall() loop) it is answered with their count and
 * nothing is sent twice; Linux would have returned that count at once.
 */
struct sent {
	struct sent *next;
	pid_t tid;
	size_t n;			/* bytes that went out */
	uint64_t hash;			/* shash_final() of them */
};

#define WB_MAX		(64 * 1024)	/* the largest send answered before it is made */
#define WB_ADDR_MAX	28		/* sizeof(struct sockaddr_in6) */

struct hstate {
	uint64_t handle;
	struct sop *inflight;		/* take requests at the delegate */
	struct sop *waitq;		/* take calls waiting for orphans, in arrival order */
	struct stash *stash;
	struct sop *sending;		/* send calls at the delegate */
	struct sop *sendq;		/* send calls waiting for interrupted or write-behind ones, in arrival order */
	struct sent *sent;
	/* Write-behind (wb_fits): */
	bool wb_ok;			/* the last send said RSYS_SEND_STREAM, nothing changed it since */
	bool wb_close;			/* the last placeholder went with @wb in flight: CLOSE after it */
	uint32_t wb_gen;		/* moves whenever @wb_ok is cleared */
	int wb_err;			/* what a write-behind send failed with, for the next call */
	struct sop *wb;			/* the write-behind send in flight, answered already */
	struct sop *opq;		/* other calls waiting for it, in arrival order */
	int64_t wb_rule;		/* the delegate's verdict on @wb_addr (trace events) */
	socklen_t wb_alen;
	char wb_addr[WB_ADDR_MAX];	/* the destination the sends that set @wb_ok named */
	struct hstate *next;
};

#define HS_BUCKETS	64

static pthread_mutex_t hs_lock = PTHREAD_MUTEX_INITIALIZER;
static struct hstate *hs_tab[HS_BUCKETS];
static unsigned int wb_inflight;	/* write-behind sends in flight, all sockets (under hs_lock) */
static unsigned int wb_unsent;		/* ... whose request is not queued for the delegate yet */
static unsigned long long wb_total;	/* ... made since the start */
static pthread_cond_t wb_cond = PTHREAD_COND_INITIALIZER;	/* wb_unsent went down */

/*
 * The readiness that a call @op may end (epoll.h, ep_used): a receive's, a
 * send's or a connect's; the others (options, names, fcntl) end none.
 */
static uint32_t sop_ends(uint16_t op)
{
	switch (op) {
	case RSYS_OP_RECV:
	case RSYS_OP_ACCEPT:
		return EPOLLIN | EPOLLRDNORM | EPOLLRDBAND | EPOLLPRI | EPOLLRDHUP;
	case RSYS_OP_SEND:
	case RSYS_OP_CONNECT:
		return EPOLLOUT | EPOLLWRNORM | EPOLLWRBAND;
	default:
		return 0;
	}
}

static struct sop *sop_new(struct sv_call *c, uint16_t op, uint64_t h, int lost_err)
{
	struct sop *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->c = c;
	o->sv = c->sv;
	o->h = h;
	o->infd = -1;
	o->lost_err = lost_err;
	o->r.f.op = op;
	o->r.f.a[0] = h;
	o->r.arg = o;
	o->r.call = c;
	ep_used(c->tgid, h, sop_ends(op));
	return o;
}

static void sop_free(struct sop *o)
{
	if (o->infd >= 0)
		close(o->infd);
	free(o->iov);
	free(o->buf);
	free(o);
}

static void sop_finish(struct sop *o, int64_t ret)
{
	sv_reply(o->c, ret);
	sop_free(o);
}

/* Result of a reply: the session's loss maps to the call's natural error. */
static int64_t sop_result(struct sop *o)
{
	return o->r.lost ? o->lost_err : o->r.f.a[0];
}

/*
 * Send @o's request. Forwarded calls are counted here: BPF never sees them
 * as remote because seccomp runs before sys_enter. @o may be gone once sent.
 */
static int sop_send(struct sop *o)
{
	struct sv *sv = o->sv;
	bool first = !o->counted;
	int ret;

	o->counted = true;
	ret = remote_submit(sv->remote, &o->r);
	if (!ret && first)
		maps_count_class(sv->maps, RSYS_CLASS_REMOTE, 1);
	return ret;
}

static bool wb_hold(struct sop *o);

/* Send @o's request; the call is answered from @done. */
static enum sv_verdict sop_submit(struct sop *o, remote_done_fn done)
{
	struct sv_call *c = o->c;

	o->r.done = done;
	if (wb_hold(o))
		return SV_PENDING;
	if (sop_send(o)) {
		c->ret = o->lost_err;
		sop_free(o);
		return SV_REPLY;
	}
	return SV_PENDING;
}

/* Answer the call at once with @err (a value or -errno) and drop @o. */
static enum sv_verdict sop_answer(struct sop *o, int err)
{
	struct sv_call *c = o->c;

	sop_free(o);
	return sv_error(c, err);
}

/* Replies whose a[0] is the whole answer. */
static void sop_done_simple(struct remote_req *r)
{
	struct sop *o = r->arg;

	sop_finish(o, sop_result(o));
}

/* Remote vfd of argument @i: 1 and *@h, or 0 (local: continue). */
static int arg_remote(struct sv_call *c, int i, uint64_t *h)
{
	return sv_fd_remote(c, (int)c->sys.args[i], h);
}

/*
 * Common start of the calls on the remote socket in argument 0 (op @op,
 * failing with @lost_err if the session is lost); NULL with *@v set when
 * the call is answered at once (local fd: continue; no memory).
 */
static struct sop *fd_sop_new(struct sv_call *c, uint16_t op, int lost_err, enum sv_verdict *v)
{
	struct sop *o;
	uint64_t h;

	if (!arg_remote(c, 0, &h)) {
		*v = SV_CONTINUE;
		return NULL;
	}
	o = sop_new(c, op, h, lost_err);
	if (!o)
		*v = sv_error(c, -ENOMEM);
	return o;
}

/*
 * Install a placeholder for the new remote socket @h in the caller and answer
 * the call with its vfd (0 when the front end answers it, SV_ADDFD_LATER);
 * or -errno, the call unanswered, and @h closed with the placeholder unless
 * @keep: then *@kept tells whether @h is still open.
 */
static int sop_install_fd(struct sop *o, uint64_t h, bool keep, bool *kept)
{
	struct sv_call *c = o->c;
	struct anchor *a;
	int fd, vfd;

	*kept = false;
	fd = sv_anchor_new(c->sv, h, o->nonblock, &a);
	if (fd < 0)
		return fd;
	fdc_install_begin(c->proc);
	vfd = sv_addfd(c, fd, -1, o->cloexec ? O_CLOEXEC : 0, true);
	if (vfd >= 0 || vfd == SV_ADDFD_LATER) {
		/* accept: o->h is the listener, o->domain 0 */
		mon_sock_new(h, c->tgid, o->domain, o->stype, o->proto, o->h);
		if (vfd >= 0)
			fdc_set_remote(c->proc, vfd, a, (o->cloexec ? O_CLOEXEC : 0) |
				       (o->nonblock ? O_NONBLOCK : 0));
		else
			fdc_unsure(c->proc);
		fdc_install_end(c->proc);
		/* The placeholder now lives in the process (or the front end) only. */
		close(fd);
		return vfd >= 0 ? vfd : 0;
	}
	fdc_install_end(c->proc);
	/*
	 * With SECCOMP_ADDFD_FLAG_SEND the kernel installs the fd and answers
	 * in one step (seccomp_handle_addfd): on failure the process has no
	 * placeholder. EINPROGRESS/ENOENT: a signal ended the call first (or the
	 * thread is gone), ESRCH: it was killed; else no fd for it (EMFILE).
	 */
	if (keep)
		*kept = sv_anchor_drop(fd, a);
	else
		close(fd);	/* closes the handle */
	return vfd;
}

/* Install a placeholder for the new remote socket @h and answer the call with its vfd. */
static void sop_install(struct sop *o, uint64_t h)
{
	bool kept;
	int vfd = sop_install_fd(o, h, false, &kept);

	if (vfd >= 0) {
		sv_call_free(o->c);
		sop_free(o);
	} else {
		sop_finish(o, vfd);	/* e.g. EMFILE; ENOENT is dropped */
	}
}

static void socket_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t h = sop_result(o);

	if (h < 0)
		sop_finish(o, h);
	else
		sop_install(o, h);
}

enum sv_verdict sys_socket(struct sv_call *c)
{
	int domain = c->sys.args[0], type = c->sys.args[1];
	struct sop *o;

	/* The filter sends only remote families; fail closed should it disagree. */
	if (!policy_is_remote_family(c->sv->policy, domain))
		return sv_error(c, -EAFNOSUPPORT);
	o = sop_new(c, RSYS_OP_SOCKET, domain, -ENETDOWN);
	if (!o)
		return sv_error(c, -ENOMEM);
	o->r.f.a[1] = type;
	o->r.f.a[2] = (int)c->sys.args[2];
	o->domain = domain;
	o->stype = type;
	o->proto = (int)c->sys.args[2];
	o->nonblock = type & SOCK_NONBLOCK;
	o->cloexec = type & SOCK_CLOEXEC;
	return sop_submit(o, socket_done);
}

/* connect/bind/listen answered: the delegate's verdict goes to the trace. */
static void verdict_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int call = r->f.op == RSYS_OP_CONNECT ? RSYS_EV_CONNECT :
		   r->f.op == RSYS_OP_BIND ? RSYS_EV_BIND : RSYS_EV_LISTEN;

	mon_event_call(o->c, call, o->h, o->buf, o->alen, sop_result(o), r->lost ? 0 : r->f.a[5],
		       r->lost);
	sop_finish(o, sop_result(o));
}

/* connect/bind(fd, addr, len): the address travels as payload. */
static enum sv_verdict sys_addr_call(struct sv_call *c, uint16_t op, int lost_err)
{
	int len = (int)c->sys.args[2];
	struct sop *o;
	uint64_t h;
	int ret;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	if (len < 0 || len > (int)SOP_MAX_ADDR)
		return sv_error(c, -EINVAL);
	o = sop_new(c, op, h, lost_err);
	if (!o || !(o->buf = malloc(SOP_MAX_ADDR))) {
		free(o);
		return sv_error(c, -ENOMEM);
	}
	ret = sv_read_mem(c, o->buf, c->sys.args[1], len);
	if (ret) {
		sop_free(o);
		return sv_error(c, ret);
	}
	o->r.f.len = len;
	o->r.payload = o->buf;
	o->alen = len;
	if (op == RSYS_OP_CONNECT)
		sv_on_signal(c, SV_INTR_RESTART);
	return sop_submit(o, verdict_done);
}

enum sv_verdict sys_connect(struct sv_call *c)
{
	return sys_addr_call(c, RSYS_OP_CONNECT, -ECONNRESET);
}

enum sv_verdict sys_bind(struct sv_call *c)
{
	return sys_addr_call(c, RSYS_OP_BIND, -EADDRNOTAVAIL);
}

/* Calls (fd, int a1) answered by a[0]: listen, shutdown. */
static enum sv_verdict sys_int_call(struct sv_call *c, uint16_t op, int lost_err)
{
	enum sv_verdict v;
	struct sop *o = fd_sop_new(c, op, lost_err, &v);

	if (!o)
		return v;
	o->r.f.a[1] = (int)c->sys.args[1];
	return sop_submit(o, op == RSYS_OP_LISTEN ? verdict_done : sop_done_simple);
}

enum sv_verdict sys_listen(struct sv_call *c)
{
	return sys_int_call(c, RSYS_OP_LISTEN, -ENOTCONN);
}

enum sv_verdict sys_shutdown(struct sv_call *c)
{
	return sys_int_call(c, RSYS_OP_SHUTDOWN, -ENOTCONN);
}

/*
 * The pieces of a result that fills a buffer and says its length (names,
 * options): @n bytes of @src at @buf, then *@len at @lenp, as Linux writes
 * them (a fault in the buffer leaves the length unwritten). Two, at @l/@r.
 */
static int with_len_pieces(struct iovec *l, struct iovec *r, uint64_t buf, const void *src,
			   size_t n, uint64_t lenp, const socklen_t *len)
{
	l[0] = (struct iovec){ (void *)src, n };
	r[0] = (struct iovec){ (void *)(uintptr_t)buf, n };
	l[1] = (struct iovec){ (void *)len, sizeof(*len) };
	r[1] = (struct iovec){ (void *)(uintptr_t)lenp, sizeof(*len) };
	return 2;
}

/* Such a result (with_len_pieces) with one check and one write. */
static int put_with_len(struct sv_call *c, uint64_t buf, const void *src, size_t n,
			uint64_t lenp, socklen_t len)
{
	struct iovec l[2], r[2];
	int failed;

	with_len_pieces(l, r, buf, src, n, lenp, &len);
	return sv_write_memv(c, l, r, 2, &failed);
}

/*
 * The pieces of writing a reply's address (@addr, *@len bytes) to the
 * caller's (name, namelen) pair, at @l/@r: two, or none without the pair.
 */
static int name_pieces(const struct sop *o, struct iovec *l, struct iovec *r, const void *addr,
		       const socklen_t *len)
{
	if (!o->namelen)
		return 0;
	return with_len_pieces(l, r, o->name, addr, *len < o->namecap ? *len : o->namecap,
			       o->namelen, len);
}

/* Write the address of a reply (@addr, @len bytes) to the caller's (name, namelen) pair. */
static int put_name(struct sop *o, const void *addr, socklen_t len)
{
	struct iovec l[2], r[2];
	int n = name_pieces(o, l, r, addr, &len), failed;

	return n ? sv_write_memv(o->c, l, r, n, &failed) : 0;
}

/* Read the caller's address buffer size *(socklen_t *)@lenp for a later put_name. */
static int get_namecap(struct sop *o, uint64_t name, uint64_t lenp)
{
	int cap;
	int ret;

	if (!name || !lenp)
		return 0;
	ret = sv_read_mem(o->c, &cap, lenp, sizeof(cap));
	if (ret)
		return ret;
	if (cap < 0)
		return -EINVAL;
	o->name = name;
	o->namelen = lenp;
	o->namecap = cap;
	return 0;
}

static enum sv_verdict take_start(struct sop *o);
static enum sv_verdict recv_submit(struct sop *o);

static void take_answered(struct sop *o, struct stash *keep);
static struct stash *stash_conn(struct sv *sv, uint64_t h, const void *peer, socklen_t plen);

/*
 * Give accept @o's caller the new remote socket @h whose peer is @peer, and
 * answer it (with an error if need be): true if the caller did not get @h,
 * which stays open for the next accept. Linux keeps a connection queued when
 * it has no fd for it or a signal ends the accept, but drops one whose
 * address it cannot write.
 */
static bool accept_give(struct sop *o, uint64_t h, const void *peer, socklen_t plen)
{
	struct sv_call *c = o->c;
	bool kept = false;
	int ret;

	ret = put_name(o, peer, plen);
	if (!ret) {
		mon_event_call(c, RSYS_EV_ACCEPT, o->h, peer, plen, 0, RSYS_RULE_NONE, false);
		ret = sop_install_fd(o, h, true, &kept);
		if (ret >= 0) {
			sv_call_free(c);
			return false;
		}
	} else {
		kept = ret == -ENOENT;	/* not answerable: a signal ended it, or the thread is gone */
		if (!kept)
			remote_post(c->sv->remote, RSYS_OP_CLOSE, h, 0);
	}
	sv_reply(c, ret);	/* fails harmlessly where a signal ended the call */
	return kept;
}

/*
 * Answer accept @o, among its socket's take calls, with the new remote socket
 * @h (or -errno) whose peer is @peer. A connection the caller did not get goes
 * back to the head of the stash, for the restarted accept (which waits behind
 * @o meanwhile). Frees @o.
 */
static void accept_answer(struct sop *o, int64_t h, const void *peer, socklen_t plen)
{
	struct sv *sv = o->c->sv;
	struct stash *keep = NULL;

	if (h < 0)
		sv_reply(o->c, h);
	else if (accept_give(o, h, peer, plen))
		keep = stash_conn(sv, h, peer, plen);
	take_answered(o, keep);
}

enum sv_verdict sys_accept4(struct sv_call *c)
{
	int flags = c->sys.args[3];
	struct sop *o;
	uint64_t h;
	int ret;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	if (flags & ~(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return sv_error(c, -EINVAL);
	o = sop_new(c, RSYS_OP_ACCEPT, h, -ECONNRESET);
	if (!o)
		return sv_error(c, -ENOMEM);
	ret = get_namecap(o, c->sys.args[1], c->sys.args[2]);
	if (ret) {
		sop_free(o);
		return sv_error(c, ret);
	}
	o->r.f.a[1] = flags & SOCK_NONBLOCK;
	o->nonblock = flags & SOCK_NONBLOCK;
	o->cloexec = flags & SOCK_CLOEXEC;
	o->is_accept = true;
	sv_on_signal(c, SV_INTR_RESTART);
	return take_start(o);
}

enum sv_verdict sys_accept(struct sv_call *c)
{
	c->sys.args[3] = 0;
	return sys_accept4(c);
}

/* Read the caller's iovec array at @addr (@n entries) into o->iov. */
static int get_iov(struct sop *o, uint64_t addr, uint64_t n)
{
	size_t i;
	int ret;

	if (n > SOP_MAX_IOV)
		return -EINVAL;
	o->iov = calloc(n ? n : 1, sizeof(*o->iov));
	if (!o->iov)
		return -ENOMEM;
	ret = sv_read_mem(o->c, o->iov, addr, n * sizeof(*o->iov));
	if (ret)
		return ret;
	o->niov = n;
	for (i = 0; i < n; i++) {
		if ((ssize_t)o->iov[i].iov_len < 0 || o->total + o->iov[i].iov_len > SSIZE_MAX)
			return -EINVAL;
		o->total += o->iov[i].iov_len;
	}
	return 0;
}

/* One iovec for read/write/sendto/recvfrom's plain buffer. */
static int set_buf(struct sop *o, uint64_t buf, uint64_t len)
{
	o->iov = calloc(1, sizeof(*o->iov));
	if (!o->iov)
		return -ENOMEM;
	o->iov[0].iov_base = (void *)(uintptr_t)buf;
	o->iov[0].iov_len = len;
	o->niov = 1;
	o->total = len;
	return 0;
}

/* Copy between @buf and the caller's iovecs, from byte @off of the stream, @len bytes. */
static int iov_copy(struct sop *o, char *buf, size_t off, size_t len, bool to_caller)
{
	size_t done = 0, n;
	int i, ret;

	for (i = 0; i < o->niov && done < len; i++) {
		size_t l = o->iov[i].iov_len;
		uint64_t base = (uintptr_t)o->iov[i].iov_base;

		if (off >= l) {
			off -= l;
			continue;
		}
		n = l - off < len - done ? l - off : len - done;
		if (to_caller)
			ret = sv_write_mem(o->c, base + off, buf + done, n);
		else
			ret = sv_read_mem(o->c, buf + done, base + off, n);
		if (ret)
			return ret;
		done += n;
		off = 0;
	}
	return 0;
}

/*
 * Write @dlen bytes of @data to recv @o's one buffer (after the o->done
 * bytes there), then the peer @addr (@alen bytes) and its length to the
 * caller's (name, namelen) if it gave them: in that order, as Linux, with
 * one check and one system call. 0, -EFAULT or -ENOENT (sv_write_memv).
 */
static int recv_put(struct sop *o, const char *data, size_t dlen, const void *addr,
		    socklen_t alen)
{
	struct iovec l[3], r[3];
	int n = 0, failed;

	if (dlen) {
		l[n] = (struct iovec){ (void *)data, dlen };
		r[n++] = (struct iovec){ (char *)o->iov[0].iov_base + o->done, dlen };
	}
	n += name_pieces(o, l + n, r + n, addr, &alen);
	return n ? sv_write_memv(o->c, l, r, n, &failed) : 0;
}

/*
 * Answer recv @o: @n (or -errno), @dlen bytes of @data, the peer @addr
 * (@alen bytes), @msg_flags and recvmsg's control messages (@clen bytes at
 * @ctl, which the delegate received with the caller's own room). @o's call
 * is answered or freed; @o is the caller's to free. True when a signal
 * ended the call before the answer reached it (the call fails with EINTR
 * or is restarted): the data were not received and must stay the socket's.
 */
static bool recv_answer(struct sop *o, int64_t n, const char *data, size_t dlen,
			const void *addr, socklen_t alen, int msg_flags, const void *ctl, size_t clen)
{
	bool peek = o->flags & MSG_PEEK;
	/* read, recv, recvfrom: the data, the address and its length in one write */
	bool one = o->niov == 1 && !o->msg && !o->mmsg_len;
	int ret;

	if (n < 0) {
		sv_reply(o->c, o->done ? (int64_t)o->done : n);
		return false;
	}
	if (dlen > o->total - o->done)
		dlen = o->total - o->done;
	if (one)
		ret = recv_put(o, data, dlen, addr, alen);
	else
		ret = iov_copy(o, (char *)data, o->done, dlen, true);
	n += o->done;
	if (n > 0 && !peek)
		mon_sock_bytes(o->h, n, 0);
	if (!ret && o->msg) {
		struct msghdr m;

		ret = sv_read_mem(o->c, &m, o->msg, sizeof(m));
		if (!ret && m.msg_name) {
			socklen_t l = alen < m.msg_namelen ? alen : m.msg_namelen;

			ret = sv_write_mem(o->c, (uintptr_t)m.msg_name, addr, l);
			m.msg_namelen = alen;
		}
		m.msg_flags = msg_flags;
		if (clen > m.msg_controllen)
			clen = 0;	/* cannot happen: the room was the caller's */
		if (!ret && clen)
			ret = sv_write_mem(o->c, (uintptr_t)m.msg_control, ctl, clen);
		m.msg_controllen = clen;
		if (!ret)
			ret = sv_write_mem(o->c, o->msg, &m, sizeof(m));
	} else if (!ret && !one) {
		ret = put_name(o, addr, alen);
	}
	if (!ret && o->mmsg_len) {
		unsigned int len = n;

		ret = sv_write_mem(o->c, o->mmsg_len, &len, sizeof(len));
		n = 1;
	}
	if (ret == -ENOENT) {
		sv_call_free(o->c);
		return !peek;
	}
	return !sv_reply(o->c, ret ? ret : n) && !ret && !peek;
}

static struct hstate *hs_get(uint64_t h, bool create)
{
	struct hstate *hs;

	for (hs = hs_tab[h % HS_BUCKETS]; hs; hs = hs->next)
		if (hs->handle == h)
			return hs;
	if (!create)
		return NULL;
	hs = calloc(1, sizeof(*hs));
	if (!hs)
		return NULL;
	hs->handle = h;
	hs->next = hs_tab[h % HS_BUCKETS];
	hs_tab[h % HS_BUCKETS] = hs;
	return hs;
}

/* Drop @hs once nothing refers to it. Called with hs_lock held. */
static void hs_put(struct hstate *hs)
{
	struct hstate **pp;

	if (hs->inflight || hs->waitq || hs->stash || hs->sending || hs->sendq || hs->sent ||
	    hs->wb_ok || hs->wb || hs->wb_err || hs->opq)
		return;
	for (pp = &hs_tab[hs->handle % HS_BUCKETS]; *pp; pp = &(*pp)->next) {
		if (*pp == hs) {
			*pp = hs->next;
			break;
		}
	}
	free(hs);
}

static void sop_unlink(struct sop **list, struct sop *o)
{
	for (; *list; list = &(*list)->hnext) {
		if (*list == o) {
			*list = o->hnext;
			return;
		}
	}
}

static void sop_append(struct sop **list, struct sop *o)
{
	while (*list)
		list = &(*list)->hnext;
	o->hnext = NULL;
	*list = o;
}

/*
 * Write-behind. A blocking send on a connected TCP stream (the delegate
 * says so in the reply of a send that went out: RSYS_SEND_STREAM) can only
 * send everything or fail on the connection. The socket's next such send of
 * up to WB_MAX bytes is answered with its length once its bytes are copied,
 * and made at the delegate meanwhile, as the kernel answers a send once the
 * bytes are in the socket's buffer: a request and its response cost one
 * delegate round trip, not two. One is in flight per socket at most; the
 * socket's next send, and any other call on it but a receive, waits for it,
 * and every call but a look (options, names, FIONREAD) ends write-behind
 * until a send says RSYS_SEND_STREAM again. What it failed with goes to the
 * socket's next send, to its next receive that finds nothing (end of
 * file or an error), or to SO_ERROR (so_error_behind): as Linux reports a
 * connection error that comes just after a send. The socket's CLOSE waits
 * for it; one still at the delegate when the program ends is made there
 * all the same (RSYS_SEND_BEHIND, sock_drain).
 */
static bool wb_fits(const struct hstate *hs, const struct sop *o)
{
	/* the socket's only send: @o, at the head of hs->sending */
	return hs->wb_ok && !o->sv->no_write_behind && hs->sending == o && !o->hnext &&
	       !hs->sendq && !hs->sent && !hs->wb_err && !o->clen && !o->mmsg_len &&
	       !(o->flags & ~(MSG_NOSIGNAL | MSG_MORE)) &&
	       o->total && o->total <= WB_MAX &&
	       (!o->alen || (o->alen == hs->wb_alen && !memcmp(o->buf, hs->wb_addr, o->alen)));
}

/* Called with hs_lock held. */
static void wb_end(struct hstate *hs)
{
	hs->wb_ok = false;
	hs->wb_gen++;
}

/* Does call @o on a socket only look? Then it keeps write-behind. */
static bool op_looks(const struct sop *o)
{
	switch (o->r.f.op) {
	case RSYS_OP_GETSOCKOPT:
	case RSYS_OP_GETSOCKNAME:
	case RSYS_OP_GETPEERNAME:
		return true;
	case RSYS_OP_IOCTL:
		return o->r.f.a[1] == FIONREAD;
	default:
		return false;
	}
}

/*
 * The connection error (a positive errno) a write-behind send met and no
 * call reported yet, or 0, reported now: the socket no longer has it.
 * EPIPE is not one the socket keeps: a short send leaves it to the next
 * send. Called with hs_lock held.
 */
static int wb_conn_err_take(struct hstate *hs)
{
	int err = hs->wb_err && hs->wb_err != -EPIPE ? -hs->wb_err : 0;

	if (err)
		hs->wb_err = 0;
	return err;
}

/* A call (not a send or receive) on a socket with a write-behind send in flight waits: true. */
static bool wb_hold(struct sop *o)
{
	struct hstate *hs;
	bool held = false;

	if (o->r.f.op == RSYS_OP_SOCKET)
		return false;
	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, false);
	if (hs) {
		if (!op_looks(o))
			wb_end(hs);
		if (hs->wb) {
			sop_append(&hs->opq, o);
			held = true;
		}
		hs_put(hs);
	}
	pthread_mutex_unlock(&hs_lock);
	return held;
}

/* A stash entry of @dlen bytes of @data from @addr (@alen bytes), or NULL. */
static struct stash *stash_new(const void *data, size_t dlen, const void *addr, size_t alen,
			       int msg_flags)
{
	struct stash *s = calloc(1, sizeof(*s) + dlen);

	if (!s)
		return NULL;
	if (alen > sizeof(s->addr))
		alen = sizeof(s->addr);
	s->n = dlen;
	s->alen = alen;
	s->msg_flags = msg_flags;
	memcpy(s->data, data, dlen);
	memcpy(&s->addr, addr, alen);
	return s;
}

/* A stash entry for the connection @h from @peer, or NULL (then @h is closed). */
static struct stash *stash_conn(struct sv *sv, uint64_t h, const void *peer, socklen_t plen)
{
	struct stash *s = stash_new("", 0, peer, plen, 0);

	if (!s) {
		remote_post(sv->remote, RSYS_OP_CLOSE, h, 0);
		return NULL;
	}
	s->conn = true;
	s->n = h;
	return s;
}

/*
 * Keep what the orphan @o got (@n, reply @r) for the next take call; what
 * a MSG_PEEK left at the delegate is not kept. Called with hs_lock held.
 */
static void stash_push(struct hstate *hs, struct sop *o, int64_t n, const struct remote_req *r)
{
	size_t dlen = 0, alen = r->f.len;
	struct stash *s, **pp;

	if (!o->is_accept) {
		if (o->flags & MSG_PEEK)
			return;
		alen = o->want_addr ? (size_t)r->f.a[1] : 0;
		if (alen > r->f.len)
			alen = r->f.len;
		dlen = r->f.len - alen;
	}
	s = stash_new(r->rpayload, dlen, (const char *)r->rpayload + dlen, alen, r->f.a[2]);
	if (!s) {
		if (o->is_accept)
			remote_post(o->c->sv->remote, RSYS_OP_CLOSE, n, 0);
		return;
	}
	s->conn = o->is_accept;
	if (o->is_accept)
		s->n = n;
	for (pp = &hs->stash; *pp; pp = &(*pp)->next)
		;
	*pp = s;
}

/* The take calls that waited for orphans of @hs, once none is left. Called with hs_lock held. */
static struct sop *take_release(struct hstate *hs)
{
	struct sop *w, *waiting;

	for (w = hs->inflight; w; w = w->hnext)
		if (w->orphan)
			return NULL;
	waiting = hs->waitq;
	hs->waitq = NULL;
	return waiting;
}

static void takes_start(struct sop *waiting)
{
	struct sop *w;

	while ((w = waiting)) {
		struct sv_call *c = w->c;

		waiting = w->hnext;
		if (take_start(w) == SV_REPLY)
			sv_reply(c, c->ret);
	}
}

/*
 * A take call is answered outside hs_lock but stays among its socket's take
 * calls meanwhile, marked as an orphan: a call the kernel restarts after a
 * signal that came before the answer reached the caller waits behind it.
 * End take call @o answered so: @keep (the data or connection it did not
 * deliver, or NULL) goes to the head of the stash, for that call. Frees @o.
 */
static void take_answered(struct sop *o, struct stash *keep)
{
	struct sop *waiting = NULL;
	struct hstate *hs;

	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, keep != NULL);
	if (hs) {
		sop_unlink(&hs->inflight, o);
		if (keep) {
			keep->off = 0;
			keep->next = hs->stash;
			hs->stash = keep;
			keep = NULL;
		}
		waiting = take_release(hs);
		hs_put(hs);
	}
	pthread_mutex_unlock(&hs_lock);
	free(keep);
	sop_free(o);
	takes_start(waiting);
}

static void take_done(struct remote_req *r)
{
	struct sop *o = r->arg, *waiting = NULL;
	int64_t n = sop_result(o);
	struct hstate *hs;
	bool orphan, answering;
	int err;

	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, false);
	/* A call that is gone shows when it is answered (recv_answer): its data stay the socket's. */
	orphan = o->orphan;
	/* A connection error a write-behind send met, for a receive that finds nothing (wb_fits). */
	if (hs && !orphan && !o->is_accept && !r->lost && n <= 0 && (err = wb_conn_err_take(hs)))
		n = -err;
	/* a take call stays in flight while it is answered (take_answered) */
	answering = hs && !orphan;
	if (answering) {
		o->orphan = true;
	} else if (hs) {
		sop_unlink(&hs->inflight, o);
		if (orphan && !r->lost && (o->is_accept ? n >= 0 : n > 0))
			stash_push(hs, o, n, r);
		waiting = take_release(hs);
		hs_put(hs);
	}
	pthread_mutex_unlock(&hs_lock);

	if (orphan) {
		sv_call_free(o->c);
		sop_free(o);
	} else if (o->is_accept) {
		accept_answer(o, n, r->rpayload, r->f.len);
	} else {
		size_t alen = o->want_addr ? (size_t)r->f.a[1] : 0;
		size_t clen = o->clen ? (size_t)r->f.a[4] : 0;
		size_t dlen;

		if (alen > SOP_MAX_ADDR)
			alen = SOP_MAX_ADDR;
		if (clen > o->clen || alen + clen > r->f.len)
			alen = clen = 0;	/* a bad reply: the data only */
		dlen = r->f.len - alen - clen;
		/* MSG_WAITALL larger than one request: the next chunk follows this one. */
		if ((o->flags & MSG_WAITALL) && !(o->flags & MSG_PEEK) && n > 0 &&
		    (size_t)n == o->chunk && dlen == o->chunk && o->done + n < o->total &&
		    !iov_copy(o, (char *)r->rpayload, o->done, dlen, true)) {
			struct sv_call *c = o->c;

			pthread_mutex_lock(&hs_lock);
			if (answering)
				sop_unlink(&hs->inflight, o);
			o->orphan = false;
			pthread_mutex_unlock(&hs_lock);
			o->done += n;
			/* from now on a signal ends it with what came, as Linux's */
			sv_on_signal(c, SV_INTR_OWNER);
			if (sv_call_interrupted(c))
				recv_answer(o, 0, NULL, 0, NULL, 0, 0, NULL, 0);
			else if (recv_submit(o) == SV_REPLY)
				sv_reply(c, c->ret);
		} else {
			struct stash *keep = NULL;

			if (recv_answer(o, n, r->rpayload, dlen, (const char *)r->rpayload + dlen, alen,
					r->f.a[2], (const char *)r->rpayload + dlen + alen, clen))
				keep = stash_new(r->rpayload, dlen, (const char *)r->rpayload + dlen,
						 alen, r->f.a[2]);
			take_answered(o, keep);
		}
	}
	takes_start(waiting);
}

/*
 * Answer take call @o from stash entry @s (a copy, or the entry itself when
 * it was used up); @o is among the socket's take calls meanwhile.
 */
static void take_from_stash(struct sop *o, struct stash *s)
{
	if (o->is_accept) {
		accept_answer(o, s->n, &s->addr, s->alen);
		free(s);
		return;
	}
	if (!recv_answer(o, s->n, s->data, s->n, &s->addr, s->alen, s->msg_flags, NULL, 0)) {
		free(s);
		s = NULL;
	}
	take_answered(o, s);
}

/* Take the answer for @o out of @hs's stash. Called with hs_lock held. */
static struct stash *stash_take(struct hstate *hs, struct sop *o)
{
	struct stash *s = hs->stash, *copy;
	size_t n;

	if (o->is_accept) {
		hs->stash = s->next;
		return s;
	}
	n = s->n - s->off < o->total ? s->n - s->off : o->total;
	copy = malloc(sizeof(*copy) + n);
	if (!copy)
		return NULL;
	*copy = *s;
	copy->n = n;
	memcpy(copy->data, s->data + s->off, n);
	if (!(o->flags & MSG_PEEK)) {
		s->off += n;
		if (s->off == (size_t)s->n) {
			hs->stash = s->next;
			free(s);
		}
	}
	return copy;
}

/*
 * Cancels of orphans, taken under hs_lock and sent once it is released:
 * sending may block (the lock rule, supervisor.c). More orphans than fit
 * are cancelled by the event thread's remote_check_calls() instead.
 */
#define SOP_CANCELS	16

struct cancels {
	uint64_t id[SOP_CANCELS];
	unsigned int n;
};

static void cancels_send(struct remote *rc, const struct cancels *cs)
{
	unsigned int i;

	for (i = 0; i < cs->n; i++)
		remote_cancel_send(rc, cs->id[i]);
}

/*
 * The calls of @list whose caller was interrupted become orphans (their
 * requests' cancels go to @cs). While orphans are still in flight, @o waits
 * on @q behind them, in arrival order: true. Under hs_lock.
 */
static bool queue_behind_orphans(struct remote *rc, struct sop *list, struct sop **q, struct sop *o,
				 struct cancels *cs)
{
	struct sop *p, **pp;
	bool wait = false;

	for (p = list; p; p = p->hnext) {
		if (!p->orphan && !sv_call_valid(p->c)) {
			p->orphan = true;
			if (cs->n < SOP_CANCELS) {
				cs->id[cs->n] = remote_cancel_take(rc, &p->r);
				cs->n += cs->id[cs->n] != 0;
			}
		}
		wait |= p->orphan;
	}
	if (!wait)
		return false;
	for (pp = q; *pp; pp = &(*pp)->hnext)
		;
	o->hnext = NULL;
	*pp = o;
	return true;
}

/* Start take call @o: behind orphans of its socket, from the stash, or at the delegate. */
static enum sv_verdict take_start(struct sop *o)
{
	struct remote *rc = o->c->sv->remote;
	struct cancels cs = { .n = 0 };
	struct stash *s = NULL;
	struct hstate *hs;

	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, true);
	if (!hs) {
		pthread_mutex_unlock(&hs_lock);
		return sop_answer(o, -ENOMEM);
	}
	if (queue_behind_orphans(rc, hs->inflight, &hs->waitq, o, &cs)) {
		pthread_mutex_unlock(&hs_lock);
		cancels_send(rc, &cs);
		return SV_PENDING;
	}
	if (hs->stash) {
		s = stash_take(hs, o);
		if (s) {
			/* answered as one in flight (take_answered) */
			o->orphan = true;
			o->hnext = hs->inflight;
			hs->inflight = o;
		}
		hs_put(hs);
		pthread_mutex_unlock(&hs_lock);
		if (!s)
			return sop_answer(o, -ENOMEM);
		take_from_stash(o, s);
		return SV_PENDING;	/* answered */
	}
	o->hnext = hs->inflight;
	hs->inflight = o;
	o->r.done = take_done;
	pthread_mutex_unlock(&hs_lock);
	if (sop_send(o)) {
		pthread_mutex_lock(&hs_lock);
		sop_unlink(&hs->inflight, o);
		hs_put(hs);
		pthread_mutex_unlock(&hs_lock);
		return sop_answer(o, o->lost_err);
	}
	return SV_PENDING;
}

/*
 * The last placeholder of @h is closed: drop what was stashed for it. False
 * when the CLOSE must wait for a write-behind send, which then sends it.
 */
bool sock_handle_gone(struct sv *sv, uint64_t h)
{
	struct stash *s, *list = NULL;
	struct sent *sent = NULL, *t;
	struct hstate *hs;
	bool close_now = true;

	pthread_mutex_lock(&hs_lock);
	hs = hs_get(h, false);
	if (hs) {
		list = hs->stash;
		hs->stash = NULL;
		sent = hs->sent;
		hs->sent = NULL;
		wb_end(hs);
		hs->wb_err = 0;
		if (hs->wb) {
			hs->wb_close = true;
			close_now = false;
		}
		hs_put(hs);
	}
	pthread_mutex_unlock(&hs_lock);
	mon_sock_gone(h);
	while ((t = sent)) {
		sent = t->next;
		free(t);
	}
	while ((s = list)) {
		list = s->next;
		if (s->conn)
			remote_post(sv->remote, RSYS_OP_CLOSE, s->n, 0);
		free(s);
	}
	return close_now;
}

void sock_drain(int ms)
{
	struct timespec ts;
	unsigned int unsent, left;

	deadline_ms(&ts, ms);
	pthread_mutex_lock(&hs_lock);
	while (wb_unsent && !pthread_cond_timedwait(&wb_cond, &hs_lock, &ts))
		;
	unsent = wb_unsent;
	left = wb_inflight;
	pthread_mutex_unlock(&hs_lock);
	pr_info("%llu sends answered before the delegate made them (write-behind)\n", wb_total);
	if (left > unsent)
		pr_info("%u of them still at the delegate, which makes them after the session (rsys-delegate(8))\n",
			left - unsent);
	if (unsent)
		pr_warn("%u answered sends were not handed to the delegate within %d ms: they are lost\n",
			unsent, ms);
}

/* The request of an answered write-behind send is queued for the delegate, or is never made. */
static void wb_handed(void)
{
	pthread_mutex_lock(&hs_lock);
	wb_unsent--;
	pthread_cond_broadcast(&wb_cond);
	pthread_mutex_unlock(&hs_lock);
}

static enum sv_verdict recv_submit(struct sop *o)
{
	size_t left = o->total - o->done;

	o->chunk = left < SOP_MAX_RECV ? left : SOP_MAX_RECV;
	memset(&o->r.f, 0, sizeof(o->r.f));
	o->r.f.op = RSYS_OP_RECV;
	o->r.f.a[0] = o->h;
	o->r.f.a[1] = o->chunk;
	o->r.f.a[2] = o->flags;
	o->r.f.a[3] = o->want_addr;
	o->r.f.a[4] = o->clen;
	return take_start(o);
}

/* The msg flags of socket call @c, 0 for calls without any (read, connect, accept, ...). */
static int call_msg_flags(const struct sv_call *c)
{
	switch (c->sys.nr) {
	case SYS_recvfrom:
	case SYS_sendto:
	case SYS_recvmmsg:
	case SYS_sendmmsg:
		return c->sys.args[3];
	case SYS_recvmsg:
	case SYS_sendmsg:
		return c->sys.args[2];
	}
	return 0;
}

/*
 * Looked at when a signal comes, not at every call (a /proc read): the
 * flags are those of that moment, not of the call's start as in Linux,
 * which matters only to an F_SETFL racing its own call.
 */
bool sock_call_nonblock(struct sv_call *c)
{
	switch (c->sys.nr) {
	case SYS_connect: case SYS_accept: case SYS_accept4:
	case SYS_read: case SYS_readv: case SYS_recvfrom: case SYS_recvmsg: case SYS_recvmmsg:
	case SYS_write: case SYS_writev: case SYS_sendto: case SYS_sendmsg: case SYS_sendmmsg:
	case SYS_sendfile:
		break;
	default:
		return false;	/* not a socket call (select, poll, ...) */
	}
	if (call_msg_flags(c) & MSG_DONTWAIT)
		return true;
	return fdc_fd_flags(c->tid, (int)c->sys.args[0]) & O_NONBLOCK;
}

/* A signal ends a blocked receive as Linux's: what the delegate already took is stashed. */
static struct sop *recv_new(struct sv_call *c, enum sv_verdict *v)
{
	struct sop *o = fd_sop_new(c, RSYS_OP_RECV, -ECONNRESET, v);

	if (o)
		sv_on_signal(c, SV_INTR_RESTART);
	return o;
}


/* read/readv of no bytes return 0 without looking at a socket (sock_read_iter). */
static enum sv_verdict read_submit(struct sop *o)
{
	return o->total ? recv_submit(o) : sop_answer(o, 0);
}

enum sv_verdict sys_read(struct sv_call *c)
{
	enum sv_verdict v;
	struct sop *o = recv_new(c, &v);
	int ret;

	if (!o)
		return v;
	ret = set_buf(o, c->sys.args[1], c->sys.args[2]);
	return ret ? sop_answer(o, ret) : read_submit(o);
}

enum sv_verdict sys_recvfrom(struct sv_call *c)
{
	enum sv_verdict v;
	struct sop *o = recv_new(c, &v);
	int ret;

	if (!o)
		return v;
	ret = set_buf(o, c->sys.args[1], c->sys.args[2]);
	if (!ret)
		ret = get_namecap(o, c->sys.args[4], c->sys.args[5]);
	if (ret)
		return sop_answer(o, ret);
	o->flags = c->sys.args[3];
	o->want_addr = o->namelen != 0;
	return recv_submit(o);
}

enum sv_verdict sys_readv(struct sv_call *c)
{
	enum sv_verdict v;
	struct sop *o = recv_new(c, &v);
	int ret;

	if (!o)
		return v;
	ret = get_iov(o, c->sys.args[1], c->sys.args[2]);
	return ret ? sop_answer(o, ret) : read_submit(o);
}

/* recvmsg of the msghdr at @msg with @flags. */
static enum sv_verdict recv_msghdr(struct sv_call *c, uint64_t msg, int flags, uint64_t mmsg_len)
{
	enum sv_verdict v;
	struct sop *o = recv_new(c, &v);
	struct msghdr m;
	int ret;

	if (!o)
		return v;
	ret = sv_read_mem(c, &m, msg, sizeof(m));
	if (!ret)
		ret = get_iov(o, (uintptr_t)m.msg_iov, m.msg_iovlen);
	if (ret)
		return sop_answer(o, ret);
	o->msg = msg;
	o->mmsg_len = mmsg_len;
	o->flags = flags;
	o->want_addr = m.msg_name != NULL;
	if (m.msg_control)
		o->clen = m.msg_controllen < RSYS_MAX_CONTROL ? m.msg_controllen : RSYS_MAX_CONTROL;
	return recv_submit(o);
}

/* A local recvmsg may bring placeholders in with SCM_RIGHTS, unseen by the cache. */
static enum sv_verdict recvmsg_local(struct sv_call *c)
{
	fdc_unsure(c->proc);
	return SV_CONTINUE;
}

enum sv_verdict sys_recvmsg(struct sv_call *c)
{
	uint64_t h;

	if (!arg_remote(c, 0, &h))
		return recvmsg_local(c);
	return recv_msghdr(c, c->sys.args[1], c->sys.args[2], 0);
}

/*
 * recvmmsg/sendmmsg on a remote socket move one message per call, which
 * they may (the return value counts messages; callers loop).
 */
enum sv_verdict sys_recvmmsg(struct sv_call *c)
{
	uint64_t vec = c->sys.args[1];
	uint64_t h;

	if (!arg_remote(c, 0, &h))
		return recvmsg_local(c);
	if (!(unsigned int)c->sys.args[2])
		return sv_error(c, 0);
	return recv_msghdr(c, vec, c->sys.args[3] & ~MSG_WAITFORONE,
			   vec + offsetof(struct mmsghdr, msg_len));
}

static uint64_t shash_mix(uint64_t h, uint64_t w)
{
	h ^= w * 0x87c37b91114253d5ULL;
	return (h << 31 | h >> 33) * 0x9e3779b97f4a7c15ULL;
}

static void shash_add(struct shash *sh, const unsigned char *p, size_t n)
{
	uint64_t w;

	for (; n && sh->len % 8; n--, p++) {
		sh->word |= (uint64_t)*p << (8 * (sh->len++ % 8));
		if (!(sh->len % 8)) {
			sh->h = shash_mix(sh->h, sh->word);
			sh->word = 0;
		}
	}
	for (; n >= 8; n -= 8, p += 8, sh->len += 8) {
		memcpy(&w, p, sizeof(w));	/* little-endian, as the bytes above */
		sh->h = shash_mix(sh->h, w);
	}
	for (; n; n--, p++)
		sh->word |= (uint64_t)*p << (8 * (sh->len++ % 8));
}

static uint64_t shash_final(const struct shash *sh)
{
	uint64_t h = shash_mix(shash_mix(sh->h, sh->word), sh->len);

	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ h >> 33;
}

/* What an interrupted send of @tid got out on @hs, or NULL. Called with hs_lock held. */
static struct sent **sent_find(struct hstate *hs, pid_t tid)
{
	struct sent **pp;

	for (pp = &hs->sent; *pp; pp = &(*pp)->next)
		if ((*pp)->tid == tid)
			return pp;
	return NULL;
}

/* Called with hs_lock held. */
static void sent_drop(struct hstate *hs, pid_t tid)
{
	struct sent **pp = sent_find(hs, tid), *t;

	if (pp) {
		t = *pp;
		*pp = t->next;
		free(t);
	}
}

/* Keep what the interrupted send of @o got out. Called with hs_lock held. */
static void sent_push(struct hstate *hs, pid_t tid, const struct sop *o)
{
	struct sent *t;

	sent_drop(hs, tid);
	t = malloc(sizeof(*t));
	if (!t)
		return;		/* its restart sends everything again */
	t->tid = tid;
	t->n = o->done;
	t->hash = shash_final(&o->sh);
	t->next = hs->sent;
	hs->sent = t;
}

/*
 * Did the first @n bytes of @o's data go out already (hash @hash)? 1, 0 or
 * -errno; o->sh then has them. Read through the data part of o->buf, after
 * the address and control messages, before the first chunk is made.
 */
static int send_same_data(struct sop *o, size_t n, uint64_t hash)
{
	size_t max = RSYS_MAX_PAYLOAD - o->alen - o->clen, off, len;
	char *data = o->buf + o->alen + o->clen;
	int ret;

	if (!n || n > o->total)
		return 0;
	memset(&o->sh, 0, sizeof(o->sh));
	for (off = 0; off < n; off += len) {
		len = n - off < max ? n - off : max;
		ret = iov_copy(o, data, off, len, false);
		if (ret)
			return ret;
		shash_add(&o->sh, (unsigned char *)data, len);
	}
	return shash_final(&o->sh) == hash;
}

static bool orphans_in(const struct sop *list)
{
	for (; list; list = list->hnext)
		if (list->orphan)
			return true;
	return false;
}

static enum sv_verdict send_begin(struct sop *o);

/*
 * Answer a send: bytes sent so far, or the error; EPIPE raises SIGPIPE like
 * the kernel does. A reply that finds the caller interrupted keeps what was
 * sent for its restart; the sends that waited for that start.
 */
static void send_finish(struct sop *o, int64_t ret)
{
	struct sv_call *c = o->c;
	pid_t tid = c->tid;
	struct sop *waiting = NULL, *w;
	struct hstate *hs;
	bool answered;

	if (o->done)
		ret = o->done;
	else if (ret == -EINTR && sv_call_interrupted(c))
		ret = -SV_ERESTARTSYS;	/* nothing went out: as a Linux send a signal interrupts */
	else if (ret == -EPIPE && !(o->flags & MSG_NOSIGNAL))
		sv_signal(c, SIGPIPE);
	if (ret > 0)
		mon_sock_bytes(o->h, 0, ret);
	/* A send that names its destination is an egress decision. */
	if (o->alen)
		mon_event_call(c, RSYS_EV_SENDTO, o->h, o->buf, o->alen, ret, o->rule, o->r.lost);
	if (ret >= 0 && o->mmsg_len) {
		unsigned int len = ret;
		int err = sv_write_mem(c, o->mmsg_len, &len, sizeof(len));

		ret = err ? err : 1;
	}
	/* Under hs_lock: the restart finds this send either still sending or in hs->sent. */
	pthread_mutex_lock(&hs_lock);
	answered = sv_reply(c, ret);
	hs = hs_get(o->h, false);
	if (hs) {
		sop_unlink(&hs->sending, o);
		if (!answered && o->done)
			sent_push(hs, tid, o);
		/* All went out on a stream nothing changed since it started: the next may be behind. */
		if (answered && ret == (int64_t)o->total && o->total && o->stream && !o->mmsg_len &&
		    o->wb_gen == hs->wb_gen && o->alen <= WB_ADDR_MAX) {
			hs->wb_ok = true;
			hs->wb_alen = o->alen;
			memcpy(hs->wb_addr, o->buf, o->alen);
			hs->wb_rule = o->rule;
		}
		if (!orphans_in(hs->sending)) {
			waiting = hs->sendq;
			hs->sendq = NULL;
		}
		hs_put(hs);
	}
	pthread_mutex_unlock(&hs_lock);
	sop_free(o);
	while ((w = waiting)) {
		c = w->c;
		waiting = w->hnext;
		sv_verdict_do(c, send_begin(w));
	}
}

static void send_done(struct remote_req *r);

/*
 * Send the next chunk of the caller's data (after o->done bytes); control
 * messages go with the first. @o is answered from send_done.
 */
static void send_next(struct sop *o)
{
	size_t max = RSYS_MAX_PAYLOAD - o->alen - o->clen;
	size_t n = o->total - o->done < max ? o->total - o->done : max;
	int ret;

	if (sv_call_interrupted(o->c)) {
		send_finish(o, -EINTR);
		return;
	}
	o->doff = o->alen + o->clen;
	ret = !o->done && o->pre == n ? 0 : iov_copy(o, o->buf + o->doff, o->done, n, false);
	if (ret) {
		send_finish(o, ret);
		return;
	}
	/* The frame holds the previous chunk's reply. */
	memset(&o->r.f, 0, sizeof(o->r.f));
	o->r.f.op = RSYS_OP_SEND;
	o->r.f.a[0] = o->h;
	o->r.f.a[1] = o->flags;
	o->r.f.a[2] = o->alen;
	o->r.f.a[3] = o->clen;
	o->r.f.len = o->alen + o->clen + n;
	o->r.payload = o->buf;
	o->clen = 0;
	o->r.done = send_done;
	if (sop_send(o))
		send_finish(o, o->lost_err);
}

static void wb_finish(struct sop *o, int64_t n, bool made);

static void send_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t n = sop_result(o);

	if (o->wb) {
		wb_finish(o, n, true);
		return;
	}
	if (!r->lost) {
		o->rule = r->f.a[5];
		o->stream = r->f.a[4] & RSYS_SEND_STREAM;
	}
	if (n < 0) {
		send_finish(o, n);
		return;
	}
	/* the delegate's send took the first n bytes of the chunk in o->buf */
	shash_add(&o->sh, (unsigned char *)o->buf + o->doff, n);
	o->done += n;
	/*
	 * A blocking send sends everything, whatever the delegate's send gave
	 * at a time; on a non-blocking socket the next chunk ends in EAGAIN
	 * and the call returns what was sent, as natively.
	 */
	if (!n || o->done >= o->total || sv_call_interrupted(o->c) || !sv_call_valid(o->c)) {
		send_finish(o, o->done);
		return;
	}
	send_next(o);
}

/*
 * Write-behind send @o (wb_fits, now @hs->wb): copy its bytes, answer it,
 * then send them. A send that cannot be copied is answered as any; one
 * whose answer a signal came before (it fails or restarts) is not made.
 */
static void wb_start(struct sop *o, struct hstate *hs)
{
	struct sv_call *c = o->c;
	int64_t rule;
	bool answered;
	int ret;

	ret = o->pre == o->total ? 0 : iov_copy(o, o->buf + o->alen, 0, o->total, false);
	if (ret) {
		pthread_mutex_lock(&hs_lock);
		hs->wb = NULL;
		wb_inflight--;
		wb_unsent--;
		pthread_cond_broadcast(&wb_cond);
		pthread_mutex_unlock(&hs_lock);
		send_finish(o, ret);
		return;
	}
	pthread_mutex_lock(&hs_lock);
	rule = hs->wb_rule;
	pthread_mutex_unlock(&hs_lock);
	memset(&o->r.f, 0, sizeof(o->r.f));
	o->r.f.op = RSYS_OP_SEND;
	o->r.f.a[0] = o->h;
	o->r.f.a[1] = o->flags;
	o->r.f.a[2] = o->alen;
	o->r.f.a[4] = RSYS_SEND_BEHIND;	/* the session's end does not cancel it */
	o->r.f.len = o->alen + o->total;
	o->r.payload = o->buf;
	o->r.done = send_done;
	o->r.call = NULL;	/* answered: no signal cancels it */
	o->wb = true;
	if (o->alen)
		mon_event_call(c, RSYS_EV_SENDTO, o->h, o->buf, o->alen, o->total, rule, false);
	o->c = NULL;
	if (c->sv->killable) {
		/*
		 * Only the thread's death ends the call now (a signal leaves
		 * a send to its owner, SV_INTR_OWNER, and here it is not
		 * looked at): the bytes go first, so the delegate makes the
		 * send while the program goes on. @o may be gone after.
		 */
		int64_t total = o->total;

		if (sop_send(o))
			wb_finish(o, o->lost_err, true);
		wb_handed();
		sv_reply(c, total);
		return;
	}
	/* Else a signal may end the call before the answer: then no send. */
	answered = sv_reply(c, o->total);
	if (!answered)
		wb_finish(o, 0, false);
	else if (sop_send(o))
		wb_finish(o, o->lost_err, true);
	wb_handed();
}

/*
 * Write-behind send @o ended: @n bytes went out (or -errno), or it was not
 * @made. Bytes it did not get out are the socket's next error; the calls
 * that waited for it go on, then the CLOSE that did.
 */
static void wb_finish(struct sop *o, int64_t n, bool made)
{
	struct sop *sends = NULL, *ops = NULL, *w;
	struct hstate *hs;
	bool close_h = false;

	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, false);
	if (hs) {
		sop_unlink(&hs->sending, o);
		hs->wb = NULL;
		if (made && n < (int64_t)o->total) {
			hs->wb_err = n < 0 ? n : -EPIPE;
			wb_end(hs);
		}
		if (!orphans_in(hs->sending)) {
			sends = hs->sendq;
			hs->sendq = NULL;
		}
		ops = hs->opq;
		hs->opq = NULL;
		close_h = hs->wb_close;
		hs->wb_close = false;
		if (close_h)
			hs->wb_err = 0;
		hs_put(hs);
	}
	wb_inflight--;
	pthread_mutex_unlock(&hs_lock);
	if (made && n > 0)
		mon_sock_bytes(o->h, 0, n);
	while ((w = ops)) {
		ops = w->hnext;
		if (sop_send(w))
			sop_finish(w, w->lost_err);
	}
	while ((w = sends)) {
		struct sv_call *c = w->c;

		sends = w->hnext;
		sv_verdict_do(c, send_begin(w));
	}
	if (close_h)
		remote_post(o->sv->remote, RSYS_OP_CLOSE, o->h, 0);
	sop_free(o);
}

/*
 * Start send @o: behind the interrupted sends of its socket, which are
 * cancelled (their outcome decides this one's); answered at once when it
 * is the restart of its thread's interrupted send; else at the delegate.
 */
static enum sv_verdict send_begin(struct sop *o)
{
	struct remote *rc = o->c->sv->remote;
	pid_t tid = o->c->tid;
	struct sent **tp, t = { 0 };
	struct cancels cs = { .n = 0 };
	struct hstate *hs;
	int same;

	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, true);
	if (!hs) {
		pthread_mutex_unlock(&hs_lock);
		return sop_answer(o, -ENOMEM);
	}
	if (hs->wb) {
		sop_append(&hs->sendq, o);
		pthread_mutex_unlock(&hs_lock);
		return SV_PENDING;
	}
	if (queue_behind_orphans(rc, hs->sending, &hs->sendq, o, &cs)) {
		pthread_mutex_unlock(&hs_lock);
		cancels_send(rc, &cs);
		return SV_PENDING;
	}
	o->hnext = hs->sending;
	hs->sending = o;
	o->wb_gen = hs->wb_gen;
	if (hs->wb_err) {
		/* what the send answered before it was made failed with */
		int err = hs->wb_err;

		hs->wb_err = 0;
		pthread_mutex_unlock(&hs_lock);
		send_finish(o, err);
		return SV_PENDING;
	}
	tp = sent_find(hs, tid);
	if (tp) {
		t = **tp;
	} else if (wb_fits(hs, o)) {
		hs->wb = o;
		wb_inflight++;
		wb_unsent++;
		wb_total++;
		pthread_mutex_unlock(&hs_lock);
		wb_start(o, hs);
		return SV_PENDING;
	}
	pthread_mutex_unlock(&hs_lock);

	if (t.n) {
		same = send_same_data(o, t.n, t.hash);
		if (same >= 0) {
			/* the thread's next send on the socket decides: the record goes */
			pthread_mutex_lock(&hs_lock);
			sent_drop(hs, tid);
			pthread_mutex_unlock(&hs_lock);
		}
		if (same > 0) {
			o->done = t.n;
			send_finish(o, o->done);
			return SV_PENDING;
		}
	}
	send_next(o);
	return SV_PENDING;
}

/*
 * Common part of write/sendto/writev/sendmsg once o->iov is set; @addr/@alen
 * the destination, @ctl/@clen sendmsg's control messages.
 */
static enum sv_verdict send_start(struct sop *o, uint64_t addr, uint64_t alen, uint64_t ctl,
				  uint64_t clen)
{
	size_t max;
	int ret;

	if (addr && alen) {
		if (alen > SOP_MAX_ADDR)
			return sop_answer(o, -EINVAL);
		o->alen = alen;
	}
	if (clen) {
		/* the kernel takes up to optmem_max (20 KiB by default), then ENOBUFS */
		if (clen > RSYS_MAX_CONTROL)
			return sop_answer(o, -ENOBUFS);
		o->clen = clen;
	}
	max = RSYS_MAX_PAYLOAD - o->alen - o->clen;
	o->buf = malloc(o->alen + o->clen + (o->total < max ? o->total : max));
	if (!o->buf)
		return sop_answer(o, -ENOMEM);
	/* sendto's address and all of its data in one read and one check, if they can be */
	if (o->alen && !o->clen && o->niov == 1 && o->total <= max) {
		struct iovec l[2] = { { o->buf, o->alen }, { o->buf + o->alen, o->total } };
		struct iovec r[2] = { { (void *)(uintptr_t)addr, o->alen }, o->iov[0] };

		if (!sv_read_memv(o->c, l, r, 2)) {
			o->pre = o->total;
			return send_begin(o);
		}
	}
	ret = sv_read_mem(o->c, o->buf, addr, o->alen);
	if (!ret)
		ret = sv_read_mem(o->c, o->buf + o->alen, ctl, o->clen);
	if (ret)
		return sop_answer(o, ret);
	return send_begin(o);
}

/*
 * A signal ends a blocked send at its next chunk boundary (the chunk in
 * flight is cancelled at the delegate) with the count already sent, or
 * -ERESTARTSYS when nothing went out: Linux's result (send_finish).
 */
static struct sop *send_new(struct sv_call *c, enum sv_verdict *v)
{
	struct sop *o = fd_sop_new(c, RSYS_OP_SEND, -EPIPE, v);

	if (o)
		sv_on_signal(c, SV_INTR_OWNER);
	return o;
}

enum sv_verdict sys_write(struct sv_call *c)
{
	enum sv_verdict v;
	struct sop *o = send_new(c, &v);
	int ret;

	if (!o)
		return v;
	ret = set_buf(o, c->sys.args[1], c->sys.args[2]);
	return ret ? sop_answer(o, ret) : send_start(o, 0, 0, 0, 0);
}

enum sv_verdict sys_sendto(struct sv_call *c)
{
	enum sv_verdict v;
	struct sop *o = send_new(c, &v);
	int ret;

	if (!o)
		return v;
	ret = set_buf(o, c->sys.args[1], c->sys.args[2]);
	if (ret)
		return sop_answer(o, ret);
	o->flags = c->sys.args[3];
	return send_start(o, c->sys.args[4], (uint32_t)c->sys.args[5], 0, 0);
}

enum sv_verdict sys_writev(struct sv_call *c)
{
	enum sv_verdict v;
	struct sop *o = send_new(c, &v);
	int ret;

	if (!o)
		return v;
	ret = get_iov(o, c->sys.args[1], c->sys.args[2]);
	return ret ? sop_answer(o, ret) : send_start(o, 0, 0, 0, 0);
}

/* sendmsg of the msghdr at @msg with @flags. */
static enum sv_verdict send_msghdr(struct sv_call *c, uint64_t msg, int flags, uint64_t mmsg_len)
{
	enum sv_verdict v;
	struct sop *o = send_new(c, &v);
	struct msghdr m;
	int ret;

	if (!o)
		return v;
	ret = sv_read_mem(c, &m, msg, sizeof(m));
	if (!ret)
		ret = get_iov(o, (uintptr_t)m.msg_iov, m.msg_iovlen);
	if (ret)
		return sop_answer(o, ret);
	o->flags = flags;
	o->mmsg_len = mmsg_len;
	return send_start(o, (uintptr_t)m.msg_name, m.msg_namelen, (uintptr_t)m.msg_control,
			  m.msg_controllen);
}

enum sv_verdict sys_sendmsg(struct sv_call *c)
{
	return send_msghdr(c, c->sys.args[1], c->sys.args[2], 0);
}

enum sv_verdict sys_sendmmsg(struct sv_call *c)
{
	uint64_t vec = c->sys.args[1];
	uint64_t h;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	if (!(unsigned int)c->sys.args[2])
		return sv_error(c, 0);
	return send_msghdr(c, vec, c->sys.args[3], vec + offsetof(struct mmsghdr, msg_len));
}

/*
 * splice from a pipe to a remote socket (Go's io.Copy from a unix socket to
 * a TCP connection, say): the bytes are taken from the pipe with tee(), so
 * that the pipe keeps what the delegate does not send, and consumed once
 * they went out (splice_done). SPLICE_F_NONBLOCK makes the send
 * MSG_DONTWAIT, as Linux's splice_to_socket does. A splice from a remote
 * socket would fill the pipe through the placeholder, not the network:
 * refused with EINVAL, which programs take as "splice cannot do this here"
 * and fall back to read/write; so is a splice that would wait for an empty
 * pipe (nothing but the program could fill it).
 *
 * Without rsys attached a signal ends the thread's wait for a held splice
 * and the kernel restarts it at once, same arguments: the supervisor gives
 * the restart the first run's count (sv_restart_of_lost), so no byte is
 * sent twice. One rule is splice's own: a splice that finds the pipe empty
 * right after the same splice of its thread emptied it is that splice's
 * restart (sv_reply cannot promise that the thread took an answer), and
 * takes its count (sv_call.prev_ret).
 */

/* The bytes the delegate sent leave the pipe before the thread can splice again. */
static void splice_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	struct sv_call *c = o->c;
	int64_t n = sop_result(o);

	if (n > 0) {
		if (read(o->infd, o->buf, n) != n)
			pr_warn("splice: another reader took bytes from the pipe meanwhile\n");
		mon_sock_bytes(o->h, 0, n);
	} else if (n == -EINTR && sv_call_interrupted(c)) {
		n = -SV_ERESTARTSYS;	/* nothing went out: as a Linux splice a signal interrupts */
	} else if (n == -EPIPE && !(o->flags & MSG_NOSIGNAL)) {
		sv_signal(c, SIGPIPE);
	}
	sop_free(o);
	sv_reply(c, n);
}

/* Take the data from the pipe (tee, kept there) into o->buf: how much, or -errno. */
static ssize_t splice_peek(struct sop *o, size_t count, unsigned int flags)
{
	ssize_t got;
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	got = count ? tee(o->infd, p[1], count, SPLICE_F_NONBLOCK) : 0;
	if (got > 0)
		got = read(p[0], o->buf, got);
	if (got < 0 && errno == EAGAIN && !(flags & SPLICE_F_NONBLOCK) &&
	    !(fcntl(o->infd, F_GETFL) & O_NONBLOCK))
		errno = EINVAL;	/* it would wait for the program to fill it */
	got = got < 0 ? -errno : got;
	close(p[0]);
	close(p[1]);
	return got;
}

static enum sv_verdict splice_start(struct sv_call *c, uint64_t h)
{
	const __u64 *a = c->sys.args;
	size_t count = a[4] > RSYS_MAX_PAYLOAD ? RSYS_MAX_PAYLOAD : a[4];
	struct sop *o;
	struct stat st;
	int64_t got;

	o = sop_new(c, RSYS_OP_SEND, h, -EPIPE);
	if (!o)
		return sv_error(c, -ENOMEM);
	sv_on_signal(c, SV_INTR_OWNER);
	o->infd = sv_fd_dup(c, (int)a[0]);
	got = o->infd < 0 ? -EBADF : 0;
	if (!got && (fstat(o->infd, &st) || !S_ISFIFO(st.st_mode)))
		got = -EINVAL;
	if (!got && (a[1] || a[3]))
		got = -ESPIPE;	/* offsets of a pipe or socket */
	if (!got) {
		o->buf = malloc(count ? count : 1);
		got = o->buf ? splice_peek(o, count, a[5]) : -ENOMEM;
	}
	if ((got == -EAGAIN || got == -EINVAL) && c->prev_ret > 0)
		got = c->prev_ret;	/* the last one emptied the pipe: this is its restart */
	else if (got > 0) {
		o->flags = (a[5] & SPLICE_F_MORE ? MSG_MORE : 0) |
			   (a[5] & SPLICE_F_NONBLOCK ? MSG_DONTWAIT : 0);
		o->r.f.a[1] = o->flags;
		o->r.f.a[2] = 0;
		o->r.f.len = got;
		o->r.payload = o->buf;
		return sop_submit(o, splice_done);	/* SV_PENDING: @o and @c may be gone already */
	}
	return sop_answer(o, got);	/* got 0: no data and no writer */
}

enum sv_verdict sys_splice(struct sv_call *c)
{
	uint64_t h;

	if (arg_remote(c, 0, &h) == 1)
		return sv_error(c, -EINVAL);
	if (arg_remote(c, 2, &h) != 1)
		return SV_CONTINUE;
	return splice_start(c, h);
}

/*
 * io_uring would run socket operations on placeholders behind the
 * monitor's back: a trusted program gets ENOSYS, as from a kernel built
 * without io_uring, and uses the system calls rsys routes.
 */
enum sv_verdict sys_io_uring_setup(struct sv_call *c)
{
	return sv_error(c, -ENOSYS);
}

/* sendfile to a remote socket: the input file advances by what the delegate sent. */
static void sendfile_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t n = sop_result(o);

	if (n > 0) {
		if (o->out) {
			int64_t off = o->pos + n;
			int err = sv_write_mem(o->c, o->out, &off, sizeof(off));

			if (err)
				n = err;
		} else {
			lseek(o->infd, o->pos + n, SEEK_SET);
		}
	}
	send_finish(o, n);
}

enum sv_verdict sys_sendfile(struct sv_call *c)
{
	size_t count = c->sys.args[3];
	enum sv_verdict v;
	struct sop *o = send_new(c, &v);
	ssize_t got;
	int ret;

	if (!o)
		return v;
	o->infd = sv_fd_dup(c, c->sys.args[1]);
	if (o->infd < 0)
		return sop_answer(o, o->infd == -ENOENT ? -EBADF : o->infd);
	o->out = c->sys.args[2];
	if (o->out) {
		ret = sv_read_mem(c, &o->pos, o->out, sizeof(o->pos));
		if (ret)
			return sop_answer(o, ret);
	} else {
		o->pos = lseek(o->infd, 0, SEEK_CUR);
		if (o->pos < 0)
			return sop_answer(o, errno == ESPIPE ? -EINVAL : -errno);
	}
	if (count > RSYS_MAX_PAYLOAD)
		count = RSYS_MAX_PAYLOAD;
	o->buf = malloc(count ? count : 1);
	if (!o->buf)
		return sop_answer(o, -ENOMEM);
	got = pread(o->infd, o->buf, count, o->pos);
	if (got <= 0)
		return sop_answer(o, got < 0 ? -errno : 0);
	o->r.f.a[1] = 0;
	o->r.f.a[2] = 0;
	o->r.f.len = got;
	o->r.payload = o->buf;
	return sop_submit(o, sendfile_done);
}

/*
 * A connection error that a write-behind send met is what Linux keeps as
 * the socket's error for SO_ERROR when no call of the program reported it:
 * the delegate's send took it from the delegate's socket, so the answer of
 * a SO_ERROR that found none there carries it instead (once, as SO_ERROR
 * clears it).
 */
static bool so_error_behind(struct sop *o, int *val)
{
	struct hstate *hs;
	bool took = false;
	int err;

	if (*val)
		return false;
	pthread_mutex_lock(&hs_lock);
	hs = hs_get(o->h, false);
	if (hs && (err = wb_conn_err_take(hs))) {
		*val = err;
		took = true;
	}
	if (hs)
		hs_put(hs);
	pthread_mutex_unlock(&hs_lock);
	return took;
}

static void getsockopt_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t ret = sop_result(o);
	const void *val = r->rpayload;
	size_t n = r->f.len;
	int so_error;
	socklen_t len;
	int err;

	if (ret >= 0) {
		len = r->f.a[1];
		if (o->so_error && n == sizeof(so_error)) {
			memcpy(&so_error, val, n);
			if (so_error_behind(o, &so_error))
				val = &so_error;
		}
		err = put_with_len(o->c, o->out, val, n < len ? n : len, o->outlen, len);
		if (err)
			ret = err;
	}
	sop_finish(o, ret);
}

enum sv_verdict sys_getsockopt(struct sv_call *c)
{
	struct sop *o;
	uint64_t h;
	int len, ret;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	ret = sv_read_mem(c, &len, c->sys.args[4], sizeof(len));
	if (ret)
		return sv_error(c, ret);
	if (len < 0)
		return sv_error(c, -EINVAL);
	o = sop_new(c, RSYS_OP_GETSOCKOPT, h, -ENOTCONN);
	if (!o)
		return sv_error(c, -ENOMEM);
	o->r.f.a[1] = (int)c->sys.args[1];
	o->r.f.a[2] = (int)c->sys.args[2];
	o->r.f.a[3] = len < SOP_MAX_OPT ? len : SOP_MAX_OPT;
	o->so_error = (int)c->sys.args[1] == SOL_SOCKET && (int)c->sys.args[2] == SO_ERROR;
	o->out = c->sys.args[3];
	o->outlen = c->sys.args[4];
	return sop_submit(o, getsockopt_done);
}

enum sv_verdict sys_setsockopt(struct sv_call *c)
{
	int len = (int)c->sys.args[4];
	struct sop *o;
	uint64_t h;
	int ret;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	if (len < 0 || len > SOP_MAX_OPT)
		return sv_error(c, -EINVAL);
	o = sop_new(c, RSYS_OP_SETSOCKOPT, h, -ENOTCONN);
	if (!o || !(o->buf = malloc(len ? len : 1))) {
		free(o);
		return sv_error(c, -ENOMEM);
	}
	ret = sv_read_mem(c, o->buf, c->sys.args[3], len);
	if (ret)
		return sop_answer(o, ret);
	o->r.f.a[1] = (int)c->sys.args[1];
	o->r.f.a[2] = (int)c->sys.args[2];
	o->r.f.len = len;
	o->r.payload = o->buf;
	return sop_submit(o, sop_done_simple);
}

static void name_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t ret = sop_result(o);

	if (ret >= 0) {
		int err = put_name(o, r->rpayload, r->f.len);

		if (err)
			ret = err;
	}
	sop_finish(o, ret);
}

static enum sv_verdict sys_name_call(struct sv_call *c, uint16_t op)
{
	enum sv_verdict v;
	struct sop *o = fd_sop_new(c, op, -ENOTCONN, &v);
	int ret;

	if (!o)
		return v;
	if (!c->sys.args[1] || !c->sys.args[2])
		return sop_answer(o, -EFAULT);
	ret = get_namecap(o, c->sys.args[1], c->sys.args[2]);
	return ret ? sop_answer(o, ret) : sop_submit(o, name_done);
}

enum sv_verdict sys_getsockname(struct sv_call *c)
{
	return sys_name_call(c, RSYS_OP_GETSOCKNAME);
}

enum sv_verdict sys_getpeername(struct sv_call *c)
{
	return sys_name_call(c, RSYS_OP_GETPEERNAME);
}

/* The remote side took the flag change: the kernel applies it to the placeholder too, so F_GETFL agrees. */
static void flags_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t ret = sop_result(o);
	struct sv_call *c = o->c;
	unsigned int vfd = c->sys.args[0];

	if (ret < 0) {
		sop_finish(o, ret);
		return;
	}
	if (o->flags & O_NONBLOCK)
		fdc_set_flags(c->proc, vfd, vfd, O_NONBLOCK, 0);
	else
		fdc_set_flags(c->proc, vfd, vfd, 0, O_NONBLOCK);
	sv_continue(c);
	sop_free(o);
}

static enum sv_verdict dup_remote(struct sv_call *c, int old, int new, int cloexec);

enum sv_verdict sys_fcntl(struct sv_call *c)
{
	int vfd = c->sys.args[0];
	unsigned int cmd = c->sys.args[1];	/* the kernel's view, as the filter's */
	struct sop *o;
	uint64_t h;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
		/*
		 * From 0 (f_dupfd takes an unsigned int) "lowest free" is
		 * exactly ADDFD's choice: published at once, like dup. ADDFD
		 * cannot ask for "lowest >= arg": then the kernel picks the
		 * number and select/poll re-read the table before trusting
		 * the cache.
		 */
		if (!(unsigned int)c->sys.args[2])
			return dup_remote(c, vfd, -1, cmd == F_DUPFD_CLOEXEC);
		fdc_unsure(c->proc);
		return SV_CONTINUE;
	}
	if (cmd == F_SETFD) {
		/* the kernel sets it on the placeholder, the mirror follows */
		if (c->sys.args[2] & FD_CLOEXEC)
			fdc_set_flags(c->proc, vfd, vfd, O_CLOEXEC, 0);
		else
			fdc_set_flags(c->proc, vfd, vfd, 0, O_CLOEXEC);
		return SV_CONTINUE;
	}
	/* F_GETFD, F_GETFL ... (the KVM tier hands over every command): the placeholder answers */
	if (cmd != F_SETFL)
		return SV_CONTINUE;
	o = sop_new(c, RSYS_OP_FCNTL, h, -ENOTCONN);
	if (!o)
		return sv_error(c, -ENOMEM);
	o->r.f.a[1] = F_SETFL;
	o->r.f.a[2] = (int)c->sys.args[2];
	o->flags = o->r.f.a[2] & O_NONBLOCK;
	return sop_submit(o, flags_done);
}

static void fionread_done(struct remote_req *r)
{
	struct sop *o = r->arg;
	int64_t ret = sop_result(o);
	int v = r->f.a[1];

	if (ret >= 0) {
		int err = sv_write_mem(o->c, o->out, &v, sizeof(v));

		if (err)
			ret = err;
	}
	sop_finish(o, ret);
}

enum sv_verdict sys_ioctl(struct sv_call *c)
{
	unsigned int req = c->sys.args[1];
	struct sop *o;
	uint64_t h;
	int v = 0, ret;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	if (req == FIOCLEX || req == FIONCLEX) {
		/* the placeholder's fd flag, as F_SETFD */
		fdc_set_flags(c->proc, c->sys.args[0], c->sys.args[0], req == FIOCLEX ? O_CLOEXEC : 0,
			      req == FIOCLEX ? 0 : O_CLOEXEC);
		return SV_CONTINUE;
	}
	if (req == FIONBIO) {
		ret = sv_read_mem(c, &v, c->sys.args[2], sizeof(v));
		if (ret)
			return sv_error(c, ret);
	}
	o = sop_new(c, RSYS_OP_IOCTL, h, -ENOTCONN);
	if (!o)
		return sv_error(c, -ENOMEM);
	o->r.f.a[1] = req;
	o->r.f.a[2] = v;
	o->flags = v ? O_NONBLOCK : 0;
	o->out = c->sys.args[2];
	return sop_submit(o, req == FIONBIO ? flags_done : fionread_done);
}

/*
 * Every way the last placeholder of a remote socket goes away in the
 * program (close, close_range, dup2/dup3 onto it, exit) returns once the
 * delegate has its CLOSE, ahead of any later call of the program: a port
 * closed this way can be bound again at once and a closed listener
 * refuses connections, as in Linux. The monitor takes its own reference,
 * puts @repl (a file of the monitor) in the vfd with ADDFD, @flags its fd
 * flags, and drops the reference: if it was the last, the anchor hangs up
 * now and the CLOSE is sent from here, before the call returns. Other
 * placeholders (dups, forks) keep the socket open, as in Linux. ADDFD's
 * result (@vfd or -errno); nothing is done if @vfd cannot be copied.
 */
static int replace_remote(struct sv_call *c, int vfd, int repl, unsigned int flags)
{
	struct stat sb;
	bool claimed;
	uint64_t h;
	int fd, ret;

	fd = sv_fd_dup(c, vfd);
	if (fd < 0)
		return fd;	/* no longer open: the kernel's call decides */
	claimed = !fstat(fd, &sb) && fdc_anchor_close_begin(sb.st_ino, &h);
	ret = sv_addfd(c, repl, vfd, flags, false);
	close(fd);
	if (claimed && fdc_anchor_close_end(sb.st_ino))
		sv_remote_gone(c->sv, h);
	return ret;
}

/* Close remote @vfd as above: /dev/null takes its place and the kernel's close closes that. */
static void close_remote(struct sv_call *c, int vfd)
{
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

	if (null < 0)
		return;		/* the kernel closes the placeholder: closed shortly after */
	replace_remote(c, vfd, null, 0);
	close(null);
}

/*
 * Close the remote vfds among [@lo, @hi] of the caller as close_remote()
 * does, before the kernel's close_range or exit drops them. Vfds beyond
 * the cache (fdcache.h: FDC_MAX_VFD) are closed shortly after instead.
 */
static void close_remote_range(struct sv_call *c, unsigned int lo, unsigned int hi)
{
	int vfd;

	if (fdc_all_local(c->proc, c->tid, hi < UINT_MAX ? hi + 1 : UINT_MAX))
		return;
	while ((vfd = fdc_next_remote(c->proc, lo, hi)) >= 0) {
		close_remote(c, vfd);
		fdc_forget(c->proc, vfd, vfd, true);
		lo = vfd + 1;
		if (!lo)
			break;
	}
}

/*
 * The fd-table calls run in the kernel on the placeholders (so numbering,
 * EBADF, EMFILE, close-on-exec are exactly Linux); the cache forgets the
 * vfds they may close.
 */
enum sv_verdict sys_close(struct sv_call *c)
{
	int vfd = c->sys.args[0];
	uint64_t h;

	if (!fdc_surely_local(c->proc, vfd) && sv_fd_remote(c, vfd, &h))
		close_remote(c, vfd);
	fdc_forget(c->proc, vfd, vfd, true);
	return SV_CONTINUE;
}

/*
 * CLOSE_RANGE_UNSHARE closes in a copy of the table the monitor cannot
 * reach (the shared one keeps the placeholders): its remote sockets that
 * lose their last placeholder are closed shortly after.
 */
enum sv_verdict sys_close_range(struct sv_call *c)
{
	unsigned int lo = c->sys.args[0], hi = c->sys.args[1];
	unsigned int flags = c->sys.args[2];

	/* The kernel's EINVAL cases close nothing. */
	if (lo > hi || (flags & ~(CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC)))
		return SV_CONTINUE;
	if (flags & CLOSE_RANGE_CLOEXEC) {
		fdc_set_flags(c->proc, lo, hi, O_CLOEXEC, 0);
		return SV_CONTINUE;
	}
	if (!(flags & CLOSE_RANGE_UNSHARE))
		close_remote_range(c, lo, hi);
	fdc_forget(c->proc, lo, hi, true);
	return SV_CONTINUE;
}

void sock_exec(struct sv_call *c)
{
	/* an exact cache: every remote vfd noted */
	fdc_all_local(c->proc, c->tid, UINT_MAX);
	fdc_exec(c->proc);
}

void sock_exec_done(struct sv_call *c)
{
	uint64_t *h;
	bool others;
	int i, n = fdc_exec_closes(c->proc, &h, &others);

	for (i = 0; i < n; i++)
		sv_remote_gone(c->sv, h[i]);
	/* a CLOSE the event thread sent must not be overtaken by this call's frames */
	if (others)
		remote_flush(c->sv->remote);
	free(h);
}

/*
 * exit_group, and exit of the last thread: the process's remote sockets
 * whose last placeholder it holds are closed before it exits, so a parent
 * that waits for it finds their ports free, as in Linux. Not when its fd
 * table is shared with another process (clone CLONE_FILES): that one keeps
 * the placeholders. Death by a signal is not a call: closed shortly after.
 */
enum sv_verdict sys_exit_group(struct sv_call *c)
{
	if (c->sys.nr == SYS_exit && sv_threads(c) != 1)
		return SV_CONTINUE;
	if (!fdc_files_shared(c->proc))
		close_remote_range(c, 0, UINT_MAX);
	return SV_CONTINUE;
}

/*
 * dup of a remote vfd installs the same placeholder file with ADDFD, so the
 * new vfd is known (and published) at once; numbering, EMFILE and EBADF
 * come from the kernel as for a native dup (and F_DUPFD from 0, see
 * sys_fcntl).
 */
static enum sv_verdict dup_remote(struct sv_call *c, int old, int new, int cloexec)
{
	int fd, vfd;

	fd = sv_fd_dup(c, old);
	if (fd < 0) {
		/* The kernel dups it unseen by the cache. */
		fdc_unsure(c->proc);
		return SV_CONTINUE;
	}
	if (new >= 0)
		fdc_forget(c->proc, new, new, false);
	fdc_install_begin(c->proc);
	vfd = sv_addfd(c, fd, new, cloexec ? O_CLOEXEC : 0, true);
	close(fd);
	if (vfd >= 0)
		fdc_copy(c->proc, old, vfd, cloexec ? O_CLOEXEC : 0);
	else if (vfd == SV_ADDFD_LATER)
		fdc_unsure(c->proc);
	fdc_install_end(c->proc);
	if (vfd < 0 && vfd != SV_ADDFD_LATER)
		return sv_error(c, vfd);
	sv_call_free(c);
	return SV_PENDING;	/* answered by ADDFD */
}

enum sv_verdict sys_dup(struct sv_call *c)
{
	uint64_t h;

	if (!arg_remote(c, 0, &h))
		return SV_CONTINUE;
	return dup_remote(c, c->sys.args[0], -1, 0);
}

/*
 * dup2/dup3 onto a remote vfd: the monitor installs its copy of @old
 * there (what dup2 does: the same open file, with @cloexec) and closes the
 * socket it replaced as close() does, then answers.
 */
static enum sv_verdict dup_onto_remote(struct sv_call *c, int old, int new, int cloexec)
{
	int fd, vfd;
	uint64_t h;
	bool remote;

	fd = sv_fd_dup(c, old);
	if (fd < 0) {
		/* EBADF and the like: the kernel answers, nothing is closed. */
		fdc_forget(c->proc, new, new, false);
		return SV_CONTINUE;
	}
	remote = sv_fd_remote(c, old, &h) == 1;
	vfd = replace_remote(c, new, fd, cloexec ? O_CLOEXEC : 0);
	close(fd);
	fdc_forget(c->proc, new, new, vfd >= 0);
	/* @new closed meanwhile and the like: the kernel's dup2 decides; -ENOENT: gone */
	if (vfd < 0 && vfd != -ENOENT)
		return SV_CONTINUE;
	if (vfd >= 0 && remote)
		fdc_copy(c->proc, old, vfd, cloexec ? O_CLOEXEC : 0);
	return sv_error(c, vfd);
}

enum sv_verdict sys_dup2(struct sv_call *c)
{
	int old = c->sys.args[0], new = c->sys.args[1];
	int flags = c->sys.nr == SYS_dup3 ? (int)c->sys.args[2] : 0;
	uint64_t h;

	/* dup2(fd, fd), dup3's EINVAL cases and bad numbers: the kernel answers. */
	if (old == new || (flags & ~O_CLOEXEC) || new < 0)
		return SV_CONTINUE;
	if (!fdc_surely_local(c->proc, new) && sv_fd_remote(c, new, &h))
		return dup_onto_remote(c, old, new, flags & O_CLOEXEC);
	if (!arg_remote(c, 0, &h)) {
		fdc_forget(c->proc, new, new, false);
		return SV_CONTINUE;
	}
	return dup_remote(c, old, new, flags & O_CLOEXEC);
}

enum sv_verdict sys_dup3(struct sv_call *c)
{
	return sys_dup2(c);
}
