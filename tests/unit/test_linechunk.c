// SPDX-License-Identifier: BSD-2-Clause
/*
 * An interval's lines in bounded chunks (lib/linechunk.h): what the outputs
 * receive, concatenated, is byte for byte what the agent's one buffer per
 * interval held before, for the aggregator's own output (the spec's example
 * line, a level-0 interval of a thousand lines, a line longer than a chunk);
 * every run is whole lines, in order, never longer than the chunk unless it
 * is one line; and the number of runs is exact.
 */
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow_agg.h"
#include "linechunk.h"

#define T0 1764252000
#define T1 1764252015

/* ---- what the outputs receive ---------------------------------------------------------------- */

struct sinkbuf {
	char *buf;
	size_t len, cap;
	uint64_t lines, runs;
	size_t max_run;		/* the chunk size: no run of several lines is longer */
	size_t longest_run;	/* bytes */
	uint64_t run_lines[64]; /* lines of the first runs */
};

static void sink_append(struct sinkbuf *s, const char *p, size_t len)
{
	if (s->len + len > s->cap) {
		s->cap = (s->len + len) * 2;
		s->buf = realloc(s->buf, s->cap);
		assert_non_null(s->buf);
	}
	memcpy(s->buf + s->len, p, len);
	s->len += len;
}

static uint64_t count_nl(const char *p, size_t len)
{
	uint64_t n = 0;

	for (size_t i = 0; i < len; i++)
		n += p[i] == '\n';
	return n;
}

/* A sink's take(): whole lines only, as many as said. */
static void take(const char *buf, size_t len, uint64_t nlines, void *ctx)
{
	struct sinkbuf *s = ctx;

	assert_true(len > 0);
	assert_int_equal(buf[len - 1], '\n');
	assert_int_equal(count_nl(buf, len), nlines);
	if (nlines > 1)
		assert_true(len <= s->max_run);
	if (s->runs < 64)
		s->run_lines[s->runs] = nlines;
	s->runs++;
	s->lines += nlines;
	if (len > s->longest_run)
		s->longest_run = len;
	sink_append(s, buf, len);
}

/* The agent's old path: every line of the interval appended to one buffer. */
static int old_on_line(const char *line, size_t len, void *ctx)
{
	struct sinkbuf *s = ctx;

	sink_append(s, line, len);
	s->lines++;
	return 0;
}

static int chunk_on_line(const char *line, size_t len, void *ctx)
{
	pf_linechunk__add(ctx, line, len);
	return 0;
}

/* ---- intervals ------------------------------------------------------------------------------- */

static void v4(uint8_t out[16], uint32_t host_order)
{
	memset(out, 0, 16);
	out[10] = out[11] = 0xff;
	out[12] = (uint8_t)(host_order >> 24);
	out[13] = (uint8_t)(host_order >> 16);
	out[14] = (uint8_t)(host_order >> 8);
	out[15] = (uint8_t)host_order;
}

/* The spec's example interval (section 6): three curl runs. */
static void feed_spec(struct pf_agg *a)
{
	static const char *const args[] = {"-s http://198.18.0.1:8080/a",
					   "-s http://198.18.0.1:8080/b",
					   "-s http://198.18.0.1:8080/a"};
	static const uint64_t bin[] = {500, 500, 432}, bout[] = {200, 200, 255};
	static const uint64_t pin[] = {3, 3, 3}, pout[] = {4, 4, 3};
	static const uint32_t srtt[] = {88, 50, 45}, mrtt[] = {52, 34, 34};

	for (int i = 0; i < 3; i++) {
		struct pf_flow_obs o = {0};

		o.netns = 4026531840ULL;
		o.flow_id = (uint64_t)i + 1;
		v4(o.laddr, 0xc6120002);
		v4(o.raddr, 0xc6120001);
		o.lport = (uint16_t)(40001 + i);
		o.rport = 8080;
		o.proto = IPPROTO_TCP;
		o.reporter = PF_REPORTER_SRC;
		o.started = o.completed = 1;
		o.bytes_in = bin[i];
		o.bytes_out = bout[i];
		o.packets_in = pin[i];
		o.packets_out = pout[i];
		o.proc_name = "/usr/bin/curl";
		o.proc_pid = 101 + (uint32_t)i;
		o.proc_args = args[i];
		o.has_tcp = 1;
		o.tcp_cwnd = 10;
		o.tcp_srtt_us = srtt[i];
		o.tcp_min_rtt_us = mrtt[i];
		o.tcp_mss = 1448;
		assert_int_equal(pf_agg__add(a, &o), 0);
	}
}

/* Level 0: @n flows, one line each, of 7 programs with arguments of
 * varying length; flow @huge (if < n) has a 20 KiB argument string, so its
 * line is longer than any chunk tried. */
static void feed_many(struct pf_agg *a, unsigned n, unsigned huge, char *big)
{
	static const char *const names[] = {"/usr/bin/curl",
					    "/usr/sbin/nginx",
					    "/usr/bin/python3",
					    "/opt/app/bin/server",
					    "sshd",
					    "/usr/bin/dig",
					    "/usr/lib/postgresql/15/bin/postgres"};
	char args[200];

	for (unsigned i = 0; i < n; i++) {
		struct pf_flow_obs o = {0};

		o.netns = 4026531840ULL;
		o.flow_id = i + 1;
		v4(o.laddr, 0xc6120002);
		v4(o.raddr, 0xc6130000 + i % 251);
		o.lport = (uint16_t)(20000 + i);
		o.rport = (uint16_t)(443 + i % 3);
		o.proto = i % 5 ? IPPROTO_TCP : IPPROTO_UDP;
		o.reporter = i % 4 ? PF_REPORTER_SRC : PF_REPORTER_DST;
		o.started = i & 1;
		o.completed = (i >> 1) & 1;
		o.bytes_in = 1000 + i;
		o.bytes_out = 7 * i;
		o.packets_in = 1 + i % 9;
		o.packets_out = 2 + i % 7;
		o.proc_name = names[i % 7];
		o.proc_pid = 1000 + i % 97;
		snprintf(args, sizeof(args), "--worker=%u --tag=%.*s", i, (int)(i % 120),
			 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
			 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
			 "abcdefghijklmnopqrstuvwxyz");
		o.proc_args = i == huge ? big : args;
		assert_int_equal(pf_agg__add(a, &o), 0);
	}
}

static struct pf_agg *new_agg(int level)
{
	struct pf_agg_opts opts = {
	    .level = level,
	    .host = "node-a",
	    .proc_limit = 2,
	    .args_limit = 5,
	    .include_process = 1,
	    .include_tcp = 1,
	};
	struct pf_agg *a = pf_agg__new(&opts);

	assert_non_null(a);
	return a;
}

enum { SPEC, MANY };

/* The interval through the old path and through chunks of @chunk bytes:
 * the same bytes, the same lines. Returns the chunked side's record. */
static struct sinkbuf both_paths(int which, size_t chunk, unsigned n, unsigned huge)
{
	struct sinkbuf old = {0}, got = {.max_run = chunk};
	struct pf_linechunk c;
	char *big = malloc(20001);

	assert_non_null(big);
	memset(big, 'x', 20000);
	big[20000] = '\0';
	for (int path = 0; path < 2; path++) {
		struct pf_agg *a = new_agg(which == SPEC ? 1 : 0);

		if (which == SPEC)
			feed_spec(a);
		else
			feed_many(a, n, huge, big);
		if (!path) {
			assert_int_equal(pf_agg__flush(a, T0, T1, old_on_line, &old), 0);
		} else {
			pf_linechunk__init(&c, chunk, take, &got);
			assert_int_equal(pf_agg__flush(a, T0, T1, chunk_on_line, &c), 0);
			pf_linechunk__flush(&c);
			assert_int_equal(c.chunks, got.runs);
			pf_linechunk__fini(&c);
		}
		pf_agg__free(a);
	}
	assert_int_equal(got.len, old.len);
	assert_int_equal(got.lines, old.lines);
	assert_memory_equal(got.buf, old.buf, old.len);
	free(old.buf);
	free(big);
	return got;
}

/* The spec's example line (section 6), as tests/unit/test_flow_agg.c has it. */
static const char spec_line[] =
    "{\"start_time\":1764252000,\"end_time\":1764252015,\"source_ip\":\"198.18.0.2\","
    "\"source_name\":\"node-a\",\"source_name_aggr\":\"node-a\",\"source_namespace\":\"-\","
    "\"nat_outgoing_ports\":null,\"source_port\":null,\"source_type\":\"hep\","
    "\"source_labels\":null,\"dest_ip\":\"198.18.0.1\",\"dest_name\":\"-\","
    "\"dest_name_aggr\":\"pub\",\"dest_namespace\":\"-\",\"dest_port\":8080,"
    "\"dest_type\":\"net\",\"dest_labels\":null,\"dest_service_namespace\":\"-\","
    "\"dest_service_name\":\"-\",\"dest_service_port\":\"-\","
    "\"dest_service_port_num\":null,\"dest_domains\":null,\"proto\":\"tcp\","
    "\"action\":\"allow\",\"reporter\":\"src\",\"policies\":null,\"bytes_in\":1432,"
    "\"bytes_out\":655,\"num_flows\":3,\"num_flows_started\":3,"
    "\"num_flows_completed\":3,\"packets_in\":9,\"packets_out\":11,"
    "\"transit_bytes_in\":0,\"transit_bytes_out\":0,\"transit_packets_in\":0,"
    "\"transit_packets_out\":0,\"http_requests_allowed_in\":0,"
    "\"http_requests_denied_in\":0,\"process_name\":\"/usr/bin/curl\","
    "\"num_process_names\":1,\"process_id\":\"*\",\"num_process_ids\":3,"
    "\"process_args\":[\"-s http://198.18.0.1:8080/a\",\"-s http://198.18.0.1:8080/b\"],"
    "\"num_process_args\":2,\"original_source_ips\":null,\"num_original_source_ips\":0,"
    "\"tcp_mean_send_congestion_window\":10,\"tcp_min_send_congestion_window\":10,"
    "\"tcp_mean_smooth_rtt\":61,\"tcp_max_smooth_rtt\":88,\"tcp_mean_min_rtt\":40,"
    "\"tcp_max_min_rtt\":52,\"tcp_mean_mss\":1448,\"tcp_min_mss\":1448,"
    "\"tcp_total_retransmissions\":0,\"tcp_lost_packets\":0,\"tcp_unrecovered_to\":0,"
    "\"host\":\"node-a\"}\n";

/* ---- tests ----------------------------------------------------------------------------------- */

/* The spec's example line, through a chunk far larger than it: one run,
 * the exact line. */
static void test_spec_line_one_run(void **state)
{
	struct sinkbuf s = both_paths(SPEC, 1 << 18, 0, 0);

	assert_int_equal(s.runs, 1);
	assert_int_equal(s.lines, 1);
	assert_int_equal(s.len, sizeof(spec_line) - 1);
	assert_memory_equal(s.buf, spec_line, s.len);
	free(s.buf);
}

/* A chunk smaller than the line: the line is handed on by itself. */
static void test_line_longer_than_chunk(void **state)
{
	struct sinkbuf s = both_paths(SPEC, 100, 0, 0);

	assert_int_equal(s.runs, 1);
	assert_int_equal(s.longest_run, sizeof(spec_line) - 1);
	free(s.buf);
}

/* A thousand level-0 lines, one of them over 20 KiB, in 4 KiB, 64 KiB and
 * 256 KiB chunks: byte-identical to the one buffer every time; runs of
 * several lines stay within the chunk, and only the huge line is longer. */
static void test_many_lines_identical(void **state)
{
	static const size_t chunks[] = {4096, 65536, 262144};
	/* 1,403,418 bytes in all; the runs each chunk size gives. */
	static const uint64_t expect_runs[] = {438, 22, 6};

	for (int i = 0; i < 3; i++) {
		struct sinkbuf s = both_paths(MANY, chunks[i], 1000, 500);

		assert_int_equal(s.lines, 1000);
		assert_int_equal(s.len, 1403418);
		assert_true(s.longest_run > 20000); /* the huge line, alone */
		assert_int_equal(s.runs, expect_runs[i]);
		/* Every run but the last was closed because the next line did
		 * not fit: at least chunk - (longest ordinary line) bytes. */
		assert_true(s.len / chunks[i] < s.runs);
		free(s.buf);
	}
}

/* Fixed-size lines: exact run counts, the order kept around a long line. */
static void test_exact_runs(void **state)
{
	struct sinkbuf s = {.max_run = 1000};
	struct pf_linechunk c;
	char line[100], big[2500];
	char expect[95 * 100 + 5 * 100 + 2500];
	size_t off = 0;

	/* 95 lines of 100 bytes in 1,000-byte chunks: 9 full runs and one of 5. */
	pf_linechunk__init(&c, 1000, take, &s);
	for (int i = 0; i < 95; i++) {
		memset(line, 'a' + i % 26, 99);
		line[99] = '\n';
		memcpy(expect + off, line, 100);
		off += 100;
		pf_linechunk__add(&c, line, 100);
	}
	pf_linechunk__flush(&c);
	assert_int_equal(s.runs, 10);
	for (int i = 0; i < 9; i++)
		assert_int_equal(s.run_lines[i], 10);
	assert_int_equal(s.run_lines[9], 5);
	/* Then 3 lines, one of 2,500 bytes, 2 more: [3 lines], [the long one], [2 lines]. */
	memset(big, 'L', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\n';
	for (int i = 0; i < 6; i++) {
		const char *p = i == 3 ? big : line;
		size_t n = i == 3 ? sizeof(big) : 100;

		memcpy(expect + off, p, n);
		off += n;
		pf_linechunk__add(&c, p, n);
	}
	pf_linechunk__flush(&c);
	assert_int_equal(s.runs, 13);
	assert_int_equal(s.run_lines[10], 3);
	assert_int_equal(s.run_lines[11], 1);
	assert_int_equal(s.run_lines[12], 2);
	/* Nothing left: a second flush hands nothing on. */
	pf_linechunk__flush(&c);
	assert_int_equal(s.runs, 13);
	assert_int_equal(s.len, off);
	assert_memory_equal(s.buf, expect, off);
	pf_linechunk__fini(&c);
	pf_linechunk__fini(NULL);
	free(s.buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_line_one_run),
	    cmocka_unit_test(test_line_longer_than_chunk),
	    cmocka_unit_test(test_many_lines_identical),
	    cmocka_unit_test(test_exact_runs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
