/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The one registry of the agent's counters and gauges, and their
 * Prometheus text exposition.
 *
 * Every series is a slot of a fixed array, named by an enum and described
 * by one row of the table in metrics.c (name, labels, type, help, unit
 * scale). The loop thread and the ClickHouse sender write the slots with
 * relaxed atomics; the per-interval log lines and the /metrics endpoint
 * read the same slots, so what the log says and what is scraped agree.
 * Nothing here allocates or locks: a reader in another thread never holds
 * up a writer.
 */
#ifndef PF_METRICS_H
#define PF_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

enum pf_metric {
	/* kernel-side losses (the stats map), running totals */
	PF_M_KERNEL_EVENTS_LOST,
	PF_M_KERNEL_PACKETS_UNCOUNTED,
	PF_M_KERNEL_OWNERS_LOST,
	PF_M_KERNEL_ACCEPT_MISSES,
	PF_M_KERNEL_FINALS_LOST,
	PF_M_KERNEL_RUNS_MISSED,
	PF_M_KERNEL_CLOSES_RESCUED,
	/* bounded tables: entries, then capacity */
	PF_M_ENTRIES_SOCKS,
	PF_M_ENTRIES_FLOWS,
	PF_M_ENTRIES_TCP,
	PF_M_ENTRIES_PROCESSES,
	PF_M_ENTRIES_COLLECTOR,
	PF_M_ENTRIES_HANDSHAKES,
	PF_M_ENTRIES_CGROUPS,
	PF_M_CAPACITY_SOCKS,
	PF_M_CAPACITY_FLOWS,
	PF_M_CAPACITY_PROCESSES,
	PF_M_CAPACITY_COLLECTOR,
	PF_M_CAPACITY_HANDSHAKES,
	PF_M_CAPACITY_CGROUPS,
	PF_M_KERNEL_MAP_BYTES, /* memlock of every BPF map, summed */
	/* intervals */
	PF_M_FLUSHES,
	PF_M_FLUSH_DURATION, /* nanoseconds, shown in seconds */
	PF_M_INTERVAL_FLOWS,
	PF_M_INTERVAL_LINES,
	PF_M_LINES,
	PF_M_LINES_WRITTEN_FILE,
	PF_M_LINES_WRITTEN_STDOUT,
	PF_M_LINES_WRITTEN_CLICKHOUSE,
	PF_M_LINES_DROPPED_FILE,
	PF_M_LINES_DROPPED_STDOUT,
	PF_M_LINES_DROPPED_CLICKHOUSE,
	/* user-space drops */
	PF_M_AGG_DROPPED,
	PF_M_AGG_NOMEM,
	PF_M_OUTPUT_NOMEM,
	PF_M_PROCS_DROPPED,
	PF_M_PROCS_EVICTED,
	PF_M_PROCS_REAPED,
	PF_M_COLLECTOR_DROPPED,
	PF_M_COLLECTOR_EXPIRED,
	PF_M_COLLECTOR_HS_DROPPED,
	/* identities */
	PF_M_IDENT_EXEC,
	PF_M_IDENT_PROCFS,
	PF_M_IDENT_FORK,
	PF_M_IDENT_TASK,
	PF_M_FLOWS_UNOWNED,
	PF_M_EVENTS_EXEC,
	PF_M_EVENTS_FORK,
	PF_M_EVENTS_EXIT,
	/* reloads */
	PF_M_RELOADS_APPLIED,
	PF_M_RELOADS_UNCHANGED,
	PF_M_RELOADS_REJECTED,
	/* the flow-log file */
	PF_M_FILE_ROTATIONS,
	PF_M_FILE_ROTATION_FAILURES,
	PF_M_FILE_WRITE_ERRORS,
	/* the ClickHouse sink */
	PF_M_CH_QUEUE_BYTES,
	PF_M_CH_SPOOL_BYTES,
	PF_M_CH_SPOOL_ROWS,
	PF_M_CH_SEND_FAILURES,
	PF_M_CH_RETRIES,
	PF_M_CH_ROWS_REJECTED,
	PF_M_MAX
};

enum pf_metric_type {
	PF_METRIC_COUNTER,
	PF_METRIC_GAUGE,
};

struct pf_metric_def {
	const char *name;   /* the family: procflow_..., _total for counters */
	const char *labels; /* "" or 'key="value"' */
	enum pf_metric_type type;
	uint32_t scale; /* the value is stored in 1/scale of the base unit (1: as is) */
	const char *help;
};

/* The table, PF_M_MAX rows in enum order; the rows of a family are adjacent. */
extern const struct pf_metric_def pf_metric_defs[PF_M_MAX];

struct pf_metrics {
	_Atomic uint64_t v[PF_M_MAX];
};

/* The agent's registry (zero at start). */
extern struct pf_metrics pf_registry;

static inline void pf_metrics__add(struct pf_metrics *m, enum pf_metric id, uint64_t n)
{
	atomic_fetch_add_explicit(&m->v[id], n, memory_order_relaxed);
}

static inline void pf_metrics__set(struct pf_metrics *m, enum pf_metric id, uint64_t n)
{
	atomic_store_explicit(&m->v[id], n, memory_order_relaxed);
}

/* A running total kept elsewhere (a component's own counter): the slot
 * follows it, never goes down. */
static inline void pf_metrics__follow(struct pf_metrics *m, enum pf_metric id, uint64_t total)
{
	if (total > atomic_load_explicit(&m->v[id], memory_order_relaxed))
		atomic_store_explicit(&m->v[id], total, memory_order_relaxed);
}

static inline uint64_t pf_metrics__get(const struct pf_metrics *m, enum pf_metric id)
{
	return atomic_load_explicit(&((struct pf_metrics *)m)->v[id], memory_order_relaxed);
}

/* The standard process_* metrics, read by the caller (from /proc/self). */
struct pf_metrics_process {
	double cpu_seconds;
	double start_time_seconds; /* Unix time */
	uint64_t resident_bytes, virtual_bytes;
	uint64_t open_fds, max_fds;
};

/*
 * Write the Prometheus text exposition (format 0.0.4) of @m, and of @proc
 * unless NULL, into @buf: a HELP and a TYPE line per family, then its
 * series. Returns the length the whole text needs (as snprintf); the text
 * is complete only when that is less than @sz.
 */
size_t pf_metrics__format(const struct pf_metrics *m, const struct pf_metrics_process *proc,
			  char *buf, size_t sz);

/*
 * Parse --metrics-listen: "PORT", "ADDR:PORT" or "[IPv6]:PORT" (ADDR a
 * numeric IPv4 or IPv6 address). Fills @addr ("" for every address, at
 * most @addrsz bytes) and @port. Returns 0, or -EINVAL with why in @why.
 */
int pf_metrics__parse_listen(const char *text, char *addr, size_t addrsz, uint16_t *port, char *why,
			     size_t whysz);

/* The same as a check of the configuration table (lib/config.h). */
int pf_metrics__check_listen(const char *text, char *why, size_t whysz);

#endif
