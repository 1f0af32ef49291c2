/* SPDX-License-Identifier: GPL-2.0 */
/* pr_warn/pr_info/pr_debug logging shared by every rsys program; -v raises the level. */
#ifndef RSYS_LOG_H
#define RSYS_LOG_H

#include <stdio.h>

enum log_level { LOG_WARN = 0, LOG_INFO = 1, LOG_DEBUG = 2 };

extern int log_level;		/* default LOG_WARN; each -v adds one */
extern const char *log_prog;	/* program name printed before each message */

#define pr_at(lvl, fmt, ...)						\
	do {								\
		if (log_level >= (lvl))					\
			fprintf(stderr, "%s: " fmt, log_prog, ##__VA_ARGS__); \
	} while (0)
#define pr_warn(fmt, ...)	pr_at(LOG_WARN, fmt, ##__VA_ARGS__)
#define pr_info(fmt, ...)	pr_at(LOG_INFO, fmt, ##__VA_ARGS__)
#define pr_debug(fmt, ...)	pr_at(LOG_DEBUG, fmt, ##__VA_ARGS__)
/* Always printed: "PROG: Error: ..." is every rsys program's one style of error message. */
#define pr_err(fmt, ...)	fprintf(stderr, "%s: Error: " fmt, log_prog, ##__VA_ARGS__)

/*
 * "Connection refused (ECONNREFUSED)": strerror() and the errno's name for
 * @err (either sign), for messages. Four calls' strings live at once, per
 * thread.
 */
const char *err_str(int err);

#endif
