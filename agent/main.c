// SPDX-License-Identifier: BSD-2-Clause
/*
 * procflow: network flow logs in which every flow names its process.
 *
 * main() finds the command in the table (help.c), parses the command line
 * and turns every error into an exit code in one place: 0 ok, 1 missing
 * privileges / kernel support / I/O, 2 bad command line or configuration.
 * The options come from the key table in config.c; this file only adds the
 * ones that are not keys.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "config_check.h"
#include "help.h"
#include "memtune.h"
#include "procflow/abi.h"
#include "query_cmd.h"
#include "redact.h"

#ifndef PF_VERSION
#define PF_VERSION "0.0.0"
#endif

/* Options that are not configuration keys. Table flags get codes from
 * OPT_KEY_BASE up, one per key. */
enum {
	OPT_PRINT_CONFIG = 256,
	OPT_KEY_BASE = 1024,
};

static const struct option extra_opts[] = {
    {"config", required_argument, NULL, 'c'},
    {"print-config", no_argument, NULL, OPT_PRINT_CONFIG},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
};

#define N_EXTRA (sizeof(extra_opts) / sizeof(extra_opts[0]))

struct cli {
	struct pf_config_args args;
	bool print_config;
};

/*
 * Parse the command line. Flags that set configuration keys are recorded
 * (not applied): pf_config_load() puts them on top of the file and the
 * environment, now and on every reload. Each is checked here already so a
 * bad flag is reported as a flag. Returns 0, 1 (help or version printed),
 * or -EINVAL.
 */
static int parse_opts(const char *cmd, int argc, char **argv, struct cli *cli)
{
	struct option opts[PF_CONFIG_MAX_FLAGS];
	char shorts[PF_CONFIG_MAX_FLAGS * 2 + 16], flagname[80], err[PF_CFG_ERR_MAX];
	struct pf_config scratch;
	size_t no = 0, ns = 0;
	int c, idx;

	pf_config_defaults(&scratch);
	ns += (size_t)snprintf(shorts, sizeof(shorts), ":c:hV");
	for (size_t i = 0; i < N_EXTRA; i++)
		opts[no++] = extra_opts[i];
	for (size_t i = 0; i < pf_config_nkeys && no + 1 < PF_CONFIG_MAX_FLAGS; i++) {
		const struct pf_cfg_key *k = &pf_config_keys[i];
		bool arg = k->type != PF_CFG_BOOL;

		if (!k->flag)
			continue;
		opts[no].name = k->flag;
		opts[no].has_arg = arg ? required_argument : no_argument;
		opts[no].flag = NULL;
		opts[no].val = OPT_KEY_BASE + (int)i;
		no++;
		if (k->short_flag && ns + 3 < sizeof(shorts)) {
			shorts[ns++] = k->short_flag;
			if (arg)
				shorts[ns++] = ':';
			shorts[ns] = '\0';
		}
	}
	memset(&opts[no], 0, sizeof(opts[no]));

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, shorts, opts, &idx)) != -1) {
		const struct pf_cfg_key *k = NULL;

		/* A short flag of a key: find its row. */
		for (size_t i = 0; i < pf_config_nkeys && c < 256; i++)
			if (pf_config_keys[i].short_flag && pf_config_keys[i].short_flag == c)
				k = &pf_config_keys[i];
		if (c >= OPT_KEY_BASE && c < OPT_KEY_BASE + (int)pf_config_nkeys)
			k = &pf_config_keys[c - OPT_KEY_BASE];
		if (k) {
			struct pf_config_args *a = &cli->args;
			const char *val =
			    k->type == PF_CFG_BOOL ? (k->flag_value ? "true" : "false") : optarg;

			snprintf(flagname, sizeof(flagname), "--%s", k->flag);
			if (a->nflags >= PF_CONFIG_MAX_FLAGS) {
				fprintf(stderr, "procflow: too many options\n");
				return -EINVAL;
			}
			if (pf_cfg__set(k, &scratch, val, flagname, err, sizeof(err))) {
				fprintf(stderr, "procflow: %s\n", err);
				return -EINVAL;
			}
			a->flags[a->nflags].key = k;
			a->flags[a->nflags].value = val;
			a->flags[a->nflags].flag = k->flag;
			a->nflags++;
			continue;
		}
		switch (c) {
		case 'c':
			if (!*optarg) {
				fprintf(stderr, "procflow: --config: empty file name\n");
				return -EINVAL;
			}
			cli->args.file = optarg;
			break;
		case OPT_PRINT_CONFIG:
			cli->print_config = true;
			break;
		case 'h':
			pf_help(stdout, cmd);
			return 1;
		case 'V':
			printf("procflow %s\n", PF_VERSION);
			return 1;
		case ':':
			fprintf(stderr, "procflow: option '%s' needs a value\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "procflow: unknown option '%s' (see procflow %s --help)\n",
				argv[optind - 1], cmd);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "procflow: unexpected argument '%s' (see procflow %s --help)\n",
			argv[optind], cmd);
		return -EINVAL;
	}
	/* The file: --config, else PROCFLOW_CONFIG (either must be readable),
	 * else the default when it exists (pf_config_file()). */
	if (!cli->args.file) {
		const char *env = getenv("PROCFLOW_CONFIG");

		if (env && *env)
			cli->args.file = env;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct cli cli; /* static: the flag list is kept for reloads */
	struct pf_cfg_origin orig[PF_CONFIG_MAX_KEYS];
	char err[PF_CFG_ERR_MAX];
	struct pf_config cfg;
	const struct pf_cmd *cmd;
	int ret;

	/* Before any thread: fixed allocator thresholds, so a large buffer
	 * freed is unmapped, not kept (memtune.h). A sanitizer's allocator
	 * has none to fix. */
	(void)pf_memtune__init();
	if (argc < 2) {
		pf_help(stderr, NULL);
		return PF_EXIT_USAGE;
	}
	cmd = pf_cmd__find(argv[1]);
	if (!cmd) {
		fprintf(stderr,
			"procflow: unknown command '%s' (commands: %s; see procflow --help)\n",
			argv[1], pf_cmd__names());
		return PF_EXIT_USAGE;
	}
	if (cmd->with_argv)
		return cmd->with_argv(argc - 1, argv + 1);
	ret = parse_opts(cmd->name, argc - 1, argv + 1, &cli);
	if (ret > 0)
		return PF_EXIT_OK; /* --help or --version */
	if (ret)
		return PF_EXIT_USAGE;
	pf_config_env_warnings();
	/* Everything is checked before anything is loaded into the kernel, by
	 * the same function for every command: --print-config refuses what
	 * run refuses. */
	if (pf_config_load(&cli.args, &cfg, orig, err, sizeof(err)) ||
	    pf_config_validate(&cfg, &cli.args, orig, err, sizeof(err))) {
		fprintf(stderr, "procflow: %s\n", err);
		return PF_EXIT_USAGE;
	}
	if (cli.print_config) {
		pf_config_print(stdout, &cli.args, &cfg, orig);
		return PF_EXIT_OK;
	}
	pf_verbose = cfg.verbose;
	ret = pf_config_redaction(&cfg);
	if (ret)
		return ret;

	ret = cmd->with_config(&cfg, &cli.args);
	pf_redact__free(cfg.redactor);
	return ret;
}
