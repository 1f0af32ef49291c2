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
 * With -i: the init writes one byte here once the console is set up for the
 * program's input (echo as asked, the line discipline ready); the VMM feeds
 * the host's stdin only from then on, so no byte is echoed or dropped by a
 * driver that is still starting.
 */
#define RSYS_VM_INPUT_PORT	(RSYS_VM_EXIT_PORT + 4)
/*
 * With a VMM that traps the guest's system calls (rsys-load vm --syscalls):
 * the program's process, after fork and before execve, writes one byte here
 * with %rsi holding the address of its RSYS_VM_TOKEN_ENV environment string
 * ("RSYS_VM_TOKEN=" and RSYS_VM_TOKEN_ZEROS '0's). The VMM writes the VM's
 * secret token over the first RSYS_VM_TOKEN_LEN zeros: the program, and
 * every process that inherits its environment through fork and exec,
 * carries it, and that is how the VMM tells trusted processes
 * (guest/vmtrust.c). The VMM takes the first such write only. The last
 * RSYS_VM_LINEAGE_LEN digits are the VMM's too: at a trusted execve it
 * writes there which table of remote fds the new image takes
 * (guest/kvmfront.c).
 */
#define RSYS_VM_TRUST_PORT	(RSYS_VM_EXIT_PORT + 5)
#define RSYS_VM_PORTS		8	/* the init's ioperm() range from RSYS_VM_EXIT_PORT */
#define RSYS_VM_TOKEN_ENV	"RSYS_VM_TOKEN="
#define RSYS_VM_TOKEN_LEN	32	/* hex digits: 128 random bits */
#define RSYS_VM_LINEAGE_LEN	16	/* hex digits after the token: an exec's table */
#define RSYS_VM_TOKEN_ZEROS	(RSYS_VM_TOKEN_LEN + RSYS_VM_LINEAGE_LEN)

/*
 * The program and its arguments, NUL-terminated one after the other, in a
 * file of the small cpio archive the VMM appends to the initrd (the kernel
 * command line cannot carry arbitrary bytes).
 */
#define RSYS_VM_ARGV_DIR	"rsys"
#define RSYS_VM_ARGV_FILE	"rsys/argv"
#define RSYS_VM_ARGV_MAX	(64 * 1024)	/* bytes of PROG ARGS... */
/*
 * Present with "rsys-load vm -i": the program's stdin is the console too,
 * and it is its controlling terminal. "tty": the host's stdin is a
 * terminal (the guest echoes); "pipe": it is not (no echo).
 */
#define RSYS_VM_CONSOLE_FILE	"rsys/console"
/* Present when the VMM traps system calls: the program gets RSYS_VM_TOKEN_ENV (above). */
#define RSYS_VM_TRUST_FILE	"rsys/trust"

#endif
