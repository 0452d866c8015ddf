// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for `procflow query`'s parsers: the line scanner
 * (pf_fl__scan and what reads its values: numbers, array elements,
 * unescaping), the filters run over a scanned line, the table's cell
 * formatter, and the filter value parsers (durations, times, CIDRs).
 *
 * A flow file is written by the agent but read by whoever runs query, and
 * files get cut, concatenated and corrupted: the input is arbitrary bytes.
 *
 * Beyond the sanitizers, two oracles, from the independent validator in
 * tests/unit/json_check.h:
 *   - every JSON object it accepts (nested at most 30 deep) is accepted by
 *     the scanner: the scanner never refuses a valid line;
 *   - every string value the scanner returns decodes, with
 *     pf_fl__unescape(), to what the validator decodes;
 *   - a valid line becomes a valid ClickHouse row (pf_chrow__append).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/json_check.h"
#include "chrow.h"
#include "flowline.h"
#include "jsonw.h"
#include "query.h"

static int depth_of(const uint8_t *d, size_t n)
{
	int depth = 0, max = 0;
	bool in_str = false;

	for (size_t i = 0; i < n; i++) {
		if (in_str) {
			if (d[i] == '\\')
				i++;
			else if (d[i] == '"')
				in_str = false;
		} else if (d[i] == '"') {
			in_str = true;
		} else if (d[i] == '{' || d[i] == '[') {
			if (++depth > max)
				max = depth;
		} else if (d[i] == '}' || d[i] == ']') {
			depth--;
		}
	}
	return max;
}

static void check_string(const struct pf_fl_val *v)
{
	char *mine, *ref;
	size_t n, cap = (size_t)v->len * 4 + 8;
	long rn;

	mine = malloc(cap);
	ref = malloc(cap);
	if (!mine || !ref)
		goto out;
	n = pf_fl__unescape(v->p, v->len, mine, cap);
	if (n >= cap || strlen(mine) > n)
		abort();
	/* The scanned bytes are inside quotes in the input. */
	rn = json_decode_string(v->p - 1, (size_t)v->len + 2, ref, cap);
	if (rn >= 0 && ((size_t)rn != n || memcmp(mine, ref, n)))
		abort();
	/* And a short buffer is never overrun, always terminated. */
	char small[5];

	pf_fl__unescape(v->p, v->len, small, sizeof(small));
	if (!memchr(small, '\0', sizeof(small)))
		abort();
out:
	free(mine);
	free(ref);
}

static void use_record(const struct pf_flowrec *r)
{
	static struct pf_query q;
	static bool init;
	char err[128], cell[256];

	if (!init) {
		/* A filter of every kind, so every matcher runs. */
		pf_query__add(&q, "since", "3650d", 1795790000, err, sizeof(err));
		pf_query__add(&q, "to", "2100-01-01T00:00:00Z", 0, err, sizeof(err));
		pf_query__add(&q, "process", "*c*", 0, err, sizeof(err));
		pf_query__add(&q, "args", "-", 0, err, sizeof(err));
		pf_query__add(&q, "pid", "42", 0, err, sizeof(err));
		pf_query__add(&q, "ip", "0.0.0.0/0", 0, err, sizeof(err));
		pf_query__add(&q, "dst", "::/0", 0, err, sizeof(err));
		pf_query__add(&q, "src", "198.18.0.0/15", 0, err, sizeof(err));
		pf_query__add(&q, "not-process", "*z*", 0, err, sizeof(err));
		pf_query__add(&q, "port", "80,1-1024", 0, err, sizeof(err));
		pf_query__add(&q, "proto", "tcp", 0, err, sizeof(err));
		pf_query__add(&q, "reporter", "src", 0, err, sizeof(err));
		pf_query__add(&q, "reporter", "dst", 0, err, sizeof(err));
		pf_query__add(&q, "action", "allow", 0, err, sizeof(err));
		init = true;
	}
	(void)pf_query__match(&q, r);
	for (int f = 0; f < PF_FL_NFIELDS; f++) {
		const struct pf_fl_val *v = &r->v[f];
		struct pf_fl_val e;
		size_t pos = 0;
		uint64_t n;

		(void)pf_fl__u64(v, &n);
		if (v->type == PF_FLV_STR) {
			check_string(v);
			pf_fmt_cell(v->p, v->len, 12, f & 1, cell, sizeof(cell));
			if (!memchr(cell, '\0', sizeof(cell)))
				abort();
		}
		for (int k = 0; k < 1000 && pf_fl__arr_next(v, &pos, &e); k++) {
			if (pos > v->len)
				abort();
			if (e.type == PF_FLV_STR)
				check_string(&e);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pf_flowrec r;
	char *s;

	if (size == 0)
		return 0;
	if (data[0] == 'P' && size < 256) {
		/* The value parsers take C strings. */
		struct pf_cidr c;
		uint64_t v;

		s = malloc(size);
		if (!s)
			return 0;
		memcpy(s, data + 1, size - 1);
		s[size - 1] = '\0';
		pf_parse_duration(s, &v);
		pf_parse_time(s, &v);
		if (!pf_parse_cidr(s, &c) && c.bits > 128)
			abort();
		pf_cidr__contains_text(&c, s, size - 1);
		free(s);
		return 0;
	}
	/* The scanner gets an allocation of exactly the input's size. */
	s = malloc(size);
	if (!s)
		return 0;
	memcpy(s, data, size);
	if (pf_fl__scan(s, size, PF_FL_ALL, &r) == 0) {
		struct pf_jw w;

		use_record(&r);
		pf_jw__init(&w, 1 << 22);
		if (pf_chrow__append(&w, s, size, 1, 2) == 0 && !json_check(s, size) &&
		    json_check_line(w.buf, w.len))
			abort(); /* a valid line made an invalid row */
		pf_jw__fini(&w);
	} else if (!json_check(s, size) && depth_of(data, size) <= 30) {
		size_t i = 0;

		while (i < size && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
			i++;
		if (i < size && s[i] == '{')
			abort(); /* a valid object refused */
	}
	free(s);
	return 0;
}
