// SPDX-License-Identifier: GPL-2.0
/* The passport at every execve: judge the file the caller would run, opened as it would, and approve it to the exec guard. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "execguard.h"
#include "events.h"
#include "log.h"
#include "sockcalls.h"

#define EXEC_MAX_INTERP	4	/* "#!" levels followed, as the kernel's binfmt recursion */
#define EXEC_LINE_MAX	256	/* the kernel reads a script's "#!" line from this many bytes */

/* Read the NUL-terminated path at @upath of the caller. 0, -EFAULT, -ENAMETOOLONG or -ENOENT. */
static int exec_read_path(struct sv_call *c, uint64_t upath, char *path, size_t cap)
{
	size_t i, n;
	int err;

	/* never past the page holding the end of the string: the next one may be unmapped */
	for (i = 0; i < cap; i += n) {
		n = 4096 - ((upath + i) & 4095);
		if (n > cap - i)
			n = cap - i;
		err = sv_read_mem(c, path + i, upath + i, n);
		if (err)
			return err;
		if (memchr(path + i, '\0', n))
			return 0;
	}
	return -ENAMETOOLONG;
}

/*
 * "/dev/fd/N", "/proc/self/fd/N", "/proc/self/exe" and their thread-self
 * forms name the caller's own files, which the monitor must not resolve as
 * its own: their "/proc/TID/..." in @out, or false for any other path.
 */
static bool exec_own_path(struct sv_call *c, const char *path, char *out, size_t cap)
{
	static const char *const fd_dirs[] = { "/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/" };
	size_t i, n;
	char *end;
	long fd;

	if (!strcmp(path, "/proc/self/exe") || !strcmp(path, "/proc/thread-self/exe")) {
		snprintf(out, cap, "/proc/%d/exe", c->tid);
		return true;
	}
	for (i = 0; i < sizeof(fd_dirs) / sizeof(fd_dirs[0]); i++) {
		n = strlen(fd_dirs[i]);
		if (strncmp(path, fd_dirs[i], n) || !isdigit((unsigned char)path[n]))
			continue;
		errno = 0;
		fd = strtol(path + n, &end, 10);
		if (*end || errno || fd > INT_MAX)
			return false;
		snprintf(out, cap, "/proc/%d/fd/%ld", c->tid, fd);
		return true;
	}
	return false;
}

/*
 * Reopen @pathfd (O_PATH) for reading if it is a regular file: only those
 * can be executed, and opening anything else (a FIFO, a device) could block
 * or act. fd or -errno; @pathfd is closed.
 */
static int exec_reopen(int pathfd, bool nofollow)
{
	char self[64];
	struct stat st;
	int fd;

	if (fstat(pathfd, &st)) {
		fd = -errno;
	} else if (!S_ISREG(st.st_mode)) {
		fd = S_ISLNK(st.st_mode) && nofollow ? -ELOOP : -EACCES;
	} else {
		snprintf(self, sizeof(self), "/proc/self/fd/%d", pathfd);
		fd = open(self, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fd = -errno;
	}
	close(pathfd);
	return fd;
}

/*
 * Open the file execve(at) of @c would run, as the caller would: @path
 * relative to the caller's root (absolute), cwd or @dirfd; its own file
 * @vfd (>= 0) for execveat(AT_EMPTY_PATH). Magic links met on the way would
 * be the monitor's own and are refused (ELOOP). fd or -errno.
 */
static int exec_open(struct sv_call *c, int dirfd, int vfd, const char *path, bool nofollow)
{
	struct open_how how = {
		.flags = O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0),
		.resolve = RESOLVE_NO_MAGICLINKS,
	};
	char base[64];
	int bfd, fd;

	if (vfd >= 0)
		snprintf(base, sizeof(base), "/proc/%d/fd/%d", c->tid, vfd);
	if (vfd >= 0 || exec_own_path(c, path, base, sizeof(base))) {
		fd = open(base, O_PATH | O_CLOEXEC);
		if (fd < 0)
			return -errno;
	} else {
		if (path[0] == '/') {
			snprintf(base, sizeof(base), "/proc/%d/root", c->tid);
			how.resolve |= RESOLVE_IN_ROOT;
		} else if (dirfd == AT_FDCWD) {
			snprintf(base, sizeof(base), "/proc/%d/cwd", c->tid);
		} else {
			snprintf(base, sizeof(base), "/proc/%d/fd/%d", c->tid, dirfd);
		}
		bfd = open(base, O_PATH | O_CLOEXEC);
		/* no such dirfd: what the kernel answers */
		if (bfd < 0 && errno == ENOENT && dirfd != AT_FDCWD && path[0] != '/')
			return -EBADF;
		if (bfd < 0)
			return -errno;
		fd = syscall(SYS_openat2, bfd, path, &how, sizeof(how));
		if (fd < 0)
			fd = -errno;
		close(bfd);
		if (fd < 0)
			return fd;
	}
	fd = exec_reopen(fd, nofollow);
	/* The thread may be gone and its number reused: then this was another one's file. */
	if (fd >= 0 && !sv_call_valid(c)) {
		close(fd);
		return -ENOENT;
	}
	return fd;
}

/* The interpreter a "#!" script @fd names into @out, as the kernel reads it; "" for a binary. */
static int exec_interp(int fd, char *out, size_t cap)
{
	char buf[EXEC_LINE_MAX + 1];
	char *s, *e;
	ssize_t n;

	out[0] = '\0';
	n = pread(fd, buf, EXEC_LINE_MAX, 0);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	if (n < 2 || buf[0] != '#' || buf[1] != '!')
		return 0;
	for (s = buf + 2; *s == ' ' || *s == '\t'; s++)
		;
	for (e = s; *e && *e != ' ' && *e != '\t' && *e != '\n'; e++)
		;
	if (e == s || (size_t)(e - s) >= cap)
		return -ENOEXEC;
	memcpy(out, s, e - s);
	out[e - s] = '\0';
	return 0;
}

/* Same file, same change time and size: nothing was written to it in between. */
static bool same_version(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/*
 * Judge the file @fd (named @what) and, for a "#!" script, each interpreter
 * down to the binary the kernel maps: all must be trusted. Consumes @fd.
 * Returns that binary, open (*@st: its fstat before it was judged), or
 * -EPERM (the reason is on stderr) or -errno.
 */
static int exec_judge(struct sv_call *c, int fd, const char *what, struct stat *st)
{
	char interp[PATH_MAX];
	struct stat after;
	int depth, ret;

	for (depth = 0;; depth++) {
		if (fstat(fd, st)) {
			ret = -errno;
			break;
		}
		ret = policy_check_fd(c->sv->policy, fd, what, stderr);
		if (ret)
			break;
		if (fstat(fd, &after) || !same_version(st, &after)) {
			pr_err("%s was written while its passport was checked\n", what);
			ret = -EPERM;
			break;
		}
		ret = exec_interp(fd, interp, sizeof(interp));
		if (ret)
			break;
		if (!interp[0])
			return fd;
		close(fd);
		if (depth == EXEC_MAX_INTERP)
			return -ELOOP;
		/* The kernel opens the interpreter like execve: from the caller's root or cwd. */
		fd = exec_open(c, AT_FDCWD, -1, interp, false);
		if (fd < 0)
			return fd;
		what = interp;
	}
	close(fd);
	return ret;
}

/*
 * Tell the trace (and "rsys-load learn") that @c executes @path as named
 * (made absolute from the caller's cwd), with the verdict; its digest is
 * read in the caller's view of the file system.
 */
static void exec_event(struct sv_call *c, const char *path, bool trusted, int ret)
{
	char cwd[PATH_MAX], abs[PATH_MAX], open_path[PATH_MAX + 32];
	char link[64];
	ssize_t n;

	if (path[0] == '/') {
		snprintf(abs, sizeof(abs), "%s", path);
	} else if (!strncmp(path, "fd ", 3)) {
		/* execveat(fd, "", AT_EMPTY_PATH): the file the caller's fd names */
		snprintf(link, sizeof(link), "/proc/%d/fd/%d", c->tid, atoi(path + 3));
		n = readlink(link, abs, sizeof(abs) - 1);
		if (n < 0)
			return;
		abs[n] = '\0';
		mon_event_exec(c->tgid, c->tid, abs, link, trusted, ret);
		return;
	} else {
		snprintf(link, sizeof(link), "/proc/%d/cwd", c->tid);
		n = readlink(link, cwd, sizeof(cwd) - 1);
		if (n < 0)
			return;
		cwd[n] = '\0';
		if (snprintf(abs, sizeof(abs), "%s/%s", cwd, path) >= (int)sizeof(abs))
			return;
	}
	snprintf(open_path, sizeof(open_path), "/proc/%d/root%s", c->tid, abs);
	mon_event_exec(c->tgid, c->tid, abs, open_path, trusted, ret);
}

/*
 * A trusted program may only become a program the policy trusts: the
 * passport check of "rsys-load run" again at every execve, on the file the
 * caller would run (memfds and deleted files are judged by their content).
 * Another one gets EACCES, and the monitor says why on its standard error;
 * so does any error in the check (fail closed). What the kernel would
 * answer itself without running anything (no such file, ...) keeps its
 * errno. The exec guard then kills the exec if the kernel runs another
 * file than the one approved, or with a dynamic-loader variable.
 */
enum sv_verdict sys_execve(struct sv_call *c)
{
	const __u64 *a = c->sys.args;
	bool at = c->sys.nr == SYS_execveat;
	int dirfd = at ? (int)a[0] : AT_FDCWD, fd, err;
	struct sv *sv = c->sv;
	char path[PATH_MAX];
	struct stat st;

	if (sv->front->exec_by_token)
		goto out_continue;
	if (policy_trusts_all(sv->policy)) {
		/* what "rsys-load learn" learns the programs from */
		if (!exec_read_path(c, at ? a[1] : a[0], path, sizeof(path)))
			exec_event(c, path, true, 0);
		goto out_continue;
	}
	err = exec_read_path(c, at ? a[1] : a[0], path, sizeof(path));
	if (err)
		return sv_error(c, err);
	if (!sv->guard && sv->execs++) {
		pr_err("execve of %s refused: the exec guard (BPF) is not loaded, so only the program rsys-load started may run\n",
		       path);
		goto out_refuse;
	}
	if (at && !path[0] && (a[4] & AT_EMPTY_PATH)) {
		fd = exec_open(c, dirfd, dirfd, path, false);
		snprintf(path, sizeof(path), "fd %d", dirfd);
	} else {
		fd = exec_open(c, dirfd, -1, path, at && (a[4] & AT_SYMLINK_NOFOLLOW));
	}
	switch (fd) {
	case -ENOENT: case -ENOTDIR: case -ENAMETOOLONG: case -EBADF:
		return sv_error(c, fd);
	}
	if (fd < 0) {
		pr_err("execve of %s refused: cannot open it to check its passport: %s\n",
		       path, err_str(-fd));
		goto out_refuse;
	}
	fd = exec_judge(c, fd, path, &st);
	if (fd == -ENOENT || fd == -ENOTDIR)
		return sv_error(c, fd);
	if (fd < 0) {
		if (fd != -EPERM)
			pr_err("execve of %s refused: its passport cannot be checked: %s\n",
			       path, err_str(-fd));
		goto out_refuse;
	}
	err = sv->guard ? execguard_approve(sv->guard, c->tid, fd, &st) : 0;
	close(fd);
	if (err) {
		pr_err("execve of %s refused: cannot approve it to the exec guard: %s\n",
		       path, err_str(-err));
		goto out_refuse;
	}
	exec_event(c, path, true, 0);
out_continue:
	sock_exec(c);
	return SV_CONTINUE;

out_refuse:
	exec_event(c, path, false, -EACCES);
	return sv_error(c, -EACCES);
}
