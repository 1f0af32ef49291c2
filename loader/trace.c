// SPDX-License-Identifier: GPL-2.0
/* "rsys-load trace": the reader of the trace socket, printing every decision of the monitors and delegates. */
#include <errno.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "cmds.h"
#include "log.h"
#include "trace.h"

#define TRACE_MAX_PRODUCERS	1024	/* monitors and delegates connected at once */

static volatile sig_atomic_t trace_stop;
static ino_t trace_ino;		/* our socket's inode under its name */

static void trace_usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-load trace [-j] [--pid PID] [--denied]\n"
		"\n"
		"Print every decision rsys takes, one line per event, as it happens: the\n"
		"egress calls of trusted programs (connect, bind, listen, sendto, accept) with\n"
		"the delegate's verdict and rule, passport checks (execve), and the bytes each\n"
		"remote socket moved (close). Events come from every \"rsys-load run\" and from\n"
		"rsys-delegate --trace over the socket %s\n"
		"($" RSYS_TRACE_ENV " overrides it); a line \"lost N events\" says a producer\n"
		"could not deliver N events because this reader was too slow.\n"
		"\n"
		"  -j, --json        one JSON object per line\n"
		"  -p, --pid PID     only events of process PID (or of the monitor PID)\n"
		"  -d, --denied      only refusals: denied, untrusted, error\n"
		"  -h, --help        this text\n",
		RSYS_TRACE_SOCK);
}

static void trace_on_signal(int sig)
{
	(void)sig;
	trace_stop = 1;
}

/*
 * The socket's directory: created 0700 when missing, and then it must be
 * ours and writable by nobody else, or another user could stand in for us.
 */
static int trace_dir_check(const char *path)
{
	char buf[sizeof(((struct sockaddr_un *)0)->sun_path)], *dir;
	struct stat st;

	snprintf(buf, sizeof(buf), "%s", path);
	dir = dirname(buf);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		pr_debug("cannot create %s: %s\n", dir, err_str(errno));
	if (lstat(dir, &st) < 0) {
		pr_err("cannot use the directory %s of %s: %s\n", dir, path,
		       err_str(errno));
		return -EPERM;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		pr_err("refusing to listen in %s: it must be a directory of uid %u that nobody else may write (chmod go-w %s)\n",
		       dir, geteuid(), dir);
		return -EPERM;
	}
	return 0;
}

/*
 * Listen on @path: bound under a temporary name and renamed into place, so
 * that a producer finding the name finds a listening socket. One reader at
 * a time: a live one is not replaced.
 */
static int trace_listen(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX }, tmp = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, probe;

	if (strlen(path) + 16 >= sizeof(sun.sun_path)) {
		pr_err("trace socket path %s is too long\n", path);
		return -ENAMETOOLONG;
	}
	if (trace_dir_check(path))
		return -EPERM;
	strcpy(sun.sun_path, path);
	snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d", path, getpid());
	probe = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (probe >= 0 && !connect(probe, (struct sockaddr *)&sun, sizeof(sun))) {
		close(probe);
		pr_err("another rsys-load trace is reading %s\n", path);
		return -EBUSY;
	}
	if (probe >= 0)
		close(probe);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(tmp.sun_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0 || chmod(tmp.sun_path, 0600) < 0 ||
	    listen(fd, 128) < 0 || rename(tmp.sun_path, path) < 0) {
		pr_err("cannot listen on %s: %s\n", path, err_str(errno));
		unlink(tmp.sun_path);
		close(fd);
		return -EPERM;
	}
	if (!stat(path, &st))
		trace_ino = st.st_ino;
	return fd;
}

struct trace_filter {
	int pid;
	bool denied;
	bool json;
};

static void trace_print(const struct rsys_event *ev, const struct trace_filter *tf)
{
	static const char *const srcs[] = { "?", "monitor", "delegate", "test" };
	char line[2048];

	/* Losses are never filtered out: they may have hidden a matching event. */
	if (ev->lost && !tf->json)
		printf("lost %u events (src=%s producer=%d)\n", ev->lost,
		       ev->src < sizeof(srcs) / sizeof(srcs[0]) ? srcs[ev->src] : "?", ev->producer);
	if (ev->call == RSYS_EV_LOST && !tf->json)
		return;
	if (ev->call != RSYS_EV_LOST && !ev->lost) {
		if (tf->pid && ev->pid != tf->pid && ev->producer != tf->pid)
			return;
		if (tf->denied && ev->verdict != RSYS_VERDICT_DENIED &&
		    ev->verdict != RSYS_VERDICT_UNTRUSTED && ev->verdict != RSYS_VERDICT_KILLED &&
		    ev->verdict != RSYS_VERDICT_ERROR)
			return;
	}
	trace_format(ev, tf->json, line, sizeof(line));
	puts(line);
}

/* Read what producer @fd sent; false once it is gone. */
static bool trace_read(int fd, const struct trace_filter *tf)
{
	struct rsys_event ev;
	ssize_t n;

	for (;;) {
		n = recv(fd, &ev, sizeof(ev), MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		if (!n)
			return false;
		if (n != sizeof(ev) || ev.version != RSYS_TRACE_VERSION || ev.size != sizeof(ev)) {
			pr_warn("dropping a producer that sends events of another format (version %u)\n",
				n >= 2 ? ev.version : 0);
			return false;
		}
		trace_print(&ev, tf);
	}
}

static int trace_serve(int lfd, const struct trace_filter *tf)
{
	static struct pollfd p[1 + TRACE_MAX_PRODUCERS];
	unsigned int n = 0, i;
	int fd;

	p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	while (!trace_stop) {
		if (poll(p, 1 + n, -1) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (i = n; i > 0; i--) {
			if (!p[i].revents)
				continue;
			if (!trace_read(p[i].fd, tf) || (p[i].revents & (POLLHUP | POLLERR | POLLNVAL) &&
							   !(p[i].revents & POLLIN))) {
				close(p[i].fd);
				p[i] = p[n--];
			}
		}
		if (p[0].revents & POLLIN) {
			fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
			if (fd >= 0 && n == TRACE_MAX_PRODUCERS) {
				pr_warn("refusing a producer: %d connected\n", TRACE_MAX_PRODUCERS);
				close(fd);
			} else if (fd >= 0) {
				p[++n] = (struct pollfd){ .fd = fd, .events = POLLIN };
			}
		}
		fflush(stdout);
	}
	for (i = 1; i <= n; i++) {
		trace_read(p[i].fd, tf);
		close(p[i].fd);
	}
	fflush(stdout);
	return 0;
}

int do_trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "pid", required_argument, NULL, 'p' },
		{ "denied", no_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	struct trace_filter tf = { .json = json_output };
	struct sigaction sa = { .sa_handler = trace_on_signal };
	const char *path = trace_sock_path();
	struct stat st;
	char *end;
	int c, lfd, ret;

	while ((c = getopt_long(argc, argv, "jp:dh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			tf.json = true;
			break;
		case 'p':
			tf.pid = strtol(optarg, &end, 10);
			if (*end || tf.pid <= 0) {
				pr_err("--pid %s: not a process id\n", optarg);
				return 1;
			}
			break;
		case 'd':
			tf.denied = true;
			break;
		case 'h':
			trace_usage(stdout);
			return 0;
		default:
			trace_usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'\n", argv[optind]);
		trace_usage(stderr);
		return 1;
	}
	/* No SA_RESTART: poll returns and the loop sees trace_stop. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	lfd = trace_listen(path);
	if (lfd < 0)
		return 1;
	pr_info("tracing on %s\n", path);
	ret = trace_serve(lfd, &tf);
	/* Our name only: a reader started after us keeps its own. */
	if (!stat(path, &st) && st.st_ino == trace_ino)
		unlink(path);
	close(lfd);
	if (ret) {
		pr_err("trace: %s\n", err_str(-ret));
		return 1;
	}
	return 0;
}
