// SPDX-License-Identifier: BSD-2-Clause
/*
 * --stdout: every line also on standard output, behind the sink interface
 * (sink.h). The loop never waits for the reader: lines a slow reader has
 * not taken wait in a bounded buffer (lib/outbuf.c), written when the
 * descriptor is writable again (a file event of the loop, registered only
 * while lines wait); beyond the bound they are dropped, counted and
 * logged. A reader that exits (`| head -1`) is said once; the other
 * outputs go on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "loop.h"
#include "metrics.h"
#include "outbuf.h"
#include "sink.h"

/* Lines for --stdout that a slow reader has not taken yet wait here, at
 * most this much; beyond it they are dropped (counted and logged), so the
 * loop never waits for the reader. */
#define PF_STDOUT_BUF_MAX (4u << 20)

struct pf_sink {
	const struct pf_config *cfg; /* the running one: flowLogsStdout changes live */
	struct pf_loop *loop;
	struct pf_outbuf *so; /* NULL until lines are first printed */
	int fd;		      /* the descriptor written (may be a reopened fd 1) */
	int fl;		      /* fd 1's flags to restore at exit, -1: untouched */
	bool polled;	      /* fd is a file event of the loop, for EPOLLOUT */
	bool closed_logged;   /* the reader's exit was said */
	uint64_t reported;    /* drops already logged */
};

static const char *const stdout_keys[] = {"flowLogsStdout", NULL};

/*
 * The descriptor --stdout writes: never one that blocks. A pipe or terminal
 * is opened again through /proc (a file description of our own, so making
 * it non-blocking does not change the shell's or the reader's); where that
 * fails (a socket), fd 1 itself is made non-blocking and restored at exit.
 * A regular file never blocks and is written as it is.
 */
static int stdout_open(struct pf_sink *s)
{
	struct stat st;
	int fd, fl;

	s->fl = -1;
	if (fstat(STDOUT_FILENO, &st))
		return -errno;
	if (S_ISREG(st.st_mode))
		return STDOUT_FILENO;
	fd = open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	fl = fcntl(STDOUT_FILENO, F_GETFL);
	if (fl < 0 || fcntl(STDOUT_FILENO, F_SETFL, fl | O_NONBLOCK))
		return -errno;
	s->fl = fl;
	return STDOUT_FILENO;
}

/* Set the buffer up (at start, or when a reload turns --stdout on).
 * Returns 0 or a negative errno, logged. */
static int stdout_setup(struct pf_sink *s)
{
	int fd = stdout_open(s);

	s->so = fd >= 0 ? pf_outbuf__new(fd, PF_STDOUT_BUF_MAX) : NULL;
	if (!s->so) {
		pf_log("cannot use standard output: %s", strerror(fd < 0 ? -fd : ENOMEM));
		if (fd > STDOUT_FILENO)
			close(fd);
		return fd < 0 ? fd : -ENOMEM;
	}
	s->fd = fd;
	return 0;
}

static void report(struct pf_sink *s, int err, bool interval);

/* The reader made room (or went away). */
static void on_writable(struct pf_loop *l, int fd, uint32_t events, void *ctx)
{
	struct pf_sink *s = ctx;

	report(s, pf_outbuf__flush(s->so), false);
}

/* Watch for the reader to make room only while lines are waiting. */
static void poll_reader(struct pf_sink *s)
{
	bool want = pf_outbuf__pending(s->so) && !pf_outbuf__closed(s->so);

	if (want == s->polled)
		return;
	if (!want) {
		pf_loop__del(s->loop, s->fd);
		s->polled = false;
	} else if (!pf_loop__add(s->loop, s->fd, EPOLLOUT, on_writable, s)) {
		s->polled = true;
	}
}

/* After a write or flush of the buffer: say once that the reader is gone,
 * and each interval how many lines a slow one missed. */
static void report(struct pf_sink *s, int err, bool interval)
{
	uint64_t dropped = pf_outbuf__dropped(s->so);

	pf_metrics__follow(&pf_registry, PF_M_LINES_DROPPED_STDOUT, dropped);
	if (err == -EPIPE && !s->closed_logged) {
		if (s->cfg->file_enabled)
			pf_log("standard output is closed (its reader exited): lines go on to "
			       "%s/flows.log only",
			       s->cfg->output_dir);
		else
			pf_log("standard output is closed (its reader exited): lines go on to the "
			       "other outputs only");
		s->closed_logged = true;
		s->reported = dropped; /* no more per-interval reports */
	} else if (err && err != -EPIPE && !s->closed_logged) {
		pf_debug("writing standard output: %s", strerror(-err));
	}
	if (interval && !pf_outbuf__closed(s->so) && dropped > s->reported) {
		pf_log("%llu lines not printed on standard output: its reader is too slow (at most "
		       "%u MiB wait for it)",
		       (unsigned long long)(dropped - s->reported), PF_STDOUT_BUF_MAX >> 20);
		s->reported = dropped;
	}
	poll_reader(s);
}

static bool stdout_wanted(const struct pf_config *cfg)
{
	return true; /* flowLogsStdout changes live: take() looks at it */
}

static struct pf_sink *stdout_start(const struct pf_config *cfg, struct pf_loop *loop)
{
	struct pf_sink *s = calloc(1, sizeof(*s));

	if (!s) {
		pf_log("out of memory");
		return NULL;
	}
	s->cfg = cfg;
	s->loop = loop;
	s->fd = -1;
	s->fl = -1;
	if (cfg->to_stdout) {
		int err = stdout_setup(s);

		if (err) {
			free(s);
			errno = -err == EINVAL ? EIO : -err;
			return NULL;
		}
	}
	return s;
}

static void stdout_take(struct pf_sink *s, const char *lines, size_t len, uint64_t nlines)
{
	if (!s->cfg->to_stdout)
		return;
	if (!s->so && stdout_setup(s))
		return; /* turned on by a reload, and not usable: said */
	pf_metrics__add(&pf_registry, PF_M_LINES_WRITTEN_STDOUT, nlines);
	/* An interval comes in several runs: its drops are told at the tick. */
	report(s, pf_outbuf__write(s->so, lines, len, nlines), false);
}

/* Once per interval, after its last lines: what a slow reader missed. */
static void stdout_tick(struct pf_sink *s)
{
	if (s->so)
		report(s, 0, true);
}

static void stdout_stop(struct pf_sink *s)
{
	if (!s)
		return;
	if (s->so) {
		(void)pf_outbuf__flush(s->so);
		if (pf_outbuf__pending(s->so)) {
			pf_outbuf__discard(s->so);
			pf_log("%llu lines not printed on standard output at exit: its reader did "
			       "not take them in time",
			       (unsigned long long)(pf_outbuf__dropped(s->so) - s->reported));
		}
		if (s->polled)
			pf_loop__del(s->loop, s->fd);
		if (s->fl >= 0)
			(void)fcntl(STDOUT_FILENO, F_SETFL, s->fl);
		if (s->fd > STDOUT_FILENO)
			close(s->fd);
		pf_outbuf__free(s->so);
	}
	free(s);
}

const struct pf_sink_ops pf_sink_stdout = {
    .name = "stdout",
    .keys = stdout_keys,
    .wanted = stdout_wanted,
    .start = stdout_start,
    .take = stdout_take,
    .tick = stdout_tick,
    .stop = stdout_stop,
};
