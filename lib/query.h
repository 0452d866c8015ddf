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

/* A port range; one port is lo == hi. */
struct pf_q_port {
	uint16_t lo, hi;
};

/* Which time options were given (each at most once; --since or --from). */
#define PF_Q_T_SINCE 1u
#define PF_Q_T_FROM  2u
#define PF_Q_T_TO    4u

/*
 * The filters. Different filters AND; the values of one filter given
 * several times OR (--src A --src B: either source; --src A --dst B: both).
 */
struct pf_query {
	/* Time: a line matches when its interval [start_time, end_time]
	 * overlaps [from, to]. */
	bool has_from, has_to;
	uint64_t from, to;
	unsigned time_given;		     /* PF_Q_T_* */
	const char *process[PF_Q_MAX_TERMS]; /* fnmatch() globs on process_name */
	int nprocess;
	const char *not_process[PF_Q_MAX_TERMS]; /* --not-process: none may match */
	int nnot_process;
	const char *args[PF_Q_MAX_TERMS]; /* substrings of any process_args element */
	int nargs;
	uint32_t pid[PF_Q_MAX_TERMS];
	int npid;
	struct pf_cidr ip[PF_Q_MAX_TERMS]; /* --ip: source or destination */
	int nip;
	struct pf_cidr src[PF_Q_MAX_TERMS]; /* --src */
	int nsrc;
	struct pf_cidr dst[PF_Q_MAX_TERMS]; /* --dst */
	int ndst;
	struct pf_q_port port[PF_Q_MAX_TERMS]; /* source or destination port in range */
	int nport;
	uint8_t proto[PF_Q_MAX_TERMS]; /* protocol numbers ("tcp" is 6) */
	int nproto;
	const char *ns[PF_Q_MAX_TERMS]; /* --namespace: either end's namespace is one */
	int nns;
	const char *pod[PF_Q_MAX_TERMS]; /* --pod: fnmatch() globs on a workload end's name */
	int npod;
	unsigned reporter; /* bit 0: src, bit 1: dst; 0: any */
	unsigned action;   /* bit 0: allow, bit 1: deny; 0: any */
};

/* The fields pf_query__match() reads for @q (PF_FL_BIT mask). */
uint64_t pf_query__fields(const struct pf_query *q);

/* Whether the scanned line @r passes every filter of @q. */
bool pf_query__match(const struct pf_query *q, const struct pf_flowrec *r);

/*
 * Add the filter named @name (the long option without dashes: "since",
 * "from", "to", "process", "not-process", "args", "pid", "ip", "src",
 * "dst", "port", "proto", "reporter", "action", "namespace", "pod") with @value to @q. @now is
 * the current Unix time (for "since"). "port" takes a list: "53,80",
 * "8000-8080", service names ("https"). "proto" takes a name or a number.
 * A time option given twice, or --since with --from, is refused (it would
 * silently replace the first). Strings are kept by reference. Returns 0,
 * or -EINVAL with a message for the user in @err (@errsz bytes), or
 * -ENOENT when @name is not a filter.
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
 * bytes, DEL, C1 controls and invalid UTF-8 become '?', so a hostile
 * argument cannot move the cursor or change colours; Unicode format
 * characters (bidirectional overrides and isolates, zero-width ones, the
 * BOM) are dropped, so it cannot reorder a row; at most @width characters (UTF-8 sequences count as
 * one), cut with "..." at the end (or at the start when @keep_end: for
 * paths, where the program's name is at the end). Returns the number of
 * characters (columns) written.
 */
size_t pf_fmt_cell(const char *s, size_t n, size_t width, bool keep_end, char *out, size_t outsz);

#endif
