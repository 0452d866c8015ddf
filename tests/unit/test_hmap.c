// SPDX-License-Identifier: BSD-2-Clause
/* The bounded hash map behind the collector's per-flow state. */
#include <errno.h>
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_find_remove),
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_iterate_and_remove),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
