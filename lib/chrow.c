// SPDX-License-Identifier: BSD-2-Clause
#include "chrow.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "flowline.h"
#include "jsonw.h"
#include "record.h"

static const char *const ch_type[] = {
    [PF_RC_TIME] = "DateTime",
    [PF_RC_STR] = "String",
    [PF_RC_U16] = "UInt16",
    [PF_RC_U32] = "UInt32",
    [PF_RC_U64] = "UInt64",
    [PF_RC_ARR_STR] = "Array(String)",
    [PF_RC_ARR_U16] = "Array(UInt16)",
    [PF_RC_JSON] = "String",
};

/* Every field of the record (lib/record.h), in its order, is a column of its
 * name; a line of an older key set fills the columns it lacks with 0. */

int pf_chrow__ident_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > 64 || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return 0;
	}
	return 1;
}

static void text(struct pf_jw *w, const char *s)
{
	pf_jw__raw(w, s, strlen(s));
}

int pf_chrow__schema(struct pf_jw *w, const char *db, const char *table)
{
	const struct pf_rec_field_info *t = pf_rec__fields();
	char line[160];

	if (!pf_chrow__ident_ok(db) || !pf_chrow__ident_ok(table))
		return -EINVAL;
	snprintf(line, sizeof(line), "CREATE DATABASE IF NOT EXISTS %s;\n\n", db);
	text(w, line);
	snprintf(line, sizeof(line), "CREATE TABLE IF NOT EXISTS %s.%s\n(\n", db, table);
	text(w, line);
	for (size_t i = 0; i < PF_REC_NFIELDS; i++) {
		snprintf(line, sizeof(line), "    %s %s,\n", t[i].name, ch_type[t[i].chtype]);
		text(w, line);
	}
	text(w, "    run_id UInt64,\n"
		"    seq UInt64\n"
		")\n"
		"ENGINE = MergeTree()\n"
		"PARTITION BY toYYYYMMDD(start_time)\n"
		"ORDER BY (host, start_time, process_name);\n");
	return pf_jw__error(w);
}

static void num_col(struct pf_jw *w, const struct pf_fl_val *v, uint64_t max)
{
	uint64_t n;

	if (pf_fl__u64(v, &n) || n > max)
		n = 0;
	pf_jw__u64(w, n);
}

int pf_chrow__append(struct pf_jw *w, const char *line, size_t len, uint64_t run_id, uint64_t seq)
{
	const struct pf_rec_field_info *t = pf_rec__fields();
	struct pf_flowrec r;
	uint64_t tm;

	if (pf_fl__scan(line, len, PF_FL_ALL, &r) || pf_fl__u64(&r.v[PF_FL_START_TIME], &tm) ||
	    pf_fl__u64(&r.v[PF_FL_END_TIME], &tm))
		return -EINVAL;
	pf_jw__obj_begin(w);
	for (size_t i = 0; i < PF_REC_NFIELDS; i++) {
		const struct pf_fl_val *v = &r.v[i];

		pf_jw__keyn(w, t[i].name, t[i].name_len);
		switch ((enum pf_rec_chtype)t[i].chtype) {
		case PF_RC_TIME:
			num_col(w, v, UINT32_MAX); /* DateTime is 32-bit */
			break;
		case PF_RC_U16:
			num_col(w, v, UINT16_MAX);
			break;
		case PF_RC_U32:
			num_col(w, v, UINT32_MAX);
			break;
		case PF_RC_U64:
			num_col(w, v, UINT64_MAX);
			break;
		case PF_RC_STR:
			/* The line's string is valid JSON already: copy it. */
			if (v->type == PF_FLV_STR) {
				pf_jw__json(w, "\"", 1);
				pf_jw__raw(w, v->p, v->len);
				pf_jw__raw(w, "\"", 1);
				w->need_comma = 1;
			} else if (v->type == PF_FLV_NUM || v->type == PF_FLV_BOOL) {
				pf_jw__strn(w, v->p, v->len);
			} else {
				pf_jw__str(w, "");
			}
			break;
		case PF_RC_ARR_STR:
		case PF_RC_ARR_U16:
			if (v->type == PF_FLV_ARR)
				pf_jw__json(w, v->p, v->len);
			else
				pf_jw__json(w, "[]", 2);
			break;
		case PF_RC_JSON:
			if (v->type == PF_FLV_OBJ || v->type == PF_FLV_ARR)
				pf_jw__strn(w, v->p, v->len);
			else
				pf_jw__str(w, "");
			break;
		}
	}
	pf_jw__key(w, "run_id");
	pf_jw__u64(w, run_id);
	pf_jw__key(w, "seq");
	pf_jw__u64(w, seq);
	pf_jw__obj_end(w);
	pf_jw__raw(w, "\n", 1);
	return pf_jw__error(w);
}

/* ---- the server's URL ---- */

/* Where the authority of @url starts and ends, and its last '@' (NULL: none). */
static void authority(const char *url, const char **start, const char **end, const char **at)
{
	const char *s = strstr(url, "://");

	s = s ? s + 3 : url;
	*start = s;
	*end = s + strcspn(s, "/?#");
	*at = NULL;
	for (const char *p = s; p < *end; p++)
		if (*p == '@')
			*at = p;
}

char *pf_chrow__url_mask(const char *url, char *buf, size_t bufsz)
{
	const char *start, *end, *at, *colon;

	if (!bufsz)
		return buf;
	authority(url, &start, &end, &at);
	colon = at ? memchr(start, ':', (size_t)(at - start)) : NULL;
	if (!colon)
		snprintf(buf, bufsz, "%s", url);
	else
		snprintf(buf, bufsz, "%.*s***%s", (int)(colon + 1 - url), url, at);
	return buf;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode @n bytes of @s into @out; -EINVAL on a bad escape, a NUL or no room. */
static int pct_decode(const char *s, size_t n, char *out, size_t outsz)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = i + 2 < n ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0)
				return -EINVAL;
			c = hi * 16 + lo;
			i += 2;
		}
		if (!c || o + 1 >= outsz)
			return -EINVAL;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return 0;
}

int pf_chrow__url_split(const char *url, struct pf_churl *out)
{
	const char *start, *end, *at, *colon;
	size_t pre;

	memset(out, 0, sizeof(*out));
	if (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))
		return -EINVAL;
	authority(url, &start, &end, &at);
	if (strpbrk(url, "?#"))
		return -EINVAL;
	if ((at ? end - (at + 1) : end - start) == 0)
		return -EINVAL; /* no host */
	pre = (size_t)(start - url);
	if (at) {
		colon = memchr(start, ':', (size_t)(at - start));
		if (pct_decode(start, (size_t)((colon ? colon : at) - start), out->user,
			       sizeof(out->user)) ||
		    (colon &&
		     pct_decode(colon + 1, (size_t)(at - colon - 1), out->pw, sizeof(out->pw))))
			goto bad;
		out->has_pw = colon != NULL;
		start = at + 1;
	}
	if ((size_t)snprintf(out->base, sizeof(out->base), "%.*s%s", (int)pre, url, start) >=
	    sizeof(out->base))
		goto bad;
	return 0;
bad:
	explicit_bzero(out, sizeof(*out));
	return -EINVAL;
}
