// SPDX-License-Identifier: BSD-2-Clause
/*
 * The JSON writer against hostile strings. Argument strings come from any
 * process on the node, so every byte value, every kind of broken UTF-8 and
 * very long inputs must still give valid JSON, and the cap must hold
 * whatever is written. Every complete output is run through the strict
 * validator in json_check.h.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json_check.h"
#include "jsonw.h"

#define BIG (1u << 24)

/* The writer's bytes as a NUL-terminated copy, for string comparisons. */
static char *jw_text(const struct pf_jw *w)
{
	char *s = malloc(w->len + 1);

	assert_non_null(s);
	if (w->len)
		memcpy(s, w->buf, w->len);
	s[w->len] = '\0';
	return s;
}

static void assert_jw_eq(const struct pf_jw *w, const char *expect, size_t n)
{
	assert_int_equal(pf_jw__error(w), 0);
	assert_int_equal(w->len, n);
	if (memcmp(w->buf, expect, n)) {
		char *got = jw_text(w);

		print_error("got:    %s\nexpect: %.*s\n", got, (int)n, expect);
		free(got);
		fail();
	}
	assert_int_equal(json_check(w->buf, w->len), 0);
}

/* pf_jw__strn(@in) must give exactly the JSON string @expect, and that
 * string, inside an object on a line, must validate. */
static void check_strn(const char *in, size_t n, const char *expect, size_t expect_len)
{
	struct pf_jw w;

	pf_jw__init(&w, BIG);
	pf_jw__strn(&w, in, n);
	assert_jw_eq(&w, expect, expect_len);

	pf_jw__reset(&w);
	pf_jw__obj_begin(&w);
	pf_jw__key(&w, "k");
	pf_jw__strn(&w, in, n);
	pf_jw__obj_end(&w);
	pf_jw__raw(&w, "\n", 1);
	assert_int_equal(pf_jw__error(&w), 0);
	assert_int_equal(json_check_line(w.buf, w.len), 0);
	pf_jw__fini(&w);
}

#define CHECK(in, expect) check_strn(in, sizeof(in) - 1, expect, sizeof(expect) - 1)

static void test_structure(void **state)
{
	static const char expect[] = "{\"a\":1,\"b\":[1,-2,{\"c\":null,\"d\":[]},[true,false]],"
				     "\"e\":{},\"f\":\"x\"}\n{\"g\":[\"y\",\"z\"]}\n";
	struct pf_jw w;

	pf_jw__init(&w, BIG);
	pf_jw__obj_begin(&w);
	pf_jw__key(&w, "a");
	pf_jw__u64(&w, 1);
	pf_jw__key(&w, "b");
	pf_jw__arr_begin(&w);
	pf_jw__u64(&w, 1);
	pf_jw__i64(&w, -2);
	pf_jw__obj_begin(&w);
	pf_jw__key(&w, "c");
	pf_jw__null(&w);
	pf_jw__key(&w, "d");
	pf_jw__arr_begin(&w);
	pf_jw__arr_end(&w);
	pf_jw__obj_end(&w);
	pf_jw__arr_begin(&w);
	pf_jw__bool(&w, 1);
	pf_jw__bool(&w, 0);
	pf_jw__arr_end(&w);
	pf_jw__arr_end(&w);
	pf_jw__key(&w, "e");
	pf_jw__obj_begin(&w);
	pf_jw__obj_end(&w);
	pf_jw__key(&w, "f");
	pf_jw__str(&w, "x");
	pf_jw__obj_end(&w);
	pf_jw__raw(&w, "\n", 1);
	/* A second line after raw "\n": no stray comma before it. */
	pf_jw__obj_begin(&w);
	pf_jw__key(&w, "g");
	pf_jw__arr_begin(&w);
	pf_jw__str(&w, "y");
	pf_jw__str(&w, "z");
	pf_jw__arr_end(&w);
	pf_jw__obj_end(&w);
	pf_jw__raw(&w, "\n", 1);

	assert_int_equal(pf_jw__error(&w), 0);
	assert_int_equal(w.len, sizeof(expect) - 1);
	assert_memory_equal(w.buf, expect, sizeof(expect) - 1);
	/* Each line on its own is a valid line. */
	{
		const char *nl = memchr(w.buf, '\n', w.len);
		size_t first = (size_t)(nl - w.buf) + 1;

		assert_int_equal(json_check_line(w.buf, first), 0);
		assert_int_equal(json_check_line(w.buf + first, w.len - first), 0);
	}
	pf_jw__fini(&w);
}

static void test_numbers(void **state)
{
	static const char expect[] = "[0,9,10,18446744073709551615,-9223372036854775808,"
				     "9223372036854775807,-1,0]";
	struct pf_jw w;

	pf_jw__init(&w, BIG);
	pf_jw__arr_begin(&w);
	pf_jw__u64(&w, 0);
	pf_jw__u64(&w, 9);
	pf_jw__u64(&w, 10);
	pf_jw__u64(&w, UINT64_MAX);
	pf_jw__i64(&w, INT64_MIN);
	pf_jw__i64(&w, INT64_MAX);
	pf_jw__i64(&w, -1);
	pf_jw__i64(&w, 0);
	pf_jw__arr_end(&w);
	assert_jw_eq(&w, expect, sizeof(expect) - 1);
	pf_jw__fini(&w);
}

static void test_str_null_and_empty(void **state)
{
	struct pf_jw w;

	pf_jw__init(&w, BIG);
	pf_jw__arr_begin(&w);
	pf_jw__str(&w, NULL);
	pf_jw__str(&w, "");
	pf_jw__strn(&w, "abc", 0);
	pf_jw__arr_end(&w);
	assert_jw_eq(&w, "[null,\"\",\"\"]", 12);
	pf_jw__fini(&w);
}

static void test_quotes_backslashes(void **state)
{
	CHECK("a\"b\\c", "\"a\\\"b\\\\c\"");
	CHECK("\"\"\\\\", "\"\\\"\\\"\\\\\\\\\"");
	CHECK("\\u0041", "\"\\\\u0041\"");
	CHECK("\\", "\"\\\\\"");
	CHECK("\"", "\"\\\"\"");
	/* '/' needs no escape and gets none. */
	CHECK("/usr/bin/curl", "\"/usr/bin/curl\"");
}

/* The expected escape of one ASCII byte, spelled out independently. */
static const char *ascii_escape(unsigned c, char tmp[8])
{
	static const char hex[] = "0123456789abcdef";

	switch (c) {
	case '"':
		return "\\\"";
	case '\\':
		return "\\\\";
	case '\b':
		return "\\b";
	case '\f':
		return "\\f";
	case '\n':
		return "\\n";
	case '\r':
		return "\\r";
	case '\t':
		return "\\t";
	}
	if (c < 0x20 || c == 0x7f) {
		memcpy(tmp, "\\u00", 4);
		tmp[4] = hex[c >> 4];
		tmp[5] = hex[c & 15];
		tmp[6] = '\0';
		return tmp;
	}
	tmp[0] = (char)c;
	tmp[1] = '\0';
	return tmp;
}

/* Every byte value alone, and every byte between two letters (the run and
 * the escape paths meet). Bytes >= 0x80 alone are never valid UTF-8. */
static void test_every_byte(void **state)
{
	char in[3], expect[32], tmp[8];
	const char *e;
	unsigned c;
	size_t n;

	for (c = 0; c < 256; c++) {
		e = c < 0x80 ? ascii_escape(c, tmp) : "\xef\xbf\xbd";
		in[0] = (char)c;
		n = (size_t)snprintf(expect, sizeof(expect), "\"%s\"", e);
		check_strn(in, 1, expect, n);

		in[0] = 'a';
		in[1] = (char)c;
		in[2] = 'z';
		n = (size_t)snprintf(expect, sizeof(expect), "\"a%sz\"", e);
		check_strn(in, 3, expect, n);
	}
	CHECK("\x7f", "\"\\u007f\"");
	CHECK("\x1b[31m", "\"\\u001b[31m\"");
	CHECK("a\nb\tc\r", "\"a\\nb\\tc\\r\"");
	/* An embedded NUL is data too. */
	check_strn("a\0b", 3, "\"a\\u0000b\"", 10);
}

/* Long runs with one bad byte at every position: the 8-byte scan and the
 * byte-wise tail must agree wherever the byte falls. */
static void test_bad_byte_every_offset(void **state)
{
	static const unsigned char bad[] = {0x00, 0x1f, '"', '\\', 0x7f, 0x80, 0xff, 0x20};
	char in[40], expect[64], tmp[8];
	size_t i, b, n, pos;
	const char *e;

	for (b = 0; b < sizeof(bad); b++) {
		for (pos = 0; pos < sizeof(in); pos++) {
			memset(in, 'x', sizeof(in));
			in[pos] = (char)bad[b];
			e = bad[b] < 0x80 ? ascii_escape(bad[b], tmp) : "\xef\xbf\xbd";
			n = 0;
			expect[n++] = '"';
			for (i = 0; i < sizeof(in); i++) {
				if (i == pos) {
					memcpy(expect + n, e, strlen(e));
					n += strlen(e);
				} else {
					expect[n++] = 'x';
				}
			}
			expect[n++] = '"';
			check_strn(in, sizeof(in), expect, n);
		}
	}
}

static void test_valid_utf8_preserved(void **state)
{
	static const char *valid[] = {
	    "\xc2\x80",		/* U+0080, smallest 2-byte */
	    "\xdf\xbf",		/* U+07FF */
	    "\xe0\xa0\x80",	/* U+0800, smallest 3-byte */
	    "\xed\x9f\xbf",	/* U+D7FF, just below the surrogates */
	    "\xee\x80\x80",	/* U+E000, just above them */
	    "\xef\xbf\xbd",	/* U+FFFD itself */
	    "\xef\xbf\xbf",	/* U+FFFF (a noncharacter, but well-formed) */
	    "\xf0\x90\x80\x80", /* U+10000, smallest 4-byte */
	    "\xf4\x8f\xbf\xbf", /* U+10FFFF, the largest */
	    "caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80 \xd0\x9f\xd1\x80\xd0\xb8",
	    "\xe2\x80\xa8\xe2\x80\xa9", /* U+2028/2029: valid JSON as raw bytes */
	};
	char expect[128], decoded[128];
	size_t i, n;
	long d;

	for (i = 0; i < sizeof(valid) / sizeof(valid[0]); i++) {
		n = (size_t)snprintf(expect, sizeof(expect), "\"%s\"", valid[i]);
		check_strn(valid[i], strlen(valid[i]), expect, n);
		d = json_decode_string(expect, n, decoded, sizeof(decoded));
		assert_int_equal(d, (long)strlen(valid[i]));
		assert_memory_equal(decoded, valid[i], (size_t)d);
	}
}

/* Each ill-formed sequence becomes U+FFFD per maximal subpart (Unicode
 * 3.9): one for a truncated but otherwise valid prefix, one per byte for
 * bytes that can never start or continue this sequence. */
static void test_invalid_utf8_replaced(void **state)
{
#define R "\xef\xbf\xbd"
	/* Overlong forms. */
	CHECK("\xc0\x80", "\"" R R "\"");
	CHECK("\xc1\xbf", "\"" R R "\"");
	CHECK("\xe0\x80\x80", "\"" R R R "\"");
	CHECK("\xe0\x9f\xbf", "\"" R R R "\"");
	CHECK("\xf0\x80\x80\x80", "\"" R R R R "\"");
	CHECK("\xf0\x8f\xbf\xbf", "\"" R R R R "\"");
	CHECK("\xc0\xaf", "\"" R R "\""); /* the classic overlong '/' */
	/* Surrogates encoded directly (CESU-8 style). */
	CHECK("\xed\xa0\x80", "\"" R R R "\"");
	CHECK("\xed\xbf\xbf", "\"" R R R "\"");
	CHECK("\xed\xa0\xbd\xed\xb8\x80", "\"" R R R R R R "\"");
	/* Above U+10FFFF. */
	CHECK("\xf4\x90\x80\x80", "\"" R R R R "\"");
	CHECK("\xf5\x80\x80\x80", "\"" R R R R "\"");
	CHECK("\xf7\xbf\xbf\xbf", "\"" R R R R "\"");
	CHECK("\xf8\x88\x80\x80\x80", "\"" R R R R R "\"");
	CHECK("\xfc\x84\x80\x80\x80\x80", "\"" R R R R R R "\"");
	CHECK("\xfe\xff", "\"" R R "\"");
	/* Lone continuation bytes. */
	CHECK("\x80", "\"" R "\"");
	CHECK("a\xbf"
	      "b",
	      "\"a" R "b\"");
	CHECK("\x80\x80\x80", "\"" R R R "\"");
	/* Truncated sequences: at the end, and followed by other bytes. */
	CHECK("\xc3", "\"" R "\"");
	CHECK("\xe2\x82", "\"" R "\"");
	CHECK("\xf0\x9f\x98", "\"" R "\"");
	CHECK("\xe2\x82"
	      "A",
	      "\"" R "A\"");
	CHECK("\xf0\x9f\x98"
	      "A",
	      "\"" R "A\"");
	CHECK("\xf0\x9f"
	      "\xe2\x82\xac",
	      "\"" R "\xe2\x82\xac\"");
	CHECK("\xc3"
	      "\"",
	      "\"" R "\\\"\"");
	CHECK("\xe2"
	      "\n",
	      "\"" R "\\n\"");
	/* A valid character right after a broken one survives. */
	CHECK("\xc3\xc3\xa9", "\"" R "\xc3\xa9\"");
	/* Latin-1 text mistaken for UTF-8. */
	CHECK("caf\xe9 cr\xe8me", "\"caf" R " cr" R "me\"");
#undef R
}

/* A small deterministic generator, so failures reproduce. */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * 64 KiB of hostile "arguments": random pieces whose decoded form is known,
 * each broken sequence followed by an ASCII byte so pieces cannot merge.
 * The decoded JSON string must equal the expected text exactly.
 */
static void test_64k_hostile_args(void **state)
{
	static const struct {
		const char *in, *out;
	} piece[] = {
	    {"--opt=value ", "--opt=value "},
	    {"\"", "\""},
	    {"\\", "\\"},
	    {"\n", "\n"},
	    {"\x01", "\x01"},
	    {"\x7f", "\x7f"},
	    {"\xc3\xa9", "\xc3\xa9"},
	    {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
	    {"\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"},
	    {"\xc0\x80x", "\xef\xbf\xbd\xef\xbf\xbdx"},
	    {"\xf0\x9f\x98x", "\xef\xbf\xbdx"},
	    {"\xffx", "\xef\xbf\xbdx"},
	    {"\x00", "\x00"},
	};
	const size_t target = 64 * 1024;
	char *in = malloc(target + 16), *expect = malloc(4 * target), *dec = malloc(4 * target);
	size_t n = 0, m = 0, k, il, ol;
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	struct pf_jw w;
	long d;

	assert_non_null(in);
	assert_non_null(expect);
	assert_non_null(dec);
	while (n < target) {
		k = rng_next(&seed) % (sizeof(piece) / sizeof(piece[0]));
		/* "\x00" has length 1 even though strlen says 0. */
		il = k == 12 ? 1 : strlen(piece[k].in);
		ol = k == 12 ? 1 : strlen(piece[k].out);
		memcpy(in + n, piece[k].in, il);
		memcpy(expect + m, piece[k].out, ol);
		n += il;
		m += ol;
	}
	pf_jw__init(&w, BIG);
	pf_jw__obj_begin(&w);
	pf_jw__key(&w, "process_args");
	pf_jw__arr_begin(&w);
	pf_jw__strn(&w, in, n);
	pf_jw__arr_end(&w);
	pf_jw__obj_end(&w);
	pf_jw__raw(&w, "\n", 1);
	assert_int_equal(pf_jw__error(&w), 0);
	assert_int_equal(json_check_line(w.buf, w.len), 0);

	/* Decode the string element back and compare with what we expect. */
	pf_jw__reset(&w);
	pf_jw__strn(&w, in, n);
	assert_int_equal(pf_jw__error(&w), 0);
	d = json_decode_string(w.buf, w.len, dec, 4 * target);
	assert_int_equal(d, (long)m);
	assert_memory_equal(dec, expect, m);

	/* 64 KiB of plain text takes the fast path and comes back unchanged. */
	memset(in, 'a', target);
	pf_jw__reset(&w);
	pf_jw__strn(&w, in, target);
	assert_int_equal(w.len, target + 2);
	assert_int_equal(json_check(w.buf, w.len), 0);
	assert_memory_equal(w.buf + 1, in, target);

	pf_jw__fini(&w);
	free(in);
	free(expect);
	free(dec);
}

/* Writes that overflow a small cap: -ENOSPC, sticky, nothing written past
 * the cap, reset clears it. */
static void test_cap_sticky(void **state)
{
	struct pf_jw w;
	size_t before;

	pf_jw__init(&w, 10);
	pf_jw__obj_begin(&w);
	pf_jw__key(&w, "abc"); /* {"abc": is 7 bytes */
	assert_int_equal(pf_jw__error(&w), 0);
	assert_int_equal(w.len, 7);
	pf_jw__str(&w, "xy"); /* "xy" needs 4 more: 11 > 10 */
	assert_int_equal(pf_jw__error(&w), -ENOSPC);
	assert_true(w.len <= 10);
	assert_true(w.cap <= 10);
	before = w.len;
	/* Sticky: even a write that would fit now does nothing. */
	pf_jw__raw(&w, "}", 1);
	pf_jw__u64(&w, 1);
	pf_jw__obj_end(&w);
	assert_int_equal(w.len, before);
	assert_int_equal(pf_jw__error(&w), -ENOSPC);

	pf_jw__reset(&w);
	assert_int_equal(pf_jw__error(&w), 0);
	assert_int_equal(w.len, 0);
	pf_jw__str(&w, "abcdefgh"); /* exactly 10 bytes: fits */
	assert_jw_eq(&w, "\"abcdefgh\"", 10);
	pf_jw__raw(&w, "\n", 1);
	assert_int_equal(pf_jw__error(&w), -ENOSPC);
	assert_int_equal(w.len, 10);
	pf_jw__fini(&w);

	/* A cap of 0 takes nothing, and allocates nothing. */
	pf_jw__init(&w, 0);
	pf_jw__obj_begin(&w);
	assert_int_equal(pf_jw__error(&w), -ENOSPC);
	assert_int_equal(w.len, 0);
	assert_null(w.buf);
	pf_jw__fini(&w);
}

/* The same hostile sequence of calls under every cap from 0 up to its
 * full size: the output never exceeds the cap, the error is set exactly
 * when the full output does not fit, and what was written is a prefix of
 * the full output (writes are whole or not at all). */
static void write_sample(struct pf_jw *w)
{
	static const char hostile[] = "a\"b\\c\x01\x7f\xc3\xa9\xed\xa0\x80\xf0\x9f\x98\x80\xff";

	pf_jw__obj_begin(w);
	pf_jw__key(w, "process_name");
	pf_jw__str(w, "/usr/bin/x");
	pf_jw__key(w, "process_args");
	pf_jw__arr_begin(w);
	pf_jw__strn(w, hostile, sizeof(hostile) - 1);
	pf_jw__strn(w, hostile, sizeof(hostile) - 1);
	pf_jw__arr_end(w);
	pf_jw__key(w, "n");
	pf_jw__u64(w, 18446744073709551615ULL);
	pf_jw__key(w, "m");
	pf_jw__i64(w, -42);
	pf_jw__key(w, "z");
	pf_jw__null(w);
	pf_jw__obj_end(w);
	pf_jw__raw(w, "\n", 1);
}

static void test_cap_every_size(void **state)
{
	struct pf_jw full, w;
	size_t max;

	pf_jw__init(&full, BIG);
	write_sample(&full);
	assert_int_equal(pf_jw__error(&full), 0);
	assert_int_equal(json_check_line(full.buf, full.len), 0);

	for (max = 0; max <= full.len + 2; max++) {
		pf_jw__init(&w, max);
		write_sample(&w);
		assert_true(w.len <= max);
		assert_true(w.cap <= max);
		if (max >= full.len) {
			assert_int_equal(pf_jw__error(&w), 0);
			assert_int_equal(w.len, full.len);
			assert_int_equal(json_check_line(w.buf, w.len), 0);
		} else {
			assert_int_equal(pf_jw__error(&w), -ENOSPC);
		}
		if (w.len)
			assert_memory_equal(w.buf, full.buf, w.len);
		pf_jw__fini(&w);
	}
	pf_jw__fini(&full);
}

/* Growth past the first allocation, up to a cap that is not a power of
 * two, and reuse of the allocation after reset. */
static void test_growth_and_reset(void **state)
{
	char in[3000];
	struct pf_jw w;
	char *buf;
	size_t cap;

	memset(in, 'q', sizeof(in));
	pf_jw__init(&w, 3002);
	pf_jw__strn(&w, in, sizeof(in));
	assert_int_equal(pf_jw__error(&w), 0);
	assert_int_equal(w.len, 3002);
	assert_int_equal(w.cap, 3002);
	assert_int_equal(json_check(w.buf, w.len), 0);
	buf = w.buf;
	cap = w.cap;
	pf_jw__reset(&w);
	pf_jw__strn(&w, in, 10);
	assert_ptr_equal(w.buf, buf);
	assert_int_equal(w.cap, cap);
	assert_jw_eq(&w, "\"qqqqqqqqqq\"", 12);
	pf_jw__fini(&w);
	/* fini is idempotent, and accepts a zeroed writer. */
	pf_jw__fini(&w);
	memset(&w, 0, sizeof(w));
	pf_jw__fini(&w);
}

/* pf_jw__escape writes the inside of a string only. */
static void test_escape_raw(void **state)
{
	struct pf_jw w;

	pf_jw__init(&w, BIG);
	pf_jw__raw(&w, "\"", 1);
	pf_jw__escape(&w, "a\"\xff", 3);
	pf_jw__raw(&w, "\"", 1);
	assert_jw_eq(&w, "\"a\\\"\xef\xbf\xbd\"", 8);
	pf_jw__fini(&w);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_structure),
	    cmocka_unit_test(test_numbers),
	    cmocka_unit_test(test_str_null_and_empty),
	    cmocka_unit_test(test_quotes_backslashes),
	    cmocka_unit_test(test_every_byte),
	    cmocka_unit_test(test_bad_byte_every_offset),
	    cmocka_unit_test(test_valid_utf8_preserved),
	    cmocka_unit_test(test_invalid_utf8_replaced),
	    cmocka_unit_test(test_64k_hostile_args),
	    cmocka_unit_test(test_cap_sticky),
	    cmocka_unit_test(test_cap_every_size),
	    cmocka_unit_test(test_growth_and_reset),
	    cmocka_unit_test(test_escape_raw),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
