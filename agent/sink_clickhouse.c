// SPDX-License-Identifier: BSD-2-Clause
/*
 * The ClickHouse sink.
 *
 * Path of a line: flush() in the event loop writes the interval's lines to
 * flows.log, then hands the same buffer to pf_chsink__submit(), which
 * copies it onto an in-memory queue and wakes the sender thread; that is
 * all the event loop ever does for ClickHouse, so a slow or absent server
 * never delays a flush. The sender turns lines into JSONEachRow rows
 * (lib/chrow.c) and collects them into a batch; a batch is sealed when it
 * has clickhouseBatchRows rows or is clickhouseBatchInterval old, and
 * every sealed batch is first written to the spool (lib/spool.c, one file
 * per batch) and then sent from there, oldest first, one HTTP POST per
 * batch. A batch leaves the spool only when ClickHouse answered 200, so
 * the order is kept and nothing is lost while the spool has room; a batch
 * ClickHouse refuses as malformed data is dropped and counted (sending it
 * again could never work). Other failures (connection refused, timeout, a
 * 5xx) back off: 1 s, doubling, at most 60 s.
 *
 * Why a thread and not curl's multi interface in the epoll loop: the
 * loop's only duty is to keep the kernel maps drained and the file
 * written on time, and libcurl's easy interface with a timeout makes the
 * sender a straight-line retry loop that is easy to reason about. The two
 * share only the queue (a mutex and a condition variable).
 *
 * Bounds: the queue holds at most PF_CH_QUEUE_MAX bytes of lines (beyond
 * it lines are dropped for ClickHouse and counted; flows.log has them);
 * the spool holds at most clickhouseSpoolMaxMB (beyond it the oldest
 * batches are deleted and their rows counted).
 */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "chrow.h"
#include "jsonw.h"
#include "metrics.h"
#include "sink.h"
#include "sink_clickhouse.h"
#include "safefs.h"
#include "spool.h"

#define PF_CH_QUEUE_MAX	  (64u << 20) /* bytes of lines waiting for the sender */
#define PF_CH_BATCH_MAX	  (32u << 20) /* a batch is sealed at this size whatever its rows */
#define PF_CH_ROW_CAP	  (PF_CH_BATCH_MAX + (8u << 20)) /* writer cap: one more row fits */
#define PF_CH_BACKOFF_MAX 60

/* ---- the configuration table's checks of the sink's keys ---- */

int pf_ch_check_url(const char *text, char *why, size_t whysz)
{
	struct pf_churl u;
	char shown[512];

	if (pf_chrow__url_split(text, &u)) {
		snprintf(why, whysz,
			 "'%s' is not an http:// or https:// URL with a host and without a query",
			 pf_chrow__url_mask(text, shown, sizeof(shown)));
		return -EINVAL;
	}
	/* --print-config shows the URL's password as ***; that output read
	 * back as a configuration must not send *** as the password. */
	if (u.has_pw && !strcmp(u.pw, "***")) {
		explicit_bzero(&u, sizeof(u));
		snprintf(why, whysz,
			 "'%s': the password is the mask --print-config writes, not a password; "
			 "give it with clickhousePasswordFile",
			 pf_chrow__url_mask(text, shown, sizeof(shown)));
		return -EINVAL;
	}
	explicit_bzero(&u, sizeof(u));
	return 0;
}

int pf_ch_check_name(const char *text, char *why, size_t whysz)
{
	if (pf_chrow__ident_ok(text))
		return 0;
	snprintf(why, whysz, "'%.80s' is not a plain name (letters, digits, _; at most 64)", text);
	return -EINVAL;
}

int pf_ch_print_schema(const struct pf_ch_config *c)
{
	struct pf_jw w;
	int err;

	pf_jw__init(&w, 1 << 16);
	err = pf_chrow__schema(&w, c->db, c->table);
	if (!err)
		fwrite(w.buf, 1, w.len, stdout);
	pf_jw__fini(&w);
	return err ? PF_EXIT_USAGE : PF_EXIT_OK;
}

/* ---- the sink ---- */

struct qitem {
	struct qitem *next;
	size_t len;
	uint64_t lines;
	char data[];
};

struct pf_chsink {
	struct pf_ch_config cfg;
	char *password;
	char *insert_url;
	char spool_dir[4096];

	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	/* under mu */
	struct qitem *qhead, *qtail;
	size_t qbytes;
	bool stop;
	double stop_deadline; /* mono() by which the sender is gone; 0 until stop */
	unsigned timeout_s;   /* the latest timeout (a reload may change it) */
	bool reconf;	      /* a reload left new limits in next */
	struct pf_ch_config next;
	uint64_t q_dropped; /* lines */
	bool q_dropping;    /* logged once per episode */

	/* the sender's own */
	CURL *curl;
	struct pf_spool *spool;
	struct pf_jw batch;
	uint64_t batch_rows;
	double batch_started;
	uint64_t run_id, seq;
	double next_try;
	unsigned backoff_s;
	bool failing;
	bool no_memory; /* the last read of a batch found no memory (logged once) */
	uint64_t sent_rows, sent_batches, rejected_rows, bad_lines, failures, lost_rows;
	uint64_t dropped_logged;
	char body[1024];
	size_t body_len;
	char errbuf[CURL_ERROR_SIZE];
};

static double mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t size, size_t n, void *ctx)
{
	struct pf_chsink *s = ctx;
	size_t len = size * n, room = sizeof(s->body) - 1 - s->body_len;

	if (len < room)
		room = len;
	memcpy(s->body + s->body_len, p, room);
	s->body_len += room;
	s->body[s->body_len] = '\0';
	return len;
}

/* When the sender must be gone (0: not stopping). */
static double stop_deadline(struct pf_chsink *s)
{
	double d;

	pthread_mutex_lock(&s->mu);
	d = s->stop_deadline;
	pthread_mutex_unlock(&s->mu);
	return d;
}

/*
 * libcurl calls this at least about once a second during a request: a
 * request that started before the stop (with a whole timeout of its own)
 * is cut at the stop's deadline, so a server that accepts and never
 * answers cannot hold the agent longer than one timeout after SIGTERM.
 */
static int on_progress(void *ctx, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
		       curl_off_t ulnow)
{
	double d = stop_deadline(ctx);

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return d && mono() >= d;
}

/* ClickHouse error codes that mean "this data can never be inserted". */
static bool data_error(const char *body)
{
	static const int codes[] = {6, 26, 27, 38, 41, 53, 72, 117};
	const char *c = strstr(body, "Code: ");
	long code;

	if (!c)
		return false;
	code = strtol(c + 6, NULL, 10);
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
		if (code == codes[i])
			return true;
	return false;
}

enum post_result { POST_OK, POST_RETRY, POST_REJECTED };

static enum post_result post(struct pf_chsink *s, const char *data, size_t len, long timeout_s,
			     char *why, size_t whysz)
{
	CURLcode rc;
	long status = 0;

	s->body_len = 0;
	s->body[0] = '\0';
	s->errbuf[0] = '\0';
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDS, data);
	curl_easy_setopt(s->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(s->curl, CURLOPT_TIMEOUT, timeout_s);
	curl_easy_setopt(s->curl, CURLOPT_CONNECTTIMEOUT, timeout_s < 5 ? timeout_s : 5L);
	rc = curl_easy_perform(s->curl);
	if (rc != CURLE_OK) {
		snprintf(why, whysz, "%s", s->errbuf[0] ? s->errbuf : curl_easy_strerror(rc));
		return POST_RETRY;
	}
	curl_easy_getinfo(s->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status == 200)
		return POST_OK;
	/* First line of the server's message. */
	char *nl = strchr(s->body, '\n');

	if (nl)
		*nl = '\0';
	snprintf(why, whysz, "HTTP %ld: %.300s", status, s->body);
	return data_error(s->body) ? POST_REJECTED : POST_RETRY;
}

static void log_drops(struct pf_chsink *s)
{
	uint64_t d = pf_spool__dropped_rows(s->spool);

	pf_metrics__set(&pf_registry, PF_M_CH_SPOOL_BYTES, pf_spool__bytes(s->spool));
	pf_metrics__set(&pf_registry, PF_M_CH_SPOOL_ROWS, pf_spool__rows(s->spool));
	if (d > s->dropped_logged) {
		pf_metrics__add(&pf_registry, PF_M_LINES_DROPPED_CLICKHOUSE, d - s->dropped_logged);
		pf_log("clickhouse: the spool is full (%u MB): %llu oldest rows dropped (%llu in "
		       "all)",
		       s->cfg.spool_max_mb, (unsigned long long)(d - s->dropped_logged),
		       (unsigned long long)d);
		s->dropped_logged = d;
	}
}

/* The next try after a failure: 1 s, doubling, at most PF_CH_BACKOFF_MAX. */
static void back_off(struct pf_chsink *s)
{
	s->backoff_s = s->backoff_s ? s->backoff_s * 2 : 1;
	if (s->backoff_s > PF_CH_BACKOFF_MAX)
		s->backoff_s = PF_CH_BACKOFF_MAX;
	s->next_try = mono() + s->backoff_s;
}

/*
 * Send spooled batches, oldest first, until one fails, the spool is empty
 * or, once the sink is stopping, its deadline passes.
 */
static void deliver(struct pf_chsink *s)
{
	char why[512];

	while (pf_spool__batches(s->spool)) {
		double now = mono(), deadline = stop_deadline(s);
		long timeout = s->cfg.timeout_s;
		char *data;
		size_t len;
		uint64_t rows;
		int err;

		if (now < s->next_try)
			return;
		if (deadline) {
			if (now >= deadline)
				return;
			if (deadline - now < timeout)
				timeout = (long)(deadline - now) + 1;
		}
		err = pf_spool__peek(s->spool, &data, &len, &rows);
		if (err == -ENOENT)
			return;
		if (err == -ENOMEM) {
			/* The batch is still there and a later read may get the
			 * memory: wait as after a failed insert, never spin. */
			back_off(s);
			if (!s->no_memory)
				pf_log(
				    "clickhouse: no memory to read the oldest spooled batch; it "
				    "stays in the spool and is read again in %us (backing off up "
				    "to %ds)",
				    s->backoff_s, PF_CH_BACKOFF_MAX);
			s->no_memory = true;
			return;
		}
		if (err) {
			pf_log("clickhouse: a spooled batch could not be read (%s): dropped",
			       strerror(-err));
			continue;
		}
		if (s->no_memory)
			pf_log("clickhouse: spooled batches can be read again");
		s->no_memory = false;
		if (s->failing)
			pf_metrics__add(&pf_registry, PF_M_CH_RETRIES, 1);
		switch (post(s, data, len, timeout, why, sizeof(why))) {
		case POST_OK:
			pf_spool__pop(s->spool);
			s->sent_rows += rows;
			pf_metrics__add(&pf_registry, PF_M_LINES_WRITTEN_CLICKHOUSE, rows);
			s->sent_batches++;
			if (s->failing)
				pf_log(
				    "clickhouse: inserting again (%zu batches, %llu rows wait in "
				    "the spool)",
				    pf_spool__batches(s->spool),
				    (unsigned long long)pf_spool__rows(s->spool));
			s->failing = false;
			s->backoff_s = 0;
			break;
		case POST_REJECTED:
			pf_spool__pop(s->spool);
			s->rejected_rows += rows;
			pf_metrics__add(&pf_registry, PF_M_CH_ROWS_REJECTED, rows);
			pf_metrics__add(&pf_registry, PF_M_LINES_DROPPED_CLICKHOUSE, rows);
			pf_log("clickhouse: the server refused a batch of %llu rows as malformed; "
			       "dropped (%s)",
			       (unsigned long long)rows, why);
			break;
		case POST_RETRY:
			s->failures++;
			pf_metrics__add(&pf_registry, PF_M_CH_SEND_FAILURES, 1);
			back_off(s);
			if (!s->failing)
				pf_log("clickhouse: insert failed (%s); batches wait in %s and are "
				       "retried, backing off up to %ds",
				       why, s->spool_dir, PF_CH_BACKOFF_MAX);
			s->failing = true;
			free(data);
			return;
		}
		free(data);
	}
}

/* The current batch goes to the spool. */
static void seal(struct pf_chsink *s)
{
	int err;

	if (!s->batch_rows)
		return;
	err = pf_spool__push(s->spool, s->batch.buf, s->batch.len, s->batch_rows);
	if (err == -EFBIG) {
		pf_metrics__add(&pf_registry, PF_M_LINES_DROPPED_CLICKHOUSE, s->batch_rows);
		pf_log("clickhouse: a batch of %llu rows is larger than the spool cap: dropped",
		       (unsigned long long)s->batch_rows);
	} else if (err) {
		char why[512];

		/* The disk refused: send it directly once, else it is lost. */
		if (post(s, s->batch.buf, s->batch.len, s->cfg.timeout_s, why, sizeof(why)) ==
		    POST_OK) {
			s->sent_rows += s->batch_rows;
			s->sent_batches++;
			pf_metrics__add(&pf_registry, PF_M_LINES_WRITTEN_CLICKHOUSE, s->batch_rows);
		} else {
			s->lost_rows += s->batch_rows;
			pf_metrics__add(&pf_registry, PF_M_LINES_DROPPED_CLICKHOUSE, s->batch_rows);
			pf_log("clickhouse: cannot write to the spool (%s) nor insert (%s): %llu "
			       "rows lost",
			       strerror(-err), why, (unsigned long long)s->batch_rows);
		}
	}
	log_drops(s);
	pf_jw__reset(&s->batch);
	s->batch_rows = 0;
}

/*
 * Turn the lines of @it into rows of the current batch, sealing it when
 * full. When @stopping, a batch is sealed only at PF_CH_BATCH_MAX bytes
 * (or a quarter of the spool's cap): what the queue still holds goes into
 * the spool in a few large files, not in thousands of small ones each
 * costing two fsyncs, so the stop stays within its deadline.
 */
static void add_lines(struct pf_chsink *s, const struct qitem *it, bool stopping)
{
	const char *p = it->data, *end = it->data + it->len;
	/* A quarter of the spool at most, so a stop-time batch always fits in it. */
	size_t max_len = PF_CH_BATCH_MAX;

	if (stopping && ((size_t)s->cfg.spool_max_mb << 20) / 4 < max_len)
		max_len = ((size_t)s->cfg.spool_max_mb << 20) / 4;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		if (!s->batch_rows)
			s->batch_started = mono();
		if (pf_chrow__append(&s->batch, p, n, s->run_id, s->seq + 1) == 0) {
			s->seq++;
			s->batch_rows++;
		} else {
			s->bad_lines++;
		}
		if ((!stopping && s->batch_rows >= s->cfg.batch_rows) || s->batch.len >= max_len)
			seal(s);
		p += n + 1;
	}
}

/* Under mu: take the limits a reload left (pf_chsink__reconfigure()). */
static void apply_reload(struct pf_chsink *s)
{
	if (!s->reconf)
		return;
	s->cfg.batch_rows = s->next.batch_rows;
	s->cfg.batch_interval_s = s->next.batch_interval_s;
	s->cfg.timeout_s = s->next.timeout_s;
	s->reconf = false;
}

static void *sender(void *arg)
{
	struct pf_chsink *s = arg;
	bool stopping = false;

	/* A network client needs no capability; the loop thread drops its
	 * own once the kernel side is loaded (agent/caps.c). */
	pf_caps__drop_thread();

	while (!stopping) {
		struct qitem *list;

		pthread_mutex_lock(&s->mu);
		apply_reload(s);
		while (!s->qhead && !s->stop) {
			double wake = 0, now = mono();
			struct timespec ts;

			apply_reload(s);

			if (s->batch_rows)
				wake = s->batch_started + s->cfg.batch_interval_s;
			if (pf_spool__batches(s->spool) && (!wake || s->next_try < wake))
				wake = s->next_try > now ? s->next_try : now;
			if (wake && wake <= now)
				break;
			if (!wake) {
				pthread_cond_wait(&s->cv, &s->mu);
				continue;
			}
			clock_gettime(CLOCK_REALTIME, &ts);
			double abs = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9 + (wake - now);

			ts.tv_sec = (time_t)abs;
			ts.tv_nsec = (long)((abs - (double)ts.tv_sec) * 1e9);
			if (pthread_cond_timedwait(&s->cv, &s->mu, &ts) == ETIMEDOUT)
				break;
		}
		list = s->qhead;
		s->qhead = s->qtail = NULL;
		s->qbytes = 0;
		pf_metrics__set(&pf_registry, PF_M_CH_QUEUE_BYTES, 0);
		stopping = s->stop;
		pthread_mutex_unlock(&s->mu);

		while (list) {
			struct qitem *next = list->next;

			add_lines(s, list, stopping);
			free(list);
			list = next;
		}
		if (s->batch_rows &&
		    (stopping || mono() - s->batch_started >= s->cfg.batch_interval_s))
			seal(s);
		if (!stopping)
			deliver(s);
	}
	/* Stopping: one more try, even if backing off, until the stop's deadline
	 * (one request timeout after it); what is left stays in the spool. */
	s->next_try = 0;
	deliver(s);
	return NULL;
}

/*
 * The password is the first line of @path. Like ssh with a private key, a
 * file that group or others may read, or that another user owns, is
 * refused: a password others can read is no secret (errno EINVAL).
 */
static char *read_password(const char *path)
{
	char buf[1024], *nl, *pw;
	struct stat st;
	FILE *f = fopen(path, "re");
	size_t n;

	if (!f) {
		pf_log("clickhouse: cannot read the password file %s: %s", path, strerror(errno));
		errno = EINVAL;
		return NULL;
	}
	if (fstat(fileno(f), &st) || !S_ISREG(st.st_mode)) {
		pf_log("clickhouse: the password file %s is not a regular file", path);
		goto bad;
	}
	if (st.st_mode & 077) {
		pf_log("clickhouse: the password file %s may be read by group or others (mode "
		       "%04o): refused; make it 0600 (chmod 600 %s)",
		       path, (unsigned)(st.st_mode & 07777), path);
		goto bad;
	}
	if (st.st_uid != 0 && st.st_uid != geteuid()) {
		pf_log("clickhouse: the password file %s belongs to user %u, not to root: refused",
		       path, (unsigned)st.st_uid);
		goto bad;
	}
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	nl = strpbrk(buf, "\r\n");
	if (nl)
		*nl = '\0';
	pw = strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return pw;
bad:
	fclose(f);
	errno = EINVAL;
	return NULL;
}

static void free_sink(struct pf_chsink *s)
{
	while (s->qhead) {
		struct qitem *n = s->qhead->next;

		free(s->qhead);
		s->qhead = n;
	}
	if (s->curl)
		curl_easy_cleanup(s->curl);
	pf_spool__close(s->spool);
	pf_jw__fini(&s->batch);
	if (s->password)
		explicit_bzero(s->password, strlen(s->password));
	free(s->password);
	free(s->insert_url);
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
}

struct pf_chsink *pf_chsink__start(const struct pf_ch_config *c, const char *output_dir)
{
	struct pf_chsink *s = calloc(1, sizeof(*s));
	struct pf_churl url;
	char query[256], shown[512], *esc;
	const char *user;
	size_t ulen, need;
	int err = EIO;

	if (!s)
		return NULL;
	s->cfg = *c;
	s->timeout_s = c->timeout_s;
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	pf_jw__init(&s->batch, PF_CH_ROW_CAP);
	if (c->spool_dir[0])
		snprintf(s->spool_dir, sizeof(s->spool_dir), "%s", c->spool_dir);
	else
		snprintf(s->spool_dir, sizeof(s->spool_dir), "%s/clickhouse-spool", output_dir);
	/* libcurl gets the URL without USER:PASSWORD@ (its messages quote
	 * URLs) and the credentials apart; only the masked form is logged. */
	if (pf_chrow__url_split(c->url, &url)) {
		pf_log("clickhouse: '%s' is not an http:// or https:// URL",
		       pf_chrow__url_mask(c->url, shown, sizeof(shown)));
		err = EINVAL;
		goto fail;
	}
	if (c->password_file[0] && url.has_pw) {
		pf_log("clickhouse: the URL has a password and clickhousePasswordFile names one "
		       "too: give it in one place");
		err = EINVAL;
		goto fail;
	}
	if (c->password_file[0]) {
		s->password = read_password(c->password_file);
		if (!s->password) {
			err = errno == ENOMEM ? ENOMEM : EINVAL;
			goto fail;
		}
	} else if (url.has_pw) {
		s->password = strdup(url.pw);
		if (!s->password)
			goto fail;
	}
	user = c->user[0] ? c->user : url.user[0] ? url.user : NULL;
	s->spool = pf_spool__open(s->spool_dir, (uint64_t)c->spool_max_mb << 20);
	if (!s->spool) {
		char why[256];

		err = errno;
		/* A directory the agent refuses (another owner, writable by
		 * others, a link) is a configuration error, like the output
		 * directory's: exit 2 with the reason. */
		if (err != ENOENT && err != EACCES && pf_safefs__why(s->spool_dir, why, sizeof(why)))
			pf_log("clickhouse: refusing the spool directory %s: it %s", s->spool_dir,
			       why);
		else
			pf_log("clickhouse: cannot use the spool directory %s: %s", s->spool_dir,
			       strerror(err));
		if (err == ENOENT || err == ENOTDIR || err == EPERM || err == ELOOP)
			err = EINVAL;
		goto fail;
	}
	if (getrandom(&s->run_id, sizeof(s->run_id), 0) != sizeof(s->run_id))
		s->run_id = (uint64_t)time(NULL) << 20 ^ (uint64_t)getpid();

	if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
		pf_log("clickhouse: libcurl failed to initialise");
		goto fail;
	}
	s->curl = curl_easy_init();
	if (!s->curl)
		goto fail;
	snprintf(query, sizeof(query), "INSERT INTO %s.%s FORMAT JSONEachRow", c->db, c->table);
	esc = curl_easy_escape(s->curl, query, 0);
	if (!esc)
		goto fail;
	ulen = strlen(url.base);
	while (ulen && url.base[ulen - 1] == '/')
		ulen--;
	/* Unknown fields are skipped, so a newer agent can feed an older table. */
	need = ulen + strlen(esc) + 64;
	s->insert_url = malloc(need);
	if (!s->insert_url) {
		curl_free(esc);
		goto fail;
	}
	snprintf(s->insert_url, need, "%.*s/?query=%s&input_format_skip_unknown_fields=1",
		 (int)ulen, url.base, esc);
	curl_free(esc);
	curl_easy_setopt(s->curl, CURLOPT_URL, s->insert_url);
	curl_easy_setopt(s->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(s->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(s->curl, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(s->curl, CURLOPT_ERRORBUFFER, s->errbuf);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(s->curl, CURLOPT_XFERINFODATA, s);
	curl_easy_setopt(s->curl, CURLOPT_NOPROGRESS, 0L);
	if (user || s->password) {
		curl_easy_setopt(s->curl, CURLOPT_USERNAME, user ? user : "default");
		curl_easy_setopt(s->curl, CURLOPT_PASSWORD, s->password ? s->password : "");
	}
	if (pf_spool__bad_batches(s->spool))
		pf_log(
		    "clickhouse: %llu spooled batches are damaged (cut or empty after a crash or "
		    "power cut): %llu rows not sent; renamed *.batch.bad in %s",
		    (unsigned long long)pf_spool__bad_batches(s->spool),
		    (unsigned long long)pf_spool__bad_rows(s->spool), s->spool_dir);
	if (pf_spool__batches(s->spool))
		pf_log("clickhouse: %zu batches (%llu rows) from an earlier run wait in %s; sent "
		       "first",
		       pf_spool__batches(s->spool), (unsigned long long)pf_spool__rows(s->spool),
		       s->spool_dir);
	/* The sender takes no signal: SIGTERM and SIGINT are the event loop's
	 * (its signalfd), and a thread inherits the mask it is created with. */
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&s->thread, NULL, sender, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		pf_log("clickhouse: cannot start the sender thread: %s", strerror(err));
		goto fail;
	}
	s->thread_started = true;
	pf_log("clickhouse: inserting into %s.%s at %.*s as %s%s (batches of %u rows or %us; "
	       "spool %s, %u MB)",
	       c->db, c->table, (int)ulen, url.base, user ? user : "default",
	       s->password ? " with a password" : "", c->batch_rows, c->batch_interval_s,
	       s->spool_dir, c->spool_max_mb);
	explicit_bzero(&url, sizeof(url));
	return s;
fail:
	explicit_bzero(&url, sizeof(url));
	free_sink(s);
	errno = err;
	return NULL;
}

void pf_chsink__submit(struct pf_chsink *s, const char *buf, size_t len, uint64_t nlines)
{
	struct qitem *it;
	bool full;

	if (!s || !len)
		return;
	pthread_mutex_lock(&s->mu);
	full = s->qbytes + len > PF_CH_QUEUE_MAX;
	pthread_mutex_unlock(&s->mu);
	it = full ? NULL : malloc(sizeof(*it) + len);
	pthread_mutex_lock(&s->mu);
	if (!it) {
		s->q_dropped += nlines;
		pf_metrics__add(&pf_registry, PF_M_LINES_DROPPED_CLICKHOUSE, nlines);
		if (!s->q_dropping)
			pf_log(
			    "clickhouse: the sender is behind by %u MB: lines are not sent (they "
			    "are in flows.log); %llu dropped so far",
			    PF_CH_QUEUE_MAX >> 20, (unsigned long long)s->q_dropped);
		s->q_dropping = true;
	} else {
		memcpy(it->data, buf, len);
		it->len = len;
		it->lines = nlines;
		it->next = NULL;
		if (s->qtail)
			s->qtail->next = it;
		else
			s->qhead = it;
		s->qtail = it;
		s->qbytes += len;
		pf_metrics__set(&pf_registry, PF_M_CH_QUEUE_BYTES, s->qbytes);
		s->q_dropping = false;
		pthread_cond_signal(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
}

void pf_chsink__reconfigure(struct pf_chsink *s, const struct pf_ch_config *c)
{
	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	s->next = *c;
	s->reconf = true;
	s->timeout_s = c->timeout_s;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

void pf_chsink__stop(struct pf_chsink *s)
{
	if (!s)
		return;
	if (s->thread_started) {
		pthread_mutex_lock(&s->mu);
		s->stop = true;
		s->stop_deadline = mono() + s->timeout_s;
		pthread_cond_signal(&s->cv);
		pthread_mutex_unlock(&s->mu);
		pthread_join(s->thread, NULL);
	}
	pf_log("clickhouse: %llu rows inserted in %llu batches; %llu rows wait in the spool; "
	       "dropped: %llu (spool full), %llu (queue full), %llu (refused by the server), "
	       "%llu (unwritable), %llu (damaged in the spool)",
	       (unsigned long long)s->sent_rows, (unsigned long long)s->sent_batches,
	       (unsigned long long)pf_spool__rows(s->spool),
	       (unsigned long long)pf_spool__dropped_rows(s->spool),
	       (unsigned long long)s->q_dropped, (unsigned long long)s->rejected_rows,
	       (unsigned long long)s->lost_rows, (unsigned long long)pf_spool__bad_rows(s->spool));
	free_sink(s);
	curl_global_cleanup();
}

/* ---- behind the sink interface (sink.h) ---- */

struct pf_sink {
	const struct pf_config *cfg; /* the running one */
	struct pf_chsink *ch;
};

static const char *const ch_keys[] = {
    "clickhouseUrl",
    "clickhouseDatabase",
    "clickhouseTable",
    "clickhouseUser",
    "clickhousePasswordFile",
    "clickhouseBatchRows",
    "clickhouseBatchInterval",
    "clickhouseSpoolDirectory",
    "clickhouseSpoolMaxMB",
    "clickhouseTimeout",
    NULL,
};

static bool ch_wanted(const struct pf_config *cfg)
{
	return cfg->ch.url[0] != '\0';
}

static struct pf_sink *ch_start(const struct pf_config *cfg, struct pf_loop *loop)
{
	struct pf_sink *s = calloc(1, sizeof(*s));

	if (!s) {
		pf_log("out of memory");
		return NULL;
	}
	s->cfg = cfg;
	s->ch = pf_chsink__start(&cfg->ch, cfg->output_dir);
	if (!s->ch) {
		int err = errno;

		free(s);
		errno = err;
		return NULL;
	}
	return s;
}

static void ch_take(struct pf_sink *s, const char *lines, size_t len, uint64_t nlines)
{
	pf_chsink__submit(s->ch, lines, len, nlines);
}

static void ch_reconfigure(struct pf_sink *s)
{
	pf_chsink__reconfigure(s->ch, &s->cfg->ch); /* its live keys: batch, interval, timeout */
}

static void ch_stop(struct pf_sink *s)
{
	if (!s)
		return;
	pf_chsink__stop(s->ch);
	free(s);
}

const struct pf_sink_ops pf_sink_clickhouse = {
    .name = "clickhouse",
    .keys = ch_keys,
    .wanted = ch_wanted,
    .start = ch_start,
    .take = ch_take,
    .reconfigure = ch_reconfigure,
    .stop = ch_stop,
};
