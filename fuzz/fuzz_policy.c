// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: policy_parse_buf(), the policy parser that policy_load() uses, and the egress check. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <rsys/policy.h>

#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct policy *p;
	static FILE *null;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(80) };

	if (!p) {
		p = malloc(sizeof(*p));
		/* the messages are formatted, as for a user, and dropped */
		null = fopen("/dev/null", "we");
		if (!p || !null)
			abort();
	}
	if (policy_parse_buf(p, (const char *)data, size, "fuzz.policy", null))
		return 0;
	/* a policy that parses is used: its rules must be well-formed */
	sin.sin_addr.s_addr = htonl(0xc6120001);
	policy_allows(p, POLICY_ALLOW_CONNECT, IPPROTO_TCP, (struct sockaddr *)&sin, sizeof(sin));
	policy_allows(p, POLICY_ALLOW_CONNECT, IPPROTO_ICMP, (struct sockaddr *)&sin, sizeof(sin));
	policy_is_remote_family(p, AF_INET6);
	if (p->n_rules > POLICY_MAX_RULES || p->n_trusted > POLICY_MAX_TRUSTED)
		abort();
	return 0;
}
