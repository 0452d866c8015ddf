/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * `procflow query`'s table for a person: one row per flow line, the
 * columns fitted to the terminal (COLUMNS, else the terminal's size),
 * paths cut from the left so the program's name shows, addresses never
 * cut and aligned (the column is as wide as the widest address of the
 * first rows), the time zone of the TIME column in its header.
 */
#ifndef PF_QUERY_TABLE_H
#define PF_QUERY_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flowline.h"

enum pf_qt_style {
	PF_QT_TABLE,   /* every column, process and arguments cut to fit */
	PF_QT_WIDE,    /* every column, nothing cut */
	PF_QT_COMPACT, /* time of day, program name, PID, destination, protocol, bytes */
};

#define PF_QT_BUFFER_ROWS 64 /* rows held to size the address columns */

struct pf_qtable {
	enum pf_qt_style style;
	unsigned width; /* terminal columns; 0: not known (the default widths) */
	unsigned w_proc, w_args, w_addr, w_ctime;
	bool no_src; /* too narrow: the SOURCE column left out (the local side, mostly) */
	bool header_done;
	char *held[PF_QT_BUFFER_ROWS]; /* lines not yet printed (copies) */
	size_t held_len[PF_QT_BUFFER_ROWS];
	size_t nheld;
};

/* The terminal's width for standard output: COLUMNS when set to a number,
 * else TIOCGWINSZ when stdout is a terminal, else 0. */
unsigned pf_qtable__term_width(void);

void pf_qtable__init(struct pf_qtable *t, enum pf_qt_style style, unsigned width);

/* The fields a row shows (PF_FL_BIT mask), for the scanner. */
uint64_t pf_qtable__fields(void);

/* Print the row of line @line (@len bytes), scanned into @r with at least
 * pf_qtable__fields(). The first rows are held (copied) until the address
 * columns are sized. */
void pf_qtable__row(struct pf_qtable *t, const char *line, size_t len, const struct pf_flowrec *r);

/* Print what is held (end of input, or before waiting for more). */
void pf_qtable__flush(struct pf_qtable *t);

/* Free what is held (after a flush: nothing). */
void pf_qtable__fini(struct pf_qtable *t);

/* Whether a row was printed (or is held). */
bool pf_qtable__any(const struct pf_qtable *t);

#endif
