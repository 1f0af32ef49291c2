/* SPDX-License-Identifier: GPL-2.0 */
/* Handlers of the intercepted socket and fd-table calls (sockcalls.c), registered in supervisor.c. */
#ifndef RSYS_SOCKCALLS_H
#define RSYS_SOCKCALLS_H

#include "fdcache.h"
#include "supervisor.h"

enum sv_verdict sys_socket(struct sv_call *c);
enum sv_verdict sys_connect(struct sv_call *c);
enum sv_verdict sys_bind(struct sv_call *c);
enum sv_verdict sys_listen(struct sv_call *c);
enum sv_verdict sys_accept(struct sv_call *c);
enum sv_verdict sys_accept4(struct sv_call *c);
enum sv_verdict sys_read(struct sv_call *c);
enum sv_verdict sys_recvfrom(struct sv_call *c);
enum sv_verdict sys_readv(struct sv_call *c);
enum sv_verdict sys_recvmsg(struct sv_call *c);
enum sv_verdict sys_recvmmsg(struct sv_call *c);
enum sv_verdict sys_write(struct sv_call *c);
enum sv_verdict sys_sendto(struct sv_call *c);
enum sv_verdict sys_writev(struct sv_call *c);
enum sv_verdict sys_sendmsg(struct sv_call *c);
enum sv_verdict sys_sendmmsg(struct sv_call *c);
enum sv_verdict sys_sendfile(struct sv_call *c);
enum sv_verdict sys_splice(struct sv_call *c);
enum sv_verdict sys_io_uring_setup(struct sv_call *c);
enum sv_verdict sys_shutdown(struct sv_call *c);
enum sv_verdict sys_getsockopt(struct sv_call *c);
enum sv_verdict sys_setsockopt(struct sv_call *c);
enum sv_verdict sys_getsockname(struct sv_call *c);
enum sv_verdict sys_getpeername(struct sv_call *c);
enum sv_verdict sys_fcntl(struct sv_call *c);
enum sv_verdict sys_ioctl(struct sv_call *c);
enum sv_verdict sys_close(struct sv_call *c);
enum sv_verdict sys_close_range(struct sv_call *c);
enum sv_verdict sys_dup(struct sv_call *c);
enum sv_verdict sys_dup2(struct sv_call *c);
enum sv_verdict sys_dup3(struct sv_call *c);
/* exit and exit_group */
enum sv_verdict sys_exit_group(struct sv_call *c);
/* passport.c: execve and execveat */
enum sv_verdict sys_execve(struct sv_call *c);

/*
 * execve of the caller's process (approved: it runs in the kernel next):
 * forget its vfds, noting its remote sockets. Close-on-exec ones are
 * closed by the kernel's exec; sock_exec_done(), run before every call,
 * makes sure the first call after it finds their CLOSE at the delegate
 * (as Linux's order: closed before the new program runs).
 */
void sock_exec(struct sv_call *c);
void sock_exec_done(struct sv_call *c);

/* The last placeholder of remote socket @h was closed: RSYS_OP_CLOSE is to be sent now (true) or by a write-behind send. */
bool sock_handle_gone(struct sv *sv, uint64_t h);

/*
 * Before the session ends with the program: wait up to @ms until every
 * write-behind send (the program answered already) is handed to the
 * delegate, which makes those still running after the session's end.
 */
void sock_drain(int ms);
/*
 * True if held call @c is a socket call that cannot block: MSG_DONTWAIT,
 * or its socket (argument 0) O_NONBLOCK. Linux never ends such a call for
 * a signal, so neither does sv_check_signals().
 */
bool sock_call_nonblock(struct sv_call *c);

/*
 * Create the anchor of a new remote socket @handle: returns the end to
 * install in the process (O_NONBLOCK if @nonblock) or -errno; the other end
 * is watched by the event thread, which closes @handle when the last
 * placeholder is gone. *@ap receives the anchor.
 */
int sv_anchor_new(struct sv *sv, uint64_t handle, bool nonblock, struct anchor **ap);
/*
 * Close @fd, the end sv_anchor_new() gave for anchor @a, which no process
 * got: true if its handle stays open, now the caller's; false if it is
 * closed with the anchor (or, should a placeholder be out after all, is
 * that placeholder's).
 */
bool sv_anchor_drop(int fd, struct anchor *a);
/* The last placeholder of remote socket @h is gone: forget it and close it at the delegate. */
void sv_remote_gone(struct sv *sv, uint64_t h);

#endif
