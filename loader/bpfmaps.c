// SPDX-License-Identifier: GPL-2.0
/* The monitor's access to the maps pinned by "rsys-load attach" (fd table, trust, counters). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <linux/bpf.h>

#include "bpfmaps.h"
#include "rsys.h"

/*
 * Plain bpf(2), not libbpf: the selftests link this object (with librsys.a,
 * without libbpf), and it needs just these five commands.
 */
int maps_sys_bpf(int cmd, union bpf_attr *attr)
{
	long ret = syscall(__NR_bpf, cmd, attr, sizeof(*attr));

	return ret < 0 ? -errno : (int)ret;
}

int maps_obj_get(const char *name)
{
	char path[64] = RSYS_PIN_DIR "/";
	union bpf_attr attr;

	strncat(path, name, sizeof(path) - strlen(path) - 1);
	memset(&attr, 0, sizeof(attr));
	attr.pathname = (__u64)(unsigned long)path;
	return maps_sys_bpf(BPF_OBJ_GET, &attr);
}

int maps_elem_cmd(int cmd, int fd, const void *key, void *value, __u64 flags)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = fd;
	attr.key = (__u64)(unsigned long)key;
	attr.value = (__u64)(unsigned long)value;
	attr.flags = flags;
	return maps_sys_bpf(cmd, &attr);
}

static int next_key(int fd, const void *key, void *next)
{
	union bpf_attr attr;

	memset(&attr, 0, sizeof(attr));
	attr.map_fd = fd;
	attr.key = (__u64)(unsigned long)key;
	attr.next_key = (__u64)(unsigned long)next;
	return maps_sys_bpf(BPF_MAP_GET_NEXT_KEY, &attr);
}

void maps_none(struct rsys_maps *m)
{
	m->fdtable = m->trusted = m->class_count = m->sys_count = m->sigdeliver = -1;
	m->sigwake = m->sigstop = m->sigring = -1;
	m->class_mem = NULL;
}

int maps_open(struct rsys_maps *m)
{
	static const char *const names[] = { "fdtable", "trusted", "class_count", "sys_count" };
	int *fds[] = { &m->fdtable, &m->trusted, &m->class_count, &m->sys_count };
	void *mem;
	size_t i;
	int fd;

	maps_none(m);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		fd = maps_obj_get(names[i]);
		if (fd < 0)
			goto err_close;
		*fds[i] = fd;
	}
	/* The monitor's threads and BPF add to the same counters: atomics need the memory. */
	mem = mmap(NULL, RSYS_CLASS_MAX * sizeof(__u64), PROT_READ | PROT_WRITE, MAP_SHARED,
		   m->class_count, 0);
	if (mem == MAP_FAILED) {
		fd = -errno;
		goto err_close;
	}
	m->class_mem = mem;
	m->sigdeliver = maps_obj_get("sigdeliver");	/* optional */
	/* optional; the maps mean something only while the program fills them */
	if (!access(RSYS_PIN_DIR "/link_rsys_signal_generate", F_OK)) {
		m->sigwake = maps_obj_get("sigwake");
		m->sigstop = maps_obj_get("sigstop");
		m->sigring = maps_obj_get("sigring");
	}
	return 0;

err_close:
	maps_close(m);
	return fd;
}

void maps_close(struct rsys_maps *m)
{
	if (m->class_mem)
		munmap(m->class_mem, RSYS_CLASS_MAX * sizeof(__u64));
	m->class_mem = NULL;
	if (m->fdtable >= 0)
		close(m->fdtable);
	if (m->trusted >= 0)
		close(m->trusted);
	if (m->class_count >= 0)
		close(m->class_count);
	if (m->sys_count >= 0)
		close(m->sys_count);
	if (m->sigdeliver >= 0)
		close(m->sigdeliver);
	if (m->sigwake >= 0)
		close(m->sigwake);
	if (m->sigstop >= 0)
		close(m->sigstop);
	if (m->sigring >= 0)
		close(m->sigring);
	maps_none(m);
}

bool maps_attached(const struct rsys_maps *m)
{
	return m->fdtable >= 0;
}

int maps_fd_set(struct rsys_maps *m, __u32 table, __u32 vfd, const struct rsys_fd_val *v)
{
	struct rsys_fd_key key = { .table = table, .vfd = vfd };

	if (!maps_attached(m))
		return 0;
	return maps_elem_cmd(BPF_MAP_UPDATE_ELEM, m->fdtable, &key, (void *)v, BPF_ANY);
}

int maps_fd_del(struct rsys_maps *m, __u32 table, __u32 vfd)
{
	struct rsys_fd_key key = { .table = table, .vfd = vfd };
	int err;

	if (!maps_attached(m))
		return 0;
	err = maps_elem_cmd(BPF_MAP_DELETE_ELEM, m->fdtable, &key, NULL, 0);
	/* BPF drops close-on-exec and exited tables on its own: already gone is fine. */
	return err == -ENOENT ? 0 : err;
}

int maps_fd_clear(struct rsys_maps *m, __u32 table)
{
	struct rsys_fd_key key, next, *keys;
	const void *prev = NULL;
	int n = 0, i, err;

	if (!maps_attached(m))
		return 0;
	/* Collect first: deleting while walking with GET_NEXT_KEY restarts the walk. */
	keys = malloc(RSYS_MAX_FDS * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	while (n < RSYS_MAX_FDS && !(err = next_key(m->fdtable, prev, &next))) {
		key = next;
		prev = &key;
		if (key.table == table)
			keys[n++] = key;
	}
	if (err == -ENOENT || n == RSYS_MAX_FDS)
		err = 0;
	for (i = 0; i < n && !err; i++) {
		err = maps_elem_cmd(BPF_MAP_DELETE_ELEM, m->fdtable, &keys[i], NULL, 0);
		if (err == -ENOENT)
			err = 0;
	}
	free(keys);
	return err;
}

bool maps_sigwake(const struct rsys_maps *m)
{
	return m->sigwake >= 0 && m->sigstop >= 0 && m->sigring >= 0;
}

int maps_sig_woken(struct rsys_maps *m, __u32 tid, struct rsys_sigwake *w)
{
	if (m->sigwake < 0)
		return -ENOENT;
	return maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, m->sigwake, &tid, w, 0);
}

int maps_sig_stop(struct rsys_maps *m, __u32 tgid, struct rsys_sigwake *w)
{
	if (m->sigstop < 0)
		return -ENOENT;
	return maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, m->sigstop, &tgid, w, 0);
}

int maps_sig_delivered(struct rsys_maps *m, __u32 tid, struct rsys_sigdeliver *d)
{
	if (m->sigdeliver < 0)
		return -ENOENT;
	return maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, m->sigdeliver, &tid, d, 0);
}

int maps_trust(struct rsys_maps *m, __u32 tgid, const struct rsys_trusted *t)
{
	struct rsys_monitor alive = { .dead = 0 };
	int mfd, err;

	if (!maps_attached(m))
		return 0;
	/* A monitor whose pid was used by an exited one must not be taken for dead. */
	mfd = maps_obj_get("monitors");
	if (mfd < 0)
		return mfd;
	err = maps_elem_cmd(BPF_MAP_UPDATE_ELEM, mfd, &t->monitor, &alive, BPF_ANY);
	close(mfd);
	if (err)
		return err;
	return maps_elem_cmd(BPF_MAP_UPDATE_ELEM, m->trusted, &tgid, (void *)t, BPF_ANY);
}

void maps_count_class(struct rsys_maps *m, enum rsys_class c, __u64 n)
{
	if (!m->class_mem || c >= RSYS_CLASS_MAX)
		return;
	__atomic_fetch_add(&m->class_mem[c], n, __ATOMIC_RELAXED);
}
