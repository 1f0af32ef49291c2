// SPDX-License-Identifier: GPL-2.0
/*
 * Which guest processes are trusted. A CR3 alone does not say: exec and
 * fork give a process a new address space, and a freed page-table root is
 * reused by the next process. The VMM therefore hands the program one
 * secret, a random token in its environment (written by the VMM into the
 * string the guest's init prepared, before the program's execve), and
 * trusts a process while its memory holds that token: exec puts the
 * environment at the top of the new stack and fork copies the stack, so
 * trust follows both, as in the host tier; a process started with another
 * environment (env -i) is not trusted. A remembered trusted address space
 * is checked again on every call (one page walk and a compare), so a reused
 * root never inherits trust.
 *
 * The guest kernel is in the trusted base: it keeps other processes out of
 * the program's memory. A guest process that may read it (ptrace rules:
 * the same uid, or CAP_SYS_PTRACE) can take the token, as it could make the
 * program itself do its calls; untrusted code in the guest must run as
 * another user. The program can hand the token on, which gives nothing it
 * could not do by proxying.
 */
#include <errno.h>
#include <string.h>
#include <stdlib.h>
#include <sys/random.h>

#include "vmtrust.h"

int vt_init(struct vt *t)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[RSYS_VM_TOKEN_LEN / 2];
	size_t off = sizeof(RSYS_VM_TOKEN_ENV) - 1, i;

	memset(t, 0, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -EIO;
	memcpy(t->needle, RSYS_VM_TOKEN_ENV, off);
	for (i = 0; i < sizeof(r); i++) {
		t->needle[off + 2 * i] = hex[r[i] >> 4];
		t->needle[off + 2 * i + 1] = hex[r[i] & 15];
	}
	return 0;
}

static struct vt_mm *find(struct vt *t, uint64_t root)
{
	unsigned int i;

	for (i = 0; i < VT_MM_MAX; i++)
		if (t->mm[i].root == root)
			return &t->mm[i];
	return NULL;
}

/*
 * A fingerprint of the user half of the top page table at @root: which
 * tables map the process's first 128 TiB. It changes when the root page
 * is freed and reused by another process (its tables are new pages), and
 * seldom in a process's life (a new 512 GiB region). 0 if unreadable.
 */
static uint64_t vt_print(const struct gmem *m, uint64_t root)
{
	uint64_t h = 0xcbf29ce484222325ULL, e;
	unsigned int i;

	if (root + 2048 > m->size || root + 2048 < root)
		return 0;
	for (i = 0; i < 256; i++) {
		memcpy(&e, m->base + root + i * 8, sizeof(e));
		h = (h ^ e) * 0x100000001b3ULL;
	}
	return h;
}

static void remember(struct vt *t, uint64_t root, bool trusted, uint64_t token_va,
		     uint64_t print)
{
	struct vt_mm *e = find(t, root);

	if (!e)
		e = find(t, 0);
	if (!e) {
		e = &t->mm[t->victim];
		t->victim = (t->victim + 1) % VT_MM_MAX;
	}
	*e = (struct vt_mm){ .root = root, .trusted = trusted, .token_va = token_va,
			     .print = print };
}

int vt_announce(struct vt *t, const struct gmem *m, uint64_t cr3, uint64_t va)
{
	const size_t plen = sizeof(RSYS_VM_TOKEN_ENV) - 1;
	char s[VT_STRING_LEN + 1];
	int err = 0;
	size_t i;

	pthread_mutex_lock(&t->lock);
	if (t->announced) {
		err = -EALREADY;
		goto out;
	}
	t->announced = true;
	if (gmem_read(m, cr3, va, s, sizeof(s))) {
		err = -EFAULT;
		goto out;
	}
	for (i = plen; i < VT_STRING_LEN; i++)
		if (s[i] != '0')
			break;
	if (memcmp(s, RSYS_VM_TOKEN_ENV, plen) || i < VT_STRING_LEN || s[VT_STRING_LEN]) {
		err = -EINVAL;
		goto out;
	}
	err = gmem_write(m, cr3, va + plen, t->needle + plen, RSYS_VM_TOKEN_LEN);
	if (!err)
		remember(t, gmem_root(cr3), true, va, 0);
out:
	pthread_mutex_unlock(&t->lock);
	return err;
}

/* Does @cr3 hold the token at @va? */
static bool holds(struct vt *t, const struct gmem *m, uint64_t cr3, uint64_t va)
{
	char s[VT_NEEDLE_LEN];

	return !gmem_read(m, cr3, va, s, sizeof(s)) && !memcmp(s, t->needle, sizeof(s));
}

/*
 * Where the token is above @sp in @cr3, or 0. Pages not mapped are read as
 * zeros, which the token has none of: exec leaves a random gap of up to
 * 8 KiB (arch_align_stack) between the pointers at @sp and the strings
 * above, and a page of it is not mapped until touched.
 */
static uint64_t search(struct vt *t, const struct gmem *m, uint64_t cr3, uint64_t sp)
{
	uint64_t from = sp & ~4095ULL;
	uint64_t va = 0;
	uint8_t *buf, *hit;

	buf = malloc(VT_SCAN_MAX);
	if (!buf)
		return 0;
	if (!gmem_read_holes(m, cr3, from, buf, VT_SCAN_MAX)) {
		free(buf);
		return 0;
	}
	hit = memmem(buf, VT_SCAN_MAX, t->needle, VT_NEEDLE_LEN);
	if (hit)
		va = from + (uint64_t)(hit - buf);
	free(buf);
	return va;
}

uint64_t vt_trusted(struct vt *t, const struct gmem *m, uint64_t cr3,
		    uint64_t (*rsp)(void *arg), void *arg, bool *fresh)
{
	uint64_t root = gmem_root(cr3), va, print;
	struct vt_mm *e;

	if (fresh)
		*fresh = false;
	pthread_mutex_lock(&t->lock);
	if (!t->announced) {
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	e = find(t, root);
	print = e && !e->trusted ? vt_print(m, root) : 0;
	if (e && !e->trusted && print == e->print) {
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	if (e && e->trusted && holds(t, m, cr3, e->token_va)) {
		va = e->token_va;
		pthread_mutex_unlock(&t->lock);
		return va;
	}
	va = search(t, m, cr3, rsp(arg));
	if (fresh)
		*fresh = va != 0;
	remember(t, root, va != 0, va, va ? 0 : vt_print(m, root));
	pthread_mutex_unlock(&t->lock);
	return va;
}

void vt_forget_untrusted(struct vt *t)
{
	unsigned int i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < VT_MM_MAX; i++)
		if (t->mm[i].root && !t->mm[i].trusted)
			t->mm[i] = (struct vt_mm){ 0 };
	pthread_mutex_unlock(&t->lock);
}

void vt_forget(struct vt *t, uint64_t cr3)
{
	struct vt_mm *e;

	pthread_mutex_lock(&t->lock);
	e = find(t, gmem_root(cr3));
	if (e)
		*e = (struct vt_mm){ 0 };
	pthread_mutex_unlock(&t->lock);
}
