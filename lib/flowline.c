// SPDX-License-Identifier: BSD-2-Clause
#include "flowline.h"

#include <errno.h>
#include <string.h>

#define MAX_DEPTH 32

const char *pf_fl__name(enum pf_fl_field f)
{
	return (unsigned)f < PF_FL_NFIELDS ? pf_rec__fields()[f].name : NULL;
}

int pf_fl__lookup(const char *name, size_t len)
{
	const struct pf_rec_field_info *t = pf_rec__fields();

	for (int i = 0; i < PF_FL_NFIELDS; i++)
		if (t[i].name_len == len && !memcmp(t[i].name, name, len))
			return i;
	return -1;
}

static inline const char *ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
		p++;
	return p;
}

/* @p is just after the opening quote. Returns the closing quote, or NULL. */
static inline const char *str_end(const char *p, const char *end)
{
	for (;;) {
		const char *q = memchr(p, '"', (size_t)(end - p));
		const char *b;

		if (!q)
			return NULL;
		/* An odd run of backslashes before the quote escapes it. */
		b = q;
		while (b > p && b[-1] == '\\')
			b--;
		if (((q - b) & 1) == 0)
			return q;
		p = q + 1;
	}
}

static const char *value(const char *p, const char *end, int depth, struct pf_fl_val *out);

/* A container starting at @p ('[' or '{'). Returns the byte after its end. */
static const char *container(const char *p, const char *end, int depth)
{
	char close = *p == '[' ? ']' : '}';
	int is_obj = *p == '{';

	if (depth >= MAX_DEPTH)
		return NULL;
	p = ws(p + 1, end);
	if (p < end && *p == close)
		return p + 1;
	for (;;) {
		if (is_obj) {
			if (p >= end || *p != '"')
				return NULL;
			p = str_end(p + 1, end);
			if (!p)
				return NULL;
			p = ws(p + 1, end);
			if (p >= end || *p != ':')
				return NULL;
			p = ws(p + 1, end);
		}
		p = value(p, end, depth + 1, NULL);
		if (!p)
			return NULL;
		p = ws(p, end);
		if (p >= end)
			return NULL;
		if (*p == close)
			return p + 1;
		if (*p != ',')
			return NULL;
		p = ws(p + 1, end);
	}
}

static int lit(const char *p, const char *end, const char *word, size_t n)
{
	return (size_t)(end - p) >= n && !memcmp(p, word, n);
}

/* Scan one value at @p; fill @out when given. Returns the byte after it. */
static const char *value(const char *p, const char *end, int depth, struct pf_fl_val *out)
{
	const char *start = p, *q;
	uint8_t type;

	if (p >= end)
		return NULL;
	switch (*p) {
	case '"':
		q = str_end(p + 1, end);
		if (!q)
			return NULL;
		if (out) {
			out->p = p + 1;
			out->len = (uint32_t)(q - p - 1);
			out->type = PF_FLV_STR;
			out->escaped = memchr(p + 1, '\\', (size_t)(q - p - 1)) != NULL;
		}
		return q + 1;
	case '[':
	case '{':
		type = *p == '[' ? PF_FLV_ARR : PF_FLV_OBJ;
		q = container(p, end, depth);
		break;
	case 'n':
		type = PF_FLV_NULL;
		q = lit(p, end, "null", 4) ? p + 4 : NULL;
		break;
	case 't':
		type = PF_FLV_BOOL;
		q = lit(p, end, "true", 4) ? p + 4 : NULL;
		break;
	case 'f':
		type = PF_FLV_BOOL;
		q = lit(p, end, "false", 5) ? p + 5 : NULL;
		break;
	default:
		if (*p != '-' && (*p < '0' || *p > '9'))
			return NULL;
		type = PF_FLV_NUM;
		q = p + 1;
		while (q < end && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' ||
				   *q == 'E' || *q == '+' || *q == '-'))
			q++;
		break;
	}
	if (q && out) {
		out->p = start;
		out->len = (uint32_t)(q - start);
		out->type = type;
		out->escaped = 0;
	}
	return q;
}

int pf_fl__scan(const char *line, size_t len, uint64_t want, struct pf_flowrec *rec)
{
	const char *p = line, *end = line + len, *k;
	const struct pf_rec_field_info *t = pf_rec__fields();
	int next = 0; /* the field expected next, by the contract's order */

	memset(rec, 0, sizeof(*rec));
	if (len > UINT32_MAX)
		return -EINVAL;
	p = ws(p, end);
	if (p >= end || *p != '{')
		return -EINVAL;
	p = ws(p + 1, end);
	if (p < end && *p == '}')
		return ws(p + 1, end) == end ? 0 : -EINVAL;
	for (;;) {
		int f = -1;
		size_t klen;

		if (p >= end || *p != '"')
			return -EINVAL;
		k = p + 1;
		p = str_end(k, end);
		if (!p)
			return -EINVAL;
		klen = (size_t)(p - k);
		if (next < PF_FL_NFIELDS && t[next].name_len == klen &&
		    !memcmp(t[next].name, k, klen))
			f = next;
		else
			f = pf_fl__lookup(k, klen);
		if (f >= 0) {
			next = f + 1;
			rec->seen |= PF_FL_BIT(f);
		}
		p = ws(p + 1, end);
		if (p >= end || *p != ':')
			return -EINVAL;
		p = ws(p + 1, end);
		p = value(p, end, 1, f >= 0 && (want & PF_FL_BIT(f)) ? &rec->v[f] : NULL);
		if (!p)
			return -EINVAL;
		p = ws(p, end);
		if (p >= end)
			return -EINVAL;
		if (*p == '}')
			break;
		if (*p != ',')
			return -EINVAL;
		p = ws(p + 1, end);
	}
	return ws(p + 1, end) == end ? 0 : -EINVAL;
}

int pf_fl__u64(const struct pf_fl_val *v, uint64_t *out)
{
	uint64_t n = 0;

	if (v->type != PF_FLV_NUM || v->len == 0)
		return -EINVAL;
	for (uint32_t i = 0; i < v->len; i++) {
		unsigned d = (unsigned char)v->p[i] - '0';

		if (d > 9 || n > (UINT64_MAX - d) / 10)
			return -EINVAL;
		n = n * 10 + d;
	}
	*out = n;
	return 0;
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

static int hex4(const char *s, size_t n, size_t i, uint32_t *v)
{
	*v = 0;
	if (i + 4 > n)
		return -1;
	for (size_t j = i; j < i + 4; j++) {
		int h = hexval(s[j]);

		if (h < 0)
			return -1;
		*v = *v << 4 | (uint32_t)h;
	}
	return 0;
}

static void put(char *out, size_t cap, size_t *o, char c)
{
	if (*o + 1 < cap)
		out[*o] = c;
	(*o)++;
}

static void put_cp(char *out, size_t cap, size_t *o, uint32_t cp)
{
	if (cp < 0x80) {
		put(out, cap, o, (char)cp);
	} else if (cp < 0x800) {
		put(out, cap, o, (char)(0xc0 | cp >> 6));
		put(out, cap, o, (char)(0x80 | (cp & 0x3f)));
	} else if (cp < 0x10000) {
		put(out, cap, o, (char)(0xe0 | cp >> 12));
		put(out, cap, o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		put(out, cap, o, (char)(0x80 | (cp & 0x3f)));
	} else {
		put(out, cap, o, (char)(0xf0 | cp >> 18));
		put(out, cap, o, (char)(0x80 | ((cp >> 12) & 0x3f)));
		put(out, cap, o, (char)(0x80 | ((cp >> 6) & 0x3f)));
		put(out, cap, o, (char)(0x80 | (cp & 0x3f)));
	}
}

size_t pf_fl__unescape(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0, i = 0;

	while (i < n) {
		const char *b = memchr(s + i, '\\', n - i);
		size_t run = b ? (size_t)(b - (s + i)) : n - i;

		/* Copy the plain run at once. */
		if (o < cap) {
			size_t room = cap - o - 1 < run ? cap - o - 1 : run;

			if (cap && room)
				memcpy(out + o, s + i, room);
		}
		o += run;
		i += run;
		if (i >= n)
			break;
		/* s[i] is a backslash. */
		if (i + 1 >= n) {
			put(out, cap, &o, '\\');
			i++;
			break;
		}
		char c = s[i + 1];
		uint32_t cp, lo;

		i += 2;
		switch (c) {
		case 'n':
			put(out, cap, &o, '\n');
			break;
		case 't':
			put(out, cap, &o, '\t');
			break;
		case 'r':
			put(out, cap, &o, '\r');
			break;
		case 'b':
			put(out, cap, &o, '\b');
			break;
		case 'f':
			put(out, cap, &o, '\f');
			break;
		case 'u':
			if (hex4(s, n, i, &cp)) {
				put(out, cap, &o, '\\');
				put(out, cap, &o, 'u');
				break;
			}
			i += 4;
			if (cp >= 0xd800 && cp <= 0xdbff && i + 6 <= n && s[i] == '\\' &&
			    s[i + 1] == 'u' && !hex4(s, n, i + 2, &lo) && lo >= 0xdc00 &&
			    lo <= 0xdfff) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				i += 6;
			} else if (cp >= 0xd800 && cp <= 0xdfff) {
				cp = 0xfffd;
			}
			put_cp(out, cap, &o, cp);
			break;
		default: /* \" \\ \/ and anything malformed: the character itself */
			put(out, cap, &o, c);
			break;
		}
	}
	if (cap)
		out[o < cap ? o : cap - 1] = '\0';
	return o;
}

int pf_fl__arr_next(const struct pf_fl_val *arr, size_t *pos, struct pf_fl_val *elem)
{
	const char *base, *end, *p;

	if (arr->type != PF_FLV_ARR || arr->len < 2)
		return 0;
	base = arr->p;
	end = arr->p + arr->len - 1; /* the closing bracket */
	p = base + (*pos ? *pos : 1);
	p = ws(p, end);
	if (p < end && *p == ',')
		p = ws(p + 1, end);
	if (p >= end)
		return 0;
	p = value(p, end, 1, elem);
	if (!p)
		return 0;
	*pos = (size_t)(p - base);
	return 1;
}
