// SPDX-License-Identifier: GPL-2.0
/* The host tier's front end: the seccomp filter's rules and the user notifications behind struct sv_front. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>

#include <rsys/sockopt.h>
#include "fdcache.h"
#include "log.h"
#include "procfs.h"
#include "seccomp_compat.h"
#include "supervisor.h"

/* Syscall numbers the filter may trap: every handler's is below (x86-64 has under 512). */
#define SV_NR_BOUND	512

/* socket()'s type without SOCK_NONBLOCK and SOCK_CLOEXEC (the kernel's SOCK_TYPE_MASK) */
#define SV_SOCK_TYPE_MASK	0xf

/*
 * Argument @i, an int or unsigned int to the kernel, equals @v: only the low
 * 32 bits count. libseccomp 2.5's SCMP_A0_32() only truncates the datum and
 * still compares all 64 bits, which (1ULL << 32) | v would pass.
 */
#define SV_ARG_INT_EQ(i, v)	SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, 0xffffffffu, (uint32_t)(v))
/* ... has bit @b (of the low 32) set */
#define SV_ARG_BIT(i, b)	SCMP_CMP64(i, SCMP_CMP_MASKED_EQ, 1u << (b), 1u << (b))

/*
 * Default-deny for socket families, on the kernel's 32-bit view of the int
 * arguments: (1ULL << 32) | AF_INET is AF_INET to the kernel and must not
 * pass as an unknown family. AF_UNIX stays local; sockets of the policy's
 * remote families go to the monitor (socket) or are left to the kernel
 * (socketpair: EOPNOTSUPP); every other family fails with EAFNOSUPPORT.
 * Raw and packet sockets of remote families would bypass the delegate's
 * egress rules: EPERM, as the delegate answers. AF_NETLINK is refused too,
 * rtnetlink (NETLINK_ROUTE) excepted in a sandbox (@sandboxed): there the
 * program has no capability anywhere, so rtnetlink only reads its own
 * namespace (getifaddrs, if_nametoindex, "ip addr"); without the sandbox
 * a root program could move or configure interfaces of other namespaces
 * with it (IFLA_TARGET_NETNSID, IFLA_NET_NS_FD) without setns.
 */
static int sv_filter_family(scmp_filter_ctx ctx, int nr, const struct policy *p, bool sandboxed)
{
	int ret = 0, af, type, bit;

	/*
	 * Every family number below 64 has its rule; "64 or more" (negative
	 * ones included) is "one of bits 6..31 set", as GE would compare 64 bits.
	 */
	for (af = 0; af < 64 && !ret; af++) {
		if (af == AF_UNIX)
			continue;
		if (af == AF_NETLINK && sandboxed && nr == SYS_socket) {
			/* any protocol but NETLINK_ROUTE (0), on all 64 bits: garbage is refused */
			ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 2,
					       SV_ARG_INT_EQ(0, af),
					       SCMP_A2_64(SCMP_CMP_NE, NETLINK_ROUTE));
			continue;
		}
		if (!policy_is_remote_family(p, af)) {
			ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1,
					       SV_ARG_INT_EQ(0, af));
			continue;
		}
		if (nr != SYS_socket)
			continue;
		for (type = 0; type <= SV_SOCK_TYPE_MASK && !ret; type++)
			ret = seccomp_rule_add(ctx, type == SOCK_RAW || type == SOCK_PACKET ?
					       SCMP_ACT_ERRNO(EPERM) : SCMP_ACT_NOTIFY, nr, 2,
					       SV_ARG_INT_EQ(0, af),
					       SCMP_A1_64(SCMP_CMP_MASKED_EQ, SV_SOCK_TYPE_MASK, type));
	}
	for (bit = 6; bit < 32 && !ret; bit++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), nr, 1, SV_ARG_BIT(0, bit));
	return ret;
}

/*
 * No way into another network namespace (the service domain's is reachable
 * through /run/netns or /proc/PID/ns/net): setns is refused, and so are new
 * network and user namespaces (a user namespace would give an unprivileged
 * program CAP_NET_ADMIN and rtnetlink back). clone3 passes its flags in
 * memory the filter cannot read: ENOSYS, and libc falls back to clone.
 * The flags are masked: bits above 31 (clone ignores them) do not matter.
 */
static int sv_filter_namespaces(scmp_filter_ctx ctx)
{
	static const uint32_t ns_flags[] = { CLONE_NEWNET, CLONE_NEWUSER };
	int ret;
	size_t i;

	ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(setns), 0);
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	for (i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]) && !ret; i++) {
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(unshare), 1,
				       SCMP_A0_64(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
		if (!ret)
			ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
					       SCMP_A0_64(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]));
	}
	return ret;
}

/*
 * NOTIFY rules for @nr when argument @arg (its low 32 bits, as the kernel
 * reads an int) is none of the @n sorted values @ok, ANDed with @extra (a
 * comparison of another argument, or none): the complement of @ok, cut into
 * aligned power-of-two blocks that one masked comparison each matches.
 */
static int sv_filter_notify_unless(scmp_filter_ctx ctx, int nr, unsigned int arg,
				   const uint32_t *ok, size_t n, const struct scmp_arg_cmp *extra)
{
	uint64_t lo = 0, hi, size;
	size_t i;
	int ret = 0;

	for (i = 0; i <= n && !ret; i++) {
		hi = i < n ? ok[i] : 1ULL << 32;	/* the gap is [lo, hi) */
		while (lo < hi && !ret) {
			for (size = 1ULL << 32; lo % size || lo + size > hi; size >>= 1)
				;
			struct scmp_arg_cmp cmp = SCMP_CMP64(arg, SCMP_CMP_MASKED_EQ,
							     (uint32_t)~(size - 1), (uint32_t)lo);

			ret = extra ? seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 2, *extra, cmp) :
				      seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 1, cmp);
			lo += size;
		}
		lo = hi + 1;
	}
	return ret;
}

static int u32_cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * setsockopt is trapped unless its (level, name) is on the allowlist of
 * options that cannot change where packets go (include/rsys/sockopt.h):
 * the registers decide, whatever socket the fd names. IPV6_V6ONLY is
 * left out: the delegate judges a bind by it (direct.c).
 */
static int sv_filter_sockopts(scmp_filter_ctx ctx)
{
	uint32_t levels[8], names[64];
	size_t nl = 0, nn, i, j;
	int ret = 0;

	for (i = 0; i < sizeof(rsys_sockopts) / sizeof(rsys_sockopts[0]); i++) {
		for (j = 0; j < nl && levels[j] != (uint32_t)rsys_sockopts[i].level; j++)
			;
		if (j == nl && nl < 8)
			levels[nl++] = rsys_sockopts[i].level;
	}
	qsort(levels, nl, sizeof(levels[0]), u32_cmp);
	ret = sv_filter_notify_unless(ctx, SYS_setsockopt, 1, levels, nl, NULL);
	for (j = 0; j < nl && !ret; j++) {
		struct scmp_arg_cmp level = SV_ARG_INT_EQ(1, levels[j]);

		for (i = nn = 0; i < sizeof(rsys_sockopts) / sizeof(rsys_sockopts[0]) && nn < 64; i++)
			if ((uint32_t)rsys_sockopts[i].level == levels[j] &&
			    !(levels[j] == IPPROTO_IPV6 && rsys_sockopts[i].name == IPV6_V6ONLY))
				names[nn++] = rsys_sockopts[i].name;
		qsort(names, nn, sizeof(names[0]), u32_cmp);
		ret = sv_filter_notify_unless(ctx, SYS_setsockopt, 2, names, nn, &level);
	}
	return ret;
}

/*
 * Direct mode's rules (see direct.c for why each call is safe): sendto only
 * with MSG_FASTOPEN or, unless @guarded (the delegate's egress guard judges
 * the datagrams in the kernel, and TCP ignores the address), an address;
 * ioctl only of the socket type (0x89), on the low 32 bits the kernel reads. Sharing the fd table with another
 * process (clone with CLONE_FILES, not a thread) is refused: a single
 * threaded process's fd numbers cannot then change under a trapped call.
 * io_uring could connect and send behind the monitor: ENOSYS.
 */
static int sv_filter_direct(scmp_filter_ctx ctx, bool guarded)
{
	static const int always[] = {
		SYS_connect, SYS_bind, SYS_listen, SYS_sendmsg, SYS_sendmmsg, SYS_execve,
		SYS_execveat,
	};
	size_t i;
	int ret = 0;

	for (i = 0; i < sizeof(always) / sizeof(always[0]) && !ret; i++)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, always[i], 0);
	if (!ret)
		ret = sv_filter_sockopts(ctx);
	if (!ret && !guarded)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SYS_sendto, 1, SCMP_A4_64(SCMP_CMP_NE, 0));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SYS_sendto, 1,
				       SV_ARG_BIT(3, __builtin_ctz(MSG_FASTOPEN)));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, SYS_ioctl, 1,
				       SCMP_A1_64(SCMP_CMP_MASKED_EQ, 0xff00, 0x8900));
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SYS_io_uring_setup, 0);
	if (!ret)
		ret = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SYS_clone, 1,
				       SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_FILES | CLONE_THREAD,
						  CLONE_FILES));
	return ret;
}

int sv_filter_add_rules(scmp_filter_ctx ctx, const struct policy *p, bool sandboxed,
			enum sv_filter_mode mode)
{
	static const unsigned int fcntl_cmds[] = { F_SETFL, F_SETFD, F_DUPFD, F_DUPFD_CLOEXEC };
	static const unsigned int ioctl_reqs[] = { FIONREAD, FIONBIO };
	unsigned int nr;
	size_t i;
	int ret;

	ret = sv_filter_namespaces(ctx);
	if (!ret)
		ret = sv_filter_family(ctx, SYS_socketpair, p, sandboxed);
	if (mode != SV_FILTER_REMOTE) {
		if (!ret)
			ret = sv_filter_family(ctx, SYS_socket, p, sandboxed);
		return ret ? ret : sv_filter_direct(ctx, mode == SV_FILTER_GUARDED);
	}
	for (nr = 0; nr < SV_NR_BOUND && !ret; nr++) {
		if (!sv_handles(nr, false))
			continue;
		switch (nr) {
		case SYS_socket:
			ret = sv_filter_family(ctx, nr, p, sandboxed);
			break;
		case SYS_fcntl:
			/*
			 * F_GETFL/F_GETFD act on the placeholder exactly as
			 * needed; F_DUPFD* of a remote vfd are published in
			 * the fd table (from 0) or make the vfd summary of
			 * select/poll re-read the table (sys_fcntl). The
			 * kernel reads cmd as an unsigned int.
			 */
			for (i = 0; i < sizeof(fcntl_cmds) / sizeof(fcntl_cmds[0]) && !ret; i++)
				ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 1,
						       SV_ARG_INT_EQ(1, fcntl_cmds[i]));
			break;
		case SYS_ioctl:
			for (i = 0; i < sizeof(ioctl_reqs) / sizeof(ioctl_reqs[0]) && !ret; i++)
				ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 1,
						       SV_ARG_INT_EQ(1, ioctl_reqs[i]));
			break;
		default:
			ret = seccomp_rule_add(ctx, SCMP_ACT_NOTIFY, nr, 0);
		}
	}
	return ret;
}

/*
 * The operations of struct sv_front on a seccomp user notification: the
 * caller is the thread c->tid of the monitored program, blocked in the
 * kernel until NOTIF_SEND answers; its memory is reached with
 * process_vm_readv/writev, its fds with pidfd_getfd and NOTIF_ADDFD.
 */
static int sc_next(struct sv *sv, struct sv_call *c)
{
	struct seccomp_notif n;

	_Static_assert(sizeof(c->sys) == sizeof(n.data), "sv_syscall is seccomp_data's layout");
	memset(&n, 0, sizeof(n));
	if (ioctl(sv->notify_fd, SECCOMP_IOCTL_NOTIF_RECV, &n))
		return -errno;
	c->id = n.id;
	c->tid = n.pid;
	memcpy(&c->sys, &n.data, sizeof(c->sys));
	return 0;
}

/* ENOENT: the notification is gone; EINPROGRESS: sv_check_signals() answered it already. */
static bool sc_answer(struct sv_call *c, int64_t ret, bool cont)
{
	struct seccomp_notif_resp resp = { .id = c->id };

	if (cont)
		resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
	else if (ret < 0)
		resp.error = (int32_t)ret;
	else
		resp.val = ret;
	if (!ioctl(c->sv->notify_fd, SECCOMP_IOCTL_NOTIF_SEND, &resp))
		return true;
	if (errno == ENOENT || errno == EINPROGRESS)
		return false;
	pr_debug("NOTIF_SEND (nr %d, pid %d): %s\n", c->sys.nr, c->tid, err_str(errno));
	return true;
}

static bool sc_valid(const struct sv_call *c)
{
	__u64 id = c->id;

	return ioctl(c->sv->notify_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &id) == 0;
}

static ssize_t sc_mem(struct sv_call *c, const struct iovec *local, const struct iovec *remote,
		      int n, bool write)
{
	return write ? process_vm_writev(c->tid, local, n, remote, n, 0) :
		       process_vm_readv(c->tid, local, n, remote, n, 0);
}

static int sc_threads(struct sv_call *c)
{
	int n = proc_threads(c->tid);

	return n > 0 ? n : 0;
}

static int sc_addfd(struct sv_call *c, int fd, int vfd, unsigned int newfd_flags, bool answer)
{
	struct seccomp_notif_addfd af = {
		.id = c->id,
		.srcfd = fd,
		.newfd = vfd >= 0 ? vfd : 0,
		.newfd_flags = newfd_flags,
		.flags = (vfd >= 0 ? SECCOMP_ADDFD_FLAG_SETFD : 0) |
			 (answer ? SECCOMP_ADDFD_FLAG_SEND : 0),
	};
	int ret = ioctl(c->sv->notify_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &af);

	return ret < 0 ? -errno : ret;
}

static void sc_signal(struct sv_call *c, int sig)
{
	syscall(SYS_tgkill, c->tgid, c->tid, sig);
}

/* The supervisor runs on the CPU of the woken thread: ~2x faster round trips (6.6+). */
static void sc_start(struct sv *sv)
{
	__u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;

	if (ioctl(sv->notify_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags))
		pr_info("seccomp SYNC_WAKE_UP not available: %s\n", err_str(errno));
}

/*
 * The fd tables of the host tier's processes: /proc/TID/fd and fdinfo,
 * pidfds (exit and pidfd_getfd), kcmp.
 */
static pid_t pf_tgid(pid_t tid)
{
	static const char *const name[] = { "Tgid" };
	uint64_t tgid;
	int n = proc_status(0, tid, name, &tgid, 1);

	if (n < 0)
		return n;
	return n == 1 && tgid > 0 ? (pid_t)tgid : -ESRCH;
}

static int pf_exit_fd(pid_t tgid)
{
	int fd = syscall(SYS_pidfd_open, tgid, 0);

	return fd < 0 ? -errno : fd;
}

static int pf_fd_ino(pid_t tid, int vfd, ino_t *ino)
{
	char link[64];
	unsigned long i;
	int err = proc_fd_link(tid, vfd, link, sizeof(link));

	if (err)
		return err;
	if (sscanf(link, "socket:[%lu]", &i) != 1)
		return 0;
	*ino = i;
	return 1;
}

/* The octal "flags:" line of fdinfo. */
static int pf_fd_flags(pid_t tid, int vfd)
{
	unsigned int fl = 0;
	char line[128];
	FILE *f;

	f = proc_fdinfo(tid, vfd);
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "flags: %o", &fl) == 1)
			break;
	fclose(f);
	return fl;
}

static int pf_fd_copy(pid_t tgid, int exit_fd, int vfd)
{
	int fd;

	(void)tgid;
	fd = syscall(SYS_pidfd_getfd, exit_fd, vfd, 0);
	return fd < 0 ? -errno : fd;
}

static int pf_fd_each(pid_t tid, void (*fn)(int vfd, void *arg), void *arg)
{
	return proc_fd_each(tid, fn, arg);
}

static bool pf_files_shared(pid_t a, pid_t b)
{
	return syscall(SYS_kcmp, a, b, KCMP_FILES, 0, 0) == 0;
}

static const struct fdc_source fdc_procfs = {
	.tgid = pf_tgid,
	.exit_fd = pf_exit_fd,
	.fd_ino = pf_fd_ino,
	.fd_flags = pf_fd_flags,
	.fd_copy = pf_fd_copy,
	.fd_each = pf_fd_each,
	.files_shared = pf_files_shared,
};

const struct sv_front sv_seccomp = {
	.name = "seccomp user notification",
	.start = sc_start,
	.next = sc_next,
	.answer = sc_answer,
	.valid = sc_valid,
	.mem = sc_mem,
	.threads = sc_threads,
	.addfd = sc_addfd,
	.signal = sc_signal,
	.table = &fdc_procfs,
};
