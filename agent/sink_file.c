// SPDX-License-Identifier: BSD-2-Clause
/*
 * The flow-log file: flows.log in the output directory, rotated by size
 * (lib/logfile.c). Behind the sink interface (sink.h).
 *
 * On a full disk or an unwritable directory the agent goes on collecting:
 * the lines are counted as lost, the failure is logged once when it
 * starts, and once writing works again the log says how many lines were
 * lost meanwhile. A failed rotation loses nothing (the open file grows on)
 * and is said once per episode.
 */
#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "logfile.h"
#include "metrics.h"
#include "safefs.h"
#include "sink.h"

struct pf_sink {
	const struct pf_config *cfg; /* the running one */
	struct pf_logfile *log;
	bool write_failing;	  /* the last write failed */
	uint64_t lost_reported;	  /* lines lost that the log has already told */
	uint64_t rotate_failures; /* rotation failures already logged */
	uint64_t rotations;	  /* rotations done when the last failure was seen */
	bool rotate_failing;	  /* a rotation failed, none worked since */
};

static const char *const file_keys[] = {
    "flowLogsFileEnabled",	 "flowLogsFileDirectory",   "flowLogsFileMaxFiles",
    "flowLogsFileMaxFileSizeMB", "flowLogsFileCompression", "flowLogsFileMode",
    "flowLogsFileDirectoryMode", "flowLogsFileGroup",	    NULL,
};

/* A group name, or a number, to its GID. Returns 0 or -ENOENT. */
static int resolve_group(const char *name, unsigned *gid)
{
	char buf[16384], *end;
	struct group gr, *res = NULL;
	unsigned long n;

	if (!getgrnam_r(name, &gr, buf, sizeof(buf), &res) && res) {
		*gid = (unsigned)res->gr_gid;
		return 0;
	}
	errno = 0;
	n = strtoul(name, &end, 10);
	if (errno || end == name || *end || n >= (gid_t)-1)
		return -ENOENT;
	*gid = (unsigned)n;
	return 0;
}

/* Say why the output directory (or flows.log in it) cannot be used
 * (errno @err); returns the exit code. */
static int output_error(const struct pf_config *cfg, int err)
{
	char why[256];

	if (pf_safefs__why(cfg->output_dir, why, sizeof(why)) && err != ENOENT && err != EACCES)
		pf_log("refusing the output directory %s: it %s", cfg->output_dir, why);
	else if (err == ELOOP || err == EINVAL)
		pf_log("refusing %s/flows.log: it is a symbolic link or not a regular file",
		       cfg->output_dir);
	else
		pf_log("cannot write flow logs in '%s': %s", cfg->output_dir, strerror(err));
	return err == ENOTDIR || err == ENOENT || err == EPERM || err == ELOOP || err == EINVAL
		   ? PF_EXIT_USAGE
		   : PF_EXIT_RUNTIME;
}

/* The log file's options from @cfg. Returns 0 or an exit code (logged). */
static int opts_of(const struct pf_config *cfg, struct pf_logfile_opts *lo)
{
	memset(lo, 0, sizeof(*lo));
	lo->dir = cfg->output_dir;
	lo->file_mode = cfg->file_mode;
	lo->dir_mode = cfg->dir_mode;
	lo->max_bytes = (uint64_t)cfg->max_file_mb << 20;
	lo->max_files = cfg->max_files;
	lo->compress = !strcmp(cfg->compression, "zstd");
	if (cfg->file_group[0]) {
		/* Members of the group read the files (procflow query) without
		 * root: the directory and every file created get the group. */
		if (resolve_group(cfg->file_group, &lo->group)) {
			pf_log("flowLogsFileGroup: there is no group '%s' on this host",
			       cfg->file_group);
			return PF_EXIT_USAGE;
		}
		lo->set_group = true;
	}
	return PF_EXIT_OK;
}

int pf_sink_file__check(const struct pf_config *cfg)
{
	struct pf_logfile_opts lo;
	int ret = opts_of(cfg, &lo), fd;

	if (ret)
		return ret;
	fd = pf_safefs__open_dir(lo.dir, lo.dir_mode ? lo.dir_mode : 0750,
				 lo.set_group ? (gid_t)lo.group : PF_SAFEFS_NO_GROUP, NULL);
	if (fd < 0)
		return output_error(cfg, -fd);
	close(fd);
	return PF_EXIT_OK;
}

const char *pf_sink_file__path(const struct pf_sink *s)
{
	return pf_logfile__path(s->log);
}

static bool file_wanted(const struct pf_config *cfg)
{
	/* Always open: flowLogsFileEnabled changes live, and the file's
	 * directory is where the other outputs' state lives. */
	return true;
}

static struct pf_sink *file_start(const struct pf_config *cfg, struct pf_loop *loop)
{
	struct pf_logfile_opts lo;
	struct pf_sink *s;
	int ret = opts_of(cfg, &lo);

	if (ret) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		pf_log("out of memory");
		return NULL;
	}
	s->cfg = cfg;
	s->log = pf_logfile__open_opts(&lo);
	if (!s->log) {
		ret = output_error(cfg, errno);
		free(s);
		errno = ret == PF_EXIT_USAGE ? EINVAL : EIO;
		return NULL;
	}
	if (pf_logfile__repaired(s->log))
		pf_log("%s ended in a partial line (a write cut short when the agent was killed): "
		       "%llu bytes cut back to the last whole line",
		       pf_logfile__path(s->log), (unsigned long long)pf_logfile__repaired(s->log));
	return s;
}

/* Rotation said once per episode: failing, then working again. */
static void report_rotation(struct pf_sink *s)
{
	pf_metrics__follow(&pf_registry, PF_M_FILE_ROTATIONS, pf_logfile__rotations(s->log));
	pf_metrics__follow(&pf_registry, PF_M_FILE_ROTATION_FAILURES,
			   pf_logfile__rotate_failures(s->log));
	if (pf_logfile__rotate_failures(s->log) > s->rotate_failures) {
		/* Nothing is lost: the lines go on into the file that is open
		 * (or are counted as lost by the write). */
		if (!s->rotate_failing)
			pf_log("rotating %s failed (is the directory writable, are descriptors or "
			       "inodes left?): the open file grows past flowLogsFileMaxFileSizeMB "
			       "until rotation works again",
			       pf_logfile__path(s->log));
		s->rotate_failures = pf_logfile__rotate_failures(s->log);
		s->rotate_failing = true;
		s->rotations = pf_logfile__rotations(s->log);
	} else if (s->rotate_failing && pf_logfile__rotations(s->log) > s->rotations) {
		pf_log("rotating %s works again", pf_logfile__path(s->log));
		s->rotate_failing = false;
	}
}

static void file_take(struct pf_sink *s, const char *lines, size_t len, uint64_t nlines)
{
	uint64_t lost;
	int err;

	if (!s->cfg->file_enabled)
		return;
	err = pf_logfile__write(s->log, lines, len, nlines);
	lost = pf_logfile__lost(s->log);
	if (!err)
		pf_metrics__add(&pf_registry, PF_M_LINES_WRITTEN_FILE, nlines);
	else
		pf_metrics__add(&pf_registry, PF_M_FILE_WRITE_ERRORS, 1);
	pf_metrics__follow(&pf_registry, PF_M_LINES_DROPPED_FILE, lost);
	report_rotation(s);
	if (err) {
		if (!s->write_failing)
			pf_log("writing %s failed: %s; lines are counted as lost until writing "
			       "works again (%llu so far)",
			       pf_logfile__path(s->log), strerror(-err), (unsigned long long)lost);
		else
			pf_debug("writing %s still fails: %s (%llu lines lost so far)",
				 pf_logfile__path(s->log), strerror(-err),
				 (unsigned long long)lost);
		s->write_failing = true;
		return;
	}
	if (lost > s->lost_reported) {
		pf_log("writing %s works again: %llu lines could not be written while it failed",
		       pf_logfile__path(s->log), (unsigned long long)(lost - s->lost_reported));
		s->lost_reported = lost;
	}
	s->write_failing = false;
}

static void file_reconfigure(struct pf_sink *s)
{
	pf_logfile__set_rotation(s->log, (uint64_t)s->cfg->max_file_mb << 20, s->cfg->max_files,
				 !strcmp(s->cfg->compression, "zstd"));
}

static void file_stop(struct pf_sink *s)
{
	if (!s)
		return;
	pf_logfile__close(s->log);
	free(s);
}

const struct pf_sink_ops pf_sink_file = {
    .name = "file",
    .keys = file_keys,
    .wanted = file_wanted,
    .start = file_start,
    .take = file_take,
    .reconfigure = file_reconfigure,
    .stop = file_stop,
};
