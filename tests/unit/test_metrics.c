// SPDX-License-Identifier: BSD-2-Clause
/*
 * The registry's text exposition, as a Prometheus server parses it: one
 * HELP and one TYPE line per family before its series, counters named
 * _total, durations in seconds, labels in braces; and the --metrics-listen
 * parser. The e2e test (test_metrics.py) scrapes the running agent with a
 * real Prometheus server and runs promtool on the same text.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "loss_log.h"
#include "metrics.h"

static char text[65536];

/* How many lines of @t are exactly @line. */
static int count_lines(const char *t, const char *line)
{
	size_t l = strlen(line);
	int n = 0;

	for (const char *p = t; (p = strstr(p, line)); p += l)
		if ((p == t || p[-1] == '\n') && p[l] == '\n')
			n++;
	return n;
}

static void test_values_and_labels(void **state)
{
	struct pf_metrics m = {0};
	size_t n;

	pf_metrics__add(&m, PF_M_LINES_WRITTEN_FILE, 41);
	pf_metrics__add(&m, PF_M_LINES_WRITTEN_FILE, 1);
	pf_metrics__set(&m, PF_M_ENTRIES_SOCKS, 70);
	pf_metrics__set(&m, PF_M_FLUSH_DURATION, 1500000000ull); /* 1.5 s in ns */
	pf_metrics__follow(&m, PF_M_KERNEL_EVENTS_LOST, 9);
	pf_metrics__follow(&m, PF_M_KERNEL_EVENTS_LOST, 5); /* a total never goes down */
	n = pf_metrics__format(&m, NULL, text, sizeof(text));
	assert_true(n > 0 && n < sizeof(text));
	assert_int_equal(strlen(text), n);
	assert_int_equal(count_lines(text, "procflow_flow_lines_written_total{sink=\"file\"} 42"),
			 1);
	assert_int_equal(count_lines(text, "procflow_flow_lines_written_total{sink=\"stdout\"} 0"),
			 1);
	assert_int_equal(count_lines(text, "procflow_table_entries{table=\"socks\"} 70"), 1);
	assert_int_equal(count_lines(text, "procflow_flush_duration_seconds 1.500000000"), 1);
	assert_int_equal(count_lines(text, "procflow_kernel_events_lost_total 9"), 1);
	assert_null(strstr(text, "process_cpu_seconds_total")); /* none asked for */
}

/* Each family: HELP then TYPE once, right before its first series, and
 * all its series together; counters end in _total, and only counters. */
static void test_families(void **state)
{
	struct pf_metrics m = {0};
	char *line, *next, seen[128][80];
	int nseen = 0;
	char family[80] = "", type[16] = "";

	pf_metrics__format(&m, NULL, text, sizeof(text));
	for (line = text; *line; line = next) {
		char name[80];

		next = strchr(line, '\n');
		assert_non_null(next); /* every line ends in a newline */
		*next++ = '\0';
		if (!strncmp(line, "# HELP ", 7)) {
			assert_int_equal(sscanf(line + 7, "%79s", family), 1);
			for (int i = 0; i < nseen; i++)
				assert_string_not_equal(seen[i], family); /* one block per family */
			assert_true(nseen < 128);
			snprintf(seen[nseen++], sizeof(seen[0]), "%s", family);
			assert_true(strlen(line) > 8 + strlen(family)); /* a help text */
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_int_equal(sscanf(line + 7, "%79s %15s", name, type), 2);
			assert_string_equal(name, family);
			assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge"));
			assert_int_equal(strncmp(name, "procflow_", 9), 0);
			if (!strcmp(type, "counter"))
				assert_string_equal(name + strlen(name) - 6, "_total");
			else
				assert_string_not_equal(name + strlen(name) - 6, "_total");
			continue;
		}
		assert_int_equal(sscanf(line, "%79[^{ ]", name), 1);
		assert_string_equal(name, family);
	}
	assert_true(nseen >= 20);
}

static void test_process_metrics(void **state)
{
	struct pf_metrics m = {0};
	struct pf_metrics_process p = {.cpu_seconds = 1.25,
				       .start_time_seconds = 1700000000.5,
				       .resident_bytes = 40960,
				       .virtual_bytes = 1 << 20,
				       .open_fds = 12,
				       .max_fds = 1024};

	pf_metrics__format(&m, &p, text, sizeof(text));
	assert_int_equal(count_lines(text, "# TYPE process_cpu_seconds_total counter"), 1);
	assert_int_equal(count_lines(text, "process_cpu_seconds_total 1.25"), 1);
	assert_int_equal(count_lines(text, "process_start_time_seconds 1700000000.50"), 1);
	assert_int_equal(count_lines(text, "process_resident_memory_bytes 40960"), 1);
	assert_int_equal(count_lines(text, "process_virtual_memory_bytes 1048576"), 1);
	assert_int_equal(count_lines(text, "process_open_fds 12"), 1);
	assert_int_equal(count_lines(text, "process_max_fds 1024"), 1);
}

/* Too small a buffer: the length needed comes back, as from snprintf, and
 * the buffer holds a terminated prefix. */
static void test_truncation(void **state)
{
	struct pf_metrics m = {0};
	char small[100];
	size_t need = pf_metrics__format(&m, NULL, text, sizeof(text));

	memset(small, 'x', sizeof(small));
	assert_int_equal(pf_metrics__format(&m, NULL, small, sizeof(small)), need);
	assert_true(memchr(small, '\0', sizeof(small)) != NULL);
	assert_int_equal(strncmp(small, text, strlen(small)), 0);
}

/* The loss lines of the log tell the registry's counter. */
static void test_loss_report_reads_registry(void **state)
{
	struct pf_metrics m = {0};
	struct pf_loss l = {.metric = PF_M_AGG_DROPPED, .what = "dropped"};
	char buf[64] = "";

	assert_int_equal(pf_loss__report(&l, &m, buf, sizeof(buf)), 0);
	pf_metrics__add(&m, PF_M_AGG_DROPPED, 5);
	assert_int_equal(pf_loss__report(&l, &m, buf, sizeof(buf)), 5);
	assert_string_equal(buf, "5 dropped");
	assert_int_equal(pf_loss__report(&l, &m, buf, sizeof(buf)), 0);
}

static void test_parse_listen(void **state)
{
	char addr[64], why[128];
	uint16_t port;

	assert_int_equal(pf_metrics__parse_listen("9477", addr, sizeof(addr), &port, why, 128), 0);
	assert_string_equal(addr, "");
	assert_int_equal(port, 9477);
	assert_int_equal(
	    pf_metrics__parse_listen("127.0.0.1:80", addr, sizeof(addr), &port, why, 128), 0);
	assert_string_equal(addr, "127.0.0.1");
	assert_int_equal(port, 80);
	assert_int_equal(
	    pf_metrics__parse_listen("[::1]:9477", addr, sizeof(addr), &port, why, 128), 0);
	assert_string_equal(addr, "::1");
	const char *bad[] = {
	    "",		"0",	     "65536",	 "-1",	  "x",	   "localhost:9477",
	    "::1:9477", "[::1]9477", "1.2.3.4:", "[x]:1", "9477 ", "+80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		assert_int_equal(
		    pf_metrics__parse_listen(bad[i], addr, sizeof(addr), &port, why, sizeof(why)),
		    -EINVAL);
		assert_true(why[0] != '\0');
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_values_and_labels),
	    cmocka_unit_test(test_families),
	    cmocka_unit_test(test_process_metrics),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_loss_report_reads_registry),
	    cmocka_unit_test(test_parse_listen),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
