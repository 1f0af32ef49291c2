// SPDX-License-Identifier: GPL-2.0
/* Storage for the logging level and program name declared in log.h, and err_str(). */
#include <string.h>

#include "log.h"

int log_level = LOG_WARN;
const char *log_prog = "rsys";

const char *err_str(int err)
{
	static __thread char buf[4][96];
	static __thread unsigned int next;
	char *b = buf[next++ % 4];
	const char *name;

	if (err < 0)
		err = -err;
	name = strerrorname_np(err);
	if (name)
		snprintf(b, sizeof(buf[0]), "%s (%s)", strerror(err), name);
	else
		snprintf(b, sizeof(buf[0]), "%s", strerror(err));
	return b;
}
