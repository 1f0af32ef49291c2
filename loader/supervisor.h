/* SPDX-License-Identifier: GPL-2.0 */
/* The seccomp user-notification supervisor: what a syscall handler (sockets, select/poll, ...) uses. */
#ifndef RSYS_SUPERVISOR_H
#define RSYS_SUPERVISOR_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <linux/seccomp.h>
#include <seccomp.h>

#include <rsys/policy.h>
#include "bpfmaps.h"
#include "remote.h"

/*
 * Threads and locks: "DOC: Theory of operation" in supervisor.c (names
 * every thread and lock, the lock order and the rule that no lock is held
 * while sending). One supervisor thread receives notifications and runs the
 * handlers; one event thread reads delegate replies (remote_req.done runs
 * there), watches placeholder anchors and exited processes and cancels
 * requests whose notification became invalid. Handlers must not block on
 * the delegate (remote.h has no synchronous call): send a request with
 * remote_submit() and return SV_PENDING; answer from the done callback with
 * sv_reply()/sv_continue().
 */

struct sv_proc;		/* one trusted process (tgid): its vfd cache */
struct fdc_source;	/* fdcache.h: a front end's view of the fd tables */
struct sv_call;
struct sv;

/*
 * A front end: where trapped calls come from, and how the core (this
 * header's handlers: sockcalls.c, wait.c, epoll.c, direct.c, fdcache.c)
 * acts on their callers. The core reaches a caller only through these,
 * by way of the sv_* helpers below. The host tier's is seccomp user
 * notification (seccomp.c: sv_seccomp); the KVM tier's (rsys-load vm)
 * is to be a vCPU's syscall exit, with guest memory and a guest agent
 * behind the same operations.
 */
struct sv_front {
	const char *name;
	/* Optional: set up before the first call (sv_start). */
	void (*start)(struct sv *sv);
	/* The next trapped call into @c (id, tid, sys): 0, -EINTR/-ENOENT (try again) or -errno. */
	int (*next)(struct sv *sv, struct sv_call *c);
	/* Answer @ret (value or -errno), or let the caller's kernel run the call (@cont). */
	bool (*answer)(struct sv_call *c, int64_t ret, bool cont);
	/* Is the caller still waiting for this call's answer? */
	bool (*valid)(const struct sv_call *c);
	/* process_vm_readv/writev on the caller's memory: bytes moved, or -1. */
	ssize_t (*mem)(struct sv_call *c, const struct iovec *local, const struct iovec *remote,
		       int n, bool write);
	int (*threads)(struct sv_call *c);
	int (*addfd)(struct sv_call *c, int fd, int vfd, unsigned int newfd_flags, bool answer);
	void (*signal)(struct sv_call *c, int sig);
	/* Its processes' fd tables, where the vfd cache resolves what it does not know. */
	const struct fdc_source *table;
	/*
	 * Trust follows exec outside the core (the VM's token, guest/vmtrust.c):
	 * an execve is not judged by a passport here, only the vfd cache is reset.
	 */
	bool exec_by_token;
};

extern const struct sv_front sv_seccomp;

struct sv {
	const struct sv_front *front;	/* where its calls come from (sv_seccomp) */
	int notify_fd;			/* seccomp listener */
	const struct policy *policy;
	struct remote *remote;		/* delegate session */
	struct rsys_maps *maps;		/* BPF mirror (no-op when not attached) */
	struct execguard *guard;	/* exec guard; NULL: only the first execve may run */
	unsigned int execs;		/* execve calls judged without a guard */
	bool direct;			/* direct mode: the program holds real service sockets (direct.c) */
	bool killable;			/* the filter has WAIT_KILLABLE_RECV: signals end held calls here */
	bool no_write_behind;		/* every send waits for the delegate's reply (sockcalls.c, wb_fits) */
	unsigned int busy_poll_us;	/* the event thread polls this long before it sleeps (busypoll.h) */
};

/*
 * What a signal does to a call the monitor holds, when the filter keeps
 * held calls waiting through signals (sv.killable; supervisor.c says how
 * the monitor learns of them and why the kernel then does as for an
 * interrupted Linux call).
 */
enum sv_intr {
	SV_INTR_NONE = 0,	/* nothing: the call does not block (bind, getsockopt, ...) */
	SV_INTR_RESTART,	/* answered -ERESTARTSYS: restarted (SA_RESTART, no handler) or EINTR */
	SV_INTR_NOHAND,		/* answered -ERESTARTNOHAND: EINTR once a handler ran, else restarted */
	SV_INTR_EINTR,		/* answered -EINTR: epoll waits, which Linux never restarts (ep_poll) */
	SV_INTR_OWNER,		/* only marked (sv_call_interrupted): the handler answers (a send's count) */
};

/* What a trapped system call is, whichever front end trapped it (seccomp_data's layout). */
struct sv_syscall {
	int nr;
	__u32 arch;
	__u64 ip;			/* where it was made: a restart comes back with the same */
	__u64 args[6];
};

/* One intercepted system call, from the front end's next() until it is answered. */
struct sv_call {
	struct sv *sv;
	uint64_t id;			/* the front end's name for it (the notification's id) */
	pid_t tid;			/* the calling thread */
	struct sv_syscall sys;
	pid_t tgid;
	struct sv_proc *proc;
	int64_t ret;			/* value or -errno, for SV_REPLY */
	void *priv;			/* the handler's own state while pending */
	enum sv_intr on_signal;		/* set by the handler before the call can block */
	int64_t prev_ret;		/* splice: the count its thread's last call, the same, took (0: none) */
	/* private to supervisor.c */
	int64_t recv_ns;		/* CLOCK_MONOTONIC when it was received */
	bool intr;			/* a signal ended it (atomic) */
	int64_t intr_ns;		/* CLOCK_MONOTONIC when it did (written before intr) */
	struct sv_call *hnext, **hpprev;	/* calls held (sv.killable), under held_lock */
};

enum sv_verdict {
	SV_CONTINUE,	/* let the kernel run the call (all fds local) */
	SV_REPLY,	/* answer with c->ret; the supervisor frees @c */
	SV_PENDING,	/* the handler owns @c and answers later with sv_reply/sv_continue */
};

typedef enum sv_verdict (*sv_handler_fn)(struct sv_call *c);

/* A handler's answer "fail with @err (-errno)". */
static inline enum sv_verdict sv_error(struct sv_call *c, int err)
{
	c->ret = err;
	return SV_REPLY;
}

/*
 * Answer a pending call with @ret (value or -errno) / let the kernel run it,
 * then free @c. Safe from any thread; an invalid notification (the thread
 * was interrupted by a signal or died) is silently dropped: sv_reply then
 * returns false. True does not promise the thread took the answer: one
 * that a signal woke just before it came still fails with -ERESTARTSYS.
 */
bool sv_reply(struct sv_call *c, int64_t ret);
void sv_continue(struct sv_call *c);

/* What a handler's verdict @v says, for a handler run outside the dispatcher (SV_PENDING: nothing). */
void sv_verdict_do(struct sv_call *c, enum sv_verdict v);

/* Free a call that was answered by other means (sv_addfd with @answer) or cannot be answered. */
void sv_call_free(struct sv_call *c);

/* True while the notification of @c is still waiting (NOTIF_ID_VALID). */
bool sv_call_valid(const struct sv_call *c);
/* True once a signal ended @c (see enum sv_intr); its requests are then cancelled. */
bool sv_call_interrupted(const struct sv_call *c);
/* When a signal ended @c (CLOCK_MONOTONIC ns), once sv_call_interrupted() says it did. */
static inline int64_t sv_call_intr_ns(const struct sv_call *c)
{
	return c->intr_ns;
}

/* What a signal does to @c from now on (read by the event thread). */
static inline void sv_on_signal(struct sv_call *c, enum sv_intr how)
{
	__atomic_store_n(&c->on_signal, how, __ATOMIC_RELEASE);
}

/*
 * Copy @len bytes from/to the calling thread's memory at @addr. Reading
 * checks NOTIF_ID_VALID after the copy (so the data belong to this call);
 * writing checks it before. 0, -EFAULT for a bad or partial range, -ENOENT
 * when the notification is no longer valid.
 */
int sv_read_mem(struct sv_call *c, void *dst, uint64_t addr, size_t len);
int sv_write_mem(struct sv_call *c, uint64_t addr, const void *src, size_t len);

/* Read @n pieces (process_vm_readv iovecs) with one system call and one check after them: as sv_read_mem. */
int sv_read_memv(struct sv_call *c, const struct iovec *local, const struct iovec *remote, int n);

/*
 * Read @n pieces of the caller's memory without checking that the call is
 * still waiting: for hot paths that mostly end in SV_CONTINUE, where stale
 * data do no harm, and whose results are written checked. Bytes read, or -1.
 */
static inline ssize_t sv_peek_memv(struct sv_call *c, const struct iovec *local,
				   const struct iovec *remote, int n)
{
	return c->sv->front->mem(c, local, remote, n, false);
}

/*
 * Write @n pieces (process_vm_writev iovecs, @remote in the caller) with one
 * NOTIF_ID_VALID check before them all and, normally, one system call. 0,
 * -ENOENT, or -EFAULT with the first piece that faulted in *@failed (the
 * pieces before it are written, the ones after it are not).
 */
int sv_write_memv(struct sv_call *c, const struct iovec *local, const struct iovec *remote,
		  int n, int *failed);

/*
 * Classify @vfd of the calling process: 1 if it is a placeholder of a remote
 * socket (its delegate handle in *@handle), 0 if it is local or not open.
 * Uses the per-tgid cache; unknown vfds are resolved by the front end (fdc_source).
 */
int sv_fd_remote(struct sv_call *c, int vfd, uint64_t *handle);

/* A copy, in the monitor, of the caller's file @vfd (fdc_source.fd_copy), or -errno. Caller closes it. */
int sv_fd_dup(struct sv_call *c, int vfd);

/* The threads of @c's process now (the front end's threads(); seccomp: /proc/TID/task), 0 if unknown. */
int sv_threads(struct sv_call *c);

/*
 * Install @fd (a file of the monitor) into the caller with
 * SECCOMP_IOCTL_NOTIF_ADDFD: at @vfd (>= 0, replacing what is there, like
 * dup2) or the lowest free number (@vfd < 0); @newfd_flags may hold
 * O_CLOEXEC. With @answer the call returns the new vfd atomically (on
 * success the caller then only frees @c with sv_call_free). Returns the vfd
 * or -errno (-ENOENT: the notification is gone), or SV_ADDFD_LATER.
 */
int sv_addfd(struct sv_call *c, int fd, int vfd, unsigned int newfd_flags, bool answer);
/*
 * sv_addfd() with @answer and @vfd < 0 where the caller's kernel picks the
 * number (the KVM tier: the guest kernel runs the call, or a placeholder
 * call in its place, and the front end answers with what it returns): the
 * call is answered as with a vfd, which the cache learns from the front
 * end's table (fdc_source) at its next lookup.
 */
#define SV_ADDFD_LATER	INT_MIN

/* Deliver @sig to the calling thread (e.g. SIGPIPE for EPIPE without MSG_NOSIGNAL). */
void sv_signal(struct sv_call *c, int sig);

/*
 * Handlers of loader/wait.c (select/poll/epoll), registered in the dispatch
 * table of supervisor.c: all fds local -> SV_CONTINUE (without reading the
 * caller's memory when the vfd summary of fdcache.h allows), else the local
 * and remote halves are waited for together.
 */
enum sv_verdict wait_select(struct sv_call *c);
enum sv_verdict wait_pselect6(struct sv_call *c);
enum sv_verdict wait_poll(struct sv_call *c);
enum sv_verdict wait_ppoll(struct sv_call *c);
enum sv_verdict wait_epoll_create1(struct sv_call *c);
enum sv_verdict wait_epoll_ctl(struct sv_call *c);
enum sv_verdict wait_epoll_wait(struct sv_call *c);
enum sv_verdict wait_epoll_pwait(struct sv_call *c);
enum sv_verdict wait_epoll_pwait2(struct sv_call *c);
/*
 * The interest list of epoll instance @epfd of @tgid changed (or an EPOLLET
 * registration may fire again): waits held on it start again with the new
 * list, for the time they have left, as a Linux wait sees every change.
 */
void wait_epoll_changed(pid_t tgid, int epfd);
/* End the waiter thread (sv_stop, once no call can come): nothing uses the delegate after it. */
void wait_stop(void);

enum sv_filter_mode {
	SV_FILTER_REMOTE,	/* every call the core handles */
	SV_FILTER_DIRECT,	/* direct mode: only the calls that decide where packets go */
	SV_FILTER_GUARDED,	/* ... less sendto with an address: the delegate's egress guard judges it */
};

/*
 * Add to @ctx a NOTIFY rule for every call @mode traps and the sandbox's
 * denials (socket families, namespaces: doc/rsys-load.8, FILTER); @sandboxed:
 * the program runs in rsys-load run's sandbox (no capabilities). Run in the
 * child before exec.
 */
int sv_filter_add_rules(scmp_filter_ctx ctx, const struct policy *p, bool sandboxed,
			enum sv_filter_mode mode);

/* Does the core handle syscall @nr (in direct mode: @direct)? The filter traps those. */
bool sv_handles(unsigned int nr, bool direct);

/*
 * Serve @sv->notify_fd until sv_stop(): starts the supervisor and event
 * threads. 0 or -errno.
 */
int sv_start(struct sv *sv);
void sv_stop(struct sv *sv);

#endif
