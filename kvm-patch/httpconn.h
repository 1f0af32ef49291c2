/* SPDX-License-Identifier: GPL-2.0 */
/* For the guest test programs (splitwait.c, sigrecv.c, forkfd.c): a TCP connection to ADDR:80. */
#ifndef RSYS_KVM_HTTPCONN_H
#define RSYS_KVM_HTTPCONN_H

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A socket connected to @addr port 80; on failure the reason is printed and the program exits 1. */
static int http_conn(const char *addr)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };
	int s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || inet_pton(AF_INET, addr, &sin.sin_addr) != 1 ||
	    connect(s, (struct sockaddr *)&sin, sizeof(sin))) {
		printf("connect: %s\n", strerror(errno));
		exit(1);
	}
	return s;
}

#endif
