/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ClickHouse sink: every line written to flows.log is also inserted
 * as a row into a ClickHouse table, over its HTTP interface (JSONEachRow),
 * from a sender thread, through a bounded on-disk spool.
 *
 * The options are keys of the configuration table (agent/config.c,
 * clickhouse*): YAML file, PROCFLOW_CLICKHOUSE_* variables, --clickhouse-*
 * flags, --print-config (the URL's password masked). The batch size, the
 * batch interval and the timeout change on reload; the rest on restart.
 */
#ifndef PF_SINK_CLICKHOUSE_H
#define PF_SINK_CLICKHOUSE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PF_CH_URL_MAX  1024
#define PF_CH_NAME_MAX 65 /* a plain name: 64 bytes and the NUL */
#define PF_CH_PATH_MAX 4096

struct pf_ch_config {
	char url[PF_CH_URL_MAX];	    /* http://host:8123; "": the sink is off */
	char db[PF_CH_NAME_MAX];	    /* database */
	char table[PF_CH_NAME_MAX];	    /* table */
	char user[256];			    /* "": the URL's, else the server's default user */
	char password_file[PF_CH_PATH_MAX]; /* "": none; else its first line is the password */
	char spool_dir[PF_CH_PATH_MAX];	    /* "": <output-dir>/clickhouse-spool */
	unsigned batch_rows;		    /* a batch is sent when it has this many rows... */
	unsigned batch_interval_s;	    /* ...or is this old */
	unsigned spool_max_mb;		    /* cap of the on-disk spool */
	unsigned timeout_s;		    /* one HTTP request, connection included */
};

/*
 * The configuration table's checks of clickhouseUrl (an http:// or
 * https:// URL with a host and no query; the message masks a password) and
 * of clickhouseDatabase / clickhouseTable (plain names, no SQL). Return 0,
 * or -EINVAL with why in @why.
 */
int pf_ch_check_url(const char *text, char *why, size_t whysz);
int pf_ch_check_name(const char *text, char *why, size_t whysz);

/* `procflow clickhouse-schema`: print the table definition. Returns an exit code. */
int pf_ch_print_schema(const struct pf_ch_config *c);

struct pf_chsink;

/*
 * Start the sink: read the password file, open the spool (whatever an
 * earlier run left there is sent first), start the sender thread.
 * @output_dir gives the default spool directory; @host is logged.
 * Returns NULL after a message saying why (errno EINVAL: a configuration
 * the user must fix).
 */
struct pf_chsink *pf_chsink__start(const struct pf_ch_config *c, const char *output_dir);

/*
 * Hand over the lines of one flush (@len bytes, @nlines whole lines). It
 * copies them and returns at once; never waits for the network. When the
 * in-memory queue is full (the sender is stuck longer than a request
 * timeout) the lines are dropped for ClickHouse and counted; flows.log has
 * them.
 */
void pf_chsink__submit(struct pf_chsink *s, const char *buf, size_t len, uint64_t nlines);

/*
 * A reload: take @c's batch size, batch interval and timeout (the keys that
 * change live) from the next batch on. Accepts NULL.
 */
void pf_chsink__reconfigure(struct pf_chsink *s, const struct pf_ch_config *c);

/*
 * Stop: the sender seals what it holds into the spool, tries to deliver
 * for at most a request timeout, and exits; what is left stays in the
 * spool for the next run. Logs the totals. Accepts NULL.
 */
void pf_chsink__stop(struct pf_chsink *s);

#endif
