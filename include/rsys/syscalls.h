/* SPDX-License-Identifier: GPL-2.0 */
/* The x86-64 system calls rsys names or decides: one table for both tiers and their BPF programs. */
#ifndef RSYS_SYSCALLS_H
#define RSYS_SYSCALLS_H

/*
 * Where a call's file descriptors are, by its arguments (what an fd table
 * decides a call by): RSYS_A0, RSYS_A1 (dup2/dup3's newfd, sendfile's
 * in_fd), RSYS_A2 (epoll_ctl's fd, splice's fd_out); RSYS_AMEM: fds in the
 * caller's memory or by range (poll, select, close_range), which only a
 * reader of that memory can decide. RSYS_WAIT: select, poll and epoll,
 * which Linux never restarts after a handler (signal(7)).
 */
#define RSYS_A0		0x1
#define RSYS_A1		0x2
#define RSYS_A2		0x4
#define RSYS_AMEM	0x8
#define RSYS_WAIT	0x10

/* X(name, x86-64 number, RSYS_A* | RSYS_WAIT), by number. */
#define RSYS_SYSCALLS(X) \
	X(read, 0, RSYS_A0)                       \
	X(write, 1, RSYS_A0)                      \
	X(open, 2, 0)                             \
	X(close, 3, RSYS_A0)                      \
	X(stat, 4, 0)                             \
	X(fstat, 5, RSYS_A0)                      \
	X(lstat, 6, 0)                            \
	X(poll, 7, RSYS_AMEM | RSYS_WAIT)         \
	X(lseek, 8, RSYS_A0)                      \
	X(mmap, 9, 0)                             \
	X(mprotect, 10, 0)                        \
	X(munmap, 11, 0)                          \
	X(brk, 12, 0)                             \
	X(rt_sigaction, 13, 0)                    \
	X(rt_sigprocmask, 14, 0)                  \
	X(rt_sigreturn, 15, 0)                    \
	X(ioctl, 16, RSYS_A0)                     \
	X(pread64, 17, RSYS_A0)                   \
	X(pwrite64, 18, RSYS_A0)                  \
	X(readv, 19, RSYS_A0)                     \
	X(writev, 20, RSYS_A0)                    \
	X(access, 21, 0)                          \
	X(pipe, 22, 0)                            \
	X(select, 23, RSYS_AMEM | RSYS_WAIT)      \
	X(sched_yield, 24, 0)                     \
	X(mremap, 25, 0)                          \
	X(madvise, 28, 0)                         \
	X(dup, 32, RSYS_A0)                       \
	X(dup2, 33, RSYS_A0 | RSYS_A1)            \
	X(nanosleep, 35, 0)                       \
	X(getpid, 39, 0)                          \
	X(sendfile, 40, RSYS_A0 | RSYS_A1)        \
	X(socket, 41, 0)                          \
	X(connect, 42, RSYS_A0)                   \
	X(accept, 43, RSYS_A0)                    \
	X(sendto, 44, RSYS_A0)                    \
	X(recvfrom, 45, RSYS_A0)                  \
	X(sendmsg, 46, RSYS_A0)                   \
	X(recvmsg, 47, RSYS_A0)                   \
	X(shutdown, 48, RSYS_A0)                  \
	X(bind, 49, RSYS_A0)                      \
	X(listen, 50, RSYS_A0)                    \
	X(getsockname, 51, RSYS_A0)               \
	X(getpeername, 52, RSYS_A0)               \
	X(socketpair, 53, 0)                      \
	X(setsockopt, 54, RSYS_A0)                \
	X(getsockopt, 55, RSYS_A0)                \
	X(clone, 56, 0)                           \
	X(fork, 57, 0)                            \
	X(vfork, 58, 0)                           \
	X(execve, 59, 0)                          \
	X(exit, 60, 0)                            \
	X(wait4, 61, 0)                           \
	X(kill, 62, 0)                            \
	X(uname, 63, 0)                           \
	X(fcntl, 72, RSYS_A0)                     \
	X(fsync, 74, 0)                           \
	X(ftruncate, 77, 0)                       \
	X(getcwd, 79, 0)                          \
	X(chdir, 80, 0)                           \
	X(fchdir, 81, 0)                          \
	X(rename, 82, 0)                          \
	X(mkdir, 83, 0)                           \
	X(unlink, 87, 0)                          \
	X(readlink, 89, 0)                        \
	X(umask, 95, 0)                           \
	X(gettimeofday, 96, 0)                    \
	X(getrlimit, 97, 0)                       \
	X(sysinfo, 99, 0)                         \
	X(getuid, 102, 0)                         \
	X(getgid, 104, 0)                         \
	X(geteuid, 107, 0)                        \
	X(getegid, 108, 0)                        \
	X(getppid, 110, 0)                        \
	X(sigaltstack, 131, 0)                    \
	X(statfs, 137, 0)                         \
	X(fstatfs, 138, 0)                        \
	X(prctl, 157, 0)                          \
	X(arch_prctl, 158, 0)                     \
	X(setrlimit, 160, 0)                      \
	X(gettid, 186, 0)                         \
	X(tkill, 200, 0)                          \
	X(futex, 202, 0)                          \
	X(epoll_create, 213, 0)                   \
	X(getdents64, 217, 0)                     \
	X(set_tid_address, 218, 0)                \
	X(restart_syscall, 219, 0)                \
	X(clock_gettime, 228, 0)                  \
	X(clock_nanosleep, 230, 0)                \
	X(exit_group, 231, 0)                     \
	X(epoll_wait, 232, RSYS_A0 | RSYS_WAIT)   \
	X(epoll_ctl, 233, RSYS_A0 | RSYS_A2)      \
	X(tgkill, 234, 0)                         \
	X(waitid, 247, 0)                         \
	X(openat, 257, 0)                         \
	X(mkdirat, 258, 0)                        \
	X(newfstatat, 262, 0)                     \
	X(unlinkat, 263, 0)                       \
	X(pselect6, 270, RSYS_AMEM | RSYS_WAIT)   \
	X(ppoll, 271, RSYS_AMEM | RSYS_WAIT)      \
	X(set_robust_list, 273, 0)                \
	X(splice, 275, RSYS_A0 | RSYS_A2)         \
	X(epoll_pwait, 281, RSYS_A0 | RSYS_WAIT)  \
	X(timerfd_create, 283, 0)                 \
	X(accept4, 288, RSYS_A0)                  \
	X(signalfd4, 289, 0)                      \
	X(eventfd2, 290, 0)                       \
	X(epoll_create1, 291, 0)                  \
	X(dup3, 292, RSYS_A0 | RSYS_A1)           \
	X(pipe2, 293, 0)                          \
	X(recvmmsg, 299, RSYS_A0)                 \
	X(prlimit64, 302, 0)                      \
	X(sendmmsg, 307, RSYS_A0)                 \
	X(getcpu, 309, 0)                         \
	X(renameat2, 316, 0)                      \
	X(getrandom, 318, 0)                      \
	X(memfd_create, 319, 0)                   \
	X(bpf, 321, 0)                            \
	X(execveat, 322, 0)                       \
	X(statx, 332, 0)                          \
	X(rseq, 334, 0)                           \
	X(io_uring_setup, 425, 0)                 \
	X(io_uring_enter, 426, 0)                 \
	X(pidfd_open, 434, 0)                     \
	X(clone3, 435, 0)                         \
	X(close_range, 436, RSYS_AMEM)            \
	X(openat2, 437, 0)                        \
	X(faccessat2, 439, 0)                     \
	X(epoll_pwait2, 441, RSYS_A0 | RSYS_WAIT) 

#define RSYS_NR_ENUM(name, nr, flags)	RSYS_NR_##name = nr,
enum rsys_nr { RSYS_SYSCALLS(RSYS_NR_ENUM) };
#undef RSYS_NR_ENUM

/* The RSYS_A* and RSYS_WAIT bits of call @nr; 0 for a call not in the table. */
static inline unsigned int rsys_syscall_flags(unsigned long long nr)
{
#define RSYS_NR_CASE(name, nr, flags)	case nr: return flags;
	switch (nr) {
	RSYS_SYSCALLS(RSYS_NR_CASE)
	}
#undef RSYS_NR_CASE
	return 0;
}

/* The argument holding the second fd of call @nr (dup2's newfd, ...), or -1. */
static inline int rsys_syscall_fd2(unsigned long long nr)
{
	unsigned int f = rsys_syscall_flags(nr);

	return f & RSYS_A1 ? 1 : f & RSYS_A2 ? 2 : -1;
}

#endif
