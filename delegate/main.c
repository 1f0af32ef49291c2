// SPDX-License-Identifier: GPL-2.0
/* rsys-delegate: the service-domain daemon that executes forwarded socket calls (rsys-delegate(8)). */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "delegate.h"
#include "frame.h"
#include "log.h"

#define DEFAULT_LIMIT_FDS	256
#define DEFAULT_LIMIT_INFLIGHT	64
#define MAX_SESSIONS		1024

struct delegate dlg;
static struct policy policy;

void stats_read(struct rsys_delegate_stats *out)
{
	const uint64_t *src = (const uint64_t *)&dlg.stats;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-delegate [--listen ADDR] [--policy FILE] [-v]... [--help]\n"
		"Execute the socket calls that rsys monitors forward from compute domains.\n"
		"\n"
		"  -l, --listen ADDR   listen on unix:PATH, tcp:HOST:PORT or vsock:CID:PORT\n"
		"                      (default: the policy's 'delegate' address)\n"
		"  -p, --policy FILE   enforce the egress rules and limits of FILE\n"
		"                      (without it every destination is allowed)\n"
		"  -v, --verbose       more messages; repeat for debug messages\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"See rsys-delegate(8) and policy/README.md.\n");
}

static void cancel_handler(int sig)
{
	(void)sig;
}

/* Cancel signal without SA_RESTART; SIGTERM/SIGINT go to a signalfd; SIGPIPE ignored. */
static int signals_setup(sigset_t *term)
{
	struct sigaction sa = { .sa_handler = cancel_handler };
	int fd;

	sigemptyset(&sa.sa_mask);
	if (sigaction(DELEGATE_CANCEL_SIG, &sa, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(term);
	sigaddset(term, SIGTERM);
	sigaddset(term, SIGINT);
	sigaddset(term, SIGHUP);
	/* Blocked here, so every thread started later has them blocked too. */
	pthread_sigmask(SIG_BLOCK, term, NULL);
	fd = signalfd(-1, term, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Create the directory of a unix socket (e.g. /run/rsys) when it is missing. */
static void unix_dir_create(const struct sockaddr_un *sun)
{
	char dir[sizeof(sun->sun_path)];

	memcpy(dir, sun->sun_path, sizeof(dir));
	dir[sizeof(dir) - 1] = '\0';
	if (mkdir(dirname(dir), 0755) < 0 && errno != EEXIST)
		pr_debug("cannot create the directory of %s: %s\n", sun->sun_path, strerror(errno));
}

/* Every session may hold limit_fds sockets: use the hard fd limit, not the soft one. */
static void nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl))
		pr_debug("cannot raise RLIMIT_NOFILE: %s\n", strerror(errno));
}

static void serve(int lfd, int sfd)
{
	struct pollfd p[2] = {
		{ .fd = lfd, .events = POLLIN },
		{ .fd = sfd, .events = POLLIN },
	};
	struct signalfd_siginfo si;
	int fd, err;

	for (;;) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pr_warn("Error: poll: %s\n", strerror(errno));
			return;
		}
		if (p[1].revents) {
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				pr_info("%s, shutting down\n", strsignal(si.ssi_signo));
			return;
		}
		if (!p[0].revents)
			continue;
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
				pr_warn("accept: %s\n", strerror(errno));
			/* Out of fds or memory: do not spin on the pending connection. */
			if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
				usleep(100000);
			continue;
		}
		if (__atomic_load_n(&dlg.stats.sessions, __ATOMIC_RELAXED) >= MAX_SESSIONS) {
			pr_warn("refusing a client: %d sessions open\n", MAX_SESSIONS);
			close(fd);
			continue;
		}
		err = session_start(fd);
		if (err) {
			pr_warn("cannot start a session: %s\n", strerror(-err));
			close(fd);
		}
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "policy", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *listen_addr = NULL, *policy_file = NULL;
	struct sockaddr_storage ss;
	socklen_t sslen;
	sigset_t term;
	int c, lfd, sfd;

	log_prog = "rsys-delegate";
	while ((c = getopt_long(argc, argv, "l:p:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_addr = optarg;
			break;
		case 'p':
			policy_file = optarg;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "rsys-delegate: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}

	dlg.limit_fds = DEFAULT_LIMIT_FDS;
	dlg.limit_inflight = DEFAULT_LIMIT_INFLIGHT;
	if (policy_file) {
		if (policy_load(&policy, policy_file, stderr))
			return 1;
		dlg.policy = &policy;
		dlg.limit_fds = policy.limit_fds;
		dlg.limit_inflight = policy.limit_inflight;
		if (!listen_addr && policy.delegate[0])
			listen_addr = policy.delegate;
	}
	if (!listen_addr) {
		fprintf(stderr, "rsys-delegate: Error: no address to listen on: give --listen ADDR or a policy with a 'delegate' line\n");
		usage(stderr);
		return 1;
	}
	if (addr_parse(listen_addr, &ss, &sslen, stderr))
		return 1;
	if (!dlg.policy)
		pr_warn("no --policy given: every destination and bind address is allowed\n");

	sfd = signals_setup(&term);
	if (sfd < 0) {
		pr_warn("Error: cannot set up signal handling: %s\n", strerror(-sfd));
		return 1;
	}
	nofile_raise();
	if (ss.ss_family == AF_UNIX)
		unix_dir_create((struct sockaddr_un *)&ss);
	lfd = addr_listen(listen_addr, 128, stderr);
	if (lfd < 0)
		return 1;
	pr_info("listening on %s (limits: %u handles, %u in flight per session)\n", listen_addr,
		dlg.limit_fds, dlg.limit_inflight);

	serve(lfd, sfd);

	close(lfd);
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	close(sfd);
	return 0;
}
