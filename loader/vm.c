// SPDX-License-Identifier: GPL-2.0
/* "rsys-load vm": boot a compute VM on /dev/kvm with rsys's VMM and run one program in it. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rsys/policy.h>

#include "cmds.h"
#include "log.h"
#include "vmm.h"

static void vm_usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-load vm --kernel BZIMAGE --initrd FILE [--mem MIB] [--cpus N]\n"
		"                    [--policy FILE [--delegate ADDR] [--no-fast-path]\n"
		"                    [--no-write-behind]]\n"
		"                    [--append ARGS]\n"
		"                    [-i] [-s] [-v] -- PROG [ARGS...]\n"
		"\n"
		"Boot a compute VM (no network, its serial console on stdout) with\n"
		"rsys's own VMM on /dev/kvm, run PROG in it and exit with PROG's status.\n"
		"make guest-image builds a kernel and an initrd with the guest's init.\n"
		"\n"
		"  --kernel BZIMAGE  the guest's Linux kernel (x86 boot protocol 2.12 or later)\n"
		"  --initrd FILE     its initramfs; /init must be rsys-guest-init\n"
		"  --mem MIB         guest memory (default %u, %u to %u)\n"
		"  --cpus N          vCPUs (default 1, at most 8)\n"
		"  --append ARGS     more kernel command line\n"
		"  -i, --interactive PROG's stdin is the console, fed from ours (a terminal: raw,\n"
		"                    Ctrl-] stops the VM; a pipe: its end ends PROG's input)\n"
		"  -s, --syscalls    trap the guest's system calls (the KVM tier's kernel) and\n"
		"                    print those of the trusted processes (PROG and what it\n"
		"                    forks and executes with its environment) on stderr; an\n"
		"                    untrusted process is trapped until its first call only\n"
		"      --trap-all    with -s: trap every process's calls all the time\n"
		"  --policy FILE     the trusted processes' sockets of the policy's remote\n"
		"                    families are rsys-delegate's (its egress rules apply);\n"
		"                    the guest kernel runs their other calls, decided in KVM\n"
		"                    by bpf/kvm_rsys.bpf.c (the fast path: its fd tables\n"
		"                    pinned in /sys/fs/bpf/rsys-vm/PID/) where it loads\n"
		"  --delegate ADDR   where rsys-delegate listens (default: the policy's\n"
		"                    'delegate' line), e.g. unix:/run/rsys/delegate.sock\n"
		"      --no-fast-path with --policy: every call of a trusted process exits\n"
		"                    to the VMM, which decides it (as with -s, which has no\n"
		"                    fast path: it prints every call)\n"
		"      --no-write-behind with --policy: every blocking TCP send waits for the\n"
		"                    delegate's reply (as rsys-load run's)\n"
		"  -v, --verbose     the guest kernel's messages too, and the VM's layout\n"
		"  -h, --help        this text\n"
		"\n"
		"PROG is looked up in the guest (its PATH), with stdin /dev/null unless -i; its\n"
		"stdout and stderr both reach stdout through the console.\n",
		VMM_MEM_DEFAULT_MIB, VMM_MEM_MIN_MIB, VMM_MEM_MAX_MIB);
}

static int parse_num(const char *s, unsigned int *out)
{
	unsigned long v;

	if (parse_ulong(s, UINT_MAX, &v))
		return -EINVAL;
	*out = v;
	return 0;
}

int do_vm(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'I' },
		{ "mem", required_argument, NULL, 'm' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "append", required_argument, NULL, 'a' },
		{ "interactive", no_argument, NULL, 'i' },
		{ "syscalls", no_argument, NULL, 's' },
		{ "trap-all", no_argument, NULL, 'T' },
		{ "policy", required_argument, NULL, 'p' },
		{ "delegate", required_argument, NULL, 'd' },
		{ "no-fast-path", no_argument, NULL, 'F' },
		{ "no-write-behind", no_argument, NULL, 'W' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{}
	};
	struct vmm_opts o = { .mem_mib = VMM_MEM_DEFAULT_MIB, .cpus = VMM_CPUS_DEFAULT };
	const char *policy_file = NULL, *delegate = NULL;
	struct policy *p = NULL;
	int c, ret;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+k:I:m:c:a:isvh", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			o.kernel = optarg;
			break;
		case 'I':
			o.initrd = optarg;
			break;
		case 'i':
			o.interactive = true;
			break;
		case 's':
			o.syscalls = true;
			break;
		case 'T':
			o.trap_all = true;
			break;
		case 'p':
			policy_file = optarg;
			break;
		case 'd':
			delegate = optarg;
			break;
		case 'm':
			if (parse_num(optarg, &o.mem_mib)) {
				pr_err("--mem %s: not a number of MiB\n", optarg);
				return 2;
			}
			break;
		case 'c':
			if (parse_num(optarg, &o.cpus)) {
				pr_err("--cpus %s: not a number\n", optarg);
				return 2;
			}
			break;
		case 'a':
			o.append = optarg;
			break;
		case 'F':
			o.no_fast_path = true;
			break;
		case 'W':
			o.no_write_behind = true;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			vm_usage(stdout);
			return 0;
		default:
			vm_usage(stderr);
			return 2;
		}
	}
	if (o.trap_all && !o.syscalls) {
		pr_err("--trap-all goes with --syscalls\n");
		return 2;
	}
	if (!o.kernel || !o.initrd || optind >= argc) {
		pr_err("vm needs --kernel, --initrd and a program to run\n");
		vm_usage(stderr);
		return 2;
	}
	if (delegate && !policy_file) {
		pr_err("--delegate goes with --policy\n");
		return 2;
	}
	if ((o.no_fast_path || o.no_write_behind) && !policy_file) {
		pr_err("--no-fast-path and --no-write-behind go with --policy\n");
		return 2;
	}
	if (policy_file) {
		p = calloc(1, sizeof(*p));
		if (!p)
			return 1;
		if (policy_load(p, policy_file, stderr)) {
			pr_err("cannot load policy %s\n", policy_file);
			free(p);
			return 1;
		}
		if (!delegate)
			delegate = p->delegate;
		if (!*delegate) {
			pr_err("no delegate address: give --delegate ADDR or a 'delegate' line in %s\n",
			       policy_file);
			free(p);
			return 1;
		}
		o.policy = p;
		o.delegate = delegate;
	}
	o.argv = argv + optind;
	o.kernel_log = log_level > LOG_WARN;
	ret = vmm_run(&o);
	free(p);
	return ret < 0 ? 1 : run_exit(ret);
}
