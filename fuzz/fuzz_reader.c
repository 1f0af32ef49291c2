// SPDX-License-Identifier: GPL-2.0
/* libFuzzer target: the buffered frame reader (frame_reader_fill/next) on a stream of frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "frame.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	struct frame_reader rd;
	struct rsys_frame f;
	uint8_t *payload;
	int i, ret, rfd;

	if (fd < 0) {
		/* the reader reads an fd: a memfd holds the input (plain reads, no fds) */
		fd = memfd_create("fuzz-reader", MFD_CLOEXEC);
		if (fd < 0)
			abort();
	}
	if (ftruncate(fd, 0) || pwrite(fd, data, size, 0) != (ssize_t)size ||
	    lseek(fd, 0, SEEK_SET))
		abort();
	if (frame_reader_init(&rd, fd, true))
		abort();
	/* every frame of the stream, until the reader refuses one or the input ends */
	for (i = 0; i < 256; i++) {
		ret = frame_reader_next(&rd, &f, &payload, &rfd);
		if (ret < 0)
			break;
		if (ret == 0) {
			if (frame_reader_fill(&rd, true) < 0)
				break;
			continue;
		}
		if (f.len > RSYS_MAX_PAYLOAD || f.magic != RSYS_MAGIC || rfd != -1 ||
		    payload < rd.buf || payload + f.len > rd.buf + rd.cap)
			abort();
		/* the payload is the caller's to read */
		if (f.len && (payload[0] | payload[f.len - 1]) == 0x100)
			abort();
	}
	frame_reader_free(&rd);
	return 0;
}
