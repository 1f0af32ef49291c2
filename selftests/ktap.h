/* SPDX-License-Identifier: GPL-2.0 */
/* Minimal kselftest-style TAP helpers shared by the rsys selftests (exit 0 pass, 1 fail, 4 skip). */
#ifndef RSYS_KTAP_H
#define RSYS_KTAP_H

#include <stdarg.h>
#include <stdbool.h>
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

/* End the program on a failure before ktap_run() (in its setup): one failed result. */
static inline void __attribute__((noreturn, format(printf, 1, 2))) ktap_exit_fail(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ktap_plan(1);
	ktap_result(0, "%s", msg);
	exit(ktap_finish());
}

/*
 * kselftest_harness.h-style cases, so that the plan is computed, not
 * counted by hand: TEST(name) { ... } registers a case (in source order),
 * ktap_run() prints the plan (how many were registered) and runs them, one
 * result each. Inside a case CHECK() notes a failure and goes on,
 * REQUIRE() also ends the case, SKIP_CASE() ends it as skipped; each says
 * what it saw on a "# " line, passing or not.
 */
struct ktap_case {
	const char *name;
	void (*fn)(void);
	int line;
	struct ktap_case *next;
};

static struct ktap_case *ktap_cases;
static int ktap_case_failed;
static char ktap_case_skip[256];

static inline void ktap_case_add(struct ktap_case *c)
{
	struct ktap_case **pp = &ktap_cases;

	while (*pp && (*pp)->line < c->line)
		pp = &(*pp)->next;
	c->next = *pp;
	*pp = c;
}

#define TEST(name)								\
	static void ktap_test_##name(void);					\
	static struct ktap_case ktap_case_##name = { #name, ktap_test_##name, __LINE__, NULL }; \
	static void __attribute__((constructor)) ktap_add_##name(void)		\
	{									\
		ktap_case_add(&ktap_case_##name);				\
	}									\
	static void ktap_test_##name(void)

#define CHECK(cond, fmt, ...)							\
	do {									\
		bool ktap_ok_ = (cond);						\
										\
		printf("# %s" fmt "\n", ktap_ok_ ? "" : "FAIL: ", ##__VA_ARGS__);	\
		if (!ktap_ok_)							\
			ktap_case_failed = 1;					\
	} while (0)

#define REQUIRE(cond, fmt, ...)							\
	do {									\
		CHECK(cond, fmt, ##__VA_ARGS__);				\
		if (ktap_case_failed)						\
			return;							\
	} while (0)

#define SKIP_CASE(fmt, ...)							\
	do {									\
		snprintf(ktap_case_skip, sizeof(ktap_case_skip), fmt, ##__VA_ARGS__); \
		return;								\
	} while (0)

/* Is case @name one that $KTAP_ONLY (names, comma-separated) selects? Unset: all are. */
static inline bool ktap_selected(const char *name)
{
	const char *only = getenv("KTAP_ONLY"), *p;
	size_t len = strlen(name);

	if (!only || !*only)
		return true;
	for (p = only; p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (!strncmp(p, name, len) && (p[len] == ',' || !p[len]))
			return true;
	return false;
}

/*
 * Print the plan, run every TEST() in order (those $KTAP_ONLY names, as
 * kselftest_harness's -t); the exit status of the program.
 */
static inline int ktap_run(void)
{
	struct ktap_case *c;
	int n = 0;

	for (c = ktap_cases; c; c = c->next)
		n += ktap_selected(c->name);
	ktap_plan(n);
	for (c = ktap_cases; c; c = c->next) {
		if (!ktap_selected(c->name))
			continue;
		ktap_case_failed = 0;
		ktap_case_skip[0] = '\0';
		c->fn();
		if (ktap_case_skip[0] && !ktap_case_failed)
			ktap_skip("%s: %s", c->name, ktap_case_skip);
		else
			ktap_result(!ktap_case_failed, "%s", c->name);
	}
	return ktap_finish();
}

#endif
