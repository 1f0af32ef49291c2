// SPDX-License-Identifier: GPL-2.0
/* Linked into every fuzz target: host names in fuzzed addresses must not become DNS queries. */
#include <dlfcn.h>
#include <netdb.h>

#include "fuzz.h"

/*
 * addr_parse() resolves "tcp:HOST:PORT" with getaddrinfo(): numeric hosts
 * only, so that a fuzzed name is neither a query on the network nor a
 * timeout that hides the parser's own speed.
 */
int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints,
		struct addrinfo **res)
{
	int (*real)(const char *, const char *, const struct addrinfo *, struct addrinfo **);
	struct addrinfo h = { 0 };

	real = (int (*)(const char *, const char *, const struct addrinfo *,
			struct addrinfo **))dlsym(RTLD_NEXT, "getaddrinfo");
	if (!real)
		return EAI_SYSTEM;
	if (hints)
		h = *hints;
	h.ai_flags |= AI_NUMERICHOST;
	return real(node, service, &h, res);
}
