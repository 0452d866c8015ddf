// SPDX-License-Identifier: BSD-2-Clause
#include "spool.h"
#include "safefs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct batch {
	uint64_t seq, rows, bytes;
};

struct pf_spool {
	char dir[PATH_MAX - 64];
	uint64_t max_bytes, bytes, rows;
	struct batch *q; /* oldest first: q[head..n) */
	size_t head, n, cap;
	uint64_t next_seq;
	uint64_t dropped_batches, dropped_rows;
	uint64_t bad_batches, bad_rows; /* failed their check at open */
};

static void batch_path(const struct pf_spool *s, const struct batch *b, char *out, size_t sz)
{
	snprintf(out, sz, "%s/%020llu-%llu.batch", s->dir, (unsigned long long)b->seq,
		 (unsigned long long)b->rows);
}

static int append(struct pf_spool *s, const struct batch *b)
{
	if (s->n == s->cap) {
		if (s->head) {
			memmove(s->q, s->q + s->head, (s->n - s->head) * sizeof(*s->q));
			s->n -= s->head;
			s->head = 0;
		}
		if (s->n == s->cap) {
			size_t ncap = s->cap ? s->cap * 2 : 64;
			struct batch *nq = realloc(s->q, ncap * sizeof(*nq));

			if (!nq)
				return -ENOMEM;
			s->q = nq;
			s->cap = ncap;
		}
	}
	s->q[s->n++] = *b;
	s->bytes += b->bytes;
	s->rows += b->rows;
	return 0;
}

static void drop_oldest(struct pf_spool *s, bool count)
{
	struct batch *b = &s->q[s->head];
	char path[PATH_MAX];

	batch_path(s, b, path, sizeof(path));
	unlink(path);
	s->bytes -= b->bytes;
	s->rows -= b->rows;
	if (count) {
		s->dropped_batches++;
		s->dropped_rows += b->rows;
	}
	s->head++;
}

static int by_seq(const void *a, const void *b)
{
	const struct batch *x = a, *y = b;

	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/*
 * Whether the batch file at @path is whole: @rows lines, each one JSON
 * object ('{' ... '}' then '\n'), no NUL byte. A power cut can leave a
 * renamed batch empty, cut, or filled with zeros when its data had not
 * reached the disk (batches written before the fsync in push, or by a
 * file system that lost them anyway); such a batch must not be sent.
 */
static bool batch_ok(const char *path, uint64_t rows)
{
	char buf[65536];
	uint64_t lines = 0;
	char prev = '\n';
	bool ok = true;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

	if (fd < 0)
		return false;
	while (ok && (n = read(fd, buf, sizeof(buf))) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ok = false;
			break;
		}
		for (ssize_t i = 0; i < n && ok; i++) {
			char c = buf[i];

			if (!c || (prev == '\n' && c != '{') || (c == '\n' && prev != '}'))
				ok = false;
			if (c == '\n')
				lines++;
			prev = c;
		}
	}
	close(fd);
	return ok && prev == '\n' && lines == rows;
}

/* Batches moved aside (renamed *.bad) are kept for a look, the newest few only. */
#define PF_SPOOL_BAD_KEEP 8

static int by_u64(const void *a, const void *b)
{
	const uint64_t *x = a, *y = b;

	return *x < *y ? -1 : *x > *y;
}

/* Delete all but the PF_SPOOL_BAD_KEEP newest *.bad files (@seqs, @n of them). */
static void trim_bad(const char *dir, uint64_t *seqs, size_t n)
{
	char pattern[PATH_MAX];
	struct dirent *de;
	DIR *d;

	if (n <= PF_SPOOL_BAD_KEEP)
		return;
	qsort(seqs, n, sizeof(*seqs), by_u64);
	d = opendir(dir);
	if (!d)
		return;
	while ((de = readdir(d))) {
		unsigned long long seq, rows;
		char tail[16];

		if (sscanf(de->d_name, "%20llu-%20llu%15s", &seq, &rows, tail) != 3 ||
		    strcmp(tail, ".batch.bad") || seq >= seqs[n - PF_SPOOL_BAD_KEEP])
			continue;
		snprintf(pattern, sizeof(pattern), "%s/%s", dir, de->d_name);
		unlink(pattern);
	}
	closedir(d);
}

struct pf_spool *pf_spool__open(const char *dir, uint64_t max_bytes)
{
	uint64_t bad[1024]; /* seqs of *.bad files, for trim_bad() */
	size_t nbad = 0;
	struct pf_spool *s;
	struct dirent *de;
	DIR *d;
	int err;

	/* Only a directory nobody else can write (lib/safefs.h). */
	err = pf_safefs__open_dir(dir, 0750, PF_SAFEFS_NO_GROUP, NULL);
	if (err < 0) {
		errno = -err;
		return NULL;
	}
	close(err);
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s", dir) >= sizeof(s->dir)) {
		free(s);
		errno = ENAMETOOLONG;
		return NULL;
	}
	s->max_bytes = max_bytes;
	s->next_seq = 1;
	d = opendir(dir);
	if (!d) {
		err = errno;
		free(s);
		errno = err;
		return NULL;
	}
	while ((de = readdir(d))) {
		unsigned long long seq, rows;
		char tail[16], path[PATH_MAX];
		struct batch b;
		struct stat st;

		if (!strncmp(de->d_name, ".tmp-", 5)) {
			/* A batch a crash left half-written: never renamed, never counted. */
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
			continue;
		}
		if (sscanf(de->d_name, "%20llu-%20llu%15s", &seq, &rows, tail) != 3)
			continue;
		if (!strcmp(tail, ".batch.bad") && nbad < sizeof(bad) / sizeof(bad[0])) {
			bad[nbad++] = seq;
			continue;
		}
		if (strcmp(tail, ".batch"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		if (seq >= s->next_seq)
			s->next_seq = seq + 1;
		if (!batch_ok(path, rows)) {
			/* Cut or empty after a crash: moved aside, counted, never sent. */
			char aside[PATH_MAX + 8];

			snprintf(aside, sizeof(aside), "%s.bad", path);
			if (rename(path, aside))
				unlink(path);
			else if (nbad < sizeof(bad) / sizeof(bad[0]))
				bad[nbad++] = seq;
			s->bad_batches++;
			s->bad_rows += rows;
			continue;
		}
		b.seq = seq;
		b.rows = rows;
		b.bytes = (uint64_t)st.st_size;
		if (append(s, &b)) {
			closedir(d);
			pf_spool__close(s);
			errno = ENOMEM;
			return NULL;
		}
	}
	closedir(d);
	trim_bad(dir, bad, nbad);
	if (s->n)
		qsort(s->q, s->n, sizeof(*s->q), by_seq);
	while (s->bytes > s->max_bytes && s->head < s->n)
		drop_oldest(s, true);
	return s;
}

void pf_spool__close(struct pf_spool *s)
{
	if (!s)
		return;
	free(s->q);
	free(s);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -ENOSPC;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	if (fd < 0)
		return -errno;
	if (fsync(fd))
		err = -errno;
	close(fd);
	return err;
}

int pf_spool__push(struct pf_spool *s, const char *data, size_t len, uint64_t rows)
{
	struct batch b = {.seq = s->next_seq, .rows = rows, .bytes = len};
	char tmp[PATH_MAX], path[PATH_MAX];
	int fd, err;

	if (len > s->max_bytes) {
		s->dropped_batches++;
		s->dropped_rows += rows;
		return -EFBIG;
	}
	/* Room first: the oldest batches go. */
	while (s->bytes + len > s->max_bytes && s->head < s->n)
		drop_oldest(s, true);
	snprintf(tmp, sizeof(tmp), "%s/.tmp-%020llu", s->dir, (unsigned long long)b.seq);
	batch_path(s, &b, path, sizeof(path));
	fd = pf_safefs__create_tmp(tmp, 0640, PF_SAFEFS_NO_GROUP);
	if (fd < 0)
		return fd;
	err = write_all(fd, data, len);
	/* The data reaches the disk before the name does: after a power cut
	 * a batch name never stands for an empty or cut file. */
	if (!err && fsync(fd))
		err = -errno;
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
		return err;
	}
	/* And the name reaches the disk before the batch counts as stored
	 * (the sender may then drop it from memory). */
	err = sync_dir(s->dir);
	if (err) {
		unlink(path);
		return err;
	}
	err = append(s, &b);
	if (err) {
		unlink(path);
		return err;
	}
	s->next_seq++;
	return 0;
}

int pf_spool__peek(struct pf_spool *s, char **data, size_t *len, uint64_t *rows)
{
	struct batch *b;
	char path[PATH_MAX], *buf;
	struct stat st;
	size_t done = 0;
	int fd, err;

	if (s->head == s->n)
		return -ENOENT;
	b = &s->q[s->head];
	batch_path(s, b, path, sizeof(path));
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st)) {
		err = -errno;
		goto bad;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (done < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + done, (size_t)st.st_size - done);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		done += (size_t)r;
	}
	close(fd);
	fd = -1;
	if (done != (size_t)st.st_size) {
		free(buf);
		err = -EIO;
		goto bad;
	}
	buf[done] = '\0';
	*data = buf;
	*len = done;
	*rows = b->rows;
	return 0;
bad:
	if (fd >= 0)
		close(fd);
	/* Unreadable (removed by hand, disk error): it cannot be sent. */
	drop_oldest(s, true);
	return err == -ENOMEM ? err : -EIO;
}

void pf_spool__pop(struct pf_spool *s)
{
	if (s->head < s->n)
		drop_oldest(s, false);
}

size_t pf_spool__batches(const struct pf_spool *s)
{
	return s->n - s->head;
}

uint64_t pf_spool__bytes(const struct pf_spool *s)
{
	return s->bytes;
}

uint64_t pf_spool__rows(const struct pf_spool *s)
{
	return s->rows;
}

uint64_t pf_spool__dropped_batches(const struct pf_spool *s)
{
	return s->dropped_batches;
}

uint64_t pf_spool__dropped_rows(const struct pf_spool *s)
{
	return s->dropped_rows;
}

uint64_t pf_spool__bad_batches(const struct pf_spool *s)
{
	return s->bad_batches;
}

uint64_t pf_spool__bad_rows(const struct pf_spool *s)
{
	return s->bad_rows;
}
