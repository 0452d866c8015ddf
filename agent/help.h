/* SPDX-License-Identifier: BSD-2-Clause */
/* procflow's help: a short overview, and one short page per command. */
#ifndef PF_HELP_H
#define PF_HELP_H

#include <stdio.h>

/*
 * Print the help of @topic on @out, fitted to 80 columns: NULL for the
 * overview, or "run", "check", "reload", "query", "clickhouse-schema",
 * "config" (every configuration key, its variable and default). Returns
 * 0, or -ENOENT when @topic is none of them (nothing printed).
 */
int pf_help(FILE *out, const char *topic);

#endif
