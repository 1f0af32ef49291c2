/* SPDX-License-Identifier: GPL-2.0 */
/* rsys-load subcommands, one source file each, dispatched by main.c's command table. */
#ifndef RSYS_CMDS_H
#define RSYS_CMDS_H

/* Each takes the arguments after the subcommand name (argv[0] = subcommand) and returns the exit status. */
int do_attach(int argc, char **argv);	/* attach.c */
int do_detach(int argc, char **argv);	/* attach.c */
int do_status(int argc, char **argv);	/* status.c */
int do_run(int argc, char **argv);	/* run.c */

extern int json_output;			/* -j */

#endif
