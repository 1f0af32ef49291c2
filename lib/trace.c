// SPDX-License-Identifier: GPL-2.0
/* Trace events: the non-blocking producer that feeds "rsys-load trace", and the event formatter. */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "log.h"
#include "trace.h"
#include <rsys/policy.h>

#define TRACE_RETRY_NS	1000000000ull	/* no reader: try again after a second */

static pthread_mutex_t tr_lock = PTHREAD_MUTEX_INITIALIZER;
static int tr_fd = -1;
static int tr_src;
static uint64_t tr_retry;	/* CLOCK_MONOTONIC_COARSE ns of the next connect attempt */
static uint32_t tr_lost;	/* lost since the last event delivered */

const char *trace_sock_path(void)
{
	const char *p = getenv(RSYS_TRACE_ENV);

	return p && *p ? p : RSYS_TRACE_SOCK;
}

void trace_init(int src)
{
	tr_src = src;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/*
 * Connect to the reader, with tr_lock held. Only a reader running as root or
 * as us gets events: they name programs and destinations.
 */
static void tr_connect(void)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	const char *path = trace_sock_path();
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int fd;

	/* read without tr_lock by trace_wanted() */
	__atomic_store_n(&tr_retry, clock_ns(CLOCK_MONOTONIC_COARSE) + TRACE_RETRY_NS,
			 __ATOMIC_RELAXED);
	if (strlen(path) >= sizeof(sun.sun_path))
		return;
	strcpy(sun.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 ||
	    (cr.uid != 0 && cr.uid != geteuid())) {
		close(fd);
		return;
	}
	__atomic_store_n(&tr_fd, fd, __ATOMIC_RELEASE);
	tr_lost = 0;
}

static void tr_disconnect(void)
{
	close(tr_fd);
	__atomic_store_n(&tr_fd, -1, __ATOMIC_RELEASE);
	/* What the gone reader missed is nobody's loss now. */
	tr_lost = 0;
}

bool trace_wanted(void)
{
	bool ret;

	if (__atomic_load_n(&tr_fd, __ATOMIC_ACQUIRE) >= 0)
		return true;
	if (clock_ns(CLOCK_MONOTONIC_COARSE) < __atomic_load_n(&tr_retry, __ATOMIC_RELAXED))
		return false;
	pthread_mutex_lock(&tr_lock);
	if (tr_fd < 0 && clock_ns(CLOCK_MONOTONIC_COARSE) >= tr_retry)
		tr_connect();
	ret = tr_fd >= 0;
	pthread_mutex_unlock(&tr_lock);
	return ret;
}

/* Send @ev once, with tr_lock held: 0, -EAGAIN (reader full) or another -errno (reader gone). */
static int tr_send(struct rsys_event *ev)
{
	ev->lost = tr_lost;
	if (send(tr_fd, ev, sizeof(*ev), MSG_DONTWAIT | MSG_NOSIGNAL) == sizeof(*ev)) {
		tr_lost = 0;
		return 0;
	}
	return errno == EAGAIN || errno == ENOBUFS ? -EAGAIN : -errno;
}

void trace_emit(struct rsys_event *ev)
{
	int ret;

	if (!trace_wanted())
		return;
	ev->version = RSYS_TRACE_VERSION;
	ev->size = sizeof(*ev);
	ev->src = tr_src;
	ev->producer = getpid();
	if (!ev->time_ns)
		ev->time_ns = clock_ns(CLOCK_REALTIME);
	pthread_mutex_lock(&tr_lock);
	if (tr_fd < 0)
		goto out;
	ret = tr_send(ev);
	if (ret && ret != -EAGAIN) {
		/* A new reader may be there already. */
		tr_disconnect();
		tr_connect();
		ret = tr_fd >= 0 ? tr_send(ev) : 0;
	}
	if (ret == -EAGAIN)
		tr_lost++;
out:
	pthread_mutex_unlock(&tr_lock);
}

void trace_close(int wait_ms)
{
	struct rsys_event ev = { .call = RSYS_EV_LOST };
	struct pollfd p;

	pthread_mutex_lock(&tr_lock);
	if (tr_fd < 0)
		goto out;
	if (tr_lost) {
		ev.version = RSYS_TRACE_VERSION;
		ev.size = sizeof(ev);
		ev.src = tr_src;
		ev.producer = getpid();
		ev.time_ns = clock_ns(CLOCK_REALTIME);
		p = (struct pollfd){ .fd = tr_fd, .events = POLLOUT };
		if (poll(&p, 1, wait_ms) == 1 && !tr_send(&ev))
			goto out_close;
		pr_warn("trace: %u events lost: the trace reader was too slow\n", tr_lost);
	}
out_close:
	close(tr_fd);
	__atomic_store_n(&tr_fd, -1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&tr_lock);
}

void trace_strcpy(char *dst, size_t cap, const char *src)
{
	size_t n = strnlen(src, cap - 1);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *const src_names[] = {
	[RSYS_SRC_MONITOR] = "monitor", [RSYS_SRC_DELEGATE] = "delegate", [RSYS_SRC_TEST] = "test",
};

static const char *const call_names[RSYS_EV_MAX] = {
	[RSYS_EV_SOCKET] = "socket", [RSYS_EV_CONNECT] = "connect", [RSYS_EV_BIND] = "bind",
	[RSYS_EV_LISTEN] = "listen", [RSYS_EV_SENDTO] = "sendto", [RSYS_EV_ACCEPT] = "accept",
	[RSYS_EV_CLOSE] = "close", [RSYS_EV_EXECVE] = "execve",
	[RSYS_EV_SETSOCKOPT] = "setsockopt", [RSYS_EV_CMSG] = "cmsg", [RSYS_EV_LOST] = "lost",
};

static const char *const verdict_names[RSYS_VERDICT_MAX] = {
	[RSYS_VERDICT_OBSERVED] = "observed", [RSYS_VERDICT_ALLOWED] = "allowed",
	[RSYS_VERDICT_ALLOWED_ALL] = "allowed-no-policy", [RSYS_VERDICT_UNCHECKED] = "unchecked",
	[RSYS_VERDICT_DENIED] = "denied", [RSYS_VERDICT_TRUSTED] = "trusted",
	[RSYS_VERDICT_UNTRUSTED] = "untrusted", [RSYS_VERDICT_ERROR] = "error",
	[RSYS_VERDICT_KILLED] = "killed",
};

#define NAME(tab, i)	((size_t)(i) < sizeof(tab) / sizeof(tab[0]) && (tab)[i] ? (tab)[i] : "unknown")

/* Appending to a bounded buffer: the length that snprintf would have reached. */
struct out {
	char *buf;
	size_t cap, len;
	bool json;
	bool first;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->cap ? o->buf + o->len : NULL, o->len < o->cap ? o->cap - o->len : 0,
		      fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += n;
}

static void put_key(struct out *o, const char *key)
{
	if (o->json)
		put(o, "%s\"%s\":", o->first ? "" : ",", key);
	else
		put(o, "%s%s=", o->first ? "" : " ", key);
	o->first = false;
}

/*
 * A string value: JSON-escaped, or in text bare when it is one plain word
 * and quoted with C-like escapes otherwise, so a line always splits on spaces.
 */
static void put_str(struct out *o, const char *key, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	bool quote = o->json || !*s;

	put_key(o, key);
	for (; !quote && *p; p++)
		quote = *p <= ' ' || *p == '"' || *p == '\\' || *p == '=' || *p >= 0x7f;
	if (!quote) {
		put(o, "%s", s);
		return;
	}
	put(o, "\"");
	for (p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\')
			put(o, "\\%c", *p);
		else if (*p < ' ' || *p >= 0x7f)
			put(o, o->json ? "\\u%04x" : "\\x%02x", *p);
		else
			put(o, "%c", *p);
	}
	put(o, "\"");
}

static void put_num(struct out *o, const char *key, long long v)
{
	put_key(o, key);
	put(o, "%lld", v);
}

int trace_format(const struct rsys_event *ev, bool json, char *buf, size_t len)
{
	struct out o = { .buf = buf, .cap = len, .json = json, .first = true };
	char tbuf[64], abuf[INET6_ADDRSTRLEN + 8], ip[INET6_ADDRSTRLEN], hex[65];
	time_t sec = ev->time_ns / 1000000000ull;
	char prog[sizeof(ev->prog) + 1], file[sizeof(ev->rule_file) + 1];
	struct tm tm;
	int i;

	if (len)
		buf[0] = '\0';
	gmtime_r(&sec, &tm);
	snprintf(tbuf, sizeof(tbuf), "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
		 (unsigned int)(ev->time_ns % 1000000000ull / 1000));
	if (json)
		put(&o, "{");
	put_str(&o, "time", tbuf);
	put_str(&o, "src", NAME(src_names, ev->src));
	put_num(&o, "producer", ev->producer);
	if (ev->lost)
		put_num(&o, "lost", ev->lost);
	put_str(&o, "call", NAME(call_names, ev->call));
	if (ev->call == RSYS_EV_LOST)
		goto out;
	if (ev->pid)
		put_num(&o, "pid", ev->pid);
	if (ev->tid)
		put_num(&o, "tid", ev->tid);
	if (ev->session)
		put_num(&o, "session", ev->session);
	if (ev->prog[0]) {
		memcpy(prog, ev->prog, sizeof(ev->prog));
		prog[sizeof(ev->prog)] = '\0';
		put_str(&o, "prog", prog);
	}
	if (ev->has_sha256) {
		for (i = 0; i < 32; i++)
			sprintf(hex + 2 * i, "%02x", ev->sha256[i]);
		put_str(&o, "sha256", hex);
	}
	if (ev->proto)
		put_str(&o, "proto", ev->proto == IPPROTO_TCP ? "tcp" :
			ev->proto == IPPROTO_UDP ? "udp" : ev->proto == IPPROTO_UDPLITE ? "udplite" :
			policy_proto_is_echo(ev->proto) ? "icmp" : "other");
	if (ev->family == AF_INET || ev->family == AF_INET6) {
		inet_ntop(ev->family, ev->addr, ip, sizeof(ip));
		snprintf(abuf, sizeof(abuf), ev->family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, ev->port);
		put_str(&o, "addr", abuf);
	}
	put_str(&o, "verdict", NAME(verdict_names, ev->verdict));
	if (ev->verdict == RSYS_VERDICT_ALLOWED && ev->rule_line > 0) {
		memcpy(file, ev->rule_file, sizeof(ev->rule_file));
		file[sizeof(ev->rule_file)] = '\0';
		snprintf(abuf, sizeof(abuf), ":%d", ev->rule_line);
		/* FILE:LINE as one value */
		if (strlen(file) + strlen(abuf) < sizeof(file)) {
			strcat(file, abuf);
			put_str(&o, "rule", file);
		}
	}
	if (ev->call == RSYS_EV_CLOSE) {
		put_num(&o, "bytes_in", ev->bytes_in);
		put_num(&o, "bytes_out", ev->bytes_out);
	} else {
		put_num(&o, "ret", ev->ret);
		if (ev->ret < 0 && strerrorname_np(-ev->ret))
			put_str(&o, "errno", strerrorname_np(-ev->ret));
	}
out:
	if (json)
		put(&o, "}");
	return o.len;
}
