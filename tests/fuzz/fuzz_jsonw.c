// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for the JSON writer: arbitrary bytes, as a process
 * name and argument strings would arrive, through pf_jw__strn inside an
 * object. Checks, aborting on any failure:
 *   - with room to spare the result is one valid JSON line (the strict
 *     validator of tests/unit/json_check.h), and a string that was
 *     well-formed UTF-8 without bytes to escape decodes back to itself;
 *   - under a cap taken from the input, nothing is written past the cap,
 *     the error is -ENOSPC exactly when the full output does not fit, and
 *     what was written is a prefix of the full output;
 *   - pf_jw__strn_max() with a limit taken from the input gives a valid
 *     string of at most that many decoded bytes: the pf_jw__strn() string
 *     when that fits, else a prefix of its decoded text and the mark.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../unit/json_check.h"
#include "jsonw.h"

static void fuzz_fail(const char *what)
{
	fprintf(stderr, "fuzz_jsonw: %s\n", what);
	abort();
}

/* The same calls for the full and the capped writer. The input is split
 * at the first 0xfe byte (if any) into a name and an argument string. */
static void write_doc(struct pf_jw *w, const uint8_t *data, size_t size)
{
	const uint8_t *cut = memchr(data, 0xfe, size);
	size_t n1 = cut ? (size_t)(cut - data) : size;

	pf_jw__obj_begin(w);
	pf_jw__key(w, "process_name");
	pf_jw__strn(w, (const char *)data, n1);
	pf_jw__key(w, "process_args");
	pf_jw__arr_begin(w);
	pf_jw__strn(w, (const char *)data, size);
	if (cut)
		pf_jw__strn(w, (const char *)cut + 1, size - n1 - 1);
	pf_jw__arr_end(w);
	pf_jw__key(w, "num_process_args");
	pf_jw__u64(w, size);
	pf_jw__obj_end(w);
	pf_jw__raw(w, "\n", 1);
}

/* The keyword cap: decoded length, whole characters, the mark. */
static void check_strn_max(const uint8_t *data, size_t size, size_t big)
{
	static const char mark[] = "...[truncated]";
	const size_t mlen = sizeof(mark) - 1;
	size_t max = size >= 3 ? mlen + data[2] % 64 : mlen + 1;
	struct pf_jw whole, cut;
	char *dw, *dc;
	long nw, nc;

	pf_jw__init(&whole, big);
	pf_jw__init(&cut, big);
	pf_jw__strn(&whole, (const char *)data, size);
	pf_jw__strn_max(&cut, (const char *)data, size, max, mark);
	if (pf_jw__error(&whole) || pf_jw__error(&cut))
		fuzz_fail("strn_max: error with room to spare");
	dw = malloc(3 * size + 1);
	dc = malloc(3 * size + mlen + 1);
	if (!dw || !dc)
		fuzz_fail("malloc");
	nw = json_decode_string(whole.buf, whole.len, dw, 3 * size + 1);
	nc = json_decode_string(cut.buf, cut.len, dc, 3 * size + mlen + 1);
	if (nw < 0 || nc < 0)
		fuzz_fail("strn_max: invalid string");
	if ((size_t)nw <= max) {
		if (cut.len != whole.len || memcmp(cut.buf, whole.buf, whole.len))
			fuzz_fail("strn_max: a string that fits was changed");
	} else {
		if ((size_t)nc > max || (size_t)nc < mlen || memcmp(dc + nc - mlen, mark, mlen) ||
		    memcmp(dc, dw, (size_t)nc - mlen))
			fuzz_fail("strn_max: cut string is not a prefix and the mark");
		/* Cut on a character boundary: the kept text is whole characters. */
		if (nc > (long)mlen && ((unsigned char)dw[nc - mlen] & 0xc0) == 0x80)
			fuzz_fail("strn_max: cut inside a character");
	}
	free(dw);
	free(dc);
	pf_jw__fini(&whole);
	pf_jw__fini(&cut);
}

/* True when every byte would be copied unchanged: well-formed UTF-8 with
 * nothing below 0x20, no '"', '\\' or 0x7f. Checked with the validator:
 * wrap the bytes in quotes and see if they parse and decode to themselves. */
static int plain_utf8(const uint8_t *data, size_t size, char *tmp, char *dec)
{
	size_t i;

	for (i = 0; i < size; i++)
		if (data[i] < 0x20 || data[i] == '"' || data[i] == '\\' || data[i] == 0x7f)
			return 0;
	tmp[0] = '"';
	memcpy(tmp + 1, data, size);
	tmp[size + 1] = '"';
	return json_decode_string(tmp, size + 2, dec, size) == (long)size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* Escaping grows a byte to at most 6 ("\u00XX"); 3 strings of the
	 * input plus punctuation fit in 20x with room to spare. */
	size_t big = 20 * size + 256, max;
	struct pf_jw full, capped, one;
	char *tmp, *dec;
	long d;

	pf_jw__init(&full, big);
	write_doc(&full, data, size);
	if (pf_jw__error(&full))
		fuzz_fail("error with room to spare");
	if (full.len > big)
		fuzz_fail("over the cap");
	if (json_check_line(full.buf, full.len))
		fuzz_fail("invalid JSON line");

	/* A lone string decodes to the input when the input needs no change. */
	tmp = malloc(size + 2);
	dec = malloc(size + 1);
	if (!tmp || !dec)
		fuzz_fail("malloc");
	pf_jw__init(&one, big);
	pf_jw__strn(&one, (const char *)data, size);
	if (pf_jw__error(&one) || json_check(one.buf, one.len))
		fuzz_fail("invalid string");
	if (plain_utf8(data, size, tmp, dec)) {
		d = json_decode_string(one.buf, one.len, dec, size);
		if (d != (long)size || memcmp(dec, data, size))
			fuzz_fail("plain string changed");
		if (one.len != size + 2)
			fuzz_fail("plain string escaped");
	}
	pf_jw__fini(&one);
	free(tmp);
	free(dec);
	check_strn_max(data, size, big);

	/* A cap from the input's first two bytes, somewhere inside the doc. */
	max = size >= 2 ? (size_t)(data[0] | data[1] << 8) % (full.len + 8) : 0;
	pf_jw__init(&capped, max);
	write_doc(&capped, data, size);
	if (capped.len > max || capped.cap > max)
		fuzz_fail("capped writer over its cap");
	if (full.len <= max) {
		if (pf_jw__error(&capped) || capped.len != full.len)
			fuzz_fail("error although the output fits");
	} else if (pf_jw__error(&capped) != -ENOSPC) {
		fuzz_fail("no -ENOSPC although the output does not fit");
	}
	if (capped.len && memcmp(capped.buf, full.buf, capped.len))
		fuzz_fail("capped output is not a prefix of the full output");

	pf_jw__fini(&capped);
	pf_jw__fini(&full);
	return 0;
}
