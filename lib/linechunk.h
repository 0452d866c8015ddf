/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * An interval's lines handed on in chunks of bounded size.
 *
 * The aggregator produces an interval's lines one at a time; the outputs
 * want runs of whole lines (one write, one fallocate, one queue item per
 * run). Gathering the whole interval first cost memory in proportion to
 * the lines (~1.4 KB each: 280 MB for 200,000 lines at aggregation level
 * 0); here lines are copied into one fixed buffer and the buffer is handed
 * on whenever the next line would not fit, so memory stays at the chunk
 * size whatever the interval holds. The concatenation of the chunks is
 * byte for byte what one buffer of the interval would have held.
 *
 * A line longer than the chunk is handed on by itself, from the caller's
 * memory, after what was gathered before it: nothing is ever dropped here.
 */
#ifndef PF_LINECHUNK_H
#define PF_LINECHUNK_H

#include <stddef.h>
#include <stdint.h>

/* Receives a run of @nlines whole lines, @len bytes, valid during the call. */
typedef void (*pf_linechunk_fn)(const char *buf, size_t len, uint64_t nlines, void *ctx);

struct pf_linechunk {
	char *buf; /* allocated at the first line; NULL: none yet, or no memory */
	size_t len, size;
	uint64_t nlines; /* lines in buf */
	uint64_t chunks; /* runs handed on, in all */
	pf_linechunk_fn fn;
	void *ctx;
};

/* Set @c up to hand runs of at most @size bytes to @fn. Allocates nothing. */
void pf_linechunk__init(struct pf_linechunk *c, size_t size, pf_linechunk_fn fn, void *ctx);

/*
 * Add one whole line (@len bytes, ending in '\n'). Hands on what is
 * gathered first when the line would not fit. Without memory for the
 * buffer the line is handed on by itself: slower, nothing lost.
 */
void pf_linechunk__add(struct pf_linechunk *c, const char *line, size_t len);

/* Hand on what is gathered (the interval's end). Nothing to hand on: no call. */
void pf_linechunk__flush(struct pf_linechunk *c);

/* Free the buffer; what it still holds is not handed on. Accepts NULL. */
void pf_linechunk__fini(struct pf_linechunk *c);

#endif
