/* SPDX-License-Identifier: GPL-2.0 */
/* The exec guard: binds the monitor's passport check to the image and environment the kernel actually execs. */
#ifndef RSYS_EXECGUARD_H
#define RSYS_EXECGUARD_H
#include <sys/stat.h>
#include <sys/types.h>
#include <rsys/policy.h>

struct execguard;

/*
 * Load and attach a private instance of bpf/exec_guard.bpf.c for one
 * "rsys-load run" under policy @p (its 'trusted-env' names). Starts no
 * thread: the monitor may fork the program after it. 0 or -errno.
 */
int execguard_open(struct execguard **gp, const struct policy *p);
/* Report what is left, detach and free. */
void execguard_close(struct execguard *g);
/*
 * Guard the process @tgid and, from now on, every process it forks; the
 * first call also starts reporting the execs the guard kills on stderr.
 */
int execguard_add(struct execguard *g, pid_t tgid);
/*
 * The next exec of thread @tid must run the file open as @fd, unchanged
 * since @st (its fstat before it was judged), or be killed.
 */
int execguard_approve(struct execguard *g, pid_t tid, int fd, const struct stat *st);
#endif
