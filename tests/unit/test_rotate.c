// SPDX-License-Identifier: BSD-2-Clause
/*
 * Rotation of flows.log as a log shipper sees it: a reader in another
 * process tails the file the way shippers do (keep the open descriptor,
 * read to its end; once the name points at a new file and the old one is
 * drained, open the new one) while the writer rotates it more than 20
 * times. Every line must arrive exactly once, whole, in order.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>
#include <cmocka.h>

#include "logfile.h"

static char tmp[64];

static int setup(void **state)
{
	snprintf(tmp, sizeof(tmp), "/tmp/pf-rotate-XXXXXX");
	return mkdtemp(tmp) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	return system(cmd) == 0 ? 0 : -1;
}

#define N_LINES	  20000
#define MAX_BYTES 16384 /* ~60 lines of ~250 bytes: 80+ rotations */

static int make_line(char *buf, size_t sz, unsigned i)
{
	/* Lines of varying length, so rotation points fall everywhere. */
	int pad = (int)(i * 7919 % 400);

	return snprintf(
	    buf, sz, "{\"seq\":%u,\"pad\":\"%.*s\"}\n", i, pad,
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
}

/* Check one complete line; returns its sequence number or -1. */
static long check_line(const char *l, size_t n)
{
	char want[600];
	unsigned seq;

	if (sscanf(l, "{\"seq\":%u,", &seq) != 1)
		return -1;
	if ((size_t)make_line(want, sizeof(want), seq) != n || memcmp(want, l, n))
		return -1;
	return seq;
}

/*
 * The tailing reader: exits 0 when it saw 0..N_LINES-1 once each in order.
 * A line is only taken once its '\n' is there (as shippers do); bytes
 * without one at the end of a file that was rotated away are a split line.
 */
static int tail_reader(const char *path, int ready_fd)
{
	static char buf[1 << 16];
	size_t have = 0;
	long next = 0;
	struct stat fst, nst;
	int fd = -1, idle = 0;

	/* Like a shipper that was there first: open, then let the writer go. */
	fd = open(path, O_RDONLY);
	if (fd < 0 || write(ready_fd, "r", 1) != 1)
		return 9;
	close(ready_fd);
	while (next < N_LINES) {
		ssize_t r;

		if (fd < 0) {
			fd = open(path, O_RDONLY);
			if (fd < 0) {
				usleep(100);
				continue;
			}
		}
		r = read(fd, buf + have, sizeof(buf) - have);
		if (r < 0)
			return 10;
		if (r > 0) {
			char *p = buf, *nl;

			have += (size_t)r;
			while ((nl = memchr(p, '\n', have - (size_t)(p - buf)))) {
				long s = check_line(p, (size_t)(nl + 1 - p));

				if (s != next) {
					fprintf(stderr, "reader: expected %ld, got %ld\n", next, s);
					return 11;
				}
				next++;
				p = nl + 1;
			}
			have -= (size_t)(p - buf);
			memmove(buf, p, have);
			idle = 0;
			continue;
		}
		/* At the end of this file: has the name moved on? */
		if (stat(path, &nst) == 0 && fstat(fd, &fst) == 0 && nst.st_ino != fst.st_ino) {
			/* Drain what was appended before the rename. */
			while ((r = read(fd, buf + have, sizeof(buf) - have)) > 0)
				have += (size_t)r;
			if (r == 0 && have) {
				char *p = buf, *nl;

				while ((nl = memchr(p, '\n', have - (size_t)(p - buf)))) {
					if (check_line(p, (size_t)(nl + 1 - p)) != next)
						return 12;
					next++;
					p = nl + 1;
				}
				have -= (size_t)(p - buf);
				memmove(buf, p, have);
				if (have) {
					fprintf(stderr, "reader: partial line at a rotation\n");
					return 13;
				}
			}
			close(fd);
			fd = -1;
			continue;
		}
		if (++idle > 200000)
			return 14; /* 20 s without progress */
		usleep(100);
	}
	return 0;
}

static void test_rotation_with_tailing_reader(void **state)
{
	char dir[128], path[160], line[600], batch[8192];
	struct pf_logfile_opts o = {0};
	struct pf_logfile *f;
	unsigned i = 0;
	int status, pfd[2];
	pid_t pid;
	char c;

	snprintf(dir, sizeof(dir), "%s/tail", tmp);
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	o.dir = dir;
	o.max_bytes = MAX_BYTES;
	o.max_files = 3;
	f = pf_logfile__open_opts(&o);
	assert_non_null(f);
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(tail_reader(path, pfd[1]));
	close(pfd[1]);
	assert_int_equal(read(pfd[0], &c, 1), 1);
	close(pfd[0]);
	/* Flushes of 1..16 lines, like intervals of different sizes. */
	while (i < N_LINES) {
		size_t len = 0;
		unsigned n = 1 + i % 16, k;

		for (k = 0; k < n && i < N_LINES; k++, i++) {
			int w = make_line(line, sizeof(line), i);

			memcpy(batch + len, line, (size_t)w);
			len += (size_t)w;
		}
		assert_int_equal(pf_logfile__write(f, batch, len, k), 0);
		/* A shipper reads as fast as lines come, not faster: a writer
		 * that rotates twice before the reader reaches the end of the
		 * file would make any name-following reader skip a file. */
		usleep(500);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(pf_logfile__rotations(f) >= 20);
	assert_int_equal(pf_logfile__lost(f), 0);
	pf_logfile__close(f);

	/* Only max_files rotated files are kept, each within the size. */
	for (unsigned k = 1; k <= 4; k++) {
		struct stat st;

		snprintf(line, sizeof(line), "%s.%u", path, k);
		if (k <= 3) {
			assert_int_equal(stat(line, &st), 0);
			assert_true(st.st_size <= MAX_BYTES);
			assert_int_equal(st.st_mode & 0777, 0640);
		} else {
			assert_int_not_equal(stat(line, &st), 0);
		}
	}
}

/* Rotated files are compressed: flows.log.1.zst decompresses to exactly
 * the lines that left flows.log, newest file first. */
static void test_rotation_zstd(void **state)
{
	char dir[128], path[160], zpath[180], line[600];
	struct pf_logfile_opts o = {0};
	struct pf_logfile *f;
	static char comp[1 << 16], plain[1 << 17];
	size_t clen, plen;
	FILE *z;
	long first;

	snprintf(dir, sizeof(dir), "%s/zst", tmp);
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	o.dir = dir;
	o.max_bytes = 4096;
	o.max_files = 2;
	o.compress = true;
	f = pf_logfile__open_opts(&o);
	assert_non_null(f);
	for (unsigned i = 0; i < 200; i++) {
		int w = make_line(line, sizeof(line), i);

		assert_int_equal(pf_logfile__write(f, line, (size_t)w, 1), 0);
	}
	pf_logfile__close(f);
	snprintf(zpath, sizeof(zpath), "%s.1.zst", path);
	z = fopen(zpath, "rb");
	assert_non_null(z);
	clen = fread(comp, 1, sizeof(comp), z);
	fclose(z);
	plen = ZSTD_decompress(plain, sizeof(plain), comp, clen);
	assert_false(ZSTD_isError(plen));
	assert_true(plen > 0 && plen <= 4096);
	assert_int_equal(plain[plen - 1], '\n');
	/* Consecutive whole lines. */
	first = check_line(plain, (size_t)((char *)memchr(plain, '\n', plen) + 1 - plain));
	assert_true(first > 0);
	for (char *p = plain, *nl; p < plain + plen; p = nl + 1) {
		nl = memchr(p, '\n', (size_t)(plain + plen - p));
		assert_non_null(nl);
		assert_int_equal(check_line(p, (size_t)(nl + 1 - p)), first++);
	}
	/* The uncompressed copy is gone; .3 was never kept. */
	snprintf(zpath, sizeof(zpath), "%s.1", path);
	assert_int_not_equal(access(zpath, F_OK), 0);
	snprintf(zpath, sizeof(zpath), "%s.3.zst", path);
	assert_int_not_equal(access(zpath, F_OK), 0);
	snprintf(zpath, sizeof(zpath), "%s.2.zst", path);
	assert_int_equal(access(zpath, F_OK), 0);
}

/* A line longer than the limit gets a file of its own, whole. */
static void test_line_over_limit(void **state)
{
	char dir[128], path[160], old[200], big[3000];
	struct pf_logfile_opts o = {0};
	struct pf_logfile *f;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/big", tmp);
	snprintf(path, sizeof(path), "%s/flows.log", dir);
	o.dir = dir;
	o.max_bytes = 1000;
	o.max_files = 2;
	f = pf_logfile__open_opts(&o);
	assert_non_null(f);
	memset(big, 'y', sizeof(big));
	big[sizeof(big) - 1] = '\n';
	assert_int_equal(pf_logfile__write(f, "a\n", 2, 1), 0);
	assert_int_equal(pf_logfile__write(f, big, sizeof(big), 1), 0);
	assert_int_equal(pf_logfile__write(f, "b\n", 2, 1), 0);
	pf_logfile__close(f);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2); /* "b\n" */
	snprintf(old, sizeof(old), "%s.1", path);
	assert_int_equal(stat(old, &st), 0);
	assert_int_equal(st.st_size, sizeof(big));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rotation_with_tailing_reader),
	    cmocka_unit_test(test_rotation_zstd),
	    cmocka_unit_test(test_line_over_limit),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
