// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for the exec counter in the process cache
 * (pf_proc_cache__set_exec_id): the agent compares it with the counter
 * recorded with a socket claim to tell that an identity is stale because
 * the exec event was lost. Times are small made-up nanosecond values.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proc_cache.h"

static void test_exec_id(void **state)
{
	struct pf_proc_cache *c = pf_proc_cache__new(64, 1000);
	const struct pf_proc *p;

	assert_non_null(c);
	/* The parent: exec at 10 with counter 5. */
	assert_int_equal(
	    pf_proc_cache__exec(c, 100, 1, 5, 10, 0, 0, "server", "/bin/server", "a", 0), 0);
	assert_int_equal(pf_proc_cache__set_exec_id(c, 100, 5, 10, 5), 0);
	/* A child forked at 20 inherits the parent's program and counter. */
	assert_int_equal(pf_proc_cache__fork(c, 200, 20, 100, 5, "server"), 0);
	assert_int_equal(pf_proc_cache__set_exec_id(c, 200, 20, 20, 5), 0);
	p = pf_proc_cache__lookup(c, 200, 25);
	assert_non_null(p);
	assert_string_equal(p->path, "/bin/server");
	assert_true(p->has_exec_id);
	assert_int_equal(p->exec_id, 5);
	/* The child execs at 30 (counter 6): the new identity carries 6, the
	 * fork identity keeps 5. */
	assert_int_equal(
	    pf_proc_cache__exec(c, 200, 100, 20, 30, 0, 0, "client", "/bin/client", "b", 0), 0);
	assert_int_equal(pf_proc_cache__set_exec_id(c, 200, 20, 30, 6), 0);
	p = pf_proc_cache__lookup(c, 200, 35);
	assert_string_equal(p->path, "/bin/client");
	assert_int_equal(p->exec_id, 6);
	p = pf_proc_cache__lookup(c, 200, 25);
	assert_string_equal(p->path, "/bin/server");
	assert_int_equal(p->exec_id, 5);
	/* A scan identity has no counter. */
	assert_int_equal(pf_proc_cache__scan(c, 300, 1, 40, 0, "old", "/bin/old", "", 0), 0);
	p = pf_proc_cache__lookup(c, 300, 45);
	assert_false(p->has_exec_id);
	/* Unknown identities. */
	assert_int_equal(pf_proc_cache__set_exec_id(c, 999, 1, 1, 1), -ENOENT);
	assert_int_equal(pf_proc_cache__set_exec_id(c, 200, 99, 99, 1), -ENOENT);
	assert_int_equal(pf_proc_cache__set_exec_id(NULL, 1, 1, 1, 1), -EINVAL);
	pf_proc_cache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_exec_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
