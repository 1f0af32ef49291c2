// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: frame_recv(), the wire frame decoder, on a stream of frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "frame.h"
#include "fuzz.h"

#define FUZZ_FRAME_CAP	4096	/* a receiver's payload buffer smaller than RSYS_MAX_PAYLOAD */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char *buf;
	struct rsys_frame f;
	int i, ret;

	if (fd < 0) {
		/* the decoder reads an fd: a memfd holds the input */
		fd = memfd_create("fuzz-frame", MFD_CLOEXEC);
		buf = malloc(FUZZ_FRAME_CAP);
		if (fd < 0 || !buf)
			abort();
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET))
		abort();
	/* every frame of the stream, until the decoder refuses one or the input ends */
	for (i = 0; i < 64; i++) {
		ret = frame_recv(fd, &f, buf, FUZZ_FRAME_CAP);
		if (ret)
			break;
		if (f.len > FUZZ_FRAME_CAP || f.magic != RSYS_MAGIC)
			abort();
	}
	return 0;
}
