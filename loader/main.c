// SPDX-License-Identifier: GPL-2.0
/* rsys-load entry point: global options and the bpftool-style subcommand table. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "cmds.h"
#include "log.h"

int json_output;

int parse_ulong(const char *s, unsigned long max, unsigned long *out)
{
	unsigned long v;
	char *end;

	if (*s < '0' || *s > '9')
		return -EINVAL;	/* strtoul would take a sign or blanks */
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

static bool libbpf_debug;

static int do_help(int argc, char **argv);

static const struct cmd {
	const char *name;
	int (*func)(int argc, char **argv);
} cmds[] = {
	{ "attach", do_attach },
	{ "detach", do_detach },
	{ "status", do_status },
	{ "run", do_run },
	{ "learn", do_learn },
	{ "vm", do_vm },
	{ "trace", do_trace },
	{ "help", do_help },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-load [OPTIONS] COMMAND [ARGS]\n"
		"\n"
		"Commands:\n"
		"  attach POLICY     validate POLICY, load the rsys BPF programs, pin them under\n"
		"                    /sys/fs/bpf/rsys/ and store the policy in /run/rsys/policy\n"
		"  detach            unpin everything under /sys/fs/bpf/rsys/\n"
		"  status [-j]       attached programs, call counters, fd-table and trusted-task counts\n"
		"  run --policy FILE [--delegate ADDR] [--netns NAME] [--uid UID | --no-sandbox]\n"
		"      -- PROG [ARGS...]\n"
		"                    run PROG trusted in the compute domain (a sandbox); its remote\n"
		"                    sockets are executed by rsys-delegate\n"
		"  learn --policy OUT --delegate ADDR [run options] -- PROG [ARGS...]\n"
		"                    run PROG with every program trusted (the sandbox kept) and\n"
		"                    write to OUT the smallest policy allowing what it did\n"
		"  vm --kernel BZIMAGE --initrd FILE [--mem MIB] -- PROG [ARGS...]\n"
		"                    boot a compute VM with rsys's VMM on /dev/kvm and run PROG in it\n"
		"  trace [-j] [--pid PID] [--denied]\n"
		"                    print every decision of the monitors and delegates as it happens\n"
		"  help              this text\n"
		"\n"
		"Options:\n"
		"  -v, --verbose     more messages (repeat for debug messages)\n"
		"  -d, --debug       print libbpf's messages and verifier logs\n"
		"  -j, --json        JSON output (status, trace)\n"
		"  -h, --help        this text\n");
}

static int do_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	usage(stdout);
	return 0;
}

/* libbpf's own messages are one level below ours: shown only with -d. */
static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	if (!libbpf_debug)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "debug", no_argument, NULL, 'd' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	size_t i;
	int c;

	log_prog = "rsys-load";
	/* '+': options after the command belong to the command (run's PROG ARGS above all). */
	while ((c = getopt_long(argc, argv, "+vdjh", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			log_level++;
			break;
		case 'd':
			libbpf_debug = true;
			break;
		case 'j':
			json_output = 1;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			fprintf(stderr, "Try 'rsys-load --help' for more information.\n");
			return 1;
		}
	}
	libbpf_set_print(libbpf_print);

	if (optind >= argc) {
		usage(stderr);
		return 1;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (!strcmp(argv[optind], cmds[i].name)) {
			int first = optind;

			/* 0 makes glibc's getopt start afresh for the subcommand's own options. */
			optind = 0;
			return cmds[i].func(argc - first, argv + first);
		}
	}
	pr_err("unknown command '%s'\nTry 'rsys-load --help' for more information.\n",
	       argv[optind]);
	return 1;
}
