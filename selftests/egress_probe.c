// SPDX-License-Identifier: GPL-2.0
/* Sends one datagram to each ADDR/PORT it is given and prints whether the send was refused (EPERM): what attack_direct_test compares between the egress guard, the delegate's own check and Linux. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

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
		struct sockaddr_storage ss = { 0 };
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		char buf[128], *addr, *port, *end;
		int proto, s, fam;
		socklen_t len;

		snprintf(buf, sizeof(buf), "%s", argv[i]);
		addr = strchr(buf, ':');
		port = strrchr(buf, ':');
		if (!addr || port == addr)
			goto usage;
		*addr++ = '\0';
		*port++ = '\0';
		proto = !strcmp(buf, "udp") ? IPPROTO_UDP : !strcmp(buf, "udplite") ? IPPROTO_UDPLITE : -1;
		if (proto < 0)
			goto usage;
		if (*addr == '[') {
			end = strchr(++addr, ']');
			if (!end)
				goto usage;
			*end = '\0';
			fam = AF_INET6;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(atoi(port));
			len = sizeof(*sin6);
			if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
				goto usage;
		} else {
			fam = AF_INET;
			sin->sin_family = AF_INET;
			sin->sin_port = htons(atoi(port));
			len = sizeof(*sin);
			if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
				goto usage;
		}
		s = socket(fam, SOCK_DGRAM, proto);
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
