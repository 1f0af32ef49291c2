/* SPDX-License-Identifier: GPL-2.0 */
/* The monitor's trace events: every decision on a trusted program's calls, for "rsys-load trace" and "learn". */
#ifndef RSYS_EVENTS_H
#define RSYS_EVENTS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <rsys/trace.h>

struct sv_call;

/*
 * Called with every event the monitor makes, before it goes to a trace
 * reader (learn records the run with it); NULL when nobody records.
 */
extern void (*mon_event_hook)(const struct rsys_event *ev);

/*
 * Emit @ev: the program's path and sha256 are filled in from ev->pid
 * (/proc/PID/exe) when ev->prog is empty. Costs a clock read when nobody
 * listens and nothing records.
 */
void mon_event_emit(struct rsys_event *ev);

/*
 * The passport decision on the program @path (absolute, as the program names
 * it: printed, and learned as a "trusted" line) that process @pid (thread
 * @tid; 0 if it does not run yet) executes: @trusted, and the call's result
 * @ret. Its sha256 is read from @open_path, a path the monitor can open
 * (e.g. /proc/PID/root/...), or @path if NULL. For sys_execve() after its
 * passport check, for every execve, also when the policy trusts everything
 * ("rsys-load learn" runs so and learns the programs from these events).
 */
void mon_event_exec(pid_t pid, pid_t tid, const char *path, const char *open_path, bool trusted,
		    int ret);

/*
 * The egress call @call (enum rsys_ev_call) of @c on remote socket @h to
 * @addr (@len bytes) got @ret; @rule is the delegate's verdict (a5 of its
 * reply, RSYS_RULE_*), @lost whether the delegate session died.
 */
void mon_event_call(struct sv_call *c, int call, uint64_t h, const void *addr, socklen_t len,
		    int64_t ret, int64_t rule, bool lost);

/*
 * Remote socket @h of process @pid is new: of @family, @type and @proto (0:
 * the type's own), or like the listener @parent (accept).
 */
void mon_sock_new(uint64_t h, pid_t pid, int family, int type, int proto, uint64_t parent);
/* Data moved on @h: @in bytes received, @out sent. */
void mon_sock_bytes(uint64_t h, uint64_t in, uint64_t out);
/* The last placeholder of @h is closed: its close event, with the bytes moved. */
void mon_sock_gone(uint64_t h);

/* The delegate's policy file, named in the rule of each verdict. */
void mon_events_set_policy_file(const char *file);

#endif
