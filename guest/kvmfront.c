// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM tier's front end of the core: a trusted guest process's call,
 * trapped by kvm-patch's syscall hook, goes to the same handlers as the
 * host tier's seccomp notifications (sockcalls.c, wait.c, fdcache.c).
 *
 * A vCPU's thread hands the call to the supervisor thread (kf_call: a
 * queue that next() takes from) and waits for its answer: completed with
 * a value (a remote call), or run by the guest kernel (a local one).
 * Guest memory is read and written through the process's page tables
 * (gmem); a buffer the core will write that is not yet mapped writable
 * (never touched, or copy-on-write after fork) is first faulted in by the
 * guest kernel itself: the call is replaced by madvise(MADV_POPULATE_WRITE)
 * and, at its return, the registers are set so that the process makes its
 * call again (kf_return).
 *
 * Remote fds: the guest kernel numbers them. Where the host tier installs
 * the placeholder with ADDFD, the guest runs the call (dup, dup2, ...) or,
 * for a new socket, an eventfd2 in its place, and the return hook learns
 * the number; the front end keeps, per guest process and vfd, the
 * monitor's end of the placeholder (its "shadow" table: what /proc/PID/fd
 * is to the host tier, struct fdc_source). Closing the last one hangs up
 * the anchor and the core closes the socket at the delegate, as for the
 * host tier.
 *
 * Split waits: a poll/ppoll/select/pselect6 over guest files and remote
 * sockets asks the core for the remote half without waiting, then lets
 * the guest kernel wait for the local half in slices (remote entries
 * hidden) and has the call made again, until one side is ready or its
 * time is up (split_poll, split_select). An epoll instance's remote
 * interest is the front end's (the epoll_ctl calls on remote vfds that
 * worked), its waits split the same way (split_epoll).
 *
 * Calls that wait for their SYSRET (struct kf_pend: a placeholder's
 * number, a fault-in's call made again, a slice's end) are kept per VM
 * and found by RIP, RSP and CR3, as KVM keeps them (kvm-patch 14), so a
 * task preempted before its return, or resumed on another vCPU, keeps its.
 *
 * Blocking (park): the vCPU waits KF_HOLD_NS for the core's answer; a call
 * still unanswered then (a recv, accept, connect or wait that blocks at the
 * delegate) is parked: the core keeps it, and its thread waits in the
 * guest kernel, in slices (a poll of no fds for 1, 2, 4, 8 ms), while the
 * vCPU runs the rest of the guest. At each slice's end the thread makes
 * its call again and takes the answer if it came. A signal interrupts the
 * slice as it would the call: without a handler (a stop) the guest kernel
 * restarts it (restart_syscall, mapped back to the call); with one, the
 * handler runs and its rt_sigreturn resolves the call in the signal frame:
 * made again (SA_RESTART, which the front end notes from rt_sigaction, or
 * the answer came meanwhile) or ended with EINTR. A call ended so, or
 * whose thread did not come back, is refused to the core, which cancels
 * it at the delegate and keeps what it still brings for the socket's next
 * call (sockcalls.c's stash), as for a host-tier call a signal ended.
 *
 * A guest process is its address space (page-table root): its threads
 * share one table. A fork's child takes a copy of its parent's table as it
 * was at the fork (fork_note, fork_adopt: the monitor's placeholder ends
 * dup'ed, so a socket closes at the delegate when the last process holding
 * it lets it go). An execve's new image takes the table, less its
 * close-on-exec vfds (kept per vfd: the flags a placeholder was made with,
 * then F_SETFD, FIOCLEX, close_range as the core sees them), found by a
 * lineage written next to the token (exec_start, exec_adopt). A vfork
 * child runs in its parent's address space, told apart by its stack
 * pointer: its fd-table calls act on its own copy, which its exec hands on,
 * and its exit leaves the parent's table (vfork_start, vfork_child).
 *
 * A signal the core raises with an answer (SIGPIPE with EPIPE) is sent by
 * the guest kernel: the call becomes gettid, is made again as tkill(tid,
 * sig), and at that one's return (or its handler's rt_sigreturn) gets the
 * call's result.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <rsys/limits.h>
#include <rsys/policy.h>
#include <rsys/proto.h>
#include <rsys/syscalls.h>
#include <rsys/vm.h>

#include "bpfmaps.h"
#include "fdcache.h"
#include "kvmbpf.h"
#include "kvmfront.h"
#include "log.h"
#include "supervisor.h"

#define KF_PROCS	256		/* guest processes with a table at once */
#define KF_VFD_MAX	65536		/* larger guest vfds are never remote */
#define KF_PAGE		4096ULL
#define KF_RANGES	8
#define KF_POLL_MAX	1024		/* a split poll of more entries is the core's alone */
#define KF_SELECT_MAX	1024		/* ... a split select of more fds */
/* The arguments of a call the front end makes up for the core: no user address is up there. */
#define KF_SCRATCH_VA	0xffffff8000000000ULL
#define KF_SLICE_MAX_MS	16		/* the longest slice of a split poll's local half */
#define KF_HOLD_NS	2000000LL	/* the vCPU waits this long for an answer, then parks the call */
#define KF_PARK_SLICE_MAX_MS	8	/* the longest slice of a parked call's wait */
#define KF_PARK_LOST_NS	1000000000LL	/* a parked call's thread this late after its slice: gone */
#define KF_SA_RESTART	0x10000000	/* SA_RESTART, in struct kernel_sigaction's flags */
#define KF_SA_SIGINFO	0x00000004
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif

/* A remote vfd of a guest process: the monitor's placeholder end, and whether the guest's is close-on-exec. */
struct kf_shadow {
	int fd;				/* -1: not remote */
	bool cloexec;
};

/* A shadow table: per vfd below @n. */
struct kf_table {
	unsigned int n;
	struct kf_shadow *v;
};

/*
 * A remote vfd in the interest list of one of the process's epoll
 * instances (epoll_ctl): the remote half of that instance's epoll_waits.
 */
struct kf_epreg {
	int epfd, vfd;
	uint32_t events;		/* 0: an EPOLLONESHOT one that fired */
	uint64_t data;
};

/* One guest process the core knows: its id there and its shadow table. */
struct kf_proc {
	uint64_t root;			/* gmem_root of its address space; 0: free */
	pid_t id;			/* tid and tgid in the core */
	int exit_fd;			/* eventfd written when it ends */
	struct kf_table t;
	/* bit sig - 1, as rt_sigaction set them: a handler; with SA_RESTART; with SA_SIGINFO */
	uint64_t handled, restart, siginfo;
	/* an execve in flight since @exec_when (0: none): the new image takes the table by @lineage */
	int64_t exec_when;
	uint64_t lineage;		/* 0: the new image cannot take it (no token digits to write) */
	unsigned int vforks;		/* vfork children sharing the address space until they exec or exit */
	/* the first of them: its own copy of the table, and its calls' stack pointers */
	struct kf_table vft;
	uint64_t vf_lo, vf_hi;
	uint64_t token_va;		/* where it holds the VM's token (0: not known yet) */
	struct kf_epreg *ep;		/* remote interest of its epoll instances */
	unsigned int nep;
	uint64_t kb_root;		/* the fast path decides its calls there (0: it does not) */
	bool kb_copied;			/* ... its table and entries are there */
	bool kb_off;			/* ... never again: its table could not be mirrored */
};

/*
 * A call on its way through the core: a vCPU's (struct kf_vcpu) while it
 * waits for the answer, then, if parked, on kf.parked until its thread
 * takes the answer or is gone. The core may still look at one (sv_call.id)
 * a moment after it is answered: they are reused (kf.spare), not freed,
 * while the VM runs.
 */
struct kf_call {
	struct kf_call *next;		/* in the queue for next(), or kf.spare */
	struct kvm_x86_syscall sc;
	pid_t id;
	uint64_t root;
	pthread_cond_t cond;
	bool done;			/* answered (or installing): the vCPU goes on */
	bool cont;
	int64_t ret;
	bool install;			/* the guest runs it (or a placeholder) for the vfd */
	int inst_fd;
	unsigned int inst_flags;	/* ... with these fd flags (O_CLOEXEC) */
	void *scratch;			/* a made-up call's memory, at KF_SCRATCH_VA */
	size_t scratch_len;
	/* parked (under kf.lock) */
	int sig;			/* a signal the core raises with the answer (SIGPIPE) */
	bool parked;			/* on kf.parked: its thread waits in the guest */
	bool gone;			/* ... and will not take the answer: the core's is refused */
	uint64_t rsp;			/* its thread's stack pointer (with root: the thread) */
	int64_t slice_end;		/* when the thread's current slice ends (CLOCK_MONOTONIC ns) */
	unsigned int slice_ms;
	struct kf_call *pnext;		/* in kf.parked */
};

static struct {
	pthread_mutex_t lock;		/* procs, their tables, calls' answers */
	const struct gmem *gm;
	const struct sv *sv;
	struct kf_proc procs[KF_PROCS];
	pid_t next_id;
	struct kf_call *head, **tail;	/* calls for next() */
	int qfd;			/* eventfd: the queue has calls */
	struct kf_call *parked;		/* calls whose threads wait in the guest */
	struct kf_call *spare;		/* answered calls, for reuse */
} kf = { .lock = PTHREAD_MUTEX_INITIALIZER, .qfd = -1 };

/*
 * The calls waiting for their SYSRET (struct kf_pend), as KVM keeps them
 * (more slots than KVM's 64: KVM forgets one first). Under kf.lock.
 */
#define KF_PENDS	128
static struct kf_pend pends[KF_PENDS];
static unsigned int pends_next;

/*
 * Split waits between slices, by thread (page-table root and stack
 * pointer): the call made again after a slice goes on with the same
 * deadline, whichever vCPU it comes back on. Under kf.lock.
 */
static struct kf_wait {
	uint64_t root, rsp;		/* root 0: free */
	struct kvm_x86_syscall call;
	int64_t deadline;
	unsigned int slice_ms;
} waits[KF_PENDS];
static unsigned int waits_next;

/*
 * Signals the core raised with an answer (SIGPIPE with EPIPE), by thread:
 * the call became gettid, and is made again as tkill(tid, sig); at that
 * one's return the call's result is put in its place. Under kf.lock.
 */
#define KF_RAISES	16
static struct kf_raise {
	uint64_t root, rsp;		/* root 0: free */
	struct kvm_x86_syscall orig;	/* the call, as trapped */
	pid_t id;
	int64_t tid;
	int sig;
	int64_t result;
} raises[KF_RAISES];
static unsigned int raises_next;

/*
 * Forks of processes the core knows, until the child's first call: the
 * parent's table as it was then (it may close its copies at once, as a
 * forking server does) and its handlers' flags, found by the physical page
 * of the VM's token, which the child shares with its parent until one of
 * them writes it (an environment string: seldom). A vfork child's execve
 * leaves one too, for its new image, found by the lineage written next to
 * the token (exec_start). Under kf.lock.
 */
#define KF_FORKS	32
#define KF_FORK_TTL_NS	10000000000LL	/* a child (an exec) that made no call by then: its copies go */
#define KF_CLONE_VM	0x100
#define KF_CLONE_VFORK	0x4000
#define KF_NO_PROC	(-1)		/* the parent of a fork: a process without a table */
#define KF_VFORK_STACK	(1ULL << 20)	/* a vfork child on its parent's stack stays this close to it */
static struct kf_fork {
	pid_t parent;			/* 0: free */
	uint64_t gpa;			/* the token's page (a fork) */
	uint64_t lineage;		/* ... or the lineage (a vfork child's exec) */
	int64_t when;
	struct kf_table t;
	uint64_t handled, restart, siginfo;
} forks[KF_FORKS];
static unsigned int kf_execs;		/* processes with exec_when set; under kf.lock */
static uint64_t kf_lineage_key;		/* lineages are drawn from it (kf_start) */

/* Which calls name fds how (include/rsys/syscalls.h). */
static const unsigned char kf_fdargs[] = {
#define KF_FDARGS(name, nr, flags)	[nr] = (flags),
	RSYS_SYSCALLS(KF_FDARGS)
#undef KF_FDARGS
};

static unsigned int fdargs(uint64_t nr)
{
	return nr < sizeof(kf_fdargs) ? kf_fdargs[nr] : 0;
}

/* under kf.lock */
static struct kf_proc *proc_by_root(uint64_t root)
{
	unsigned int i;

	for (i = 0; i < KF_PROCS; i++)
		if (kf.procs[i].root == root)
			return &kf.procs[i];
	return NULL;
}

static struct kf_proc *proc_by_id(pid_t id)
{
	unsigned int i;

	for (i = 0; i < KF_PROCS; i++)
		if (kf.procs[i].root && kf.procs[i].id == id)
			return &kf.procs[i];
	return NULL;
}

/* The process of address space @root, new if need be; NULL when the table is full. Under kf.lock. */
static struct kf_proc *proc_get(uint64_t root)
{
	struct kf_proc *p = proc_by_root(root);
	unsigned int i;

	if (p)
		return p;
	for (i = 0; i < KF_PROCS && kf.procs[i].root; i++)
		;
	if (i == KF_PROCS)
		return NULL;
	p = &kf.procs[i];
	p->exit_fd = eventfd(0, EFD_CLOEXEC);
	if (p->exit_fd < 0)
		return NULL;
	p->root = root;
	p->id = ++kf.next_id;
	p->t = (struct kf_table){ 0 };
	p->handled = p->restart = p->siginfo = 0;
	p->exec_when = 0;
	p->lineage = 0;
	p->vforks = 0;
	p->vft = (struct kf_table){ 0 };
	p->token_va = 0;
	p->ep = NULL;
	p->nep = 0;
	p->kb_root = 0;
	p->kb_copied = false;
	p->kb_off = false;
	return p;
}

/*
 * --- the fast path's copy of the tables (guest/kvmbpf.c) ---
 *
 * A trusted process's calls are decided in KVM while it is registered
 * there: with its table (a process), or with table 0, empty (a trusted
 * process the front end has no table for). Its remote vfds and the epoll
 * instances watching them are entries there (kb_copied), put before it is
 * first registered and kept as they change. While the front end keeps
 * something of its for a thread's next call or return (a SYSRET awaited, a
 * split wait, a parked call) or is about to hand its table on or share it
 * (an execve, a vfork), it is not registered: all its calls exit, as
 * without the fast path, until one finds it idle again. Should an entry
 * fail, the process is let go for good. Under kf.lock.
 */
static int mirror_entry(const struct kf_proc *p, int vfd)
{
	struct rsys_fd_val v = { .domain = RSYS_DOM_REMOTE };
	unsigned int i;

	if (vfd >= 0 && (unsigned int)vfd < p->t.n && p->t.v[vfd].fd >= 0) {
		v.flags = p->t.v[vfd].cloexec ? RSYS_FD_CLOEXEC : 0;
		return maps_fd_set(kb_maps(), (uint32_t)p->id, (uint32_t)vfd, &v);
	}
	for (i = 0; i < p->nep; i++) {
		if (p->ep[i].epfd == vfd) {
			/* a local entry's handle is the guest fd it stands for: itself */
			v = (struct rsys_fd_val){ .domain = RSYS_DOM_LOCAL, .flags = RSYS_FD_SPLIT,
						  .handle = (uint64_t)vfd };
			return maps_fd_set(kb_maps(), (uint32_t)p->id, (uint32_t)vfd, &v);
		}
	}
	return maps_fd_del(kb_maps(), (uint32_t)p->id, (uint32_t)vfd);
}

/* Its calls exit from now on. */
static void mirror_hold(struct kf_proc *p)
{
	if (p->kb_root && kb_proc_del(p->kb_root))
		pr_warn_few("vm: the fast path keeps guest process %d: its calls on local fds run in the guest kernel\n",
			    (int)p->id);
	p->kb_root = 0;
}

/* ... and its entries go (it ended, or cannot be mirrored). */
static void mirror_end(struct kf_proc *p)
{
	unsigned int i;

	mirror_hold(p);
	if (!p->kb_copied)
		return;
	p->kb_copied = false;
	kb_table((uint32_t)p->id, false);
	for (i = 0; i < p->t.n; i++)
		if (p->t.v[i].fd >= 0)
			maps_fd_del(kb_maps(), (uint32_t)p->id, i);
	for (i = 0; i < p->nep; i++)
		maps_fd_del(kb_maps(), (uint32_t)p->id, (uint32_t)p->ep[i].epfd);
}

static void mirror_fail(struct kf_proc *p, int err)
{
	pr_warn_few("vm: the fast path cannot hold guest process %d's table (%s): all its calls exit to the VMM\n",
		    (int)p->id, err_str(err));
	p->kb_copied = true;	/* what was put goes */
	mirror_end(p);
	p->kb_off = true;
}

/* @vfd of @p changed. */
static void mirror_fd(struct kf_proc *p, int vfd)
{
	int err;

	if (p->kb_copied && (err = mirror_entry(p, vfd)))
		mirror_fail(p, err);
}

/* Does the front end keep a call of @root's for a thread's next call or return? */
static bool root_busy(uint64_t root)
{
	struct kf_call *k;
	unsigned int i;

	for (i = 0; i < KF_PENDS; i++)
		if ((pends[i].armed && gmem_root(pends[i].orig.cr3) == root) || waits[i].root == root)
			return true;
	for (k = kf.parked; k; k = k->pnext)
		if (k->root == root)
			return true;
	return false;
}

/* Register @p (its entries first), or hold it. */
static void mirror_start(struct kf_proc *p)
{
	unsigned int i;
	int err = 0;

	if (p->vforks || p->exec_when || p->kb_off || root_busy(p->root)) {
		mirror_hold(p);
		return;
	}
	if (p->kb_root == p->root)
		return;
	mirror_hold(p);
	for (i = 0; i < p->t.n && !err && !p->kb_copied; i++)
		if (p->t.v[i].fd >= 0)
			err = mirror_entry(p, (int)i);
	for (i = 0; i < p->nep && !err && !p->kb_copied; i++)
		err = mirror_entry(p, p->ep[i].epfd);
	if (!err && !p->kb_copied) {
		p->kb_copied = true;
		err = kb_table((uint32_t)p->id, true);
	}
	if (!err)
		err = kb_proc_add(p->root, (uint32_t)p->id);
	if (err) {
		mirror_fail(p, err);
		return;
	}
	p->kb_root = p->root;
}

/*
 * A trusted process of @root made a call that exited (holding the token at
 * @token_va if not 0), or a call of its returned: if @mirror, let its next
 * ones be decided in KVM when the front end keeps nothing of its.
 */
static void proc_seen(uint64_t root, uint64_t token_va, bool mirror)
{
	struct kf_proc *p;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	if (p && token_va)
		p->token_va = token_va;
	if (mirror && kb_on()) {
		if (p)
			mirror_start(p);
		else if (root_busy(root) || kb_proc_add(root, 0))
			kb_proc_del(root);
	}
	pthread_mutex_unlock(&kf.lock);
}

/* @vfd of @p is closed or replaced: epoll interest in its socket goes (as Linux does once its last fd is closed). */
static void ep_drop_vfd(struct kf_proc *p, int vfd)
{
	unsigned int i, n = 0;

	for (i = 0; i < p->nep; i++)
		if (p->ep[i].vfd != vfd)
			p->ep[n++] = p->ep[i];
	p->nep = n;
}

static int shadow_get(const struct kf_proc *p, int vfd)
{
	return vfd >= 0 && (unsigned int)vfd < p->t.n ? p->t.v[vfd].fd : -1;
}

/*
 * Put @fd at @vfd (closing what was there), close-on-exec if @cloexec;
 * -ENOMEM or -EMFILE (beyond KF_VFD_MAX). Under kf.lock.
 */
static int shadow_set(struct kf_proc *p, int vfd, int fd, bool cloexec)
{
	struct kf_shadow *v;
	unsigned int n, i;

	if (vfd < 0 || vfd >= KF_VFD_MAX)
		return -EMFILE;
	if ((unsigned int)vfd >= p->t.n) {
		n = p->t.n ? p->t.n : 64;
		while (n <= (unsigned int)vfd)
			n *= 2;
		v = realloc(p->t.v, n * sizeof(*v));
		if (!v)
			return -ENOMEM;
		for (i = p->t.n; i < n; i++)
			v[i] = (struct kf_shadow){ .fd = -1 };
		p->t.v = v;
		p->t.n = n;
	}
	if (p->t.v[vfd].fd >= 0) {
		close(p->t.v[vfd].fd);
		ep_drop_vfd(p, vfd);
	}
	p->t.v[vfd] = (struct kf_shadow){ .fd = fd, .cloexec = cloexec };
	mirror_fd(p, vfd);
	return 0;
}

static void shadow_drop(struct kf_proc *p, int vfd)
{
	if (vfd >= 0 && (unsigned int)vfd < p->t.n && p->t.v[vfd].fd >= 0) {
		close(p->t.v[vfd].fd);
		p->t.v[vfd] = (struct kf_shadow){ .fd = -1 };
		ep_drop_vfd(p, vfd);
		mirror_fd(p, vfd);
	}
}

static void table_free(struct kf_table *t)
{
	unsigned int i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].fd >= 0)
			close(t->v[i].fd);
	free(t->v);
	*t = (struct kf_table){ 0 };
}

/* Does @t hold a remote vfd? */
static bool table_used(const struct kf_table *t)
{
	unsigned int i;

	for (i = 0; i < t->n; i++)
		if (t->v[i].fd >= 0)
			return true;
	return false;
}

/*
 * A copy of @from (the monitor's ends dup'ed) into *@to, without its
 * close-on-exec vfds if @exec: 0, or -ENOMEM (nothing copied).
 */
static int table_copy(struct kf_table *to, const struct kf_table *from, bool exec)
{
	unsigned int i;

	*to = (struct kf_table){ 0 };
	if (!from->n)
		return 0;
	to->v = malloc(from->n * sizeof(*to->v));
	if (!to->v)
		return -ENOMEM;
	to->n = from->n;
	for (i = 0; i < to->n; i++) {
		to->v[i] = (struct kf_shadow){ .fd = -1 };
		if (from->v[i].fd >= 0 && !(exec && from->v[i].cloexec))
			to->v[i] = (struct kf_shadow){
				.fd = fcntl(from->v[i].fd, F_DUPFD_CLOEXEC, 0),
				.cloexec = from->v[i].cloexec,
			};
	}
	return 0;
}

static void fork_free(struct kf_fork *f)
{
	table_free(&f->t);
	*f = (struct kf_fork){ .parent = 0 };
}

/* A free slot for a fork (expired ones let go, else the oldest). Under kf.lock. */
static struct kf_fork *fork_slot(int64_t now)
{
	struct kf_fork *old = &forks[0];
	unsigned int i;

	for (i = 0; i < KF_FORKS; i++) {
		if (forks[i].parent && now - forks[i].when > KF_FORK_TTL_NS)
			fork_free(&forks[i]);
		if (forks[i].when < old->when)
			old = &forks[i];
	}
	for (i = 0; i < KF_FORKS; i++)
		if (!forks[i].parent)
			return &forks[i];
	fork_free(old);
	return old;
}

/* --- struct fdc_source: the shadow tables --- */

static pid_t kt_tgid(pid_t tid)
{
	pid_t ret;

	pthread_mutex_lock(&kf.lock);
	ret = proc_by_id(tid) ? tid : -ESRCH;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

static int kt_exit_fd(pid_t tgid)
{
	struct kf_proc *p;
	int fd = -ESRCH;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(tgid);
	if (p) {
		fd = fcntl(p->exit_fd, F_DUPFD_CLOEXEC, 0);
		if (fd < 0)
			fd = -errno;
	}
	pthread_mutex_unlock(&kf.lock);
	return fd;
}

/* Only remote vfds are known: any other is "not open" here, so the cache never keeps it local. */
static int kt_fd_ino(pid_t tid, int vfd, ino_t *ino)
{
	struct kf_proc *p;
	struct stat sb;
	int fd, ret = -EBADF;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(tid);
	fd = p ? shadow_get(p, vfd) : -1;
	if (fd >= 0 && !fstat(fd, &sb)) {
		*ino = sb.st_ino;
		ret = 1;
	}
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

static int kt_fd_flags(pid_t tid, int vfd)
{
	struct kf_proc *p;
	int fd, fl = 0;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(tid);
	fd = p ? shadow_get(p, vfd) : -1;
	if (fd >= 0) {
		fl = fcntl(fd, F_GETFL);
		if (fl >= 0 && p->t.v[vfd].cloexec)
			fl |= O_CLOEXEC;
	}
	pthread_mutex_unlock(&kf.lock);
	return fl < 0 ? 0 : fl;
}

/* The core changed fd flags (F_SETFD, FIOCLEX, close_range): close-on-exec is the table's to keep. */
static void kt_set_flags(pid_t tgid, unsigned int lo, unsigned int hi, int set, int clear)
{
	struct kf_proc *p;
	unsigned int vfd;

	if (!((set | clear) & O_CLOEXEC))
		return;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(tgid);
	for (vfd = lo; p && vfd < p->t.n && vfd <= hi; vfd++)
		if (p->t.v[vfd].fd >= 0) {
			p->t.v[vfd].cloexec = set & O_CLOEXEC;
			mirror_fd(p, (int)vfd);
		}
	pthread_mutex_unlock(&kf.lock);
}

/* A remote vfd's placeholder end; a local guest file has no copy in the monitor. */
static int kt_fd_copy(pid_t tgid, int exit_fd, int vfd)
{
	struct kf_proc *p;
	int fd, ret = -EOPNOTSUPP;

	(void)exit_fd;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(tgid);
	fd = p ? shadow_get(p, vfd) : -1;
	if (fd >= 0) {
		ret = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (ret < 0)
			ret = -errno;
	}
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

static int kt_fd_each(pid_t tid, void (*fn)(int vfd, void *arg), void *arg)
{
	struct kf_proc *p;
	unsigned int i, n = 0;
	int *vfds = NULL;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(tid);
	if (p && p->t.n)
		vfds = malloc(p->t.n * sizeof(*vfds));
	for (i = 0; vfds && i < p->t.n; i++)
		if (p->t.v[i].fd >= 0)
			vfds[n++] = i;
	pthread_mutex_unlock(&kf.lock);
	if (p && p->t.n && !vfds)
		return -ENOMEM;
	/* fn() looks the vfds up again (fdc_lookup): not under kf.lock */
	for (i = 0; i < n; i++)
		fn(vfds[i], arg);
	free(vfds);
	return 0;
}

static bool kt_files_shared(pid_t a, pid_t b)
{
	(void)a;
	(void)b;
	return false;	/* one table per address space */
}

static const struct fdc_source kf_tables = {
	.tgid = kt_tgid,
	.exit_fd = kt_exit_fd,
	.fd_ino = kt_fd_ino,
	.fd_flags = kt_fd_flags,
	.fd_copy = kt_fd_copy,
	.fd_each = kt_fd_each,
	.files_shared = kt_files_shared,
	.set_flags = kt_set_flags,
};

/* --- struct sv_front: calls from the vCPUs --- */

static int kv_next(struct sv *sv, struct sv_call *c)
{
	struct kf_call *k;
	uint64_t n;
	int i;

	(void)sv;
	for (;;) {
		pthread_mutex_lock(&kf.lock);
		k = kf.head;
		if (k) {
			kf.head = k->next;
			if (!kf.head)
				kf.tail = &kf.head;
		}
		pthread_mutex_unlock(&kf.lock);
		if (k)
			break;
		if (read(kf.qfd, &n, sizeof(n)) < 0)
			return errno == EINTR || errno == EAGAIN ? -EINTR : -errno;
	}
	c->id = (uintptr_t)k;
	c->tid = k->id;
	c->sys.nr = (int)k->sc.nr;
	c->sys.arch = AUDIT_ARCH_X86_64;
	c->sys.ip = k->sc.rip;
	for (i = 0; i < 6; i++)
		c->sys.args[i] = k->sc.args[i];
	return 0;
}

static struct kf_call *kcall(const struct sv_call *c)
{
	return (struct kf_call *)(uintptr_t)c->id;
}

/* @k is no one's any more: to kf.spare. Under kf.lock. */
static void recycle(struct kf_call *k)
{
	if (k->inst_fd >= 0)
		close(k->inst_fd);
	k->inst_fd = -1;
	k->parked = k->gone = false;
	k->next = kf.spare;
	kf.spare = k;
}

/* Take parked @k off kf.parked. Under kf.lock. */
static void unpark(struct kf_call *k)
{
	struct kf_call **pp;

	for (pp = &kf.parked; *pp; pp = &(*pp)->pnext) {
		if (*pp == k) {
			*pp = k->pnext;
			break;
		}
	}
	k->parked = false;
}

/* A call whose thread is gone is refused: the core keeps what it brought (sockcalls.c's stash). */
static bool kv_answer(struct sv_call *c, int64_t ret, bool cont)
{
	struct kf_call *k = kcall(c);
	bool taken;

	pthread_mutex_lock(&kf.lock);
	taken = !k->gone;
	k->ret = ret;
	k->cont = cont;
	k->done = true;
	if (k->gone && !k->parked)
		recycle(k);
	else
		pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&kf.lock);
	return taken;
}

/* Its thread waits for the answer (on its vCPU, or parked) until it comes or the thread is gone. */
static bool kv_valid(const struct sv_call *c)
{
	bool valid;

	pthread_mutex_lock(&kf.lock);
	valid = !kcall(c)->done && !kcall(c)->gone;
	pthread_mutex_unlock(&kf.lock);
	return valid;
}

static ssize_t kv_mem(struct sv_call *c, const struct iovec *local, const struct iovec *remote,
		      int n, bool write)
{
	uint64_t root = kcall(c)->root;
	ssize_t done = 0;
	int i, err;

	for (i = 0; i < n; i++) {
		uint64_t va = (uintptr_t)remote[i].iov_base;
		struct kf_call *k = kcall(c);

		if (local[i].iov_len != remote[i].iov_len)
			return -1;
		/* Only a call the front end made up has scratch memory; anyone else's is no address. */
		if (k->scratch && va >= KF_SCRATCH_VA && local[i].iov_len <= k->scratch_len &&
		    va - KF_SCRATCH_VA <= k->scratch_len - local[i].iov_len) {
			uint8_t *at = (uint8_t *)k->scratch + (va - KF_SCRATCH_VA);

			if (write)
				memcpy(at, local[i].iov_base, local[i].iov_len);
			else
				memcpy(local[i].iov_base, at, local[i].iov_len);
			done += local[i].iov_len;
			continue;
		}
		err = write ? gmem_write(kf.gm, root, (uintptr_t)remote[i].iov_base,
					 local[i].iov_base, local[i].iov_len) :
			      gmem_read(kf.gm, root, (uintptr_t)remote[i].iov_base,
					local[i].iov_base, local[i].iov_len);
		if (err)
			break;
		done += local[i].iov_len;
	}
	return i == 0 && n ? -1 : done;
}

static int kv_threads(struct sv_call *c)
{
	(void)c;
	return 0;	/* not known: exit of one thread closes nothing */
}

/*
 * The guest kernel gives the number: with @answer (a new remote socket, a
 * dup of a remote vfd) the vCPU runs the call, or an eventfd2 in place of
 * a socket or accept, and keeps @fd's copy at the vfd it returns. Without
 * (close or dup2 onto remote @vfd) the shadow lets @vfd go now, so the
 * socket closes before the call returns, and the guest's own call
 * replaces it.
 */
static int kv_addfd(struct sv_call *c, int fd, int vfd, unsigned int newfd_flags, bool answer)
{
	struct kf_call *k = kcall(c);
	struct kf_proc *p;
	struct stat sb;
	int copy = -1;

	if (!fstat(fd, &sb) && S_ISSOCK(sb.st_mode)) {
		copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		if (copy < 0)
			return -errno;
	}
	if (!answer && vfd < 0) {
		if (copy >= 0)
			close(copy);
		return -EINVAL;
	}
	pthread_mutex_lock(&kf.lock);
	if (answer && k->gone) {
		/* its thread will not run the call: as for a notification gone (the core answers still) */
		pthread_mutex_unlock(&kf.lock);
		if (copy >= 0)
			close(copy);
		return -ENOENT;
	}
	p = proc_by_id(k->id);
	if (p && vfd >= 0)
		shadow_drop(p, vfd);
	if (k->inst_fd >= 0)
		close(k->inst_fd);
	k->inst_fd = copy;
	k->inst_flags = newfd_flags;
	k->install = true;
	if (answer) {
		k->done = true;
		pthread_cond_signal(&k->cond);
	}
	pthread_mutex_unlock(&kf.lock);
	return answer ? SV_ADDFD_LATER : vfd;
}

/* Raised when the answer is given (deliver: the guest kernel sends it to the thread, tkill). */
static void kv_signal(struct sv_call *c, int sig)
{
	pthread_mutex_lock(&kf.lock);
	kcall(c)->sig = sig;
	pthread_mutex_unlock(&kf.lock);
}

const struct sv_front sv_kvm = {
	.name = "KVM syscall exits",
	.next = kv_next,
	.answer = kv_answer,
	.valid = kv_valid,
	.mem = kv_mem,
	.threads = kv_threads,
	.addfd = kv_addfd,
	.signal = kv_signal,
	.table = &kf_tables,
	.exec_by_token = true,
};

/* --- the vCPU side --- */

int kf_start(struct sv *sv, const struct gmem *m)
{
	int ret;

	kf.gm = m;
	kf.sv = sv;
	kf.tail = &kf.head;
	if (getrandom(&kf_lineage_key, sizeof(kf_lineage_key), 0) != sizeof(kf_lineage_key))
		return -EIO;
	kf.qfd = eventfd(0, EFD_CLOEXEC);
	if (kf.qfd < 0)
		return -errno;
	sv->front = &sv_kvm;
	ret = sv_start(sv);
	if (ret) {
		close(kf.qfd);
		kf.qfd = -1;
	}
	return ret;
}

void kf_stop(struct sv *sv)
{
	struct kf_call *k;
	unsigned int i;

	sv_stop(sv);
	for (i = 0; i < KF_PROCS; i++) {
		if (!kf.procs[i].root)
			continue;
		table_free(&kf.procs[i].t);
		table_free(&kf.procs[i].vft);
		free(kf.procs[i].ep);
		close(kf.procs[i].exit_fd);
		kf.procs[i].root = 0;
	}
	if (kf.qfd >= 0)
		close(kf.qfd);
	kf.qfd = -1;
	/* the core is stopped: no one looks at its calls any more */
	while (kf.parked) {
		k = kf.parked;
		kf.parked = k->pnext;
		recycle(k);
	}
	while ((k = kf.spare)) {
		kf.spare = k->next;
		pthread_cond_destroy(&k->cond);
		free(k);
	}
	for (i = 0; i < KF_FORKS; i++)
		fork_free(&forks[i]);
}

/*
 * Address space @root is gone or another image's: forget its calls that
 * wait for a SYSRET (nothing of them is written back into it), its split
 * waits and its parked calls. Under kf.lock.
 */
static void root_clear(uint64_t root)
{
	struct kf_call *k, *next;
	unsigned int v;

	/* its calls waiting for a SYSRET: nothing of them is written back into the address space */
	for (v = 0; v < KF_PENDS; v++) {
		if (pends[v].armed && gmem_root(pends[v].orig.cr3) == root) {
			if (pends[v].inst_fd >= 0)
				close(pends[v].inst_fd);
			free(pends[v].hidden);
			pends[v] = (struct kf_pend){ .inst_fd = -1 };
		}
		if (waits[v].root == root)
			waits[v].root = waits[v].rsp = 0;
	}
	/* its parked calls: refused to the core when it answers them */
	for (k = kf.parked; k; k = next) {
		next = k->pnext;
		if (k->root != root)
			continue;
		k->gone = true;
		unpark(k);
		if (k->done)
			recycle(k);
	}
}

/* Process @p ended: its shadows let go (the core closes what it held last), the core told. Under kf.lock. */
static void proc_end(struct kf_proc *p)
{
	uint64_t one = 1;

	mirror_end(p);
	root_clear(p->root);
	table_free(&p->t);
	table_free(&p->vft);
	free(p->ep);
	p->ep = NULL;
	p->nep = 0;
	if (p->exec_when)
		kf_execs--;
	p->exec_when = 0;
	/* the core forgets it (EV_PROC) once it reads this */
	if (write(p->exit_fd, &one, sizeof(one)) != sizeof(one))
		pr_debug("vm: exit event: %s\n", err_str(errno));
	close(p->exit_fd);
	p->root = 0;
}

void kf_untrusted(uint64_t cr3)
{
	uint64_t root = gmem_root(cr3);
	struct kf_proc *p;

	if (kf.qfd < 0 || !kb_on())
		return;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	if (p)
		mirror_hold(p);
	else
		kb_proc_del(root);
	pthread_mutex_unlock(&kf.lock);
}

void kf_mm_gone(uint64_t cr3)
{
	uint64_t root = gmem_root(cr3);
	struct kf_proc *p;

	if (kf.qfd < 0)
		return;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	/* a vfork child's exit: the address space is its parent's */
	if (!p || !p->vforks) {
		if (p)
			proc_end(p);
		else
			root_clear(root);
		kb_proc_del(root);
	}
	pthread_mutex_unlock(&kf.lock);
}

/* A range of guest memory the core will write (or read) for a call. */
struct kf_range {
	uint64_t va, len;
	bool write;
};

static uint32_t guest_u32(uint64_t root, uint64_t va)
{
	uint32_t v = 0;

	if (va && gmem_read(kf.gm, root, va, &v, sizeof(v)))
		v = 0;
	return v;
}

static uint64_t cap(uint64_t len, uint64_t max)
{
	return len < max ? len : max;
}

/* Add [@va, @va + @len) (at most RSYS_MAX_PAYLOAD of it) to @r[*@n]. */
static void add_range(struct kf_range *r, int *n, uint64_t va, uint64_t len, bool write)
{
	if (va && len && *n < KF_RANGES)
		r[(*n)++] = (struct kf_range){ va, cap(len, RSYS_MAX_PAYLOAD), write };
}

/* The buffers of the @cnt iovecs at @iov (as many as @r has room for). */
static void add_iov(struct kf_range *r, int *n, uint64_t root, uint64_t iov, uint64_t cnt, bool write)
{
	struct iovec v[KF_RANGES];
	uint64_t i;

	cnt = cap(cnt, KF_RANGES);
	if (!iov || !cnt || gmem_read(kf.gm, root, iov, v, cnt * sizeof(v[0])))
		return;
	for (i = 0; i < cnt; i++)
		add_range(r, n, (uintptr_t)v[i].iov_base, v[i].iov_len, write);
}

/* The caller's buffers that the core will copy for remote call @sc: how many in @r. */
static int call_ranges(const struct kvm_x86_syscall *sc, uint64_t root, struct kf_range *r)
{
	const __u64 *a = sc->args;
	struct msghdr m;
	int n = 0;

	switch (sc->nr) {
	case RSYS_NR_read:
	case RSYS_NR_recvfrom:
		add_range(r, &n, a[1], cap(a[2], RSYS_MAX_RECV), true);
		if (sc->nr == RSYS_NR_recvfrom && a[4])
			add_range(r, &n, a[4], guest_u32(root, a[5]), true);
		break;
	case RSYS_NR_write:
	case RSYS_NR_sendto:
		add_range(r, &n, a[1], a[2], false);
		break;
	case RSYS_NR_readv:
	case RSYS_NR_writev:
		add_iov(r, &n, root, a[1], a[2], sc->nr == RSYS_NR_readv);
		break;
	case RSYS_NR_recvmsg:
	case RSYS_NR_sendmsg:
		if (gmem_read(kf.gm, root, a[1], &m, sizeof(m)))
			break;
		if (sc->nr == RSYS_NR_recvmsg) {
			add_range(r, &n, (uintptr_t)m.msg_name, m.msg_namelen, true);
			add_range(r, &n, (uintptr_t)m.msg_control, m.msg_controllen, true);
		}
		add_iov(r, &n, root, (uintptr_t)m.msg_iov, m.msg_iovlen, sc->nr == RSYS_NR_recvmsg);
		break;
	case RSYS_NR_getsockopt:
		add_range(r, &n, a[3], guest_u32(root, a[4]), true);
		break;
	case RSYS_NR_getsockname:
	case RSYS_NR_getpeername:
	case RSYS_NR_accept:
	case RSYS_NR_accept4:
		add_range(r, &n, a[1], guest_u32(root, a[2]), true);
		break;
	case RSYS_NR_ioctl:
		add_range(r, &n, a[2], sizeof(int), true);
		break;
	}
	return n;
}

/*
 * The first page of @r[0..@n) that a user access of its kind would fault
 * on (not present, or read-only for a write): 0 if none. *@write says
 * which kind, *@end where its range ends.
 */
static uint64_t first_fault(uint64_t root, const struct kf_range *r, int n, bool *write,
			    uint64_t *end_out)
{
	uint64_t va, end, gpa;
	int i;

	for (i = 0; i < n; i++) {
		end = r[i].va + r[i].len;
		for (va = r[i].va & ~(KF_PAGE - 1); va < end; va += KF_PAGE) {
			if (gmem_translate(kf.gm, root, va, r[i].write, &gpa)) {
				*write = r[i].write;
				*end_out = end;
				return va;
			}
		}
	}
	return 0;
}

/* Hand @k to the supervisor and wait for its answer, at most @hold ns (0: as long as it takes): answered? */
static bool core_run(struct kf_call *k, int64_t hold)
{
	struct timespec until;
	uint64_t one = 1;
	bool done;

	pthread_mutex_lock(&kf.lock);
	k->next = NULL;
	*kf.tail = k;
	kf.tail = &k->next;
	pthread_mutex_unlock(&kf.lock);
	if (write(kf.qfd, &one, sizeof(one)) != sizeof(one))
		pr_warn("vm: cannot wake the supervisor: %s\n", err_str(errno));
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (until.tv_nsec + hold) / 1000000000LL;
	until.tv_nsec = (until.tv_nsec + hold) % 1000000000LL;
	pthread_mutex_lock(&kf.lock);
	while (!k->done) {
		if (!hold)
			pthread_cond_wait(&k->cond, &kf.lock);
		else if (pthread_cond_timedwait(&k->cond, &kf.lock, &until) == ETIMEDOUT)
			break;
	}
	done = k->done;
	pthread_mutex_unlock(&kf.lock);
	return done;
}

static bool is_remote(uint64_t root, int vfd)
{
	struct kf_proc *p;
	bool ret;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	ret = p && shadow_get(p, vfd) >= 0;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

static bool same_call(const struct kvm_x86_syscall *a, const struct kvm_x86_syscall *b)
{
	return a->nr == b->nr && a->rip == b->rip && gmem_root(a->cr3) == gmem_root(b->cr3) &&
	       !memcmp(a->args, b->args, sizeof(a->args));
}

/* Negate the fds of entries @idx[0..@n) of the pollfd array at @va (poll skips negative ones), or (@hidden) back. */
static void poll_flip(uint64_t root, uint64_t va, const uint32_t *idx, unsigned int n, bool hidden)
{
	unsigned int i;
	uint64_t at;
	int32_t fd;

	for (i = 0; i < n; i++) {
		at = va + (uint64_t)idx[i] * sizeof(struct pollfd);
		/* hidden ones only back (another process may have the address space now) */
		if (!gmem_read(kf.gm, root, at, &fd, sizeof(fd)) && (fd < 0) == hidden) {
			fd = ~fd;
			gmem_write(kf.gm, root, at, &fd, sizeof(fd));
		}
	}
}

/* The remote entries a slice hid are the program's again. */
static void unhide(struct kf_pend *pd)
{
	if (pd->nhidden)
		poll_flip(gmem_root(pd->orig.cr3), pd->orig.args[0], pd->hidden, pd->nhidden, true);
	free(pd->hidden);
	pd->hidden = NULL;
	pd->nhidden = 0;
}

/* A select slice's changes to the program's memory are undone. */
static void restore_saved(struct kf_pend *pd)
{
	unsigned int i;

	for (i = 0; i < pd->nsaved; i++)
		gmem_write(kf.gm, gmem_root(pd->orig.cr3), pd->saved[i].va, pd->saved[i].data,
			   pd->saved[i].len);
	pd->nsaved = 0;
}

/* Note @len bytes at @va of address space @root before a slice changes them: 0 or -EFAULT. */
static int save(struct kf_pend *pd, uint64_t root, uint64_t va, uint32_t len)
{
	if (pd->nsaved >= sizeof(pd->saved) / sizeof(pd->saved[0]) ||
	    len > sizeof(pd->saved[0].data) || gmem_read(kf.gm, root, va, pd->saved[pd->nsaved].data, len))
		return -EFAULT;
	pd->saved[pd->nsaved].va = va;
	pd->saved[pd->nsaved].len = len;
	pd->nsaved++;
	return 0;
}

/* Let a call's wait for its SYSRET go: the program's memory as it was, the placeholder closed. */
static void exec_back(const struct kf_pend *pd);
static void vfork_back(const struct kf_pend *pd);

static void disarm(struct kf_pend *pd)
{
	if (pd->exec)
		exec_back(pd);
	if (pd->vfork)
		vfork_back(pd);
	if (pd->inst_fd >= 0)
		close(pd->inst_fd);
	pd->inst_fd = -1;
	if (pd->slice)
		unhide(pd);
	restore_saved(pd);
	free(pd->hidden);
	*pd = (struct kf_pend){ .inst_fd = -1 };
}

/* The call being decided waits for its SYSRET (kf_call() hands it to the table). */
static void arm(struct kf_vcpu *kv, const struct kvm_x86_syscall *sc, pid_t id)
{
	disarm(&kv->pend);
	kv->pend.orig = *sc;
	kv->pend.id = id;
	kv->pend.rsp = kv->cur_rsp;
	kv->pend.wait_deadline = kv->wait_deadline;
	kv->pend.armed = true;
}


/*
 * The guest kernel runs @sc of process @id as it is, and its SYSRET comes
 * back to the front end (kv->pend, armed: the caller says what for).
 */
static enum kf_verdict run_returning(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, pid_t id,
				     uint64_t (*rsp)(void *arg), void *arg)
{
	if (!kv->cur_rsp)
		kv->cur_rsp = rsp(arg);
	arm(kv, sc, id);
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return KF_DECIDED;
}

/* Hand @kv's armed call to the table; a call of the same thread still there returned by IRET. */
static void commit(struct kf_vcpu *kv)
{
	uint64_t root = gmem_root(kv->pend.orig.cr3);
	struct kf_pend *slot = NULL, old = { .inst_fd = -1 };
	unsigned int i;

	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_PENDS; i++) {
		if (pends[i].armed && gmem_root(pends[i].orig.cr3) == root &&
		    pends[i].rsp == kv->pend.rsp) {
			slot = &pends[i];
			break;
		}
		if (!pends[i].armed && !slot)
			slot = &pends[i];
	}
	if (!slot) {
		slot = &pends[pends_next];
		pends_next = (pends_next + 1) % KF_PENDS;
		pr_warn_few("vm: more than %u trusted calls wait for their return: the oldest is let go\n",
			    KF_PENDS);
	}
	if (slot->armed)
		old = *slot;
	*slot = kv->pend;
	pthread_mutex_unlock(&kf.lock);
	disarm(&old);
	kv->pend = (struct kf_pend){ .inst_fd = -1 };
}

/* Take the call of @root waiting for the SYSRET to @rip with stack pointer @rsp out of the table into *@pd. */
static bool take(uint64_t root, uint64_t rip, uint64_t rsp, struct kf_pend *pd)
{
	unsigned int i;
	bool found = false;

	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_PENDS && !found; i++) {
		if (pends[i].armed && gmem_root(pends[i].orig.cr3) == root &&
		    pends[i].orig.rip == rip && pends[i].rsp == rsp) {
			*pd = pends[i];
			pends[i] = (struct kf_pend){ .inst_fd = -1 };
			found = true;
		}
	}
	pthread_mutex_unlock(&kf.lock);
	return found;
}

/* A new call of the thread with stack pointer @rsp in @root: its calls in the table came back by IRET. */
static void forget_thread(uint64_t root, uint64_t rsp)
{
	struct kf_pend pd;
	unsigned int i;

	for (i = 0; i < KF_PENDS; i++) {
		pthread_mutex_lock(&kf.lock);
		if (!pends[i].armed || gmem_root(pends[i].orig.cr3) != root || pends[i].rsp != rsp) {
			pthread_mutex_unlock(&kf.lock);
			continue;
		}
		pd = pends[i];
		pends[i] = (struct kf_pend){ .inst_fd = -1 };
		pthread_mutex_unlock(&kf.lock);
		disarm(&pd);
	}
}

/* Does any call of @root wait for its SYSRET? */
static bool root_waits(uint64_t root)
{
	unsigned int i;
	bool ret = false;

	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_PENDS && !ret; i++)
		ret = pends[i].armed && gmem_root(pends[i].orig.cr3) == root;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}


static struct kf_wait *wait_find(uint64_t root, uint64_t rsp)
{
	unsigned int i;

	for (i = 0; i < KF_PENDS; i++)
		if (waits[i].root == root && waits[i].rsp == rsp)
			return &waits[i];
	return NULL;
}

/* The wait the thread of the call being decided is in, into kv->wait_* (nr 0: none). */
static void wait_load(struct kf_vcpu *kv, uint64_t root)
{
	struct kf_wait *w;

	pthread_mutex_lock(&kf.lock);
	w = wait_find(root, kv->cur_rsp);
	kv->wait_call.nr = 0;
	if (w) {
		kv->wait_call = w->call;
		kv->wait_deadline = w->deadline;
		kv->wait_slice_ms = w->slice_ms;
	}
	pthread_mutex_unlock(&kf.lock);
}

/* ... and back: kept while it goes on (wait_call.nr), else forgotten. */
static void wait_store(struct kf_vcpu *kv, uint64_t root)
{
	struct kf_wait *w;

	pthread_mutex_lock(&kf.lock);
	w = wait_find(root, kv->cur_rsp);
	if (!w && kv->wait_call.nr) {
		w = wait_find(0, 0);
		if (!w) {
			w = &waits[waits_next];
			waits_next = (waits_next + 1) % KF_PENDS;
		}
	}
	if (w && kv->wait_call.nr) {
		w->root = root;
		w->rsp = kv->cur_rsp;
		w->call = kv->wait_call;
		w->deadline = kv->wait_deadline;
		w->slice_ms = kv->wait_slice_ms;
	} else if (w) {
		w->root = w->rsp = 0;
	}
	pthread_mutex_unlock(&kf.lock);
}

static void wait_end(uint64_t root, uint64_t rsp)
{
	struct kf_wait *w;

	pthread_mutex_lock(&kf.lock);
	w = wait_find(root, rsp);
	if (w)
		w->root = w->rsp = 0;
	pthread_mutex_unlock(&kf.lock);
}

void kf_vcpu_free(struct kf_vcpu *kv)
{
	disarm(&kv->pend);
	free(kv->call);
	kv->call = NULL;
}

/* Is any fd that call @sc names in registers (fdargs @fa) remote? */
static bool names_remote(uint64_t root, const struct kvm_x86_syscall *sc, unsigned int fa)
{
	return ((fa & RSYS_A0) && is_remote(root, (int)sc->args[0])) ||
	       ((fa & RSYS_A1) && is_remote(root, (int)sc->args[1])) ||
	       ((fa & RSYS_A2) && is_remote(root, (int)sc->args[2]));
}

static bool ep_watched(uint64_t root, int epfd);

/* Not the core's business in a guest: local families, epoll instances (remote interest is epoll_ctl's). */
static bool core_takes(const struct kvm_x86_syscall *sc, uint64_t root)
{
	unsigned int fa = fdargs(sc->nr);

	if (!sv_handles(sc->nr, false))
		return false;
	switch (sc->nr) {
	case RSYS_NR_execve:
	case RSYS_NR_execveat:		/* trust follows the token (vmtrust.c), not a passport */
	case RSYS_NR_epoll_create1:
		return false;
	case RSYS_NR_socket:
		return policy_is_remote_family(kf.sv->policy, (int)sc->args[0]);
	case RSYS_NR_epoll_wait:
	case RSYS_NR_epoll_pwait:
	case RSYS_NR_epoll_pwait2:	/* the front end splits it (split_epoll) */
		return ep_watched(root, (int)sc->args[0]);
	}
	/* Calls on local fds only need nothing from the core: the guest kernel runs them. */
	if (fa & (RSYS_A0 | RSYS_A1 | RSYS_A2) && !(fa & RSYS_AMEM))
		return names_remote(root, sc, fa);
	return true;
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * When a wait of timeout @ts runs out (CLOCK_MONOTONIC ns); INT64_MAX for
 * never (NULL); -1 for a bad one. From a timespec in the guest at @va, or
 * milliseconds (-1: never).
 */
static int64_t ts_deadline(const struct timespec *ts)
{
	if (ts->tv_sec < 0 || ts->tv_nsec < 0 || ts->tv_nsec >= 1000000000L)
		return -1;
	if (ts->tv_sec > INT32_MAX)
		return INT64_MAX;
	return now_ns() + ts->tv_sec * 1000000000LL + ts->tv_nsec;
}

static int64_t timespec_deadline(uint64_t root, uint64_t va)
{
	struct timespec ts;

	if (!va)
		return INT64_MAX;
	return gmem_read(kf.gm, root, va, &ts, sizeof(ts)) ? -1 : ts_deadline(&ts);
}

static int64_t ms_deadline(int ms)
{
	return ms < 0 ? INT64_MAX : now_ns() + (int64_t)ms * 1000000;
}

/* When poll or ppoll @sc times out, as above. */
static int64_t poll_deadline(const struct kvm_x86_syscall *sc, uint64_t root)
{
	return sc->nr == RSYS_NR_poll ? ms_deadline((int)sc->args[2]) : timespec_deadline(root, sc->args[2]);
}

static void complete(struct kvm_x86_syscall *sc, int64_t ret)
{
	sc->flags = 0;
	sc->ret = ret;
}

/* Answered @k is the vCPU's again: no scratch memory, no placeholder end it does not install. */
static void settle(struct kf_call *k)
{
	pthread_mutex_lock(&kf.lock);
	k->scratch = NULL;
	pthread_mutex_unlock(&kf.lock);
	if (k->inst_fd >= 0 && !k->install) {
		close(k->inst_fd);
		k->inst_fd = -1;
	}
}

/*
 * Hand call @sc of process @id to the core (with @scratch at KF_SCRATCH_VA)
 * and wait for its answer, at most @hold ns (0: as long as it takes):
 * answered? If not, the core still has @k.
 */
static bool core_ask(struct kf_call *k, const struct kvm_x86_syscall *sc, pid_t id, uint64_t root,
		     void *scratch, size_t len, int64_t hold)
{
	pthread_mutex_lock(&kf.lock);
	k->sc = *sc;
	k->id = id;
	k->root = root;
	k->done = k->cont = k->install = false;
	k->inst_flags = 0;
	k->sig = 0;
	k->ret = 0;
	k->inst_fd = -1;
	k->scratch = scratch;
	k->scratch_len = len;
	pthread_mutex_unlock(&kf.lock);
	if (!core_run(k, hold))
		return false;
	settle(k);
	return true;
}

/* The next slice of a split wait with @left ns to go (INT64_MAX: no timeout), in ms: 1, 2, 4 ... KF_SLICE_MAX_MS. */
static unsigned int next_slice(struct kf_vcpu *kv, int64_t left)
{
	unsigned int ms = kv->wait_slice_ms;

	if (left < (int64_t)ms * 1000000)
		ms = (unsigned int)((left + 999999) / 1000000);
	kv->wait_slice_ms = kv->wait_slice_ms * 2 > KF_SLICE_MAX_MS ? KF_SLICE_MAX_MS :
			    kv->wait_slice_ms * 2;
	return ms;
}

/*
 * Have the guest kernel fault in [@va, @va + @len) for a write (else a
 * read) in place of @sc, then make @sc again (kf_return): false if the
 * last fault-in of this call was for @va already (it did not help).
 */
static bool fault_in(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, pid_t id, uint64_t va,
		     uint64_t len, bool write)
{
	if (va == kv->fault_va)
		return false;
	arm(kv, sc, id);
	kv->fault_va = va;
	kv->fault_call = *sc;
	kv->pend.retry = true;
	sc->nr = RSYS_NR_madvise;
	sc->args[0] = va;
	sc->args[1] = (len + (va & (KF_PAGE - 1)) + KF_PAGE - 1) & ~(KF_PAGE - 1);
	sc->args[0] = va & ~(KF_PAGE - 1);
	sc->args[2] = write ? MADV_POPULATE_WRITE : MADV_POPULATE_READ;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return true;
}

/* When select (its timeval) or pselect6 (its timespec) @sc times out, as poll_deadline(). */
static int64_t select_deadline(const struct kvm_x86_syscall *sc, uint64_t root)
{
	struct timespec ts;
	struct timeval tv;

	if (sc->nr != RSYS_NR_select || !sc->args[4])
		return timespec_deadline(root, sc->args[4]);
	if (gmem_read(kf.gm, root, sc->args[4], &tv, sizeof(tv)) || tv.tv_sec < 0 || tv.tv_usec < 0)
		return -1;
	ts.tv_sec = tv.tv_sec + tv.tv_usec / 1000000;
	ts.tv_nsec = (tv.tv_usec % 1000000) * 1000;
	return ts_deadline(&ts);
}

/*
 * A split wait's first round notes when @sc times out (@deadline); the
 * rounds after a slice (the call made again) keep it. False if the
 * timeout is bad: @sc is answered EINVAL.
 */
static bool wait_start(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
		       int64_t (*deadline)(const struct kvm_x86_syscall *sc, uint64_t root))
{
	if (!same_call(sc, &kv->wait_call)) {
		kv->wait_call = *sc;
		kv->wait_deadline = deadline(sc, root);
		kv->wait_slice_ms = 1;
	}
	if (kv->wait_deadline >= 0)
		return true;
	kv->wait_call.nr = 0;
	complete(sc, -EINVAL);
	return false;
}

/*
 * The remote half of split wait @sc: a poll of the @n remote entries @pf
 * (made up, in scratch) that does not wait; the core's answer in
 * kv->call. False if that is an error: @sc is answered with it.
 */
static bool remote_half(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root, pid_t id,
			struct pollfd *pf, unsigned int n)
{
	struct kvm_x86_syscall probe = *sc;
	struct kf_call *k = kv->call;

	probe.nr = RSYS_NR_poll;
	probe.args[0] = KF_SCRATCH_VA;
	probe.args[1] = n;
	probe.args[2] = 0;
	core_ask(k, &probe, id, root, pf, n * sizeof(pf[0]), 0);
	if (k->cont || k->ret >= 0)
		return true;
	kv->wait_call.nr = 0;
	complete(sc, k->ret);
	return false;
}

/*
 * 16 bytes below the stack pointer of @kv's call (past the red zone) for a
 * slice's timeout, into *@va: true if they are mapped writable, else the
 * call is replaced by their fault-in (false; 1 from fault_in() tells).
 */
static bool stack_scratch(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root, pid_t id,
			  uint64_t *va, int *faulted)
{
	uint64_t gpa;

	*va = (kv->cur_rsp - 256) & ~15ULL;
	if (!gmem_translate(kf.gm, root, *va, true, &gpa) &&
	    !gmem_translate(kf.gm, root, *va + 15, true, &gpa))
		return true;
	*faulted = fault_in(kv, sc, id, *va, 16, true) ? 1 : 0;
	return false;
}

#define KF_SET_WORDS	(KF_SELECT_MAX / 64)

/*
 * A select or pselect6 over local and remote fds, split as split_poll()
 * does: the remote half is a poll the front end makes up for the core
 * (its array in scratch memory), the local half the guest kernel's own
 * select of the local fds, in slices, with a timeout in the program's own
 * timeval (or below its stack pointer when it gave none, faulted in if
 * need be); the sets and the timeout are the program's again after each
 * slice. 1 decided, 0 the core's whole (all remote), -1 the guest
 * kernel's (all local).
 */
static int split_select(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root, pid_t id)
{
	uint64_t set[3][KF_SET_WORDS] = { { 0 } }, loc[3][KF_SET_WORDS] = { { 0 } };
	uint64_t res[3][KF_SET_WORDS] = { { 0 } };
	int nfds = (int)sc->args[0], i, j, nr = 0, nl = 0, count = 0;
	struct pollfd pf[KF_SELECT_MAX];
	struct kf_call *k = kv->call;
	uint64_t tva;
	int faulted;
	struct kf_proc *p;
	unsigned int ms;
	size_t bytes;
	int64_t left;
	bool rem;

	if (nfds <= 0 || nfds > KF_SELECT_MAX)
		return 0;
	bytes = (size_t)(nfds + 63) / 64 * 8;
	for (j = 0; j < 3; j++)
		if (sc->args[1 + j] && gmem_read(kf.gm, root, sc->args[1 + j], set[j], bytes))
			return 0;	/* the core answers EFAULT */
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	for (i = 0; p && i < nfds; i++) {
		short ev = 0;

		for (j = 0; j < 3; j++)
			if (set[j][i / 64] & 1ULL << (i % 64))
				ev |= j == 0 ? POLLIN : j == 1 ? POLLOUT : POLLPRI;
		if (!ev)
			continue;
		rem = shadow_get(p, i) >= 0;
		if (rem) {
			pf[nr].fd = i;
			pf[nr].events = ev;
			pf[nr++].revents = 0;
		} else {
			nl++;
			for (j = 0; j < 3; j++)
				loc[j][i / 64] |= set[j][i / 64] & 1ULL << (i % 64);
		}
	}
	pthread_mutex_unlock(&kf.lock);
	if (!nr)
		return -1;
	if (!nl)
		return 0;
	/* the remote half, now */
	if (!wait_start(kv, sc, root, select_deadline) || !remote_half(kv, sc, root, id, pf, nr))
		return 1;
	for (i = 0; !k->cont && k->ret > 0 && i < nr; i++) {
		short re = pf[i].revents;
		int fd = pf[i].fd;

		if (re & POLLNVAL) {
			kv->wait_call.nr = 0;
			complete(sc, -EBADF);
			return 1;
		}
		for (j = 0; j < 3; j++) {
			short want = j == 0 ? POLLIN | POLLHUP | POLLERR : j == 1 ? POLLOUT | POLLERR : POLLPRI;

			if ((set[j][fd / 64] & 1ULL << (fd % 64)) && (re & want)) {
				res[j][fd / 64] |= 1ULL << (fd % 64);
				count++;
			}
		}
	}
	left = kv->wait_deadline == INT64_MAX ? INT64_MAX : kv->wait_deadline - now_ns();
	if (count || left <= 0) {
		for (j = 0; j < 3; j++)
			if (sc->args[1 + j])
				gmem_write(kf.gm, root, sc->args[1 + j], res[j], bytes);
		kv->wait_call.nr = 0;
		complete(sc, count);
		return 1;
	}

	/* The local half: the guest kernel's select of the local fds for a slice. */
	tva = sc->args[4];
	if (!tva && !stack_scratch(kv, sc, root, id, &tva, &faulted))
		return faulted;
	arm(kv, sc, id);
	for (j = 0; j < 3; j++)
		if (sc->args[1 + j] && save(&kv->pend, root, sc->args[1 + j], bytes))
			break;
	if (j < 3 || save(&kv->pend, root, tva, 16)) {
		disarm(&kv->pend);
		return 0;
	}
	for (j = 0; j < 3; j++)
		if (sc->args[1 + j])
			gmem_write(kf.gm, root, sc->args[1 + j], loc[j], bytes);
	ms = next_slice(kv, left);
	if (sc->nr == RSYS_NR_select) {
		struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

		gmem_write(kf.gm, root, tva, &tv, sizeof(tv));
	} else {
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

		gmem_write(kf.gm, root, tva, &ts, sizeof(ts));
	}
	kv->pend.sslice = true;
	sc->args[4] = tva;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return 1;
}

/* --- epoll: the remote interest of guest epoll instances, and split waits on them --- */

#define KF_EP_EVENT	12		/* struct epoll_event on x86-64: packed */
#define KF_EPOLLONESHOT	(1U << 30)
/* what a remote entry reports: as poll's bits (EPOLLIN == POLLIN, ...), EPOLLRDHUP included */
#define KF_EP_POLL	(POLLIN | POLLPRI | POLLOUT | POLLRDNORM | POLLRDBAND | POLLWRNORM | \
			 POLLWRBAND | POLLMSG | POLLRDHUP)

static bool is_epoll_wait(uint64_t nr)
{
	return nr == RSYS_NR_epoll_wait || nr == RSYS_NR_epoll_pwait || nr == RSYS_NR_epoll_pwait2;
}

/* Does epoll instance @epfd of @root watch a remote vfd? */
static bool ep_watched(uint64_t root, int epfd)
{
	struct kf_proc *p;
	unsigned int i;
	bool ret = false;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	for (i = 0; p && i < p->nep && !ret; i++)
		ret = p->ep[i].epfd == epfd;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

/* @fd of @root is closed: if it was an epoll instance, its remote interest goes. Any? */
static bool ep_forget(uint64_t root, int fd)
{
	struct kf_proc *p;
	unsigned int i, n = 0;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	for (i = 0; p && i < p->nep; i++)
		if (p->ep[i].epfd != fd)
			p->ep[n++] = p->ep[i];
	if (p && n < p->nep) {
		i = p->nep;
		p->nep = n;
		mirror_fd(p, fd);
	}
	pthread_mutex_unlock(&kf.lock);
	return p && n < i;
}

/*
 * epoll_ctl @sc on a remote vfd: the guest kernel runs it (on the
 * placeholder: EEXIST, ENOENT, EBADF, ... as Linux says) and, if it works,
 * the front end notes the interest for the instance's waits (ep_apply).
 */
static enum kf_verdict ep_ctl(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
			      uint64_t (*rsp)(void *arg), void *arg)
{
	uint8_t ev[KF_EP_EVENT] = { 0 };
	struct kf_proc *p;
	pid_t id;

	if (sc->args[1] != EPOLL_CTL_DEL && sc->args[3] &&
	    gmem_read(kf.gm, root, sc->args[3], ev, sizeof(ev)))
		return KF_PASS;		/* EFAULT: the guest kernel says so */
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	id = p ? p->id : 0;
	pthread_mutex_unlock(&kf.lock);
	if (!id)
		return KF_PASS;
	run_returning(kv, sc, id, rsp, arg);
	kv->pend.epctl = true;
	memcpy(&kv->pend.ep_events, ev, 4);
	memcpy(&kv->pend.ep_data, ev + 4, 8);
	return KF_DECIDED;
}

/* The epoll_ctl of @pd worked: note it. */
static void ep_apply(const struct kf_pend *pd)
{
	int epfd = (int)pd->orig.args[0], op = (int)pd->orig.args[1], vfd = (int)pd->orig.args[2];
	struct kf_epreg *r = NULL, *v;
	struct kf_proc *p;
	unsigned int i;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(pd->id);
	for (i = 0; p && i < p->nep && !r; i++)
		if (p->ep[i].epfd == epfd && p->ep[i].vfd == vfd)
			r = &p->ep[i];
	if (p && op == EPOLL_CTL_DEL && r) {
		*r = p->ep[--p->nep];
	} else if (p && op == EPOLL_CTL_ADD && !r) {
		v = realloc(p->ep, (p->nep + 1) * sizeof(*v));
		if (v) {
			p->ep = v;
			r = &v[p->nep++];
		}
	}
	if (r && op != EPOLL_CTL_DEL)
		*r = (struct kf_epreg){ .epfd = epfd, .vfd = vfd, .data = pd->ep_data,
				       .events = pd->ep_events | POLLERR | POLLHUP };
	if (p)
		mirror_fd(p, epfd);
	pthread_mutex_unlock(&kf.lock);
}

/* When an epoll wait @sc times out, as poll_deadline(). */
static int64_t epoll_deadline(const struct kvm_x86_syscall *sc, uint64_t root)
{
	return sc->nr == RSYS_NR_epoll_pwait2 ? timespec_deadline(root, sc->args[3]) :
	       ms_deadline((int)sc->args[3]);
}

/*
 * epoll_wait, epoll_pwait or epoll_pwait2 @sc on an instance that watches
 * remote vfds, split as poll is: the remote half asked of the core first
 * (a poll that does not wait), its events written with their data; if
 * none, the guest kernel's own wait on the instance (its guest files; the
 * remote placeholders never become ready there) for a slice, and the call
 * made again until something is ready or its time is up. Level-triggered
 * (EPOLLET is taken as level: a program that drains sees no difference);
 * EPOLLONESHOT disarms the entry until EPOLL_CTL_MOD. -1: not split.
 */
static int split_epoll(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root, pid_t id)
{
	int epfd = (int)sc->args[0], maxevents = (int)sc->args[2], count = 0;
	struct kf_call *k = kv->call;
	struct pollfd pf[KF_POLL_MAX];
	struct kf_epreg reg[KF_POLL_MAX];
	uint64_t fault, end;
	struct kf_range r;
	struct kf_proc *p;
	unsigned int n = 0, i, j, ms;
	uint8_t ev[KF_EP_EVENT];
	int64_t left;
	bool write;

	if (maxevents <= 0 || maxevents > INT32_MAX / KF_EP_EVENT)
		return -1;	/* EINVAL: the guest kernel's */
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	for (i = 0; p && i < p->nep && n < KF_POLL_MAX; i++) {
		if (p->ep[i].epfd != epfd || !p->ep[i].events || shadow_get(p, p->ep[i].vfd) < 0)
			continue;
		reg[n] = p->ep[i];
		pf[n] = (struct pollfd){ .fd = reg[n].vfd, .events = reg[n].events & KF_EP_POLL };
		n++;
	}
	pthread_mutex_unlock(&kf.lock);
	if (!n)
		return -1;
	/* the front end writes the program's events: their memory first */
	r = (struct kf_range){ .va = sc->args[1],
			       .len = (uint64_t)(n < (unsigned int)maxevents ? n : (unsigned int)maxevents) *
				      KF_EP_EVENT,
			       .write = true };
	fault = first_fault(root, &r, 1, &write, &end);
	if (fault && fault_in(kv, sc, id, fault, end - fault, true))
		return 1;
	if (fault)
		return -1;	/* EFAULT: the guest kernel's */
	kv->fault_va = 0;
	/* the remote half, now */
	if (!wait_start(kv, sc, root, epoll_deadline) || !remote_half(kv, sc, root, id, pf, n))
		return 1;
	for (i = 0; !k->cont && k->ret > 0 && i < n && count < maxevents; i++) {
		uint32_t re = (uint16_t)pf[i].revents & (reg[i].events | POLLERR | POLLHUP);

		if (!re)
			continue;
		memcpy(ev, &re, 4);
		memcpy(ev + 4, &reg[i].data, 8);
		if (gmem_write(kf.gm, root, sc->args[1] + (uint64_t)count * KF_EP_EVENT, ev, sizeof(ev)))
			break;
		count++;
		if (!(reg[i].events & KF_EPOLLONESHOT))
			continue;
		pthread_mutex_lock(&kf.lock);
		p = proc_by_id(id);
		for (j = 0; p && j < p->nep; j++)
			if (p->ep[j].epfd == epfd && p->ep[j].vfd == reg[i].vfd)
				p->ep[j].events = 0;
		pthread_mutex_unlock(&kf.lock);
	}
	if (count) {
		kv->wait_call.nr = 0;
		complete(sc, count);
		return 1;
	}

	/*
	 * The local half: the guest kernel's own wait, for a slice (none if
	 * the time is up: what is ready now), with the call's signal mask;
	 * epoll_pwait2's timespec becomes epoll_pwait's milliseconds.
	 */
	left = kv->wait_deadline == INT64_MAX ? INT64_MAX : kv->wait_deadline - now_ns();
	ms = left > 0 ? next_slice(kv, left) : 0;
	arm(kv, sc, id);
	kv->pend.slice = true;
	if (sc->nr == RSYS_NR_epoll_pwait2)
		sc->nr = RSYS_NR_epoll_pwait;
	sc->args[3] = ms;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return 1;
}

/*
 * A poll or ppoll over local and remote fds: the remote half is the core's
 * (a poll of the remote entries alone, the local ones hidden, that does
 * not wait); the local half is the guest kernel's own poll of the local
 * entries, the remote ones hidden, in slices of up to KF_SLICE_MAX_MS, so
 * the vCPU runs the guest meanwhile. Between slices the call is made again
 * (kf_return). 1 when it is decided so; 0 when the core takes it whole (all
 * remote), -1 when the guest kernel does (all local).
 */
static int split_poll(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
		       pid_t id)
{
	uint32_t *loc = NULL, *rem = NULL, nl = 0, nr = 0, i;
	uint64_t va = sc->args[0], nfds = sc->args[1], tva = 0;
	int faulted;
	struct kvm_x86_syscall probe;
	struct kf_call *k = kv->call;
	struct pollfd *pf;
	struct kf_proc *p;
	int64_t left;
	unsigned int ms;

	if (!nfds || nfds > KF_POLL_MAX)
		return false;
	pf = malloc(nfds * sizeof(*pf));
	loc = malloc(nfds * sizeof(*loc));
	rem = malloc(nfds * sizeof(*rem));
	if (!pf || !loc || !rem || gmem_read(kf.gm, root, va, pf, nfds * sizeof(*pf)))
		goto whole;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	for (i = 0; p && i < nfds; i++) {
		if (pf[i].fd < 0)
			continue;
		if (shadow_get(p, pf[i].fd) >= 0)
			rem[nr++] = i;
		else
			loc[nl++] = i;
	}
	pthread_mutex_unlock(&kf.lock);
	if (!nr) {
		free(pf);
		free(loc);
		free(rem);
		return -1;	/* all local: the guest kernel's */
	}
	if (!nl)
		goto whole;
	free(pf);
	if (!wait_start(kv, sc, root, poll_deadline)) {
		free(loc);
		free(rem);
		return 1;
	}

	/* The remote half, now: a poll of the remote entries that does not wait. */
	poll_flip(root, va, loc, nl, false);
	probe = *sc;
	probe.nr = RSYS_NR_poll;
	probe.args[2] = 0;
	core_ask(k, &probe, id, root, NULL, 0, 0);
	poll_flip(root, va, loc, nl, true);
	free(loc);
	if (k->inst_fd >= 0)
		close(k->inst_fd);
	left = kv->wait_deadline == INT64_MAX ? INT64_MAX : kv->wait_deadline - now_ns();
	if ((!k->cont && k->ret) || left <= 0) {
		kv->wait_call.nr = 0;
		free(rem);
		complete(sc, k->cont ? 0 : k->ret);
		return 1;
	}

	/*
	 * The local half: the guest kernel's poll for a slice, the remote
	 * entries hidden; a ppoll with a signal mask waits with that mask, its
	 * slice in a timespec below the stack pointer (faulted in if need be).
	 */
	ms = next_slice(kv, left);
	if (sc->nr == RSYS_NR_ppoll && sc->args[3] && !stack_scratch(kv, sc, root, id, &tva, &faulted)) {
		free(rem);
		return faulted;
	}
	arm(kv, sc, id);
	if (tva && save(&kv->pend, root, tva, 16)) {
		disarm(&kv->pend);
		free(rem);
		return 0;
	}
	poll_flip(root, va, rem, nr, false);
	kv->pend.hidden = rem;
	kv->pend.nhidden = nr;
	kv->pend.slice = true;
	if (tva) {
		struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

		gmem_write(kf.gm, root, tva, &ts, sizeof(ts));
		sc->args[2] = tva;
	} else {
		sc->nr = RSYS_NR_poll;
		sc->args[2] = ms;
	}
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return 1;

whole:
	free(pf);
	free(loc);
	free(rem);
	return 0;
}

/* Where a call that waited for its SYSRET goes on: RAX, the address it returns to, its arguments. */
struct kf_out {
	int64_t rax;
	uint64_t rip;		/* orig.rip + 2: on after the call; orig.rip: the SYSCALL again */
	uint64_t args[6];
};

/* @out's arguments into the registers @r (struct kvm_regs or sigcontext: the same names). */
#define KF_PUT_ARGS(r, out)			\
	do {					\
		(r).rdi = (out).args[0];	\
		(r).rsi = (out).args[1];	\
		(r).rdx = (out).args[2];	\
		(r).r10 = (out).args[3];	\
		(r).r8 = (out).args[4];		\
		(r).r9 = (out).args[5];		\
	} while (0)

/* A kf_call: a spare one, or a new one; NULL without memory. call_get(): @kv's own. */
static struct kf_call *call_new(void)
{
	pthread_condattr_t ca;
	struct kf_call *k;

	pthread_mutex_lock(&kf.lock);
	k = kf.spare;
	if (k)
		kf.spare = k->next;
	pthread_mutex_unlock(&kf.lock);
	if (!k) {
		k = calloc(1, sizeof(*k));
		if (!k)
			return NULL;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&k->cond, &ca);
		pthread_condattr_destroy(&ca);
		k->inst_fd = -1;
	}
	return k;
}

static struct kf_call *call_get(struct kf_vcpu *kv)
{
	if (!kv->call)
		kv->call = call_new();
	return kv->call;
}

/* The parked call (gone or not) of the thread with stack pointer @rsp in @root, or NULL. Under kf.lock. */
static struct kf_call *parked_of(uint64_t root, uint64_t rsp)
{
	struct kf_call *k;

	for (k = kf.parked; k; k = k->pnext)
		if (k->root == root && k->rsp == rsp)
			return k;
	return NULL;
}

/* Has a thread of @root a parked call (gone ones too)? */
static bool parked_in(uint64_t root)
{
	struct kf_call *k;
	bool ret = false;

	if (!__atomic_load_n(&kf.parked, __ATOMIC_RELAXED))
		return false;
	pthread_mutex_lock(&kf.lock);
	for (k = kf.parked; k && !ret; k = k->pnext)
		ret = k->root == root;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

/* Parked @k's thread waits in the guest kernel for a slice (a poll of no fds), then makes its call again. */
static enum kf_verdict park_slice(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, struct kf_call *k,
				  pid_t id)
{
	unsigned int ms;

	pthread_mutex_lock(&kf.lock);
	ms = k->slice_ms;
	k->slice_ms = ms * 2 > KF_PARK_SLICE_MAX_MS ? KF_PARK_SLICE_MAX_MS : ms * 2;
	k->slice_end = now_ns() + ms * 1000000LL;
	pthread_mutex_unlock(&kf.lock);
	arm(kv, sc, id);
	kv->pend.park = true;
	sc->nr = RSYS_NR_poll;
	sc->args[0] = 0;
	sc->args[1] = 0;
	sc->args[2] = ms;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return KF_DECIDED;
}

/* @k's answer for call @sc: a value, the guest's own call, or a placeholder in place of a socket. */
/*
 * A call the core lets the guest kernel run that changes the table: an
 * F_DUPFD of a remote vfd from a number above 0 (the core cannot pick "the
 * lowest free from N") makes a placeholder there too, whose number the
 * return hook learns; a dup2/dup3 of a guest file onto a remote vfd (the
 * monitor has no copy of a guest's file) makes that vfd the guest's if it
 * works (else, EBADF say, the remote socket stays, as in Linux).
 */
static enum kf_verdict cont_table(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, pid_t id)
{
	bool dupfd = sc->nr == RSYS_NR_fcntl &&
		     (sc->args[1] == F_DUPFD || sc->args[1] == F_DUPFD_CLOEXEC);
	bool onto = (sc->nr == RSYS_NR_dup2 || sc->nr == RSYS_NR_dup3) && sc->args[0] != sc->args[1];
	struct kf_proc *p;
	int fd = -1;

	if (!dupfd && !onto)
		return KF_PASS;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(id);
	if (p && dupfd && shadow_get(p, (int)sc->args[0]) >= 0)
		fd = fcntl(shadow_get(p, (int)sc->args[0]), F_DUPFD_CLOEXEC, 0);
	onto = onto && p && shadow_get(p, (int)sc->args[0]) < 0 && shadow_get(p, (int)sc->args[1]) >= 0;
	pthread_mutex_unlock(&kf.lock);
	if (fd < 0 && !onto)
		return KF_PASS;
	arm(kv, sc, id);
	kv->pend.install = fd >= 0;
	kv->pend.inst_fd = fd;
	kv->pend.inst_cloexec = dupfd && sc->args[1] == F_DUPFD_CLOEXEC;
	kv->pend.replace = onto;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return KF_DECIDED;
}

static enum kf_verdict deliver(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, struct kf_call *k,
			       pid_t id)
{
	if (k->install) {
		/* The guest's own call (dup*, close, exit_group) or a placeholder in place of a socket. */
		arm(kv, sc, id);
		kv->pend.install = true;
		kv->pend.inst_fd = k->inst_fd;
		kv->pend.inst_cloexec = k->inst_flags & O_CLOEXEC;
		k->inst_fd = -1;
		if (sc->nr == RSYS_NR_socket || sc->nr == RSYS_NR_accept ||
		    sc->nr == RSYS_NR_accept4) {
			int fl = kv->pend.inst_fd >= 0 ? fcntl(kv->pend.inst_fd, F_GETFL) : 0;
			bool cloexec = sc->nr == RSYS_NR_socket ? sc->args[1] & SOCK_CLOEXEC :
				       sc->nr == RSYS_NR_accept4 ? sc->args[3] & SOCK_CLOEXEC : false;

			sc->nr = RSYS_NR_eventfd2;
			sc->args[0] = 0;
			sc->args[1] = (cloexec ? EFD_CLOEXEC : 0) |
				      (fl > 0 && (fl & O_NONBLOCK) ? EFD_NONBLOCK : 0);
		}
		sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
		return KF_DECIDED;
	}
	if (k->cont)
		return cont_table(kv, sc, id);
	if (k->sig) {
		/* the result once the guest kernel sent the signal: first the thread's id */
		arm(kv, sc, id);
		kv->pend.raise = k->sig;
		kv->pend.has_result = true;
		kv->pend.result = k->ret;
		sc->nr = RSYS_NR_gettid;
		sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
		return KF_DECIDED;
	}
	sc->flags = 0;
	sc->ret = k->ret;
	return KF_DECIDED;
}

/* @pd's gettid returned @tid: its thread makes its call again as tkill(@tid, sig). Into @out. */
static void raise_next(const struct kf_pend *pd, int64_t tid, struct kf_out *out)
{
	struct kf_raise *r = NULL;
	unsigned int i;

	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_RAISES && !r; i++)
		if (!raises[i].root || (raises[i].root == gmem_root(pd->orig.cr3) && raises[i].rsp == pd->rsp))
			r = &raises[i];
	if (!r) {
		r = &raises[raises_next];
		raises_next = (raises_next + 1) % KF_RAISES;
	}
	*r = (struct kf_raise){ gmem_root(pd->orig.cr3), pd->rsp, pd->orig, pd->id, tid, pd->raise,
				pd->result };
	pthread_mutex_unlock(&kf.lock);
	memset(out->args, 0, sizeof(out->args));
	out->args[0] = (uint64_t)tid;
	out->args[1] = (uint64_t)pd->raise;
	out->rax = RSYS_NR_tkill;
	out->rip = pd->orig.rip;
}

/* Is @sc the tkill raise_next() had the thread make? Its return then gives the call's result. */
static bool raise_take(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root)
{
	struct kf_raise r = { .root = 0 };
	unsigned int i;

	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_RAISES; i++) {
		if (raises[i].root == root && raises[i].rsp == kv->cur_rsp &&
		    raises[i].orig.rip == sc->rip && (int64_t)sc->args[0] == raises[i].tid &&
		    (int)sc->args[1] == raises[i].sig) {
			r = raises[i];
			raises[i].root = 0;
			break;
		}
	}
	pthread_mutex_unlock(&kf.lock);
	if (!r.root)
		return false;
	disarm(&kv->pend);
	kv->pend.orig = r.orig;
	kv->pend.id = r.id;
	kv->pend.rsp = r.rsp;
	kv->pend.has_result = true;
	kv->pend.result = r.result;
	kv->pend.armed = true;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return true;
}

/*
 * A call of a thread with a parked call: that call made again (at a
 * slice's end, or restarted), which waits on or takes its answer; or
 * another call, and the parked one is gone. KF_PASS when it was not the
 * parked call (or that is gone), for decide() to go on with.
 */
static enum kf_verdict park_resume(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
				   pid_t id)
{
	enum kf_verdict v;
	struct kf_call *k;
	bool done;

	pthread_mutex_lock(&kf.lock);
	k = parked_of(root, kv->cur_rsp);
	if (k && (k->gone || !same_call(sc, &k->sc))) {
		if (!k->done)
			k->gone = true;
		else if (!k->gone)
			pr_warn_few("vm: guest process %d: a thread left its answered call %llu for call %llu: the answer is lost\n",
				    (int)id, (unsigned long long)k->sc.nr, (unsigned long long)sc->nr);
		unpark(k);
		if (k->done)
			recycle(k);
		k = NULL;
	}
	done = k && k->done;
	if (done)
		unpark(k);
	pthread_mutex_unlock(&kf.lock);
	if (!k)
		return KF_PASS;
	if (!done)
		return park_slice(kv, sc, k, id);
	v = deliver(kv, sc, k, id);
	pthread_mutex_lock(&kf.lock);
	recycle(k);
	pthread_mutex_unlock(&kf.lock);
	return v;
}

/* The core did not answer @kv's call @sc in time: the core keeps it, its thread waits in the guest. */
static enum kf_verdict park(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root, pid_t id)
{
	struct kf_call *k = kv->call, *old;

	pthread_mutex_lock(&kf.lock);
	if (k->done) {
		/* answered just now */
		pthread_mutex_unlock(&kf.lock);
		settle(k);
		return deliver(kv, sc, k, id);
	}
	old = parked_of(root, kv->cur_rsp);	/* gone: park_resume() dropped any other */
	if (old) {
		unpark(old);
		if (old->done)
			recycle(old);
	}
	k->parked = true;
	k->rsp = kv->cur_rsp;
	k->slice_ms = 1;
	k->pnext = kf.parked;
	kf.parked = k;
	pthread_mutex_unlock(&kf.lock);
	kv->call = NULL;
	pr_debug("vm: guest process %d: call %llu parked\n", (int)id, (unsigned long long)sc->nr);
	return park_slice(kv, sc, k, id);
}

/*
 * A parked call's slice ended with @ret (or its handler's rt_sigreturn
 * found it so; @restart: the signal's handler has SA_RESTART): true if
 * its thread is to make the call again, false if @ret stands (EINTR: the
 * parked call is gone).
 */
static bool park_back(uint64_t root, const struct kf_pend *pd, int64_t ret, bool restart)
{
	struct kf_call *k;
	bool again = ret == 0 || restart;

	pthread_mutex_lock(&kf.lock);
	k = parked_of(root, pd->rsp);
	if (k && same_call(&k->sc, &pd->orig)) {
		if (k->done)
			again = true;
		if (!again && !k->done) {
			k->gone = true;
			unpark(k);
		} else if (!again) {
			unpark(k);
			recycle(k);
		}
	}
	pthread_mutex_unlock(&kf.lock);
	return again;
}

/* Parked calls whose thread is KF_PARK_LOST_NS late are gone: the core cancels them. */
static void park_reap(void)
{
	int64_t now;
	struct kf_call *k;

	if (!__atomic_load_n(&kf.parked, __ATOMIC_RELAXED))
		return;
	now = now_ns();
	pthread_mutex_lock(&kf.lock);
	for (k = kf.parked; k; k = k->pnext)
		if (!k->gone && !k->done && now - k->slice_end > KF_PARK_LOST_NS)
			k->gone = true;	/* kept (with its key) for the thread's restart */
	pthread_mutex_unlock(&kf.lock);
}

static enum kf_verdict decide(struct kf_vcpu *kv, struct kvm_x86_syscall *sc,
			      uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t root = gmem_root(sc->cr3), va, end = 0;
	struct kf_range r[KF_RANGES];
	enum kf_verdict v;
	struct kf_call *k;
	struct kf_proc *p;
	bool write;
	pid_t id;
	int n;

	if (kv->fault_va && !same_call(sc, &kv->fault_call))
		kv->fault_va = 0;
	if (kf.qfd < 0)
		return KF_PASS;
	/* A parked call made again may not be the core's any more (a close the core let go). */
	if (parked_in(root)) {
		if (!kv->cur_rsp)
			kv->cur_rsp = rsp(arg);
		pthread_mutex_lock(&kf.lock);
		p = proc_by_root(root);
		id = p ? p->id : 0;
		pthread_mutex_unlock(&kf.lock);
		v = park_resume(kv, sc, root, id);
		if (v != KF_PASS)
			return v;
	}
	if (!core_takes(sc, root))
		return KF_PASS;
	if (!kv->cur_rsp)
		kv->cur_rsp = rsp(arg);	/* read once per call */
	k = call_get(kv);
	if (!k) {
		sc->flags = 0;
		sc->ret = -ENOMEM;
		return KF_DECIDED;
	}
	pthread_mutex_lock(&kf.lock);
	p = proc_get(root);
	id = p ? p->id : 0;
	pthread_mutex_unlock(&kf.lock);
	if (!p) {
		pr_warn_few("vm: more than %u trusted guest processes: the others' calls run in the guest (no network)\n",
			    KF_PROCS);
		return KF_PASS;
	}

	wait_load(kv, root);
	if (sc->nr == RSYS_NR_poll || sc->nr == RSYS_NR_ppoll ||
	    sc->nr == RSYS_NR_select || sc->nr == RSYS_NR_pselect6 || is_epoll_wait(sc->nr)) {
		int split = sc->nr == RSYS_NR_poll || sc->nr == RSYS_NR_ppoll ?
			    split_poll(kv, sc, root, id) :
			    is_epoll_wait(sc->nr) ? split_epoll(kv, sc, root, id) :
			    split_select(kv, sc, root, id);

		if (split > 0 && !(kv->pend.slice || kv->pend.sslice))
			kv->wait_call.nr = 0;	/* answered: the wait is over */
		wait_store(kv, root);
		if (split)
			return split > 0 ? KF_DECIDED : KF_PASS;
	}
	if (kv->wait_call.nr) {
		kv->wait_call.nr = 0;	/* the thread went on to another call */
		wait_store(kv, root);
	}

	/* Its buffers first, unless this is the call made again after their fault-in. */
	if ((fdargs(sc->nr) & RSYS_A0) && is_remote(root, (int)sc->args[0])) {
		n = call_ranges(sc, root, r);
		va = first_fault(root, r, n, &write, &end);
		if (va && fault_in(kv, sc, id, va, end - va, write))
			return KF_DECIDED;
	}
	kv->fault_va = 0;

	if (!core_ask(k, sc, id, root, NULL, 0, KF_HOLD_NS))
		return park(kv, sc, root, id);
	return deliver(kv, sc, k, id);
}

/* Does @sc make a process with a new address space (fork, clone or clone3 without CLONE_VM)? */
static bool is_fork(const struct kvm_x86_syscall *sc, uint64_t root)
{
	uint64_t flags;

	switch (sc->nr) {
	case RSYS_NR_fork:
		return true;
	case RSYS_NR_clone:
		return !(sc->args[0] & KF_CLONE_VM);
	case RSYS_NR_clone3:	/* struct clone_args starts with its flags */
		return !gmem_read(kf.gm, root, sc->args[0], &flags, sizeof(flags)) &&
		       !(flags & KF_CLONE_VM);
	}
	return false;
}

/*
 * Keep a copy of @p's table (or of @t: a vfork child's), without its
 * close-on-exec vfds if @exec, for a child found by @gpa or @lineage.
 * Under kf.lock.
 */
static void fork_keep(const struct kf_proc *p, const struct kf_table *t, uint64_t gpa,
		      uint64_t lineage, bool exec)
{
	static const struct kf_proc none = { .id = KF_NO_PROC };
	struct kf_fork *f = fork_slot(now_ns());

	if (!p)
		p = &none;
	if (table_copy(&f->t, t ? t : &p->t, exec))
		return;
	f->parent = p->id;
	f->gpa = gpa;
	f->lineage = lineage;
	f->when = now_ns();
	/* exec resets handlers (ignored signals stay ignored: no handler either) */
	f->handled = exec ? 0 : p->handled;
	f->restart = exec ? 0 : p->restart;
	f->siginfo = exec ? 0 : p->siginfo;
}

/* Trusted call @sc (the caller's token at kv->token) may fork: keep its table for the child. */
static void fork_note(struct kf_vcpu *kv, const struct kvm_x86_syscall *sc, uint64_t root)
{
	uint64_t gpa;

	if (!kv->token || !is_fork(sc, root) ||
	    gmem_translate(kf.gm, root, kv->token & ~(KF_PAGE - 1), false, &gpa))
		return;
	/* even with nothing to inherit: the child is then known to be new (fork_adopt) */
	pthread_mutex_lock(&kf.lock);
	fork_keep(proc_by_root(root), NULL, gpa, 0, false);
	pthread_mutex_unlock(&kf.lock);
}

/*
 * A trusted process seen anew (its token at kv->token): a fork's child
 * takes the table kept for it (by the token's page), the new image of a
 * vfork child's execve the one kept by @lineage (if not 0). A table the
 * front end still has for the child's address space is a process's that
 * ended unseen (killed by a signal) and had the same page-table root: it
 * goes, unless it is the parent's own (the parent seen anew, which shares
 * the token's page). Was it a fork's child?
 */
static bool fork_adopt(struct kf_vcpu *kv, uint64_t root, uint64_t lineage)
{
	struct kf_fork *f = NULL;
	struct kf_proc *p, *q;
	bool child;
	uint64_t gpa;
	unsigned int i;
	int64_t now;

	if (gmem_translate(kf.gm, root, kv->token & ~(KF_PAGE - 1), false, &gpa))
		return false;
	now = now_ns();
	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_FORKS; i++)
		if (forks[i].parent && (lineage ? forks[i].lineage == lineage : forks[i].gpa == gpa) &&
		    now - forks[i].when <= KF_FORK_TTL_NS && (!f || forks[i].when > f->when))
			f = &forks[i];
	q = f ? proc_by_root(root) : NULL;
	if (q && q->id != f->parent) {
		pr_debug("vm: guest process %d ended unseen: its address space is a new process's\n",
			 (int)q->id);
		proc_end(q);
		q = NULL;
	}
	child = f && !q;
	if (child) {
		p = table_used(&f->t) || f->handled ? proc_get(root) : NULL;
		if (p) {
			p->t = f->t;
			f->t = (struct kf_table){ 0 };
			p->handled = f->handled;
			p->restart = f->restart;
			p->siginfo = f->siginfo;
			pr_debug("vm: guest process %d: %s, guest process %d here\n", (int)f->parent,
				 lineage ? "a vfork child's exec" : "a fork's child", (int)p->id);
		}
		fork_free(f);
	}
	pthread_mutex_unlock(&kf.lock);
	return child;
}

/* --- execve and vfork: the table goes to the new image --- */

#define KF_TOKEN_LEN	(sizeof(RSYS_VM_TOKEN_ENV) - 1 + RSYS_VM_TOKEN_LEN)
#define KF_ENVP_MAX	4096	/* environment strings looked at for the token */

/*
 * Where the lineage digits are in the token string that execve @sc passes
 * on in its environment (the caller's own copy of the token is at
 * kv->token), or 0: none passed on (the new image is not trusted), or not
 * in the init's form (RSYS_VM_LINEAGE_LEN digits, then the string's end).
 */
static uint64_t exec_lineage_va(const struct kf_vcpu *kv, const struct kvm_x86_syscall *sc,
				uint64_t root)
{
	uint64_t envp = sc->nr == RSYS_NR_execveat ? sc->args[3] : sc->args[2];
	char tok[KF_TOKEN_LEN], s[KF_TOKEN_LEN + RSYS_VM_LINEAGE_LEN + 1];
	uint64_t ptr[64];
	unsigned int i, j;

	if (!envp || gmem_read(kf.gm, root, kv->token, tok, sizeof(tok)))
		return 0;
	for (i = 0; i < KF_ENVP_MAX; i += 64) {
		if (!gmem_read_holes(kf.gm, root, envp + i * 8, ptr, sizeof(ptr)))
			return 0;
		for (j = 0; j < 64 && ptr[j]; j++) {
			if (!gmem_read_holes(kf.gm, root, ptr[j], s, sizeof(s)) ||
			    memcmp(s, tok, sizeof(tok)))
				continue;
			if (strspn(s + KF_TOKEN_LEN, "0123456789abcdef") != RSYS_VM_LINEAGE_LEN ||
			    s[sizeof(s) - 1])
				return 0;
			return ptr[j] + KF_TOKEN_LEN;
		}
		if (j < 64)
			return 0;
	}
	return 0;
}

/* A new lineage: not 0, not guessable from the last (splitmix64 of a random key). */
static uint64_t lineage_new(void)
{
	static uint64_t n;
	uint64_t x = kf_lineage_key + __atomic_add_fetch(&n, 1, __ATOMIC_RELAXED) *
		     0x9e3779b97f4a7c15ULL;

	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x ? x : 1;
}

/*
 * Trusted execve @sc: the new image takes the table of its address space
 * without the close-on-exec vfds (the guest kernel closes their
 * placeholders), under the same id in the core, which resets its vfd
 * cache now (sock_exec) and, at the new image's first call, closes at the
 * delegate what the exec let go last (sock_exec_done), as in the host
 * tier. The front end finds the new image by a lineage it writes after
 * the token in the string execve passes on (include/rsys/vm.h); if the
 * call comes back, it failed and the table stays (exec_back). A vfork
 * child's exec leaves its parent's table and a copy for its image
 * (fork_keep). KF_PASS when there is nothing to carry.
 */
static enum kf_verdict exec_start(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
				  bool vfork, uint64_t (*rsp)(void *arg), void *arg)
{
	char hex[RSYS_VM_LINEAGE_LEN + 1];
	uint64_t va, lineage = 0, fault = 0, end;
	struct kf_range r;
	struct kf_proc *p;
	struct kf_call *k;
	bool write;
	pid_t id;

	if (kv->fault_va && !same_call(sc, &kv->fault_call))
		kv->fault_va = 0;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	id = p && table_used(vfork ? &p->vft : &p->t) ? p->id : 0;
	/* the image goes (if the call works): its calls are not decided in KVM meanwhile */
	if (p && !vfork)
		mirror_hold(p);
	else if (!vfork)
		kb_proc_del(root);
	pthread_mutex_unlock(&kf.lock);
	if (!id || !kv->token)
		return KF_PASS;
	if (!kv->cur_rsp)
		kv->cur_rsp = rsp(arg);
	va = exec_lineage_va(kv, sc, root);
	if (va) {
		/* a page shared with a fork's parent or child (copy-on-write) is made the caller's own first */
		r = (struct kf_range){ .va = va, .len = RSYS_VM_LINEAGE_LEN, .write = true };
		fault = first_fault(root, &r, 1, &write, &end);
		if (fault && fault_in(kv, sc, id, fault, end - fault, true))
			return KF_DECIDED;
		lineage = lineage_new();
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)lineage);
		if (fault || gmem_write(kf.gm, root, va, hex, RSYS_VM_LINEAGE_LEN))
			lineage = 0;
	}
	kv->fault_va = 0;
	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(id);
	if (p && vfork && lineage)
		fork_keep(p, &p->vft, 0, lineage, true);
	if (p && !vfork) {
		if (!p->exec_when)
			kf_execs++;
		p->exec_when = now_ns();
		p->lineage = lineage;
	}
	pthread_mutex_unlock(&kf.lock);
	pr_debug("vm: guest process %d: execve%s, its table %s\n", (int)id, vfork ? " (vfork child)" : "",
		 lineage ? "goes to the new image" : "cannot go to the new image (no token digits to write)");
	if (vfork)
		return KF_PASS;
	k = call_get(kv);
	if (k)
		core_ask(k, sc, id, root, NULL, 0, 0);	/* sock_exec: the answer is "run it" */
	run_returning(kv, sc, id, rsp, arg);
	kv->pend.exec = true;
	return KF_DECIDED;
}

/* An execve came back: it failed, the table stays the process's. */
static void exec_back(const struct kf_pend *pd)
{
	struct kf_proc *p;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(pd->id);
	if (p && p->exec_when && p->root == gmem_root(pd->orig.cr3)) {
		p->exec_when = 0;
		p->lineage = 0;
		kf_execs--;
	}
	pthread_mutex_unlock(&kf.lock);
}

/* A trusted process seen anew (its token at kv->token): the new image of an execve takes its table. */
static void exec_adopt(struct kf_vcpu *kv, uint64_t root)
{
	char s[RSYS_VM_LINEAGE_LEN + 1] = "", *end;
	struct kf_proc *p = NULL, *q;
	uint64_t lineage;
	unsigned int i;

	if (gmem_read(kf.gm, root, kv->token + KF_TOKEN_LEN, s, RSYS_VM_LINEAGE_LEN))
		return;
	lineage = strtoull(s, &end, 16);
	if (!lineage || end != s + RSYS_VM_LINEAGE_LEN || fork_adopt(kv, root, lineage))
		return;
	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_PROCS && !p; i++)
		if (kf.procs[i].root && kf.procs[i].exec_when && kf.procs[i].lineage == lineage &&
		    kf.procs[i].root != root)
			p = &kf.procs[i];
	if (p) {
		/* a new address space: a process the front end still has there ended unseen */
		q = proc_by_root(root);
		if (q)
			proc_end(q);
		root_clear(p->root);
		p->root = root;
		for (i = 0; i < p->t.n; i++)
			if (p->t.v[i].cloexec)
				shadow_drop(p, i);
		p->handled = p->restart = p->siginfo = 0;
		p->exec_when = 0;
		p->lineage = 0;
		p->vforks = 0;
		table_free(&p->vft);
		free(p->ep);		/* epoll instances are close-on-exec, nearly always */
		p->ep = NULL;
		p->nep = 0;
		kf_execs--;
		pr_debug("vm: guest process %d: its new image (execve) took its table\n", (int)p->id);
	}
	pthread_mutex_unlock(&kf.lock);
}

/* Execs whose new image made no trusted call in time (it is not trusted): their tables go. */
static void exec_reap(void)
{
	int64_t now = now_ns();
	unsigned int i;

	pthread_mutex_lock(&kf.lock);
	for (i = 0; i < KF_PROCS && kf_execs; i++) {
		if (kf.procs[i].root && kf.procs[i].exec_when &&
		    now - kf.procs[i].exec_when > KF_FORK_TTL_NS) {
			pr_debug("vm: guest process %d: no trusted image took its table after execve\n",
				 (int)kf.procs[i].id);
			proc_end(&kf.procs[i]);
		}
	}
	pthread_mutex_unlock(&kf.lock);
}

/* Does @sc make a vfork child (CLONE_VM | CLONE_VFORK: it runs in the caller's address space until it execs or exits)? */
static bool is_vfork(const struct kvm_x86_syscall *sc, uint64_t root)
{
	const uint64_t both = KF_CLONE_VM | KF_CLONE_VFORK;
	uint64_t flags;

	switch (sc->nr) {
	case RSYS_NR_vfork:
		return true;
	case RSYS_NR_clone:
		return (sc->args[0] & both) == both;
	case RSYS_NR_clone3:
		return !gmem_read(kf.gm, root, sc->args[0], &flags, sizeof(flags)) &&
		       (flags & both) == both;
	}
	return false;
}

/*
 * Trusted vfork @sc: until it returns, the child runs in this address
 * space, on its own stack (clone's, clone3's) or below the parent's
 * (vfork), with its own copy of the fd table: its calls there are told
 * apart by their stack pointer and act on that copy (vfork_child).
 */
static enum kf_verdict vfork_start(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
				   uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t lo, hi, ca[7];		/* struct clone_args up to stack_size */
	struct kf_proc *p;
	pid_t id = 0;

	if (!kv->cur_rsp)
		kv->cur_rsp = rsp(arg);
	hi = kv->cur_rsp;
	if (sc->nr == RSYS_NR_clone && sc->args[1])
		hi = sc->args[1];
	lo = hi - KF_VFORK_STACK;
	if (sc->nr == RSYS_NR_clone3 && !gmem_read(kf.gm, root, sc->args[0], ca, sizeof(ca)) && ca[5]) {
		lo = ca[5];
		hi = ca[5] + ca[6];
	}
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	if (p && table_used(&p->t)) {
		if (!p->vforks && !table_copy(&p->vft, &p->t, false)) {
			p->vf_lo = lo;
			p->vf_hi = hi;
		}
		p->vforks++;
		mirror_hold(p);
		id = p->id;
	}
	pthread_mutex_unlock(&kf.lock);
	if (!id)
		return KF_PASS;
	run_returning(kv, sc, id, rsp, arg);
	kv->pend.vfork = true;
	return KF_DECIDED;
}

static void vfork_back(const struct kf_pend *pd)
{
	struct kf_proc *p;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(pd->id);
	if (p && p->vforks && !--p->vforks)
		table_free(&p->vft);
	pthread_mutex_unlock(&kf.lock);
}

/* Is the call with stack pointer @sp in @root a vfork child's? */
static bool vfork_child_calls(uint64_t root, uint64_t sp)
{
	struct kf_proc *p;
	bool ret;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	ret = p && p->vforks && p->vft.n && sp >= p->vf_lo && sp <= p->vf_hi;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

/* Set or clear close-on-exec on the remote vfds among [@lo, @hi] of @t. */
static void table_cloexec(struct kf_table *t, uint64_t lo, uint64_t hi, bool on)
{
	uint64_t i;

	for (i = lo; i < t->n && i <= hi; i++)
		if (t->v[i].fd >= 0)
			t->v[i].cloexec = on;
}

/* Forget the remote vfds among [@lo, @hi] of @t. */
static void table_drop(struct kf_table *t, uint64_t lo, uint64_t hi)
{
	uint64_t i;

	for (i = lo; i < t->n && i <= hi; i++) {
		if (t->v[i].fd >= 0)
			close(t->v[i].fd);
		t->v[i] = (struct kf_shadow){ .fd = -1 };
	}
}

/*
 * Call @sc of a vfork child: the guest kernel runs it on the child's own
 * fd table (placeholders closed or dup'ed there leave the parent's alone),
 * and the front end follows on the child's copy what its exec will hand
 * on (posix_spawn's file actions, a close_range of subprocess's
 * close_fds). Nothing of it goes to the core: the parent's sockets stay.
 */
static enum kf_verdict vfork_child(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root,
				   uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t a0 = sc->args[0], a1 = sc->args[1], a2 = sc->args[2];
	struct kf_table *t;
	struct kf_proc *p;
	int fd;

	if (sc->nr == RSYS_NR_execve || sc->nr == RSYS_NR_execveat)
		return exec_start(kv, sc, root, true, rsp, arg);
	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	t = p ? &p->vft : NULL;
	switch (t ? sc->nr : 0) {
	case RSYS_NR_close:
		table_drop(t, a0, a0);
		break;
	case RSYS_NR_close_range:
		if (a0 <= a1 && (a2 & CLOSE_RANGE_CLOEXEC))
			table_cloexec(t, a0, a1, true);
		else if (a0 <= a1)
			table_drop(t, a0, a1);
		break;
	case RSYS_NR_dup2:
	case RSYS_NR_dup3:
		if (a0 == a1 || a1 >= KF_VFD_MAX)
			break;
		fd = a0 < t->n && t->v[a0].fd >= 0 ? fcntl(t->v[a0].fd, F_DUPFD_CLOEXEC, 0) : -1;
		table_drop(t, a1, a1);
		if (fd >= 0 && a1 < t->n)
			t->v[a1] = (struct kf_shadow){ .fd = fd, .cloexec = sc->nr == RSYS_NR_dup3 &&
								       (a2 & O_CLOEXEC) };
		else if (fd >= 0)
			close(fd);	/* beyond the parent's table: not followed */
		break;
	case RSYS_NR_fcntl:
		if (a1 == F_SETFD)
			table_cloexec(t, a0, a0, a2 & FD_CLOEXEC);
		break;
	case RSYS_NR_ioctl:
		if (a1 == FIOCLEX || a1 == FIONCLEX)
			table_cloexec(t, a0, a0, a1 == FIOCLEX);
		break;
	}
	pthread_mutex_unlock(&kf.lock);
	return KF_PASS;
}

/* Is a vfork child running in address space @root? */
static bool vforked(uint64_t root)
{
	struct kf_proc *p;
	bool ret;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_root(root);
	ret = p && p->vforks;
	pthread_mutex_unlock(&kf.lock);
	return ret;
}

/*
 * A trusted process seen anew in address space @root holds the token at
 * @token_va: a table the front end has there for a process that held it
 * elsewhere is a process's that ended unseen (killed by a signal) whose
 * page-table root the new one got (an exec's image: its stack is placed
 * anew). Not when that one's execve is in flight (the new image takes it),
 * nor when the token is where it was (the same process searched again,
 * after a failed execve, say; a fork's child: fork_adopt).
 */
static void proc_stale(uint64_t root, uint64_t token_va)
{
	struct kf_proc *q;

	pthread_mutex_lock(&kf.lock);
	q = proc_by_root(root);
	if (q && q->token_va && q->token_va != token_va && !q->exec_when) {
		pr_debug("vm: guest process %d ended unseen: its address space is a new process's\n",
			 (int)q->id);
		proc_end(q);
	}
	pthread_mutex_unlock(&kf.lock);
}

/* Note the handler rt_sigaction @sc gives its signal, and its SA_RESTART and SA_SIGINFO (for restarts()). */
static void note_sigaction(const struct kvm_x86_syscall *sc, uint64_t root)
{
	uint64_t act[2];	/* struct kernel_sigaction: handler, flags */
	int sig = (int)sc->args[0];
	struct kf_proc *p;
	uint64_t bit;

	if (!sc->args[1] || sig < 1 || sig > 64 ||
	    gmem_read(kf.gm, root, sc->args[1], act, sizeof(act)))
		return;
	bit = 1ULL << (sig - 1);
	pthread_mutex_lock(&kf.lock);
	/* a process the core does not know yet and that sets no handler need not be known */
	p = act[0] > 1 ? proc_get(root) : proc_by_root(root);
	if (p) {
		p->handled &= ~bit;
		p->restart &= ~bit;
		p->siginfo &= ~bit;
		if (act[0] > 1) {	/* neither SIG_DFL nor SIG_IGN */
			p->handled |= bit;
			p->restart |= act[1] & KF_SA_RESTART ? bit : 0;
			p->siginfo |= act[1] & KF_SA_SIGINFO ? bit : 0;
		}
	}
	pthread_mutex_unlock(&kf.lock);
}

/*
 * Does the handler that interrupted a call of process @id restart it
 * (SA_RESTART)? The frame says which signal it was (@sig) only when that
 * one's handler has SA_SIGINFO (else that part of the frame is whatever
 * the stack held): decided when all handlers agree, or all have
 * SA_SIGINFO; else, and for handlers the front end did not see set (a
 * process forked before), EINTR.
 */
static bool restarts(pid_t id, int sig)
{
	uint64_t h = 0, r = 0, i = 0;
	struct kf_proc *p;

	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(id);
	if (p) {
		h = p->handled;
		r = p->restart;
		i = p->siginfo;
	}
	pthread_mutex_unlock(&kf.lock);
	if (!h || !r)
		return false;
	if (r == h)
		return true;
	return i == h && sig >= 1 && sig <= 64 && (r & 1ULL << (sig - 1));
}

/*
 * A guest file took remote vfd @vfd's place (@pd: a dup2 of one onto it
 * worked): the core closes the socket as for a close() of @vfd, if that
 * was its last vfd, before the thread goes on (a listener's port is free
 * at once, as in Linux); the shadow lets it go in any case.
 */
static void replaced(const struct kf_pend *pd, int vfd)
{
	struct kvm_x86_syscall c = pd->orig;
	struct kf_call *k = call_new();
	struct kf_proc *p;

	c.nr = RSYS_NR_close;
	c.args[0] = (uint64_t)vfd;
	if (k && !core_ask(k, &c, pd->id, gmem_root(pd->orig.cr3), NULL, 0, 0))
		k = NULL;	/* not answered: cannot be (no time limit) */
	pthread_mutex_lock(&kf.lock);
	p = proc_by_id(pd->id);
	if (p)
		shadow_drop(p, vfd);
	if (k)
		recycle(k);
	pthread_mutex_unlock(&kf.lock);
}

/*
 * Resolve @pd, whose call returned @ret, into @out: the program's memory
 * and arguments as they were, the call made again (a fault-in, the next
 * slice of a wait, a parked call's answer) or its result standing. @sig
 * -1: at its SYSRET; else it returned by IRET into a handler, seen at the
 * handler's rt_sigreturn, and @sig is the frame's signal number (0 if not
 * plausible; see restarts()).
 */
static void resolve(struct kf_pend *pd, int64_t ret, int sig, struct kf_out *out)
{
	uint64_t root = gmem_root(pd->orig.cr3);
	struct kf_proc *p;
	bool again = pd->retry;

	if (pd->slice || pd->sslice) {
		/* nothing local in this slice and time left: the whole call again, remote half first */
		again = ret == 0 && (pd->wait_deadline == INT64_MAX || now_ns() < pd->wait_deadline);
		/*
		 * A select that found something, or timed out: the kernel's
		 * sets stand (the remote fds' bits clear) and only the
		 * timeout, saved last, is the program's again; an error or
		 * another round: all of it.
		 */
		if (pd->sslice && ret >= 0 && !again) {
			pd->saved[0] = pd->saved[pd->nsaved - 1];
			pd->nsaved = 1;
		}
		restore_saved(pd);	/* a select's sets and timeout, a ppoll slice's timespec */
		if (pd->slice)
			unhide(pd);
		pd->slice = pd->sslice = false;
		if (!again)
			wait_end(root, pd->rsp);
	}
	if (pd->park)
		again = park_back(root, pd, ret, sig >= 0 && restarts(pd->id, sig));
	out->rax = pd->has_result ? pd->result : ret;
	out->rip = pd->orig.rip + 2;
	memcpy(out->args, pd->orig.args, sizeof(out->args));
	if (pd->raise && ret > 0 && sig < 0) {
		raise_next(pd, ret, out);
	} else if (again) {
		/* back to the SYSCALL instruction with the call's number and arguments */
		out->rax = pd->orig.nr;
		out->rip = pd->orig.rip;
	} else if (pd->install && ret >= 0 && pd->inst_fd >= 0) {
		pthread_mutex_lock(&kf.lock);
		p = proc_by_id(pd->id);
		if (p && !shadow_set(p, (int)ret, pd->inst_fd, pd->inst_cloexec))
			pd->inst_fd = -1;	/* the shadow's now */
		pthread_mutex_unlock(&kf.lock);
	} else if (pd->epctl && ret == 0) {
		ep_apply(pd);
	} else if (pd->replace && ret >= 0) {
		replaced(pd, (int)ret);
	}
	disarm(pd);
}

/*
 * struct rt_sigframe (arch/x86/include/asm/sigframe.h) as rt_sigreturn
 * finds it, at the stack pointer of the call (the restorer's SYSCALL,
 * after its handler's RET took pretcode): the sigcontext of struct
 * ucontext after its flags, link and stack_t; siginfo after the ucontext.
 */
#define KF_FRAME_MCTX	40
#define KF_FRAME_SIGNO	304
_Static_assert(sizeof(struct sigcontext) == 256, "x86-64 struct sigcontext");

/*
 * rt_sigreturn of a trusted thread: if the handler interrupted a call
 * that waits for its SYSRET, that call is resolved in the signal frame,
 * as its SYSRET would have been (the frame holds its registers).
 */
static void frame_resolve(struct kf_vcpu *kv, uint64_t root)
{
	uint64_t at = kv->cur_rsp + KF_FRAME_MCTX;
	struct kvm_x86_syscall call;
	struct sigcontext m;
	pid_t id;
	struct kf_out out;
	struct kf_pend pd;
	int32_t sig;

	if (gmem_read(kf.gm, root, at, &m, sizeof(m)) ||
	    gmem_read(kf.gm, root, kv->cur_rsp + KF_FRAME_SIGNO, &sig, sizeof(sig)) ||
	    !take(root, m.rip - 2, m.rsp, &pd))
		return;
	call = pd.orig;
	id = pd.id;
	resolve(&pd, (int64_t)m.rax, sig >= 1 && sig <= 64 ? sig : 0, &out);
	pr_debug("vm: guest process %d: call %llu interrupted by signal %d: %s\n", (int)id,
		 (unsigned long long)call.nr, sig, out.rip == call.rip ? "made again" : "ends");
	m.rax = (uint64_t)out.rax;
	m.rip = out.rip;
	KF_PUT_ARGS(m, out);
	if (gmem_write(kf.gm, root, at, &m, sizeof(m)))
		pr_warn_few("vm: cannot write a signal frame: an interrupted call's registers are not restored\n");
}

enum kf_verdict kf_call(struct kf_vcpu *kv, struct kvm_x86_syscall *sc,
			uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t root = gmem_root(sc->cr3), nr = sc->nr;
	enum kf_verdict v;
	struct kf_call *k;
	struct kf_wait *w;
	bool child;

	/* A new call of a thread whose call waits for its SYSRET: that one came back by IRET. */
	kv->cur_rsp = 0;
	if (kf.qfd < 0)
		return KF_PASS;
	park_reap();
	if (kv->fresh_token && kv->token) {
		proc_stale(root, kv->token);
		if (!fork_adopt(kv, root, 0))
			exec_adopt(kv, root);
	}
	if (__atomic_load_n(&kf_execs, __ATOMIC_RELAXED))
		exec_reap();
	/* a vfork child's calls are its own: not its parent's forks or handlers */
	child = vforked(root) && vfork_child_calls(root, kv->cur_rsp = rsp(arg));
	if (!child)
		fork_note(kv, sc, root);
	if (sc->nr == RSYS_NR_rt_sigaction && !child)
		note_sigaction(sc, root);
	if (root_waits(root)) {
		kv->cur_rsp = rsp(arg);
		if (sc->nr == RSYS_NR_rt_sigreturn)
			frame_resolve(kv, root);
		forget_thread(root, kv->cur_rsp);
	}
	if (sc->nr == RSYS_NR_tkill) {
		if (!kv->cur_rsp)
			kv->cur_rsp = rsp(arg);
		if (raise_take(kv, sc, root)) {
			commit(kv);
			return KF_DECIDED;
		}
	}
	if (sc->nr == RSYS_NR_restart_syscall) {
		/* the guest kernel restarts a slice a signal stopped: it is the parked call or wait again */
		if (!kv->cur_rsp)
			kv->cur_rsp = rsp(arg);
		pthread_mutex_lock(&kf.lock);
		k = parked_of(root, kv->cur_rsp);
		w = wait_find(root, kv->cur_rsp);
		if (k || w) {
			const struct kvm_x86_syscall *c = k ? &k->sc : &w->call;

			pr_debug("vm: restart_syscall: call %llu again\n", (unsigned long long)c->nr);
			sc->nr = c->nr;
			memcpy(sc->args, c->args, sizeof(sc->args));
		}
		pthread_mutex_unlock(&kf.lock);
	}
	if (child)
		v = vfork_child(kv, sc, root, rsp, arg);
	else if (sc->nr == RSYS_NR_execve || sc->nr == RSYS_NR_execveat)
		v = exec_start(kv, sc, root, false, rsp, arg);
	else if (is_vfork(sc, root))
		v = vfork_start(kv, sc, root, rsp, arg);
	else if ((sc->nr == RSYS_NR_exit_group || sc->nr == RSYS_NR_exit) && vforked(root))
		v = KF_PASS;	/* a vfork child's exit: its parent's table and remote sockets stay */
	else if (sc->nr == RSYS_NR_epoll_ctl && is_remote(root, (int)sc->args[2]))
		v = ep_ctl(kv, sc, root, rsp, arg);
	else if (sc->nr == RSYS_NR_close && ep_forget(root, (int)sc->args[0]))
		v = KF_PASS;
	else
		v = decide(kv, sc, rsp, arg);
	if (kv->pend.armed)
		commit(kv);
	/* the fast path: not as it ends or hands its table on */
	proc_seen(root, kv->token, !child && nr != RSYS_NR_exit && nr != RSYS_NR_exit_group &&
		  nr != RSYS_NR_execve && nr != RSYS_NR_execveat);
	return v;
}

int kf_return(int vcpu_fd, struct kvm_x86_syscall *sc)
{
	uint64_t root = gmem_root(sc->cr3);
	struct kvm_regs regs;
	struct kf_out out;
	struct kf_pend pd;

	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs))
		return -errno;
	if (!take(root, sc->rip, regs.rsp, &pd))
		return 0;	/* not the front end's (--syscalls printing its own) */
	resolve(&pd, sc->ret, -1, &out);
	proc_seen(root, 0, true);
	/* the answer KVM gives this SYSRET's RAX */
	sc->ret = out.rax;
	if (out.rip != sc->rip + 2 || memcmp(out.args, sc->args, sizeof(out.args))) {
		regs.rax = (uint64_t)out.rax;
		regs.rcx = out.rip;
		KF_PUT_ARGS(regs, out);
		if (ioctl(vcpu_fd, KVM_SET_REGS, &regs))
			return -errno;
	}
	return 1;
}
