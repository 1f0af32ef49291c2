// SPDX-License-Identifier: GPL-2.0
/*
 * KVM-tier compute side: rsys's own VMM. One vCPU on /dev/kvm with the
 * in-kernel interrupt controllers and PIT, a Linux guest booted by the
 * 32-bit boot protocol (guest/linuxboot.c), COM1 as its console
 * (guest/uart.c), and an exit port on which the guest's init reports the
 * program's wait status. Every other port reads as nothing there.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <rsys/vm.h>

#include "linuxboot.h"
#include "log.h"
#include "uart.h"
#include "vmm.h"

#define VMM_FILE_MAX		(512u << 20)	/* a kernel or an initrd */
#define VMM_TSS_ADDR		0xfffbd000	/* Intel's real-mode TSS and identity map, above RAM */
#define VMM_IDENTITY_MAP_ADDR	0xfffbc000ULL
#define VMM_CPUID_MAX		256
#define VMM_RESET_PORT		0x64		/* the keyboard controller: 0xfe pulses reset */
#define VMM_RESET_CMD		0xfe

#define VMM_CMDLINE		"console=ttyS0 8250.nr_uarts=1 panic=-1 reboot=k rdinit=/init"
#define VMM_CMDLINE_QUIET	" quiet loglevel=1"

struct vm {
	int kvm, fd, vcpu;
	struct kvm_run *run;
	size_t run_size;
	uint8_t *mem;
	uint64_t mem_size;
	struct uart com1;
	bool irq4;		/* COM1's line as last told to KVM */
	bool reported;		/* the guest's init wrote the exit port */
	int status;		/* ... this wait status */
};

static volatile sig_atomic_t vmm_stop_sig;
static struct kvm_run *volatile vmm_run_page;

/* The next KVM_RUN returns at once (KVM_CAP_IMMEDIATE_EXIT): no window between the check and the call. */
static void vmm_on_signal(int sig)
{
	if (!vmm_stop_sig)
		vmm_stop_sig = sig;
	if (vmm_run_page)
		vmm_run_page->immediate_exit = 1;
}

/* A whole file into memory: its length with *buf malloc'ed, or -errno after a message. */
static long read_file(const char *what, const char *path, uint8_t **buf)
{
	struct stat st;
	size_t off = 0;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		pr_err("cannot open the %s %s: %s\n", what, path, err_str(errno));
		return -errno;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size <= 0 ||
	    (unsigned long long)st.st_size > VMM_FILE_MAX) {
		pr_err("the %s %s is not a regular file of 1 byte to %u MiB\n", what, path,
		       VMM_FILE_MAX >> 20);
		close(fd);
		return -EINVAL;
	}
	*buf = malloc((size_t)st.st_size);
	if (!*buf) {
		close(fd);
		return -ENOMEM;
	}
	while (off < (size_t)st.st_size) {
		n = read(fd, *buf + off, (size_t)st.st_size - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			pr_err("cannot read the %s %s: %s\n", what, path,
			       n < 0 ? err_str(errno) : "it shrank");
			free(*buf);
			close(fd);
			return n < 0 ? -errno : -EIO;
		}
		off += (size_t)n;
	}
	close(fd);
	return (long)off;
}

/* The initrd the user gave, then the archive with the program's argv (the kernel unpacks both). */
static long make_initrd(const char *path, char *const *argv, uint8_t **out)
{
	uint8_t *img, *args, *all;
	long len, alen;
	size_t pad;

	len = read_file("initrd", path, &img);
	if (len < 0)
		return len;
	alen = lb_argv_cpio(argv, &args);
	if (alen < 0) {
		pr_err("the program's arguments take more than %u bytes\n", RSYS_VM_ARGV_MAX);
		free(img);
		return alen;
	}
	pad = (4 - (size_t)len % 4) % 4;	/* archives start 4-byte aligned; NULs between are skipped */
	all = malloc((size_t)len + pad + (size_t)alen);
	if (all) {
		memcpy(all, img, (size_t)len);
		memset(all + len, 0, pad);
		memcpy(all + len + pad, args, (size_t)alen);
	}
	free(img);
	free(args);
	if (!all)
		return -ENOMEM;
	*out = all;
	return len + (long)pad + alen;
}

static int kvm_fail(const char *what)
{
	int err = -errno;

	pr_err("%s: %s\n", what, err_str(err));
	return err;
}

static int vm_create(struct vm *vm, uint64_t mem_size)
{
	struct kvm_pit_config pit = { .flags = 0 };	/* port 0x61 too: Linux calibrates the TSC on PIT channel 2 */
	struct kvm_userspace_memory_region region;
	uint64_t ident = VMM_IDENTITY_MAP_ADDR;

	/* A PVM host's KVM (kvm_pvm alone) runs only PVM guest kernels: ours would hang or fail at boot. */
	if (!access("/sys/module/kvm_pvm", F_OK) && access("/sys/module/kvm_amd", F_OK) &&
	    access("/sys/module/kvm_intel", F_OK)) {
		pr_err("/dev/kvm is PVM's (kvm_pvm), which boots only PVM guest kernels; rsys-load vm needs kvm_amd or kvm_intel (or the KVM tier's kernel under QEMU, see make vmtest)\n");
		return -EOPNOTSUPP;
	}
	vm->kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (vm->kvm < 0) {
		int err = -errno;

		pr_err("cannot open /dev/kvm: %s (rsys-load vm needs KVM: a host with virtualization, or the KVM tier's kernel under QEMU, see make vmtest)\n",
		       err_str(err));
		return err;
	}
	if (ioctl(vm->kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION) {
		pr_err("/dev/kvm speaks another KVM API than version %d\n", KVM_API_VERSION);
		return -EINVAL;
	}
	if (ioctl(vm->kvm, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP) <= 0 ||
	    ioctl(vm->kvm, KVM_CHECK_EXTENSION, KVM_CAP_PIT2) <= 0) {
		pr_err("this KVM has no in-kernel interrupt controller or PIT (KVM_CAP_IRQCHIP, KVM_CAP_PIT2)\n");
		return -EOPNOTSUPP;
	}
	do
		vm->fd = ioctl(vm->kvm, KVM_CREATE_VM, 0);
	while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0)
		return kvm_fail("KVM_CREATE_VM");
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, VMM_TSS_ADDR) ||
	    ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &ident))
		return kvm_fail("KVM_SET_TSS_ADDR/KVM_SET_IDENTITY_MAP_ADDR");
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0))
		return kvm_fail("KVM_CREATE_IRQCHIP");
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit))
		return kvm_fail("KVM_CREATE_PIT2");

	vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return kvm_fail("cannot map the guest's memory");
	}
	vm->mem_size = mem_size;
	region = (struct kvm_userspace_memory_region){
		.slot = 0,
		.guest_phys_addr = 0,
		.memory_size = mem_size,
		.userspace_addr = (uintptr_t)vm->mem,
	};
	if (ioctl(vm->fd, KVM_SET_USER_MEMORY_REGION, &region))
		return kvm_fail("KVM_SET_USER_MEMORY_REGION");
	return 0;
}

/* What the host's KVM can give a guest, given: the guest sees KVM's paravirt clock and the host's features. */
static int vcpu_set_cpuid(struct vm *vm)
{
	struct kvm_cpuid2 *c;
	uint32_t i;
	int ret;

	c = calloc(1, sizeof(*c) + VMM_CPUID_MAX * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = VMM_CPUID_MAX;
	ret = ioctl(vm->kvm, KVM_GET_SUPPORTED_CPUID, c);
	/* "Running on a hypervisor": without it Linux never looks at KVM's leaves (kvm-clock). */
	for (i = 0; !ret && i < c->nent; i++)
		if (c->entries[i].function == 1)
			c->entries[i].ecx |= 1u << 31;
	if (!ret)
		ret = ioctl(vm->vcpu, KVM_SET_CPUID2, c);
	free(c);
	return ret ? kvm_fail("KVM_GET_SUPPORTED_CPUID/KVM_SET_CPUID2") : 0;
}

static void flat_segment(struct kvm_segment *s, uint16_t selector, uint8_t type)
{
	*s = (struct kvm_segment){
		.base = 0, .limit = 0xffffffff, .selector = selector, .type = type,
		.present = 1, .dpl = 0, .db = 1, .s = 1, .l = 0, .g = 1,
	};
}

/* 32-bit protected mode, paging off, flat __BOOT_CS/__BOOT_DS, %esi = boot_params (boot.rst). */
static int vcpu_boot_state(struct vm *vm, const struct lb_entry *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = e->rip, .rsi = e->rsi, .rflags = 0x2 };

	if (ioctl(vm->vcpu, KVM_GET_SREGS, &sregs))
		return kvm_fail("KVM_GET_SREGS");
	flat_segment(&sregs.cs, LB_BOOT_CS, 0xb);
	flat_segment(&sregs.ds, LB_BOOT_DS, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = e->gdt;
	sregs.gdt.limit = e->gdt_limit;
	sregs.cr0 = (sregs.cr0 | 0x1) & ~0x80000000ULL;	/* PE on, PG off */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(vm->vcpu, KVM_SET_SREGS, &sregs))
		return kvm_fail("KVM_SET_SREGS");
	if (ioctl(vm->vcpu, KVM_SET_REGS, &regs))
		return kvm_fail("KVM_SET_REGS");
	return 0;
}

static int vcpu_create(struct vm *vm, const struct lb_entry *e)
{
	int size, err;

	vm->vcpu = ioctl(vm->fd, KVM_CREATE_VCPU, 0);
	if (vm->vcpu < 0)
		return kvm_fail("KVM_CREATE_VCPU");
	size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return kvm_fail("KVM_GET_VCPU_MMAP_SIZE");
	vm->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->vcpu, 0);
	if (vm->run == MAP_FAILED) {
		vm->run = NULL;
		return kvm_fail("cannot map the vCPU's kvm_run");
	}
	vm->run_size = (size_t)size;
	vmm_run_page = vm->run;
	err = vcpu_set_cpuid(vm);
	return err ? err : vcpu_boot_state(vm, e);
}

static int set_irq4(struct vm *vm, bool level)
{
	struct kvm_irq_level irq = { .irq = UART_COM1_IRQ, .level = level };

	if (level == vm->irq4)
		return 0;
	vm->irq4 = level;
	return ioctl(vm->fd, KVM_IRQ_LINE, &irq) ? kvm_fail("KVM_IRQ_LINE") : 0;
}

/* One port access of the guest: 1 once the VM is to end, 0 to go on, -errno. */
static int vm_port(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned int size)
{
	if (port >= UART_COM1_BASE && port < UART_COM1_BASE + UART_NR_REGS && size == 1) {
		int err = set_irq4(vm, uart_access(&vm->com1, port - UART_COM1_BASE, out, data));

		if (!err && uart_flush_due(&vm->com1))
			uart_flush(&vm->com1, STDOUT_FILENO);
		return err;
	}
	if (port == RSYS_VM_EXIT_PORT && out && size == 4) {
		memcpy(&vm->status, data, sizeof(vm->status));
		vm->reported = true;
		return 1;
	}
	if (port == VMM_RESET_PORT && out && size == 1 && *data == VMM_RESET_CMD)
		return 1;
	if (!out)
		memset(data, 0xff, size);	/* nothing there: the bus floats high */
	return 0;
}

static int vm_exit_io(struct vm *vm)
{
	struct kvm_run *r = vm->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	uint32_t i;
	int ret;

	if (r->io.data_offset + (uint64_t)r->io.count * r->io.size > vm->run_size)
		return -EFAULT;
	for (i = 0; i < r->io.count; i++, data += r->io.size) {
		ret = vm_port(vm, r->io.port, r->io.direction == KVM_EXIT_IO_OUT, data, r->io.size);
		if (ret)
			return ret;
	}
	return 0;
}

static void vm_internal_error(struct vm *vm)
{
	struct kvm_run *r = vm->run;
	struct kvm_regs regs = { 0 };
	struct kvm_sregs sregs = { 0 };
	uint32_t i;

	ioctl(vm->vcpu, KVM_GET_REGS, &regs);
	ioctl(vm->vcpu, KVM_GET_SREGS, &sregs);
	pr_err("KVM internal error %u in the guest at rip %#llx (cs %#x, cr0 %#llx, efer %#llx)\n",
	       r->internal.suberror, (unsigned long long)regs.rip, sregs.cs.selector,
	       (unsigned long long)sregs.cr0, (unsigned long long)sregs.efer);
	for (i = 0; i < r->internal.ndata && i < 16; i++)
		pr_info("  internal data[%u] = %#llx\n", i, (unsigned long long)r->internal.data[i]);
}

/* KVM_RUN until the guest reports or stops: 0 once it reported, -errno after a message. */
static int vm_loop(struct vm *vm)
{
	struct kvm_run *r = vm->run;
	int ret;

	for (;;) {
		if (vmm_stop_sig) {
			pr_err("stopped by signal %d before the guest's program finished\n",
			       (int)vmm_stop_sig);
			return -EINTR;
		}
		if (ioctl(vm->vcpu, KVM_RUN, 0)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return kvm_fail("KVM_RUN");
		}
		switch (r->exit_reason) {
		case KVM_EXIT_IO:
			ret = vm_exit_io(vm);
			if (ret < 0)
				return ret;
			if (ret > 0)
				goto stopped;
			break;
		case KVM_EXIT_MMIO:
			if (!r->mmio.is_write)
				memset(r->mmio.data, 0, sizeof(r->mmio.data));
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_SYSTEM_EVENT:
			goto stopped;
		case KVM_EXIT_FAIL_ENTRY:
			pr_err("KVM cannot enter the guest (hardware reason %#llx)\n",
			       (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
			return -EIO;
		case KVM_EXIT_INTERNAL_ERROR:
			vm_internal_error(vm);
			return -EIO;
		default:
			pr_err("unexpected KVM exit %u from the guest\n", r->exit_reason);
			return -EIO;
		}
	}
stopped:
	if (vm->reported)
		return 0;
	pr_err("the guest stopped before its init reported the program's status (a kernel panic, or no rsys init: see make guest-image; -v shows the kernel's messages)\n");
	return -EIO;
}

static void vm_destroy(struct vm *vm)
{
	vmm_run_page = NULL;
	if (vm->run)
		munmap(vm->run, vm->run_size);
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
	if (vm->vcpu >= 0)
		close(vm->vcpu);
	if (vm->fd >= 0)
		close(vm->fd);
	if (vm->kvm >= 0)
		close(vm->kvm);
}

static int vmm_boot(struct vm *vm, const struct vmm_opts *o)
{
	uint8_t *kernel = NULL, *initrd = NULL;
	char cmdline[LB_CMDLINE_MAX];
	long klen, ilen;
	struct lb_entry e;
	int err, n;

	n = snprintf(cmdline, sizeof(cmdline), "%s%s%s%s", VMM_CMDLINE,
		     o->kernel_log ? "" : VMM_CMDLINE_QUIET, o->append ? " " : "",
		     o->append ? o->append : "");
	if (n < 0 || (size_t)n >= sizeof(cmdline)) {
		pr_err("the kernel command line (--append) is too long\n");
		return -E2BIG;
	}
	klen = read_file("kernel", o->kernel, &kernel);
	if (klen < 0)
		return (int)klen;
	err = lb_check(kernel, (size_t)klen);
	if (err) {
		free(kernel);
		return err;
	}
	ilen = make_initrd(o->initrd, o->argv, &initrd);
	if (ilen < 0) {
		free(kernel);
		return (int)ilen;
	}
	err = vm_create(vm, (uint64_t)o->mem_mib << 20);
	if (!err)
		err = lb_load(vm->mem, vm->mem_size, kernel, (size_t)klen, cmdline, initrd,
			      (size_t)ilen, &e);
	free(kernel);
	free(initrd);
	if (!err)
		err = vcpu_create(vm, &e);
	if (!err)
		pr_info("guest: %u MiB, kernel %s (boot protocol %u.%02u), initrd %ld KiB at %#llx, \"%s\"\n",
			o->mem_mib, o->kernel, e.version >> 8, e.version & 0xff, ilen >> 10,
			(unsigned long long)e.initrd, cmdline);
	return err;
}

int vmm_run(const struct vmm_opts *o)
{
	struct sigaction sa = { .sa_handler = vmm_on_signal };
	struct vm vm = { .kvm = -1, .fd = -1, .vcpu = -1 };
	int err;

	if (o->mem_mib < VMM_MEM_MIN_MIB || o->mem_mib > VMM_MEM_MAX_MIB) {
		pr_err("--mem %u: the guest takes %u to %u MiB\n", o->mem_mib, VMM_MEM_MIN_MIB,
		       VMM_MEM_MAX_MIB);
		return -EINVAL;
	}
	/* No SA_RESTART: a signal ends KVM_RUN with EINTR and the loop stops the VM. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	err = vmm_boot(&vm, o);
	if (!err)
		err = vm_loop(&vm);
	uart_flush(&vm.com1, STDOUT_FILENO);
	vm_destroy(&vm);
	if (err == -EINTR && vmm_stop_sig)
		return vmm_stop_sig;	/* as a wait status: ended by that signal */
	return err ? err : vm.status;
}
