// SPDX-License-Identifier: GPL-2.0
/* The exec guard of "rsys-load run": a private instance of bpf/exec_guard.bpf.c, its approvals and its kill reports. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>

#include "events.h"
#include "execguard.h"
#include "exec_guard.skel.h"
#include "log.h"
#include "procfs.h"
#include "trace.h"
#include "exec_guard.h"

#define GUARD_POLL_MS	100
#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))

struct execguard {
	struct exec_guard_bpf *skel;
	struct ring_buffer *rb;
	pthread_t reader;
	bool reading;			/* the reader thread runs */
	atomic_bool stop;
};

static const char *const guard_reasons[] = {
	[RSYS_GUARD_UNAPPROVED] = "no passport check approved this exec",
	[RSYS_GUARD_OTHER_IMAGE] = "the kernel ran another file than the one the passport check judged",
	[RSYS_GUARD_CHANGED] = "the file was written after the passport check",
	[RSYS_GUARD_WRITABLE] = "the file is open for writing, so it can change under the program",
	[RSYS_GUARD_LOADER_ENV] = "a dynamic-loader variable would load code the passport did not check",
	[RSYS_GUARD_ENV_UNCHECKED] = "its environment could not be checked whole",
};

static int guard_event(void *ctx, void *data, size_t len)
{
	const struct rsys_guard_event *e = data;
	struct rsys_event ev = { .call = RSYS_EV_EXECVE, .verdict = RSYS_VERDICT_KILLED };
	char comm[sizeof(e->comm) + 1] = "";
	const char *why = "unknown reason";

	(void)ctx;
	if (len < sizeof(*e))
		return 0;
	if (e->reason < ARRAY_SIZE(guard_reasons) && guard_reasons[e->reason])
		why = guard_reasons[e->reason];
	if (e->reason == RSYS_GUARD_LOADER_ENV)
		pr_err("untrusted exec killed: process %u (thread %u, %.16s): %s: %.32s (allow it with 'trusted-env %.32s' in the policy)\n",
		       e->tgid, e->tid, e->comm, why, e->env, e->env);
	else
		pr_err("untrusted exec killed: process %u (thread %u, %.16s): %s\n",
		       e->tgid, e->tid, e->comm, why);
	/* The trace names it by its comm: the killed image has no /proc/PID/exe any more. */
	memcpy(comm, e->comm, sizeof(e->comm));
	trace_strcpy(ev.prog, sizeof(ev.prog), comm);
	ev.pid = e->tgid;
	ev.tid = e->tid;
	mon_event_emit(&ev);
	return 0;
}

static void *guard_reader(void *arg)
{
	struct execguard *g = arg;

	while (!atomic_load(&g->stop))
		ring_buffer__poll(g->rb, GUARD_POLL_MS);
	return NULL;
}

int execguard_open(struct execguard **gp, const struct policy *p)
{
	struct execguard *g;
	__u8 one = 1;
	int i, err;

	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->skel = exec_guard_bpf__open_and_load();
	if (!g->skel) {
		err = -errno;
		goto err_free;
	}
	for (i = 0; i < p->n_trusted_env; i++) {
		char key[RSYS_GUARD_ENV_NAME] = { 0 };

		strncpy(key, p->trusted_env[i], sizeof(key) - 1);
		err = bpf_map__update_elem(g->skel->maps.env_allowed, key, sizeof(key), &one,
					   sizeof(one), BPF_ANY);
		if (err)
			goto err_destroy;
	}
	err = exec_guard_bpf__attach(g->skel);
	if (err)
		goto err_destroy;
	g->rb = ring_buffer__new(bpf_map__fd(g->skel->maps.events), guard_event, NULL, NULL);
	if (!g->rb) {
		err = -errno;
		goto err_destroy;
	}
	*gp = g;
	return 0;

err_destroy:
	exec_guard_bpf__destroy(g->skel);
err_free:
	free(g);
	return err;
}

void execguard_close(struct execguard *g)
{
	if (!g)
		return;
	atomic_store(&g->stop, true);
	if (g->reading)
		pthread_join(g->reader, NULL);
	ring_buffer__consume(g->rb);
	ring_buffer__free(g->rb);
	exec_guard_bpf__destroy(g->skel);
	free(g);
}

int execguard_add(struct execguard *g, pid_t tgid)
{
	__u32 key = tgid, one = 1;
	int err;

	err = bpf_map__update_elem(g->skel->maps.guarded, &key, sizeof(key), &one, sizeof(one),
				   BPF_ANY);
	if (err || g->reading)
		return err;
	/*
	 * Reports start only now that the program is forked: a thread of ours
	 * at the fork could hold a lock (malloc's, stdio's) its child inherits.
	 */
	err = -pthread_create(&g->reader, NULL, guard_reader, g);
	g->reading = !err;
	return err;
}

/* The kernel's own names of the open file @fd: its mount id and inode number. */
static int fd_kernel_id(int fd, __u32 *mnt_id, __u64 *ino)
{
	char line[256];
	int found = 0;
	FILE *f;

	f = proc_fdinfo(0, fd);
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (sscanf(line, "mnt_id: %u", mnt_id) == 1)
			found |= 1;
		else if (sscanf(line, "ino: %llu", (unsigned long long *)ino) == 1)
			found |= 2;
	}
	fclose(f);
	return found == 3 ? 0 : -EIO;
}

int execguard_approve(struct execguard *g, pid_t tid, int fd, const struct stat *st)
{
	struct rsys_exec_image img = {
		.ctime_sec = st->st_ctim.tv_sec,
		.ctime_nsec = st->st_ctim.tv_nsec,
	};
	__u32 key = tid;
	int err;

	err = fd_kernel_id(fd, &img.mnt_id, &img.ino);
	if (err)
		return err;
	return bpf_map__update_elem(g->skel->maps.approved, &key, sizeof(key), &img, sizeof(img),
				    BPF_ANY);
}
