// SPDX-License-Identifier: GPL-2.0
/* The monitor's readers of /proc (procfs.h): status fields, threads, fd links, fd lists, fdinfo. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "procfs.h"

/* Signal and capability sets are printed in hexadecimal, the umask in octal, the rest in decimal. */
static int proc_field_base(const char *name)
{
	if (!strncmp(name, "Sig", 3) || !strncmp(name, "Shd", 3) || !strncmp(name, "Cap", 3))
		return 16;
	return strcmp(name, "Umask") ? 10 : 8;
}

int proc_status(pid_t tgid, pid_t tid, const char *const *names, uint64_t *vals, int n)
{
	char path[64], line[256], *colon;
	int found = 0, i;
	FILE *f;

	if (tgid > 0)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/status", tgid, tid);
	else
		snprintf(path, sizeof(path), "/proc/%d/status", tid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (found < n && fgets(line, sizeof(line), f)) {
		colon = strchr(line, ':');
		if (!colon)
			continue;
		*colon = '\0';
		for (i = 0; i < n; i++) {
			if (strcmp(line, names[i]))
				continue;
			vals[i] = strtoull(colon + 1, NULL, proc_field_base(names[i]));
			found++;
			break;
		}
	}
	fclose(f);
	return found;
}

int proc_fd_link(pid_t pid, int fd, char *buf, size_t len)
{
	char path[64];
	ssize_t n;

	if (len < 1)
		return -EINVAL;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, buf, len - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

int fd_link(int fd, char *buf, size_t len)
{
	return proc_fd_link(0, fd, buf, len);
}

int proc_fd_each(pid_t pid, void (*fn)(int fd, void *arg), void *arg)
{
	struct dirent *d;
	char path[64];
	char *end;
	DIR *dir;
	long fd;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		fd = strtol(d->d_name, &end, 10);
		if (*end || end == d->d_name || fd < 0 || fd > INT_MAX)
			continue;
		fn((int)fd, arg);
	}
	closedir(dir);
	return 0;
}

FILE *proc_fdinfo(pid_t pid, int fd)
{
	char path[64];

	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", (int)pid, fd);
	else
		snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	return fopen(path, "re");
}

int proc_threads(pid_t tid)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)tid);
	if (stat(path, &st))
		return -errno;
	return st.st_nlink > 2 ? (int)(st.st_nlink - 2) : 0;
}
