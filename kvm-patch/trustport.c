// SPDX-License-Identifier: GPL-2.0
/*
 * Run in the compute VM by vm_test.sh as an attacker: a guest root process
 * that is not trusted writes the VMM's trust port itself, as the guest's
 * init does for the program, hoping the VMM fills in its own token string.
 * Prints "trust port: granted" or "trust port: refused", then calls sync()
 * so that the test sees in rsys-load vm --syscalls whether it became trusted.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/io.h>

#include <rsys/vm.h>

int main(void)
{
	static char env[sizeof(RSYS_VM_TOKEN_ENV) + RSYS_VM_TOKEN_ZEROS];
	const size_t plen = sizeof(RSYS_VM_TOKEN_ENV) - 1;

	memcpy(env, RSYS_VM_TOKEN_ENV, plen);
	memset(env + plen, '0', RSYS_VM_TOKEN_ZEROS);
	if (ioperm(RSYS_VM_EXIT_PORT, RSYS_VM_PORTS, 1)) {
		perror("trust port: ioperm");
		return 2;
	}
	__asm__ volatile("outb %%al, %%dx" : : "a"(1), "d"(RSYS_VM_TRUST_PORT), "S"(env)
			 : "memory");
	printf("trust port: %s\n",
	       strspn(env + plen, "0") == RSYS_VM_TOKEN_ZEROS ? "refused" : "granted");
	fflush(stdout);
	sync();
	return 0;
}
