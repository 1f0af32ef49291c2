/* SPDX-License-Identifier: GPL-2.0 */
/* Types shared by bpf/exec_guard.bpf.c and rsys-load: approved exec images and the kills reported back. */
#ifndef RSYS_EXEC_GUARD_H
#define RSYS_EXEC_GUARD_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define RSYS_GUARD_MAX_TASKS	8192	/* supervised processes of one "rsys-load run" */
#define RSYS_GUARD_MAX_ENV	4096	/* environment strings checked; more is refused */
#define RSYS_GUARD_ENV_NAME	32	/* loader variable names, NUL included */

/*
 * Value of the "approved" map, keyed by the thread id that called execve:
 * the image the monitor judged, as the kernel names it (the mount id and
 * inode number of /proc/PID/fdinfo, not stat's: btrfs and overlayfs report
 * other ones there). The change time catches a write between the
 * monitor's check and the kernel's read.
 */
struct rsys_exec_image {
	__u64 ino;
	__s64 ctime_sec;
	__u32 ctime_nsec;
	__u32 mnt_id;
};

enum rsys_guard_reason {
	RSYS_GUARD_UNAPPROVED = 1,	/* no approval by the monitor for this exec */
	RSYS_GUARD_OTHER_IMAGE,		/* the kernel ran another file than the one judged */
	RSYS_GUARD_CHANGED,		/* the file judged was written since */
	RSYS_GUARD_WRITABLE,		/* the file is open for writing: it may change under the program */
	RSYS_GUARD_LOADER_ENV,		/* a dynamic-loader variable the policy does not allow */
	RSYS_GUARD_ENV_UNCHECKED,	/* the environment could not be read whole */
};

/* Ring-buffer record: a supervised exec the guard killed. */
struct rsys_guard_event {
	__u32 tgid;
	__u32 tid;			/* the thread that called execve */
	__u32 reason;			/* enum rsys_guard_reason */
	__u32 pad;
	char comm[16];			/* the new image's name */
	char env[RSYS_GUARD_ENV_NAME];	/* RSYS_GUARD_LOADER_ENV: the variable */
};

#endif
