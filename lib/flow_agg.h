/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Aggregation of flow observations into flow-log records, and their JSON
 * form (../shared/spec/flow-log-format.md is the contract).
 *
 * The agent feeds one observation per flow (5-tuple, network namespace,
 * reporter) per interval with that interval's counter deltas and the
 * process that owns the local side, then calls pf_agg__flush() once per
 * interval. The aggregator folds observations by the aggregation level,
 * keeps per-process statistics within each folded key (first-seen order),
 * and hands on one record (lib/record.h) per (key, process name); the
 * record's writer turns it into a line.
 *
 * Nothing here knows about BPF or the kernel: it is pure logic.
 */
#ifndef PF_FLOW_AGG_H
#define PF_FLOW_AGG_H

#include <stddef.h>
#include <stdint.h>

#include "record.h"

enum pf_reporter {
	PF_REPORTER_SRC = 1, /* local side initiated */
	PF_REPORTER_DST = 2, /* local side received */
};

/* What policy did with the flow. procflow has no policy yet: every flow is
 * allowed; the aggregation level is chosen per action all the same. */
enum pf_action {
	PF_ACTION_ALLOW = 0,
	PF_ACTION_DENY = 1,
};

/* A workload endpoint on this node (a container, or a pod's container).
 * Strings are copied by pf_agg__add(). */
struct pf_flow_ep {
	const char *name;	   /* the pod's name, else the container's */
	const char *name_aggr;	   /* the name with its generated suffix as "*" */
	const char *namespace_;	   /* Kubernetes namespace, "-" outside Kubernetes */
	const char *const *labels; /* "k=v", sorted */
	unsigned nlabels;
};

struct pf_flow_obs {
	uint64_t netns;	   /* network namespace: part of the flow key */
	uint64_t flow_id;  /* unique per flow across intervals (distinct flow count) */
	uint8_t laddr[16]; /* local address, IPv4 as ::ffff:a.b.c.d */
	uint8_t raddr[16]; /* remote address */
	uint16_t lport, rport;
	uint8_t proto;	   /* IPPROTO_* */
	uint8_t reporter;  /* enum pf_reporter */
	uint8_t started;   /* the flow started in this interval */
	uint8_t completed; /* the flow completed in this interval */
	uint8_t action;	   /* enum pf_action; part of the key, never folded */
	uint64_t bytes_in, bytes_out, packets_in, packets_out; /* this interval */

	/* Process on the local side. proc_name NULL: no process known ("-").
	 * proc_pid 0: PID unknown. proc_args NULL: arguments unknown. */
	const char *proc_name;
	uint32_t proc_pid;
	const char *proc_args;

	/* The workload on each side when it is a container on this node
	 * ("wep"); NULL: the local side is the host ("hep"), the remote side
	 * a network ("net"). */
	const struct pf_flow_ep *local_ep;
	const struct pf_flow_ep *remote_ep;

	/* TCP health; has_tcp 0 when there is no sample. */
	uint8_t has_tcp;
	uint32_t tcp_cwnd, tcp_srtt_us, tcp_min_rtt_us, tcp_mss;
	uint64_t tcp_retrans, tcp_lost, tcp_unrecovered_to; /* increases in this interval */
};

struct pf_agg_opts {
	int level;		   /* aggregation level 0..3 of allowed flows */
	int level_denied;	   /* aggregation level 0..3 of denied flows */
	const char *host;	   /* host name: "host" field and the hep name */
	unsigned proc_limit;	   /* flowLogsFilePerFlowProcessLimit (default 2) */
	unsigned args_limit;	   /* flowLogsFilePerFlowProcessArgsLimit (default 5) */
	int include_process;	   /* 0: every process_name is "-" */
	int include_tcp;	   /* 0: every tcp_* field is 0 */
	int include_labels;	   /* flowLogsIncludeLabels: 0: every *_labels is null */
	size_t max_keys;	   /* bound on folded keys per interval; 0 = 1<<20 */
	enum pf_rec_schema schema; /* the lines' key set (0: current) */
};

/* Called for each record of an interval; @r is valid during the call only.
 * Return 0 to go on, a negative errno to stop. */
typedef int (*pf_agg_rec_fn)(const struct pf_record *r, void *ctx);

/* Called for each finished line: @line is one JSON object followed by
 * '\n', @len bytes. Return 0 to go on, a negative errno to stop. */
typedef int (*pf_agg_line_fn)(const char *line, size_t len, void *ctx);

struct pf_agg;

/* Returns NULL with errno set (EINVAL for a bad level). @opts->host is copied. */
struct pf_agg *pf_agg__new(const struct pf_agg_opts *opts);
void pf_agg__free(struct pf_agg *a); /* accepts NULL */

/*
 * Change the options of an aggregator between intervals: call it right
 * after pf_agg__flush() (a level change re-folds keys, which cannot apply
 * to an interval half aggregated). Returns 0, -EINVAL for a bad level or
 * -EBUSY when the current interval already holds observations.
 */
int pf_agg__reconfigure(struct pf_agg *a, const struct pf_agg_opts *opts);

/* Add one observation to the current interval. Strings are copied.
 * Returns 0, -ENOSPC when max_keys is reached (the observation is counted
 * in pf_agg__dropped()), or -ENOMEM. */
int pf_agg__add(struct pf_agg *a, const struct pf_flow_obs *obs);

/* Hand on every record of the interval [start_s, end_s] in first-seen key
 * order, then clear the interval. Returns 0, -ENOMEM, or the first error
 * from @fn (the interval is cleared all the same). */
int pf_agg__flush_records(struct pf_agg *a, uint64_t start_s, uint64_t end_s, pf_agg_rec_fn fn,
			  void *ctx);

/* pf_agg__flush_records() with each record written as a line
 * (pf_rec__line(), the schema of the options). A line too long for
 * AGG_LINE_MAX even without argument strings is dropped and counted in
 * pf_agg__dropped(). Returns 0 or the first error from @fn. */
int pf_agg__flush(struct pf_agg *a, uint64_t start_s, uint64_t end_s, pf_agg_line_fn fn, void *ctx);

uint64_t pf_agg__dropped(const struct pf_agg *a);

/* The key set of the lines, as the options last set it. */
enum pf_rec_schema pf_agg__schema(const struct pf_agg *a);

/* "pvt" for RFC 1918 addresses (10/8, 172.16/12, 192.168/16), as Calico
 * classifies them; every other address, IPv6 included, is "pub". @addr is
 * 16 bytes (IPv4-mapped for IPv4). */
const char *pf_addr_aggr_name(const uint8_t addr[16]);

/* Text form of a 16-byte address ("198.18.0.1", "fd00::1"). Returns @buf. */
char *pf_addr_str(const uint8_t addr[16], char *buf, size_t bufsz);

#endif
