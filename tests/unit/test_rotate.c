// SPDX-License-Identifier: BSD-2-Clause
/*
 * Rotation of flows.log as a log shipper sees it: a reader in another
 * process tails the file the way shippers do (keep the open descriptor,
 * read to its end; once the name points at a new file and the old one is
 * drained, open the new one) while the writer rotates it more than 20
 * times. Every line must arrive exactly once, whole, in order.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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
/* Rotated files kept. A shipper that falls further behind than this many
 * rotations loses a file, whatever the writer does; on a busy 2-core test
 * machine the reader can be descheduled for a few rotations, so keep many. */
#define MAX_FILES 40
/*
 * How far the writer may run ahead of the reader, in lines: fewer than the
 * rotated files hold (each holds at least MAX_BYTES / 430 = 38 lines), so a
 * reader that keeps up within the retention never loses a file, however
 * long the scheduler leaves it waiting. The writer waits for the reader
 * (the shared counter below) instead of both racing on a timing guess.
 */
#define MAX_LAG ((MAX_FILES - 4) * 38)
/* The reader's progress (lines taken), shared across fork. */
static long *reader_next;

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

/* What the reader has taken so far: the next sequence number expected and
 * the bytes of a line not yet complete. */
static struct {
	char buf[1 << 16];
	size_t have;
	long next;
} rd;

/* Take the complete lines in the buffer; a line out of sequence (lost,
 * repeated, or not byte-exact) fails. */
static int take_lines(void)
{
	char *p = rd.buf, *nl;

	while ((nl = memchr(p, '\n', rd.have - (size_t)(p - rd.buf)))) {
		long s = check_line(p, (size_t)(nl + 1 - p));

		if (s != rd.next) {
			fprintf(stderr, "reader: expected %ld, got %ld\n", rd.next, s);
			return 11;
		}
		rd.next++;
		if (reader_next)
			__atomic_store_n(reader_next, rd.next, __ATOMIC_RELEASE);
		p = nl + 1;
	}
	rd.have -= (size_t)(p - rd.buf);
	memmove(rd.buf, p, rd.have);
	return 0;
}

/* Read @fd to its end. */
static int drain(int fd)
{
	ssize_t r;
	int err;

	while ((r = read(fd, rd.buf + rd.have, sizeof(rd.buf) - rd.have)) > 0) {
		rd.have += (size_t)r;
		err = take_lines();
		if (err)
			return err;
	}
	return r < 0 ? 10 : 0;
}

/* A file that was rotated away is complete: it must end with a whole line. */
static int finish_file(int fd)
{
	int err = drain(fd);

	if (!err && rd.have) {
		fprintf(stderr, "reader: partial line at a rotation\n");
		return 13;
	}
	return err;
}

/* The rotated file that continues the stream (its first line is the next
 * one expected), or -1. @cur is the file the reader has open: it may have
 * been rotated too, but it is read through its descriptor. */
static int find_missed(const char *path, int cur)
{
	char rot[200], head[64];
	struct stat cst, st;

	if (fstat(cur, &cst))
		return -1;
	for (int i = 1; i <= MAX_FILES; i++) {
		unsigned seq;
		ssize_t n;
		int fd;

		snprintf(rot, sizeof(rot), "%s.%d", path, i);
		fd = open(rot, O_RDONLY);
		if (fd < 0)
			continue;
		if (fstat(fd, &st) || st.st_ino == cst.st_ino) {
			close(fd);
			continue;
		}
		n = pread(fd, head, sizeof(head) - 1, 0);
		if (n > 0) {
			head[n] = '\0';
			if (sscanf(head, "{\"seq\":%u,", &seq) == 1 && (long)seq == rd.next)
				return fd;
		}
		close(fd);
	}
	return -1;
}

/*
 * The tailing reader, as shippers work: it keeps the open file and reads
 * it to its end; once the name points at a new file, it finishes the old
 * one and opens the new one. A reader descheduled for a while may find
 * that more than one rotation happened meanwhile; a shipper then picks up
 * the rotated files it has not read from its registry (inode and offset),
 * this one by content (inode numbers of deleted files are reused): the
 * rotated file whose first line comes next. A line is only taken once its
 * '\n' is there. Exits 0 when it saw 0..N_LINES-1 once each, in order,
 * whole.
 */
static int tail_reader(const char *path, int ready_fd)
{
	struct stat fst, nst;
	int fd, mfd, idle = 0, err;

	/* Like a shipper that was there first: open, then let the writer go. */
	fd = open(path, O_RDONLY);
	if (fd < 0 || write(ready_fd, "r", 1) != 1)
		return 9;
	close(ready_fd);
	while (rd.next < N_LINES) {
		size_t before = rd.have;
		long nbefore = rd.next;

		err = drain(fd);
		if (err)
			return err;
		if (rd.next != nbefore || rd.have != before) {
			idle = 0;
			continue;
		}
		/* At the end of this file: has the name moved on? */
		if (stat(path, &nst) || fstat(fd, &fst) || nst.st_ino == fst.st_ino) {
			if (++idle > 200000)
				return 14; /* 20 s without progress */
			usleep(100);
			continue;
		}
		err = finish_file(fd);
		if (err)
			return err;
		close(fd);
		/* The writer may be between renaming flows.log away and creating
		 * the new one: a shipper waits for the name to come back. */
		for (int tries = 0; (fd = open(path, O_RDONLY)) < 0; tries++) {
			if (errno != ENOENT || tries > 200000)
				return 15;
			usleep(100);
		}
		/* Rotations missed meanwhile: their files come first. */
		while ((mfd = find_missed(path, fd)) >= 0) {
			err = finish_file(mfd);
			close(mfd);
			if (err)
				return err;
		}
	}
	close(fd);
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
	reader_next = mmap(NULL, sizeof(*reader_next), PROT_READ | PROT_WRITE,
			   MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(reader_next != MAP_FAILED);
	*reader_next = 0;
	o.dir = dir;
	o.max_bytes = MAX_BYTES;
	o.max_files = MAX_FILES;
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
		/* Flushes come at intervals, not back to back. */
		usleep(200);
		/* Never more than the retention ahead of the reader (60 s at most:
		 * a reader stuck that long has failed). */
		for (int w = 0; i - __atomic_load_n(reader_next, __ATOMIC_ACQUIRE) > MAX_LAG; w++) {
			assert_true(w < 600000);
			if (waitpid(pid, &status, WNOHANG) == pid)
				fail_msg("the reader stopped early: exit %d (line %ld)",
					 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
					 __atomic_load_n(reader_next, __ATOMIC_ACQUIRE));
			usleep(100);
		}
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(pf_logfile__rotations(f) >= 20);
	assert_int_equal(pf_logfile__lost(f), 0);
	pf_logfile__close(f);
	munmap(reader_next, sizeof(*reader_next));
	reader_next = NULL;

	/* Only max_files rotated files are kept, each within the size. */
	for (unsigned k = 1; k <= MAX_FILES + 1; k++) {
		struct stat st;

		snprintf(line, sizeof(line), "%s.%u", path, k);
		if (k <= MAX_FILES) {
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
