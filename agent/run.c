// SPDX-License-Identifier: BSD-2-Clause
/*
 * `procflow run`: the daemon.
 *
 * One thread, one event loop (agent/loop.c: a callback per file
 * descriptor) with four file events: the BPF ring buffer
 * and a 100 ms timer that drains it (exec, fork and exit events feed the
 * process cache), a signalfd (SIGINT and SIGTERM end the run after a last
 * flush; SIGHUP reloads the configuration) and a timerfd (the flush, once
 * per interval). The ClickHouse sink, when configured, sends from a thread
 * of its own; nothing else runs concurrently with the loop.
 *
 * A reload builds the new configuration from the same sources as at
 * start-up (file, environment, the original flags) next to the running
 * one. Invalid: rejected, the running one stays. Valid: the interval so
 * far is flushed under the old settings, then the new ones take over from
 * the next observation, so no flow of the interval is lost or counted
 * twice, and each line was aggregated under one configuration only.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "config_check.h"
#include "containers.h"
#include "flow_agg.h"
#include "identity.h"
#include "jsonw.h"
#include "linechunk.h"
#include "loop.h"
#include "loss_log.h"
#include "loss_marker.h"
#include "metrics.h"
#include "proc_cache.h"
#include "procflow.skel.h"
#include "procflow/abi.h"
#include "procfs.h"
#include "safefs.h"
#include "sink.h"

/* How often the ring buffer is drained when the kernel side does not wake
 * us: bounds how long an exec event waits, not whether it is seen. */
#define PF_RB_POLL_MS 100

/* The outputs (sink.h), started in this order and stopped in the reverse
 * one: the file first, so that a wrong output directory is said before
 * anything else starts; the metrics endpoint last. */
static const struct pf_sink_ops *const sink_types[] = {
    &pf_sink_file,
    &pf_sink_stdout,
    &pf_sink_clickhouse,
    &pf_sink_metrics,
};

#define PF_NSINKS (sizeof(sink_types) / sizeof(sink_types[0]))

/* An interval's lines reach the sinks in runs of at most this many bytes
 * (a few hundred lines: one write, one fallocate, one ClickHouse queue item
 * each), so the agent never holds an interval's output whole: at
 * aggregation level 0 that was ~1.4 KB per flow, 280 MB for 200,000. */
#define PF_OUT_CHUNK ((size_t)256 << 10)

struct pf_agent {
	struct pf_config *cfg;	    /* the running configuration; a reload changes it */
	struct pf_containers *ctrs; /* container identities (agent/containers.c) */
	const struct pf_config_args *args;
	int tfd;    /* the flush timer, re-armed when the interval changes */
	int pid_fd; /* the locked PID file, -1 when there is none */
	char pid_path[PF_CFG_PATH_MAX + 32];
	struct pf_loader loader;
	struct ring_buffer *rb;
	struct pf_proc_cache *procs;
	struct pf_agg *agg;
	struct pf_sink *sinks[PF_NSINKS]; /* by sink_types[]; NULL: not started */
	struct pf_collector coll;
	bool host_pidns; /* kernel PIDs are this /proc's PIDs */
	char host[256];
	uint64_t interval_start; /* Unix seconds */
	char *argbuf;		 /* joined arguments of one exec */
	size_t argbuf_size;
	char *redbuf; /* its argument area after redaction */
	size_t redbuf_size;
	/* the lines of one flush, handed to the sinks a chunk at a time */
	struct pf_linechunk out;
	uint64_t out_lines;
	/* user-space losses, told each interval (lib/loss_log.h) */
	struct pf_loss loss_agg, loss_nomem, loss_procs;
	struct pf_loop *loop;	      /* the event loop */
	uint64_t kstats[PF_STAT_MAX]; /* kernel-side loss counters already logged */
	uint64_t missed_runs;	      /* program runs the kernel skipped, already logged */
	uint64_t coll_dropped;	      /* collector drops already logged */
	uint64_t procs_grow_failed;   /* process cache growth failures already logged */
	uint64_t events;
};

static uint64_t boot_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- process identity ---- */

/*
 * execve() got a relative path ("./prog"): make it absolute. The kernel
 * side sends the executable's path components (leaf first) for exactly
 * this case, since the process may be gone before we could look at its
 * working directory. Returns a malloc'd path, NULL on ENOMEM.
 */
static char *absolute_path(const char *path, const char *comps, size_t len)
{
	size_t n = 0, total = 0;
	char *out, *p;

	/* Count the components and the bytes they need. */
	for (size_t i = 0; i < len;) {
		size_t l = strnlen(comps + i, len - i);

		n++;
		total += l + 1;
		i += l + 1;
	}
	if (!n)
		return strdup(path);
	out = malloc(total + 1);
	if (!out)
		return NULL;
	/* Lay them out root first: fill from the end. */
	p = out + total;
	*p = '\0';
	for (size_t i = 0; i < len;) {
		size_t l = strnlen(comps + i, len - i);

		p -= l;
		memcpy(p, comps + i, l);
		*--p = '/';
		i += l + 1;
	}
	return out;
}

/*
 * The same, where the kernel side could not walk the path (an older
 * verifier refused the walk): the process's working directory, if it is
 * still there and our /proc shows the kernel's PIDs.
 */
static char *absolute_path_from_cwd(struct pf_agent *a, uint32_t pid, const char *path)
{
	char link[64], cwd[PATH_MAX], *out;
	ssize_t n;
	size_t need;

	if (!a->host_pidns)
		return strdup(path);
	snprintf(link, sizeof(link), "/proc/%u/cwd", pid);
	n = readlink(link, cwd, sizeof(cwd) - 1);
	if (n <= 0)
		return strdup(path);
	cwd[n] = '\0';
	while (path[0] == '.' && path[1] == '/')
		path += 2;
	need = (size_t)n + 1 + strlen(path) + 1;
	out = malloc(need);
	if (out)
		snprintf(out, need, "%s/%s", strcmp(cwd, "/") ? cwd : "", path);
	return out;
}

static void on_exec(struct pf_agent *a, const struct pf_exec_event *e, size_t size)
{
	const size_t hdr = offsetof(struct pf_exec_event, data);
	char *path;
	int trunc = 0;

	if (size < hdr || e->path_len > PF_PATH_MAX || e->args_len > PF_ARGS_CAP ||
	    e->exe_len > PF_PATH_MAX || hdr + e->path_len + e->args_len + e->exe_len > size)
		return; /* malformed: cannot come from our programs */
	path = malloc(e->path_len + 1);
	if (!path)
		return;
	memcpy(path, e->data, e->path_len);
	path[e->path_len] = '\0';
	/* Relative ("./prog"), or execveat/fexecve ("/dev/fd/N[/name]"): the
	 * kernel's resolution of the file is the name. Where the kernel side
	 * could not walk the path (an older verifier), the working directory
	 * makes a relative path absolute. */
	if (e->exe_len && (path[0] != '/' || !strncmp(path, "/dev/fd/", 8))) {
		char *abs = absolute_path(path, e->data + e->path_len + e->args_len, e->exe_len);

		free(path);
		path = abs;
		if (!path)
			return;
	} else if (path[0] != '/') {
		char *abs = absolute_path_from_cwd(a, e->hdr.pid, path);

		free(path);
		path = abs;
		if (!path)
			return;
	}
	pf_identity_args(a->cfg, path, e->data + e->path_len, e->args_len,
			 e->flags & PF_EXEC_ARGS_TRUNC, a->argbuf, a->argbuf_size, a->redbuf,
			 a->redbuf_size, &trunc);
	char comm[PF_COMM_LEN + 1];

	memcpy(comm, e->comm, PF_COMM_LEN);
	comm[PF_COMM_LEN] = '\0';
	/* The counter goes on the identity just made, and only on it: an
	 * older one given the new count would pass for the new program. */
	if (!pf_proc_cache__exec(a->procs, e->hdr.pid, e->ppid, e->start_ns, e->hdr.ts_ns, e->uid,
				 e->cgroup_id, comm, path, a->argbuf, trunc)) {
		pf_metrics__add(&pf_registry, PF_M_IDENT_EXEC, 1);
		pf_proc_cache__set_exec_id(a->procs, e->hdr.pid, e->start_ns, e->hdr.ts_ns,
					   e->exec_id);
	}
	/* Now, while the process most likely lives: a container may end
	 * before the interval does. */
	pf_containers__note(a->ctrs, e->cgroup_id, e->hdr.pid);
	free(path);
}

static int on_event(void *ctx, void *data, size_t size)
{
	struct pf_agent *a = ctx;
	const struct pf_event_hdr *h = data;
	char comm[PF_COMM_LEN + 1];

	if (size < sizeof(*h))
		return 0;
	a->events++;
	switch (h->type) {
	case PF_EV_EXEC:
		pf_metrics__add(&pf_registry, PF_M_EVENTS_EXEC, 1);
		on_exec(a, data, size);
		break;
	case PF_EV_FORK: {
		const struct pf_fork_event *f = data;

		pf_metrics__add(&pf_registry, PF_M_EVENTS_FORK, 1);
		if (size < sizeof(*f))
			break;
		memcpy(comm, f->comm, PF_COMM_LEN);
		comm[PF_COMM_LEN] = '\0';
		if (!pf_proc_cache__fork(a->procs, h->pid, f->start_ns, f->ppid, f->parent_start_ns,
					 comm)) {
			const struct pf_proc *p =
			    pf_proc_cache__lookup(a->procs, h->pid, f->start_ns);

			/* The parent's program, or only the task name (unknown parent). */
			pf_metrics__add(&pf_registry,
					p && p->source == PF_PROC_SRC_COMM ? PF_M_IDENT_TASK
									   : PF_M_IDENT_FORK,
					1);
			pf_proc_cache__set_exec_id(a->procs, h->pid, f->start_ns, f->start_ns,
						   f->exec_id);
		}
		break;
	}
	case PF_EV_EXIT: {
		const struct pf_exit_event *x = data;

		pf_metrics__add(&pf_registry, PF_M_EVENTS_EXIT, 1);
		if (size < sizeof(*x))
			break;
		pf_proc_cache__exit(a->procs, h->pid, x->start_ns, h->ts_ns);
		break;
	}
	}
	return 0;
}

struct scan_ctx {
	struct pf_agent *a;
	size_t n;
};

static int scan_one(uint32_t pid, void *ctx)
{
	struct scan_ctx *s = ctx;
	struct pf_agent *a = s->a;
	struct pf_procfs_proc p;
	int trunc = 0;

	if (pf_procfs__read("/proc", pid, a->cfg->args_max, &p))
		return 0; /* gone meanwhile */
	pf_identity_exe(p.exe);
	if (p.args) {
		pf_identity_args(a->cfg, p.exe[0] ? p.exe : NULL, p.args, p.args_len,
				 p.args_truncated, a->argbuf, a->argbuf_size, a->redbuf,
				 a->redbuf_size, &trunc);
	} else {
		a->argbuf[0] = '\0';
	}
	/* A kernel thread has no exe: it keeps its task name only. */
	pf_proc_cache__scan(a->procs, p.pid, p.ppid, p.start_ns, p.uid, p.comm,
			    p.exe[0] ? p.exe : NULL, p.exe[0] ? a->argbuf : NULL, trunc);
	free(p.args);
	pf_metrics__add(&pf_registry, PF_M_IDENT_PROCFS, 1);
	s->n++;
	return 0;
}

/* ---- output ---- */

/* A run of the interval's lines to every sink that takes lines. */
static void on_chunk(const char *buf, size_t len, uint64_t nlines, void *ctx)
{
	struct pf_agent *a = ctx;

	for (size_t i = 0; i < PF_NSINKS; i++)
		if (a->sinks[i] && sink_types[i]->take)
			sink_types[i]->take(a->sinks[i], buf, len, nlines);
}

static int on_line(const char *line, size_t len, void *ctx)
{
	struct pf_agent *a = ctx;

	pf_linechunk__add(&a->out, line, len);
	a->out_lines++;
	return 0;
}

/* Log what the kernel side could not do since the last call; returns the
 * process events lost (ring buffer full) in that time. */
static uint64_t log_kernel_losses(struct pf_agent *a)
{
	static const enum pf_metric slot[PF_STAT_MAX] = {
	    [PF_STAT_RB_DROPS] = PF_M_KERNEL_EVENTS_LOST,
	    [PF_STAT_FLOWS_FULL] = PF_M_KERNEL_PACKETS_UNCOUNTED,
	    [PF_STAT_SOCKS_FULL] = PF_M_KERNEL_OWNERS_LOST,
	    [PF_STAT_ACCEPT_MISS] = PF_M_KERNEL_ACCEPT_MISSES,
	    [PF_STAT_FINAL_LOST] = PF_M_KERNEL_FINALS_LOST,
	    [PF_STAT_CLOSE_RESCUED] = PF_M_KERNEL_CLOSES_RESCUED,
	};
	static const char *const what[PF_STAT_MAX] = {
	    [PF_STAT_RB_DROPS] = "process events lost (ring buffer full)",
	    [PF_STAT_FLOWS_FULL] = "packets not counted (flow map full or busy)",
	    [PF_STAT_SOCKS_FULL] = "socket owners not recorded (socket map full or busy)",
	    [PF_STAT_ACCEPT_MISS] = "accepted sockets without a cookie",
	    [PF_STAT_FINAL_LOST] = "final counters not saved (flows map full or busy)",
	    [PF_STAT_CLOSE_RESCUED] = ("TCP closes the state hook missed, saved when their "
				       "socket was destroyed (not a loss)"),
	};
	int ncpu = libbpf_num_possible_cpus();
	int fd = bpf_map__fd(a->loader.skel->maps.stats);
	uint64_t *vals, rb_lost = 0;

	if (ncpu <= 0)
		return 0;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return 0;
	for (uint32_t k = 0; k < PF_STAT_MAX; k++) {
		uint64_t sum = 0;

		if (!what[k] || bpf_map_lookup_elem(fd, &k, vals))
			continue;
		for (int c = 0; c < ncpu; c++)
			sum += vals[c];
		/* The registry holds the totals; the log tells their growth. */
		pf_metrics__follow(&pf_registry, slot[k], sum);
		sum = pf_metrics__get(&pf_registry, slot[k]);
		if (sum > a->kstats[k])
			pf_log("%llu %s", (unsigned long long)(sum - a->kstats[k]), what[k]);
		if (k == PF_STAT_RB_DROPS && sum > a->kstats[k])
			rb_lost = sum - a->kstats[k];
		a->kstats[k] = sum;
	}
	free(vals);
	/* Runs the kernel skipped: whatever the hook would have recorded (a
	 * claim; a connection's close and final counters, unless the destroy
	 * hook saved them, told above) is lost. */
	{
		uint64_t missed = pf_loader__missed_runs(&a->loader);

		pf_metrics__follow(&pf_registry, PF_M_KERNEL_RUNS_MISSED, missed);
		if (missed > a->missed_runs)
			pf_log(
			    "%llu hook runs skipped by the kernel (a hook fired inside itself on "
			    "one CPU): what they would have recorded is lost, but for TCP closes "
			    "saved at their socket's destruction",
			    (unsigned long long)(missed - a->missed_runs));
		a->missed_runs = missed;
	}
	return rb_lost;
}

/* Log what user space lost since the last call: each counter grows where
 * the loss happens and is told here once per interval. */
static void log_user_losses(struct pf_agent *a)
{
	struct pf_proc_cache_stats st;
	char msg[256];

	struct pf_loss *const losses[] = {&a->loss_agg, &a->loss_nomem, &a->loss_procs};

	/* Each component's running total into the registry, then the log
	 * tells what the registry's counters grew by. */
	pf_proc_cache__stats(a->procs, &st);
	pf_metrics__follow(&pf_registry, PF_M_AGG_DROPPED, pf_agg__dropped(a->agg));
	pf_metrics__follow(&pf_registry, PF_M_AGG_NOMEM, a->coll.n_agg_nomem);
	pf_metrics__follow(&pf_registry, PF_M_PROCS_DROPPED, st.dropped);
	pf_metrics__follow(&pf_registry, PF_M_PROCS_EVICTED, st.evicted);
	pf_metrics__follow(&pf_registry, PF_M_PROCS_REAPED, st.reaped);
	for (size_t i = 0; i < sizeof(losses) / sizeof(losses[0]); i++)
		if (pf_loss__report(losses[i], &pf_registry, msg, sizeof(msg)))
			pf_log("%s", msg);
	/* Not a loss in itself: the cache kept every identity, but until a
	 * growth works it evicts and refuses at this size, below its bound. */
	if (st.grow_failed > a->procs_grow_failed) {
		pf_log("process cache: could not grow (out of memory) %llu times; it holds at "
		       "most %llu of its %u identities until it can",
		       (unsigned long long)(st.grow_failed - a->procs_grow_failed),
		       (unsigned long long)st.capacity, PF_PROC_CACHE_MAX);
		a->procs_grow_failed = st.grow_failed;
	}
}

static void losses_init(struct pf_agent *a)
{
	a->loss_agg.metric = PF_M_AGG_DROPPED;
	a->loss_nomem.metric = PF_M_AGG_NOMEM;
	a->loss_procs.metric = PF_M_PROCS_DROPPED;
	a->loss_agg.what = "flow observations or lines dropped by the aggregator (more flow keys "
			   "in the interval than it holds, or a line too long)";
	a->loss_nomem.what = "flow observations dropped: out of memory in the aggregator";
	a->loss_procs.what = "processes not remembered: the process cache is full of live "
			     "processes (their flows are named by what the kernel side knows)";
}

/* The interval's loss marker (lib/loss_marker.h), after its flow lines. */
static void write_loss_marker(struct pf_agent *a, uint64_t now_s, uint64_t lost)
{
	struct pf_jw w;

	pf_jw__init(&w, 4096);
	if (!pf_loss_marker__line(&w, a->interval_start, now_s, a->host, lost,
				  pf_agg__schema(a->agg)))
		on_line(w.buf, w.len, a);
	pf_jw__fini(&w);
}

static void drain_events(void *ctx)
{
	struct pf_agent *a = ctx;

	ring_buffer__consume(a->rb);
}

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int flush(struct pf_agent *a)
{
	uint64_t now_s = (uint64_t)time(NULL);
	uint64_t now = boot_ns(), lost, cpu0 = thread_cpu_ns();
	int err;

	err = pf_collector__collect(&a->coll, now);
	if (err)
		pf_log("reading the kernel maps failed: %s", strerror(-err));
	/* After the collection, which drained the ring buffer: every loss of
	 * this interval is counted by now. */
	lost = log_kernel_losses(a);
	pf_metrics__set(&pf_registry, PF_M_INTERVAL_FLOWS, a->coll.n_entries);
	pf_metrics__add(&pf_registry, PF_M_FLOWS_UNOWNED, a->coll.n_unowned);
	pf_metrics__follow(&pf_registry, PF_M_COLLECTOR_DROPPED, a->coll.n_dropped);
	pf_metrics__follow(&pf_registry, PF_M_COLLECTOR_EXPIRED, a->coll.n_expired);
	pf_metrics__follow(&pf_registry, PF_M_COLLECTOR_HS_DROPPED, a->coll.n_hs_dropped);
	{
		uint64_t dropped = pf_metrics__get(&pf_registry, PF_M_COLLECTOR_DROPPED);

		if (dropped > a->coll_dropped)
			pf_log("%llu flows not reported: more live flows than the collector "
			       "follows (%u)",
			       (unsigned long long)(dropped - a->coll_dropped),
			       PF_COLLECTOR_FLOWS_MAX);
		a->coll_dropped = dropped;
	}
	a->out_lines = 0;
	err = pf_agg__flush(a->agg, a->interval_start, now_s, on_line, a);
	if (err)
		pf_log("building the interval's lines failed: %s; the rest of the interval is lost",
		       strerror(-err));
	log_user_losses(a);
	if (lost)
		write_loss_marker(a, now_s, lost);
	a->interval_start = now_s;
	pf_metrics__set(&pf_registry, PF_M_INTERVAL_LINES, a->out_lines);
	pf_metrics__add(&pf_registry, PF_M_LINES, a->out_lines);
	pf_linechunk__flush(&a->out);
	for (size_t i = 0; i < PF_NSINKS; i++)
		if (a->sinks[i] && sink_types[i]->tick)
			sink_types[i]->tick(a->sinks[i]);
	/* The loop thread's CPU for this flush: what a flush costs per flow
	 * (bench/README.md, agent cost) is read from this line. */
	pf_debug("flush: %llu lines, %llu kernel flow entries, %llu completed, %llu events, %.3f s "
		 "CPU",
		 (unsigned long long)a->out_lines, (unsigned long long)a->coll.n_entries,
		 (unsigned long long)a->coll.n_completed, (unsigned long long)a->events,
		 (double)(thread_cpu_ns() - cpu0) / 1e9);
	pf_proc_cache__gc(a->procs, now);
	pf_identity_reap(a->procs, now, a->host_pidns);
	pf_containers__tick(a->ctrs);
	pf_occupancy__log(&a->coll, a->procs, a->cfg->verbose);
	pf_metrics__add(&pf_registry, PF_M_FLUSHES, 1);
	pf_metrics__set(&pf_registry, PF_M_FLUSH_DURATION, boot_ns() - now);
	return 0;
}

/* ---- reload ---- */

static void agg_opts_of(const struct pf_config *cfg, const char *host, struct pf_agg_opts *ao)
{
	memset(ao, 0, sizeof(*ao));
	ao->level = (int)cfg->agg_allowed;
	ao->level_denied = (int)cfg->agg_denied;
	ao->host = host;
	ao->proc_limit = cfg->proc_limit;
	ao->args_limit = cfg->args_limit;
	ao->include_process = cfg->process_info;
	ao->include_tcp = cfg->tcp_stats;
	(void)pf_rec__schema_parse(cfg->flow_schema, &ao->schema); /* a choice: it parses */
	ao->include_labels = cfg->include_labels;
}

static void arm_timer(int tfd, unsigned secs)
{
	struct itimerspec its = {0};

	its.it_interval.tv_sec = secs;
	its.it_value.tv_sec = secs;
	timerfd_settime(tfd, 0, &its, NULL);
}

static void reload(struct pf_agent *a)
{
	char err[PF_CFG_ERR_MAX], val[PF_CFG_PATH_MAX + 8], changed[1024];
	struct pf_cfg_origin orig[PF_CONFIG_MAX_KEYS];
	struct pf_agg_opts ao;
	struct pf_config n;
	size_t off = 0;
	int nchanged = 0;

	/* The same checks as at start (pf_config_validate), also for keys that
	 * change only on restart: a value the next start would refuse is
	 * refused now, while the operator is looking, not at the next boot. */
	if (pf_config_load(a->args, &n, orig, err, sizeof(err)) ||
	    pf_config_validate(&n, a->args, orig, err, sizeof(err))) {
		pf_log("reload rejected, the running configuration stays: %s", err);
		pf_metrics__add(&pf_registry, PF_M_RELOADS_REJECTED, 1);
		return;
	}
	changed[0] = '\0';
	for (size_t i = 0; i < pf_config_nkeys; i++) {
		const struct pf_cfg_key *k = &pf_config_keys[i];

		if (!pf_cfg__differs(k, a->cfg, &n))
			continue;
		if (!(k->flags & PF_CFG_LIVE)) {
			pf_log("reload: %s changes only on restart; keeping %s", k->name,
			       pf_cfg__format(k, a->cfg, val, sizeof(val)));
			memcpy((char *)&n + k->offset, (char *)a->cfg + k->offset, k->size);
			continue;
		}
		pf_cfg__format(k, &n, val, sizeof(val));
		if (off < sizeof(changed)) {
			int w = snprintf(changed + off, sizeof(changed) - off, "%s%s=%s",
					 nchanged ? ", " : "", k->name, val);

			if (w > 0)
				off += (size_t)w;
		}
		nchanged++;
	}
	if (!nchanged) {
		pf_log("reload: configuration unchanged");
		pf_metrics__add(&pf_registry, PF_M_RELOADS_UNCHANGED, 1);
		return;
	}
	/* Close the interval under the settings it was collected with. */
	flush(a);
	n.redactor = a->cfg->redactor; /* so is redaction (its keys are not live) */
	*a->cfg = n;
	agg_opts_of(a->cfg, a->host, &ao);
	if (pf_agg__reconfigure(a->agg, &ao))
		pf_log("reload: the aggregator kept its settings (interval not empty)");
	/* A global of the loaded BPF object, mapped: packets from now on. */
	a->loader.skel->bss->cfg_include_loopback = a->cfg->include_loopback;
	arm_timer(a->tfd, a->cfg->flush_interval_s);
	pf_proc_cache__set_grace(a->procs, 2ull * a->cfg->flush_interval_s * 1000000000ull);
	pf_verbose = a->cfg->verbose;
	for (size_t i = 0; i < PF_NSINKS; i++)
		if (a->sinks[i] && sink_types[i]->reconfigure)
			sink_types[i]->reconfigure(a->sinks[i]);
	pf_metrics__add(&pf_registry, PF_M_RELOADS_APPLIED, 1);
	pf_log("reloaded: %s", changed);
}

/* The signals the loop takes through its signalfd. They are blocked from
 * the start of the run, so a SIGTERM that arrives while the hooks are
 * being loaded still ends the run cleanly, with a last flush. */
static void pf_stop_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGHUP);
}

/* ---- file events ---- */

struct loop_fds {
	struct pf_agent *a;
	int sfd, tfd, pfd;
	bool stop;
};

/* The kernel side woke us: its ring buffer is filling. */
static void on_ringbuf(struct pf_loop *l, int fd, uint32_t events, void *ctx)
{
	struct loop_fds *f = ctx;

	ring_buffer__consume(f->a->rb);
}

/* The ring buffer's poll timer. */
static void on_poll_timer(struct pf_loop *l, int fd, uint32_t events, void *ctx)
{
	struct loop_fds *f = ctx;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) > 0)
		ring_buffer__consume(f->a->rb);
}

/* The flush timer: the interval is over. */
static void on_flush_timer(struct pf_loop *l, int fd, uint32_t events, void *ctx)
{
	struct loop_fds *f = ctx;
	uint64_t ticks;

	if (read(fd, &ticks, sizeof(ticks)) > 0)
		flush(f->a);
}

/* SIGHUP reloads; SIGINT and SIGTERM end the loop (a last flush follows). */
static void on_signal(struct pf_loop *l, int fd, uint32_t events, void *ctx)
{
	struct loop_fds *f = ctx;
	struct signalfd_siginfo si;

	while (read(fd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			reload(f->a);
			continue;
		}
		pf_log("%s: writing the current interval and exiting",
		       strsignal((int)si.ssi_signo));
		f->stop = true;
		pf_loop__stop(l);
	}
}

/* ---- the loop ---- */

static int loop(struct pf_agent *a)
{
	struct itimerspec poll_its = {0};
	struct loop_fds f = {.a = a};
	sigset_t mask;
	int err = 0;

	pf_stop_signals(&mask);
	f.sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	f.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	f.pfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (f.sfd < 0 || f.tfd < 0 || f.pfd < 0) {
		err = -errno;
		goto out;
	}
	a->tfd = f.tfd;
	arm_timer(f.tfd, a->cfg->flush_interval_s);
	{
		/* The first interval began at attach, before the start-up scans:
		 * it ends one interval after that, or now if the scans took longer. */
		uint64_t spent = (uint64_t)time(NULL) - a->interval_start;
		struct itimerspec first = {0};

		first.it_interval.tv_sec = a->cfg->flush_interval_s;
		if (spent < a->cfg->flush_interval_s)
			first.it_value.tv_sec = (time_t)(a->cfg->flush_interval_s - spent);
		else
			first.it_value.tv_nsec = 1;
		timerfd_settime(f.tfd, 0, &first, NULL);
	}
	/* The kernel side wakes us only when its ring buffer fills up; drain
	 * it on this timer otherwise (see rb_flags() in the BPF program). */
	poll_its.it_interval.tv_nsec = PF_RB_POLL_MS * 1000000L;
	poll_its.it_value.tv_nsec = PF_RB_POLL_MS * 1000000L;
	timerfd_settime(f.pfd, 0, &poll_its, NULL);
	if ((err = pf_loop__add(a->loop, f.pfd, EPOLLIN, on_poll_timer, &f)) ||
	    (err = pf_loop__add(a->loop, f.sfd, EPOLLIN, on_signal, &f)) ||
	    (err = pf_loop__add(a->loop, f.tfd, EPOLLIN, on_flush_timer, &f)) ||
	    (err = pf_loop__add(a->loop, ring_buffer__epoll_fd(a->rb), EPOLLIN, on_ringbuf, &f)))
		goto out;
	err = pf_loop__run(a->loop);
	flush(a);
out:
	if (f.tfd >= 0)
		close(f.tfd);
	if (f.pfd >= 0)
		close(f.pfd);
	if (f.sfd >= 0)
		close(f.sfd);
	return err;
}

/* Each key a sink says it owns is a row of the configuration table: a
 * misspelt name is a bug of this build, said at every start (and so by
 * every end-to-end test). Returns 0 or -EINVAL. */
static int sink_keys_check(void)
{
	for (size_t i = 0; i < PF_NSINKS; i++)
		for (const char *const *k = sink_types[i]->keys; k && *k; k++) {
			size_t j = 0;

			while (j < pf_config_nkeys && strcmp(pf_config_keys[j].name, *k))
				j++;
			if (j == pf_config_nkeys) {
				pf_log(
				    "bug: the %s output names '%s', which is no configuration key",
				    sink_types[i]->name, *k);
				return -EINVAL;
			}
		}
	return 0;
}

int pf_run(const struct pf_config *cfg_in, const struct pf_config_args *args)
{
	struct pf_config *cfg;
	struct pf_agg_opts ao;
	struct pf_agent a;
	struct scan_ctx sc;
	int err, hp, ret = PF_EXIT_RUNTIME;

	sigset_t mask;

	pf_stop_signals(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	/* A reader of --stdout that exits (`| head -1`) must not kill the
	 * agent: writes then fail with EPIPE, and the file gets every line. */
	signal(SIGPIPE, SIG_IGN);
	memset(&a, 0, sizeof(a));
	a.pid_fd = -1;
	a.tfd = -1;
	losses_init(&a);
	/* The agent's own copy: the collector reads it, a reload rewrites it. */
	cfg = malloc(sizeof(*cfg));
	if (!cfg) {
		pf_log("out of memory");
		return PF_EXIT_RUNTIME;
	}
	*cfg = *cfg_in;
	a.cfg = cfg;
	a.args = args;
	if (gethostname(a.host, sizeof(a.host) - 1))
		snprintf(a.host, sizeof(a.host), "localhost");

	/* The output directory first: a wrong one is the user's to fix, and
	 * is better said before anything else (exit 2). Only checked here;
	 * flows.log is opened once the PID file's lock is ours. */
	if (sink_keys_check())
		goto out;
	ret = pf_sink_file__check(cfg);
	if (ret)
		goto out;
	ret = PF_EXIT_RUNTIME;
	/* The PID file before flows.log: it is also the lock that keeps a
	 * second agent from running on the same runtime directory, and that
	 * one must not touch the first one's files (not even flows.log's
	 * repair at open). Without a PID file (an unwritable directory) the
	 * agent still runs; only `procflow reload` cannot find it (SIGHUP
	 * still works). */
	a.pid_fd = pf_pidfile_create(cfg->runtime_dir, a.pid_path, sizeof(a.pid_path));
	if (a.pid_fd == -EPERM || a.pid_fd == -ELOOP || a.pid_fd == -ENOTDIR ||
	    a.pid_fd == -EINVAL) {
		char why[256];

		if (pf_safefs__why(cfg->runtime_dir, why, sizeof(why)))
			pf_log("refusing the runtime directory %s: it %s", cfg->runtime_dir, why);
		else
			pf_log("refusing %s: it is a symbolic link or not a regular file",
			       a.pid_path);
		ret = PF_EXIT_USAGE;
		goto out;
	}
	if (a.pid_fd == -EBUSY) {
		long pid = pf_pidfile_pid(a.pid_path);

		if (pid > 0)
			pf_log(
			    "another agent (PID %ld) runs with the runtime directory %s (it holds "
			    "%s): one agent per host",
			    pid, cfg->runtime_dir, a.pid_path);
		else
			pf_log(
			    "another agent runs with the runtime directory %s (it holds %s): one "
			    "agent per host",
			    cfg->runtime_dir, a.pid_path);
		goto out;
	} else if (a.pid_fd < 0)
		pf_log("cannot write the PID file in %s: %s (`procflow reload` will not find "
		       "this agent)",
		       cfg->runtime_dir, strerror(-a.pid_fd));
	/* The outputs, each behind the sink interface. The metrics endpoint
	 * binds its socket here, while the agent may still bind any port; its
	 * threads give up every capability themselves. */
	a.loop = pf_loop__new();
	if (!a.loop) {
		pf_log("out of memory");
		goto out;
	}
	for (size_t i = 0; i < PF_NSINKS; i++) {
		if (!sink_types[i]->wanted(cfg))
			continue;
		a.sinks[i] = sink_types[i]->start(cfg, a.loop);
		if (!a.sinks[i]) {
			ret = errno == EINVAL ? PF_EXIT_USAGE : PF_EXIT_RUNTIME;
			goto out;
		}
	}
	pf_linechunk__init(&a.out, PF_OUT_CHUNK, on_chunk, &a);
	a.argbuf_size = (size_t)cfg->args_max + 64;
	a.argbuf = malloc(a.argbuf_size);
	/* A redacted area can be longer than the original (each secret becomes
	 * the replacement text); beyond this it is cut and marked. */
	a.redbuf_size = (size_t)cfg->args_max + 4096;
	a.redbuf = malloc(a.redbuf_size);
	/* Identities are kept two intervals after exit: a flow seen in the
	 * interval a process ended is written at the end of that interval. */
	a.procs =
	    pf_proc_cache__new(PF_PROC_CACHE_MAX, 2ull * cfg->flush_interval_s * 1000000000ull);
	agg_opts_of(cfg, a.host, &ao);
	a.agg = pf_agg__new(&ao);
	if (!a.argbuf || !a.redbuf || !a.procs || !a.agg) {
		pf_log("out of memory");
		goto out;
	}

	err = pf_loader__start(&a.loader, cfg);
	if (err)
		goto out;
	{
		char maps[256];
		uint64_t b = pf_loader__map_bytes(&a.loader, maps, sizeof(maps));

		/* Preallocated: what the map sizes cost, whatever the traffic. */
		pf_log("kernel maps: %.1f MiB (%s)", (double)b / (1024.0 * 1024.0), maps);
		pf_metrics__set(&pf_registry, PF_M_KERNEL_MAP_BYTES, b);
	}
	/* Counting starts with the hooks attached: so does the first interval,
	 * not with the process (loading can take seconds on a busy host). */
	a.interval_start = (uint64_t)time(NULL);
	a.rb = ring_buffer__new(bpf_map__fd(a.loader.skel->maps.events), on_event, &a, NULL);
	if (!a.rb) {
		pf_log("cannot open the ring buffer: %s", strerror(errno));
		goto out;
	}
	err = pf_collector__init(&a.coll, &a.loader, a.procs, a.agg, cfg);
	if (err) {
		pf_log("out of memory");
		goto out;
	}
	a.coll.drain = drain_events;
	a.coll.drain_ctx = &a;
	a.ctrs = pf_containers__new(a.loader.cgroup_path, NULL);
	if (!a.ctrs)
		pf_log("container identities unavailable: %s; containers are named as the host",
		       strerror(errno));
	a.coll.ctrs = a.ctrs;

	/* Exec events are flowing already, so nothing starts unseen between
	 * the scan and now; the cache keeps the newer of the two. */
	hp = pf_loader__host_pidns(&a.loader);
	a.host_pidns = hp == 1;
	if (a.host_pidns) {
		sc.a = &a;
		sc.n = 0;
		pf_procfs__for_each_pid("/proc", scan_one, &sc);
		pf_debug("learnt %zu running processes from /proc", sc.n);
	} else {
		pf_log("the host PID namespace is not visible: processes started before the "
		       "agent are named by their task name, without arguments");
	}
	err = pf_loader__scan_sockets(&a.loader);
	if (err)
		pf_log("cannot list existing sockets (%s): their owners are found when they "
		       "are next used",
		       strerror(-err));

	/* Everything that needs privileges is done: keep only what the
	 * running agent needs (agent/caps.c, README "Privileges"). */
	err = pf_caps__drop(pf_caps__keep_set(
	    a.loader.path_walk, pf_caps__bpf_needs_cap(bpf_map__fd(a.loader.skel->maps.events))));
	if (err)
		pf_log("could not give up capabilities no longer needed: %s", strerror(-err));
	/* (The file sink is always started: flowLogsFileEnabled changes live.) */
	pf_log("ready: writing %s every %us", pf_sink_file__path(a.sinks[0]),
	       cfg->flush_interval_s);
	err = loop(&a);
	ret = err ? PF_EXIT_RUNTIME : PF_EXIT_OK;
out:
	/* After the last flush: the sinks hold the last lines. */
	for (size_t i = PF_NSINKS; i-- > 0;)
		if (a.sinks[i])
			sink_types[i]->stop(a.sinks[i]);
	pf_collector__fini(&a.coll);
	pf_containers__free(a.ctrs);
	ring_buffer__free(a.rb);
	if (a.loader.skel)
		pf_loader__stop(&a.loader);
	pf_agg__free(a.agg);
	pf_proc_cache__free(a.procs);
	pf_loop__free(a.loop);
	pf_pidfile_remove(a.pid_fd, a.pid_path);
	free(a.argbuf);
	free(a.redbuf);
	pf_linechunk__fini(&a.out);
	free(cfg);
	return ret;
}
