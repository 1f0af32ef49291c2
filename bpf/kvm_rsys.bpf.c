// SPDX-License-Identifier: GPL-2.0
/*
 * KVM-tier fast path: decides a trapped guest syscall in KVM by the VM, the
 * guest's page-table root and the process's fd table, so that a trusted
 * process's calls on local fds never leave the kernel.
 *
 * Two loaders: rsys-load vm (guest/kvmbpf.c) sets rsys_vm_id to its VM's
 * and mirrors its front end's tables here; a process this program does not
 * know, and every call the front end must see (forks, execs, exits, signal
 * handlers, calls naming a remote fd, a split wait), goes to the VMM.
 * kvm-patch/rsys-kvm-load.c leaves rsys_vm_id 0 (every VM, an unknown
 * process runs natively) for the selftest payload, which fills the maps itself.
 *
 * The patched kernel's struct kvm_x86_syscall is relocated by name (CO-RE),
 * so this builds against any vmlinux.h and loads only where the hook is.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "rsys/fdtable.h"
#include "rsys/syscalls.h"
#include "maps.h"

/* include/rsys/kvm_syscall.h */
struct kvm_x86_syscall___rsys {
	__u64 nr;
	__u64 args[6];
	__u64 cr3;
	__u64 rip;
	__s64 ret;
	__u32 flags;
	__u32 vm_id;
} __attribute__((preserve_access_index));

/* Verdicts of kvm_x86_syscall_verdict(), from the patched <linux/kvm.h>; 0: the next program's, or the VMM's. */
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
/* ... select/pselect6 sets up to this many fds. */
#define KVM_RSYS_SELECT_MAX	128

/* The VM whose calls this program decides (rsys-load vm); 0: every VM's (rsys-kvm-load). */
const volatile __u32 rsys_vm_id;

/*
 * KVM tier: the fd table of a guest process, by the VM's
 * KVM_X86_GET_SYSCALL_VM_ID and the process's page-table root (CR3 bits
 * 12-43), so that one program may serve many VMs whose processes have equal
 * roots. trusted and fdtable are keyed by the table's id.
 */
struct kvm_rsys_proc {
	__u32 vm_id;
	__u32 cr3_tag;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, struct kvm_rsys_proc);
	__type(value, __u32);
} vm_procs SEC(".maps");

extern int bpf_kvm_syscall_set_arg(struct kvm_x86_syscall___rsys *sc, __u32 n,
				   __u64 val) __ksym;
extern int bpf_kvm_syscall_set_ret(struct kvm_x86_syscall___rsys *sc, __s64 ret) __ksym;
extern int bpf_kvm_syscall_read_user(struct kvm_x86_syscall___rsys *sc, void *dst,
				     __u32 dst__sz, __u64 gva) __ksym;

static struct rsys_fd_val *lookup_fd(__u32 table, __u64 vfd)
{
	struct rsys_fd_key key = { .table = table, .vfd = vfd };

	if (vfd > 0xffffffffull)
		return NULL;
	return bpf_map_lookup_elem(&fdtable, &key);
}

/* A vfd the guest kernel cannot run a call on by itself: remote, or an epoll instance watching remote ones. */
static bool vmm_fd(const struct rsys_fd_val *val)
{
	return val && (val->domain == RSYS_DOM_REMOTE || (val->flags & RSYS_FD_SPLIT));
}

/*
 * Can the guest kernel run this poll/ppoll without an exit? Only an array
 * of 1 to KVM_RSYS_POLL_MAX entries, read from the guest, with no entry
 * remote or in need of renumbering; anything else, an unreadable array
 * included, goes to the VMM, which splits the wait.
 */
static bool poll_all_local(struct kvm_x86_syscall___rsys *sc, __u32 table)
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
		if (vmm_fd(val) || (val && val->handle != pfd[i].fd))
			return false;
	}
	return true;
}

/* Read fd set @va (NULL: empty) of KVM_RSYS_SELECT_MAX bits into @set, OR-ing. */
static bool read_set(struct kvm_x86_syscall___rsys *sc, __u64 va, __u64 *set)
{
	__u64 s[KVM_RSYS_SELECT_MAX / 64] = {};
	int i;

	if (!va)
		return true;
	if (bpf_kvm_syscall_read_user(sc, s, sizeof(s), va))
		return false;
	for (i = 0; i < KVM_RSYS_SELECT_MAX / 64; i++)
		set[i] |= s[i];
	return true;
}

/*
 * The same for select/pselect6: fd sets of at most KVM_RSYS_SELECT_MAX
 * fds (their words read whole: a set this short may end a page early,
 * and then the VMM decides), none of them remote or renumbered.
 */
static bool select_all_local(struct kvm_x86_syscall___rsys *sc, __u32 table)
{
	__u64 set[KVM_RSYS_SELECT_MAX / 64] = {}, nfds = sc->args[0];
	struct rsys_fd_val *val;
	int fd;

	if (nfds > KVM_RSYS_SELECT_MAX || !read_set(sc, sc->args[1], set) ||
	    !read_set(sc, sc->args[2], set) || !read_set(sc, sc->args[3], set))
		return false;
	for (fd = 0; fd < KVM_RSYS_SELECT_MAX && fd < nfds; fd++) {
		if (!(set[fd / 64] & (1ULL << (fd % 64))))
			continue;
		val = lookup_fd(table, fd);
		if (vmm_fd(val) || (val && val->handle != fd))
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
 * Calls the VMM's front end sees whatever their fds: it follows forks,
 * execs and exits (the table goes with them), the handlers' SA_RESTART,
 * and the calls it turns a parked or split call into (a slice's restart,
 * a raised signal, a handler's return); close_range covers fds by range.
 */
static bool front_sees(__u64 nr)
{
	switch (nr) {
	case RSYS_NR_clone:
	case RSYS_NR_clone3:
	case RSYS_NR_fork:
	case RSYS_NR_vfork:
	case RSYS_NR_execve:
	case RSYS_NR_execveat:
	case RSYS_NR_exit:
	case RSYS_NR_exit_group:
	case RSYS_NR_rt_sigaction:
	case RSYS_NR_rt_sigreturn:
	case RSYS_NR_restart_syscall:
	case RSYS_NR_tkill:
	case RSYS_NR_close_range:
		return true;
	}
	return false;
}

/*
 * vm_procs gives the fd table of a guest process; trusted and fdtable are
 * keyed by it. A remote vfd goes to the VMM, which runs it through the
 * delegate, except fcntl(F_GETFD), answered here from the table (rsys-load
 * vm registers no process while it vforks: a vfork child's flags are its
 * own copy's, which only the VMM knows); a local vfd
 * whose handle differs from it is renumbered to the guest fd @handle.
 */
SEC("fmod_ret/kvm_x86_syscall_verdict")
int BPF_PROG(kvm_x86_syscall_verdict_rsys, void *vcpu,
	     struct kvm_x86_syscall___rsys *sc, int ret)
{
	struct kvm_rsys_proc proc = {
		.vm_id = sc->vm_id,
		.cr3_tag = (sc->cr3 & 0x000ffffffffff000ULL) >> 12,
	};
	struct rsys_fd_val *val, *val2;
	__u64 nr = sc->nr, arg1, arg2, fd2 = 0;
	unsigned int fa;
	__u32 *table;
	int n;

	/* Another VM's: its own program's, or its VMM's. */
	if (rsys_vm_id && proc.vm_id != rsys_vm_id)
		return 0;
	/*
	 * A process not known here: the VMM tells whether it is trusted (and
	 * lets KVM stop trapping an untrusted one), or, for rsys-kvm-load,
	 * the guest kernel runs it untouched.
	 */
	table = bpf_map_lookup_elem(&vm_procs, &proc);
	if (!table || !bpf_map_lookup_elem(&trusted, table))
		return rsys_vm_id ? KVM_X86_SYSCALL_USER : KVM_X86_SYSCALL_NATIVE;

	/* A 32-bit process: i386 numbers and registers, the VMM decides. */
	if (sc->flags & KVM_X86_SYSCALL_FLAG_COMPAT)
		return KVM_X86_SYSCALL_USER;

	if (nr < RSYS_MAX_SYSCALL)
		count(&sys_count, nr);

	if (nr == RSYS_NR_socket) {
		if (sc->args[0] == AF_INET || sc->args[0] == AF_INET6 || rsys_vm_id)
			return verdict(RSYS_CLASS_REMOTE, KVM_X86_SYSCALL_USER);
		return verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE);
	}
	if (rsys_vm_id && front_sees(nr))
		return KVM_X86_SYSCALL_USER;
	/*
	 * The fds of poll/select live in guest memory: small arrays and sets
	 * are read here, the rest goes to the VMM, which can read and split
	 * them and counts them once it knows their class.
	 */
	if (nr == RSYS_NR_poll || nr == RSYS_NR_ppoll)
		return poll_all_local(sc, *table) ?
		       verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE) : KVM_X86_SYSCALL_USER;
	if (nr == RSYS_NR_select || nr == RSYS_NR_pselect6)
		return select_all_local(sc, *table) ?
		       verdict(RSYS_CLASS_LOCAL, KVM_X86_SYSCALL_NATIVE) : KVM_X86_SYSCALL_USER;
	fa = rsys_syscall_flags(nr);
	if (fa & RSYS_AMEM)
		return KVM_X86_SYSCALL_USER;
	if (!(fa & RSYS_A0))
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
	if (vmm_fd(val) || vmm_fd(val2)) {
		if (nr == RSYS_NR_fcntl && arg1 == F_GETFD && val &&
		    val->domain == RSYS_DOM_REMOTE) {
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
