// SPDX-License-Identifier: GPL-2.0
/* Parser, egress check and passport check for rsys policy files (format: policy/README.md). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <rsys/limits.h>
#include <rsys/policy.h>

#include "frame.h"
#include "sha256.h"
#include "log.h"

#define POLICY_LINE_MAX		8192
#define POLICY_MAX_WORDS	16
/* The "limit" lines: each at most once, 1..cap, the default when absent. */
static const struct policy_limit {
	const char *name;
	size_t off;			/* of its unsigned int in struct policy */
	unsigned int cap, def;
	const char *unit;		/* after the range in the error */
} policy_limits[] = {
	{ "fds", offsetof(struct policy, limit_fds), 65536, RSYS_DEF_LIMIT_FDS, "" },
	{ "inflight", offsetof(struct policy, limit_inflight), 1024, RSYS_DEF_LIMIT_INFLIGHT, "" },
	{ "sessions", offsetof(struct policy, limit_sessions), 1024, RSYS_DEF_LIMIT_SESSIONS, "" },
	{ "linger", offsetof(struct policy, limit_linger), 3600, RSYS_DEF_LIMIT_LINGER, " seconds" },
};

#define POLICY_N_LIMITS	(sizeof(policy_limits) / sizeof(policy_limits[0]))

static unsigned int *policy_limit(struct policy *p, size_t i)
{
	return (unsigned int *)((char *)p + policy_limits[i].off);
}

struct parser {
	struct policy *p;
	const char *file;
	int line;
	FILE *err;
	bool has_remote;
	bool has_limit[POLICY_N_LIMITS], has_client;
};

static int __attribute__((format(printf, 2, 3))) perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	if (!ps->err)
		return -EINVAL;
	fprintf(ps->err, "%s:%d: ", ps->file, ps->line);
	va_start(ap, fmt);
	vfprintf(ps->err, fmt, ap);
	va_end(ap);
	fputc('\n', ps->err);
	return -EINVAL;
}

static int hex_nibble(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_hex(const char *s, uint8_t out[32])
{
	int i;

	if (strlen(s) != 64)
		return -EINVAL;
	for (i = 0; i < 32; i++) {
		int hi = hex_nibble(s[2 * i]), lo = hex_nibble(s[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		out[i] = hi << 4 | lo;
	}
	return 0;
}

static int do_trusted(struct parser *ps, char **w, int n)
{
	struct policy_trusted *t;

	if (n != 2 && n != 4)
		return perr(ps, "usage: trusted PATH [sha256 HEX]");
	if (strcmp(w[1], "*") && w[1][0] != '/')
		return perr(ps, "trusted path '%s' must be absolute or '*'", w[1]);
	if (strlen(w[1]) >= POLICY_PATH_MAX)
		return perr(ps, "trusted path too long");
	if (ps->p->n_trusted >= POLICY_MAX_TRUSTED)
		return perr(ps, "too many trusted programs (at most %d)", POLICY_MAX_TRUSTED);
	t = &ps->p->trusted[ps->p->n_trusted];
	memset(t, 0, sizeof(*t));
	strcpy(t->path, w[1]);
	if (n == 4) {
		if (strcmp(w[2], "sha256"))
			return perr(ps, "unknown trusted option '%s' (expected sha256 HEX)", w[2]);
		if (parse_hex(w[3], t->sha256))
			return perr(ps, "bad sha256 '%s': expected 64 hex digits (sha256sum PATH)", w[3]);
		t->has_sha256 = true;
	}
	ps->p->n_trusted++;
	return 0;
}

/* "trusted-env NAME...": dynamic-loader variables a trusted program may be started with. */
static int do_trusted_env(struct parser *ps, char **w, int n)
{
	struct policy *p = ps->p;
	int i;

	if (n < 2)
		return perr(ps, "usage: trusted-env NAME... (e.g. LD_LIBRARY_PATH)");
	for (i = 1; i < n; i++) {
		if (strlen(w[i]) >= POLICY_ENV_NAME || strchr(w[i], '='))
			return perr(ps, "bad variable name '%s' (at most %d characters, no '=')",
				    w[i], POLICY_ENV_NAME - 1);
		if (p->n_trusted_env >= POLICY_MAX_TRUSTED_ENV)
			return perr(ps, "too many trusted-env names (at most %d)",
				    POLICY_MAX_TRUSTED_ENV);
		strcpy(p->trusted_env[p->n_trusted_env++], w[i]);
	}
	return 0;
}

static int do_remote(struct parser *ps, char **w, int n)
{
	int i;

	if (n < 2)
		return perr(ps, "usage: remote FAMILY... (inet, inet6)");
	if (ps->has_remote)
		return perr(ps, "duplicate 'remote' line: list every family on one line");
	for (i = 1; i < n; i++) {
		int fam;

		if (!strcmp(w[i], "inet"))
			fam = AF_INET;
		else if (!strcmp(w[i], "inet6"))
			fam = AF_INET6;
		else
			return perr(ps, "unknown family '%s' (expected inet or inet6)", w[i]);
		ps->p->remote_families |= 1ull << fam;
	}
	ps->has_remote = true;
	return 0;
}

static int do_delegate(struct parser *ps, char **w, int n)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (n != 2)
		return perr(ps, "usage: delegate ADDR (unix:PATH, tcp:HOST:PORT or vsock:CID:PORT)");
	if (ps->p->delegate[0])
		return perr(ps, "duplicate 'delegate' line: a policy names one delegate");
	if (strlen(w[1]) >= sizeof(ps->p->delegate))
		return perr(ps, "delegate address too long");
	if (addr_parse(w[1], &ss, &len, NULL))
		return perr(ps, "bad delegate address '%s' (expected unix:PATH, tcp:HOST:PORT or vsock:CID:PORT)",
			    w[1]);
	strcpy(ps->p->delegate, w[1]);
	return 0;
}

static int parse_cidr(struct parser *ps, const char *s, struct policy_rule *r)
{
	char buf[INET6_ADDRSTRLEN + 8];
	char *slash, *end;
	int max, i;
	long pfx;

	if (strlen(s) >= sizeof(buf))
		return perr(ps, "bad CIDR '%s'", s);
	strcpy(buf, s);
	slash = strchr(buf, '/');
	if (slash)
		*slash = '\0';
	if (inet_pton(AF_INET, buf, r->addr) == 1) {
		r->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, r->addr) == 1) {
		r->family = AF_INET6;
		max = 128;
	} else {
		return perr(ps, "bad CIDR '%s': expected an IPv4 or IPv6 address, optionally /PREFIX", s);
	}
	pfx = max;
	if (slash) {
		errno = 0;
		pfx = strtol(slash + 1, &end, 10);
		if (errno || *end || !slash[1] || pfx < 0 || pfx > max)
			return perr(ps, "bad CIDR '%s': prefix must be 0..%d", s, max);
	}
	r->prefix = pfx;
	for (i = pfx; i < max; i++)
		if (r->addr[i / 8] & (0x80 >> (i % 8)))
			return perr(ps, "bad CIDR '%s': address has bits set beyond /%ld", s, pfx);
	return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *v)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	*v = strtoul(s, &end, 10);
	if (errno || *end || *v > max)
		return -EINVAL;
	return 0;
}

static int parse_ports(struct parser *ps, const char *s, struct policy_rule *r)
{
	char buf[16];
	char *dash;
	unsigned long lo, hi;

	if (!strcmp(s, "*")) {
		r->port_lo = 0;
		r->port_hi = 65535;
		return 0;
	}
	if (strlen(s) >= sizeof(buf))
		goto bad;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash = '\0';
	if (parse_uint(buf, 65535, &lo))
		goto bad;
	hi = lo;
	if (dash && parse_uint(dash + 1, 65535, &hi))
		goto bad;
	if (hi < lo)
		return perr(ps, "bad port range '%s': %lu > %lu", s, lo, hi);
	r->port_lo = lo;
	r->port_hi = hi;
	return 0;
bad:
	return perr(ps, "bad ports '%s': expected N, N-M or * (0..65535)", s);
}

static int do_allow(struct parser *ps, char **w, int n)
{
	struct policy_rule *r;
	bool icmp = false;
	int i = 1, ret;

	if (ps->p->n_rules >= POLICY_MAX_RULES)
		return perr(ps, "too many allow rules (at most %d)", POLICY_MAX_RULES);
	r = &ps->p->rules[ps->p->n_rules];
	memset(r, 0, sizeof(*r));
	r->line = ps->line;
	r->kind = POLICY_ALLOW_CONNECT;
	if (i < n && !strcmp(w[i], "bind")) {
		r->kind = POLICY_ALLOW_BIND;
		i++;
	}
	r->proto = 0;
	if (i < n && !strcmp(w[i], "tcp")) {
		r->proto = IPPROTO_TCP;
		i++;
	} else if (i < n && !strcmp(w[i], "udp")) {
		r->proto = IPPROTO_UDP;
		i++;
	} else if (i < n && !strcmp(w[i], "udplite")) {
		r->proto = IPPROTO_UDPLITE;
		i++;
	} else if (i < n && !strcmp(w[i], "any")) {
		i++;
	} else if (i < n && !strcmp(w[i], "icmp")) {
		if (r->kind == POLICY_ALLOW_BIND)
			return perr(ps, "no 'allow bind icmp': a ping socket's bind is judged by 'allow bind any' rules");
		icmp = true;
		i++;
	}
	if (n - i != (icmp ? 1 : 2))
		return perr(ps, "usage: allow [bind] [tcp|udp|udplite|any] CIDR PORTS | allow icmp CIDR");
	ret = parse_cidr(ps, w[i], r);
	if (ret)
		return ret;
	if (icmp) {
		/* A ping socket's echoes; the kernel chooses their identifier (the "port"). */
		r->proto = r->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6;
		r->port_lo = 0;
		r->port_hi = 65535;
	} else {
		ret = parse_ports(ps, w[i + 1], r);
		if (ret)
			return ret;
	}
	ps->p->n_rules++;
	return 0;
}

static int do_client(struct parser *ps, char **w, int n)
{
	unsigned long v;
	int i;

	if (n < 3 || strcmp(w[1], "uid"))
		return perr(ps, "usage: client uid UID... (numeric uids the delegate serves)");
	if (ps->has_client)
		return perr(ps, "duplicate 'client' line: list every uid on one line");
	if (n - 2 > POLICY_MAX_CLIENTS)
		return perr(ps, "too many client uids (at most %d)", POLICY_MAX_CLIENTS);
	for (i = 2; i < n; i++) {
		/* (uid_t)-1 is "no uid" to the kernel: never a client. */
		if (parse_uint(w[i], UINT32_MAX - 1, &v))
			return perr(ps, "bad client uid '%s': expected a number 0..%u", w[i],
				    UINT32_MAX - 1);
		ps->p->client_uids[ps->p->n_client_uids++] = v;
	}
	ps->has_client = true;
	return 0;
}

static int do_limit(struct parser *ps, char **w, int n)
{
	unsigned long v;
	size_t i;

	if (n != 3)
		return perr(ps, "usage: limit fds N | limit inflight N | limit sessions N | limit linger SECONDS");
	for (i = 0; i < POLICY_N_LIMITS && strcmp(w[1], policy_limits[i].name); i++)
		;
	if (i == POLICY_N_LIMITS)
		return perr(ps, "unknown limit '%s' (expected fds, inflight, sessions or linger)", w[1]);
	if (ps->has_limit[i])
		return perr(ps, "duplicate 'limit %s' line", w[1]);
	if (parse_uint(w[2], policy_limits[i].cap, &v) || !v)
		return perr(ps, "bad limit %s '%s': expected 1..%u%s", w[1], w[2], policy_limits[i].cap,
			    policy_limits[i].unit);
	*policy_limit(ps->p, i) = v;
	ps->has_limit[i] = true;
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct parser *ps, char **w, int n);
} directives[] = {
	{ "trusted", do_trusted },
	{ "trusted-env", do_trusted_env },
	{ "remote", do_remote },
	{ "delegate", do_delegate },
	{ "allow", do_allow },
	{ "limit", do_limit },
	{ "client", do_client },
};

/* Split @line into words in place; a '#' starting a word starts a comment. */
static int split_words(struct parser *ps, char *line, char **w)
{
	int n = 0;
	char *s = line;

	for (;;) {
		while (*s == ' ' || *s == '\t' || *s == '\r')
			s++;
		if (!*s || *s == '#')
			break;
		if (n == POLICY_MAX_WORDS)
			return perr(ps, "too many words on one line");
		w[n++] = s;
		while (*s && *s != ' ' && *s != '\t' && *s != '\r')
			s++;
		if (*s)
			*s++ = '\0';
	}
	return n;
}

static int parse_line(struct parser *ps, char *line)
{
	char *w[POLICY_MAX_WORDS];
	size_t i;
	int n;

	n = split_words(ps, line, w);
	if (n <= 0)
		return n;
	for (i = 0; i < sizeof(directives) / sizeof(directives[0]); i++)
		if (!strcmp(w[0], directives[i].name))
			return directives[i].fn(ps, w, n);
	return perr(ps, "unknown directive '%s' (expected trusted, trusted-env, remote, delegate, allow, limit or client)",
		    w[0]);
}

/* A NUL would hide the rest of its line from cat and grep; other controls would mislead too. */
static int check_chars(struct parser *ps, const char *line, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = line[i];

		if (ch == '\t' || ch == '\r' || (ch >= 0x20 && ch != 0x7f))
			continue;
		if (!ch)
			return perr(ps, "NUL byte at column %zu (a policy is text)", i + 1);
		return perr(ps, "control character 0x%02x at column %zu (a policy is text)", ch, i + 1);
	}
	return 0;
}

int policy_parse_buf(struct policy *p, const char *buf, size_t len, const char *name, FILE *err)
{
	struct parser ps = { .p = p, .file = name, .err = err };
	const char *s = buf, *end = buf + len, *nl;
	char *line;
	int ret = 0;
	size_t i;

	memset(p, 0, sizeof(*p));
	if (strlen(name) >= sizeof(p->file)) {
		if (err)
			fprintf(err, "Error: policy path too long\n");
		return -ENAMETOOLONG;
	}
	strcpy(p->file, name);
	line = malloc(POLICY_LINE_MAX);
	if (!line)
		return -ENOMEM;
	for (; s < end; s = nl + 1) {
		size_t n;

		nl = memchr(s, '\n', end - s);
		if (!nl)
			nl = end;
		n = nl - s;
		ps.line++;
		if (n > POLICY_LINE_MAX - 2) {
			ret = perr(&ps, "line too long (at most %d bytes)", POLICY_LINE_MAX - 2);
			goto out_free;
		}
		ret = check_chars(&ps, s, n);
		if (ret)
			goto out_free;
		memcpy(line, s, n);
		line[n] = '\0';
		ret = parse_line(&ps, line);
		if (ret < 0)
			goto out_free;
		ret = 0;
	}
	if (!ps.has_remote)
		p->remote_families = 1ull << AF_INET | 1ull << AF_INET6;
	for (i = 0; i < POLICY_N_LIMITS; i++)
		if (!ps.has_limit[i])
			*policy_limit(p, i) = policy_limits[i].def;
	if (!ps.has_client)
		p->n_client_uids = 1;	/* client_uids[0] is 0: root only */
out_free:
	free(line);
	return ret;
}

int policy_load(struct policy *p, const char *path, FILE *err)
{
	struct stat sb;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, ret;

	/* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		ret = -errno;
		if (err)
			fprintf(err, "Error: cannot open policy %s: %s\n", path, err_str(-ret));
		return ret;
	}
	if (fstat(fd, &sb)) {
		ret = -errno;
		if (err)
			fprintf(err, "Error: cannot stat policy %s: %s\n", path, err_str(-ret));
		goto out_close;
	}
	if (!S_ISREG(sb.st_mode)) {
		ret = -EINVAL;
		if (err)
			fprintf(err, "Error: policy %s is not a regular file\n", path);
		goto out_close;
	}
	/* One byte more than the cap tells a file that grew past it while read. */
	buf = malloc(POLICY_FILE_MAX + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out_close;
	}
	while (len <= POLICY_FILE_MAX &&
	       (n = read(fd, buf + len, POLICY_FILE_MAX + 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			if (err)
				fprintf(err, "Error: cannot read policy %s: %s\n", path, err_str(-ret));
			goto out_free;
		}
		len += n;
	}
	if (len > POLICY_FILE_MAX) {
		ret = -EFBIG;
		if (err)
			fprintf(err, "Error: policy %s is larger than %d bytes\n", path, POLICY_FILE_MAX);
		goto out_free;
	}
	ret = policy_parse_buf(p, buf, len, path, err);
out_free:
	free(buf);
out_close:
	close(fd);
	return ret;
}

bool policy_is_remote_family(const struct policy *p, int family)
{
	return family >= 0 && family < 64 && (p->remote_families & (1ull << family));
}

static bool prefix_match(const uint8_t *a, const uint8_t *net, int prefix)
{
	int full = prefix / 8, rest = prefix % 8;

	if (memcmp(a, net, full))
		return false;
	return !rest || !((a[full] ^ net[full]) & (0xff00 >> rest));
}

int policy_allows(const struct policy *p, enum policy_rule_kind kind, int proto,
		   const struct sockaddr *sa, socklen_t len)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
	const uint8_t *addr;
	uint16_t port;
	int family, i;
	bool icmp;

	if (!sa || len < sizeof(sa->sa_family))
		return 0;
	if (sa->sa_family == AF_INET && len >= sizeof(*sin)) {
		family = AF_INET;
		addr = (const uint8_t *)&sin->sin_addr;
		port = ntohs(sin->sin_port);
	} else if (sa->sa_family == AF_INET6 &&
		   len >= offsetof(struct sockaddr_in6, sin6_scope_id)) {
		/* The kernel accepts the RFC 2133 form without sin6_scope_id. */
		port = ntohs(sin6->sin6_port);
		/* A v4-mapped destination reaches the IPv4 host: judge it by the v4 rules. */
		if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
			family = AF_INET;
			addr = sin6->sin6_addr.s6_addr + 12;
		} else {
			family = AF_INET6;
			addr = sin6->sin6_addr.s6_addr;
		}
	} else {
		return 0;
	}
	/*
	 * The destination port of a ping socket's echo is not the caller's to
	 * choose (the kernel ignores it): "allow icmp" rules, and "any" rules
	 * for every port, match it, by address alone.
	 */
	icmp = kind == POLICY_ALLOW_CONNECT && policy_proto_is_echo(proto);
	for (i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];

		if (r->kind != kind || r->family != family)
			continue;
		if (icmp) {
			if (r->proto ? r->proto != proto : r->port_lo != 0 || r->port_hi != 65535)
				continue;
		} else if ((r->proto && r->proto != proto) || port < r->port_lo || port > r->port_hi) {
			continue;
		}
		if (prefix_match(addr, r->addr, r->prefix))
			return r->line;
	}
	return 0;
}

bool policy_trusts_all(const struct policy *p)
{
	int i;

	for (i = 0; i < p->n_trusted; i++)
		if (!strcmp(p->trusted[i].path, "*") && !p->trusted[i].has_sha256)
			return true;
	return false;
}

/* Does the 'trusted' path @tpath name the file at the canonical path @name (or link to it)? */
static bool trusted_path_is(const char *tpath, const char *name)
{
	char real[PATH_MAX];

	return !strcmp(tpath, name) || (realpath(tpath, real) && !strcmp(real, name));
}

/*
 * The canonical path of the open file @fd in the monitor's view, if that
 * path still names this very file; "" for a file that has none there (a
 * memfd, a deleted file, a file of another mount namespace): such an image
 * is judged by its content alone.
 */
static void fd_name(int fd, char *out, size_t cap)
{
	struct stat a, b;
	char link[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, out, cap - 1);
	if (n <= 0 || (size_t)n >= cap - 1 || out[0] != '/')
		goto anon;
	out[n] = '\0';
	if (fstat(fd, &a) || stat(out, &b) || a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		goto anon;
	return;
anon:
	out[0] = '\0';
}

int policy_check_fd(const struct policy *p, int fd, const char *what, FILE *err)
{
	char name[PATH_MAX];
	uint8_t digest[32];
	bool have_digest = false, named = false;
	int i, ret;

	fd_name(fd, name, sizeof(name));
	for (i = 0; i < p->n_trusted; i++) {
		const struct policy_trusted *t = &p->trusted[i];

		if (strcmp(t->path, "*") && !(name[0] && trusted_path_is(t->path, name)))
			continue;
		named = true;
		if (!t->has_sha256)
			return 0;
		if (!have_digest) {
			ret = sha256_fd(fd, digest);
			if (ret) {
				if (err)
					fprintf(err, "Error: cannot read %s to check its sha256: %s\n",
						what, err_str(-ret));
				return ret;
			}
			have_digest = true;
		}
		if (!memcmp(digest, t->sha256, sizeof(digest)))
			return 0;
	}
	if (err) {
		if (!name[0])
			fprintf(err, "Error: %s is not trusted: it has no path (a memfd or a deleted file) and its sha256 matches no 'trusted * sha256 HEX' line of the policy %s\n",
				what, p->file);
		else if (named)
			fprintf(err, "Error: %s is not trusted: its sha256 does not match the policy %s (update the digest with sha256sum %s)\n",
				name, p->file, name);
		else
			fprintf(err, "Error: %s is not trusted: the policy %s has no 'trusted' line for it\n",
				name, p->file);
	}
	return -EPERM;
}

int policy_check_trusted(const struct policy *p, const char *path, FILE *err)
{
	int fd, ret;

	/* O_NONBLOCK: a FIFO named as the program must not hang the check */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		ret = -errno;
		if (err)
			fprintf(err, "Error: cannot read %s to check its passport: %s\n", path,
				err_str(-ret));
		return ret;
	}
	ret = policy_check_fd(p, fd, path, err);
	close(fd);
	return ret;
}
