// SPDX-License-Identifier: GPL-2.0
/* The workload half of rsys-bench: timed select loops on local pipes and remote sockets. */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "seccomp_compat.h"
#include "log.h"

const struct bench_info bench_tests[BENCH_NTESTS] = {
	[BENCH_NATIVE]		= { "native", "1", 1, false },
	[BENCH_TRAPPED]		= { "trapped", "9", 9, true },
	[BENCH_LOCAL]		= { "select(LocalFD)", "11", 11, true },
	[BENCH_LOCAL_NRREMOTE]	= { "select(LocalFD, [RemoteFD])", "15 (31)", 15, true },
	[BENCH_REMOTE]		= { "select(RemoteFD)", "189", 189, true },
	[BENCH_NRLOCAL_REMOTE]	= { "select([LocalFD], RemoteFD)", "253", 253, true },
	[BENCH_LATE_LOCAL]	= { "select(LocalFD later, [RemoteFD])", "-", 0, true },
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Sets of one loop iteration. [X] is an fd that is never ready: the read
 * end of an empty pipe, or the read side of a remote UDP socket nobody
 * sends to. A ready local fd is a pipe holding one byte that is never read;
 * a ready remote fd is the write side of a remote UDP socket.
 */
struct bench_sets {
	int nfds;
	fd_set rd, wr;
	int want_fd;		/* the fd that must be reported */
	bool want_wr;		/* ... in the write set */
	int late_wr;		/* BENCH_LATE_LOCAL: a helper writes want_fd's pipe here */
};

/*
 * BENCH_LATE_LOCAL: each select blocks first (its remote half goes to the
 * delegate), then this thread makes the local fd ready, so that the remote
 * half must really be cancelled.
 */
struct late {
	int go[2];
	int wr;
	long iters;
};

static void *late_fn(void *arg)
{
	struct timespec pause = { 0, 100 * 1000 };
	struct late *l = arg;
	char b;
	long i;

	for (i = 0; i < l->iters; i++) {
		if (read(l->go[0], &b, 1) != 1)
			break;
		nanosleep(&pause, NULL);
		if (write(l->wr, "x", 1) != 1)
			break;
	}
	return NULL;
}

static int sets_prepare(enum bench_test t, struct bench_sets *s, int *remote)
{
	int ready[2], idle[2];

	if (pipe(ready) || pipe(idle) || write(ready[1], "x", 1) != 1) {
		pr_err("pipe: %s\n", err_str(errno));
		return -1;
	}
	*remote = -1;
	if (t != BENCH_NATIVE && t != BENCH_TRAPPED) {
		/* under rsys-load run an AF_INET socket lives at the delegate */
		*remote = socket(AF_INET, SOCK_DGRAM, 0);
		if (*remote < 0) {
			pr_err("socket(AF_INET): %s\n", err_str(errno));
			return -1;
		}
	}
	FD_ZERO(&s->rd);
	FD_ZERO(&s->wr);
	s->want_wr = false;
	switch (t) {
	case BENCH_NATIVE:
	case BENCH_TRAPPED:
	case BENCH_LOCAL:
		FD_SET(ready[0], &s->rd);
		s->want_fd = ready[0];
		break;
	case BENCH_LATE_LOCAL:
		FD_SET(idle[0], &s->rd);
		FD_SET(*remote, &s->rd);
		s->want_fd = idle[0];
		s->late_wr = idle[1];
		break;
	case BENCH_LOCAL_NRREMOTE:
		FD_SET(ready[0], &s->rd);
		FD_SET(*remote, &s->rd);
		s->want_fd = ready[0];
		break;
	case BENCH_REMOTE:
		FD_SET(*remote, &s->wr);
		s->want_fd = *remote;
		s->want_wr = true;
		break;
	case BENCH_NRLOCAL_REMOTE:
		FD_SET(idle[0], &s->rd);
		FD_SET(*remote, &s->wr);
		s->want_fd = *remote;
		s->want_wr = true;
		break;
	default:
		return -1;
	}
	/* as a program would: one past the highest fd in the sets */
	for (s->nfds = FD_SETSIZE; s->nfds > 0; s->nfds--)
		if (FD_ISSET(s->nfds - 1, &s->rd) || FD_ISSET(s->nfds - 1, &s->wr))
			break;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

int bench_worker(enum bench_test t, long iters)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	struct late late = { .iters = iters };
	struct bench_sets s;
	double t0, t1, start, *lap;
	pthread_t helper;
	fd_set rd, wr;
	int remote, n;
	char b;
	long i;

	lap = malloc(iters * sizeof(*lap));
	if (!lap || sets_prepare(t, &s, &remote))
		return 1;
	if (t == BENCH_LATE_LOCAL) {
		late.wr = s.late_wr;
		if (pipe(late.go) || pthread_create(&helper, NULL, late_fn, &late))
			return 1;
	}
	start = t0 = now();
	for (i = 0; i < iters; i++) {
		rd = s.rd;
		wr = s.wr;
		if (t == BENCH_LATE_LOCAL && write(late.go[1], "x", 1) != 1)
			return 1;
		n = select(s.nfds, &rd, &wr, NULL, NULL);
		if (t == BENCH_LATE_LOCAL && read(s.want_fd, &b, 1) != 1)
			return 1;
		if (n != 1 || !FD_ISSET(s.want_fd, s.want_wr ? &wr : &rd)) {
			pr_err("%s: iteration %ld: select returned %d (%s), want fd %d ready\n",
			       bench_tests[t].name, i, n, n < 0 ? err_str(errno) : "wrong fd", s.want_fd);
			return 1;
		}
		t1 = now();
		lap[i] = t1 - t0;
		t0 = t1;
	}
	/*
	 * The median call times N, as DESIGN.md's baseline table: on a machine
	 * shared with other work the wall time of the loop mostly measures them.
	 */
	qsort(lap, iters, sizeof(*lap), cmp_double);
	printf("%.9f %.9f\n", lap[iters / 2] * iters, t0 - start);
	free(lap);
	if (t == BENCH_LATE_LOCAL)
		pthread_join(helper, NULL);
	if (t == BENCH_LOCAL_NRREMOTE || t == BENCH_LATE_LOCAL) {
		/*
		 * The cancels of the loop travel behind it; the first essential
		 * remote call after them, and the close, must not pay for them.
		 */
		t0 = now();
		if (getsockname(remote, (struct sockaddr *)&sin, &len) || close(remote)) {
			pr_err("getsockname/close after the loop: %s\n", err_str(errno));
			return 1;
		}
		t1 = now();
		printf("%.9f\n", t1 - t0);
	}
	return 0;
}


/*
 * The trapped side of bench_floor(): installs a filter trapping select,
 * hands its listener over @sock, waits for the go, then runs the loop of
 * BENCH_TRAPPED with its figures written to @sock.
 */
static void floor_child(int sock, long iters)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_select, 1, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_pselect6, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { sizeof(f) / sizeof(f[0]), f };
	char cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec io = { "l", 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1,
			    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	int lfd, ret;
	char go;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		_exit(1);
	lfd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	if (lfd < 0)
		_exit(1);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &lfd, sizeof(int));
	if (sendmsg(sock, &m, 0) != 1 || read(sock, &go, 1) != 1 || dup2(sock, 1) != 1)
		_exit(1);
	close(lfd);
	ret = bench_worker(BENCH_TRAPPED, iters);
	fflush(stdout);
	_exit(ret);
}

int bench_floor(long iters, double *seconds)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct seccomp_notif n;
	struct seccomp_notif_resp resp;
	char b;
	struct iovec io = { &b, 1 };
	struct msghdr m = { .msg_iov = &io, .msg_iovlen = 1,
			    .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	int sp[2], lfd = -1, status, err = -EIO;
	FILE *out;
	pid_t pid;
	long i;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp))
		return -errno;
	fflush(stdout);		/* the child's stdout becomes the socket */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		close(sp[0]);
		floor_child(sp[1], iters);
	}
	close(sp[1]);
	if (recvmsg(sp[0], &m, 0) == 1 && CMSG_FIRSTHDR(&m))
		memcpy(&lfd, CMSG_DATA(CMSG_FIRSTHDR(&m)), sizeof(int));
	if (lfd < 0)
		goto out;
	/* as rsys-load's monitor: the answering thread runs where the trapped one waits */
	ioctl(lfd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP);
	if (write(sp[0], "g", 1) != 1)
		goto out;
	for (i = 0; i < iters; i++) {
		memset(&n, 0, sizeof(n));
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &n))
			goto out;
		resp = (struct seccomp_notif_resp){ .id = n.id, .flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE };
		if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp))
			goto out;
	}
	/* bench_worker's line: median call x iterations, then the loop's wall time */
	out = fdopen(sp[0], "r");
	if (out) {
		sp[0] = -1;
		if (fscanf(out, "%lf", seconds) == 1)
			err = 0;
		fclose(out);
	}
out:
	if (lfd >= 0)
		close(lfd);
	if (sp[0] >= 0)
		close(sp[0]);
	if (err)
		kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return err ? err : (WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -EIO);
}
