/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A small JSON writer into a growable buffer with a hard cap.
 *
 * Output is data: strings are escaped so that any byte sequence a process
 * chooses (quotes, backslashes, control bytes, invalid UTF-8) still yields
 * valid JSON. Invalid UTF-8 sequences are replaced by U+FFFD.
 *
 * The writer does not track nesting; callers emit punctuation through the
 * helpers in the order they need. Errors are sticky: after the first
 * failure (cap reached, ENOMEM) every call is a no-op and pf_jw__error()
 * returns the negative errno.
 */
#ifndef PF_JSONW_H
#define PF_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct pf_jw {
	char *buf;
	size_t len;
	size_t cap;	/* allocated */
	size_t max;	/* hard cap: never grows beyond this many bytes */
	int err;	/* 0 or negative errno (sticky) */
	int need_comma; /* inside an object/array: a value was written */
};

/* Initialise with a hard cap of @max bytes. Returns 0. */
int pf_jw__init(struct pf_jw *w, size_t max);
/* Release the buffer. Accepts a zeroed or already-freed writer. */
void pf_jw__fini(struct pf_jw *w);
/* Empty the buffer, keep the allocation, clear the error. */
void pf_jw__reset(struct pf_jw *w);
/* 0 or the first negative errno (-ENOSPC when the cap was reached). */
int pf_jw__error(const struct pf_jw *w);

void pf_jw__obj_begin(struct pf_jw *w); /* '{' */
void pf_jw__obj_end(struct pf_jw *w);	/* '}' */
void pf_jw__arr_begin(struct pf_jw *w); /* '[' */
void pf_jw__arr_end(struct pf_jw *w);	/* ']' */
/* "key": ; writes the comma before it when needed. @key is trusted ASCII. */
void pf_jw__key(struct pf_jw *w, const char *key);
/* The same with the key's length given (@key need not be NUL-terminated). */
void pf_jw__keyn(struct pf_jw *w, const char *key, size_t n);
/* Values; each writes the comma before it when in an array. */
void pf_jw__str(struct pf_jw *w, const char *s);	    /* NUL-terminated */
void pf_jw__strn(struct pf_jw *w, const char *s, size_t n); /* any bytes */
void pf_jw__u64(struct pf_jw *w, uint64_t v);
void pf_jw__i64(struct pf_jw *w, int64_t v);
void pf_jw__null(struct pf_jw *w);
void pf_jw__bool(struct pf_jw *w, int v);
/*
 * A string value whose decoded UTF-8 (what a JSON reader gets back) is at
 * most @max bytes: when @s would be longer, it is cut after the last whole
 * character that leaves room for @mark, and @mark is appended. A string
 * that fits is written as pf_jw__strn() writes it; so is every string when
 * @mark alone is longer than @max.
 */
void pf_jw__strn_max(struct pf_jw *w, const char *s, size_t n, size_t max, const char *mark);
/* A value given as JSON text, written as it is (the caller vouches for it). */
void pf_jw__json(struct pf_jw *w, const char *s, size_t n);
/* Raw bytes, unescaped (for "\n" at the end of a line). */
void pf_jw__raw(struct pf_jw *w, const char *s, size_t n);

/* Escape @n bytes of @s as the inside of a JSON string (no quotes) into
 * @w. Exposed for tests and the fuzz harness. */
void pf_jw__escape(struct pf_jw *w, const char *s, size_t n);

#endif
