/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The agent's log: one line per message on stderr, "procflow: " first.
 * Written whole under stdio's lock, so the ClickHouse sender's lines never
 * interleave with the loop's.
 */
#ifndef PF_LOG_H
#define PF_LOG_H

#include <stdbool.h>

/* Log a line to stderr, prefixed "procflow: ". */
void pf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The same, only with logVerbose (pf_verbose). */
void pf_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool pf_verbose;

#endif
