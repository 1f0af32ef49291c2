// SPDX-License-Identifier: GPL-2.0
/* Exec guard of "rsys-load run": kill a supervised exec whose image or loader environment the passport did not approve. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "exec_guard.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL 9
#define I_CTIME_QUERIED (1U << 31)	/* multigrain flag kept in i_ctime_nsec */

extern int bpf_send_signal_task(struct task_struct *task, int sig, enum pid_type type,
				u64 value) __ksym;

/* Processes of one "rsys-load run" (tgid -> 1): the monitor adds its child, forks inherit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSYS_GUARD_MAX_TASKS);
	__type(key, __u32);
	__type(value, __u32);
} guarded SEC(".maps");

/* Written by the monitor just before it lets an execve through; used once. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, RSYS_GUARD_MAX_TASKS);
	__type(key, __u32);
	__type(value, struct rsys_exec_image);
} approved SEC(".maps");

/* Loader variables the policy allows ("trusted-env NAME"), NUL-padded names. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[RSYS_GUARD_ENV_NAME]);
	__type(value, __u8);
} env_allowed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024);
} events SEC(".maps");

struct env_ctx {
	__u64 envp;	/* user address of the new program's envp[] */
	__u32 bad;	/* enum rsys_guard_reason, 0 while all is well */
	char name[RSYS_GUARD_ENV_NAME];
};

SEC("tp_btf/sched_process_fork")
int BPF_PROG(guard_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid, ctgid = child->tgid, one = 1;

	if (ptgid == ctgid || !bpf_map_lookup_elem(&guarded, &ptgid))
		return 0;
	/* An unguarded child could exec anything: it must not run at all. */
	if (bpf_map_update_elem(&guarded, &ctgid, &one, BPF_ANY))
		bpf_send_signal_task(child, SIGKILL, PIDTYPE_TGID, 0);
	return 0;
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(guard_exit, struct task_struct *p, bool group_dead)
{
	__u32 tid = p->pid, tgid = p->tgid;

	/* Entries must not outlive their task: a reused pid would inherit them. */
	bpf_map_delete_elem(&approved, &tid);
	if (group_dead)
		bpf_map_delete_elem(&guarded, &tgid);
	return 0;
}

static bool is_loader_var(const char *s)
{
	static const char gconv[] = "GCONV_PATH";	/* glibc's iconv dlopens modules from it */
	int i;

	if (s[0] == 'L' && s[1] == 'D' && s[2] == '_')
		return true;
	for (i = 0; i < sizeof(gconv); i++)
		if (s[i] != gconv[i])
			return false;
	return true;
}

/* One envp[] entry: stop (1) at the end or at a loader variable the policy does not allow. */
static long env_one(__u64 i, struct env_ctx *x)
{
	char s[RSYS_GUARD_ENV_NAME] = {};
	bool end = false;
	__u64 str;
	int j;

	if (bpf_probe_read_user(&str, sizeof(str), (void *)(x->envp + i * 8))) {
		x->bad = RSYS_GUARD_ENV_UNCHECKED;
		return 1;
	}
	if (!str)
		return 1;
	if (bpf_probe_read_user_str(s, sizeof(s), (void *)str) < 0) {
		x->bad = RSYS_GUARD_ENV_UNCHECKED;
		return 1;
	}
	/* The name alone, NUL-padded: the key of env_allowed. */
	for (j = 0; j < RSYS_GUARD_ENV_NAME; j++) {
		if (s[j] == '=')
			end = true;
		if (end)
			s[j] = 0;
	}
	if (!is_loader_var(s) || bpf_map_lookup_elem(&env_allowed, s))
		return 0;
	__builtin_memcpy(x->name, s, sizeof(x->name));
	x->bad = RSYS_GUARD_LOADER_ENV;
	return 1;
}

static void report(__u32 tgid, __u32 tid, __u32 reason, const struct env_ctx *x)
{
	struct rsys_guard_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->tgid = tgid;
	e->tid = tid;
	e->reason = reason;
	e->pad = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	__builtin_memcpy(e->env, x->name, sizeof(e->env));
	bpf_ringbuf_submit(e, 0);
}

/*
 * The exec is past its point of no return and the new image has not run an
 * instruction yet: a SIGKILL now stops it before its first one.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(guard_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid, tid = old_pid, reason = 0;
	struct env_ctx x = {};
	struct rsys_exec_image *a;
	struct pt_regs *regs;
	struct inode *ino;
	struct mount *mnt;
	__u64 argc = 0;
	__u32 mnt_id;

	if (!bpf_map_lookup_elem(&guarded, &tgid))
		return 0;
	ino = bprm->file->f_inode;
	mnt = container_of(bprm->file->f_path.mnt, struct mount, mnt);
	mnt_id = BPF_CORE_READ(mnt, mnt_id);
	a = bpf_map_lookup_elem(&approved, &tid);
	if (!a)
		reason = RSYS_GUARD_UNAPPROVED;
	else if (a->ino != ino->i_ino || a->mnt_id != mnt_id)
		reason = RSYS_GUARD_OTHER_IMAGE;
	else if (a->ctime_sec != ino->i_ctime_sec ||
		 a->ctime_nsec != (ino->i_ctime_nsec & ~I_CTIME_QUERIED))
		reason = RSYS_GUARD_CHANGED;
	else if (ino->i_writecount.counter > 0)
		reason = RSYS_GUARD_WRITABLE;
	if (a)
		bpf_map_delete_elem(&approved, &tid);

	/* What ld.so reads: the new stack is argc, argv[argc], NULL, envp[], NULL. */
	if (!reason) {
		regs = (struct pt_regs *)bpf_task_pt_regs(p);
		if (bprm->envc > RSYS_GUARD_MAX_ENV ||
		    bpf_probe_read_user(&argc, sizeof(argc), (void *)regs->sp)) {
			reason = RSYS_GUARD_ENV_UNCHECKED;
		} else {
			x.envp = regs->sp + 8 * (argc + 2);
			bpf_loop(RSYS_GUARD_MAX_ENV + 1, env_one, &x, 0);
			reason = x.bad;
		}
	}
	if (reason) {
		bpf_send_signal(SIGKILL);
		report(tgid, tid, reason, &x);
	}
	return 0;
}
