// SPDX-License-Identifier: GPL-2.0
/* One attack on the compute domain's boundary per call, for attack_sandbox_test.sh: exit 0 if it worked, 1 if not. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>

#define PROBE_FDS	64	/* fd numbers tried blindly when /proc does not list them */

static int blocked(const char *what)
{
	printf("blocked: %s: %s\n", what, strerror(errno));
	return 1;
}

/* Join the network namespace at @path (nsenter --net=PATH). */
static int probe_setns(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return blocked("open");
	if (setns(fd, CLONE_NEWNET))
		return blocked("setns");
	printf("joined %s\n", path);
	return 0;
}

static int probe_connect(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return blocked("socket");
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)))
		return blocked("connect");
	printf("connected to %s\n", path);
	return 0;
}

/* Any process named one of @names in /proc? */
static int probe_find(char **names)
{
	char path[300], comm[64];
	struct dirent *de;
	int found = 0;
	DIR *d;
	FILE *f;

	d = opendir("/proc");
	if (!d)
		return blocked("opendir /proc");
	while ((de = readdir(d))) {
		if (atoi(de->d_name) <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			for (char **n = names; *n; n++)
				if (!strcmp(comm, *n)) {
					printf("found %s as pid %s\n", comm, de->d_name);
					found = 1;
				}
		}
		fclose(f);
	}
	closedir(d);
	if (!found)
		printf("blocked: none in /proc\n");
	return !found;
}

/* Take any of @pid's fds (its seccomp listener, its delegate socket...) with pidfd_getfd. */
static int probe_pidfd(pid_t pid)
{
	char path[64], link[128];
	int pidfd, fd, i;
	ssize_t n;

	pidfd = syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return blocked("pidfd_open");
	for (i = 0; i < PROBE_FDS; i++) {
		fd = syscall(SYS_pidfd_getfd, pidfd, i, 0);
		if (fd < 0)
			continue;
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n = readlink(path, link, sizeof(link) - 1);
		link[n < 0 ? 0 : n] = '\0';
		printf("took fd %d of %d: %s\n", i, pid, link);
		return 0;
	}
	return blocked("pidfd_getfd");
}

static int probe_mem(pid_t pid)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/mem", pid);
	if (open(path, O_RDWR | O_CLOEXEC) < 0)
		return blocked(path);
	printf("opened %s read-write\n", path);
	return 0;
}

static int probe_ptrace(pid_t pid)
{
	if (ptrace(PTRACE_ATTACH, pid, 0, 0))
		return blocked("PTRACE_ATTACH");
	waitpid(pid, NULL, __WALL);
	ptrace(PTRACE_DETACH, pid, 0, 0);
	printf("attached to %d\n", pid);
	return 0;
}

static int probe_signal(pid_t pid)
{
	if (kill(pid, 0))
		return blocked("kill");
	printf("may signal %d\n", pid);
	return 0;
}

static int probe_open(const char *path, int flags)
{
	if (open(path, flags | O_CLOEXEC) < 0)
		return blocked(path);
	printf("opened %s for %s\n", path, flags == O_RDONLY ? "reading" : "writing");
	return 0;
}

/* CAP_NET_ADMIN over the current netns: set lo's flags to what they are. */
static int probe_netadmin(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return blocked("socket");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) || ioctl(fd, SIOCSIFFLAGS, &ifr))
		return blocked("SIOCSIFFLAGS lo");
	printf("changed lo's flags\n");
	return 0;
}

/* CAP_SYS_ADMIN over the host's UTS namespace: set the hostname to what it is. */
static int probe_hostname(void)
{
	char name[256] = "";

	gethostname(name, sizeof(name) - 1);
	if (sethostname(name, strlen(name)))
		return blocked("sethostname");
	printf("set the hostname\n");
	return 0;
}

/* Bind @src over @dst: another binary under a trusted program's path, for instance. */
static int probe_bind(const char *src, const char *dst)
{
	if (mount(src, dst, NULL, MS_BIND, NULL))
		return blocked("mount --bind");
	printf("bound %s over %s\n", src, dst);
	return 0;
}

/* The same from a user namespace of our own, where we have every capability. */
static int probe_userns_bind(const char *src, const char *dst)
{
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS))
		return blocked("unshare(CLONE_NEWUSER | CLONE_NEWNS)");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return blocked("mount --make-rprivate /");
	return probe_bind(src, dst);
}

/* Push a character into the terminal's input (for the shell that reads it next). */
static int probe_tiocsti(void)
{
	char c = ' ';

	if (ioctl(0, TIOCSTI, &c))
		return blocked("TIOCSTI");
	printf("pushed input into the terminal\n");
	return 0;
}

static int probe_umount(const char *path)
{
	if (umount2(path, MNT_DETACH))
		return blocked("umount");
	printf("unmounted %s\n", path);
	return 0;
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *arg = argc > 2 ? argv[2] : "";

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "setns") && argc == 3)
		return probe_setns(arg);
	if (!strcmp(cmd, "connect") && argc == 3)
		return probe_connect(arg);
	if (!strcmp(cmd, "find") && argc > 2)
		return probe_find(argv + 2);
	if (!strcmp(cmd, "pidfd") && argc == 3)
		return probe_pidfd(atoi(arg));
	if (!strcmp(cmd, "mem") && argc == 3)
		return probe_mem(atoi(arg));
	if (!strcmp(cmd, "ptrace") && argc == 3)
		return probe_ptrace(atoi(arg));
	if (!strcmp(cmd, "signal") && argc == 3)
		return probe_signal(atoi(arg));
	if (!strcmp(cmd, "read") && argc == 3)
		return probe_open(arg, O_RDONLY);
	if (!strcmp(cmd, "write") && argc == 3)
		return probe_open(arg, O_WRONLY);
	if (!strcmp(cmd, "netadmin") && argc == 2)
		return probe_netadmin();
	if (!strcmp(cmd, "hostname") && argc == 2)
		return probe_hostname();
	if (!strcmp(cmd, "umount") && argc == 3)
		return probe_umount(arg);
	if (!strcmp(cmd, "bind") && argc == 4)
		return probe_bind(arg, argv[3]);
	if (!strcmp(cmd, "tiocsti") && argc == 2)
		return probe_tiocsti();
	if (!strcmp(cmd, "userns-bind") && argc == 4)
		return probe_userns_bind(arg, argv[3]);
	fprintf(stderr, "usage: sandbox_probe setns PATH | connect PATH | find COMM... | pidfd PID | mem PID |\n"
		"       ptrace PID | signal PID | read FILE | write FILE | netadmin | hostname | umount PATH |\n"
		"       bind SRC DST | userns-bind SRC DST | tiocsti\n");
	return 2;
}
