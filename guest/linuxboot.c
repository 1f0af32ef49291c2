// SPDX-License-Identifier: GPL-2.0
/* The Linux x86 boot protocol (Documentation/arch/x86/boot.rst): load a bzImage for the 32-bit entry, and the argv archive. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rsys/vm.h>

#include "linuxboot.h"
#include "log.h"

/* Offsets in the bzImage's first sector and in boot_params ("zero page"), boot.rst's names. */
#define BP_E820_ENTRIES		0x1e8
#define HDR_SETUP_SECTS		0x1f1
#define HDR_BOOT_FLAG		0x1fe
#define HDR_JUMP		0x200	/* its second byte: the header's length past 0x202 */
#define HDR_HEADER		0x202
#define HDR_VERSION		0x206
#define HDR_TYPE_OF_LOADER	0x210
#define HDR_LOADFLAGS		0x211
#define HDR_CODE32_START	0x214
#define HDR_RAMDISK_IMAGE	0x218
#define HDR_RAMDISK_SIZE	0x21c
#define HDR_CMD_LINE_PTR	0x228
#define HDR_INITRD_ADDR_MAX	0x22c
#define HDR_CMDLINE_SIZE	0x238
#define HDR_PREF_ADDRESS	0x258
#define HDR_INIT_SIZE		0x260
#define BP_E820_TABLE		0x2d0
#define BP_SIZE			0x1000

#define HDR_MAGIC		0x53726448	/* "HdrS" */
#define HDR_MIN_VERSION		0x020c		/* 2.12 (Linux 3.8): init_size, pref_address, xloadflags */
#define LOADED_HIGH		0x01
#define LOADER_UNDEFINED	0xff
#define E820_RAM		1
#define E820_ENTRY_SIZE		20

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));	/* x86 only: the host is the guest's architecture */
}

static void put_e820(uint8_t *bp, unsigned int i, uint64_t addr, uint64_t size)
{
	uint8_t *e = bp + BP_E820_TABLE + i * E820_ENTRY_SIZE;
	uint32_t type = E820_RAM;

	memcpy(e, &addr, 8);
	memcpy(e + 8, &size, 8);
	memcpy(e + 16, &type, 4);
	bp[BP_E820_ENTRIES] = (uint8_t)(i + 1);
}

/* Flat 4 GiB code (execute/read) at __BOOT_CS and data (read/write) at __BOOT_DS. */
static void put_gdt(uint8_t *mem, struct lb_entry *e)
{
	static const uint64_t gdt[] = {
		0,
		0,
		0x00cf9b000000ffffULL,	/* 0x10: G, D, P, code execute/read accessed */
		0x00cf93000000ffffULL,	/* 0x18: G, B, P, data read/write accessed */
	};

	memcpy(mem + LB_GDT_ADDR, gdt, sizeof(gdt));
	e->gdt = LB_GDT_ADDR;
	e->gdt_limit = sizeof(gdt) - 1;
}

/* The header's checks: a message and -EINVAL for anything not a loadable bzImage. */
static int check_header(const uint8_t *img, size_t img_len, size_t *kernel_off)
{
	unsigned int sects;
	uint16_t version;

	if (img_len < BP_SIZE || get16(img + HDR_BOOT_FLAG) != 0xaa55 ||
	    get32(img + HDR_HEADER) != HDR_MAGIC) {
		pr_err("the kernel is not a bzImage (no boot sector with a \"HdrS\" setup header)\n");
		return -EINVAL;
	}
	version = get16(img + HDR_VERSION);
	if (version < HDR_MIN_VERSION) {
		pr_err("the kernel's boot protocol is %u.%02u; at least %u.%02u (Linux 3.8) is needed\n",
		       version >> 8, version & 0xff, HDR_MIN_VERSION >> 8, HDR_MIN_VERSION & 0xff);
		return -EINVAL;
	}
	if (!(img[HDR_LOADFLAGS] & LOADED_HIGH)) {
		pr_err("the kernel is a zImage (loaded low); only bzImages are supported\n");
		return -EINVAL;
	}
	if (get32(img + HDR_CODE32_START) != LB_KERNEL_ADDR) {
		pr_err("the kernel's 32-bit entry is at %#x, not at 1 MiB where it is loaded\n",
		       get32(img + HDR_CODE32_START));
		return -EINVAL;
	}
	sects = img[HDR_SETUP_SECTS] ? img[HDR_SETUP_SECTS] : 4;
	*kernel_off = (size_t)(sects + 1) * 512;
	if (*kernel_off >= img_len || (size_t)HDR_HEADER + img[HDR_JUMP + 1] > *kernel_off) {
		pr_err("the kernel is truncated (setup of %zu bytes, file of %zu)\n", *kernel_off,
		       img_len);
		return -EINVAL;
	}
	return 0;
}

int lb_check(const uint8_t *img, size_t img_len)
{
	size_t kernel_off;

	return check_header(img, img_len, &kernel_off);
}

int lb_load(uint8_t *mem, uint64_t mem_size, const uint8_t *img, size_t img_len,
	    const char *cmdline, const uint8_t *initrd, size_t initrd_len, struct lb_entry *e)
{
	uint64_t kernel_len, kernel_end, top, initrd_addr;
	size_t kernel_off, cmdline_len = strlen(cmdline) + 1;
	uint8_t *bp = mem + LB_BOOT_PARAMS_ADDR;
	int err;

	err = check_header(img, img_len, &kernel_off);
	if (err)
		return err;
	kernel_len = img_len - kernel_off;
	/* Where the kernel decompresses itself: the larger of where it was put and where it prefers. */
	kernel_end = get64(img + HDR_PREF_ADDRESS);
	if (kernel_end < LB_KERNEL_ADDR)
		kernel_end = LB_KERNEL_ADDR;
	kernel_end += get32(img + HDR_INIT_SIZE);
	if (kernel_end < LB_KERNEL_ADDR + kernel_len)
		kernel_end = LB_KERNEL_ADDR + kernel_len;

	if (cmdline_len > LB_CMDLINE_MAX || cmdline_len > (size_t)get32(img + HDR_CMDLINE_SIZE) + 1) {
		pr_err("the kernel command line has %zu bytes; this kernel takes at most %u\n",
		       cmdline_len - 1, get32(img + HDR_CMDLINE_SIZE));
		return -E2BIG;
	}
	top = (uint64_t)get32(img + HDR_INITRD_ADDR_MAX) + 1;
	if (top > mem_size)
		top = mem_size;
	initrd_addr = top >= initrd_len ? (top - initrd_len) & ~0xfffULL : 0;
	if (kernel_end > mem_size || initrd_addr < kernel_end) {
		pr_err("%llu MiB of guest memory do not hold the kernel (%llu MiB once decompressed) and the initrd (%zu KiB): raise --mem\n",
		       (unsigned long long)(mem_size >> 20),
		       (unsigned long long)((kernel_end + (1 << 20) - 1) >> 20), initrd_len >> 10);
		return -E2BIG;
	}

	memcpy(mem + LB_KERNEL_ADDR, img + kernel_off, kernel_len);
	memcpy(mem + initrd_addr, initrd, initrd_len);
	memcpy(mem + LB_CMDLINE_ADDR, cmdline, cmdline_len);

	memset(bp, 0, BP_SIZE);
	memcpy(bp + HDR_SETUP_SECTS, img + HDR_SETUP_SECTS,
	       HDR_HEADER + img[HDR_JUMP + 1] - HDR_SETUP_SECTS);
	bp[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	put32(bp + HDR_CMD_LINE_PTR, LB_CMDLINE_ADDR);
	put32(bp + HDR_RAMDISK_IMAGE, (uint32_t)initrd_addr);
	put32(bp + HDR_RAMDISK_SIZE, (uint32_t)initrd_len);
	put_e820(bp, 0, 0, LB_LOW_RAM_END);
	put_e820(bp, 1, LB_KERNEL_ADDR, mem_size - LB_KERNEL_ADDR);

	put_gdt(mem, e);
	e->rip = LB_KERNEL_ADDR;
	e->rsi = LB_BOOT_PARAMS_ADDR;
	e->initrd = initrd_addr;
	e->version = get16(img + HDR_VERSION);
	return 0;
}

/* MP table entry types and sizes (Intel MP spec 1.4, chapter 4). */
enum { MP_PROCESSOR, MP_BUS, MP_IOAPIC, MP_INTSRC, MP_LINTSRC };
#define MP_FLOATING_LEN		16
#define MP_HEADER_LEN		44
#define MP_PROCESSOR_LEN	20
#define MP_ENTRY_LEN		8
#define MP_ISA_IRQS		16
#define MP_INT			0
#define MP_NMI			1
#define MP_EXTINT		3

static uint8_t mp_checksum(const uint8_t *p, size_t len)
{
	uint8_t sum = 0;

	while (len--)
		sum += *p++;
	return (uint8_t)-sum;
}

static uint8_t *mp_irq(uint8_t *e, uint8_t type, uint8_t bus_irq, uint8_t apic, uint8_t pin,
		       uint8_t kind)
{
	e[0] = kind;
	e[1] = type;
	e[2] = e[3] = 0;	/* polarity and trigger as the bus has them */
	e[4] = 0;		/* bus 0 */
	e[5] = bus_irq;
	e[6] = apic;
	e[7] = pin;
	return e + MP_ENTRY_LEN;
}

int lb_mptable(uint8_t *mem, unsigned int ncpus)
{
	uint8_t *fp = mem + LB_MPTABLE_ADDR, *t = fp + MP_FLOATING_LEN, *e;
	uint8_t ioapic = (uint8_t)ncpus;
	unsigned int i, entries = 0;
	uint32_t v32;
	uint16_t v16;

	if (ncpus < 1 || ncpus > LB_CPUS_MAX)
		return -EINVAL;
	e = t + MP_HEADER_LEN;
	for (i = 0; i < ncpus; i++, entries++) {
		memset(e, 0, MP_PROCESSOR_LEN);
		e[0] = MP_PROCESSOR;
		e[1] = (uint8_t)i;		/* local APIC id: KVM's vcpu id */
		e[2] = 0x14;			/* local APIC version */
		e[3] = 0x01 | (i == 0 ? 0x02 : 0);	/* enabled, bootstrap processor */
		v32 = 0x600;			/* family 6 */
		memcpy(e + 4, &v32, 4);
		v32 = 0x201;			/* FPU, APIC */
		memcpy(e + 8, &v32, 4);
		e += MP_PROCESSOR_LEN;
	}
	memcpy(e, "\x01\x00ISA   ", MP_ENTRY_LEN);	/* bus 0 is ISA */
	e += MP_ENTRY_LEN;
	e[0] = MP_IOAPIC;
	e[1] = ioapic;
	e[2] = 0x11;				/* IOAPIC version */
	e[3] = 0x01;				/* enabled */
	v32 = LB_IOAPIC_ADDR;
	memcpy(e + 4, &v32, 4);
	e += MP_ENTRY_LEN;
	entries += 2;
	for (i = 0; i < MP_ISA_IRQS; i++, entries++)
		e = mp_irq(e, MP_INT, (uint8_t)i, ioapic, (uint8_t)i, MP_INTSRC);
	e = mp_irq(e, MP_EXTINT, 0, 0xff, 0, MP_LINTSRC);	/* every local APIC: LINT0 ExtINT */
	e = mp_irq(e, MP_NMI, 0, 0xff, 1, MP_LINTSRC);		/* ... LINT1 NMI */
	entries += 2;

	memset(t, 0, MP_HEADER_LEN);
	memcpy(t, "PCMP", 4);
	v16 = (uint16_t)(e - t);
	memcpy(t + 4, &v16, 2);
	t[6] = 4;				/* spec 1.4 */
	memcpy(t + 8, "RSYS    ", 8);
	memcpy(t + 16, "COMPUTE VM  ", 12);
	v16 = (uint16_t)entries;
	memcpy(t + 34, &v16, 2);
	v32 = LB_LAPIC_ADDR;
	memcpy(t + 36, &v32, 4);
	t[7] = mp_checksum(t, (size_t)(e - t));

	memset(fp, 0, MP_FLOATING_LEN);
	memcpy(fp, "_MP_", 4);
	v32 = (uint32_t)(LB_MPTABLE_ADDR + MP_FLOATING_LEN);
	memcpy(fp + 4, &v32, 4);
	fp[8] = 1;				/* length in 16-byte units */
	fp[9] = 4;
	fp[10] = mp_checksum(fp, MP_FLOATING_LEN);
	return 0;
}

/* One newc member: header, name, data, each padded to 4 bytes. Returns the bytes written. */
static size_t cpio_member(uint8_t *out, const char *name, unsigned int mode, const void *data,
			  size_t len)
{
	size_t namesize = strlen(name) + 1, n;

	n = (size_t)sprintf((char *)out, "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X",
			    0u, mode, 0u, 0u, 1u, 0u, len, 0u, 0u, 0u, 0u, namesize, 0u);
	memcpy(out + n, name, namesize);
	n += namesize;
	while (n % 4)
		out[n++] = 0;
	memcpy(out + n, data, len);
	n += len;
	while (n % 4)
		out[n++] = 0;
	return n;
}

long lb_argv_cpio(char *const *argv, const char *console, bool trust, uint8_t **out)
{
	size_t len = 0, n, i;
	char *args;
	uint8_t *a;

	for (i = 0; argv[i]; i++) {
		len += strlen(argv[i]) + 1;
		if (len > RSYS_VM_ARGV_MAX)
			return -E2BIG;
	}
	args = malloc(len ? len : 1);
	/* five members and the trailer: headers of 110 bytes, short names, padding */
	a = malloc(len + 6 * 128);
	if (!args || !a) {
		free(args);
		free(a);
		return -ENOMEM;
	}
	for (i = 0, n = 0; argv[i]; i++) {
		memcpy(args + n, argv[i], strlen(argv[i]) + 1);
		n += strlen(argv[i]) + 1;
	}
	n = cpio_member(a, RSYS_VM_ARGV_DIR, 040755, NULL, 0);
	n += cpio_member(a + n, RSYS_VM_ARGV_FILE, 0100644, args, len);
	if (console)
		n += cpio_member(a + n, RSYS_VM_CONSOLE_FILE, 0100644, console,
				 strnlen(console, 8));
	if (trust)
		n += cpio_member(a + n, RSYS_VM_TRUST_FILE, 0100644, "1", 1);
	n += cpio_member(a + n, "TRAILER!!!", 0, NULL, 0);
	free(args);
	*out = a;
	return (long)n;
}
