// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: addr_parse(), the transport address parser ("unix:", "tcp:", "vsock:"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char *s;

	/* Addresses come from argv and policy lines: C strings. */
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	if (!addr_parse(s, &ss, &len, NULL) && (len == 0 || len > sizeof(ss)))
		abort();
	free(s);
	return 0;
}
