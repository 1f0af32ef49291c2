/* SPDX-License-Identifier: GPL-2.0 */
/* The Linux x86 boot protocol for rsys's VMM: a bzImage, its boot_params, the initrd and the program's argv archive. */
#ifndef RSYS_LINUXBOOT_H
#define RSYS_LINUXBOOT_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

/* Guest-physical layout below 1 MiB (the kernel goes to 1 MiB, the initrd to the top of memory). */
#define LB_GDT_ADDR		0x0500
#define LB_BOOT_PARAMS_ADDR	0x7000
#define LB_CMDLINE_ADDR		0x20000
#define LB_CMDLINE_MAX		0x10000
#define LB_KERNEL_ADDR		0x100000
#define LB_LOW_RAM_END		0x9fc00		/* conventional memory ends where the EBDA would start */

#define LB_MPTABLE_ADDR		LB_LOW_RAM_END	/* the last KiB of base memory, where Linux looks */
#define LB_CPUS_MAX		8
#define LB_IOAPIC_ADDR		0xfec00000
#define LB_LAPIC_ADDR		0xfee00000

#define LB_BOOT_CS		0x10		/* __BOOT_CS and __BOOT_DS of the 32-bit entry */
#define LB_BOOT_DS		0x18

/* Where the 32-bit protected-mode entry starts (paging off, flat segments). */
struct lb_entry {
	uint64_t rip;		/* code32_start */
	uint64_t rsi;		/* boot_params */
	uint64_t gdt;		/* a GDT with flat __BOOT_CS/__BOOT_DS */
	uint16_t gdt_limit;
	uint64_t initrd;	/* where the initrd went (for messages and tests) */
	uint16_t version;	/* boot protocol version of the image */
};

/* Whether @img is a bzImage this loader can boot: 0, or -EINVAL after a message. */
int lb_check(const uint8_t *img, size_t img_len);

/*
 * Lay out a guest of @mem_size bytes at @mem: the protected-mode kernel of
 * the bzImage @img, boot_params with its setup header, an e820 map of the
 * RAM, @cmdline and the initrd. Returns 0 with @e filled, or -EINVAL/-E2BIG
 * after a message naming what is wrong (not a bzImage, too old, does not
 * fit).
 */
int lb_load(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
	    const char *cmdline, const uint8_t *initrd, size_t initrd_len, struct lb_entry *e);

/*
 * An Intel MultiProcessor table (spec 1.4) at LB_MPTABLE_ADDR: @ncpus
 * processors with local APIC ids 0..ncpus-1 (0 boots), one ISA bus, KVM's
 * IOAPIC with ISA IRQ n on its pin n (KVM's default routing), ExtINT on
 * LINT0 and NMI on LINT1. 0, or -EINVAL for ncpus outside 1..LB_CPUS_MAX.
 */
int lb_mptable(uint8_t *mem, unsigned int ncpus);

/*
 * A newc cpio archive holding RSYS_VM_ARGV_FILE with @argv (and its
 * directory), unless @console is NULL RSYS_VM_CONSOLE_FILE with it, and
 * with @trust RSYS_VM_TRUST_FILE, to append to an initrd. Returns its length with *out malloc'ed, or
 * -E2BIG (arguments over RSYS_VM_ARGV_MAX) / -ENOMEM.
 */
long lb_argv_cpio(char *const *argv, const char *console, bool trust, uint8_t **out);

#endif
