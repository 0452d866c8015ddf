/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A bounded hash map with fixed-size keys and values, stored inline.
 *
 * Keys are compared as bytes, so key structs must be fully initialised
 * (padding zeroed). Chained buckets; the table doubles when the load
 * factor passes 1, up to the bound given at creation. An entry costs a
 * pointer, its key and its value (each rounded up to 8 bytes), plus a
 * bucket pointer: no allocation of its own. A map that becomes empty frees
 * its memory.
 */
#ifndef PF_HMAP_H
#define PF_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct pf_hmap;

/* New map; at most @max_entries entries. Returns NULL with errno set. */
struct pf_hmap *pf_hmap__new(size_t key_size, size_t val_size, size_t max_entries);
void pf_hmap__free(struct pf_hmap *m); /* accepts NULL */

/* The value stored for @key, or NULL. */
void *pf_hmap__find(const struct pf_hmap *m, const void *key);

/*
 * The value for @key, inserting a zeroed one when absent (*@created set to
 * 1 then, else 0). Returns NULL with errno ENOSPC when the map is full,
 * ENOMEM when allocation fails.
 */
void *pf_hmap__upsert(struct pf_hmap *m, const void *key, int *created);

/* Remove @key. Returns 0, or -ENOENT. */
int pf_hmap__remove(struct pf_hmap *m, const void *key);

size_t pf_hmap__count(const struct pf_hmap *m);

/* Bytes the map holds for its entries and buckets (not its fixed header):
 * what its memory costs, for the measurements. */
size_t pf_hmap__bytes(const struct pf_hmap *m);

/* Iteration state; zero it before the first pf_hmap__next(). */
struct pf_hmap_iter {
	size_t bucket;
	void *next;
	int started;
};

/*
 * Each call returns the next entry's key and value (through @key, @val)
 * and 1, or 0 at the end. Removing the entry just returned is allowed;
 * inserting during iteration is not.
 */
int pf_hmap__next(const struct pf_hmap *m, struct pf_hmap_iter *it, const void **key, void **val);

#endif
