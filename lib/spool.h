/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A bounded on-disk queue of batches (the ClickHouse sink's spool).
 *
 * Each batch is one file, <seq>-<rows>.batch, written to a temporary name,
 * synced, renamed, and its directory synced, so a crash or a power cut
 * leaves whole batches only; a restart finds them and keeps their order
 * (by seq). A restart also checks each batch against its name (that many
 * lines, each a JSON object): one that fails (cut or emptied by a file
 * system that lost its data) is renamed <seq>-<rows>.batch.bad, counted
 * and never sent; the newest PF_SPOOL_BAD_KEEP (8) such files are kept. The total size of the batch
 * files is capped: pushing a batch that would pass the cap first deletes the oldest batches, and
 * their rows are counted as dropped. Not thread-safe: one owner (the sink's sender thread).
 */
#ifndef PF_SPOOL_H
#define PF_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct pf_spool;

/*
 * Open the spool in @dir (created 0750 when missing), holding at most
 * @max_bytes of batches; batches already there are checked and kept (the
 * oldest are dropped if they exceed the cap; damaged ones are set aside,
 * see pf_spool__bad_batches()). Returns NULL with errno set.
 */
struct pf_spool *pf_spool__open(const char *dir, uint64_t max_bytes);
void pf_spool__close(struct pf_spool *s); /* accepts NULL; keeps the files */

/*
 * Add a batch of @rows rows (@len bytes) at the end. Returns 0; -EFBIG when
 * the batch alone is larger than the cap (it is dropped and counted); or a
 * negative errno from the file system (then the batch is not stored and
 * the caller still has it).
 */
int pf_spool__push(struct pf_spool *s, const char *data, size_t len, uint64_t rows);

/*
 * Read the oldest batch into a malloc'd buffer (*@data, *@len, its row
 * count in *@rows). Returns 0, -ENOENT when the spool is empty, -ENOMEM
 * when there is no memory for it (it stays: try again later, not at once),
 * or -EIO (an unreadable batch is dropped and counted; call again for the
 * next).
 */
int pf_spool__peek(struct pf_spool *s, char **data, size_t *len, uint64_t *rows);
/* Delete the oldest batch (after it was delivered). */
void pf_spool__pop(struct pf_spool *s);

size_t pf_spool__batches(const struct pf_spool *s);
uint64_t pf_spool__bytes(const struct pf_spool *s);
uint64_t pf_spool__rows(const struct pf_spool *s);
/* Batches and rows dropped because the spool was full (or unreadable). */
uint64_t pf_spool__dropped_batches(const struct pf_spool *s);
uint64_t pf_spool__dropped_rows(const struct pf_spool *s);
/* Batches (and the rows their names promised) set aside at open as damaged. */
uint64_t pf_spool__bad_batches(const struct pf_spool *s);
uint64_t pf_spool__bad_rows(const struct pf_spool *s);

#endif
