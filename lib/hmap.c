// SPDX-License-Identifier: BSD-2-Clause
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pf_hnode {
	struct pf_hnode *next;
	uint64_t hash;
	/* key bytes, then value bytes (aligned to 8) */
	unsigned char data[];
};

struct pf_hmap {
	struct pf_hnode **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	size_t max;
	size_t key_size;
	size_t val_off; /* key_size rounded up to 8 */
	size_t val_size;
};

/* FNV-1a over the key, then a final mix: keys are small (16..64 bytes). */
static uint64_t hash_bytes(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

struct pf_hmap *pf_hmap__new(size_t key_size, size_t val_size, size_t max_entries)
{
	struct pf_hmap *m;

	if (!key_size || !max_entries) {
		errno = EINVAL;
		return NULL;
	}
	m = calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->nbuckets = 64;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	m->max = max_entries;
	m->key_size = key_size;
	m->val_off = (key_size + 7) & ~(size_t)7;
	m->val_size = val_size;
	return m;
}

void pf_hmap__free(struct pf_hmap *m)
{
	if (!m)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct pf_hnode *n = m->buckets[i];

		while (n) {
			struct pf_hnode *next = n->next;

			free(n);
			n = next;
		}
	}
	free(m->buckets);
	free(m);
}

static struct pf_hnode *lookup(const struct pf_hmap *m, const void *key, uint64_t h)
{
	for (struct pf_hnode *n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next)
		if (n->hash == h && !memcmp(n->data, key, m->key_size))
			return n;
	return NULL;
}

void *pf_hmap__find(const struct pf_hmap *m, const void *key)
{
	struct pf_hnode *n = lookup(m, key, hash_bytes(key, m->key_size));

	return n ? n->data + m->val_off : NULL;
}

/* Double the bucket array; on allocation failure keep the old one (the map
 * still works, only slower). */
static void grow(struct pf_hmap *m)
{
	size_t nb = m->nbuckets * 2;
	struct pf_hnode **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (size_t i = 0; i < m->nbuckets; i++) {
		struct pf_hnode *n = m->buckets[i];

		while (n) {
			struct pf_hnode *next = n->next;

			n->next = b[n->hash & (nb - 1)];
			b[n->hash & (nb - 1)] = n;
			n = next;
		}
	}
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = nb;
}

void *pf_hmap__upsert(struct pf_hmap *m, const void *key, int *created)
{
	uint64_t h = hash_bytes(key, m->key_size);
	struct pf_hnode *n = lookup(m, key, h);

	if (created)
		*created = 0;
	if (n)
		return n->data + m->val_off;
	if (m->count >= m->max) {
		errno = ENOSPC;
		return NULL;
	}
	n = calloc(1, sizeof(*n) + m->val_off + m->val_size);
	if (!n)
		return NULL;
	n->hash = h;
	memcpy(n->data, key, m->key_size);
	if (m->count >= m->nbuckets)
		grow(m);
	n->next = m->buckets[h & (m->nbuckets - 1)];
	m->buckets[h & (m->nbuckets - 1)] = n;
	m->count++;
	if (created)
		*created = 1;
	return n->data + m->val_off;
}

int pf_hmap__remove(struct pf_hmap *m, const void *key)
{
	uint64_t h = hash_bytes(key, m->key_size);
	struct pf_hnode **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		struct pf_hnode *n = *pp;

		if (n->hash == h && !memcmp(n->data, key, m->key_size)) {
			*pp = n->next;
			free(n);
			m->count--;
			return 0;
		}
	}
	return -ENOENT;
}

size_t pf_hmap__count(const struct pf_hmap *m)
{
	return m->count;
}

/* The successor is saved before an entry is returned, so the caller may
 * remove the entry it was just given. */
int pf_hmap__next(const struct pf_hmap *m, struct pf_hmap_iter *it, const void **key, void **val)
{
	struct pf_hnode *n = it->next;

	if (!it->started) {
		it->started = 1;
		it->bucket = 0;
		n = m->buckets[0];
	}
	while (!n) {
		if (++it->bucket >= m->nbuckets) {
			it->next = NULL;
			return 0;
		}
		n = m->buckets[it->bucket];
	}
	it->next = n->next;
	*key = n->data;
	*val = n->data + m->val_off;
	return 1;
}
