// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ClickHouse sink's pure parts: the row a flow line becomes (valid
 * JSON, the schema's columns, nulls as the column's empty value), the
 * table definition, and the on-disk spool (order, restart, cap).
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
#include <unistd.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "chrow.h"
#include "config.h"
#include "flowline.h"
#include "json_check.h"
#include "jsonw.h"
#include "spool.h"

static const char line[] =
    "{\"start_time\":1795790487,\"end_time\":1795790490,\"source_ip\":\"198.18.0.2\","
    "\"source_name\":\"vm\",\"source_name_aggr\":\"vm\",\"source_namespace\":\"-\","
    "\"nat_outgoing_ports\":null,\"source_port\":null,\"source_type\":\"hep\","
    "\"source_labels\":{\"labels\":[\"a=b\"]},\"dest_ip\":\"198.18.0.1\",\"dest_name\":\"-\","
    "\"dest_name_aggr\":\"pub\",\"dest_namespace\":\"-\",\"dest_port\":42265,\"dest_type\":"
    "\"net\",\"dest_labels\":null,\"dest_service_namespace\":\"-\",\"dest_service_name\":\"-\","
    "\"dest_service_port\":\"-\",\"dest_service_port_num\":null,\"dest_domains\":null,"
    "\"proto\":\"udp\",\"action\":\"allow\",\"reporter\":\"src\",\"policies\":null,"
    "\"bytes_in\":44,\"bytes_out\":1302,\"num_flows\":1,\"num_flows_started\":1,"
    "\"num_flows_completed\":1,\"packets_in\":1,\"packets_out\":1,\"transit_bytes_in\":0,"
    "\"transit_bytes_out\":0,\"transit_packets_in\":0,\"transit_packets_out\":0,"
    "\"http_requests_allowed_in\":0,\"http_requests_denied_in\":0,\"process_name\":"
    "\"/tmp/h4bin/pf_client\",\"num_process_names\":1,\"process_id\":\"8449\","
    "\"num_process_ids\":1,\"process_args\":[\"udp \\\"q\\\" \\u001b x\"],"
    "\"num_process_args\":1,\"original_source_ips\":null,\"num_original_source_ips\":0,"
    "\"tcp_mean_send_congestion_window\":0,\"tcp_min_send_congestion_window\":0,"
    "\"tcp_mean_smooth_rtt\":0,\"tcp_max_smooth_rtt\":0,\"tcp_mean_min_rtt\":0,"
    "\"tcp_max_min_rtt\":0,\"tcp_mean_mss\":0,\"tcp_min_mss\":0,\"tcp_total_retransmissions\":"
    "0,\"tcp_lost_packets\":0,\"tcp_unrecovered_to\":0,\"host\":\"vm\"}";

static void test_row(void **state)
{
	struct pf_jw w;
	struct pf_flowrec r;
	uint64_t n;

	pf_jw__init(&w, 1 << 20);
	assert_int_equal(pf_chrow__append(&w, line, strlen(line), 77, 5), 0);
	assert_true(w.len > 2 && w.buf[w.len - 1] == '\n');
	assert_int_equal(json_check_line(w.buf, w.len), 0);
	assert_int_equal(pf_fl__scan(w.buf, w.len - 1, PF_FL_ALL, &r), 0);
	/* nulls become the column's empty value */
	assert_int_equal(pf_fl__u64(&r.v[PF_FL_SOURCE_PORT], &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(r.v[PF_FL_DEST_DOMAINS].type, PF_FLV_ARR);
	assert_int_equal(r.v[PF_FL_DEST_DOMAINS].len, 2);
	assert_int_equal(r.v[PF_FL_NAT_OUTGOING_PORTS].len, 2);
	assert_int_equal(r.v[PF_FL_POLICIES].type, PF_FLV_STR);
	assert_int_equal(r.v[PF_FL_POLICIES].len, 0);
	/* an object is kept as its JSON text */
	assert_int_equal(r.v[PF_FL_SOURCE_LABELS].type, PF_FLV_STR);
	char text[128];

	pf_fl__unescape(r.v[PF_FL_SOURCE_LABELS].p, r.v[PF_FL_SOURCE_LABELS].len, text,
			sizeof(text));
	assert_string_equal(text, "{\"labels\":[\"a=b\"]}");
	/* strings and arrays as they were */
	pf_fl__unescape(r.v[PF_FL_PROCESS_NAME].p, r.v[PF_FL_PROCESS_NAME].len, text, sizeof(text));
	assert_string_equal(text, "/tmp/h4bin/pf_client");
	assert_non_null(strstr(w.buf, "\"process_args\":[\"udp \\\"q\\\" \\u001b x\"]"));
	assert_non_null(strstr(w.buf, "\"dest_port\":42265"));
	assert_non_null(strstr(w.buf, "\"start_time\":1795790487"));
	assert_non_null(strstr(w.buf, "\"run_id\":77,\"seq\":5}"));

	/* A line that is not a flow line adds nothing. */
	size_t len = w.len;

	assert_int_equal(pf_chrow__append(&w, "{\"start_time\":1", 15, 1, 1), -EINVAL);
	assert_int_equal(pf_chrow__append(&w, "{\"host\":\"x\"}", 12, 1, 1), -EINVAL);
	assert_int_equal(w.len, len);
	/* Two rows in a row stay two valid lines. */
	assert_int_equal(pf_chrow__append(&w, line, strlen(line), 77, 6), 0);
	assert_int_equal(json_check_line(w.buf + len, w.len - len), 0);
	pf_jw__fini(&w);
}

/* The schema names every column a row has, and nothing else. */
static void test_schema_matches_row(void **state)
{
	struct pf_jw s, w;
	struct pf_flowrec r;
	int cols = 0;

	pf_jw__init(&s, 1 << 16);
	pf_jw__init(&w, 1 << 20);
	assert_int_equal(pf_chrow__schema(&s, "procflow", "flows"), 0);
	pf_jw__raw(&s, "", 1); /* NUL */
	assert_non_null(strstr(s.buf, "CREATE TABLE IF NOT EXISTS procflow.flows"));
	assert_non_null(strstr(s.buf, "process_args Array(String)"));
	assert_non_null(strstr(s.buf, "start_time DateTime"));
	assert_non_null(strstr(s.buf, "dest_port UInt16"));
	assert_non_null(strstr(s.buf, "ENGINE = MergeTree()"));
	assert_int_equal(pf_chrow__append(&w, line, strlen(line), 1, 1), 0);
	assert_int_equal(pf_fl__scan(w.buf, w.len - 1, PF_FL_ALL, &r), 0);
	for (int f = 0; f < PF_FL_NFIELDS; f++) {
		char col[96];

		snprintf(col, sizeof(col), "\n    %s ", pf_fl__name(f));
		assert_non_null(strstr(s.buf, col));
		assert_int_not_equal(r.v[f].type, PF_FLV_ABSENT);
		cols++;
	}
	assert_non_null(strstr(s.buf, "\n    run_id UInt64"));
	assert_non_null(strstr(s.buf, "\n    seq UInt64"));
	/* one column line per field, plus run_id and seq */
	int lines = 0;

	for (const char *p = s.buf; (p = strstr(p, "\n    ")); p++)
		lines++;
	assert_int_equal(lines, cols + 2);
	/* Names are checked: no SQL from the command line. */
	pf_jw__reset(&s);
	assert_int_equal(pf_chrow__schema(&s, "x; DROP TABLE y", "flows"), -EINVAL);
	assert_false(pf_chrow__ident_ok("1abc"));
	assert_false(pf_chrow__ident_ok(""));
	assert_true(pf_chrow__ident_ok("flows_2"));
	pf_jw__fini(&s);
	pf_jw__fini(&w);
}

/* The URL's password is taken out of what is shown and of what libcurl gets. */
static void test_url_secrets(void **state)
{
	struct pf_churl u;
	char m[256];

	assert_int_equal(pf_chrow__url_split("http://w:s3%2Fc@ret@127.0.0.1:8123/", &u), 0);
	assert_string_equal(u.base, "http://127.0.0.1:8123/");
	assert_string_equal(u.user, "w");
	assert_string_equal(u.pw, "s3/c@ret");
	assert_true(u.has_pw);
	assert_int_equal(pf_chrow__url_split("https://u@h", &u), 0);
	assert_string_equal(u.base, "https://h");
	assert_string_equal(u.user, "u");
	assert_false(u.has_pw);
	assert_int_equal(pf_chrow__url_split("http://h:8123", &u), 0);
	assert_string_equal(u.user, "");
	assert_int_equal(pf_chrow__url_split("ftp://u:pw@h", &u), -EINVAL);
	assert_int_equal(pf_chrow__url_split("http://u:pw@h/?x=1", &u), -EINVAL);
	assert_int_equal(pf_chrow__url_split("http://u:pw@", &u), -EINVAL);
	assert_int_equal(pf_chrow__url_split("http://u:p%zz@h", &u), -EINVAL);
	assert_string_equal(u.pw, "");
	/* Masked whatever the text: valid, invalid, no scheme. */
	assert_string_equal(pf_chrow__url_mask("http://w:s3c@ret@h:1/p", m, sizeof(m)),
			    "http://w:***@h:1/p");
	assert_string_equal(pf_chrow__url_mask("ftp://w:pw@h?q", m, sizeof(m)), "ftp://w:***@h?q");
	assert_string_equal(pf_chrow__url_mask("w:pw@h", m, sizeof(m)), "w:***@h");
	assert_string_equal(pf_chrow__url_mask("http://h:8123/a@b", m, sizeof(m)),
			    "http://h:8123/a@b");
	assert_string_equal(pf_chrow__url_mask("http://w@h", m, sizeof(m)), "http://w@h");
}

/* The config table's hooks for a URL key: check() refuses, show() masks. */
struct urlcfg {
	char url[256];
};

static int check_http(const char *text, char *why, size_t whysz)
{
	struct pf_churl u;
	char m[256];

	if (!pf_chrow__url_split(text, &u))
		return 0;
	snprintf(why, whysz, "'%s' is not an http URL", pf_chrow__url_mask(text, m, sizeof(m)));
	return -EINVAL;
}

static void test_config_url_key(void **state)
{
	static const struct pf_cfg_key k = {"serverUrl",
					    PF_CFG_STRING,
					    "",
					    0,
					    0,
					    NULL,
					    offsetof(struct urlcfg, url),
					    sizeof(((struct urlcfg *)0)->url),
					    PF_CFG_EMPTY_OK,
					    "server-url",
					    0,
					    false,
					    "URL",
					    "",
					    .check = check_http,
					    .show = pf_chrow__url_mask};
	struct urlcfg c = {""};
	char err[PF_CFG_ERR_MAX], out[256];

	assert_int_equal(pf_cfg__set(&k, &c, "http://u:Sekr3t@h:1", "f.yaml:2", err, sizeof(err)),
			 0);
	assert_string_equal(c.url, "http://u:Sekr3t@h:1"); /* stored as given */
	assert_string_equal(pf_cfg__format(&k, &c, out, sizeof(out)), "http://u:***@h:1");
	assert_int_equal(pf_cfg__set(&k, &c, "ftp://u:Sekr3t@h", "--server-url", err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "--server-url: serverUrl: 'ftp://u:***@h' is not an http URL");
	assert_string_equal(c.url, "http://u:Sekr3t@h:1");			   /* unchanged */
	assert_int_equal(pf_cfg__set(&k, &c, "", "default", err, sizeof(err)), 0); /* "" is off */
}

/* ---- spool ---- */

static char tmp[64];

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/pf-spool-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

static void expect_peek(struct pf_spool *s, const char *want, uint64_t rows)
{
	char *data;
	size_t len;
	uint64_t r;

	assert_int_equal(pf_spool__peek(s, &data, &len, &r), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(data, want, len);
	assert_int_equal(r, rows);
	free(data);
}

static void test_spool_order_and_restart(void **state)
{
	char dir[128];
	struct pf_spool *s;
	char *data;
	size_t len;
	uint64_t rows;

	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	s = pf_spool__open(dir, 1000);
	assert_non_null(s);
	assert_int_equal(pf_spool__peek(s, &data, &len, &rows), -ENOENT);
	assert_int_equal(pf_spool__push(s, "{one}\n", 6, 1), 0);
	assert_int_equal(pf_spool__push(s, "{two}\n{two}\n", 12, 2), 0);
	assert_int_equal(pf_spool__batches(s), 2);
	assert_int_equal(pf_spool__bytes(s), 18);
	assert_int_equal(pf_spool__rows(s), 3);
	expect_peek(s, "{one}\n", 1);
	expect_peek(s, "{one}\n", 1); /* peek does not remove */
	pf_spool__pop(s);
	pf_spool__close(s);

	/* A restart finds what was left, in order, and continues after it. */
	s = pf_spool__open(dir, 1000);
	assert_non_null(s);
	assert_int_equal(pf_spool__batches(s), 1);
	assert_int_equal(pf_spool__push(s, "{three}\n", 8, 1), 0);
	expect_peek(s, "{two}\n{two}\n", 2);
	pf_spool__pop(s);
	expect_peek(s, "{three}\n", 1);
	pf_spool__pop(s);
	assert_int_equal(pf_spool__batches(s), 0);
	assert_int_equal(pf_spool__bytes(s), 0);
	assert_int_equal(pf_spool__dropped_rows(s), 0);
	pf_spool__close(s);
}

/* A batch of @len bytes, @rows lines of JSON objects, the first starting "{@tag". */
static void make_batch(char *buf, size_t len, uint64_t rows, char tag)
{
	size_t first = len - 3 * (rows - 1);

	memset(buf, 'x', first);
	buf[0] = '{';
	buf[1] = tag;
	buf[first - 2] = '}';
	buf[first - 1] = '\n';
	for (size_t i = first; i < len; i += 3)
		memcpy(buf + i, "{}\n", 3);
}

static void test_spool_cap(void **state)
{
	char dir[128], buf[100];
	struct pf_spool *s;

	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	s = pf_spool__open(dir, 250);
	for (int i = 0; i < 5; i++) {
		make_batch(buf, sizeof(buf), 10 + (uint64_t)i, (char)('0' + i));
		assert_int_equal(pf_spool__push(s, buf, 100, 10 + (uint64_t)i), 0);
		assert_true(pf_spool__bytes(s) <= 250);
	}
	/* Two fit; the three oldest were dropped and counted. */
	assert_int_equal(pf_spool__batches(s), 2);
	assert_int_equal(pf_spool__dropped_batches(s), 3);
	assert_int_equal(pf_spool__dropped_rows(s), 10 + 11 + 12);
	char *data;
	size_t len;
	uint64_t rows;

	assert_int_equal(pf_spool__peek(s, &data, &len, &rows), 0);
	assert_int_equal(data[1], '3');
	assert_int_equal(rows, 13);
	free(data);
	/* A batch larger than the cap is refused and counted; the rest stay. */
	char big[300];

	memset(big, 'y', sizeof(big));
	assert_int_equal(pf_spool__push(s, big, sizeof(big), 7), -EFBIG);
	assert_int_equal(pf_spool__batches(s), 2);
	assert_int_equal(pf_spool__dropped_rows(s), 10 + 11 + 12 + 7);
	pf_spool__close(s);

	/* Reopened with a smaller cap: the oldest go. */
	s = pf_spool__open(dir, 150);
	assert_int_equal(pf_spool__batches(s), 1);
	assert_int_equal(pf_spool__dropped_rows(s), 13);
	pf_spool__close(s);
}

/* ---- the order of a push's syscalls, seen through -Wl,--wrap=fsync,--wrap=rename ---- */

int __real_fsync(int fd);
int __real_rename(const char *from, const char *to);
static char calls[64];
static size_t ncalls;

int __wrap_fsync(int fd)
{
	struct stat st;

	if (ncalls + 1 < sizeof(calls) && !fstat(fd, &st))
		calls[ncalls++] = S_ISDIR(st.st_mode) ? 'D' : 'F';
	return __real_fsync(fd);
}

int __wrap_rename(const char *from, const char *to)
{
	if (ncalls + 1 < sizeof(calls))
		calls[ncalls++] = 'R';
	return __real_rename(from, to);
}

/* A batch's data is on disk before its name, and its name before push returns. */
static void test_spool_push_syncs(void **state)
{
	char dir[128];
	struct pf_spool *s;

	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	s = pf_spool__open(dir, 1000);
	ncalls = 0;
	memset(calls, 0, sizeof(calls));
	assert_int_equal(pf_spool__push(s, "{\"a\":1}\n", 8, 1), 0);
	assert_string_equal(calls, "FRD"); /* fsync(file), rename, fsync(directory) */
	pf_spool__close(s);
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/*
 * What a power cut can leave under a batch's name (a cut file, an empty
 * one, zeros where the data never reached the disk, fewer lines than the
 * name says) is set aside at open, counted, and never sent; whole batches
 * around it are sent in order.
 */
static void test_spool_damaged(void **state)
{
	static const char two[] = "{\"a\":1}\n{\"a\":2}\n";
	char dir[128], path[256], zeros[16] = {0};
	struct pf_spool *s;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	s = pf_spool__open(dir, 1 << 20);
	for (int i = 0; i < 6; i++)
		assert_int_equal(pf_spool__push(s, two, strlen(two), 2), 0);
	pf_spool__close(s);
	/* 2: cut inside its second line; 3: empty; 4: zeros; 5: one line of two. */
	snprintf(path, sizeof(path), "%s/%020d-2.batch", dir, 2);
	assert_int_equal(truncate(path, 12), 0);
	snprintf(path, sizeof(path), "%s/%020d-2.batch", dir, 3);
	assert_int_equal(truncate(path, 0), 0);
	snprintf(path, sizeof(path), "%s/%020d-2.batch", dir, 4);
	write_file(path, zeros, sizeof(zeros));
	snprintf(path, sizeof(path), "%s/%020d-2.batch", dir, 5);
	write_file(path, "{\"a\":1}\n", 8);

	s = pf_spool__open(dir, 1 << 20);
	assert_non_null(s);
	assert_int_equal(pf_spool__bad_batches(s), 4);
	assert_int_equal(pf_spool__bad_rows(s), 8);
	assert_int_equal(pf_spool__batches(s), 2);
	assert_int_equal(pf_spool__rows(s), 4);
	assert_int_equal(pf_spool__dropped_rows(s), 0);
	for (int seq = 2; seq <= 5; seq++) {
		snprintf(path, sizeof(path), "%s/%020d-2.batch", dir, seq);
		assert_int_not_equal(stat(path, &st), 0);
		snprintf(path, sizeof(path), "%s/%020d-2.batch.bad", dir, seq);
		assert_int_equal(stat(path, &st), 0);
	}
	expect_peek(s, two, 2);
	pf_spool__pop(s);
	expect_peek(s, two, 2);
	pf_spool__pop(s);
	/* New batches never reuse a damaged one's number. */
	assert_int_equal(pf_spool__push(s, two, strlen(two), 2), 0);
	snprintf(path, sizeof(path), "%s/%020d-2.batch", dir, 7);
	assert_int_equal(stat(path, &st), 0);
	pf_spool__close(s);

	/* Set-aside files are bounded: the newest 8 are kept. */
	for (int seq = 100; seq < 110; seq++) {
		snprintf(path, sizeof(path), "%s/%020d-1.batch", dir, seq);
		write_file(path, "{", 1);
	}
	s = pf_spool__open(dir, 1 << 20);
	assert_int_equal(pf_spool__bad_batches(s), 10);
	pf_spool__close(s);
	int kept = 0;

	for (int seq = 2; seq < 110; seq++) {
		snprintf(path, sizeof(path), "%s/%020d-%d.batch.bad", dir, seq, seq < 100 ? 2 : 1);
		if (!stat(path, &st)) {
			assert_true(seq >= 102);
			kept++;
		}
	}
	assert_int_equal(kept, 8);
}

static void test_spool_leftovers(void **state)
{
	char dir[128], path[256];
	struct pf_spool *s;
	FILE *f;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/spool", tmp);
	mkdir(dir, 0750);
	/* A half-written batch from a crash is removed; strangers are left alone. */
	snprintf(path, sizeof(path), "%s/.tmp-00000000000000000009", dir);
	f = fopen(path, "w");
	fputs("half", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	f = fopen(path, "w");
	fputs("hi", f);
	fclose(f);
	s = pf_spool__open(dir, 1000);
	assert_int_equal(pf_spool__batches(s), 0);
	snprintf(path, sizeof(path), "%s/.tmp-00000000000000000009", dir);
	assert_int_not_equal(stat(path, &st), 0);
	snprintf(path, sizeof(path), "%s/notes.txt", dir);
	assert_int_equal(stat(path, &st), 0);
	/* A batch removed by hand is dropped and counted, not a wedge. */
	assert_int_equal(pf_spool__push(s, "a\n", 2, 1), 0);
	assert_int_equal(pf_spool__push(s, "b\n", 2, 1), 0);
	snprintf(path, sizeof(path), "%s/%020llu-1.batch", dir, 1ull);
	assert_int_equal(unlink(path), 0);
	char *data;
	size_t len;
	uint64_t rows;

	assert_int_equal(pf_spool__peek(s, &data, &len, &rows), -EIO);
	expect_peek(s, "b\n", 1);
	assert_int_equal(pf_spool__dropped_rows(s), 1);
	pf_spool__close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_row),
	    cmocka_unit_test(test_schema_matches_row),
	    cmocka_unit_test(test_url_secrets),
	    cmocka_unit_test(test_config_url_key),
	    cmocka_unit_test_setup_teardown(test_spool_order_and_restart, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_cap, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_leftovers, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_push_syncs, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_spool_damaged, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
