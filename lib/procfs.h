/* SPDX-License-Identifier: GPL-2.0 */
/* The monitor's readers of /proc: status fields (Tgid, FDSize, SigPnd, ...) and what its own fds are. */
#ifndef RSYS_PROCFS_H
#define RSYS_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

/*
 * Read fields of /proc/@tid/status, or of /proc/@tgid/task/@tid/status when
 * @tgid > 0 (a thread's own SigPnd): for each of the @n @names ("Tgid",
 * "SigPnd"), its value into @vals[i] (hexadecimal for the Sig*, Shd* and
 * Cap* masks, decimal for the others); fields not found are left alone.
 * Returns how many were found, or -errno when the file cannot be opened.
 */
int proc_status(pid_t tgid, pid_t tid, const char *const *names, uint64_t *vals, int n);

/*
 * The threads of @tid's process, or -errno: the link count of
 * /proc/@tid/task (the kernel's nr_threads + 2), one stat() where
 * reading "Threads" of the status file costs four times as much; the
 * blocking epoll waits of a monitored process ask it on every call.
 */
int proc_threads(pid_t tid);

/*
 * What @fd of process @pid (0: the monitor) is, as /proc/PID/fd names it
 * ("socket:[123]", "anon_inode:[eventpoll]", ...), into @buf of @len
 * bytes. 0 or -errno (-ENOENT: not open).
 */
int proc_fd_link(pid_t pid, int fd, char *buf, size_t len);
/* The same for the monitor's own @fd. */
int fd_link(int fd, char *buf, size_t len);

/* Call @fn for every open fd of @pid (/proc/PID/fd): 0, or -errno if it cannot be read. */
int proc_fd_each(pid_t pid, void (*fn)(int fd, void *arg), void *arg);

/*
 * /proc/@pid/fdinfo/@fd (@pid 0: the monitor's own fd) opened for reading,
 * close-on-exec: its "flags:", "mnt_id:", "ino:" and, for an epoll
 * instance, "tfd:" lines. NULL with errno set.
 */
FILE *proc_fdinfo(pid_t pid, int fd);

#endif
