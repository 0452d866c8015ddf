/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The flow-log file: <dir>/flows.log, appended to with whole lines only,
 * rotated by size into flows.log.1 (newest) .. flows.log.N, optionally
 * compressed with zstd (flows.log.N.zst).
 *
 * What a reader tailing the file (a log shipper) can rely on:
 *   - never a partial line: callers hand over buffers of whole lines; the
 *     space for each write is reserved first (fallocate), and if the disk
 *     still fills in the middle the file is cut back to the last whole line
 *     and the unwritten lines are counted as lost;
 *   - never a line split across a rotation: rotation happens only between
 *     writes, which are cut at line boundaries;
 *   - no gap or duplicate across a rotation: flows.log is renamed (the
 *     reader's open descriptor still reads it to its end), and a new
 *     flows.log is created; every line goes to exactly one file.
 *
 * When the directory is unwritable or the disk is full, writes fail and
 * their lines are counted (pf_logfile__lost()); the next write tries again
 * (re-creating flows.log if it had to be dropped), so writing resumes by
 * itself when space comes back. When a rotation renamed flows.log but could
 * not create a new one (out of descriptors or inodes), lines go on into the
 * renamed file (flows.log.1), and every later write first tries to create
 * flows.log again; there is no other rotation until that works.
 */
#ifndef PF_LOGFILE_H
#define PF_LOGFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_logfile;

struct pf_logfile_opts {
	const char *dir;
	bool set_group; /* give the directory and files group @group */
	unsigned group;
	unsigned file_mode; /* 0: 0640 */
	unsigned dir_mode;  /* 0: 0750; only used when @dir is created */
	uint64_t max_bytes; /* rotate before flows.log would exceed this; 0: never */
	unsigned max_files; /* rotated files kept (0: the old file is deleted) */
	bool compress;	    /* zstd-compress rotated files */
};

/*
 * Open (create) @o->dir/flows.log for appending; @o->dir is created when
 * missing. An existing @o->dir must be owned by root (or this user) and not
 * writable by group or others (EPERM), and not a symbolic link (ELOOP);
 * flows.log must not be a symbolic link (ELOOP) and must be a regular file
 * (EINVAL). See lib/safefs.h. A file that does not end in a newline (its writer was killed in
 * a write) is first cut back to its last whole line
 * (pf_logfile__repaired()). Returns NULL with errno set: ENOTDIR when the directory is not
 * a directory, EACCES, ...
 */
struct pf_logfile *pf_logfile__open_opts(const struct pf_logfile_opts *o);

/* pf_logfile__open_opts() with default modes and no rotation. */
struct pf_logfile *pf_logfile__open(const char *dir);
void pf_logfile__close(struct pf_logfile *f); /* accepts NULL */

/* Change the rotation settings of an open file (a reload). They apply
 * from the next write. */
void pf_logfile__set_rotation(struct pf_logfile *f, uint64_t max_bytes, unsigned max_files,
			      bool compress);

/*
 * Append @len bytes holding @nlines whole lines, rotating first whenever
 * the next lines would take flows.log past max_bytes (a single line larger
 * than max_bytes gets a file of its own). Returns 0, or a negative errno
 * when some lines could not be written; the file then holds no part of
 * them and they are added to the lost counter.
 */
int pf_logfile__write(struct pf_logfile *f, const char *buf, size_t len, uint64_t nlines);

/* Bytes cut at open from the end of flows.log: a partial last line that a
 * killed writer left (the file is cut back to its last newline). */
uint64_t pf_logfile__repaired(const struct pf_logfile *f);
/* Lines that could not be written, since open. */
uint64_t pf_logfile__lost(const struct pf_logfile *f);
/* Rotations done, and rotations that failed (the file then grows on). */
uint64_t pf_logfile__rotations(const struct pf_logfile *f);
uint64_t pf_logfile__rotate_failures(const struct pf_logfile *f);
const char *pf_logfile__path(const struct pf_logfile *f);

/*
 * Compress @src into @dst with zstd (level 3), streaming; @dst is created
 * with @mode, written under a temporary name (@dst.tmp, created with
 * O_EXCL; a link planted there is removed, never followed) and renamed into
 * place, so a reader never sees a half-written .zst. Returns 0 or a
 * negative errno.
 */
int pf_zstd_compress_file(const char *src, const char *dst, unsigned mode);

#endif
