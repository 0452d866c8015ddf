/* SPDX-License-Identifier: BSD-2-Clause */
/* procflow's help: a short overview, and one short page per command. */
#ifndef PF_HELP_H
#define PF_HELP_H

#include <stddef.h>
#include <stdio.h>

struct pf_config;
struct pf_config_args;

/*
 * A command of `procflow COMMAND`: one row of the table in help.c, which
 * main() dispatches from and the overview and the error messages list.
 * A command takes either run's options (main() parses and checks the
 * configuration first, the same way for every such command) or its own
 * command line.
 */
struct pf_cmd {
	const char *name;
	const char *aliases[2]; /* also accepted as COMMAND ("-h", "--help"), or NULL */
	const char *synopsis;	/* after the name in the overview: "" or " [TOPIC]" */
	const char *summary;	/* its line in the overview; NULL: not listed */
	int (*with_config)(const struct pf_config *cfg, const struct pf_config_args *args);
	int (*with_argv)(int argc, char **argv); /* argv[0] is the command */
	void (*page)(FILE *out);		 /* its help page; NULL: none */
};

/* The command named @name (or one of its aliases), or NULL. */
const struct pf_cmd *pf_cmd__find(const char *name);

/* "run, check, ...": the listed commands, for messages. */
const char *pf_cmd__names(void);

/*
 * Print the help of @topic on @out, fitted to 80 columns: NULL for the
 * overview, a command with a page of its own, or "config" (every
 * configuration key, its variable and default). Returns
 * 0, or -ENOENT when @topic is none of them (nothing printed).
 */
int pf_help(FILE *out, const char *topic);

#endif
