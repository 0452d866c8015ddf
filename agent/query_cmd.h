/* SPDX-License-Identifier: BSD-2-Clause */
/* Subcommands that do not load the kernel side. */
#ifndef PF_QUERY_CMD_H
#define PF_QUERY_CMD_H

/* `procflow query ARGS...`: @argv[0] is "query". Returns an exit code. */
int pf_query_main(int argc, char **argv);

#endif
