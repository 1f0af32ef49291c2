// SPDX-License-Identifier: GPL-2.0
/*
 * KVM-tier compute side: rsys's own VMM. vCPUs on /dev/kvm (one thread
 * each, the boot vCPU on the caller's) with the in-kernel interrupt
 * controllers and PIT, an MP table naming them, a Linux guest booted by
 * the 32-bit boot protocol (guest/linuxboot.c), COM1 as its console
 * (guest/uart.c), and an exit port on which the guest's init reports the
 * program's wait status. Every other port reads as nothing there.
 *
 * With --syscalls the VM traps its system calls (kvm-patch/'s
 * KVM_CAP_X86_SYSCALL_TRAP): each exits to the vCPU's thread, which asks
 * guest/vmtrust.c whether the calling process is trusted; the guest kernel
 * runs every call, and a trusted process's calls are printed with their
 * results (an exit on their SYSRET). An untrusted process's address space
 * stops being trapped after its first call (KVM_X86_SYSCALL_FLAG_UNTRAP,
 * unless --trap-all); since a page-table root that an untrusted process
 * left may be a new trusted process's, every address space is trapped
 * again (KVM_X86_SYSCALL_RETRAP) when the program is announced and when
 * a trusted process forks or executes, at the call and at the next
 * trusted call. The root a trusted process might still get untrapped,
 * in that window, only runs its calls in the guest kernel: no more than
 * an untrusted process may.
 *
 * vm->lock covers COM1, its interrupt line and the outcome; the first vCPU
 * to stop (exit port, reset, error, signal) sets vm->stopping and kicks the
 * others out of KVM_RUN with immediate_exit and SIGUSR1.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/kvm.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <termios.h>

#include <rsys/kvm_syscall.h>
#include <rsys/syscalls.h>
#include <rsys/vm.h>

#include "gmem.h"
#include "kvmbpf.h"
#include "kvmfront.h"
#include "remote.h"
#include "supervisor.h"
#include "tls.h"
#include "linuxboot.h"
#include "log.h"
#include "uart.h"
#include "vmm.h"
#include "vmtrust.h"

#define VMM_FILE_MAX		(512u << 20)	/* a kernel or an initrd */
#define VMM_TSS_ADDR		0xfffbd000	/* Intel's real-mode TSS and identity map, above RAM */
#define VMM_IDENTITY_MAP_ADDR	0xfffbc000ULL
#define VMM_CPUID_MAX		256
#define VMM_CR4_LA57		(1ULL << 12)
#define VMM_RESET_PORT		0x64		/* the keyboard controller: 0xfe pulses reset */
#define VMM_RESET_CMD		0xfe
#define VMM_ESCAPE		0x1d		/* Ctrl-] on a terminal: stop the VM, as INT would */
#define VMM_VEOF		0x04		/* the guest tty's end of file, twice for end of input */

#define VMM_CMDLINE		"console=ttyS0 8250.nr_uarts=1 panic=-1 reboot=k rdinit=/init"
#define VMM_CMDLINE_QUIET	" quiet loglevel=1"

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned int id;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool started;		/* its thread runs (the boot vCPU's: the caller's) */
	int err;		/* how its loop ended */
	struct kvm_x86_syscall call;	/* --syscalls: a trusted call waiting for its return */
	bool call_armed;
	struct kf_vcpu kf;		/* --delegate: what the core's front end has in flight */
};

struct vm {
	int kvm, fd;
	unsigned int ncpus;
	struct vcpu vcpus[LB_CPUS_MAX];
	size_t run_size;
	uint8_t *mem;
	uint64_t mem_size;
	pthread_mutex_t lock;
	struct uart com1;
	bool irq4;		/* COM1's line as last told to KVM */
	bool reported;		/* the guest's init wrote the exit port */
	int status;		/* ... this wait status */
	bool stopping;		/* a vCPU stopped: every loop ends */
	bool input_tty;		/* -i with a terminal: raw host input, Ctrl-] stops */
	bool input_ready;	/* the guest's init said its console takes input */
	bool syscalls;		/* KVM_CAP_X86_SYSCALL_TRAP on (--syscalls or --delegate) */
	bool print;		/* the trusted calls are printed (--syscalls) */
	bool front;		/* trusted calls go to the core (kvmfront.c: --delegate) */
	bool untrap;		/* untrusted address spaces are untrapped (KVM_X86_SYSCALL_FLAG_UNTRAP) */
	bool retrap_due;	/* a trusted fork or exec: retrap at the next trusted call (atomic) */
	uint64_t trapped;	/* calls trapped, of which trusted (atomic) */
	uint64_t trapped_trusted;
	struct gmem gm;		/* guest RAM, for reading processes' memory */
	struct vt trust;	/* which processes are trusted */
};

static volatile sig_atomic_t vmm_stop_sig;
static struct kvm_run *volatile vmm_run_page;	/* the boot vCPU's: INT/TERM/HUP reach its thread */

/* The next KVM_RUN returns at once (KVM_CAP_IMMEDIATE_EXIT): no window between the check and the call. */
static void vmm_on_signal(int sig)
{
	if (!vmm_stop_sig)
		vmm_stop_sig = sig;
	if (vmm_run_page)
		vmm_run_page->immediate_exit = 1;
}

/* SIGUSR1 only interrupts KVM_RUN of a vCPU thread being stopped. */
static void vmm_on_kick(int sig)
{
	(void)sig;
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
static long make_initrd(const char *path, char *const *argv, const char *console, bool trust,
			uint8_t **out)
{
	uint8_t *img, *args, *all;
	long len, alen;
	size_t pad;

	len = read_file("initrd", path, &img);
	if (len < 0)
		return len;
	alen = lb_argv_cpio(argv, console, trust, &args);
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
	if (vm->syscalls) {
		struct kvm_enable_cap cap = { .cap = KVM_CAP_X86_SYSCALL_TRAP };

		int flags = ioctl(vm->fd, KVM_CHECK_EXTENSION, KVM_CAP_X86_SYSCALL_TRAP);

		if (flags <= 0) {
			pr_err("this KVM cannot trap the guest's system calls (KVM_CAP_X86_SYSCALL_TRAP is kvm-patch/'s: the KVM tier's kernel, see make vmtest)\n");
			return -EOPNOTSUPP;
		}
		/* The answer flags it knows (patches 1-8 said 1): UNTRAP is patch 9's. */
		if (!(flags & KVM_X86_SYSCALL_FLAG_UNTRAP))
			vm->untrap = false;
		if (ioctl(vm->fd, KVM_ENABLE_CAP, &cap))
			return kvm_fail("KVM_ENABLE_CAP(KVM_CAP_X86_SYSCALL_TRAP)");
		if (vt_init(&vm->trust)) {
			pr_err("cannot draw the VM's secret token (getrandom)\n");
			return -EIO;
		}
	}

	vm->mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (vm->mem == MAP_FAILED) {
		vm->mem = NULL;
		return kvm_fail("cannot map the guest's memory");
	}
	vm->mem_size = mem_size;
	vm->gm = (struct gmem){ .base = vm->mem, .size = mem_size };
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
static int vcpu_set_cpuid(struct vm *vm, struct vcpu *v)
{
	struct kvm_cpuid2 *c;
	uint32_t i;
	int ret;

	c = calloc(1, sizeof(*c) + VMM_CPUID_MAX * sizeof(c->entries[0]));
	if (!c)
		return -ENOMEM;
	c->nent = VMM_CPUID_MAX;
	ret = ioctl(vm->kvm, KVM_GET_SUPPORTED_CPUID, c);
	for (i = 0; !ret && i < c->nent; i++) {
		struct kvm_cpuid_entry2 *l = &c->entries[i];

		if (l->function == 1) {
			/* "Running on a hypervisor": without it Linux never looks at KVM's leaves (kvm-clock). */
			l->ecx |= 1u << 31;
			l->ebx = (l->ebx & 0x00ffffff) | v->id << 24;	/* initial APIC id */
		}
		if (l->function == 0xb || l->function == 0x1f)
			l->edx = v->id;				/* x2APIC id */
	}
	if (!ret)
		ret = ioctl(v->fd, KVM_SET_CPUID2, c);
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
static int vcpu_boot_state(struct vcpu *v, const struct lb_entry *e)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = { .rip = e->rip, .rsi = e->rsi, .rflags = 0x2 };

	if (ioctl(v->fd, KVM_GET_SREGS, &sregs))
		return kvm_fail("KVM_GET_SREGS");
	flat_segment(&sregs.cs, LB_BOOT_CS, 0xb);
	flat_segment(&sregs.ds, LB_BOOT_DS, 0x3);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;
	sregs.gdt.base = e->gdt;
	sregs.gdt.limit = e->gdt_limit;
	sregs.cr0 = (sregs.cr0 | 0x1) & ~0x80000000ULL;	/* PE on, PG off */
	sregs.cr4 = 0;
	sregs.efer = 0;
	if (ioctl(v->fd, KVM_SET_SREGS, &sregs))
		return kvm_fail("KVM_SET_SREGS");
	if (ioctl(v->fd, KVM_SET_REGS, &regs))
		return kvm_fail("KVM_SET_REGS");
	return 0;
}

/* vCPU @id; the boot vCPU (0) gets the boot protocol's state, the others wait for INIT/SIPI in KVM. */
static int vcpu_create(struct vm *vm, unsigned int id, const struct lb_entry *e)
{
	struct vcpu *v = &vm->vcpus[id];
	int size, err;

	v->vm = vm;
	v->id = id;
	v->kf.pend.inst_fd = -1;
	v->fd = ioctl(vm->fd, KVM_CREATE_VCPU, id);
	if (v->fd < 0)
		return kvm_fail("KVM_CREATE_VCPU");
	size = ioctl(vm->kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
	if (size < (int)sizeof(struct kvm_run))
		return kvm_fail("KVM_GET_VCPU_MMAP_SIZE");
	v->run = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (v->run == MAP_FAILED) {
		v->run = NULL;
		return kvm_fail("cannot map the vCPU's kvm_run");
	}
	vm->run_size = (size_t)size;
	if (id == 0)
		vmm_run_page = v->run;
	err = vcpu_set_cpuid(vm, v);
	return err || id ? err : vcpu_boot_state(v, e);
}

static int set_irq4(struct vm *vm, bool level)
{
	struct kvm_irq_level irq = { .irq = UART_COM1_IRQ, .level = level };

	if (level == vm->irq4)
		return 0;
	vm->irq4 = level;
	return ioctl(vm->fd, KVM_IRQ_LINE, &irq) ? kvm_fail("KVM_IRQ_LINE") : 0;
}

/* One port access of the guest, under vm->lock: 1 once the VM is to end, 0 to go on, -errno. */
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
	if (port == RSYS_VM_INPUT_PORT && out && size == 1) {
		__atomic_store_n(&vm->input_ready, true, __ATOMIC_RELEASE);
		return 0;
	}
	if (port == VMM_RESET_PORT && out && size == 1 && *data == VMM_RESET_CMD)
		return 1;
	if (!out)
		memset(data, 0xff, size);	/* nothing there: the bus floats high */
	return 0;
}

/*
 * Trap every address space again: one that an untrusted process left
 * untrapped may be a trusted process's now, and so may a root remembered
 * untrusted (its process ended unseen). Should KVM refuse, nothing more
 * is untrapped.
 */
static void vm_retrap(struct vm *vm)
{
	if (!__atomic_load_n(&vm->untrap, __ATOMIC_ACQUIRE))
		return;
	vt_forget_untrusted(&vm->trust);
	if (ioctl(vm->fd, KVM_X86_SYSCALL_RETRAP, 0)) {
		__atomic_store_n(&vm->untrap, false, __ATOMIC_RELEASE);
		pr_warn("KVM_X86_SYSCALL_RETRAP: %s; every process's calls are trapped from now on\n",
			err_str(-errno));
	}
}

/* The guest's init names the program's process (RSYS_VM_TRUST_PORT, %rsi: its token string). */
static void vm_trust_announce(struct vcpu *v)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int err;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) || ioctl(v->fd, KVM_GET_SREGS, &sregs)) {
		pr_warn("cannot read the registers of vCPU %u: no process is trusted\n", v->id);
		return;
	}
	/* the guest's paging is set for good by now: 5 levels with CR4.LA57 */
	if (!v->vm->gm.levels)
		v->vm->gm.levels = sregs.cr4 & VMM_CR4_LA57 ? 5 : 4;
	err = vt_announce(&v->vm->trust, &v->vm->gm, sregs.cr3, regs.rsi);
	if (!err)
		vm_retrap(v->vm);	/* its root may have been untrapped by a dead process */
	if (err == -EALREADY)
		pr_warn_few("a guest process wrote the trust port again: refused\n");
	else if (err)
		pr_warn("the guest's init announced the program without a token string to fill (%s): no process is trusted\n",
			err_str(err));
}

static uint64_t vcpu_rsp(void *arg)
{
	struct vcpu *v = arg;
	struct kvm_regs regs;

	return ioctl(v->fd, KVM_GET_REGS, &regs) ? 0 : regs.rsp;
}

/* A call's name as the syscall table knows it, else its number. */
static const char *call_name(uint64_t nr, char *buf, size_t len)
{
#define VMM_NR_NAME(name, n, flags)	case n: return #name;
	switch (nr) {
	RSYS_SYSCALLS(VMM_NR_NAME)
	}
#undef VMM_NR_NAME
	snprintf(buf, len, "syscall_%llu", (unsigned long long)nr);
	return buf;
}

/* i386 numbers of the calls that end or make an address space (a 32-bit call, COMPAT). */
#define VMM_NR32_FORK		2
#define VMM_NR32_EXECVE		11
#define VMM_NR32_CLONE		120
#define VMM_NR32_VFORK		190
#define VMM_NR32_EXIT_GROUP	252
#define VMM_NR32_EXECVEAT	358
#define VMM_NR32_CLONE3		435
#define VMM_CLONE_VM		0x100

/* Is call @nr an exec (execve, execveat)? */
static bool call_execs(uint64_t nr, bool compat)
{
	if (compat)
		return nr == VMM_NR32_EXECVE || nr == VMM_NR32_EXECVEAT;
	return nr == RSYS_NR_execve || nr == RSYS_NR_execveat;
}

/* Does call @nr end the caller's address space when it works (exec, exit_group)? */
static bool call_ends_mm(uint64_t nr, bool compat)
{
	return call_execs(nr, compat) ||
	       nr == (compat ? VMM_NR32_EXIT_GROUP : RSYS_NR_exit_group);
}

/* Does call @nr make a new address space when it works (fork, clone without CLONE_VM, exec)? */
static bool call_makes_mm(uint64_t nr, const __u64 *args, bool compat)
{
	if (call_execs(nr, compat))
		return true;
	if (compat)
		return nr == VMM_NR32_FORK || nr == VMM_NR32_VFORK || nr == VMM_NR32_CLONE3 ||
		       (nr == VMM_NR32_CLONE && !(args[0] & VMM_CLONE_VM));
	return nr == RSYS_NR_fork || nr == RSYS_NR_vfork || nr == RSYS_NR_clone3 ||
	       (nr == RSYS_NR_clone && !(args[0] & VMM_CLONE_VM));
}

/*
 * One line per trusted call: its name, arguments (an execve's path) and
 * result (NULL: not seen). A 32-bit call (SYSCALL in compatibility mode,
 * or INT $0x80) is named by its i386 number: "i386 #20", "int80 #20".
 */
static void print_call(struct vcpu *v, const struct kvm_x86_syscall *sc, const __s64 *ret)
{
	char name[32], first[64], path[41] = "", res[96] = "?";
	const __u64 *a = sc->args;
	const char *call;
	size_t n;

	if (sc->flags & KVM_X86_SYSCALL_FLAG_COMPAT) {
		snprintf(name, sizeof(name), "%s #%llu",
			 sc->flags & KVM_X86_SYSCALL_FLAG_INT80 ? "int80" : "i386",
			 (unsigned long long)sc->nr);
		call = name;
	} else {
		call = call_name(sc->nr, name, sizeof(name));
	}
	n = !(sc->flags & KVM_X86_SYSCALL_FLAG_COMPAT) && sc->nr == RSYS_NR_execve ?
	    gmem_read_upto(&v->vm->gm, sc->cr3, a[0], path, sizeof(path) - 1) : 0;
	path[n] = '\0';
	if (n && strlen(path) < n)
		snprintf(first, sizeof(first), "\"%s\"", path);
	else if (n)
		snprintf(first, sizeof(first), "\"%s\"...", path);
	else
		snprintf(first, sizeof(first), "%#llx", (unsigned long long)a[0]);
	if (ret && *ret < 0 && *ret >= -4095)
		snprintf(res, sizeof(res), "%lld %s", (long long)*ret, err_str((int)*ret));
	else if (ret)
		snprintf(res, sizeof(res), "%lld", (long long)*ret);
	fprintf(stderr, "%s: vm: [mm %#llx] %s(%s, %#llx, %#llx, %#llx, %#llx, %#llx) = %s\n",
		log_prog, (unsigned long long)gmem_root(sc->cr3), call,
		first, (unsigned long long)a[1], (unsigned long long)a[2], (unsigned long long)a[3],
		(unsigned long long)a[4], (unsigned long long)a[5], res);
}

/* Calls that do not come back by SYSRET when they work. */
static bool call_returns(uint64_t nr)
{
	return nr != RSYS_NR_execve && nr != RSYS_NR_execveat && nr != RSYS_NR_exit &&
	       nr != RSYS_NR_exit_group && nr != RSYS_NR_rt_sigreturn;
}

/*
 * A trapped system call (KVM_EXIT_X86_SYSCALL), or its return. With
 * --delegate a trusted process's socket and fd-table calls go to the core
 * (kvmfront.c), which answers them or lets the guest kernel run them;
 * every other call runs in the guest kernel. With --syscalls a trusted
 * process's calls are printed with their results (an exit on their SYSRET;
 * not for a 32-bit call: the return hook is for 64-bit ones). Answers go
 * back in the exit's flags on the next KVM_RUN.
 */
static int vm_exit_syscall(struct vcpu *v)
{
	struct kvm_x86_syscall *sc = kvm_run_syscall(v->run);
	bool compat = sc->flags & KVM_X86_SYSCALL_FLAG_COMPAT;
	struct kvm_x86_syscall call = *sc;
	struct vm *vm = v->vm;
	bool trusted, fresh;
	uint64_t token;
	int err = 0;

	if (sc->flags & KVM_X86_SYSCALL_FLAG_RETURN) {
		err = vm->front ? kf_return(v->fd, sc) : 0;
		if (err > 0)
			err = 0;	/* the front end's */
		else if (!err && v->call_armed && sc->rip == v->call.rip)
			print_call(v, &v->call, &sc->ret);
		v->call_armed = false;
		if (__atomic_exchange_n(&vm->retrap_due, false, __ATOMIC_ACQ_REL))
			vm_retrap(vm);
		return err;	/* the SYSRET completes with sc->ret */
	}
	__atomic_add_fetch(&vm->trapped, 1, __ATOMIC_RELAXED);
	/* where the caller holds its token (for the front end: forks, execs, a root reused) */
	token = vt_trusted(&vm->trust, &vm->gm, sc->cr3, vcpu_rsp, v, &fresh);
	trusted = token != 0;
	if (call_ends_mm(sc->nr, compat))
		vt_forget(&vm->trust, sc->cr3);	/* its address space ends (if the call works) */
	sc->flags = KVM_X86_SYSCALL_FLAG_NATIVE;
	if (!trusted) {
		if (__atomic_load_n(&vm->untrap, __ATOMIC_ACQUIRE))
			sc->flags |= KVM_X86_SYSCALL_FLAG_UNTRAP;
		if (vm->front)
			kf_untrusted(sc->cr3);	/* a trusted process's root it may have been, ended unseen */
		return 0;
	}
	__atomic_add_fetch(&vm->trapped_trusted, 1, __ATOMIC_RELAXED);
	if (call_makes_mm(sc->nr, sc->args, compat)) {
		vm_retrap(vm);		/* now, and once more when it is done */
		__atomic_store_n(&vm->retrap_due, true, __ATOMIC_RELEASE);
	} else if (__atomic_exchange_n(&vm->retrap_due, false, __ATOMIC_ACQ_REL)) {
		vm_retrap(vm);
	}
	if (v->call_armed && vm->print)	/* returned by IRET (a signal, a migration): result not seen */
		print_call(v, &v->call, NULL);
	v->call_armed = false;
	if (vm->front && !compat) {
		enum kf_verdict verdict;

		/* a fork's child (an exec's image), seen anew, inherits its table; a fork (an exec) notes it */
		v->kf.fresh_token = fresh;
		v->kf.token = token;
		verdict = kf_call(&v->kf, sc, vcpu_rsp, v);

		/*
		 * after the core closed its remote fds (exit_group); not while it
		 * is parked; an execve's table is the front end's (its new image's)
		 */
		if (call_ends_mm(call.nr, compat) && !call_execs(call.nr, compat) && sc->nr == call.nr)
			kf_mm_gone(call.cr3);
		if (verdict == KF_DECIDED) {
			if (vm->print && !sc->flags)
				print_call(v, &call, &sc->ret);
			return 0;
		}
	}
	if (!vm->print)
		return 0;
	if (compat || !call_returns(sc->nr)) {
		print_call(v, &call, NULL);
		return 0;
	}
	v->call = *sc;
	v->call_armed = true;
	sc->flags |= KVM_X86_SYSCALL_FLAG_RETURN;
	return 0;
}

static int vm_exit_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	struct vm *vm = v->vm;
	uint32_t i;
	int ret = 0;

	if (r->io.data_offset + (uint64_t)r->io.count * r->io.size > vm->run_size)
		return -EFAULT;
	if (r->io.port == RSYS_VM_TRUST_PORT && r->io.direction == KVM_EXIT_IO_OUT) {
		if (vm->syscalls && r->io.size == 1 && r->io.count == 1)
			vm_trust_announce(v);
		return 0;
	}
	pthread_mutex_lock(&vm->lock);
	for (i = 0; i < r->io.count && !ret; i++, data += r->io.size)
		ret = vm_port(vm, r->io.port, r->io.direction == KVM_EXIT_IO_OUT, data, r->io.size);
	pthread_mutex_unlock(&vm->lock);
	return ret;
}

static void vm_internal_error(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	struct kvm_regs regs = { 0 };
	struct kvm_sregs sregs = { 0 };
	uint32_t i;

	ioctl(v->fd, KVM_GET_REGS, &regs);
	ioctl(v->fd, KVM_GET_SREGS, &sregs);
	pr_err("KVM internal error %u on vCPU %u at rip %#llx (cs %#x, cr0 %#llx, efer %#llx)\n",
	       r->internal.suberror, v->id, (unsigned long long)regs.rip, sregs.cs.selector,
	       (unsigned long long)sregs.cr0, (unsigned long long)sregs.efer);
	for (i = 0; i < r->internal.ndata && i < 16; i++)
		pr_info("  internal data[%u] = %#llx\n", i, (unsigned long long)r->internal.data[i]);
}

/* KVM_RUN until the guest reports or stops: 0 once it reported, -errno after a message. */
static int vcpu_loop(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	struct vm *vm = v->vm;
	int ret;

	for (;;) {
		if (__atomic_load_n(&vm->stopping, __ATOMIC_ACQUIRE))
			return 0;
		if (vmm_stop_sig) {
			pr_err("stopped by signal %d before the guest's program finished\n",
			       (int)vmm_stop_sig);
			return -EINTR;
		}
		if (ioctl(v->fd, KVM_RUN, 0)) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return kvm_fail("KVM_RUN");
		}
		switch (r->exit_reason) {
		case KVM_EXIT_IO:
			ret = vm_exit_io(v);
			if (ret)
				return ret < 0 ? ret : 0;
			break;
		case KVM_EXIT_MMIO:
			if (!r->mmio.is_write)
				memset(r->mmio.data, 0, sizeof(r->mmio.data));
			break;
		case KVM_EXIT_INTR:
			break;
		case KVM_EXIT_X86_SYSCALL:
			if (!vm->syscalls) {
				pr_err("KVM trapped a system call of a VM that did not ask for it\n");
				return -EIO;
			}
			ret = vm_exit_syscall(v);
			if (ret)
				return ret;
			break;
		case KVM_EXIT_SHUTDOWN:
		case KVM_EXIT_SYSTEM_EVENT:
			return 0;
		case KVM_EXIT_FAIL_ENTRY:
			pr_err("KVM cannot enter the guest (hardware reason %#llx)\n",
			       (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
			return -EIO;
		case KVM_EXIT_INTERNAL_ERROR:
			vm_internal_error(v);
			return -EIO;
		default:
			pr_err("unexpected KVM exit %u from the guest\n", r->exit_reason);
			return -EIO;
		}
	}
}

/* The first vCPU to stop ends the others' KVM_RUN. */
static void vm_stop(struct vcpu *self)
{
	struct vm *vm = self->vm;
	unsigned int i;

	__atomic_store_n(&vm->stopping, true, __ATOMIC_RELEASE);
	for (i = 0; i < vm->ncpus; i++) {
		struct vcpu *v = &vm->vcpus[i];

		if (v == self || !v->run)
			continue;
		v->run->immediate_exit = 1;
		if (__atomic_load_n(&v->started, __ATOMIC_ACQUIRE))
			pthread_kill(v->thread, SIGUSR1);
	}
}

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	v->err = vcpu_loop(v);
	vm_stop(v);
	return NULL;
}

/* -i: the host's stdin goes to COM1's receiver; at its end, two VEOFs end the guest's input. */
static void *vm_input(void *arg)
{
	struct vm *vm = arg;
	uint8_t buf[UART_IN_MAX];
	size_t off, len;
	bool irq, eof = false;
	ssize_t n;

	while (!__atomic_load_n(&vm->input_ready, __ATOMIC_ACQUIRE))
		usleep(10000);
	while (!eof) {
		n = read(STDIN_FILENO, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			buf[0] = buf[1] = VMM_VEOF;
			n = 2;
			eof = true;
		}
		len = (size_t)n;
		if (vm->input_tty && memchr(buf, VMM_ESCAPE, len)) {
			vmm_on_signal(SIGINT);
			pthread_kill(vm->vcpus[0].thread, SIGUSR1);
			break;
		}
		for (off = 0; off < len;) {
			pthread_mutex_lock(&vm->lock);
			off += uart_receive(&vm->com1, buf + off, len - off, &irq);
			set_irq4(vm, irq);
			pthread_mutex_unlock(&vm->lock);
			if (off < len)
				usleep(1000);	/* the guest empties the receiver */
		}
	}
	return NULL;
}

/* Run every vCPU until one stops; its outcome: 0 once the guest reported, or -errno. */
static int vm_run(struct vm *vm, bool interactive)
{
	struct sigaction kick = { .sa_handler = vmm_on_kick };
	bool input_started = false;
	sigset_t block, old;
	pthread_t input;
	unsigned int i;
	int err = 0;

	/* INT, TERM and HUP stay with the boot vCPU's thread; SIGUSR1 kicks any. */
	sigaction(SIGUSR1, &kick, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &block, &old);
	for (i = 1; i < vm->ncpus; i++) {
		if (pthread_create(&vm->vcpus[i].thread, NULL, vcpu_thread, &vm->vcpus[i])) {
			pr_err("cannot start a thread for vCPU %u\n", i);
			err = -EAGAIN;
			break;
		}
		__atomic_store_n(&vm->vcpus[i].started, true, __ATOMIC_RELEASE);
	}
	vm->vcpus[0].thread = pthread_self();
	if (!err && interactive && pthread_create(&input, NULL, vm_input, vm)) {
		pr_err("cannot start the console's input thread\n");
		err = -EAGAIN;
	} else if (!err && interactive) {
		input_started = true;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	__atomic_store_n(&vm->vcpus[0].started, true, __ATOMIC_RELEASE);
	vm->vcpus[0].err = err ? err : vcpu_loop(&vm->vcpus[0]);
	vm_stop(&vm->vcpus[0]);
	__atomic_store_n(&vm->vcpus[0].started, false, __ATOMIC_RELEASE);
	for (i = 1; i < vm->ncpus; i++)
		if (vm->vcpus[i].started)
			pthread_join(vm->vcpus[i].thread, NULL);
	if (input_started) {
		pthread_cancel(input);	/* blocked in read(), a cancellation point */
		pthread_join(input, NULL);
	}
	for (i = 0; i < vm->ncpus && !err; i++)
		err = vm->vcpus[i].err;
	if (err || vm->reported)
		return err;
	pr_err("the guest stopped before its init reported the program's status (a kernel panic, or no rsys init: see make guest-image; -v shows the kernel's messages)\n");
	return -EIO;
}

static void vm_destroy(struct vm *vm)
{
	unsigned int i;

	vmm_run_page = NULL;
	for (i = 0; i < vm->ncpus; i++) {
		kf_vcpu_free(&vm->vcpus[i].kf);
		if (vm->vcpus[i].run)
			munmap(vm->vcpus[i].run, vm->run_size);
		if (vm->vcpus[i].fd >= 0)
			close(vm->vcpus[i].fd);
	}
	if (vm->mem)
		munmap(vm->mem, vm->mem_size);
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
	unsigned int i;
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
	ilen = make_initrd(o->initrd, o->argv,
			   o->interactive ? (vm->input_tty ? "tty" : "pipe") : NULL, vm->syscalls, &initrd);
	if (ilen < 0) {
		free(kernel);
		return (int)ilen;
	}
	err = vm_create(vm, (uint64_t)o->mem_mib << 20);
	if (!err)
		err = lb_load(vm->mem, vm->mem_size, kernel, (size_t)klen, cmdline, initrd,
			      (size_t)ilen, &e);
	if (!err)
		err = lb_mptable(vm->mem, vm->ncpus);
	free(kernel);
	free(initrd);
	for (i = 0; i < vm->ncpus && !err; i++)
		err = vcpu_create(vm, i, &e);
	if (!err)
		pr_info("guest: %u vCPUs, %u MiB, kernel %s (boot protocol %u.%02u), initrd %ld KiB at %#llx, \"%s\"\n",
			vm->ncpus, o->mem_mib, o->kernel, e.version >> 8, e.version & 0xff, ilen >> 10,
			(unsigned long long)e.initrd, cmdline);
	return err;
}

int vmm_run(const struct vmm_opts *o)
{
	struct sigaction sa = { .sa_handler = vmm_on_signal };
	struct vm vm = { .kvm = -1, .fd = -1, .ncpus = o->cpus, .lock = PTHREAD_MUTEX_INITIALIZER,
			 .syscalls = o->syscalls || o->delegate, .print = o->syscalls,
			 .untrap = (o->syscalls || o->delegate) && !o->trap_all };
	struct rsys_maps maps;
	struct sv sv = { .policy = o->policy, .maps = &maps, .no_write_behind = o->no_write_behind };
	struct tls_files tls = { 0 };
	struct termios tty;
	unsigned int i;
	int err;

	maps_none(&maps);
	for (i = 0; i < LB_CPUS_MAX; i++)
		vm.vcpus[i].fd = -1;
	if (o->cpus < 1 || o->cpus > LB_CPUS_MAX) {
		pr_err("--cpus %u: the guest takes 1 to %u vCPUs\n", o->cpus, LB_CPUS_MAX);
		return -EINVAL;
	}
	if (o->mem_mib < VMM_MEM_MIN_MIB || o->mem_mib > VMM_MEM_MAX_MIB) {
		pr_err("--mem %u: the guest takes %u to %u MiB\n", o->mem_mib, VMM_MEM_MIN_MIB,
		       VMM_MEM_MAX_MIB);
		return -EINVAL;
	}
	/* No SA_RESTART: a signal ends KVM_RUN with EINTR and the loop stops the VM. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* -i on a terminal: keys go to the guest as typed; it echoes and edits, the host adds CRs. */
	vm.input_tty = o->interactive && !tcgetattr(STDIN_FILENO, &tty);
	if (vm.input_tty) {
		struct termios raw = tty;

		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
		raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL | INLCR | IGNCR | BRKINT);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	err = vmm_boot(&vm, o);
	if (!err && o->delegate) {
		err = remote_open(&sv.remote, o->delegate, &tls, stderr);
		if (err)
			pr_err("delegate %s is unreachable (is rsys-delegate running there?)\n",
			       o->delegate);
		else
			err = kf_start(&sv, &vm.gm);
		if (err && sv.remote) {
			remote_close(sv.remote);
			sv.remote = NULL;
		}
		vm.front = !err;
		/* the fast path: not with -s, which prints every call of theirs */
		if (vm.front && !vm.print && !o->no_fast_path)
			kb_open(vm.fd);
	}
	if (!err)
		err = vm_run(&vm, o->interactive);
	kb_close();
	if (vm.front)
		kf_stop(&sv);
	if (sv.remote)
		remote_close(sv.remote);
	if (vm.input_tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &tty);
	uart_flush(&vm.com1, STDOUT_FILENO);
	if (vm.syscalls)
		fprintf(stderr, "%s: vm: %llu system calls trapped, %llu of them trusted processes'%s\n",
			log_prog, (unsigned long long)vm.trapped,
			(unsigned long long)vm.trapped_trusted,
			vm.untrap ? "" : " (every process trapped)");
	vm_destroy(&vm);
	if (err == -EINTR && vmm_stop_sig)
		return vmm_stop_sig;	/* as a wait status: ended by that signal */
	return err ? err : vm.status;
}
