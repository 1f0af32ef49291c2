/* SPDX-License-Identifier: GPL-2.0 */
/* Trace events (include/rsys/trace.h): the non-blocking producer side and the one text/JSON formatter. */
#ifndef RSYS_LIB_TRACE_H
#define RSYS_LIB_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <rsys/trace.h>

/* The reader's socket: $RSYS_TRACE_SOCK if set, else RSYS_TRACE_SOCK. */
const char *trace_sock_path(void);

/* Events of this process are from @src (enum rsys_ev_src). */
void trace_init(int src);

/*
 * Is a reader there? Cheap when none is: a connect is tried at most once a
 * second. Producers skip building events (path, digest) when false.
 */
bool trace_wanted(void);

/*
 * Send @ev (time, source, producer pid and lost count are filled in) without
 * ever blocking; when the reader's buffer is full the event is counted as
 * lost and the count goes with the next event delivered. Thread-safe.
 */
void trace_emit(struct rsys_event *ev);

/*
 * Before exiting: report a loss not yet reported, waiting at most
 * @wait_ms for room at the reader; a count that still cannot be delivered
 * is printed as a warning, never dropped silently.
 */
void trace_close(int wait_ms);

/* Copy the string @src into an event field of @cap bytes, cut if longer. */
void trace_strcpy(char *dst, size_t cap, const char *src);

/*
 * Format @ev as one line (no newline) into @buf: "key=value ..." text, or a
 * JSON object with the same keys. Returns what snprintf would.
 */
int trace_format(const struct rsys_event *ev, bool json, char *buf, size_t len);

#endif
