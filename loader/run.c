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

#include "busypoll.h"
#include "cmds.h"
#include "events.h"
#include "execguard.h"
#include "log.h"
#include "supervisor.h"
#include "tls.h"
#include "trace.h"

#define RUN_REAP_ROUNDS	100	/* bound on killing leftover descendants */
#define RUN_GRACE_S	3	/* after INT/TERM/HUP: the program's time to exit, then the monitor's */
#define RUN_TRACE_WAIT_MS 200	/* at exit: how long a loss count waits for a slow trace reader */

static volatile pid_t run_child;
static volatile sig_atomic_t run_stopsig;	/* the first INT/TERM/HUP forwarded */

static void run_usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-load run --policy FILE [--delegate ADDR [--tls-cert FILE --tls-key FILE\n"
		"                     --tls-ca FILE]] [--netns NAME] [--uid UID | --no-sandbox]\n"
		"                     [--mode direct|remote] [--no-write-behind] [--busy-poll US] [-v]\n"
		"                     -- PROG [ARGS...]\n"
		"\n"
		"Run PROG trusted in a compute domain: a sandbox (user, mount and pid namespaces,\n"
		"no capabilities, no_new_privs) around a fresh network namespace holding only lo,\n"
		"or /run/netns/NAME; its sockets of remote families are executed by the delegate.\n"
		"\n"
		"  --policy FILE     policy naming the trusted programs and remote families\n"
		"  --delegate ADDR   delegate address (default: the policy's; unix:PATH, tcp:HOST:PORT)\n"
		"  --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
		"                    for a tcp: delegate (required there): our certificate and key,\n"
		"                    and the CA that signed the delegate's certificate\n"
		"  --netns NAME      join /run/netns/NAME instead of creating a namespace\n"
		"  --uid UID         the host uid and gid that root in the sandbox is (default 65534, never 0)\n"
		"  --no-sandbox      only the network namespace: PROG runs as root in the host's other\n"
		"                    namespaces (the compute domain is then no boundary for root)\n"
		"  --mode MODE       direct (the default with a unix: delegate and the sandbox): the\n"
		"                    program holds the delegate's real sockets and only calls that\n"
		"                    decide where packets go are trapped; remote (the default\n"
		"                    otherwise): every call on a remote socket goes to the delegate\n"
		"  --no-write-behind remote mode: every blocking TCP send waits for the delegate's\n"
		"                    reply (by default most are answered once their bytes are copied)\n"
		"  --busy-poll US    the monitor polls for the delegate's next reply this many\n"
		"                    microseconds before it sleeps (default 300, 0: never)\n"
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

/* --uid: a host id for the sandbox's root; 0 (the host's root) is refused. */
static int parse_uid(const char *s, uid_t *uid)
{
	unsigned long v;

	if (parse_ulong(s, UINT32_MAX - 1, &v))
		return -EINVAL;
	if (!v)
		return -EPERM;
	*uid = v;
	return 0;
}

/* The delegate's unix socket (and the policy's, if another) is covered in the sandbox. */
static void run_hide_delegate(struct guest_opts *go, const char *delegate, const char *policy_delegate)
{
	const char *addr[] = { delegate, policy_delegate };
	size_t i, n = 0;

	for (i = 0; i < 2 && n < GUEST_HIDE_MAX; i++)
		if (addr[i] && !strncmp(addr[i], "unix:", 5) &&
		    (!n || strcmp(go->hide[n - 1], addr[i] + 5)))
			go->hide[n++] = addr[i] + 5;
	go->hide[n] = NULL;
}

int run_exit(int status)
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

/* The options of "run", which "learn" shares: see cmds.h. */
int run_parse(int argc, char **argv, struct run_args *ra, void (*usage)(FILE *f))
{
	static const struct option opts[] = {
		{ "policy", required_argument, NULL, 'p' },
		{ "delegate", required_argument, NULL, 'D' },
		{ "netns", required_argument, NULL, 'n' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ "uid", required_argument, NULL, 'u' },
		{ "no-sandbox", no_argument, NULL, 'N' },
		{ "mode", required_argument, NULL, 'M' },
		{ "no-write-behind", no_argument, NULL, 'W' },
		{ "busy-poll", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *uid_arg = NULL;
	int c, ret;

	ra->go.sandbox = true;
	ra->go.uid = GUEST_UID_DEFAULT;
	ra->busy_poll_us = BUSY_POLL_US_DEFAULT;
	while ((c = getopt_long(argc, argv, "+vh", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			ra->policy_file = optarg;
			break;
		case 'D':
			ra->delegate = optarg;
			break;
		case 'n':
			ra->go.netns = optarg;
			break;
		case 'C':
			ra->tls.cert = optarg;
			break;
		case 'K':
			ra->tls.key = optarg;
			break;
		case 'A':
			ra->tls.ca = optarg;
			break;
		case 'u':
			uid_arg = optarg;
			break;
		case 'N':
			ra->go.sandbox = false;
			break;
		case 'M':
			if (strcmp(optarg, "direct") && strcmp(optarg, "remote")) {
				pr_err("--mode %s: not 'direct' or 'remote'\n", optarg);
				return 1;
			}
			ra->mode = optarg;
			break;
		case 'W':
			ra->no_write_behind = true;
			break;
		case 'B':
			if (busy_poll_parse(optarg, &ra->busy_poll_us))
				return 1;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			usage(stdout);
			return -1;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (!ra->policy_file || optind >= argc) {
		pr_err("%s needs --policy FILE and a program\n", argv[0]);
		usage(stderr);
		return 1;
	}
	if (uid_arg && !ra->go.sandbox) {
		pr_err("--uid and --no-sandbox exclude each other\n");
		return 1;
	}
	ret = uid_arg ? parse_uid(uid_arg, &ra->go.uid) : 0;
	if (ret == -EPERM) {
		pr_err("--uid 0 would make root in the sandbox the host's root\n");
		return 1;
	}
	if (ret) {
		pr_err("--uid %s: not a uid (1 to 4294967294)\n", uid_arg);
		return 1;
	}
	ra->argv = argv + optind;
	return 0;
}

/*
 * Direct mode unless remote mode is asked for, where it is safe: the
 * delegate must share our kernel (unix:, an fd can be passed) and the
 * program must run in the sandbox: without it, root would hold
 * capabilities over the service namespace and a real socket there
 * (SO_BINDTODEVICE, IP_TRANSPARENT, SO_MARK, raw).
 */
static bool run_direct(const struct run_args *ra, const struct remote *rc)
{
	const char *asked = ra->mode && !strcmp(ra->mode, "direct") ? "" : " (the default)";

	if (ra->mode && !strcmp(ra->mode, "remote"))
		return false;
	if (!remote_passes_fds(rc)) {
		pr_info("direct mode%s needs a unix: delegate: using remote mode\n", asked);
		return false;
	}
	if (!ra->go.sandbox) {
		pr_info("direct mode%s needs the sandbox (not --no-sandbox): using remote mode\n", asked);
		return false;
	}
	return true;
}

int run_main(struct run_args *ra, struct policy *p)
{
	struct guest_opts go = ra->go;
	struct guest g = { .sock = -1 };
	struct sigaction sa = { .sa_handler = run_forward };
	struct sigaction sa_alarm = { .sa_handler = run_alarm };
	const char *delegate = ra->delegate;
	sigset_t stopsigs, oldmask;
	struct execguard *guard = NULL;
	struct rsys_maps maps;
	struct rsys_trusted t;
	struct rlimit rl;
	char prog[PATH_MAX];
	struct remote *rc;
	struct sv sv = { 0 };
	int ret, status = 0, lfd = -1;
	pid_t w;

	trace_init(RSYS_SRC_MONITOR);
	ret = resolve_prog(ra->argv[0], prog, sizeof(prog));
	if (ret) {
		pr_err("cannot find program '%s': %s\n", ra->argv[0], err_str(-ret));
		return 127 << 8;
	}
	/* The passport check says why on stderr; the monitor repeats it on the file execve opens. */
	if (policy_check_trusted(p, prog, stderr)) {
		mon_event_exec(0, 0, prog, NULL, false, -EPERM);
		trace_close(RUN_TRACE_WAIT_MS);
		return 1 << 8;
	}
	if (!delegate)
		delegate = p->delegate;
	if (!*delegate) {
		pr_err("no delegate address: give --delegate ADDR or a 'delegate' line in %s\n",
		       ra->policy_file);
		return 1 << 8;
	}
	ret = remote_open(&rc, delegate, &ra->tls, stderr);
	if (ret) {
		pr_err("delegate %s is unreachable (is rsys-delegate running there?)\n",
		       delegate);
		return 1 << 8;
	}
	mon_events_set_policy_file(remote_policy_file(rc));
	go.direct = run_direct(ra, rc);
	go.guarded = go.direct && remote_egress_guard(rc);
	pr_info("mode: %s%s\n", go.direct ? "direct" : "remote",
		go.guarded ? " (the delegate's egress guard judges datagrams: sendto with an address runs untrapped)" :
		go.direct ? " (no egress guard at the delegate: sendto with an address is trapped)" : "");
	if (maps_open(&maps) == -ENOENT)
		pr_info("rsys is not attached: the BPF fd table is not published\n");

	/* Without the guard the monitor cannot bind its check to what the kernel runs: fail closed. */
	if (!policy_trusts_all(p)) {
		ret = execguard_open(&guard, p);
		if (ret)
			pr_err("cannot load the exec guard (BPF: %s): every execve after the one starting %s will be refused\n",
			       err_str(-ret), prog);
	}

	/* Orphans of the program come to us, so nothing outlives the run. */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	/* A stop signal before the handlers know the program stays pending, never lost. */
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGHUP);
	sigprocmask(SIG_BLOCK, &stopsigs, &oldmask);
	go.path = prog;
	go.argv = ra->argv;
	go.policy = p;
	go.sigmask = &oldmask;
	/* Without BPF telling which thread a signal woke, the kernel ends held calls itself. */
	go.killable = maps_sigwake(&maps);
	run_hide_delegate(&go, delegate, p->delegate);
	if (guest_spawn(&g, &go)) {
		sigprocmask(SIG_SETMASK, &oldmask, NULL);
		status = 1 << 8;
		goto out_reap;
	}
	run_child = g.pid;
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

	/* The program stops once its filter is installed; otherwise it failed and said why. */
	if (guest_wait_stopped(&g)) {
		status = g.status;
		goto out_reap;
	}
	lfd = guest_listener(g.prog);
	if (lfd < 0) {
		pr_err("cannot take the seccomp listener of the program: %s\n",
		       err_str(-lfd));
		kill(g.pid, SIGKILL);
		goto out_wait;
	}
	/* Before the program can fork or exec: it is stopped until SIGCONT. */
	if (guard) {
		ret = execguard_add(guard, g.prog);
		if (ret) {
			pr_err("cannot guard the execs of the program: %s\n",
			       err_str(-ret));
			kill(g.pid, SIGKILL);
			goto out_wait;
		}
	}
	t.monitor = getpid();
	t.session = getpid();
	t.flags = (go.direct ? RSYS_TRUSTED_DIRECT : 0) | (go.guarded ? RSYS_TRUSTED_GUARDED : 0);
	maps_trust(&maps, g.prog, &t);
	sv.front = &sv_seccomp;
	sv.notify_fd = lfd;
	sv.policy = p;
	sv.remote = rc;
	sv.maps = &maps;
	sv.guard = guard;
	sv.killable = go.killable;
	sv.no_write_behind = ra->no_write_behind;
	sv.busy_poll_us = ra->busy_poll_us;
	sv.direct = go.direct;
	ret = sv_start(&sv);
	if (ret) {
		pr_err("cannot start the supervisor: %s\n", err_str(-ret));
		kill(g.pid, SIGKILL);
	} else {
		mon_event_exec(g.prog, g.prog, prog, NULL, true, 0);
	}
	kill(g.prog, SIGCONT);

out_wait:
	for (;;) {
		w = waitpid(-1, &status, 0);
		if (w == g.pid) {
			status = guest_status(&g, status);
			break;
		}
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
	guest_close(&g);
	remote_close(rc);
	maps_close(&maps);
	execguard_close(guard);
	trace_close(RUN_TRACE_WAIT_MS);
	return status;
}

int do_run(int argc, char **argv)
{
	struct run_args ra = { 0 };
	struct policy *p;
	int ret;

	ret = run_parse(argc, argv, &ra, run_usage);
	if (ret)
		return ret < 0 ? 0 : ret;
	p = calloc(1, sizeof(*p));
	if (!p)
		return 1;
	if (policy_load(p, ra.policy_file, stderr)) {
		pr_err("cannot load policy %s\n", ra.policy_file);
		free(p);
		return 1;
	}
	ret = run_main(&ra, p);
	free(p);
	return run_exit(ret);
}
