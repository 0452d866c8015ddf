// SPDX-License-Identifier: BSD-2-Clause
/*
 * User-space losses are counted where they happen and told once per
 * interval: the aggregator's full key table and the process cache's refused
 * inserts, which the agent used to drop without a word.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "flow_agg.h"
#include "loss_log.h"
#include "proc_cache.h"

static void test_delta_once(void **state)
{
	struct pf_loss l = {.what = "things lost"};
	char buf[64] = "";

	assert_int_equal(pf_loss__delta(&l, 0, buf, sizeof(buf)), 0);
	assert_string_equal(buf, "");
	assert_int_equal(pf_loss__delta(&l, 7, buf, sizeof(buf)), 7);
	assert_string_equal(buf, "7 things lost");
	buf[0] = '\0';
	assert_int_equal(pf_loss__delta(&l, 7, buf, sizeof(buf)), 0); /* told already */
	assert_string_equal(buf, "");
	assert_int_equal(pf_loss__delta(&l, 10, buf, sizeof(buf)), 3);
	assert_string_equal(buf, "3 things lost");
}

static int count_line(const char *line, size_t len, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

/* Five flows, room for two keys: three observations dropped, counted. */
static void test_aggregator_full(void **state)
{
	struct pf_agg_opts ao = {.level = 0,
				 .host = "h",
				 .proc_limit = 2,
				 .args_limit = 5,
				 .include_process = 1,
				 .max_keys = 2};
	struct pf_loss l = {.what = "flow observations dropped (aggregator full)"};
	struct pf_agg *a = pf_agg__new(&ao);
	char buf[128];
	int lines = 0, full = 0;

	assert_non_null(a);
	for (int i = 0; i < 5; i++) {
		struct pf_flow_obs o;

		memset(&o, 0, sizeof(o));
		o.flow_id = (uint64_t)i + 1;
		o.laddr[10] = o.laddr[11] = 0xff;
		o.raddr[10] = o.raddr[11] = 0xff;
		o.laddr[15] = 1;
		o.raddr[15] = 2;
		o.lport = 1000;
		o.rport = (uint16_t)(2000 + i);
		o.proto = 17;
		o.reporter = PF_REPORTER_SRC;
		o.bytes_out = 10;
		o.packets_out = 1;
		if (pf_agg__add(a, &o) == -ENOSPC)
			full++;
	}
	assert_int_equal(full, 3);
	assert_int_equal(pf_agg__flush(a, 1, 2, count_line, &lines), 0);
	assert_int_equal(lines, 2);
	assert_int_equal(pf_loss__delta(&l, pf_agg__dropped(a), buf, sizeof(buf)), 3);
	assert_string_equal(buf, "3 flow observations dropped (aggregator full)");
	pf_agg__free(a);
}

/* Three live processes, room for two: one refused, counted. */
static void test_process_cache_full(void **state)
{
	struct pf_loss l = {.what = "processes not remembered (process cache full)"};
	struct pf_proc_cache *c = pf_proc_cache__new(2, 1000);
	struct pf_proc_cache_stats st;
	char buf[128];

	assert_non_null(c);
	for (uint32_t pid = 100; pid < 103; pid++)
		pf_proc_cache__exec(c, pid, 1, pid * 10, pid * 10, 0, 0, "p", "/bin/p", "", 0);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.dropped, 1);
	assert_int_equal(pf_loss__delta(&l, st.dropped, buf, sizeof(buf)), 1);
	assert_string_equal(buf, "1 processes not remembered (process cache full)");
	pf_proc_cache__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_delta_once),
	    cmocka_unit_test(test_aggregator_full),
	    cmocka_unit_test(test_process_cache_full),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
