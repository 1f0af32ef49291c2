// SPDX-License-Identifier: GPL-2.0
/* rsys-delegate's operations: each wire op executed as the real socket syscall, -errno passed back. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <linux/sockios.h>

#include <rsys/limits.h>
#include <rsys/sockopt.h>

#include "delegate.h"
#include "log.h"
#include "trace.h"

#define OPT_MAX		RSYS_MAX_OPT
#define ADDR_MAX	RSYS_MAX_ADDR
#define RECV_MAX	RSYS_MAX_RECV

#ifndef SO_PEERPIDFD
#define SO_PEERPIDFD		77
#endif

/*
 * Message flags forwarded; any other is refused (EPERM). Left out on
 * purpose: MSG_ZEROCOPY (the kernel would read a buffer the delegate reuses
 * for the next request, another session's data) and MSG_DONTROUTE.
 * MSG_NOSIGNAL means nothing to a receive and the kernel ignores it there,
 * but programs pass it (sockperf's recvfrom does): refusing it broke them.
 */
#define SEND_FLAGS	(MSG_OOB | MSG_DONTWAIT | MSG_EOR | MSG_MORE | MSG_NOSIGNAL | \
			 MSG_CONFIRM | MSG_FASTOPEN)
#define RECV_FLAGS	(MSG_OOB | MSG_PEEK | MSG_TRUNC | MSG_WAITALL | MSG_DONTWAIT | \
			 MSG_CMSG_CLOEXEC | MSG_ERRQUEUE | MSG_NOSIGNAL)

static bool opt_settable(int level, int name)
{
	return rsys_sockopt_allowed(level, name);
}

/*
 * A decision of ours as a trace event (include/rsys/trace.h): on the -v log,
 * in the format "rsys-load trace" prints, and to the trace reader with --trace.
 * @addr (@len bytes) is the address judged, if any.
 */
static void dlg_event(struct session *s, int call, int verdict, const struct handle *hd,
		      const uint8_t *addr, uint32_t len, int rule, int ret)
{
	struct rsys_event ev = {
		.call = call,
		.verdict = verdict,
		.session = s->id,
		.ret = ret,
		.proto = hd ? hd->proto : 0,
	};
	struct sockaddr_storage ss = { 0 };
	char line[1024];

	if (log_level < LOG_INFO && !dlg.trace)
		return;
	if (addr && len >= sizeof(sa_family_t)) {
		memcpy(&ss, addr, len < sizeof(ss) ? len : sizeof(ss));
		if (ss.ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
			ev.family = AF_INET;
			memcpy(ev.addr, &((struct sockaddr_in *)&ss)->sin_addr, 4);
			ev.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
			ev.family = AF_INET6;
			memcpy(ev.addr, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
			ev.port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	if (rule > 0 && dlg.policy) {
		ev.rule_line = rule;
		trace_strcpy(ev.rule_file, sizeof(ev.rule_file), dlg.policy->file);
	}
	if (dlg.trace)
		trace_emit(&ev);
	if (log_level >= LOG_INFO) {
		if (!ev.time_ns) {
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ev.time_ns = ts.tv_sec * 1000000000ull + ts.tv_nsec;
			ev.src = RSYS_SRC_DELEGATE;
			ev.producer = getpid();
		}
		trace_format(&ev, false, line, sizeof(line));
		pr_info("%s\n", line);
	}
}

/* A refusal of @call by an allowlist (raw sockets, control messages, ...). */
static int64_t deny(struct session *s, int call, const struct handle *hd)
{
	stat_add(denied, 1);
	dlg_event(s, call, RSYS_VERDICT_DENIED, hd, NULL, 0, 0, -EPERM);
	return -EPERM;
}

/*
 * Rewrite @ss (@len bytes) into the address the kernel will really use, so
 * that rules match where the packets go: a v4-mapped IPv6 address is its
 * IPv4 host, and connecting or sending to an unspecified address (0.0.0.0,
 * ::, ::ffff:0.0.0.0) reaches the loopback host, as Linux does.
 */
static void addr_normalise(enum policy_rule_kind kind, struct sockaddr_storage *ss, uint32_t *len)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
		struct sockaddr_in v4 = { .sin_family = AF_INET, .sin_port = sin6->sin6_port };

		memcpy(&v4.sin_addr, sin6->sin6_addr.s6_addr + 12, sizeof(v4.sin_addr));
		memset(ss, 0, sizeof(*ss));
		memcpy(ss, &v4, sizeof(v4));
		*len = sizeof(v4);
	}
	if (kind != POLICY_ALLOW_CONNECT)
		return;
	if (ss->ss_family == AF_INET && sin->sin_addr.s_addr == htonl(INADDR_ANY))
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (ss->ss_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
		sin6->sin6_addr = in6addr_loopback;
}

/* Binding :: without IPV6_V6ONLY also binds 0.0.0.0: the IPv4 wildcard must be allowed too. */
static bool bind_v4_too(const struct handle *hd, const struct sockaddr_storage *ss)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	socklen_t olen = sizeof(int);
	int v6only = 0;

	if (ss->ss_family != AF_INET6 || !IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr))
		return false;
	/* Fail closed: an unreadable option counts as dual-stack. */
	getsockopt(hd->fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, &olen);
	return !v6only;
}

/*
 * Egress/bind check of the address @addr given to a socket @hd: the line of
 * the rule that allows it, or RSYS_RULE_DENIED, RSYS_RULE_NOPOLICY, or
 * RSYS_RULE_NONE for addresses the kernel rejects anyway (too short, foreign
 * family), left to it so that the errno stays native. AF_UNSPEC means
 * AF_INET to IPv4 sockets (sendto, bind) and "no address" to IPv6 sendto,
 * as in the kernel.
 */
static int egress_rule(enum policy_rule_kind kind, const struct handle *hd, const uint8_t *addr,
		       uint32_t len)
{
	struct sockaddr_storage ss;
	int rule;

	if (!dlg.policy)
		return RSYS_RULE_NOPOLICY;
	if (len < sizeof(sa_family_t))
		return RSYS_RULE_NONE;
	memset(&ss, 0, sizeof(ss));
	memcpy(&ss, addr, len);
	if (ss.ss_family == AF_UNSPEC && hd->family == AF_INET)
		ss.ss_family = AF_INET;
	if (ss.ss_family == AF_INET && len < sizeof(struct sockaddr_in))
		return RSYS_RULE_NONE;
	if (ss.ss_family == AF_INET6 && len < offsetof(struct sockaddr_in6, sin6_scope_id))
		return RSYS_RULE_NONE;
	if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
		return RSYS_RULE_NONE;
	if (kind == POLICY_ALLOW_BIND && bind_v4_too(hd, &ss)) {
		struct sockaddr_in any = {
			.sin_family = AF_INET,
			.sin_port = ((struct sockaddr_in6 *)&ss)->sin6_port,
		};

		if (!policy_allows(dlg.policy, kind, hd->proto, (struct sockaddr *)&any,
				   sizeof(any)))
			return RSYS_RULE_DENIED;
	}
	addr_normalise(kind, &ss, &len);
	rule = policy_allows(dlg.policy, kind, hd->proto, (struct sockaddr *)&ss, len);
	return rule ? rule : RSYS_RULE_DENIED;
}

/*
 * Check @addr for @call (an enum rsys_ev_call) and say so: in the reply's a5
 * for the monitor's trace, and on our log. 0, or -EPERM if refused.
 */
static int egress_check(struct session *s, int call, const struct handle *hd,
			const uint8_t *addr, uint32_t len, struct reply *r)
{
	enum policy_rule_kind kind = call == RSYS_EV_BIND || call == RSYS_EV_LISTEN ?
				     POLICY_ALLOW_BIND : POLICY_ALLOW_CONNECT;
	int rule = egress_rule(kind, hd, addr, len);

	r->f.a[5] = rule;
	if (rule == RSYS_RULE_DENIED) {
		stat_add(denied, 1);
		dlg_event(s, call, RSYS_VERDICT_DENIED, hd, addr, len, 0, -EPERM);
		return -EPERM;
	}
	dlg_event(s, call, rule > 0 ? RSYS_VERDICT_ALLOWED : rule == RSYS_RULE_NOPOLICY ?
		  RSYS_VERDICT_ALLOWED_ALL : RSYS_VERDICT_UNCHECKED, hd, addr, len, rule, 0);
	return 0;
}

/*
 * Options read with a side effect on the delegate: a pointer into its
 * memory (TCP_ZEROCOPY_RECEIVE) or a new fd of its own (SO_PEERPIDFD).
 * Reading any other option is harmless and forwarded.
 */
static bool opt_unreadable(int level, int name)
{
	if (level == SOL_SOCKET)
		return name == SO_PEERPIDFD;
	return level == IPPROTO_TCP && name == TCP_ZEROCOPY_RECEIVE;
}

static int64_t op_hello(struct session *s, const struct rsys_frame *f, struct reply *r)
{
	(void)s;
	if (f->a[0] != RSYS_VERSION)
		return -EPROTONOSUPPORT;
	r->f.a[1] = dlg.limit_fds;
	r->f.a[2] = dlg.limit_inflight;
	r->f.a[3] = dlg.egress_guard ? RSYS_HELLO_EGRESS_GUARD : 0;
	return RSYS_VERSION;
}

/* The checks of SOCKET and SOCKFD: 0 and the type without flags in *@base, or -errno. */
static int socket_check(struct session *s, const struct rsys_frame *f, int *base)
{
	int domain = f->a[0], type = f->a[1], proto = f->a[2];

	if (f->a[0] != domain || f->a[1] != type || f->a[2] != proto)
		return -EINVAL;
	if (dlg.policy ? !policy_is_remote_family(dlg.policy, domain) :
	    domain != AF_INET && domain != AF_INET6)
		return -EAFNOSUPPORT;
	*base = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
	/* Raw sockets would bypass the egress rules (the delegate runs as root). */
	if (dlg.policy && *base != SOCK_STREAM && *base != SOCK_DGRAM)
		return deny(s, RSYS_EV_SOCKET, NULL);
	return 0;
}

static int64_t op_socket(struct session *s, const struct rsys_frame *f)
{
	int domain = f->a[0], type = f->a[1], proto = f->a[2];
	struct handle *hd;
	uint64_t h;
	int fd, err, base;

	err = socket_check(s, f, &base);
	if (err)
		return err;
	hd = handle_reserve(s, &h, &err);
	if (!hd)
		return err;
	fd = socket(domain, type | SOCK_CLOEXEC, proto);
	if (fd < 0) {
		err = -errno;
		handle_unreserve(s, hd);
		return err;
	}
	if (!proto)
		proto = base == SOCK_STREAM ? IPPROTO_TCP : base == SOCK_DGRAM ? IPPROTO_UDP : 0;
	handle_publish(s, hd, fd, domain, proto, type & SOCK_NONBLOCK);
	return h;
}

/*
 * Direct mode: the socket itself goes to the monitor, which installs it in
 * the program; we keep no handle. Its later connect, bind, listen, sends
 * with an address and options come back with it (op_adopt).
 */
static int64_t op_sockfd(struct session *s, const struct rsys_frame *f, struct reply *r)
{
	int fd, err, base;

	err = socket_check(s, f, &base);
	if (err)
		return err;
	/* Its sends with an address are not trapped: a socket the guard does not cover stays here. */
	if (!egress_guard_covers(base, f->a[2])) {
		pr_warn_few("direct mode: socket type %d protocol %lld refused: the egress guard cannot judge its sends (use --mode remote)\n",
			    base, (long long)f->a[2]);
		return -EPROTONOSUPPORT;
	}
	fd = socket(f->a[0], (int)f->a[1] | SOCK_CLOEXEC, f->a[2]);
	if (fd < 0)
		return -errno;
	r->fd = fd;
	return 0;
}

#ifndef SO_NETNS_COOKIE
#define SO_NETNS_COOKIE		71
#endif

/* The cookie of our network namespace (the service domain's), 0 if unknown. */
static uint64_t own_netns_cookie(void)
{
	static uint64_t cookie;
	uint64_t c = __atomic_load_n(&cookie, __ATOMIC_RELAXED);
	socklen_t len = sizeof(c);
	int fd;

	if (c)
		return c;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &c, &len) < 0)
		c = 0;
	close(fd);
	__atomic_store_n(&cookie, c, __ATOMIC_RELAXED);
	return c;
}

static int sockopt_int(int fd, int name, int *v)
{
	socklen_t len = sizeof(*v);

	return getsockopt(fd, SOL_SOCKET, name, v, &len) < 0 ? -errno : 0;
}

int op_adopt(struct session *s, struct rsys_frame *f, int fd)
{
	int domain, type, proto, fl, err = -EPERM;
	uint64_t cookie = 0, own = own_netns_cookie(), h;
	socklen_t len = sizeof(cookie);
	struct handle *hd;

	/* Only the calls that decide where packets go come with a socket. */
	if (s->client == CLIENT_TLS ||
	    (f->op != RSYS_OP_CONNECT && f->op != RSYS_OP_BIND && f->op != RSYS_OP_LISTEN &&
	     f->op != RSYS_OP_SEND && f->op != RSYS_OP_SETSOCKOPT)) {
		err = -EINVAL;
		goto err_close;
	}
	/* Fail closed: a socket of another namespace (the compute domain's) is not ours to use. */
	if (!own || getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, &cookie, &len) < 0 ||
	    cookie != own || sockopt_int(fd, SO_DOMAIN, &domain) ||
	    sockopt_int(fd, SO_TYPE, &type) || sockopt_int(fd, SO_PROTOCOL, &proto) ||
	    (dlg.policy ? !policy_is_remote_family(dlg.policy, domain) :
	     domain != AF_INET && domain != AF_INET6) ||
	    (type != SOCK_STREAM && type != SOCK_DGRAM)) {
		deny(s, RSYS_EV_SOCKET, NULL);
		goto err_close;
	}
	fl = fcntl(fd, F_GETFL);
	hd = handle_reserve(s, &h, &err);
	if (!hd || fl < 0) {
		if (hd)
			handle_unreserve(s, hd);
		err = hd ? -EBADF : err;
		goto err_close;
	}
	handle_publish(s, hd, fd, domain, proto, fl & O_NONBLOCK);
	f->a[0] = h;
	return 0;

err_close:
	close(fd);
	return err;
}

void op_adopted_done(struct session *s, const struct rsys_frame *f)
{
	if (f->flags & RSYS_F_FD)
		handle_close(s, f->a[0]);
}

static int64_t op_connect(struct session *s, struct handle *hd, const struct rsys_frame *f,
			  const uint8_t *p, struct reply *r)
{
	/* Connecting to AF_UNSPEC dissolves an association: nothing to check. */
	if (((const struct sockaddr *)p)->sa_family != AF_UNSPEC &&
	    egress_check(s, RSYS_EV_CONNECT, hd, p, f->len, r))
		return -EPERM;
	if (connect(hd->fd, (const struct sockaddr *)p, f->len) < 0)
		return -errno;
	return 0;
}

static int64_t op_bind(struct session *s, struct handle *hd, const struct rsys_frame *f,
		       const uint8_t *p, struct reply *r)
{
	if (egress_check(s, RSYS_EV_BIND, hd, p, f->len, r))
		return -EPERM;
	if (bind(hd->fd, (const struct sockaddr *)p, f->len) < 0)
		return -errno;
	return 0;
}

static int64_t op_listen(struct session *s, struct handle *hd, const struct rsys_frame *f,
			 struct reply *r)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	/* listen() on an unbound socket binds it to a wildcard port: an implicit bind. */
	if (dlg.policy && !getsockname(hd->fd, (struct sockaddr *)&ss, &len) &&
	    ((ss.ss_family == AF_INET && !((struct sockaddr_in *)&ss)->sin_port) ||
	     (ss.ss_family == AF_INET6 && !((struct sockaddr_in6 *)&ss)->sin6_port)) &&
	    egress_check(s, RSYS_EV_LISTEN, hd, (uint8_t *)&ss, len, r))
		return -EPERM;
	if (listen(hd->fd, f->a[1] > INT32_MAX ? INT32_MAX : (int)f->a[1]) < 0)
		return -errno;
	return 0;
}

static int64_t op_accept(struct session *s, struct handle *hd, const struct rsys_frame *f,
			 struct reply *r)
{
	struct handle *nhd;
	socklen_t len = ADDR_MAX;
	uint64_t h;
	int fd, err;

	if (f->a[1] & ~(int64_t)(SOCK_NONBLOCK | SOCK_CLOEXEC))
		return -EINVAL;
	/* Like the kernel, fail with EMFILE before taking a connection off the queue. */
	nhd = handle_reserve(s, &h, &err);
	if (!nhd)
		return err;
	fd = accept4(hd->fd, (struct sockaddr *)r->buf, &len, (f->a[1] & SOCK_NONBLOCK) | SOCK_CLOEXEC);
	if (fd < 0) {
		err = -errno;

		handle_unreserve(s, nhd);
		return err;
	}
	handle_publish(s, nhd, fd, hd->family, hd->proto, f->a[1] & SOCK_NONBLOCK);
	pthread_mutex_lock(&s->lock);
	nhd->sndtimeo = hd->sndtimeo;	/* the kernel copies the listener's timeout */
	pthread_mutex_unlock(&s->lock);
	r->f.len = len < ADDR_MAX ? len : ADDR_MAX;
	return h;
}

/*
 * Control messages a program may send on a remote socket: the per-packet
 * versions of options it may set. Source routing and extension headers
 * (IP_RETOPTS, IPV6_RTHDR, IPV6_HOPOPTS, IPV6_DSTOPTS...) could steer
 * packets past the egress policy; fd passing means nothing on an inet
 * socket. A packet-info interface index would pick the outgoing interface
 * like SO_BINDTODEVICE, which the option allowlist refuses: only 0 (the
 * route's) passes, the source address may be chosen.
 */
static bool cmsg_allowed(const struct cmsghdr *cm, const uint8_t *end)
{
	const void *d = CMSG_DATA(cm);
	size_t dlen;

	/* malformed: the kernel would refuse it (EINVAL); so do we */
	if (cm->cmsg_len < CMSG_LEN(0) || cm->cmsg_len > (size_t)(end - (const uint8_t *)cm))
		return false;
	dlen = cm->cmsg_len - CMSG_LEN(0);
	if (cm->cmsg_level == IPPROTO_IP && cm->cmsg_type == IP_PKTINFO)
		return dlen >= sizeof(struct in_pktinfo) &&
		       !((const struct in_pktinfo *)d)->ipi_ifindex;
	if (cm->cmsg_level == IPPROTO_IPV6 && cm->cmsg_type == IPV6_PKTINFO)
		return dlen >= sizeof(struct in6_pktinfo) &&
		       !((const struct in6_pktinfo *)d)->ipi6_ifindex;
	if (cm->cmsg_level == IPPROTO_IP)
		return cm->cmsg_type == IP_TTL || cm->cmsg_type == IP_TOS;
	if (cm->cmsg_level == IPPROTO_IPV6)
		return cm->cmsg_type == IPV6_HOPLIMIT || cm->cmsg_type == IPV6_TCLASS;
	return false;
}

/* Check the program's control messages (@clen bytes at @ctl): 0, or -EPERM for one not allowed. */
static int cmsgs_check(struct session *s, void *ctl, uint32_t clen)
{
	struct msghdr msg = { .msg_control = ctl, .msg_controllen = clen };
	struct cmsghdr *cm;

	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm))
		if (!cmsg_allowed(cm, (uint8_t *)ctl + clen))
			return deny(s, RSYS_EV_CMSG, NULL);
	return 0;
}

static int64_t op_send(struct session *s, struct handle *hd, const struct rsys_frame *f,
		       const uint8_t *p, struct reply *r)
{
	uint32_t alen = f->a[2], clen = f->a[3];
	union {
		struct cmsghdr align;
		uint8_t buf[RSYS_MAX_CONTROL];
	} ctl;
	struct iovec iov;
	struct msghdr msg = {
		.msg_name = alen ? (void *)p : NULL,
		.msg_namelen = alen,
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	ssize_t n;
	int err;

	/* Fast open connects: it needs a destination the rules allow, no leniency. */
	if ((f->a[1] & MSG_FASTOPEN) && dlg.policy &&
	    (!alen || !policy_allows(dlg.policy, POLICY_ALLOW_CONNECT, hd->proto,
				     (const struct sockaddr *)p, alen) ||
	     egress_rule(POLICY_ALLOW_CONNECT, hd, p, alen) == RSYS_RULE_DENIED))
		return deny(s, RSYS_EV_SENDTO, hd);
	iov.iov_base = (void *)(p + alen + clen);
	iov.iov_len = f->len - alen - clen;
	if (clen) {
		/* aligned for the CMSG_* walk and the kernel */
		memcpy(ctl.buf, p + alen, clen);
		err = cmsgs_check(s, ctl.buf, clen);
		if (err)
			return err;
		msg.msg_control = ctl.buf;
		msg.msg_controllen = clen;
	}
	if (alen && egress_check(s, RSYS_EV_SENDTO, hd, p, alen, r))
		return -EPERM;
	n = sendmsg(hd->fd, &msg, (int)f->a[1] | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	/* A TCP send that went out is on a connected stream (proto.h, RSYS_SEND_STREAM). */
	if (n > 0 && hd->proto == IPPROTO_TCP && !(f->a[1] & MSG_FASTOPEN)) {
		pthread_mutex_lock(&s->lock);
		if (!hd->nonblock && !hd->sndtimeo)
			r->f.a[4] = RSYS_SEND_STREAM;
		pthread_mutex_unlock(&s->lock);
	}
	return n;
}

static int64_t op_recv(struct handle *hd, const struct rsys_frame *f, struct reply *r)
{
	uint32_t want = f->a[1] > RECV_MAX ? RECV_MAX : f->a[1];
	uint32_t room = f->a[4] < 0 ? 0 : f->a[4] > RSYS_MAX_CONTROL ? RSYS_MAX_CONTROL : f->a[4];
	union {
		struct cmsghdr align;
		uint8_t buf[RSYS_MAX_CONTROL];
	} ctl;
	struct sockaddr_storage ss;
	struct iovec iov = { .iov_base = r->buf, .iov_len = want };
	struct msghdr msg = {
		.msg_name = f->a[3] ? &ss : NULL,
		.msg_namelen = f->a[3] ? sizeof(ss) : 0,
		.msg_iov = &iov,
		.msg_iovlen = 1,
		/* the program's own room: MSG_CTRUNC comes out exactly as for it */
		.msg_control = room ? ctl.buf : NULL,
		.msg_controllen = room,
	};
	ssize_t n;
	uint32_t got;

	n = recvmsg(hd->fd, &msg, (int)f->a[2] & ~MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	/* With MSG_TRUNC the result is the datagram's length, not what was copied. */
	got = (size_t)n < want ? n : want;
	r->f.len = got;
	if (f->a[3]) {
		uint32_t alen = msg.msg_namelen < ADDR_MAX ? msg.msg_namelen : ADDR_MAX;

		memcpy(r->buf + got, &ss, alen);
		r->f.len += alen;
		r->f.a[1] = msg.msg_namelen;
	}
	if (room) {
		memcpy(r->buf + r->f.len, ctl.buf, msg.msg_controllen);
		r->f.len += msg.msg_controllen;
		r->f.a[4] = msg.msg_controllen;
	}
	r->f.a[2] = msg.msg_flags;
	/* Echoed: a client may read its request's "want addr" from the reply header. */
	r->f.a[3] = !!f->a[3];
	return n;
}

static int64_t op_getsockopt(struct handle *hd, const struct rsys_frame *f, struct reply *r)
{
	socklen_t len = f->a[3] > OPT_MAX ? OPT_MAX : f->a[3];

	if (f->a[3] < 0)
		return -EINVAL;
	if (opt_unreadable(f->a[1], f->a[2]))
		return -ENOPROTOOPT;
	if (getsockopt(hd->fd, f->a[1], f->a[2], r->buf, &len) < 0)
		return -errno;
	r->f.a[1] = len;
	r->f.len = len < OPT_MAX ? len : OPT_MAX;
	return 0;
}

static int64_t op_setsockopt(struct session *s, struct handle *hd, const struct rsys_frame *f,
			     const uint8_t *p)
{
	int level = f->a[1], name = f->a[2];

	if (f->a[1] != level || f->a[2] != name || !opt_settable(level, name)) {
		stat_add(denied, 1);
		pr_debug("session %u: setsockopt level %lld option %lld is not on the allowlist\n",
			 s->id, (long long)f->a[1], (long long)f->a[2]);
		dlg_event(s, RSYS_EV_SETSOCKOPT, RSYS_VERDICT_DENIED, hd, NULL, 0, 0, -ENOPROTOOPT);
		return -ENOPROTOOPT;
	}
	if (setsockopt(hd->fd, level, name, p, f->len) < 0)
		return -errno;
	if (level == SOL_SOCKET && name == SO_LINGER && f->len >= sizeof(struct linger)) {
		const struct linger *l = (const struct linger *)p;

		pthread_mutex_lock(&s->lock);
		hd->linger = l->l_onoff;
		pthread_mutex_unlock(&s->lock);
	}
	if (level == SOL_SOCKET && name == SO_RCVLOWAT && f->len >= sizeof(int)) {
		int v;

		memcpy(&v, p, sizeof(v));
		pthread_mutex_lock(&s->lock);
		hd->rcvlowat = v > 1;
		pthread_mutex_unlock(&s->lock);
	}
	/* Whatever its value: a send that may time out is never a write-behind one. */
	if (level == SOL_SOCKET && (name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW)) {
		pthread_mutex_lock(&s->lock);
		hd->sndtimeo = true;
		pthread_mutex_unlock(&s->lock);
	}
	return 0;
}

static int64_t op_name(struct handle *hd, const struct rsys_frame *f, struct reply *r)
{
	socklen_t len = ADDR_MAX;
	int ret;

	if (f->op == RSYS_OP_GETSOCKNAME)
		ret = getsockname(hd->fd, (struct sockaddr *)r->buf, &len);
	else
		ret = getpeername(hd->fd, (struct sockaddr *)r->buf, &len);
	if (ret < 0)
		return -errno;
	r->f.len = len < ADDR_MAX ? len : ADDR_MAX;
	return 0;
}

static void set_nonblock(struct session *s, struct handle *hd, bool on)
{
	pthread_mutex_lock(&s->lock);
	hd->nonblock = on;
	pthread_mutex_unlock(&s->lock);
}

static int64_t op_fcntl(struct session *s, struct handle *hd, const struct rsys_frame *f)
{
	int fl;

	fl = fcntl(hd->fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (f->a[1] == F_GETFL)
		return fl;
	if (f->a[1] != F_SETFL)
		return -EINVAL;
	/* Only O_NONBLOCK is forwarded; O_ASYNC and friends stay local to the monitor. */
	fl = (fl & ~O_NONBLOCK) | (f->a[2] & O_NONBLOCK);
	if (fcntl(hd->fd, F_SETFL, fl) < 0)
		return -errno;
	set_nonblock(s, hd, fl & O_NONBLOCK);
	return 0;
}

static int64_t op_ioctl(struct session *s, struct handle *hd, const struct rsys_frame *f,
			struct reply *r)
{
	unsigned long req = f->a[1];
	int v = f->a[2];

	switch (req) {
	case FIONBIO:
		if (ioctl(hd->fd, FIONBIO, &v) < 0)
			return -errno;
		set_nonblock(s, hd, v);
		return 0;
	case FIONREAD:
	case SIOCOUTQ:
	case SIOCOUTQNSD:
	case SIOCATMARK:
		if (ioctl(hd->fd, req, &v) < 0)
			return -errno;
		r->f.a[1] = v;
		return 0;
	default:
		return -ENOTTY;
	}
}

static int64_t op_poll(struct session *s, const struct rsys_frame *f, const uint8_t *p,
		       struct reply *r)
{
	uint32_t n = f->a[0], i;
	struct rsys_pollfd *out = (struct rsys_pollfd *)r->buf;
	struct handle **hds;
	struct pollfd *pfd;
	int64_t ret;

	memcpy(out, p, f->len);
	pfd = calloc(n ? n : 1, sizeof(*pfd));
	hds = calloc(n ? n : 1, sizeof(*hds));
	if (!pfd || !hds) {
		ret = -ENOMEM;
		goto out_free;
	}
	for (i = 0; i < n; i++) {
		pfd[i].events = out[i].events;
		pfd[i].fd = -1;
		/* Like a negative fd natively, handle ~0 is ignored. */
		if (out[i].handle == UINT64_MAX)
			continue;
		hds[i] = handle_get(s, out[i].handle);
		/* An fd that is not open gives POLLNVAL: poll a closed fd number. */
		pfd[i].fd = hds[i] ? hds[i]->fd : INT32_MAX;
	}
	ret = poll(pfd, n, f->a[1] < 0 ? -1 : f->a[1] > INT32_MAX ? INT32_MAX : f->a[1]);
	if (ret < 0) {
		ret = -errno;
	} else {
		for (i = 0; i < n; i++)
			out[i].revents = pfd[i].revents;
		r->f.len = f->len;
	}
	for (i = 0; i < n; i++)
		if (hds[i])
			handle_put(s, hds[i]);
out_free:
	free(pfd);
	free(hds);
	return ret;
}

static int flags_refused(struct session *s, const char *call, int64_t flags)
{
	stat_add(denied, 1);
	pr_info("session %u: %s flags %#llx are not on the allowlist\n", s->id, call,
		(unsigned long long)flags);
	return -EPERM;
}

/* Ops that take a handle in a[0]. */
static bool op_has_handle(int op)
{
	return op != RSYS_OP_HELLO && op != RSYS_OP_SOCKET && op != RSYS_OP_POLL &&
	       op != RSYS_OP_CANCEL && op != RSYS_OP_STATS && op != RSYS_OP_INFO &&
	       op != RSYS_OP_SOCKFD;
}

int op_check(struct session *s, const struct rsys_frame *f, enum op_mode *mode)
{
	uint32_t min = 0, max = 0;
	struct handle *hd;
	bool nonblock, linger, rcvlowat;

	*mode = OP_NOW;
	switch (f->op) {
	case RSYS_OP_CONNECT:
	case RSYS_OP_BIND:
		min = sizeof(sa_family_t);
		max = ADDR_MAX;
		break;
	case RSYS_OP_SEND:
		if (f->a[2] < 0 || f->a[2] > ADDR_MAX || f->a[3] < 0 || f->a[3] > RSYS_MAX_CONTROL ||
		    f->a[2] + f->a[3] > f->len)
			return -EINVAL;
		if (f->a[1] & ~(int64_t)SEND_FLAGS)
			return flags_refused(s, "send", f->a[1] & ~(int64_t)SEND_FLAGS);
		max = RSYS_MAX_PAYLOAD;
		break;
	case RSYS_OP_RECV:
		if (f->a[1] < 0)
			return -EINVAL;
		if (f->a[2] & ~(int64_t)RECV_FLAGS)
			return flags_refused(s, "recv", f->a[2] & ~(int64_t)RECV_FLAGS);
		break;
	case RSYS_OP_SETSOCKOPT:
		max = OPT_MAX;
		break;
	case RSYS_OP_POLL:
		if (f->a[0] < 0 || f->a[0] > dlg.limit_fds)
			return -EINVAL;
		if (f->len != f->a[0] * sizeof(struct rsys_pollfd))
			return -EINVAL;
		if (f->a[1])
			*mode = OP_TRY_FIRST;
		return 0;
	case RSYS_OP_SOCKFD:
		/* An fd cannot cross TLS; its reply is written by a thread that may block. */
		if (s->client == CLIENT_TLS)
			return -EOPNOTSUPP;
		/*
		 * A socket of ours is unchecked egress for whoever holds it: only
		 * root, who could enter our namespace anyway, gets one (the
		 * monitor, which keeps it behind its filter).
		 */
		if (dlg.client_uids[s->client] != 0)
			return deny(s, RSYS_EV_SOCKET, NULL);
		*mode = OP_THREAD;
		break;
	default:
		break;
	}
	if (f->len < min || f->len > max)
		return -EINVAL;
	if (!op_has_handle(f->op))
		return 0;
	hd = handle_get(s, f->a[0]);
	if (!hd)
		return -EBADF;
	pthread_mutex_lock(&s->lock);
	nonblock = hd->nonblock;
	linger = hd->linger;
	rcvlowat = hd->rcvlowat;
	pthread_mutex_unlock(&s->lock);
	handle_put(s, hd);
	switch (f->op) {
	case RSYS_OP_CONNECT:
	case RSYS_OP_ACCEPT:
		if (!nonblock)
			*mode = OP_THREAD;
		break;
	case RSYS_OP_SEND:
		if (!nonblock && !(f->a[1] & MSG_DONTWAIT))
			*mode = OP_TRY_FIRST;
		break;
	case RSYS_OP_RECV:
		/* Without blocking, recv returns what is queued, even below the low-water mark. */
		if (!nonblock && !(f->a[2] & MSG_DONTWAIT))
			*mode = (f->a[2] & MSG_WAITALL) || rcvlowat ? OP_THREAD : OP_TRY_FIRST;
		break;
	case RSYS_OP_CLOSE:
		if (linger)
			*mode = OP_THREAD;
		break;
	default:
		break;
	}
	return 0;
}

static int64_t exec_handle_op(struct session *s, struct handle *hd, const struct rsys_frame *f,
			      const uint8_t *p, struct reply *r)
{
	switch (f->op) {
	case RSYS_OP_CONNECT:
		return op_connect(s, hd, f, p, r);
	case RSYS_OP_BIND:
		return op_bind(s, hd, f, p, r);
	case RSYS_OP_LISTEN:
		return op_listen(s, hd, f, r);
	case RSYS_OP_ACCEPT:
		return op_accept(s, hd, f, r);
	case RSYS_OP_SEND:
		return op_send(s, hd, f, p, r);
	case RSYS_OP_RECV:
		return op_recv(hd, f, r);
	case RSYS_OP_SHUTDOWN:
		return shutdown(hd->fd, f->a[1]) < 0 ? -errno : 0;
	case RSYS_OP_GETSOCKOPT:
		return op_getsockopt(hd, f, r);
	case RSYS_OP_SETSOCKOPT:
		return op_setsockopt(s, hd, f, p);
	case RSYS_OP_GETSOCKNAME:
	case RSYS_OP_GETPEERNAME:
		return op_name(hd, f, r);
	case RSYS_OP_FCNTL:
		return op_fcntl(s, hd, f);
	case RSYS_OP_IOCTL:
		return op_ioctl(s, hd, f, r);
	default:
		return -EINVAL;
	}
}

void op_exec(struct session *s, const struct rsys_frame *f, const uint8_t *p, struct reply *r)
{
	struct handle *hd;
	int64_t ret;

	memset(&r->f, 0, sizeof(r->f));
	r->f.op = f->op;
	r->f.id = f->id;
	r->f.flags = RSYS_F_REPLY;
	r->fd = -1;
	if (f->op == RSYS_OP_STATS) {
		stats_read((struct rsys_delegate_stats *)r->buf);
		r->f.len = sizeof(struct rsys_delegate_stats);
		return;
	}
	if (f->op == RSYS_OP_INFO) {
		/* Names the file whose lines the verdicts in a5 count. */
		if (dlg.policy)
			r->f.len = snprintf((char *)r->buf, RSYS_MAX_PAYLOAD, "%s", dlg.policy->file) + 1;
		return;
	}
	stat_add(inflight, 1);
	switch (f->op) {
	case RSYS_OP_HELLO:
		ret = op_hello(s, f, r);
		break;
	case RSYS_OP_SOCKET:
		ret = op_socket(s, f);
		break;
	case RSYS_OP_SOCKFD:
		ret = op_sockfd(s, f, r);
		break;
	case RSYS_OP_POLL:
		ret = op_poll(s, f, p, r);
		break;
	case RSYS_OP_CLOSE:
		ret = handle_close(s, f->a[0]);
		break;
	default:
		hd = handle_get(s, f->a[0]);
		if (!hd) {
			ret = -EBADF;
			break;
		}
		ret = exec_handle_op(s, hd, f, p, r);
		handle_put(s, hd);
		break;
	}
	stat_sub(inflight, 1);
	r->f.a[0] = ret;
}

bool op_try_now(struct session *s, struct rsys_frame *f, uint8_t *p, struct reply *r,
		int64_t *done)
{
	struct rsys_frame t = *f;
	uint32_t alen, clen, dlen;
	int64_t n;

	*done = 0;
	switch (f->op) {
	case RSYS_OP_RECV:
		t.a[2] |= MSG_DONTWAIT;
		break;
	case RSYS_OP_SEND:
		t.a[1] |= MSG_DONTWAIT;
		break;
	case RSYS_OP_POLL:
		t.a[1] = 0;
		break;
	default:
		return false;
	}
	op_exec(s, &t, p, r);
	n = r->f.a[0];
	if (f->op == RSYS_OP_RECV)
		return n != -EAGAIN;
	if (f->op == RSYS_OP_POLL)
		return n != 0;
	if (n == -EAGAIN)
		return false;
	alen = f->a[2];
	clen = f->a[3];
	dlen = f->len - alen - clen;
	if (n < 0 || n >= dlen)
		return true;
	/* Part of a stream send went out (with its control messages): the delegate thread sends the rest. */
	memmove(p + alen, p + alen + clen + n, dlen - n);
	f->len -= clen + n;
	f->a[3] = 0;
	*done = n;
	return false;
}
