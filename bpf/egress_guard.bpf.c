// SPDX-License-Identifier: GPL-2.0
/* Egress guard of rsys-delegate: a datagram sent with an address from a socket it created goes only where the policy allows. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "egress_guard.h"

char LICENSE[] SEC("license") = "GPL";

#define AF_INET		2
#define AF_INET6	10

/* Set by the delegate before it loads the object; read-only to the programs. */
const volatile __u32 n_rules = 0;
const volatile struct rsys_egress_rule rules[RSYS_EGRESS_MAX_RULES] = {};

/* Sends refused, for rsys-delegate's log and "bpftool map dump". */
__u64 denied = 0;

/*
 * The kernel runs these programs on a UDP (or UDP-Lite) send that carries
 * an address, on the address it copied from the caller: a program cannot
 * change it afterwards. Connected sends without an address went where
 * connect() said, and connect() is the delegate's to judge. 1 sends, 0
 * fails the call with EPERM.
 */
static __always_inline int judge(__u16 family, const __u32 *a, __u16 port, __u16 proto)
{
	__u32 i, n = n_rules;

	for (i = 0; i < RSYS_EGRESS_MAX_RULES && i < n; i++) {
		const volatile struct rsys_egress_rule *r = &rules[i];

		if (r->family != family || (r->proto && r->proto != proto))
			continue;
		if (port < r->port_lo || port > r->port_hi)
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

	return judge(AF_INET, a, bpf_ntohs(ctx->user_port), ctx->protocol);
}

SEC("cgroup/sendmsg6")
int egress_sendmsg6(struct bpf_sock_addr *ctx)
{
	__u32 a[4] = { ctx->user_ip6[0], ctx->user_ip6[1], ctx->user_ip6[2], ctx->user_ip6[3] };

	/* The kernel sends a v4-mapped destination as IPv4 (sendmsg4); judged as such should one come. */
	if (!a[0] && !a[1] && a[2] == bpf_htonl(0xffff))
		return judge(AF_INET, (__u32[4]){ a[3], 0, 0, 0 }, bpf_ntohs(ctx->user_port),
			     ctx->protocol);
	return judge(AF_INET6, a, bpf_ntohs(ctx->user_port), ctx->protocol);
}
