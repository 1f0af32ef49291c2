/* SPDX-License-Identifier: GPL-2.0 */
/* What the libFuzzer targets share: the libFuzzer entry point and a resolver that never leaves the machine. */
#ifndef RSYS_FUZZ_H
#define RSYS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
