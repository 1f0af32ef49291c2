/* SPDX-License-Identifier: GPL-2.0 */
/* seccomp user-notification knobs newer than the 6.1 uapi headers of Debian 12. */
#ifndef RSYS_SECCOMP_COMPAT_H
#define RSYS_SECCOMP_COMPAT_H

#include <linux/seccomp.h>

#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS	SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP	(1UL << 0)
#endif
#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV	(1UL << 5)
#endif
/* The kernel's restart codes (include/linux/errno.h), as a seccomp reply's error (supervisor.c). */
#define SV_ERESTARTSYS		512
#define SV_ERESTARTNOHAND	514

#endif
