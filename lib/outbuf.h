/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A bounded output buffer in front of a descriptor that may block (the
 * agent's standard output: a pipe to a slow reader, a terminal).
 *
 * The descriptor is written without ever blocking (the caller makes it
 * non-blocking); what the reader cannot take yet waits here, up to a hard
 * cap. Lines that would take the buffer past the cap are dropped whole and
 * counted, so the reader only ever sees whole lines, in order, and a gap
 * only between lines. Once the reader has gone (EPIPE) the buffer stops:
 * every later line is dropped without a write.
 */
#ifndef PF_OUTBUF_H
#define PF_OUTBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_outbuf;

/* Buffer for @fd, holding at most @cap bytes. NULL on ENOMEM. */
struct pf_outbuf *pf_outbuf__new(int fd, size_t cap);
void pf_outbuf__free(struct pf_outbuf *o); /* accepts NULL; leaves @fd open */

/*
 * Queue @len bytes of whole lines (@nlines of them) and write what the
 * descriptor takes now. Lines beyond the cap are dropped and counted.
 * Returns 0; -EPIPE once the reader is gone (the lines are dropped and
 * counted); another negative errno from write() (the lines stay queued).
 */
int pf_outbuf__write(struct pf_outbuf *o, const char *buf, size_t len, uint64_t nlines);

/* Write what is queued, as far as the descriptor takes it. Returns 0,
 * -EPIPE once the reader is gone, or another negative errno. */
int pf_outbuf__flush(struct pf_outbuf *o);

size_t pf_outbuf__pending(const struct pf_outbuf *o);	/* bytes queued */
uint64_t pf_outbuf__dropped(const struct pf_outbuf *o); /* lines dropped, total */
bool pf_outbuf__closed(const struct pf_outbuf *o);	/* the reader is gone */

/* Give up what is still queued (at exit): its lines count as dropped. */
void pf_outbuf__discard(struct pf_outbuf *o);

#endif
