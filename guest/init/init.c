// SPDX-License-Identifier: GPL-2.0
/* The compute VM's init (pid 1): mount the basics, run the program named in /rsys/argv, report its status to the VMM. */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <rsys/vm.h>

#define INIT_MAX_ARGS	1024

static const char prog_name[] = "rsys-guest-init";

static void warn_errno(const char *what, const char *arg)
{
	fprintf(stderr, "%s: Error: %s %s: %s\n", prog_name, what, arg, strerror(errno));
}

static void mount_basics(void)
{
	static const struct { const char *src, *dir, *type; } m[] = {
		{ "proc", "/proc", "proc" },
		{ "sys", "/sys", "sysfs" },
		{ "dev", "/dev", "devtmpfs" },
		{ "tmp", "/tmp", "tmpfs" },
	};
	size_t i;

	for (i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		mkdir(m[i].dir, 0755);
		if (mount(m[i].src, m[i].dir, m[i].type, 0, NULL) && errno != EBUSY)
			warn_errno("cannot mount", m[i].dir);
	}
}

/* "tty" or "pipe" when the host feeds the console (rsys-load vm -i), else "". */
static void read_console_mode(char *mode, size_t size)
{
	ssize_t n = 0;
	int fd;

	fd = open("/" RSYS_VM_CONSOLE_FILE, O_RDONLY);
	if (fd >= 0) {
		n = read(fd, mode, size - 1);
		close(fd);
	}
	mode[n > 0 ? n : 0] = '\0';
}

/*
 * stdout and stderr the console, bytes as written; stdin /dev/null (a
 * serial line has no end of file), or with -i the console too, echoing
 * only what a terminal on the host typed.
 */
static void setup_stdio(const char *console)
{
	struct termios t;
	int fd;

	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd >= 0) {
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	if (tcgetattr(1, &t) == 0) {
		t.c_oflag &= ~OPOST;	/* no "\n" -> "\r\n": the host sees the program's bytes */
		if (!strcmp(console, "pipe"))
			t.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
		tcsetattr(1, TCSANOW, &t);
	}
	if (*console)
		return;		/* the program's process makes the console its stdin and terminal */
	fd = open("/dev/null", O_RDONLY);
	if (fd >= 0 && fd != 0) {
		dup2(fd, 0);
		close(fd);
	}
}

/* busybox's applets as /bin links, when the image has busybox. */
static void install_busybox(void)
{
	pid_t pid;

	if (access("/bin/busybox", X_OK))
		return;
	pid = fork();
	if (pid == 0) {
		execl("/bin/busybox", "busybox", "--install", "-s", "/bin", (char *)NULL);
		_exit(127);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);
}

/* argv from RSYS_VM_ARGV_FILE: the count, or -1 after a message. */
static int read_argv(char *buf, size_t size, char **argv)
{
	ssize_t n, len = 0;
	int fd, argc = 0;
	char *p;

	fd = open("/" RSYS_VM_ARGV_FILE, O_RDONLY);
	if (fd < 0) {
		warn_errno("cannot open", "/" RSYS_VM_ARGV_FILE);
		return -1;
	}
	while ((n = read(fd, buf + len, size - 1 - len)) > 0)
		len += n;
	close(fd);
	if (n < 0 || len == 0 || buf[len - 1] != '\0') {
		fprintf(stderr, "%s: Error: %s is empty or not NUL-terminated\n", prog_name,
			"/" RSYS_VM_ARGV_FILE);
		return -1;
	}
	for (p = buf; p < buf + len && argc < INIT_MAX_ARGS; p += strlen(p) + 1)
		argv[argc++] = p;
	argv[argc] = NULL;
	return argc;
}

static bool vmm_ports;	/* ioperm() gave us the VMM's ports */

/*
 * In the program's process, before its execve, when the VMM traps system
 * calls (RSYS_VM_TRUST_FILE): the environment gets RSYS_VM_TOKEN_ENV with
 * zeros, the VMM is told where (RSYS_VM_TRUST_PORT, %rsi) and writes the
 * VM's secret token over them. Left as zeros, the program is not trusted.
 */
static void announce_trust(void)
{
	static char env[sizeof(RSYS_VM_TOKEN_ENV) + RSYS_VM_TOKEN_ZEROS];
	const size_t plen = sizeof(RSYS_VM_TOKEN_ENV) - 1;

	if (access("/" RSYS_VM_TRUST_FILE, F_OK))
		return;
	/* written here, after fork: the page is this process's own, not shared with pid 1 */
	memcpy(env, RSYS_VM_TOKEN_ENV, plen);
	memset(env + plen, '0', RSYS_VM_TOKEN_ZEROS);
	env[plen + RSYS_VM_TOKEN_ZEROS] = '\0';
	if (ioperm(RSYS_VM_EXIT_PORT, RSYS_VM_PORTS, 1)) {
		warn_errno("cannot reach the VMM's ports", "(ioperm): the program is not trusted");
		return;
	}
	__asm__ volatile("outb %%al, %%dx" : : "a"(1), "d"(RSYS_VM_TRUST_PORT), "S"(env)
			 : "memory");
	ioperm(RSYS_VM_EXIT_PORT, RSYS_VM_PORTS, 0);
	if (strspn(env + plen, "0") == RSYS_VM_TOKEN_ZEROS)
		fprintf(stderr, "%s: the VMM did not take the program's token: it is not trusted\n",
			prog_name);
	putenv(env);
}

/* Hand the wait status to the VMM, which ends the VM; power off should it not. */
static void report(int status)
{
	/* the console's last bytes may still be in the tty's buffer, sent on another vCPU: wait */
	tcdrain(STDOUT_FILENO);
	if (vmm_ports)
		outl((unsigned int)status, RSYS_VM_EXIT_PORT);
	sync();
	reboot(RB_POWER_OFF);
	for (;;)
		pause();
}

int main(void)
{
	static char buf[RSYS_VM_ARGV_MAX + 1];
	static char *argv[INIT_MAX_ARGS + 1];
	char console[8];
	int status = 127 << 8;
	pid_t prog, pid;

	if (getpid() != 1) {
		fprintf(stderr, "%s: Error: this is the compute VM's init, not a program to run\n",
			prog_name);
		return 1;
	}
	vmm_ports = ioperm(RSYS_VM_EXIT_PORT, RSYS_VM_PORTS, 1) == 0;
	if (!vmm_ports)
		warn_errno("cannot reach the VMM's ports", "(ioperm)");
	mount_basics();
	read_console_mode(console, sizeof(console));
	setup_stdio(console);
	if (*console && vmm_ports)
		outb(1, RSYS_VM_INPUT_PORT);	/* the console is ready: the VMM may feed it */
	install_busybox();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/", 1);
	if (read_argv(buf, sizeof(buf), argv) < 0)
		report(status);

	prog = fork();
	if (prog < 0) {
		warn_errno("cannot fork for", argv[0]);
		report(status);
	}
	if (prog == 0) {
		int err;

		setsid();
		announce_trust();
		execvp(argv[0], argv);
		err = errno;
		warn_errno("cannot execute", argv[0]);
		_exit(err == ENOENT ? 127 : 126);
	}
	/* pid 1 reaps every orphan; the VM ends with the program. */
	for (;;) {
		pid = wait(&status);
		if (pid == prog)
			break;
		if (pid < 0 && errno != EINTR) {
			status = 127 << 8;
			break;
		}
	}
	report(status);
	return 0;
}
