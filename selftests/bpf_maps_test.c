// SPDX-License-Identifier: GPL-2.0
/* rsys-load attach/detach and the host-tier BPF programs: pins, BTF dump, fork/exec/exit lifecycle, counters, monitor death. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <linux/bpf.h>

#include "bpfmaps.h"
#include "ktap.h"
#include "rsys.h"

#define NR_GETPPID	110
#define WAIT_MS		3000	/* bound on every wait for a BPF side effect */

static char rsys_load[4096];
static char policy_tmp[] = "/tmp/rsys-bpf-maps-policy.XXXXXX";
static const char *policy;
/* the pinned maps: attached and opened by main() before the cases run */
static struct rsys_maps maps;

static int run_rsys_load(const char *cmd, const char *arg)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		/* Its messages go to the TAP stream as diagnostics. */
		dup2(STDERR_FILENO, STDOUT_FILENO);
		execl(rsys_load, rsys_load, cmd, arg, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static bool bpf_usable(void)
{
	union bpf_attr attr;
	int fd;

	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_ARRAY;
	attr.key_size = 4;
	attr.value_size = 8;
	attr.max_entries = 1;
	fd = maps_sys_bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0)
		return false;
	close(fd);
	return true;
}

static const char *policy_find(void)
{
	const char *src = getenv("RSYS_SRC");
	static char path[4096];
	int fd;

	snprintf(path, sizeof(path), "%s/policy/net.policy", src ? src : "..");
	if (!access(path, R_OK))
		return path;
	fd = mkstemp(policy_tmp);
	if (fd < 0)
		return NULL;
	dprintf(fd, "trusted *\nremote inet inet6\ndelegate unix:/run/rsys/delegate.sock\n"
		"allow tcp 127.0.0.0/8 *\n");
	close(fd);
	return policy_tmp;
}

static bool fd_present(struct rsys_maps *m, __u32 table, __u32 vfd, struct rsys_fd_val *v)
{
	struct rsys_fd_key key = { .table = table, .vfd = vfd };
	struct rsys_fd_val tmp;

	return !maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, m->fdtable, &key, v ? v : &tmp, 0);
}

static bool trust_get(struct rsys_maps *m, __u32 tgid, struct rsys_trusted *t)
{
	struct rsys_trusted tmp;

	return !maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, m->trusted, &tgid, t ? t : &tmp, 0);
}

static __u64 counter(int fd, __u32 idx)
{
	__u64 v = 0;

	maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, fd, &idx, &v, 0);
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Poll until entry (table, vfd) is present == @want, at most WAIT_MS. */
static bool fd_wait(struct rsys_maps *m, __u32 table, __u32 vfd, bool want)
{
	int i;

	for (i = 0; i < WAIT_MS / 10; i++) {
		if (fd_present(m, table, vfd, NULL) == want)
			return true;
		sleep_ms(10);
	}
	return false;
}

TEST(pins)
{
	static const char *const pins[] = {
		"fdtable", "trusted", "monitors", "class_count", "sys_count", "sigdeliver", "config",
		"link_rsys_sys_enter", "link_rsys_fork", "link_rsys_exec", "link_rsys_exit",
		"link_rsys_signal_deliver",
	};
	char path[128];
	size_t i;
	int missing = 0;

	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", RSYS_PIN_DIR, pins[i]);
		if (access(path, F_OK)) {
			printf("# missing %s\n", path);
			missing++;
		}
	}
	CHECK(!missing, "all maps and program links pinned under %s", RSYS_PIN_DIR);
}

TEST(second_attach)
{
	CHECK(run_rsys_load("attach", policy) == 1, "second attach refused while attached");
}

TEST(bpftool_dump)
{
	struct rsys_fd_val v = { .domain = RSYS_DOM_REMOTE, .flags = RSYS_FD_NONBLOCK,
				 .handle = 0x5eed };
	char buf[65536];
	size_t len;
	FILE *f;

	if (system("command -v bpftool >/dev/null 2>&1"))
		SKIP_CASE("bpftool not installed");
	REQUIRE(!maps_fd_set(&maps, 424242, 77, &v), "maps_fd_set inserts an entry for bpftool");
	f = popen("bpftool map dump pinned " RSYS_PIN_DIR "/fdtable 2>&1", "r");
	len = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;
	buf[len] = '\0';
	CHECK(f && !pclose(f) && strstr(buf, "\"table\": 424242") && strstr(buf, "\"vfd\": 77") &&
	      strstr(buf, "\"domain\": 1") && strstr(buf, "\"handle\": 24301"),
	      "bpftool map dump pinned %s/fdtable prints BTF field names", RSYS_PIN_DIR);
	maps_fd_del(&maps, 424242, 77);
}

TEST(trust)
{
	struct rsys_trusted self = { .monitor = getpid(), .session = 7 };

	CHECK(!maps_trust(&maps, getpid(), &self), "maps_trust marks the test process trusted");
}

/* Fork copies trust and entries, exec drops close-on-exec ones, exit drops the rest. */
TEST(lifecycle)
{
	struct rsys_fd_val cloexec = { .domain = RSYS_DOM_REMOTE, .flags = RSYS_FD_CLOEXEC, .handle = 1 };
	struct rsys_fd_val keep = { .domain = RSYS_DOM_REMOTE, .flags = 0, .handle = 2 };
	struct rsys_maps *m = &maps;
	struct rsys_trusted ct;
	struct rsys_fd_val got;
	int go[2], execed[2];
	pid_t child;
	char c;

	if (pipe(go) || pipe2(execed, O_CLOEXEC))
		REQUIRE(false, "pipes for the lifecycle test: %s", strerror(errno));
	CHECK(!maps_fd_set(m, getpid(), 100, &cloexec) && !maps_fd_set(m, getpid(), 101, &keep),
	      "maps_fd_set adds the test process's entries");
	child = fork();
	if (!child) {
		close(go[1]);
		close(execed[0]);
		if (read(go[0], &c, 1) != 1)
			_exit(1);
		execl("/bin/sleep", "sleep", "30", (char *)NULL);
		_exit(127);
	}
	close(go[0]);
	close(execed[1]);
	CHECK(trust_get(m, child, &ct) && ct.monitor == (__u32)getpid() && ct.session == 7,
	      "fork: child %d trusted with the parent's monitor and session", child);
	CHECK(fd_present(m, child, 100, &got) && got.flags == RSYS_FD_CLOEXEC && got.handle == 1 &&
	      fd_present(m, child, 101, &got) && got.handle == 2,
	      "fork: child has copies of the parent's fd-table entries");
	CHECK(fd_present(m, getpid(), 100, NULL) && fd_present(m, getpid(), 101, NULL),
	      "fork: parent keeps its own entries");
	if (write(go[1], "x", 1) != 1 || read(execed[0], &c, 1) != 0)
		printf("# cannot synchronise with the child's exec\n");
	CHECK(fd_wait(m, child, 100, false) && fd_present(m, child, 101, NULL),
	      "exec: close-on-exec entry dropped, the other kept");
	CHECK(trust_get(m, child, NULL), "exec: child still trusted");
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	CHECK(fd_wait(m, child, 101, false) && !trust_get(m, child, NULL),
	      "exit: child's entries and trust dropped");
	close(go[1]);
	close(execed[0]);
}

TEST(counters)
{
	struct rsys_maps *m = &maps;
	__u64 sys0, local0, remote0, split0;
	int i;

	sys0 = counter(m->sys_count, NR_GETPPID);
	local0 = counter(m->class_count, RSYS_CLASS_LOCAL);
	remote0 = counter(m->class_count, RSYS_CLASS_REMOTE);
	split0 = counter(m->class_count, RSYS_CLASS_SPLIT);
	for (i = 0; i < 10; i++)
		syscall(SYS_getppid);
	/* vfd 101 is remote in the test process's table: fd-first calls on it classify remote. */
	for (i = 0; i < 5; i++)
		fcntl(101, F_GETFD);
	maps_count_class(m, RSYS_CLASS_SPLIT, 3);
	CHECK(counter(m->sys_count, NR_GETPPID) >= sys0 + 10, "sys_count[getppid] counts a trusted task's calls");
	CHECK(counter(m->class_count, RSYS_CLASS_LOCAL) >= local0 + 10, "class local counts fd-less calls");
	CHECK(counter(m->class_count, RSYS_CLASS_REMOTE) >= remote0 + 5, "class remote counts calls on a remote vfd");
	CHECK(counter(m->class_count, RSYS_CLASS_SPLIT) == split0 + 3, "maps_count_class adds to class split");
}

/* Fork a trusted child that waits for a byte on @go, then makes system calls for WAIT_MS. */
static pid_t child_spawn(int go[2])
{
	pid_t child;
	long i;
	char c;

	child = fork();
	if (child)
		return child;
	close(go[1]);
	if (read(go[0], &c, 1) != 1)
		_exit(1);
	for (i = 0; i < WAIT_MS; i++) {
		syscall(SYS_getppid);
		sleep_ms(1);
	}
	_exit(0);
}

static pid_t monitor_spawn(void)
{
	pid_t mon = fork();

	if (!mon) {
		pause();
		_exit(0);
	}
	return mon;
}

static bool killed_within(pid_t pid, int ms, int *status)
{
	int i;

	for (i = 0; i < ms / 10; i++) {
		if (waitpid(pid, status, WNOHANG) == pid)
			return WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL;
		sleep_ms(10);
	}
	return false;
}

/*
 * A monitor process and a trusted child it supervises (@t), blocked until
 * a byte comes on go[1], which the caller keeps. 0, or -1 (reported).
 */
static int supervised_spawn(struct rsys_maps *m, struct rsys_trusted *t, int go[2], pid_t *mon,
			    pid_t *child)
{
	if (pipe(go)) {
		CHECK(false, "pipe for the monitor test: %s", strerror(errno));
		return -1;
	}
	*mon = monitor_spawn();
	*child = child_spawn(go);
	close(go[0]);
	t->monitor = *mon;
	maps_trust(m, *child, t);
	return 0;
}


/* When a monitor exits, its blocked trusted tasks die at once and it is recorded dead. */
TEST(monitor_exit)
{
	struct rsys_trusted t = { .session = 8 };
	struct rsys_monitor rec = {};
	int go[2], status = 0, mfd;
	pid_t mon, child;
	bool killed;

	if (access(RSYS_PIN_DIR "/link_rsys_monitor_exit", F_OK))
		SKIP_CASE("rsys_monitor_exit refused by this kernel (needs bpf_send_signal_task)");
	if (supervised_spawn(&maps, &t, go, &mon, &child))
		return;
	kill(mon, SIGKILL);
	waitpid(mon, NULL, 0);
	killed = killed_within(child, WAIT_MS, &status);
	CHECK(killed, "monitor exit: blocked supervised task killed by SIGKILL at once (status 0x%x)",
	      status);
	close(go[1]);
	if (!status)
		waitpid(child, NULL, 0);
	mfd = maps_obj_get("monitors");
	CHECK(mfd >= 0 && !maps_elem_cmd(BPF_MAP_LOOKUP_ELEM, mfd, &mon, &rec, 0) && rec.dead,
	      "monitor exit: monitors[%d] recorded dead", mon);
	if (mfd >= 0)
		close(mfd);
}

/* A trusted task whose monitor is recorded dead is killed at its next system call. */
TEST(monitor_dead_lazy)
{
	struct rsys_trusted t = { .session = 9 };
	struct rsys_monitor dead = { .dead = 1 };
	int go[2], status = 0, mfd, err;
	pid_t mon, child;

	/* A live monitor marked dead by hand: only rsys_sys_enter can kill the child. */
	if (supervised_spawn(&maps, &t, go, &mon, &child))
		return;
	mfd = maps_obj_get("monitors");
	err = mfd < 0 ? mfd : maps_elem_cmd(BPF_MAP_UPDATE_ELEM, mfd, &mon, &dead, BPF_ANY);
	if (mfd >= 0)
		close(mfd);
	if (err || write(go[1], "x", 1) != 1)
		printf("# cannot mark the monitor dead or wake the child: %s\n", strerror(-err));
	close(go[1]);
	waitpid(child, &status, 0);
	CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	      "dead monitor: supervised task killed at its next system call (status 0x%x)", status);
	kill(mon, SIGKILL);
	waitpid(mon, NULL, 0);
}

/* The test process leaves the maps, closes them and detaches. */
TEST(detach)
{
	__u32 me = getpid();
	struct stat st;

	maps_fd_clear(&maps, me);
	maps_elem_cmd(BPF_MAP_DELETE_ELEM, maps.trusted, &me, NULL, 0);
	maps_close(&maps);
	CHECK(run_rsys_load("detach", NULL) == 0 && stat(RSYS_PIN_DIR, &st) && errno == ENOENT,
	      "rsys-load detach removes %s", RSYS_PIN_DIR);
}

TEST(maps_open_detached)
{
	CHECK(maps_open(&maps) == -ENOENT && !maps_attached(&maps), "maps_open after detach: -ENOENT, no-op");
}

TEST(detach_again)
{
	CHECK(run_rsys_load("detach", NULL) == 1, "detach when not attached exits 1");
}

int main(void)
{
	const char *o = getenv("RSYS_O");
	struct stat st;
	int err, ret;

	if (geteuid())
		ktap_exit_skip("needs root to load BPF programs");
	if (access("/sys/kernel/btf/vmlinux", R_OK))
		ktap_exit_skip("kernel without BTF (/sys/kernel/btf/vmlinux)");
	if (!bpf_usable())
		ktap_exit_skip("bpf(2) unavailable: %s", strerror(errno));
	snprintf(rsys_load, sizeof(rsys_load), "%s/rsys-load", o ? o : "../.output");
	if (access(rsys_load, X_OK))
		ktap_exit_skip("%s not built", rsys_load);
	if (!stat(RSYS_PIN_DIR, &st))
		ktap_exit_skip("rsys already attached (%s exists); not touching someone else's", RSYS_PIN_DIR);
	policy = policy_find();
	if (!policy)
		ktap_exit_skip("no policy file and cannot write one: %s", strerror(errno));

	if (run_rsys_load("attach", policy))
		ktap_exit_fail("rsys-load attach %s", policy);
	err = maps_open(&maps);
	if (err) {
		run_rsys_load("detach", NULL);
		ktap_exit_fail("maps_open: %s", strerror(-err));
	}
	ret = ktap_run();
	if (policy == policy_tmp)
		unlink(policy_tmp);
	return ret;
}
