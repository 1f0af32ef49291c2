// SPDX-License-Identifier: GPL-2.0
/* KVM-tier fast path: decides trapped guest syscalls in KVM by VM, guest CR3 and the fd table. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "rsys/fdtable.h"
#include "maps.h"

/* Verdicts of kvm_x86_syscall_verdict(), from the patched <linux/kvm.h>. */
#define KVM_X86_SYSCALL_NATIVE		1
#define KVM_X86_SYSCALL_COMPLETE	2
#define KVM_X86_SYSCALL_USER		3
#define KVM_X86_SYSCALL_FLAG_COMPAT	(1 << 2)

#define F_GETFD		1
#define FD_CLOEXEC	1

#define AF_INET		2
#define AF_INET6	10

/* x86-64 syscall numbers whose first argument is an fd. */
#define NR_READ		0
#define NR_WRITE	1
#define NR_CLOSE	3
#define NR_FSTAT	5
#define NR_POLL		7
#define NR_LSEEK	8
#define NR_IOCTL	16
#define NR_PREAD64	17
#define NR_PWRITE64	18
#define NR_READV	19
#define NR_WRITEV	20
#define NR_SELECT	23
#define NR_DUP		32
#define NR_DUP2		33
#define NR_SENDFILE	40
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
#define NR_EPOLL_WAIT	232
#define NR_EPOLL_CTL	233
#define NR_PSELECT6	270
#define NR_PPOLL	271
#define NR_EPOLL_PWAIT	281
#define NR_ACCEPT4	288
#define NR_DUP3		292
#define NR_RECVMMSG	299
#define NR_SENDMMSG	307
#define NR_CLOSE_RANGE	436
#define NR_EPOLL_PWAIT2	441

/*
 * KVM tier: the fd table of a guest process, by the VM's
 * KVM_X86_GET_SYSCALL_VM_ID and the process's CR3 tag, so that one program
 * serves many VMs whose processes may have equal CR3s. The VMM gives each
 * process a table id unique across VMs; trusted and fdtable are keyed by it.
 */
struct kvm_rsys_proc {
	__u32 vm_id;
	__u32 cr3_tag;		/* CR3 >> 12 */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, struct kvm_rsys_proc);
	__type(value, __u32);
} vm_procs SEC(".maps");

extern int bpf_kvm_syscall_set_arg(struct kvm_x86_syscall *sc, __u32 n,
				   __u64 val) __ksym;
extern int bpf_kvm_syscall_set_ret(struct kvm_x86_syscall *sc, __s64 ret) __ksym;

static bool takes_fd(__u64 nr)
{
	switch (nr) {
	case NR_READ: case NR_WRITE: case NR_CLOSE: case NR_FSTAT:
	case NR_LSEEK: case NR_IOCTL: case NR_PREAD64: case NR_PWRITE64:
	case NR_READV: case NR_WRITEV: case NR_DUP: case NR_DUP2:
	case NR_DUP3: case NR_SENDFILE: case NR_CONNECT:
	case NR_ACCEPT: case NR_SENDTO: case NR_RECVFROM: case NR_SENDMSG:
	case NR_RECVMSG: case NR_SHUTDOWN: case NR_BIND: case NR_LISTEN:
	case NR_GETSOCKNAME: case NR_GETPEERNAME: case NR_SETSOCKOPT:
	case NR_GETSOCKOPT: case NR_FCNTL: case NR_ACCEPT4:
	case NR_EPOLL_WAIT: case NR_EPOLL_CTL: case NR_EPOLL_PWAIT:
	case NR_EPOLL_PWAIT2: case NR_RECVMMSG: case NR_SENDMMSG:
		return true;
	}
	return false;
}

/* Second fd argument: dup2/dup3's newfd, sendfile's in_fd, epoll_ctl's fd. */
static int second_fd(__u64 nr)
{
	switch (nr) {
	case NR_DUP2: case NR_DUP3: case NR_SENDFILE:
		return 1;
	case NR_EPOLL_CTL:
		return 2;
	}
	return -1;
}

/*
 * The fd sets of poll/select live in guest memory and close_range covers
 * vfds by range: the VMM, which can read and split them, decides.
 */
static bool fds_elsewhere(__u64 nr)
{
	switch (nr) {
	case NR_POLL: case NR_SELECT: case NR_PSELECT6: case NR_PPOLL:
	case NR_CLOSE_RANGE:
		return true;
	}
	return false;
}

static struct rsys_fd_val *lookup_fd(__u32 table, __u64 vfd)
{
	struct rsys_fd_key key = { .table = table, .vfd = vfd };

	if (vfd > 0xffffffffull)
		return NULL;
	return bpf_map_lookup_elem(&fdtable, &key);
}

static int verdict(__u32 class, int v)
{
	count(&class_count, class);
	return v;
}

/*
 * vm_procs gives the fd table of a guest process; trusted and fdtable are
 * keyed by it. A remote vfd goes to the VMM, which runs it through the
 * delegate, except fcntl(F_GETFD), answered here from the table; a local vfd
 * whose handle differs from it is renumbered to the guest fd @handle.
 */
SEC("fmod_ret/kvm_x86_syscall_verdict")
int BPF_PROG(kvm_x86_syscall_verdict_rsys, struct kvm_vcpu *vcpu,
	     struct kvm_x86_syscall *sc, int ret)
{
	struct kvm_rsys_proc proc = {
		.vm_id = sc->vm_id,
		.cr3_tag = sc->cr3 >> 12,
	};
	struct rsys_fd_val *val, *val2;
	__u64 nr = sc->nr, arg1, arg2, fd2 = 0;
	__u32 *table;
	int n;

	/* Untrusted processes and the guest kernel itself run untouched. */
	table = bpf_map_lookup_elem(&vm_procs, &proc);
	if (!table || !bpf_map_lookup_elem(&trusted, table))
		return KVM_X86_SYSCALL_NATIVE;

	/* A 32-bit process: i386 numbers and registers, the VMM decides. */
	if (sc->flags & KVM_X86_SYSCALL_FLAG_COMPAT)
		return KVM_X86_SYSCALL_USER;

	if (nr < RSYS_MAX_SYSCALL)
		count(&sys_count, nr);

	if (nr == NR_SOCKET) {
		if (sc->args[0] == AF_INET || sc->args[0] == AF_INET6)
			return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_USER);
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);
	}
	/* The VMM counts these once it knows their class. */
	if (fds_elsewhere(nr))
		return KVM_X86_SYSCALL_USER;
	if (!takes_fd(nr))
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);

	/* BTF pointers take constant offsets only: pick by value. */
	arg1 = sc->args[1];
	arg2 = sc->args[2];
	n = second_fd(nr);
	if (n == 1)
		fd2 = arg1;
	else if (n == 2)
		fd2 = arg2;
	val = lookup_fd(*table, sc->args[0]);
	val2 = n > 0 ? lookup_fd(*table, fd2) : NULL;
	if ((val && val->domain == RSYS_DOM_REMOTE) ||
	    (val2 && val2->domain == RSYS_DOM_REMOTE)) {
		if (nr == NR_FCNTL && arg1 == F_GETFD && val) {
			bpf_kvm_syscall_set_ret(sc, val->flags & RSYS_FD_CLOEXEC ?
						FD_CLOEXEC : 0);
			return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_COMPLETE);
		}
		return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_USER);
	}
	if (val && val->handle != sc->args[0])
		bpf_kvm_syscall_set_arg(sc, 0, val->handle);
	if (val2 && val2->handle != fd2)
		bpf_kvm_syscall_set_arg(sc, n, val2->handle);
	return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);
}

char LICENSE[] SEC("license") = "GPL";
