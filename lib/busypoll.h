/* SPDX-License-Identifier: GPL-2.0 */
/* Busy polling before a thread sleeps for its next input (the monitor's event thread, the delegate's session readers). */
#ifndef RSYS_BUSYPOLL_H
#define RSYS_BUSYPOLL_H

#include <errno.h>
#include <sched.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

/*
 * In remote mode every call of the program is a chain of wake-ups: the
 * program's trap wakes the monitor, the monitor's request the delegate,
 * the delegate's reply the monitor. On a virtual machine a thread woken on
 * an idle CPU costs a halt, an IPI and two exits to the hypervisor, more
 * than the work it was woken for. A thread that runs out of input polls
 * for it a little longer instead (like the kernel's SO_BUSY_POLL and the
 * guest's haltpoll): the next request or reply of a request/response
 * exchange is then taken without a sleep or a wake-up. sched_yield() lets
 * any runnable thread of that CPU go first; the window is short and
 * counts from the moment the thread ran out of work, so an idle session
 * costs nothing.
 */
#define BUSY_POLL_US_DEFAULT	300
#define BUSY_POLL_US_MAX	10000

struct busy_poll {
	unsigned int us;	/* the window; 0: off */
	struct timespec start;
	bool polling;
};

/* --busy-poll US: 0 to BUSY_POLL_US_MAX microseconds into *@us; 0, or -EINVAL after a message. */
static inline int busy_poll_parse(const char *s, unsigned int *us)
{
	unsigned long v = 0;
	char *end = NULL;

	if (*s >= '0' && *s <= '9') {
		errno = 0;
		v = strtoul(s, &end, 10);
	}
	if (!end || errno || *end || v > BUSY_POLL_US_MAX) {
		pr_err("--busy-poll %s: not a number of microseconds (0 to %d)\n", s, BUSY_POLL_US_MAX);
		return -EINVAL;
	}
	*us = v;
	return 0;
}

/*
 * The window @us for the calling thread: 0 where it may run on one CPU only
 * (taskset, or a delegate session following its client there). Whoever
 * it polls for needs that CPU: polling would only delay them.
 */
static inline unsigned int busy_poll_cpus(unsigned int us)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) || CPU_COUNT(&set) < 2)
		return 0;
	return us;
}

/* Out of input: a poll of @us microseconds (0: none) starts. */
static inline void busy_poll_start(struct busy_poll *bp, unsigned int us)
{
	bp->us = us;
	bp->polling = us > 0;
	if (bp->polling)
		clock_gettime(CLOCK_MONOTONIC, &bp->start);
}

/*
 * Poll once more? False once the window is over (then sleep for the
 * input); true after yielding the CPU to whoever else wants it.
 */
static inline bool busy_poll_more(struct busy_poll *bp)
{
	struct timespec now;
	long long us;

	if (!bp->polling)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	us = (now.tv_sec - bp->start.tv_sec) * 1000000LL + (now.tv_nsec - bp->start.tv_nsec) / 1000;
	if (us >= bp->us) {
		bp->polling = false;
		return false;
	}
	sched_yield();
	return true;
}

#endif
