/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The flow-log file: <dir>/flows.log, appended to with whole lines only.
 *
 * A reader tailing the file (a log shipper) must never see a partial line:
 * callers hand over buffers of whole lines and each buffer is written with
 * O_APPEND writes; if the disk fills in the middle, the file is cut back
 * to the last whole line and the unwritten lines are counted as lost.
 */
#ifndef PF_LOGFILE_H
#define PF_LOGFILE_H

#include <stddef.h>
#include <stdint.h>

struct pf_logfile;

/*
 * Open (create) @dir/flows.log for appending, mode 0640; @dir is created
 * (0750) when missing. Returns NULL with errno set: ENOTDIR when @dir is
 * not a directory, EACCES, ...
 */
struct pf_logfile *pf_logfile__open(const char *dir);
void pf_logfile__close(struct pf_logfile *f); /* accepts NULL */

/*
 * Append @len bytes holding @nlines whole lines. Returns 0, or a negative
 * errno when the lines could not all be written; then the file holds no
 * part of them and they are added to the lost counter.
 */
int pf_logfile__write(struct pf_logfile *f, const char *buf, size_t len, uint64_t nlines);

uint64_t pf_logfile__lost(const struct pf_logfile *f);
const char *pf_logfile__path(const struct pf_logfile *f);

#endif
