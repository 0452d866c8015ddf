// SPDX-License-Identifier: BSD-2-Clause
/*
 * The allocator's thresholds (lib/memtune.h): in a thread of its own, as
 * the ClickHouse sender is, buffers of a few MiB allocated and freed in
 * turn (batches read from the spool) leave nothing resident behind once
 * freed. Without the fixed thresholds, glibc moves the second and later
 * ones into the thread's heap arena and keeps them there (the soak's
 * one-time RSS step). Under a sanitizer the allocator is not glibc's:
 * nothing to check.
 */
#include <malloc.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "memtune.h"

#if defined(__SANITIZE_ADDRESS__)
#define PF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define PF_SANITIZED 1
#endif
#endif

/* Free bytes glibc holds in its heaps (every arena, top chunks included). */
static size_t held_free(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.fordblks;
}

static void *batches(void *arg)
{
	/* Sizes as the spool's batches come: the first large, then smaller. */
	static const size_t sizes[] = {6u << 20, 5u << 20, 3u << 20, 4u << 20, 2u << 20};
	size_t *worst = arg;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		char *b = malloc(sizes[i]);
		size_t held;

		if (!b)
			return NULL;
		memset(b, 'x', sizes[i]); /* touched, as a read batch is */
		free(b);
		held = held_free();
		if (held > *worst)
			*worst = held;
	}
	return arg;
}

static void test_freed_batches_leave_nothing(void **state)
{
	size_t worst = 0;
	pthread_t t;
	void *ret;

	(void)state;
#ifdef PF_SANITIZED
	skip();
#endif
	assert_int_equal(pf_memtune__init(), 0);
	assert_int_equal(pthread_create(&t, NULL, batches, &worst), 0);
	assert_int_equal(pthread_join(t, &ret), 0);
	assert_non_null(ret);
	/* Small allocations of the process itself stay below 1 MiB; a kept
	 * batch would be 2 MiB or more. */
	if (worst >= (1u << 20))
		fail_msg("%zu bytes free but held by the allocator after the batches", worst);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_freed_batches_leave_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
