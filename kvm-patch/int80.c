// SPDX-License-Identifier: GPL-2.0
/*
 * Run in the compute VM by vm_test.sh: a 64-bit process makes the 32-bit
 * system call getpid (i386 number 20) with INT $0x80, the way into the
 * guest kernel that SYSCALL's hook alone would miss. rsys-load vm
 * --syscalls must print it for a trusted process ("int80 #20"). The test
 * kernel has no IA32 emulation, so its answer is a SIGSEGV (no gate for
 * vector 0x80), which is caught; a kernel with it returns the pid.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

static sigjmp_buf out;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(out, 1);
}

int main(void)
{
	long ret = 20;	/* __NR_getpid of i386 */

	signal(SIGSEGV, on_segv);
	if (sigsetjmp(out, 1)) {
		printf("int80: SIGSEGV (the guest kernel has no IA32 emulation)\n");
		return 0;
	}
	__asm__ volatile("int $0x80" : "+a"(ret) : "b"(0) : "memory");
	printf("int80: getpid = %ld, pid %d\n", ret, (int)getpid());
	return 0;
}
