// SPDX-License-Identifier: GPL-2.0
/* Sends one datagram to each ADDR/PORT it is given and prints whether the send was refused (EPERM): what attack_direct_test compares between the egress guard, the delegate's own check and Linux. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "frame.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

/*
 * Usage: egress_probe [udp|udplite]:ADDR:PORT...   (IPv6 as udp:[ADDR]:PORT)
 * Prints "DEST denied" for EPERM and "DEST allowed" for anything else (a
 * destination no route reaches fails after the egress check, so it counts
 * as allowed); exit 0, or 2 on a usage error.
 */
int main(int argc, char **argv)
{
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		const char *colon = strchr(argv[i], ':');
		struct sockaddr_storage ss;
		char tcp[128];
		socklen_t len;
		int proto, s;

		if (!colon)
			goto usage;
		proto = !strncmp(argv[i], "udp:", 4) ? IPPROTO_UDP :
			!strncmp(argv[i], "udplite:", 8) ? IPPROTO_UDPLITE : -1;
		/* ADDR:PORT as the transports write it (lib/frame.c), whatever the protocol */
		snprintf(tcp, sizeof(tcp), "tcp:%s", colon + 1);
		if (proto < 0 || addr_parse(tcp, &ss, &len, stderr))
			goto usage;
		s = socket(ss.ss_family, SOCK_DGRAM, proto);
		if (s < 0) {
			printf("%s socket-failed %s\n", argv[i], strerror(errno));
			continue;
		}
		if (sendto(s, "x", 1, MSG_DONTWAIT, (struct sockaddr *)&ss, len) < 0 && errno == EPERM)
			printf("%s denied\n", argv[i]);
		else
			printf("%s allowed\n", argv[i]);
		close(s);
	}
	return 0;
usage:
	fprintf(stderr, "Usage: egress_probe [udp|udplite]:ADDR:PORT...  (IPv6: udp:[ADDR]:PORT)\n");
	return 2;
}
