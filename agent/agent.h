/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The daemon's internal interfaces: configuration, the BPF loader (hook
 * tiers), the collector (maps -> flow observations) and the event loop.
 */
#ifndef PF_AGENT_H
#define PF_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "flow_reconcile.h"
#include "log.h"
#include "sink_clickhouse.h"

/* Exit codes, decided in main() only. */
#define PF_EXIT_OK	0
#define PF_EXIT_RUNTIME 1 /* missing privileges or kernel support, I/O */
#define PF_EXIT_USAGE	2 /* bad command line */

#define PF_CFG_PATH_MAX 4096

/*
 * The running configuration. Every field is a key of the table in
 * agent/config.c (which names its YAML key, environment variable, flag,
 * default, bounds and whether it changes live); strings are arrays so a
 * configuration is copied by value on reload.
 */
struct pf_config {
	char output_dir[PF_CFG_PATH_MAX]; /* flows.log goes here */
	unsigned flush_interval_s;	  /* aggregation window */
	bool file_enabled;		  /* write flows.log at all */
	unsigned max_files;		  /* rotated files kept */
	unsigned max_file_mb;		  /* rotate when flows.log would exceed this */
	const char *compression;	  /* "none" or "zstd": rotated files */
	const char *flow_schema;	  /* lib/record.h key set: "current", "calico-3.20" */
	unsigned file_mode, dir_mode;	  /* flows.log and its directory */
	char file_group[256];		  /* group of both ("" the agent's own), a name or GID */
	unsigned agg_allowed;		  /* aggregation level 0..3, allowed flows */
	unsigned agg_denied;		  /* aggregation level 0..3, denied flows */
	bool include_labels, include_policies, include_service; /* no effect without k8s */
	bool include_loopback;
	bool process_info; /* process_name / process_id */
	bool process_path; /* path and args (else the task name) */
	bool to_stdout;	   /* also print every line */
	bool tcp_stats;
	unsigned proc_limit;		   /* per-flow process names */
	unsigned args_limit;		   /* per-flow argument strings */
	unsigned args_max;		   /* bytes of argv captured at exec */
	unsigned argc_max;		   /* arguments kept */
	unsigned udp_idle_s;		   /* an idle UDP flow completes after this */
	const char *tier;		   /* "auto" or a tier name */
	const char *tcp_counting;	   /* "socket" or "packet" */
	char runtime_dir[PF_CFG_PATH_MAX]; /* PID file */
	bool verbose;
	struct pf_ch_config ch;	  /* the ClickHouse sink (off unless ch.url) */
	char metrics_listen[128]; /* [ADDR:]PORT of /metrics; "": no endpoint */
	unsigned ringbuf_kib;	  /* size of the event ring buffer */
	unsigned max_sockets;	  /* entries of the socks map (socket owners) */
	unsigned max_flows;	  /* entries of the flows map (UDP, handshakes, closed TCP) */
	/* Redaction of secrets in arguments (lib/redact.h): on unless
	 * !redact; rules from redact_rules (a file, "" for none) on top of the
	 * built-in set. redactor is built from these by pf_config_redaction()
	 * once, at start-up. */
	bool redact;
	char redact_rules[PF_CFG_PATH_MAX];
	char redact_replacement[PF_CFG_PATH_MAX];
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

/* Every key at its default. */
void pf_config_defaults(struct pf_config *cfg);

/* ---- config.c: the key table, sources and precedence ---- */

struct pf_cfg_key;
struct pf_cfg_origin;

extern const struct pf_cfg_key *const pf_config_keys;
extern const size_t pf_config_nkeys;

#define PF_CONFIG_DEFAULT_FILE "/etc/procflow/procflow.yaml"
#define PF_CONFIG_MAX_FLAGS    128
#define PF_CONFIG_MAX_KEYS     128 /* bound of the key table, for arrays per key */

/*
 * Where a configuration comes from, kept for the life of the agent so that
 * a reload re-reads the same file with the same flags on top.
 */
struct pf_config_args {
	const char *file; /* --config or PROCFLOW_CONFIG: it must be readable */
	size_t nflags;
	struct {
		const struct pf_cfg_key *key;
		const char *value; /* the flag's argument ("true"/"false" for switches) */
		const char *flag;  /* as written, for messages */
	} flags[PF_CONFIG_MAX_FLAGS];
};

/*
 * Build the effective configuration: defaults, then the file, then the
 * environment, then the flags. @orig (pf_config_nkeys entries, may be NULL)
 * receives where each value came from. Returns 0, or -EINVAL with one
 * message in @err naming the key and the file:line, variable or flag.
 */
int pf_config_load(const struct pf_config_args *args, struct pf_config *cfg,
		   struct pf_cfg_origin *orig, char *err, size_t errsz);

/* The config file a load reads: the one named, else the default when it
 * exists (looked for again on every load), else NULL. */
const char *pf_config_file(const struct pf_config_args *args);

/* `procflow run --print-config`: every key, its value and its source. */
void pf_config_print(FILE *out, const struct pf_config_args *args, const struct pf_config *cfg,
		     const struct pf_cfg_origin *orig);

/* The flag and key lines of --help, generated from the table. */
void pf_config_usage(FILE *out);

/* The PID file: <runtime_dir>/procflow.pid, locked while the agent runs. */
int pf_pidfile_create(const char *runtime_dir, char *path, size_t pathsz);
/* The PID written in the PID file @path, or a negative errno. */
long pf_pidfile_pid(const char *path);
void pf_pidfile_remove(int fd, const char *path);
/* `procflow reload`: SIGHUP to the agent named by the PID file. Exit code. */
int pf_reload_command(const char *runtime_dir);

/* ---- loader.c: hook tiers ---- */

struct procflow_bpf;

#define PF_MAX_LINKS 32

struct bpf_link;

struct pf_loader {
	struct procflow_bpf *skel;
	struct bpf_link *links[PF_MAX_LINKS];
	int nlinks;
	const char *tier;     /* the tier in use */
	bool path_walk;	      /* exec events resolve relative paths in the kernel */
	bool sk_storage;      /* TCP counters in socket storage */
	bool tcp_sock_counts; /* TCP counted from tcp_sock, not per packet */
	bool udp_fentry;      /* UDP counted by fentry, no cgroup_skb program */
	int cgroup_fd;	      /* cgroup v2 root the cgroup hooks are attached to */
	char cgroup_path[256];
};

/*
 * Open, configure, load and attach the BPF side for @cfg. Returns 0 or a
 * negative errno; on failure a message saying what is missing has been
 * logged and nothing stays attached.
 */
int pf_loader__start(struct pf_loader *l, const struct pf_config *cfg);
void pf_loader__stop(struct pf_loader *l);

/*
 * Runs of the agent's programs the kernel skipped (kernel 5.12+, else 0):
 * a tracing program is not run again on a CPU where it is already running,
 * so a hook that fires inside it (a softirq's TCP close while the state
 * tracepoint runs for a process's connect()) is lost. Cumulative.
 */
uint64_t pf_loader__missed_runs(struct pf_loader *l);

/* Run the socket iterator: owners for sockets that have none yet. */
int pf_loader__scan_sockets(struct pf_loader *l);

/* Call @cb with the counters of every live TCP connection (a struct
 * pf_sk_flow, from socket storage). Stops at the first non-zero return of
 * @cb. Returns 0 or a negative errno. */
int pf_loader__read_sk_flows(struct pf_loader *l, int (*cb)(const void *f, void *ctx), void *ctx);

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

/*
 * The kernel memory the loaded maps take, as the kernel accounts it (each
 * map's "memlock" in /proc/self/fdinfo, what `bpftool map show` prints),
 * summed. When @desc is not NULL it gets the sizes that matter, e.g.
 * "socks 262144 entries 40.0 MiB, flows 262144 entries 40.0 MiB, events
 * ring 8.0 MiB, other maps 0.1 MiB". Returns the bytes (0 when unknown).
 */
uint64_t pf_loader__map_bytes(const struct pf_loader *l, char *desc, size_t descsz);

/* ---- caps.c: capabilities after start-up ---- */

/* The capabilities the running agent keeps (a mask of 1 << CAP_*): none;
 * CAP_SYS_PTRACE when exec paths are made absolute from /proc/<pid>/cwd
 * (no in-kernel path walk); CAP_BPF (CAP_SYS_ADMIN before 5.8) when
 * @bpf_cap, that is when this kernel refuses bpf() on held fds without it. */
uint64_t pf_caps__keep_set(bool path_walk, bool bpf_cap);

/* Whether bpf() on @map_fd, a map the agent holds, is refused without
 * capabilities (kernel.unprivileged_bpf_disabled on kernels that check every
 * command): a child process drops all and tries. True when it cannot tell. */
bool pf_caps__bpf_needs_cap(int map_fd);

/*
 * Keep only @keep in this thread's effective and permitted sets, clear the
 * inheritable and ambient sets, drop the rest from the bounding set and set
 * no_new_privs. Other threads keep theirs (see pf_caps__drop_thread()).
 * Returns 0, or a negative errno: the sets could not be lowered (capset), or
 * only the bounding set or no_new_privs could not be changed.
 */
int pf_caps__drop(uint64_t keep);

/* Drop every capability of the calling thread (a helper thread that needs
 * none, started before pf_caps__drop()). Cannot fail in a way that leaves
 * more than before; errors are ignored. */
void pf_caps__drop_thread(void);

/* ---- run.c ---- */
/* Run the agent; @args is kept for reloads (SIGHUP). Returns an exit code. */
int pf_run(const struct pf_config *cfg, const struct pf_config_args *args);

#endif

/* ---- collect.c: kernel maps -> flow observations ---- */

struct pf_proc_cache;
struct pf_agg;

/* Flows the collector follows at once (live TCP connections included). */
#define PF_COLLECTOR_FLOWS_MAX (1u << 20)

struct pf_collector {
	int flows_fd;		  /* BPF flows map */
	int socks_fd;		  /* BPF socks map */
	struct pf_loader *loader; /* for the socket iterators */
	struct pf_proc_cache *procs;
	struct pf_agg *agg;
	struct pf_containers *ctrs;	/* container identities; NULL: none */
	const struct pf_config *cfg;	/* the running one: a reload changes it in place */
	struct pf_flow_rc *rc;		/* the reconcile's state (lib/flow_reconcile.c) */
	struct pf_flow_dels dels;	/* what the last reconcile said to delete */
	bool batch;			/* read and delete with batch map operations */
	void *bkeys, *bvals;		/* one batch of keys and values */
	struct pf_flow_ent *live;	/* one batch of flows map entries or live connections */
	struct pf_sock_ent *live_socks; /* the live connections' sockets, read with them */
	size_t dels_mark;		/* deletions kept for the end of the collection */
	uint64_t n_map_deleted, n_dels; /* flows map entries deleted, keys deleted */
	/* Drains the event ring buffer; called once the maps have been read,
	 * so that every exec that preceded a socket claim is in the cache. */
	void (*drain)(void *ctx);
	void *drain_ctx;
	/* what the last flush did, for the log */
	uint64_t n_entries, n_completed, n_unowned, n_iter_runs;
	uint64_t n_dropped;	 /* flows not reported: the collector's bound (cumulative) */
	uint64_t n_unowned_live; /* live connections without an owner in the last flush */
	uint64_t n_agg_nomem;	 /* observations the aggregator had no memory for (cumulative) */
	uint64_t n_expired;	 /* flows forgotten without final counters (cumulative) */
	uint64_t n_hs_dropped;	 /* handshakes the stash had no room for (cumulative) */
	/* Map occupancy after the last flush, counted by the reads the
	 * collection makes anyway (no extra reads): entries of the flows and
	 * socks maps, and live TCP connections in socket storage. */
	uint64_t n_flows_map, n_socks_map, n_sk_flows;
};

/* Identities the process cache holds (lib/proc_cache.h). */
#define PF_PROC_CACHE_MAX (1u << 18)

/*
 * Log the occupancy of every bounded table (kernel maps as counted by the
 * last collection, the process cache, the collector's own tables) as one
 * line "occupancy: name entries/capacity (pct%), ...": when any is more
 * than half full, or always with @verbose (agent/occupancy.c).
 */
void pf_occupancy__log(const struct pf_collector *c, const struct pf_proc_cache *procs,
		       bool verbose);

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
