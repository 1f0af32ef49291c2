/* SPDX-License-Identifier: GPL-2.0 */
/* The egress guard's rules: the policy's "allow" lines as bpf/egress_guard.bpf.c matches them. */
#ifndef RSYS_EGRESS_GUARD_H
#define RSYS_EGRESS_GUARD_H

#define RSYS_EGRESS_MAX_RULES	64	/* POLICY_MAX_RULES */

/*
 * One "allow [PROTO] CIDR PORTS" line: a destination matches when
 * (address & mask) == addr word by word (network byte order; an IPv4 rule
 * uses word 0 only), its port is in [port_lo, port_hi] and proto is 0 or
 * the socket's protocol.
 */
struct rsys_egress_rule {
	__u32 addr[4];
	__u32 mask[4];
	__u16 family;		/* AF_INET or AF_INET6 */
	__u16 proto;		/* IPPROTO_UDP, IPPROTO_UDPLITE, ..., 0 for any */
	__u16 port_lo, port_hi;	/* host byte order, inclusive */
	__u32 line;		/* the line in the policy file */
};

#endif
