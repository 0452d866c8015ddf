// SPDX-License-Identifier: BSD-2-Clause
/*
 * The bounded hash map (see hmap.h).
 *
 * Its entries are the collector's per-flow state, one per live flow: at
 * 100,000 connections with both ends on the host, 200,000 of them in each
 * of several maps. Memory per entry is what counts, so a node is only a
 * chain pointer, the key and the value: no stored hash (a key is hashed
 * again when the table grows, which is rare), and no allocation of its own
 * (a malloc'd node costs 8 to 16 bytes of allocator overhead, as much as a
 * small value). Nodes are carved from slabs of growing size, removed nodes
 * are reused, and when the map becomes empty its slabs are freed.
 */
#include "hmap.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct pf_hnode {
	struct pf_hnode *next;
	/* key bytes, then value bytes (aligned to 8) */
	unsigned char data[];
};

/* Nodes of a slab: the first slab holds HMAP_SLAB_MIN (or the bound, if
 * less), each next one twice as many, up to HMAP_SLAB_MAX. */
#define HMAP_SLAB_MIN 16
#define HMAP_SLAB_MAX 4096
#define HMAP_BUCKETS0 64

struct pf_hslab {
	struct pf_hslab *next;
	size_t n;
	unsigned char mem[] __attribute__((aligned(16)));
};

struct pf_hmap {
	struct pf_hnode **buckets;
	size_t nbuckets; /* power of two */
	size_t count;
	size_t max;
	size_t key_size;
	size_t val_off; /* key_size rounded up to 8 */
	size_t val_size;
	size_t node_size;
	struct pf_hslab *slabs; /* newest first */
	size_t fresh;		/* nodes of the newest slab never used */
	size_t carved;		/* nodes in all slabs */
	struct pf_hnode *free;	/* removed nodes, for reuse */
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
	m->nbuckets = HMAP_BUCKETS0;
	m->buckets = calloc(m->nbuckets, sizeof(*m->buckets));
	if (!m->buckets) {
		free(m);
		return NULL;
	}
	m->max = max_entries;
	m->key_size = key_size;
	m->val_off = (key_size + 7) & ~(size_t)7;
	m->val_size = val_size;
	m->node_size = (sizeof(struct pf_hnode) + m->val_off + val_size + 7) & ~(size_t)7;
	return m;
}

static void slabs_free(struct pf_hmap *m)
{
	struct pf_hslab *s, *next;

	for (s = m->slabs; s; s = next) {
		next = s->next;
		free(s);
	}
	m->slabs = NULL;
	m->fresh = 0;
	m->carved = 0;
	m->free = NULL;
}

void pf_hmap__free(struct pf_hmap *m)
{
	if (!m)
		return;
	slabs_free(m);
	free(m->buckets);
	free(m);
}

/* A zeroed node: a removed one, else the next of the newest slab, else
 * the first of a new slab. NULL on ENOMEM. */
static struct pf_hnode *node_alloc(struct pf_hmap *m)
{
	struct pf_hnode *n = m->free;
	struct pf_hslab *s;
	size_t want;

	if (n) {
		m->free = n->next;
	} else {
		if (!m->fresh) {
			want = m->slabs ? m->slabs->n * 2 : HMAP_SLAB_MIN;
			if (want > HMAP_SLAB_MAX)
				want = HMAP_SLAB_MAX;
			/* Never more nodes than the bound can use. */
			if (want > m->max - m->carved)
				want = m->max - m->carved;
			s = malloc(sizeof(*s) + want * m->node_size);
			if (!s)
				return NULL;
			s->n = want;
			s->next = m->slabs;
			m->slabs = s;
			m->fresh = want;
			m->carved += want;
		}
		s = m->slabs;
		n = (struct pf_hnode *)(s->mem + (s->n - m->fresh) * m->node_size);
		m->fresh--;
	}
	memset(n, 0, m->node_size);
	return n;
}

static struct pf_hnode *lookup(const struct pf_hmap *m, const void *key, uint64_t h)
{
	for (struct pf_hnode *n = m->buckets[h & (m->nbuckets - 1)]; n; n = n->next)
		if (!memcmp(n->data, key, m->key_size))
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
			size_t j = hash_bytes(n->data, m->key_size) & (nb - 1);

			n->next = b[j];
			b[j] = n;
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
	n = node_alloc(m);
	if (!n) {
		errno = ENOMEM;
		return NULL;
	}
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

/* An empty map gives its memory back: the collector's tables empty and
 * fill again every interval, and a busy interval must not leave its peak
 * behind for good. */
static void shrink_if_empty(struct pf_hmap *m)
{
	struct pf_hnode **b;

	if (m->count)
		return;
	slabs_free(m);
	if (m->nbuckets == HMAP_BUCKETS0)
		return;
	b = calloc(HMAP_BUCKETS0, sizeof(*b));
	if (!b)
		return; /* the old (empty) array serves */
	free(m->buckets);
	m->buckets = b;
	m->nbuckets = HMAP_BUCKETS0;
}

int pf_hmap__remove(struct pf_hmap *m, const void *key)
{
	uint64_t h = hash_bytes(key, m->key_size);
	struct pf_hnode **pp = &m->buckets[h & (m->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->next) {
		struct pf_hnode *n = *pp;

		if (!memcmp(n->data, key, m->key_size)) {
			*pp = n->next;
			n->next = m->free;
			m->free = n;
			m->count--;
			shrink_if_empty(m);
			return 0;
		}
	}
	return -ENOENT;
}

size_t pf_hmap__count(const struct pf_hmap *m)
{
	return m->count;
}

size_t pf_hmap__bytes(const struct pf_hmap *m)
{
	size_t b = m->nbuckets * sizeof(*m->buckets);

	for (const struct pf_hslab *s = m->slabs; s; s = s->next)
		b += sizeof(*s) + s->n * m->node_size;
	return b;
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
