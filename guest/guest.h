/* SPDX-License-Identifier: GPL-2.0 */
/* Host-tier compute side: the sandbox the trusted program runs in, and what its process does between fork and exec. */
#ifndef RSYS_GUEST_H
#define RSYS_GUEST_H

#include <signal.h>
#include <stdbool.h>
#include <sys/types.h>
#include <rsys/policy.h>

#define GUEST_UID_DEFAULT	65534	/* nobody: what root in the sandbox is outside it */
#define GUEST_HIDE_MAX		4	/* extra paths covered in the sandbox (delegate sockets) */

struct guest_opts {
	const char *path;		/* program to execute (resolved) */
	char **argv;
	const char *netns;		/* join /run/netns/NAME; NULL: a fresh netns holding only lo */
	const struct policy *policy;	/* remote families, for the filter */
	const sigset_t *sigmask;	/* the program's signal mask */
	bool sandbox;			/* user, mount and pid namespaces around the program */
	bool killable;			/* the monitor ends held calls on signals: killable seccomp waits */
	bool direct;			/* direct mode's filter (loader/direct.c) */
	bool guarded;			/* ... with the delegate's egress guard: sendto with an address untrapped */
	uid_t uid;			/* sandbox: the id (uid and gid) that root inside is outside, never 0 */
	const char *hide[GUEST_HIDE_MAX + 1];	/* sandbox: more paths to cover (NULL-terminated) */
};

struct guest {
	pid_t pid;	/* the process to wait for: the sandbox's pid 1, or the program itself */
	pid_t prog;	/* the program's process (host pid), stopped with its filter installed */
	int sock;	/* sandbox: the monitor's end of the handshake with the sandbox's pid 1 */
	int status;	/* the program's wait status, once known; -1 before */
};

/*
 * In the monitor: start the compute domain with the program's process in
 * it. With the sandbox, its pid 1 is a child of the monitor in a new pid
 * namespace, and the monitor writes the user namespace's id maps. The
 * program's process then installs the seccomp filter and stops (SIGSTOP)
 * until the monitor has taken its listener (guest_listener) and continued
 * it. Returns 0, or -errno once the domain's failure was reported on
 * stderr and nothing is left to wait for. Call single-threaded (the sandbox
 * is started with a raw clone) and with INT/TERM/HUP blocked.
 */
int guest_spawn(struct guest *g, const struct guest_opts *o);

/*
 * Wait until the program's process has stopped with its filter installed:
 * 0 with g->prog set, or -ECHILD once the domain ended (reaped; g->status
 * says how). Interrupted waits resume.
 */
int guest_wait_stopped(struct guest *g);

/* The program's wait status, given the wait status of g->pid. */
int guest_status(struct guest *g, int status);

void guest_close(struct guest *g);

/* In the monitor, once @pid has stopped: a copy of its seccomp listener, or -errno. */
int guest_listener(pid_t pid);

#endif
