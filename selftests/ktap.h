/* SPDX-License-Identifier: GPL-2.0 */
/* Minimal kselftest-style TAP helpers shared by the rsys selftests (exit 0 pass, 1 fail, 4 skip). */
#ifndef RSYS_KTAP_H
#define RSYS_KTAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

#define KSFT_PASS 0
#define KSFT_FAIL 1
#define KSFT_SKIP 4

static int ktap_n, ktap_failed, ktap_skipped;

static inline void ktap_plan(int n)
{
	printf("TAP version 13\n1..%d\n", n);
	fflush(stdout);
}

static inline void __attribute__((format(printf, 2, 3))) ktap_result(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%sok %d ", ok ? "" : "not ", ++ktap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!ok)
		ktap_failed++;
}

static inline void __attribute__((format(printf, 1, 2))) ktap_skip(const char *fmt, ...)
{
	va_list ap;

	printf("ok %d # SKIP ", ++ktap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	ktap_skipped++;
}

/* Skip the whole program (no plan printed yet, or all remaining cases). */
static inline void __attribute__((noreturn, format(printf, 1, 2))) ktap_exit_skip(const char *fmt, ...)
{
	va_list ap;

	printf("1..0 # SKIP ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(KSFT_SKIP);
}

static inline int ktap_finish(void)
{
	printf("# totals: pass:%d fail:%d skip:%d\n", ktap_n - ktap_failed - ktap_skipped,
	       ktap_failed, ktap_skipped);
	if (ktap_failed)
		return KSFT_FAIL;
	return ktap_skipped == ktap_n && ktap_n ? KSFT_SKIP : KSFT_PASS;
}

/* EXPECT_* records a failure and continues; ASSERT_* also ends the program. */
#define EXPECT_TRUE(cond, fmt, ...)	ktap_result(!!(cond), fmt, ##__VA_ARGS__)
#define ASSERT_TRUE(cond, fmt, ...)					\
	do {								\
		if (!(cond)) {						\
			ktap_result(0, fmt, ##__VA_ARGS__);		\
			exit(ktap_finish());				\
		}							\
		ktap_result(1, fmt, ##__VA_ARGS__);			\
	} while (0)

#endif
