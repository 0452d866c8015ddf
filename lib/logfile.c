// SPDX-License-Identifier: BSD-2-Clause
/*
 * The flow-log file, its rotation and compression (see logfile.h).
 */
#include "logfile.h"
#include "safefs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#define LOG_NAME "flows.log"
/* Rotated files beyond max_files are looked for up to this index, so
 * lowering max_files on a reload removes the ones now over the limit. */
#define LOG_SWEEP_MAX 1000

struct pf_logfile {
	/* -1 when flows.log could not be created (again): retried first thing
	 * on the next write. */
	int fd;
	/* A rotation renamed flows.log to flows.log.1 but could not create a
	 * new flows.log: fd is still the renamed file, and lines go on into
	 * it rather than be lost. The next write first tries to create
	 * flows.log again; until that works there is no further rotation
	 * (it would rename this file up the chain until it is deleted). */
	bool orphan;
	uint64_t lost, rotations, rotate_failures;
	uint64_t repaired; /* bytes of partial last lines cut at open */
	uint64_t max_bytes;
	unsigned max_files, file_mode;
	gid_t group; /* PF_SAFEFS_NO_GROUP: the creator's */
	bool compress;
	char dir[PATH_MAX];
	char path[PATH_MAX];
};

static void rotated_name(const struct pf_logfile *f, unsigned i, bool zst, char *buf, size_t sz);

/*
 * A write cut short by a fatal signal (SIGKILL, the OOM killer) can leave
 * a partial last line; the next line appended would fuse with it into one
 * that parses as nothing. Cut the file back to its last newline. Returns
 * the bytes cut (0 when the file ends well), or a negative errno.
 */
static int64_t repair_tail(int fd)
{
	char buf[4096];
	struct stat st;
	off_t end, pos;

	if (fstat(fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return 0;
	end = st.st_size;
	for (pos = end; pos > 0;) {
		size_t n = pos < (off_t)sizeof(buf) ? (size_t)pos : sizeof(buf);
		ssize_t r = pread(fd, buf, n, pos - (off_t)n);
		char *nl;

		if (r != (ssize_t)n)
			return r < 0 ? -errno : -EIO;
		nl = memrchr(buf, '\n', n);
		if (nl) {
			pos = pos - (off_t)n + (nl - buf) + 1;
			break;
		}
		pos -= (off_t)n;
	}
	if (pos == end)
		return 0;
	if (ftruncate(fd, pos))
		return -errno;
	return end - pos;
}

static int open_log(struct pf_logfile *f)
{
	/* Never through a link; the mode (and group) set only on a file
	 * created here, whatever the umask says. */
	int fd = pf_safefs__open_file(f->path, O_RDWR | O_APPEND, f->file_mode, f->group);
	int64_t cut;

	if (fd < 0)
		return fd;
	cut = repair_tail(fd);
	if (cut < 0) {
		close(fd);
		return (int)cut;
	}
	f->repaired += (uint64_t)cut;
	f->fd = fd;
	return 0;
}

struct pf_logfile *pf_logfile__open_opts(const struct pf_logfile_opts *o)
{
	gid_t group = o && o->set_group ? (gid_t)o->group : PF_SAFEFS_NO_GROUP;
	struct pf_logfile *f;
	int dfd, err;

	if (!o || !o->dir || !*o->dir) {
		errno = EINVAL;
		return NULL;
	}
	/* Only a directory nobody else can write: its files' names are
	 * then ours, and resolving them again later is safe. */
	dfd = pf_safefs__open_dir(o->dir, o->dir_mode ? o->dir_mode : 0750, group, NULL);
	if (dfd < 0) {
		errno = -dfd;
		return NULL;
	}
	close(dfd);
	f = calloc(1, sizeof(*f));
	if (!f)
		return NULL;
	f->fd = -1;
	f->group = group;
	f->file_mode = o->file_mode ? o->file_mode : 0640;
	f->max_bytes = o->max_bytes;
	f->max_files = o->max_files;
	f->compress = o->compress;
	if (snprintf(f->dir, sizeof(f->dir), "%s", o->dir) >= (int)sizeof(f->dir) ||
	    snprintf(f->path, sizeof(f->path), "%s/" LOG_NAME, o->dir) >= (int)sizeof(f->path)) {
		free(f);
		errno = ENAMETOOLONG;
		return NULL;
	}
	err = open_log(f);
	if (err) {
		free(f);
		errno = -err;
		return NULL;
	}
	return f;
}

struct pf_logfile *pf_logfile__open(const char *dir)
{
	struct pf_logfile_opts o = {.dir = dir};

	return pf_logfile__open_opts(&o);
}

void pf_logfile__close(struct pf_logfile *f)
{
	if (!f)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f);
}

static int compress_file(const char *src, const char *dst, unsigned mode, gid_t group);

static void compress_rotated(struct pf_logfile *f)
{
	char a[PATH_MAX + 16], b[PATH_MAX + 16];

	if (!f->compress || !f->max_files)
		return;
	rotated_name(f, 1, false, a, sizeof(a));
	rotated_name(f, 1, true, b, sizeof(b));
	/* On failure the plain file stays: rotated, just not smaller. */
	if (!compress_file(a, b, f->file_mode, f->group))
		unlink(a);
}

/*
 * Create flows.log again after it could not be: on success an orphan
 * (flows.log.1, see struct pf_logfile) is closed and its rotation
 * finished. Returns 0 or a negative errno (nothing changed).
 */
static int reopen(struct pf_logfile *f)
{
	int oldfd = f->fd, err;

	err = open_log(f);
	if (err) {
		f->fd = oldfd;
		return err;
	}
	if (oldfd >= 0)
		close(oldfd);
	if (f->orphan) {
		f->orphan = false;
		f->rotations++;
		compress_rotated(f);
	}
	return 0;
}

void pf_logfile__set_rotation(struct pf_logfile *f, uint64_t max_bytes, unsigned max_files,
			      bool compress)
{
	f->max_bytes = max_bytes;
	f->max_files = max_files;
	f->compress = compress;
}

/* ---- rotation -------------------------------------------------------------------------------- */

static void rotated_name(const struct pf_logfile *f, unsigned i, bool zst, char *buf, size_t sz)
{
	snprintf(buf, sz, "%s.%u%s", f->path, i, zst ? ".zst" : "");
}

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -ENOSPC;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int compress_file(const char *src, const char *dst, unsigned mode, gid_t group)
{
	size_t incap = ZSTD_CStreamInSize(), outcap = ZSTD_CStreamOutSize();
	char tmp[PATH_MAX + 8];
	char *in = NULL, *out = NULL;
	ZSTD_CCtx *cc = NULL;
	int ifd = -1, ofd = -1, err = 0;
	bool last = false;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", dst) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	in = malloc(incap);
	out = malloc(outcap);
	cc = ZSTD_createCCtx();
	if (!in || !out || !cc) {
		err = -ENOMEM;
		goto out;
	}
	ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, 3);
	ZSTD_CCtx_setParameter(cc, ZSTD_c_checksumFlag, 1);
	ifd = open(src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (ifd < 0) {
		err = -errno;
		goto out;
	}
	ofd = pf_safefs__create_tmp(tmp, mode, group);
	if (ofd < 0) {
		err = ofd;
		goto out;
	}
	while (!last) {
		ssize_t n = read(ifd, in, incap);
		ZSTD_inBuffer ib;
		size_t rem;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			goto out;
		}
		last = n == 0;
		ib.src = in;
		ib.size = (size_t)n;
		ib.pos = 0;
		do {
			ZSTD_outBuffer ob = {out, outcap, 0};

			rem =
			    ZSTD_compressStream2(cc, &ob, &ib, last ? ZSTD_e_end : ZSTD_e_continue);
			if (ZSTD_isError(rem)) {
				err = -EIO;
				goto out;
			}
			err = write_all(ofd, out, ob.pos);
			if (err)
				goto out;
		} while (last ? rem != 0 : ib.pos < ib.size);
	}
	if (fsync(ofd)) {
		err = -errno;
		goto out;
	}
	if (rename(tmp, dst))
		err = -errno;
out:
	if (ofd >= 0) {
		close(ofd);
		if (err)
			unlink(tmp);
	}
	if (ifd >= 0)
		close(ifd);
	ZSTD_freeCCtx(cc);
	free(in);
	free(out);
	return err;
}

int pf_zstd_compress_file(const char *src, const char *dst, unsigned mode)
{
	return compress_file(src, dst, mode, PF_SAFEFS_NO_GROUP);
}

/*
 * Shift flows.log.i -> .i+1 (oldest first, the last one falls off), then
 * flows.log -> flows.log.1, then start a new flows.log. The old descriptor
 * is closed only once the new file exists, so a failure leaves the agent
 * writing somewhere: into flows.log itself when a rename failed, into the
 * renamed file (an orphan) when the new flows.log could not be created.
 * Returns 0 or a negative errno; f->fd is -1 only when the old file was
 * deleted (max_files 0) and no new one could be created.
 */
static int rotate(struct pf_logfile *f)
{
	char a[PATH_MAX + 16], b[PATH_MAX + 16];
	int oldfd = f->fd, err;

	/* Files over the limit (also after max_files was lowered). */
	for (unsigned i = f->max_files ? f->max_files : 1; i <= LOG_SWEEP_MAX; i++) {
		bool any = false;

		for (int z = 0; z < 2; z++) {
			rotated_name(f, i, z, a, sizeof(a));
			if (!unlink(a) || errno != ENOENT)
				any = true;
		}
		if (!any && i > f->max_files + 1)
			break;
	}
	for (unsigned i = f->max_files; i-- > 1;) {
		for (int z = 0; z < 2; z++) {
			rotated_name(f, i, z, a, sizeof(a));
			rotated_name(f, i + 1, z, b, sizeof(b));
			if (rename(a, b) && errno != ENOENT) {
				err = -errno;
				f->rotate_failures++;
				return err;
			}
		}
	}
	rotated_name(f, 1, false, a, sizeof(a));
	if (f->max_files ? rename(f->path, a) : unlink(f->path)) {
		err = -errno;
		f->rotate_failures++;
		return err;
	}
	err = open_log(f);
	if (err) {
		f->rotate_failures++;
		if (!f->max_files) {
			/* The old file is deleted: nowhere to write. */
			if (oldfd >= 0)
				close(oldfd);
			f->fd = -1;
			return err;
		}
		/* The name is gone but the old file is still open: keep
		 * appending to it (as flows.log.1) rather than lose lines;
		 * the next write tries to create flows.log again. */
		f->fd = oldfd;
		f->orphan = true;
		return err;
	}
	if (oldfd >= 0)
		close(oldfd);
	f->rotations++;
	compress_rotated(f);
	return 0;
}

/* ---- writing --------------------------------------------------------------------------------- */

static uint64_t count_lines(const char *buf, size_t len)
{
	uint64_t n = 0;

	for (const char *p = buf; (p = memchr(p, '\n', (size_t)(buf + len - p))); p++)
		n++;
	return n;
}

/* Append @len bytes of whole lines, all or nothing. */
static int append(struct pf_logfile *f, const char *buf, size_t len, off_t start)
{
	int err;

	/* Reserve the space first: on a full disk this fails before a byte
	 * is written, so a tailing reader never even glimpses a partial
	 * line. File systems without fallocate fall back to cutting back. */
	if (start >= 0 && fallocate(f->fd, FALLOC_FL_KEEP_SIZE, start, (off_t)len)) {
		err = -errno;
		if (err != -EOPNOTSUPP && err != -ENOSYS) {
			(void)ftruncate(f->fd, start); /* release what was reserved */
			return err;
		}
	}
	err = write_all(f->fd, buf, len);
	if (err && start >= 0)
		(void)ftruncate(f->fd, start); /* never leave a partial line */
	return err;
}

int pf_logfile__write(struct pf_logfile *f, const char *buf, size_t len, uint64_t nlines)
{
	size_t done = 0;
	uint64_t written = 0;
	struct stat st;
	int err = 0;

	/* The file could not be (re)created last time: try again, before
	 * anything else. An orphan takes the lines meanwhile. */
	if ((f->fd < 0 || f->orphan) && (err = reopen(f)) && f->fd < 0) {
		f->lost += nlines;
		return err;
	}
	while (done < len) {
		size_t chunk = len - done;
		off_t size;

		/* Where the file ends now: someone may have truncated it. */
		size = fstat(f->fd, &st) ? -1 : st.st_size;
		if (f->max_bytes && size >= 0 && !f->orphan) {
			/* The longest run of whole lines that still fits; at
			 * least one line when the file is empty. */
			const char *p = buf + done, *end = buf + len, *cut = NULL, *nl;
			uint64_t room =
			    (uint64_t)size < f->max_bytes ? f->max_bytes - (uint64_t)size : 0;

			for (const char *q = p;
			     q < end && (nl = memchr(q, '\n', (size_t)(end - q))); q = nl + 1) {
				if ((uint64_t)(nl + 1 - p) > room)
					break;
				cut = nl + 1;
			}
			if (!cut) {
				if (size > 0 && !(err = rotate(f)))
					continue; /* a fresh file: measure again */
				if (f->fd < 0) {
					/* The old file was deleted, no new one: the
					 * next write tries again. */
					f->lost += nlines > written ? nlines - written : 0;
					return err;
				}
				/* Empty file, or rotation failed: one line anyway. */
				nl = memchr(p, '\n', (size_t)(end - p));
				cut = nl ? nl + 1 : end;
			}
			chunk = (size_t)(cut - p);
		}
		err = append(f, buf + done, chunk, size);
		if (err) {
			f->lost += nlines > written ? nlines - written : 0;
			return err;
		}
		written += count_lines(buf + done, chunk);
		done += chunk;
	}
	return 0;
}

uint64_t pf_logfile__lost(const struct pf_logfile *f)
{
	return f->lost;
}

uint64_t pf_logfile__repaired(const struct pf_logfile *f)
{
	return f->repaired;
}

uint64_t pf_logfile__rotations(const struct pf_logfile *f)
{
	return f->rotations;
}

uint64_t pf_logfile__rotate_failures(const struct pf_logfile *f)
{
	return f->rotate_failures;
}

const char *pf_logfile__path(const struct pf_logfile *f)
{
	return f->path;
}
