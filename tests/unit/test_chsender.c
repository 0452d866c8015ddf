// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ClickHouse sink's sender thread (agent/sink_clickhouse.c) under
 * faults the kernel cannot be asked for: malloc() is wrapped
 * (-Wl,--wrap=malloc, see CMakeLists.txt) so that reading a spooled batch
 * finds no memory. The server is 127.0.0.1:9, where nothing listens: no
 * request can succeed, and none is needed for what is checked here.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
/* cmocka.h needs the headers above */
#include <cmocka.h>

#include "agent.h"
#include "sink_clickhouse.h"
#include "spool.h"

/* ---- what the agent provides: its log, captured ---- */

bool pf_verbose;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static char logbuf[1 << 16];
static size_t loglen;
static unsigned loglines;

void pf_log(const char *fmt, ...)
{
	va_list ap;

	pthread_mutex_lock(&log_mu);
	loglines++;
	if (loglen + 2 < sizeof(logbuf)) {
		va_start(ap, fmt);
		int n = vsnprintf(logbuf + loglen, sizeof(logbuf) - loglen - 1, fmt, ap);

		va_end(ap);
		if (n > 0)
			loglen += (size_t)n < sizeof(logbuf) - loglen - 2
				      ? (size_t)n
				      : sizeof(logbuf) - loglen - 2;
		logbuf[loglen++] = '\n';
		logbuf[loglen] = '\0';
	}
	pthread_mutex_unlock(&log_mu);
}

void pf_debug(const char *fmt, ...)
{
	(void)fmt;
}

/* ---- malloc: fail every allocation of one size ---- */

void *__real_malloc(size_t size);
static size_t fail_size; /* 0: none */
static unsigned fails;
static double fail_at[8]; /* when the first failures happened */

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void *__wrap_malloc(size_t size)
{
	if (size && size == __atomic_load_n(&fail_size, __ATOMIC_SEQ_CST)) {
		unsigned n = __atomic_fetch_add(&fails, 1, __ATOMIC_SEQ_CST);

		if (n < 8)
			fail_at[n] = mono();
		errno = ENOMEM;
		return NULL;
	}
	return __real_malloc(size);
}

static unsigned nfails(void)
{
	return __atomic_load_n(&fails, __ATOMIC_SEQ_CST);
}

static char tmp[64];

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/pf-chsender-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

/*
 * A spooled batch that cannot be read for want of memory stays in the
 * spool, is logged once (not as dropped), and is read again after a
 * back-off: never in a loop that spins on the CPU and the log.
 */
static void test_no_memory_backs_off(void **state)
{
	static const char batch[] = "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n";
	struct pf_ch_config c;
	struct pf_chsink *s;
	struct pf_spool *sp;
	char spool[128];
	double t0;

	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	sp = pf_spool__open(spool, 1 << 20);
	assert_non_null(sp);
	assert_int_equal(pf_spool__push(sp, batch, strlen(batch), 3), 0);
	pf_spool__close(sp);

	memset(&c, 0, sizeof(c));
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:9");
	snprintf(c.db, sizeof(c.db), "procflow");
	snprintf(c.table, sizeof(c.table), "flows");
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", spool);
	c.batch_rows = 100;
	c.batch_interval_s = 1;
	c.spool_max_mb = 1;
	c.timeout_s = 1;
	/* The spool reads a batch into malloc(size + 1). */
	__atomic_store_n(&fail_size, strlen(batch) + 1, __ATOMIC_SEQ_CST);
	t0 = mono();
	s = pf_chsink__start(&c, tmp);
	assert_non_null(s);
	/* The first read fails at once; wait for the second (1 s later when it backs off). */
	while (nfails() < 2 && mono() - t0 < 10)
		usleep(10000);
	unsigned in_window = nfails();

	assert_true(in_window >= 2);
	assert_true(in_window <= 3);
	assert_true(fail_at[1] - fail_at[0] >= 0.9);
	/* Memory is back: the batch is read and tried (and fails: nobody listens). */
	__atomic_store_n(&fail_size, 0, __ATOMIC_SEQ_CST);
	pf_chsink__stop(s);

	/* Still in the spool, nothing dropped, one line about memory. */
	sp = pf_spool__open(spool, 1 << 20);
	assert_int_equal(pf_spool__batches(sp), 1);
	assert_int_equal(pf_spool__rows(sp), 3);
	pf_spool__close(sp);
	pthread_mutex_lock(&log_mu);
	assert_null(strstr(logbuf, "could not be read"));
	assert_non_null(strstr(logbuf, "no memory to read the oldest spooled batch"));
	assert_non_null(strstr(logbuf, "3 rows wait in the spool"));
	assert_true(loglines < 10);
	pthread_mutex_unlock(&log_mu);
}

/* One flow line (the row conversion needs the record's fields). */
static const char line[] =
    "{\"start_time\":1795790487,\"end_time\":1795790490,\"source_ip\":\"198.18.0.2\","
    "\"source_name\":\"vm\",\"source_name_aggr\":\"vm\",\"source_namespace\":\"-\","
    "\"nat_outgoing_ports\":null,\"source_port\":null,\"source_type\":\"hep\","
    "\"source_labels\":null,\"dest_ip\":\"198.18.0.1\",\"dest_name\":\"-\","
    "\"dest_name_aggr\":\"pub\",\"dest_namespace\":\"-\",\"dest_port\":42265,\"dest_type\":"
    "\"net\",\"dest_labels\":null,\"dest_service_namespace\":\"-\",\"dest_service_name\":\"-\","
    "\"dest_service_port\":\"-\",\"dest_service_port_num\":null,\"dest_domains\":null,"
    "\"proto\":\"udp\",\"action\":\"allow\",\"reporter\":\"src\",\"policies\":null,"
    "\"bytes_in\":44,\"bytes_out\":1302,\"num_flows\":1,\"num_flows_started\":1,"
    "\"num_flows_completed\":1,\"packets_in\":1,\"packets_out\":1,\"transit_bytes_in\":0,"
    "\"transit_bytes_out\":0,\"transit_packets_in\":0,\"transit_packets_out\":0,"
    "\"http_requests_allowed_in\":0,\"http_requests_denied_in\":0,\"process_name\":"
    "\"/bin/x\",\"num_process_names\":1,\"process_id\":\"8449\","
    "\"num_process_ids\":1,\"process_args\":[\"x\"],"
    "\"num_process_args\":1,\"original_source_ips\":null,\"num_original_source_ips\":0,"
    "\"tcp_mean_send_congestion_window\":0,\"tcp_min_send_congestion_window\":0,"
    "\"tcp_mean_smooth_rtt\":0,\"tcp_max_smooth_rtt\":0,\"tcp_mean_min_rtt\":0,"
    "\"tcp_max_min_rtt\":0,\"tcp_mean_mss\":0,\"tcp_min_mss\":0,\"tcp_total_retransmissions\":"
    "0,\"tcp_lost_packets\":0,\"tcp_unrecovered_to\":0,\"host\":\"vm\"}\n";

/* Spooled batch files whose name ends in @tail ("-2.batch"). */
static int count_batches(const char *dir, const char *tail)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int n = 0;

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name), t = strlen(tail);

		if (l > t && !strcmp(de->d_name + l - t, tail))
			n++;
	}
	closedir(d);
	return n;
}

/* A reload's batch size applies from the next rows on, without a restart. */
static void test_reload_batch_rows(void **state)
{
	struct pf_ch_config c;
	struct pf_chsink *s;
	char spool[128], buf[sizeof(line) * 3];
	double t0;

	snprintf(spool, sizeof(spool), "%s/spool", tmp);
	memset(&c, 0, sizeof(c));
	snprintf(c.url, sizeof(c.url), "http://127.0.0.1:9");
	snprintf(c.db, sizeof(c.db), "procflow");
	snprintf(c.table, sizeof(c.table), "flows");
	snprintf(c.spool_dir, sizeof(c.spool_dir), "%s", spool);
	c.batch_rows = 100;
	c.batch_interval_s = 3600; /* no batch is sealed by age in this test */
	c.spool_max_mb = 1;
	c.timeout_s = 1;
	s = pf_chsink__start(&c, tmp);
	assert_non_null(s);
	snprintf(buf, sizeof(buf), "%s%s%s", line, line, line);
	c.batch_rows = 2;
	pf_chsink__reconfigure(s, &c);
	pf_chsink__submit(s, buf, strlen(buf), 3);
	pf_chsink__submit(s, buf, strlen(buf), 3);
	/* 6 rows with batches of 2: three files named <seq>-2.batch (with 100: none). */
	t0 = mono();
	while (count_batches(spool, "-2.batch") < 3 && mono() - t0 < 10)
		usleep(10000);
	assert_int_equal(count_batches(spool, "-2.batch"), 3);
	pf_chsink__stop(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_no_memory_backs_off, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_reload_batch_rows, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
