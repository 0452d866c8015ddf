// SPDX-License-Identifier: BSD-2-Clause
/*
 * `procflow run`: the daemon.
 *
 * One thread, one epoll loop with three file events: the BPF ring buffer
 * (exec, fork and exit events feed the process cache), a signalfd (SIGINT
 * and SIGTERM end the run after a last flush) and a timerfd (the flush,
 * once per interval). Nothing else runs concurrently with the kernel side
 * but the kernel side itself.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <fcntl.h>
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
#include "flow_agg.h"
#include "identity.h"
#include "jsonw.h"
#include "loss_marker.h"
#include "logfile.h"
#include "proc_cache.h"
#include "procflow.skel.h"
#include "procfs.h"
#include "procflow/abi.h"

struct pf_agent {
	const struct pf_config *cfg;
	struct pf_loader loader;
	struct ring_buffer *rb;
	struct pf_proc_cache *procs;
	struct pf_agg *agg;
	struct pf_logfile *log;
	struct pf_collector coll;
	bool host_pidns;	 /* kernel PIDs are this /proc's PIDs */
	char host[256];
	uint64_t interval_start; /* Unix seconds */
	char *argbuf;		 /* joined arguments of one exec */
	size_t argbuf_size;
	char *redbuf;		 /* its argument area after redaction */
	size_t redbuf_size;
	/* the lines of one flush, written with one call */
	char *out;
	size_t out_len, out_cap;
	uint64_t out_lines;
	int out_err;
	uint64_t kstats[PF_STAT_MAX]; /* kernel-side loss counters already logged */
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
	 * kernel's resolution of the file is the name. */
	if (e->exe_len && (path[0] != '/' || !strncmp(path, "/dev/fd/", 8))) {
		char *abs = absolute_path(path, e->data + e->path_len + e->args_len, e->exe_len);

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
		if (!pf_proc_cache__fork(a->procs, h->pid, f->start_ns, f->ppid,
					 f->parent_start_ns, comm))
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
			    p.exe[0] ? p.exe : NULL, p.exe[0] ? a->argbuf : NULL,
			    trunc);
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
			a->out_err = -ENOMEM;
			return -ENOMEM;
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

/* The interval's loss marker (lib/loss_marker.h), after its flow lines. */
static void write_loss_marker(struct pf_agent *a, uint64_t now_s, uint64_t lost)
{
	struct pf_jw w;

	pf_jw__init(&w, 4096);
	if (!pf_loss_marker__line(&w, a->interval_start, now_s, a->host, lost))
		on_line(w.buf, w.len, a);
	pf_jw__fini(&w);
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
	a->out_len = 0;
	a->out_lines = 0;
	a->out_err = 0;
	pf_agg__flush(a->agg, a->interval_start, now_s, on_line, a);
	if (lost)
		write_loss_marker(a, now_s, lost);
	a->interval_start = now_s;
	if (a->out_len) {
		err = pf_logfile__write(a->log, a->out, a->out_len, a->out_lines);
		if (err)
			pf_log("writing %s failed: %s (%llu lines lost so far)",
			       pf_logfile__path(a->log), strerror(-err),
			       (unsigned long long)pf_logfile__lost(a->log));
		if (a->cfg->to_stdout) {
			fwrite(a->out, 1, a->out_len, stdout);
			fflush(stdout);
		}
	}
	pf_debug("flush: %llu lines, %llu kernel flow entries, %llu completed, %llu events",
		 (unsigned long long)a->out_lines, (unsigned long long)a->coll.n_entries,
		 (unsigned long long)a->coll.n_completed, (unsigned long long)a->events);
	pf_proc_cache__gc(a->procs, now);
	return 0;
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
	struct itimerspec its = {0};
	struct epoll_event ev, evs[4];
	sigset_t mask;
	int ep, sfd, tfd, rbfd, err = 0;
	bool stop = false;

	pf_stop_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ep = epoll_create1(EPOLL_CLOEXEC);
	rbfd = ring_buffer__epoll_fd(a->rb);
	if (sfd < 0 || tfd < 0 || ep < 0) {
		err = -errno;
		goto out;
	}
	its.it_interval.tv_sec = a->cfg->flush_interval_s;
	its.it_value.tv_sec = a->cfg->flush_interval_s;
	timerfd_settime(tfd, 0, &its, NULL);

	ev.events = EPOLLIN;
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	ev.data.fd = tfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
	ev.data.fd = rbfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, rbfd, &ev);

	while (!stop) {
		int n = epoll_wait(ep, evs, 4, -1);

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
			} else if (fd == tfd) {
				uint64_t ticks;

				if (read(tfd, &ticks, sizeof(ticks)) > 0)
					flush(a);
			} else if (fd == sfd) {
				struct signalfd_siginfo si;

				while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
					if (si.ssi_signo == SIGHUP) {
						pf_log("SIGHUP: nothing to reload in this version");
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
	if (ep >= 0)
		close(ep);
	if (tfd >= 0)
		close(tfd);
	if (sfd >= 0)
		close(sfd);
	return err;
}

int pf_run(const struct pf_config *cfg)
{
	struct pf_agg_opts ao = {0};
	struct pf_agent a;
	struct scan_ctx sc;
	int err, hp, ret = PF_EXIT_RUNTIME;

	sigset_t mask;

	pf_stop_signals(&mask);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	memset(&a, 0, sizeof(a));
	a.cfg = cfg;
	a.interval_start = (uint64_t)time(NULL);
	if (gethostname(a.host, sizeof(a.host) - 1))
		snprintf(a.host, sizeof(a.host), "localhost");

	/* The output first: a wrong directory is the user's to fix, and is
	 * better said before anything is loaded into the kernel. */
	a.log = pf_logfile__open(cfg->output_dir);
	if (!a.log) {
		err = errno;
		pf_log("cannot write flow logs in '%s': %s", cfg->output_dir, strerror(err));
		return err == ENOTDIR || err == ENOENT ? PF_EXIT_USAGE : PF_EXIT_RUNTIME;
	}
	a.argbuf_size = (size_t)cfg->args_max + 64;
	a.argbuf = malloc(a.argbuf_size);
	/* A redacted area can be longer than the original (each secret becomes
	 * the replacement text); beyond this it is cut and marked. */
	a.redbuf_size = (size_t)cfg->args_max + 4096;
	a.redbuf = malloc(a.redbuf_size);
	/* Identities are kept two intervals after exit: a flow seen in the
	 * interval a process ended is written at the end of that interval. */
	a.procs = pf_proc_cache__new(1 << 18, 2ull * cfg->flush_interval_s * 1000000000ull);
	ao.level = cfg->agg_level;
	ao.host = a.host;
	ao.proc_limit = cfg->proc_limit;
	ao.args_limit = cfg->args_limit;
	ao.include_process = cfg->process_info;
	ao.include_tcp = cfg->tcp_stats;
	a.agg = pf_agg__new(&ao);
	if (!a.argbuf || !a.redbuf || !a.procs || !a.agg) {
		pf_log("out of memory");
		goto out;
	}

	if (geteuid() != 0)
		pf_log("not running as root: loading the kernel hooks will likely fail");
	err = pf_loader__start(&a.loader, cfg);
	if (err)
		goto out;
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
		       "are next used", strerror(-err));

	pf_log("ready: writing %s every %us", pf_logfile__path(a.log), cfg->flush_interval_s);
	err = loop(&a);
	ret = err ? PF_EXIT_RUNTIME : PF_EXIT_OK;
out:
	pf_collector__fini(&a.coll);
	ring_buffer__free(a.rb);
	if (a.loader.skel)
		pf_loader__stop(&a.loader);
	pf_agg__free(a.agg);
	pf_proc_cache__free(a.procs);
	pf_logfile__close(a.log);
	free(a.argbuf);
	free(a.redbuf);
	free(a.out);
	return ret;
}
