// SPDX-License-Identifier: BSD-2-Clause
/*
 * The registry's table and its Prometheus text exposition (see metrics.h).
 * Names follow the Prometheus conventions: a procflow_ prefix, counters end
 * in _total, values in base units (seconds, bytes).
 */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pf_metrics pf_registry;

#define C(id, name, labels, help) [id] = {name, labels, PF_METRIC_COUNTER, 1, help}
#define G(id, name, labels, help) [id] = {name, labels, PF_METRIC_GAUGE, 1, help}

#define ENTRIES_HELP  "Entries in a bounded table (kernel map or agent table) after the last flush."
#define CAPACITY_HELP "Capacity of a bounded table: when entries reach it, new entries are lost."
#define WRITTEN_HELP                                                                               \
	"Flow-log lines an output took: written to the file, handed to standard output, "          \
	"accepted by ClickHouse."
#define DROPPED_HELP                                                                               \
	"Flow-log lines an output lost (write failure, slow reader, full queue or spool)."
#define IDENT_HELP                                                                                 \
	"Process identities learnt, by source: exec event, /proc scan at start-up, fork "          \
	"without exec."
#define EVENTS_HELP  "Process events read from the kernel ring buffer, by type."
#define RELOADS_HELP "Configuration reloads (SIGHUP), by result."

const struct pf_metric_def pf_metric_defs[PF_M_MAX] = {
    C(PF_M_KERNEL_EVENTS_LOST, "procflow_kernel_events_lost_total", "",
      "Process events (exec, fork, exit) lost in the kernel: the ring buffer was full."),
    C(PF_M_KERNEL_PACKETS_UNCOUNTED, "procflow_kernel_packets_uncounted_total", "",
      "Packets not counted in the kernel: the flows map was full, or the bucket busy."),
    C(PF_M_KERNEL_OWNERS_LOST, "procflow_kernel_socket_owners_lost_total", "",
      "Socket owners not recorded in the kernel: the socks map was full, or the bucket busy."),
    C(PF_M_KERNEL_ACCEPT_MISSES, "procflow_kernel_accept_misses_total", "",
      "Accepted sockets the kernel side found without a cookie."),
    C(PF_M_KERNEL_FINALS_LOST, "procflow_kernel_final_counters_lost_total", "",
      "Closed TCP connections whose final counters the kernel could not save in the flows map."),
    C(PF_M_KERNEL_RUNS_MISSED, "procflow_kernel_hook_runs_missed_total", "",
      "Runs of the agent's BPF programs the kernel skipped (a hook fired inside itself on one "
      "CPU)."),
    C(PF_M_KERNEL_CLOSES_RESCUED, "procflow_kernel_closes_rescued_total", "",
      "TCP closes whose state-hook run the kernel skipped, saved when the socket was destroyed."),
    G(PF_M_ENTRIES_SOCKS, "procflow_table_entries", "table=\"socks\"", ENTRIES_HELP),
    G(PF_M_ENTRIES_FLOWS, "procflow_table_entries", "table=\"flows\"", ENTRIES_HELP),
    G(PF_M_ENTRIES_TCP, "procflow_table_entries", "table=\"tcp\"", ENTRIES_HELP),
    G(PF_M_ENTRIES_PROCESSES, "procflow_table_entries", "table=\"processes\"", ENTRIES_HELP),
    G(PF_M_ENTRIES_COLLECTOR, "procflow_table_entries", "table=\"collector_flows\"", ENTRIES_HELP),
    G(PF_M_ENTRIES_HANDSHAKES, "procflow_table_entries", "table=\"handshakes\"", ENTRIES_HELP),
    G(PF_M_ENTRIES_CGROUPS, "procflow_table_entries", "table=\"cgroups\"", ENTRIES_HELP),
    G(PF_M_CAPACITY_SOCKS, "procflow_table_capacity", "table=\"socks\"", CAPACITY_HELP),
    G(PF_M_CAPACITY_FLOWS, "procflow_table_capacity", "table=\"flows\"", CAPACITY_HELP),
    G(PF_M_CAPACITY_PROCESSES, "procflow_table_capacity", "table=\"processes\"", CAPACITY_HELP),
    G(PF_M_CAPACITY_COLLECTOR, "procflow_table_capacity", "table=\"collector_flows\"",
      CAPACITY_HELP),
    G(PF_M_CAPACITY_HANDSHAKES, "procflow_table_capacity", "table=\"handshakes\"", CAPACITY_HELP),
    G(PF_M_CAPACITY_CGROUPS, "procflow_table_capacity", "table=\"cgroups\"", CAPACITY_HELP),
    G(PF_M_KERNEL_MAP_BYTES, "procflow_kernel_map_bytes", "",
      "Kernel memory of the BPF maps (their memlock, summed): preallocated at start."),
    C(PF_M_FLUSHES, "procflow_flushes_total", "", "Intervals flushed."),
    [PF_M_FLUSH_DURATION] = {"procflow_flush_duration_seconds", "", PF_METRIC_GAUGE, 1000000000,
			     "How long the last flush took (read the maps, build and write the "
			     "lines)."},
    G(PF_M_INTERVAL_FLOWS, "procflow_interval_kernel_flows", "",
      "Kernel flow entries the last flush read."),
    G(PF_M_INTERVAL_LINES, "procflow_interval_lines", "",
      "Flow-log lines the last interval produced (loss markers included)."),
    C(PF_M_LINES, "procflow_flow_lines_total", "",
      "Flow-log lines produced (loss markers included), before any output."),
    C(PF_M_LINES_WRITTEN_FILE, "procflow_flow_lines_written_total", "sink=\"file\"", WRITTEN_HELP),
    C(PF_M_LINES_WRITTEN_STDOUT, "procflow_flow_lines_written_total", "sink=\"stdout\"",
      WRITTEN_HELP),
    C(PF_M_LINES_WRITTEN_CLICKHOUSE, "procflow_flow_lines_written_total", "sink=\"clickhouse\"",
      WRITTEN_HELP),
    C(PF_M_LINES_DROPPED_FILE, "procflow_flow_lines_dropped_total", "sink=\"file\"", DROPPED_HELP),
    C(PF_M_LINES_DROPPED_STDOUT, "procflow_flow_lines_dropped_total", "sink=\"stdout\"",
      DROPPED_HELP),
    C(PF_M_LINES_DROPPED_CLICKHOUSE, "procflow_flow_lines_dropped_total", "sink=\"clickhouse\"",
      DROPPED_HELP),
    C(PF_M_AGG_DROPPED, "procflow_aggregator_dropped_total", "",
      "Flow observations or lines the aggregator dropped (more flow keys than it holds, or a "
      "line too long)."),
    C(PF_M_AGG_NOMEM, "procflow_aggregator_nomem_total", "",
      "Flow observations dropped: out of memory in the aggregator."),
    C(PF_M_OUTPUT_NOMEM, "procflow_output_nomem_lines_total", "",
      "Always 0: lines reach the outputs in fixed chunks, never gathered whole (kept for "
      "dashboards)."),
    C(PF_M_PROCS_DROPPED, "procflow_process_cache_dropped_total", "",
      "Process identities not remembered: the process cache was full of live processes."),
    C(PF_M_PROCS_EVICTED, "procflow_process_cache_evicted_total", "",
      "Exited process identities evicted early to make room."),
    C(PF_M_PROCS_REAPED, "procflow_process_cache_reaped_total", "",
      "Process identities ended without their exit event (found gone in /proc)."),
    C(PF_M_COLLECTOR_DROPPED, "procflow_collector_dropped_flows_total", "",
      "Flows not reported: more live flows than the collector follows."),
    C(PF_M_COLLECTOR_EXPIRED, "procflow_collector_expired_flows_total", "",
      "Flows forgotten without their final counters."),
    C(PF_M_COLLECTOR_HS_DROPPED, "procflow_collector_dropped_handshakes_total", "",
      "Handshakes not reported: more waiting for their accepted connection than maxFlows."),
    C(PF_M_IDENT_EXEC, "procflow_identities_total", "source=\"exec\"", IDENT_HELP),
    C(PF_M_IDENT_PROCFS, "procflow_identities_total", "source=\"proc\"", IDENT_HELP),
    C(PF_M_IDENT_FORK, "procflow_identities_total", "source=\"fork\"", IDENT_HELP),
    C(PF_M_IDENT_TASK, "procflow_identities_total", "source=\"task\"", IDENT_HELP),
    C(PF_M_FLOWS_UNOWNED, "procflow_flows_unowned_total", "",
      "Kernel flow entries read with no owning process known (named by the task name, or "
      "not at all)."),
    C(PF_M_EVENTS_EXEC, "procflow_process_events_total", "type=\"exec\"", EVENTS_HELP),
    C(PF_M_EVENTS_FORK, "procflow_process_events_total", "type=\"fork\"", EVENTS_HELP),
    C(PF_M_EVENTS_EXIT, "procflow_process_events_total", "type=\"exit\"", EVENTS_HELP),
    C(PF_M_RELOADS_APPLIED, "procflow_reloads_total", "result=\"applied\"", RELOADS_HELP),
    C(PF_M_RELOADS_UNCHANGED, "procflow_reloads_total", "result=\"unchanged\"", RELOADS_HELP),
    C(PF_M_RELOADS_REJECTED, "procflow_reloads_total", "result=\"rejected\"", RELOADS_HELP),
    C(PF_M_FILE_ROTATIONS, "procflow_file_rotations_total", "", "Rotations of flows.log."),
    C(PF_M_FILE_ROTATION_FAILURES, "procflow_file_rotation_failures_total", "",
      "Rotations of flows.log that failed (the open file grows on)."),
    C(PF_M_FILE_WRITE_ERRORS, "procflow_file_write_errors_total", "",
      "Flushes whose write of flows.log failed (their lines are counted as dropped)."),
    G(PF_M_CH_QUEUE_BYTES, "procflow_clickhouse_queue_bytes", "",
      "Bytes of lines waiting in memory for the ClickHouse sender."),
    G(PF_M_CH_SPOOL_BYTES, "procflow_clickhouse_spool_bytes", "",
      "Bytes of batches waiting in the on-disk spool for ClickHouse."),
    G(PF_M_CH_SPOOL_ROWS, "procflow_clickhouse_spool_rows", "",
      "Rows of batches waiting in the on-disk spool for ClickHouse."),
    C(PF_M_CH_SEND_FAILURES, "procflow_clickhouse_send_failures_total", "",
      "Inserts into ClickHouse that failed (the batch stays in the spool)."),
    C(PF_M_CH_RETRIES, "procflow_clickhouse_retries_total", "",
      "Inserts of a batch that had failed before."),
    C(PF_M_CH_ROWS_REJECTED, "procflow_clickhouse_rows_rejected_total", "",
      "Rows ClickHouse refused as malformed (dropped: sending again could not work)."),
};

/* An appender that counts what it could not write, like snprintf. */
struct out {
	char *buf;
	size_t sz, len;
};

static void put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->len < o->sz ? o->buf + o->len : NULL, o->len < o->sz ? o->sz - o->len : 0,
		      fmt, ap);
	va_end(ap);
	if (n > 0)
		o->len += (size_t)n;
}

static void family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

size_t pf_metrics__format(const struct pf_metrics *m, const struct pf_metrics_process *proc,
			  char *buf, size_t sz)
{
	struct out o = {buf, sz, 0};

	if (sz)
		buf[0] = '\0';
	for (int i = 0; i < PF_M_MAX; i++) {
		const struct pf_metric_def *d = &pf_metric_defs[i];
		uint64_t v = pf_metrics__get(m, (enum pf_metric)i);

		if (!i || strcmp(d->name, pf_metric_defs[i - 1].name))
			family(&o, d->name, d->type == PF_METRIC_COUNTER ? "counter" : "gauge",
			       d->help);
		put(&o, "%s%s%s%s ", d->name, *d->labels ? "{" : "", d->labels,
		    *d->labels ? "}" : "");
		if (d->scale > 1)
			put(&o, "%.9f\n", (double)v / d->scale);
		else
			put(&o, "%llu\n", (unsigned long long)v);
	}
	if (proc) {
		family(&o, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.");
		put(&o, "process_cpu_seconds_total %.2f\n", proc->cpu_seconds);
		family(&o, "process_resident_memory_bytes", "gauge",
		       "Resident memory size in bytes.");
		put(&o, "process_resident_memory_bytes %llu\n",
		    (unsigned long long)proc->resident_bytes);
		family(&o, "process_virtual_memory_bytes", "gauge",
		       "Virtual memory size in bytes.");
		put(&o, "process_virtual_memory_bytes %llu\n",
		    (unsigned long long)proc->virtual_bytes);
		family(&o, "process_start_time_seconds", "gauge",
		       "Start time of the process since unix epoch in seconds.");
		put(&o, "process_start_time_seconds %.2f\n", proc->start_time_seconds);
		family(&o, "process_open_fds", "gauge", "Number of open file descriptors.");
		put(&o, "process_open_fds %llu\n", (unsigned long long)proc->open_fds);
		family(&o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		put(&o, "process_max_fds %llu\n", (unsigned long long)proc->max_fds);
	}
	return o.len;
}

int pf_metrics__parse_listen(const char *text, char *addr, size_t addrsz, uint16_t *port, char *why,
			     size_t whysz)
{
	const char *p = text, *colon;
	char host[64], *end;
	unsigned long n;
	size_t hl = 0;
	unsigned char bin[16];

	host[0] = '\0';
	if (*p == '[') {
		const char *close = strchr(p, ']');

		if (!close || close[1] != ':') {
			snprintf(why, whysz, "'%s' is not [IPv6]:PORT", text);
			return -EINVAL;
		}
		hl = (size_t)(close - p - 1);
		if (hl >= sizeof(host))
			hl = sizeof(host) - 1;
		memcpy(host, p + 1, hl);
		host[hl] = '\0';
		p = close + 2;
		if (inet_pton(AF_INET6, host, bin) != 1) {
			snprintf(why, whysz, "'%s' is not an IPv6 address", host);
			return -EINVAL;
		}
	} else if ((colon = strrchr(p, ':'))) {
		hl = (size_t)(colon - p);
		if (hl >= sizeof(host) || memchr(p, ':', hl)) {
			snprintf(why, whysz, "'%s' is not ADDR:PORT (an IPv6 address goes in [])",
				 text);
			return -EINVAL;
		}
		memcpy(host, p, hl);
		host[hl] = '\0';
		p = colon + 1;
		if (hl && inet_pton(AF_INET, host, bin) != 1) {
			snprintf(why, whysz, "'%s' is not a numeric IPv4 address", host);
			return -EINVAL;
		}
	}
	errno = 0;
	n = strtoul(p, &end, 10);
	if (!*p || *end || errno || n < 1 || n > 65535 || *p == '-' || *p == '+' || *p == ' ') {
		snprintf(why, whysz, "'%s' is not a port (1-65535)", p);
		return -EINVAL;
	}
	if (strlen(host) >= addrsz) {
		snprintf(why, whysz, "address too long");
		return -EINVAL;
	}
	memcpy(addr, host, strlen(host) + 1);
	*port = (uint16_t)n;
	return 0;
}

int pf_metrics__check_listen(const char *text, char *why, size_t whysz)
{
	char addr[64];
	uint16_t port;

	return pf_metrics__parse_listen(text, addr, sizeof(addr), &port, why, whysz);
}
