// SPDX-License-Identifier: GPL-2.0
/* Storage for the logging level and program name declared in log.h. */
#include "log.h"

int log_level = LOG_WARN;
const char *log_prog = "rsys";
