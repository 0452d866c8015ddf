// SPDX-License-Identifier: BSD-2-Clause
/*
 * JSON writer with a hard cap (see jsonw.h).
 *
 * Every write goes through jw_reserve(), which either makes room for the
 * whole chunk (an escape sequence, a run of safe bytes, a number) or sets
 * the sticky error and writes nothing. So the buffer always ends on a chunk
 * boundary, len never exceeds max, and an output cut by the cap is a prefix
 * of the output the same calls would give without a cap.
 *
 * The flow log writes a few hundred thousand lines a second, almost all of
 * it plain ASCII. The escaper therefore looks for runs of bytes that need no
 * change, eight at a time when it can, and copies each run with one memcpy;
 * only the bytes that need escaping or replacing take the slow path.
 */
#include "jsonw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* First allocation; small lines never realloc again after the first one. */
#define JW_INIT_CAP 512

int pf_jw__init(struct pf_jw *w, size_t max)
{
	memset(w, 0, sizeof(*w));
	w->max = max;
	return 0;
}

void pf_jw__fini(struct pf_jw *w)
{
	if (!w)
		return;
	free(w->buf);
	w->buf = NULL;
	w->len = 0;
	w->cap = 0;
	w->err = 0;
	w->need_comma = 0;
}

void pf_jw__reset(struct pf_jw *w)
{
	w->len = 0;
	w->err = 0;
	w->need_comma = 0;
}

int pf_jw__error(const struct pf_jw *w)
{
	return w->err;
}

/* Room for @n more bytes, or NULL with the sticky error set. Grows by
 * doubling, clamped to max, so a writer that never needs much never holds
 * much. */
static char *jw_reserve(struct pf_jw *w, size_t n)
{
	size_t need, ncap;
	char *nbuf;

	if (w->err)
		return NULL;
	if (n > w->max - w->len) {
		w->err = -ENOSPC;
		return NULL;
	}
	need = w->len + n;
	if (need > w->cap) {
		ncap = w->cap ? w->cap : JW_INIT_CAP;
		while (ncap < need && ncap <= w->max / 2)
			ncap *= 2;
		if (ncap < need || ncap > w->max)
			ncap = w->max;
		nbuf = realloc(w->buf, ncap);
		if (!nbuf) {
			w->err = -ENOMEM;
			return NULL;
		}
		w->buf = nbuf;
		w->cap = ncap;
	}
	return w->buf + w->len;
}

static void jw_put(struct pf_jw *w, const char *s, size_t n)
{
	char *p;

	if (!n)
		return;
	p = jw_reserve(w, n);
	if (!p)
		return;
	memcpy(p, s, n);
	w->len += n;
}

static void jw_putc(struct pf_jw *w, char c)
{
	char *p = jw_reserve(w, 1);

	if (!p)
		return;
	*p = c;
	w->len++;
}

/* Separator before a value: values follow either a key (no comma) or a
 * previous element of the same array (comma). */
static void jw_value_sep(struct pf_jw *w)
{
	if (w->need_comma)
		jw_putc(w, ',');
	w->need_comma = 1;
}

void pf_jw__obj_begin(struct pf_jw *w)
{
	jw_value_sep(w);
	jw_putc(w, '{');
	w->need_comma = 0;
}

void pf_jw__obj_end(struct pf_jw *w)
{
	jw_putc(w, '}');
	w->need_comma = 1;
}

void pf_jw__arr_begin(struct pf_jw *w)
{
	jw_value_sep(w);
	jw_putc(w, '[');
	w->need_comma = 0;
}

void pf_jw__arr_end(struct pf_jw *w)
{
	jw_putc(w, ']');
	w->need_comma = 1;
}

void pf_jw__key(struct pf_jw *w, const char *key)
{
	pf_jw__keyn(w, key, strlen(key));
}

void pf_jw__keyn(struct pf_jw *w, const char *key, size_t n)
{
	size_t comma = w->need_comma ? 1 : 0;
	char *p = jw_reserve(w, comma + n + 3);

	if (!p)
		return;
	if (comma)
		*p++ = ',';
	*p++ = '"';
	memcpy(p, key, n);
	p += n;
	*p++ = '"';
	*p = ':';
	w->len += comma + n + 3;
	w->need_comma = 0;
}

/*
 * Byte classes for the escaper: 0 is copied as is, 1 needs an escape, 2
 * starts (or is part of) a multi-byte sequence that must be validated.
 */
enum { JW_SAFE = 0, JW_ESC = 1, JW_HIGH = 2 };

/* GNU range designators (gcc and clang): everything else is JW_SAFE. */
static const unsigned char jw_class[256] = {
    [0x00 ... 0x1f] = JW_ESC, /* control bytes */
    ['"'] = JW_ESC,
    ['\\'] = JW_ESC,
    [0x7f] = JW_ESC, /* DEL: legal in JSON, but escaped so logs stay printable */
    [0x80 ... 0xff] = JW_HIGH,
};

#define JW_ONES	 0x0101010101010101ULL
#define JW_HIGHS 0x8080808080808080ULL

/* Nonzero when any byte of @v is zero (exact as a truth value). */
static inline uint64_t jw_has_zero(uint64_t v)
{
	return (v - JW_ONES) & ~v & JW_HIGHS;
}

/* Nonzero when any of the 8 bytes at @p is not JW_SAFE: below 0x20, '"',
 * '\\', 0x7f or with the high bit set. */
static inline uint64_t jw_word_unsafe(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return (((v - 0x20 * JW_ONES) | v) & JW_HIGHS) | jw_has_zero(v ^ (0x22 * JW_ONES)) |
	       jw_has_zero(v ^ (0x5c * JW_ONES)) | jw_has_zero(v ^ (0x7f * JW_ONES));
}

/*
 * Length of the well-formed UTF-8 sequence at @p (2..4), or 0 with *@bad set
 * to the length of the maximal ill-formed subpart to replace by one U+FFFD
 * (Unicode 15, section 3.9, "U+FFFD Substitution of Maximal Subparts", as
 * the WHATWG decoder does). The second-byte ranges exclude overlong forms
 * (E0, F0), surrogates (ED) and code points above U+10FFFF (F4).
 */
static size_t jw_utf8_seq(const unsigned char *p, size_t avail, size_t *bad)
{
	unsigned char c = p[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	*bad = 1;
	if (c < 0xc2 || c > 0xf4)
		return 0;
	if (c < 0xe0) {
		need = 2;
	} else if (c < 0xf0) {
		need = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else {
		need = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	}
	if (avail < 2 || p[1] < lo || p[1] > hi)
		return 0;
	for (i = 2; i < need; i++) {
		if (i >= avail || (p[i] & 0xc0) != 0x80) {
			*bad = i;
			return 0;
		}
	}
	return need;
}

static void jw_escape_byte(struct pf_jw *w, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf]};

	switch (c) {
	case '"':
		jw_put(w, "\\\"", 2);
		return;
	case '\\':
		jw_put(w, "\\\\", 2);
		return;
	case '\n':
		jw_put(w, "\\n", 2);
		return;
	case '\t':
		jw_put(w, "\\t", 2);
		return;
	case '\r':
		jw_put(w, "\\r", 2);
		return;
	case '\b':
		jw_put(w, "\\b", 2);
		return;
	case '\f':
		jw_put(w, "\\f", 2);
		return;
	default:
		jw_put(w, e, sizeof(e));
	}
}

void pf_jw__escape(struct pf_jw *w, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + n, *run = p;
	size_t seq, bad;

	if (w->err)
		return;
	while (p < end) {
		/* The common case: a run of bytes that are copied unchanged. */
		while (end - p >= 8 && !jw_word_unsafe(p))
			p += 8;
		while (p < end && jw_class[*p] == JW_SAFE)
			p++;
		if (p == end)
			break;
		if (jw_class[*p] == JW_HIGH) {
			seq = jw_utf8_seq(p, (size_t)(end - p), &bad);
			if (seq) {
				/* Well-formed: part of the run. */
				p += seq;
				continue;
			}
			jw_put(w, (const char *)run, (size_t)(p - run));
			jw_put(w, "\xef\xbf\xbd", 3);
			p += bad;
		} else {
			jw_put(w, (const char *)run, (size_t)(p - run));
			jw_escape_byte(w, *p);
			p++;
		}
		run = p;
	}
	jw_put(w, (const char *)run, (size_t)(p - run));
}

void pf_jw__strn(struct pf_jw *w, const char *s, size_t n)
{
	jw_value_sep(w);
	jw_putc(w, '"');
	pf_jw__escape(w, s, n);
	jw_putc(w, '"');
}

/*
 * Input bytes of the longest prefix of @n bytes at @p, in whole characters
 * (a well-formed sequence, or an ill-formed subpart that becomes U+FFFD),
 * whose decoded UTF-8 is at most @budget bytes. Escapes count as the one
 * byte they stand for.
 */
static size_t jw_fit(const unsigned char *p, size_t n, size_t budget)
{
	size_t i = 0, out = 0, in, o, bad;

	while (i < n) {
		if (p[i] < 0x80) {
			in = 1;
			o = 1;
		} else {
			in = jw_utf8_seq(p + i, n - i, &bad);
			o = in;
			if (!in) {
				in = bad;
				o = 3;
			}
		}
		if (o > budget - out)
			break;
		out += o;
		i += in;
	}
	return i;
}

void pf_jw__strn_max(struct pf_jw *w, const char *s, size_t n, size_t max, const char *mark)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t mlen = strlen(mark), keep;

	if (jw_fit(p, n, max) == n || mlen > max) {
		pf_jw__strn(w, s, n);
		return;
	}
	keep = jw_fit(p, n, max - mlen);
	jw_value_sep(w);
	jw_putc(w, '"');
	pf_jw__escape(w, s, keep);
	pf_jw__escape(w, mark, mlen);
	jw_putc(w, '"');
}

void pf_jw__json(struct pf_jw *w, const char *s, size_t n)
{
	jw_value_sep(w);
	jw_put(w, s, n);
}

/* A NULL string is written as null rather than crashing a flush. */
void pf_jw__str(struct pf_jw *w, const char *s)
{
	if (!s) {
		pf_jw__null(w);
		return;
	}
	pf_jw__strn(w, s, strlen(s));
}

/* Decimal digits without the printf machinery: numbers are most of a line. */
static void jw_number(struct pf_jw *w, int neg, uint64_t v)
{
	char tmp[21];
	char *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	if (neg)
		*--p = '-';
	jw_put(w, p, (size_t)(tmp + sizeof(tmp) - p));
}

void pf_jw__u64(struct pf_jw *w, uint64_t v)
{
	jw_value_sep(w);
	jw_number(w, 0, v);
}

void pf_jw__i64(struct pf_jw *w, int64_t v)
{
	jw_value_sep(w);
	/* Negate in unsigned arithmetic so INT64_MIN does not overflow. */
	if (v < 0)
		jw_number(w, 1, (uint64_t)0 - (uint64_t)v);
	else
		jw_number(w, 0, (uint64_t)v);
}

void pf_jw__null(struct pf_jw *w)
{
	jw_value_sep(w);
	jw_put(w, "null", 4);
}

void pf_jw__bool(struct pf_jw *w, int v)
{
	jw_value_sep(w);
	if (v)
		jw_put(w, "true", 4);
	else
		jw_put(w, "false", 5);
}

/* Raw bytes end a line (or carry pre-rendered text between values); what
 * follows starts a new top-level value, so no comma is owed. */
void pf_jw__raw(struct pf_jw *w, const char *s, size_t n)
{
	jw_put(w, s, n);
	w->need_comma = 0;
}
