/* SPDX-License-Identifier: GPL-2.0 */
/* A guest process's memory as the VMM reads it: x86-64 page walks over guest RAM. */
#ifndef RSYS_GMEM_H
#define RSYS_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Guest RAM: guest physical 0 .. size-1 at base in the VMM. */
struct gmem {
	uint8_t *base;
	uint64_t size;
	unsigned int levels;	/* the guest's paging: 4, or 5 with CR4.LA57 (0: 4) */
};

/* The page-table root a CR3 value names (PCID and the no-flush bit dropped). */
static inline uint64_t gmem_root(uint64_t cr3)
{
	return cr3 & 0x000ffffffffff000ULL;
}

/*
 * Translate the user address @va of the address space @cr3 (m->levels
 * levels of page tables) as a user-mode access would: every level present and user-accessible,
 * writable too when @write. The guest physical address in *@gpa. 0, or
 * -EFAULT (not mapped, not for user mode, read-only for a write, a
 * non-canonical address, or a table outside RAM).
 */
int gmem_translate(const struct gmem *m, uint64_t cr3, uint64_t va, bool write, uint64_t *gpa);

/* Copy @len bytes at @va of @cr3 out of / into the guest, page by page: 0 or -EFAULT (nothing promised of a partial copy). */
int gmem_read(const struct gmem *m, uint64_t cr3, uint64_t va, void *dst, size_t len);
int gmem_write(const struct gmem *m, uint64_t cr3, uint64_t va, const void *src, size_t len);

/*
 * Copy from @va up to @len bytes, stopping at the first page that is not
 * mapped for user-mode reads: the bytes copied (0 if @va's page is not).
 */
size_t gmem_read_upto(const struct gmem *m, uint64_t cr3, uint64_t va, void *dst, size_t len);

/*
 * Copy @len bytes from @va, the pages not mapped for user-mode reads
 * (holes: a process's stack has untouched pages between its pointers and
 * its strings) as zeros: the bytes that were mapped (0 if none).
 */
size_t gmem_read_holes(const struct gmem *m, uint64_t cr3, uint64_t va, void *dst, size_t len);

#endif
