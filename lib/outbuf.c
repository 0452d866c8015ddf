// SPDX-License-Identifier: BSD-2-Clause
/*
 * The bounded, never-blocking output buffer (see outbuf.h).
 */
#include "outbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct pf_outbuf {
	int fd;
	bool closed;
	char *buf; /* queued bytes: buf[head..len) */
	size_t head, len, cap;
	uint64_t dropped;
};

struct pf_outbuf *pf_outbuf__new(int fd, size_t cap)
{
	struct pf_outbuf *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->buf = malloc(cap ? cap : 1);
	if (!o->buf) {
		free(o);
		return NULL;
	}
	o->fd = fd;
	o->cap = cap;
	return o;
}

void pf_outbuf__free(struct pf_outbuf *o)
{
	if (!o)
		return;
	free(o->buf);
	free(o);
}

static uint64_t count_lines(const char *p, size_t len)
{
	uint64_t n = 0;

	for (const char *end = p + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		n++;
	return n;
}

void pf_outbuf__discard(struct pf_outbuf *o)
{
	o->dropped += count_lines(o->buf + o->head, o->len - o->head);
	/* A line already partly written counts too: its end never comes. */
	o->head = o->len = 0;
}

int pf_outbuf__flush(struct pf_outbuf *o)
{
	if (o->closed) {
		pf_outbuf__discard(o);
		return -EPIPE;
	}
	while (o->head < o->len) {
		ssize_t n = write(o->fd, o->buf + o->head, o->len - o->head);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n < 0) {
			int err = -errno;

			if (err == -EPIPE) {
				o->closed = true;
				pf_outbuf__discard(o);
			}
			return err;
		}
		o->head += (size_t)n;
	}
	if (o->head == o->len)
		o->head = o->len = 0;
	return 0;
}

int pf_outbuf__write(struct pf_outbuf *o, const char *buf, size_t len, uint64_t nlines)
{
	size_t room, take = len;
	int err;

	if (o->closed) {
		o->dropped += nlines;
		return -EPIPE;
	}
	/* What the reader takes now leaves room for the new lines. */
	err = pf_outbuf__flush(o);
	if (err == -EPIPE) {
		o->dropped += nlines;
		return err;
	}
	if (o->head) {
		memmove(o->buf, o->buf + o->head, o->len - o->head);
		o->len -= o->head;
		o->head = 0;
	}
	room = o->cap - o->len;
	if (take > room) {
		/* The longest run of whole lines that fits. */
		const char *nl = room ? memrchr(buf, '\n', room) : NULL;

		take = nl ? (size_t)(nl + 1 - buf) : 0;
		o->dropped += count_lines(buf + take, len - take);
	}
	memcpy(o->buf + o->len, buf, take);
	o->len += take;
	err = pf_outbuf__flush(o);
	return err == -EAGAIN ? 0 : err;
}

size_t pf_outbuf__pending(const struct pf_outbuf *o)
{
	return o->len - o->head;
}

uint64_t pf_outbuf__dropped(const struct pf_outbuf *o)
{
	return o->dropped;
}

bool pf_outbuf__closed(const struct pf_outbuf *o)
{
	return o->closed;
}
