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

struct pf_spool *pf_spool__open(const char *dir, uint64_t max_bytes)
{
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
		if (sscanf(de->d_name, "%20llu-%20llu%15s", &seq, &rows, tail) != 3 ||
		    strcmp(tail, ".batch"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (lstat(path, &st) || !S_ISREG(st.st_mode))
			continue;
		b.seq = seq;
		b.rows = rows;
		b.bytes = (uint64_t)st.st_size;
		if (append(s, &b)) {
			closedir(d);
			pf_spool__close(s);
			errno = ENOMEM;
			return NULL;
		}
		if (seq >= s->next_seq)
			s->next_seq = seq + 1;
	}
	closedir(d);
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
	if (close(fd) && !err)
		err = -errno;
	if (!err && rename(tmp, path))
		err = -errno;
	if (err) {
		unlink(tmp);
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
