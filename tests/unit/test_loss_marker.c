// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for lib/loss_marker.c: the marker is a flow record a shipper
 * takes (strict JSON, the same keys in the same order as a flow line from
 * the aggregator), adds nothing to any counter, and carries the count.
 */
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
#include "jsonw.h"
#include "loss_marker.h"

/* The top-level keys of a one-line object, NUL-separated, into @out. The
 * lines hold no nested objects with keys but "labels"/"policies", which
 * are null here, so a key is a string that follows '{' or ',' outside
 * strings and arrays. */
static size_t keys_of(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;
	int depth = 0, in_str = 0, want_key = 0;

	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
			continue;
		}
		if (c == '"') {
			if (want_key && depth == 1) {
				const char *e = memchr(s + i + 1, '"', n - i - 1);
				size_t l = (size_t)(e - (s + i + 1));

				assert_true(o + l + 1 < cap);
				memcpy(out + o, s + i + 1, l);
				o += l;
				out[o++] = '\0';
				i += l + 1;
				want_key = 0;
				continue;
			}
			in_str = 1;
		} else if (c == '{' || c == '[') {
			depth++;
			want_key = c == '{';
		} else if (c == '}' || c == ']') {
			depth--;
		} else if (c == ',' && depth == 1) {
			want_key = 1;
		}
	}
	return o;
}

static int has(const struct pf_jw *w, const char *s)
{
	return memmem(w->buf, w->len, s, strlen(s)) != NULL;
}

static char flow_line[8192];
static size_t flow_len;

static int grab(const char *line, size_t len, void *ctx)
{
	if (!flow_len && len < sizeof(flow_line)) {
		memcpy(flow_line, line, len);
		flow_len = len;
	}
	return 0;
}

static void test_marker(void **state)
{
	struct pf_agg_opts ao = {.level = 1,
				 .host = "node-a",
				 .proc_limit = 2,
				 .args_limit = 5,
				 .include_process = 1,
				 .include_tcp = 1};
	struct pf_flow_obs o = {0};
	char k1[4096], k2[4096];
	size_t n1, n2;
	struct pf_agg *a;
	struct pf_jw w;

	/* A flow line from the aggregator, for its keys. */
	a = pf_agg__new(&ao);
	assert_non_null(a);
	o.flow_id = 1;
	o.laddr[10] = o.laddr[11] = 0xff;
	o.raddr[10] = o.raddr[11] = 0xff;
	o.laddr[12] = 198, o.laddr[13] = 18, o.laddr[15] = 2;
	o.raddr[12] = 198, o.raddr[13] = 18, o.raddr[15] = 1;
	o.lport = 40000;
	o.rport = 80;
	o.proto = 6;
	o.reporter = PF_REPORTER_SRC;
	o.started = 1;
	o.bytes_out = 100;
	o.packets_out = 1;
	o.proc_name = "/bin/x";
	o.proc_pid = 7;
	o.proc_args = "a";
	assert_int_equal(pf_agg__add(a, &o), 0);
	assert_int_equal(pf_agg__flush(a, 10, 12, grab, NULL), 0);
	pf_agg__free(a);
	assert_true(flow_len > 0);

	assert_int_equal(pf_jw__init(&w, 4096), 0);
	assert_int_equal(pf_loss_marker__line(&w, 10, 12, "node-a", 1071, PF_REC_SCHEMA_CURRENT), 0);
	assert_int_equal(json_check_line(w.buf, w.len), 0);
	assert_int_equal(w.buf[w.len - 1], '\n');

	n1 = keys_of(flow_line, flow_len, k1, sizeof(k1));
	n2 = keys_of(w.buf, w.len, k2, sizeof(k2));
	assert_int_equal(n1, n2);
	assert_memory_equal(k1, k2, n1);

	assert_true(has(&w, "\"process_name\":\"[procflow:events-lost]\""));
	assert_true(has(&w, "\"process_args\":[\"lost_events=1071\"],"
			    "\"num_process_args\":1071"));
	assert_true(has(&w, "\"bytes_in\":0,\"bytes_out\":0,\"num_flows\":0,"));
	assert_true(has(&w, "\"start_time\":10,\"end_time\":12,"));
	assert_true(has(&w, "\"host\":\"node-a\"}"));

	/* A hostile host name still gives valid JSON. */
	assert_int_equal(pf_loss_marker__line(&w, 1, 2, "a\"b\\\x01\xff", 1, PF_REC_SCHEMA_CURRENT), 0);
	assert_int_equal(json_check_line(w.buf, w.len), 0);
	pf_jw__fini(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_marker),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
