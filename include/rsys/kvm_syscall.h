/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The userspace ABI of kvm-patch/ (KVM_CAP_X86_SYSCALL_TRAP), for a VMM
 * built against a distribution's <linux/kvm.h>, which does not have it.
 * The names and values are the series' include/uapi/linux/kvm.h.
 */
#ifndef RSYS_KVM_SYSCALL_H
#define RSYS_KVM_SYSCALL_H

#include <linux/kvm.h>

#ifndef KVM_EXIT_X86_SYSCALL
#define KVM_EXIT_X86_SYSCALL		0x5253
#define KVM_CAP_X86_SYSCALL_TRAP	0x5253
#define KVM_X86_GET_SYSCALL_VM_ID	_IOR(KVMIO, 0xfd, __u32)

/* In kvm_run's exit union (where kvm_run.hw starts) for KVM_EXIT_X86_SYSCALL. */
struct kvm_x86_syscall {
	__u64 nr;		/* RAX */
	__u64 args[6];		/* RDI, RSI, RDX, R10, R8, R9 */
	__u64 cr3;		/* guest CR3 */
	__u64 rip;		/* address of the SYSCALL instruction */
	__s64 ret;		/* result when the call is completed by the host */
	__u32 flags;		/* KVM_X86_SYSCALL_FLAG_* */
	__u32 vm_id;		/* KVM_X86_GET_SYSCALL_VM_ID of the VM */
};

#define KVM_X86_SYSCALL_FLAG_NATIVE	(1 << 0)	/* answer: the guest kernel runs it */
#define KVM_X86_SYSCALL_FLAG_RETURN	(1 << 1)	/* answer: exit on its SYSRET; exit: that SYSRET */
#define KVM_X86_SYSCALL_FLAG_COMPAT	(1 << 2)	/* exit: a 32-bit process's call */
#endif

/* Patch 7 of the series: a header of patches 1-6 lacks it. */
#ifndef KVM_X86_SYSCALL_FLAG_INT80
#define KVM_X86_SYSCALL_FLAG_INT80	(1 << 3)	/* exit: made with INT $0x80 (AMD; with COMPAT) */
#endif

/* Patch 9 of the series: trap only the address spaces asked for. */
#ifndef KVM_X86_SYSCALL_FLAG_UNTRAP
#define KVM_X86_SYSCALL_FLAG_UNTRAP	(1 << 4)	/* answer: stop trapping this CR3 */
#define KVM_X86_SYSCALL_RETRAP		_IO(KVMIO, 0xfe)	/* trap every CR3 again */
#endif

/* The trapped call of a KVM_EXIT_X86_SYSCALL exit in @run. */
static inline struct kvm_x86_syscall *kvm_run_syscall(struct kvm_run *run)
{
	return (struct kvm_x86_syscall *)(void *)&run->hw;
}

#endif
