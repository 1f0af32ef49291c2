// SPDX-License-Identifier: GPL-2.0
/* KVM-tier fast path: decides trapped guest syscalls in KVM by guest CR3 and the fd table. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "rsys/fdtable.h"
#include "maps.h"

/* Verdicts of kvm_x86_syscall_verdict(), from the patched <linux/kvm.h>. */
#define KVM_X86_SYSCALL_NATIVE		1
#define KVM_X86_SYSCALL_USER		3

#define AF_INET		2
#define AF_INET6	10

/* x86-64 syscall numbers whose first argument is an fd. */
#define NR_READ		0
#define NR_WRITE	1
#define NR_CLOSE	3
#define NR_FSTAT	5
#define NR_LSEEK	8
#define NR_IOCTL	16
#define NR_PREAD64	17
#define NR_PWRITE64	18
#define NR_READV	19
#define NR_WRITEV	20
#define NR_DUP		32
#define NR_SOCKET	41
#define NR_CONNECT	42
#define NR_ACCEPT	43
#define NR_SENDTO	44
#define NR_RECVFROM	45
#define NR_SENDMSG	46
#define NR_RECVMSG	47
#define NR_SHUTDOWN	48
#define NR_BIND		49
#define NR_LISTEN	50
#define NR_GETSOCKNAME	51
#define NR_GETPEERNAME	52
#define NR_SETSOCKOPT	54
#define NR_GETSOCKOPT	55
#define NR_FCNTL	72
#define NR_ACCEPT4	288

extern int bpf_kvm_syscall_set_arg(struct kvm_x86_syscall *sc, __u32 n,
				   __u64 val) __ksym;

static bool takes_fd(__u64 nr)
{
	switch (nr) {
	case NR_READ: case NR_WRITE: case NR_CLOSE: case NR_FSTAT:
	case NR_LSEEK: case NR_IOCTL: case NR_PREAD64: case NR_PWRITE64:
	case NR_READV: case NR_WRITEV: case NR_DUP: case NR_CONNECT:
	case NR_ACCEPT: case NR_SENDTO: case NR_RECVFROM: case NR_SENDMSG:
	case NR_RECVMSG: case NR_SHUTDOWN: case NR_BIND: case NR_LISTEN:
	case NR_GETSOCKNAME: case NR_GETPEERNAME: case NR_SETSOCKOPT:
	case NR_GETSOCKOPT: case NR_FCNTL: case NR_ACCEPT4:
		return true;
	}
	return false;
}

static int verdict(__u32 class, int v)
{
	count(&class_count, class);
	return v;
}

/*
 * fdtable and trusted are keyed by the CR3 tag of the guest process. A
 * remote vfd goes to the VMM, which runs it through the delegate; a local
 * vfd whose handle differs from it is renumbered to the guest fd @handle.
 */
SEC("fmod_ret/kvm_x86_syscall_verdict")
int BPF_PROG(kvm_x86_syscall_verdict_rsys, struct kvm_vcpu *vcpu,
	     struct kvm_x86_syscall *sc, int ret)
{
	struct rsys_fd_key key = { .table = sc->cr3 >> 12 };
	struct rsys_fd_val *val;
	__u64 nr = sc->nr;

	/* Untrusted processes and the guest kernel itself run untouched. */
	if (!bpf_map_lookup_elem(&trusted, &key.table))
		return KVM_X86_SYSCALL_NATIVE;

	if (nr < RSYS_MAX_SYSCALL)
		count(&sys_count, nr);

	if (nr == NR_SOCKET) {
		if (sc->args[0] == AF_INET || sc->args[0] == AF_INET6)
			return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_USER);
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);
	}
	if (!takes_fd(nr))
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);

	key.vfd = sc->args[0];
	val = bpf_map_lookup_elem(&fdtable, &key);
	if (val && val->domain == RSYS_DOM_REMOTE)
		return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_USER);
	if (val && val->handle != key.vfd)
		bpf_kvm_syscall_set_arg(sc, 0, val->handle);
	return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);
}

char LICENSE[] SEC("license") = "GPL";
