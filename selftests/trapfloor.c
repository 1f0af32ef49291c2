// SPDX-License-Identifier: GPL-2.0
/* Runs a program with every call that remote mode traps sent to a supervisor that only answers CONTINUE: the ceiling of any per-call trap, which peers.sh's "floor" arrangement measures. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "seccomp_compat.h"

#define USAGE "Usage: trapfloor [-v] CMD [ARG...]\n"

/*
 * The calls loader/supervisor.c's sv_table has a handler for, which
 * remote mode's filter traps (loader/seccomp.c): fcntl and ioctl only
 * for the commands below, as there.
 */
static const int trapped[] = {
	SYS_socket, SYS_connect, SYS_bind, SYS_listen, SYS_accept, SYS_accept4,
	SYS_read, SYS_recvfrom, SYS_readv, SYS_recvmsg, SYS_write, SYS_sendto, SYS_writev,
	SYS_sendmsg, SYS_recvmmsg, SYS_sendmmsg, SYS_sendfile, SYS_splice, SYS_io_uring_setup,
	SYS_shutdown, SYS_getsockopt, SYS_setsockopt, SYS_getsockname, SYS_getpeername,
	SYS_close, SYS_close_range, SYS_dup, SYS_dup2, SYS_dup3, SYS_exit, SYS_exit_group,
	SYS_execve, SYS_execveat, SYS_select, SYS_pselect6, SYS_poll, SYS_ppoll,
	SYS_epoll_create1, SYS_epoll_ctl, SYS_epoll_wait, SYS_epoll_pwait, SYS_epoll_pwait2,
};
static const unsigned int fcntl_cmds[] = { F_SETFL, F_SETFD, F_DUPFD, F_DUPFD_CLOEXEC };
static const unsigned int ioctl_reqs[] = { FIONREAD, FIONBIO };

#define N(a)		(sizeof(a) / sizeof((a)[0]))
#define MAX_INSNS	(8 + 2 * N(trapped) + 2 * (N(fcntl_cmds) + N(ioctl_reqs)) + 8)
/* the low 32 bits of argument 1 (x86-64 is little-endian): how the kernel reads an int */
#define ARG1_LO		(offsetof(struct seccomp_data, args) + sizeof(__u64))

static pid_t child;
static unsigned long count;
static int verbose;

static void forward(int sig)
{
	if (child > 0)
		kill(child, sig);
}

/* "if A == @k: notify", as two instructions at *@n. */
static void notify_if(struct sock_filter *f, unsigned int *n, __u32 k)
{
	f[(*n)++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, k, 0, 1);
	f[(*n)++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
}

/* For syscall @nr: notify when argument 1 is one of @vals, else allow. */
static void notify_arg1(struct sock_filter *f, unsigned int *n, int nr, const unsigned int *vals,
			size_t nv)
{
	size_t i;

	f[(*n)++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, nr, 0, 2 + 2 * nv);
	f[(*n)++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG1_LO);
	for (i = 0; i < nv; i++)
		notify_if(f, n, vals[i]);
	f[(*n)++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
}

/* The filter, installed on the calling thread: the listener fd or -1. */
static int filter_install(void)
{
	struct sock_filter f[MAX_INSNS];
	struct sock_fprog prog = { .filter = f };
	unsigned int n = 0;
	size_t i;

	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, arch));
	f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (i = 0; i < N(trapped); i++)
		notify_if(f, &n, trapped[i]);
	notify_arg1(f, &n, SYS_fcntl, fcntl_cmds, N(fcntl_cmds));
	f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	notify_arg1(f, &n, SYS_ioctl, ioctl_reqs, N(ioctl_reqs));
	f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	prog.len = n;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
}

/*
 * Ends the process with CMD's status once CMD has exited: the listener
 * gives no end of its own while CMD's children may still hold the filter.
 */
static void *reaper(void *arg)
{
	int status;

	(void)arg;
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (verbose)
		fprintf(stderr, "trapfloor: %lu calls trapped\n",
			__atomic_load_n(&count, __ATOMIC_RELAXED));
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

/*
 * The child: the filter, then CMD. Once the filter is in, every trapped
 * call (the exec too) waits for the parent's supervisor: the listener's
 * number goes to the parent with a signal, a call the filter leaves alone.
 */
static void child_run(pid_t parent, char **argv)
{
	union sigval v;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = filter_install();
	v.sival_int = fd;
	if (fd < 0) {
		fprintf(stderr, "trapfloor: cannot install the filter: %s\n", strerror(errno));
		_exit(126);
	}
	if (sigqueue(parent, SIGUSR1, v))
		_exit(126);
	execvp(argv[0], argv);
	fprintf(stderr, "trapfloor: %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Usage: trapfloor [-v] CMD [ARG...]
 * CMD runs with the calls remote mode traps sent to this process, which
 * answers each with CONTINUE and does nothing else: one supervisor thread
 * woken on the caller's CPU (SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP), as
 * rsys-load asks for. No delegate, no copy, no fd table: what is left is
 * the trap alone. Exit status: CMD's (128 + signal if killed); 2 on a
 * usage error, 126 when the filter cannot be installed. -v prints how many
 * calls were trapped.
 */
int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = forward };
	struct timespec ts = { .tv_sec = 10 };
	pid_t parent = getpid();
	siginfo_t si;
	sigset_t set;
	int pidfd, nfd;
	pthread_t t;

	if (argc > 1 && !strcmp(argv[1], "-v")) {
		verbose = 1;
		argv++, argc--;
	}
	if (argc < 2 || argv[1][0] == '-') {
		fputs(USAGE, argc > 1 && !strcmp(argv[1], "--help") ? stdout : stderr);
		return argc > 1 && !strcmp(argv[1], "--help") ? 0 : 2;
	}
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	child = fork();
	if (child < 0) {
		perror("trapfloor: fork");
		return 126;
	}
	if (!child) {
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		child_run(parent, argv + 1);
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	pidfd = syscall(SYS_pidfd_open, child, 0);
	if (sigtimedwait(&set, &si, &ts) != SIGUSR1 || si.si_pid != child || pidfd < 0 ||
	    (nfd = syscall(SYS_pidfd_getfd, pidfd, si.si_value.sival_int, 0)) < 0) {
		fprintf(stderr, "trapfloor: no listener from the child: %s\n", strerror(errno));
		kill(child, SIGKILL);
		return 126;
	}
	close(pidfd);
	/* Not fatal: the floor is only higher with it. */
	if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP, 0))
		fprintf(stderr, "trapfloor: no SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: %s\n", strerror(errno));
	if (pthread_create(&t, NULL, reaper, NULL)) {
		kill(child, SIGKILL);
		return 126;
	}

	for (;;) {
		struct seccomp_notif req;
		struct seccomp_notif_resp resp;

		memset(&req, 0, sizeof(req));
		if (ioctl(nfd, SECCOMP_IOCTL_NOTIF_RECV, &req)) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			perror("trapfloor: SECCOMP_IOCTL_NOTIF_RECV");
			kill(child, SIGKILL);
			pause();	/* the reaper ends the process */
		}
		__atomic_add_fetch(&count, 1, __ATOMIC_RELAXED);
		memset(&resp, 0, sizeof(resp));
		resp.id = req.id;
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		ioctl(nfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
	}
}
