// SPDX-License-Identifier: GPL-2.0
/* The monitor's trace events: egress calls with the delegate's verdict, passports, bytes per remote socket. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>

#include "events.h"
#include "sha256.h"
#include "supervisor.h"
#include "trace.h"

#define DIGEST_CACHE	8	/* programs whose sha256 is remembered */
#define SOCK_BUCKETS	64

void (*mon_event_hook)(const struct rsys_event *ev);

static pthread_mutex_t ev_lock = PTHREAD_MUTEX_INITIALIZER;
static char policy_file[POLICY_PATH_MAX];

/* Digests of the programs seen, by path: each binary is read once. */
static struct {
	char path[sizeof(((struct rsys_event *)0)->prog)];
	uint8_t sha256[32];
} digests[DIGEST_CACHE];
static unsigned int n_digests;

/* What a close event says about a remote socket. */
struct sockinfo {
	uint64_t h;
	pid_t pid;
	uint8_t family, proto;
	uint16_t port;
	uint8_t addr[16];
	uint64_t bytes_in, bytes_out;
	struct sockinfo *next;
};

static struct sockinfo *socks[SOCK_BUCKETS];

void mon_events_set_policy_file(const char *file)
{
	trace_strcpy(policy_file, sizeof(policy_file), file);
}

/* The digest of @ev->prog into @ev, from the cache or read through /proc/PID/exe. */
static void event_digest(struct rsys_event *ev, const char *exe)
{
	unsigned int i;

	pthread_mutex_lock(&ev_lock);
	for (i = 0; i < n_digests && i < DIGEST_CACHE; i++) {
		if (!strcmp(digests[i].path, ev->prog)) {
			memcpy(ev->sha256, digests[i].sha256, 32);
			ev->has_sha256 = 1;
			break;
		}
	}
	pthread_mutex_unlock(&ev_lock);
	if (ev->has_sha256 || sha256_file(exe, ev->sha256))
		return;
	ev->has_sha256 = 1;
	pthread_mutex_lock(&ev_lock);
	i = n_digests++ % DIGEST_CACHE;
	memcpy(digests[i].path, ev->prog, sizeof(digests[i].path));
	memcpy(digests[i].sha256, ev->sha256, 32);
	pthread_mutex_unlock(&ev_lock);
}

void mon_event_emit(struct rsys_event *ev)
{
	void (*hook)(const struct rsys_event *) = mon_event_hook;
	char exe[64];
	ssize_t n;

	if (!hook && !trace_wanted())
		return;
	if (!ev->prog[0] && ev->pid > 0) {
		snprintf(exe, sizeof(exe), "/proc/%d/exe", ev->pid);
		n = readlink(exe, ev->prog, sizeof(ev->prog) - 1);
		ev->prog[n > 0 ? n : 0] = '\0';
		if (n > 0)
			event_digest(ev, exe);
	}
	if (hook)
		hook(ev);
	trace_emit(ev);
}

void mon_event_exec(pid_t pid, pid_t tid, const char *path, const char *open_path, bool trusted,
		    int ret)
{
	struct rsys_event ev = {
		.call = RSYS_EV_EXECVE,
		.verdict = trusted ? RSYS_VERDICT_TRUSTED : RSYS_VERDICT_UNTRUSTED,
		.pid = pid,
		.tid = tid,
		.ret = ret,
	};

	if (!mon_event_hook && !trace_wanted())
		return;
	trace_strcpy(ev.prog, sizeof(ev.prog), path);
	if (!sha256_file(open_path ? open_path : path, ev.sha256))
		ev.has_sha256 = 1;
	mon_event_emit(&ev);
}

/* Address @addr (@len bytes) into @ev; false if it is no IPv4/IPv6 address. */
static bool event_addr(struct rsys_event *ev, const void *addr, socklen_t len)
{
	const struct sockaddr_in *sin = addr;
	const struct sockaddr_in6 *sin6 = addr;

	if (!addr || len < sizeof(sa_family_t))
		return false;
	if (sin->sin_family == AF_INET && len >= sizeof(*sin)) {
		ev->family = AF_INET;
		memcpy(ev->addr, &sin->sin_addr, 4);
		ev->port = ntohs(sin->sin_port);
		return true;
	}
	if (sin6->sin6_family == AF_INET6 && len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
		ev->family = AF_INET6;
		memcpy(ev->addr, &sin6->sin6_addr, 16);
		ev->port = ntohs(sin6->sin6_port);
		return true;
	}
	return false;
}

static struct sockinfo *sock_find(uint64_t h)
{
	struct sockinfo *si;

	for (si = socks[h % SOCK_BUCKETS]; si; si = si->next)
		if (si->h == h)
			return si;
	return NULL;
}

void mon_event_call(struct sv_call *c, int call, uint64_t h, const void *addr, socklen_t len,
		    int64_t ret, int64_t rule, bool lost)
{
	struct rsys_event ev = {
		.call = call,
		.pid = c->tgid,
		.tid = c->tid,
		.ret = ret,
	};
	struct sockinfo *si;
	bool has_addr = event_addr(&ev, addr, len);

	pthread_mutex_lock(&ev_lock);
	si = sock_find(h);
	if (si) {
		ev.proto = si->proto;
		/* The peer named in the close event. */
		if (call == RSYS_EV_CONNECT && has_addr && (ret >= 0 || ret == -EINPROGRESS)) {
			si->family = ev.family;
			si->port = ev.port;
			memcpy(si->addr, ev.addr, sizeof(si->addr));
		}
	}
	pthread_mutex_unlock(&ev_lock);
	if (lost)
		ev.verdict = RSYS_VERDICT_ERROR;
	else if (rule > 0)
		ev.verdict = RSYS_VERDICT_ALLOWED;
	else if (rule == RSYS_RULE_NOPOLICY)
		ev.verdict = RSYS_VERDICT_ALLOWED_ALL;
	else if (rule == RSYS_RULE_DENIED)
		ev.verdict = RSYS_VERDICT_DENIED;
	else if (call == RSYS_EV_ACCEPT)
		ev.verdict = RSYS_VERDICT_OBSERVED;
	else
		ev.verdict = RSYS_VERDICT_UNCHECKED;
	if (rule > 0) {
		ev.rule_line = rule;
		trace_strcpy(ev.rule_file, sizeof(ev.rule_file), policy_file[0] ? policy_file : "?");
	}
	mon_event_emit(&ev);
}

void mon_sock_new(uint64_t h, pid_t pid, int family, int type, int proto, uint64_t parent)
{
	struct sockinfo *si = calloc(1, sizeof(*si)), *p;

	if (!si)
		return;
	si->h = h;
	si->pid = pid;
	pthread_mutex_lock(&ev_lock);
	p = family ? NULL : sock_find(parent);
	if (p) {
		si->proto = p->proto;
	} else if (proto) {
		si->proto = proto;	/* UDP-Lite, ping sockets: judged by their own rules */
	} else {
		type &= 0xf;
		si->proto = type == SOCK_STREAM ? IPPROTO_TCP : type == SOCK_DGRAM ? IPPROTO_UDP : 0;
	}
	si->next = socks[h % SOCK_BUCKETS];
	socks[h % SOCK_BUCKETS] = si;
	pthread_mutex_unlock(&ev_lock);
}

void mon_sock_bytes(uint64_t h, uint64_t in, uint64_t out)
{
	struct sockinfo *si;

	pthread_mutex_lock(&ev_lock);
	si = sock_find(h);
	if (si) {
		si->bytes_in += in;
		si->bytes_out += out;
	}
	pthread_mutex_unlock(&ev_lock);
}

void mon_sock_gone(uint64_t h)
{
	struct sockinfo **pp, *si = NULL;
	struct rsys_event ev = { .call = RSYS_EV_CLOSE, .verdict = RSYS_VERDICT_OBSERVED };

	pthread_mutex_lock(&ev_lock);
	for (pp = &socks[h % SOCK_BUCKETS]; *pp; pp = &(*pp)->next) {
		if ((*pp)->h == h) {
			si = *pp;
			*pp = si->next;
			break;
		}
	}
	pthread_mutex_unlock(&ev_lock);
	if (!si)
		return;
	ev.pid = si->pid;
	ev.proto = si->proto;
	ev.family = si->family;
	ev.port = si->port;
	memcpy(ev.addr, si->addr, sizeof(ev.addr));
	ev.bytes_in = si->bytes_in;
	ev.bytes_out = si->bytes_out;
	free(si);
	mon_event_emit(&ev);
}
