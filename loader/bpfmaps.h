/* SPDX-License-Identifier: GPL-2.0 */
/* The monitor's view of the pinned rsys BPF maps (fd table, trusted tasks, counters). */
#ifndef RSYS_BPFMAPS_H
#define RSYS_BPFMAPS_H

#include <stdbool.h>
#include <rsys/fdtable.h>

#define RSYS_PIN_DIR "/sys/fs/bpf/rsys"

struct rsys_maps {
	int fdtable;		/* -1 when not attached */
	int trusted;
	int class_count;
	int sys_count;
	int sigdeliver;		/* -1 when the attached objects predate it */
	int sigwake, sigstop;	/* -1 unless rsys_signal_generate is attached */
	int sigring;		/* its wake-ups (BPF ring buffer), -1 likewise */
	__u64 *class_mem;	/* class_count mapped (BPF_F_MMAPABLE) for atomic adds; NULL when not attached */
};

/*
 * Open the maps pinned by "rsys-load attach". Returns 0, or -ENOENT when rsys
 * is not attached (all fds are then -1 and every other call is a no-op, so
 * the monitor runs without publishing its fd table).
 */
int maps_open(struct rsys_maps *m);
void maps_close(struct rsys_maps *m);
/* @m as maps_open() leaves it when rsys is not attached: every call a no-op (the KVM tier's). */
void maps_none(struct rsys_maps *m);
bool maps_attached(const struct rsys_maps *m);

int maps_fd_set(struct rsys_maps *m, __u32 table, __u32 vfd, const struct rsys_fd_val *v);
int maps_fd_del(struct rsys_maps *m, __u32 table, __u32 vfd);
/* Drop every entry of fd table @table (process exit). */
int maps_fd_clear(struct rsys_maps *m, __u32 table);

/* Mark @tgid trusted (supervised by @monitor); its forks inherit it in BPF. */
int maps_trust(struct rsys_maps *m, __u32 tgid, const struct rsys_trusted *t);

struct rsys_sigdeliver;
/* The last signal handler thread @tid ran (rsys_signal_deliver): 0, or -ENOENT. */
int maps_sig_delivered(struct rsys_maps *m, __u32 tid, struct rsys_sigdeliver *d);

struct rsys_sigwake;
/*
 * True when rsys_signal_generate is attached: the monitor learns which
 * held threads a signal woke and may ask for killable seccomp waits.
 */
bool maps_sigwake(const struct rsys_maps *m);
/* The last signal that woke thread @tid / the last stop signal of @tgid: 0, or -ENOENT. */
int maps_sig_woken(struct rsys_maps *m, __u32 tid, struct rsys_sigwake *w);
int maps_sig_stop(struct rsys_maps *m, __u32 tgid, struct rsys_sigwake *w);

/* Add @n to class counter @c (userspace-classified calls: remote, split, cancel). */
void maps_count_class(struct rsys_maps *m, enum rsys_class c, __u64 n);

/*
 * Plain bpf(2) underneath (also the selftests' way to the maps): @cmd with
 * @attr; the fd of pinned object RSYS_PIN_DIR/@name; a map element command
 * (lookup, update, delete). Each returns -errno on failure.
 */
union bpf_attr;
int maps_sys_bpf(int cmd, union bpf_attr *attr);
int maps_obj_get(const char *name);
int maps_elem_cmd(int cmd, int fd, const void *key, void *value, __u64 flags);

#endif
