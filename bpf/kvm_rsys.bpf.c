// SPDX-License-Identifier: GPL-2.0
/* KVM-tier fast path: decides trapped guest syscalls in KVM by VM, guest CR3 and the fd table. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "rsys/fdtable.h"
#include "rsys/syscalls.h"
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

/* poll/ppoll arrays up to this many entries are read and decided here. */
#define KVM_RSYS_POLL_MAX	8

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
extern int bpf_kvm_syscall_read_user(struct kvm_x86_syscall *sc, void *dst,
				     __u32 dst__sz, __u64 gva) __ksym;

static struct rsys_fd_val *lookup_fd(__u32 table, __u64 vfd)
{
	struct rsys_fd_key key = { .table = table, .vfd = vfd };

	if (vfd > 0xffffffffull)
		return NULL;
	return bpf_map_lookup_elem(&fdtable, &key);
}

/*
 * Can the guest kernel run this poll/ppoll without an exit? Only an array
 * of at most KVM_RSYS_POLL_MAX entries, read from the guest, with no entry
 * remote or in need of renumbering; anything else, an unreadable array
 * included, goes to the VMM, which splits the wait.
 */
static bool poll_all_local(struct kvm_x86_syscall *sc, __u32 table)
{
	struct pollfd pfd[KVM_RSYS_POLL_MAX] = {};
	__u64 nfds = sc->args[1];
	struct rsys_fd_val *val;
	int i;

	if (!nfds || nfds > KVM_RSYS_POLL_MAX ||
	    bpf_kvm_syscall_read_user(sc, pfd, nfds * sizeof(pfd[0]), sc->args[0]))
		return false;
	for (i = 0; i < KVM_RSYS_POLL_MAX && i < nfds; i++) {
		if (pfd[i].fd < 0)
			continue;
		val = lookup_fd(table, pfd[i].fd);
		if (val && (val->domain == RSYS_DOM_REMOTE || val->handle != pfd[i].fd))
			return false;
	}
	return true;
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

	if (nr == RSYS_NR_socket) {
		if (sc->args[0] == AF_INET || sc->args[0] == AF_INET6)
			return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_USER);
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);
	}
	/*
	 * The fds of poll/select live in guest memory and close_range covers
	 * vfds by range: a small poll array is read here, the rest goes to
	 * the VMM, which can read and split them and counts them once it
	 * knows their class.
	 */
	if (nr == RSYS_NR_poll || nr == RSYS_NR_ppoll)
		return poll_all_local(sc, *table) ?
		       verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE) : KVM_X86_SYSCALL_USER;
	if (rsys_syscall_flags(nr) & RSYS_AMEM)
		return KVM_X86_SYSCALL_USER;
	if (!(rsys_syscall_flags(nr) & RSYS_A0))
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);

	/* BTF pointers take constant offsets only: pick by value. */
	arg1 = sc->args[1];
	arg2 = sc->args[2];
	n = rsys_syscall_fd2(nr);
	if (n == 1)
		fd2 = arg1;
	else if (n == 2)
		fd2 = arg2;
	val = lookup_fd(*table, sc->args[0]);
	val2 = n > 0 ? lookup_fd(*table, fd2) : NULL;
	if ((val && val->domain == RSYS_DOM_REMOTE) ||
	    (val2 && val2->domain == RSYS_DOM_REMOTE)) {
		if (nr == RSYS_NR_fcntl && arg1 == F_GETFD && val) {
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
