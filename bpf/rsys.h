/* SPDX-License-Identifier: GPL-2.0 */
/* Types shared by bpf/rsys.bpf.c and rsys-load: the policy knobs in the pinned config map. */
#ifndef RSYS_BPF_H
#define RSYS_BPF_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/* Single value (key 0) of /sys/fs/bpf/rsys/config, written by "rsys-load attach". */
struct rsys_config {
	__u64 remote_families;	/* bit (1 << AF_x) per socket family executed remotely */
	__u32 policy_rules;	/* egress rules in the attached policy, for status */
	__u32 policy_trusted;	/* trusted programs in the attached policy, for status */
};

/* Value of /sys/fs/bpf/rsys/monitors, keyed by the tgid of an rsys-load monitor. */
struct rsys_monitor {
	__u32 dead;		/* the monitor exited: kill its trusted tasks */
	__u32 pad;
};

/*
 * Value of /sys/fs/bpf/rsys/sigdeliver, keyed by thread id: the last time
 * a signal handler interrupted a trusted thread waiting in a select, poll
 * or epoll call held by the monitor. @code 512: the kernel's seccomp code
 * left -ERESTARTSYS and the handler has SA_RESTART, so the kernel restarts
 * the call where Linux itself fails it with EINTR; 514: the monitor's
 * -ERESTARTNOHAND, which a handler turns into EINTR (no restart).
 */
struct rsys_sigdeliver {
	__u64 ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 sig;
	__u32 nr;		/* the interrupted call */
	__u32 code;		/* ERESTARTSYS (512) or ERESTARTNOHAND (514) */
	__u32 pad;
};

/*
 * Value of /sys/fs/bpf/rsys/sigwake, keyed by thread id: the last signal
 * generated for a trusted thread that surely has TIF_SIGPENDING set now
 * (rsys_signal_generate). A call the monitor holds for that thread (seccomp
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV keeps it waiting) may then be
 * answered with a restart code: the kernel converts it as for an
 * interrupted call. /sys/fs/bpf/rsys/sigstop, keyed by tgid: the last stop
 * signal generated for the process (a group stop may follow).
 */
struct rsys_sigwake {
	__u64 ns;		/* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__u32 sig;
	__u32 pad;
};

/*
 * Programs of rsys.bpf.c, each pinned as /sys/fs/bpf/rsys/link_NAME, with
 * what rsys loses when the kernel refuses it. Each is optional.
 */
#define RSYS_PROGS(X)								\
	X(rsys_sys_enter, "per-call counters, killing trusted tasks whose monitor exited") \
	X(rsys_fork, "trust and fd-table inheritance by child processes")	\
	X(rsys_exec, "dropping close-on-exec fd-table entries at execve")	\
	X(rsys_exit, "dropping exited processes' entries, noticing monitor exit")	\
	X(rsys_monitor_exit, "killing trusted tasks the moment their monitor exits") \
	X(rsys_signal_deliver, "EINTR from split waits after an SA_RESTART handler, as Linux's") \
	X(rsys_signal_generate, "signals ending remote calls as Linux's (the count a send got out)")

#endif
