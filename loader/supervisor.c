// SPDX-License-Identifier: GPL-2.0
/* The monitor's core dispatcher: dispatch tables, restarts, held calls and signals, the event thread; calls come from a front end (struct sv_front, seccomp.c). */

/*
 * DOC: Theory of operation
 *
 * Threads of "rsys-load run" (every one but main exists once per monitor):
 *
 *  main        run.c: forks the program, forwards stop signals, reaps it,
 *              then sv_stop() and remote_close().
 *  supervisor  sv_thread_fn(): the front end's next call (seccomp.c:
 *              NOTIF_RECV) and the handlers (sockcalls.c, wait.c,
 *              epoll.c). Sends its requests itself: it may block
 *              on a full delegate socket, never while holding a lock.
 *  event       ev_thread_fn(): delegate replies (every remote_req.done()
 *              runs here), placeholder anchors' HUP, exited processes,
 *              cancels of requests whose caller took a signal; with
 *              killable waits (sv.killable) it also ends the held calls a
 *              signal is for (BPF's sigring, else every SV_CHECK_MS). It must
 *              never block on a send (the delegate may be blocked writing
 *              replies to it): its frames go to the writer queue.
 *  writer      remote.c remote_writer(), started by the first send of the
 *              event thread: writes the queued frames.
 *  waiter      wait.c waiter_main(), started by the first split wait:
 *              local halves of select/poll/epoll, resolves, cancels and
 *              restarts epoll waits; ended by sv_stop() (wait_stop()).
 *  optional    execguard.c guard_reader() (exec guard reports); lib/tls.c
 *              relay_main() for a tcp:/vsock: delegate (TLS <-> plain).
 *
 * Why threads, not one event loop as in passt or lxc's notifier: every fd
 * could be polled by one loop (the notification fd, the delegate socket,
 * pidfds, anchors, the sigring), but three things would block it.
 *  - Sends to the delegate block while its socket is full: a frame carries
 *    up to 256 KiB copied straight from the caller's memory, and one loop
 *    would need a per-frame output queue with partial writes and a copy of
 *    every payload. Instead the supervisor sends synchronously and the
 *    event thread, which must keep reading replies so that the delegate's
 *    own writes drain, never sends (writer queue).
 *  - The local half of a split wait is the kernel's own ppoll/epoll_wait
 *    on the caller's fds with its sigmask, over sets that change on every
 *    call: one loop would have to add and remove each fd in its epoll set
 *    per wait (O(n) syscalls where ppoll takes the set in one). The waiter
 *    thread runs them; select/poll results stay the kernel's.
 *  - Handlers read /proc and the caller's memory synchronously; that is
 *    short, but a loop would serialise the delegate's replies behind it.
 * The price is the lock order below, checked by TSAN and LOCKDEBUG.
 *
 * States of a trapped call (struct sv_call), from the front end's next()
 * to its answer:
 *
 *   RECEIVED    sv_dispatch(): its process found (fdc_proc), noted as held
 *               when signals may end it (sv.killable: held_add).
 *   RESTART?    sv_restart_of_lost(): a call its thread left and now makes
 *               again takes the first run's answer or waits for it.
 *   HANDLED     the handler's verdict: SV_CONTINUE (the kernel runs it:
 *               all its fds are local), SV_REPLY (answered now), or
 *               SV_PENDING: the handler owns it while a delegate request
 *               (sockcalls.c) or a split wait (wait.c) is out, and a signal
 *               may end it meanwhile (on_signal, intr: sv_check_signals).
 *   ANSWERED    sv_reply()/sv_continue() from whichever thread finished it
 *               (sv_answered notes what a restart must get); then freed.
 *               sv_reply() says whether the answer reached the thread: one
 *               a signal overtook must not have used up anything (a
 *               receive's bytes stay the socket's, an epoll wait's events
 *               are reported again: wait.c wcall_answer, wcall_epoll_reply).
 *
 * Locks (all pthread mutexes), what each protects:
 *
 *  hs_lock        sockcalls.c: per remote socket state (hs_tab): take and
 *                 send calls in flight, their queues behind orphans, the
 *                 stash of orphans' data, records of interrupted sends.
 *  ep_lock        epoll.c: epoll instances with remote interest (ep_list),
 *                 local events kept for their next wait (ep_stash).
 *  fdc_lock       fdcache.c: processes, tids, vfd caches, anchors, refs.
 *  wait_lock      wait.c: split waits' state flags and refs, the waiter
 *                 queue, the watch list, records of interrupted waits.
 *  rc->lock       remote.c: pending requests, ids, alive, cancel_sent.
 *  rc->wq_lock    remote.c: the writer queue, writer start and stop.
 *  rc->send_lock  remote.c: one frame at a time on the delegate socket.
 *  held_lock      supervisor.c: the list of held calls a signal may end
 *                 (sv.killable); under it only NOTIF_SEND answers and
 *                 /proc reads, never a wire send.
 *  ev_lock        events.c: digest cache, per socket trace info.
 *  learn_lock     learn.c: the rules learned (--learn).
 *  tr_lock        lib/trace.c: the trace reader's connection.
 *
 * Order: a thread holding one lock takes only locks below it in this list:
 *
 *  hs_lock, ep_lock (never both) > fdc_lock > rc->lock > rc->wq_lock
 *  > rc->send_lock.
 *
 * wait_lock, held_lock, ev_lock, learn_lock and tr_lock are leaves: nothing is taken
 * under them. (hs_lock > fdc_lock: sv_reply() under hs_lock frees the
 * call's process reference; ep_lock > fdc_lock: ep_snapshot() classifies
 * vfds; hs_lock > rc->lock: cancels are taken; hs_lock > rc->wq_lock: the
 * event thread queues a CLOSE from stash_push().)
 *
 * The rule: no lock is held across a send that can block on the wire
 * (remote_submit(), remote_post(), remote_cancel() from any thread but the
 * event thread), rc->send_lock excepted, which exists for that. Collect
 * under the lock, send after unlocking: remote_cancel_take() +
 * remote_cancel_send() (sockcalls.c queue_behind_orphans()), the gone[]
 * list of wait.c waiter_check_calls(). Otherwise the event thread, which
 * takes hs_lock and wait_lock in done(), stops reading replies while the
 * delegate, blocked writing them, stops reading requests: a deadlock. The
 * event thread's sends are queue pushes and may happen under hs_lock.
 * "make check-tsan" runs selftests/stress_test.sh with rsys-load built
 * with ThreadSanitizer (which checks the order) and LOCKDEBUG=1, with which
 * a send that may block aborts when its thread holds a lock
 * (loader/lockdebug.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <bpf/libbpf.h>

#include "busypoll.h"
#include "direct.h"
#include "log.h"
#include "procfs.h"
#include "rsys.h"
#include "seccomp_compat.h"
#include "sockcalls.h"

#define SV_CHECK_MS	20	/* how often blocked remote calls are checked for a signal */
#define SV_LINGER_MS	1000	/* ... and for how long after the last one was seen */
#define SV_DRAIN_MS	2000	/* sv_stop: how long answered sends may take to reach the writer */

/* Tags in the low bits of epoll data (pointers are 8-byte aligned). */
enum { EV_ANCHOR = 0, EV_PROC = 1, EV_CTL = 2, EV_TAG = 3 };
/* The monitor's own fds carry no pointer: EV_CTL with their number above the tag. */
enum {
	CTL_REMOTE = EV_CTL | 1 << 2, CTL_WAKE = EV_CTL | 2 << 2, CTL_STOP = EV_CTL | 3 << 2,
	CTL_SIGNAL = EV_CTL | 4 << 2,
};

static const sv_handler_fn sv_table[] = {
	[SYS_socket] = sys_socket,
	[SYS_connect] = sys_connect,
	[SYS_bind] = sys_bind,
	[SYS_listen] = sys_listen,
	[SYS_accept] = sys_accept,
	[SYS_accept4] = sys_accept4,
	[SYS_read] = sys_read,
	[SYS_recvfrom] = sys_recvfrom,
	[SYS_readv] = sys_readv,
	[SYS_recvmsg] = sys_recvmsg,
	[SYS_write] = sys_write,
	[SYS_sendto] = sys_sendto,
	[SYS_writev] = sys_writev,
	[SYS_sendmsg] = sys_sendmsg,
	[SYS_recvmmsg] = sys_recvmmsg,
	[SYS_sendmmsg] = sys_sendmmsg,
	[SYS_sendfile] = sys_sendfile,
	[SYS_splice] = sys_splice,
	[SYS_io_uring_setup] = sys_io_uring_setup,
	[SYS_shutdown] = sys_shutdown,
	[SYS_getsockopt] = sys_getsockopt,
	[SYS_setsockopt] = sys_setsockopt,
	[SYS_getsockname] = sys_getsockname,
	[SYS_getpeername] = sys_getpeername,
	[SYS_fcntl] = sys_fcntl,
	[SYS_ioctl] = sys_ioctl,
	[SYS_close] = sys_close,
	[SYS_close_range] = sys_close_range,
	[SYS_dup] = sys_dup,
	[SYS_dup2] = sys_dup2,
	[SYS_dup3] = sys_dup3,
	[SYS_exit] = sys_exit_group,
	[SYS_exit_group] = sys_exit_group,
	[SYS_execve] = sys_execve,
	[SYS_execveat] = sys_execve,
	[SYS_select] = wait_select,
	[SYS_pselect6] = wait_pselect6,
	[SYS_poll] = wait_poll,
	[SYS_ppoll] = wait_ppoll,
	[SYS_epoll_create1] = wait_epoll_create1,
	[SYS_epoll_ctl] = wait_epoll_ctl,
	[SYS_epoll_wait] = wait_epoll_wait,
	[SYS_epoll_pwait] = wait_epoll_pwait,
	[SYS_epoll_pwait2] = wait_epoll_pwait2,
};

#define SV_NR_MAX	(sizeof(sv_table) / sizeof(sv_table[0]))

/* Direct mode (direct.c): data calls, waits and the fd table run untrapped on real sockets. */
static const sv_handler_fn sv_direct_table[] = {
	[SYS_socket] = direct_socket,
	[SYS_connect] = direct_connect,
	[SYS_bind] = direct_connect,
	[SYS_listen] = direct_listen,
	[SYS_sendto] = direct_sendto,
	[SYS_sendmsg] = direct_sendmsg,
	[SYS_sendmmsg] = direct_sendmmsg,
	[SYS_setsockopt] = direct_setsockopt,
	[SYS_ioctl] = direct_ioctl,
	[SYS_execve] = sys_execve,
	[SYS_execveat] = sys_execve,
};

#define SV_DIRECT_NR_MAX	(sizeof(sv_direct_table) / sizeof(sv_direct_table[0]))

bool sv_handles(unsigned int nr, bool direct)
{
	return direct ? nr < SV_DIRECT_NR_MAX && sv_direct_table[nr] : nr < SV_NR_MAX && sv_table[nr];
}

struct sv_state {
	struct sv *sv;
	int epfd;
	int stopfd;
	bool stopping;
	bool sv_done;
	pthread_t sv_thread, ev_thread;
	struct ring_buffer *sigring;	/* sv.killable: BPF says a trusted task got a signal */
};

static struct sv_state st;

/*
 * Held calls and signals (sv.killable). The filter has
 * SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once the monitor has received a
 * call, seccomp_do_user_notification() (kernel/seccomp.c) waits for the
 * answer with wait_for_completion_killable(), so only a fatal signal ends
 * the wait; before, a signal aborted the notification and the kernel
 * failed or restarted the call on its own. Now the monitor ends a held call
 * when a signal comes for its thread: seccomp_notify_send() takes any
 * resp.error and syscall_set_return_value() puts it in ax, so the answer
 * -ERESTARTSYS (-ERESTARTNOHAND for select/poll, as Linux's) is what
 * arch_do_signal_or_restart() (arch/x86/kernel/signal.c) converts on the
 * way out, exactly as for an interrupted Linux call: -EINTR when a handler
 * runs (for -ERESTARTSYS only without SA_RESTART), else the call is
 * restarted, also when no signal is delivered to the thread after all (or
 * it stops and is continued); epoll waits are answered -EINTR, as
 * ep_poll() fails even then. That code runs only when the thread has
 * TIF_SIGPENDING: answered to a thread without it, the restart code
 * reaches the program as errno 512. So a call is ended only for a thread
 * that BPF saw woken by a signal after the call came (rsys_signal_generate:
 * map sigwake), that /proc shows with a signal pending only it can take,
 * or whose process is in a group stop (a stop signal came and a thread is
 * stopped: do_signal_stop() marked every thread). A remote send answers
 * the count already sent instead (sockcalls.c), which needs no flag. A
 * socket call that cannot block (O_NONBLOCK, MSG_DONTWAIT) is never ended:
 * Linux has no EINTR for it, and the delegate answers it soon anyway.
 */
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sv_call *held_head;

static void held_add(struct sv_call *c)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	c->recv_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
	pthread_mutex_lock(&held_lock);
	c->hnext = held_head;
	if (held_head)
		held_head->hpprev = &c->hnext;
	c->hpprev = &held_head;
	held_head = c;
	pthread_mutex_unlock(&held_lock);
}

/*
 * hpprev is read under held_lock too: a call added after @c rewrites it
 * meanwhile, under that lock.
 */
static void held_del(struct sv_call *c)
{
	pthread_mutex_lock(&held_lock);
	if (c->hpprev) {
		*c->hpprev = c->hnext;
		if (c->hnext)
			c->hnext->hpprev = c->hpprev;
	}
	pthread_mutex_unlock(&held_lock);
}

void sv_call_free(struct sv_call *c)
{
	if (c->sv->killable)
		held_del(c);
	if (c->proc)
		fdc_proc_put(c->proc);
	free(c);
}

bool sv_call_interrupted(const struct sv_call *c)
{
	return __atomic_load_n(&c->intr, __ATOMIC_ACQUIRE);
}

/*
 * false when this answer did not reach the caller: the caller was gone
 * (the thread took a signal or died), or the call was answered already
 * (sv_check_signals() ended it, and the thread has not yet woken to drop
 * it). A receive's data then stay the socket's (sockcalls.c recv_answer()).
 */
static bool sv_send(struct sv_call *c, int64_t ret, bool cont)
{
	return c->sv->front->answer(c, ret, cont);
}

/*
 * Calls that a second run would not repeat harmlessly (an EPOLL_CTL_ADD
 * gets EEXIST, a bind EINVAL), when their thread misses the answer: without
 * WAIT_KILLABLE_RECV (rsys not attached) a signal ends a thread's wait for
 * its answer, and the kernel restarts the call at once after a handler
 * with SA_RESTART (Go's), or fails it with EINTR. The first run's effect
 * happened; its restart gets its answer instead of a second run:
 * - the restart comes while the first run is still pending (a bind at the
 *   delegate; the thread can make no other call meanwhile): it waits for
 *   that answer (sv_pend);
 * - it comes after the answer was lost (sv_lost): the thread's next call,
 *   if the same from the same place, takes a successful answer.
 * A first run that a signal ended before it did anything (a splice whose
 * send the delegate cancelled: -ERESTARTSYS) leaves its restart to run;
 * so does one whose answer the thread took before the monitor saw it
 * answered: the same call made again at once (a splice loop) is new.
 * splice, whose restart the kernel may make even after its thread took
 * the answer, also notes a count its thread took, for the next same call
 * to see (sv_call.prev_ret: sys_splice's empty-pipe rule). Sends,
 * receives and waits have their own ways (sockcalls.c, wait.c).
 */
struct sv_pend {
	struct sv_call *c;		/* NULL: a free slot */
	struct sv_call *restart;	/* its thread's same call, come meanwhile */
};

struct sv_lost {
	pid_t tid;			/* 0: a free slot */
	struct sv_syscall call;
	int64_t ret;
	bool taken;			/* the thread took it, as far as the kernel knows (splice) */
};

#define SV_PEND		64
#define SV_LOST		64
static struct sv_pend sv_pend[SV_PEND];
static struct sv_lost sv_lost[SV_LOST];
static unsigned int sv_lost_next;
static unsigned int sv_live;	/* slots in use in both; written under sv_lost_lock, read without */
static pthread_mutex_t sv_lost_lock = PTHREAD_MUTEX_INITIALIZER;

static bool sv_lost_worth(const struct sv_call *c)
{
	unsigned int nr = c->sys.nr;

	return !c->sv->killable && (nr == SYS_epoll_ctl || nr == SYS_bind || nr == SYS_splice);
}

static void sv_run(struct sv_call *c);

/*
 * Before @c runs: true if it is the restart of a call its thread left
 * (then it is answered or waits for that answer); else @c is noted as
 * pending (sv_lost_worth calls only).
 */
static bool sv_restart_of_lost(struct sv_call *c)
{
	struct sv_call *gone = NULL;
	int64_t ret = 0;
	bool found = false, answer = false;
	int i;

	if (!__atomic_load_n(&sv_live, __ATOMIC_RELAXED) && !sv_lost_worth(c))
		return false;
	pthread_mutex_lock(&sv_lost_lock);
	for (i = 0; i < SV_PEND && !found; i++) {
		struct sv_pend *p = &sv_pend[i];

		if (!p->c || p->c->tid != c->tid ||
		    memcmp(&p->c->sys, &c->sys, sizeof(c->sys)))
			continue;
		gone = p->restart;	/* a restart that was itself interrupted */
		p->restart = c;
		found = true;
	}
	for (i = 0; i < SV_LOST && !found; i++) {
		if (sv_lost[i].tid != c->tid)
			continue;
		if (!memcmp(&sv_lost[i].call, &c->sys, sizeof(c->sys))) {
			found = answer = !sv_lost[i].taken;
			c->prev_ret = sv_lost[i].ret;
		}
		ret = sv_lost[i].ret;
		sv_lost[i].tid = 0;
		__atomic_sub_fetch(&sv_live, 1, __ATOMIC_RELAXED);
		break;
	}
	for (i = 0; i < SV_PEND && !found && sv_lost_worth(c); i++) {
		if (!sv_pend[i].c) {
			sv_pend[i] = (struct sv_pend){ c, NULL };
			__atomic_add_fetch(&sv_live, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	pthread_mutex_unlock(&sv_lost_lock);
	if (gone)
		sv_reply(gone, -EINTR);	/* its thread left it too */
	if (answer)
		sv_reply(c, ret);
	return found;
}

/*
 * @c was answered (@sent: its thread took it, as far as the kernel knows;
 * @cont: left to the kernel).
 */
static void sv_answered(struct sv_call *c, int64_t ret, bool sent, bool cont)
{
	struct sv_call *restart = NULL;
	struct sv_lost *l;
	int i;

	if (!__atomic_load_n(&sv_live, __ATOMIC_RELAXED) || !sv_lost_worth(c))
		return;
	pthread_mutex_lock(&sv_lost_lock);
	for (i = 0; i < SV_PEND; i++) {
		if (sv_pend[i].c == c) {
			restart = sv_pend[i].restart;
			sv_pend[i] = (struct sv_pend){ NULL, NULL };
			__atomic_sub_fetch(&sv_live, 1, __ATOMIC_RELAXED);
			break;
		}
	}
	if (!cont && (sent ? ret > 0 && c->sys.nr == SYS_splice : !restart && ret >= 0)) {
		l = &sv_lost[sv_lost_next++ % SV_LOST];
		if (!l->tid)
			__atomic_add_fetch(&sv_live, 1, __ATOMIC_RELAXED);
		*l = (struct sv_lost){ c->tid, c->sys, ret, sent };
	}
	pthread_mutex_unlock(&sv_lost_lock);
	/*
	 * A thread that took the answer (as far as the kernel knows) and made
	 * the same call again before this ran, or whose first run did nothing,
	 * has a call of its own: it runs.
	 */
	if (restart && (sent || cont || ret == -SV_ERESTARTSYS))
		sv_run(restart);
	else if (restart)
		sv_reply(restart, ret);	/* the thread is in the restart now */
}

bool sv_reply(struct sv_call *c, int64_t ret)
{
	bool sent = sv_send(c, ret, false);

	sv_answered(c, ret, sent, false);
	sv_call_free(c);
	return sent;
}

void sv_continue(struct sv_call *c)
{
	sv_send(c, 0, true);
	sv_answered(c, 0, true, true);
	sv_call_free(c);
}

void sv_verdict_do(struct sv_call *c, enum sv_verdict v)
{
	if (v == SV_CONTINUE)
		sv_continue(c);
	else if (v == SV_REPLY)
		sv_reply(c, c->ret);
}

bool sv_call_valid(const struct sv_call *c)
{
	return c->sv->front->valid(c);
}

int sv_read_mem(struct sv_call *c, void *dst, uint64_t addr, size_t len)
{
	struct iovec local = { dst, len }, remote = { (void *)(uintptr_t)addr, len };

	return sv_read_memv(c, &local, &remote, 1);
}

int sv_read_memv(struct sv_call *c, const struct iovec *local, const struct iovec *remote, int n)
{
	size_t total = 0;
	ssize_t got;
	int i;

	for (i = 0; i < n; i++)
		total += local[i].iov_len;
	if (!total)
		return 0;
	got = c->sv->front->mem(c, local, remote, n, false);
	if (!sv_call_valid(c))
		return -ENOENT;
	return got == (ssize_t)total ? 0 : -EFAULT;
}

int sv_write_mem(struct sv_call *c, uint64_t addr, const void *src, size_t len)
{
	struct iovec local = { (void *)src, len }, remote = { (void *)(uintptr_t)addr, len };
	int failed;

	return sv_write_memv(c, &local, &remote, 1, &failed);
}

int sv_write_memv(struct sv_call *c, const struct iovec *local, const struct iovec *remote,
		  int n, int *failed)
{
	size_t total = 0;
	int i;

	*failed = -1;
	for (i = 0; i < n; i++)
		total += local[i].iov_len;
	if (!total)
		return 0;
	if (!sv_call_valid(c))
		return -ENOENT;
	if (c->sv->front->mem(c, local, remote, n, true) == (ssize_t)total)
		return 0;
	/* a fault somewhere: write the pieces one by one to tell which */
	for (i = 0; i < n; i++) {
		if (!local[i].iov_len ||
		    c->sv->front->mem(c, &local[i], &remote[i], 1, true) == (ssize_t)local[i].iov_len)
			continue;
		*failed = i;
		return -EFAULT;
	}
	return 0;
}

int sv_fd_remote(struct sv_call *c, int vfd, uint64_t *handle)
{
	return fdc_lookup(c->proc, c->tid, vfd, handle);
}

int sv_threads(struct sv_call *c)
{
	return c->sv->front->threads(c);
}

int sv_fd_dup(struct sv_call *c, int vfd)
{
	return c->sv->front->table->fd_copy(c->tgid, fdc_proc_exit_fd(c->proc), vfd);
}

int sv_addfd(struct sv_call *c, int fd, int vfd, unsigned int newfd_flags, bool answer)
{
	return c->sv->front->addfd(c, fd, vfd, newfd_flags, answer);
}

void sv_signal(struct sv_call *c, int sig)
{
	c->sv->front->signal(c, sig);
}

int sv_anchor_new(struct sv *sv, uint64_t handle, bool nonblock, struct anchor **ap)
{
	struct epoll_event ev = { .events = EPOLLRDHUP };
	struct anchor *a;
	struct stat sb;
	int sp[2];

	(void)sv;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return -errno;
	if (nonblock && fcntl(sp[0], F_SETFL, O_RDWR | O_NONBLOCK))
		goto err_close;
	if (fstat(sp[0], &sb))
		goto err_close;
	a = fdc_anchor_add(handle, sp[1], sb.st_ino);
	if (!a) {
		errno = ENOMEM;
		goto err_close;
	}
	ev.data.u64 = (uintptr_t)a | EV_ANCHOR;
	if (epoll_ctl(st.epfd, EPOLL_CTL_ADD, sp[1], &ev)) {
		int err = -errno;

		fdc_anchor_del(a);	/* closes sp[1] */
		close(sp[0]);
		remote_post(st.sv->remote, RSYS_OP_CLOSE, handle, 0);
		return err;
	}
	*ap = a;
	return sp[0];

err_close:
	{
		int err = -errno;

		close(sp[0]);
		close(sp[1]);
		remote_post(st.sv->remote, RSYS_OP_CLOSE, handle, 0);
		return err;
	}
}

bool sv_anchor_drop(int fd, struct anchor *a)
{
	ino_t ino = a->ino;	/* @a may be freed by the event thread once @fd is closed */
	uint64_t h;

	/* Claimed, the hang-up of the anchor does not close the handle (fdc_anchor_del). */
	if (!fdc_anchor_close_begin(ino, &h)) {
		close(fd);
		return false;
	}
	close(fd);
	return fdc_anchor_close_end(ino);
}

static void sv_watch_proc(struct sv_proc *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uintptr_t)p | EV_PROC };
	int fd = fdc_proc_exit_fd(p);

	if (fd >= 0)
		epoll_ctl(st.epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void sv_dispatch(struct sv_call *c)
{
	bool created;

	c->proc = fdc_proc(c->tid, &c->tgid, &created);
	if (!c->proc) {
		sv_continue(c);		/* the thread is gone; nothing to answer */
		return;
	}
	if (created)
		sv_watch_proc(c->proc);
	if (c->sv->killable)
		held_add(c);
	sv_run(c);
}

/* Run @c's handler, unless @c restarts a call its thread left. */
static void sv_run(struct sv_call *c)
{
	unsigned int nr = c->sys.nr;
	enum sv_verdict v = SV_CONTINUE;

	if (sv_restart_of_lost(c))
		return;		/* answered, or waits for its first run's answer */
	sock_exec_done(c);
	if (c->sv->direct) {
		if (nr < SV_DIRECT_NR_MAX && sv_direct_table[nr])
			v = sv_direct_table[nr](c);
	} else if (nr < SV_NR_MAX && sv_table[nr]) {
		v = sv_table[nr](c);
	}
	sv_verdict_do(c, v);
}

static void sv_wake(int sig)
{
	(void)sig;
}

static void *sv_thread_fn(void *arg)
{
	struct sv *sv = arg;
	struct sv_call *c = NULL;
	int err;

	while (!__atomic_load_n(&st.stopping, __ATOMIC_ACQUIRE)) {
		if (!c) {
			c = malloc(sizeof(*c));
			if (!c) {
				pr_err("out of memory in the supervisor\n");
				break;
			}
		}
		memset(c, 0, sizeof(*c));
		c->sv = sv;
		err = sv->front->next(sv, c);
		if (err == -EINTR || err == -ENOENT)
			continue;
		if (err) {
			pr_debug("%s: %s\n", sv->front->name, err_str(-err));
			break;
		}
		sv_dispatch(c);
		c = NULL;
	}
	free(c);
	__atomic_store_n(&st.sv_done, true, __ATOMIC_RELEASE);
	return NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* SigPnd, ShdPnd, SigBlk and Threads of /proc/@tgid/task/@tid/status. */
struct sv_sigstate {
	uint64_t pnd, shd, blk, threads;
};

static int sig_state(pid_t tgid, pid_t tid, struct sv_sigstate *ss)
{
	static const char *const names[] = { "SigPnd", "ShdPnd", "SigBlk", "Threads" };
	uint64_t v[4] = { 0 };
	int ret;

	ret = proc_status(tgid, tid, names, v, 4);
	if (ret < 0)
		return ret;
	*ss = (struct sv_sigstate){ .pnd = v[0], .shd = v[1], .blk = v[2], .threads = v[3] };
	return 0;
}

/*
 * A signal pending that only @c's thread can take, so it surely has
 * TIF_SIGPENDING: one sent to the thread itself that it does not block
 * (complete_signal() woke it, and nobody else clears the flag), or, in a
 * process of one thread, one sent to the process.
 */
static bool sig_pending_own(const struct sv_call *c)
{
	struct sv_sigstate ss;

	if (sig_state(c->tgid, c->tid, &ss))
		return false;
	return (ss.pnd & ~ss.blk) || (ss.threads == 1 && (ss.shd & ~ss.blk));
}

/* Is a thread of @tgid stopped ('T'): a group stop is under way? */
static bool group_stopped(pid_t tgid)
{
	char path[320], buf[256], *p;
	struct dirent *d;
	bool stopped = false;
	DIR *dir;
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/task", tgid);
	dir = opendir(path);
	if (!dir)
		return false;
	while (!stopped && (d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", tgid, d->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (n <= 0)
			continue;
		buf[n] = '\0';
		p = strrchr(buf, ')');	/* after the command name, which may hold anything */
		stopped = p && p[1] == ' ' && p[2] == 'T';
	}
	closedir(dir);
	return stopped;
}

#define SV_SIG_RECENT_NS	1000000000LL	/* a signal this close before a call: look at /proc */

/* Did a signal come for the thread of held call @c that it will see on its way out? */
static bool sv_signalled(struct sv *sv, const struct sv_call *c)
{
	struct rsys_sigwake w;

	if (!maps_sig_woken(sv->maps, c->tid, &w)) {
		if ((int64_t)w.ns > c->recv_ns)
			return true;
		/* just before the call was received: the flag may be set, or long handled */
		if ((int64_t)w.ns > c->recv_ns - SV_SIG_RECENT_NS && sig_pending_own(c))
			return true;
	}
	return !maps_sig_stop(sv->maps, c->tgid, &w) && (int64_t)w.ns > c->recv_ns &&
	       group_stopped(c->tgid);
}

/* End the held calls whose thread a signal is for (see held_lock). */
static void sv_check_signals(struct sv *sv)
{
	struct timespec ts;
	enum sv_intr how;
	struct sv_call *c;

	if (!sv->killable)
		return;
	pthread_mutex_lock(&held_lock);
	for (c = held_head; c; c = c->hnext) {
		how = __atomic_load_n(&c->on_signal, __ATOMIC_ACQUIRE);
		if (how == SV_INTR_NONE || sv_call_interrupted(c) || !sv_signalled(sv, c))
			continue;
		if (sock_call_nonblock(c)) {
			/* answered soon anyway; unless its handler changed it, not looked at again */
			__atomic_compare_exchange_n(&c->on_signal, &how, SV_INTR_NONE, false,
						    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
			continue;
		}
		pr_debug("pid %d: signal while held (nr %d)\n", c->tid, c->sys.nr);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		c->intr_ns = ts.tv_sec * 1000000000LL + ts.tv_nsec;
		__atomic_store_n(&c->intr, true, __ATOMIC_RELEASE);
		/* under held_lock: @c cannot be freed meanwhile; a second answer fails harmlessly */
		if (how == SV_INTR_RESTART)
			sv_send(c, -SV_ERESTARTSYS, false);
		else if (how == SV_INTR_NOHAND)
			sv_send(c, -SV_ERESTARTNOHAND, false);
		else if (how == SV_INTR_EINTR)
			sv_send(c, -EINTR, false);
	}
	pthread_mutex_unlock(&held_lock);
}

/* True while some call is held (sv.killable): the event thread keeps checking for signals. */
static bool sv_holding(void)
{
	bool ret;

	pthread_mutex_lock(&held_lock);
	ret = held_head != NULL;
	pthread_mutex_unlock(&held_lock);
	return ret;
}

/* The remote socket @h has no placeholder left: close it at the delegate. */
void sv_remote_gone(struct sv *sv, uint64_t h)
{
	pr_debug("handle %llu: last placeholder closed\n", (unsigned long long)h);
	if (sock_handle_gone(sv, h))
		remote_post(sv->remote, RSYS_OP_CLOSE, h, 0);
}

static void ev_anchor_hup(struct anchor *a)
{
	uint64_t h = a->handle;

	epoll_ctl(st.epfd, EPOLL_CTL_DEL, a->fd, NULL);
	/* Unless the close() that dropped the last placeholder does it (sys_close). */
	if (fdc_anchor_del(a))
		sv_remote_gone(st.sv, h);
}

static void *ev_thread_fn(void *arg)
{
	struct sv *sv = arg;
	struct epoll_event evs[32];
	int timeout = -1, n, i;
	int64_t now, busy = -SV_LINGER_MS, checked = 0;
	bool signalled, waiting = false, worked = false;
	unsigned int poll_us = busy_poll_cpus(sv->busy_poll_us);
	struct busy_poll bp;

	remote_set_event_thread(sv->remote);
	for (;;) {
		/* After work, not after a timeout: an idle monitor does not poll. */
		n = 0;
		if (worked) {
			busy_poll_start(&bp, poll_us);
			while (!n && busy_poll_more(&bp))
				n = epoll_wait(st.epfd, evs, 32, 0);
		}
		if (!n)
			n = epoll_wait(st.epfd, evs, 32, timeout);
		worked = n > 0;
		if (n < 0 && errno != EINTR) {
			pr_err("event loop: %s\n", err_str(errno));
			break;
		}
		signalled = false;
		for (i = 0; i < n; i++) {
			uint64_t d = evs[i].data.u64;
			void *ptr = (void *)(uintptr_t)(d & ~(uint64_t)EV_TAG);

			switch (d & EV_TAG) {
			case EV_ANCHOR:
				ev_anchor_hup(ptr);
				break;
			case EV_PROC:
				epoll_ctl(st.epfd, EPOLL_CTL_DEL, fdc_proc_exit_fd(ptr), NULL);
				fdc_proc_exit(ptr);
				break;
			case EV_CTL:
				if (d == CTL_STOP)
					return NULL;
				if (d == CTL_SIGNAL)
					signalled = ring_buffer__consume(st.sigring) >= 0;
				else if (d == CTL_WAKE)
					remote_wake_clear(sv->remote);
				else if (remote_on_readable(sv->remote))
					epoll_ctl(st.epfd, EPOLL_CTL_DEL, remote_fd(sv->remote), NULL);
				break;
			}
		}
		/*
		 * Blocked remote calls whose caller took a signal must be
		 * cancelled. While calls come and go, keep checking rather
		 * than be woken for each new one.
		 */
		now = mono_ms();
		/*
		 * On BPF's word, else as often as the rest: not for every reply
		 * of a busy session. remote_check_calls() asks the kernel about
		 * each pending request's call (one ioctl each): with many calls
		 * in flight, doing it per reply cost more than the replies.
		 */
		if (signalled || now - checked >= SV_CHECK_MS) {
			sv_check_signals(sv);
			waiting = remote_check_calls(sv->remote);
			checked = now;
		}
		if (waiting || (sv->killable && sv_holding()))
			busy = now;
		if (now - busy < SV_LINGER_MS || !remote_may_sleep(sv->remote))
			timeout = SV_CHECK_MS;
		else
			timeout = -1;
	}
	return NULL;
}

static int sig_event(void *ctx, void *data, size_t len)
{
	(void)ctx;
	(void)data;
	(void)len;
	return 0;
}

/* Wake the event thread at once when a trusted task gets a signal (sv_check_signals). */
static int sv_watch_signals(struct sv *sv)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = CTL_SIGNAL };

	st.sigring = ring_buffer__new(sv->maps->sigring, sig_event, NULL, NULL);
	if (!st.sigring)
		return -errno;
	if (epoll_ctl(st.epfd, EPOLL_CTL_ADD, ring_buffer__epoll_fd(st.sigring), &ev)) {
		ring_buffer__free(st.sigring);
		st.sigring = NULL;
		return -errno;
	}
	return 0;
}

int sv_start(struct sv *sv)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct sigaction sa = { .sa_handler = sv_wake };
	int ret;

	st.sv = sv;
	fdc_init(sv->maps, sv->front->table);
	if (sv->front->start)
		sv->front->start(sv);

	st.epfd = epoll_create1(EPOLL_CLOEXEC);
	st.stopfd = eventfd(0, EFD_CLOEXEC);
	if (st.epfd < 0 || st.stopfd < 0)
		return -errno;
	ev.data.u64 = CTL_STOP;
	if (epoll_ctl(st.epfd, EPOLL_CTL_ADD, st.stopfd, &ev))
		return -errno;
	ev.data.u64 = CTL_REMOTE;
	if (epoll_ctl(st.epfd, EPOLL_CTL_ADD, remote_fd(sv->remote), &ev))
		return -errno;
	ev.data.u64 = CTL_WAKE;
	if (epoll_ctl(st.epfd, EPOLL_CTL_ADD, remote_wake_fd(sv->remote), &ev))
		return -errno;

	/* Without the wake-ups signals are seen within SV_CHECK_MS while calls are held. */
	if (sv->killable && sv_watch_signals(sv))
		pr_info("BPF signal ring buffer: %s: signals end held calls within %d ms\n",
			err_str(errno), SV_CHECK_MS);
	/* SIGUSR2 without SA_RESTART interrupts NOTIF_RECV when stopping. */
	sigaction(SIGUSR2, &sa, NULL);
	ret = pthread_create(&st.ev_thread, NULL, ev_thread_fn, sv);
	if (ret)
		return -ret;
	ret = pthread_create(&st.sv_thread, NULL, sv_thread_fn, sv);
	if (ret)
		return -ret;
	/* Names for top -H and /proc/PID/task/TID/comm (busypoll_test finds the event thread so). */
	pthread_setname_np(st.ev_thread, "rsys-event");
	pthread_setname_np(st.sv_thread, "rsys-supervisor");
	return 0;
}

void sv_stop(struct sv *sv)
{
	uint64_t one = 1;

	(void)sv;
	__atomic_store_n(&st.stopping, true, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&st.sv_done, __ATOMIC_ACQUIRE)) {
		pthread_kill(st.sv_thread, SIGUSR2);
		usleep(1000);
	}
	pthread_join(st.sv_thread, NULL);
	/* The event thread takes their replies: before it stops. */
	sock_drain(SV_DRAIN_MS);
	if (write(st.stopfd, &one, sizeof(one)) != sizeof(one))
		pr_debug("stop event: %s\n", err_str(errno));
	pthread_join(st.ev_thread, NULL);
	wait_stop();
	ring_buffer__free(st.sigring);
	close(st.stopfd);
	close(st.epfd);
}
