/* SPDX-License-Identifier: GPL-2.0 */
/* The KVM tier's front end of the core (struct sv_front): trusted guest processes' socket calls, from a vCPU's syscall exit to rsys-delegate. */
#ifndef RSYS_KVMFRONT_H
#define RSYS_KVMFRONT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <rsys/kvm_syscall.h>

#include "gmem.h"

struct sv;
struct kf_call;

/*
 * A call waiting for its SYSRET (KVM_X86_SYSCALL_FLAG_RETURN): to learn the
 * vfd a placeholder got, to make the call again once its pages are in, or
 * to end a slice of a split wait or of a parked call's wait. KVM keeps up to 64 of them per VM and
 * finds each by its task's RIP, RSP and CR3 on whichever vCPU it returns
 * (kvm-patch 14); the front end keeps them the same way.
 */
struct kf_pend {
	bool armed;
	bool install;			/* learn the vfd a placeholder got */
	bool replace;			/* ... or that a guest file replaced a remote vfd (dup2) */
	bool epctl;			/* an epoll_ctl on a remote vfd: noted if it works */
	uint32_t ep_events;		/* ... its struct epoll_event */
	uint64_t ep_data;
	bool retry;			/* make @orig again once its pages are in */
	bool slice;			/* end a slice of a split poll (the local half) */
	bool sslice;			/* ... of a split select: @saved are the program's */
	bool park;			/* end a slice of a parked call's wait (the core still has it) */
	int raise;			/* the call became gettid: then tkill(tid, @raise) */
	bool has_result;		/* the call's result is @result, not the return's */
	int64_t result;
	bool exec;			/* an execve that carries its table: back here, it failed */
	bool vfork;			/* a vfork's parent: its child let the address space go */
	int inst_fd;			/* install: the monitor's placeholder end, or -1 */
	bool inst_cloexec;		/* ... close-on-exec */
	pid_t id;			/* the process's id in the core */
	struct kvm_x86_syscall orig;	/* the call as trapped */
	uint64_t rsp;			/* ... by the thread with this stack pointer */
	int64_t wait_deadline;		/* a slice's wait ends then (CLOCK_MONOTONIC ns, INT64_MAX: never) */
	unsigned int nhidden;		/* entries whose fd the slice hides (negated) */
	uint32_t *hidden;		/* ... their indexes in the array */
	unsigned int nsaved;		/* a select slice: the fd sets and timeout as the program had them */
	struct {
		uint64_t va;
		uint32_t len;
		uint8_t data[128];	/* 1024 bits, or a timeval */
	} saved[4];
};

/* What one vCPU's thread has in hand with the front end. */
struct kf_vcpu {
	struct kf_pend pend;		/* the return being set up for the call kf_call() decides */
	uint64_t cur_rsp;		/* that call's stack pointer (0: not read yet) */
	uint64_t fault_va;		/* the page the last fault-in was for (0: none) */
	struct kvm_x86_syscall fault_call;	/* ... in place of this call */
	struct kf_call *call;		/* the call the core holds while the vCPU waits for it */
	/* A split wait: the remote half asked between slices of the guest kernel's own. */
	struct kvm_x86_syscall wait_call;	/* the poll, ppoll, select or pselect6 (nr 0: none) */
	int64_t wait_deadline;		/* CLOCK_MONOTONIC ns (INT64_MAX: no timeout) */
	unsigned int wait_slice_ms;
	/* Set by the VMM for each call (guest/vmtrust.c): where the caller holds the VM's token. */
	uint64_t token;			/* where the trusted caller holds the token */
	bool fresh_token;		/* ... the latter: its first call (after a fork, say) */
};

/* Free what kf_call() allocated for @kv (when the VM ends). */
void kf_vcpu_free(struct kf_vcpu *kv);

/*
 * Serve @sv (policy, delegate and BPF maps set by the caller) for the
 * guest whose memory is @m: sv->front becomes sv_kvm, then sv_start().
 * 0 or -errno.
 */
int kf_start(struct sv *sv, const struct gmem *m);
void kf_stop(struct sv *sv);

enum kf_verdict {
	KF_PASS,	/* not the core's: the VMM lets the guest kernel run it */
	KF_DECIDED,	/* the answer is in the exit (flags, ret or a rewritten call) */
};

/*
 * A trusted process's 64-bit call @sc (a syscall exit, not a return) on the
 * vCPU @vcpu_fd: hands the calls the core handles (sockets, fd-table
 * calls on remote fds, waits, exit) to it and waits a moment for its
 * answer; a call still unanswered then is parked: its thread waits in the
 * guest kernel in slices while the vCPU goes on. @rsp(@arg) reads the
 * caller's stack pointer (a thread's key, a split select's scratch).
 */
enum kf_verdict kf_call(struct kf_vcpu *kv, struct kvm_x86_syscall *sc,
			uint64_t (*rsp)(void *arg), void *arg);

/*
 * A return exit (KVM_X86_SYSCALL_FLAG_RETURN) on the vCPU @vcpu_fd: if it
 * is a call kf_call() armed, the new vfd of a placeholder, or the
 * registers that make the process repeat its call (KVM_SET_REGS). 1 when
 * it was the front end's, 0 when not, or -errno.
 */
int kf_return(int vcpu_fd, struct kvm_x86_syscall *sc);

/* The address space @cr3 ends (exit_group, execve): its remote fds are let go. */
void kf_mm_gone(uint64_t cr3);

/* A process found untrusted runs in @cr3: the fast path stops deciding there as for a trusted one. */
void kf_untrusted(uint64_t cr3);

#endif
