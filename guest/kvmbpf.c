// SPDX-License-Identifier: GPL-2.0
/*
 * The KVM tier's fast path for rsys-load vm: bpf/kvm_rsys.bpf.c, attached
 * to kvm-patch's kvm_x86_syscall_verdict() for this VM only (its
 * rsys_vm_id), decides a trusted guest process's calls in KVM by the fd
 * table the front end keeps (guest/kvmfront.c mirrors its shadow tables
 * here): calls on local fds run in the guest kernel without an exit,
 * those naming a remote vfd, and the calls the front end follows (forks,
 * execs, exits, handlers, split and parked waits), exit to the VMM, as do
 * all calls of a process it has not registered (the VMM tells whether it
 * is trusted). The maps are pinned in KB_PIN_DIR/PID, so that
 *   bpftool map dump pinned /sys/fs/bpf/rsys-vm/PID/fdtable
 * shows the guest's tables as the host tier's (key: the front end's
 * process id and the vfd; a remote vfd's domain 1).
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <rsys/fdtable.h>
#include <rsys/kvm_syscall.h>

#include "bpfmaps.h"
#include "kvmbpf.h"
#include "kvm_rsys.skel.h"
#include "log.h"

/* bpf/kvm_rsys.bpf.c's vm_procs key */
struct kb_key {
	uint32_t vm_id;
	uint32_t cr3_tag;
};

static struct {
	struct kvm_rsys_bpf *skel;	/* NULL: off */
	struct rsys_maps maps;		/* its fdtable for maps_fd_set(); maps_none() while off */
	uint32_t vm_id;
	char dir[64];			/* pinned there ("": not pinned) */
} kb = { .maps.fdtable = -1 };

static int kb_quiet(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	(void)level;
	(void)fmt;
	(void)ap;
	return 0;
}

static const char *const kb_names[] = { "fdtable", "vm_procs", "trusted", "class_count", "sys_count" };
#define KB_MAPS	(sizeof(kb_names) / sizeof(kb_names[0]))

static struct bpf_map *kb_map(unsigned int i)
{
	return bpf_object__find_map_by_name(kb.skel->obj, kb_names[i]);
}

/* Remove the folder of an rsys-load vm that ended without removing it (killed). */
static void kb_sweep(void)
{
	char path[512];
	struct dirent *d;
	unsigned int i;
	DIR *dir;
	long pid;

	dir = opendir(KB_PIN_DIR);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		pid = strtol(d->d_name, NULL, 10);
		if (pid <= 0 || pid == getpid() || !kill((pid_t)pid, 0) || errno != ESRCH)
			continue;
		for (i = 0; i < KB_MAPS; i++) {
			snprintf(path, sizeof(path), "%s/%s/%s", KB_PIN_DIR, d->d_name, kb_names[i]);
			unlink(path);
		}
		snprintf(path, sizeof(path), "%s/%s", KB_PIN_DIR, d->d_name);
		rmdir(path);
	}
	closedir(dir);
}

static void kb_unpin(void)
{
	unsigned int i;

	if (!kb.dir[0])
		return;
	for (i = 0; i < KB_MAPS; i++)
		bpf_map__unpin(kb_map(i), NULL);
	rmdir(kb.dir);
	kb.dir[0] = 0;
}

static void kb_pin(void)
{
	char path[128];
	unsigned int i;
	int err = 0;

	kb_sweep();
	if (mkdir(KB_PIN_DIR, 0700) && errno != EEXIST)
		err = -errno;
	snprintf(kb.dir, sizeof(kb.dir), "%s/%d", KB_PIN_DIR, (int)getpid());
	if (!err && mkdir(kb.dir, 0700) && errno != EEXIST)
		err = -errno;
	for (i = 0; i < KB_MAPS && !err; i++) {
		snprintf(path, sizeof(path), "%s/%s", kb.dir, kb_names[i]);
		err = bpf_map__pin(kb_map(i), path);
	}
	if (err) {
		pr_warn("vm: cannot pin the fast path's maps in %s: %s (is bpffs mounted on /sys/fs/bpf?); the guest's fd tables are not shown\n",
			kb.dir, err_str(err));
		kb_unpin();
		return;
	}
	pr_info("vm: the guest's fd tables: bpftool map dump pinned %s/fdtable\n", kb.dir);
}

static int kb_err(int ret)
{
	return ret < 0 ? -errno : 0;
}

int kb_table(uint32_t table, bool on)
{
	struct rsys_trusted t = { .monitor = (uint32_t)getpid() };
	int fd;

	if (!kb.skel)
		return 0;
	fd = bpf_map__fd(kb.skel->maps.trusted);
	if (on)
		return kb_err(bpf_map_update_elem(fd, &table, &t, BPF_ANY));
	if (bpf_map_delete_elem(fd, &table) && errno != ENOENT)
		return -errno;
	return 0;
}

int kb_open(int vm_fd)
{
	libbpf_print_fn_t old;
	uint32_t id;
	int err;

	if (ioctl(vm_fd, KVM_X86_GET_SYSCALL_VM_ID, &id)) {
		err = -errno;
		pr_warn("vm: KVM_X86_GET_SYSCALL_VM_ID: %s; no fast path: every call of a trusted process exits to the VMM\n",
			err_str(err));
		return err;
	}
	old = libbpf_set_print(kb_quiet);
	kb.skel = kvm_rsys_bpf__open();
	err = kb.skel ? 0 : -errno;
	if (!err) {
		kb.skel->rodata->rsys_vm_id = id;
		err = kvm_rsys_bpf__load(kb.skel) ?: kvm_rsys_bpf__attach(kb.skel) ?:
		      kb_table(0, true);	/* the empty table */
	}
	libbpf_set_print(old);
	if (err) {
		pr_warn("vm: cannot attach the fast path to kvm_x86_syscall_verdict (%s): every call of a trusted process exits to the VMM\n",
			err_str(err));
		kvm_rsys_bpf__destroy(kb.skel);
		kb.skel = NULL;
		return err;
	}
	kb.vm_id = id;
	maps_none(&kb.maps);
	kb.maps.fdtable = bpf_map__fd(kb.skel->maps.fdtable);
	kb_pin();
	return 0;
}

void kb_close(void)
{
	if (!kb.skel)
		return;
	kb_unpin();
	maps_none(&kb.maps);
	kvm_rsys_bpf__destroy(kb.skel);
	kb.skel = NULL;
}

struct rsys_maps *kb_maps(void)
{
	return &kb.maps;
}

bool kb_on(void)
{
	return kb.skel != NULL;
}

static struct kb_key kb_key(uint64_t root)
{
	/* as the program tags CR3: bits 12-43 of the root */
	return (struct kb_key){ .vm_id = kb.vm_id, .cr3_tag = (uint32_t)(root >> 12) };
}

int kb_proc_add(uint64_t root, uint32_t table)
{
	struct kb_key k = kb_key(root);

	if (!kb.skel)
		return 0;
	return kb_err(bpf_map_update_elem(bpf_map__fd(kb.skel->maps.vm_procs), &k, &table, BPF_ANY));
}

int kb_proc_del(uint64_t root)
{
	struct kb_key k = kb_key(root);

	if (!kb.skel)
		return 0;
	if (bpf_map_delete_elem(bpf_map__fd(kb.skel->maps.vm_procs), &k) && errno != ENOENT)
		return -errno;
	return 0;
}
