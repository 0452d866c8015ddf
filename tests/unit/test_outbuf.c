// SPDX-License-Identifier: BSD-2-Clause
/*
 * The --stdout buffer (lib/outbuf.h) in front of a real pipe: a reader that
 * does not read never blocks the writer, lines it could not take are
 * dropped whole and counted, what it gets is whole lines in order, and a
 * reader that exits turns writes into counted drops, never a SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* cmocka needs the headers above */
#include <cmocka.h>

#include "outbuf.h"

static int line(char *buf, size_t sz, unsigned seq)
{
	return snprintf(buf, sz, "{\"seq\":%u,\"pad\":\"%0200u\"}\n", seq, seq);
}

static void test_slow_reader(void **state)
{
	enum { N = 2000, CAP = 16384 };
	static char got[1 << 20];
	char l[300];
	size_t have = 0;
	unsigned next = 0, received = 0;
	struct pf_outbuf *o;
	int p[2];

	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	o = pf_outbuf__new(p[1], CAP);
	assert_non_null(o);
	/* Nobody reads: 2000 lines of ~220 bytes cannot fit the pipe (64 KiB)
	 * and the buffer (16 KiB); none of the calls blocks. */
	for (unsigned i = 0; i < N; i++) {
		int n = line(l, sizeof(l), i);

		assert_int_equal(pf_outbuf__write(o, l, (size_t)n, 1), 0);
	}
	assert_true(pf_outbuf__pending(o) <= CAP);
	assert_true(pf_outbuf__dropped(o) > 0);
	/* The reader catches up: the rest of the buffer arrives. */
	for (;;) {
		ssize_t r = read(p[0], got + have, sizeof(got) - have);

		if (r > 0) {
			have += (size_t)r;
			continue;
		}
		if (!pf_outbuf__pending(o))
			break;
		assert_int_equal(pf_outbuf__flush(o), 0);
	}
	/* Whole lines, ascending; gaps only between lines. */
	for (char *s = got, *nl; s < got + have; s = nl + 1) {
		unsigned seq;

		nl = memchr(s, '\n', (size_t)(got + have - s));
		assert_non_null(nl);
		assert_int_equal(sscanf(s, "{\"seq\":%u,", &seq), 1);
		assert_int_equal(line(l, sizeof(l), seq), nl + 1 - s);
		assert_memory_equal(l, s, (size_t)(nl + 1 - s));
		assert_true(seq >= next);
		next = seq + 1;
		received++;
	}
	assert_int_equal(received + pf_outbuf__dropped(o), N);
	pf_outbuf__free(o);
	close(p[0]);
	close(p[1]);
}

static void test_reader_gone(void **state)
{
	char l[300];
	struct pf_outbuf *o;
	int p[2], n;

	signal(SIGPIPE, SIG_IGN); /* as the agent does */
	assert_int_equal(pipe2(p, O_NONBLOCK), 0);
	o = pf_outbuf__new(p[1], 4096);
	n = line(l, sizeof(l), 1);
	assert_int_equal(pf_outbuf__write(o, l, (size_t)n, 1), 0);
	close(p[0]); /* `| head -1` exits */
	assert_int_equal(pf_outbuf__write(o, l, (size_t)n, 1), -EPIPE);
	assert_true(pf_outbuf__closed(o));
	assert_int_equal(pf_outbuf__write(o, l, (size_t)n, 1), -EPIPE);
	assert_int_equal(pf_outbuf__dropped(o), 2);
	assert_int_equal(pf_outbuf__pending(o), 0);
	pf_outbuf__free(o);
	close(p[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_slow_reader),
	    cmocka_unit_test(test_reader_gone),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
