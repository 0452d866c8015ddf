// SPDX-License-Identifier: BSD-2-Clause
#include "flowfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

/* 1 MiB reads: large enough that read() costs nothing per line. */
#define CHUNK (1u << 20)

struct pf_flowfile {
	int fd;
	ZSTD_DStream *z; /* NULL for a plain file */
	char *zin;	 /* compressed input */
	ZSTD_inBuffer zib;
	char *buf; /* decoded bytes: [pos, len) not yet returned */
	size_t pos, len, cap;
	bool is_zst;
	size_t zret;   /* the decoder's last answer: 0 at the end of a frame */
	bool zflush;   /* the last call filled the output: it may hold more */
	bool cut;      /* a .zst that ends inside a frame */
	bool skipping; /* inside an oversize line: drop up to its '\n' */
	bool eof;
	uint64_t oversize;
	uint64_t offset; /* bytes read from fd */
};

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && !memcmp(s + n - m, suf, m);
}

/* The buffers are taken at the first read, not at open: a query opens
 * every file of a directory before reading the first (so a rotation
 * during the query cannot move lines between names), and a thousand
 * rotated files must not hold a thousand buffers. */
static int lazy_init(struct pf_flowfile *f)
{
	if (f->buf)
		return 0;
	f->cap = CHUNK * 2;
	f->buf = malloc(f->cap);
	if (!f->buf)
		return -ENOMEM;
	if (f->is_zst) {
		f->z = ZSTD_createDStream();
		f->zin = malloc(ZSTD_DStreamInSize());
		if (!f->z || !f->zin)
			return -ENOMEM;
		ZSTD_initDStream(f->z);
		f->zret = 1; /* no frame yet: an empty .zst is a cut one */
	}
	return 0;
}

struct pf_flowfile *pf_flowfile__from_fd(int fd, bool zst)
{
	struct pf_flowfile *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->fd = fd;
	f->is_zst = zst;
	return f;
}

struct pf_flowfile *pf_flowfile__open(const char *path)
{
	struct pf_flowfile *f;
	struct stat st;
	int fd, err, fl;

	/* O_NONBLOCK: a FIFO named flows.log.3 must not hang the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		err = errno;
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
		goto fail;
	}
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK)) {
		err = errno;
		goto fail;
	}
	f = pf_flowfile__from_fd(fd, has_suffix(path, ".zst"));
	if (!f) {
		err = ENOMEM;
		goto fail;
	}
	return f;
fail:
	close(fd);
	errno = err;
	return NULL;
}

void pf_flowfile__close(struct pf_flowfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	ZSTD_freeDStream(f->z);
	free(f->zin);
	free(f->buf);
	free(f);
}

int pf_flowfile__fd(const struct pf_flowfile *f)
{
	return f->fd;
}

uint64_t pf_flowfile__offset(const struct pf_flowfile *f)
{
	return f->offset;
}

uint64_t pf_flowfile__oversize(const struct pf_flowfile *f)
{
	return f->oversize;
}

int pf_flowfile__rewind(struct pf_flowfile *f)
{
	if (lseek(f->fd, 0, SEEK_SET) < 0)
		return -errno;
	f->pos = f->len = 0;
	f->offset = 0;
	f->skipping = false;
	f->eof = false;
	f->cut = false;
	if (f->z) {
		ZSTD_initDStream(f->z);
		f->zib.size = f->zib.pos = 0;
		f->zret = 1;
		f->zflush = false;
	}
	return 0;
}

static ssize_t rd(struct pf_flowfile *f, void *dst, size_t n)
{
	ssize_t r;

	do
		r = read(f->fd, dst, n);
	while (r < 0 && errno == EINTR);
	if (r > 0)
		f->offset += (uint64_t)r;
	return r < 0 ? -errno : r;
}

/* Append decoded bytes at buf[len..cap). Returns bytes added, 0 at EOF,
 * -ENODATA at the end of a .zst cut inside a frame (a rotation or a copy
 * cut short: the lines after the cut are lost, which must be said). */
static ssize_t fill(struct pf_flowfile *f)
{
	size_t room = f->cap - f->len;

	if (!f->z)
		return rd(f, f->buf + f->len, room);
	for (;;) {
		ZSTD_outBuffer ob = {f->buf + f->len, room, 0};
		size_t ret;

		/* Input is read only when the decoder has given all it holds. */
		if (f->zib.pos == f->zib.size && !f->zflush) {
			ssize_t r = rd(f, f->zin, ZSTD_DStreamInSize());

			if (r < 0)
				return r;
			if (r == 0)
				return f->zret ? -ENODATA : 0;
			f->zib.src = f->zin;
			f->zib.size = (size_t)r;
			f->zib.pos = 0;
		}
		ret = ZSTD_decompressStream(f->z, &ob, &f->zib);
		if (ZSTD_isError(ret))
			return -EBADMSG;
		f->zret = ret;
		f->zflush = ob.pos == ob.size;
		if (ob.pos)
			return (ssize_t)ob.pos;
	}
}

int pf_flowfile__next(struct pf_flowfile *f, bool final, const char **line, size_t *len)
{
	int err = lazy_init(f);

	if (err)
		return err;
	for (;;) {
		char *s = f->buf + f->pos, *nl;
		size_t avail = f->len - f->pos;
		ssize_t r;

		nl = memchr(s, '\n', avail);
		if (nl) {
			f->pos += (size_t)(nl - s) + 1;
			if (f->skipping) {
				f->skipping = false;
				continue;
			}
			*line = s;
			*len = (size_t)(nl - s);
			return 1;
		}
		/* No '\n' in what we have: move the partial line to the front
		 * and read more. */
		if (f->pos) {
			memmove(f->buf, s, avail);
			f->pos = 0;
			f->len = avail;
		}
		if (f->len == f->cap) {
			if (f->cap >= PF_FLOWFILE_LINE_MAX || f->skipping) {
				/* Oversize: drop what we have, skip to its end. */
				if (!f->skipping)
					f->oversize++;
				f->skipping = true;
				f->len = 0;
			} else {
				size_t ncap = f->cap * 2;
				char *n = realloc(f->buf, ncap);

				if (!n)
					return -ENOMEM;
				f->buf = n;
				f->cap = ncap;
			}
		}
		r = f->cut ? 0 : fill(f);
		if (r == -ENODATA) {
			f->cut = true; /* the bytes before the cut first, then the error */
			r = 0;
		}
		if (r < 0)
			return (int)r;
		if (r == 0) {
			if ((final || f->cut) && f->len && !f->skipping) {
				*line = f->buf;
				*len = f->len;
				f->pos = f->len = 0;
				return 1;
			}
			return f->cut ? -ENODATA : 0;
		}
		f->len += (size_t)r;
	}
}

/* ---- the files of a directory ---- */

struct entry {
	char *path;
	long n; /* rotation number; 0 for flows.log */
	bool zst;
};

static int by_age(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;

	if (x->n != y->n)
		return x->n > y->n ? -1 : 1;
	return (int)x->zst - (int)y->zst; /* plain first */
}

/* "flows.log" -> 0, "flows.log.N" -> N, "flows.log.N.zst" -> N (zst), else -1. */
static long rot_number(const char *name, bool *zst)
{
	const char *p;
	long n = 0;

	*zst = false;
	if (strncmp(name, "flows.log", 9))
		return -1;
	p = name + 9;
	if (!*p)
		return 0;
	if (*p++ != '.' || *p < '1' || *p > '9')
		return -1;
	while (*p >= '0' && *p <= '9') {
		if (n > 100000000)
			return -1;
		n = n * 10 + (*p++ - '0');
	}
	if (!strcmp(p, ".zst"))
		*zst = true;
	else if (*p)
		return -1;
	return n;
}

int pf_flowfiles__list(const char *dir, char ***paths)
{
	struct entry *ents = NULL;
	struct dirent *de;
	char **out = NULL;
	int n = 0, cap = 0, k = 0, err = 0;
	DIR *d = opendir(dir);

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		bool zst;
		long num = rot_number(de->d_name, &zst);
		size_t plen;

		if (num < 0)
			continue;
		if (n == cap) {
			int ncap = cap ? cap * 2 : 16;
			struct entry *e = realloc(ents, (size_t)ncap * sizeof(*e));

			if (!e) {
				err = -ENOMEM;
				goto out;
			}
			ents = e;
			cap = ncap;
		}
		plen = strlen(dir) + 1 + strlen(de->d_name) + 1;
		ents[n].path = malloc(plen);
		if (!ents[n].path) {
			err = -ENOMEM;
			goto out;
		}
		snprintf(ents[n].path, plen, "%s/%s", dir, de->d_name);
		ents[n].n = num;
		ents[n].zst = zst;
		n++;
	}
	if (n)
		qsort(ents, (size_t)n, sizeof(*ents), by_age);
	out = calloc((size_t)n + 1, sizeof(*out));
	if (!out) {
		err = -ENOMEM;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		/* flows.log.N and flows.log.N.zst both: the plain one (sorted
		 * first) is whole; the .zst is still being written. */
		if (i > 0 && ents[i].n == ents[i - 1].n && ents[i].zst && !ents[i - 1].zst) {
			free(ents[i].path);
			continue;
		}
		out[k++] = ents[i].path;
	}
	n = 0; /* ownership moved */
	*paths = out;
	err = k;
out:
	for (int i = 0; i < n; i++)
		free(ents[i].path);
	free(ents);
	closedir(d);
	return err;
}

void pf_flowfiles__free(char **paths, int n)
{
	if (!paths)
		return;
	for (int i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
}
