// SPDX-License-Identifier: GPL-2.0
/* Host-tier BPF: fd-table lifecycle (fork/exec/exit), per-call counters and monitor-death kill. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <rsys/fdtable.h>
#include <rsys/syscalls.h>
#include "rsys.h"
#include "maps.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define SIGSTOP 19
#define SIGTSTP 20
#define SIGTTIN 21
#define SIGTTOU 22
#define PF_EXITING 0x4
#define TRACE_SIGNAL_DELIVERED 0
#define SA_RESTART 0x10000000
#define ERESTARTSYS 512
#define ERESTARTNOHAND 514
#define KILL_BATCH 64	/* tasks killed at once when their monitor exits; power of 2 */

/* Only rsys_monitor_exit uses these (kernel >= 6.13): a kernel without them refuses only it. */
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type,
				u64 value) __ksym;

/*
 * LRU: an entry outlives its monitor until the last supervised task is gone,
 * and nothing else would ever remove it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, __u32);
	__type(value, struct rsys_monitor);
} monitors SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, __u32);
	__type(value, struct rsys_sigdeliver);
} sigdeliver SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, __u32);
	__type(value, struct rsys_sigwake);
} sigwake SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, RSYS_MAX_TRUSTED);
	__type(key, __u32);
	__type(value, struct rsys_sigwake);
} sigstop SEC(".maps");

/* Wakes the monitors (they read sigwake/sigstop): only the event counts, not its data. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} sigring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rsys_config);
} cfg SEC(".maps");	/* pinned as "config" ("config" is a vmlinux.h type) */

/* x86-64 syscalls whose first argument is a file descriptor (dirfd-relative *at() calls excluded). */
#define FD_SYSCALLS(X, w)							\
	X(0, w) X(1, w) X(3, w) X(5, w) X(8, w) X(16, w) X(17, w) X(18, w)	\
	X(19, w) X(20, w) X(32, w) X(33, w) X(40, w) X(42, w) X(43, w)		\
	X(44, w) X(45, w) X(46, w) X(47, w) X(48, w) X(49, w) X(50, w)		\
	X(51, w) X(52, w) X(54, w) X(55, w) X(72, w) X(73, w) X(74, w)		\
	X(75, w) X(77, w) X(78, w) X(81, w) X(91, w) X(93, w) X(138, w)	\
	X(187, w) X(190, w) X(193, w) X(196, w) X(199, w) X(217, w)		\
	X(221, w) X(232, w) X(233, w) X(254, w) X(255, w) X(275, w)		\
	X(276, w) X(277, w) X(278, w) X(281, w) X(285, w) X(286, w)		\
	X(287, w) X(288, w) X(292, w) X(295, w) X(296, w) X(299, w)		\
	X(301, w) X(306, w) X(307, w) X(308, w) X(326, w) X(327, w)		\
	X(328, w) X(426, w) X(427, w) X(441, w)
#define FD_BIT(nr, w)	| ((nr) / 64 == (w) ? 1ULL << ((nr) % 64) : 0ULL)
#define FD_WORD(w)	(0ULL FD_SYSCALLS(FD_BIT, w))

static const __u64 fd_first_arg[RSYS_MAX_SYSCALL / 64] = {
	FD_WORD(0), FD_WORD(1), FD_WORD(2), FD_WORD(3),
	FD_WORD(4), FD_WORD(5), FD_WORD(6), FD_WORD(7),
};

/* True if the monitor supervising @t has exited; registers a monitor seen for the first time. */
static __always_inline bool monitor_dead(const struct rsys_trusted *t)
{
	struct rsys_monitor *m, fresh = {};
	__u32 mon = t->monitor;

	m = bpf_map_lookup_elem(&monitors, &mon);
	if (!m) {
		bpf_map_update_elem(&monitors, &mon, &fresh, BPF_NOEXIST);
		return false;
	}
	return m->dead;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(rsys_sys_enter, struct pt_regs *regs, long id)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct rsys_trusted *t;
	struct rsys_fd_key key;
	__u32 cls = RSYS_CLASS_LOCAL;
	__u32 nr;

	t = bpf_map_lookup_elem(&trusted, &tgid);
	if (!t)
		return 0;
	/* Without its monitor half of a trusted program's calls would fail: stop it now. */
	if (monitor_dead(t)) {
		bpf_send_signal(SIGKILL);
		return 0;
	}
	if (id < 0 || id >= RSYS_MAX_SYSCALL)
		return 0;
	nr = id;
	count(&sys_count, nr);
	if (fd_first_arg[nr / 64] & (1ULL << (nr % 64))) {
		int fd = regs->di;	/* the kernel takes an int: upper bits are ignored */

		key.table = tgid;
		key.vfd = fd;
		if (fd >= 0 && bpf_map_lookup_elem(&fdtable, &key))
			cls = RSYS_CLASS_REMOTE;
	}
	count(&class_count, cls);
	return 0;
}

struct fd_copy_ctx {
	__u32 from;
	__u32 to;
};

static long fd_copy_one(void *map, struct rsys_fd_key *key, struct rsys_fd_val *val,
			struct fd_copy_ctx *ctx)
{
	struct rsys_fd_key nkey;

	if (key->table != ctx->from)
		return 0;
	nkey.table = ctx->to;
	nkey.vfd = key->vfd;
	bpf_map_update_elem(map, &nkey, val, BPF_ANY);
	return 0;
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(rsys_fork, struct task_struct *parent, struct task_struct *child)
{
	struct fd_copy_ctx cc = { .from = parent->tgid, .to = child->tgid };
	struct rsys_trusted *t;

	/* A new thread shares its process's fd table and trust. */
	if (cc.from == cc.to)
		return 0;
	t = bpf_map_lookup_elem(&trusted, &cc.from);
	if (!t)
		return 0;
	bpf_map_update_elem(&trusted, &cc.to, t, BPF_ANY);
	bpf_for_each_map_elem(&fdtable, fd_copy_one, &cc, 0);
	return 0;
}

struct fd_drop_ctx {
	__u32 table;
	__u32 flags;		/* drop entries with any of these flags; 0 = all */
};

static long fd_drop_one(void *map, struct rsys_fd_key *key, struct rsys_fd_val *val,
			struct fd_drop_ctx *ctx)
{
	if (key->table != ctx->table)
		return 0;
	if (ctx->flags && !(val->flags & ctx->flags))
		return 0;
	bpf_map_delete_elem(map, key);
	return 0;
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(rsys_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct fd_drop_ctx dc = { .table = p->tgid, .flags = RSYS_FD_CLOEXEC };

	if (!bpf_map_lookup_elem(&trusted, &dc.table))
		return 0;
	bpf_for_each_map_elem(&fdtable, fd_drop_one, &dc, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(rsys_exit, struct task_struct *p, bool group_dead)
{
	struct fd_drop_ctx dc = { .table = p->tgid };
	struct rsys_monitor *m;

	if (!group_dead)
		return 0;
	m = bpf_map_lookup_elem(&monitors, &dc.table);
	if (m)
		m->dead = 1;
	if (!bpf_map_lookup_elem(&trusted, &dc.table))
		return 0;
	bpf_for_each_map_elem(&fdtable, fd_drop_one, &dc, 0);
	bpf_map_delete_elem(&trusted, &dc.table);
	return 0;
}

struct kill_ctx {
	__u32 monitor;
	__u32 n;
	__u32 tgids[KILL_BATCH];
};

static long kill_collect(void *map, __u32 *tgid, struct rsys_trusted *t, struct kill_ctx *kc)
{
	if (t->monitor != kc->monitor)
		return 0;
	if (kc->n >= KILL_BATCH)
		return 1;
	kc->tgids[kc->n & (KILL_BATCH - 1)] = *tgid;
	kc->n++;
	return 0;
}

/*
 * Kill the tasks of an exiting monitor at once, before its seccomp listener
 * is closed (exit_files() follows this tracepoint): otherwise their filtered
 * calls would fail with ENOSYS and never reach rsys_sys_enter's lazy kill.
 * Tasks beyond KILL_BATCH are left to that lazy kill.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(rsys_monitor_exit, struct task_struct *p, bool group_dead)
{
	struct kill_ctx kc = { .monitor = p->tgid };
	struct task_struct *task;
	__u32 i;

	if (!group_dead || !bpf_map_lookup_elem(&monitors, &kc.monitor))
		return 0;
	bpf_for_each_map_elem(&trusted, kill_collect, &kc, 0);
	for (i = 0; i < KILL_BATCH && i < kc.n; i++) {
		task = bpf_task_from_pid(kc.tgids[i]);
		if (!task)
			continue;
		bpf_send_signal_task(task, SIGKILL, PIDTYPE_TGID, 0);
		bpf_task_release(task);
	}
	return 0;
}

/*
 * A trusted thread runs a handler for a signal that interrupted it in a
 * select, poll or epoll wait held by the monitor: with SA_RESTART where
 * seccomp left -ERESTARTSYS, the kernel is about to restart that call,
 * where Linux itself would fail it with EINTR; where the monitor answered
 * -ERESTARTNOHAND, the call fails with EINTR (no handler: it restarts).
 * Tell the monitor (wait.c, wcall_restarted).
 */
SEC("tp_btf/signal_deliver")
int BPF_PROG(rsys_signal_deliver, int sig, struct kernel_siginfo *info, struct k_sigaction *ka)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;
	struct rsys_sigdeliver d = { .sig = sig };
	struct pt_regs *regs;
	long nr;

	if (!bpf_map_lookup_elem(&trusted, &tgid))
		return 0;
	if ((unsigned long)ka->sa.sa_handler <= 1)
		return 0;	/* SIG_DFL, SIG_IGN: no handler */
	regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	if (!regs)
		return 0;
	if ((long)regs->ax == -ERESTARTSYS && (ka->sa.sa_flags & SA_RESTART))
		d.code = ERESTARTSYS;	/* without SA_RESTART: EINTR anyway */
	else if ((long)regs->ax == -ERESTARTNOHAND)
		d.code = ERESTARTNOHAND;
	else
		return 0;
	nr = regs->orig_ax;
	if (!(rsys_syscall_flags(nr) & RSYS_WAIT))
		return 0;
	d.ns = bpf_ktime_get_ns();
	d.nr = nr;
	bpf_map_update_elem(&sigdeliver, &tid, &d, BPF_ANY);
	return 0;
}

/* Does @t block @sig (1..64)? */
static __always_inline bool sig_blocked(struct task_struct *t, int sig)
{
	return t->blocked.sig[0] & (1ULL << ((sig - 1) & 63));
}

static __always_inline void sigwake_note(void *map, __u32 key, int sig)
{
	struct rsys_sigwake w = { .ns = bpf_ktime_get_ns(), .sig = sig };

	bpf_map_update_elem(map, &key, &w, BPF_ANY);
}

/*
 * A signal was generated for a trusted task: note the thread that now
 * surely has TIF_SIGPENDING (the flag that makes the kernel convert a
 * restart code on the way out), so that the monitor may end a call it
 * holds for it. After complete_signal(): a thread-directed signal the
 * thread does not block wakes it, or it was pending already. A
 * process-wide one goes to @task when @task wants it; when @task blocks it
 * or is exiting the kernel picked signal->curr_target, which then does
 * not block it and is woken or was already. When @task does not block it
 * it may still have been passed over (it had a signal pending and was not
 * running): then nothing is noted and the signal waits for another
 * thread. SIGKILL and fatal signals end the killable wait by themselves.
 */
SEC("tp_btf/signal_generate")
int BPF_PROG(rsys_signal_generate, int sig, struct kernel_siginfo *info, struct task_struct *task,
	     int group, int result)
{
	__u32 tgid = task->tgid;
	struct task_struct *t = task;

	if (result != TRACE_SIGNAL_DELIVERED || sig <= 0 || sig > 64 || sig == SIGKILL)
		return 0;
	if (!bpf_map_lookup_elem(&trusted, &tgid))
		return 0;
	if (sig == SIGSTOP || sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU)
		sigwake_note(&sigstop, tgid, sig);
	if (group && (sig_blocked(task, sig) || (task->flags & PF_EXITING)))
		t = task->signal->curr_target;
	if (t && !sig_blocked(t, sig) && !(t->flags & PF_EXITING))
		sigwake_note(&sigwake, t->pid, sig);
	bpf_ringbuf_output(&sigring, &tgid, sizeof(tgid), BPF_RB_FORCE_WAKEUP);
	return 0;
}
