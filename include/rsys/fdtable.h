/* SPDX-License-Identifier: GPL-2.0 */
/* fd-table and counter types shared by BPF programs (both tiers) and userspace. */
#ifndef RSYS_FDTABLE_H
#define RSYS_FDTABLE_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

/*
 * Key of the pinned map /sys/fs/bpf/rsys/fdtable. @table identifies one fd
 * table: in the host tier the tgid owning it, in the KVM tier the id the
 * VMM gave the guest process's table (bpf/kvm_rsys.bpf.c's vm_procs maps
 * the VM's id and the process's CR3 to it, so that VMs never collide).
 */
struct rsys_fd_key {
	__u32 table;
	__u32 vfd;
};

enum rsys_domain {
	RSYS_DOM_LOCAL = 0,
	RSYS_DOM_REMOTE = 1,
};

#define RSYS_FD_CLOEXEC		0x1	/* FD_CLOEXEC on this vfd */
#define RSYS_FD_NONBLOCK	0x2	/* O_NONBLOCK on the remote resource */
#define RSYS_FD_SPLIT		0x4	/* KVM tier, a local vfd: an epoll instance watching remote ones (the VMM splits its waits) */

struct rsys_fd_val {
	__u32 domain;		/* enum rsys_domain */
	__u32 flags;		/* RSYS_FD_* */
	/*
	 * RSYS_DOM_REMOTE: the delegate's handle of the remote resource
	 * (host tier; the KVM tier's front end leaves 0: its core holds it).
	 * RSYS_DOM_LOCAL (KVM tier): the guest fd that the vfd stands for,
	 * to which bpf/kvm_rsys.bpf.c renumbers the call.
	 */
	__u64 handle;
};

/* Call classes counted in the pinned array /sys/fs/bpf/rsys/class_count. */
enum rsys_class {
	RSYS_CLASS_LOCAL = 0,	/* all fds local, or no fd: ran in the compute domain */
	RSYS_CLASS_REMOTE = 1,	/* all fds remote: ran by the delegate */
	RSYS_CLASS_SPLIT = 2,	/* fds in both domains (select/poll/epoll) */
	RSYS_CLASS_CANCEL = 3,	/* losing halves cancelled */
	RSYS_CLASS_MAX = 4,
};

#define RSYS_MAX_SYSCALL	512	/* entries of /sys/fs/bpf/rsys/sys_count */
#define RSYS_MAX_FDS		4096	/* max entries of the fdtable map */
#define RSYS_MAX_TRUSTED	1024	/* max trusted tasks */

/* Value of /sys/fs/bpf/rsys/trusted, keyed by tgid of a trusted process. */
struct rsys_trusted {
	__u32 monitor;		/* tgid of the rsys-load process supervising it */
	__u32 session;		/* delegate session (one per rsys-load run) */
	__u32 flags;		/* RSYS_TRUSTED_* */
};

/* Direct mode: the task holds real service-domain sockets; they have no fdtable entries. */
#define RSYS_TRUSTED_DIRECT	0x1
/* ... and its delegate's egress guard judges their datagrams: sendto() with an address is not trapped. */
#define RSYS_TRUSTED_GUARDED	0x2

#endif
