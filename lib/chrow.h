/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Flow lines as ClickHouse rows: the table definition and the conversion
 * of one flow-log line into one JSONEachRow row for it. Both come from one
 * column table (lib/chrow.c), so they cannot disagree.
 *
 * The types are chosen to work on ClickHouse 18.16 (Debian 12's server)
 * and on current releases, and to make the usual questions fast: times
 * are DateTime, ports and counters numbers, process_args Array(String).
 * Values the line has as null become the column type's empty value ('' for
 * strings, 0 for numbers, [] for arrays), so no column is Nullable; the
 * label and policy objects are kept as their JSON text.
 *
 * Two columns are the sink's own: run_id (one agent run) and seq (the
 * line's number in that run). Together with host they name a line, so
 * rows inserted twice after a retry can be counted and removed.
 */
#ifndef PF_CHROW_H
#define PF_CHROW_H

#include <stddef.h>
#include <stdint.h>

struct pf_jw;

/*
 * Write the CREATE DATABASE / CREATE TABLE statements for @db.@table into
 * @w (';'-terminated, one statement per paragraph). Returns 0 or the
 * writer's negative errno.
 */
int pf_chrow__schema(struct pf_jw *w, const char *db, const char *table);

/*
 * Append the row for the flow line @line (@len bytes, no '\n') to @w,
 * followed by '\n'. Returns 0, or -EINVAL when the line is not a flow line
 * (then nothing is appended), or the writer's negative errno.
 */
int pf_chrow__append(struct pf_jw *w, const char *line, size_t len, uint64_t run_id, uint64_t seq);

/*
 * A ClickHouse URL taken apart: scheme://[USER[:PASSWORD]@]HOST[:PORT][/PATH].
 * The password is kept only in @pw, so the URL that is logged, printed and
 * handed to libcurl (@base) can never show it.
 */
struct pf_churl {
	char base[1024]; /* the URL without USER:PASSWORD@ */
	char user[256];	 /* percent-decoded; "" when the URL names none */
	char pw[256];	 /* percent-decoded; "" when the URL names none */
	int has_pw;	 /* the URL has a ':' after its user (even an empty password) */
};

/*
 * Split @url into @out. Returns 0, or -EINVAL when it is not an http:// or
 * https:// URL with a host, has a query or fragment, or a part is too long
 * (@out then holds nothing of the password).
 */
int pf_chrow__url_split(const char *url, struct pf_churl *out);

/*
 * @url as it may be shown: a password in it (the text between "USER:" and
 * the '@' ending the authority) replaced by "***". Works on any text, valid
 * URL or not, so error messages can quote what the user gave. Returns @buf.
 */
char *pf_chrow__url_mask(const char *url, char *buf, size_t bufsz);

/* Whether @s is a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 64 bytes). */
int pf_chrow__ident_ok(const char *s);

#endif
