// SPDX-License-Identifier: GPL-2.0
/* A hostile trusted program against direct mode: denied destinations, racing threads, fd passing, options. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

/*
 * Exit status: 0 the attack reached its goal (a denied destination answered,
 * an option took, a service socket left the program), 1 it did not, 2 usage.
 * Race cases print how often each value got through, so that a native run
 * shows the racing thread really changes what the call reads.
 */
#define ROUNDS		400
#define RACE_MIN_MS	2000	/* a race runs at least ROUNDS times and this long ... */
#define RACE_MAX_MS	6000	/* ... unless its goal is reached; never longer than this */
#define ECHO_WAIT_MS	1500

static struct sockaddr_in dst;		/* the denied destination */
static in_port_t port_ok, port_bad;	/* race: allowed and denied ports (network order) */
static volatile int stop, racing;
static struct timespec t0;

static long ms_since_start(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
}

/* Go on with round @i of a race (the racing thread runs by now)? */
static bool race_on(int i, bool goal)
{
	long ms;

	if (!i) {
		while (!racing)
			sched_yield();
		clock_gettime(CLOCK_MONOTONIC, &t0);
	}
	ms = ms_since_start();
	return !goal && (i < ROUNDS || ms < RACE_MIN_MS) && ms < RACE_MAX_MS;
}

static void usage(void)
{
	fprintf(stderr,
		"Usage: direct_attack CMD ADDR PORT [ALLOWED_PORT | PATH | OPTION]\n"
		"  connect | udp-sendto | tfo-sendto | tfo-connect   reach ADDR:PORT (denied)\n"
		"  setsockopt ADDR PORT bindtodevice|transparent|mark|ipoptions\n"
		"  race-connect | race-sendto | race-sendmsg ADDR PORT ALLOWED_PORT\n"
		"                    a thread flips the address between ALLOWED_PORT and PORT\n"
		"  pass-fd | race-cmsg-fd | race-cmsg-len ADDR PORT PATH\n"
		"                    pass a UDP socket to the receiver listening on unix PATH\n"
		"  swap-connect ADDR PORT   a thread dup2()s a socket onto the fd being connected\n"
		"  swap-sendto ADDR PORT ALLOWED_TCP_PORT   a thread dup2()s a UDP socket onto a\n"
		"                    TCP one (connected to ALLOWED_TCP_PORT) that sendto()s PORT\n"
		"  icmp-sendto ADDR PORT    an ICMP echo from a ping socket (SOCK_DGRAM)\n"
		"  clone-files ADDR PORT    clone(CLONE_FILES) without CLONE_THREAD\n"
		"  receive ADDR PORT PATH   (untrusted) take fds on PATH; reach ADDR:PORT with them\n"
		"  hold ADDR PORT SECS      hold a UDP socket for SECS seconds\n"
		"  steal ADDR PORT PID FD UID   (untrusted, as UID) pidfd_getfd FD of PID, reach ADDR:PORT\n");
	exit(2);
}

static int fail(const char *what)
{
	printf("%s: %s (%s)\n", what, strerror(errno), errno == EPERM ? "EPERM" :
	       errno == ENOPROTOOPT ? "ENOPROTOOPT" : "errno");
	return 1;
}

/* Did the echo server at the denied destination answer on @fd within ECHO_WAIT_MS? */
static bool echoed(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char buf[64];

	return poll(&p, 1, ECHO_WAIT_MS) == 1 && recv(fd, buf, sizeof(buf), MSG_DONTWAIT) > 0;
}

static int reached(int fd, const char *how)
{
	if (!echoed(fd)) {
		printf("%s: no answer from the denied destination\n", how);
		return 1;
	}
	printf("reached: %s\n", how);
	return 0;
}

static int do_connect(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(s, (struct sockaddr *)&dst, sizeof(dst)))
		return fail("connect");
	send(s, "x", 1, MSG_NOSIGNAL);
	return reached(s, "connect");
}

static int do_udp_sendto(void)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (sendto(s, "x", 1, 0, (struct sockaddr *)&dst, sizeof(dst)) != 1)
		return fail("sendto");
	return reached(s, "udp sendto");
}

/* Ping sockets have no cgroup hook on their sends: the egress guard must not let them out whole. */
static int do_icmp_sendto(void)
{
	struct { uint8_t type, code; uint16_t sum, id, seq; } echo = { 8, 0, 0, 0, htons(1) };
	int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);

	if (s < 0)
		return fail("socket(SOCK_DGRAM, IPPROTO_ICMP)");
	if (sendto(s, &echo, sizeof(echo), 0, (struct sockaddr *)&dst, sizeof(dst)) != sizeof(echo))
		return fail("sendto (ICMP echo)");
	return reached(s, "ICMP echo");
}

static int do_tfo(bool connect_first)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (connect_first) {
		if (setsockopt(s, IPPROTO_TCP, TCP_FASTOPEN_CONNECT, &one, sizeof(one)))
			return fail("setsockopt TCP_FASTOPEN_CONNECT");
		if (connect(s, (struct sockaddr *)&dst, sizeof(dst)))
			return fail("connect (fast open)");
		if (send(s, "x", 1, MSG_NOSIGNAL) != 1)
			return fail("send (fast open)");
	} else if (sendto(s, "x", 1, MSG_FASTOPEN | MSG_NOSIGNAL, (struct sockaddr *)&dst,
			  sizeof(dst)) != 1) {
		return fail("sendto MSG_FASTOPEN");
	}
	return reached(s, connect_first ? "TCP_FASTOPEN_CONNECT" : "MSG_FASTOPEN");
}

static int do_setsockopt(const char *opt)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1, ret;
	/* loose source route through the destination itself */
	unsigned char lsrr[8] = { IPOPT_NOP, IPOPT_LSRR, 7, 4 };

	memcpy(lsrr + 4, &dst.sin_addr, 4);
	if (!strcmp(opt, "bindtodevice"))
		ret = setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, "lo", 3);
	else if (!strcmp(opt, "transparent"))
		ret = setsockopt(s, IPPROTO_IP, IP_TRANSPARENT, &one, sizeof(one));
	else if (!strcmp(opt, "mark"))
		ret = setsockopt(s, SOL_SOCKET, SO_MARK, &one, sizeof(one));
	else if (!strcmp(opt, "ipoptions"))
		ret = setsockopt(s, IPPROTO_IP, IP_OPTIONS, lsrr, sizeof(lsrr));
	else
		usage();
	if (ret)
		return fail(opt);
	printf("reached: %s set on a socket of the service domain\n", opt);
	return 0;
}

static void *flip_port(void *arg)
{
	volatile in_port_t *p = arg;

	racing = 1;
	while (!stop)
		*p = *p == port_ok ? port_bad : port_ok;
	return NULL;
}

/* Connect again and again while a thread flips the port; the denied port must never be reached. */
static int do_race_connect(void)
{
	struct sockaddr_in sa = dst, peer;
	int i, n_ok = 0, n_bad = 0, n_err = 0;
	socklen_t len;
	pthread_t t;

	pthread_create(&t, NULL, flip_port, &sa.sin_port);
	for (i = 0; race_on(i, n_bad); i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);

		len = sizeof(peer);
		if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) ||
		    getpeername(s, (struct sockaddr *)&peer, &len))
			n_err++;
		else if (peer.sin_port == port_bad)
			n_bad++;
		else
			n_ok++;
		close(s);
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("race-connect: %d to the allowed port, %d to the denied one, %d failed\n", n_ok,
	       n_bad, n_err);
	if (n_bad)
		printf("reached: a connect to the denied port got through\n");
	return n_bad ? 0 : 1;
}

/* UDP sends with a flipping address (sendto or sendmsg's msg_name); did the denied echo port answer? */
static int do_race_send(bool msg)
{
	struct sockaddr_in sa = dst;
	struct iovec iov = { "x", 1 };
	struct msghdr m = { .msg_name = &sa, .msg_namelen = sizeof(sa), .msg_iov = &iov,
			    .msg_iovlen = 1 };
	int s = socket(AF_INET, SOCK_DGRAM, 0), i, sent = 0, refused = 0;
	bool answered = false;
	char b;
	pthread_t t;

	pthread_create(&t, NULL, flip_port, &sa.sin_port);
	for (i = 0; race_on(i, answered); i++) {
		ssize_t n = msg ? sendmsg(s, &m, 0) : sendto(s, "x", 1, 0, (struct sockaddr *)&sa,
							     sizeof(sa));
		if (n == 1)
			sent++;
		else
			refused++;
		/* only the denied port answers */
		answered = recv(s, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 1;
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("%s: %d sent, %d refused\n", msg ? "race-sendmsg" : "race-sendto", sent, refused);
	return reached(s, "a datagram to the denied port");
}

static int unix_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int s = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (connect(s, (struct sockaddr *)&sun, sizeof(sun)))
		return -1;
	return s;
}

static volatile int *flip_int_p;
static int flip_a, flip_b;

static void *flip_int(void *arg)
{
	(void)arg;
	racing = 1;
	while (!stop)
		*flip_int_p = *flip_int_p == flip_a ? flip_b : flip_a;
	return NULL;
}

/*
 * Pass a UDP socket (of the service domain under rsys) to the untrusted
 * receiver on @path: plainly, or racing a harmless fd in the SCM_RIGHTS
 * message ("fd"), or racing the control length from 0 ("len").
 */
static int do_pass(const char *path, const char *race)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	int u = socket(AF_INET, SOCK_DGRAM, 0), p[2], c, i, sent = 0, refused = 0;
	struct iovec iov = { "x", 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			    .msg_controllen = sizeof(ctl.buf) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
	pthread_t t;

	if (pipe(p) || u < 0)
		return fail("pipe/socket");
	c = unix_connect(path);
	if (c < 0)
		return fail("connect to the receiver");
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &u, sizeof(int));
	if (!race) {
		if (sendmsg(c, &m, 0) != 1)
			return fail("sendmsg SCM_RIGHTS");
		printf("sent the socket\n");
		close(c);
		return 0;
	}
	if (!strcmp(race, "fd")) {
		flip_int_p = (int *)CMSG_DATA(cm);
		flip_a = p[0];
		flip_b = u;
	} else {
		flip_int_p = (int *)&m.msg_controllen;
		flip_a = 0;
		flip_b = sizeof(ctl.buf);
	}
	*flip_int_p = flip_a;
	pthread_create(&t, NULL, flip_int, NULL);
	for (i = 0; race_on(i, false); i++) {
		if (sendmsg(c, &m, 0) == 1)
			sent++;
		else
			refused++;
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("race-cmsg-%s: %d sent, %d refused\n", race, sent, refused);
	close(c);
	return 0;	/* the receiver says whether the socket got out */
}

static int swap_n, swap_a, swap_b;

static void *swap_fds(void *arg)
{
	(void)arg;
	racing = 1;
	while (!stop) {
		dup2(swap_b, swap_n);
		dup2(swap_a, swap_n);
	}
	return NULL;
}

/* A thread dup2()s a service socket over the unix socket being connected to the denied address. */
static int do_swap_connect(void)
{
	struct sockaddr_in peer;
	socklen_t len;
	pthread_t t;
	int i, got = 0;

	swap_n = socket(AF_UNIX, SOCK_STREAM, 0);
	swap_a = socket(AF_UNIX, SOCK_STREAM, 0);
	swap_b = socket(AF_INET, SOCK_STREAM, 0);
	pthread_create(&t, NULL, swap_fds, NULL);
	for (i = 0; race_on(i, got); i++) {
		connect(swap_n, (struct sockaddr *)&dst, sizeof(dst));
		len = sizeof(peer);
		if (!getpeername(swap_b, (struct sockaddr *)&peer, &len))
			got = 1;
	}
	stop = 1;
	pthread_join(t, NULL);
	if (!got) {
		printf("swap-connect: no connect reached the denied address\n");
		return 1;
	}
	printf("reached: a swapped-in socket connected to the denied address\n");
	return 0;
}

/*
 * TCP ignores a send's address, so direct mode with the egress guard lets
 * sendto() with one run untrapped; a thread dup2()s a UDP socket onto the
 * number meanwhile: its datagram to the denied port must still be judged.
 */
static int do_swap_sendto(void)
{
	struct sockaddr_in ok = dst;
	bool answered = false;
	pthread_t t;
	char b;
	int i;

	ok.sin_port = port_ok;
	swap_n = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(swap_n, (struct sockaddr *)&ok, sizeof(ok)))
		return fail("connect to the allowed TCP port");
	swap_a = dup(swap_n);
	swap_b = socket(AF_INET, SOCK_DGRAM, 0);
	pthread_create(&t, NULL, swap_fds, NULL);
	for (i = 0; race_on(i, answered); i++) {
		sendto(swap_n, "x", 1, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&dst,
		       sizeof(dst));
		/* only the denied UDP port answers */
		answered = recv(swap_b, &b, 1, MSG_DONTWAIT | MSG_PEEK) == 1;
	}
	stop = 1;
	pthread_join(t, NULL);
	printf("swap-sendto: %d sends\n", i);
	return reached(swap_b, "a datagram from a swapped-in UDP socket to the denied port");
}

static int do_clone_files(void)
{
	long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);

	if (pid < 0)
		return fail("clone(CLONE_FILES)");
	if (!pid)
		_exit(0);
	waitpid(pid, NULL, 0);
	printf("reached: a process shares the fd table\n");
	return 0;
}

/* Hold a UDP socket (fd 3 normally) for @secs seconds: what "steal" tries to take. */
static int do_hold(int secs)
{
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	if (s < 0)
		return fail("socket");
	printf("holding fd %d\n", s);
	sleep(secs);
	return 0;
}

/*
 * As uid @uid (an untrusted process of the host), take fd @fd of process
 * @pid with pidfd_getfd(2) and reach the denied destination with it.
 */
static int do_steal(int pid, int fd, uid_t uid)
{
	int pfd, s;

	if (setgroups(0, NULL) || setgid(uid) || setuid(uid))
		return fail("setuid");
	pfd = syscall(SYS_pidfd_open, pid, 0);
	if (pfd < 0)
		return fail("pidfd_open");
	s = syscall(SYS_pidfd_getfd, pfd, fd, 0);
	if (s < 0)
		return fail("pidfd_getfd");
	if (sendto(s, "x", 1, 0, (struct sockaddr *)&dst, sizeof(dst)) != 1)
		return fail("sendto with the taken socket");
	return reached(s, "a socket taken from the program with pidfd_getfd");
}

/* The untrusted receiver: whatever inet socket arrives, it sends to the denied destination. */
static int do_receive(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int l = socket(AF_UNIX, SOCK_STREAM, 0), c, inet = 0, other = 0;
	struct pollfd p = { .fd = l, .events = POLLIN };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	unlink(path);
	if (bind(l, (struct sockaddr *)&sun, sizeof(sun)) || chmod(path, 0777) || listen(l, 1))
		return fail("receiver listen");
	printf("listening\n");
	fflush(stdout);
	if (poll(&p, 1, 30000) != 1 || (c = accept(l, NULL, NULL)) < 0)
		return fail("receiver accept");
	for (;;) {
		union {
			struct cmsghdr align;
			char buf[CMSG_SPACE(sizeof(int) * 8)];
		} ctl;
		char b;
		struct iovec iov = { &b, 1 };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
				    .msg_controllen = sizeof(ctl.buf) };
		struct cmsghdr *cm;

		if (recvmsg(c, &m, 0) <= 0)
			break;
		for (cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm)) {
			int *fds = (int *)CMSG_DATA(cm);
			size_t i, k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);

			for (i = 0; i < k; i++) {
				int dom = 0;
				socklen_t len = sizeof(dom);

				if (!getsockopt(fds[i], SOL_SOCKET, SO_DOMAIN, &dom, &len) && dom == AF_INET) {
					inet++;
					if (sendto(fds[i], "x", 1, 0, (struct sockaddr *)&dst, sizeof(dst)) == 1 &&
					    echoed(fds[i])) {
						printf("reached: the receiver used a passed socket of the program\n");
						return 0;
					}
				} else {
					other++;
				}
				close(fds[i]);
			}
		}
	}
	printf("receiver: %d inet sockets (none reached), %d other fds\n", inet, other);
	return 1;
}

int main(int argc, char **argv)
{
	const char *cmd;

	if (argc < 4)
		usage();
	cmd = argv[1];
	dst.sin_family = AF_INET;
	if (inet_pton(AF_INET, argv[2], &dst.sin_addr) != 1)
		usage();
	dst.sin_port = htons(atoi(argv[3]));
	port_bad = dst.sin_port;
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cmd, "connect"))
		return do_connect();
	if (!strcmp(cmd, "udp-sendto"))
		return do_udp_sendto();
	if (!strcmp(cmd, "icmp-sendto"))
		return do_icmp_sendto();
	if (!strcmp(cmd, "tfo-sendto"))
		return do_tfo(false);
	if (!strcmp(cmd, "tfo-connect"))
		return do_tfo(true);
	if (!strcmp(cmd, "swap-connect"))
		return do_swap_connect();
	if (!strcmp(cmd, "clone-files"))
		return do_clone_files();
	if (argc < 5)
		usage();
	if (!strcmp(cmd, "setsockopt"))
		return do_setsockopt(argv[4]);
	port_ok = htons(atoi(argv[4]));
	if (!strcmp(cmd, "race-connect"))
		return do_race_connect();
	if (!strcmp(cmd, "race-sendto"))
		return do_race_send(false);
	if (!strcmp(cmd, "race-sendmsg"))
		return do_race_send(true);
	if (!strcmp(cmd, "swap-sendto"))
		return do_swap_sendto();
	if (!strcmp(cmd, "pass-fd"))
		return do_pass(argv[4], NULL);
	if (!strcmp(cmd, "race-cmsg-fd"))
		return do_pass(argv[4], "fd");
	if (!strcmp(cmd, "race-cmsg-len"))
		return do_pass(argv[4], "len");
	if (!strcmp(cmd, "receive"))
		return do_receive(argv[4]);
	if (!strcmp(cmd, "hold"))
		return do_hold(atoi(argv[4]));
	if (!strcmp(cmd, "steal") && argc >= 7)
		return do_steal(atoi(argv[4]), atoi(argv[5]), atoi(argv[6]));
	usage();
	return 2;
}
