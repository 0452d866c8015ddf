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

static const char overview[] =
    "Usage: procflow COMMAND [OPTIONS]\n"
    "\n"
    "Network flow logs in which every TCP and UDP flow names the process on the\n"
    "local side: executable path, arguments and PID.\n"
    "\n"
    "Commands:\n"
    "  run                load the kernel hooks, write flow logs until SIGINT/SIGTERM\n"
    "  check              what this kernel offers; exit 0 if procflow can run here\n"
    "  reload             make the running agent re-read its configuration (SIGHUP)\n"
    "  query              print the flows written so far, filtered\n"
    "  clickhouse-schema  print the ClickHouse table the sink inserts into\n"
    "  help [TOPIC]       this text, or a command's (TOPIC: a command, or config)\n"
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

int pf_help(FILE *out, const char *topic)
{
	static const struct {
		const char *name;
		const char *text;
	} texts[] = {
	    {"check", check_text},
	    {"reload", reload_text},
	    {"clickhouse-schema", schema_text},
	};

	if (!topic) {
		text_page = overview;
		print_page(out, fill_text);
		return 0;
	}
	if (!strcmp(topic, "run")) {
		print_page(out, fill_run);
		return 0;
	}
	if (!strcmp(topic, "config")) {
		print_page(out, fill_config);
		return 0;
	}
	if (!strcmp(topic, "query")) {
		char *argv[] = {"query", "--help", NULL};

		return pf_query_main(2, argv) == PF_EXIT_OK ? 0 : -ENOENT;
	}
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		if (!strcmp(topic, texts[i].name)) {
			text_page = texts[i].text;
			print_page(out, fill_text);
			return 0;
		}
	}
	return -ENOENT;
}
