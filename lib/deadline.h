/* SPDX-License-Identifier: GPL-2.0 */
/* A wait's end on CLOCK_REALTIME, as pthread_cond_timedwait() wants it (monitor and delegate). */
#ifndef RSYS_DEADLINE_H
#define RSYS_DEADLINE_H

#include <time.h>

/* @ms from now on CLOCK_REALTIME in *@ts. */
static inline void deadline_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

#endif
