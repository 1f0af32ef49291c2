/* SPDX-License-Identifier: GPL-2.0 */
/* Debug builds (make LOCKDEBUG=1, check-tsan): each thread counts the mutexes it holds, to check the lock rule. */
#ifndef RSYS_LOCKDEBUG_H
#define RSYS_LOCKDEBUG_H

/*
 * The rule (supervisor.c, "DOC: Theory of operation"): no lock is held
 * across a send that can block on the wire. The Makefile puts this header
 * before every source file of such a build (-include), so that every
 * pthread_mutex_lock/unlock counts; TSAN checks the lock order itself.
 */
#ifdef RSYS_LOCKDEBUG
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

/* one counter per thread, whichever file (and program: rsys-delegate too) includes this */
__attribute__((weak)) __thread int rsys_locks_held;

static inline int rsys_mutex_lock(pthread_mutex_t *m)
{
	int ret = (pthread_mutex_lock)(m);

	if (!ret)
		rsys_locks_held++;
	return ret;
}

static inline int rsys_mutex_unlock(pthread_mutex_t *m)
{
	rsys_locks_held--;
	return (pthread_mutex_unlock)(m);
}

#define pthread_mutex_lock(m)	rsys_mutex_lock(m)
#define pthread_mutex_unlock(m)	rsys_mutex_unlock(m)

/* Abort where a send that may block starts with a lock held (@what: which). */
#define rsys_assert_unlocked(what)						\
	do {									\
		if (rsys_locks_held) {						\
			fprintf(stderr, "rsys: lock rule broken: %s with %d lock(s) held\n", \
				what, rsys_locks_held);				\
			abort();						\
		}								\
	} while (0)
#else
#define rsys_assert_unlocked(what)	do { } while (0)
#endif

#endif
