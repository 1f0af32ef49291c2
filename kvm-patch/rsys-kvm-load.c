// SPDX-License-Identifier: GPL-2.0
/* Attaches bpf/kvm_rsys.bpf.c to a kvm-patch/ kernel, pins its maps, runs a command. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <bpf/libbpf.h>
#include "rsys/fdtable.h"
#include "kvm_rsys.skel.h"

static int libbpf_print(enum libbpf_print_level level, const char *fmt,
			va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int pin(struct bpf_map *map, const char *dir)
{
	char path[4096];

	snprintf(path, sizeof(path), "%s/%s", dir, bpf_map__name(map));
	return bpf_map__pin(map, path);
}

static int run_command(char **argv)
{
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (!pid) {
		execv(argv[0], argv);
		fprintf(stderr, "Error: cannot run %s: %s\n", argv[0],
			strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0)
		return -errno;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

static void print_counts(struct kvm_rsys_bpf *skel)
{
	static const char * const names[RSYS_CLASS_MAX] = {
		"local", "remote", "split", "cancel",
	};
	__u64 v;
	__u32 i;

	for (i = 0; i < RSYS_CLASS_MAX; i++)
		if (!bpf_map__lookup_elem(skel->maps.class_count, &i, sizeof(i),
					  &v, sizeof(v), 0))
			printf("# rsys class %s: %llu calls\n", names[i],
			       (unsigned long long)v);
}

int main(int argc, char **argv)
{
	struct kvm_rsys_bpf *skel;
	const char *dir;
	int err;

	if (argc < 3) {
		fprintf(stderr, "Usage: %s PIN_DIR COMMAND [ARG]...\n", argv[0]);
		return 1;
	}
	dir = argv[1];
	libbpf_set_print(libbpf_print);

	skel = kvm_rsys_bpf__open_and_load();
	if (!skel) {
		fprintf(stderr,
			"Error: cannot load kvm_rsys.bpf.o: %s (boot a kvm-patch/ kernel)\n",
			strerror(errno));
		return 4;
	}
	err = kvm_rsys_bpf__attach(skel);
	if (err) {
		fprintf(stderr, "Error: cannot attach to kvm_x86_syscall_verdict: %s\n",
			strerror(-err));
		goto err_destroy;
	}
	if (mkdir(dir, 0700) && errno != EEXIST) {
		err = -errno;
		fprintf(stderr, "Error: cannot create %s: %s (is bpffs mounted?)\n",
			dir, strerror(errno));
		goto err_destroy;
	}
	err = pin(skel->maps.vm_procs, dir) ?: pin(skel->maps.trusted, dir) ?:
	      pin(skel->maps.fdtable, dir);
	if (err) {
		fprintf(stderr, "Error: cannot pin maps in %s: %s\n", dir,
			strerror(-err));
		goto err_unpin;
	}

	err = run_command(argv + 2);
	print_counts(skel);

err_unpin:
	bpf_map__unpin(skel->maps.vm_procs, NULL);
	bpf_map__unpin(skel->maps.trusted, NULL);
	bpf_map__unpin(skel->maps.fdtable, NULL);
	rmdir(dir);
err_destroy:
	kvm_rsys_bpf__destroy(skel);
	return err < 0 ? 1 : err;
}
