/* SPDX-License-Identifier: GPL-2.0 */
/* What "rsys-load vm" (guest/vmm.c) and the compute VM's init (guest/init/init.c) agree on. */
#ifndef RSYS_VM_H
#define RSYS_VM_H

/*
 * The I/O port the guest's init writes the program's wait status to (one
 * 32-bit OUT, as waitpid() gave it). The VMM ends the VM there and exits
 * with that status, like "rsys-load run" does for a host program.
 */
#define RSYS_VM_EXIT_PORT	0x0510

/*
 * The program and its arguments, NUL-terminated one after the other, in a
 * file of the small cpio archive the VMM appends to the initrd (the kernel
 * command line cannot carry arbitrary bytes).
 */
#define RSYS_VM_ARGV_DIR	"rsys"
#define RSYS_VM_ARGV_FILE	"rsys/argv"
#define RSYS_VM_ARGV_MAX	(64 * 1024)	/* bytes of PROG ARGS... */

#endif
