// SPDX-License-Identifier: GPL-2.0
/* A hostile trusted program for the attack tests: each subcommand tries one thing and says whether it worked. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

/*
 * Exit status: 0 the call did what it asked for (the attacker's step worked),
 * 1 it was refused (errno printed), 2 usage. Values of int arguments can
 * carry garbage above bit 31 (--hi), which the kernel ignores.
 */
#define HI	(1ULL << 32)

static uint64_t hi;

static const struct {
	const char *name;
	long val;
} names[] = {
	{ "unix", AF_UNIX }, { "inet", AF_INET }, { "inet6", AF_INET6 },
	{ "packet", AF_PACKET }, { "netlink", AF_NETLINK }, { "alg", AF_ALG },
	{ "vsock", AF_VSOCK }, { "stream", SOCK_STREAM }, { "dgram", SOCK_DGRAM },
	{ "raw", SOCK_RAW }, { "seqpacket", SOCK_SEQPACKET }, { "sockpacket", SOCK_PACKET },
	{ "newnet", CLONE_NEWNET }, { "newuser", CLONE_NEWUSER }, { "newns", CLONE_NEWNS },
};

static void usage(void)
{
	fprintf(stderr,
		"Usage: attacker [--hi] [--setns NSFILE] CMD [ARGS]\n"
		"  socket FAMILY TYPE PROTO   socket(); --hi sets bit 32 of the family\n"
		"  socketpair FAMILY TYPE PROTO\n"
		"  connect ADDR PORT          TCP connect (IPv4); --hi as for socket\n"
		"  nonblock ADDR PORT         connect, fcntl(F_SETFL, O_NONBLOCK) (--hi: bit 32 of the\n"
		"                             command), then recv must answer EAGAIN, not block\n"
		"  unshare FLAGS | clone FLAGS | clone3 FLAGS   FLAGS: newnet+newuser or a number\n"
		"  int80-socket | x32-socket FAMILY TYPE PROTO   socket() through the i386 or x32 ABI\n"
		"  thread                     pthread_create (libc falls back from clone3)\n"
		"  noop\n"
		"Numbers or names (inet, packet, netlink, raw, ...); --setns joins NSFILE's network\n"
		"namespace first. Exit 0: it worked, 1: refused, 2: usage.\n");
	exit(2);
}

/* "newnet+newuser", "inet", "0x300", "17" */
static long arg_val(const char *s)
{
	char buf[64], *tok, *save, *end;
	long v = 0;
	size_t i;

	if (strlen(s) >= sizeof(buf))
		usage();
	strcpy(buf, s);
	for (tok = strtok_r(buf, "+", &save); tok; tok = strtok_r(NULL, "+", &save)) {
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(tok, names[i].name))
				break;
		if (i < sizeof(names) / sizeof(names[0])) {
			v |= names[i].val;
			continue;
		}
		errno = 0;
		v |= strtol(tok, &end, 0);
		if (errno || *end || end == tok)
			usage();
	}
	return v;
}

static int result(const char *what, long ret)
{
	if (ret < 0) {
		int err = errno;

		printf("%s: %s (%s)\n", what, strerrorname_np(err) ?: "?", strerror(err));
		return 1;
	}
	printf("%s: ok\n", what);
	return 0;
}

static int do_socket(char **a, int n, long nr)
{
	if (n != 3)
		usage();
	return result(nr == SYS_socket ? "socket" : "socketpair",
		      nr == SYS_socket ?
		      syscall(nr, hi | (uint32_t)arg_val(a[0]), arg_val(a[1]), arg_val(a[2])) :
		      syscall(nr, hi | (uint32_t)arg_val(a[0]), arg_val(a[1]), arg_val(a[2]),
			      (int[2]){ -1, -1 }));
}

static int tcp_connect(const char *addr, const char *port, uint64_t famhi)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
	int fd;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		usage();
	fd = syscall(SYS_socket, famhi | AF_INET, SOCK_STREAM, 0);
	if (result("socket", fd))
		return -1;
	if (result("connect", connect(fd, (struct sockaddr *)&sin, sizeof(sin))))
		return -1;
	return fd;
}

static void on_alarm(int sig)
{
	(void)sig;
}

static int do_nonblock(char **a, int n)
{
	struct sigaction sa = { .sa_handler = on_alarm };	/* no SA_RESTART: recv gets EINTR */
	char c;
	int fd;

	if (n != 2)
		usage();
	fd = tcp_connect(a[0], a[1], 0);
	if (fd < 0)
		return 1;
	if (result("fcntl", syscall(SYS_fcntl, fd, hi | F_SETFL, O_RDWR | O_NONBLOCK)))
		return 1;
	sigaction(SIGALRM, &sa, NULL);
	alarm(3);
	if (recv(fd, &c, 1, 0) < 0 && errno == EAGAIN) {
		printf("recv: EAGAIN: the socket is non-blocking\n");
		return 0;
	}
	printf("recv: %s: the socket stayed blocking\n", strerrorname_np(errno) ?: "?");
	return 1;
}

static int child_done(long pid)
{
	int status;

	if (pid > 0 && (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
			WEXITSTATUS(status))) {
		printf("child: did not exit 0\n");
		return 1;
	}
	return 0;
}

static int do_clone(char **a, int n, const char *cmd)
{
	struct clone_args ca = { .exit_signal = SIGCHLD };
	long ret;

	if (n != 1)
		usage();
	if (!strcmp(cmd, "unshare"))
		return result("unshare", syscall(SYS_unshare, arg_val(a[0])));	/* 64 bits */
	if (!strcmp(cmd, "clone")) {
		ret = syscall(SYS_clone, hi | arg_val(a[0]) | SIGCHLD, 0, 0, 0, 0);
		if (!ret)
			_exit(0);
		return result("clone", ret) || child_done(ret);
	}
	ca.flags = arg_val(a[0]);
	ret = syscall(SYS_clone3, &ca, sizeof(ca));
	if (!ret)
		_exit(0);
	return result("clone3", ret) || child_done(ret);
}

/*
 * socket() through another system call ABI of x86-64: the i386 one (int
 * 0x80) or x32 (bit 30 of the number). In a child: a filter may kill it.
 */
static int do_abi_socket(char **a, int n, const char *cmd)
{
	int status;
	long ret;
	pid_t pid;

	if (n != 3)
		usage();
	pid = fork();
	if (pid < 0)
		return result("fork", -1);
	if (!pid) {
		if (!strcmp(cmd, "int80-socket")) {
			/* i386 socket() is 359 */
			asm volatile("int $0x80" : "=a"(ret)
				     : "a"(359L), "b"(arg_val(a[0])), "c"(arg_val(a[1])),
				       "d"(arg_val(a[2]))
				     : "memory");
			if (ret < 0) {
				errno = -ret;
				ret = -1;
			}
		} else {
			ret = syscall(0x40000000 | SYS_socket, arg_val(a[0]), arg_val(a[1]),
				      arg_val(a[2]));
		}
		_exit(result(cmd, ret));
	}
	if (waitpid(pid, &status, 0) != pid)
		return result("waitpid", -1);
	if (WIFSIGNALED(status)) {
		printf("%s: killed by %s\n", cmd, sigabbrev_np(WTERMSIG(status)) ?: "?");
		return 1;
	}
	return WEXITSTATUS(status);
}

static void *thread_fn(void *arg)
{
	return arg;
}

static int do_thread(void)
{
	pthread_t t;
	int err = pthread_create(&t, NULL, thread_fn, NULL);

	if (!err)
		pthread_join(t, NULL);
	errno = err;
	return result("pthread_create", err ? -1 : 0);
}

int main(int argc, char **argv)
{
	const char *cmd;
	int fd;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (argc > 1 && argv[1][0] == '-') {
		if (!strcmp(argv[1], "--hi")) {
			hi = HI;
		} else if (!strcmp(argv[1], "--setns") && argc > 2) {
			fd = open(argv[2], O_RDONLY | O_CLOEXEC);
			if (result("open ns", fd) || result("setns", setns(fd, CLONE_NEWNET)))
				return 1;
			close(fd);
			argv++;
			argc--;
		} else {
			usage();
		}
		argv++;
		argc--;
	}
	if (argc < 2)
		usage();
	cmd = argv[1];
	argv += 2;
	argc -= 2;
	if (!strcmp(cmd, "socket"))
		return do_socket(argv, argc, SYS_socket);
	if (!strcmp(cmd, "socketpair"))
		return do_socket(argv, argc, SYS_socketpair);
	if (!strcmp(cmd, "connect")) {
		if (argc != 2)
			usage();
		return tcp_connect(argv[0], argv[1], hi) < 0;
	}
	if (!strcmp(cmd, "nonblock"))
		return do_nonblock(argv, argc);
	if (!strcmp(cmd, "unshare") || !strcmp(cmd, "clone") || !strcmp(cmd, "clone3"))
		return do_clone(argv, argc, cmd);
	if (!strcmp(cmd, "int80-socket") || !strcmp(cmd, "x32-socket"))
		return do_abi_socket(argv, argc, cmd);
	if (!strcmp(cmd, "thread"))
		return do_thread();
	if (!strcmp(cmd, "noop"))
		return result("noop", 0);
	usage();
}
