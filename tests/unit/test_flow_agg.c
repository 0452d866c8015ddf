// SPDX-License-Identifier: BSD-2-Clause
/*
 * Flow aggregation golden tests: a stream of observations in, the exact
 * flow-log lines out, compared as whole strings. The expected lines are
 * spelled out from ../shared/spec/flow-log-format.md; the first test is the
 * spec's own example line, byte for byte. Every line the aggregator writes
 * is also checked by the strict validator in json_check.h.
 *
 * Addresses are from the test ranges (198.18.0.0/15, fd00::/8; both "pub",
 * as Calico classifies them) where the value does not matter, and from the
 * RFC 1918 and public ranges where the pvt/pub classification is what is
 * being tested.
 */
#include <arpa/inet.h>
#include <errno.h>
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
#include "json_check.h"

#define T0	  1764252000
#define T1	  1764252015
#define NETNS	  4026531840ULL
#define MAX_LINES 1024

/* ---- capture --------------------------------------------------------------------------------- */

struct capture {
	char *line[MAX_LINES];
	size_t len[MAX_LINES];
	size_t n;
	int fail_with; /* returned by the callback when nonzero */
};

static int capture_fn(const char *line, size_t len, void *ctx)
{
	struct capture *c = ctx;

	/* Every line written must be one valid JSON object and a newline. */
	if (json_check_line(line, len)) {
		print_error("invalid line: %.*s\n", (int)len, line);
		fail();
	}
	if (c->fail_with)
		return c->fail_with;
	assert_true(c->n < MAX_LINES);
	c->line[c->n] = malloc(len + 1);
	assert_non_null(c->line[c->n]);
	memcpy(c->line[c->n], line, len);
	c->line[c->n][len] = '\0';
	c->len[c->n] = len;
	c->n++;
	return 0;
}

static void capture_free(struct capture *c)
{
	size_t i;

	for (i = 0; i < c->n; i++)
		free(c->line[i]);
	c->n = 0;
}

/* Flush @a and compare the lines with @expect, in order. */
static void expect_lines(struct pf_agg *a, const char *const *expect, size_t n)
{
	struct capture c = {0};
	size_t i;

	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
	for (i = 0; i < c.n && i < n; i++) {
		if (strcmp(c.line[i], expect[i])) {
			print_error("line %zu\n got:    %s expect: %s", i, c.line[i], expect[i]);
			fail();
		}
	}
	if (c.n != n) {
		for (i = 0; i < c.n; i++)
			print_error("line %zu: %s", i, c.line[i]);
		print_error("got %zu lines, expected %zu\n", c.n, n);
		fail();
	}
	capture_free(&c);
}

#define EXPECT(a, ...)                                                                             \
	do {                                                                                       \
		const char *const exp_[] = {__VA_ARGS__};                                          \
		expect_lines(a, exp_, sizeof(exp_) / sizeof(exp_[0]));                             \
	} while (0)

/* ---- expected lines -------------------------------------------------------------------------- */

/* Pieces of a line in the spec's key order. @ip and @port are JSON tokens
 * (a quoted string or null, a number or null). */
#define J_SRC(ip, name, aggr, port, type)                                                          \
	"\"source_ip\":" ip ",\"source_name\":\"" name "\",\"source_name_aggr\":\"" aggr           \
	"\",\"source_namespace\":\"-\",\"nat_outgoing_ports\":null,\"source_port\":" port          \
	",\"source_type\":\"" type "\",\"source_labels\":null,"
#define J_DST(ip, name, aggr, port, type)                                                          \
	"\"dest_ip\":" ip ",\"dest_name\":\"" name "\",\"dest_name_aggr\":\"" aggr                 \
	"\",\"dest_namespace\":\"-\",\"dest_port\":" port ",\"dest_type\":\"" type                 \
	"\",\"dest_labels\":null,\"dest_service_namespace\":\"-\",\"dest_service_name\":\"-\","    \
	"\"dest_service_port\":\"-\",\"dest_service_port_num\":null,\"dest_domains\":null,"
#define J_MID(proto, rep, bin, bout, nf, nst, ncp, pin, pout)                                      \
	"\"proto\":\"" proto "\",\"action\":\"allow\",\"reporter\":\"" rep                         \
	"\",\"policies\":null,\"bytes_in\":" bin ",\"bytes_out\":" bout ",\"num_flows\":" nf       \
	",\"num_flows_started\":" nst ",\"num_flows_completed\":" ncp ",\"packets_in\":" pin       \
	",\"packets_out\":" pout ",\"transit_bytes_in\":0,\"transit_bytes_out\":0,"                \
	"\"transit_packets_in\":0,\"transit_packets_out\":0,\"http_requests_allowed_in\":0,"       \
	"\"http_requests_denied_in\":0,"
#define J_MID_A(act, proto, rep, bin, bout, nf, nst, ncp, pin, pout)                              \
	"\"proto\":\"" proto "\",\"action\":\"" act "\",\"reporter\":\"" rep                  \
	"\",\"policies\":null,\"bytes_in\":" bin ",\"bytes_out\":" bout ",\"num_flows\":" nf       \
	",\"num_flows_started\":" nst ",\"num_flows_completed\":" ncp ",\"packets_in\":" pin       \
	",\"packets_out\":" pout ",\"transit_bytes_in\":0,\"transit_bytes_out\":0,"                \
	"\"transit_packets_in\":0,\"transit_packets_out\":0,\"http_requests_allowed_in\":0,"       \
	"\"http_requests_denied_in\":0,"
#define J_PROC(name, nnames, pid, npids, args, nargs)                                              \
	"\"process_name\":\"" name "\",\"num_process_names\":" nnames ",\"process_id\":\"" pid     \
	"\",\"num_process_ids\":" npids ",\"process_args\":[" args "],\"num_process_args\":" nargs \
	",\"original_source_ips\":null,\"num_original_source_ips\":0,"
#define J_TCP(mc, minc, ms, maxs, mm, maxm, mmss, minmss, re, lo, un)                              \
	"\"tcp_mean_send_congestion_window\":" mc ",\"tcp_min_send_congestion_window\":" minc      \
	",\"tcp_mean_smooth_rtt\":" ms ",\"tcp_max_smooth_rtt\":" maxs ",\"tcp_mean_min_rtt\":" mm \
	",\"tcp_max_min_rtt\":" maxm ",\"tcp_mean_mss\":" mmss ",\"tcp_min_mss\":" minmss          \
	",\"tcp_total_retransmissions\":" re ",\"tcp_lost_packets\":" lo                           \
	",\"tcp_unrecovered_to\":" un ","
#define J_TCP0 J_TCP("0", "0", "0", "0", "0", "0", "0", "0", "0", "0", "0")
#define J_LINE(src, dst, mid, proc, tcp)                                                           \
	"{\"start_time\":1764252000,\"end_time\":1764252015," src dst mid proc tcp                 \
	"\"host\":\"node-a\"}\n"
#define J_DASH J_PROC("-", "0", "-", "0", "", "0")

/* ---- observations ---------------------------------------------------------------------------- */

static void parse_addr(const char *s, uint8_t out[16])
{
	memset(out, 0, 16);
	if (strchr(s, ':')) {
		assert_int_equal(inet_pton(AF_INET6, s, out), 1);
	} else {
		out[10] = 0xff;
		out[11] = 0xff;
		assert_int_equal(inet_pton(AF_INET, s, out + 12), 1);
	}
}

static struct pf_flow_obs obs(uint8_t reporter, uint8_t proto, const char *laddr, uint16_t lport,
			      const char *raddr, uint16_t rport, uint64_t flow_id)
{
	struct pf_flow_obs o;

	memset(&o, 0, sizeof(o));
	o.netns = NETNS;
	o.flow_id = flow_id;
	parse_addr(laddr, o.laddr);
	parse_addr(raddr, o.raddr);
	o.lport = lport;
	o.rport = rport;
	o.proto = proto;
	o.reporter = reporter;
	return o;
}

static void set_proc(struct pf_flow_obs *o, const char *name, uint32_t pid, const char *args)
{
	o->proc_name = name;
	o->proc_pid = pid;
	o->proc_args = args;
}

static void set_bytes(struct pf_flow_obs *o, uint64_t bin, uint64_t bout, uint64_t pin,
		      uint64_t pout)
{
	o->bytes_in = bin;
	o->bytes_out = bout;
	o->packets_in = pin;
	o->packets_out = pout;
}

static void set_tcp(struct pf_flow_obs *o, uint32_t cwnd, uint32_t srtt, uint32_t min_rtt,
		    uint32_t mss)
{
	o->has_tcp = 1;
	o->tcp_cwnd = cwnd;
	o->tcp_srtt_us = srtt;
	o->tcp_min_rtt_us = min_rtt;
	o->tcp_mss = mss;
}

static struct pf_agg_opts default_opts(int level)
{
	struct pf_agg_opts o = {
	    .level = level,
	    .host = "node-a",
	    .proc_limit = 2,
	    .args_limit = 5,
	    .include_process = 1,
	    .include_tcp = 1,
	};

	return o;
}

static struct pf_agg *new_agg(const struct pf_agg_opts *opts)
{
	struct pf_agg *a = pf_agg__new(opts);

	assert_non_null(a);
	return a;
}

static void add(struct pf_agg *a, const struct pf_flow_obs *o)
{
	assert_int_equal(pf_agg__add(a, o), 0);
}

#define SRC PF_REPORTER_SRC
#define DST PF_REPORTER_DST
#define TCP IPPROTO_TCP
#define UDP IPPROTO_UDP

/* ---- golden tests ---------------------------------------------------------------------------- */

/* The spec's example (section 6): level 1, three curl runs to the same
 * server, two of them with the same arguments. */
static void test_spec_example(void **state)
{
	static const char expect[] =
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
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, TCP, "198.18.0.2", 40001, "198.18.0.1", 8080, 1);
	o.started = o.completed = 1;
	set_bytes(&o, 500, 200, 3, 4);
	set_proc(&o, "/usr/bin/curl", 101, "-s http://198.18.0.1:8080/a");
	set_tcp(&o, 10, 88, 52, 1448);
	add(a, &o);

	o = obs(SRC, TCP, "198.18.0.2", 40002, "198.18.0.1", 8080, 2);
	o.started = o.completed = 1;
	set_bytes(&o, 500, 200, 3, 4);
	set_proc(&o, "/usr/bin/curl", 102, "-s http://198.18.0.1:8080/b");
	set_tcp(&o, 10, 50, 34, 1448);
	add(a, &o);

	o = obs(SRC, TCP, "198.18.0.2", 40003, "198.18.0.1", 8080, 3);
	o.started = o.completed = 1;
	set_bytes(&o, 432, 255, 3, 3);
	set_proc(&o, "/usr/bin/curl", 103, "-s http://198.18.0.1:8080/a");
	set_tcp(&o, 10, 45, 34, 1448);
	add(a, &o);

	EXPECT(a, expect);
	/* The same through the line macros the other tests use. */
	assert_string_equal(
	    expect,
	    J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep"),
		   J_DST("\"198.18.0.1\"", "-", "pub", "8080", "net"),
		   J_MID("tcp", "src", "1432", "655", "3", "3", "3", "9", "11"),
		   J_PROC("/usr/bin/curl", "1", "*", "3",
			  "\"-s http://198.18.0.1:8080/a\","
			  "\"-s http://198.18.0.1:8080/b\"",
			  "2"),
		   J_TCP("10", "10", "61", "88", "40", "52", "1448", "1448", "0", "0", "0")));
	pf_agg__free(a);
}

/* Level 1, reporter dst, IPv6: the remote side is the source, its port is
 * folded; the local server is the destination. */
static void test_level1_dst_ipv6(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(DST, TCP, "fd00::1", 8080, "fd00::2", 50000, 10);
	o.started = 1;
	set_bytes(&o, 100, 2000, 2, 3);
	set_proc(&o, "/usr/sbin/nginx", 200, "-g daemon off;");
	add(a, &o);
	o = obs(DST, TCP, "fd00::1", 8080, "2001:db8::5", 40000, 12);
	o.started = 1;
	set_bytes(&o, 1, 2, 1, 1);
	set_proc(&o, "/usr/sbin/nginx", 200, "-g daemon off;");
	add(a, &o);
	o = obs(DST, TCP, "fd00::1", 8080, "fd00::2", 50001, 11);
	o.completed = 1;
	set_bytes(&o, 50, 60, 1, 1);
	set_proc(&o, "/usr/sbin/nginx", 200, "-g daemon off;");
	add(a, &o);

	EXPECT(
	    a,
	    J_LINE(J_SRC("\"fd00::2\"", "-", "pub", "null", "net"),
		   J_DST("\"fd00::1\"", "node-a", "node-a", "8080", "hep"),
		   J_MID("tcp", "dst", "150", "2060", "2", "1", "1", "3", "4"),
		   J_PROC("/usr/sbin/nginx", "1", "200", "1", "\"-g daemon off;\"", "1"), J_TCP0),
	    J_LINE(J_SRC("\"2001:db8::5\"", "-", "pub", "null", "net"),
		   J_DST("\"fd00::1\"", "node-a", "node-a", "8080", "hep"),
		   J_MID("tcp", "dst", "1", "2", "1", "1", "0", "1", "1"),
		   J_PROC("/usr/sbin/nginx", "1", "200", "1", "\"-g daemon off;\"", "1"), J_TCP0));
	pf_agg__free(a);
}

/* Level 1, reporter src, IPv6 and IPv4 side by side: only the local
 * (source) port folds. */
static void test_level1_src(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, TCP, "fd00::10", 33000, "fd00::20", 443, 1);
	set_proc(&o, "/usr/bin/wget", 5, NULL);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 33001, "10.20.30.40", 443, 2);
	set_proc(&o, "/usr/bin/wget", 5, NULL);
	add(a, &o);
	o = obs(SRC, TCP, "fd00::10", 33002, "fd00::20", 443, 3);
	set_proc(&o, "/usr/bin/wget", 5, NULL);
	add(a, &o);

	EXPECT(a,
	       J_LINE(J_SRC("\"fd00::10\"", "node-a", "node-a", "null", "hep"),
		      J_DST("\"fd00::20\"", "-", "pub", "443", "net"),
		      J_MID("tcp", "src", "0", "0", "2", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/wget", "1", "5", "1", "", "0"), J_TCP0),
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep"),
		      J_DST("\"10.20.30.40\"", "-", "pvt", "443", "net"),
		      J_MID("tcp", "src", "0", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/wget", "1", "5", "1", "", "0"), J_TCP0));
	pf_agg__free(a);
}

/* Level 0: nothing folds, each source port is its own line; UDP lines
 * carry no TCP figures even when a sample came with them. */
static void test_level0(void **state)
{
	struct pf_agg_opts opts = default_opts(0);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, UDP, "198.18.0.2", 40000, "192.168.1.1", 53, 1);
	set_bytes(&o, 100, 40, 1, 1);
	set_proc(&o, "/usr/bin/dig", 300, "example.com");
	set_tcp(&o, 10, 10, 10, 10);
	add(a, &o);
	o = obs(SRC, UDP, "198.18.0.2", 40001, "192.168.1.1", 53, 2);
	set_bytes(&o, 100, 40, 1, 1);
	set_proc(&o, "/usr/bin/dig", 300, "example.com");
	add(a, &o);
	o = obs(DST, TCP, "10.1.2.3", 22, "203.0.113.9", 61000, 3);
	o.started = 1;
	set_bytes(&o, 5000, 7000, 20, 30);
	set_proc(&o, "sshd", 0, NULL);
	add(a, &o);
	o = obs(SRC, UDP, "198.18.0.2", 40000, "192.168.1.1", 53, 1);
	o.completed = 1;
	set_bytes(&o, 1, 2, 3, 4);
	set_proc(&o, "/usr/bin/dig", 300, "example.com");
	add(a, &o);

	EXPECT(a,
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "40000", "hep"),
		      J_DST("\"192.168.1.1\"", "-", "pvt", "53", "net"),
		      J_MID("udp", "src", "101", "42", "1", "0", "1", "4", "5"),
		      J_PROC("/usr/bin/dig", "1", "300", "1", "\"example.com\"", "1"), J_TCP0),
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "40001", "hep"),
		      J_DST("\"192.168.1.1\"", "-", "pvt", "53", "net"),
		      J_MID("udp", "src", "100", "40", "1", "0", "0", "1", "1"),
		      J_PROC("/usr/bin/dig", "1", "300", "1", "\"example.com\"", "1"), J_TCP0),
	       J_LINE(J_SRC("\"203.0.113.9\"", "-", "pub", "61000", "net"),
		      J_DST("\"10.1.2.3\"", "node-a", "node-a", "22", "hep"),
		      J_MID("tcp", "dst", "5000", "7000", "1", "1", "0", "20", "30"),
		      J_PROC("sshd", "1", "-", "0", "", "0"), J_TCP0));
	pf_agg__free(a);
}

/* Level 2: IPs and names go, lines group by name_aggr (pvt/pub, the host
 * for the local side); network namespaces stay apart. */
static void test_level2(void **state)
{
	struct pf_agg_opts opts = default_opts(2);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, TCP, "198.18.0.2", 40000, "10.0.0.5", 443, 1);
	set_bytes(&o, 1, 0, 0, 0);
	set_proc(&o, "/usr/bin/curl", 1, NULL);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 40001, "10.0.0.6", 443, 2);
	set_bytes(&o, 2, 0, 0, 0);
	set_proc(&o, "/usr/bin/curl", 2, NULL);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 40002, "8.8.8.8", 443, 3);
	set_bytes(&o, 4, 0, 0, 0);
	set_proc(&o, "/usr/bin/curl", 3, NULL);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 40003, "10.0.0.7", 80, 4);
	set_bytes(&o, 8, 0, 0, 0);
	set_proc(&o, "/usr/bin/curl", 4, NULL);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 40004, "10.0.0.5", 443, 5);
	o.netns = NETNS + 1;
	set_bytes(&o, 16, 0, 0, 0);
	set_proc(&o, "/usr/bin/curl", 5, NULL);
	add(a, &o);
	/* Another local address of this host: same key as flow 1. */
	o = obs(SRC, TCP, "198.18.0.3", 40005, "10.0.0.5", 443, 6);
	set_bytes(&o, 32, 0, 0, 0);
	set_proc(&o, "/usr/bin/curl", 1, NULL);
	add(a, &o);
	/* Server side: two private clients fold into one line. */
	o = obs(DST, TCP, "198.18.0.2", 8080, "192.168.5.5", 5555, 7);
	set_proc(&o, "/usr/sbin/nginx", 9, NULL);
	add(a, &o);
	o = obs(DST, TCP, "198.18.0.2", 8080, "192.168.5.6", 5556, 8);
	set_proc(&o, "/usr/sbin/nginx", 9, NULL);
	add(a, &o);

#define L2_SRC_LOCAL J_SRC("null", "-", "node-a", "null", "hep")
	EXPECT(a,
	       J_LINE(L2_SRC_LOCAL, J_DST("null", "-", "pvt", "443", "net"),
		      J_MID("tcp", "src", "35", "0", "3", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/curl", "1", "*", "2", "", "0"), J_TCP0),
	       J_LINE(L2_SRC_LOCAL, J_DST("null", "-", "pub", "443", "net"),
		      J_MID("tcp", "src", "4", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/curl", "1", "3", "1", "", "0"), J_TCP0),
	       J_LINE(L2_SRC_LOCAL, J_DST("null", "-", "pvt", "80", "net"),
		      J_MID("tcp", "src", "8", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/curl", "1", "4", "1", "", "0"), J_TCP0),
	       J_LINE(L2_SRC_LOCAL, J_DST("null", "-", "pvt", "443", "net"),
		      J_MID("tcp", "src", "16", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/curl", "1", "5", "1", "", "0"), J_TCP0),
	       J_LINE(J_SRC("null", "-", "pvt", "null", "net"),
		      J_DST("null", "-", "node-a", "8080", "hep"),
		      J_MID("tcp", "dst", "0", "0", "2", "0", "0", "0", "0"),
		      J_PROC("/usr/sbin/nginx", "1", "9", "1", "", "0"), J_TCP0));
#undef L2_SRC_LOCAL
	pf_agg__free(a);
}

/* Level 3: destination ports fold too; the protocol still separates. */
static void test_level3(void **state)
{
	struct pf_agg_opts opts = default_opts(3);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, TCP, "198.18.0.2", 40000, "10.0.0.5", 443, 1);
	set_proc(&o, "/usr/bin/curl", 1, "https://a");
	add(a, &o);
	o = obs(SRC, UDP, "198.18.0.2", 40001, "8.8.8.8", 53, 2);
	set_proc(&o, "/usr/bin/curl", 1, "https://a");
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 40002, "10.0.0.6", 80, 3);
	set_proc(&o, "/usr/bin/curl", 1, "https://a");
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 40003, "8.8.4.4", 443, 4);
	set_proc(&o, "/usr/bin/curl", 1, "https://a");
	add(a, &o);
	o = obs(DST, TCP, "198.18.0.2", 22, "10.9.9.9", 50000, 5);
	set_proc(&o, "sshd", 77, NULL);
	add(a, &o);
	o = obs(DST, TCP, "198.18.0.2", 8080, "10.9.9.9", 50001, 6);
	set_proc(&o, "sshd", 77, NULL);
	add(a, &o);

#define L3_SRC_LOCAL J_SRC("null", "-", "node-a", "null", "hep")
#define L3_CURL	     J_PROC("/usr/bin/curl", "1", "1", "1", "\"https://a\"", "1")
	EXPECT(a,
	       J_LINE(L3_SRC_LOCAL, J_DST("null", "-", "pvt", "null", "net"),
		      J_MID("tcp", "src", "0", "0", "2", "0", "0", "0", "0"), L3_CURL, J_TCP0),
	       J_LINE(L3_SRC_LOCAL, J_DST("null", "-", "pub", "null", "net"),
		      J_MID("udp", "src", "0", "0", "1", "0", "0", "0", "0"), L3_CURL, J_TCP0),
	       J_LINE(L3_SRC_LOCAL, J_DST("null", "-", "pub", "null", "net"),
		      J_MID("tcp", "src", "0", "0", "1", "0", "0", "0", "0"), L3_CURL, J_TCP0),
	       J_LINE(J_SRC("null", "-", "pvt", "null", "net"),
		      J_DST("null", "-", "node-a", "null", "hep"),
		      J_MID("tcp", "dst", "0", "0", "2", "0", "0", "0", "0"),
		      J_PROC("sshd", "1", "77", "1", "", "0"), J_TCP0));
#undef L3_SRC_LOCAL
#undef L3_CURL
	pf_agg__free(a);
}

/* The line pieces shared by the process tests: one key, level 1, src. */
#define P_SRC J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep")
#define P_DST J_DST("\"198.18.0.1\"", "-", "pub", "8080", "net")

static struct pf_flow_obs pobs(uint64_t flow_id, uint64_t bytes_in)
{
	struct pf_flow_obs o =
	    obs(SRC, TCP, "198.18.0.2", (uint16_t)(40000 + flow_id), "198.18.0.1", 8080, flow_id);

	o.bytes_in = bytes_in;
	return o;
}

/*
 * Process limit 2: the first two names get their own lines, the "-" line
 * keeps its first-seen place, and every later name merges into one "*"
 * line with summed counters and distinct counts over all merged names.
 */
static void test_proc_limit_star(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = pobs(1, 1);
	set_proc(&o, "/bin/a", 1, "x");
	add(a, &o);
	o = pobs(2, 2);
	set_proc(&o, "/bin/b", 2, NULL);
	add(a, &o);
	o = pobs(3, 4);
	set_proc(&o, NULL, 3, "ignored");
	add(a, &o);
	o = pobs(4, 8);
	o.started = 1;
	set_proc(&o, "/bin/c", 10, "p");
	add(a, &o);
	o = pobs(5, 16);
	set_proc(&o, "/bin/d", 10, "p"); /* same PID and args as c: counted once */
	add(a, &o);
	o = pobs(4, 32); /* flow 4 again, now completed */
	o.completed = 1;
	set_proc(&o, "/bin/c", 11, "q");
	add(a, &o);
	o = pobs(6, 64);
	set_proc(&o, "/bin/e", 12, "");
	add(a, &o);
	o = pobs(1, 128);
	set_proc(&o, "/bin/a", 1, "x");
	add(a, &o);

	EXPECT(a,
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "129", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/bin/a", "1", "1", "1", "\"x\"", "1"), J_TCP0),
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "2", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/bin/b", "1", "2", "1", "", "0"), J_TCP0),
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "4", "0", "1", "0", "0", "0", "0"), J_DASH,
		      J_TCP0),
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "120", "0", "3", "1", "1", "0", "0"),
		      J_PROC("*", "3", "*", "3", "\"p\",\"q\"", "2"), J_TCP0));
	pf_agg__free(a);
}

/* A limit of 0 sends every name to the "*" line; a "*" line of one name
 * and one PID follows the single-PID rules like any other. */
static void test_proc_limit_zero(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a;
	struct pf_flow_obs o;

	opts.proc_limit = 0;
	a = new_agg(&opts);
	o = pobs(1, 1);
	set_proc(&o, "/bin/a", 9, "short");
	add(a, &o);
	o = pobs(2, 1);
	set_proc(&o, "/bin/a", 9, "longer one");
	add(a, &o);
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "2", "0", "2", "0", "0", "0", "0"),
			 J_PROC("*", "1", "9", "1", "\"longer one\"", "1"), J_TCP0));
	pf_agg__free(a);
}

/* Args limit 2: the first two distinct strings are listed, all four are
 * counted. With a limit of 0 none is listed but all are still counted. */
static void test_args_limit(void **state)
{
	static const char *args[] = {"one", "two", "three", "two", "four"};
	static const uint32_t pid[] = {1, 2, 3, 1, 2};
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a;
	struct pf_flow_obs o;
	size_t i;

	opts.args_limit = 2;
	a = new_agg(&opts);
	for (i = 0; i < 5; i++) {
		o = pobs(i + 1, 0);
		set_proc(&o, "/usr/bin/python3", pid[i], args[i]);
		add(a, &o);
	}
	EXPECT(a,
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "0", "0", "5", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/python3", "1", "*", "3", "\"one\",\"two\"", "4"), J_TCP0));
	pf_agg__free(a);

	opts.args_limit = 0;
	a = new_agg(&opts);
	for (i = 0; i < 5; i++) {
		o = pobs(i + 1, 0);
		set_proc(&o, "/usr/bin/python3", pid[i], args[i]);
		add(a, &o);
	}
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "0", "0", "5", "0", "0", "0", "0"),
			 J_PROC("/usr/bin/python3", "1", "*", "3", "", "4"), J_TCP0));
	pf_agg__free(a);
}

/* Exactly one PID: only the longest string (the first of equal length),
 * and num_process_args 1, however many distinct strings were seen. */
static void test_single_pid_longest_args(void **state)
{
	static const char *args[] = {"a", NULL, "abc", "", "ab", "xyz", "abc"};
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;
	size_t i;

	for (i = 0; i < sizeof(args) / sizeof(args[0]); i++) {
		o = pobs(1, 1);
		set_proc(&o, "/usr/bin/long-running", 42, args[i]);
		add(a, &o);
	}
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "7", "0", "1", "0", "0", "0", "0"),
			 J_PROC("/usr/bin/long-running", "1", "42", "1", "\"abc\"", "1"), J_TCP0));
	pf_agg__free(a);
}

/*
 * The "-" line (no process name, or an empty one) has counts 0 and no
 * PID or args even when the observation carried them. Unknown or empty
 * args give [] and 0; an unknown PID gives "-" and 0, and then the
 * single-PID rule does not apply.
 */
static void test_dash_and_unknown(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a;
	struct pf_flow_obs o;

	opts.proc_limit = 5;
	a = new_agg(&opts);
	o = pobs(1, 1);
	set_proc(&o, NULL, 5, "zzz");
	add(a, &o);
	o = pobs(2, 2);
	set_proc(&o, "/bin/true", 7, NULL);
	add(a, &o);
	o = pobs(3, 4);
	set_proc(&o, "", 6, "yyy");
	add(a, &o);
	o = pobs(4, 8);
	set_proc(&o, "/bin/true", 7, "");
	add(a, &o);
	o = pobs(5, 16);
	set_proc(&o, "/bin/false", 0, "x");
	add(a, &o);
	o = pobs(6, 32);
	set_proc(&o, "/bin/false", 0, "yy");
	add(a, &o);

	EXPECT(a,
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "5", "0", "2", "0", "0", "0", "0"), J_DASH,
		      J_TCP0),
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "10", "0", "2", "0", "0", "0", "0"),
		      J_PROC("/bin/true", "1", "7", "1", "", "0"), J_TCP0),
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "48", "0", "2", "0", "0", "0", "0"),
		      J_PROC("/bin/false", "1", "-", "0", "\"x\",\"yy\"", "2"), J_TCP0));
	pf_agg__free(a);
}

/* Process information off: one "-" line per key whatever the names. */
static void test_include_process_off(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a;
	struct pf_flow_obs o;

	opts.include_process = 0;
	a = new_agg(&opts);
	o = pobs(1, 1);
	set_proc(&o, "/bin/a", 1, "x");
	add(a, &o);
	o = pobs(2, 2);
	set_proc(&o, "/bin/b", 2, "y");
	add(a, &o);
	o = pobs(3, 4);
	set_proc(&o, "/bin/c", 3, "z");
	add(a, &o);
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "7", "0", "3", "0", "0", "0", "0"),
			 J_DASH, J_TCP0));
	pf_agg__free(a);
}

/* num_flows counts distinct flow ids; started/completed count distinct
 * flows with the flag, however often a flow is reported. */
static void test_distinct_flows(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = pobs(1, 1);
	o.started = 1;
	set_proc(&o, "/bin/a", 1, NULL);
	add(a, &o);
	o = pobs(1, 2);
	o.completed = 1;
	set_proc(&o, "/bin/a", 1, NULL);
	add(a, &o);
	o = pobs(2, 4);
	o.started = 1;
	set_proc(&o, "/bin/a", 1, NULL);
	add(a, &o);
	o = pobs(3, 8);
	set_proc(&o, "/bin/a", 1, NULL);
	add(a, &o);
	o = pobs(2, 16);
	o.started = 1;
	set_proc(&o, "/bin/a", 1, NULL);
	add(a, &o);
	o = pobs(1, 32);
	o.started = o.completed = 1;
	set_proc(&o, "/bin/a", 1, NULL);
	add(a, &o);
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "63", "0", "3", "2", "1", "0", "0"),
			 J_PROC("/bin/a", "1", "1", "1", "", "0"), J_TCP0));
	pf_agg__free(a);
}

static void add_tcp_samples(struct pf_agg *a)
{
	struct pf_flow_obs o;

	o = pobs(1, 0);
	set_proc(&o, "/bin/a", 1, NULL);
	set_tcp(&o, 10, 100, 50, 1448);
	o.tcp_retrans = 1;
	add(a, &o);
	o = pobs(2, 0);
	set_proc(&o, "/bin/a", 1, NULL);
	set_tcp(&o, 20, 200, 60, 1400);
	o.tcp_retrans = 2;
	o.tcp_lost = 1;
	add(a, &o);
	/* No sample: its figures must not count. */
	o = pobs(3, 0);
	set_proc(&o, "/bin/a", 1, NULL);
	o.tcp_cwnd = o.tcp_srtt_us = o.tcp_min_rtt_us = o.tcp_mss = 5;
	o.tcp_retrans = o.tcp_lost = o.tcp_unrecovered_to = 9;
	add(a, &o);
	o = pobs(4, 0);
	set_proc(&o, "/bin/a", 1, NULL);
	set_tcp(&o, 31, 301, 70, 1448);
	o.tcp_lost = 1;
	o.tcp_unrecovered_to = 1;
	add(a, &o);
}

/* Means (truncated), minima and maxima over the samples of the line;
 * retransmissions, losses and RTO timeouts summed. */
static void test_tcp_stats(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);

	add_tcp_samples(a);
	EXPECT(a,
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "0", "0", "4", "0", "0", "0", "0"),
		      J_PROC("/bin/a", "1", "1", "1", "", "0"),
		      J_TCP("20", "10", "200", "301", "60", "70", "1432", "1400", "3", "2", "1")));
	pf_agg__free(a);

	opts.include_tcp = 0;
	a = new_agg(&opts);
	add_tcp_samples(a);
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "0", "0", "4", "0", "0", "0", "0"),
			 J_PROC("/bin/a", "1", "1", "1", "", "0"), J_TCP0));
	pf_agg__free(a);
}

/* max_keys reached: new keys are refused and counted, known keys still
 * take observations, and the next interval starts empty. */
static void test_bound(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a;
	struct pf_flow_obs o;

	opts.max_keys = 2;
	a = new_agg(&opts);
	o = obs(SRC, TCP, "198.18.0.2", 1000, "198.18.0.1", 1, 1);
	set_bytes(&o, 1, 0, 0, 0);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 1000, "198.18.0.1", 2, 2);
	set_bytes(&o, 2, 0, 0, 0);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 1000, "198.18.0.1", 3, 3);
	assert_int_equal(pf_agg__add(a, &o), -ENOSPC);
	o = obs(SRC, TCP, "198.18.0.2", 1000, "198.18.0.1", 4, 4);
	assert_int_equal(pf_agg__add(a, &o), -ENOSPC);
	assert_int_equal(pf_agg__dropped(a), 2);
	/* A known key (the source port folds at level 1). */
	o = obs(SRC, TCP, "198.18.0.2", 1001, "198.18.0.1", 1, 5);
	set_bytes(&o, 4, 0, 0, 0);
	add(a, &o);

	EXPECT(a,
	       J_LINE(P_SRC, J_DST("\"198.18.0.1\"", "-", "pub", "1", "net"),
		      J_MID("tcp", "src", "5", "0", "2", "0", "0", "0", "0"), J_DASH, J_TCP0),
	       J_LINE(P_SRC, J_DST("\"198.18.0.1\"", "-", "pub", "2", "net"),
		      J_MID("tcp", "src", "2", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0));

	o = obs(SRC, TCP, "198.18.0.2", 1000, "198.18.0.1", 3, 3);
	add(a, &o);
	assert_int_equal(pf_agg__dropped(a), 2);
	EXPECT(a, J_LINE(P_SRC, J_DST("\"198.18.0.1\"", "-", "pub", "3", "net"),
			 J_MID("tcp", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0));
	pf_agg__free(a);
}

/* Protocol names; ICMP has no ports (null), and ICMP "ports" do not split
 * lines. */
static void test_protocols(void **state)
{
	struct pf_agg_opts opts = default_opts(0);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, IPPROTO_ICMP, "198.18.0.2", 7, "198.18.0.1", 0, 1);
	add(a, &o);
	o = obs(SRC, IPPROTO_ICMP, "198.18.0.2", 8, "198.18.0.1", 0, 2);
	add(a, &o);
	o = obs(DST, IPPROTO_ICMPV6, "fd00::1", 0, "fd00::2", 0, 3);
	add(a, &o);
	o = obs(SRC, IPPROTO_SCTP, "198.18.0.2", 5000, "198.18.0.1", 38412, 4);
	add(a, &o);
	o = obs(SRC, 47, "198.18.0.2", 0, "198.18.0.1", 0, 5);
	add(a, &o);

	EXPECT(a,
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "null", "net"),
		      J_MID("icmp", "src", "0", "0", "2", "0", "0", "0", "0"), J_DASH, J_TCP0),
	       J_LINE(J_SRC("\"fd00::2\"", "-", "pub", "null", "net"),
		      J_DST("\"fd00::1\"", "node-a", "node-a", "null", "hep"),
		      J_MID("icmp6", "dst", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0),
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "5000", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "38412", "net"),
		      J_MID("sctp", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0),
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "0", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "0", "net"),
		      J_MID("47", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0));
	pf_agg__free(a);
}

/* Names and arguments are data: a hostile process still yields a valid
 * line, with the bytes escaped and broken UTF-8 replaced. */
static void test_hostile_process_strings(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = pobs(1, 0);
	set_proc(&o, "/tmp/ev\"il\n\\\x01\xff", 66, "a\tb \xed\xa0\x80 \xe2\x82\xac\x7f");
	add(a, &o);
	EXPECT(a,
	       J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "0", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/tmp/ev\\\"il\\n\\\\\\u0001\xef\xbf\xbd", "1", "66", "1",
			     "\"a\\tb \xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xe2\x82\xac\\u007f\"",
			     "1"),
		      J_TCP0));
	pf_agg__free(a);
}

/* Many long arguments that would make a line larger than the writer's
 * cap: the line is still written, valid, with fewer strings listed and
 * every distinct string counted. */
static void test_huge_args_line(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	const size_t arg_len = 32 * 1024, nargs = 64;
	struct capture c = {0};
	struct pf_flow_obs o;
	struct pf_agg *a;
	char *arg, want[64];
	size_t i;

	opts.args_limit = (unsigned)nargs;
	a = new_agg(&opts);
	arg = malloc(arg_len + 1);
	assert_non_null(arg);
	for (i = 0; i < nargs; i++) {
		/* Control bytes escape to six bytes each. */
		memset(arg, 0x01, arg_len);
		arg[arg_len] = '\0';
		arg[0] = (char)('A' + i % 26);
		arg[1] = (char)('A' + i / 26);
		o = pobs(i + 1, 0);
		set_proc(&o, "/bin/big", (uint32_t)i + 1, arg);
		add(a, &o);
	}
	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	assert_true(c.len[0] <= (1u << 20));
	snprintf(want, sizeof(want), "\"num_process_args\":%zu,", nargs);
	assert_non_null(strstr(c.line[0], want));
	assert_non_null(strstr(c.line[0], "\"process_args\":[\"AA"));
	assert_int_equal(pf_agg__dropped(a), 0);
	capture_free(&c);
	free(arg);
	pf_agg__free(a);
}

/*
 * Elasticsearch refuses a document with a keyword term over 32,766 bytes,
 * and Calico indexes process_name and each process_args string as keyword.
 * 16 KiB of 0xff (an --args-max 16384 of binary arguments) becomes 49,152
 * bytes of U+FFFD: cut on a character boundary, with the cut marked.
 */
static void test_keyword_cap(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	const size_t n = 16 * 1024, keep = (32766 - 14) / 3; /* 14: "...[truncated]" */
	char *bin = malloc(n + 1), *cut = malloc(keep * 3 + 15), *expect;
	size_t elen = 2 * (keep * 3 + 14) + 4096;
	struct capture c = {0};
	struct pf_flow_obs o;

	assert_non_null(bin);
	assert_non_null(cut);
	memset(bin, 0xff, n);
	bin[n] = '\0';
	for (size_t i = 0; i < keep; i++)
		memcpy(cut + 3 * i, "\xef\xbf\xbd", 3);
	memcpy(cut + 3 * keep, "...[truncated]", 15);
	assert_int_equal(strlen(cut), 32765);
	expect = malloc(elen);
	assert_non_null(expect);
	snprintf(expect, elen,
		 J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "0", "0", "1", "0", "0", "0", "0"),
			J_PROC("%s", "1", "66", "1", "\"%s\"", "1"), J_TCP0),
		 cut, cut);

	o = pobs(1, 0);
	set_proc(&o, bin, 66, bin);
	add(a, &o);
	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	assert_string_equal(c.line[0], expect);
	capture_free(&c);
	free(expect);
	free(cut);
	free(bin);
	pf_agg__free(a);
}

/* A string just at the limit is kept whole; one byte more is cut. */
static void test_keyword_cap_edge(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	char *arg = malloc(32768);
	struct capture c = {0};
	struct pf_flow_obs o;

	assert_non_null(arg);
	memset(arg, 'x', 32766);
	arg[32766] = '\0';
	o = pobs(1, 0);
	set_proc(&o, "/bin/x", 66, arg);
	add(a, &o);
	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	assert_non_null(strstr(c.line[0], "xxx\"],\"num_process_args\":1,"));
	assert_null(strstr(c.line[0], "[truncated]"));
	capture_free(&c);

	memset(arg, 'x', 32767);
	arg[32767] = '\0';
	o = pobs(1, 0);
	set_proc(&o, "/bin/x", 66, arg);
	add(a, &o);
	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	/* 32752 'x' and the mark: 32766 bytes. */
	assert_non_null(strstr(c.line[0], "xxx...[truncated]\"],\"num_process_args\":1,"));
	assert_int_equal(strstr(c.line[0], "...[truncated]") -
			     strstr(c.line[0], "\"process_args\":[\"") -
			     (long)strlen("\"process_args\":[\""),
			 32752);
	capture_free(&c);
	free(arg);
	pf_agg__free(a);
}

/* Protocols 4 and 50 by Calico's names (its protoNames), others by number. */
static void test_protocol_names_calico(void **state)
{
	struct pf_agg_opts opts = default_opts(0);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, 4, "198.18.0.2", 0, "198.18.0.1", 0, 1);
	add(a, &o);
	o = obs(SRC, 50, "198.18.0.2", 0, "198.18.0.1", 0, 2);
	add(a, &o);
	o = obs(SRC, 41, "198.18.0.2", 0, "198.18.0.1", 0, 3);
	add(a, &o);
	EXPECT(a,
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "0", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "0", "net"),
		      J_MID("ipip", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0),
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "0", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "0", "net"),
		      J_MID("esp", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0),
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "0", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "0", "net"),
		      J_MID("41", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0));
	pf_agg__free(a);
}

/* The calico-3.20 key set: the same line without the four transit_* keys. */
static void test_schema_calico_3_20(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a;
	struct pf_flow_obs o;

	opts.schema = PF_REC_SCHEMA_CALICO_3_20;
	a = new_agg(&opts);
	assert_int_equal(pf_agg__schema(a), PF_REC_SCHEMA_CALICO_3_20);
	o = pobs(1, 10);
	set_proc(&o, "/usr/bin/curl", 66, "-s x");
	add(a, &o);
	EXPECT(a, "{\"start_time\":1764252000,\"end_time\":1764252015," P_SRC P_DST
		  "\"proto\":\"tcp\",\"action\":\"allow\",\"reporter\":\"src\",\"policies\":null,"
		  "\"bytes_in\":10,\"bytes_out\":0,\"num_flows\":1,\"num_flows_started\":0,"
		  "\"num_flows_completed\":0,\"packets_in\":0,\"packets_out\":0,"
		  "\"http_requests_allowed_in\":0,\"http_requests_denied_in\":0," J_PROC(
		      "/usr/bin/curl", "1", "66", "1", "\"-s x\"", "1") J_TCP0
	       "\"host\":\"node-a\"}\n");
	/* Back to the current set between intervals. */
	opts.schema = PF_REC_SCHEMA_CURRENT;
	assert_int_equal(pf_agg__reconfigure(a, &opts), 0);
	add(a, &o);
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "10", "0", "1", "0", "0", "0", "0"),
			 J_PROC("/usr/bin/curl", "1", "66", "1", "\"-s x\"", "1"), J_TCP0));
	opts.schema = PF_REC_NSCHEMAS;
	assert_int_equal(pf_agg__reconfigure(a, &opts), -EINVAL);
	pf_agg__free(a);
}

/* ---- helpers and errors ---------------------------------------------------------------------- */

static void test_addr_helpers(void **state)
{
	static const struct {
		const char *addr, *aggr;
	} cases[] = {
	    {"10.0.0.1", "pvt"},
	    {"10.255.255.255", "pvt"},
	    {"11.0.0.1", "pub"},
	    {"172.16.0.1", "pvt"},
	    {"172.31.255.255", "pvt"},
	    {"172.15.255.255", "pub"},
	    {"172.32.0.0", "pub"},
	    {"192.168.0.1", "pvt"},
	    {"192.169.0.1", "pub"},
	    /* Calico's pvt is RFC 1918 only: loopback, link-local, the
	     * shared (CGNAT) space and all of IPv6 are pub. */
	    {"127.0.0.1", "pub"},
	    {"127.255.0.1", "pub"},
	    {"169.254.1.1", "pub"},
	    {"169.253.1.1", "pub"},
	    {"100.64.0.1", "pub"},
	    {"100.127.255.255", "pub"},
	    {"100.63.255.255", "pub"},
	    {"100.128.0.0", "pub"},
	    {"8.8.8.8", "pub"},
	    /* Benchmarking range: "pub", as in the spec's example line. */
	    {"198.18.0.1", "pub"},
	    {"198.19.255.255", "pub"},
	    {"fc00::1", "pub"},
	    {"fd00::1", "pub"},
	    {"fe80::1", "pub"},
	    {"febf::1", "pub"},
	    {"fec0::1", "pub"},
	    {"::1", "pub"},
	    {"::2", "pub"},
	    {"2001:db8::1", "pub"},
	    {"2606:4700::1111", "pub"},
	};
	uint8_t addr[16];
	char buf[64];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_addr(cases[i].addr, addr);
		if (strcmp(pf_addr_aggr_name(addr), cases[i].aggr)) {
			print_error("%s: got %s\n", cases[i].addr, pf_addr_aggr_name(addr));
			fail();
		}
		/* The text form is the same as what we parsed (all canonical). */
		assert_ptr_equal(pf_addr_str(addr, buf, sizeof(buf)), buf);
		assert_string_equal(buf, cases[i].addr);
	}
	/* IPv4-mapped is written dotted; a short buffer gives "". */
	parse_addr("::ffff:192.168.1.1", addr);
	assert_string_equal(pf_addr_str(addr, buf, sizeof(buf)), "192.168.1.1");
	assert_string_equal(pf_addr_aggr_name(addr), "pvt");
	assert_string_equal(pf_addr_str(addr, buf, 4), "");
}

/* The IPv4 text is inet_ntop()'s for every octet value in every place. */
static void test_addr_str_v4_all_octets(void **state)
{
	char got[64], want[INET_ADDRSTRLEN];
	uint8_t addr[16];

	for (int pos = 0; pos < 4; pos++) {
		for (int v = 0; v < 256; v++) {
			parse_addr("1.22.133.4", addr);
			addr[12 + pos] = (uint8_t)v;
			assert_non_null(inet_ntop(AF_INET, addr + 12, want, sizeof(want)));
			assert_string_equal(pf_addr_str(addr, got, sizeof(got)), want);
		}
	}
	/* Smallest buffer that holds every address. */
	parse_addr("255.255.255.255", addr);
	assert_string_equal(pf_addr_str(addr, got, INET_ADDRSTRLEN), "255.255.255.255");
}

static void test_new_invalid(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_flow_obs o;
	struct pf_agg *a;

	errno = 0;
	assert_null(pf_agg__new(NULL));
	assert_int_equal(errno, EINVAL);
	opts.level = 4;
	errno = 0;
	assert_null(pf_agg__new(&opts));
	assert_int_equal(errno, EINVAL);
	opts.level = -1;
	assert_null(pf_agg__new(&opts));
	opts.level = 1;
	opts.host = NULL;
	assert_null(pf_agg__new(&opts));
	pf_agg__free(NULL);

	opts = default_opts(1);
	a = new_agg(&opts);
	o = pobs(1, 0);
	o.reporter = 0;
	assert_int_equal(pf_agg__add(a, &o), -EINVAL);
	o.reporter = 3;
	assert_int_equal(pf_agg__add(a, &o), -EINVAL);
	assert_int_equal(pf_agg__flush(a, T0, T1, NULL, NULL), -EINVAL);
	pf_agg__free(a);
}

/* The callback's error stops the flush and is returned; the interval is
 * cleared anyway, and the aggregator works on. */
static void test_flush_error(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct capture c = {.fail_with = -EIO};
	struct pf_flow_obs o;

	o = pobs(1, 1);
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 1, "198.18.0.1", 9, 2);
	add(a, &o);
	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), -EIO);
	c.fail_with = 0;
	assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
	assert_int_equal(c.n, 0);
	o = pobs(1, 1);
	add(a, &o);
	EXPECT(a, J_LINE(P_SRC, P_DST, J_MID("tcp", "src", "1", "0", "1", "0", "0", "0", "0"),
			 J_DASH, J_TCP0));
	pf_agg__free(a);
}

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * A larger random stream through the hash tables (several rehashes in
 * each): every line valid, one line per (key, name), counters conserved.
 * Run twice to check that a flushed aggregator is as good as new.
 */
#define RND_KEYS  300
#define RND_NAMES 2
static uint64_t sum_field(const struct capture *c, const char *field)
{
	uint64_t sum = 0;
	const char *p;
	size_t i;

	for (i = 0; i < c->n; i++) {
		p = strstr(c->line[i], field);
		assert_non_null(p);
		sum += strtoull(p + strlen(field), NULL, 10);
	}
	return sum;
}

/* A long-lived flow across three intervals: started in the first only,
 * present while idle in the second (no bytes, still one flow), completed in
 * the third only. A short flow on the same key in the second interval
 * starts and completes there. (The collector, agent/collect.c, reports
 * every flow still in the kernel map each interval, idle or not; started is
 * its first report, completed its last.) */
static void test_three_intervals(void **state)
{
	struct pf_agg_opts opts = default_opts(1);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	/* interval 1 */
	o = obs(SRC, TCP, "198.18.0.2", 41000, "198.18.0.1", 8080, 7);
	o.started = 1;
	set_bytes(&o, 1000, 200, 5, 4);
	set_proc(&o, "/usr/bin/curl", 900, "-s http://198.18.0.1:8080/big");
	add(a, &o);
	EXPECT(a, J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep"),
			 J_DST("\"198.18.0.1\"", "-", "pub", "8080", "net"),
			 J_MID("tcp", "src", "1000", "200", "1", "1", "0", "5", "4"),
			 J_PROC("/usr/bin/curl", "1", "900", "1",
				"\"-s http://198.18.0.1:8080/big\"", "1"),
			 J_TCP0));
	/* interval 2: the long flow idle, a short one started and done */
	o = obs(SRC, TCP, "198.18.0.2", 41000, "198.18.0.1", 8080, 7);
	set_proc(&o, "/usr/bin/curl", 900, "-s http://198.18.0.1:8080/big");
	add(a, &o);
	o = obs(SRC, TCP, "198.18.0.2", 41001, "198.18.0.1", 8080, 8);
	o.started = 1;
	o.completed = 1;
	set_bytes(&o, 60, 60, 1, 1);
	set_proc(&o, "/usr/bin/curl", 901, "-s http://198.18.0.1:8080/");
	add(a, &o);
	EXPECT(a, J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep"),
			 J_DST("\"198.18.0.1\"", "-", "pub", "8080", "net"),
			 J_MID("tcp", "src", "60", "60", "2", "1", "1", "1", "1"),
			 J_PROC("/usr/bin/curl", "1", "*", "2",
				"\"-s http://198.18.0.1:8080/big\",\"-s http://198.18.0.1:8080/\"",
				"2"),
			 J_TCP0));
	/* interval 3: the long flow completes */
	o = obs(SRC, TCP, "198.18.0.2", 41000, "198.18.0.1", 8080, 7);
	o.completed = 1;
	set_bytes(&o, 10, 20, 1, 2);
	set_proc(&o, "/usr/bin/curl", 900, "-s http://198.18.0.1:8080/big");
	add(a, &o);
	EXPECT(a, J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "null", "hep"),
			 J_DST("\"198.18.0.1\"", "-", "pub", "8080", "net"),
			 J_MID("tcp", "src", "10", "20", "1", "0", "1", "1", "2"),
			 J_PROC("/usr/bin/curl", "1", "900", "1",
				"\"-s http://198.18.0.1:8080/big\"", "1"),
			 J_TCP0));
	pf_agg__free(a);
}

/* Levels are per action: allowed at 0, denied at 3, on the same 5-tuple;
 * action is never folded together. */
static void test_levels_per_action(void **state)
{
	struct pf_agg_opts opts = default_opts(0);
	struct pf_agg *a;
	struct pf_flow_obs o;

	opts.level_denied = 3;
	a = new_agg(&opts);
	o = obs(SRC, TCP, "198.18.0.2", 41000, "198.18.0.1", 8080, 1);
	set_proc(&o, "/usr/bin/curl", 900, NULL);
	add(a, &o);
	o.action = PF_ACTION_DENY;
	o.flow_id = 2;
	add(a, &o);
	o.lport = 41001;
	o.rport = 9090;
	o.flow_id = 3;
	add(a, &o);
	EXPECT(a,
	       J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "41000", "hep"),
		      J_DST("\"198.18.0.1\"", "-", "pub", "8080", "net"),
		      J_MID("tcp", "src", "0", "0", "1", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/curl", "1", "900", "1", "", "0"), J_TCP0),
	       J_LINE(J_SRC("null", "-", "node-a", "null", "hep"),
		      J_DST("null", "-", "pub", "null", "net"),
		      J_MID_A("deny", "tcp", "src", "0", "0", "2", "0", "0", "0", "0"),
		      J_PROC("/usr/bin/curl", "1", "900", "1", "", "0"), J_TCP0));
	pf_agg__free(a);
}

/* A reload changes level, limits and process info between intervals; an
 * interval half aggregated is never re-folded. */
static void test_reconfigure(void **state)
{
	struct pf_agg_opts opts = default_opts(0);
	struct pf_agg *a = new_agg(&opts);
	struct pf_flow_obs o;

	o = obs(SRC, UDP, "198.18.0.2", 40000, "198.18.0.1", 53, 1);
	set_proc(&o, "/usr/bin/dig", 300, "example.com");
	add(a, &o);
	opts.level = 3;
	opts.include_process = 0;
	assert_int_equal(pf_agg__reconfigure(a, &opts), -EBUSY);
	EXPECT(a, J_LINE(J_SRC("\"198.18.0.2\"", "node-a", "node-a", "40000", "hep"),
			 J_DST("\"198.18.0.1\"", "-", "pub", "53", "net"),
			 J_MID("udp", "src", "0", "0", "1", "0", "0", "0", "0"),
			 J_PROC("/usr/bin/dig", "1", "300", "1", "\"example.com\"", "1"), J_TCP0));
	assert_int_equal(pf_agg__reconfigure(a, &opts), 0);
	add(a, &o);
	EXPECT(a, J_LINE(J_SRC("null", "-", "node-a", "null", "hep"),
			 J_DST("null", "-", "pub", "null", "net"),
			 J_MID("udp", "src", "0", "0", "1", "0", "0", "0", "0"), J_DASH, J_TCP0));
	opts.level = 4;
	assert_int_equal(pf_agg__reconfigure(a, &opts), -EINVAL);
	pf_agg__free(a);
}

static void test_random_stream(void **state)
{
	static const char *names[RND_NAMES] = {"/usr/bin/a", "/usr/bin/b"};
	struct pf_agg_opts opts = default_opts(1);
	struct capture c = {0};
	uint64_t seed = 12345, r, bytes = 0, pkts = 0;
	struct pf_flow_obs o;
	struct pf_agg *a;
	char raddr[32], args[32];
	int round, i, seen[RND_KEYS][RND_NAMES], lines;

	a = new_agg(&opts);
	for (round = 0; round < 2; round++) {
		memset(seen, 0, sizeof(seen));
		bytes = pkts = 0;
		lines = 0;
		for (i = 0; i < 200000; i++) {
			unsigned k, n;

			r = rng_next(&seed);
			k = (unsigned)(r % RND_KEYS);
			n = (unsigned)((r >> 20) % RND_NAMES);
			snprintf(raddr, sizeof(raddr), "10.%u.%u.1", k / 250, k % 250);
			snprintf(args, sizeof(args), "--n=%u", (unsigned)((r >> 32) % 7));
			o = obs(SRC, TCP, "198.18.0.2", (uint16_t)(r >> 40), raddr, 443,
				(r >> 24) % 5000);
			set_proc(&o, names[n], (uint32_t)((r >> 44) % 50) + 1, args);
			set_bytes(&o, (r >> 8) & 0xff, 0, (r >> 16) & 0xf, 0);
			o.started = (r >> 60) & 1;
			add(a, &o);
			bytes += o.bytes_in;
			pkts += o.packets_in;
			if (!seen[k][n]++)
				lines++;
		}
		assert_int_equal(pf_agg__flush(a, T0, T1, capture_fn, &c), 0);
		assert_int_equal(c.n, lines);
		assert_int_equal(sum_field(&c, "\"bytes_in\":"), bytes);
		assert_int_equal(sum_field(&c, "\"packets_in\":"), pkts);
		capture_free(&c);
	}
	assert_int_equal(pf_agg__dropped(a), 0);
	pf_agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_spec_example),
	    cmocka_unit_test(test_level1_dst_ipv6),
	    cmocka_unit_test(test_level1_src),
	    cmocka_unit_test(test_level0),
	    cmocka_unit_test(test_level2),
	    cmocka_unit_test(test_level3),
	    cmocka_unit_test(test_proc_limit_star),
	    cmocka_unit_test(test_proc_limit_zero),
	    cmocka_unit_test(test_args_limit),
	    cmocka_unit_test(test_single_pid_longest_args),
	    cmocka_unit_test(test_dash_and_unknown),
	    cmocka_unit_test(test_include_process_off),
	    cmocka_unit_test(test_distinct_flows),
	    cmocka_unit_test(test_tcp_stats),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_protocols),
	    cmocka_unit_test(test_hostile_process_strings),
	    cmocka_unit_test(test_huge_args_line),
	    cmocka_unit_test(test_keyword_cap),
	    cmocka_unit_test(test_keyword_cap_edge),
	    cmocka_unit_test(test_protocol_names_calico),
	    cmocka_unit_test(test_schema_calico_3_20),
	    cmocka_unit_test(test_addr_helpers),
	    cmocka_unit_test(test_addr_str_v4_all_octets),
	    cmocka_unit_test(test_new_invalid),
	    cmocka_unit_test(test_flush_error),
	    cmocka_unit_test(test_random_stream),
	    cmocka_unit_test(test_three_intervals),
	    cmocka_unit_test(test_levels_per_action),
	    cmocka_unit_test(test_reconfigure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
