// SPDX-License-Identifier: BSD-2-Clause
/*
 * procflow's configuration: the one table of keys, and the sources it is
 * read from in order of precedence (flags > environment > file > defaults).
 *
 * Each row is the whole truth about one setting: YAML key (Calico's Felix
 * name where Calico has one), type, default, bounds, whether a reload can
 * change it in place, the flag that sets it and its help line. Parsing,
 * validation, --help, --print-config and reload all read this table;
 * adding a setting is adding a row (and the field in struct pf_config).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "agent.h"
#include "chrow.h"
#include "config.h"
#include "config_check.h"
#include "metrics.h"
#include "procflow/abi.h"
#include "record.h"
#include "redact.h"
#include "safefs.h"

#define OFF(f)	  offsetof(struct pf_config, f), sizeof(((struct pf_config *)0)->f)
#define U(lo, hi) .min = (lo), .max = (hi)

static const char *const compression_choices[] = {"none", "zstd", NULL};
static const char *const tier_choices[] = {"auto", "fentry", "kprobe", "tracepoint", NULL};
static const char *const tcp_counting_choices[] = {"socket", "packet", NULL};

#define STR_(x) #x
#define STR(x)	STR_(x)

static const struct pf_cfg_key keys[] = {
    {"flowLogsFlushInterval", PF_CFG_DURATION, "15s", U(1, 86400), NULL, OFF(flush_interval_s),
     PF_CFG_LIVE, "flush-interval", 'i', false, "SECS",
     "aggregation interval: one set of lines per interval, 1s..86400s"},
    {"flowLogsFileEnabled", PF_CFG_BOOL, "true", U(0, 0), NULL, OFF(file_enabled), PF_CFG_LIVE,
     NULL, 0, false, NULL, "write flows.log (off: --stdout only)"},
    {"flowLogsFileDirectory", PF_CFG_STRING, "/var/log/procflow", U(0, 0), NULL, OFF(output_dir), 0,
     "output-dir", 'o', false, "DIR", "write DIR/flows.log"},
    {"flowLogsFileMaxFiles", PF_CFG_UINT, "5", U(0, 1000), NULL, OFF(max_files), PF_CFG_LIVE,
     "max-files", 0, false, "N", "rotated files kept: flows.log.1 (newest) .. flows.log.N"},
    {"flowLogsFileMaxFileSizeMB", PF_CFG_UINT, "100", U(1, 1048576), NULL, OFF(max_file_mb),
     PF_CFG_LIVE, "max-file-size", 0, false, "MB",
     "rotate flows.log before it would exceed this many MiB"},
    {"flowLogsFileCompression", PF_CFG_ENUM, "none", U(0, 0), compression_choices, OFF(compression),
     PF_CFG_LIVE, "compression", 0, false, "none|zstd", "compress rotated files (flows.log.N.zst)"},
    {"flowLogsFileMode", PF_CFG_MODE, "0640", U(0, 0777), NULL, OFF(file_mode), 0, NULL, 0, false,
     NULL, "mode of flows.log and rotated files"},
    {"flowLogsFileDirectoryMode", PF_CFG_MODE, "0750", U(0, 0777), NULL, OFF(dir_mode), 0, NULL, 0,
     false, NULL, "mode of the directory when procflow creates it"},
    {"flowLogsFileGroup", PF_CFG_STRING, "", U(0, 0), NULL, OFF(file_group), PF_CFG_EMPTY_OK,
     "file-group", 0, false, "GROUP",
     "group of the directory and files (0750/0640): its members can run procflow query"},
    {"flowLogsFileAggregationKindForAllowed", PF_CFG_UINT, "1", U(0, 3), NULL, OFF(agg_allowed),
     PF_CFG_LIVE, "aggregation", 'a', false, "LEVEL",
     "allowed flows: 0 per 5-tuple, 1 source port folded, 2 also addresses, 3 also dest port"},
    {"flowLogsFileAggregationKindForDenied", PF_CFG_UINT, "1", U(0, 3), NULL, OFF(agg_denied),
     PF_CFG_LIVE, "aggregation-denied", 0, false, "LEVEL", "the same for denied flows"},
    {"flowLogsFileIncludeLabels", PF_CFG_BOOL, "false", U(0, 0), NULL, OFF(include_labels),
     PF_CFG_LIVE, NULL, 0, false, NULL, "accepted for Calico compatibility; no labels on a host"},
    {"flowLogsFileIncludePolicies", PF_CFG_BOOL, "false", U(0, 0), NULL, OFF(include_policies),
     PF_CFG_LIVE, NULL, 0, false, NULL, "accepted for Calico compatibility; policies stay null"},
    {"flowLogsFileIncludeService", PF_CFG_BOOL, "false", U(0, 0), NULL, OFF(include_service),
     PF_CFG_LIVE, NULL, 0, false, NULL, "accepted for Calico compatibility; services stay \"-\""},
    {"flowLogsCollectProcessInfo", PF_CFG_BOOL, "true", U(0, 0), NULL, OFF(process_info),
     PF_CFG_LIVE, "no-process-info", 0, false, NULL,
     "no process in the lines: process_name \"-\", process_id \"-\""},
    {"flowLogsCollectProcessPath", PF_CFG_BOOL, "true", U(0, 0), NULL, OFF(process_path),
     PF_CFG_LIVE, "no-process-path", 0, false, NULL,
     "process_name is the task name (15 characters), process_args []"},
    {"flowLogsFilePerFlowProcessLimit", PF_CFG_UINT, "2", U(1, 1000), NULL, OFF(proc_limit),
     PF_CFG_LIVE, "process-limit", 0, false, "N",
     "process names per flow before the rest merge into a \"*\" line"},
    {"flowLogsFilePerFlowProcessArgsLimit", PF_CFG_UINT, "5", U(1, 1000), NULL, OFF(args_limit),
     PF_CFG_LIVE, "args-limit", 0, false, "N", "argument strings listed per line"},
    {"flowLogsSchema", PF_CFG_ENUM, "current", U(0, 0), pf_rec_schema_names, OFF(flow_schema),
     PF_CFG_LIVE, "flow-logs-schema", 0, false, "current|calico-3.20",
     "key set of a line: calico-3.20 leaves out the transit_* keys (Calico up to 3.21.1 refuses "
     "them)"},
    {"flowLogsCollectTcpStats", PF_CFG_BOOL, "true", U(0, 0), NULL, OFF(tcp_stats), PF_CFG_LIVE,
     "no-tcp-stats", 0, false, NULL, "leave the tcp_* fields at 0"},
    {"flowLogsIncludeLoopback", PF_CFG_BOOL, "false", U(0, 0), NULL, OFF(include_loopback),
     PF_CFG_LIVE, "include-loopback", 0, true, NULL, "also log 127.0.0.0/8 and ::1 traffic"},
    {"flowLogsProcessArgsMaxBytes", PF_CFG_UINT, "4096", U(64, PF_ARGS_CAP), NULL, OFF(args_max), 0,
     "args-max", 0, false, "BYTES", "argument bytes captured per exec, 64.." STR(PF_ARGS_CAP)},
    {"flowLogsProcessArgcMax", PF_CFG_UINT, "64", U(1, 4096), NULL, OFF(argc_max), PF_CFG_LIVE,
     "argc-max", 0, false, "N", "arguments kept per process"},
    {"flowLogsUdpIdleTimeout", PF_CFG_DURATION, "60s", U(1, 86400), NULL, OFF(udp_idle_s),
     PF_CFG_LIVE, NULL, 0, false, NULL, "an idle UDP flow completes after this"},
    {"flowLogsRedactArguments", PF_CFG_BOOL, "true", U(0, 0), NULL, OFF(redact), 0, "no-redact", 0,
     false, NULL, "keep secrets (passwords, tokens) in process_args: no redaction"},
    {"flowLogsRedactRulesFile", PF_CFG_STRING, "", U(0, 0), NULL, OFF(redact_rules),
     PF_CFG_EMPTY_OK, "redact-rules", 0, false, "FILE",
     "redaction rules applied on top of the built-in set"},
    {"flowLogsRedactReplacement", PF_CFG_STRING, PF_REDACT_REPLACEMENT, U(0, 0), NULL,
     OFF(redact_replacement), 0, "redact-replacement", 0, false, "TEXT",
     "what replaces a secret (1.." STR(PF_REDACT_MAX_REPLACEMENT) " printable bytes)"},
    {"ringBufferKiB", PF_CFG_UINT, "8192", U(16, 1048576), NULL, OFF(ringbuf_kib), 0,
     "ring-buffer-kib", 0, false, "KIB",
     "the kernel's event ring buffer, a power of two (exec, fork and exit events)"},
    {"maxSockets", PF_CFG_UINT, STR(PF_SOCKS_MAX), U(1024, 16777216), NULL, OFF(max_sockets), 0,
     "max-sockets", 0, false, "N",
     "socket owners the kernel side holds (kernel memory, ~170 B each, allocated at start)"},
    {"maxFlows", PF_CFG_UINT, STR(PF_FLOWS_MAX), U(1024, 16777216), NULL, OFF(max_flows), 0,
     "max-flows", 0, false, "N",
     "UDP flows, handshakes and closed TCP connections per interval the kernel side holds "
     "(~170 B each, allocated at start)"},
    {"hookTier", PF_CFG_ENUM, "auto", U(0, 0), tier_choices, OFF(tier), 0, "hook-tier", 0, false,
     "TIER",
     "auto (the first of fentry, kprobe, tracepoint that loads and attaches), or force one"},
    {"tcpCounting", PF_CFG_ENUM, "socket", U(0, 0), tcp_counting_choices, OFF(tcp_counting), 0,
     "tcp-counting", 0, false, "socket|packet",
     "TCP bytes and packets from the kernel's per-socket counters (socket), or from a program "
     "run on every packet (packet)"},
    {"runtimeDirectory", PF_CFG_STRING, "/run/procflow", U(0, 0), NULL, OFF(runtime_dir), 0,
     "runtime-dir", 0, false, "DIR", "holds procflow.pid, which `procflow reload` reads"},
    {"flowLogsStdout", PF_CFG_BOOL, "false", U(0, 0), NULL, OFF(to_stdout), PF_CFG_LIVE, "stdout",
     0, true, NULL, "also print every line on standard output"},
    {"logVerbose", PF_CFG_BOOL, "false", U(0, 0), NULL, OFF(verbose), PF_CFG_LIVE, "verbose", 'v',
     true, NULL, "log more (libbpf messages, each flush)"},
    {"metricsListen", PF_CFG_STRING, "", U(0, 0), NULL, OFF(metrics_listen), PF_CFG_EMPTY_OK,
     "metrics-listen", 0, false, "[ADDR:]PORT",
     "serve Prometheus metrics at http://ADDR:PORT/metrics (\"\": off)",
     .check = pf_metrics__check_listen},
    /* The ClickHouse sink (agent/sink_clickhouse.c); off while clickhouseUrl is "". */
    {"clickhouseUrl", PF_CFG_STRING, "", U(0, 0), NULL, OFF(ch.url), PF_CFG_EMPTY_OK,
     "clickhouse-url", 0, false, "URL",
     "also insert every line into ClickHouse at URL (http://HOST:8123; \"\": off)",
     .check = pf_ch_check_url, .show = pf_chrow__url_mask},
    {"clickhouseDatabase", PF_CFG_STRING, "procflow", U(0, 0), NULL, OFF(ch.db), 0, "clickhouse-db",
     0, false, "NAME", "ClickHouse database (a plain name)", .check = pf_ch_check_name},
    {"clickhouseTable", PF_CFG_STRING, "flows", U(0, 0), NULL, OFF(ch.table), 0, "clickhouse-table",
     0, false, "NAME", "ClickHouse table (a plain name)", .check = pf_ch_check_name},
    {"clickhouseUser", PF_CFG_STRING, "", U(0, 0), NULL, OFF(ch.user), PF_CFG_EMPTY_OK,
     "clickhouse-user", 0, false, "USER",
     "ClickHouse user (\"\": the URL's, else the server's default user)"},
    {"clickhousePasswordFile", PF_CFG_STRING, "", U(0, 0), NULL, OFF(ch.password_file),
     PF_CFG_EMPTY_OK, "clickhouse-password-file", 0, false, "FILE",
     "the ClickHouse password is the first line of FILE (refused unless 0600 or stricter)"},
    {"clickhouseBatchRows", PF_CFG_UINT, "5000", U(1, 1000000), NULL, OFF(ch.batch_rows),
     PF_CFG_LIVE, "clickhouse-batch", 0, false, "ROWS", "rows per ClickHouse insert"},
    {"clickhouseBatchInterval", PF_CFG_DURATION, "5s", U(1, 3600), NULL, OFF(ch.batch_interval_s),
     PF_CFG_LIVE, "clickhouse-batch-interval", 0, false, "SECS",
     "insert into ClickHouse at least this often, 1s..3600s"},
    {"clickhouseSpoolDirectory", PF_CFG_STRING, "", U(0, 0), NULL, OFF(ch.spool_dir),
     PF_CFG_EMPTY_OK, "clickhouse-spool-dir", 0, false, "DIR",
     "batches wait here while ClickHouse cannot take them (\"\": OUTPUT-DIR/clickhouse-spool)"},
    {"clickhouseSpoolMaxMB", PF_CFG_UINT, "256", U(1, 1048576), NULL, OFF(ch.spool_max_mb), 0,
     "clickhouse-spool-max-mb", 0, false, "MB",
     "cap of the spool; when full the oldest batches are dropped and counted"},
    {"clickhouseTimeout", PF_CFG_DURATION, "10s", U(1, 600), NULL, OFF(ch.timeout_s), PF_CFG_LIVE,
     "clickhouse-timeout", 0, false, "SECS",
     "one ClickHouse request, connection included, 1s..600s"},
};

const struct pf_cfg_key *const pf_config_keys = keys;
const size_t pf_config_nkeys = sizeof(keys) / sizeof(keys[0]);
_Static_assert(sizeof(keys) / sizeof(keys[0]) <= PF_CONFIG_MAX_KEYS, "raise PF_CONFIG_MAX_KEYS");

void pf_config_defaults(struct pf_config *cfg)
{
	char err[PF_CFG_ERR_MAX];

	memset(cfg, 0, sizeof(*cfg));
	/* The defaults are constants of this file: a failure is a bug here. */
	if (pf_cfg__defaults(pf_config_keys, pf_config_nkeys, cfg, NULL, err, sizeof(err))) {
		fprintf(stderr, "procflow: bug in the config table: %s\n", err);
		abort();
	}
}

const char *pf_config_file(const struct pf_config_args *args)
{
	if (args->file)
		return args->file;
	/* Looked for on every load: a default file created after start-up is
	 * read by the next reload, one removed stops counting. */
	return access(PF_CONFIG_DEFAULT_FILE, F_OK) ? NULL : PF_CONFIG_DEFAULT_FILE;
}

int pf_config_load(const struct pf_config_args *args, struct pf_config *cfg,
		   struct pf_cfg_origin *orig, char *err, size_t errsz)
{
	struct pf_config c;
	int ret;

	pf_config_defaults(&c);
	if (orig)
		memset(orig, 0, pf_config_nkeys * sizeof(*orig));
	if (pf_config_file(args)) {
		ret = pf_cfg__load_file(pf_config_keys, pf_config_nkeys, &c, orig,
					pf_config_file(args), err, errsz);
		if (ret)
			return -EINVAL;
	}
	ret = pf_cfg__load_env(pf_config_keys, pf_config_nkeys, &c, orig, NULL, err, errsz);
	if (ret)
		return -EINVAL;
	for (size_t i = 0; i < args->nflags; i++) {
		const struct pf_cfg_key *k = args->flags[i].key;

		if (pf_cfg__set(k, &c, args->flags[i].value, args->flags[i].flag, err, errsz))
			return -EINVAL;
		if (orig) {
			orig[k - pf_config_keys].source = PF_CFG_SRC_FLAG;
			orig[k - pf_config_keys].line = 0;
		}
	}
	*cfg = c;
	return 0;
}

void pf_config_print(FILE *out, const struct pf_config_args *args, const struct pf_config *cfg,
		     const struct pf_cfg_origin *orig)
{
	char val[PF_CFG_PATH_MAX + 8], env[128], src[PF_CFG_PATH_MAX + 64];

	fprintf(out,
		"# procflow effective configuration (flags > environment > file > defaults)\n");
	const char *file = pf_config_file(args);

	fprintf(out, "# config file: %s\n", file ? file : "none");
	for (size_t i = 0; i < pf_config_nkeys; i++) {
		const struct pf_cfg_key *k = &pf_config_keys[i];
		const char *flag = NULL;

		pf_cfg__format(k, cfg, val, sizeof(val));
		switch (orig[i].source) {
		case PF_CFG_SRC_FILE:
			snprintf(src, sizeof(src), "file %s:%u", file, orig[i].line);
			break;
		case PF_CFG_SRC_ENV:
			pf_cfg__env_name(k, env, sizeof(env));
			snprintf(src, sizeof(src), "environment %s", env);
			break;
		case PF_CFG_SRC_FLAG:
			for (size_t j = 0; j < args->nflags; j++)
				if (args->flags[j].key == k)
					flag = args->flags[j].flag;
			snprintf(src, sizeof(src), "flag --%s", flag ? flag : "?");
			break;
		default:
			snprintf(src, sizeof(src), "default");
		}
		fprintf(out, "%s: %-*s # %s\n", k->name,
			(int)(44 > strlen(k->name) + 2 ? 44 - strlen(k->name) - 2 : 0), val, src);
	}
}

void pf_config_usage(FILE *out)
{
	char lhs[64];

	for (size_t i = 0; i < pf_config_nkeys; i++) {
		const struct pf_cfg_key *k = &pf_config_keys[i];

		if (!k->flag)
			continue;
		if (k->short_flag)
			snprintf(lhs, sizeof(lhs), "-%c, --%s%s%s", k->short_flag, k->flag,
				 k->metavar ? " " : "", k->metavar ? k->metavar : "");
		else
			snprintf(lhs, sizeof(lhs), "    --%s%s%s", k->flag, k->metavar ? " " : "",
				 k->metavar ? k->metavar : "");
		/* A switch's help says what the switch does (--no-redact:
		 * keep secrets), and the value it sets. */
		if (k->type == PF_CFG_BOOL)
			fprintf(out, "  %-28s  %s [%s %s]\n", lhs, k->help, k->name,
				k->flag_value ? "true" : "false");
		else
			fprintf(out, "  %-28s  %s [%s]\n", lhs, k->help, k->name);
	}
}

void pf_config_keys_usage(FILE *out)
{
	char env[128];

	for (size_t i = 0; i < pf_config_nkeys; i++) {
		const struct pf_cfg_key *k = &pf_config_keys[i];

		pf_cfg__env_name(k, env, sizeof(env));
		fprintf(out, "  %s: default %s%s, %s\n      %s\n", k->name,
			k->def[0] ? k->def : "none", "",
			k->flags & PF_CFG_LIVE ? "live" : "restart", env);
	}
}

/* ---- the PID file ---------------------------------------------------------------------------- */

/* Whether @fd is the file @path names now. */
static bool same_inode(int fd, const char *path)
{
	struct stat a, b;

	return !fstat(fd, &a) && !lstat(path, &b) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

long pf_pidfile_pid(const char *path)
{
	char buf[32], *end;
	unsigned long pid;
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	if (n <= 0)
		return -ENODATA;
	buf[n] = '\0';
	errno = 0;
	pid = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || pid < 2 || pid > 4194304)
		return -EINVAL;
	return (long)pid;
}

/*
 * <runtime_dir>/procflow.pid holds the agent's PID and stays locked
 * (flock) while the agent runs. The lock, not the PID, tells a live file
 * from a stale one: a PID can be reused after a crash, a lock cannot
 * outlive its process. Returns the locked fd, or a negative errno
 * (-EBUSY: another agent holds it).
 */
int pf_pidfile_create(const char *runtime_dir, char *path, size_t pathsz)
{
	char buf[32];
	int fd, err, n;

	/* Only a directory nobody else can write, and never through a link
	 * (lib/safefs.h): -EPERM, -ELOOP, -ENOTDIR say the directory is refused. */
	fd = pf_safefs__open_dir(runtime_dir, 0755, PF_SAFEFS_NO_GROUP, NULL);
	if (fd < 0)
		return fd;
	close(fd);
	if (snprintf(path, pathsz, "%s/procflow.pid", runtime_dir) >= (int)pathsz)
		return -ENAMETOOLONG;
	for (int tries = 0;; tries++) {
		fd = pf_safefs__open_file(path, O_RDWR, 0644, PF_SAFEFS_NO_GROUP);
		if (fd < 0)
			return fd;
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			err = errno == EWOULDBLOCK ? -EBUSY : -errno;
			close(fd);
			return err;
		}
		/* An agent that was exiting may have unlinked the file between
		 * our open and our lock: a lock on that inode guards nothing.
		 * Only the inode that still has the name counts. */
		if (same_inode(fd, path))
			break;
		close(fd);
		if (tries == 3)
			return -EAGAIN;
	}
	n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, buf, (size_t)n, 0) != n) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

void pf_pidfile_remove(int fd, const char *path)
{
	if (fd < 0)
		return;
	/* Unlink while still holding the lock: nobody can take a file that is
	 * about to vanish for a live one. */
	unlink(path);
	close(fd);
}

/* Whether the agent still holds the lock on @fd, which @path still names. */
static bool still_locked(int fd, const char *path)
{
	if (!same_inode(fd, path))
		return false;
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		flock(fd, LOCK_UN);
		return false; /* nobody holds it any more */
	}
	return errno == EWOULDBLOCK;
}

/* SIGHUP to @pid, the PID @fd (locked by the agent, named @path) holds.
 * Returns 0, -ESTALE when the agent let go of the file, or -errno. */
static int signal_locked(int fd, const char *path, pid_t pid)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int err = 0;

	if (pidfd < 0 && errno != ENOSYS)
		return -errno;
	if (!still_locked(fd, path))
		err = -ESTALE;
	else if (pidfd >= 0 ? syscall(SYS_pidfd_send_signal, pidfd, SIGHUP, NULL, 0)
			    : kill(pid, SIGHUP))
		err = -errno;
	if (pidfd >= 0)
		close(pidfd);
	return err;
}

int pf_reload_command(const char *runtime_dir)
{
	char path[PF_CFG_PATH_MAX + 32], buf[32];
	unsigned long pid;
	char *end;
	ssize_t n;
	int fd, err;

	snprintf(path, sizeof(path), "%s/procflow.pid", runtime_dir);
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "procflow: reload: cannot open %s: %s (is the agent running?)\n",
			path, strerror(errno));
		return PF_EXIT_RUNTIME;
	}
	if (!flock(fd, LOCK_SH | LOCK_NB)) {
		fprintf(stderr,
			"procflow: reload: %s is stale: no agent holds it (the agent is not "
			"running)\n",
			path);
		close(fd);
		return PF_EXIT_RUNTIME;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0) {
		fprintf(stderr, "procflow: reload: %s is empty\n", path);
		close(fd);
		return PF_EXIT_RUNTIME;
	}
	buf[n] = '\0';
	errno = 0;
	pid = strtoul(buf, &end, 10);
	if (errno || end == buf || (*end && *end != '\n') || pid < 2 || pid > 4194304) {
		fprintf(stderr, "procflow: reload: %s does not hold a PID\n", path);
		close(fd);
		return PF_EXIT_RUNTIME;
	}
	/* The PID is the agent's only while it still holds the lock on the
	 * file the name still points to: take a handle on the process, then
	 * check both, then signal through the handle, so a PID reused by
	 * another process after the agent died is never signalled. The file
	 * stays open (its lock observed) throughout. */
	err = signal_locked(fd, path, (pid_t)pid);
	close(fd);
	if (err) {
		if (err == -ESRCH || err == -ESTALE)
			fprintf(stderr,
				"procflow: reload: the agent named by %s (PID %lu) has exited\n",
				path, pid);
		else
			fprintf(stderr, "procflow: reload: cannot signal PID %lu: %s\n", pid,
				strerror(-err));
		return PF_EXIT_RUNTIME;
	}
	fprintf(stderr,
		"procflow: reload: sent SIGHUP to the agent (PID %lu); its log says whether the "
		"new configuration was taken\n",
		pid);
	return PF_EXIT_OK;
}

/* ---- checks across keys, run by every command ----------------------------------------------- */

/* Where key @k's value came from, as messages say it. */
static const char *source_of(const struct pf_cfg_key *k, const struct pf_config_args *args,
			     const struct pf_cfg_origin *orig, char *buf, size_t bufsz)
{
	size_t i = (size_t)(k - pf_config_keys);
	char env[128];

	switch (orig ? orig[i].source : PF_CFG_SRC_DEFAULT) {
	case PF_CFG_SRC_FILE:
		snprintf(buf, bufsz, "%s:%u", pf_config_file(args), orig[i].line);
		break;
	case PF_CFG_SRC_ENV:
		pf_cfg__env_name(k, env, sizeof(env));
		snprintf(buf, bufsz, "environment %s", env);
		break;
	case PF_CFG_SRC_FLAG:
		snprintf(buf, bufsz, "--%s", k->flag ? k->flag : "?");
		break;
	default:
		snprintf(buf, bufsz, "default");
	}
	return buf;
}

static const struct pf_cfg_key *key_named(const char *name)
{
	return pf_cfg__find(pf_config_keys, pf_config_nkeys, name);
}

/* Read a rules file whole: a regular file of at most 1 MiB. */
static int read_rules(const char *path, char **text, size_t *len)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return err;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > (1 << 20)) {
		close(fd);
		return S_ISREG(st.st_mode) ? -EFBIG : -EINVAL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + got, (size_t)st.st_size - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

static int check_redaction(const struct pf_config *cfg, const struct pf_config_args *args,
			   const struct pf_cfg_origin *orig, char *err, size_t errsz)
{
	const struct pf_cfg_key *krep = key_named("flowLogsRedactReplacement");
	const struct pf_cfg_key *krules = key_named("flowLogsRedactRulesFile");
	const struct pf_cfg_key *kon = key_named("flowLogsRedactArguments");
	char w1[PF_CFG_PATH_MAX + 32], w2[PF_CFG_PATH_MAX + 32], shown[PF_CFG_SHOWN_MAX * 4 + 8];
	char why[512];
	struct pf_redact *r;
	char *text = NULL;
	size_t len = 0;
	int e;

	if (!cfg->redact) {
		if (cfg->redact_rules[0]) {
			snprintf(err, errsz,
				 "%s: flowLogsRedactRulesFile: has no effect with redaction off "
				 "(flowLogsRedactArguments false, from %s)",
				 source_of(krules, args, orig, w1, sizeof(w1)),
				 source_of(kon, args, orig, w2, sizeof(w2)));
			return -EINVAL;
		}
		return 0;
	}
	r = pf_redact__new(1, cfg->redact_replacement);
	if (!r) {
		if (errno != EINVAL) {
			snprintf(err, errsz, "out of memory");
			return -ENOMEM;
		}
		snprintf(err, errsz,
			 "%s: flowLogsRedactReplacement: '%s' is not 1 to %d printable bytes",
			 source_of(krep, args, orig, w1, sizeof(w1)),
			 pf_cfg__shown(cfg->redact_replacement, shown, sizeof(shown)),
			 PF_REDACT_MAX_REPLACEMENT);
		return -EINVAL;
	}
	e = cfg->redact_rules[0] ? read_rules(cfg->redact_rules, &text, &len) : 0;
	if (e) {
		snprintf(err, errsz, "%s: flowLogsRedactRulesFile: cannot read '%s': %s",
			 source_of(krules, args, orig, w1, sizeof(w1)),
			 pf_cfg__shown(cfg->redact_rules, shown, sizeof(shown)),
			 e == -EFBIG	? "larger than 1 MiB"
			 : e == -EINVAL ? "not a regular file"
					: strerror(-e));
	} else if (text && pf_redact__load(r, text, len, why, sizeof(why))) {
		char *clean = why;

		/* The rule is echoed (it is what to fix), without control bytes. */
		for (char *c = why; *c; c++)
			if ((unsigned char)*c < 0x20 || *c == 0x7f)
				*c = '?';
		snprintf(err, errsz, "%s: flowLogsRedactRulesFile: %s: %s",
			 source_of(krules, args, orig, w1, sizeof(w1)),
			 pf_cfg__shown(cfg->redact_rules, shown, sizeof(shown)), clean);
		e = -EINVAL;
	}
	free(text);
	pf_redact__free(r);
	return e ? -EINVAL : 0;
}

/* @dir, when it exists, must be a directory (the agent creates it when not). */
static int check_dir(const char *name, const char *dir, const struct pf_config_args *args,
		     const struct pf_cfg_origin *orig, char *err, size_t errsz)
{
	char w[PF_CFG_PATH_MAX + 32], shown[PF_CFG_SHOWN_MAX * 4 + 8];
	struct stat st;

	if (!stat(dir, &st) ? S_ISDIR(st.st_mode) : errno != ENOTDIR)
		return 0;
	snprintf(err, errsz, "%s: %s: '%s' is not a directory",
		 source_of(key_named(name), args, orig, w, sizeof(w)), name,
		 pf_cfg__shown(dir, shown, sizeof(shown)));
	return -EINVAL;
}

int pf_config_validate(const struct pf_config *cfg, const struct pf_config_args *args,
		       const struct pf_cfg_origin *orig, char *err, size_t errsz)
{
	char w[PF_CFG_PATH_MAX + 32];

	if (cfg->ringbuf_kib & (cfg->ringbuf_kib - 1)) {
		snprintf(err, errsz,
			 "%s: ringBufferKiB: %u is not a power of two (16, 32, 64, ... 1048576)",
			 source_of(key_named("ringBufferKiB"), args, orig, w, sizeof(w)),
			 cfg->ringbuf_kib);
		return -EINVAL;
	}
	if (check_redaction(cfg, args, orig, err, errsz))
		return -EINVAL;
	if (check_dir("flowLogsFileDirectory", cfg->output_dir, args, orig, err, errsz) ||
	    check_dir("runtimeDirectory", cfg->runtime_dir, args, orig, err, errsz))
		return -EINVAL;
	return 0;
}

extern char **environ;

int pf_config_env_warnings(void)
{
	size_t plen = strlen(PF_CFG_ENV_PREFIX);
	char name[128], env[128], shown[PF_CFG_SHOWN_MAX * 4 + 8];
	int count = 0;

	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '=');
		const struct pf_cfg_key *near;
		bool known = false;
		size_t n;

		if (strncmp(*e, PF_CFG_ENV_PREFIX, plen) || !eq)
			continue;
		n = (size_t)(eq - *e);
		if (n >= sizeof(name))
			n = sizeof(name) - 1;
		memcpy(name, *e, n);
		name[n] = '\0';
		if (!strcmp(name, "PROCFLOW_CONFIG"))
			continue;
		for (size_t i = 0; i < pf_config_nkeys && !known; i++)
			known = pf_cfg__env_name(&pf_config_keys[i], env, sizeof(env)) > 0 &&
				!strcmp(env, name);
		if (known)
			continue;
		count++;
		near = pf_cfg__closest_env(pf_config_keys, pf_config_nkeys, name);
		if (near)
			pf_cfg__env_name(near, env, sizeof(env));
		pf_log("warning: environment %s sets nothing: no such variable%s%s%s",
		       pf_cfg__shown(name, shown, sizeof(shown)), near ? " (did you mean " : "",
		       near ? env : "", near ? "?)" : " (see procflow --help)");
	}
	return count;
}
