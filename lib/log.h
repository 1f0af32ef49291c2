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
/* pr_warn for what a hostile loop could repeat: its first 3 times at this place in the code. */
#define pr_warn_few(fmt, ...)						\
	do {								\
		static unsigned int pr_few_;				\
		if (__atomic_fetch_add(&pr_few_, 1, __ATOMIC_RELAXED) < 3) \
			pr_warn(fmt, ##__VA_ARGS__);			\
	} while (0)
/* Always printed: "PROG: Error: ..." is every rsys program's one style of error message. */
#define pr_err(fmt, ...)	fprintf(stderr, "%s: Error: " fmt, log_prog, ##__VA_ARGS__)

/*
 * "Connection refused (ECONNREFUSED)": strerror() and the errno's name for
 * @err (either sign), for messages. Four calls' strings live at once, per
 * thread.
 */
const char *err_str(int err);

#endif
