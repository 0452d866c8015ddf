// SPDX-License-Identifier: BSD-2-Clause
/*
 * The process cache's tables grow with use (lib/proc_cache.c, grow()).
 *
 * calloc() and realloc() are wrapped (-Wl,--wrap, see CMakeLists.txt): the
 * wrappers note the largest request, which is what a table costs, and can
 * refuse the large ones, so that a growth fails while the identities
 * themselves (a few hundred bytes each) are still allocated.
 *
 * The bound is the agent's (PF_PROC_CACHE_MAX, 262,144) unless a test needs
 * to reach it. Times are made-up nanosecond values, as in test_proc_cache.c.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc_cache.h"

#define GRACE	  1000
#define AGENT_MAX (1u << 18)
/* A slot is a pointer and a PID, padded to two pointers. */
#define SLOT_BYTES (2 * sizeof(void *))
/* Larger than an identity (with its path and arguments), smaller than the
 * smallest table (1,024 slots, or a heap of 512 pointers). */
#define TABLE_MIN_BYTES 4096

/* ---- calloc/realloc: note the largest request, refuse large ones ---- */

void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);

static size_t largest;	   /* bytes of the largest request since reset */
static int fail_calloc;	   /* refuse calloc() of TABLE_MIN_BYTES or more */
static int fail_realloc;   /* the same for realloc() */
static unsigned fail_seed; /* non-zero: refuse such requests at random, 1 in 3 */

static int refuse(int flag, size_t bytes)
{
	if (bytes < TABLE_MIN_BYTES)
		return 0;
	if (fail_seed) {
		fail_seed = fail_seed * 1103515245u + 12345u;
		return (fail_seed >> 16) % 3 == 0;
	}
	return flag;
}

void *__wrap_calloc(size_t n, size_t size)
{
	size_t bytes = size && n > SIZE_MAX / size ? SIZE_MAX : n * size;

	if (bytes > largest)
		largest = bytes;
	if (refuse(fail_calloc, bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t size)
{
	if (size > largest)
		largest = size;
	if (refuse(fail_realloc, size)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, size);
}

static int reset_allocs(void **state)
{
	largest = 0;
	fail_calloc = fail_realloc = 0;
	fail_seed = 0;
	return 0;
}

/* ---- helpers ---- */

/* Distinct PIDs spread over the PID space (an odd multiplier is a
 * bijection modulo 2^22, the kernel's largest pid_max). */
static uint32_t pid_of(uint32_t i)
{
	return ((i * 2654435761u) & ((1u << 22) - 1)) + 1;
}

static uint64_t start_of(uint32_t i)
{
	return 1000000ull + i * 13ull;
}

/* Identity @i: its own PID, start, path and arguments. */
static int exec_nth(struct pf_proc_cache *c, uint32_t i)
{
	char path[64], args[64];

	snprintf(path, sizeof(path), "/usr/bin/prog-%u", i);
	snprintf(args, sizeof(args), "--id %u --start %llu", i, (unsigned long long)start_of(i));
	return pf_proc_cache__exec(c, pid_of(i), i % 1000 + 1, start_of(i), start_of(i) + 5,
				   i % 60000, 0, "prog", path, args, 0);
}

/* Identity @i is found, exactly as exec_nth() told it, at @ts. */
static void assert_nth(struct pf_proc_cache *c, uint32_t i, uint64_t ts)
{
	const struct pf_proc *p = pf_proc_cache__lookup(c, pid_of(i), ts);
	char path[64], args[64];

	snprintf(path, sizeof(path), "/usr/bin/prog-%u", i);
	snprintf(args, sizeof(args), "--id %u --start %llu", i, (unsigned long long)start_of(i));
	assert_non_null(p);
	assert_int_equal(p->pid, pid_of(i));
	assert_int_equal(p->ppid, i % 1000 + 1);
	assert_int_equal(p->uid, i % 60000);
	assert_int_equal(p->start_ns, start_of(i));
	assert_int_equal(p->since_ns, start_of(i) + 5);
	assert_non_null(p->path);
	assert_string_equal(p->path, path);
	assert_non_null(p->args);
	assert_string_equal(p->args, args);
}

static struct pf_proc_cache_stats stats(struct pf_proc_cache *c)
{
	struct pf_proc_cache_stats st;

	pf_proc_cache__stats(c, &st);
	return st;
}

/* ---- tests ---- */

/*
 * At the agent's bound the cache first takes the smallest table, not one
 * for 262,144 identities (8 MiB of slots, 2 MiB of heap); 5,000 processes
 * take four doublings, to the table 5,000 need (16,384 slots, the load at
 * most 1/2), and every one is still found exactly.
 */
static void test_starts_small_grows_with_use(void **state)
{
	struct pf_proc_cache *c = pf_proc_cache__new(AGENT_MAX, GRACE);
	struct pf_proc_cache_stats st;
	uint32_t i;

	assert_non_null(c);
	assert_true(largest <= 1024 * SLOT_BYTES);
	assert_int_equal(stats(c).capacity, 512);

	for (i = 0; i < 5000; i++)
		assert_int_equal(exec_nth(c, i), 0);
	st = stats(c);
	assert_int_equal(st.entries, 5000);
	assert_int_equal(st.capacity, 8192);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.evicted, 0);
	assert_int_equal(st.grow_failed, 0);
	assert_true(largest <= 16384 * SLOT_BYTES);

	for (i = 0; i < 5000; i++)
		assert_nth(c, i, start_of(i) + 100);
	/* Before each exec, and PIDs never told: nobody. */
	for (i = 0; i < 5000; i++)
		assert_null(pf_proc_cache__lookup(c, pid_of(i), start_of(i) + 4));
	for (i = 5000; i < 10000; i++)
		assert_null(pf_proc_cache__lookup(c, pid_of(i), UINT64_MAX));
	pf_proc_cache__free(c);
}

/* The order in which identity @i (of @n) exits: a permutation of 0..n-1,
 * unlike the order of insertion. */
static uint32_t exit_rank(uint32_t i, uint32_t n)
{
	return (i * 7) % n;
}

/*
 * Ended identities wait in the heap across growths: collection after the
 * grace period, and eviction oldest-ended first once the bound is reached,
 * take exactly the identities they took with a table fixed at creation.
 * The bound (3,000) is not a power of two: the last growth stops at it.
 */
static void test_grace_and_eviction_across_growth(void **state)
{
	struct pf_proc_cache *c = pf_proc_cache__new(3000, GRACE);
	struct pf_proc_cache_stats st;
	uint32_t i;

	assert_non_null(c);
	/* 400 processes, all exited, in an order of their own. */
	for (i = 0; i < 400; i++)
		assert_int_equal(exec_nth(c, i), 0);
	for (i = 0; i < 400; i++)
		pf_proc_cache__exit(c, pid_of(i), start_of(i),
				    10000000 + exit_rank(i, 400) * 10ull);
	/* 2,000 more running ones: three growths while those 400 are in the
	 * heap. */
	for (i = 400; i < 2400; i++)
		assert_int_equal(exec_nth(c, i), 0);
	st = stats(c);
	assert_int_equal(st.capacity, 3000);
	assert_int_equal(st.evicted, 0);

	/* The 200 that exited first are past their grace period. */
	pf_proc_cache__gc(c, 10000000 + 200 * 10 + GRACE);
	assert_int_equal(stats(c).entries, 2200);
	for (i = 0; i < 400; i++) {
		uint64_t exit_ns = 10000000 + exit_rank(i, 400) * 10ull;

		if (exit_rank(i, 400) < 200)
			assert_null(pf_proc_cache__lookup(c, pid_of(i), exit_ns - 1));
		else
			assert_nth(c, i, exit_ns - 1);
	}

	/* Up to the bound: nothing has to go. */
	for (i = 2400; i < 3200; i++)
		assert_int_equal(exec_nth(c, i), 0);
	st = stats(c);
	assert_int_equal(st.entries, 3000);
	assert_int_equal(st.evicted, 0);
	assert_int_equal(st.dropped, 0);

	/* Past it: each new one evicts the identity that ended first... */
	for (i = 3200; i < 3300; i++)
		assert_int_equal(exec_nth(c, i), 0);
	for (i = 0; i < 400; i++) {
		uint64_t exit_ns = 10000000 + exit_rank(i, 400) * 10ull;

		if (exit_rank(i, 400) < 300)
			assert_null(pf_proc_cache__lookup(c, pid_of(i), exit_ns - 1));
		else
			assert_nth(c, i, exit_ns - 1);
	}
	st = stats(c);
	assert_int_equal(st.evicted, 100);
	/* ... and once only running processes are left, new ones are
	 * refused and counted. */
	for (i = 3300; i < 3500; i++)
		assert_int_equal(exec_nth(c, i), i < 3400 ? 0 : -ENOSPC);
	st = stats(c);
	assert_int_equal(st.entries, 3000);
	assert_int_equal(st.capacity, 3000);
	assert_int_equal(st.evicted, 200);
	assert_int_equal(st.dropped, 100);
	assert_int_equal(st.grow_failed, 0);
	for (i = 0; i < 400; i++)
		assert_null(pf_proc_cache__lookup(c, pid_of(i), 10000000 + exit_rank(i, 400) * 10));
	for (i = 400; i < 3400; i++)
		assert_nth(c, i, start_of(i) + 100);
	for (i = 3400; i < 3500; i++)
		assert_null(pf_proc_cache__lookup(c, pid_of(i), UINT64_MAX));
	pf_proc_cache__free(c);
}

/* Growth refused (the slot table's or the heap's allocation, as @which
 * says): every identity stays, the present size bounds the cache as
 * max_entries would, and the next growth that works goes on from there. */
static void growth_failure(int *which)
{
	struct pf_proc_cache *c = pf_proc_cache__new(AGENT_MAX, GRACE);
	struct pf_proc_cache_stats st;
	uint32_t i;

	assert_non_null(c);
	for (i = 0; i < 512; i++)
		assert_int_equal(exec_nth(c, i), 0);
	*which = 1;

	/* Only running processes: a new one is refused. */
	assert_int_equal(exec_nth(c, 512), -ENOSPC);
	st = stats(c);
	assert_int_equal(st.entries, 512);
	assert_int_equal(st.capacity, 512);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.grow_failed, 1);
	for (i = 0; i < 512; i++)
		assert_nth(c, i, start_of(i) + 100);
	assert_null(pf_proc_cache__lookup(c, pid_of(512), UINT64_MAX));

	/* Two exit: the one that exited first makes room first. */
	pf_proc_cache__exit(c, pid_of(7), start_of(7), 9000000);
	pf_proc_cache__exit(c, pid_of(8), start_of(8), 8000000);
	assert_int_equal(exec_nth(c, 512), 0);
	assert_null(pf_proc_cache__lookup(c, pid_of(8), 7000000));
	assert_nth(c, 7, 7000000);
	assert_int_equal(exec_nth(c, 513), 0);
	assert_null(pf_proc_cache__lookup(c, pid_of(7), 7000000));
	/* An exec of a cached process evicts the program it ended. */
	assert_int_equal(pf_proc_cache__exec(c, pid_of(0), 1, start_of(0), 9500000, 0, 0, "next",
					     "/usr/bin/next", "", 0),
			 0);
	assert_string_equal(pf_proc_cache__lookup(c, pid_of(0), 9600000)->path, "/usr/bin/next");
	assert_null(pf_proc_cache__lookup(c, pid_of(0), 9000000));
	st = stats(c);
	assert_int_equal(st.entries, 512);
	assert_int_equal(st.capacity, 512);
	assert_int_equal(st.evicted, 3);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(st.grow_failed, 4);

	/* Memory again: the tables double and nothing was lost. */
	*which = 0;
	for (i = 514; i < 1500; i++)
		assert_int_equal(exec_nth(c, i), 0);
	st = stats(c);
	/* 0..1499 but 7 and 8; 0 with its new program. */
	assert_int_equal(st.entries, 1498);
	assert_int_equal(st.capacity, 2048);
	assert_int_equal(st.grow_failed, 4);
	assert_int_equal(st.dropped, 1);
	for (i = 1; i < 1500; i++) {
		if (i == 7 || i == 8)
			continue;
		assert_nth(c, i, start_of(i) + 100);
	}
	pf_proc_cache__free(c);
}

static void test_growth_failure_slots(void **state)
{
	growth_failure(&fail_calloc);
}

static void test_growth_failure_heap(void **state)
{
	growth_failure(&fail_realloc);
}

/*
 * Random events over 4,000 PIDs into a cache bounded at 2,500 whose
 * growths fail one time in three: the cache grows in fits and starts,
 * stays within its present size and its bound, and every lookup answers
 * with the asked PID and a window that holds the asked time, not past its
 * grace period. What a PID ran is checked against the model kept here for
 * the PIDs whose events all went in.
 * Under ASan this also checks that no identity is touched after a growth
 * moved or freed what pointed to it.
 */
static void test_random_growth_failures(void **state)
{
	enum { NPIDS = 4000, MAX = 2500 };
	struct pf_proc_cache *c = pf_proc_cache__new(MAX, GRACE);
	static uint64_t starts[NPIDS], progs[NPIDS];
	/* trusted: the PID's last exec went in and its life has not exited;
	 * dead: the life starts[] names has exited. */
	static unsigned char trusted[NPIDS], dead[NPIDS];
	struct pf_proc_cache_stats st;
	uint64_t now = 1, last_gc = 0;
	unsigned seed = 29;

	assert_non_null(c);
	fail_seed = 17;
	for (unsigned step = 0; step < 300000; step++) {
		uint32_t r, i, pid;
		const struct pf_proc *p;
		char path[48];
		int err;

		seed = seed * 1103515245u + 12345u;
		r = seed >> 4;
		i = r % NPIDS;
		pid = pid_of(i);
		now += (r >> 13) % 3;
		switch ((r >> 20) % 8) {
		case 0:
		case 1:
			/* A new life or a new program of this one. */
			if (((r >> 23) % 2 || !starts[i]) && starts[i] != now) {
				starts[i] = now;
				dead[i] = 0;
			}
			progs[i] = now;
			snprintf(path, sizeof(path), "/bin/p%u-%llu", i, (unsigned long long)now);
			err = pf_proc_cache__exec(c, pid, 1, starts[i], now, 0, 0, "p", path, NULL,
						  0);
			assert_true(err == 0 || err == -ENOSPC);
			trusted[i] = err == 0 && !dead[i];
			break;
		case 2:
			pf_proc_cache__exit(c, pid, starts[i], now);
			trusted[i] = 0;
			dead[i] = starts[i] != 0;
			break;
		case 3:
			if ((r >> 23) % 64 == 0) {
				pf_proc_cache__gc(c, now);
				last_gc = now;
			}
			break;
		default:
			p = pf_proc_cache__lookup(c, pid, now);
			if (p) {
				assert_int_equal(p->pid, pid);
				assert_true(p->since_ns <= now);
				assert_true(p->until_ns == 0 || now <= p->until_ns);
				assert_false(p->until_ns && p->until_ns + GRACE < last_gc);
			}
			/* The program told last is who the PID is now, unless
			 * its identity was refused or an exit came since. */
			if (trusted[i]) {
				assert_non_null(p);
				assert_int_equal(p->start_ns, starts[i]);
				assert_int_equal(p->since_ns, progs[i]);
				snprintf(path, sizeof(path), "/bin/p%u-%llu", i,
					 (unsigned long long)progs[i]);
				assert_string_equal(p->path, path);
			}
			break;
		}
		st = stats(c);
		assert_true(st.entries <= st.capacity);
		assert_true(st.capacity <= MAX);
	}
	st = stats(c);
	assert_int_equal(st.capacity, MAX);
	assert_true(st.grow_failed > 0);
	assert_true(st.evicted > 0);
	pf_proc_cache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup(test_starts_small_grows_with_use, reset_allocs),
	    cmocka_unit_test_setup(test_grace_and_eviction_across_growth, reset_allocs),
	    cmocka_unit_test_setup(test_growth_failure_slots, reset_allocs),
	    cmocka_unit_test_setup(test_growth_failure_heap, reset_allocs),
	    cmocka_unit_test_setup(test_random_growth_failures, reset_allocs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
