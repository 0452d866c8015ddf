// SPDX-License-Identifier: BSD-2-Clause
/*
 * `procflow run`: the daemon.
 *
 * One thread, one epoll loop with four file events: the BPF ring buffer
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
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "containers.h"
#include "config.h"
#include "flow_agg.h"
#include "identity.h"
#include "jsonw.h"
#include "logfile.h"
#include "loss_log.h"
#include "loss_marker.h"
#include "outbuf.h"
#include "proc_cache.h"
#include "procflow.skel.h"
#include "procflow/abi.h"
#include "procfs.h"
#include "safefs.h"

/* Lines for --stdout that a slow reader has not taken yet wait here, at
 * most this much; beyond it they are dropped (counted and logged), so the
 * loop never waits for the reader. */
#define PF_STDOUT_BUF_MAX (4u << 20)

/* How often the ring buffer is drained when the kernel side does not wake
 * us: bounds how long an exec event waits, not whether it is seen. */
#define PF_RB_POLL_MS 100

struct pf_agent {
	struct pf_config *cfg; /* the running configuration; a reload changes it */
	struct pf_containers *ctrs; /* container identities (agent/containers.c) */
	const struct pf_config_args *args;
	int tfd;    /* the flush timer, re-armed when the interval changes */
	int pid_fd; /* the locked PID file, -1 when there is none */
	char pid_path[PF_CFG_PATH_MAX + 32];
	bool write_failing;	  /* the last write of flows.log failed */
	uint64_t rotate_failures; /* rotation failures already logged */
	uint64_t rotations;	  /* rotations done when the last failure was seen */
	bool rotate_failing;	  /* a rotation failed, none worked since */
	uint64_t lost_reported;	  /* lines lost that the log has already told */
	struct pf_loader loader;
	struct ring_buffer *rb;
	struct pf_proc_cache *procs;
	struct pf_agg *agg;
	struct pf_logfile *log;
	struct pf_chsink *ch; /* NULL unless --clickhouse-url */
	struct pf_collector coll;
	bool host_pidns; /* kernel PIDs are this /proc's PIDs */
	char host[256];
	uint64_t interval_start; /* Unix seconds */
	char *argbuf;		 /* joined arguments of one exec */
	size_t argbuf_size;
	char *redbuf; /* its argument area after redaction */
	size_t redbuf_size;
	/* the lines of one flush, written with one call */
	char *out;
	size_t out_len, out_cap;
	uint64_t out_lines;
	uint64_t out_dropped; /* lines not built for want of memory (cumulative) */
	/* user-space losses, told each interval (lib/loss_log.h) */
	struct pf_loss loss_agg, loss_nomem, loss_out, loss_procs;
	/* --stdout: a bounded buffer in front of a non-blocking descriptor */
	struct pf_outbuf *so;
	int so_fd;		      /* the descriptor written (may be a reopened fd 1) */
	int so_fl;		      /* fd 1's flags to restore at exit, -1: untouched */
	bool so_polled;		      /* so_fd is in the epoll set, for EPOLLOUT */
	uint64_t so_reported;	      /* stdout drops already logged */
	int ep;			      /* the loop's epoll, -1 outside it */
	uint64_t kstats[PF_STAT_MAX]; /* kernel-side loss counters already logged */
	uint64_t coll_dropped;	      /* collector drops already logged */
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
				 e->cgroup_id, comm, path, a->argbuf, trunc))
		pf_proc_cache__set_exec_id(a->procs, e->hdr.pid, e->start_ns, e->hdr.ts_ns,
					   e->exec_id);
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
		on_exec(a, data, size);
		break;
	case PF_EV_FORK: {
		const struct pf_fork_event *f = data;

		if (size < sizeof(*f))
			break;
		memcpy(comm, f->comm, PF_COMM_LEN);
		comm[PF_COMM_LEN] = '\0';
		if (!pf_proc_cache__fork(a->procs, h->pid, f->start_ns, f->ppid, f->parent_start_ns,
					 comm))
			pf_proc_cache__set_exec_id(a->procs, h->pid, f->start_ns, f->start_ns,
						   f->exec_id);
		break;
	}
	case PF_EV_EXIT: {
		const struct pf_exit_event *x = data;

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
	s->n++;
	return 0;
}

/* ---- output ---- */

static int on_line(const char *line, size_t len, void *ctx)
{
	struct pf_agent *a = ctx;

	if (a->out_len + len > a->out_cap) {
		size_t ncap = a->out_cap ? a->out_cap : 1 << 16;
		char *n;

		while (ncap < a->out_len + len)
			ncap *= 2;
		n = realloc(a->out, ncap);
		if (!n) {
			/* Counted and logged; the other lines may still fit. */
			a->out_dropped++;
			return 0;
		}
		a->out = n;
		a->out_cap = ncap;
	}
	memcpy(a->out + a->out_len, line, len);
	a->out_len += len;
	a->out_lines++;
	return 0;
}

/* Log what the kernel side could not do since the last call; returns the
 * process events lost (ring buffer full) in that time. */
static uint64_t log_kernel_losses(struct pf_agent *a)
{
	static const char *const what[PF_STAT_MAX] = {
	    [PF_STAT_RB_DROPS] = "process events lost (ring buffer full)",
	    [PF_STAT_FLOWS_FULL] = "packets not counted (flow map full)",
	    [PF_STAT_SOCKS_FULL] = "socket owners not recorded (socket map full)",
	    [PF_STAT_ACCEPT_MISS] = "accepted sockets without a cookie",
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
		if (sum > a->kstats[k])
			pf_log("%llu %s", (unsigned long long)(sum - a->kstats[k]), what[k]);
		if (k == PF_STAT_RB_DROPS && sum > a->kstats[k])
			rb_lost = sum - a->kstats[k];
		a->kstats[k] = sum;
	}
	free(vals);
	return rb_lost;
}

/* Log what user space lost since the last call: each counter grows where
 * the loss happens and is told here once per interval. */
static void log_user_losses(struct pf_agent *a)
{
	struct pf_proc_cache_stats st;
	char msg[256];

	pf_proc_cache__stats(a->procs, &st);
	if (pf_loss__delta(&a->loss_agg, pf_agg__dropped(a->agg), msg, sizeof(msg)))
		pf_log("%s", msg);
	if (pf_loss__delta(&a->loss_nomem, a->coll.n_agg_nomem, msg, sizeof(msg)))
		pf_log("%s", msg);
	if (pf_loss__delta(&a->loss_out, a->out_dropped, msg, sizeof(msg)))
		pf_log("%s", msg);
	if (pf_loss__delta(&a->loss_procs, st.dropped, msg, sizeof(msg)))
		pf_log("%s", msg);
}

static void losses_init(struct pf_agent *a)
{
	a->loss_agg.what = "flow observations or lines dropped by the aggregator (more flow keys "
			   "in the interval than it holds, or a line too long)";
	a->loss_nomem.what = "flow observations dropped: out of memory in the aggregator";
	a->loss_out.what = "lines dropped: out of memory gathering the interval's output";
	a->loss_procs.what = "processes not remembered: the process cache is full of live "
			     "processes (their flows are named by what the kernel side knows)";
}

/* The interval's loss marker (lib/loss_marker.h), after its flow lines. */
static void write_loss_marker(struct pf_agent *a, uint64_t now_s, uint64_t lost)
{
	struct pf_jw w;

	pf_jw__init(&w, 4096);
	if (!pf_loss_marker__line(&w, a->interval_start, now_s, a->host, lost))
		on_line(w.buf, w.len, a);
	pf_jw__fini(&w);
}

/*
 * Write one flush's lines. On a full disk or an unwritable directory the
 * agent goes on collecting: the lines are counted as lost, the failure is
 * logged once when it starts, and once writing works again the log says
 * how many lines were lost meanwhile.
 */
static void write_lines(struct pf_agent *a)
{
	uint64_t lost;
	int err;

	err = pf_logfile__write(a->log, a->out, a->out_len, a->out_lines);
	lost = pf_logfile__lost(a->log);
	if (pf_logfile__rotate_failures(a->log) > a->rotate_failures) {
		/* Nothing is lost: the lines go on into the file that is open
		 * (or are counted below). Said once per episode. */
		if (!a->rotate_failing)
			pf_log("rotating %s failed (is the directory writable, are descriptors or "
			       "inodes left?): the open file grows past flowLogsFileMaxFileSizeMB "
			       "until rotation works again",
			       pf_logfile__path(a->log));
		a->rotate_failures = pf_logfile__rotate_failures(a->log);
		a->rotate_failing = true;
		a->rotations = pf_logfile__rotations(a->log);
	} else if (a->rotate_failing && pf_logfile__rotations(a->log) > a->rotations) {
		pf_log("rotating %s works again", pf_logfile__path(a->log));
		a->rotate_failing = false;
	}
	if (err) {
		if (!a->write_failing)
			pf_log("writing %s failed: %s; lines are counted as lost until writing "
			       "works again (%llu so far)",
			       pf_logfile__path(a->log), strerror(-err), (unsigned long long)lost);
		else
			pf_debug("writing %s still fails: %s (%llu lines lost so far)",
				 pf_logfile__path(a->log), strerror(-err),
				 (unsigned long long)lost);
		a->write_failing = true;
		return;
	}
	if (lost > a->lost_reported) {
		pf_log("writing %s works again: %llu lines could not be written while it failed",
		       pf_logfile__path(a->log), (unsigned long long)(lost - a->lost_reported));
		a->lost_reported = lost;
	}
	a->write_failing = false;
}

/* ---- --stdout ---- */

/*
 * The descriptor --stdout writes: never one that blocks. A pipe or terminal
 * is opened again through /proc (a file description of our own, so making
 * it non-blocking does not change the shell's or the reader's); where that
 * fails (a socket), fd 1 itself is made non-blocking and restored at exit.
 * A regular file never blocks and is written as it is.
 */
static int stdout_open(struct pf_agent *a)
{
	struct stat st;
	int fd, fl;

	a->so_fl = -1;
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
	a->so_fl = fl;
	return STDOUT_FILENO;
}

/* Set --stdout up (at start, or when a reload turns it on). Returns 0 or a
 * negative errno, logged. */
static int stdout_start(struct pf_agent *a)
{
	int fd = stdout_open(a);

	a->so = fd >= 0 ? pf_outbuf__new(fd, PF_STDOUT_BUF_MAX) : NULL;
	if (!a->so) {
		pf_log("cannot use standard output: %s", strerror(fd < 0 ? -fd : ENOMEM));
		if (fd > STDOUT_FILENO)
			close(fd);
		return fd < 0 ? fd : -ENOMEM;
	}
	a->so_fd = fd;
	return 0;
}

static void stdout_close(struct pf_agent *a)
{
	if (!a->so)
		return;
	(void)pf_outbuf__flush(a->so);
	if (pf_outbuf__pending(a->so)) {
		pf_outbuf__discard(a->so);
		pf_log("%llu lines not printed on standard output at exit: its reader did not "
		       "take them in time",
		       (unsigned long long)(pf_outbuf__dropped(a->so) - a->so_reported));
	}
	if (a->so_fl >= 0)
		(void)fcntl(STDOUT_FILENO, F_SETFL, a->so_fl);
	if (a->so_fd > STDOUT_FILENO)
		close(a->so_fd);
	pf_outbuf__free(a->so);
	a->so = NULL;
}

/* Watch for the reader to make room only while lines are waiting. */
static void stdout_poll(struct pf_agent *a)
{
	bool want = a->so && pf_outbuf__pending(a->so) && !pf_outbuf__closed(a->so);
	struct epoll_event ev = {.events = EPOLLOUT};

	if (a->ep < 0 || want == a->so_polled)
		return;
	ev.data.fd = a->so_fd;
	if (!epoll_ctl(a->ep, want ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, a->so_fd, &ev) || !want)
		a->so_polled = want;
}

/* After a write or flush of the buffer: say once that the reader is gone,
 * and each interval how many lines a slow one missed. */
static void stdout_report(struct pf_agent *a, int err, bool interval)
{
	static bool closed_logged;
	uint64_t dropped = pf_outbuf__dropped(a->so);

	if (err == -EPIPE && !closed_logged) {
		pf_log("standard output is closed (its reader exited): lines go on to %s only",
		       a->cfg->file_enabled ? pf_logfile__path(a->log) : "the other outputs");
		closed_logged = true;
		a->so_reported = dropped; /* no more per-interval reports */
	} else if (err && err != -EPIPE && !closed_logged) {
		pf_debug("writing standard output: %s", strerror(-err));
	}
	if (interval && !pf_outbuf__closed(a->so) && dropped > a->so_reported) {
		pf_log("%llu lines not printed on standard output: its reader is too slow (at most "
		       "%u MiB wait for it)",
		       (unsigned long long)(dropped - a->so_reported), PF_STDOUT_BUF_MAX >> 20);
		a->so_reported = dropped;
	}
	stdout_poll(a);
}

static void drain_events(void *ctx)
{
	struct pf_agent *a = ctx;

	ring_buffer__consume(a->rb);
}

static int flush(struct pf_agent *a)
{
	uint64_t now_s = (uint64_t)time(NULL);
	uint64_t now = boot_ns(), lost;
	int err;

	err = pf_collector__collect(&a->coll, now);
	if (err)
		pf_log("reading the kernel maps failed: %s", strerror(-err));
	/* After the collection, which drained the ring buffer: every loss of
	 * this interval is counted by now. */
	lost = log_kernel_losses(a);
	if (a->coll.n_dropped > a->coll_dropped) {
		pf_log("%llu flows not reported: more live flows than the collector follows (%u)",
		       (unsigned long long)(a->coll.n_dropped - a->coll_dropped),
		       PF_COLLECTOR_FLOWS_MAX);
		a->coll_dropped = a->coll.n_dropped;
	}
	a->out_len = 0;
	a->out_lines = 0;
	err = pf_agg__flush(a->agg, a->interval_start, now_s, on_line, a);
	if (err)
		pf_log("building the interval's lines failed: %s; the rest of the interval is lost",
		       strerror(-err));
	log_user_losses(a);
	if (lost)
		write_loss_marker(a, now_s, lost);
	a->interval_start = now_s;
	if (a->out_len) {
		if (a->cfg->file_enabled)
			write_lines(a);
		if (a->cfg->to_stdout && !a->so)
			(void)stdout_start(a); /* turned on by a reload */
		if (a->cfg->to_stdout && a->so)
			stdout_report(a, pf_outbuf__write(a->so, a->out, a->out_len, a->out_lines),
				      true);
		pf_chsink__submit(a->ch, a->out, a->out_len, a->out_lines);
	}
	pf_debug("flush: %llu lines, %llu kernel flow entries, %llu completed, %llu events",
		 (unsigned long long)a->out_lines, (unsigned long long)a->coll.n_entries,
		 (unsigned long long)a->coll.n_completed, (unsigned long long)a->events);
	pf_proc_cache__gc(a->procs, now);
	pf_identity_reap(a->procs, now, a->host_pidns);
	pf_containers__tick(a->ctrs);
	pf_occupancy__log(&a->coll, a->procs, a->cfg->verbose);
	return 0;
}

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
	ao->include_labels = cfg->include_labels;
}

static void arm_timer(int tfd, unsigned secs)
{
	struct itimerspec its = {0};

	its.it_interval.tv_sec = secs;
	its.it_value.tv_sec = secs;
	timerfd_settime(tfd, 0, &its, NULL);
}

static void log_rotation(const struct pf_config *cfg, struct pf_logfile *log)
{
	pf_logfile__set_rotation(log, (uint64_t)cfg->max_file_mb << 20, cfg->max_files,
				 !strcmp(cfg->compression, "zstd"));
}

static void reload(struct pf_agent *a)
{
	char err[PF_CFG_ERR_MAX], val[PF_CFG_PATH_MAX + 8], changed[1024];
	struct pf_agg_opts ao;
	struct pf_config n;
	size_t off = 0;
	int nchanged = 0;

	if (pf_config_load(a->args, &n, NULL, err, sizeof(err))) {
		pf_log("reload rejected, the running configuration stays: %s", err);
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
		return;
	}
	/* Close the interval under the settings it was collected with. */
	flush(a);
	n.redactor = a->cfg->redactor; /* so is redaction (its keys are not live) */
	*a->cfg = n;
	agg_opts_of(a->cfg, a->host, &ao);
	if (pf_agg__reconfigure(a->agg, &ao))
		pf_log("reload: the aggregator kept its settings (interval not empty)");
	log_rotation(a->cfg, a->log);
	/* A global of the loaded BPF object, mapped: packets from now on. */
	a->loader.skel->bss->cfg_include_loopback = a->cfg->include_loopback;
	arm_timer(a->tfd, a->cfg->flush_interval_s);
	pf_proc_cache__set_grace(a->procs, 2ull * a->cfg->flush_interval_s * 1000000000ull);
	pf_verbose = a->cfg->verbose;
	pf_chsink__reconfigure(a->ch, &a->cfg->ch); /* its live keys: batch, interval, timeout */
	pf_log("reloaded: %s", changed);
}

/* ---- the loop ---- */

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

static int loop(struct pf_agent *a)
{
	struct itimerspec poll_its = {0};
	struct epoll_event ev, evs[5];
	sigset_t mask;
	int ep, sfd, tfd, pfd, rbfd, err = 0;
	bool stop = false;

	pf_stop_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	pfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	rbfd = ring_buffer__epoll_fd(a->rb);
	if (sfd < 0 || tfd < 0 || pfd < 0 || ep < 0) {
		err = -errno;
		goto out;
	}
	a->tfd = tfd;
	a->ep = ep;
	arm_timer(tfd, a->cfg->flush_interval_s);
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
		timerfd_settime(tfd, 0, &first, NULL);
	}
	/* The kernel side wakes us only when its ring buffer fills up; drain
	 * it on this timer otherwise (see rb_flags() in the BPF program). */
	poll_its.it_interval.tv_nsec = PF_RB_POLL_MS * 1000000L;
	poll_its.it_value.tv_nsec = PF_RB_POLL_MS * 1000000L;
	timerfd_settime(pfd, 0, &poll_its, NULL);
	ev.events = EPOLLIN;
	ev.data.fd = pfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, pfd, &ev);

	ev.events = EPOLLIN;
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.fd = rbfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, rbfd, &ev);

	while (!stop) {
		int n = epoll_wait(ep, evs, 5, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;

			if (fd == rbfd) {
				ring_buffer__consume(a->rb);
			} else if (a->so && fd == a->so_fd) {
				/* The reader made room (or went away). */
				stdout_report(a, pf_outbuf__flush(a->so), false);
			} else if (fd == pfd) {
				uint64_t ticks;

				if (read(pfd, &ticks, sizeof(ticks)) > 0)
					ring_buffer__consume(a->rb);
			} else if (fd == tfd) {
				uint64_t ticks;

				if (read(tfd, &ticks, sizeof(ticks)) > 0)
					flush(a);
			} else if (fd == sfd) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						reload(a);
						continue;
					}
					pf_log("%s: writing the current interval and exiting",
					       strsignal((int)si.ssi_signo));
					stop = true;
				}
			}
		}
	}
	flush(a);
out:
	a->ep = -1;
	if (ep >= 0)
		close(ep);
	if (tfd >= 0)
		close(tfd);
	if (pfd >= 0)
		close(pfd);
	if (sfd >= 0)
		close(sfd);
	return err;
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

int pf_run(const struct pf_config *cfg_in, const struct pf_config_args *args)
{
	struct pf_logfile_opts lo = {0};
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
	a.ep = -1;
	a.so_fl = -1;
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
	lo.dir = cfg->output_dir;
	lo.file_mode = cfg->file_mode;
	lo.dir_mode = cfg->dir_mode;
	lo.max_bytes = (uint64_t)cfg->max_file_mb << 20;
	lo.max_files = cfg->max_files;
	lo.compress = !strcmp(cfg->compression, "zstd");
	if (cfg->file_group[0]) {
		/* Members of the group read the files (procflow query) without
		 * root: the directory and every file created get the group. */
		if (resolve_group(cfg->file_group, &lo.group)) {
			pf_log("flowLogsFileGroup: there is no group '%s' on this host",
			       cfg->file_group);
			ret = PF_EXIT_USAGE;
			goto out;
		}
		lo.set_group = true;
	}
	err = pf_safefs__open_dir(lo.dir, lo.dir_mode ? lo.dir_mode : 0750,
				  lo.set_group ? (gid_t)lo.group : PF_SAFEFS_NO_GROUP, NULL);
	if (err < 0) {
		ret = output_error(cfg, -err);
		goto out;
	}
	close(err);
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
	a.log = pf_logfile__open_opts(&lo);
	if (!a.log) {
		ret = output_error(cfg, errno);
		goto out;
	}
	if (pf_logfile__repaired(a.log))
		pf_log("%s ended in a partial line (a write cut short when the agent was killed): "
		       "%llu bytes cut back to the last whole line",
		       pf_logfile__path(a.log), (unsigned long long)pf_logfile__repaired(a.log));
	if (cfg->ch.url[0]) {
		a.ch = pf_chsink__start(&cfg->ch, cfg->output_dir);
		if (!a.ch) {
			ret = errno == EINVAL ? PF_EXIT_USAGE : PF_EXIT_RUNTIME;
			goto out;
		}
	}
	if (cfg->to_stdout && stdout_start(&a))
		goto out;
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
	err = pf_caps__drop(pf_caps__keep_set(a.loader.path_walk));
	if (err)
		pf_log("could not give up capabilities no longer needed: %s", strerror(-err));
	pf_log("ready: writing %s every %us", pf_logfile__path(a.log), cfg->flush_interval_s);
	err = loop(&a);
	ret = err ? PF_EXIT_RUNTIME : PF_EXIT_OK;
out:
	pf_chsink__stop(a.ch); /* after the last flush: it holds the last lines */
	pf_collector__fini(&a.coll);
	pf_containers__free(a.ctrs);
	ring_buffer__free(a.rb);
	if (a.loader.skel)
		pf_loader__stop(&a.loader);
	pf_agg__free(a.agg);
	pf_proc_cache__free(a.procs);
	stdout_close(&a);
	pf_logfile__close(a.log);
	pf_pidfile_remove(a.pid_fd, a.pid_path);
	free(a.argbuf);
	free(a.redbuf);
	free(a.out);
	free(cfg);
	return ret;
}
