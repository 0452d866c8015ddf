// SPDX-License-Identifier: BSD-2-Clause
/*
 * libFuzzer harness for the procfs parsers: pf_procfs__parse_stat() and
 * pf_procfs__join_args(). Their input comes from other processes (a task
 * picks its own comm and argv), so it is hostile by definition.
 *
 * The first byte chooses the parser and, for join_args, the argument bound
 * and the output size; the rest is the text. libFuzzer hands over a buffer
 * of exactly the input size, so ASan catches any read past the length, and
 * the output buffer is allocated at exactly its size to catch writes.
 *
 * Besides the sanitizers, the harness checks what the callers rely on and
 * aborts when it does not hold.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "procfs.h"

/* Output sizes worth trying: none, no room beyond the NUL, tiny, and the
 * sizes the agent uses. */
static const size_t outsizes[] = {0, 1, 2, 3, 8, 64, 4096, 65536};

static void check_stat(const uint8_t *data, size_t size)
{
	struct pf_procfs_stat st;

	memset(&st, 0xa5, sizeof(st));
	if (pf_procfs__parse_stat((const char *)data, size, &st) != 0)
		return;
	/* comm is a C string that fits. */
	if (memchr(st.comm, '\0', sizeof(st.comm)) == NULL)
		abort();
}

static void check_join(uint8_t sel, const uint8_t *data, size_t size)
{
	/* Bits 1-3: max_argc 0..6, or no limit. */
	unsigned max_argc = (sel >> 1) & 7;
	size_t outsz = outsizes[(sel >> 4) & 7];
	char *out = malloc(outsz ? outsz : 1);
	const uint8_t *first, *rest;
	size_t n, rest_len, i;
	int truncated = 0;

	if (!out)
		return;
	if (max_argc == 7)
		max_argc = ~0u;
	n = pf_procfs__join_args((const char *)data, size, max_argc, out, outsz, &truncated);

	if (outsz == 0) {
		if (n != 0)
			abort();
		goto out;
	}
	/* Within the buffer, NUL-terminated, no NUL inside (arguments are
	 * split at NULs). */
	if (n >= outsz || out[n] != '\0' || strlen(out) != n)
		abort();
	/*
	 * The output is a prefix of what follows argv[0] with each separating
	 * NUL turned into a space; without truncation it is all of it but a
	 * final NUL (which closes the last argument).
	 */
	first = memchr(data, '\0', size);
	if (!first) {
		if (n != 0)
			abort();
		goto out;
	}
	rest = first + 1;
	rest_len = size - (size_t)(rest - data);
	if (n > rest_len)
		abort();
	for (i = 0; i < n; i++)
		if ((uint8_t)out[i] != (rest[i] ? rest[i] : ' '))
			abort();
	if (!truncated && n != rest_len - (rest_len > 0 && rest[rest_len - 1] == '\0'))
		abort();
out:
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t sel;

	if (size == 0)
		return 0;
	sel = data[0];
	data++;
	size--;
	if (sel & 1)
		check_join(sel, data, size);
	else
		check_stat(data, size);
	return 0;
}
