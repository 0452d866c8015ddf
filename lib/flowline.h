/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A scanner for one flow-log line (one JSON object, the record contract's
 * keys), built for reading big files fast: it walks the object once, with
 * memchr() over strings, and only records where the values of the fields
 * asked for are. It does not build a tree and does not copy.
 *
 * It checks the structure it walks (object, "key": value pairs, strings
 * closed, arrays and objects balanced, nothing after the closing brace), so
 * a truncated or corrupt line is refused; it does not check the inside of
 * numbers or UTF-8, which the filters never trust anyway (numbers are read
 * with overflow checks, strings are compared as bytes).
 *
 * Values point into the caller's line; they stay valid while the line does.
 */
#ifndef PF_FLOWLINE_H
#define PF_FLOWLINE_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

/* Every key of the contract, in the contract's order: the record's field
 * table (lib/record.h) under the scanner's names. */
#define PF_FL_ENUM_(id, f, j, c, s) PF_FL_##id = PF_REC_##id,
enum pf_fl_field { PF_REC_FIELDS(PF_FL_ENUM_) PF_FL_NFIELDS = PF_REC_NFIELDS };

#define PF_FL_BIT(f) (1ull << (f))
#define PF_FL_ALL    ((1ull << PF_FL_NFIELDS) - 1)

enum pf_fl_type {
	PF_FLV_ABSENT = 0, /* the key was not on the line */
	PF_FLV_NULL,
	PF_FLV_BOOL,
	PF_FLV_NUM,
	PF_FLV_STR, /* p/len: the bytes between the quotes, still escaped */
	PF_FLV_ARR, /* p/len: the whole array, brackets included */
	PF_FLV_OBJ, /* p/len: the whole object, braces included */
};

struct pf_fl_val {
	const char *p;
	uint32_t len;
	uint8_t type;	 /* enum pf_fl_type */
	uint8_t escaped; /* STR: contains a backslash */
};

struct pf_flowrec {
	struct pf_fl_val v[PF_FL_NFIELDS];
	uint64_t seen; /* PF_FL_BIT() of every contract key on the line, wanted or not */
};

/* Whether the scanned line has every key that each of the record's key
 * sets has (lib/record.h: a calico-3.20 line lacks the transit_* keys): a
 * JSON object without them ({"a":1}) is not a flow line. */
#define PF_FL_IS_FLOW(rec) (((rec)->seen & PF_REC_REQUIRED) == PF_REC_REQUIRED)

/* The contract's name of @f ("start_time", ...), or NULL. */
const char *pf_fl__name(enum pf_fl_field f);
/* The field called @name (@len bytes), or -1. */
int pf_fl__lookup(const char *name, size_t len);

/*
 * Scan the line @line (@len bytes, without the '\n'; surrounding blanks
 * are allowed) and record the values of the fields in @want (PF_FL_BIT()
 * mask) in @rec; the others are walked over and left PF_FLV_ABSENT.
 * Every contract key met is marked in @rec->seen (PF_FL_IS_FLOW()).
 * Keys outside the contract are walked over. Returns 0, or -EINVAL when the line is not one
 * well-formed JSON object (truncated, corrupt, nested deeper than 32).
 */
int pf_fl__scan(const char *line, size_t len, uint64_t want, struct pf_flowrec *rec);

/*
 * A number field as an unsigned integer: 0 and *@out set when @v is a
 * whole number in range; -EINVAL otherwise (null, absent, negative,
 * fractional, too big).
 */
int pf_fl__u64(const struct pf_fl_val *v, uint64_t *out);

/*
 * Unescape a JSON string's inside (@s, @n bytes, as in a PF_FLV_STR
 * value) into @out (@cap bytes, always NUL-terminated when @cap > 0).
 * \uXXXX escapes become UTF-8 (a lone surrogate becomes U+FFFD).
 * Returns the length the whole result needs (excluding the NUL): when it
 * is >= @cap the output was cut. Malformed escapes are copied as they are.
 */
size_t pf_fl__unescape(const char *s, size_t n, char *out, size_t cap);

/*
 * Walk the elements of an array value @arr (PF_FLV_ARR). Each call sets
 * @elem to the next element and returns 1, or returns 0 at the end. @pos
 * starts at 0. Elements are scanned values (strings without quotes).
 */
int pf_fl__arr_next(const struct pf_fl_val *arr, size_t *pos, struct pf_fl_val *elem);

#endif
