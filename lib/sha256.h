/* SPDX-License-Identifier: GPL-2.0 */
/* Self-contained SHA-256 (FIPS 180-4) used to check a trusted program's passport. */
#ifndef RSYS_SHA256_H
#define RSYS_SHA256_H

#include <stddef.h>
#include <stdint.h>

struct sha256_ctx {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t used;
};

void sha256_init(struct sha256_ctx *c);
void sha256_update(struct sha256_ctx *c, const void *data, size_t len);
void sha256_final(struct sha256_ctx *c, uint8_t out[32]);

/* Digest of the whole open file @fd into @out: 0 or -errno. */
int sha256_fd(int fd, uint8_t out[32]);
/* Digest of the file at @path into @out: 0 or -errno. */
int sha256_file(const char *path, uint8_t out[32]);

#endif
