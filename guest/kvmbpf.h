/* SPDX-License-Identifier: GPL-2.0 */
/* The KVM tier's fast path: bpf/kvm_rsys.bpf.c on the VM's syscall hook, with the front end's fd tables mirrored in its maps. */
#ifndef RSYS_KVMBPF_H
#define RSYS_KVMBPF_H

#include <stdbool.h>
#include <stdint.h>

#define KB_PIN_DIR	"/sys/fs/bpf/rsys-vm"	/* each rsys-load vm's maps in its PID's folder */

/*
 * Load and attach the program for VM @vm_fd (its KVM_X86_GET_SYSCALL_VM_ID)
 * and pin its maps in KB_PIN_DIR/PID. 0, or -errno once reported (a kernel
 * without kvm-patch's hook: every trusted call then exits to the VMM).
 * The folders of rsys-load vm processes that no longer run are removed.
 */
int kb_open(int vm_fd);
/* Detach, unpin, free. */
void kb_close(void);
bool kb_on(void);

/*
 * Mirror the front end's tables (each returns 0 or -errno; a no-op while
 * off). A table's fd entries go through maps_fd_set() and maps_fd_del() on
 * kb_maps(); the program decides the calls of a table made known with
 * kb_table() (0, the empty table of every trusted process the front end
 * keeps none for, is known from kb_open()), for the process of a root
 * registered with kb_proc_add(): its entries must be there first.
 */
struct rsys_maps *kb_maps(void);
int kb_table(uint32_t table, bool on);
int kb_proc_add(uint64_t root, uint32_t table);
int kb_proc_del(uint64_t root);

#endif
