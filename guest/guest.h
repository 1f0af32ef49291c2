/* SPDX-License-Identifier: GPL-2.0 */
/* Host-tier compute side: what the trusted program's process does between fork and exec. */
#ifndef RSYS_GUEST_H
#define RSYS_GUEST_H

#include <rsys/policy.h>

struct guest_opts {
	const char *path;		/* program to execute (resolved) */
	char **argv;
	const char *netns;		/* join /run/netns/NAME; NULL: a fresh netns holding only lo */
	const struct policy *policy;	/* remote families, for the filter */
};

/*
 * In the forked child: die with the monitor, enter the compute domain,
 * install the seccomp filter, stop (SIGSTOP) until the monitor has taken
 * its listener (guest_listener) and continued us, and execute the program.
 * Never returns; exits 127 (message on stderr) when a step fails.
 */
void guest_exec(const struct guest_opts *o) __attribute__((noreturn));

/* In the monitor, once child @pid has stopped: a copy of its seccomp listener, or -errno. */
int guest_listener(pid_t pid);

#endif
