// SPDX-License-Identifier: GPL-2.0
/* "rsys-load run": passport check, delegate session, compute-domain child, supervisor, exit status pass-through. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cmds.h"
#include "execguard.h"
#include "log.h"
#include "supervisor.h"
#include "../guest/guest.h"

#define RUN_REAP_ROUNDS	100	/* bound on killing leftover descendants */
#define RUN_GRACE_S	3	/* after INT/TERM/HUP: the program's time to exit, then the monitor's */

static volatile pid_t run_child;
static volatile sig_atomic_t run_stopsig;	/* the first INT/TERM/HUP forwarded */

static void run_usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-load run --policy FILE [--delegate ADDR] [--netns NAME] [-v] -- PROG [ARGS...]\n"
		"\n"
		"Run PROG trusted in a compute domain (a fresh network namespace holding only lo,\n"
		"or /run/netns/NAME); its sockets of remote families are executed by the delegate.\n"
		"\n"
		"  --policy FILE     policy naming the trusted programs and remote families\n"
		"  --delegate ADDR   delegate address (default: the policy's; unix:PATH, tcp:HOST:PORT)\n"
		"  --netns NAME      join /run/netns/NAME instead of creating a namespace\n"
		"  -v, --verbose     more messages (repeat for debug messages)\n"
		"  -h, --help        this text\n");
}

static void run_forward(int sig)
{
	/* Once the program is gone, the signal is for the monitor itself. */
	if (run_child <= 0) {
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	kill(run_child, sig);
	if (!run_stopsig) {
		run_stopsig = sig;
		alarm(RUN_GRACE_S);
	}
}

/*
 * The grace after a forwarded INT/TERM/HUP is over: a program that is still
 * there is killed; if the monitor itself is still there a grace later (its
 * cleanup hangs, e.g. on a delegate that does not read), it exits as if
 * killed by that signal. So a stop request never leaves the monitor hanging.
 */
static void run_alarm(int sig)
{
	(void)sig;
	if (run_child > 0) {
		kill(run_child, SIGKILL);
		alarm(RUN_GRACE_S);
		return;
	}
	_exit(128 + run_stopsig);
}

/* Resolve @prog like execvp: a name without '/' is searched in PATH. */
static int resolve_prog(const char *prog, char *out, size_t len)
{
	const char *path = getenv("PATH");
	const char *p, *end;
	char buf[PATH_MAX];

	if (strchr(prog, '/')) {
		if (access(prog, X_OK))
			return -errno;
		return realpath(prog, out) ? 0 : -errno;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (p = path; *p; p = *end ? end + 1 : end) {
		end = strchrnul(p, ':');
		if ((size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)(end - p), end == p ? "." : p,
				     prog) >= sizeof(buf))
			continue;
		if (!access(buf, X_OK)) {
			struct stat sb;

			if (!stat(buf, &sb) && S_ISREG(sb.st_mode) && realpath(buf, out) && strlen(out) < len)
				return 0;
		}
	}
	return -ENOENT;
}

/* Kill what the program left running (reparented to us as subreaper) and reap it. */
static void reap_leftovers(void)
{
	int round, killed;
	struct dirent *de;
	char path[64];
	DIR *d;

	for (round = 0; round < RUN_REAP_ROUNDS; round++) {
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		killed = 0;
		d = opendir("/proc");
		if (!d)
			return;
		while ((de = readdir(d))) {
			int pid = atoi(de->d_name), ppid = 0;
			FILE *f;

			if (pid <= 0)
				continue;
			snprintf(path, sizeof(path), "/proc/%d/stat", pid);
			f = fopen(path, "re");
			if (!f)
				continue;
			if (fscanf(f, "%*d (%*[^)]) %*c %d", &ppid) == 1 && ppid == getpid()) {
				kill(pid, SIGKILL);
				killed++;
			}
			fclose(f);
		}
		closedir(d);
		if (!killed)
			return;
		while (waitpid(-1, NULL, 0) > 0)
			;
	}
}

/* Exit like the program did: same code, or the same signal. */
static int pass_status(int status)
{
	struct sigaction sa = { .sa_handler = SIG_DFL };
	sigset_t set;
	int sig;

	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	sig = WTERMSIG(status);
	sigaction(sig, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	/* No core file of ours for the program's crash. */
	prctl(PR_SET_DUMPABLE, 0);
	raise(sig);
	return 128 + sig;
}

int do_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "delegate", required_argument, NULL, 'D' },
		{ "netns", required_argument, NULL, 'n' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *policy_file = NULL, *delegate = NULL, *netns = NULL;
	struct sigaction sa = { .sa_handler = run_forward };
	struct sigaction sa_alarm = { .sa_handler = run_alarm };
	sigset_t stopsigs, oldmask;
	struct execguard *guard = NULL;
	struct rsys_maps maps;
	struct rsys_trusted t;
	struct rlimit rl;
	char prog[PATH_MAX];
	struct policy *p;
	struct remote *rc;
	struct sv sv = { 0 };
	int c, ret, status = 0, lfd;
	pid_t pid, w;

	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			policy_file = optarg;
			break;
		case 'D':
			delegate = optarg;
			break;
		case 'n':
			netns = optarg;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			run_usage(stderr);
			return 1;
		}
	}
	if (!policy_file || optind >= argc) {
		fprintf(stderr, "Error: run needs --policy FILE and a program\n");
		run_usage(stderr);
		return 1;
	}

	p = calloc(1, sizeof(*p));
	if (!p)
		return 1;
	if (policy_load(p, policy_file, stderr)) {
		fprintf(stderr, "Error: cannot load policy %s\n", policy_file);
		return 1;
	}
	ret = resolve_prog(argv[optind], prog, sizeof(prog));
	if (ret) {
		fprintf(stderr, "Error: cannot find program '%s': %s\n", argv[optind], strerror(-ret));
		return 127;
	}
	/* The passport check says why on stderr; the monitor repeats it on the file execve opens. */
	if (policy_check_trusted(p, prog, stderr))
		return 1;
	if (!delegate)
		delegate = p->delegate;
	if (!*delegate) {
		fprintf(stderr, "Error: no delegate address: give --delegate ADDR or a 'delegate' line in %s\n",
			policy_file);
		return 1;
	}
	ret = remote_open(&rc, delegate, stderr);
	if (ret) {
		fprintf(stderr, "Error: delegate %s is unreachable (is rsys-delegate running there?)\n",
			delegate);
		return 1;
	}
	if (maps_open(&maps) == -ENOENT)
		pr_info("rsys is not attached: the BPF fd table is not published\n");

	/* Without the guard the monitor cannot bind its check to what the kernel runs: fail closed. */
	if (!policy_trusts_all(p)) {
		ret = execguard_open(&guard, p);
		if (ret)
			pr_warn("Error: cannot load the exec guard (BPF: %s): every execve after the one starting %s will be refused\n",
				strerror(-ret), prog);
	}

	/* Orphans of the program come to us, so nothing outlives the run. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* A stop signal before the handlers know the program stays pending, never lost. */
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &stopsigs, &oldmask);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "Error: fork: %s\n", strerror(errno));
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		execguard_close(guard);
		return 1;
	}
	if (!pid) {
		struct guest_opts g = {
			.path = prog, .argv = argv + optind, .netns = netns,
			.policy = p,
		};

		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		guest_exec(&g);
	}
	run_child = pid;
	/* One anchor fd per remote socket: the monitor (not the program) may use its hard limit. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	sigaction(SIGALRM, &sa_alarm, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigprocmask(SIG_SETMASK, &oldmask, NULL);

	/* The child stops once its filter is installed; otherwise it failed and said why. */
	lfd = -1;
	while ((w = waitpid(pid, &status, WUNTRACED)) < 0 && errno == EINTR)
		;
	if (w != pid || !WIFSTOPPED(status))
		goto out_reap;
	lfd = guest_listener(pid);
	if (lfd < 0) {
		fprintf(stderr, "Error: cannot take the seccomp listener of the program: %s\n",
			strerror(-lfd));
		kill(pid, SIGKILL);
		goto out_wait;
	}
	if (guard) {
		ret = execguard_add(guard, pid);
		if (ret) {
			fprintf(stderr, "Error: cannot guard the execs of the program: %s\n",
				strerror(-ret));
			kill(pid, SIGKILL);
			goto out_wait;
		}
	}
	t.monitor = getpid();
	t.session = getpid();
	maps_trust(&maps, pid, &t);
	sv.notify_fd = lfd;
	sv.policy = p;
	sv.remote = rc;
	sv.maps = &maps;
	sv.guard = guard;
	ret = sv_start(&sv);
	if (ret) {
		fprintf(stderr, "Error: cannot start the supervisor: %s\n", strerror(-ret));
		kill(pid, SIGKILL);
	}
	kill(pid, SIGCONT);

out_wait:
	for (;;) {
		w = waitpid(-1, &status, 0);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			status = 127 << 8;
			break;
		}
	}
out_reap:
	run_child = 0;
	reap_leftovers();
	if (lfd >= 0) {
		if (!ret)
			sv_stop(&sv);
		close(lfd);
	}
	remote_close(rc);
	maps_close(&maps);
	execguard_close(guard);
	free(p);
	return pass_status(status);
}
