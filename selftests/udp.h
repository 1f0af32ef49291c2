/* SPDX-License-Identifier: GPL-2.0 */
/*
 * A UDP socket pair for the wait tests: rx bound to ip:port, tx sending to
 * it. Under rsys-load run both are remote (at the delegate); natively they
 * are ordinary sockets.
 */
#ifndef RSYS_SELFTESTS_UDP_H
#define RSYS_SELFTESTS_UDP_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

struct udp {
	int rx, tx;
	struct sockaddr_in addr;
};

static inline int udp_open(struct udp *u, const char *ip)
{
	socklen_t len = sizeof(u->addr);

	u->rx = socket(AF_INET, SOCK_DGRAM, 0);
	u->tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (u->rx < 0 || u->tx < 0)
		return -1;
	memset(&u->addr, 0, sizeof(u->addr));
	u->addr.sin_family = AF_INET;
	inet_pton(AF_INET, ip, &u->addr.sin_addr);
	if (bind(u->rx, (struct sockaddr *)&u->addr, sizeof(u->addr)) ||
	    getsockname(u->rx, (struct sockaddr *)&u->addr, &len))
		return -1;
	return 0;
}

/* Send one datagram to rx: 0 or -1. */
static inline int udp_fire(struct udp *u)
{
	return sendto(u->tx, "x", 1, 0, (struct sockaddr *)&u->addr, sizeof(u->addr)) == 1 ? 0 : -1;
}

static inline void udp_drain(struct udp *u)
{
	char b[16];

	while (recv(u->rx, b, sizeof(b), MSG_DONTWAIT) > 0)
		;
}

#endif
