/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The ClickHouse sink: every line written to flows.log is also inserted
 * as a row into a ClickHouse table, over its HTTP interface (JSONEachRow),
 * from a sender thread, through a bounded on-disk spool.
 *
 * The options live in one table in sink_clickhouse.c: the command line
 * (`procflow run --clickhouse-...`) is generated from it, and a config
 * file can set the same options by name with pf_ch_config__set().
 */
#ifndef PF_SINK_CLICKHOUSE_H
#define PF_SINK_CLICKHOUSE_H

#include <stdint.h>
#include <stdio.h>

struct option;

struct pf_ch_config {
	const char *url;	   /* http://host:8123; NULL: the sink is off */
	const char *db;		   /* database */
	const char *table;	   /* table */
	const char *user;	   /* NULL: ClickHouse's default user */
	const char *password_file; /* first line is the password */
	const char *spool_dir;	   /* NULL: <output-dir>/clickhouse-spool */
	unsigned batch_rows;	   /* a batch is sent when it has this many rows... */
	unsigned batch_interval_s; /* ...or is this old */
	unsigned spool_max_mb;	   /* cap of the on-disk spool */
	unsigned timeout_s;	   /* one HTTP request, connection included */
};

void pf_ch_config__defaults(struct pf_ch_config *c);

/* getopt_long() values of the sink's options are PF_CH_OPT_BASE + index. */
#define PF_CH_OPT_BASE 0x1000

/* Number of sink options; fill @out (room for that many) with their getopt entries. */
int pf_ch_config__options(struct option *out, int room);
/*
 * Set the option with getopt value @id (PF_CH_OPT_BASE + index) or, for
 * pf_ch_config__set(), named @name ("clickhouse-url", ...), to @value.
 * Returns 0, or -EINVAL after a message on stderr; -ENOENT for an unknown
 * name. Strings are kept by reference.
 */
int pf_ch_config__set_id(struct pf_ch_config *c, int id, const char *value);
int pf_ch_config__set(struct pf_ch_config *c, const char *name, const char *value);
/* The options' help lines, for --help. */
void pf_ch_config__help(FILE *out);

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
 * Stop: the sender seals what it holds into the spool, tries to deliver
 * for at most a request timeout, and exits; what is left stays in the
 * spool for the next run. Logs the totals. Accepts NULL.
 */
void pf_chsink__stop(struct pf_chsink *s);

#endif
