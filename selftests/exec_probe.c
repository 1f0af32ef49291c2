// SPDX-License-Identifier: GPL-2.0
/*
 * Attacker of attack_passport_test.sh: a trusted program that tries to run
 * untrusted code on the network through exec tricks; also the payload
 * ("reach") and, built with -shared -DEXEC_PROBE_LIB, a preload/audit library.
 *
 *   exec_probe reach [...] IP PORT      GET /probe.html from IP:PORT; prints
 *                                       "REACHED <size of /proc/self/exe>", exits 10
 *   exec_probe hello                    prints "HELLO"
 *   exec_probe devfd FILE ARGS...       execve("/dev/fd/N") of FILE
 *   exec_probe memfd FILE ARGS...       fexecve of a memfd holding FILE
 *   exec_probe deleted FILE DIR ARGS... exec of a copy in DIR, unlinked after open
 *   exec_probe emptypath FILE ARGS...   execveat(O_PATH fd, "", AT_EMPTY_PATH)
 *   exec_probe magiclink FILE DIR ARGS... exec of DIR/link -> /proc/self/fd/N
 *   exec_probe env VAR=VAL FILE ARGS... execve FILE with VAR=VAL added
 *   exec_probe race GOOD BAD DIR TRIES ARGS...
 *                                       a thread swaps DIR/prog between copies of
 *                                       GOOD and BAD while TRIES children exec it;
 *                                       prints "tries T killed K"
 *   exec_probe memrace GOOD BAD DIR TRIES ARGS...
 *                                       the same, a second thread of each child
 *                                       flipping the path string execve reads
 * ARGS are the new program's arguments after argv[0] ("probe").
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#define PROBE_MARK	"rsys-probe-page"

/* Fetch the world's probe page: true if it came back (the network was reached). */
static int reach(const char *ip, int port)
{
	static const char req[] = "GET /probe.html HTTP/1.0\r\n\r\n";
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	char buf[4096];
	size_t got = 0;
	struct stat st;
	ssize_t n;
	int s;

	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1)
		return 0;
	s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return 0;
	if (connect(s, (struct sockaddr *)&sa, sizeof(sa)) ||
	    write(s, req, sizeof(req) - 1) != (ssize_t)sizeof(req) - 1) {
		close(s);
		return 0;
	}
	while (got < sizeof(buf) - 1 && (n = read(s, buf + got, sizeof(buf) - 1 - got)) > 0)
		got += n;
	close(s);
	buf[got] = '\0';
	if (!strstr(buf, PROBE_MARK))
		return 0;
	if (stat("/proc/self/exe", &st))
		st.st_size = -1;
	printf("REACHED %lld\n", (long long)st.st_size);
	fflush(stdout);
	return 1;
}

#ifdef EXEC_PROBE_LIB
/* Preloaded or audit library: reach out before main() of the program it is put in. */
__attribute__((constructor)) static void probe_lib_init(void)
{
	const char *to = getenv("PROBE_REACH");
	char ip[64];
	int port;

	if (to && sscanf(to, "%63[^:]:%d", ip, &port) == 2)
		reach(ip, port);
}

/* rtld-audit(7): an LD_AUDIT library must say which interface it speaks. */
unsigned int la_version(unsigned int version)
{
	return version;
}
#else

/* argv for the new program: "probe" then @args. */
static char **new_argv(char **args)
{
	static char *av[64];
	int i;

	av[0] = "probe";
	for (i = 0; args[i] && i < 62; i++)
		av[i + 1] = args[i];
	av[i + 1] = NULL;
	return av;
}

static int copy_into(int from, int to)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(from, buf, sizeof(buf))) > 0)
		if (write(to, buf, n) != n)
			return -1;
	return n < 0 ? -1 : 0;
}

/* A copy of @file at @path (mode 0755), opened read-only. */
static int copy_file(const char *file, const char *path)
{
	int in, out, ret;

	in = open(file, O_RDONLY | O_CLOEXEC);
	out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
	if (in < 0 || out < 0)
		return -1;
	ret = copy_into(in, out);
	close(in);
	close(out);
	return ret ? -1 : open(path, O_RDONLY | O_CLOEXEC);
}

static int die(const char *what)
{
	printf("EXEC-FAILED %s %s\n", what, strerrorname_np(errno));
	return 1;
}

struct race {
	char prog[4096], other[4096];
	char *args[64];			/* the new program's argv */
	atomic_bool stop;
};

/* "race": swap the two names on disk. */
static void *race_rename(void *arg)
{
	struct race *r = arg;

	while (!atomic_load(&r->stop))
		syscall(SYS_renameat2, AT_FDCWD, r->prog, AT_FDCWD, r->other, RENAME_EXCHANGE);
	return NULL;
}

/* "memrace": flip the path execve reads between DIR/g and DIR/b. */
static void *race_flip(void *arg)
{
	struct race *r = arg;
	volatile char *last = r->prog + strlen(r->prog) - 1;

	for (;;)
		*last = *last == 'g' ? 'b' : 'g';
	return NULL;
}

/* One try of "memrace": a second thread flips the path while this one execs it. */
static void memrace_child(struct race *r)
{
	pthread_t t;

	if (!pthread_create(&t, NULL, race_flip, r))
		execv(r->prog, r->args);
	_exit(126);
}

/*
 * TRIES children exec DIR's copy of GOOD while the name (race: on disk)
 * or the path string (memrace: in memory) flips to BAD's copy.
 */
static int race(char **argv, bool in_memory)
{
	int tries = atoi(argv[3]), i, killed = 0, status;
	struct race r = { 0 };
	char **av = new_argv(argv + 4);
	pthread_t t;
	pid_t pid;

	for (i = 0; av[i] && i < 63; i++)
		r.args[i] = av[i];
	snprintf(r.prog, sizeof(r.prog), "%s/%s", argv[2], in_memory ? "g" : "prog");
	snprintf(r.other, sizeof(r.other), "%s/%s", argv[2], in_memory ? "b" : "other");
	if (copy_file(argv[0], r.prog) < 0 || copy_file(argv[1], r.other) < 0)
		return die("copy");
	if (!in_memory && pthread_create(&t, NULL, race_rename, &r))
		return die("pthread_create");
	for (i = 0; i < tries; i++) {
		pid = fork();
		if (pid < 0)
			break;
		if (!pid) {
			if (in_memory)
				memrace_child(&r);
			execv(r.prog, r.args);
			_exit(126);
		}
		if (waitpid(pid, &status, 0) == pid && WIFSIGNALED(status) &&
		    WTERMSIG(status) == SIGKILL)
			killed++;
	}
	if (!in_memory) {
		atomic_store(&r.stop, true);
		pthread_join(t, NULL);
	}
	printf("tries %d killed %d\n", i, killed);
	return 0;
}

int main(int argc, char **argv)
{
	char path[4096];
	int fd, mfd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 2)
		return 2;
	/* the last two words: "#!" lines put the script's path in between */
	if (!strcmp(argv[1], "reach") && argc >= 4)
		return reach(argv[argc - 2], atoi(argv[argc - 1])) ? 10 : 1;
	if (!strcmp(argv[1], "hello")) {
		printf("HELLO\n");
		return 0;
	}
	if (argc < 3)
		return 2;
	if (!strcmp(argv[1], "devfd")) {
		fd = open(argv[2], O_RDONLY);
		snprintf(path, sizeof(path), "/dev/fd/%d", fd);
		execv(path, new_argv(argv + 3));
		return die(path);
	}
	if (!strcmp(argv[1], "memfd")) {
		fd = open(argv[2], O_RDONLY | O_CLOEXEC);
		mfd = memfd_create("probe", MFD_CLOEXEC);
		if (fd < 0 || mfd < 0 || copy_into(fd, mfd))
			return die("memfd");
		fexecve(mfd, new_argv(argv + 3), environ);
		return die("fexecve");
	}
	if (!strcmp(argv[1], "emptypath")) {
		fd = open(argv[2], O_PATH | O_CLOEXEC);
		syscall(SYS_execveat, fd, "", new_argv(argv + 3), environ, AT_EMPTY_PATH);
		return die("execveat");
	}
	if (!strcmp(argv[1], "env") && argc >= 4) {
		putenv(argv[2]);
		execv(argv[3], new_argv(argv + 4));
		return die("execve");
	}
	if (argc < 4)
		return 2;
	if (!strcmp(argv[1], "deleted")) {
		snprintf(path, sizeof(path), "%s/deleted", argv[3]);
		fd = copy_file(argv[2], path);
		if (fd < 0 || unlink(path))
			return die("copy");
		/* not close-on-exec: the kernel opens it again through /proc/self/fd */
		fcntl(fd, F_SETFD, 0);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		execv(path, new_argv(argv + 4));
		return die(path);
	}
	if (!strcmp(argv[1], "magiclink")) {
		char link[4096];

		fd = open(argv[2], O_RDONLY);
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		snprintf(link, sizeof(link), "%s/link", argv[3]);
		unlink(link);
		if (fd < 0 || symlink(path, link))
			return die("symlink");
		execv(link, new_argv(argv + 4));
		return die(link);
	}
	if ((!strcmp(argv[1], "race") || !strcmp(argv[1], "memrace")) && argc >= 6)
		return race(argv + 2, !strcmp(argv[1], "memrace"));
	return 2;
}
#endif
