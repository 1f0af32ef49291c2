// SPDX-License-Identifier: GPL-2.0
/*
 * Servers of the selftests' "world" netns: TCP/UDP echo, a hold-and-report-EOF service,
 * its query port.
 *
 * Usage: world_server ADDR READY_FILE
 *   tcp ADDR:7     echo every byte back until the client's EOF, then close
 *   udp ADDR:7     echo every datagram to its sender
 *   tcp ADDR:7002  read a token line, then read (never write) until EOF; remember the token
 *                  as closed. A token that starts "held-": read nothing more, through a
 *                  HELD_RCVBUF receive buffer, until the query port releases it (at most
 *                  HELD_MAX_MS), so that what its sender sends waits at the sender's end
 *   tcp ADDR:7003  read "TOKEN WAIT_MS"; answer "closed" once TOKEN's connection saw EOF,
 *                  ("TOKEN WAIT_MS bytes": "closed N", N the bytes it read after the token line)
 *                  else "open"; "TOKEN go": release TOKEN's hold connection, answer "going"
 * READY_FILE is created once every port listens.
 *
 * Plain C with pthreads only, so that it also runs linked statically in a minimal initramfs.
 * One detached thread per TCP connection, one thread for the UDP echo. A line is at most
 * LINE_MAX_LEN bytes, its newline included, and is stripped of surrounding whitespace. The
 * last CLOSED_MAX closed tokens are remembered. A connection reset by a killed client is
 * normal and not reported.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define ECHO_PORT	7
#define HOLD_PORT	7002
#define QUERY_PORT	7003
#define HELD_RCVBUF	4096		/* a held connection's receive buffer (the kernel doubles it) */
#define HELD_MAX_MS	60000		/* ... and how long it waits for its "go" */

#define BACKLOG		64
#define BUF_SIZE	65536
#define THREAD_STACK	(256 * 1024)	/* a BUF_SIZE buffer on the stack and some room */
#define LINE_MAX_LEN	256		/* a line, newline included: tokens of up to 255 bytes */
#define CLOSED_MAX	4096		/* closed tokens remembered; the oldest is forgotten first */
#define WAIT_MAX_MS	(1000LL * 86400 * 30)

struct token {
	size_t len;
	char s[LINE_MAX_LEN + 1];	/* room for query_conn()'s NUL */
	unsigned long long bytes;	/* a closed hold connection: read after the token line */
};

/* A ring of tokens, the newest at t[next - 1]; CLOSED_MAX of them, the oldest forgotten. */
struct ring {
	struct token t[CLOSED_MAX];
	unsigned int n, next;
};

/* The tokens whose hold connection saw EOF, and the held ones a query released. */
static struct ring closed, released;
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ring_cond;	/* on CLOCK_MONOTONIC, set up in main() */

static const char *addr_str;
static struct in_addr addr;
static pthread_attr_t conn_attr;

struct service {
	const char *name;
	int type;
	int port;
	void *(*handle)(void *);	/* TCP: a connection's thread, its fd as the argument */
	int fd;
};

static void usage(void)
{
	fprintf(stderr, "Usage: world_server ADDR READY_FILE\n"
		"  ADDR        IPv4 address to listen on (tcp and udp port 7, tcp ports 7002 and 7003)\n"
		"  READY_FILE  created once every port listens\n");
	exit(2);
}

/* A peer that went away (a killed client) is no news; anything else is said on stderr. */
static void conn_error(const char *name, int port, const char *op, int err)
{
	switch (err) {
	case ECONNRESET:
	case ECONNABORTED:
	case ECONNREFUSED:
	case EPIPE:
	case ESHUTDOWN:
		return;
	}
	fprintf(stderr, "world_server: %s %s:%d: %s: %s\n", name, addr_str, port, op, strerror(err));
}

static ssize_t recv_retry(int fd, void *buf, size_t len)
{
	ssize_t n;

	do
		n = recv(fd, buf, len, 0);
	while (n < 0 && errno == EINTR);
	return n;
}

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/* Like Python's str.isspace() on ASCII (the .py stripped its lines with str.strip()). */
static bool is_space(unsigned char c)
{
	return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/*
 * Read a line byte by byte, never past its newline, at most LINE_MAX_LEN bytes; EOF ends it
 * too. @t gets it without surrounding whitespace. 0, or -1 with errno.
 */
static int read_line(int fd, struct token *t)
{
	char line[LINE_MAX_LEN];
	size_t len = 0, start = 0;
	ssize_t n;

	while (len < sizeof(line)) {
		n = recv_retry(fd, &line[len], 1);
		if (n < 0)
			return -1;
		if (n == 0 || line[len++] == '\n')
			break;
	}
	while (start < len && is_space(line[start]))
		start++;
	while (len > start && is_space(line[len - 1]))
		len--;
	t->len = len - start;
	memcpy(t->s, line + start, t->len);
	return 0;
}

/* Under ring_lock: the token of @r that @t names, or NULL. */
static const struct token *ring_find(const struct ring *r, const struct token *t)
{
	unsigned int i;

	for (i = 0; i < r->n; i++)
		if (r->t[i].len == t->len && !memcmp(r->t[i].s, t->s, t->len))
			return &r->t[i];
	return NULL;
}

static void ring_add(struct ring *r, const struct token *t)
{
	pthread_mutex_lock(&ring_lock);
	if (!ring_find(r, t)) {
		r->t[r->next] = *t;
		r->next = (r->next + 1) % CLOSED_MAX;
		if (r->n < CLOSED_MAX)
			r->n++;
	}
	pthread_cond_broadcast(&ring_cond);
	pthread_mutex_unlock(&ring_lock);
}

/* Wait up to @wait_ms for @t to be in @r; true if it is, with its byte count in *@bytes. */
static bool ring_wait(const struct ring *r, const struct token *t, long long wait_ms,
		      unsigned long long *bytes)
{
	struct timespec deadline;
	bool found;

	if (wait_ms > WAIT_MAX_MS)
		wait_ms = WAIT_MAX_MS;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (wait_ms > 0) {
		deadline.tv_sec += wait_ms / 1000;
		deadline.tv_nsec += (wait_ms % 1000) * 1000000;
		if (deadline.tv_nsec >= 1000000000) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000;
		}
	}

	pthread_mutex_lock(&ring_lock);
	while (!(found = ring_find(r, t)) && wait_ms > 0)
		if (pthread_cond_timedwait(&ring_cond, &ring_lock, &deadline) == ETIMEDOUT) {
			found = ring_find(r, t);
			break;
		}
	if (found)
		*bytes = ring_find(r, t)->bytes;
	pthread_mutex_unlock(&ring_lock);
	return found;
}

/* The end of every TCP connection: our FIN, then the close. */
static void conn_close(int fd)
{
	shutdown(fd, SHUT_WR);
	close(fd);
}

static void *echo_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BUF_SIZE];
	ssize_t n;

	while ((n = recv_retry(fd, buf, sizeof(buf))) > 0) {
		if (send_all(fd, buf, n) < 0) {
			conn_error("echo", ECHO_PORT, "send", errno);
			break;
		}
	}
	if (n < 0)
		conn_error("echo", ECHO_PORT, "recv", errno);
	conn_close(fd);
	return NULL;
}

/* Only ever reads: the token line, then until EOF. A connection that fails is not closed. */
static void *hold_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	char buf[BUF_SIZE];
	unsigned long long unused;
	struct token t;
	ssize_t n;

	if (read_line(fd, &t) < 0) {
		conn_error("hold", HOLD_PORT, "recv", errno);
		goto out;
	}
	if (t.len > 5 && !memcmp(t.s, "held-", 5)) {
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ HELD_RCVBUF }, sizeof(int)) < 0)
			conn_error("hold", HOLD_PORT, "setsockopt(SO_RCVBUF)", errno);
		ring_wait(&released, &t, HELD_MAX_MS, &unused);
	}
	t.bytes = 0;
	while ((n = recv_retry(fd, buf, sizeof(buf))) > 0)
		t.bytes += n;
	if (n < 0)
		conn_error("hold", HOLD_PORT, "recv", errno);
	else
		ring_add(&closed, &t);
out:
	conn_close(fd);
	return NULL;
}

/* "TOKEN WAIT_MS [bytes]" (WAIT_MS optional, 0): answers "closed[ N]\n" or "open\n"; "TOKEN go". */
static void *query_conn(void *arg)
{
	int fd = (int)(intptr_t)arg;
	unsigned long long bytes = 0;
	long long wait_ms = 0;
	bool with_bytes = false;
	char answer[40], *sp, *end;
	struct token t;

	if (read_line(fd, &t) < 0) {
		conn_error("query", QUERY_PORT, "recv", errno);
		goto out;
	}
	t.s[t.len] = '\0';
	sp = memchr(t.s, ' ', t.len);
	if (sp && !strcmp(sp + 1, "go")) {
		t.len = sp - t.s;
		t.bytes = 0;
		ring_add(&released, &t);
		snprintf(answer, sizeof(answer), "going\n");
		goto answer;
	}
	if (sp) {
		*sp = '\0';
		errno = 0;
		wait_ms = strtoll(sp + 1, &end, 10);
		with_bytes = !strcmp(end, " bytes");
		if (end == sp + 1 || (*end && !with_bytes) || errno) {
			fprintf(stderr, "world_server: query %s:%d: bad WAIT_MS \"%s\"\n", addr_str,
				QUERY_PORT, sp + 1);
			goto out;
		}
		t.len = sp - t.s;
	}
	if (!ring_wait(&closed, &t, wait_ms, &bytes))
		snprintf(answer, sizeof(answer), "open\n");
	else if (with_bytes)
		snprintf(answer, sizeof(answer), "closed %llu\n", bytes);
	else
		snprintf(answer, sizeof(answer), "closed\n");
answer:
	if (send_all(fd, answer, strlen(answer)) < 0)
		conn_error("query", QUERY_PORT, "send", errno);
out:
	conn_close(fd);
	return NULL;
}

static void *tcp_serve(void *arg)
{
	struct service *svc = arg;
	pthread_t tid;
	int fd, err;

	for (;;) {
		fd = accept4(svc->fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EMFILE:
			case ENFILE:
			case ENOBUFS:
			case ENOMEM:
				usleep(10000);	/* until a connection ends */
				/* fall through */
			case EINTR:
			case ECONNABORTED:
			case EPROTO:
			case EPERM:
			case ENETDOWN:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETUNREACH:
				continue;
			}
			fprintf(stderr, "world_server: %s %s:%d: accept: %s\n", svc->name, addr_str,
				svc->port, strerror(errno));
			usleep(100000);
			continue;
		}
		err = pthread_create(&tid, &conn_attr, svc->handle, (void *)(intptr_t)fd);
		if (err) {
			fprintf(stderr, "world_server: %s %s:%d: pthread_create: %s\n", svc->name,
				addr_str, svc->port, strerror(err));
			close(fd);
		}
	}
	return NULL;
}

static void *udp_echo(void *arg)
{
	struct service *svc = arg;
	struct sockaddr_storage from;
	static char buf[BUF_SIZE];
	socklen_t fromlen;
	ssize_t n;

	for (;;) {
		fromlen = sizeof(from);
		n = recvfrom(svc->fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fromlen);
		if (n < 0)
			continue;	/* EINTR, or an ICMP error of an earlier echo */
		while (sendto(svc->fd, buf, n, MSG_NOSIGNAL, (struct sockaddr *)&from, fromlen) < 0 &&
		       errno == EINTR)
			;
	}
	return NULL;
}

static void service_listen(struct service *svc)
{
	struct sockaddr_in sin = {
		.sin_family = AF_INET,
		.sin_port = htons(svc->port),
		.sin_addr = addr,
	};
	const char *proto = svc->type == SOCK_STREAM ? "tcp" : "udp";
	const char *op;
	int one = 1;

	op = "socket";
	svc->fd = socket(AF_INET, svc->type | SOCK_CLOEXEC, 0);
	if (svc->fd < 0)
		goto fail;
	op = "setsockopt(SO_REUSEADDR)";
	if (setsockopt(svc->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	op = "bind";
	if (bind(svc->fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		goto fail;
	op = "listen";
	if (svc->type == SOCK_STREAM && listen(svc->fd, BACKLOG) < 0)
		goto fail;
	return;
fail:
	fprintf(stderr, "world_server: %s %s %s:%d: %s: %s\n", svc->name, proto, addr_str, svc->port, op,
		strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	static struct service services[] = {
		{ "echo", SOCK_STREAM, ECHO_PORT, echo_conn, -1 },
		{ "echo", SOCK_DGRAM, ECHO_PORT, NULL, -1 },
		{ "hold", SOCK_STREAM, HOLD_PORT, hold_conn, -1 },
		{ "query", SOCK_STREAM, QUERY_PORT, query_conn, -1 },
	};
	pthread_condattr_t cattr;
	pthread_t tid;
	unsigned int i;
	int fd, err;

	if (argc != 3 || !argv[2][0])
		usage();
	addr_str = argv[1];
	if (inet_pton(AF_INET, addr_str, &addr) != 1) {
		fprintf(stderr, "world_server: \"%s\" is not an IPv4 address\n", addr_str);
		usage();
	}

	signal(SIGPIPE, SIG_IGN);
	pthread_condattr_init(&cattr);
	pthread_condattr_setclock(&cattr, CLOCK_MONOTONIC);
	pthread_cond_init(&ring_cond, &cattr);
	pthread_condattr_destroy(&cattr);
	pthread_attr_init(&conn_attr);
	pthread_attr_setdetachstate(&conn_attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&conn_attr, THREAD_STACK);

	for (i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		service_listen(&services[i]);
	for (i = 0; i < sizeof(services) / sizeof(services[0]); i++) {
		err = pthread_create(&tid, &conn_attr,
				     services[i].type == SOCK_STREAM ? tcp_serve : udp_echo, &services[i]);
		if (err) {
			fprintf(stderr, "world_server: pthread_create: %s\n", strerror(err));
			return 1;
		}
	}

	fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
	if (fd < 0) {
		fprintf(stderr, "world_server: %s: %s\n", argv[2], strerror(errno));
		return 1;
	}
	close(fd);

	for (;;)
		pause();
}
