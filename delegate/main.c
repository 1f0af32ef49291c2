// SPDX-License-Identifier: GPL-2.0
/* rsys-delegate: the service-domain daemon that executes forwarded socket calls (rsys-delegate(8)). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <rsys/limits.h>

#include "delegate.h"
#include "busypoll.h"
#include "frame.h"
#include "log.h"
#include "tls.h"
#include "trace.h"

#define MAX_SESSIONS		1024
#define MAX_PENDING		1024	/* connections waiting for their HELLO */
#define MAX_WORKERS		512	/* delegate and flusher threads, all sessions */
#define MAX_HANDLES		65536	/* sockets, all sessions */
#define HELLO_TIMEOUT_MS	5000
#define HELLO_TIMEOUT_STR	"5 s"

struct delegate dlg;
static struct policy policy;

void stats_read(struct rsys_delegate_stats *out)
{
	const uint64_t *src = (const uint64_t *)&dlg.stats;
	uint64_t *dst = (uint64_t *)out;
	size_t i;

	for (i = 0; i < sizeof(*out) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: rsys-delegate [--listen ADDR] [--tls-cert FILE --tls-key FILE --tls-ca FILE]\n"
		"                     [--policy FILE] [--trace] [--busy-poll US] [-v]... [--help]\n"
		"Execute the socket calls that rsys monitors forward from compute domains.\n"
		"\n"
		"  -l, --listen ADDR   listen on unix:PATH, tcp:HOST:PORT or vsock:CID:PORT\n"
		"                      (default: the policy's 'delegate' address)\n"
		"      --tls-cert FILE, --tls-key FILE, --tls-ca FILE\n"
		"                      for tcp: and vsock: (required there): our certificate\n"
		"                      and key, and the CA that signed the clients' certificates\n"
		"  -p, --policy FILE   enforce the egress rules and limits of FILE\n"
		"                      (without it every destination is allowed)\n"
		"      --no-egress-guard\n"
		"                      do not judge datagrams in the kernel (cgroup BPF):\n"
		"                      direct-mode programs' sends with an address are trapped\n"
		"      --busy-poll US  a session's reader polls for the next request this many\n"
		"                      microseconds before it sleeps (default 300, 0: never)\n"
		"  -t, --trace         send every egress decision to the trace reader\n"
		"                      (rsys-load trace); -v logs them in the same format\n"
		"  -v, --verbose       more messages (each decision); repeat for debug messages\n"
		"  -h, --help          print this help and exit\n"
		"\n"
		"See rsys-delegate(8) and policy/README.md.\n");
}

static void cancel_handler(int sig)
{
	(void)sig;
}

/* Cancel signal without SA_RESTART; SIGTERM/SIGINT go to a signalfd; SIGPIPE ignored. */
static int signals_setup(sigset_t *term)
{
	struct sigaction sa = { .sa_handler = cancel_handler };
	int fd;

	sigemptyset(&sa.sa_mask);
	if (sigaction(DELEGATE_CANCEL_SIG, &sa, NULL) < 0)
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(term);
	sigaddset(term, SIGTERM);
	sigaddset(term, SIGINT);
	sigaddset(term, SIGHUP);
	/* Blocked here, so every thread started later has them blocked too. */
	pthread_sigmask(SIG_BLOCK, term, NULL);
	fd = signalfd(-1, term, SFD_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/*
 * The socket's directory: created 0700 when missing; an existing one must
 * be ours and writable by nobody else, or another user could replace the
 * socket with one of their own. 0, or -EPERM after a message.
 */
static int unix_dir_prepare(const struct sockaddr_un *sun)
{
	char buf[sizeof(sun->sun_path)], *dir;
	struct stat st;

	memcpy(buf, sun->sun_path, sizeof(buf));
	buf[sizeof(buf) - 1] = '\0';
	dir = dirname(buf);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		pr_debug("cannot create %s: %s\n", dir, err_str(errno));
	/* lstat: a symlink's owner could later point it at a directory of theirs. */
	if (lstat(dir, &st) < 0) {
		pr_err("cannot use the directory %s of the socket: %s\n", dir, err_str(errno));
		return -EPERM;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
		pr_err("refusing to listen in %s: not a directory (a symlink is not one) owned by uid %u (the delegate's)\n",
		       dir, geteuid());
		return -EPERM;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		pr_err("refusing to listen in %s: it is group or world writable, so anyone could replace the socket (chmod go-w %s, or use a 0700 directory such as /run/rsys)\n",
		       dir, dir);
		return -EPERM;
	}
	return 0;
}

/* Every session may hold limit_fds sockets: use the hard fd limit, not the soft one. */
static rlim_t nofile_raise(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return 1024;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			pr_debug("cannot raise RLIMIT_NOFILE: %s\n", err_str(errno));
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur;
}

/* Global caps: the fds left after connections and our own go to handles. */
static void caps_set(rlim_t nofile)
{
	rlim_t reserve = MAX_SESSIONS + MAX_PENDING + 64;

	/* A small limit: a quarter for sockets, the rest for connections (accept may fail). */
	dlg.max_handles = nofile > reserve * 2 ? nofile - reserve : nofile / 4;
	if (dlg.max_handles > MAX_HANDLES)
		dlg.max_handles = MAX_HANDLES;
	dlg.max_workers = MAX_WORKERS;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000ull + ts.tv_nsec / 1000000;
}

/*
 * The peer's uid must be one the policy names ("client uid"; default root
 * only): anyone else who reaches the socket would get a proxy whose sockets
 * root creates. The index of the uid in the list, or -EPERM.
 */
static int client_check(int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	int i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0) {
		pr_warn("refusing a client: no peer credentials: %s\n", err_str(errno));
		return -EPERM;
	}
	for (i = 0; i < dlg.n_client_uids; i++)
		if (dlg.client_uids[i] == cr.uid)
			return i;
	stat_add(denied, 1);
	pr_warn("refusing a client: pid %d uid %u is not a client the policy allows ('client uid')\n",
		cr.pid, cr.uid);
	return -EPERM;
}

/*
 * Connections accepted but not yet sessions: the listener reads their HELLO
 * itself, so a client that never sends one costs an fd and a few bytes,
 * never a thread, and is dropped at its deadline or when a newer
 * connection needs its place.
 */
struct pending {
	int fd;
	struct ssl_st *ssl;	/* TLS: the handshake, then the HELLO, go through it */
	int client;		/* index in dlg.client_uids */
	uint64_t deadline;	/* now_ms() */
	size_t got;
	struct rsys_frame f;
};

static struct pending pend[MAX_PENDING];
static unsigned int n_pend;

static void pending_drop(unsigned int i, const char *why)
{
	pr_info("dropping a connection: %s\n", why);
	tls_free(pend[i].ssl);
	close(pend[i].fd);
	pend[i] = pend[--n_pend];
}

static void hello_refuse(int fd, const struct rsys_frame *hello, int err)
{
	struct rsys_frame f = {
		.magic = RSYS_MAGIC,
		.version = RSYS_VERSION,
		.op = RSYS_OP_HELLO,
		.id = hello->id,
		.flags = RSYS_F_REPLY,
		.a = { err },
	};

	/* Best effort: a client that does not read it loses nothing else. */
	send(fd, &f, sizeof(f), MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
}

/* A complete HELLO of pending connection @i: start its session or refuse it. */
static void pending_promote(unsigned int i)
{
	struct pending p = pend[i];
	unsigned int *mine = &dlg.client_sessions[p.client];
	int err;

	pend[i] = pend[--n_pend];
	if (p.f.magic != RSYS_MAGIC || p.f.version != RSYS_VERSION || p.f.op != RSYS_OP_HELLO ||
	    p.f.flags || p.f.len) {
		stat_add(bad_frames, 1);
		pr_info("dropping a connection: its first frame is not a HELLO\n");
		tls_free(p.ssl);
		close(p.fd);
		return;
	}
	/* From here on the session sees plain frames on its end of a relay. */
	if (p.ssl) {
		p.fd = tls_relay(p.ssl, p.fd);
		if (p.fd < 0) {
			pr_warn("cannot relay a TLS connection: %s\n", err_str(-p.fd));
			return;
		}
	}
	if (__atomic_load_n(mine, __ATOMIC_RELAXED) >= dlg.limit_sessions) {
		pr_warn("refusing a session of %s %u: %u sessions open (limit sessions)\n",
			p.client == CLIENT_TLS ? "TLS clients, client" : "uid",
			p.client == CLIENT_TLS ? 0 : dlg.client_uids[p.client], dlg.limit_sessions);
		hello_refuse(p.fd, &p.f, -EUSERS);
		return;
	}
	if (__atomic_load_n(&dlg.stats.sessions, __ATOMIC_RELAXED) >= MAX_SESSIONS) {
		pr_warn("refusing a session: %d sessions open\n", MAX_SESSIONS);
		hello_refuse(p.fd, &p.f, -EUSERS);
		return;
	}
	err = session_start(p.fd, p.client, &p.f);
	if (err) {
		pr_warn("cannot start a session: %s\n", err_str(-err));
		hello_refuse(p.fd, &p.f, err);
	}
}

/* Read what pending connection @i sent; it may complete its HELLO. */
static void pending_read(unsigned int i)
{
	struct pending *p = &pend[i];
	ssize_t n;

	if (p->ssl) {
		/* Decrypted bytes may wait inside OpenSSL: read until it wants the peer. */
		do {
			n = tls_accept_read(p->ssl, (char *)&p->f + p->got, sizeof(p->f) - p->got);
			if (n > 0)
				p->got += n;
		} while (n > 0 && p->got < sizeof(p->f));
		if (n < 0) {
			pending_drop(i, n == -EPROTO ?
				     "TLS handshake failed (no valid client certificate?)" :
				     "closed before its HELLO");
			return;
		}
	} else {
		n = recv(p->fd, (char *)&p->f + p->got, sizeof(p->f) - p->got, MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			pending_drop(i, n ? err_str(errno) : "closed before its HELLO");
			return;
		}
		p->got += n;
	}
	if (p->got == sizeof(p->f))
		pending_promote(i);
}

static void accept_one(int lfd)
{
	struct ssl_st *ssl = NULL;
	int fd, client;
	unsigned int i, old;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	if (fd < 0) {
		if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN)
			pr_warn("accept: %s\n", err_str(errno));
		/* Out of fds or memory: do not spin on the pending connection. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOMEM)
			usleep(100000);
		return;
	}
	if (dlg.tls) {
		/* Who the client is, its certificate says during the handshake. */
		client = CLIENT_TLS;
		ssl = tls_accept_new(dlg.tls, fd);
		if (!ssl) {
			pr_warn("refusing a client: cannot start TLS\n");
			close(fd);
			return;
		}
	} else {
		client = client_check(fd);
		if (client < 0) {
			close(fd);
			return;
		}
		/* Sessions block on their socket; the listener reads with MSG_DONTWAIT. */
		fcntl(fd, F_SETFL, 0);
	}
	if (n_pend == MAX_PENDING) {
		for (old = 0, i = 1; i < n_pend; i++)
			if (pend[i].deadline < pend[old].deadline)
				old = i;
		pending_drop(old, "too many connections without a HELLO, dropping the oldest");
	}
	pend[n_pend++] = (struct pending){
		.fd = fd,
		.ssl = ssl,
		.client = client,
		.deadline = now_ms() + HELLO_TIMEOUT_MS,
	};
}

static void serve(int lfd, int sfd)
{
	static struct pollfd p[2 + MAX_PENDING];
	struct signalfd_siginfo si;
	unsigned int i, n;
	uint64_t now, next;
	int timeout;

	p[0] = (struct pollfd){ .fd = lfd, .events = POLLIN };
	p[1] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	for (;;) {
		now = now_ms();
		next = UINT64_MAX;
		for (i = 0; i < n_pend;) {
			if (pend[i].deadline <= now) {
				pending_drop(i, "no HELLO within " HELLO_TIMEOUT_STR);
				continue;
			}
			if (pend[i].deadline < next)
				next = pend[i].deadline;
			i++;
		}
		n = n_pend;
		for (i = 0; i < n; i++)
			p[2 + i] = (struct pollfd){ .fd = pend[i].fd, .events = POLLIN };
		timeout = next == UINT64_MAX ? -1 : (int)(next - now);
		if (poll(p, 2 + n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			pr_err("poll: %s\n", err_str(errno));
			return;
		}
		if (p[1].revents) {
			if (read(sfd, &si, sizeof(si)) == sizeof(si))
				pr_info("%s, shutting down\n", strsignal(si.ssi_signo));
			return;
		}
		/* Backwards: dropping entry i moves the last one into its place. */
		for (i = n; i-- > 0;)
			if (p[2 + i].revents && i < n_pend)
				pending_read(i);
		if (p[0].revents)
			accept_one(lfd);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "policy", required_argument, NULL, 'p' },
		{ "tls-cert", required_argument, NULL, 'C' },
		{ "tls-key", required_argument, NULL, 'K' },
		{ "tls-ca", required_argument, NULL, 'A' },
		{ "trace", no_argument, NULL, 't' },
		{ "no-egress-guard", no_argument, NULL, 'G' },
		{ "busy-poll", required_argument, NULL, 'B' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *listen_addr = NULL, *policy_file = NULL;
	struct tls_files tls = { 0 };
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool egress_guard = true;
	uint64_t denied;
	sigset_t term;
	int c, lfd, sfd, ret;

	log_prog = "rsys-delegate";
	trace_init(RSYS_SRC_DELEGATE);
	dlg.busy_poll_us = BUSY_POLL_US_DEFAULT;
	while ((c = getopt_long(argc, argv, "l:p:tvh", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			listen_addr = optarg;
			break;
		case 'p':
			policy_file = optarg;
			break;
		case 'C':
			tls.cert = optarg;
			break;
		case 'K':
			tls.key = optarg;
			break;
		case 'A':
			tls.ca = optarg;
			break;
		case 't':
			dlg.trace = true;
			break;
		case 'G':
			egress_guard = false;
			break;
		case 'B':
			if (busy_poll_parse(optarg, &dlg.busy_poll_us))
				return 1;
			break;
		case 'v':
			log_level++;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		pr_err("unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 1;
	}

	dlg.limit_fds = RSYS_DEF_LIMIT_FDS;
	dlg.limit_inflight = RSYS_DEF_LIMIT_INFLIGHT;
	dlg.limit_sessions = RSYS_DEF_LIMIT_SESSIONS;
	dlg.limit_linger = RSYS_DEF_LIMIT_LINGER;
	dlg.n_client_uids = 1;		/* root only */
	if (policy_file) {
		if (policy_load(&policy, policy_file, stderr))
			return 1;
		dlg.policy = &policy;
		dlg.limit_fds = policy.limit_fds;
		dlg.limit_inflight = policy.limit_inflight;
		dlg.limit_sessions = policy.limit_sessions;
		dlg.limit_linger = policy.limit_linger;
		dlg.n_client_uids = policy.n_client_uids;
		memcpy(dlg.client_uids, policy.client_uids, sizeof(dlg.client_uids));
		if (!listen_addr && policy.delegate[0])
			listen_addr = policy.delegate;
	}
	if (!listen_addr) {
		pr_err("no address to listen on: give --listen ADDR or a policy with a 'delegate' line\n");
		usage(stderr);
		return 1;
	}
	if (addr_parse(listen_addr, &ss, &sslen, stderr))
		return 1;
	/*
	 * A unix socket tells us who the client is; on TCP or vsock anyone who
	 * reaches the port would get an open proxy whose sockets root creates,
	 * so there the client proves itself with a certificate.
	 */
	if (ss.ss_family != AF_UNIX) {
		if (!tls_files_complete(&tls, "", NULL)) {
			pr_err("refusing to listen on %s without mutual authentication: give --tls-cert, --tls-key and --tls-ca (TLS 1.3 with client certificates), or listen on unix:PATH\n",
			       listen_addr);
			return 1;
		}
		dlg.tls = tls_ctx_new(&tls, true, stderr);
		if (!dlg.tls)
			return 1;
	} else if (tls.cert || tls.key || tls.ca) {
		pr_err("--tls-* options are for tcp: and vsock: addresses; %s is checked by peer credentials\n",
		       listen_addr);
		return 1;
	}
	if (!dlg.policy)
		pr_warn("no --policy given: every destination and bind address is allowed\n");

	sfd = signals_setup(&term);
	if (sfd < 0) {
		pr_err("cannot set up signal handling: %s\n", err_str(-sfd));
		return 1;
	}
	/* Before the first socket: each is guarded by the cgroup it is created in. */
	if (dlg.policy && egress_guard) {
		ret = egress_guard_start(dlg.policy);
		if (ret)
			pr_warn("no egress guard (%s): direct-mode programs' sends with an address stay trapped\n",
				err_str(-ret));
		else
			pr_info("egress guard: the policy's allow lines judge every datagram sent with an address (cgroup BPF)\n");
	}
	caps_set(nofile_raise());
	if (ss.ss_family == AF_UNIX && unix_dir_prepare((struct sockaddr_un *)&ss))
		return 1;
	lfd = addr_listen(listen_addr, 128, stderr);
	if (lfd < 0)
		return 1;
	/* Connecting needs write permission; who may connect is client_check()'s call. */
	if (ss.ss_family == AF_UNIX &&
	    chmod(((struct sockaddr_un *)&ss)->sun_path,
		  dlg.n_client_uids == 1 && !dlg.client_uids[0] ? 0600 : 0666) < 0)
		pr_warn("cannot chmod %s: %s\n", listen_addr, err_str(errno));
	fcntl(lfd, F_SETFL, O_NONBLOCK);
	pr_info("listening on %s (limits: %u handles, %u in flight per session, %u sessions per uid, answered sends %u s after a session; %u handles, %u delegate threads in all)\n",
		listen_addr, dlg.limit_fds, dlg.limit_inflight, dlg.limit_sessions, dlg.limit_linger,
		dlg.max_handles, dlg.max_workers);

	serve(lfd, sfd);

	denied = egress_guard_denied();
	if (denied)
		pr_info("egress guard: %llu datagrams refused\n", (unsigned long long)denied);
	egress_guard_stop();
	close(lfd);
	if (ss.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&ss)->sun_path);
	close(sfd);
	return 0;
}
