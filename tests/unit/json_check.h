/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A small strict JSON (RFC 8259) validator for the tests and the fuzz
 * harnesses, written independently of lib/jsonw.c so that it can judge it:
 *
 *   - strings: no raw byte below 0x20, only the escapes the RFC allows,
 *     \u escapes with four hex digits and surrogates only in proper pairs,
 *     raw bytes strictly well-formed UTF-8 (decoded to a code point and
 *     range-checked, no overlongs, no surrogates, nothing above U+10FFFF);
 *   - numbers by the RFC grammar; literals true, false, null;
 *   - objects reject duplicate keys (a flow line with a key twice is a bug);
 *   - nesting is bounded so hostile input cannot exhaust the stack.
 *
 * Header-only (static functions) so each test and harness can include it.
 */
#ifndef PF_TEST_JSON_CHECK_H
#define PF_TEST_JSON_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define JC_MAX_DEPTH 64
#define JC_MAX_KEYS  256 /* keys per object checked for duplicates */

struct jc {
	const unsigned char *p, *end;
	int depth;
	unsigned char *out; /* decoded string bytes (jc_string), may be NULL */
	size_t out_cap, out_len;
};

static inline void jc_ws(struct jc *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static inline void jc_emit(struct jc *c, const unsigned char *b, size_t n)
{
	if (c->out && c->out_len + n <= c->out_cap)
		memcpy(c->out + c->out_len, b, n);
	c->out_len += n;
}

static inline void jc_emit_cp(struct jc *c, uint32_t cp)
{
	unsigned char b[4];

	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		jc_emit(c, b, 1);
	} else if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | cp >> 6);
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		jc_emit(c, b, 2);
	} else if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | cp >> 12);
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		jc_emit(c, b, 3);
	} else {
		b[0] = (unsigned char)(0xf0 | cp >> 18);
		b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
		b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[3] = (unsigned char)(0x80 | (cp & 0x3f));
		jc_emit(c, b, 4);
	}
}

static inline int jc_hex4(struct jc *c, uint32_t *v)
{
	int i;

	*v = 0;
	if (c->end - c->p < 4)
		return -1;
	for (i = 0; i < 4; i++) {
		unsigned char h = *c->p++;

		*v <<= 4;
		if (h >= '0' && h <= '9')
			*v |= (uint32_t)(h - '0');
		else if (h >= 'a' && h <= 'f')
			*v |= (uint32_t)(h - 'a' + 10);
		else if (h >= 'A' && h <= 'F')
			*v |= (uint32_t)(h - 'A' + 10);
		else
			return -1;
	}
	return 0;
}

/* One raw UTF-8 character starting at c->p (a byte >= 0x80): decode, then
 * check the code point against the length it was encoded with. */
static inline int jc_utf8(struct jc *c)
{
	const unsigned char *s = c->p;
	uint32_t cp, min;
	size_t n, i;

	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
		min = 0x80;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
		min = 0x800;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
		min = 0x10000;
	} else {
		return -1;
	}
	if ((size_t)(c->end - s) < n)
		return -1;
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return -1;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return -1;
	jc_emit(c, s, n);
	c->p += n;
	return 0;
}

static inline int jc_string(struct jc *c)
{
	uint32_t cp, lo;
	unsigned char ch;

	if (c->p >= c->end || *c->p != '"')
		return -1;
	c->p++;
	for (;;) {
		if (c->p >= c->end)
			return -1;
		ch = *c->p;
		if (ch == '"') {
			c->p++;
			return 0;
		}
		if (ch < 0x20)
			return -1;
		if (ch >= 0x80) {
			if (jc_utf8(c))
				return -1;
			continue;
		}
		c->p++;
		if (ch != '\\') {
			jc_emit(c, &ch, 1);
			continue;
		}
		if (c->p >= c->end)
			return -1;
		ch = *c->p++;
		switch (ch) {
		case '"':
		case '\\':
		case '/':
			jc_emit(c, &ch, 1);
			break;
		case 'b':
			jc_emit(c, (const unsigned char *)"\b", 1);
			break;
		case 'f':
			jc_emit(c, (const unsigned char *)"\f", 1);
			break;
		case 'n':
			jc_emit(c, (const unsigned char *)"\n", 1);
			break;
		case 'r':
			jc_emit(c, (const unsigned char *)"\r", 1);
			break;
		case 't':
			jc_emit(c, (const unsigned char *)"\t", 1);
			break;
		case 'u':
			if (jc_hex4(c, &cp))
				return -1;
			if (cp >= 0xdc00 && cp <= 0xdfff)
				return -1; /* lone low surrogate */
			if (cp >= 0xd800 && cp <= 0xdbff) {
				if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u')
					return -1;
				c->p += 2;
				if (jc_hex4(c, &lo) || lo < 0xdc00 || lo > 0xdfff)
					return -1;
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
			}
			jc_emit_cp(c, cp);
			break;
		default:
			return -1;
		}
	}
}

static inline int jc_digits(struct jc *c)
{
	const unsigned char *start = c->p;

	while (c->p < c->end && *c->p >= '0' && *c->p <= '9')
		c->p++;
	return c->p > start ? 0 : -1;
}

static inline int jc_number(struct jc *c)
{
	if (c->p < c->end && *c->p == '-')
		c->p++;
	if (c->p >= c->end)
		return -1;
	if (*c->p == '0')
		c->p++;
	else if (jc_digits(c))
		return -1;
	if (c->p < c->end && *c->p == '.') {
		c->p++;
		if (jc_digits(c))
			return -1;
	}
	if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
		c->p++;
		if (c->p < c->end && (*c->p == '+' || *c->p == '-'))
			c->p++;
		if (jc_digits(c))
			return -1;
	}
	return 0;
}

static inline int jc_lit(struct jc *c, const char *lit)
{
	size_t n = strlen(lit);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, lit, n))
		return -1;
	c->p += n;
	return 0;
}

static inline int jc_value(struct jc *c);

static inline int jc_object(struct jc *c)
{
	const unsigned char *key[JC_MAX_KEYS];
	size_t klen[JC_MAX_KEYS], nkeys = 0, i;
	const unsigned char *k;

	c->p++; /* '{' */
	jc_ws(c);
	if (c->p < c->end && *c->p == '}') {
		c->p++;
		return 0;
	}
	for (;;) {
		jc_ws(c);
		k = c->p;
		if (jc_string(c))
			return -1;
		for (i = 0; i < nkeys; i++)
			if (klen[i] == (size_t)(c->p - k) && !memcmp(key[i], k, klen[i]))
				return -1; /* duplicate key */
		if (nkeys < JC_MAX_KEYS) {
			key[nkeys] = k;
			klen[nkeys++] = (size_t)(c->p - k);
		}
		jc_ws(c);
		if (c->p >= c->end || *c->p != ':')
			return -1;
		c->p++;
		if (jc_value(c))
			return -1;
		jc_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == '}') {
			c->p++;
			return 0;
		}
		if (*c->p != ',')
			return -1;
		c->p++;
	}
}

static inline int jc_array(struct jc *c)
{
	c->p++; /* '[' */
	jc_ws(c);
	if (c->p < c->end && *c->p == ']') {
		c->p++;
		return 0;
	}
	for (;;) {
		if (jc_value(c))
			return -1;
		jc_ws(c);
		if (c->p >= c->end)
			return -1;
		if (*c->p == ']') {
			c->p++;
			return 0;
		}
		if (*c->p != ',')
			return -1;
		c->p++;
	}
}

static inline int jc_value(struct jc *c)
{
	int err;

	jc_ws(c);
	if (c->p >= c->end)
		return -1;
	switch (*c->p) {
	case '{':
	case '[':
		if (++c->depth > JC_MAX_DEPTH)
			return -1;
		err = *c->p == '{' ? jc_object(c) : jc_array(c);
		c->depth--;
		return err;
	case '"':
		return jc_string(c);
	case 't':
		return jc_lit(c, "true");
	case 'f':
		return jc_lit(c, "false");
	case 'n':
		return jc_lit(c, "null");
	default:
		return jc_number(c);
	}
}

/* 0 when @s[0..@n) is exactly one JSON value (whitespace around allowed). */
static inline int json_check(const char *s, size_t n)
{
	struct jc c = {.p = (const unsigned char *)s, .end = (const unsigned char *)s + n};

	if (jc_value(&c))
		return -1;
	jc_ws(&c);
	return c.p == c.end ? 0 : -1;
}

/* 0 when @s[0..@n) is one flow-log line: one compact JSON object, then
 * '\n', and no other newline. */
static inline int json_check_line(const char *s, size_t n)
{
	if (n < 3 || s[0] != '{' || s[n - 1] != '\n' || s[n - 2] != '}')
		return -1;
	if (memchr(s, '\n', n - 1))
		return -1;
	return json_check(s, n - 1);
}

/* Decode the JSON string token @s[0..@n) (quotes included, nothing after)
 * into @out (up to @cap bytes). Returns the decoded length, or -1 when the
 * token is not a valid string or does not fit. */
static inline long json_decode_string(const char *s, size_t n, char *out, size_t cap)
{
	struct jc c = {.p = (const unsigned char *)s,
		       .end = (const unsigned char *)s + n,
		       .out = (unsigned char *)out,
		       .out_cap = cap};

	if (jc_string(&c) || c.p != c.end || c.out_len > cap)
		return -1;
	return (long)c.out_len;
}

#endif
