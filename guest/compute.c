// SPDX-License-Identifier: GPL-2.0
/* Host-tier compute side: enter/create the netns, bring lo up, install the filter, hand over its listener, exec. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <seccomp.h>

#include "guest.h"
#include "../loader/supervisor.h"

static void __attribute__((noreturn, format(printf, 1, 2))) guest_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("rsys-load: Error: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	_exit(127);
}

static int lo_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd, ret = 0;

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) ||
	    (ifr.ifr_flags |= IFF_UP, ioctl(fd, SIOCSIFFLAGS, &ifr)))
		ret = -errno;
	close(fd);
	return ret;
}

static void enter_netns(const char *name)
{
	char path[256];
	int fd, ret;

	if (!name) {
		if (unshare(CLONE_NEWNET))
			guest_die("cannot create the compute network namespace: %s (run as root)\n",
				  strerror(errno));
		ret = lo_up();
		if (ret)
			guest_die("cannot bring lo up in the compute namespace: %s\n", strerror(-ret));
		return;
	}
	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		guest_die("cannot open network namespace %s: %s (create it with 'ip netns add %s')\n",
			  path, strerror(errno), name);
	if (setns(fd, CLONE_NEWNET))
		guest_die("cannot join network namespace %s: %s\n", path, strerror(errno));
	close(fd);
}

/* Build and load the filter; returns its listener fd. */
static int install_filter(const struct policy *p)
{
	scmp_filter_ctx ctx;
	int ret, fd;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		guest_die("cannot create the seccomp filter\n");
	ret = sv_filter_add_rules(ctx, p);
	if (!ret)
		ret = seccomp_load(ctx);
	if (ret)
		guest_die("cannot install the seccomp filter: %s (kernel needs SECCOMP_FILTER and user notification, >= 5.9)\n",
			  strerror(-ret));
	fd = seccomp_notify_fd(ctx);
	if (fd < 0)
		guest_die("seccomp filter has no listener: %s\n", strerror(-fd));
	seccomp_release(ctx);
	return fd;
}

void guest_exec(const struct guest_opts *o)
{
	pid_t parent = getppid();
	int fd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(127);
	enter_netns(o->netns);
	fd = install_filter(o->policy);
	/*
	 * Most ways to talk to the monitor are intercepted now and nobody
	 * serves them yet: stop, and let the monitor take the listener with
	 * pidfd_getfd() and start serving before it continues us.
	 */
	raise(SIGSTOP);
	/* Only the monitor may hold the listener: if it dies, intercepted calls fail instead of hanging. */
	close(fd);
	execv(o->path, o->argv);
	guest_die("cannot execute %s: %s\n", o->path, strerror(errno));
}

int guest_listener(pid_t pid)
{
	char path[300], link[64];
	struct dirent *de;
	int pidfd, fd = -ENOENT;
	ssize_t n;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	d = opendir(path);
	if (!d)
		return -errno;
	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		closedir(d);
		return -errno;
	}
	while ((de = readdir(d))) {
		snprintf(path, sizeof(path), "/proc/%d/fd/%s", pid, de->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n < 0)
			continue;
		link[n] = '\0';
		if (strcmp(link, "anon_inode:seccomp notify"))
			continue;
		fd = syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
		if (fd < 0)
			fd = -errno;
		break;
	}
	close(pidfd);
	closedir(d);
	return fd;
}
