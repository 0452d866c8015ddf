/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's internal interfaces: configuration, the BPF loader (hook
 * tiers), the collector (maps -> flow observations) and the event loop.
 */
#ifndef PF_AGENT_H
#define PF_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, decided in main() only. */
#define PF_EXIT_OK 0
#define PF_EXIT_RUNTIME 1 /* missing privileges or kernel support, I/O */
#define PF_EXIT_USAGE 2	  /* bad command line */

struct pf_config {
	const char *output_dir;	    /* flows.log goes here */
	unsigned flush_interval_s;  /* aggregation window */
	bool include_loopback;
	bool process_info;	    /* process_name / process_id */
	bool process_path;	    /* path and args (else the task name) */
	bool to_stdout;		    /* also print every line */
	bool tcp_stats;
	int agg_level;		    /* 0..3 */
	unsigned proc_limit;	    /* per-flow process names */
	unsigned args_limit;	    /* per-flow argument strings */
	unsigned args_max;	    /* bytes of argv captured at exec */
	unsigned argc_max;	    /* arguments kept */
	unsigned udp_idle_s;	    /* an idle UDP flow completes after this */
	const char *tier;	    /* "auto" or a tier name */
	bool verbose;
	unsigned ringbuf_bytes;	    /* size of the event ring buffer */
	/* Redaction of secrets in arguments (lib/redact.h): on unless
	 * no_redact; rules from redact_rules (a file) on top of the built-in
	 * set. redactor is built from these by pf_config_redaction(). */
	bool no_redact;
	const char *redact_rules;
	const char *redact_replacement;
	struct pf_redact *redactor;
};

struct pf_redact;

/*
 * Build cfg->redactor from the redaction options: the built-in rules, then
 * the rule file, if any. Returns PF_EXIT_OK, PF_EXIT_USAGE after one line
 * on stderr naming the bad rule (file and line) or option, or
 * PF_EXIT_RUNTIME (out of memory).
 */
int pf_config_redaction(struct pf_config *cfg);

void pf_config_defaults(struct pf_config *cfg);

/* Log a line to stderr, prefixed "procflow: ". */
void pf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pf_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
extern bool pf_verbose;

/* ---- loader.c: hook tiers ---- */

struct procflow_bpf;

#define PF_MAX_LINKS 32

struct bpf_link;

struct pf_loader {
	struct procflow_bpf *skel;
	struct bpf_link *links[PF_MAX_LINKS];
	int nlinks;
	const char *tier;  /* the tier in use */
	int cgroup_fd;	   /* cgroup v2 root the cgroup hooks are attached to */
	char cgroup_path[256];
};

/*
 * Open, configure, load and attach the BPF side for @cfg. Returns 0 or a
 * negative errno; on failure a message saying what is missing has been
 * logged and nothing stays attached.
 */
int pf_loader__start(struct pf_loader *l, const struct pf_config *cfg);
void pf_loader__stop(struct pf_loader *l);

/* Run the socket iterator: owners for sockets that have none yet. */
int pf_loader__scan_sockets(struct pf_loader *l);

/* Find the cgroup v2 mount. Returns 0 and fills @buf, or -ENOENT. */
int pf_cgroup2_root(char *buf, size_t bufsz);

/* `procflow check`: print what this kernel offers. Returns an exit code. */
int pf_check(const struct pf_config *cfg);

/*
 * Whether the PIDs the kernel reports are the PIDs of this /proc: the
 * agent sees the host PID namespace. Decided by asking the kernel side
 * which PID owns a socket the agent itself creates. Returns 1, 0, or a
 * negative errno when it could not tell.
 */
int pf_loader__host_pidns(struct pf_loader *l);

/* ---- run.c ---- */
int pf_run(const struct pf_config *cfg);

#endif

/* ---- collect.c: kernel maps -> flow observations ---- */

struct pf_proc_cache;
struct pf_agg;
struct pf_hmap;

struct pf_collector {
	int flows_fd;		     /* BPF flows map */
	int socks_fd;		     /* BPF socks map */
	struct pf_loader *loader;    /* for the socket iterator */
	struct pf_proc_cache *procs;
	struct pf_agg *agg;
	const struct pf_config *cfg;
	struct pf_hmap *prev;	     /* flow key -> counters already reported */
	struct pf_hmap *handshakes;  /* user flow key -> listener-side counters */
	struct pf_hmap *socks;	     /* cookie -> socket, read once per flush */
	uint64_t next_flow_id;
	/* Drains the event ring buffer; called once the maps have been read,
	 * so that every exec that preceded a socket claim is in the cache. */
	void (*drain)(void *ctx);
	void *drain_ctx;
	/* what the last flush did, for the log */
	uint64_t n_entries, n_completed, n_unowned, n_iter_runs;
};

int pf_collector__init(struct pf_collector *c, struct pf_loader *l, struct pf_proc_cache *procs,
		       struct pf_agg *agg, const struct pf_config *cfg);
void pf_collector__fini(struct pf_collector *c);

/*
 * Read the kernel's flow and socket maps, turn this interval's changes into
 * observations for the aggregator, and forget flows that completed.
 * @now_ns is the boot-clock time the read starts. Returns 0 or a negative
 * errno.
 */
int pf_collector__collect(struct pf_collector *c, uint64_t now_ns);
