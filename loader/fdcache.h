/* SPDX-License-Identifier: GPL-2.0 */
/* Per-process vfd cache (local/remote + delegate handle) and the placeholder anchors behind remote vfds. */
#ifndef RSYS_FDCACHE_H
#define RSYS_FDCACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "bpfmaps.h"

/*
 * A remote socket: its delegate handle and the monitor's end of the anchor
 * socketpair whose other end is the placeholder installed in the trusted
 * processes. @ino identifies the placeholder (fdc_source.fd_ino).
 */
struct anchor {
	uint64_t handle;
	ino_t ino;
	int fd;				/* monitor's end; EPOLLHUP when the last placeholder is closed */
	bool closed;			/* someone closes its handle (under fdc_lock) */
	struct anchor *next;		/* hash chain by ino */
};

struct sv_proc;

/*
 * Where the cache learns what it was not told: a front end's view of its
 * processes' fd tables. The host tier's (seccomp.c: fdc_procfs) reads
 * /proc and uses pidfds; another front end (the KVM tier's) answers from
 * its own record of the guest's placeholders. Every operation is given
 * the thread (@tid) or process (@tgid) of the call being handled.
 */
struct fdc_source {
	/* The process (tgid) of thread @tid, or -errno when it is gone. */
	pid_t (*tgid)(pid_t tid);
	/* A file of the monitor readable once process @tgid has exited (watched by the event thread), or -errno. */
	int (*exit_fd)(pid_t tgid);
	/* What @vfd of @tid is: 1 a socket (its inode in *@ino), 0 another file, -errno if not open. */
	int (*fd_ino)(pid_t tid, int vfd, ino_t *ino);
	/* Its file status flags (O_NONBLOCK, ...), 0 when unknown. */
	int (*fd_flags)(pid_t tid, int vfd);
	/* A copy in the monitor of @vfd of process @tgid, whose exit_fd is @exit_fd, or -errno. */
	int (*fd_copy)(pid_t tgid, int exit_fd, int vfd);
	/* Call @fn for each open vfd of @tid: 0, or -errno if the table cannot be read. */
	int (*fd_each)(pid_t tid, void (*fn)(int vfd, void *arg), void *arg);
	/* Do processes @a and @b share one fd table (clone CLONE_FILES without CLONE_THREAD)? */
	bool (*files_shared)(pid_t a, pid_t b);
	/*
	 * Optional: the fd flags of @tgid's remote vfds among [@lo, @hi] gain
	 * @set and lose @clear (fdc_set_flags), for a source that keeps them
	 * itself (close-on-exec, which the KVM tier's execve needs).
	 */
	void (*set_flags)(pid_t tgid, unsigned int lo, unsigned int hi, int set, int clear);
};

/* Before the first call: the BPF mirror (may be a no-op) and where unknown vfds are resolved. */
void fdc_init(struct rsys_maps *maps, const struct fdc_source *src);

/*
 * The process of thread @tid with a reference (fdc_proc_put), its tgid in
 * *@tgid; *@created tells it is new (watch its exit_fd). NULL if @tid is gone.
 */
struct sv_proc *fdc_proc(pid_t tid, pid_t *tgid, bool *created);
void fdc_proc_put(struct sv_proc *p);
/* The source's exit_fd of the process (readable when it exits), -1 if none. */
int fdc_proc_exit_fd(const struct sv_proc *p);
/* The process exited: drop its thread ids, its BPF fd table and the cache's own reference. */
void fdc_proc_exit(struct sv_proc *p);

/*
 * Is @vfd of @p (as seen by thread @tid) remote? 1 (handle in *@handle),
 * 0 local or not open. Unknown vfds are resolved by the source (fd_ino);
 * the caller must check the call is still waiting before trusting it.
 */
int fdc_lookup(struct sv_proc *p, pid_t tid, int vfd, uint64_t *handle);
/* The file status flags (O_NONBLOCK, ...) of @vfd as thread @tid sees it, from the source; 0 if unknown. */
int fdc_fd_flags(pid_t tid, int vfd);

/*
 * True if @vfd of @p is known not to be remote without asking the source: cached
 * local, or not cached while the summary below is exact (every remote vfd is
 * then cached).
 */
bool fdc_surely_local(struct sv_proc *p, int vfd);

/*
 * The monitor's copy (the source's fd_copy) of @vfd of @p, or -errno if it is not
 * open. For a vfd the cache knows local the copy is kept in the cache,
 * *@owned is false and the caller must not close it: it stays open until
 * the vfd is forgotten (close, close_range, dup2/dup3 onto it, execve,
 * exit), which only the supervisor thread does, so it is valid while the
 * handler that asked runs there. Otherwise *@owned is true: close it.
 */
int fdc_local_copy(struct sv_proc *p, int vfd, bool *owned);

/*
 * Around an ADDFD that answers the call as it installs (another thread of
 * @p may use the new vfd before fdc_set_remote/fdc_copy run): meanwhile
 * fdc_lookup() trusts no entry of @p.
 */
void fdc_install_begin(struct sv_proc *p);
void fdc_install_end(struct sv_proc *p);
/* @vfd of @p now holds @a's placeholder (fd flags: O_CLOEXEC, O_NONBLOCK). */
void fdc_set_remote(struct sv_proc *p, int vfd, struct anchor *a, int flags);
/* @to now holds the same remote socket as @from (dup); -ENOENT if @from is not known remote. */
int fdc_copy(struct sv_proc *p, int from, int to, int flags);
/*
 * The O_NONBLOCK / O_CLOEXEC flags of the remote vfds among [@lo, @hi] of @p
 * gain @set and lose @clear (F_SETFL, FIONBIO, F_SETFD, close_range's
 * CLOSE_RANGE_CLOEXEC): the vfds stay remote, the BPF mirror follows.
 */
void fdc_set_flags(struct sv_proc *p, unsigned int lo, unsigned int hi, int set, int clear);
/*
 * Forget vfds [@lo, @hi] of @p: closed (@sure) or possibly replaced by a
 * call that may still fail (!@sure: the select/poll summary is re-read if a
 * remote vfd was among them, so a still-open one is never taken for local).
 */
void fdc_forget(struct sv_proc *p, unsigned int lo, unsigned int hi, bool sure);
/*
 * @p calls execve: forget everything (close-on-exec vfds vanish), noting the
 * anchors of its remote vfds for fdc_exec_closes().
 */
void fdc_exec(struct sv_proc *p);
/*
 * The first call of @p after fdc_exec: the noted anchors whose last
 * placeholder is gone (the exec closed it) and that nobody closes yet are
 * claimed; their handles in *@handles (malloc'd, the caller frees it), the
 * count returned. *@others: some were closed by someone else (the event
 * thread), whose CLOSE may still be queued.
 */
int fdc_exec_closes(struct sv_proc *p, uint64_t **handles, bool *others);

/*
 * Placeholders may have reached @p behind the cache (F_DUPFD of a remote
 * vfd, SCM_RIGHTS): fdc_all_local() re-reads the fd table before answering.
 */
void fdc_unsure(struct sv_proc *p);
/*
 * True if @p surely holds no remote vfd below @nfds (cheap summary; after
 * fork, execve or fdc_unsure() the table is first re-read from
 * the source once).
 */
bool fdc_all_local(struct sv_proc *p, pid_t tid, unsigned int nfds);

/*
 * The lowest cached remote vfd of @p in [@lo, @hi], or -1. Exact for vfds
 * below FDC_MAX_VFD once fdc_all_local() has re-read the table.
 */
int fdc_next_remote(struct sv_proc *p, unsigned int lo, unsigned int hi);
/* True if another known process shares @p's fd table (clone CLONE_FILES without CLONE_THREAD). */
bool fdc_files_shared(struct sv_proc *p);

/* New anchor for @handle whose monitor end is @fd and placeholder inode @ino; NULL on ENOMEM. */
struct anchor *fdc_anchor_add(uint64_t handle, int fd, ino_t ino);
/*
 * Closing what may be the last placeholder of a remote socket (fdc_anchor_del
 * and these decide who closes it at the delegate, exactly once): begin, with
 * a reference to the placeholder of inode @ino still held, claims its anchor
 * (1, the handle in *@handle; 0 if @ino is no anchor or is being closed);
 * drop the reference; end tells whether it was the last one (true: the
 * claimer closes the handle; false: the claim is given back).
 */
int fdc_anchor_close_begin(ino_t ino, uint64_t *handle);
bool fdc_anchor_close_end(ino_t ino);
/*
 * The last placeholder of @a was closed: drop it from every cache, close
 * a->fd and free it. True if nobody claimed it: the caller closes its handle.
 */
bool fdc_anchor_del(struct anchor *a);

#endif
