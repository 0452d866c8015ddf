// SPDX-License-Identifier: BSD-2-Clause
/*
 * The help pages. Option and key lines come from the configuration table
 * (agent/config.c) and the ClickHouse sink's option table; every page goes
 * through one wrapper so nothing passes 80 columns, whatever a table's
 * help strings hold.
 */
#include "help.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "config_check.h"
#include "query_cmd.h"

#define COLS 80

#ifndef PF_VERSION
#define PF_VERSION "0.0.0"
#endif

static const char overview_head[] =
    "Usage: procflow COMMAND [OPTIONS]\n"
    "\n"
    "Network flow logs in which every TCP and UDP flow names the process on the\n"
    "local side: executable path, arguments and PID.\n"
    "\n"
    "Commands:\n";

static const char overview_tail[] =
    "\n"
    "procflow COMMAND --help: that command's options. procflow help config: every\n"
    "configuration key, its environment variable and its default.\n"
    "\n"
    "  -h, --help      this text\n"
    "  -V, --version   print the version\n"
    "\n"
    "Exit status: 0 ok, 1 missing privileges, kernel support or I/O, 2 a bad\n"
    "command line or configuration.\n";

static const char common_opts[] =
    "  -c, --config FILE             YAML config file (default " PF_CONFIG_DEFAULT_FILE
    " when present; also PROCFLOW_CONFIG)\n";

static const char run_head[] =
    "Usage: procflow run [OPTIONS]\n"
    "\n"
    "Load the kernel hooks and write flow logs until SIGINT or SIGTERM (which write\n"
    "the current interval first). SIGHUP, or procflow reload, re-reads the\n"
    "configuration. Each option sets the configuration key named in brackets;\n"
    "precedence: flags, then environment, then the config file, then defaults.\n"
    "\n"
    "Options:\n";

static const char run_tail[] =
    "      --print-config            print the effective configuration and where each "
    "value came from, then exit (2 if run would refuse it)\n"
    "  -h, --help                    this text\n";

static const char check_text[] =
    "Usage: procflow check [OPTIONS]\n"
    "\n"
    "Report what this kernel offers (BTF, ring buffer, cgroup v2, each hook: loads,\n"
    "attaches) and whether procflow can run here, for the configuration given: it\n"
    "takes run's options (procflow run --help) and refuses what run refuses;\n"
    "--hook-tier TIER answers for that tier.\n"
    "\n"
    "Exit status: 0 procflow can run here, 1 it cannot (the lines marked 'no'\n"
    "say why), 2 a bad command line or configuration.\n";

static const char reload_text[] =
    "Usage: procflow reload [OPTIONS]\n"
    "\n"
    "Send SIGHUP to the running agent named by <runtimeDirectory>/procflow.pid\n"
    "(default /run/procflow/procflow.pid): it re-reads its configuration file and\n"
    "environment; its log says what changed. Takes run's options: --runtime-dir\n"
    "DIR finds the agent, and the configuration is checked as run checks it.\n"
    "\n"
    "Exit status: 0 signalled, 1 no running agent, 2 a bad configuration.\n";

static const char schema_text[] =
    "Usage: procflow clickhouse-schema [OPTIONS]\n"
    "\n"
    "Print the CREATE TABLE statement of the table the ClickHouse sink inserts\n"
    "into (--clickhouse-database and --clickhouse-table name it; see procflow run\n"
    "--help). Create it once with clickhouse-client.\n";

/* The indentation of the description column of @line: where the first run
 * of two blanks after the first word ends; else four more than the line's
 * own indentation. */
static size_t desc_column(const char *line, size_t n)
{
	size_t i = 0;

	while (i < n && line[i] == ' ')
		i++;
	size_t lead = i;

	for (; i + 2 < n; i++)
		if (line[i] == ' ' && line[i + 1] == ' ' && line[i + 2] != ' ') {
			size_t j = i;

			while (j < n && line[j] == ' ')
				j++;
			if (j < COLS / 2)
				return j;
			break;
		}
	return lead + 4;
}

/* @text, each line cut at a blank before column 80, continued under the
 * description column. */
static void put_wrapped(FILE *out, const char *text, size_t len)
{
	const char *p = text, *end = text + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		size_t indent = desc_column(p, n);
		bool first = true;

		while (n > 0) {
			size_t room = COLS - (first ? 0 : indent), cut = n;

			if (n > room) {
				cut = room;
				while (cut > 0 && p[cut] != ' ')
					cut--;
				if (cut == 0)
					cut = room; /* one word longer than the line */
			}
			if (!first)
				fprintf(out, "%*s", (int)indent, "");
			fwrite(p, 1, cut, out);
			fputc('\n', out);
			p += cut;
			n -= cut;
			while (n > 0 && *p == ' ') {
				p++;
				n--;
			}
			first = false;
		}
		if (first)
			fputc('\n', out); /* an empty line */
		p = nl ? nl + 1 : end;
	}
}

static void print_page(FILE *out, void (*fill)(FILE *))
{
	char *buf = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&buf, &len);

	if (!m) {
		fill(out); /* unwrapped, but said */
		return;
	}
	fill(m);
	fclose(m);
	put_wrapped(out, buf, len);
	free(buf);
}

static void fill_run(FILE *out)
{
	fputs(run_head, out);
	fputs(common_opts, out);
	pf_config_usage(out);
	fputs(run_tail, out);
}

static void fill_config(FILE *out)
{
	fputs("Configuration keys: the YAML file (-c), the environment variable, the\n"
	      "default, and whether SIGHUP changes it live or it needs a restart.\n\n",
	      out);
	pf_config_keys_usage(out);
}

static const char *text_page; /* the page fill_text() prints */

static void fill_text(FILE *out)
{
	fputs(text_page, out);
}

static void fill_overview(FILE *out);

static void page_overview(FILE *out)
{
	print_page(out, fill_overview);
}

static void page_run(FILE *out)
{
	print_page(out, fill_run);
}

static void page_config(FILE *out)
{
	print_page(out, fill_config);
}

static void page_check(FILE *out)
{
	text_page = check_text;
	print_page(out, fill_text);
}

static void page_reload(FILE *out)
{
	text_page = reload_text;
	print_page(out, fill_text);
}

static void page_schema(FILE *out)
{
	text_page = schema_text;
	print_page(out, fill_text);
}

static void page_query(FILE *out)
{
	char *argv[] = {"query", "--help", NULL};

	(void)out; /* the query command prints its own page on stdout */
	(void)pf_query_main(2, argv);
}

/* ---- the commands ---- */

static int cmd_run(const struct pf_config *cfg, const struct pf_config_args *args)
{
	return pf_run(cfg, args);
}

static int cmd_check(const struct pf_config *cfg, const struct pf_config_args *args)
{
	return pf_check(cfg);
}

static int cmd_reload(const struct pf_config *cfg, const struct pf_config_args *args)
{
	return pf_reload_command(cfg->runtime_dir);
}

static int cmd_schema(const struct pf_config *cfg, const struct pf_config_args *args)
{
	return pf_ch_print_schema(&cfg->ch);
}

static int cmd_help(int argc, char **argv);

static int cmd_version(int argc, char **argv)
{
	printf("procflow %s\n", PF_VERSION);
	return PF_EXIT_OK;
}

static const struct pf_cmd cmds[] = {
    {"run",
     {NULL, NULL},
     "",
     "load the kernel hooks, write flow logs until SIGINT/SIGTERM",
     cmd_run,
     NULL,
     page_run},
    {"check",
     {NULL, NULL},
     "",
     "what this kernel offers; exit 0 if procflow can run here",
     cmd_check,
     NULL,
     page_check},
    {"reload",
     {NULL, NULL},
     "",
     "make the running agent re-read its configuration (SIGHUP)",
     cmd_reload,
     NULL,
     page_reload},
    {"query",
     {NULL, NULL},
     "",
     "print the flows written so far, filtered",
     NULL,
     pf_query_main,
     page_query},
    {"clickhouse-schema",
     {NULL, NULL},
     "",
     "print the ClickHouse table the sink inserts into",
     cmd_schema,
     NULL,
     page_schema},
    {"help",
     {"-h", "--help"},
     " [TOPIC]",
     "this text, or a command's (TOPIC: a command, or config)",
     NULL,
     cmd_help,
     page_overview},
    {"version", {"-V", "--version"}, "", NULL, NULL, cmd_version, NULL},
};

#define NCMDS (sizeof(cmds) / sizeof(cmds[0]))

const struct pf_cmd *pf_cmd__find(const char *name)
{
	for (size_t i = 0; i < NCMDS; i++) {
		if (!strcmp(name, cmds[i].name))
			return &cmds[i];
		for (size_t j = 0; j < 2; j++)
			if (cmds[i].aliases[j] && !strcmp(name, cmds[i].aliases[j]))
				return &cmds[i];
	}
	return NULL;
}

const char *pf_cmd__names(void)
{
	static char names[256];
	size_t off = 0;

	if (names[0])
		return names;
	for (size_t i = 0; i < NCMDS; i++) {
		int w;

		if (!cmds[i].summary || !strcmp(cmds[i].name, "help"))
			continue;
		w = snprintf(names + off, sizeof(names) - off, "%s%s", off ? ", " : "",
			     cmds[i].name);
		if (w < 0 || (size_t)w >= sizeof(names) - off)
			break;
		off += (size_t)w;
	}
	return names;
}

static void fill_overview(FILE *out)
{
	char head[64];

	fputs(overview_head, out);
	for (size_t i = 0; i < NCMDS; i++) {
		if (!cmds[i].summary)
			continue;
		snprintf(head, sizeof(head), "%s%s", cmds[i].name, cmds[i].synopsis);
		fprintf(out, "  %-17s  %s\n", head, cmds[i].summary);
	}
	fputs(overview_tail, out);
}

/* procflow help [TOPIC]: a command's page; an unknown topic is an error. */
static int cmd_help(int argc, char **argv)
{
	if (argc > 2) {
		fprintf(stderr, "procflow: help: one topic at a time\n");
		return PF_EXIT_USAGE;
	}
	/* "-h"/"--help" as the command take no topic: the overview. */
	if (pf_help(stdout, argc > 1 && !strcmp(argv[0], "help") ? argv[1] : NULL)) {
		fprintf(stderr, "procflow: help: no topic '%s' (topics: %s, config)\n", argv[1],
			pf_cmd__names());
		return PF_EXIT_USAGE;
	}
	return PF_EXIT_OK;
}

int pf_help(FILE *out, const char *topic)
{
	const struct pf_cmd *c;

	if (!topic) {
		page_overview(out);
		return 0;
	}
	if (!strcmp(topic, "config")) {
		page_config(out);
		return 0;
	}
	c = pf_cmd__find(topic);
	if (!c || !c->page || strcmp(topic, c->name))
		return -ENOENT;
	c->page(out);
	return 0;
}
