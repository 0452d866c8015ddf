/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `procflow query`'s logic without the terminal: the filters (parsed from
 * the command line's words, matched against scanned lines), the value
 * parsers they use (durations, times, CIDRs), and the small formatters of
 * the table. Pure functions; unit-tested and fuzzed.
 */
#ifndef PF_QUERY_H
#define PF_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flowline.h"

#define PF_Q_MAX_TERMS 16 /* values per repeatable filter (--process a --process b) */

/* An address prefix; IPv4 is kept as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+n). */
struct pf_cidr {
	uint8_t addr[16];
	uint8_t bits; /* 0..128 */
};

enum pf_q_ipwhere { PF_Q_EITHER, PF_Q_SRC, PF_Q_DST };

struct pf_query {
	/* Time: a line matches when its interval [start_time, end_time]
	 * overlaps [from, to]. */
	bool has_from, has_to;
	uint64_t from, to;
	/* OR within one kind, AND across kinds. */
	const char *process[PF_Q_MAX_TERMS]; /* fnmatch() globs on process_name */
	int nprocess;
	const char *args[PF_Q_MAX_TERMS]; /* substrings of any process_args element */
	int nargs;
	uint32_t pid[PF_Q_MAX_TERMS];
	int npid;
	struct pf_cidr ip[PF_Q_MAX_TERMS];
	uint8_t ip_where[PF_Q_MAX_TERMS]; /* enum pf_q_ipwhere */
	int nip;
	uint16_t port[PF_Q_MAX_TERMS]; /* source or destination port */
	int nport;
	const char *proto[PF_Q_MAX_TERMS];
	int nproto;
	const char *reporter; /* "src" or "dst" */
	const char *action;   /* "allow" or "deny" */
};

/* The fields pf_query__match() reads for @q (PF_FL_BIT mask). */
uint64_t pf_query__fields(const struct pf_query *q);

/* Whether the scanned line @r passes every filter of @q. */
bool pf_query__match(const struct pf_query *q, const struct pf_flowrec *r);

/*
 * Add the filter named @name (the long option without dashes: "since",
 * "from", "to", "process", "args", "pid", "ip", "src", "dst", "port",
 * "proto", "reporter", "action") with @value to @q. @now is the current
 * Unix time (for "since"). Strings are kept by reference. Returns 0, or
 * -EINVAL with a message for the user in @err (@errsz bytes), or -ENOENT
 * when @name is not a filter.
 */
int pf_query__add(struct pf_query *q, const char *name, const char *value, uint64_t now, char *err,
		  size_t errsz);

/* "90", "90s", "10m", "2h", "7d" -> seconds. Returns 0 or -EINVAL. */
int pf_parse_duration(const char *s, uint64_t *secs);
/*
 * Unix seconds ("1795790487") or ISO 8601: "2026-11-27", "2026-11-27T14:05",
 * "2026-11-27T14:05:09", a space instead of the T, an optional ".fraction",
 * and a zone "Z" or "+01:00"/"-0530"; without a zone the time is local.
 * Returns 0 or -EINVAL.
 */
int pf_parse_time(const char *s, uint64_t *unix_s);
/* "10.0.0.0/8", "10.1.2.3" (a /32), "fd00::/8", "::1". Returns 0 or -EINVAL. */
int pf_parse_cidr(const char *s, struct pf_cidr *c);
/* Whether the address text @s (@n bytes, not NUL-terminated) is in @c. */
bool pf_cidr__contains_text(const struct pf_cidr *c, const char *s, size_t n);

/* 1536 -> "1.5K"; 0 -> "0"; units K M G T P (powers of 1024). */
void pf_fmt_bytes(uint64_t v, char *out, size_t outsz);

/*
 * Copy @n bytes of @s into @out (@outsz bytes) for a terminal: control
 * bytes and DEL become '?', so a hostile argument cannot move the cursor
 * or change colours; at most @width characters (UTF-8 sequences count as
 * one), cut with "..." at the end (or at the start when @keep_end: for
 * paths, where the program's name is at the end). Returns the number of
 * characters (columns) written.
 */
size_t pf_fmt_cell(const char *s, size_t n, size_t width, bool keep_end, char *out, size_t outsz);

#endif
