// SPDX-License-Identifier: GPL-2.0
/* 10000 split selects whose remote half never fires, and blocked ones interrupted by signals, leave nothing behind at the delegate. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"
#include "ktap.h"

#define ITERS 10000
#define WARMUP 1000
#define SIGNALLED 50

/*
 * The local fd becomes ready only after the select has started (a helper
 * thread writes the pipe when asked), so every iteration sends the remote
 * half to the delegate and must cancel it.
 */
static int go[2], data[2];

static void *pinger(void *arg)
{
	long i, iters = (long)arg;
	char b;

	for (i = 0; i < iters; i++) {
		if (read(go[0], &b, 1) != 1)
			break;
		usleep(200);	/* after the select has sent its remote half */
		if (write(data[1], "x", 1) != 1)
			break;
	}
	return NULL;
}

/* @iters split selects whose local half wins after the remote half was sent. */
static long split_selects(int u, long iters)
{
	pthread_t t;
	fd_set r;
	long i;
	char b;
	int n;

	pthread_create(&t, NULL, pinger, (void *)iters);
	for (i = 0; i < iters; i++) {
		FD_ZERO(&r);
		FD_SET(data[0], &r);
		FD_SET(u, &r);
		if (write(go[1], "x", 1) != 1)
			break;
		n = select((u > data[0] ? u : data[0]) + 1, &r, NULL, NULL, NULL);
		if (n != 1 || !FD_ISSET(data[0], &r) || FD_ISSET(u, &r) || read(data[0], &b, 1) != 1)
			break;
	}
	pthread_join(t, NULL);
	return i;
}

static void on_usr1(int sig)
{
	(void)sig;
}

struct kicker {
	pthread_t self;
	pid_t tid;
	long n;
};

/* Interrupt each of @n blocked selects of thread @tid with SIGUSR1. */
static void *kicker_fn(void *arg)
{
	struct timespec pause = { 0, 5 * 1000 * 1000 };
	struct kicker *k = arg;
	long i;

	for (i = 0; i < k->n; i++) {
		nanosleep(&pause, NULL);
		syscall(SYS_tgkill, getpid(), k->tid, SIGUSR1);
	}
	return NULL;
}

/*
 * @n split selects that nothing makes ready, each interrupted by a signal:
 * the notification becomes invalid, the monitor must cancel the remote
 * half. Returns how many failed with EINTR.
 */
static long interrupted_selects(int u, long n)
{
	struct sigaction sa = { .sa_handler = on_usr1 };
	struct kicker k = { .tid = gettid(), .n = n };
	long i, eintr = 0;
	int idle[2];
	fd_set r;

	if (pipe(idle))
		return 0;
	sigaction(SIGUSR1, &sa, NULL);
	pthread_create(&k.self, NULL, kicker_fn, &k);
	for (i = 0; i < n; i++) {
		struct timeval tv = { 1, 0 };

		FD_ZERO(&r);
		FD_SET(idle[0], &r);
		FD_SET(u, &r);
		if (select((u > idle[0] ? u : idle[0]) + 1, &r, NULL, NULL, &tv) < 0 && errno == EINTR)
			eintr++;
	}
	pthread_join(k.self, NULL);
	close(idle[0]);
	close(idle[1]);
	return eintr;
}

static long proc_count(pid_t pid, const char *what)
{
	char path[64], line[128];
	long v = -1;
	FILE *f;

	if (!strcmp(what, "fd")) {
		char cmd[96];

		snprintf(cmd, sizeof(cmd), "ls /proc/%d/fd | wc -l", pid);
		f = popen(cmd, "r");
		if (!f || fscanf(f, "%ld", &v) != 1)
			v = -1;
		if (f)
			pclose(f);
		return v;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, what, strlen(what)) && sscanf(line + strlen(what), ": %ld", &v) == 1)
			break;
	fclose(f);
	return v;
}

/* The delegate (WAIT_DELEGATE, its pid) and what main() saw of it after the warm-up. */
static const char *addr;
static pid_t pid;
static struct rsys_delegate_stats s0;
static long fd0, rss0, thr0;
static int u;

TEST(split_selects)
{
	long i = split_selects(u, ITERS);

	CHECK(i == ITERS, "%ld of %d split selects won by the local half", i, ITERS);
}

TEST(interrupted_selects)
{
	long i = interrupted_selects(u, SIGNALLED);

	CHECK(i >= SIGNALLED / 2, "%ld of %d blocked split selects interrupted by a signal (EINTR)",
	      i, SIGNALLED);
}

/* Nothing left behind (requests, threads, handles, memory); a cancel per select that reached it. */
TEST(delegate_clean)
{
	struct timespec settle = { 0, 100000000 };
	struct rsys_delegate_stats s1;
	long fd1, rss1, thr1;
	int k;

	/* the cancels travel behind the calls: give the delegate a moment to finish them */
	for (k = 0; k < 50; k++) {
		nanosleep(&settle, NULL);
		if (delegate_stats(addr, &s1))
			break;
		if (s1.inflight <= s0.inflight)
			break;
	}
	fd1 = proc_count(pid, "fd");
	rss1 = proc_count(pid, "VmRSS");
	thr1 = proc_count(pid, "Threads");
	CHECK(s1.inflight <= s0.inflight, "delegate requests in flight: %llu -> %llu",
	      (unsigned long long)s0.inflight, (unsigned long long)s1.inflight);
	/* the session's pool follows the peak of concurrent requests, never the count of calls */
	CHECK(s1.threads <= s0.threads + 16 && thr1 <= thr0 + 16,
	      "delegate threads: %llu -> %llu (/proc: %ld -> %ld)", (unsigned long long)s0.threads,
	      (unsigned long long)s1.threads, thr0, thr1);
	CHECK(s1.handles == s0.handles && fd1 <= fd0 + 2,
	      "delegate handles %llu -> %llu, fds %ld -> %ld", (unsigned long long)s0.handles, (unsigned long long)s1.handles, fd0, fd1);
	CHECK(rss1 < rss0 + 8192, "delegate VmRSS %ld -> %ld kB", rss0, rss1);
	CHECK(s1.cancelled - s0.cancelled <= ITERS + SIGNALLED &&
	      s1.cancelled - s0.cancelled >= ITERS / 2,
	      "delegate cancelled %llu requests (one per split select that reached it)",
	      (unsigned long long)(s1.cancelled - s0.cancelled));
}

int main(void)
{
	const char *dpid = getenv("WAIT_DELEGATE_PID");
	struct timespec settle = { 0, 100000000 };

	addr = getenv("WAIT_DELEGATE");
	pid = dpid ? atoi(dpid) : 0;
	if (!addr || !pid)
		ktap_exit_skip("needs WAIT_DELEGATE and WAIT_DELEGATE_PID (run by wait_test.sh under rsys)");
	if (pipe(go) || pipe(data))
		ktap_exit_skip("pipe: %s", strerror(errno));
	u = socket(AF_INET, SOCK_DGRAM, 0);
	if (u < 0)
		ktap_exit_skip("socket: %s", strerror(errno));
	/*
	 * Warm up with the same pattern: the delegate keeps a pool of threads
	 * per session as large as the most requests it ever ran at once (async
	 * cancels overlap the next call); it must not grow with the count.
	 */
	if (split_selects(u, WARMUP) != WARMUP)
		ktap_exit_skip("warm-up split selects failed: %s", strerror(errno));
	nanosleep(&settle, NULL);
	if (delegate_stats(addr, &s0))
		ktap_exit_skip("cannot read the delegate's counters at %s", addr);
	fd0 = proc_count(pid, "fd");
	rss0 = proc_count(pid, "VmRSS");
	thr0 = proc_count(pid, "Threads");
	return ktap_run();
}
