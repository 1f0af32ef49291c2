/* SPDX-License-Identifier: GPL-2.0 */
/* rsys-load subcommands, one source file each, dispatched by main.c's command table. */
#ifndef RSYS_CMDS_H
#define RSYS_CMDS_H

#include <stdio.h>
#include <rsys/policy.h>
#include "tls.h"
#include "guest.h"

/* Each takes the arguments after the subcommand name (argv[0] = subcommand) and returns the exit status. */
int do_attach(int argc, char **argv);	/* attach.c */
int do_detach(int argc, char **argv);	/* attach.c */
int do_status(int argc, char **argv);	/* status.c */
int do_run(int argc, char **argv);	/* run.c */
int do_trace(int argc, char **argv);	/* trace.c */
int do_learn(int argc, char **argv);	/* learn.c */
int do_vm(int argc, char **argv);	/* vm.c */

extern int json_output;			/* -j */

/* A decimal number of at most @max, and nothing else (no sign, no blank): 0 or -EINVAL (main.c). */
int parse_ulong(const char *s, unsigned long max, unsigned long *out);

/* What "run" and "learn" share (run.c). */
struct run_args {
	const char *policy_file;	/* run: the policy; learn: the policy to write */
	const char *delegate;		/* --delegate, or NULL */
	struct tls_files tls;
	struct guest_opts go;		/* --netns, --uid, --no-sandbox */
	const char *mode;		/* --mode direct|remote, or NULL: direct where it can be */
	bool no_write_behind;		/* --no-write-behind */
	unsigned int busy_poll_us;	/* --busy-poll */
	char **argv;			/* PROG ARGS... */
};

/* Parse the shared options: 0, an exit status after a message, or -1 after --help. */
int run_parse(int argc, char **argv, struct run_args *ra, void (*usage)(FILE *f));
/* Run ra->argv trusted under @p: the program's wait status (a failure of ours: 1 << 8, 127 << 8). */
int run_main(struct run_args *ra, struct policy *p);
/* Exit status that passes the program's wait status on: same code, or the same signal. */
int run_exit(int status);

#endif
