// SPDX-License-Identifier: BSD-2-Clause
/* The bounded hash map behind the collector's per-flow state: what it
 * stores, its bound, iteration with removal, and what an entry costs. */
#include <errno.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "hmap.h"

struct key {
	uint64_t a;
	uint32_t b;
	uint32_t pad;
};

static void test_insert_find_remove(void **state)
{
	struct pf_hmap *m = pf_hmap__new(sizeof(struct key), sizeof(uint64_t), 100000);
	int created;

	assert_non_null(m);
	for (uint64_t i = 0; i < 50000; i++) {
		struct key k = {.a = i * 7919, .b = (uint32_t)i};
		uint64_t *v = pf_hmap__upsert(m, &k, &created);

		assert_non_null(v);
		assert_int_equal(created, 1);
		assert_int_equal(*v, 0); /* new values are zeroed */
		*v = i + 1;
	}
	assert_int_equal(pf_hmap__count(m), 50000);
	for (uint64_t i = 0; i < 50000; i++) {
		struct key k = {.a = i * 7919, .b = (uint32_t)i};
		uint64_t *v = pf_hmap__upsert(m, &k, &created);

		assert_int_equal(created, 0);
		assert_int_equal(*v, i + 1);
	}
	for (uint64_t i = 0; i < 50000; i += 2) {
		struct key k = {.a = i * 7919, .b = (uint32_t)i};

		assert_int_equal(pf_hmap__remove(m, &k), 0);
		assert_int_equal(pf_hmap__remove(m, &k), -ENOENT);
	}
	assert_int_equal(pf_hmap__count(m), 25000);
	for (uint64_t i = 0; i < 50000; i++) {
		struct key k = {.a = i * 7919, .b = (uint32_t)i};
		uint64_t *v = pf_hmap__find(m, &k);

		if (i % 2)
			assert_true(v && *v == i + 1);
		else
			assert_null(v);
	}
	pf_hmap__free(m);
}

static void test_bound(void **state)
{
	struct pf_hmap *m = pf_hmap__new(sizeof(uint64_t), 8, 3);
	uint64_t k;

	for (k = 0; k < 3; k++)
		assert_non_null(pf_hmap__upsert(m, &k, NULL));
	errno = 0;
	assert_null(pf_hmap__upsert(m, &k, NULL));
	assert_int_equal(errno, ENOSPC);
	/* An existing key is still found when full. */
	k = 1;
	assert_non_null(pf_hmap__upsert(m, &k, NULL));
	pf_hmap__free(m);
	pf_hmap__free(NULL);
}

/* Removing the entry just returned must not disturb the iteration: the
 * collector deletes completed flows while it walks. */
static void test_iterate_and_remove(void **state)
{
	struct pf_hmap *m = pf_hmap__new(sizeof(uint64_t), 8, 10000);
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;
	uint64_t seen = 0, sum = 0;

	for (uint64_t i = 1; i <= 5000; i++) {
		uint64_t *val = pf_hmap__upsert(m, &i, NULL);

		*val = i;
	}
	while (pf_hmap__next(m, &it, &k, &v)) {
		seen++;
		sum += *(uint64_t *)v;
		assert_int_equal(*(const uint64_t *)k, *(uint64_t *)v);
		assert_int_equal(pf_hmap__remove(m, k), 0);
	}
	assert_int_equal(seen, 5000);
	assert_int_equal(sum, 5000ull * 5001 / 2);
	assert_int_equal(pf_hmap__count(m), 0);
	/* A finished iterator stays finished. */
	assert_int_equal(pf_hmap__next(m, &it, &k, &v), 0);
	pf_hmap__free(m);
}

/* The collector's per-flow state: a 48-byte flow key and a 48-byte value. */
struct flow_key {
	uint64_t cookie;
	uint8_t addrs[32];
	uint16_t lport, rport;
	uint8_t proto, pad[3];
};

static void fill(struct pf_hmap *m, size_t n, uint64_t salt)
{
	for (size_t i = 0; i < n; i++) {
		struct flow_key k = {.cookie = i * 2654435761u + salt, .lport = (uint16_t)i};
		uint64_t *v = pf_hmap__upsert(m, &k, NULL);

		assert_non_null(v);
		v[5] = i;
	}
}

/*
 * 200,000 entries (100,000 connections with both ends on the host) of a
 * 48-byte key and value: a node is a pointer, the key and the value, 104
 * bytes, carved from slabs of 16, 32, ... 4,096 nodes (200,688 carved),
 * plus 262,144 bucket pointers. Removing them all gives the memory back;
 * removed nodes are reused before a new slab is made.
 */
static void test_bytes_per_entry(void **state)
{
	struct pf_hmap *m = pf_hmap__new(sizeof(struct flow_key), 48, 1 << 20);
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;
	size_t full;

	assert_int_equal(sizeof(struct flow_key), 48);
	assert_non_null(m);
	assert_int_equal(pf_hmap__bytes(m), 64 * 8);
	fill(m, 200000, 0);
	assert_int_equal(pf_hmap__count(m), 200000);
	/* 56 slabs of 16-byte headers. */
	full = 200688 * 104 + 56 * 16 + 262144 * 8;
	assert_int_equal(pf_hmap__bytes(m), full);
	/* 1,000 out, 1,000 others in: the same nodes, no new slab. */
	for (size_t i = 0; i < 1000; i++) {
		struct flow_key key = {.cookie = i * 2654435761u, .lport = (uint16_t)i};

		assert_int_equal(pf_hmap__remove(m, &key), 0);
	}
	fill(m, 1000, 1);
	assert_int_equal(pf_hmap__count(m), 200000);
	assert_int_equal(pf_hmap__bytes(m), full);
	while (pf_hmap__next(m, &it, &k, &v))
		assert_int_equal(pf_hmap__remove(m, k), 0);
	assert_int_equal(pf_hmap__count(m), 0);
	assert_int_equal(pf_hmap__bytes(m), 64 * 8);
	/* And fills again. */
	fill(m, 300, 7);
	assert_int_equal(pf_hmap__count(m), 300);
	pf_hmap__free(m);
}

/*
 * The same from the allocator's side (glibc's count of bytes in use), which
 * also sees what a node allocated on its own costs: at most 116 bytes per
 * entry in all (104 for the node, 10.5 for the buckets), against 138.5
 * when every node was its own calloc (a 128-byte chunk holding a stored
 * hash too). Not under AddressSanitizer, whose allocator keeps its own
 * books.
 */
/* Bytes the allocator has handed out: the heap's and the mmap'd blocks'. */
static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static void test_heap_per_entry(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
	skip();
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	skip();
#endif
#endif
	size_t before = heap_in_use(), used;
	struct pf_hmap *m = pf_hmap__new(sizeof(struct flow_key), 48, 1 << 20);

	assert_non_null(m);
	fill(m, 200000, 0);
	used = heap_in_use() - before;
	print_message("heap per entry: %.1f bytes\n", (double)used / 200000);
	assert_true(used <= (size_t)200000 * 116);
	pf_hmap__free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_iterate_and_remove),
		cmocka_unit_test(test_bytes_per_entry),
		cmocka_unit_test(test_heap_per_entry),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
