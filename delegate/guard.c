// SPDX-License-Identifier: GPL-2.0
/* The egress guard: the policy's "allow" rules in the kernel, on every datagram sent with an address from a socket we create. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/types.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "delegate.h"
#include "egress_guard.h"
#include "egress_guard.skel.h"
#include "log.h"

/*
 * Why (rsys-delegate(8), EGRESS GUARD): in direct mode the program holds
 * our real sockets and its sendto() with an address would otherwise have
 * to be trapped, on every TCP message too (sockperf sends that way), only
 * because the filter cannot tell a UDP socket from a TCP one. The kernel
 * can: it runs a cgroup/sendmsg4/6 program on each UDP send with an
 * address, on its own copy of the address, for the sockets created in the
 * cgroup the program is attached to. So we move ourselves into a cgroup of
 * our own, attach the programs there and create every socket from inside.
 * A socket keeps its cgroup's programs for its whole life, after we exit
 * and after the cgroup is removed; nothing in the compute domain can
 * detach them (no capability over our namespaces).
 *
 * TCP ignores the address of a send (but with MSG_FASTOPEN, which stays
 * trapped). Ping (ICMP datagram) sockets have no such hook: a cgroup_skb
 * egress program judges their echoes by destination as they leave. Other
 * protocols direct mode hands out only without the guard
 * (egress_guard_covers()).
 */

#define CG_PREFIX	"rsys-delegate."

static struct {
	struct egress_guard_bpf *skel;
	int parent;		/* the cgroup we came from, a directory fd */
	char name[32];		/* ours, in @parent */
	bool entered;		/* we are in it */
} guard = { .parent = -1 };

/* The root of the cgroup2 hierarchy as our cgroup namespace shows it: a mount of our own, attached nowhere. */
static int cgroup2_root(void)
{
	int fs, mnt;

	fs = fsopen("cgroup2", FSOPEN_CLOEXEC);
	if (fs < 0)
		return -errno;
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		close(fs);
		return -errno;
	}
	mnt = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	close(fs);
	return mnt < 0 ? -errno : mnt;
}

/* Our cgroup2 directory, from the "0::PATH" line of /proc/self/cgroup. */
static int cgroup_self(int root)
{
	char line[4096], *path = NULL;
	FILE *f = fopen("/proc/self/cgroup", "re");
	int fd;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "0::/", 4)) {
			line[strcspn(line, "\n")] = '\0';
			path = line + 4;
			break;
		}
	fclose(f);
	if (!path)
		return -ENOENT;
	fd = openat(root, *path ? path : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* Cgroups of delegates that ended without removing theirs: a populated one stays (EBUSY). */
static void cgroup_sweep(int parent)
{
	int fd = openat(parent, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct dirent *de;
	DIR *d;

	if (fd < 0 || !(d = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, CG_PREFIX, strlen(CG_PREFIX)))
			unlinkat(parent, de->d_name, AT_REMOVEDIR);
	closedir(d);
}

/* Move this process (every thread) into the cgroup directory @dir. */
static int cgroup_enter(int dir)
{
	int fd = openat(dir, "cgroup.procs", O_WRONLY | O_CLOEXEC);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (write(fd, "0", 1) != 1)
		ret = -errno;
	close(fd);
	return ret;
}

/* The policy's egress lines as the programs read them. */
static int rules_fill(struct egress_guard_bpf *skel, const struct policy *p)
{
	unsigned int n = 0;
	int i, w;

	for (i = 0; i < p->n_rules; i++) {
		const struct policy_rule *r = &p->rules[i];
		struct rsys_egress_rule *e;
		int bits = r->prefix;

		if (r->kind != POLICY_ALLOW_CONNECT)
			continue;
		if (n >= RSYS_EGRESS_MAX_RULES)
			return -E2BIG;
		e = (struct rsys_egress_rule *)&skel->rodata->rules[n++];
		memset(e, 0, sizeof(*e));
		e->family = r->family;
		e->proto = r->proto;
		e->port_lo = r->port_lo;
		e->port_hi = r->port_hi;
		e->line = r->line;
		for (w = 0; w < (r->family == AF_INET ? 1 : 4); w++, bits -= 32) {
			uint32_t m = bits >= 32 ? 0xffffffffu : bits <= 0 ? 0 : ~(0xffffffffu >> bits);

			e->mask[w] = htonl(m);
			memcpy(&e->addr[w], r->addr + 4 * w, 4);
			e->addr[w] &= e->mask[w];
		}
	}
	skel->rodata->n_rules = n;
	return 0;
}

static int guard_attach(struct egress_guard_bpf *skel, int cg)
{
	/* Not a link: the programs must outlive us, for the sockets the programs we served still hold. */
	if (bpf_prog_attach(bpf_program__fd(skel->progs.egress_sendmsg4), cg,
			    BPF_CGROUP_UDP4_SENDMSG, BPF_F_ALLOW_MULTI) ||
	    bpf_prog_attach(bpf_program__fd(skel->progs.egress_sendmsg6), cg,
			    BPF_CGROUP_UDP6_SENDMSG, BPF_F_ALLOW_MULTI) ||
	    bpf_prog_attach(bpf_program__fd(skel->progs.egress_skb), cg,
			    BPF_CGROUP_INET_EGRESS, BPF_F_ALLOW_MULTI))
		return -errno;
	return 0;
}

int egress_guard_start(const struct policy *p)
{
	int root, cg = -1, ret;

	guard.skel = egress_guard_bpf__open();
	if (!guard.skel)
		return -errno;
	ret = rules_fill(guard.skel, p);
	if (!ret && egress_guard_bpf__load(guard.skel))
		ret = -errno;
	root = ret ? -1 : cgroup2_root();
	if (root < 0 && !ret)
		ret = root;
	if (!ret) {
		guard.parent = cgroup_self(root);
		if (guard.parent < 0)
			ret = guard.parent;
		close(root);
	}
	if (!ret) {
		cgroup_sweep(guard.parent);
		snprintf(guard.name, sizeof(guard.name), CG_PREFIX "%d", (int)getpid());
		if (mkdirat(guard.parent, guard.name, 0755) < 0 && errno != EEXIST)
			ret = -errno;
	}
	if (!ret) {
		cg = openat(guard.parent, guard.name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ret = cg < 0 ? -errno : guard_attach(guard.skel, cg);
	}
	/* Last: a socket is created only once we are where the programs are. */
	if (!ret)
		ret = cgroup_enter(cg);
	guard.entered = !ret;
	if (cg >= 0)
		close(cg);
	if (ret) {
		egress_guard_stop();
		return ret;
	}
	dlg.egress_guard = true;
	return 0;
}

bool egress_guard_covers(int type, int proto)
{
	if (!dlg.egress_guard)
		return true;
	/* The address of a TCP send is ignored (MSG_FASTOPEN stays trapped); UDP's the programs judge. */
	if (type == SOCK_STREAM)
		return !proto || proto == IPPROTO_TCP;
	/* Ping sockets' echoes are judged as they leave (egress_skb). */
	if (type == SOCK_DGRAM)
		return !proto || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
		       policy_proto_is_echo(proto);
	return false;
}

uint64_t egress_guard_denied(void)
{
	return guard.skel && guard.skel->bss ? __atomic_load_n(&guard.skel->bss->denied, __ATOMIC_RELAXED) : 0;
}

void egress_guard_stop(void)
{
	int ret;

	if (guard.parent >= 0) {
		/* Back where we came from, then our cgroup goes; the sockets keep its programs. */
		ret = guard.entered ? cgroup_enter(guard.parent) : 0;
		if (ret)
			pr_warn("egress guard: cannot leave cgroup %s: %s\n", guard.name, err_str(-ret));
		if (guard.name[0] && unlinkat(guard.parent, guard.name, AT_REMOVEDIR) < 0 &&
		    errno != ENOENT)
			pr_warn("egress guard: cannot remove cgroup %s: %s\n", guard.name, err_str(errno));
		close(guard.parent);
		guard.parent = -1;
	}
	/* dlg.egress_guard stays: HELLO read it, and sockets made meanwhile keep the programs. */
	egress_guard_bpf__destroy(guard.skel);
	guard.skel = NULL;
	guard.entered = false;
}
