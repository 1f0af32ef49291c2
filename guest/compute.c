// SPDX-License-Identifier: GPL-2.0
/* Host-tier compute side: build the sandbox, enter the netns, install the filter, hand over its listener, exec. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <seccomp.h>
#include <linux/filter.h>
#include <sys/mman.h>

#include "seccomp_compat.h"

#include "guest.h"
#include "supervisor.h"
#include "log.h"

/* Paths the sandbox never sees, whatever the policy: other namespaces, BPF pins, rsys state. */
static const char *const sandbox_hidden[] = { "/run/netns", "/sys/fs/bpf", "/run/rsys", NULL };

/* The handshake between the monitor, the sandbox's pid 1 and the program's process. */
enum guest_msg_kind {
	MSG_USERNS = 'U',	/* pid 1 -> monitor: the user namespace exists, write its maps */
	MSG_MAPPED = 'M',	/* monitor -> pid 1: maps written */
	MSG_PROG = 'P',		/* program -> monitor: its credentials carry its host pid */
	MSG_STOPPED = 'S',	/* pid 1 -> monitor: the program stopped with its filter installed */
	MSG_EXITED = 'X',	/* pid 1 -> monitor: the program's wait status */
};

struct guest_msg {
	int kind;
	int status;
};

static void __attribute__((noreturn, format(printf, 1, 2))) guest_die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: Error: ", log_prog);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	_exit(1);
}

static int guest_send(int sock, int kind, int status)
{
	struct guest_msg m = { .kind = kind, .status = status };

	return send(sock, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m) ? 0 : -errno;
}

/* One message; @pid (if not NULL) gets the sender's pid as seen here. -EPIPE: peer gone. */
static int guest_recv(int sock, struct guest_msg *m, pid_t *pid, int flags)
{
	char cbuf[CMSG_SPACE(sizeof(struct ucred))];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(*m) };
	struct msghdr mh = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *c;
	ssize_t n;

	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC | flags);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n != sizeof(*m))
		return n ? -EPROTO : -EPIPE;
	for (c = CMSG_FIRSTHDR(&mh); c && pid; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS)
			*pid = ((struct ucred *)CMSG_DATA(c))->pid;
	return 0;
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

static void join_netns(const char *name)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		guest_die("cannot open network namespace %s: %s (create it with 'ip netns add %s')\n",
			  path, err_str(errno), name);
	if (setns(fd, CLONE_NEWNET))
		guest_die("cannot join network namespace %s: %s\n", path, err_str(errno));
	close(fd);
}

static void fresh_netns_lo(void)
{
	int ret = lo_up();

	if (ret)
		guest_die("cannot bring lo up in the compute namespace: %s\n", err_str(-ret));
}

/*
 * Load @ctx with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (libseccomp 2.5 has
 * no attribute for it: the program is exported and loaded raw): once the
 * monitor has received a call, only a fatal signal ends its wait, and the
 * monitor decides how the call ends on any other (supervisor.c). Returns
 * the listener fd, or -errno (the caller then loads it the usual way).
 */
static int load_killable(scmp_filter_ctx ctx)
{
	struct sock_fprog prog = { 0 };
	struct stat sb;
	int mfd, fd;

	mfd = memfd_create("rsys-filter", MFD_CLOEXEC);
	if (mfd < 0)
		return -errno;
	fd = seccomp_export_bpf(ctx, mfd);
	if (!fd && (fstat(mfd, &sb) || !sb.st_size || sb.st_size % sizeof(*prog.filter)))
		fd = -EINVAL;
	if (!fd) {
		prog.len = sb.st_size / sizeof(*prog.filter);
		prog.filter = malloc(sb.st_size);
		if (!prog.filter || pread(mfd, prog.filter, sb.st_size, 0) != sb.st_size)
			fd = -EIO;
	}
	/* before the filter: close is one of the calls nobody serves until the monitor takes over */
	close(mfd);
	if (!fd) {
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			     SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
			     &prog);
		if (fd < 0)
			fd = -errno;
	}
	free(prog.filter);	/* free() makes no intercepted call */
	return fd;
}

/* Build and load the filter of @o's mode (killable: see load_killable); returns its listener fd. */
static int install_filter(const struct guest_opts *o)
{
	scmp_filter_ctx ctx;
	int ret, fd = -1;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		guest_die("cannot create the seccomp filter\n");
	ret = sv_filter_add_rules(ctx, o->policy, o->sandbox,
				  o->direct ? (o->guarded ? SV_FILTER_GUARDED : SV_FILTER_DIRECT) :
				  SV_FILTER_REMOTE);
	if (!ret && o->killable)
		fd = load_killable(ctx);
	if (!ret && fd < 0)
		ret = seccomp_load(ctx);
	if (ret)
		guest_die("cannot install the seccomp filter: %s (kernel needs SECCOMP_FILTER and user notification, >= 5.9)\n",
			  err_str(-ret));
	if (fd < 0)
		fd = seccomp_notify_fd(ctx);
	if (fd < 0)
		guest_die("seccomp filter has no listener: %s\n", err_str(-fd));
	seccomp_release(ctx);
	return fd;
}

/* The program's process, last steps: no privilege from exec, the filter, stop for the monitor, exec. */
static void __attribute__((noreturn)) filter_exec(const struct guest_opts *o)
{
	int fd;

	sigprocmask(SIG_SETMASK, o->sigmask, NULL);
	/* No set-id or file-capability binary gains what the program does not have. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		guest_die("cannot set no_new_privs: %s\n", err_str(errno));
	fd = install_filter(o);
	/*
	 * Most ways to talk to the monitor are intercepted now and nobody
	 * serves them yet: stop, and let the monitor take the listener with
	 * pidfd_getfd() and start serving before it continues us.
	 */
	raise(SIGSTOP);
	/* Only the monitor may hold the listener: if it dies, intercepted calls fail instead of hanging. */
	close(fd);
	execv(o->path, o->argv);
	pr_err("cannot execute %s: %s\n", o->path, err_str(errno));
	_exit(127);
}

/* --no-sandbox: the program's process is the monitor's child, root in the host's namespaces. */
static void __attribute__((noreturn)) plain_exec(const struct guest_opts *o, pid_t parent)
{
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(1);
	if (o->netns) {
		join_netns(o->netns);
	} else {
		if (unshare(CLONE_NEWNET))
			guest_die("cannot create the compute network namespace: %s (run as root)\n",
				  err_str(errno));
		fresh_netns_lo();
	}
	filter_exec(o);
}

/* What the monitor holds is close-on-exec; the sandbox's pid 1 never execs, so it closes it now. */
static void close_monitor_fds(int keep)
{
	struct dirent *de;
	int fd, fl;
	DIR *d;

	d = opendir("/proc/self/fd");
	if (!d)
		guest_die("cannot list /proc/self/fd: %s\n", err_str(errno));
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		fd = atoi(de->d_name);
		if (fd == keep || fd == dirfd(d))
			continue;
		fl = fcntl(fd, F_GETFD);
		if (fl >= 0 && (fl & FD_CLOEXEC))
			close(fd);
	}
	closedir(d);
}

/* Cover @path (if it exists): an empty read-only tmpfs over a directory, /dev/null over anything else. */
static void hide_path(const char *path)
{
	struct stat st;
	int ret;

	if (stat(path, &st)) {
		if (errno == ENOENT)
			return;
		guest_die("cannot hide %s in the sandbox: %s\n", path, err_str(errno));
	}
	if (S_ISDIR(st.st_mode))
		ret = mount("rsys-hidden", path, "tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
			    "size=4k,mode=755");
	else
		ret = mount("/dev/null", path, NULL, MS_BIND, NULL);
	if (ret)
		guest_die("cannot hide %s in the sandbox: %s\n", path, err_str(errno));
}

/*
 * The sandbox's mounts, made while we are still root in the host's user
 * namespace: the user namespace created next copies them into its own
 * mount namespace locked, so root in the sandbox cannot unmount a cover
 * (nor the new /proc) to see what is underneath.
 */
static void sandbox_mounts(const struct guest_opts *o)
{
	const char *const *p;

	if (unshare(CLONE_NEWNS))
		guest_die("cannot create the sandbox's mount namespace: %s\n", err_str(errno));
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		guest_die("cannot make the sandbox's mounts private: %s\n", err_str(errno));
	/* We are pid 1 of the new pid namespace: this /proc shows only the sandbox. */
	if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		guest_die("cannot mount /proc for the sandbox's pid namespace: %s\n", err_str(errno));
	for (p = sandbox_hidden; *p; p++)
		hide_path(*p);
	for (p = o->hide; *p; p++)
		hide_path(*p);
}

/*
 * Root in the sandbox keeps no capability, even over what its user
 * namespace owns: an empty bounding set makes exec grant none. So the
 * program cannot remount its view of the files (under paths the monitor
 * resolves in its own namespace) nor reach the kernel's code behind
 * CAP_NET_ADMIN and CAP_SYS_ADMIN.
 */
static void drop_capabilities(void)
{
	unsigned long cap, last = 0;
	FILE *f;

	f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (!f || fscanf(f, "%lu", &last) != 1)
		guest_die("cannot read /proc/sys/kernel/cap_last_cap\n");
	fclose(f);
	for (cap = 0; cap <= last; cap++)
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0))
			guest_die("cannot drop capability %lu: %s\n", cap, err_str(errno));
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) && errno != EINVAL)
		guest_die("cannot clear the ambient capabilities: %s\n", err_str(errno));
}

static int write_file(const char *path, const char *text)
{
	size_t len = strlen(text);
	int fd, ret = 0;

	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (write(fd, text, len) != (ssize_t)len)
		ret = -errno;
	close(fd);
	return ret;
}

static volatile pid_t init_prog;

/* pid 1 gets only the signals it handles: pass them to the program. */
static void init_forward(int sig)
{
	kill(init_prog, sig);
}

/* The sandbox's pid 1 (a new pid namespace): build the sandbox, start the program, report how it ended. */
static void __attribute__((noreturn)) sandbox_init(const struct guest_opts *o, int sock)
{
	struct sigaction sa = { .sa_handler = init_forward, .sa_flags = SA_RESTART };
	struct guest_msg m;
	int status = 0, stopped = 0, ret;
	sigset_t stopsigs;
	pid_t w;

	/* Dying with the monitor kills the whole pid namespace. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL))
		_exit(1);
	close_monitor_fds(sock);
	/* Not the monitor, whose copy we are: say so in ps. */
	prctl(PR_SET_NAME, "rsys-sandbox");
	/* No controlling terminal: TIOCSTI would type commands into the shell that started us. */
	if (setsid() < 0)
		guest_die("cannot start a new session: %s\n", err_str(errno));
	/* The host's supplementary groups (root's) would still open files by group. */
	if (setgroups(0, NULL))
		guest_die("cannot drop supplementary groups: %s\n", err_str(errno));
	/* An existing netns is joined while we may; it stays owned by the host's user namespace. */
	if (o->netns)
		join_netns(o->netns);
	sandbox_mounts(o);
	if (unshare(CLONE_NEWUSER | CLONE_NEWNS | (o->netns ? 0 : CLONE_NEWNET)))
		guest_die("cannot create the sandbox's user namespace: %s (are user namespaces enabled? see /proc/sys/user/max_user_namespaces)\n",
			  err_str(errno));
	/* A monitor that is gone (EOF) or failed has said why. */
	if (guest_send(sock, MSG_USERNS, 0) || guest_recv(sock, &m, NULL, 0) || m.kind != MSG_MAPPED)
		_exit(1);
	/* Root inside is the mapped id outside from now on: never the host's root. */
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0))
		guest_die("cannot become root of the sandbox's user namespace: %s\n", err_str(errno));
	/* The id change cleared the parent-death signal; a monitor gone meanwhile shows as EOF. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || !recv(sock, &m, sizeof(m), MSG_DONTWAIT | MSG_PEEK))
		_exit(1);
	if (!o->netns)
		fresh_netns_lo();
	/*
	 * A user namespace of its own would give the program back every
	 * capability there (mounts over paths the monitor checks, netfilter):
	 * none may be created from ours. Only our root could raise it again.
	 */
	ret = write_file("/proc/sys/user/max_user_namespaces", "0\n");
	if (ret)
		guest_die("cannot forbid user namespaces in the sandbox: %s\n", err_str(-ret));
	/* The program may not ptrace us: our memory came from the monitor (fork, no exec). */
	prctl(PR_SET_DUMPABLE, 0);

	init_prog = fork();
	if (init_prog < 0)
		guest_die("fork: %s\n", err_str(errno));
	if (!init_prog) {
		/* The credentials of this message tell the monitor our pid in its namespace. */
		if (guest_send(sock, MSG_PROG, 0))
			_exit(1);
		close(sock);
		drop_capabilities();
		filter_exec(o);
	}
	/* INT/TERM/HUP came blocked from the monitor: one sent meanwhile is passed on now. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigemptyset(&stopsigs);
	sigaddset(&stopsigs, SIGINT);
	sigaddset(&stopsigs, SIGTERM);
	sigaddset(&stopsigs, SIGHUP);
	sigprocmask(SIG_UNBLOCK, &stopsigs, NULL);

	/* Reap everything; when the program ends, so does the namespace (the kernel kills the rest). */
	for (;;) {
		w = waitpid(-1, &status, WUNTRACED);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			status = 1 << 8;
			break;
		}
		if (w != init_prog)
			continue;
		if (!WIFSTOPPED(status))
			break;
		if (!stopped && WSTOPSIG(status) == SIGSTOP) {
			stopped = 1;
			guest_send(sock, MSG_STOPPED, 0);
		}
	}
	guest_send(sock, MSG_EXITED, status);
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status));
}

static int write_proc(pid_t pid, const char *file, const char *text)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	return write_file(path, text);
}

/* Root (0) inside is @uid outside, for users and groups; no other id exists inside. */
static int sandbox_map(pid_t pid, uid_t uid)
{
	char map[32];
	int ret;

	snprintf(map, sizeof(map), "0 %u 1\n", uid);
	ret = write_proc(pid, "uid_map", map);
	if (!ret)
		ret = write_proc(pid, "setgroups", "deny\n");
	if (!ret)
		ret = write_proc(pid, "gid_map", map);
	return ret;
}

void guest_close(struct guest *g)
{
	if (g->sock >= 0)
		close(g->sock);
	g->sock = -1;
}

int guest_spawn(struct guest *g, const struct guest_opts *o)
{
	pid_t parent = getpid();
	struct guest_msg m;
	int sv[2], one = 1, ret;

	g->pid = g->prog = 0;
	g->sock = -1;
	g->status = -1;
	if (!o->sandbox) {
		g->pid = fork();
		if (g->pid < 0) {
			ret = -errno;
			pr_err("fork: %s\n", err_str(errno));
			return ret;
		}
		if (!g->pid)
			plain_exec(o, parent);
		return 0;
	}
	if (o->uid == 0) {
		pr_err("the sandbox never maps its root to the host's root\n");
		return -EPERM;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return -errno;
	setsockopt(sv[0], SOL_SOCKET, SO_PASSCRED, &one, sizeof(one));
	/* Raw clone: the monitor is single-threaded here, and its own pid namespace must not change. */
	g->pid = syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, 0, 0, 0, 0);
	if (g->pid < 0) {
		ret = -errno;
		pr_err("cannot create the sandbox's pid namespace: %s\n",
		       err_str(errno));
		close(sv[0]);
		close(sv[1]);
		return ret;
	}
	if (!g->pid) {
		close(sv[0]);
		sandbox_init(o, sv[1]);
	}
	close(sv[1]);
	g->sock = sv[0];
	ret = guest_recv(g->sock, &m, NULL, 0);
	/* EOF: pid 1 failed and said why. */
	if (!ret && m.kind != MSG_USERNS)
		ret = -EPROTO;
	if (!ret) {
		ret = sandbox_map(g->pid, o->uid);
		if (ret)
			pr_err("cannot write the sandbox's id maps: %s\n",
			       err_str(-ret));
	}
	if (!ret)
		ret = guest_send(g->sock, MSG_MAPPED, 0);
	if (ret) {
		kill(g->pid, SIGKILL);
		while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
			;
		guest_close(g);
	}
	return ret;
}

/* The domain ended before the program stopped: reap it, keep how it ended. */
static int guest_ended(struct guest *g)
{
	int status;

	while (waitpid(g->pid, &status, 0) < 0)
		if (errno != EINTR) {
			status = 1 << 8;
			break;
		}
	g->status = guest_status(g, status);
	return -ECHILD;
}

int guest_wait_stopped(struct guest *g)
{
	struct guest_msg m = { 0 };
	int status;
	pid_t w;

	if (g->sock < 0) {
		while ((w = waitpid(g->pid, &status, WUNTRACED)) < 0 && errno == EINTR)
			;
		if (w == g->pid && WIFSTOPPED(status)) {
			g->prog = g->pid;
			return 0;
		}
		g->status = w == g->pid ? status : 1 << 8;
		return -ECHILD;
	}
	/* The program says who it is, then pid 1 says it stopped; anything else: the domain ends. */
	if (guest_recv(g->sock, &m, &g->prog, 0) || m.kind != MSG_PROG || g->prog <= 0 ||
	    guest_recv(g->sock, &m, NULL, 0) || m.kind != MSG_STOPPED) {
		if (m.kind == MSG_EXITED)
			g->status = m.status;
		else
			kill(g->pid, SIGKILL);
		return guest_ended(g);
	}
	return 0;
}

int guest_status(struct guest *g, int status)
{
	struct guest_msg m;

	if (g->status != -1)
		return g->status;
	if (g->sock >= 0 && !guest_recv(g->sock, &m, NULL, MSG_DONTWAIT) && m.kind == MSG_EXITED)
		return m.status;
	return status;
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
