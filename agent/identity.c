// SPDX-License-Identifier: BSD-2-Clause
/*
 * Process identity helpers of the daemon: the redaction rule set built from
 * the command line, and the one place where an argument area becomes the
 * process_args string (redacted, joined, truncation marked) before it
 * enters the process cache.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "identity.h"
#include "proc_cache.h"
#include "procfs.h"
#include "redact.h"

/* A rule file is a short text; anything larger is a mistake. */
#define PF_RULES_FILE_MAX (1 << 20)

static int read_file(const char *path, char **out, size_t *len)
{
	char *buf = NULL;
	size_t n = 0;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	buf = malloc(PF_RULES_FILE_MAX + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	for (;;) {
		ssize_t r = read(fd, buf + n, PF_RULES_FILE_MAX + 1 - n);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			goto fail;
		}
		if (r == 0)
			break;
		n += (size_t)r;
		if (n > PF_RULES_FILE_MAX) {
			err = -EFBIG;
			goto fail;
		}
	}
	close(fd);
	*out = buf;
	*len = n;
	return 0;
fail:
	close(fd);
	free(buf);
	return err;
}

int pf_config_redaction(struct pf_config *cfg)
{
	char err[512];
	char *text = NULL;
	size_t len = 0;
	int e;

	cfg->redactor = NULL;
	if (!cfg->redact) {
		if (cfg->redact_rules[0]) {
			fprintf(stderr, "procflow: flowLogsRedactRulesFile (--redact-rules) has no "
					"effect with redaction off (--no-redact)\n");
			return PF_EXIT_USAGE;
		}
		return PF_EXIT_OK;
	}
	cfg->redactor = pf_redact__new(1, cfg->redact_replacement);
	if (!cfg->redactor) {
		if (errno == EINVAL) {
			fprintf(stderr,
				"procflow: --redact-replacement: '%s' must be 1 to %d "
				"printable bytes\n",
				cfg->redact_replacement, PF_REDACT_MAX_REPLACEMENT);
			return PF_EXIT_USAGE;
		}
		fprintf(stderr, "procflow: out of memory\n");
		return PF_EXIT_RUNTIME;
	}
	if (!cfg->redact_rules[0])
		return PF_EXIT_OK;
	e = read_file(cfg->redact_rules, &text, &len);
	if (e) {
		fprintf(stderr, "procflow: --redact-rules: cannot read '%s': %s\n",
			cfg->redact_rules, e == -EFBIG ? "larger than 1 MiB" : strerror(-e));
		goto usage;
	}
	e = pf_redact__load(cfg->redactor, text, len, err, sizeof(err));
	free(text);
	if (e) {
		fprintf(stderr, "procflow: --redact-rules: %s: %s\n", cfg->redact_rules, err);
		goto usage;
	}
	return PF_EXIT_OK;
usage:
	pf_redact__free(cfg->redactor);
	cfg->redactor = NULL;
	return PF_EXIT_USAGE;
}

size_t pf_identity_args(const struct pf_config *cfg, const char *exe, const char *raw,
			size_t raw_len, int raw_truncated, char *out, size_t outsz, char *scratch,
			size_t scratchsz, int *truncated)
{
	static const char mark[] = "...[truncated]";
	int trunc = raw_truncated ? 1 : 0;
	size_t alen;

	if (cfg->redactor && raw_len) {
		/* Redact while the argument boundaries are still there. */
		raw_len = pf_redact__args(cfg->redactor, exe, raw, raw_len, scratch, scratchsz,
					  &trunc, NULL);
		raw = scratch;
	}
	alen = pf_procfs__join_args(raw, raw_len, cfg->argc_max, out, outsz, &trunc);
	if (trunc) {
		/* Mark what was cut, so nobody mistakes a prefix for the whole. */
		if (alen + sizeof(mark) > outsz)
			alen = outsz - sizeof(mark);
		memcpy(out + alen, mark, sizeof(mark));
		alen += sizeof(mark) - 1;
	}
	*truncated = trunc;
	return alen;
}

const char *pf_identity_exe(char *exe)
{
	static const char deleted[] = " (deleted)";
	size_t n = strlen(exe), d = sizeof(deleted) - 1;

	/* The kernel appends " (deleted)" to the link of an unlinked file:
	 * the name is the path the program was started from. */
	if (n > d && !strcmp(exe + n - d, deleted))
		exe[n - d] = '\0';
	return exe;
}

/* ---- processes whose exit was lost ---- */

/* How often the cache is checked against the running processes, and how
 * old an identity must be to be checked (its own events may still be in
 * the ring buffer). */
#define PF_REAP_EVERY_NS   (60ull * 1000000000ull)
#define PF_REAP_MIN_AGE_NS (10ull * 1000000000ull)

/* Whether (@pid, @start_ns) still runs. kill(pid, 0) tells whether the PID
 * exists whatever /proc hides (hidepid); /proc/<pid>/stat whether it is
 * still the same life, to a clock tick. When it cannot tell: alive. */
static int host_alive(uint32_t pid, uint64_t start_ns, int rounded, void *ctx)
{
	uint64_t tick = pf_proc_cache__tick_ns(), now_start;

	(void)rounded;
	(void)ctx;
	if (kill((pid_t)pid, 0) && errno == ESRCH)
		return 0;
	if (pf_procfs__start_ns("/proc", pid, &now_start))
		return 1;
	return now_start / tick == start_ns / tick;
}

void pf_identity_reap(struct pf_proc_cache *procs, uint64_t now_ns, bool host_pidns)
{
	static uint64_t last_ns;
	size_t n;

	if (!host_pidns || now_ns < PF_REAP_MIN_AGE_NS || now_ns - last_ns < PF_REAP_EVERY_NS)
		return;
	last_ns = now_ns;
	n = pf_proc_cache__reap(procs, now_ns, now_ns - PF_REAP_MIN_AGE_NS, host_alive, NULL);
	if (n)
		pf_debug("%zu processes ended without an exit event (lost with the ring buffer "
			 "full): their identities end now",
			 n);
}
