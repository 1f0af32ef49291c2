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
 * time is up (split_poll, split_select).
 *
 * Calls that wait for their SYSRET (struct kf_pend: a placeholder's
 * number, a fault-in's call made again, a slice's end) are kept per VM
 * and found by RIP, RSP and CR3, as KVM keeps them (kvm-patch 14), so a
 * task preempted before its return, or resumed on another vCPU, keeps its.
 *
 * A guest process is its address space (page-table root): its threads
 * share one table. Not yet: tables across fork (a child starts with none,
 * its inherited placeholders are plain eventfds to it) and execve (the
 * table ends with the old address space), signals into the guest (SIGPIPE,
 * a signal ending a blocked remote call) and blocking without stalling the
 * vCPU: a remote call that blocks holds its vCPU until it is answered.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/kvm.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <rsys/limits.h>
#include <rsys/policy.h>
#include <rsys/proto.h>
#include <rsys/syscalls.h>

#include "fdcache.h"
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
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_READ	22
#define MADV_POPULATE_WRITE	23
#endif

/* One guest process the core knows: its id there and its shadow table. */
struct kf_proc {
	uint64_t root;			/* gmem_root of its address space; 0: free */
	pid_t id;			/* tid and tgid in the core */
	int exit_fd;			/* eventfd written when it ends */
	unsigned int n;
	int *fds;			/* per vfd: the monitor's placeholder end, or -1 */
};

/*
 * A call on its way through the core, one per vCPU (struct kf_vcpu): the
 * core may still look at it (sv_call.id) a moment after it is answered.
 */
struct kf_call {
	struct kf_call *next;
	struct kvm_x86_syscall sc;
	pid_t id;
	uint64_t root;
	pthread_cond_t cond;
	bool done;			/* answered (or installing): the vCPU goes on */
	bool cont;
	int64_t ret;
	bool install;			/* the guest runs it (or a placeholder) for the vfd */
	int inst_fd;
	void *scratch;			/* a made-up call's memory, at KF_SCRATCH_VA */
	size_t scratch_len;
};

static struct {
	pthread_mutex_t lock;		/* procs, their tables, calls' answers */
	const struct gmem *gm;
	const struct sv *sv;
	struct kf_proc procs[KF_PROCS];
	pid_t next_id;
	struct kf_call *head, **tail;	/* calls for next() */
	int qfd;			/* eventfd: the queue has calls */
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
	p->n = 0;
	p->fds = NULL;
	return p;
}

static int shadow_get(const struct kf_proc *p, int vfd)
{
	return vfd >= 0 && (unsigned int)vfd < p->n ? p->fds[vfd] : -1;
}

/* Put @fd at @vfd (closing what was there); -ENOMEM or -EMFILE (beyond KF_VFD_MAX). Under kf.lock. */
static int shadow_set(struct kf_proc *p, int vfd, int fd)
{
	unsigned int n;
	int *fds;

	if (vfd < 0 || vfd >= KF_VFD_MAX)
		return -EMFILE;
	if ((unsigned int)vfd >= p->n) {
		n = p->n ? p->n : 64;
		while (n <= (unsigned int)vfd)
			n *= 2;
		fds = realloc(p->fds, n * sizeof(*fds));
		if (!fds)
			return -ENOMEM;
		memset(fds + p->n, 0xff, (n - p->n) * sizeof(*fds));
		p->fds = fds;
		p->n = n;
	}
	if (p->fds[vfd] >= 0)
		close(p->fds[vfd]);
	p->fds[vfd] = fd;
	return 0;
}

static void shadow_drop(struct kf_proc *p, int vfd)
{
	if (vfd >= 0 && (unsigned int)vfd < p->n && p->fds[vfd] >= 0) {
		close(p->fds[vfd]);
		p->fds[vfd] = -1;
	}
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
	if (fd >= 0)
		fl = fcntl(fd, F_GETFL);
	pthread_mutex_unlock(&kf.lock);
	return fl < 0 ? 0 : fl;
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
	if (p && p->n)
		vfds = malloc(p->n * sizeof(*vfds));
	for (i = 0; vfds && i < p->n; i++)
		if (p->fds[i] >= 0)
			vfds[n++] = i;
	pthread_mutex_unlock(&kf.lock);
	if (p && p->n && !vfds)
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

static bool kv_answer(struct sv_call *c, int64_t ret, bool cont)
{
	struct kf_call *k = kcall(c);

	pthread_mutex_lock(&kf.lock);
	k->ret = ret;
	k->cont = cont;
	k->done = true;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&kf.lock);
	return true;
}

/* Its vCPU waits in the call until it is answered: valid until then. */
static bool kv_valid(const struct sv_call *c)
{
	bool done;

	pthread_mutex_lock(&kf.lock);
	done = kcall(c)->done;
	pthread_mutex_unlock(&kf.lock);
	return !done;
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

	(void)newfd_flags;
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
	p = proc_by_id(k->id);
	if (p && vfd >= 0)
		shadow_drop(p, vfd);
	if (k->inst_fd >= 0)
		close(k->inst_fd);
	k->inst_fd = copy;
	k->install = true;
	if (answer) {
		k->done = true;
		pthread_cond_signal(&k->cond);
	}
	pthread_mutex_unlock(&kf.lock);
	return answer ? SV_ADDFD_LATER : vfd;
}

static void kv_signal(struct sv_call *c, int sig)
{
	pr_debug("vm: signal %d for guest process %d not delivered (not supported yet)\n", sig,
		 (int)c->tgid);
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
};

/* --- the vCPU side --- */

int kf_start(struct sv *sv, const struct gmem *m)
{
	int ret;

	kf.gm = m;
	kf.sv = sv;
	kf.tail = &kf.head;
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
	unsigned int i, v;

	sv_stop(sv);
	for (i = 0; i < KF_PROCS; i++) {
		if (!kf.procs[i].root)
			continue;
		for (v = 0; v < kf.procs[i].n; v++)
			shadow_drop(&kf.procs[i], v);
		free(kf.procs[i].fds);
		close(kf.procs[i].exit_fd);
		kf.procs[i].root = 0;
	}
	if (kf.qfd >= 0)
		close(kf.qfd);
	kf.qfd = -1;
}

void kf_mm_gone(uint64_t cr3)
{
	uint64_t one = 1, root = gmem_root(cr3);
	struct kf_proc *p;
	unsigned int v;

	if (kf.qfd < 0)
		return;
	pthread_mutex_lock(&kf.lock);
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
	p = proc_by_root(root);
	if (p) {
		for (v = 0; v < p->n; v++)
			shadow_drop(p, v);
		free(p->fds);
		p->fds = NULL;
		p->n = 0;
		/* the core forgets it (EV_PROC) once it reads this */
		if (write(p->exit_fd, &one, sizeof(one)) != sizeof(one))
			pr_debug("vm: exit event: %s\n", err_str(errno));
		close(p->exit_fd);
		p->root = 0;
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

/* Hand @k to the supervisor and wait for its answer. */
static void core_run(struct kf_call *k)
{
	uint64_t one = 1;

	pthread_mutex_lock(&kf.lock);
	k->next = NULL;
	*kf.tail = k;
	kf.tail = &k->next;
	pthread_mutex_unlock(&kf.lock);
	if (write(kf.qfd, &one, sizeof(one)) != sizeof(one))
		pr_warn("vm: cannot wake the supervisor: %s\n", err_str(errno));
	pthread_mutex_lock(&kf.lock);
	while (!k->done)
		pthread_cond_wait(&k->cond, &kf.lock);
	pthread_mutex_unlock(&kf.lock);
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
static void disarm(struct kf_pend *pd)
{
	if (pd->inst_fd >= 0)
		close(pd->inst_fd);
	pd->inst_fd = -1;
	if (pd->slice)
		unhide(pd);
	if (pd->sslice)
		restore_saved(pd);
	free(pd->hidden);
	pd->hidden = NULL;
	pd->nhidden = pd->nsaved = 0;
	pd->armed = pd->install = pd->retry = pd->slice = pd->sslice = false;
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

/* When poll or ppoll @sc times out (CLOCK_MONOTONIC ns), INT64_MAX for never; -1 for a bad timespec. */
static int64_t poll_deadline(const struct kvm_x86_syscall *sc, uint64_t root)
{
	struct timespec ts;

	if (sc->nr == RSYS_NR_poll)
		return (int)sc->args[2] < 0 ? INT64_MAX : now_ns() + (int64_t)(int)sc->args[2] * 1000000;
	if (!sc->args[2])
		return INT64_MAX;
	if (gmem_read(kf.gm, root, sc->args[2], &ts, sizeof(ts)) || ts.tv_sec < 0 ||
	    ts.tv_nsec < 0 || ts.tv_nsec >= 1000000000L)
		return -1;
	if (ts.tv_sec > INT32_MAX)
		return INT64_MAX;
	return now_ns() + ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void complete(struct kvm_x86_syscall *sc, int64_t ret)
{
	sc->flags = 0;
	sc->ret = ret;
}

/* Hand call @sc of process @id to the core (with @scratch at KF_SCRATCH_VA) and wait for its answer. */
static void core_ask(struct kf_call *k, const struct kvm_x86_syscall *sc, pid_t id, uint64_t root,
		     void *scratch, size_t len)
{
	pthread_mutex_lock(&kf.lock);
	k->sc = *sc;
	k->id = id;
	k->root = root;
	k->done = k->cont = k->install = false;
	k->ret = 0;
	k->inst_fd = -1;
	k->scratch = scratch;
	k->scratch_len = len;
	pthread_mutex_unlock(&kf.lock);
	core_run(k);
	pthread_mutex_lock(&kf.lock);
	k->scratch = NULL;
	pthread_mutex_unlock(&kf.lock);
	if (k->inst_fd >= 0 && !k->install)
		close(k->inst_fd);
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

/* When select's timeval or pselect6's timespec at @va runs out (ns), INT64_MAX for NULL, -1 if bad. */
static int64_t select_deadline(const struct kvm_x86_syscall *sc, uint64_t root, uint64_t va)
{
	struct timespec ts;
	struct timeval tv;

	if (!va)
		return INT64_MAX;
	if (sc->nr == RSYS_NR_select) {
		if (gmem_read(kf.gm, root, va, &tv, sizeof(tv)) || tv.tv_sec < 0 || tv.tv_usec < 0)
			return -1;
		ts.tv_sec = tv.tv_sec + tv.tv_usec / 1000000;
		ts.tv_nsec = (tv.tv_usec % 1000000) * 1000;
	} else if (gmem_read(kf.gm, root, va, &ts, sizeof(ts)) || ts.tv_sec < 0 || ts.tv_nsec < 0 ||
		   ts.tv_nsec >= 1000000000L) {
		return -1;
	}
	if (ts.tv_sec > INT32_MAX)
		return INT64_MAX;
	return now_ns() + ts.tv_sec * 1000000000LL + ts.tv_nsec;
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
static int split_select(struct kf_vcpu *kv, struct kvm_x86_syscall *sc, uint64_t root, pid_t id,
			uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t set[3][KF_SET_WORDS] = { { 0 } }, loc[3][KF_SET_WORDS] = { { 0 } };
	uint64_t res[3][KF_SET_WORDS] = { { 0 } };
	int nfds = (int)sc->args[0], i, j, nr = 0, nl = 0, count = 0;
	struct pollfd pf[KF_SELECT_MAX];
	struct kvm_x86_syscall probe;
	struct kf_call *k = kv->call;
	uint64_t tva, gpa;
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
	if (!same_call(sc, &kv->wait_call)) {
		kv->wait_call = *sc;
		kv->wait_deadline = select_deadline(sc, root, sc->args[4]);
		kv->wait_slice_ms = 1;
	}
	if (kv->wait_deadline < 0) {
		kv->wait_call.nr = 0;
		complete(sc, -EINVAL);
		return 1;
	}

	/* The remote half, now: a poll of the remote fds (made up, in scratch) that does not wait. */
	probe = *sc;
	probe.nr = RSYS_NR_poll;
	probe.args[0] = KF_SCRATCH_VA;
	probe.args[1] = nr;
	probe.args[2] = 0;
	core_ask(k, &probe, id, root, pf, nr * sizeof(pf[0]));
	if (!k->cont && k->ret < 0) {
		kv->wait_call.nr = 0;
		complete(sc, k->ret);
		return 1;
	}
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
	if (!tva) {
		tva = (rsp(arg) - 256) & ~15ULL;
		if (gmem_translate(kf.gm, root, tva, true, &gpa) ||
		    gmem_translate(kf.gm, root, tva + 15, true, &gpa))
			return fault_in(kv, sc, id, tva, 16, true) ? 1 : 0;
	}
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
	uint64_t va = sc->args[0], nfds = sc->args[1];
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
	if (!same_call(sc, &kv->wait_call)) {
		kv->wait_call = *sc;
		kv->wait_deadline = poll_deadline(sc, root);
		kv->wait_slice_ms = 1;
	}
	if (kv->wait_deadline < 0) {
		kv->wait_call.nr = 0;
		free(loc);
		free(rem);
		complete(sc, -EINVAL);
		return 1;
	}

	/* The remote half, now: a poll of the remote entries that does not wait. */
	poll_flip(root, va, loc, nl, false);
	probe = *sc;
	probe.nr = RSYS_NR_poll;
	probe.args[2] = 0;
	core_ask(k, &probe, id, root, NULL, 0);
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

	/* The local half: the guest kernel's poll for a slice, the remote entries hidden. */
	ms = next_slice(kv, left);
	arm(kv, sc, id);
	poll_flip(root, va, rem, nr, false);
	kv->pend.hidden = rem;
	kv->pend.nhidden = nr;
	kv->pend.slice = true;
	sc->nr = RSYS_NR_poll;
	sc->args[2] = ms;
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE | KVM_X86_SYSCALL_FLAG_RETURN;
	return 1;

whole:
	free(pf);
	free(loc);
	free(rem);
	return 0;
}

static enum kf_verdict decide(struct kf_vcpu *kv, struct kvm_x86_syscall *sc,
			      uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t root = gmem_root(sc->cr3), va, end = 0;
	struct kf_range r[KF_RANGES];
	struct kf_call *k = kv->call;
	struct kf_proc *p;
	bool write;
	pid_t id;
	int n;

	if (kv->fault_va && !same_call(sc, &kv->fault_call))
		kv->fault_va = 0;
	if (kf.qfd < 0 || !core_takes(sc, root))
		return KF_PASS;
	if (!kv->cur_rsp)
		kv->cur_rsp = rsp(arg);	/* read once per call */
	if (!k) {
		k = kv->call = calloc(1, sizeof(*k));
		if (!k) {
			sc->flags = 0;
			sc->ret = -ENOMEM;
			return KF_DECIDED;
		}
		pthread_cond_init(&k->cond, NULL);
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
	    sc->nr == RSYS_NR_select || sc->nr == RSYS_NR_pselect6) {
		int split = sc->nr == RSYS_NR_poll || sc->nr == RSYS_NR_ppoll ?
			    split_poll(kv, sc, root, id) : split_select(kv, sc, root, id, rsp, arg);

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

	core_ask(k, sc, id, root, NULL, 0);
	if (k->install) {
		/* The guest's own call (dup*, close, exit_group) or a placeholder in place of a socket. */
		arm(kv, sc, id);
		kv->pend.install = true;
		kv->pend.inst_fd = k->inst_fd;
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
		return KF_PASS;
	sc->flags = 0;
	sc->ret = k->ret;
	return KF_DECIDED;
}

enum kf_verdict kf_call(struct kf_vcpu *kv, struct kvm_x86_syscall *sc,
			uint64_t (*rsp)(void *arg), void *arg)
{
	uint64_t root = gmem_root(sc->cr3);
	enum kf_verdict v;

	/* A new call of a thread whose call waits for its SYSRET: that one came back by IRET. */
	kv->cur_rsp = 0;
	if (kf.qfd >= 0 && root_waits(root)) {
		kv->cur_rsp = rsp(arg);
		forget_thread(root, kv->cur_rsp);
	}
	v = decide(kv, sc, rsp, arg);
	if (kv->pend.armed)
		commit(kv);
	return v;
}

int kf_return(struct kf_vcpu *kv, int vcpu_fd, struct kvm_x86_syscall *sc)
{
	uint64_t root = gmem_root(sc->cr3);
	struct kvm_regs regs;
	struct kf_pend pd;
	struct kf_proc *p;
	bool more;
	int err = 0;

	(void)kv;
	if (ioctl(vcpu_fd, KVM_GET_REGS, &regs))
		return -errno;
	if (!take(root, sc->rip, regs.rsp, &pd))
		return 0;	/* not the front end's (--syscalls printing its own) */

	if (pd.slice || pd.sslice) {
		/* nothing local in this slice and time left: the whole call again, remote half first */
		more = sc->ret == 0 && (pd.wait_deadline == INT64_MAX || now_ns() < pd.wait_deadline);
		/*
		 * A select that found something, or timed out: the kernel's
		 * sets stand (the remote fds' bits clear) and only the
		 * timeout, saved last, is the program's again; an error or
		 * another round: all of it.
		 */
		if (pd.sslice && sc->ret >= 0 && !more) {
			pd.saved[0] = pd.saved[pd.nsaved - 1];
			pd.nsaved = 1;
		}
		if (pd.sslice)
			restore_saved(&pd);
		else
			unhide(&pd);
		pd.slice = pd.sslice = false;
		pd.retry = more;
		if (!more)
			wait_end(root, pd.rsp);
	}
	if (pd.retry) {
		/* Back to the SYSCALL instruction with the call's number and arguments. */
		regs.rax = pd.orig.nr;
		regs.rcx = pd.orig.rip;
		regs.rdi = pd.orig.args[0];
		regs.rsi = pd.orig.args[1];
		regs.rdx = pd.orig.args[2];
		regs.r10 = pd.orig.args[3];
		regs.r8 = pd.orig.args[4];
		regs.r9 = pd.orig.args[5];
		if (ioctl(vcpu_fd, KVM_SET_REGS, &regs))
			err = -errno;
		/* the answer KVM gives this SYSRET's RAX */
		sc->ret = pd.orig.nr;
	} else if (pd.install && sc->ret >= 0 && pd.inst_fd >= 0) {
		pthread_mutex_lock(&kf.lock);
		p = proc_by_id(pd.id);
		if (p && !shadow_set(p, (int)sc->ret, pd.inst_fd))
			pd.inst_fd = -1;	/* the shadow's now */
		pthread_mutex_unlock(&kf.lock);
	}
	disarm(&pd);
	return err ? err : 1;
}
