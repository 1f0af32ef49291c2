// SPDX-License-Identifier: GPL-2.0
/*
 * The parts of rsys's VMM that need no /dev/kvm: the UART as Linux's 8250
 * driver probes and drives it, the bzImage loader's layout and refusals,
 * and the argv archive the guest's init unpacks (checked with cpio(1)).
 * The VMM itself boots guests in kvm-patch/vm_test.sh (make vmtest).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rsys/vm.h>

#include "gmem.h"
#include "ktap.h"
#include "linuxboot.h"
#include "uart.h"
#include "vmtrust.h"

#define MIB (1u << 20)

static uint8_t uart_rd(struct uart *u, unsigned int reg, bool *irq)
{
	uint8_t v = 0;

	*irq = uart_access(u, reg, false, &v);
	return v;
}

static bool uart_wr(struct uart *u, unsigned int reg, uint8_t v)
{
	return uart_access(u, reg, true, &v);
}

/* What serial8250's autoconfig() checks before it registers ttyS0. */
TEST(uart_passes_the_8250_probe)
{
	struct uart u = { 0 };
	bool irq;

	uart_wr(&u, 7, 0xa5);
	CHECK(uart_rd(&u, 7, &irq) == 0xa5, "scratch register keeps 0xa5");
	uart_wr(&u, 1, 0);
	CHECK(uart_rd(&u, 1, &irq) == 0, "IER reads back 0");
	uart_wr(&u, 1, 0x0f);
	CHECK(uart_rd(&u, 1, &irq) == 0x0f, "IER reads back 0x0f");
	uart_wr(&u, 1, 0);
	uart_wr(&u, 4, 0x10 | 0x0a);	/* loopback, RTS, OUT2 */
	CHECK((uart_rd(&u, 6, &irq) & 0xf0) == 0x90, "loopback: MSR shows CTS and DCD (0x90)");
	uart_wr(&u, 0, 'x');
	CHECK(u.out_len == 0, "loopback: a transmitted byte does not reach the host");
	uart_wr(&u, 4, 0);
	CHECK(uart_rd(&u, 5, &irq) == 0x60, "LSR: transmitter empty, nothing received");
	CHECK(uart_rd(&u, 2, &irq) == 0x01, "IIR: no interrupt pending");
	uart_wr(&u, 3, 0x80);		/* DLAB: the divisor latch */
	uart_wr(&u, 0, 0x01);
	uart_wr(&u, 1, 0x00);
	CHECK(uart_rd(&u, 0, &irq) == 0x01, "DLL reads back under DLAB");
	uart_wr(&u, 3, 0x03);
	uart_wr(&u, 0, 'A');
	CHECK(u.out_len == 1 && u.out[0] == 'A', "without DLAB a write to THR transmits");
}

/* The driver sends a byte per THR-empty interrupt: the line must rise again after each. */
TEST(uart_raises_thr_empty_per_byte)
{
	struct uart u = { 0 };
	bool irq;

	CHECK(!uart_wr(&u, 1, 0x02), "THRI enabled without OUT2: the line stays low");
	CHECK(uart_wr(&u, 4, 0x08), "OUT2 set: the pending THRI raises the line");
	CHECK(uart_rd(&u, 2, &irq) == 0x02 && !irq, "IIR reports THRI once and the line falls");
	CHECK(uart_rd(&u, 2, &irq) == 0x01, "... then no interrupt");
	CHECK(uart_wr(&u, 0, 'h'), "a byte sent: the line rises again");
	CHECK(uart_rd(&u, 2, &irq) == 0x02 && !irq, "IIR reports THRI again");
	uart_wr(&u, 0, 'i');
	uart_wr(&u, 0, '\n');
	CHECK(u.out_len == 3 && !memcmp(u.out, "hi\n", 3), "the host gets \"hi\\n\"");
	CHECK(uart_flush_due(&u), "a finished line is due for flushing");
	CHECK(!uart_wr(&u, 1, 0), "THRI disabled: the line falls");
}

/* -i: received bytes wait in the UART, announced by LSR and the data-ready interrupt, until read. */
TEST(uart_receives)
{
	uint8_t big[UART_IN_MAX + 10] = { 0 };
	struct uart u = { 0 };
	bool irq;

	uart_wr(&u, 4, 0x08);
	uart_wr(&u, 1, 0x01);			/* RDI */
	CHECK(uart_receive(&u, (const uint8_t *)"ab", 2, &irq) == 2 && irq, "2 bytes taken, line up");
	CHECK(uart_rd(&u, 5, &irq) & 0x01, "LSR: data ready");
	CHECK(uart_rd(&u, 2, &irq) == 0x04, "IIR: received data");
	CHECK(uart_rd(&u, 0, &irq) == 'a' && irq, "RBR: 'a', line still up");
	CHECK(uart_rd(&u, 0, &irq) == 'b' && !irq, "RBR: 'b', line down");
	CHECK(!(uart_rd(&u, 5, &irq) & 0x01) && uart_rd(&u, 2, &irq) == 0x01, "nothing left");
	CHECK(uart_receive(&u, big, sizeof(big), &irq) == UART_IN_MAX,
	      "a full receiver takes %u bytes, the rest waits", UART_IN_MAX);
}

/* A bzImage header as the 6.12 build writes it; @version and @loadflags vary. */
static uint8_t *fake_bzimage(size_t len, uint16_t version, uint8_t loadflags)
{
	uint8_t *img = calloc(1, len);
	uint32_t v32;
	uint64_t v64;

	img[0x1f1] = 3;				/* setup_sects: the kernel at 4 * 512 */
	img[0x1fe] = 0x55;
	img[0x1ff] = 0xaa;
	img[0x201] = 0x6a;			/* header length past 0x202 */
	memcpy(img + 0x202, "HdrS", 4);
	memcpy(img + 0x206, &version, 2);
	img[0x211] = loadflags;
	v32 = 0x100000;
	memcpy(img + 0x214, &v32, 4);		/* code32_start */
	v32 = 0x7fffffff;
	memcpy(img + 0x22c, &v32, 4);		/* initrd_addr_max */
	v32 = 2047;
	memcpy(img + 0x238, &v32, 4);		/* cmdline_size */
	v64 = 0x1000000;
	memcpy(img + 0x258, &v64, 8);		/* pref_address */
	v32 = 8 * MIB;
	memcpy(img + 0x260, &v32, 4);		/* init_size */
	memset(img + 4 * 512, 0xcc, len - 4 * 512);
	return img;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

TEST(bzimage_layout)
{
	size_t len = 64 * 1024, mem_size = 64 * MIB;
	uint8_t *img = fake_bzimage(len, 0x020f, 0x01), *mem = calloc(1, mem_size);
	const uint8_t *bp = mem + LB_BOOT_PARAMS_ADDR;
	uint8_t initrd[5000];
	struct lb_entry e;
	uint32_t ramdisk;
	int err;

	memset(initrd, 0x5a, sizeof(initrd));
	err = lb_load(mem, mem_size, img, len, "console=ttyS0", initrd, sizeof(initrd), &e);
	REQUIRE(err == 0, "lb_load: %d", err);
	CHECK(e.rip == 0x100000 && e.rsi == LB_BOOT_PARAMS_ADDR, "entry at 1 MiB, %%esi = boot_params");
	CHECK(mem[0x100000] == 0xcc && mem[0x100000 + len - 4 * 512 - 1] == 0xcc &&
	      mem[0x100000 + len - 4 * 512] == 0, "the protected-mode kernel, and only it, at 1 MiB");
	CHECK(!memcmp(bp + 0x1f1, img + 0x1f1, 0x210 - 0x1f1) && !memcmp(bp + 0x258, img + 0x258, 12),
	      "setup header copied (up to type_of_loader; pref_address and init_size)");
	CHECK(bp[0x210] == 0xff, "type_of_loader 0xff");
	CHECK(rd32(bp + 0x228) == LB_CMDLINE_ADDR && !strcmp((char *)mem + LB_CMDLINE_ADDR, "console=ttyS0"),
	      "cmd_line_ptr and the command line");
	ramdisk = rd32(bp + 0x218);
	CHECK(rd32(bp + 0x21c) == sizeof(initrd) && ramdisk % 4096 == 0 &&
	      ramdisk + sizeof(initrd) <= mem_size && ramdisk + sizeof(initrd) > mem_size - 4096 &&
	      mem[ramdisk] == 0x5a, "initrd page-aligned at the top of memory (%#x)", ramdisk);
	CHECK(bp[0x1e8] == 2 && rd32(bp + 0x2d0 + 20 + 16) == 1 &&
	      *(const uint64_t *)(bp + 0x2d0 + 20 + 8) == mem_size - 0x100000,
	      "e820: two RAM ranges, the second up to the end of memory");
	free(mem);
	free(img);
}

TEST(bzimage_refusals)
{
	size_t len = 64 * 1024;
	uint8_t *img = fake_bzimage(len, 0x020f, 0x01), *mem = calloc(1, 64 * MIB);
	uint8_t *old = fake_bzimage(len, 0x0204, 0x01), *low = fake_bzimage(len, 0x020f, 0);
	char cmdline[3000];
	struct lb_entry e;
	uint32_t v32 = 0x200000;

	CHECK(lb_check(img, len) == 0, "positive control: the fake bzImage passes");
	CHECK(lb_check(img, 1000) == -EINVAL, "shorter than its setup: refused");
	CHECK(lb_check(old, len) == -EINVAL, "boot protocol 2.04: refused");
	CHECK(lb_check(low, len) == -EINVAL, "a zImage (not LOADED_HIGH): refused");
	memcpy(old, "\x7f" "ELF", 4);
	old[0x202] = 'X';
	CHECK(lb_check(old, len) == -EINVAL, "no HdrS (an ELF vmlinux): refused");
	memcpy(low + 0x214, &v32, 4);
	low[0x211] = 1;
	CHECK(lb_check(low, len) == -EINVAL, "32-bit entry not at 1 MiB: refused");
	CHECK(lb_load(mem, 20 * MIB, img, len, "", (uint8_t *)"x", 1, &e) == -E2BIG,
	      "20 MiB cannot hold a kernel that decompresses to 24 MiB: -E2BIG");
	memset(cmdline, 'a', sizeof(cmdline) - 1);
	cmdline[sizeof(cmdline) - 1] = '\0';
	CHECK(lb_load(mem, 64 * MIB, img, len, cmdline, (uint8_t *)"x", 1, &e) == -E2BIG,
	      "a command line over cmdline_size: -E2BIG");
	free(mem);
	free(img);
	free(old);
	free(low);
}

static uint8_t sum8(const uint8_t *p, size_t len)
{
	uint8_t s = 0;

	while (len--)
		s += *p++;
	return s;
}

/* What Linux's mpparse checks: signatures, checksums, lengths; then the entries it uses. */
TEST(mp_table)
{
	uint8_t *mem = calloc(1, MIB), *fp = mem + LB_MPTABLE_ADDR, *t, *e;
	unsigned int i, cpus = 0, ints = 0, bsp = 0, len, count;

	CHECK(lb_mptable(mem, 0) == -EINVAL && lb_mptable(mem, LB_CPUS_MAX + 1) == -EINVAL,
	      "0 and %u vCPUs refused", LB_CPUS_MAX + 1);
	REQUIRE(lb_mptable(mem, 3) == 0, "3 vCPUs");
	CHECK(!memcmp(fp, "_MP_", 4) && fp[8] == 1 && fp[9] == 4 && sum8(fp, 16) == 0,
	      "floating pointer: _MP_, 16 bytes, spec 1.4, checksum 0");
	t = mem + rd32(fp + 4);
	REQUIRE(rd32(fp + 4) > LB_MPTABLE_ADDR && rd32(fp + 4) < 0xa0000 && !memcmp(t, "PCMP", 4),
		"config table at %#x below 640 KiB: PCMP", rd32(fp + 4));
	len = (unsigned int)(t[4] | t[5] << 8);
	count = (unsigned int)(t[34] | t[35] << 8);
	CHECK(sum8(t, len) == 0 && rd32(t + 36) == LB_LAPIC_ADDR,
	      "its %u bytes sum to 0; local APICs at %#x", len, LB_LAPIC_ADDR);
	for (e = t + 44, i = 0; i < count && e < t + len; i++) {
		if (e[0] == 0) {
			cpus += (e[3] & 1) && e[1] == cpus;
			bsp += !!(e[3] & 2);
			e += 20;
			continue;
		}
		if (e[0] == 2)
			CHECK(e[1] == 3 && rd32(e + 4) == LB_IOAPIC_ADDR, "IOAPIC id 3 at %#x", LB_IOAPIC_ADDR);
		if (e[0] == 3 && e[5] == e[7] && e[6] == 3)
			ints++;
		e += 8;
	}
	CHECK(i == count && e == t + len, "%u entries fill the table exactly", count);
	CHECK(cpus == 3 && bsp == 1, "processors 0, 1, 2 enabled, one bootstrap");
	CHECK(ints == 16, "ISA IRQs 0-15 on IOAPIC pins 0-15 (KVM's routing)");
	free(mem);
}

/* The archive unpacked by cpio(1), as the kernel unpacks it: the same bytes. */
TEST(argv_archive_unpacks)
{
	char *const argv[] = { "/bin/prog", "a b", "", "x\ny", "\"q\"", NULL };
	const char want[] = "/bin/prog\0a b\0\0x\ny\0\"q\"";
	char dir[] = "/tmp/rsys-vmm-test.XXXXXX", cmd[256], got[256], *big[3];
	uint8_t *a;
	long len;
	FILE *f;
	size_t n;

	len = lb_argv_cpio(argv, NULL, false, &a);
	REQUIRE(len > 0 && len % 4 == 0, "archive of %ld bytes, 4-byte aligned", len);
	REQUIRE(mkdtemp(dir), "temporary directory");
	snprintf(cmd, sizeof(cmd), "%s/a.cpio", dir);
	f = fopen(cmd, "w");
	REQUIRE(f && fwrite(a, 1, (size_t)len, f) == (size_t)len && !fclose(f), "archive written");
	free(a);
	snprintf(cmd, sizeof(cmd), "cd %s && cpio -id --quiet <a.cpio 2>&1", dir);
	if (system("command -v cpio >/dev/null 2>&1"))
		SKIP_CASE("no cpio(1) (make deps installs it)");
	CHECK(system(cmd) == 0, "cpio -id unpacks it");
	snprintf(cmd, sizeof(cmd), "%s/%s", dir, RSYS_VM_ARGV_FILE);
	f = fopen(cmd, "r");
	REQUIRE(f, "%s exists", RSYS_VM_ARGV_FILE);
	n = fread(got, 1, sizeof(got), f);
	fclose(f);
	CHECK(n == sizeof(want) && !memcmp(got, want, n), "its %zu bytes are the arguments, NUL-terminated", n);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK(system(cmd) == 0, "cleaned up");

	big[0] = "prog";
	big[1] = calloc(1, RSYS_VM_ARGV_MAX);
	big[2] = NULL;
	memset(big[1], 'z', RSYS_VM_ARGV_MAX - 1);
	CHECK(lb_argv_cpio(big, NULL, false, &a) == -E2BIG, "arguments over %u bytes: -E2BIG", RSYS_VM_ARGV_MAX);
	free(big[1]);
}

/* The kernel make vmtest builds (or $RSYS_GUEST_KERNEL) is a bzImage this loader boots. */
TEST(real_bzimage_accepted)
{
	const char *path = getenv("RSYS_GUEST_KERNEL");
	static uint8_t img[16 * MIB];
	size_t len;
	FILE *f;

	if (!path)
		path = "/var/cache/rsys-kvm/build/arch/x86/boot/bzImage";
	f = fopen(path, "r");
	if (!f)
		SKIP_CASE("no kernel at %s (make vmtest builds one)", path);
	len = fread(img, 1, sizeof(img), f);
	fclose(f);
	CHECK(len > 0 && len < sizeof(img) && lb_check(img, len) == 0, "%s: %zu bytes, accepted", path, len);
}


/* A guest RAM of 8 MiB with page tables built by hand: what the VMM walks. */
#define G_RAM		(8 * MIB)
#define G_P		0x1ULL
#define G_RW		0x2ULL
#define G_US		0x4ULL
#define G_PS		0x80ULL

static uint8_t g_ram[G_RAM] __attribute__((aligned(4096)));
static uint64_t g_next;	/* next free page for tables */
static unsigned int g_levels = 4;
static const struct gmem g_mem = { .base = g_ram, .size = G_RAM };

static uint64_t *g_entry(uint64_t table, uint64_t va, unsigned int level)
{
	return (uint64_t *)(g_ram + table) + ((va >> (12 + 9 * (level - 1))) & 511);
}

static uint64_t g_root(void)
{
	uint64_t t = g_next;

	g_next += 4096;
	memset(g_ram + t, 0, 4096);
	return t;
}

/* Map @va -> @gpa in @root: a 4 KiB page, or a 2 MiB one with @large; @flags for the leaf. */
static void g_map(uint64_t root, uint64_t va, uint64_t gpa, uint64_t flags, bool large)
{
	uint64_t table = root;
	unsigned int level;

	for (level = g_levels; level > (large ? 2u : 1u); level--) {
		uint64_t *e = g_entry(table, va, level);

		if (!*e)
			*e = g_root() | G_P | G_RW | G_US;
		table = *e & 0x000ffffffffff000ULL;
	}
	*g_entry(table, va, level) = gpa | flags | (large ? G_PS : 0);
}

TEST(gmem_walks_user_page_tables)
{
	uint64_t root, gpa = 0;
	char buf[16];

	memset(g_ram, 0, G_RAM);
	g_next = 0x1000;
	root = g_root();
	g_map(root, 0x400000, 0x100000, G_P | G_RW | G_US, false);
	g_map(root, 0x401000, 0x180000, G_P | G_US, false);		/* read-only, not contiguous */
	g_map(root, 0x402000, 0x190000, G_P | G_RW, false);		/* kernel only */
	g_map(root, 0x40000000, 0x400000, G_P | G_RW | G_US, true);	/* 2 MiB */
	memcpy(g_ram + 0x100ffa, "hello,", 6);
	memcpy(g_ram + 0x180000, "world", 6);
	memcpy(g_ram + 0x412345, "large", 6);

	CHECK(!gmem_translate(&g_mem, root, 0x400123, false, &gpa) && gpa == 0x100123,
	      "4 KiB page: 0x400123 -> %#llx (0x100123)", (unsigned long long)gpa);
	CHECK(!gmem_translate(&g_mem, root | 0x5 | 1ULL << 63, 0x400123, false, &gpa),
	      "PCID and no-flush bits of CR3 are not part of the root");
	CHECK(!gmem_read(&g_mem, root, 0x400ffa, buf, 12) && !strcmp(buf, "hello,world"),
	      "a read across two pages at unrelated frames: \"%s\"", buf);
	CHECK(!gmem_translate(&g_mem, root, 0x40012345, false, &gpa) && gpa == 0x412345,
	      "2 MiB page: 0x40012345 -> %#llx (0x412345)", (unsigned long long)gpa);
	CHECK(!gmem_read(&g_mem, root, 0x40012345, buf, 6) && !strcmp(buf, "large"),
	      "read through a 2 MiB page");
	CHECK(gmem_write(&g_mem, root, 0x401000, "x", 1) == -EFAULT &&
	      g_ram[0x180000] == 'w', "a write to a read-only page: -EFAULT, nothing written");
	CHECK(!gmem_write(&g_mem, root, 0x400000, "x", 1) && g_ram[0x100000] == 'x',
	      "a write to a writable page lands in its frame");
	CHECK(gmem_read(&g_mem, root, 0x402000, buf, 1) == -EFAULT,
	      "a kernel-only page is not readable as user memory");
	CHECK(gmem_read(&g_mem, root, 0x403000, buf, 1) == -EFAULT, "an unmapped page: -EFAULT");
	CHECK(gmem_read(&g_mem, root, 0xffff888000000000ULL, buf, 1) == -EFAULT,
	      "a kernel address: -EFAULT");
	CHECK(gmem_read_upto(&g_mem, root, 0x401ffc, buf, 16) == 4,
	      "read_upto stops at the first unmapped page (4 bytes)");
	memset(buf, 'z', sizeof(buf));
	CHECK(gmem_read_holes(&g_mem, root, 0x401ffc, buf, 16) == 4 &&
	      !memcmp(buf, "\0\0\0\0", 4) && !buf[4] && !buf[15],
	      "read_holes reads the mapped bytes (4) and zeros for the kernel-only page after them");
	g_map(root, 0x404000, G_RAM + 0x1000, G_P | G_US, false);
	CHECK(gmem_read(&g_mem, root, 0x404000, buf, 1) == -EFAULT,
	      "a page outside guest RAM: -EFAULT");
	*g_entry(root, 0x800000000000ULL - 4096, 4) = (G_RAM + 0x2000) | G_P | G_US;
	CHECK(gmem_read(&g_mem, root, 0x800000000000ULL - 4096, buf, 1) == -EFAULT,
	      "a page table outside guest RAM: -EFAULT");
	CHECK(gmem_read(&g_mem, 0x7fffff000ULL, 0x400000, buf, 1) == -EFAULT,
	      "a root outside guest RAM: -EFAULT");
}

TEST(gmem_walks_five_levels)
{
	const struct gmem m5 = { .base = g_ram, .size = G_RAM, .levels = 5 };
	uint64_t root, gpa = 0;

	memset(g_ram, 0, G_RAM);
	g_next = 0x1000;
	g_levels = 5;
	root = g_root();
	g_map(root, 0x7ffff7ff1000ULL, 0x123000, G_P | G_RW | G_US, false);
	g_map(root, 0x100000000000000ULL - 4096, 0x124000, G_P | G_RW | G_US, false);
	g_levels = 4;
	CHECK(!gmem_translate(&m5, root, 0x7ffff7ff1abcULL, false, &gpa) && gpa == 0x123abc,
	      "CR4.LA57: 0x7ffff7ff1abc -> %#llx (0x123abc) through 5 levels", (unsigned long long)gpa);
	CHECK(!gmem_translate(&m5, root, 0x100000000000000ULL - 4096, false, &gpa) && gpa == 0x124000,
	      "5 levels: the top of the 56-bit user space is a user address");
	CHECK(gmem_translate(&g_mem, root, 0x7ffff7ff1abcULL, false, &gpa) ||
	      gpa != 0x123abc, "control: the same tables walked as 4 levels do not give that page");
}

static uint64_t g_sp;
static uint64_t g_rsp(void *arg)
{
	(void)arg;
	return g_sp;
}

/* The VM's token as the announced string now holds it. */
static void g_token(uint64_t root, uint64_t va, char *out)
{
	gmem_read(&g_mem, root, va, out, VT_NEEDLE_LEN);
	out[VT_NEEDLE_LEN] = '\0';
}

TEST(vmtrust_follows_the_token)
{
	const char zeros[] = RSYS_VM_TOKEN_ENV "00000000000000000000000000000000" "0000000000000000";
	uint64_t prog, child, other, found, stack = 0x7ffffff00000ULL;
	bool fresh;
	char tok[VT_NEEDLE_LEN + 1];
	static struct vt t, t2;

	_Static_assert(sizeof(zeros) == sizeof(RSYS_VM_TOKEN_ENV) + RSYS_VM_TOKEN_ZEROS,
		       "the init's string: prefix, token and lineage zeros");
	memset(g_ram, 0, G_RAM);
	g_next = 0x1000;
	prog = g_root();
	child = g_root();
	other = g_root();
	g_map(prog, 0x600000, 0x200000, G_P | G_RW | G_US, false);
	g_map(child, stack, 0x300000, G_P | G_RW | G_US, false);
	g_map(child, stack + 4096, 0x301000, G_P | G_RW | G_US, false);
	g_map(other, stack, 0x310000, G_P | G_RW | G_US, false);
	memcpy(g_ram + 0x200100, zeros, sizeof(zeros));
	REQUIRE(!vt_init(&t), "a token drawn");
	g_sp = stack;
	CHECK(!vt_trusted(&t, &g_mem, prog, g_rsp, NULL, NULL), "before the announcement nothing is trusted");

	REQUIRE(!vt_announce(&t, &g_mem, prog, 0x600100), "the init's announcement is taken");
	g_token(prog, 0x600100, tok);
	CHECK(strspn(tok + sizeof(RSYS_VM_TOKEN_ENV) - 1, "0123456789abcdef") == RSYS_VM_TOKEN_LEN &&
	      memcmp(tok, zeros, VT_NEEDLE_LEN), "the zeros became the token: %s", tok);
	CHECK(vt_trusted(&t, &g_mem, prog, g_rsp, NULL, NULL), "the announcing process is trusted");
	CHECK(vt_announce(&t, &g_mem, other, 0x600100) == -EALREADY,
	      "attack: a second write of the trust port is refused");

	/* a fork child: the token is in its copy of the stack, across a page boundary */
	memcpy(g_ram + 0x300ff0, tok, VT_NEEDLE_LEN);
	memcpy(g_ram + 0x301000, tok + 16, VT_NEEDLE_LEN - 16);
	g_sp = stack + 0x100;
	found = vt_trusted(&t, &g_mem, child, g_rsp, NULL, &fresh);
	CHECK(found == stack + 0xff0 && fresh,
	      "a process whose stack holds the token (fork, exec with the environment) is trusted, found at %#llx",
	      (unsigned long long)found);
	found = vt_trusted(&t, &g_mem, child, g_rsp, NULL, &fresh);
	CHECK(found == stack + 0xff0 && !fresh,
	      "... and at its next call it is known there (not found anew: a fork's child takes its table once)");
	g_sp = stack;
	CHECK(!vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL), "a process without the token is not");
	memcpy(g_ram + 0x310080, zeros, sizeof(zeros));
	vt_forget(&t, other);
	CHECK(!vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL),
	      "attack: a process with a made-up RSYS_VM_TOKEN is not trusted");
	memcpy(g_ram + 0x310080, tok, VT_NEEDLE_LEN);
	CHECK(!vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL),
	      "a process remembered untrusted is not searched again while its top table is the same");
	g_map(other, 0x10000000000ULL, 0x320000, G_P | G_RW | G_US, false);
	CHECK(vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL),
	      "control: once its top table changed (root reused), the token is found");
	memset(g_ram + 0x300ff0, 0, 16);
	CHECK(!vt_trusted(&t, &g_mem, child, g_rsp, NULL, NULL),
	      "attack: a trusted root that no longer holds the token (reused) is not trusted");

	/*
	 * A fresh exec: pointers at the stack pointer, then a page exec never
	 * touched (arch_align_stack's random gap, up to 8 KiB), then the
	 * strings with the token: the hole must not end the search.
	 */
	vt_forget(&t, child);
	memset(g_ram + 0x300000, 0, 0x2000);
	g_map(child, stack + 0x2000, 0x302000, G_P | G_RW | G_US, false);
	g_map(child, stack + 4096, 0, 0, false);	/* not present */
	memcpy(g_ram + 0x302100, tok, VT_NEEDLE_LEN);
	g_sp = stack + 0x800;
	CHECK(vt_trusted(&t, &g_mem, child, g_rsp, NULL, NULL),
	      "a fresh exec whose strings lie above an untouched stack page is trusted");

	/* untrusted processes end unseen once untrapped: their roots are forgotten */
	memcpy(g_ram + 0x310080, zeros, sizeof(zeros));
	vt_forget(&t, other);
	CHECK(!vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL), "a process without the token is not");
	memcpy(g_ram + 0x310080, tok, VT_NEEDLE_LEN);	/* a trusted process has the root now */
	CHECK(!vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL),
	      "control: remembered untrusted, the root's new trusted process is not seen");
	vt_forget_untrusted(&t);
	CHECK(vt_trusted(&t, &g_mem, other, g_rsp, NULL, NULL),
	      "after vt_forget_untrusted the root is searched again: trusted");
	CHECK(vt_trusted(&t, &g_mem, prog, g_rsp, NULL, NULL),
	      "vt_forget_untrusted keeps the trusted ones");

	REQUIRE(!vt_init(&t2), "a second VM's token");
	g_ram[0x200100 + sizeof(RSYS_VM_TOKEN_ENV) - 1] = '1';
	CHECK(vt_announce(&t2, &g_mem, prog, 0x600100) == -EINVAL,
	      "an announcement whose string is not RSYS_VM_TOKEN=0...0 is refused");
	CHECK(!vt_trusted(&t2, &g_mem, prog, g_rsp, NULL, NULL), "... and nothing is trusted");
}

int main(void)
{
	return ktap_run();
}
