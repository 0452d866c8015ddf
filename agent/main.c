// SPDX-License-Identifier: BSD-2-Clause
/*
 * procflow: network flow logs in which every flow names its process.
 *
 * main() parses the command line and turns every error into an exit code
 * in one place: 0 ok, 1 missing privileges / kernel support / I/O, 2 bad
 * command line.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "redact.h"
#include "procflow/abi.h"

#ifndef PF_VERSION
#define PF_VERSION "0.0.0"
#endif

bool pf_verbose;

void pf_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("procflow: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void pf_debug(const char *fmt, ...)
{
	va_list ap;

	if (!pf_verbose)
		return;
	va_start(ap, fmt);
	fputs("procflow: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

void pf_config_defaults(struct pf_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->output_dir = "/var/log/procflow";
	cfg->flush_interval_s = 15;
	cfg->process_info = true;
	cfg->process_path = true;
	cfg->tcp_stats = true;
	cfg->agg_level = 1;
	cfg->proc_limit = 2;
	cfg->args_limit = 5;
	cfg->args_max = PF_ARGS_DEFAULT;
	cfg->argc_max = PF_ARGC_DEFAULT;
	cfg->udp_idle_s = 60;
	cfg->tier = "auto";
	cfg->ringbuf_bytes = PF_RINGBUF_BYTES;
}

static const char usage_text[] =
	"Usage: procflow COMMAND [OPTIONS]\n"
	"\n"
	"Network flow logs in which every TCP and UDP flow names the process on the\n"
	"local side: executable path, arguments and PID.\n"
	"\n"
	"Commands:\n"
	"  run        load the kernel hooks and write flow logs until SIGINT/SIGTERM\n"
	"  check      report what this kernel offers and whether procflow can run here\n"
	"\n"
	"Options for run (and check where they apply):\n"
	"  -o, --output-dir DIR       write DIR/flows.log (default /var/log/procflow)\n"
	"  -i, --flush-interval SECS  aggregation interval, 1..86400 (default 15)\n"
	"      --include-loopback     also log 127.0.0.0/8 and ::1 traffic (default: left out)\n"
	"      --no-process-path      process_name is the task name, process_args is []\n"
	"      --no-process-info      no process fields at all (process_name \"-\")\n"
	"      --no-tcp-stats         leave the tcp_* fields at 0\n"
	"  -a, --aggregation LEVEL    0: per 5-tuple, 1: source port folded (default),\n"
	"                             2: also addresses folded, 3: also dest port folded\n"
	"      --args-max BYTES       argument bytes captured per exec, 64..16384 (default 4096)\n"
	"      --argc-max N           arguments kept per process, 1..4096 (default 64)\n"
	"      --process-limit N      process names per flow before the \"*\" line (default 2)\n"
	"      --args-limit N         argument strings listed per line (default 5)\n"
	"      --hook-tier TIER       auto (default) or tracepoint\n"
	"      --no-redact            keep secrets in process_args (redaction is on by default)\n"
	"      --redact-rules FILE    redaction rules to apply on top of the built-in set\n"
	"      --redact-replacement TEXT  what replaces a secret (default [REDACTED])\n"
	"      --ring-buffer-kib N    size of the kernel's event ring buffer, a power of two,\n"
	"                             16..1048576 (default 8192)\n"
	"      --stdout               also print every line on standard output\n"
	"  -v, --verbose              log more (libbpf messages, each flush)\n"
	"\n"
	"  -h, --help                 this text\n"
	"  -V, --version              print the version\n"
	"\n"
	"Exit status: 0 ok, 1 missing privileges or kernel support, 2 bad command line.\n";

enum {
	OPT_INCLUDE_LOOPBACK = 256,
	OPT_NO_PROCESS_PATH,
	OPT_NO_PROCESS_INFO,
	OPT_NO_TCP_STATS,
	OPT_ARGS_MAX,
	OPT_ARGC_MAX,
	OPT_PROCESS_LIMIT,
	OPT_ARGS_LIMIT,
	OPT_HOOK_TIER,
	OPT_STDOUT,
	OPT_NO_REDACT,
	OPT_REDACT_RULES,
	OPT_REDACT_REPLACEMENT,
	OPT_RINGBUF_KIB,
};

static const struct option long_opts[] = {
	{"output-dir", required_argument, NULL, 'o'},
	{"flush-interval", required_argument, NULL, 'i'},
	{"include-loopback", no_argument, NULL, OPT_INCLUDE_LOOPBACK},
	{"no-process-path", no_argument, NULL, OPT_NO_PROCESS_PATH},
	{"no-process-info", no_argument, NULL, OPT_NO_PROCESS_INFO},
	{"no-tcp-stats", no_argument, NULL, OPT_NO_TCP_STATS},
	{"aggregation", required_argument, NULL, 'a'},
	{"args-max", required_argument, NULL, OPT_ARGS_MAX},
	{"argc-max", required_argument, NULL, OPT_ARGC_MAX},
	{"process-limit", required_argument, NULL, OPT_PROCESS_LIMIT},
	{"args-limit", required_argument, NULL, OPT_ARGS_LIMIT},
	{"hook-tier", required_argument, NULL, OPT_HOOK_TIER},
	{"stdout", no_argument, NULL, OPT_STDOUT},
	{"no-redact", no_argument, NULL, OPT_NO_REDACT},
	{"redact-rules", required_argument, NULL, OPT_REDACT_RULES},
	{"redact-replacement", required_argument, NULL, OPT_REDACT_REPLACEMENT},
	{"ring-buffer-kib", required_argument, NULL, OPT_RINGBUF_KIB},
	{"verbose", no_argument, NULL, 'v'},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
	{NULL, 0, NULL, 0},
};

/* A whole decimal number in [lo, hi], nothing else. */
static int parse_uint(const char *name, const char *s, unsigned long lo, unsigned long hi,
		      unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		goto bad;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		goto bad;
	*out = (unsigned)v;
	return 0;
bad:
	fprintf(stderr, "procflow: --%s: '%s' is not a whole number from %lu to %lu\n", name,
		s ? s : "", lo, hi);
	return -EINVAL;
}

static int parse_opts(int argc, char **argv, struct pf_config *cfg)
{
	unsigned v;
	int c;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":o:i:a:vhV", long_opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (!*optarg) {
				fprintf(stderr, "procflow: --output-dir: empty directory name\n");
				return -EINVAL;
			}
			cfg->output_dir = optarg;
			break;
		case 'i':
			if (parse_uint("flush-interval", optarg, 1, 86400, &cfg->flush_interval_s))
				return -EINVAL;
			break;
		case 'a':
			if (parse_uint("aggregation", optarg, 0, 3, &v))
				return -EINVAL;
			cfg->agg_level = (int)v;
			break;
		case OPT_INCLUDE_LOOPBACK:
			cfg->include_loopback = true;
			break;
		case OPT_NO_PROCESS_PATH:
			cfg->process_path = false;
			break;
		case OPT_NO_PROCESS_INFO:
			cfg->process_info = false;
			break;
		case OPT_NO_TCP_STATS:
			cfg->tcp_stats = false;
			break;
		case OPT_ARGS_MAX:
			if (parse_uint("args-max", optarg, 64, PF_ARGS_CAP, &cfg->args_max))
				return -EINVAL;
			break;
		case OPT_ARGC_MAX:
			if (parse_uint("argc-max", optarg, 1, 4096, &cfg->argc_max))
				return -EINVAL;
			break;
		case OPT_PROCESS_LIMIT:
			if (parse_uint("process-limit", optarg, 1, 1000, &cfg->proc_limit))
				return -EINVAL;
			break;
		case OPT_ARGS_LIMIT:
			if (parse_uint("args-limit", optarg, 1, 1000, &cfg->args_limit))
				return -EINVAL;
			break;
		case OPT_HOOK_TIER:
			if (strcmp(optarg, "auto") && strcmp(optarg, "tracepoint")) {
				fprintf(stderr,
					"procflow: --hook-tier: '%s' is not one of: auto, tracepoint\n",
					optarg);
				return -EINVAL;
			}
			cfg->tier = optarg;
			break;
		case OPT_STDOUT:
			cfg->to_stdout = true;
			break;
		case OPT_NO_REDACT:
			cfg->no_redact = true;
			break;
		case OPT_REDACT_RULES:
			cfg->redact_rules = optarg;
			break;
		case OPT_REDACT_REPLACEMENT:
			cfg->redact_replacement = optarg;
			break;
		case OPT_RINGBUF_KIB:
			if (parse_uint("ring-buffer-kib", optarg, 16, 1u << 20, &v))
				return -EINVAL;
			if (v & (v - 1)) {
				fprintf(stderr, "procflow: --ring-buffer-kib: '%s' is not a power of two\n",
					optarg);
				return -EINVAL;
			}
			cfg->ringbuf_bytes = v * 1024;
			break;
		case 'v':
			cfg->verbose = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case 'V':
			printf("procflow %s\n", PF_VERSION);
			return 1;
		case ':':
			fprintf(stderr, "procflow: option '%s' needs a value\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(stderr, "procflow: unknown option '%s' (see procflow --help)\n",
				argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "procflow: unexpected argument '%s' (see procflow --help)\n",
			argv[optind]);
		return -EINVAL;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pf_config cfg;
	const char *cmd;
	int err;

	pf_config_defaults(&cfg);
	if (argc < 2) {
		fputs(usage_text, stderr);
		return PF_EXIT_USAGE;
	}
	cmd = argv[1];
	if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
		fputs(usage_text, stdout);
		return PF_EXIT_OK;
	}
	if (!strcmp(cmd, "-V") || !strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
		printf("procflow %s\n", PF_VERSION);
		return PF_EXIT_OK;
	}
	if (strcmp(cmd, "run") && strcmp(cmd, "check")) {
		fprintf(stderr, "procflow: unknown command '%s' (commands: run, check; see --help)\n",
			cmd);
		return PF_EXIT_USAGE;
	}
	err = parse_opts(argc - 1, argv + 1, &cfg);
	if (err > 0)
		return PF_EXIT_OK; /* --help or --version */
	if (err)
		return PF_EXIT_USAGE;
	pf_verbose = cfg.verbose;
	err = pf_config_redaction(&cfg);
	if (err)
		return err;

	err = !strcmp(cmd, "check") ? pf_check(&cfg) : pf_run(&cfg);
	pf_redact__free(cfg.redactor);
	return err;
}
