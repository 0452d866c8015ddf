// SPDX-License-Identifier: BSD-2-Clause
/*
 * Workload endpoints in flow lines (lib/flow_agg.c): a container on either
 * side is written as Calico writes a workload ("wep", its pod's name,
 * aggregated name, namespace and, when asked for, labels); aggregation
 * levels 2 and 3 fold a ReplicaSet's pods by their aggregated name; host
 * processes stay "hep". Lines are read back with a JSON field scanner and
 * checked field by field.
 */
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

#define MAX_LINES 16

struct capture {
	char *line[MAX_LINES];
	size_t n;
};

static int capture_fn(const char *line, size_t len, void *ctx)
{
	struct capture *c = ctx;

	assert_int_equal(json_check_line(line, len), 0);
	assert_true(c->n < MAX_LINES);
	c->line[c->n] = strndup(line, len);
	assert_non_null(c->line[c->n]);
	c->n++;
	return 0;
}

static void capture_free(struct capture *c)
{
	for (size_t i = 0; i < c->n; i++)
		free(c->line[i]);
	c->n = 0;
}

/* "key":value as the line spells it (the lines come from our own writer,
 * so a substring search on the unique key is exact enough). */
static void expect_field(const char *line, const char *key, const char *value)
{
	char want[1024];

	snprintf(want, sizeof(want), "\"%s\":%s,", key, value);
	if (!strstr(line, want)) {
		print_error("missing %s in %s\n", want, line);
		fail();
	}
}

static const char *const web_labels[] = {"app=web", "pod-template-hash=7d9b8c5f4"};
static const struct pf_flow_ep web1 = {"web-7d9b8c5f4-x2x8q", "web-7d9b8c5f4-*", "prod", web_labels,
				       2};
static const struct pf_flow_ep web2 = {"web-7d9b8c5f4-k9zzq", "web-7d9b8c5f4-*", "prod", web_labels,
				       2};
static const struct pf_flow_ep db = {"db-0", "db-0", "data", NULL, 0};

static struct pf_agg *agg_new(int level, int labels)
{
	struct pf_agg_opts o = {.level = level,
				.level_denied = level,
				.host = "node1",
				.proc_limit = 2,
				.args_limit = 5,
				.include_process = 1,
				.include_labels = labels};
	struct pf_agg *a = pf_agg__new(&o);

	assert_non_null(a);
	return a;
}

static void obs_init(struct pf_flow_obs *o, uint64_t id, uint8_t last, uint16_t lport,
		     const struct pf_flow_ep *l, const struct pf_flow_ep *r)
{
	memset(o, 0, sizeof(*o));
	o->netns = 1;
	o->flow_id = id;
	o->laddr[10] = o->laddr[11] = 0xff;
	o->laddr[12] = 198;
	o->laddr[13] = 18;
	o->laddr[15] = last;
	memcpy(o->raddr, o->laddr, 16);
	o->raddr[15] = 200;
	o->lport = lport;
	o->rport = 5432;
	o->proto = IPPROTO_TCP;
	o->reporter = PF_REPORTER_SRC;
	o->bytes_out = 100;
	o->proc_name = "/bin/app";
	o->proc_pid = 10 + (uint32_t)id;
	o->local_ep = l;
	o->remote_ep = r;
}

/* Level 0, a pod talking to another pod of this node: both ends named. */
static void test_both_ends_named(void **state)
{
	struct pf_agg *a = agg_new(0, 1);
	struct capture c = {0};
	struct pf_flow_obs o;

	(void)state;
	obs_init(&o, 1, 1, 40000, &web1, &db);
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__flush(a, 1, 2, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	expect_field(c.line[0], "source_name", "\"web-7d9b8c5f4-x2x8q\"");
	expect_field(c.line[0], "source_name_aggr", "\"web-7d9b8c5f4-*\"");
	expect_field(c.line[0], "source_namespace", "\"prod\"");
	expect_field(c.line[0], "source_type", "\"wep\"");
	expect_field(c.line[0], "source_labels",
		     "{\"labels\":[\"app=web\",\"pod-template-hash=7d9b8c5f4\"]}");
	expect_field(c.line[0], "dest_name", "\"db-0\"");
	expect_field(c.line[0], "dest_namespace", "\"data\"");
	expect_field(c.line[0], "dest_type", "\"wep\"");
	expect_field(c.line[0], "dest_labels", "null"); /* no labels: null, not [] */
	capture_free(&c);
	pf_agg__free(a);
}

/* Labels only with flowLogsFileIncludeLabels, as in Calico. */
static void test_labels_off_by_option(void **state)
{
	struct pf_agg *a = agg_new(0, 0);
	struct capture c = {0};
	struct pf_flow_obs o;

	(void)state;
	obs_init(&o, 1, 1, 40000, &web1, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__flush(a, 1, 2, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	expect_field(c.line[0], "source_type", "\"wep\"");
	expect_field(c.line[0], "source_labels", "null");
	expect_field(c.line[0], "dest_type", "\"net\"");
	capture_free(&c);
	pf_agg__free(a);
}

/* Level 2: two pods of one ReplicaSet fold into one line named by the
 * aggregate; a host process on the same flow key stays a line of its own. */
static void test_level2_folds_replicaset(void **state)
{
	struct pf_agg *a = agg_new(2, 1);
	struct capture c = {0};
	struct pf_flow_obs o;

	(void)state;
	obs_init(&o, 1, 1, 40000, &web1, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	obs_init(&o, 2, 2, 40001, &web2, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	obs_init(&o, 3, 3, 40002, NULL, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__flush(a, 1, 2, capture_fn, &c), 0);
	assert_int_equal(c.n, 2);
	expect_field(c.line[0], "source_name", "\"-\"");
	expect_field(c.line[0], "source_name_aggr", "\"web-7d9b8c5f4-*\"");
	expect_field(c.line[0], "source_namespace", "\"prod\"");
	expect_field(c.line[0], "source_type", "\"wep\"");
	expect_field(c.line[0], "num_flows", "2");
	expect_field(c.line[0], "num_process_ids", "2");
	expect_field(c.line[1], "source_type", "\"hep\"");
	expect_field(c.line[1], "source_name_aggr", "\"node1\"");
	expect_field(c.line[1], "source_namespace", "\"-\"");
	expect_field(c.line[1], "num_flows", "1");
	capture_free(&c);
	pf_agg__free(a);
}

/* Level 1 keeps pods apart (their addresses differ) but names each. */
static void test_level1_keeps_pods_apart(void **state)
{
	struct pf_agg *a = agg_new(1, 0);
	struct capture c = {0};
	struct pf_flow_obs o;

	(void)state;
	obs_init(&o, 1, 1, 40000, &web1, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	obs_init(&o, 2, 1, 40001, &web2, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__flush(a, 1, 2, capture_fn, &c), 0);
	/* Same address and folded source port: only the pod tells them apart. */
	assert_int_equal(c.n, 2);
	expect_field(c.line[0], "source_name", "\"web-7d9b8c5f4-x2x8q\"");
	expect_field(c.line[1], "source_name", "\"web-7d9b8c5f4-k9zzq\"");
	capture_free(&c);
	pf_agg__free(a);
}

/* The dst reporter: the local pod is the destination. */
static void test_dst_reporter(void **state)
{
	struct pf_agg *a = agg_new(0, 0);
	struct capture c = {0};
	struct pf_flow_obs o;

	(void)state;
	obs_init(&o, 1, 1, 8080, &db, &web1);
	o.reporter = PF_REPORTER_DST;
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__flush(a, 1, 2, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	expect_field(c.line[0], "source_name", "\"web-7d9b8c5f4-x2x8q\"");
	expect_field(c.line[0], "dest_name", "\"db-0\"");
	expect_field(c.line[0], "dest_type", "\"wep\"");
	expect_field(c.line[0], "source_type", "\"wep\"");
	capture_free(&c);
	pf_agg__free(a);
}

/* An endpoint longer than the packing's stack buffer (long labels). */
static void test_long_labels(void **state)
{
	struct pf_agg *a = agg_new(0, 1);
	struct capture c = {0};
	struct pf_flow_obs o;
	char label[700], want[800];
	const char *labels[1] = {label};
	struct pf_flow_ep ep = {"big", "big", "prod", labels, 1};

	(void)state;
	memset(label, 'v', sizeof(label) - 1);
	label[sizeof(label) - 1] = '\0';
	memcpy(label, "k=", 2);
	obs_init(&o, 1, 1, 40000, &ep, NULL);
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__add(a, &o), 0); /* the same endpoint: the same line */
	assert_int_equal(pf_agg__flush(a, 1, 2, capture_fn, &c), 0);
	assert_int_equal(c.n, 1);
	snprintf(want, sizeof(want), "{\"labels\":[\"%s\"]}", label);
	expect_field(c.line[0], "source_labels", want);
	capture_free(&c);
	pf_agg__free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_both_ends_named),
	    cmocka_unit_test(test_labels_off_by_option),
	    cmocka_unit_test(test_level2_folds_replicaset),
	    cmocka_unit_test(test_level1_keeps_pods_apart),
	    cmocka_unit_test(test_dst_reporter),
	    cmocka_unit_test(test_long_labels),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
