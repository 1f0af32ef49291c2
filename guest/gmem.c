// SPDX-License-Identifier: GPL-2.0
/*
 * A guest process's memory as the VMM reads it. The VMM walks the guest's
 * 4- or 5-level page tables itself (no KVM_TRANSLATE: any thread may read, and a
 * walk costs no system call). Every table and page must lie in guest RAM;
 * what the guest writes to its tables meanwhile may make a walk fail, never
 * read outside RAM.
 */
#include <errno.h>
#include <string.h>

#include "gmem.h"

#define PTE_P		(1ULL << 0)
#define PTE_RW		(1ULL << 1)
#define PTE_US		(1ULL << 2)
#define PTE_PS		(1ULL << 7)
#define PTE_ADDR	0x000ffffffffff000ULL
#define PAGE_SIZE	4096ULL

/* The entry at guest physical @table, index @i, or 0 (not present) if the table is outside RAM. */
static uint64_t read_entry(const struct gmem *m, uint64_t table, unsigned int i)
{
	uint64_t e, at = table + i * 8ULL;

	if (at + 8 > m->size || at < table)
		return 0;
	memcpy(&e, m->base + at, sizeof(e));
	return e;
}

int gmem_translate(const struct gmem *m, uint64_t cr3, uint64_t va, bool write, uint64_t *gpa)
{
	uint64_t table = gmem_root(cr3), e = 0, size = 0;
	int levels = m->levels == 5 ? 5 : 4, level;

	/* user addresses are canonical with the top bit clear: bit 47, or 56 with 5 levels */
	if (va >> (levels == 5 ? 56 : 47))
		return -EFAULT;
	for (level = levels; level >= 1; level--) {
		unsigned int shift = 12 + 9 * (unsigned int)(level - 1);

		e = read_entry(m, table, (unsigned int)(va >> shift) & 511);
		if (!(e & PTE_P) || !(e & PTE_US) || (write && !(e & PTE_RW)))
			return -EFAULT;
		if (level == 1 || ((level == 2 || level == 3) && (e & PTE_PS))) {
			size = 1ULL << shift;
			break;
		}
		if (level >= 4 && (e & PTE_PS))
			return -EFAULT;		/* reserved: no 512 GiB pages */
		table = e & PTE_ADDR;
	}
	/* a large page's base is aligned to its size (bit 12 of a large entry is PAT) */
	*gpa = ((e & PTE_ADDR) & ~(size - 1)) | (va & (size - 1));
	if (*gpa >= m->size)
		return -EFAULT;
	return 0;
}

/* Bytes of the page holding @va from @va on, and where they are in the VMM; 0 if unmapped. */
static size_t span(const struct gmem *m, uint64_t cr3, uint64_t va, bool write, uint8_t **at)
{
	uint64_t gpa, n = PAGE_SIZE - (va & (PAGE_SIZE - 1));

	if (gmem_translate(m, cr3, va, write, &gpa))
		return 0;
	if (gpa + n > m->size)
		n = m->size - gpa;
	*at = m->base + gpa;
	return (size_t)n;
}

/*
 * Copy from @va page by page: a page not mapped for user-mode reads ends
 * the copy, or with @holes reads as zeros (as does anything past the top
 * of the address space). The bytes copied from mapped pages.
 */
static size_t read_pages(const struct gmem *m, uint64_t cr3, uint64_t va, uint8_t *dst,
			 size_t len, bool holes)
{
	size_t done = 0, mapped = 0, n;
	uint8_t *at = NULL;

	while (done < len && va + done >= va) {
		n = span(m, cr3, va + done, false, &at);
		if (!n && !holes)
			break;
		if (n) {
			n = n > len - done ? len - done : n;
			memcpy(dst + done, at, n);
			mapped += n;
		} else {
			n = PAGE_SIZE - ((va + done) & (PAGE_SIZE - 1));
			n = n > len - done ? len - done : n;
			memset(dst + done, 0, n);
		}
		done += n;
	}
	if (holes)
		memset(dst + done, 0, len - done);
	return mapped;
}

size_t gmem_read_upto(const struct gmem *m, uint64_t cr3, uint64_t va, void *dst, size_t len)
{
	return read_pages(m, cr3, va, dst, len, false);
}

size_t gmem_read_holes(const struct gmem *m, uint64_t cr3, uint64_t va, void *dst, size_t len)
{
	return read_pages(m, cr3, va, dst, len, true);
}

int gmem_read(const struct gmem *m, uint64_t cr3, uint64_t va, void *dst, size_t len)
{
	if (va + len < va)
		return -EFAULT;
	return gmem_read_upto(m, cr3, va, dst, len) == len ? 0 : -EFAULT;
}

int gmem_write(const struct gmem *m, uint64_t cr3, uint64_t va, const void *src, size_t len)
{
	size_t done = 0, n;
	uint8_t *at;

	if (va + len < va)
		return -EFAULT;
	while (done < len) {
		n = span(m, cr3, va + done, true, &at);
		if (!n)
			return -EFAULT;
		if (n > len - done)
			n = len - done;
		memcpy(at, (const uint8_t *)src + done, n);
		done += n;
	}
	return 0;
}
