/* SPDX-License-Identifier: GPL-2.0 */
/* The socket options a trusted program may set on a socket of the service domain (delegate and direct mode). */
#ifndef RSYS_SOCKOPT_H
#define RSYS_SOCKOPT_H

#include <stdbool.h>
#include <stddef.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>

/* asm-generic values the libc headers may not name (x86-64 has no 32-bit time variants). */
#ifndef SO_TIMESTAMP_OLD
#define SO_TIMESTAMP_OLD	29
#define SO_TIMESTAMPNS_OLD	35
#define SO_TIMESTAMPING_OLD	37
#define SO_RCVTIMEO_OLD		20
#define SO_SNDTIMEO_OLD		21
#endif
#ifndef SO_TIMESTAMP_NEW
#define SO_TIMESTAMP_NEW	63
#define SO_TIMESTAMPNS_NEW	64
#define SO_TIMESTAMPING_NEW	65
#define SO_RCVTIMEO_NEW		66
#define SO_SNDTIMEO_NEW		67
#endif
#ifndef UDP_SEGMENT
#define UDP_SEGMENT		103
#endif
#ifndef UDP_GRO
#define UDP_GRO			104
#endif

/*
 * Socket options a program may set: what real programs use (see
 * rsys-delegate(8)). Anything else is ENOPROTOOPT: options that change
 * where packets go (IP_OPTIONS source routing, IPV6_RTHDR, SO_BINDTODEVICE,
 * SO_MARK, IP_TRANSPARENT), root-only ones (SO_RCVBUFFORCE, TCP_REPAIR,
 * TCP_CONGESTION's module loading), SO_ZEROCOPY, and values holding a
 * pointer or an fd of the caller (SO_ATTACH_FILTER, ...).
 */
static const struct {
	int level, name;
} rsys_sockopts[] = {
	{ SOL_SOCKET, SO_REUSEADDR }, { SOL_SOCKET, SO_REUSEPORT },
	{ SOL_SOCKET, SO_KEEPALIVE }, { SOL_SOCKET, SO_LINGER },
	{ SOL_SOCKET, SO_RCVBUF }, { SOL_SOCKET, SO_SNDBUF },
	{ SOL_SOCKET, SO_RCVLOWAT }, { SOL_SOCKET, SO_BROADCAST },
	{ SOL_SOCKET, SO_OOBINLINE },
	{ SOL_SOCKET, SO_RCVTIMEO_OLD }, { SOL_SOCKET, SO_SNDTIMEO_OLD },
	{ SOL_SOCKET, SO_RCVTIMEO_NEW }, { SOL_SOCKET, SO_SNDTIMEO_NEW },
	{ SOL_SOCKET, SO_TIMESTAMP_OLD }, { SOL_SOCKET, SO_TIMESTAMPNS_OLD },
	{ SOL_SOCKET, SO_TIMESTAMPING_OLD }, { SOL_SOCKET, SO_TIMESTAMP_NEW },
	{ SOL_SOCKET, SO_TIMESTAMPNS_NEW }, { SOL_SOCKET, SO_TIMESTAMPING_NEW },
	{ IPPROTO_IP, IP_TOS }, { IPPROTO_IP, IP_TTL },
	{ IPPROTO_IP, IP_PKTINFO }, { IPPROTO_IP, IP_RECVTOS },
	{ IPPROTO_IP, IP_RECVTTL }, { IPPROTO_IP, IP_RECVERR },
	{ IPPROTO_IP, IP_MTU_DISCOVER }, { IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT },
	{ IPPROTO_IPV6, IPV6_V6ONLY }, { IPPROTO_IPV6, IPV6_TCLASS },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS }, { IPPROTO_IPV6, IPV6_RECVPKTINFO },
	{ IPPROTO_IPV6, IPV6_RECVHOPLIMIT }, { IPPROTO_IPV6, IPV6_RECVTCLASS },
	{ IPPROTO_IPV6, IPV6_RECVERR }, { IPPROTO_IPV6, IPV6_MTU_DISCOVER },
	{ IPPROTO_TCP, TCP_NODELAY }, { IPPROTO_TCP, TCP_MAXSEG },
	{ IPPROTO_TCP, TCP_CORK }, { IPPROTO_TCP, TCP_KEEPIDLE },
	{ IPPROTO_TCP, TCP_KEEPINTVL }, { IPPROTO_TCP, TCP_KEEPCNT },
	{ IPPROTO_TCP, TCP_SYNCNT }, { IPPROTO_TCP, TCP_LINGER2 },
	{ IPPROTO_TCP, TCP_DEFER_ACCEPT }, { IPPROTO_TCP, TCP_WINDOW_CLAMP },
	{ IPPROTO_TCP, TCP_QUICKACK }, { IPPROTO_TCP, TCP_USER_TIMEOUT },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT }, { IPPROTO_TCP, TCP_FASTOPEN },
	/* connect() still names the destination, and is checked. */
	{ IPPROTO_TCP, TCP_FASTOPEN_CONNECT },
	{ IPPROTO_UDP, UDP_CORK }, { IPPROTO_UDP, UDP_SEGMENT }, { IPPROTO_UDP, UDP_GRO },
};

static inline bool rsys_sockopt_allowed(int level, int name)
{
	size_t i;

	for (i = 0; i < sizeof(rsys_sockopts) / sizeof(rsys_sockopts[0]); i++)
		if (rsys_sockopts[i].level == level && rsys_sockopts[i].name == name)
			return true;
	return false;
}

#endif
