// SPDX-License-Identifier: BSD-2-Clause
/*
 * `procflow query`'s pure parts: the line scanner, the filters and their
 * value parsers, the table's cell formatter, and the file reader (plain,
 * zstd, partial and oversize lines, the order of rotated files).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "flowfile.h"
#include "flowline.h"
#include "query.h"

/* The contract's example line (section 6), on one line. */
static const char example[] =
    "{\"start_time\":1764252000,\"end_time\":1764252015,\"source_ip\":\"198.18.0.2\","
    "\"source_name\":\"node-a\",\"source_name_aggr\":\"node-a\",\"source_namespace\":\"-\","
    "\"nat_outgoing_ports\":null,\"source_port\":null,\"source_type\":\"hep\","
    "\"source_labels\":null,\"dest_ip\":\"198.18.0.1\",\"dest_name\":\"-\",\"dest_name_aggr\":"
    "\"pub\",\"dest_namespace\":\"-\",\"dest_port\":8080,\"dest_type\":\"net\",\"dest_labels\":"
    "null,\"dest_service_namespace\":\"-\",\"dest_service_name\":\"-\",\"dest_service_port\":"
    "\"-\",\"dest_service_port_num\":null,\"dest_domains\":null,\"proto\":\"tcp\",\"action\":"
    "\"allow\",\"reporter\":\"src\",\"policies\":null,\"bytes_in\":1432,\"bytes_out\":655,"
    "\"num_flows\":3,\"num_flows_started\":3,\"num_flows_completed\":3,\"packets_in\":9,"
    "\"packets_out\":11,\"transit_bytes_in\":0,\"transit_bytes_out\":0,\"transit_packets_in\":"
    "0,\"transit_packets_out\":0,\"http_requests_allowed_in\":0,\"http_requests_denied_in\":0,"
    "\"process_name\":\"/usr/bin/curl\",\"num_process_names\":1,\"process_id\":\"*\","
    "\"num_process_ids\":3,\"process_args\":[\"-s http://198.18.0.1:8080/a\","
    "\"-s http://198.18.0.1:8080/b\"],\"num_process_args\":2,\"original_source_ips\":null,"
    "\"num_original_source_ips\":0,\"tcp_mean_send_congestion_window\":10,"
    "\"tcp_min_send_congestion_window\":10,\"tcp_mean_smooth_rtt\":61,"
    "\"tcp_max_smooth_rtt\":88,\"tcp_mean_min_rtt\":40,\"tcp_max_min_rtt\":52,"
    "\"tcp_mean_mss\":1448,\"tcp_min_mss\":1448,\"tcp_total_retransmissions\":0,"
    "\"tcp_lost_packets\":0,\"tcp_unrecovered_to\":0,\"host\":\"node-a\"}";

static bool str_eq(const struct pf_fl_val *v, const char *s)
{
	return v->type == PF_FLV_STR && v->len == strlen(s) && !memcmp(v->p, s, v->len);
}

static void test_scan_example(void **state)
{
	struct pf_flowrec r;
	uint64_t n;

	assert_int_equal(pf_fl__scan(example, strlen(example), PF_FL_ALL, &r), 0);
	assert_int_equal(pf_fl__u64(&r.v[PF_FL_START_TIME], &n), 0);
	assert_int_equal(n, 1764252000);
	assert_int_equal(pf_fl__u64(&r.v[PF_FL_BYTES_IN], &n), 0);
	assert_int_equal(n, 1432);
	assert_int_equal(pf_fl__u64(&r.v[PF_FL_DEST_PORT], &n), 0);
	assert_int_equal(n, 8080);
	assert_int_equal(r.v[PF_FL_SOURCE_PORT].type, PF_FLV_NULL);
	assert_int_not_equal(pf_fl__u64(&r.v[PF_FL_SOURCE_PORT], &n), 0);
	assert_true(str_eq(&r.v[PF_FL_PROCESS_NAME], "/usr/bin/curl"));
	assert_true(str_eq(&r.v[PF_FL_HOST], "node-a"));
	assert_true(str_eq(&r.v[PF_FL_PROCESS_ID], "*"));
	assert_int_equal(r.v[PF_FL_PROCESS_ARGS].type, PF_FLV_ARR);

	/* Array elements. */
	struct pf_fl_val e;
	size_t pos = 0;

	assert_int_equal(pf_fl__arr_next(&r.v[PF_FL_PROCESS_ARGS], &pos, &e), 1);
	assert_true(str_eq(&e, "-s http://198.18.0.1:8080/a"));
	assert_int_equal(pf_fl__arr_next(&r.v[PF_FL_PROCESS_ARGS], &pos, &e), 1);
	assert_true(str_eq(&e, "-s http://198.18.0.1:8080/b"));
	assert_int_equal(pf_fl__arr_next(&r.v[PF_FL_PROCESS_ARGS], &pos, &e), 0);

	/* Only what is asked for is recorded. */
	assert_int_equal(pf_fl__scan(example, strlen(example), PF_FL_BIT(PF_FL_PROTO), &r), 0);
	assert_true(str_eq(&r.v[PF_FL_PROTO], "tcp"));
	assert_int_equal(r.v[PF_FL_PROCESS_NAME].type, PF_FLV_ABSENT);
}

/* Every prefix of a line is refused (a file cut mid-line), and nothing
 * reads past the cut: each prefix is copied into its own allocation. */
static void test_scan_truncated(void **state)
{
	struct pf_flowrec r;
	size_t n = strlen(example);

	for (size_t cut = 0; cut < n; cut++) {
		char *p = malloc(cut ? cut : 1);

		memcpy(p, example, cut);
		assert_int_not_equal(pf_fl__scan(p, cut, PF_FL_ALL, &r), 0);
		free(p);
	}
}

static void test_scan_corrupt(void **state)
{
	static const char *const bad[] = {
	    "",
	    "   ",
	    "[]",
	    "{",
	    "{\"a\"}",
	    "{\"a\":}",
	    "{\"a\":1,}",
	    "{\"a\":1}x",
	    "{\"a\":1}}",
	    "{\"a\":[1,2}",
	    "{\"a\":\"x\\\"}",
	    "{\"a\":nul}",
	    "{\"a\":tru}",
	    "{a:1}",
	    "{\"a\":1 \"b\":2}",
	    "{\"a\":+1}",
	    "{\"process_name\":\"x\"\x00}",
	    ("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]"
	     "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}"),
	};
	struct pf_flowrec r;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_not_equal(
		    pf_fl__scan(bad[i], strlen(bad[i]) + (i == 16 ? 2 : 0), PF_FL_ALL, &r), 0);
	/* Well-formed oddities are fine: other key order, unknown keys, blanks. */
	static const char ok[] =
	    " { \"host\" : \"h\" , \"x\":{\"y\":[1,\"]\"]}, \"start_time\":5 } ";

	assert_int_equal(pf_fl__scan(ok, strlen(ok), PF_FL_ALL, &r), 0);
	assert_true(str_eq(&r.v[PF_FL_HOST], "h"));
	uint64_t t;

	assert_int_equal(pf_fl__u64(&r.v[PF_FL_START_TIME], &t), 0);
	assert_int_equal(t, 5);
}

static void test_u64(void **state)
{
	struct pf_fl_val v = {.type = PF_FLV_NUM};
	uint64_t n;

	v.p = "18446744073709551615";
	v.len = 20;
	assert_int_equal(pf_fl__u64(&v, &n), 0);
	assert_true(n == UINT64_MAX);
	v.p = "18446744073709551616";
	assert_int_not_equal(pf_fl__u64(&v, &n), 0);
	v.p = "-1";
	v.len = 2;
	assert_int_not_equal(pf_fl__u64(&v, &n), 0);
	v.p = "1.5";
	v.len = 3;
	assert_int_not_equal(pf_fl__u64(&v, &n), 0);
}

static void test_unescape(void **state)
{
	char out[64];
	const char *s = "a\\\"b\\\\c\\n\\u00e9\\ud83d\\ude00\\ud800x";
	size_t n = pf_fl__unescape(s, strlen(s), out, sizeof(out));

	assert_string_equal(out, "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbdx");
	assert_int_equal(n, strlen(out));
	/* Cut: NUL-terminated, the needed length returned. */
	n = pf_fl__unescape("abcdef", 6, out, 4);
	assert_int_equal(n, 6);
	assert_string_equal(out, "abc");
	/* Malformed escapes do not crash and are kept. */
	n = pf_fl__unescape("\\u12", 4, out, sizeof(out));
	assert_string_equal(out, "\\u12");
	n = pf_fl__unescape("x\\", 2, out, sizeof(out));
	assert_string_equal(out, "x\\");
}

static void test_duration_time(void **state)
{
	uint64_t v;

	assert_int_equal(pf_parse_duration("90", &v), 0);
	assert_int_equal(v, 90);
	assert_int_equal(pf_parse_duration("10m", &v), 0);
	assert_int_equal(v, 600);
	assert_int_equal(pf_parse_duration("2h", &v), 0);
	assert_int_equal(v, 7200);
	assert_int_equal(pf_parse_duration("7d", &v), 0);
	assert_int_equal(v, 7 * 86400);
	assert_int_not_equal(pf_parse_duration("10x", &v), 0);
	assert_int_not_equal(pf_parse_duration("m", &v), 0);
	assert_int_not_equal(pf_parse_duration("-5m", &v), 0);
	assert_int_not_equal(pf_parse_duration("10mm", &v), 0);
	assert_int_not_equal(pf_parse_duration("99999999999999999999", &v), 0);

	assert_int_equal(pf_parse_time("1795790487", &v), 0);
	assert_int_equal(v, 1795790487);
	assert_int_equal(pf_parse_time("2026-11-27T14:05:09Z", &v), 0);
	assert_int_equal(v, 1795788309);
	assert_int_equal(pf_parse_time("2026-11-27 15:05:09+01:00", &v), 0);
	assert_int_equal(v, 1795788309);
	assert_int_equal(pf_parse_time("2026-11-27T14:05:09.123Z", &v), 0);
	assert_int_equal(v, 1795788309);
	assert_int_equal(pf_parse_time("2026-11-27T14:05Z", &v), 0);
	assert_int_equal(v, 1795788300);
	assert_int_equal(pf_parse_time("2026-11-27Z", &v), 0);
	assert_int_equal(v, 1795737600);
	/* Without a zone: local time (TZ set to UTC by main()). */
	assert_int_equal(pf_parse_time("2026-11-27T14:05:09", &v), 0);
	assert_int_equal(v, 1795788309);
	assert_int_not_equal(pf_parse_time("2026-02-31T00:00:00Z", &v), 0);
	assert_int_not_equal(pf_parse_time("2026-13-01", &v), 0);
	assert_int_not_equal(pf_parse_time("yesterday", &v), 0);
	assert_int_not_equal(pf_parse_time("2026-11-27T25:00Z", &v), 0);
	assert_int_not_equal(pf_parse_time("", &v), 0);
	assert_int_not_equal(pf_parse_time("2026-11-27T14:05:09Zjunk", &v), 0);
}

static void test_cidr(void **state)
{
	struct pf_cidr c;

	assert_int_equal(pf_parse_cidr("198.18.0.0/15", &c), 0);
	assert_true(pf_cidr__contains_text(&c, "198.19.255.1", 12));
	assert_false(pf_cidr__contains_text(&c, "198.20.0.1", 10));
	assert_false(pf_cidr__contains_text(&c, "fd00::1", 7));
	/* The IPv4-mapped form of an address in the range matches too. */
	assert_true(pf_cidr__contains_text(&c, "::ffff:198.18.0.9", 17));
	assert_int_equal(pf_parse_cidr("10.1.2.3", &c), 0);
	assert_true(pf_cidr__contains_text(&c, "10.1.2.3", 8));
	assert_false(pf_cidr__contains_text(&c, "10.1.2.30", 9));
	assert_false(pf_cidr__contains_text(&c, "010.1.2.3", 9));
	assert_int_equal(pf_parse_cidr("fd00::/8", &c), 0);
	assert_true(pf_cidr__contains_text(&c, "fd12:3456::1", 12));
	assert_false(pf_cidr__contains_text(&c, "fe80::1", 7));
	assert_false(pf_cidr__contains_text(&c, "10.0.0.1", 8));
	assert_int_equal(pf_parse_cidr("0.0.0.0/0", &c), 0);
	assert_true(pf_cidr__contains_text(&c, "1.2.3.4", 7));
	assert_int_not_equal(pf_parse_cidr("10.0.0.0/33", &c), 0);
	assert_int_not_equal(pf_parse_cidr("fd00::/129", &c), 0);
	assert_int_not_equal(pf_parse_cidr("10.0.0.0/", &c), 0);
	assert_int_not_equal(pf_parse_cidr("host.example", &c), 0);
	assert_int_not_equal(pf_parse_cidr("/8", &c), 0);
	assert_int_not_equal(pf_parse_cidr("1.2.3.4/8x", &c), 0);
}

static bool q_match(struct pf_query *q, const char *line)
{
	struct pf_flowrec r;

	assert_int_equal(pf_fl__scan(line, strlen(line), pf_query__fields(q), &r), 0);
	return pf_query__match(q, &r);
}

static struct pf_query *q_new(void)
{
	static struct pf_query q;

	memset(&q, 0, sizeof(q));
	return &q;
}

static void add_ok(struct pf_query *q, const char *name, const char *value)
{
	char err[256];

	assert_int_equal(pf_query__add(q, name, value, 1764252100, err, sizeof(err)), 0);
}

/* A line between two workloads: source pod web-7d9b8c5f4-x2x8q in "prod",
 * destination pod db-0 in "data" (the example line with its ends made
 * "wep"). */
static char *pod_line(void)
{
	static const char *const from[] = {
	    "\"source_name\":\"node-a\",\"source_name_aggr\":\"node-a\",\"source_namespace\":\"-\"",
	    "\"source_type\":\"hep\"",
	    "\"dest_name\":\"-\",\"dest_name_aggr\":\"pub\",\"dest_namespace\":\"-\"",
	    "\"dest_type\":\"net\""};
	static const char *const to[] = {
	    ("\"source_name\":\"web-7d9b8c5f4-x2x8q\",\"source_name_aggr\":\"web-7d9b8c5f4-*\","
	     "\"source_namespace\":\"prod\""),
	    "\"source_type\":\"wep\"",
	    "\"dest_name\":\"db-0\",\"dest_name_aggr\":\"db-0\",\"dest_namespace\":\"data\"",
	    "\"dest_type\":\"wep\""};
	char *line = strdup(example);

	assert_non_null(line);
	for (int i = 0; i < 4; i++) {
		char *at = strstr(line, from[i]), *n;
		size_t pre, fl = strlen(from[i]), tl = strlen(to[i]);

		assert_non_null(at);
		pre = (size_t)(at - line);
		n = malloc(strlen(line) - fl + tl + 1);
		assert_non_null(n);
		memcpy(n, line, pre);
		memcpy(n + pre, to[i], tl);
		memcpy(n + pre + tl, at + fl, strlen(at + fl) + 1);
		free(line);
		line = n;
	}
	return line;
}

static void test_pod_filters(void **state)
{
	char *pods = pod_line();
	struct pf_query *q;

	(void)state;
	q = q_new();
	add_ok(q, "namespace", "prod");
	assert_true(q_match(q, pods));
	assert_false(q_match(q, example)); /* a host's line has no namespace */
	q = q_new();
	add_ok(q, "namespace", "data"); /* the destination's */
	assert_true(q_match(q, pods));
	q = q_new();
	add_ok(q, "namespace", "-"); /* "-" is nobody's namespace name... */
	assert_false(q_match(q, pods));
	q = q_new();
	add_ok(q, "namespace", "kube-system");
	assert_false(q_match(q, pods));
	add_ok(q, "namespace", "prod"); /* OR */
	assert_true(q_match(q, pods));

	q = q_new();
	add_ok(q, "pod", "web-*");
	assert_true(q_match(q, pods));
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "pod", "db-?");
	assert_true(q_match(q, pods));
	q = q_new();
	add_ok(q, "pod", "node-a"); /* a host end is not a pod */
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "pod", "web-*");
	add_ok(q, "namespace", "data"); /* AND: the pod and the namespace */
	assert_true(q_match(q, pods));
	q = q_new();
	add_ok(q, "pod", "api-*");
	add_ok(q, "namespace", "prod");
	assert_false(q_match(q, pods));
	free(pods);
}

static void test_filters(void **state)
{
	struct pf_query *q;
	char err[256];

	q = q_new();
	assert_true(q_match(q, example)); /* no filter: everything */

	q = q_new();
	add_ok(q, "process", "curl");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "process", "/usr/*/curl");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "process", "/bin/curl");
	assert_false(q_match(q, example));
	add_ok(q, "process", "*url"); /* OR */
	assert_true(q_match(q, example));

	q = q_new();
	add_ok(q, "args", "8080/b");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "args", "8080/c");
	assert_false(q_match(q, example));

	q = q_new();
	add_ok(q, "dst", "198.18.0.0/24");
	assert_true(q_match(q, example));
	add_ok(q, "port", "8080"); /* AND */
	assert_true(q_match(q, example));
	add_ok(q, "proto", "UDP");
	assert_false(q_match(q, example));

	q = q_new();
	add_ok(q, "src", "198.18.0.1");
	assert_false(q_match(q, example)); /* that is the destination */
	q = q_new();
	add_ok(q, "ip", "198.18.0.1");
	assert_true(q_match(q, example));

	q = q_new();
	add_ok(q, "pid", "1234");
	assert_false(q_match(q, example)); /* "*" is no PID */

	q = q_new();
	add_ok(q, "reporter", "src");
	add_ok(q, "action", "allow");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "reporter", "dst");
	assert_false(q_match(q, example));

	/* Time: the interval [1764252000, 1764252015] overlaps. */
	q = q_new();
	add_ok(q, "from", "1764252015");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "from", "1764252016");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "to", "1764252000");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "to", "1764251999");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "since", "100s"); /* now 1764252100: from 1764252000 */
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "since", "80s");
	assert_false(q_match(q, example));

	/* Bad values say which option and why. */
	q = q_new();
	assert_int_equal(pf_query__add(q, "port", "no-such-service", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--port"));
	assert_int_equal(pf_query__add(q, "pid", "0", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_query__add(q, "proto", "tcpx", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_query__add(q, "reporter", "both", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_query__add(q, "dst", "300.1.1.1", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "300.1.1.1"));
	assert_int_equal(pf_query__add(q, "from", "200", 0, err, sizeof(err)), 0);
	assert_int_equal(pf_query__add(q, "to", "100", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_query__add(q, "bogus", "1", 0, err, sizeof(err)), -ENOENT);
}

/* Different filters AND, one filter's values OR (the example: 198.18.0.2
 * -> 198.18.0.1:8080, tcp, src, allow). */
static void test_filters_combine(void **state)
{
	struct pf_query *q = q_new();

	/* --src A --dst B: both must hold. Before, one OR list held all three. */
	add_ok(q, "src", "192.0.2.2");
	add_ok(q, "dst", "198.18.0.0/24");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "src", "198.18.0.2");
	add_ok(q, "dst", "10.0.0.0/8");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "src", "198.18.0.2");
	add_ok(q, "dst", "198.18.0.1");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "src", "10.0.0.0/8"); /* OR within --src */
	add_ok(q, "src", "198.18.0.2");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "ip", "198.18.0.1");
	add_ok(q, "src", "10.0.0.0/8");
	assert_false(q_match(q, example));

	/* --reporter src --reporter dst: either (it kept only the last). */
	q = q_new();
	add_ok(q, "reporter", "src");
	add_ok(q, "reporter", "dst");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "action", "allow");
	add_ok(q, "action", "deny");
	assert_true(q_match(q, example));
}

static void test_filters_refused(void **state)
{
	struct pf_query *q = q_new();
	char err[256];

	add_ok(q, "to", "1764252100");
	assert_int_equal(pf_query__add(q, "to", "1764252200", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--to"));
	q = q_new();
	add_ok(q, "since", "1h");
	assert_int_equal(pf_query__add(q, "from", "1764252000", 0, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "--since"));
	q = q_new();
	add_ok(q, "from", "1764252000");
	assert_int_equal(pf_query__add(q, "from", "1764252001", 0, err, sizeof(err)), -EINVAL);
	q = q_new();
	assert_int_equal(pf_query__add(q, "port", "90-80", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_query__add(q, "port", "80,", 0, err, sizeof(err)), -EINVAL);
	assert_int_equal(pf_query__add(q, "proto", "256", 0, err, sizeof(err)), -EINVAL);
}

static void test_filters_ranges(void **state)
{
	struct pf_query *q = q_new();

	add_ok(q, "port", "8000-8090");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "port", "80-90");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "port", "53,8080");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "port", "domain"); /* 53, from /etc/services */
	assert_false(q_match(q, example));
	assert_int_equal(q->port[0].lo, 53);
	q = q_new();
	add_ok(q, "proto", "6");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "proto", "17");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "not-process", "curl");
	assert_false(q_match(q, example));
	q = q_new();
	add_ok(q, "not-process", "wget");
	assert_true(q_match(q, example));
	q = q_new();
	add_ok(q, "process", "/usr/*");
	add_ok(q, "not-process", "/usr/bin/c*");
	assert_false(q_match(q, example));
}

/* {"a":1} is JSON, not a flow line: every contract key must be there. */
static void test_scan_requires_contract(void **state)
{
	static const char other[] = "{\"a\":1}";
	struct pf_flowrec r;
	char cut[sizeof(example)];
	const char *host = strstr(example, ",\"host\"");

	assert_int_equal(pf_fl__scan(other, strlen(other), PF_FL_ALL, &r), 0);
	assert_false(PF_FL_IS_FLOW(&r));
	/* seen is kept for the fields not asked for too */
	assert_int_equal(pf_fl__scan(example, strlen(example), 0, &r), 0);
	assert_true(PF_FL_IS_FLOW(&r));
	/* the example without its last key */
	memcpy(cut, example, (size_t)(host - example));
	cut[host - example] = '}';
	assert_int_equal(pf_fl__scan(cut, (size_t)(host - example) + 1, PF_FL_ALL, &r), 0);
	assert_false(PF_FL_IS_FLOW(&r));
}

static void test_pid_and_escaped_process(void **state)
{
	static const char line[] = "{\"process_name\":\"/opt/a\\\"b/caf\\u00e9\",\"process_id\":"
				   "\"4242\",\"process_args\":[\"--x \\\"y\\\"\"]}";
	struct pf_query *q = q_new();

	add_ok(q, "pid", "4242");
	assert_true(q_match(q, line));
	q = q_new();
	add_ok(q, "process", "caf\xc3\xa9");
	assert_true(q_match(q, line));
	q = q_new();
	add_ok(q, "process", "/opt/a\"b/*");
	assert_true(q_match(q, line));
	q = q_new();
	add_ok(q, "args", "\"y\"");
	assert_true(q_match(q, line));
}

static void test_fmt(void **state)
{
	char b[64];
	size_t cols;

	pf_fmt_bytes(0, b, sizeof(b));
	assert_string_equal(b, "0");
	pf_fmt_bytes(1023, b, sizeof(b));
	assert_string_equal(b, "1023");
	pf_fmt_bytes(1536, b, sizeof(b));
	assert_string_equal(b, "1.5K");
	pf_fmt_bytes(50ull << 20, b, sizeof(b));
	assert_string_equal(b, "50M");
	pf_fmt_bytes(UINT64_MAX, b, sizeof(b));
	assert_string_equal(b, "16E");

	cols = pf_fmt_cell("abc", 3, 10, false, b, sizeof(b));
	assert_int_equal(cols, 3);
	assert_string_equal(b, "abc");
	cols = pf_fmt_cell("abcdefghij", 10, 6, false, b, sizeof(b));
	assert_string_equal(b, "abc...");
	assert_int_equal(cols, 6);
}

static void test_fmt_cell(void **state)
{
	char b[64];
	size_t cols;

	cols = pf_fmt_cell("/usr/lib/very/long/bin/prog", 27, 10, true, b, sizeof(b));
	assert_string_equal(b, "...in/prog");
	assert_int_equal(cols, 10);
	/* Terminal controls never reach the terminal. */
	cols = pf_fmt_cell("a\x1b[31mb\x07\x7f", 9, 20, false, b, sizeof(b));
	assert_string_equal(b, "a?[31mb??");
	/* UTF-8 counts one column per character; C1 controls and invalid
	 * bytes are '?'. */
	cols = pf_fmt_cell("caf\xc3\xa9", 5, 20, false, b, sizeof(b));
	assert_int_equal(cols, 4);
	assert_string_equal(b, "caf\xc3\xa9");
	cols = pf_fmt_cell("\xc2\x9b"
			   "x\xff\xc3",
			   5, 20, false, b, sizeof(b));
	assert_string_equal(b, "?x??");
	/* A tiny output buffer is respected. */
	cols = pf_fmt_cell("abcdef", 6, 20, false, b, 3);
	assert_string_equal(b, "ab");
}

/* A hostile argument with a right-to-left override (U+202E), an isolate
 * (U+2067, U+2069), a zero-width space (U+200B) and a BOM: dropped, so the
 * row reads in the order of the bytes, and they take no column. */
static void test_fmt_cell_bidi(void **state)
{
	static const char s[] = "--user=\xe2\x80\xae"
				"nimda\xe2\x81\xa7x\xe2\x81\xa9\xe2\x80\x8b\xef\xbb\xbf!";
	char b[64];
	size_t cols;

	cols = pf_fmt_cell(s, strlen(s), 40, false, b, sizeof(b));
	assert_string_equal(b, "--user=nimdax!");
	assert_int_equal(cols, 14);
	cols = pf_fmt_cell(s, strlen(s), 10, true, b, sizeof(b));
	assert_string_equal(b, "...nimdax!");
	assert_int_equal(cols, 10);
}

/* ---- files ---- */

static char tmp[64];

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/pf-query-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *name, const void *data, size_t n)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
}

static void write_zst(const char *name, const char *text)
{
	size_t bound = ZSTD_compressBound(strlen(text));
	void *z = malloc(bound);
	size_t n = ZSTD_compress(z, bound, text, strlen(text), 3);

	assert_false(ZSTD_isError(n));
	write_file(name, z, n);
	free(z);
}

static int read_all(const char *path, bool final, char *out, size_t outsz)
{
	struct pf_flowfile *f = pf_flowfile__open(path);
	const char *line;
	size_t len, o = 0;
	int n = 0, r;

	assert_non_null(f);
	while ((r = pf_flowfile__next(f, final, &line, &len)) > 0) {
		o += (size_t)snprintf(out + o, outsz - o, "[%.*s]", (int)len, line);
		n++;
	}
	pf_flowfile__close(f);
	return r < 0 ? r : n;
}

static void test_files(void **state)
{
	char path[256], out[4096], **files;
	int n;

	write_file("flows.log", "a\nb\npartial", 11);
	snprintf(path, sizeof(path), "%s/flows.log", tmp);
	assert_int_equal(read_all(path, false, out, sizeof(out)), 2);
	assert_string_equal(out, "[a][b]");
	assert_int_equal(read_all(path, true, out, sizeof(out)), 3);
	assert_string_equal(out, "[a][b][partial]");

	write_zst("flows.log.2.zst", "old1\nold2\n");
	write_file("flows.log.1", "mid\n", 4);
	write_file("flows.log.10", "oldest\n", 7);
	write_file("flows.log.1.zst", "half-written", 12); /* compressing: ignored */
	write_file("flows.log.x", "no\n", 3);
	write_file("other.log", "no\n", 3);
	snprintf(path, sizeof(path), "%s/flows.log.2.zst", tmp);
	assert_int_equal(read_all(path, true, out, sizeof(out)), 2);
	assert_string_equal(out, "[old1][old2]");

	n = pf_flowfiles__list(tmp, &files);
	assert_int_equal(n, 4);
	assert_non_null(strstr(files[0], "/flows.log.10"));
	assert_non_null(strstr(files[1], "/flows.log.2.zst"));
	assert_non_null(strstr(files[2], "/flows.log.1"));
	assert_false(strstr(files[2], ".zst"));
	assert_non_null(strstr(files[3], "/flows.log"));
	pf_flowfiles__free(files, n);

	/* Corrupt compressed data is an error, not a crash. */
	write_file("flows.log.3.zst", "\x28\xb5\x2f\xfd garbage garbage", 20);
	snprintf(path, sizeof(path), "%s/flows.log.3.zst", tmp);
	assert_int_equal(read_all(path, true, out, sizeof(out)), -EBADMSG);
}

static void test_oversize_line(void **state)
{
	size_t big = PF_FLOWFILE_LINE_MAX + 100;
	char *data = malloc(big + 16), path[256], out[256];
	struct pf_flowfile *f;
	const char *line;
	size_t len;

	memset(data, 'x', big);
	memcpy(data + big, "\nok\n", 4);
	write_file("flows.log", data, big + 4);
	free(data);
	snprintf(path, sizeof(path), "%s/flows.log", tmp);
	f = pf_flowfile__open(path);
	assert_int_equal(pf_flowfile__next(f, true, &line, &len), 1);
	snprintf(out, sizeof(out), "%.*s", (int)len, line);
	assert_string_equal(out, "ok");
	assert_int_equal(pf_flowfile__oversize(f), 1);
	pf_flowfile__close(f);
}

/* A .zst cut inside its frame: the whole lines before the cut, then
 * -ENODATA (it read as a clean end before). A FIFO is refused at once. */
static void test_cut_zst_and_fifo(void **state)
{
	size_t cap = 20000 * 10, o = 0, bound, n, len;
	char *text = malloc(cap), path[256], out[64];
	struct pf_flowfile *f;
	const char *line;
	int r, lines = 0;
	void *z;

	/* 200 KB: more than one 128 KiB block, so lines come out before the cut. */
	for (int i = 0; i < 20000; i++)
		o += (size_t)snprintf(text + o, cap - o, "line%05d\n", i);
	bound = ZSTD_compressBound(o);
	z = malloc(bound);
	n = ZSTD_compress(z, bound, text, o, 1);
	assert_false(ZSTD_isError(n));
	write_file("flows.log.1.zst", z, n - 4); /* the frame's end is missing */
	free(z);
	free(text);
	snprintf(path, sizeof(path), "%s/flows.log.1.zst", tmp);
	f = pf_flowfile__open(path);
	assert_non_null(f);
	while ((r = pf_flowfile__next(f, true, &line, &len)) > 0)
		if (len == 9 && !memcmp(line, "line", 4))
			lines++;
	pf_flowfile__close(f);
	assert_int_equal(r, -ENODATA);
	assert_true(lines > 0 && lines < 20000);

	write_file("flows.log.2.zst", "", 0); /* no frame at all */
	snprintf(path, sizeof(path), "%s/flows.log.2.zst", tmp);
	assert_int_equal(read_all(path, true, out, sizeof(out)), -ENODATA);

	snprintf(path, sizeof(path), "%s/flows.log.3", tmp);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(pf_flowfile__open(path));
	assert_int_equal(errno, EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_scan_example),
	    cmocka_unit_test(test_scan_truncated),
	    cmocka_unit_test(test_scan_corrupt),
	    cmocka_unit_test(test_u64),
	    cmocka_unit_test(test_unescape),
	    cmocka_unit_test(test_duration_time),
	    cmocka_unit_test(test_cidr),
	    cmocka_unit_test(test_filters),
	    cmocka_unit_test(test_scan_requires_contract),
	    cmocka_unit_test(test_filters_combine),
	    cmocka_unit_test(test_filters_refused),
	    cmocka_unit_test(test_filters_ranges),
	    cmocka_unit_test(test_pid_and_escaped_process),
	    cmocka_unit_test(test_fmt),
	    cmocka_unit_test(test_pod_filters),
	    cmocka_unit_test(test_fmt_cell),
	    cmocka_unit_test(test_fmt_cell_bidi),
	    cmocka_unit_test_setup_teardown(test_files, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_oversize_line, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_cut_zst_and_fifo, setup, teardown),
	};

	setenv("TZ", "UTC", 1);
	tzset();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
