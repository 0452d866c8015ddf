// SPDX-License-Identifier: MIT
/*
 * aggbench: the user-space half of procflow alone, without BPF or traffic.
 *
 *   aggbench FLOWS ROUNDS [LEVEL]
 *
 * Each round adds one observation per flow (FLOWS distinct 5-tuples, as the
 * collector does once per flush interval for every flow with traffic) through
 * pf_agg__add(), then writes the interval with pf_agg__flush() into a memory
 * buffer (the JSON writing, not the disk). Prints, on stdout:
 *
 *   add_events_per_s R     observations into the flow table per second (one core)
 *   flush_lines_per_s R    JSON lines per second
 *   lines_per_round N      lines per flush
 *   bytes_per_line B
 *
 * The flows look like a busy node: 64 local processes with realistic paths and
 * argument strings, half of the flows outgoing (reporter src, ephemeral source
 * port), half incoming, spread over 4,096 remote addresses in 198.18.0.0/15, with
 * TCP samples. At level 0 every flow is its own line; at level 1 (the agent's
 * default) the source port is folded, so several flows share a line.
 *
 * Single-threaded by design (the agent is): the rates are per core.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flow_agg.h"

#define AB_PROCS 64
#define AB_REMOTES 4096
#define AB_MAX_FLOWS 10000000L
#define AB_MAX_ROUNDS 1000L

struct sink {
	char *buf;
	size_t len, cap;
	uint64_t lines, bytes, total_lines;
};

/* The agent appends lines to a buffer and writes it once per flush; this does
 * the same minus the write(2), and restarts the buffer when it is full. */
static int sink_line(const char *line, size_t len, void *ctx)
{
	struct sink *s = ctx;

	if (s->len + len > s->cap)
		s->len = 0;
	memcpy(s->buf + s->len, line, len);
	s->len += len;
	s->lines++;
	s->total_lines++;
	s->bytes += len;
	return 0;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < lo || v > hi) {
		fprintf(stderr, "aggbench: %s must be %ld..%ld\n", what, lo, hi);
		exit(2);
	}
	return v;
}

static void v4(uint8_t a[16], uint32_t host_order)
{
	memset(a, 0, 10);
	a[10] = a[11] = 0xff;
	a[12] = (uint8_t)(host_order >> 24);
	a[13] = (uint8_t)(host_order >> 16);
	a[14] = (uint8_t)(host_order >> 8);
	a[15] = (uint8_t)host_order;
}

int main(int argc, char **argv)
{
	static char names[AB_PROCS][64], args[AB_PROCS][160];
	struct pf_agg_opts ao = { .host = "bench-node", .proc_limit = 2, .args_limit = 5,
				  .include_process = 1, .include_tcp = 1, .max_keys = 0 };
	struct sink sink = { .cap = 64u << 20 };
	double t_add = 0, t_flush = 0;
	long flows, rounds;
	struct pf_agg *a;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "usage: aggbench FLOWS ROUNDS [LEVEL]\n");
		return 2;
	}
	flows = num(argv[1], 1, AB_MAX_FLOWS, "FLOWS");
	rounds = num(argv[2], 1, AB_MAX_ROUNDS, "ROUNDS");
	ao.level = argc == 4 ? (int)num(argv[3], 0, 3, "LEVEL") : 1;
	ao.max_keys = (size_t)flows + 1;
	sink.buf = malloc(sink.cap);
	a = pf_agg__new(&ao);
	if (!sink.buf || !a) {
		perror("aggbench: setup");
		return 1;
	}
	for (int p = 0; p < AB_PROCS; p++) {
		snprintf(names[p], sizeof(names[p]), "/usr/lib/service-%02d/bin/worker", p);
		snprintf(args[p], sizeof(args[p]),
			 "worker --config /etc/service-%02d/worker.conf --listen 0.0.0.0:%d -v", p,
			 8000 + p);
	}

	for (long r = 0; r < rounds; r++) {
		double t0 = now(), t1, t2;

		for (long i = 0; i < flows; i++) {
			struct pf_flow_obs o;
			int p = (int)(i % AB_PROCS), out = (int)(i & 1);

			memset(&o, 0, sizeof(o));
			o.netns = 4026531840u;
			o.flow_id = (uint64_t)i;
			v4(o.laddr, 0xc6120001u); /* 198.18.0.1 */
			v4(o.raddr, 0xc6130000u + (uint32_t)(i % AB_REMOTES));
			if (out) { /* outgoing: ephemeral local port to a service port */
				o.lport = (uint16_t)(10000 + (i / AB_REMOTES) % 50000);
				o.rport = (uint16_t)(443 + p % 4);
				o.reporter = PF_REPORTER_SRC;
			} else { /* incoming to this node's service port */
				o.lport = (uint16_t)(8000 + p);
				o.rport = (uint16_t)(10000 + (i / AB_REMOTES) % 50000);
				o.reporter = PF_REPORTER_DST;
			}
			o.proto = 6;
			o.started = r == 0;
			o.completed = r == rounds - 1;
			o.bytes_in = 1500 + (uint64_t)i % 977;
			o.bytes_out = 300 + (uint64_t)i % 211;
			o.packets_in = 3;
			o.packets_out = 2;
			o.proc_name = names[p];
			o.proc_pid = 1000 + (uint32_t)p;
			o.proc_args = args[p];
			o.has_tcp = 1;
			o.tcp_cwnd = 10;
			o.tcp_srtt_us = 120;
			o.tcp_min_rtt_us = 80;
			o.tcp_mss = 1448;
			if (pf_agg__add(a, &o) < 0) {
				fprintf(stderr, "aggbench: pf_agg__add failed\n");
				return 1;
			}
		}
		t1 = now();
		sink.lines = 0;
		if (pf_agg__flush(a, 1000 + (uint64_t)r * 15, 1015 + (uint64_t)r * 15, sink_line,
				  &sink) < 0) {
			fprintf(stderr, "aggbench: pf_agg__flush failed\n");
			return 1;
		}
		t2 = now();
		t_add += t1 - t0;
		t_flush += t2 - t1;
	}
	printf("add_events_per_s %.0f\n", (double)flows * (double)rounds / t_add);
	printf("flush_lines_per_s %.0f\n", (double)sink.lines * (double)rounds / t_flush);
	printf("lines_per_round %llu\n", (unsigned long long)sink.lines);
	printf("bytes_per_line %.0f\n", sink.total_lines ? (double)sink.bytes / (double)sink.total_lines : 0.0);
	printf("flows %ld rounds %ld level %d add_s %.3f flush_s %.3f\n", flows, rounds, ao.level,
	       t_add, t_flush);
	pf_agg__free(a);
	free(sink.buf);
	return 0;
}
