// SPDX-License-Identifier: BSD-2-Clause
/*
 * What the aggregator's memory costs per flow at aggregation level 0 (one
 * line per flow, the most it ever holds): 200,000 flows of one interval,
 * each with its own process arguments, counted from the allocator's side
 * (glibc's bytes in use) at the moment before the flush; and the same
 * interval flushed gives back the same lines as the count says. Not under
 * AddressSanitizer, whose allocator keeps its own books.
 */
#include <malloc.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "flow_agg.h"

#define NFLOWS 200000

static size_t heap_in_use(void)
{
	struct mallinfo2 mi = mallinfo2();

	return mi.uordblks + mi.hblkhd;
}

static int count_line(const char *line, size_t len, void *ctx)
{
	(*(uint64_t *)ctx)++;
	return 0;
}

static void test_level0_bytes_per_flow(void **state)
{
#if defined(__SANITIZE_ADDRESS__)
	skip();
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	skip();
#endif
#endif
	struct pf_agg_opts opts = {.level = 0,
				   .host = "node-a",
				   .proc_limit = 2,
				   .args_limit = 5,
				   .include_process = 1,
				   .include_tcp = 1};
	size_t before = heap_in_use(), used;
	struct pf_agg *a = pf_agg__new(&opts);
	uint64_t lines = 0;
	char args[64];

	assert_non_null(a);
	for (uint32_t i = 0; i < NFLOWS; i++) {
		struct pf_flow_obs o = {0};

		o.netns = 4026531840ULL;
		o.flow_id = i + 1;
		o.laddr[10] = o.laddr[11] = o.raddr[10] = o.raddr[11] = 0xff;
		o.laddr[12] = 198, o.laddr[13] = 18, o.laddr[15] = 2;
		o.raddr[12] = 198, o.raddr[13] = 19, o.raddr[14] = (uint8_t)(i >> 8);
		o.raddr[15] = (uint8_t)i;
		o.lport = (uint16_t)(1024 + i % 60000);
		o.rport = 443;
		o.proto = IPPROTO_TCP;
		o.reporter = PF_REPORTER_SRC;
		o.started = o.completed = 1;
		o.bytes_in = o.bytes_out = 100;
		o.packets_in = o.packets_out = 2;
		o.proc_name = "/usr/bin/curl";
		o.proc_pid = 1000 + i;
		snprintf(args, sizeof(args), "-s https://198.19.0.1/item/%u", i);
		o.proc_args = args;
		o.has_tcp = 1;
		o.tcp_cwnd = 10;
		o.tcp_srtt_us = 50;
		o.tcp_mss = 1448;
		assert_int_equal(pf_agg__add(a, &o), 0);
	}
	used = heap_in_use() - before;
	print_message("aggregator at level 0: %.1f bytes per flow\n", (double)used / NFLOWS);
	/* Allocated, not touched: the vectors' doubled capacity counts. Per
	 * flow 251 for lines (192 each, 262,144 allocated), 126 for keys,
	 * 168 for its name and argument entries (32 each, the table at most
	 * half full), 84 for its flow and PID entries, the copied strings and
	 * the key table: 730, against 814 with 224-byte lines and 40-byte
	 * string entries. */
	assert_true(used <= (size_t)NFLOWS * 740);
	assert_int_equal(pf_agg__flush(a, 1, 2, count_line, &lines), 0);
	assert_int_equal(lines, NFLOWS);
	pf_agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_level0_bytes_per_flow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
