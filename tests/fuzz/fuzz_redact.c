// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for lib/redact.c: the rule parser (a rule file is
 * user input) and the redaction of an argument area (chosen by whatever
 * process runs on the node, so hostile by definition).
 *
 * The first byte chooses: odd, the rest is a rule file loaded on top of
 * the built-in set; even, the rest is an argument area redacted with the
 * built-in set into an output of a size the byte also picks. Besides the
 * sanitizers, the harness checks the properties callers rely on: the
 * output stays within its bound, and the value of a --password=VALUE
 * argument never reaches the output, for a VALUE that can only come from
 * there: at least 8 letters and digits (so, like the output's separators,
 * brackets and '=' cannot be part of it: it lies within one output
 * argument), found nowhere else in the input, and not a piece of the text
 * redaction itself writes ("--password=[REDACTED]"). The same holds for a
 * word --password=VALUE of shell code (sh -c CODE, CODE without quotes or
 * backslashes, so that its words are plain), which checks the way shell
 * code is cut into words and mapped back. The first byte also picks the
 * executable's path, which names the program when argv[0] does not.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

static const size_t outsizes[] = {0, 1, 7, 64, 4096, 65536};

static struct pf_redact *builtin;

static int alnum_only(const uint8_t *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'z') ||
		      (v[i] >= 'A' && v[i] <= 'Z')))
			return 0;
	return 1;
}

static const char *const exes[] = {"/usr/bin/mysql", "/bin/sh", "/usr/bin/curl",
				   "/usr/bin/openssl"};

/* Whether VALUE (@v, @vl bytes) can only come from the place it was found
 * at (@at in @data) and is none of the text redaction writes. */
static int only_there(const uint8_t *data, size_t size, const uint8_t *v, size_t vl)
{
	return vl >= 8 && alnum_only(v, vl) && !memmem("password", 8, v, vl) &&
	       !memmem("REDACTED", 8, v, vl) && !memmem(data, (size_t)(v - data), v, vl) &&
	       !memmem(v + vl, (size_t)(data + size - (v + vl)), v, vl);
}

static int breaks_word(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' ||
	       c == ')' || c == '<' || c == '>';
}

/* sh -c CODE: each plain word --password=VALUE of CODE. */
static void check_shell(const uint8_t *data, size_t size, const char *out, size_t n)
{
	static const char opt[] = "--password=";
	const uint8_t *code = data + 6, *end;

	if (size < 6 || memcmp(data, "sh\0-c\0", 6))
		return;
	end = memchr(code, '\0', size - 6);
	if (!end)
		end = data + size;
	if (memchr(code, '\'', (size_t)(end - code)) || memchr(code, '"', (size_t)(end - code)) ||
	    memchr(code, '\\', (size_t)(end - code)))
		return;
	for (const uint8_t *p = code; p + sizeof(opt) - 1 < end; p++) {
		const uint8_t *v = p + sizeof(opt) - 1, *e = v;

		if ((p > code && !breaks_word(p[-1])) || memcmp(p, opt, sizeof(opt) - 1))
			continue;
		while (e < end && alnum_only(e, 1))
			e++;
		if ((e == end || breaks_word(*e)) && only_there(data, size, v, (size_t)(e - v)) &&
		    memmem(out, n, v, (size_t)(e - v)))
			abort();
	}
}

static void check_secret(const uint8_t *data, size_t size, const char *out, size_t n)
{
	static const char opt[] = "--password=";
	const uint8_t *p = data, *end = data + size;

	/* Each argument that starts with --password= (argv[0] excluded). */
	p = memchr(data, '\0', size);
	while (p && p < end) {
		const uint8_t *a = p + 1, *nul;
		size_t l;

		if (a >= end)
			break;
		nul = memchr(a, '\0', (size_t)(end - a));
		l = nul ? (size_t)(nul - a) : (size_t)(end - a);
		if (l >= sizeof(opt) - 1 + 8 && !memcmp(a, opt, sizeof(opt) - 1)) {
			const uint8_t *v = a + sizeof(opt) - 1;
			size_t vl = l - (sizeof(opt) - 1);

			/* Only when the value cannot come from elsewhere. */
			if (only_there(data, size, v, vl) && memmem(out, n, v, vl))
				abort();
		}
		p = nul;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];

	if (!builtin)
		builtin = pf_redact__new(1, NULL);
	if (!builtin || size == 0)
		return 0;
	if (data[0] & 1) {
		struct pf_redact *r = pf_redact__new(1, "#");

		if (!r)
			return 0;
		if (pf_redact__load(r, (const char *)data + 1, size - 1, err, sizeof(err)) &&
		    !memchr(err, '\0', sizeof(err)))
			abort();
		pf_redact__free(r);
		return 0;
	}
	{
		size_t outsz = outsizes[(data[0] >> 1) % (sizeof(outsizes) / sizeof(outsizes[0]))];
		char *out = malloc(outsz ? outsz : 1);
		int trunc = 0;
		size_t n;

		if (!out)
			return 0;
		n = pf_redact__args(builtin, exes[(data[0] >> 4) & 3], (const char *)data + 1,
				    size - 1, out, outsz, &trunc, NULL);
		if (n > outsz)
			abort();
		if (outsz == 65536) {
			check_secret(data + 1, size - 1, out, n);
			check_shell(data + 1, size - 1, out, n);
		}
		free(out);
	}
	return 0;
}
