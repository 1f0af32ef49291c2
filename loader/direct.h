/* SPDX-License-Identifier: GPL-2.0 */
/* Direct mode's handlers (direct.c): the calls of a program holding real service sockets that stay trapped. */
#ifndef RSYS_DIRECT_H
#define RSYS_DIRECT_H

#include "supervisor.h"

enum sv_verdict direct_socket(struct sv_call *c);
enum sv_verdict direct_connect(struct sv_call *c);	/* connect and bind */
enum sv_verdict direct_listen(struct sv_call *c);
enum sv_verdict direct_setsockopt(struct sv_call *c);
enum sv_verdict direct_sendto(struct sv_call *c);
enum sv_verdict direct_sendmsg(struct sv_call *c);
enum sv_verdict direct_sendmmsg(struct sv_call *c);
enum sv_verdict direct_ioctl(struct sv_call *c);

#endif
