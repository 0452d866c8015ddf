// SPDX-License-Identifier: BSD-2-Clause
/*
 * The record's key sets and its writer. The expected key lists are not
 * taken from lib/record.h: they are the contract's list
 * (../shared/spec/flow-log-format.md, section 1) copied here as the spec
 * prints it, and the keys of a written line are read back by a small
 * parser of this file's own.
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

#include "chrow.h"
#include "flowline.h"
#include "json_check.h"
#include "jsonw.h"
#include "loss_marker.h"
#include "record.h"

/* Section 1 of the contract, as printed there. */
static const char spec_keys[] =
    "start_time, end_time, source_ip, source_name, source_name_aggr, source_namespace,\n"
    "nat_outgoing_ports, source_port, source_type, source_labels, dest_ip, dest_name,\n"
    "dest_name_aggr, dest_namespace, dest_port, dest_type, dest_labels,\n"
    "dest_service_namespace, dest_service_name, dest_service_port, dest_service_port_num,\n"
    "dest_domains, proto, action, reporter, policies, bytes_in, bytes_out, num_flows,\n"
    "num_flows_started, num_flows_completed, packets_in, packets_out, transit_bytes_in,\n"
    "transit_bytes_out, transit_packets_in, transit_packets_out, http_requests_allowed_in,\n"
    "http_requests_denied_in, process_name, num_process_names, process_id,\n"
    "num_process_ids, process_args, num_process_args, original_source_ips,\n"
    "num_original_source_ips, tcp_mean_send_congestion_window,\n"
    "tcp_min_send_congestion_window, tcp_mean_smooth_rtt, tcp_max_smooth_rtt,\n"
    "tcp_mean_min_rtt, tcp_max_min_rtt, tcp_mean_mss, tcp_min_mss,\n"
    "tcp_total_retransmissions, tcp_lost_packets, tcp_unrecovered_to, host\n";

#define MAX_KEYS 80

struct keys {
	char k[MAX_KEYS][64];
	size_t n;
};

/* The spec's list; @no_transit: without the keys Calico added in 3.21. */
static void spec_list(struct keys *out, int no_transit)
{
	const char *p = spec_keys;

	out->n = 0;
	while (*p) {
		size_t n = strcspn(p, ", \n");

		if (n && !(no_transit && !strncmp(p, "transit_", 8))) {
			assert_true(out->n < MAX_KEYS && n < 64);
			memcpy(out->k[out->n], p, n);
			out->k[out->n][n] = '\0';
			out->n++;
		}
		p += n;
		p += strspn(p, ", \n");
	}
}

/* The top-level keys of the JSON object @line, in order. */
static void line_keys(const char *line, struct keys *out)
{
	int depth = 0, in_str = 0;
	const char *start = NULL;

	out->n = 0;
	for (const char *p = line; *p; p++) {
		if (in_str) {
			if (*p == '\\') {
				p++;
			} else if (*p == '"') {
				in_str = 0;
				if (depth == 1 && start && p[1] == ':') {
					assert_true(out->n < MAX_KEYS && p - start < 64);
					memcpy(out->k[out->n], start, (size_t)(p - start));
					out->k[out->n][p - start] = '\0';
					out->n++;
				}
				start = NULL;
			}
			continue;
		}
		if (*p == '"') {
			in_str = 1;
			start = p + 1;
		} else if (*p == '{' || *p == '[') {
			depth++;
		} else if (*p == '}' || *p == ']') {
			depth--;
		}
	}
}

static void assert_keys_equal(const struct keys *got, const struct keys *want)
{
	for (size_t i = 0; i < got->n && i < want->n; i++) {
		if (strcmp(got->k[i], want->k[i])) {
			print_error("key %zu: got %s, want %s\n", i, got->k[i], want->k[i]);
			fail();
		}
	}
	assert_int_equal(got->n, want->n);
}

/* A NUL after the text for strstr() and the key reader (not part of it). */
static void nul_terminate(struct pf_jw *w)
{
	pf_jw__raw(w, "", 1);
	assert_int_equal(pf_jw__error(w), 0);
	w->len--;
}

static void write_line(struct pf_jw *w, const struct pf_record *r, enum pf_rec_schema s)
{
	pf_jw__reset(w);
	assert_int_equal(pf_rec__write(w, r, s), 0);
	assert_int_equal(json_check_line(w->buf, w->len), 0);
	nul_terminate(w);
}

static void test_key_sets(void **state)
{
	struct keys want, got;
	struct pf_record r;
	struct pf_jw w;

	pf_jw__init(&w, 1 << 16);
	pf_rec__init(&r);
	r.host = "node-a";

	write_line(&w, &r, PF_REC_SCHEMA_CALICO_3_20);
	spec_list(&want, 1);
	assert_int_equal(want.n, 55); /* Felix's 54 keys before 3.21, and host */
	line_keys(w.buf, &got);
	assert_keys_equal(&got, &want);
	assert_null(strstr(w.buf, "transit"));

	write_line(&w, &r, PF_REC_SCHEMA_CURRENT);
	spec_list(&want, 0);
	assert_int_equal(want.n, 59);
	line_keys(w.buf, &got);
	assert_keys_equal(&got, &want);

	/* The loss marker is a record like any other. */
	assert_int_equal(pf_loss_marker__line(&w, 1, 2, "node-a", 3, PF_REC_SCHEMA_CALICO_3_20), 0);
	nul_terminate(&w);
	spec_list(&want, 1);
	line_keys(w.buf, &got);
	assert_keys_equal(&got, &want);

	pf_rec__init(&r);
	assert_int_equal(pf_rec__write(&w, &r, PF_REC_NSCHEMAS), -EINVAL);
	pf_jw__fini(&w);
}

static void test_schema_names(void **state)
{
	enum pf_rec_schema s = PF_REC_NSCHEMAS;

	assert_int_equal(pf_rec__schema_parse("calico-3.20", &s), 0);
	assert_int_equal(s, PF_REC_SCHEMA_CALICO_3_20);
	assert_int_equal(pf_rec__schema_parse("current", &s), 0);
	assert_int_equal(s, PF_REC_SCHEMA_CURRENT);
	assert_int_equal(pf_rec__schema_parse("calico-3.21", &s), -EINVAL);
	assert_int_equal(pf_rec__schema_parse(NULL, &s), -EINVAL);
	assert_string_equal(pf_rec__schema_name(PF_REC_SCHEMA_CALICO_3_20), "calico-3.20");
	assert_null(pf_rec__schema_name(PF_REC_NSCHEMAS));
	assert_null(pf_rec_schema_names[PF_REC_NSCHEMAS]);
}

/* Every consumer of lines takes a calico-3.20 line: the query scanner sees a
 * flow line, the ClickHouse row has the transit columns at 0. */
static void test_older_line_read_back(void **state)
{
	struct pf_flowrec fr;
	struct pf_record r;
	struct pf_jw w, row;
	char *nohost;

	pf_jw__init(&w, 1 << 16);
	pf_jw__init(&row, 1 << 16);
	pf_rec__init(&r);
	r.start_time = 10;
	r.end_time = 25;
	r.bytes_in = 7;
	r.host = "node-a";
	write_line(&w, &r, PF_REC_SCHEMA_CALICO_3_20);
	assert_int_equal(pf_fl__scan(w.buf, w.len - 1, PF_FL_ALL, &fr), 0);
	assert_true(PF_FL_IS_FLOW(&fr));
	assert_int_equal(pf_chrow__append(&row, w.buf, w.len - 1, 1, 1), 0);
	nul_terminate(&row);
	assert_non_null(strstr(row.buf, "\"bytes_in\":7,"));
	assert_non_null(strstr(row.buf,
			       "\"packets_out\":0,\"transit_bytes_in\":0,"
			       "\"transit_bytes_out\":0,\"transit_packets_in\":0,"
			       "\"transit_packets_out\":0,\"http_requests_allowed_in\":0,"));

	/* A line without host is still not a flow line. */
	nohost = strstr(w.buf, ",\"host\"");
	assert_non_null(nohost);
	memcpy(nohost, "}\n", 3);
	assert_int_equal(pf_fl__scan(w.buf, strlen(w.buf) - 1, PF_FL_ALL, &fr), 0);
	assert_false(PF_FL_IS_FLOW(&fr));
	pf_jw__fini(&row);
	pf_jw__fini(&w);
}

/* The keyword cap counts decoded bytes: an escape is the one byte it
 * stands for, U+FFFD three. */
static void test_keyword_decoded_bytes(void **state)
{
	const size_t n = 32767;
	char *ctl = malloc(n), *got;
	struct pf_strn arg;
	struct pf_record r;
	struct pf_jw w;
	size_t dec;

	assert_non_null(ctl);
	memset(ctl, 0x01, n);
	pf_jw__init(&w, 1 << 20);
	pf_rec__init(&r);
	r.host = "node-a";
	arg.p = ctl;
	arg.len = n;
	r.process_args.v = &arg;
	r.process_args.n = 1;
	pf_jw__reset(&w);
	assert_int_equal(pf_rec__write(&w, &r, PF_REC_SCHEMA_CURRENT), 0);
	assert_int_equal(json_check_line(w.buf, w.len), 0);
	got = memmem(w.buf, w.len, "\"process_args\":[\"", 17);
	assert_non_null(got);
	got += 17;
	/* 32752 escapes of six bytes, then the mark: 32766 bytes decoded. */
	for (dec = 0; !memcmp(got, "\\u0001", 6); got += 6)
		dec++;
	assert_int_equal(dec, 32752);
	assert_memory_equal(got, "...[truncated]\"]", 16);

	/* Just at the limit: kept whole. */
	arg.len = 32766;
	pf_jw__reset(&w);
	assert_int_equal(pf_rec__write(&w, &r, PF_REC_SCHEMA_CURRENT), 0);
	assert_null(memmem(w.buf, w.len, "[truncated]", 11));
	free(ctl);
	pf_jw__fini(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_key_sets),
	    cmocka_unit_test(test_schema_names),
	    cmocka_unit_test(test_older_line_read_back),
	    cmocka_unit_test(test_keyword_decoded_bytes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
