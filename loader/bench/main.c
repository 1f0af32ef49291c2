// SPDX-License-Identifier: GPL-2.0
/* rsys-bench: reproduces the original's Table 1 (select costs) natively and under rsys. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "frame.h"
#include "log.h"

#define DEFAULT_ITERS 100000
#define LATE_MAX_ITERS 10000	/* each call of BENCH_LATE_LOCAL waits ~0.1 ms for its helper */

struct bench_run {
	char dir[PATH_MAX];		/* directory holding rsys-load and rsys-delegate */
	char tmp[64];			/* private directory for the delegate's socket */
	char addr[PATH_MAX];		/* "unix:TMP/delegate.sock" */
	char policy[PATH_MAX];		/* TMP/bench.policy */
	pid_t delegate;
	long iters;
	double seconds[BENCH_NTESTS];	/* median call x iterations */
	double wall[BENCH_NTESTS];	/* the loop's wall time */
	double close_seconds;
	long late_iters;		/* BENCH_LATE_LOCAL's iterations */
	double late_close_seconds;
	uint64_t late_cancelled;	/* the delegate's cancelled counter over BENCH_LATE_LOCAL */
	double floor_seconds;		/* bench_floor(): 0 if it could not be measured */
	const char *mode;		/* --mode for rsys-load run: "remote" (default) or "direct" */
};

/* What a SIGINT/SIGTERM must still clean up: the delegate and its directory. */
static struct bench_run *cleanup_run;

static void on_fatal_signal(int sig)
{
	struct bench_run *r = cleanup_run;
	char path[PATH_MAX + 32];

	if (r && r->delegate > 0)
		kill(r->delegate, SIGTERM);
	if (r && r->tmp[0]) {
		snprintf(path, sizeof(path), "%s/delegate.sock", r->tmp);
		unlink(path);
		unlink(r->policy);
		rmdir(r->tmp);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-bench [-n N] [-j] [--png FILE] [--mode direct|remote] [-v]\n"
		"Runs the original's synthetic select tests (N iterations each, default %d)\n"
		"natively and under rsys-load run with a private loopback rsys-delegate,\n"
		"and prints seconds, ratio to native and the original's ratio.\n"
		"  -n N        iterations per test\n"
		"  -j          JSON output\n"
		"  --png FILE  also write a bar chart of the ratios (needs gnuplot)\n"
		"  --mode M    rsys-load run --mode M (default remote)\n"
		"  -v          more messages (repeatable)\n"
		"  -h, --help  this text\n", DEFAULT_ITERS);
}

/* Where rsys-bench lives: rsys-load and rsys-delegate are expected next to it. */
static int self_dir(char *dir, size_t cap)
{
	ssize_t n = readlink("/proc/self/exe", dir, cap - 1);
	char *slash;

	if (n < 0)
		return -errno;
	dir[n] = '\0';
	slash = strrchr(dir, '/');
	if (!slash)
		return -EINVAL;
	*slash = '\0';
	return 0;
}

static int need_binary(const struct bench_run *r, const char *name, char *path, size_t cap)
{
	snprintf(path, cap, "%s/%s", r->dir, name);
	if (access(path, X_OK)) {
		pr_err("%s not found next to rsys-bench (build it with make, or install rsys)\n",
		       path);
		return -ENOENT;
	}
	return 0;
}

/* Everything under rsys-load is trusted; inet sockets are remote; no egress is needed. */
static int write_policy(struct bench_run *r)
{
	FILE *f;

	snprintf(r->policy, sizeof(r->policy), "%s/bench.policy", r->tmp);
	f = fopen(r->policy, "we");
	if (!f) {
		pr_err("cannot write %s: %s\n", r->policy, err_str(errno));
		return -errno;
	}
	fprintf(f, "# rsys-bench policy\ntrusted *\nremote inet inet6\ndelegate %s\n"
		"limit fds 256\nlimit inflight 64\n", r->addr);
	return fclose(f) ? -EIO : 0;
}

static int delegate_start(struct bench_run *r)
{
	char path[PATH_MAX + 32];
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int i, fd;

	if (need_binary(r, "rsys-delegate", path, sizeof(path)))
		return -ENOENT;
	snprintf(r->tmp, sizeof(r->tmp), "/tmp/rsys-bench.XXXXXX");
	if (!mkdtemp(r->tmp)) {
		pr_err("cannot create a directory in /tmp: %s\n", err_str(errno));
		return -errno;
	}
	snprintf(r->addr, sizeof(r->addr), "unix:%s/delegate.sock", r->tmp);
	if (write_policy(r))
		return -EIO;
	r->delegate = fork();
	if (r->delegate < 0)
		return -errno;
	if (!r->delegate) {
		execl(path, "rsys-delegate", "--listen", r->addr, "--policy", r->policy, (char *)NULL);
		pr_err("cannot run %s: %s\n", path, err_str(errno));
		_exit(127);
	}
	/* ready when it accepts connections; give it 5 s */
	for (i = 0; i < 500; i++) {
		fd = addr_connect(r->addr, NULL);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(r->delegate, NULL, WNOHANG) == r->delegate) {
			r->delegate = 0;
			break;
		}
		nanosleep(&pause, NULL);
	}
	pr_err("rsys-delegate did not start listening on %s (run it by hand to see why)\n",
	       r->addr);
	return -ETIMEDOUT;
}

static void delegate_stop(struct bench_run *r)
{
	char path[PATH_MAX];

	if (r->delegate > 0) {
		kill(r->delegate, SIGTERM);
		waitpid(r->delegate, NULL, 0);
		r->delegate = 0;
	}
	if (r->tmp[0]) {
		snprintf(path, sizeof(path), "%s/delegate.sock", r->tmp);
		unlink(path);
		unlink(r->policy);
		rmdir(r->tmp);
		r->tmp[0] = '\0';
	}
}

/* The delegate's count of cancelled requests, over a session of our own. */
static int delegate_cancelled(const struct bench_run *r, uint64_t *cancelled)
{
	struct rsys_delegate_stats st;
	int ret = delegate_stats(r->addr, &st);

	if (!ret)
		*cancelled = st.cancelled;
	return ret;
}

/* Run the workload of @t in a child (under rsys-load run for all but native); read its seconds. */
static int run_test(struct bench_run *r, enum bench_test t)
{
	char load[PATH_MAX + 32], self[PATH_MAX + 32], iters[32], test[16];
	int pipefd[2], status;
	double v[3] = { 0, 0, 0 };
	FILE *out;
	pid_t pid;
	int n;

	snprintf(self, sizeof(self), "%s/rsys-bench", r->dir);
	snprintf(iters, sizeof(iters), "%ld", t == BENCH_LATE_LOCAL ? r->late_iters : r->iters);
	snprintf(test, sizeof(test), "%d", t);
	if (bench_tests[t].remote && need_binary(r, "rsys-load", load, sizeof(load)))
		return -ENOENT;
	if (pipe(pipefd))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		if (bench_tests[t].remote)
			execl(load, "rsys-load", "run", "--mode", r->mode, "--policy", r->policy,
			      "--delegate", r->addr, "--", self, "--worker", test, iters, (char *)NULL);
		else
			execl(self, "rsys-bench", "--worker", test, iters, (char *)NULL);
		pr_err("cannot run %s: %s\n", bench_tests[t].remote ? load : self,
		       err_str(errno));
		_exit(127);
	}
	close(pipefd[1]);
	out = fdopen(pipefd[0], "r");
	if (!out)
		return -errno;
	n = fscanf(out, "%lf %lf %lf", &v[0], &v[1], &v[2]);
	fclose(out);
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	if (!WIFEXITED(status) || WEXITSTATUS(status) || n < 2 ||
	    ((t == BENCH_LOCAL_NRREMOTE || t == BENCH_LATE_LOCAL) && n < 3)) {
		pr_err("test %s failed (see the messages above)\n", bench_tests[t].name);
		return -EIO;
	}
	r->seconds[t] = v[0];
	r->wall[t] = v[1];
	if (t == BENCH_LOCAL_NRREMOTE)
		r->close_seconds = v[2];
	if (t == BENCH_LATE_LOCAL)
		r->late_close_seconds = v[2];
	pr_info("%s: %.6f s (wall %.6f s)\n", bench_tests[t].name, v[0], v[1]);
	return 0;
}

static double ratio(const struct bench_run *r, enum bench_test t)
{
	return r->seconds[BENCH_NATIVE] > 0 ? r->seconds[t] / r->seconds[BENCH_NATIVE] : 0;
}

static void print_table(const struct bench_run *r)
{
	int t;

	printf("%-30s %12s %8s %10s %12s\n", "test", "seconds", "ratio", "original", "wall s");
	for (t = 0; t < BENCH_NROWS; t++)
		printf("%-30s %12.6f %8.1f %10s %12.6f\n", bench_tests[t].name, r->seconds[t],
		       ratio(r, t), bench_tests[t].original, r->wall[t]);
	printf("seconds = median call x %ld iterations; wall s = the loop's elapsed time\n", r->iters);
	printf("close after %ld cancels (with one essential remote call): %.6f s"
	       " (%.3f %% of the loop; original: 16 s of 31 s)\n", r->iters,
	       r->close_seconds, r->wall[BENCH_LOCAL_NRREMOTE] > 0 ?
	       100 * r->close_seconds / r->wall[BENCH_LOCAL_NRREMOTE] : 0);
	if (r->floor_seconds > 0)
		printf("trap floor: the trapped loop answered by a bare seccomp-notify CONTINUE in another\n"
		       "  process, nothing else: %.6f s, ratio %.1f (no seccomp monitor goes below it here)\n",
		       r->floor_seconds, r->seconds[BENCH_NATIVE] > 0 ?
		       r->floor_seconds / r->seconds[BENCH_NATIVE] : 0);
	printf("%s: the local fd gets ready after the remote half was sent: %ld calls,"
	       " median %.1f us, %llu cancels at the delegate;\n  close after them (with one essential"
	       " remote call): %.6f s (%.3f %% of the loop)\n", bench_tests[BENCH_LATE_LOCAL].name,
	       r->late_iters, r->seconds[BENCH_LATE_LOCAL] / r->late_iters * 1e6,
	       (unsigned long long)r->late_cancelled, r->late_close_seconds,
	       r->wall[BENCH_LATE_LOCAL] > 0 ? 100 * r->late_close_seconds / r->wall[BENCH_LATE_LOCAL] : 0);
}

static void print_json(const struct bench_run *r)
{
	int t;

	printf("{\"rows\": [");
	for (t = 0; t < BENCH_NROWS; t++)
		printf("%s{\"test\": \"%s\", \"seconds\": %.6f, \"ratio\": %.3f}", t ? ", " : "",
		       bench_tests[t].name, r->seconds[t], ratio(r, t));
	printf("], \"close_after_cancels_seconds\": %.6f, \"trap_floor_seconds\": %.6f,"
	       " \"trap_floor_ratio\": %.3f}\n", r->close_seconds, r->floor_seconds,
	       r->seconds[BENCH_NATIVE] > 0 ? r->floor_seconds / r->seconds[BENCH_NATIVE] : 0);
}

/* Bar chart of rsys's ratios next to the original's, drawn by gnuplot. */
static int write_png(const struct bench_run *r, const char *file)
{
	FILE *g;
	int t, pass;

	if (strpbrk(file, "'\n")) {
		pr_err("--png file name must not contain quotes or newlines\n");
		return -EINVAL;
	}
	g = popen("gnuplot", "w");
	if (!g) {
		pr_err("cannot run gnuplot (apt-get install gnuplot-nox)\n");
		return -errno;
	}
	fprintf(g, "set terminal png size 900,520\nset output '%s'\n"
		"set title 'rsys-bench: %ld select calls per test, ratio to native'\n"
		"set style data histograms\nset style histogram clustered gap 1\n"
		"set style fill solid border -1\nset logscale y\nset yrange [0.5:*]\n"
		"set ylabel 'ratio to native (log)'\nset xtics rotate by -20 font ',9'\n"
		"set key top left\n"
		"plot '-' using 2:xtic(1) title 'rsys', '-' using 2 title 'original (2010)'\n",
		file, r->iters);
	for (pass = 0; pass < 2; pass++) {
		for (t = 0; t < BENCH_NROWS; t++)
			fprintf(g, "\"%s\" %f\n", bench_tests[t].name,
				pass ? bench_tests[t].original_ratio : ratio(r, t));
		fprintf(g, "e\n");
	}
	if (pclose(g)) {
		pr_err("gnuplot failed to write %s\n", file);
		return -EIO;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "png", required_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'M' },
		{ "worker", no_argument, NULL, 'W' },
		{ NULL, 0, NULL, 0 },
	};
	struct bench_run r = { .iters = DEFAULT_ITERS, .mode = "remote" };
	const char *png = NULL;
	bool json = false, worker = false;
	char *end;
	uint64_t c0 = 0, c1 = 0;
	int c, t, err = 0;

	log_prog = "rsys-bench";
	while ((c = getopt_long(argc, argv, "hjn:v", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			return 0;
		case 'j':
			json = true;
			break;
		case 'n':
			r.iters = strtol(optarg, &end, 10);
			if (*end || r.iters <= 0) {
				pr_err("-n wants a positive number of iterations\n");
				return 1;
			}
			break;
		case 'p':
			png = optarg;
			break;
		case 'M':
			if (strcmp(optarg, "direct") && strcmp(optarg, "remote")) {
				pr_err("--mode wants direct or remote\n");
				return 1;
			}
			r.mode = optarg;
			break;
		case 'v':
			log_level++;
			break;
		case 'W':
			worker = true;
			break;
		default:
			usage(stderr);
			return 1;
		}
	}
	/* internal: rsys-bench --worker TEST ITERS is the measured program */
	if (worker) {
		if (argc - optind != 2)
			return 1;
		t = atoi(argv[optind]);
		if (t < 0 || t >= BENCH_NTESTS)
			return 1;
		return bench_worker(t, atol(argv[optind + 1]));
	}
	if (optind != argc) {
		usage(stderr);
		return 1;
	}
	if (self_dir(r.dir, sizeof(r.dir))) {
		pr_err("cannot find where rsys-bench is installed (/proc not mounted?)\n");
		return 1;
	}
	r.late_iters = r.iters < LATE_MAX_ITERS ? r.iters : LATE_MAX_ITERS;
	cleanup_run = &r;
	signal(SIGINT, on_fatal_signal);
	signal(SIGTERM, on_fatal_signal);
	signal(SIGHUP, on_fatal_signal);
	err = delegate_start(&r);
	for (t = 0; !err && t < BENCH_NTESTS; t++) {
		if (t == BENCH_LATE_LOCAL && delegate_cancelled(&r, &c0))
			break;
		err = run_test(&r, t);
		if (!err && t == BENCH_LATE_LOCAL && !delegate_cancelled(&r, &c1))
			r.late_cancelled = c1 - c0;
	}
	delegate_stop(&r);
	if (err)
		return 1;
	if (bench_floor(r.iters, &r.floor_seconds)) {
		pr_info("the trap floor could not be measured\n");
		r.floor_seconds = 0;
	}
	if (json)
		print_json(&r);
	else
		print_table(&r);
	if (png && write_png(&r, png))
		return 1;
	return 0;
}
