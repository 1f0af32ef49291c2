/* SPDX-License-Identifier: GPL-2.0 */
/* In-memory form of an rsys policy file (format: policy/README.md), shared by loader and delegate. */
#ifndef RSYS_POLICY_H
#define RSYS_POLICY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <netinet/in.h>
#include <sys/socket.h>

#define POLICY_MAX_TRUSTED	32
#define POLICY_MAX_RULES	64
#define POLICY_PATH_MAX		4096
#define POLICY_MAX_CLIENTS	16
#define POLICY_FILE_MAX		(1 << 20)	/* bytes; a policy is a few lines */
#define POLICY_MAX_TRUSTED_ENV	16
#define POLICY_ENV_NAME		31	/* variable name, NUL included */

struct policy_trusted {
	char path[POLICY_PATH_MAX];	/* absolute path, or "*" for any program */
	bool has_sha256;
	uint8_t sha256[32];		/* the passport: digest of the binary */
};

enum policy_rule_kind {
	POLICY_ALLOW_CONNECT,		/* "allow PROTO CIDR PORTS": egress (connect, sendto) */
	POLICY_ALLOW_BIND,		/* "allow bind PROTO CIDR PORTS": bind/listen */
};

struct policy_rule {
	enum policy_rule_kind kind;
	int proto;			/* IPPROTO_TCP, IPPROTO_UDP, or 0 for any */
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];		/* network address, network byte order */
	int prefix;			/* CIDR prefix length */
	uint16_t port_lo, port_hi;	/* host byte order, inclusive; 0-65535 for "*" */
	int line;			/* line in the policy file, for messages */
};

struct policy {
	char file[POLICY_PATH_MAX];
	struct policy_trusted trusted[POLICY_MAX_TRUSTED];
	int n_trusted;
	char trusted_env[POLICY_MAX_TRUSTED_ENV][POLICY_ENV_NAME];	/* "trusted-env" */
	int n_trusted_env;
	uint64_t remote_families;	/* bit (1 << AF_x) per family executed remotely */
	char delegate[256];		/* delegate address, e.g. "unix:/run/rsys/delegate.sock" */
	struct policy_rule rules[POLICY_MAX_RULES];
	int n_rules;
	unsigned int limit_fds;		/* max remote handles per session */
	unsigned int limit_inflight;	/* max requests executing per session */
	unsigned int limit_sessions;	/* max sessions per client uid */
	unsigned int limit_linger;	/* s an ended session's answered sends may take */
	uint32_t client_uids[POLICY_MAX_CLIENTS];	/* uids the delegate serves on unix: */
	int n_client_uids;		/* default: 1, root only */
};

/*
 * Parse the regular file @path (at most POLICY_FILE_MAX bytes) into @p. On
 * error prints "FILE:LINE: message" to @err and returns -EINVAL, or -errno if
 * the file cannot be read (-EINVAL if it is not a regular file, -EFBIG if
 * too large).
 */
int policy_load(struct policy *p, const char *path, FILE *err);

/*
 * Parse the @len bytes at @buf, named @name in messages, into @p: what
 * policy_load() does once the file is read. NUL bytes and control
 * characters other than tab and CR are "NAME:LINE: ..." errors.
 */
int policy_parse_buf(struct policy *p, const char *buf, size_t len, const char *name, FILE *err);

/* True if the policy executes sockets of @family remotely. */
bool policy_is_remote_family(const struct policy *p, int family);

/*
 * Egress check done by the delegate: may a socket of @proto connect/send to
 * @sa (kind POLICY_ALLOW_CONNECT) or bind to it (POLICY_ALLOW_BIND)? The
 * line of the first rule that allows it (> 0, for trace events), or 0.
 * AF_UNIX and other non-IP families are refused.
 */
int policy_allows(const struct policy *p, enum policy_rule_kind kind, int proto,
		   const struct sockaddr *sa, socklen_t len);

/*
 * A ping socket's protocol? Its echoes are judged by "allow icmp CIDR"
 * rules, by address alone: the kernel chooses their identifier (the port).
 */
static inline bool policy_proto_is_echo(int proto)
{
	return proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6;
}

/* Does @p trust every program, whatever its digest ("trusted *")? */
bool policy_trusts_all(const struct policy *p);
/*
 * Passport check of the program image open as @fd (named @what in
 * messages): 0 if @p trusts it, else -EPERM (with a message naming the
 * reason on @err), or -errno if it cannot be read. A 'trusted PATH' line
 * matches when PATH, seen from the monitor, is this very file; an
 * image without such a path (memfd, deleted file) only by a digest of
 * 'trusted * sha256 HEX'.
 */
int policy_check_fd(const struct policy *p, int fd, const char *what, FILE *err);
/* The same for the program at @path. */
int policy_check_trusted(const struct policy *p, const char *path, FILE *err);

#endif
