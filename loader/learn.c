// SPDX-License-Identifier: GPL-2.0
/* "rsys-load learn": run a program under a permissive policy and write the smallest policy allowing what it did. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>

#include "cmds.h"
#include "events.h"
#include "log.h"
#include "trace.h"

#define LEARN_MAX	POLICY_MAX_RULES	/* what one policy can hold */

/* The permissive policy of the run: every program trusted, the sandbox kept. */
static const char learn_policy[] = "trusted *\nremote inet inet6\n";

/* One line of the written policy and the calls that needed it. */
struct learned {
	int call;			/* RSYS_EV_EXECVE, RSYS_EV_CONNECT (also sendto) or RSYS_EV_BIND */
	uint8_t proto, family;
	uint8_t addr[16];
	uint16_t port;
	uint8_t sha256[32];
	bool has_sha256;
	char prog[sizeof(((struct rsys_event *)0)->prog)];
	unsigned int n[RSYS_EV_MAX];	/* calls seen, per enum rsys_ev_call */
};

static pthread_mutex_t learn_lock = PTHREAD_MUTEX_INITIALIZER;
static struct learned learned[LEARN_MAX];
static int n_learned;
static unsigned int n_dropped;		/* lines that did not fit */

static void learn_usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-load learn --policy OUT --delegate ADDR [--tls-cert FILE --tls-key FILE\n"
		"                       --tls-ca FILE] [--netns NAME] [--uid UID | --no-sandbox]\n"
		"                       [-v] -- PROG [ARGS...]\n"
		"\n"
		"Run PROG as \"rsys-load run\" does, in the same sandbox, but with every program\n"
		"trusted, and write to OUT the smallest policy that allows exactly what it did:\n"
		"PROG itself (trusted PATH sha256 HEX), the destinations it connected or\n"
		"sent to (allow PROTO ADDR PORT) and the addresses it bound (allow bind ...), each\n"
		"commented with the calls that needed it. The delegate at ADDR must allow what\n"
		"PROG does while it learns: run it without --policy (or with a permissive one).\n"
		"Exits with PROG's status.\n"
		"\n"
		"  --policy OUT      the policy to write (replaced if it exists)\n"
		"  --delegate ADDR   the learning delegate (unix:PATH, tcp:HOST:PORT); also the\n"
		"                    'delegate' line of OUT\n"
		"  other options     as for rsys-load run (always in remote mode)\n");
}

/* A ping socket's send or connect: judged by "allow icmp CIDR" (lib/policy.c). */
static bool learn_echo(int proto, int call)
{
	return call != RSYS_EV_BIND && policy_proto_is_echo(proto);
}

static bool same(const struct learned *l, const struct rsys_event *ev, int call)
{
	if (l->call != call)
		return false;
	if (call == RSYS_EV_EXECVE)
		return !strcmp(l->prog, ev->prog);
	/* an echo's destination port is not the program's: "allow icmp" has none */
	return l->proto == ev->proto && l->family == ev->family &&
	       (l->port == ev->port || learn_echo(l->proto, call)) &&
	       !memcmp(l->addr, ev->addr, sizeof(l->addr));
}

/*
 * The address the delegate judges: a v4-mapped one is its IPv4 host, and
 * a connect to the unspecified address reaches the loopback host.
 */
static void learn_normalise(struct rsys_event *ev, int call)
{
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };
	static const uint8_t zero[16];

	if (ev->family == AF_INET6 && !memcmp(ev->addr, mapped, sizeof(mapped))) {
		memmove(ev->addr, ev->addr + 12, 4);
		memset(ev->addr + 4, 0, 12);
		ev->family = AF_INET;
	}
	if (call != RSYS_EV_CONNECT || memcmp(ev->addr, zero, ev->family == AF_INET ? 4 : 16))
		return;
	if (ev->family == AF_INET) {
		ev->addr[0] = 127;
		ev->addr[3] = 1;
	} else {
		ev->addr[15] = 1;
	}
}

/* mon_event_hook: remember what the run needed. */
static void learn_record(const struct rsys_event *e)
{
	struct rsys_event ev = *e;
	int call = ev.call == RSYS_EV_SENDTO ? RSYS_EV_CONNECT : ev.call, i;

	if (ev.call == RSYS_EV_EXECVE) {
		if (ev.verdict != RSYS_VERDICT_TRUSTED || !ev.prog[0])
			return;
	} else if (ev.call == RSYS_EV_CONNECT || ev.call == RSYS_EV_SENDTO || ev.call == RSYS_EV_BIND) {
		/* What the delegate refused or never judged (no address) is not learned. */
		if ((ev.verdict != RSYS_VERDICT_ALLOWED && ev.verdict != RSYS_VERDICT_ALLOWED_ALL) ||
		    !ev.family)
			return;
		learn_normalise(&ev, call);
	} else {
		return;
	}
	pthread_mutex_lock(&learn_lock);
	for (i = 0; i < n_learned && !same(&learned[i], &ev, call); i++)
		;
	if (i == n_learned) {
		if (n_learned == LEARN_MAX) {
			n_dropped++;
			goto out;
		}
		memset(&learned[i], 0, sizeof(learned[i]));
		learned[i].call = call;
		learned[i].proto = ev.proto;
		learned[i].family = ev.family;
		learned[i].port = ev.port;
		memcpy(learned[i].addr, ev.addr, sizeof(ev.addr));
		memcpy(learned[i].prog, ev.prog, sizeof(ev.prog));
		learned[i].has_sha256 = ev.has_sha256;
		memcpy(learned[i].sha256, ev.sha256, sizeof(ev.sha256));
		n_learned++;
	}
	learned[i].n[ev.call]++;
out:
	pthread_mutex_unlock(&learn_lock);
	/* A dual-stack bind to :: binds 0.0.0.0 too, and the delegate wants both allowed. */
	if (call == RSYS_EV_BIND && ev.family == AF_INET6 &&
	    IN6_IS_ADDR_UNSPECIFIED((const struct in6_addr *)ev.addr)) {
		ev.family = AF_INET;
		learn_record(&ev);
	}
}

/* @s on one comment line: control characters would end it or make the policy unreadable. */
static void put_comment_str(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc((unsigned char)*s < ' ' || *s == 0x7f ? '?' : *s, f);
}

static void put_calls(FILE *f, const struct learned *l)
{
	static const char *const names[RSYS_EV_MAX] = {
		[RSYS_EV_CONNECT] = "connect", [RSYS_EV_SENDTO] = "sendto",
		[RSYS_EV_BIND] = "bind", [RSYS_EV_EXECVE] = "execve",
	};
	const char *sep = "# needed by ";
	int c;

	for (c = 0; c < RSYS_EV_MAX; c++) {
		if (!l->n[c] || !names[c])
			continue;
		fprintf(f, "%s%s x%u", sep, names[c], l->n[c]);
		sep = ", ";
	}
	fputc('\n', f);
}

static void put_rules(FILE *f, int call)
{
	char ip[INET6_ADDRSTRLEN];
	int i;

	for (i = 0; i < n_learned; i++) {
		const struct learned *l = &learned[i];

		if (l->call != call)
			continue;
		put_calls(f, l);
		inet_ntop(l->family, l->addr, ip, sizeof(ip));
		if (learn_echo(l->proto, call)) {
			fprintf(f, "allow icmp %s/%d\n", ip, l->family == AF_INET ? 32 : 128);
			continue;
		}
		fprintf(f, "allow %s%s %s/%d %u\n", call == RSYS_EV_BIND ? "bind " : "",
			l->proto == IPPROTO_TCP ? "tcp" : l->proto == IPPROTO_UDP ? "udp" :
			l->proto == IPPROTO_UDPLITE ? "udplite" : "any",
			ip, l->family == AF_INET ? 32 : 128, l->port);
	}
}

/* The policy text of what was learned, for the run of @argv through @delegate. */
static void learn_print(FILE *f, char **argv, const char *delegate)
{
	time_t now = time(NULL);
	char when[64];
	int i, j;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
	fprintf(f, "# rsys policy written by \"rsys-load learn\" at %s from the run of:\n#  ", when);
	for (i = 0; argv[i]; i++) {
		fputc(' ', f);
		put_comment_str(f, argv[i]);
	}
	fprintf(f, "\n# It allows exactly what that run did; review it (policy/README.md).\n");
	if (n_dropped)
		fprintf(f, "# %u more lines did not fit: a policy holds at most %d allow lines.\n",
			n_dropped, POLICY_MAX_RULES);
	for (i = 0; i < n_learned; i++) {
		const struct learned *l = &learned[i];

		if (l->call != RSYS_EV_EXECVE)
			continue;
		put_calls(f, l);
		/* A path with a blank cannot be one word of a policy line. */
		if (strpbrk(l->prog, " \t\r") || l->prog[0] != '/') {
			fprintf(f, "# cannot name this program in a policy: ");
			put_comment_str(f, l->prog);
			fputc('\n', f);
			continue;
		}
		fprintf(f, "trusted %s", l->prog);
		if (l->has_sha256) {
			fprintf(f, " sha256 ");
			for (j = 0; j < 32; j++)
				fprintf(f, "%02x", l->sha256[j]);
		}
		fputc('\n', f);
	}
	fprintf(f, "remote inet inet6\ndelegate %s\n", delegate);
	put_rules(f, RSYS_EV_CONNECT);
	put_rules(f, RSYS_EV_BIND);
}

/* Write the policy to @out (through a temporary file, so a reader never sees half of it) and parse it back. */
static int learn_write(const char *out, char **argv, const char *delegate)
{
	char tmp[PATH_MAX];
	struct policy *check;
	FILE *f;
	int fd, ret = 0;

	if ((size_t)snprintf(tmp, sizeof(tmp), "%s.%d.tmp", out, getpid()) >= sizeof(tmp))
		return -ENAMETOOLONG;
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	f = fdopen(fd, "w");
	if (!f) {
		ret = -errno;
		close(fd);
		goto out_unlink;
	}
	pthread_mutex_lock(&learn_lock);
	learn_print(f, argv, delegate);
	pthread_mutex_unlock(&learn_lock);
	if (fflush(f) || fsync(fd))
		ret = -errno;
	if (fclose(f) && !ret)
		ret = -errno;
	if (ret)
		goto out_unlink;
	/* What we write must be a policy rsys-load run and rsys-delegate accept. */
	check = calloc(1, sizeof(*check));
	if (!check) {
		ret = -ENOMEM;
		goto out_unlink;
	}
	ret = policy_load(check, tmp, stderr);
	free(check);
	if (!ret && rename(tmp, out) < 0)
		ret = -errno;
	if (!ret)
		return 0;
out_unlink:
	unlink(tmp);
	return ret;
}

int do_learn(int argc, char **argv)
{
	struct run_args ra = { 0 };
	struct policy *p;
	int ret, status;

	ret = run_parse(argc, argv, &ra, learn_usage);
	if (ret)
		return ret < 0 ? 0 : ret;
	if (!ra.delegate) {
		pr_err("learn needs --delegate ADDR: a delegate that allows what the program does\n");
		return 1;
	}
	/* Direct mode's datagrams with an address and data calls pass unseen: learn sees all in remote mode. */
	if (ra.mode && strcmp(ra.mode, "remote")) {
		pr_err("learn runs the program in remote mode, where the monitor sees every destination: not --mode %s\n",
		       ra.mode);
		return 1;
	}
	ra.mode = "remote";
	p = calloc(1, sizeof(*p));
	if (!p)
		return 1;
	if (policy_parse_buf(p, learn_policy, sizeof(learn_policy) - 1, "learn", stderr)) {
		free(p);
		return 1;
	}
	mon_event_hook = learn_record;
	status = run_main(&ra, p);
	mon_event_hook = NULL;
	free(p);
	ret = learn_write(ra.policy_file, ra.argv, ra.delegate);
	if (ret) {
		pr_err("cannot write the policy %s: %s\n", ra.policy_file, err_str(-ret));
		return 1;
	}
	pr_info("wrote %s: %d lines learned\n", ra.policy_file, n_learned);
	if (status)
		pr_warn("%s did not exit with 0: %s covers what it did until then\n", ra.argv[0],
			ra.policy_file);
	return run_exit(status);
}
