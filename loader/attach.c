// SPDX-License-Identifier: GPL-2.0
/* "rsys-load attach POLICY" and "rsys-load detach": load, pin and unpin the host-tier BPF objects. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <rsys/policy.h>

#include "bpfmaps.h"
#include "cmds.h"
#include "log.h"
#include "rsys.skel.h"
#include "rsys.h"

#define BPFFS_DIR	"/sys/fs/bpf"
#define RUN_DIR		"/run/rsys"
#define POLICY_COPY	RUN_DIR "/policy"
#define POLICY_COPY_MAX	(1 << 20)

#define PROG_ENTRY(name, loses) { #name, loses },
static const struct {
	const char *name;
	const char *loses;
} progs[] = { RSYS_PROGS(PROG_ENTRY) };
#define N_PROGS (sizeof(progs) / sizeof(progs[0]))

static int pin_path(char *buf, size_t size, const char *prefix, const char *name)
{
	if (snprintf(buf, size, "%s/%s%s", RSYS_PIN_DIR, prefix, name) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

/* Remove everything under RSYS_PIN_DIR and the directory itself. */
static int pins_remove(void)
{
	char path[PATH_MAX];
	struct dirent *de;
	int err = 0;
	DIR *d;

	d = opendir(RSYS_PIN_DIR);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (pin_path(path, sizeof(path), "", de->d_name) || unlink(path)) {
			err = -errno;
			pr_warn("cannot unpin %s: %s\n", path, err_str(errno));
		}
	}
	closedir(d);
	if (rmdir(RSYS_PIN_DIR) && !err) {
		err = -errno;
		pr_warn("cannot remove %s: %s\n", RSYS_PIN_DIR, err_str(errno));
	}
	return err;
}

static int bpffs_mount(void)
{
	struct statfs st;
	int err;

	if (!statfs(BPFFS_DIR, &st) && st.f_type == BPF_FS_MAGIC)
		return 0;
	if (mkdir(BPFFS_DIR, 0755) && errno != EEXIST) {
		err = -errno;
		pr_warn("cannot create %s: %s\n", BPFFS_DIR, err_str(-err));
		return err;
	}
	if (mount("bpf", BPFFS_DIR, "bpf", 0, "mode=0700")) {
		err = -errno;
		pr_warn("cannot mount bpffs at %s: %s (mount it yourself: mount -t bpf bpf %s)\n",
			BPFFS_DIR, err_str(-err), BPFFS_DIR);
		return err;
	}
	pr_info("mounted bpffs at %s\n", BPFFS_DIR);
	return 0;
}

/* Open the skeleton with only the programs in @load[] set to load, and load it. */
static struct rsys_bpf *skel_load(const bool load[N_PROGS], int *errp)
{
	struct rsys_bpf *skel;
	struct bpf_program *prog;
	size_t i;
	int err;

	skel = rsys_bpf__open();
	if (!skel) {
		*errp = -errno;
		return NULL;
	}
	for (i = 0; i < N_PROGS; i++) {
		prog = bpf_object__find_program_by_name(skel->obj, progs[i].name);
		if (!prog) {
			err = -ENOENT;
			goto err_destroy;
		}
		bpf_program__set_autoload(prog, load[i]);
	}
	err = rsys_bpf__load(skel);
	if (err)
		goto err_destroy;
	return skel;

err_destroy:
	rsys_bpf__destroy(skel);
	*errp = err;
	return NULL;
}

/*
 * Load every program the kernel accepts. A single refused program would fail
 * the whole object, so on failure each is probed on its own.
 */
static struct rsys_bpf *skel_load_accepted(bool accepted[N_PROGS])
{
	bool one[N_PROGS];
	struct rsys_bpf *skel;
	size_t i, j, n = 0;
	int err, first_err;

	for (i = 0; i < N_PROGS; i++)
		accepted[i] = true;
	skel = skel_load(accepted, &first_err);
	if (skel)
		return skel;
	pr_info("loading all programs failed (%s), probing each\n", err_str(-first_err));
	for (i = 0; i < N_PROGS; i++) {
		for (j = 0; j < N_PROGS; j++)
			one[j] = i == j;
		skel = skel_load(one, &err);
		accepted[i] = skel != NULL;
		rsys_bpf__destroy(skel);
		if (accepted[i])
			n++;
		else
			pr_warn("warning: the kernel refused BPF program %s (%s): no %s (run with -d for the verifier log)\n",
				progs[i].name, err_str(-err), progs[i].loses);
	}
	if (!n) {
		pr_warn("cannot load any rsys BPF program: %s (are you root, and does the kernel have BTF? run with -d for details)\n",
			err_str(-first_err));
		return NULL;
	}
	skel = skel_load(accepted, &err);
	if (!skel)
		pr_warn("cannot load the accepted rsys BPF programs: %s (run with -d for details)\n",
			err_str(-err));
	return skel;
}

/* Attach and pin each loaded program; one the kernel will not attach is skipped like a refused one. */
static int progs_attach(struct rsys_bpf *skel, const bool accepted[N_PROGS])
{
	char path[PATH_MAX];
	struct bpf_program *prog;
	struct bpf_link *link;
	size_t i, n = 0;
	int err;

	for (i = 0; i < N_PROGS; i++) {
		if (!accepted[i])
			continue;
		prog = bpf_object__find_program_by_name(skel->obj, progs[i].name);
		link = bpf_program__attach(prog);
		if (!link) {
			pr_warn("warning: cannot attach BPF program %s (%s): no %s\n",
				progs[i].name, err_str(errno), progs[i].loses);
			continue;
		}
		err = pin_path(path, sizeof(path), "link_", progs[i].name);
		if (!err)
			err = bpf_link__pin(link, path);
		bpf_link__destroy(link);
		if (err) {
			pr_warn("cannot pin %s: %s\n", path, err_str(-err));
			return err;
		}
		pr_info("attached %s\n", progs[i].name);
		n++;
	}
	if (!n) {
		pr_warn("cannot attach any rsys BPF program (run with -d for details)\n");
		return -ENOENT;
	}
	return 0;
}

static int maps_pin(struct rsys_bpf *skel)
{
	const struct {
		const char *name;
		struct bpf_map *map;
	} pins[] = {
		{ "fdtable", skel->maps.fdtable },
		{ "trusted", skel->maps.trusted },
		{ "monitors", skel->maps.monitors },
		{ "class_count", skel->maps.class_count },
		{ "sys_count", skel->maps.sys_count },
		{ "sigdeliver", skel->maps.sigdeliver },
		{ "sigwake", skel->maps.sigwake },
		{ "sigstop", skel->maps.sigstop },
		{ "sigring", skel->maps.sigring },
		{ "config", skel->maps.cfg },
	};
	char path[PATH_MAX];
	size_t i;
	int err;

	for (i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		err = pin_path(path, sizeof(path), "", pins[i].name);
		if (!err)
			err = bpf_map__pin(pins[i].map, path);
		if (err) {
			pr_warn("cannot pin %s: %s\n", path, err_str(-err));
			return err;
		}
	}
	return 0;
}

static int config_write(struct rsys_bpf *skel, const struct policy *p)
{
	struct rsys_config cfg = {
		.remote_families = p->remote_families,
		.policy_rules = p->n_rules,
		.policy_trusted = p->n_trusted,
	};
	__u32 key = 0;
	int err;

	err = bpf_map__update_elem(skel->maps.cfg, &key, sizeof(key), &cfg, sizeof(cfg), BPF_ANY);
	if (err)
		pr_warn("cannot write the policy knobs into the config map: %s\n", err_str(-err));
	return err;
}

/* Keep a copy of the attached policy where status, the monitor and the delegate can find it. */
static int policy_copy(const char *src)
{
	char *buf = NULL;
	size_t len;
	FILE *in, *out;
	int err = 0;

	if (mkdir(RUN_DIR, 0755) && errno != EEXIST) {
		err = -errno;
		pr_warn("cannot create %s: %s\n", RUN_DIR, err_str(-err));
		return err;
	}
	in = fopen(src, "re");
	if (!in) {
		err = -errno;
		pr_warn("cannot read %s: %s\n", src, err_str(-err));
		return err;
	}
	buf = malloc(POLICY_COPY_MAX);
	if (!buf) {
		err = -ENOMEM;
		goto out_close_in;
	}
	len = fread(buf, 1, POLICY_COPY_MAX, in);
	if (ferror(in) || !feof(in)) {
		pr_warn("cannot read %s: %s\n", src, ferror(in) ? "read error" : "larger than 1 MiB");
		err = -EIO;
		goto out_free;
	}
	out = fopen(POLICY_COPY ".tmp", "we");
	if (!out) {
		err = -errno;
		pr_warn("cannot write %s.tmp: %s\n", POLICY_COPY, err_str(errno));
		goto out_free;
	}
	if (fwrite(buf, 1, len, out) != len)
		err = -EIO;
	if (fclose(out) && !err)
		err = -errno;
	if (!err && rename(POLICY_COPY ".tmp", POLICY_COPY))
		err = -errno;
	if (err) {
		pr_warn("cannot write %s: %s\n", POLICY_COPY, err_str(-err));
		unlink(POLICY_COPY ".tmp");
	}
out_free:
	free(buf);
out_close_in:
	fclose(in);
	return err;
}

int do_attach(int argc, char **argv)
{
	bool accepted[N_PROGS];
	struct rsys_bpf *skel;
	struct policy *p;
	int err;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: rsys-load attach POLICY\n");
		return 0;
	}
	if (argc != 2) {
		fprintf(stderr, "Usage: rsys-load attach POLICY\n");
		return 1;
	}
	p = malloc(sizeof(*p));
	if (!p) {
		pr_warn("out of memory\n");
		return 1;
	}
	err = policy_load(p, argv[1], stderr);
	if (err)
		goto err_free;
	err = bpffs_mount();
	if (err)
		goto err_free;
	/* The directory is also the lock against two concurrent attaches. */
	if (mkdir(RSYS_PIN_DIR, 0700)) {
		err = -errno;
		if (err == -EEXIST)
			pr_warn("already attached (%s exists): run 'rsys-load detach' first\n",
				RSYS_PIN_DIR);
		else
			pr_warn("cannot create %s: %s%s\n", RSYS_PIN_DIR, err_str(-err),
				err == -EACCES || err == -EPERM ? " (attach needs root)" : "");
		goto err_free;
	}
	skel = skel_load_accepted(accepted);
	if (!skel) {
		err = -EINVAL;
		goto err_unpin;
	}
	err = maps_pin(skel);
	if (!err)
		err = config_write(skel, p);
	if (!err)
		err = progs_attach(skel, accepted);
	if (!err)
		err = policy_copy(argv[1]);
	rsys_bpf__destroy(skel);
	if (err)
		goto err_unpin;
	pr_info("attached policy %s, pinned under %s\n", argv[1], RSYS_PIN_DIR);
	free(p);
	return 0;

err_unpin:
	pins_remove();
err_free:
	free(p);
	return 1;
}

int do_detach(int argc, char **argv)
{
	struct stat st;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		printf("Usage: rsys-load detach\n");
		return 0;
	}
	if (argc != 1) {
		fprintf(stderr, "Usage: rsys-load detach\n");
		return 1;
	}
	if (stat(RSYS_PIN_DIR, &st)) {
		if (errno == ENOENT)
			pr_warn("not attached (nothing pinned at %s)\n", RSYS_PIN_DIR);
		else
			pr_warn("cannot look at %s: %s (detach needs root)\n", RSYS_PIN_DIR,
				err_str(errno));
		return 1;
	}
	if (pins_remove())
		return 1;
	if (unlink(POLICY_COPY) && errno != ENOENT)
		pr_warn("cannot remove %s: %s\n", POLICY_COPY, err_str(errno));
	pr_info("detached: unpinned %s\n", RSYS_PIN_DIR);
	return 0;
}
