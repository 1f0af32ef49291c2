// SPDX-License-Identifier: GPL-2.0
/* "rsys-load status [-j]": what is attached, and the counters and table sizes in the pinned maps. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <bpf/bpf.h>

#include "bpfmaps.h"
#include "cmds.h"
#include "log.h"
#include "rsys.h"
#include <rsys/syscalls.h>

#define PROG_NAME(name, loses) #name,
static const char *const prog_names[] = { RSYS_PROGS(PROG_NAME) };

static const char *const class_names[RSYS_CLASS_MAX] = {
	[RSYS_CLASS_LOCAL] = "local",
	[RSYS_CLASS_REMOTE] = "remote",
	[RSYS_CLASS_SPLIT] = "split",
	[RSYS_CLASS_CANCEL] = "cancel",
};

/* The calls of include/rsys/syscalls.h by name; others print as "sys_N". */
#define SYS_NAME(name, nr, flags)	[nr] = #name,
static const char *const sys_names[RSYS_MAX_SYSCALL] = { RSYS_SYSCALLS(SYS_NAME) };
#undef SYS_NAME

static const char *const family_names[] = {
	[AF_UNIX] = "unix", [AF_INET] = "inet", [AF_INET6] = "inet6", [AF_NETLINK] = "netlink",
	[AF_PACKET] = "packet", [AF_VSOCK] = "vsock",
};

struct status {
	bool progs[sizeof(prog_names) / sizeof(prog_names[0])];
	__u64 classes[RSYS_CLASS_MAX];
	__u64 calls[RSYS_MAX_SYSCALL];
	struct rsys_config cfg;
	bool has_cfg;
	unsigned int fd_entries, trusted_tasks, trusted_direct, trusted_guarded;
};

/* Trusted tasks with all of @flags (RSYS_TRUSTED_*) in their entry. */
static int count_flags(int fd, __u32 flags)
{
	__u32 key, next, *prev = NULL;
	struct rsys_trusted t;
	int n = 0;

	while (!bpf_map_get_next_key(fd, prev, &next)) {
		key = next;
		prev = &key;
		memset(&t, 0, sizeof(t));	/* a map pinned by an older rsys-load has no flags */
		if (!bpf_map_lookup_elem(fd, &key, &t) && (t.flags & flags) == flags)
			n++;
	}
	return n;
}

static int map_count(int fd, void *key, void *next)
{
	unsigned int n = 0;
	void *prev = NULL;
	int err;

	while (!(err = bpf_map_get_next_key(fd, prev, next))) {
		n++;
		memcpy(key, next, 8);
		prev = key;
	}
	return err == -ENOENT ? (int)n : err;
}

static int array_read(int fd, __u64 *vals, __u32 n)
{
	__u32 i;
	int err;

	for (i = 0; i < n; i++) {
		err = bpf_map_lookup_elem(fd, &i, &vals[i]);
		if (err)
			return err;
	}
	return 0;
}

static int status_read(struct rsys_maps *m, struct status *s)
{
	char path[64];
	__u64 key, next;
	__u32 zero = 0;
	size_t i;
	int n, fd;

	for (i = 0; i < sizeof(prog_names) / sizeof(prog_names[0]); i++) {
		snprintf(path, sizeof(path), "%s/link_%s", RSYS_PIN_DIR, prog_names[i]);
		s->progs[i] = !access(path, F_OK);
	}
	if (array_read(m->class_count, s->classes, RSYS_CLASS_MAX) ||
	    array_read(m->sys_count, s->calls, RSYS_MAX_SYSCALL))
		return -errno;
	n = map_count(m->fdtable, &key, &next);
	if (n < 0)
		return n;
	s->fd_entries = n;
	n = map_count(m->trusted, &key, &next);
	if (n < 0)
		return n;
	s->trusted_tasks = n;
	s->trusted_direct = count_flags(m->trusted, RSYS_TRUSTED_DIRECT);
	s->trusted_guarded = count_flags(m->trusted, RSYS_TRUSTED_DIRECT | RSYS_TRUSTED_GUARDED);
	fd = bpf_obj_get(RSYS_PIN_DIR "/config");
	if (fd >= 0) {
		s->has_cfg = !bpf_map_lookup_elem(fd, &zero, &s->cfg);
		close(fd);
	}
	return 0;
}

static void sys_name(char *buf, size_t size, unsigned int nr)
{
	if (sys_names[nr])
		snprintf(buf, size, "%s", sys_names[nr]);
	else
		snprintf(buf, size, "sys_%u", nr);
}

static void families_print(__u64 mask, bool json)
{
	const char *sep = "";
	unsigned int f;

	for (f = 0; f < 64; f++) {
		if (!(mask & (1ULL << f)))
			continue;
		if (f < sizeof(family_names) / sizeof(family_names[0]) && family_names[f])
			printf(json ? "%s\"%s\"" : "%s%s", sep, family_names[f]);
		else
			printf(json ? "%s\"%u\"" : "%s%u", sep, f);
		sep = json ? "," : " ";
	}
}

static void status_print_json(const struct status *s)
{
	const char *sep = "";
	char name[32];
	size_t i;

	printf("{\"attached\":true,\"programs\":{");
	for (i = 0; i < sizeof(prog_names) / sizeof(prog_names[0]); i++)
		printf("%s\"%s\":\"%s\"", i ? "," : "", prog_names[i],
		       s->progs[i] ? "attached" : "refused");
	printf("},\"classes\":{");
	for (i = 0; i < RSYS_CLASS_MAX; i++)
		printf("%s\"%s\":%llu", i ? "," : "", class_names[i], (unsigned long long)s->classes[i]);
	printf("},\"syscalls\":{");
	for (i = 0; i < RSYS_MAX_SYSCALL; i++) {
		if (!s->calls[i])
			continue;
		sys_name(name, sizeof(name), i);
		printf("%s\"%s\":%llu", sep, name, (unsigned long long)s->calls[i]);
		sep = ",";
	}
	printf("},\"fdtable_entries\":%u,\"trusted_tasks\":%u,\"trusted_direct\":%u,\"trusted_direct_guarded\":%u",
	       s->fd_entries, s->trusted_tasks, s->trusted_direct, s->trusted_guarded);
	if (s->has_cfg) {
		printf(",\"remote_families\":[");
		families_print(s->cfg.remote_families, true);
		printf("]");
	}
	printf("}\n");
}

static void status_print(const struct status *s)
{
	char name[32];
	size_t i;

	printf("attached: yes (%s)\n", RSYS_PIN_DIR);
	if (s->has_cfg) {
		printf("remote families: ");
		families_print(s->cfg.remote_families, false);
		printf("\npolicy: %u trusted program(s), %u egress rule(s) (/run/rsys/policy)\n",
		       s->cfg.policy_trusted, s->cfg.policy_rules);
	}
	printf("programs:\n");
	for (i = 0; i < sizeof(prog_names) / sizeof(prog_names[0]); i++)
		printf("  %-20s %s\n", prog_names[i], s->progs[i] ? "attached" : "refused");
	printf("calls by class:\n");
	for (i = 0; i < RSYS_CLASS_MAX; i++)
		printf("  %-20s %llu\n", class_names[i], (unsigned long long)s->classes[i]);
	printf("calls by syscall (trusted tasks, non-zero):\n");
	for (i = 0; i < RSYS_MAX_SYSCALL; i++) {
		if (!s->calls[i])
			continue;
		sys_name(name, sizeof(name), i);
		printf("  %-20s %llu\n", name, (unsigned long long)s->calls[i]);
	}
	printf("fd-table entries: %u\ntrusted tasks: %u (mode: %u direct, %u of them with the delegate's egress guard; %u remote)\n",
	       s->fd_entries, s->trusted_tasks, s->trusted_direct, s->trusted_guarded,
	       s->trusted_tasks - s->trusted_direct);
}

int do_status(int argc, char **argv)
{
	struct rsys_maps m;
	struct status s = {};
	int err;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: rsys-load status [-j]\n");
		return 0;
	}
	if (argc == 2 && (!strcmp(argv[1], "-j") || !strcmp(argv[1], "--json"))) {
		json_output = 1;
	} else if (argc != 1) {
		fprintf(stderr, "Usage: rsys-load status [-j]\n");
		return 1;
	}
	err = maps_open(&m);
	if (err == -ENOENT) {
		if (json_output)
			printf("{\"attached\":false}\n");
		else
			printf("attached: no (run 'rsys-load attach POLICY')\n");
		return 0;
	}
	if (err) {
		pr_warn("cannot open the maps pinned under %s: %s%s\n", RSYS_PIN_DIR, err_str(-err),
			err == -EACCES || err == -EPERM ? " (status needs root)" : "");
		return 1;
	}
	err = status_read(&m, &s);
	maps_close(&m);
	if (err) {
		pr_warn("cannot read the maps pinned under %s: %s\n", RSYS_PIN_DIR, err_str(-err));
		return 1;
	}
	if (json_output)
		status_print_json(&s);
	else
		status_print(&s);
	return 0;
}
