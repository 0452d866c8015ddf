/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * An output of the agent: the flow-log file, standard output, ClickHouse,
 * the metrics endpoint. Each is one file behind this interface; the loop
 * (run.c) starts the sinks, hands each one every interval's lines, ticks
 * them once per interval, passes reloads on and stops them, and knows
 * nothing else about any of them.
 *
 * The lines are handed over as runs of whole JSON lines and their count
 * (the same bytes for every sink), a run at most 256 KiB unless it is one
 * longer line, several runs per interval (lib/linechunk.h): the agent never
 * holds an interval's output whole.
 */
#ifndef PF_SINK_H
#define PF_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_config;
struct pf_loop;
struct pf_sink; /* a sink's own state */

struct pf_sink_ops {
	const char *name;
	/* The configuration keys it owns (agent/config.c), NULL-terminated. */
	const char *const *keys;
	/* Whether @cfg asks for it at start-up. */
	bool (*wanted)(const struct pf_config *cfg);
	/*
	 * Start. @cfg is the agent's running configuration: the sink may keep
	 * the pointer, a reload changes it in place. @loop takes the file
	 * events the sink needs. Returns NULL after logging why, errno EINVAL
	 * when it is the user's to fix (exit 2).
	 */
	struct pf_sink *(*start)(const struct pf_config *cfg, struct pf_loop *loop);
	/* A run of an interval's lines, @len bytes, @nlines whole lines, in
	 * order; called as often as the interval needs, then tick. Never
	 * blocks; NULL: the sink takes no lines. */
	void (*take)(struct pf_sink *s, const char *lines, size_t len, uint64_t nlines);
	/* Once per interval, after its last run (or without lines). NULL: nothing. */
	void (*tick)(struct pf_sink *s);
	/* A reload has changed *cfg: take its live keys. NULL: none. */
	void (*reconfigure)(struct pf_sink *s);
	/* Stop, after the last interval's lines. Accepts NULL. */
	void (*stop)(struct pf_sink *s);
};

extern const struct pf_sink_ops pf_sink_file;	    /* sink_file.c */
extern const struct pf_sink_ops pf_sink_stdout;	    /* sink_stdout.c */
extern const struct pf_sink_ops pf_sink_clickhouse; /* sink_clickhouse.c */
extern const struct pf_sink_ops pf_sink_metrics;    /* sink_metrics.c */

/*
 * The file sink's check of the output directory, made before the PID file
 * is taken (so a wrong directory is said first, and a second agent never
 * touches the first one's files): the group exists, the directory can be
 * made and is safe. Returns PF_EXIT_OK, or an exit code after a message.
 */
int pf_sink_file__check(const struct pf_config *cfg);

/* The path the file sink writes (its "ready" line names it). */
const char *pf_sink_file__path(const struct pf_sink *s);

#endif
