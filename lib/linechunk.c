// SPDX-License-Identifier: BSD-2-Clause
/*
 * An interval's lines in chunks of bounded size (see linechunk.h).
 */
#include "linechunk.h"

#include <stdlib.h>
#include <string.h>

void pf_linechunk__init(struct pf_linechunk *c, size_t size, pf_linechunk_fn fn, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->size = size ? size : 1;
	c->fn = fn;
	c->ctx = ctx;
}

void pf_linechunk__flush(struct pf_linechunk *c)
{
	if (!c->len)
		return;
	c->fn(c->buf, c->len, c->nlines, c->ctx);
	c->chunks++;
	c->len = 0;
	c->nlines = 0;
}

void pf_linechunk__add(struct pf_linechunk *c, const char *line, size_t len)
{
	if (!len)
		return;
	if (c->len + len > c->size)
		pf_linechunk__flush(c);
	/* The buffer is made at the first line, so an agent that never
	 * writes a line never holds it. */
	if (!c->buf && len <= c->size)
		c->buf = malloc(c->size);
	if (!c->buf || len > c->size) {
		/* Too long for any chunk, or no memory for one: on its own,
		 * from the caller's memory, in order (the buffer is empty). */
		c->fn(line, len, 1, c->ctx);
		c->chunks++;
		return;
	}
	memcpy(c->buf + c->len, line, len);
	c->len += len;
	c->nlines++;
}

void pf_linechunk__fini(struct pf_linechunk *c)
{
	if (!c)
		return;
	free(c->buf);
	c->buf = NULL;
	c->len = 0;
	c->nlines = 0;
}
