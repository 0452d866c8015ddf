/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reading flow-log files line by line, for `procflow query`: the current
 * file, rotated ones (flows.log.N) and compressed rotated ones
 * (flows.log.N.zst, read with libzstd's streaming decoder, so memory stays
 * bounded whatever the file's size).
 */
#ifndef PF_FLOWFILE_H
#define PF_FLOWFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Lines longer than this are skipped (and counted): no valid record comes
 * near it (arguments are capped at 16 KiB per string, 5 strings). */
#define PF_FLOWFILE_LINE_MAX (4u << 20)

struct pf_flowfile;

/*
 * Open @path for reading; a name ending in ".zst" is decompressed. Only a
 * regular file is taken (a FIFO or device would block or never end): other
 * types fail with EINVAL (EISDIR for a directory), without blocking.
 * Nothing is read and no buffer is taken until the first
 * pf_flowfile__next(), so many files can be held open at once.
 * Returns NULL with errno set.
 */
struct pf_flowfile *pf_flowfile__open(const char *path);

/* Read the open descriptor @fd (a pipe is fine: standard input), plain or
 * (@zst) compressed. pf_flowfile__close() closes @fd. NULL on ENOMEM. */
struct pf_flowfile *pf_flowfile__from_fd(int fd, bool zst);
void pf_flowfile__close(struct pf_flowfile *f); /* accepts NULL */

/*
 * The next whole line (without its '\n') in *@line / *@len, valid until the
 * next call. Returns 1, or 0 when no whole line is left for now (end of
 * file; a later call may find more when the file grows), or a negative
 * errno: a read error, -EBADMSG for corrupt compressed data, -ENODATA for
 * a .zst that ends inside a frame (cut short; returned after the whole
 * lines before the cut, and the bytes of a last partial line). With @final, a last line
 * without '\n' at the end of the file is returned too (a file cut in the
 * middle of a line); without it, it is kept back until its '\n' arrives.
 */
int pf_flowfile__next(struct pf_flowfile *f, bool final, const char **line, size_t *len);

/* Lines skipped because longer than PF_FLOWFILE_LINE_MAX. */
uint64_t pf_flowfile__oversize(const struct pf_flowfile *f);

/* The descriptor (for fstat), and the bytes of the file consumed so far. */
int pf_flowfile__fd(const struct pf_flowfile *f);
uint64_t pf_flowfile__offset(const struct pf_flowfile *f);
/* Start again from the beginning (the file was truncated under us). */
int pf_flowfile__rewind(struct pf_flowfile *f);

/*
 * The flow files of @dir, oldest first: flows.log.N (or .N.zst) by
 * decreasing N, then flows.log. When both flows.log.N and flows.log.N.zst
 * exist (compression in progress), the uncompressed one is read. Returns
 * the count and a malloc'd array of malloc'd paths in *@paths, or a
 * negative errno.
 */
int pf_flowfiles__list(const char *dir, char ***paths);
void pf_flowfiles__free(char **paths, int n);

#endif
