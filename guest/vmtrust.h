/* SPDX-License-Identifier: GPL-2.0 */
/* Which guest processes are trusted: the VM's secret token in their environment, found and checked by the VMM. */
#ifndef RSYS_VMTRUST_H
#define RSYS_VMTRUST_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <rsys/vm.h>

#include "gmem.h"

#define VT_MM_MAX	1024		/* address spaces remembered; more are looked at again */
#define VT_SCAN_MAX	(256u << 10)	/* bytes above the stack pointer searched for the token */
#define VT_NEEDLE_LEN	(sizeof(RSYS_VM_TOKEN_ENV) - 1 + RSYS_VM_TOKEN_LEN)
#define VT_STRING_LEN	(VT_NEEDLE_LEN + RSYS_VM_LINEAGE_LEN)	/* and the lineage digits */

/* One address space (a guest process) seen making system calls. */
struct vt_mm {
	uint64_t root;		/* its page-table root (gmem_root); 0: free slot */
	uint64_t token_va;	/* trusted: where its copy of the token was found */
	uint64_t print;		/* untrusted: vt_print() of its root when it was searched */
	bool trusted;
};

struct vt {
	pthread_mutex_t lock;
	char needle[VT_NEEDLE_LEN + 1];	/* "RSYS_VM_TOKEN=" and the token */
	bool announced;			/* the guest's init named the program's process */
	struct vt_mm mm[VT_MM_MAX];
	unsigned int victim;		/* next slot to reuse when all are taken */
};

/* A fresh secret token (getrandom). 0 or -errno. */
int vt_init(struct vt *t);

/*
 * The guest's init announced the program's process (RSYS_VM_TRUST_PORT):
 * @cr3 is that process's address space and @va its RSYS_VM_TOKEN_ENV
 * string, "RSYS_VM_TOKEN=" and zeros, into whose first RSYS_VM_TOKEN_LEN
 * the token is written.
 * Only the first announcement counts (any later one is refused: a guest
 * root process may write the port too). 0, -EALREADY, or -EFAULT/-EINVAL
 * for a string that is not there or not writable.
 */
int vt_announce(struct vt *t, const struct gmem *m, uint64_t cr3, uint64_t va);

/*
 * Is the process whose address space is @cr3, stopped in a system call
 * with stack pointer @rsp, trusted? A remembered trusted process must
 * still hold the token where it was found (else the address space is
 * another process's now: looked at anew); an unknown one is searched from
 * @rsp upwards (VT_SCAN_MAX), where exec puts the environment and fork
 * copies it. A remembered untrusted one is searched again when its top
 * page table changed (vt_print: most likely another process's now, one
 * that ended without exit_group). @rsp is read only for a search: pass a
 * function. Returns where the process holds the token (0: not trusted);
 * *@fresh (if not NULL): whether a search found it there (a trusted process
 * seen anew: its first call, or the first since its exec or since its root
 * was another's).
 */
uint64_t vt_trusted(struct vt *t, const struct gmem *m, uint64_t cr3,
		    uint64_t (*rsp)(void *arg), void *arg, bool *fresh);

/* The address space @cr3 ended or is being replaced (exit_group, execve): forget it. */
void vt_forget(struct vt *t, uint64_t cr3);

/*
 * Forget every address space remembered untrusted: their processes may
 * have ended unseen (no longer trapped), and a new trusted process may
 * have one's root, and even its fingerprint (page tables come back from
 * the allocator in the order they went). Each is searched anew at its next
 * trapped call.
 */
void vt_forget_untrusted(struct vt *t);

#endif
