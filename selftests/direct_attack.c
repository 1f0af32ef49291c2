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
#include <stddef.h>
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
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
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
		"  unix-threads ADDR PORT   (not an attack) unix and netlink sockets in a threaded process\n"
		"  local-opt ADDR PORT      a threaded process sets SO_MARK on a unix socket\n"
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

static void *park(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/* SO_PEERCRED of @fd as "uid U gid G", or the error. */
static const char *peer_ids(int fd, char *buf, size_t len)
{
	struct ucred uc;
	socklen_t ul = sizeof(uc);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &ul))
		snprintf(buf, len, "SO_PEERCRED: %s", strerror(errno));
	else
		snprintf(buf, len, "uid %u gid %u", uc.uid, uc.gid);
	return buf;
}

/*
 * A threaded program sets SO_MARK (CAP_NET_ADMIN) on a unix socket: under
 * rsys the call is made for it (direct mode: by a helper), which must have
 * no more privilege than the program.
 */
static int do_local_opt(void)
{
	int s = socket(AF_UNIX, SOCK_DGRAM, 0), mark = 1;
	pthread_t t;

	pthread_create(&t, NULL, park, NULL);
	if (setsockopt(s, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		return fail("SO_MARK on a unix socket, from a threaded process");
	printf("reached: SO_MARK set on a unix socket, from a threaded process\n");
	return 0;
}

/*
 * Datagrams to a unix path in @dir: sendto, and sendmsg passing a pipe's
 * read end; the receiver (SO_PASSCRED) reads both, the sender's ids and
 * the data through the fd.
 */
static int unix_dgram_path(const char *dir)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(struct ucred)) + CMSG_SPACE(sizeof(int))]; } ctl;
	char data[16] = "", got[16] = "";
	struct iovec iov = { data, sizeof(data) };
	struct msghdr msg = { .msg_name = &sun, .msg_namelen = sizeof(sun), .msg_iov = &iov,
			      .msg_iovlen = 1 };
	int r = socket(AF_UNIX, SOCK_DGRAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0), one = 1, p[2], fd = -1;
	struct cmsghdr *cm;
	struct ucred uc = { 0 };

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/d1", dir);
	if (bind(r, (struct sockaddr *)&sun, sizeof(sun)) ||
	    setsockopt(r, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)))
		return fail("bind d1");
	if (sendto(d, "by sendto", 10, 0, (struct sockaddr *)&sun, sizeof(sun)) != 10)
		return fail("sendto the path");
	if (pipe(p) || write(p[1], "via fd", 7) != 7)
		return fail("pipe");
	msg.msg_control = ctl.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &p[0], sizeof(int));
	strcpy(data, "by sendmsg");
	if (sendmsg(d, &msg, 0) != sizeof(data))
		return fail("sendmsg to the path with SCM_RIGHTS");
	if (recv(r, got, sizeof(got), 0) != 10)
		return fail("recv");
	printf("unix datagram to a path: got '%s'", got);
	msg = (struct msghdr){ .msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf,
			       .msg_controllen = sizeof(ctl.buf) };
	if (recvmsg(r, &msg, 0) != sizeof(data))
		return fail("recvmsg");
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_type == SCM_RIGHTS)
			memcpy(&fd, CMSG_DATA(cm), sizeof(int));
		if (cm->cmsg_type == SCM_CREDENTIALS)
			memcpy(&uc, CMSG_DATA(cm), sizeof(uc));
	}
	memset(got, 0, sizeof(got));
	if (fd < 0 || read(fd, got, sizeof(got)) != 7)
		return fail("an fd with the sendmsg");
	printf(", then '%s' with an fd that reads '%s'; the sender: uid %u gid %u\n", data, got, uc.uid,
	       uc.gid);
	close(fd);
	close(p[0]);
	close(p[1]);
	close(d);
	close(r);
	unlink(sun.sun_path);
	return 0;
}

/*
 * Not an attack: what a threaded program does with local sockets (Go's net
 * package, Python's logging handlers, glibc's getaddrinfo). In a new
 * directory of /tmp with umask 077: bind a unix socket by a relative path,
 * listen, connect by the absolute one, accept; the same by an abstract
 * address; bind a netlink socket. Prints what happened; exit 0 when all
 * worked. Socket file mode and peer ids, as Linux gives them, are printed.
 */
static int do_unix_threads(void)
{
	char dir[] = "/tmp/rsys-unix.XXXXXX", path[128], a[64], b[64];
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct sockaddr_nl nl = { .nl_family = AF_NETLINK };
	struct { struct nlmsghdr h; struct ifinfomsg i; } req = {
		.h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
		       .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP, .nlmsg_seq = 1 },
		.i = { .ifi_family = AF_UNSPEC },
	};
	struct iovec iov = { &req, sizeof(req) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	char reply[8192];
	socklen_t nll = sizeof(nl), alen;
	int l, c, s;
	struct stat st;
	pthread_t t;

	pthread_create(&t, NULL, park, NULL);
	if (!mkdtemp(dir) || chdir(dir))
		return fail("mkdtemp");
	umask(077);
	l = socket(AF_UNIX, SOCK_STREAM, 0);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sun.sun_path, "s1");
	if (bind(l, (struct sockaddr *)&sun, sizeof(sun)) || listen(l, 4))
		return fail("bind s1 and listen");
	if (stat(sun.sun_path, &st))
		return fail("stat s1");
	snprintf(path, sizeof(path), "%s/s1", dir);
	strcpy(sun.sun_path, path);
	if (connect(c, (struct sockaddr *)&sun, sizeof(sun)))
		return fail("connect to the absolute path");
	s = accept(l, NULL, NULL);
	if (s < 0)
		return fail("accept");
	printf("unix by path: bound (socket file mode %o), listening, connected, accepted; the server's peer: %s, the client's: %s\n",
	       st.st_mode & 07777, peer_ids(s, a, sizeof(a)), peer_ids(c, b, sizeof(b)));
	close(s);
	close(c);
	close(l);
	unlink(path);
	if (unix_dgram_path(dir))
		return 1;
	rmdir(dir);

	l = socket(AF_UNIX, SOCK_STREAM, 0);
	c = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(sun.sun_path, 0, sizeof(sun.sun_path));
	alen = offsetof(struct sockaddr_un, sun_path) + 1 +
	       snprintf(sun.sun_path + 1, sizeof(sun.sun_path) - 1, "rsys-unix-threads-%d", getpid());
	if (bind(l, (struct sockaddr *)&sun, alen) || listen(l, 4) ||
	    connect(c, (struct sockaddr *)&sun, alen) || (s = accept(l, NULL, NULL)) < 0)
		return fail("abstract bind, listen, connect, accept");
	printf("unix abstract: bound, listening, connected, accepted\n");

	s = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (s < 0 || bind(s, (struct sockaddr *)&nl, sizeof(nl)) ||
	    getsockname(s, (struct sockaddr *)&nl, &nll))
		return fail("netlink bind");
	printf("netlink: bound (port id %s)", nl.nl_pid ? "given" : "0");
	memset(&nl, 0, sizeof(nl));
	nl.nl_family = AF_NETLINK;
	msg.msg_name = &nl;
	msg.msg_namelen = sizeof(nl);
	if (sendmsg(s, &msg, 0) != sizeof(req))
		return fail(", a link dump by sendmsg");
	if (recv(s, reply, sizeof(reply), 0) < (ssize_t)sizeof(struct nlmsghdr))
		return fail(", the dump's answer");
	printf(", a link dump asked by sendmsg answered (%s)\n",
	       ((struct nlmsghdr *)reply)->nlmsg_type == RTM_NEWLINK ? "RTM_NEWLINK" : "other");
	return 0;
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
	if (!strcmp(cmd, "unix-threads"))
		return do_unix_threads();
	if (!strcmp(cmd, "local-opt"))
		return do_local_opt();
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
