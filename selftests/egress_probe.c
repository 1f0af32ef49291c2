// SPDX-License-Identifier: GPL-2.0
/* Sends one datagram (or ICMP echo) to each destination it is given and prints whether the send was refused (EPERM): what attack_direct_test compares between the egress guard, the delegate's own check and Linux. */
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "frame.h"

#ifndef IPPROTO_UDPLITE
#define IPPROTO_UDPLITE 136
#endif

#define USAGE "Usage: egress_probe [udp|udplite]:ADDR:PORT | icmp:ADDR...  (IPv6: udp:[ADDR]:PORT, icmp:[ADDR])\n"

/*
 * Usage: egress_probe [udp|udplite]:ADDR:PORT | icmp:ADDR...
 * A datagram of one byte, or an ICMP echo request from a ping socket
 * (ICMPv6 for an IPv6 ADDR; the kernel sets its identifier and checksum).
 * Prints "DEST denied" for EPERM and "DEST allowed" for anything else (a
 * destination no route reaches fails after the egress check, so it counts
 * as allowed); exit 0, 1 if a send was refused, 2 on a usage error.
 */
int main(int argc, char **argv)
{
	int i, denied = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (i = 1; i < argc; i++) {
		const char *colon = strchr(argv[i], ':');
		/* an echo request: type, code, checksum, identifier, sequence 1 */
		unsigned char echo[8] = { ICMP_ECHO, 0, 0, 0, 0, 0, 0, 1 };
		const void *data = "x";
		struct sockaddr_storage ss;
		size_t size = 1;
		char tcp[128];
		socklen_t len;
		int proto, s;

		if (!colon)
			goto usage;
		proto = !strncmp(argv[i], "udp:", 4) ? IPPROTO_UDP :
			!strncmp(argv[i], "udplite:", 8) ? IPPROTO_UDPLITE :
			!strncmp(argv[i], "icmp:", 5) ? IPPROTO_ICMP : -1;
		/* ADDR:PORT as the transports write it (lib/frame.c), whatever the protocol */
		snprintf(tcp, sizeof(tcp), proto == IPPROTO_ICMP ? "tcp:%s:0" : "tcp:%s", colon + 1);
		if (proto < 0 || addr_parse(tcp, &ss, &len, stderr))
			goto usage;
		if (proto == IPPROTO_ICMP) {
			if (ss.ss_family == AF_INET6) {
				proto = IPPROTO_ICMPV6;
				echo[0] = ICMP6_ECHO_REQUEST;
			}
			data = echo;
			size = sizeof(echo);
		}
		s = socket(ss.ss_family, SOCK_DGRAM, proto);
		if (s < 0) {
			printf("%s socket-failed %s\n", argv[i], strerror(errno));
			continue;
		}
		if (sendto(s, data, size, MSG_DONTWAIT, (struct sockaddr *)&ss, len) < 0 && errno == EPERM) {
			printf("%s denied\n", argv[i]);
			denied = 1;
		} else {
			printf("%s allowed\n", argv[i]);
		}
		close(s);
	}
	return denied;
usage:
	fputs(USAGE, stderr);
	return 2;
}
