/* SPDX-License-Identifier: GPL-2.0 */
/* KVM-tier compute side: rsys's own VMM, which boots a Linux guest and runs one program in it. */
#ifndef RSYS_VMM_H
#define RSYS_VMM_H

#include <stdbool.h>

struct policy;

#define VMM_MEM_DEFAULT_MIB	256
#define VMM_MEM_MIN_MIB		64
#define VMM_MEM_MAX_MIB		3072	/* below the 32-bit hole: one memory slot */
#define VMM_CPUS_DEFAULT	1

struct vmm_opts {
	const char *kernel;	/* bzImage (Linux x86 boot protocol >= 2.12) */
	const char *initrd;	/* initramfs with the guest's init (make guest-image) */
	const char *append;	/* more kernel command line, or NULL */
	char **argv;		/* PROG ARGS... run by the guest's init */
	unsigned int mem_mib;	/* guest memory */
	unsigned int cpus;	/* vCPUs, 1 to LB_CPUS_MAX (8) */
	bool kernel_log;	/* show the guest kernel's messages (-v) */
	bool interactive;	/* stdin feeds the console, the program's stdin (-i) */
	bool syscalls;		/* trap the guest's system calls; print the trusted ones' (--syscalls) */
	bool trap_all;		/* ... every process's, not only until it is known untrusted (--trap-all) */
	const char *delegate;	/* trusted processes' remote sockets go to rsys-delegate there (--delegate) */
	const struct policy *policy;	/* ... as this policy says (its families, egress rules) */
	bool no_fast_path;	/* ... every call of theirs exits to the VMM (no bpf/kvm_rsys.bpf.c) */
	bool no_write_behind;	/* ... every send of theirs waits for the delegate (sv.no_write_behind) */
};

/*
 * Boot the guest on /dev/kvm, copy its serial console to stdout and run
 * until its init reports the program's wait status (RSYS_VM_EXIT_PORT).
 * Returns that wait status (or, when INT, TERM or HUP stopped the VM, the
 * status of a process killed by it), or -errno once the failure was
 * reported on stderr (bad image, no KVM, guest reset before reporting).
 */
int vmm_run(const struct vmm_opts *o);

#endif
