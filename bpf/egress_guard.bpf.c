// SPDX-License-Identifier: GPL-2.0
/* Egress guard of rsys-delegate: a datagram sent with an address from a socket it created goes only where the policy allows. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "egress_guard.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET		2
#define AF_INET6	10
#define ETH_P_IP	0x0800
#define ETH_P_IPV6	0x86DD
#define SOCK_DGRAM	2
#define IPPROTO_ICMP	1
#define IPPROTO_ICMPV6	58

/* Set by the delegate before it loads the object; read-only to the programs. */
const volatile __u32 n_rules = 0;
const volatile struct rsys_egress_rule rules[RSYS_EGRESS_MAX_RULES] = {};

/* Sends refused, for rsys-delegate's log and "bpftool map dump". */
__u64 denied = 0;

/*
 * May a send to @a (port @port) from a socket of protocol @proto go? The
 * sendmsg programs judge a UDP (or UDP-Lite) send that carries an address,
 * on the address the kernel copied from the caller: a program cannot change
 * it afterwards. Connected sends without an address went where connect()
 * said, and connect() is the delegate's to judge. A ping socket's @echo has
 * no port of the program's (the kernel puts its own identifier there), so
 * "allow icmp CIDR" rules match it, and "allow any CIDR *" ones, by address
 * alone: lib/policy.c judges the same way. 1 sends, 0 fails the call with
 * EPERM.
 */
static __always_inline int judge(__u16 family, const __u32 *a, __u16 port, __u16 proto, bool echo)
{
	__u32 i, n = n_rules;

	for (i = 0; i < RSYS_EGRESS_MAX_RULES && i < n; i++) {
		const volatile struct rsys_egress_rule *r = &rules[i];

		if (r->family != family)
			continue;
		if (echo ? (r->proto ? r->proto != proto : r->port_lo != 0 || r->port_hi != 65535) :
			   (r->proto && r->proto != proto) || port < r->port_lo || port > r->port_hi)
			continue;
		if ((a[0] & r->mask[0]) != r->addr[0] || (a[1] & r->mask[1]) != r->addr[1] ||
		    (a[2] & r->mask[2]) != r->addr[2] || (a[3] & r->mask[3]) != r->addr[3])
			continue;
		return 1;
	}
	__sync_fetch_and_add(&denied, 1);
	return 0;
}

SEC("cgroup/sendmsg4")
int egress_sendmsg4(struct bpf_sock_addr *ctx)
{
	__u32 a[4] = { ctx->user_ip4, 0, 0, 0 };

	return judge(AF_INET, a, bpf_ntohs(ctx->user_port), ctx->protocol, false);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 a[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	/* The kernel sends a v4-mapped destination as IPv4 (sendmsg4); judged as such should one come. */
	if (!a[0] && !a[1] && a[2] == bpf_htonl(0xffff))
		return judge(AF_INET, (__u32[4]){ a[3], 0, 0, 0 }, bpf_ntohs(ctx->user_port),
			     ctx->protocol, false);
	return judge(AF_INET6, a, bpf_ntohs(ctx->user_port), ctx->protocol, false);
}

/*
 * Every packet that a socket of ours sends, as the kernel is about to hand
 * it to the device (after routing, before fragmentation): a ping socket has
 * no sendmsg hook, so its echoes are judged here by their destination. The
 * kernel lets a ping socket send echo requests only; one that is not
 * plainly one (IPv4 options, IPv6 extension headers) is dropped. Other sockets' packets
 * pass: their destinations were judged at connect() or sendmsg. 1 sends, 0
 * drops (the send fails with EPERM).
 */
SEC("cgroup_skb/egress")
int egress_skb(struct __sk_buff *skb)
{
	struct bpf_sock *sk = skb->sk;
	__u32 a[4] = {};

	if (!sk)
		return 1;
	sk = bpf_sk_fullsock(sk);
	if (!sk)
		return 1;
	if (sk->type != SOCK_DGRAM || (sk->protocol != IPPROTO_ICMP && sk->protocol != IPPROTO_ICMPV6))
		return 1;
	if (skb->protocol == bpf_htons(ETH_P_IP)) {
		struct iphdr ip;

		/* with options (a source route) the header's destination is not the last */
		if (bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) || ip.ihl != 5 ||
		    ip.protocol != IPPROTO_ICMP)
			goto drop;
		a[0] = ip.daddr;
		return judge(AF_INET, a, 0, IPPROTO_ICMP, true);
	}
	if (skb->protocol == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, 0, &ip6, sizeof(ip6)) || ip6.nexthdr != IPPROTO_ICMPV6)
			goto drop;
		__builtin_memcpy(a, &ip6.daddr, sizeof(a));
		return judge(AF_INET6, a, 0, IPPROTO_ICMPV6, true);
	}
drop:
	__sync_fetch_and_add(&denied, 1);
	return 0;
}
