// SPDX-License-Identifier: BSD-2-Clause
/*
 * The collector's kernel half: once per interval, read the kernel's maps,
 * hand the copies to the reconcile (lib/flow_reconcile.c) and delete in the
 * kernel what it says has ended.
 *
 * The kernel keeps cumulative counters per (socket cookie, local address,
 * peer) in the flows map, live TCP connections' counters in socket storage
 * (read with an iterator), and the owner of each socket in the socks map.
 * Here we:
 *   1. read every flows map entry;
 *   2. read every socks map entry (running the task_file iterator first
 *      when a flow's socket had no owner: it predates the agent, and the
 *      iterator claims it);
 *   3. drain the event ring buffer, so that every claim read is
 *      resolvable in the process cache;
 *   4. reconcile (lib/) the flows map's entries, then the live TCP
 *      connections a batch at a time as the iterator reads them: a node
 *      with 100,000 connections never holds all their counters at once;
 *   5. delete completed flows and closed sockets.
 * Both maps are read and deleted from a chunk at a time with the batch
 * operations of the bpf() call, key by key where the kernel has none.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "containers.h"
#include "flow_agg.h"
#include "flow_reconcile.h"
#include "hmap.h"
#include "procflow.skel.h"
#include "procflow/abi.h"

/* Entries per batch lookup: one system call for this many entries rather
 * than two per entry. 1,024 flows map entries are 104 KiB of buffer. */
#define PF_MAP_BATCH 1024

/* Live connections handed to the reconcile at once (104 KiB). */
#define PF_LIVE_BATCH 1024

/* The kernel's "operation not supported" inside the kernel (ENOTSUPP),
 * which older kernels return to user space for a map without batch
 * operations. */
#define PF_ENOTSUPP 524

/* One batch buffer serves both maps. */
#define PF_MAX_SIZE(a, b) ((a) > (b) ? (a) : (b))

/* The sockets read, at most twice the map's size: a key-by-key walk
 * restarts when the key it stands on is deleted, and may see an entry
 * twice. */
#define PF_SOCKS_READ_MAX(c) (2 * (size_t)(c)->cfg->max_sockets)

int pf_collector__init(struct pf_collector *c, struct pf_loader *l, struct pf_proc_cache *procs,
		       struct pf_agg *agg, const struct pf_config *cfg)
{
	const char *batch = getenv("PF_MAP_BATCH");

	memset(c, 0, sizeof(*c));
	c->loader = l;
	c->flows_fd = l ? bpf_map__fd(l->skel->maps.flows) : -1;
	c->socks_fd = l ? bpf_map__fd(l->skel->maps.socks) : -1;
	c->procs = procs;
	c->agg = agg;
	c->cfg = cfg;
	/* PF_MAP_BATCH=0 reads key by key, as on a kernel without batch
	 * operations: the tests run the fallback through it. */
	c->batch = !(batch && !strcmp(batch, "0"));
	/* Live TCP connections count in socket storage, which has no bound of
	 * its own; the per-flow state is bounded generously instead (it grows
	 * only as used) and what does not fit is counted. */
	c->rc = pf_flow_rc__new(PF_COLLECTOR_FLOWS_MAX, cfg->max_flows, PF_SOCKS_READ_MAX(c));
	c->bkeys = malloc(PF_MAP_BATCH * PF_MAX_SIZE(sizeof(struct pf_flow_key), sizeof(uint64_t)));
	c->bvals = malloc(PF_MAP_BATCH *
			  PF_MAX_SIZE(sizeof(struct pf_flow_val), sizeof(struct pf_sock_val)));
	c->live = malloc(PF_LIVE_BATCH * sizeof(*c->live));
	c->live_socks = malloc(PF_LIVE_BATCH * sizeof(*c->live_socks));
	if (!c->rc || !c->bkeys || !c->bvals || !c->live || !c->live_socks) {
		pf_collector__fini(c);
		return -ENOMEM;
	}
	return 0;
}

void pf_collector__fini(struct pf_collector *c)
{
	pf_flow_rc__free(c->rc);
	pf_flow_dels__free(&c->dels);
	free(c->bkeys);
	free(c->bvals);
	free(c->live);
	free(c->live_socks);
	c->rc = NULL;
	c->bkeys = c->bvals = NULL;
	c->live = NULL;
	c->live_socks = NULL;
}

/* ---- reading a hash map ---- */

/* Takes one entry read; returns 0, or a negative errno to stop the walk. */
typedef int (*take_fn)(void *ctx, const void *key, const void *val);

static bool batch_unsupported(int err)
{
	return err == -EINVAL || err == -EOPNOTSUPP || err == -PF_ENOTSUPP;
}

static void batch_off(struct pf_collector *c, int err)
{
	c->batch = false;
	pf_log("batch map operations unavailable (%s): maps are read key by key", strerror(-err));
}

/*
 * The map a chunk at a time. Its cursor is a bucket, not a key, so entries
 * the kernel deletes meanwhile (a socket released) do not send the walk
 * back to the start as a vanished key does with get_next_key. Returns 0,
 * the error of @take, or 1 with *@sys_err set when the kernel refused.
 */
static int walk_batch(struct pf_collector *c, int fd, size_t ksz, size_t vsz, take_fn take,
		      void *ctx, int *sys_err)
{
	uint64_t cursor = 0;
	bool first = true;

	for (;;) {
		__u32 count = PF_MAP_BATCH;
		int err = bpf_map_lookup_batch(fd, first ? NULL : &cursor, &cursor, c->bkeys,
					       c->bvals, &count, NULL);

		err = err ? -errno : 0;
		if (err && err != -ENOENT) {
			*sys_err = err;
			return 1;
		}
		first = false;
		for (__u32 i = 0; i < count; i++) {
			int terr =
			    take(ctx, (char *)c->bkeys + i * ksz, (char *)c->bvals + i * vsz);

			if (terr)
				return terr;
		}
		if (err == -ENOENT)
			return 0;
	}
}

/* The map key by key: two system calls per entry. */
static int walk_keys(struct pf_collector *c, int fd, size_t ksz, take_fn take, void *ctx)
{
	char *key = c->bkeys, *next = key + ksz;
	void *prev = NULL;

	while (!bpf_map_get_next_key(fd, prev, next)) {
		int err;

		memcpy(key, next, ksz);
		prev = key;
		if (bpf_map_lookup_elem(fd, key, c->bvals))
			continue; /* deleted meanwhile */
		err = take(ctx, key, c->bvals);
		if (err)
			return err;
	}
	return 0;
}

/* Every entry of hash map @fd through @take; @reset empties what @take
 * built when a batch walk has to start over key by key. */
static int walk_map(struct pf_collector *c, int fd, size_t ksz, size_t vsz, take_fn take,
		    void (*reset)(void *ctx), void *ctx)
{
	int err, sys_err = 0;

	if (c->batch) {
		err = walk_batch(c, fd, ksz, vsz, take, ctx, &sys_err);
		if (err != 1)
			return err;
		if (batch_unsupported(sys_err))
			batch_off(c, sys_err);
		reset(ctx);
	}
	return walk_keys(c, fd, ksz, take, ctx);
}

/*
 * Delete @n keys of @ksz bytes at @keys from map @fd. Returns how many
 * were deleted; a key already gone (a socket's entry the kernel deleted at
 * its release) is skipped.
 */
static size_t delete_keys(struct pf_collector *c, int fd, const void *keys, size_t ksz, size_t n)
{
	size_t off = 0, done = 0;

	while (c->batch && off < n) {
		__u32 count = n - off > PF_MAP_BATCH ? PF_MAP_BATCH : (__u32)(n - off);
		int err = bpf_map_delete_batch(fd, (const char *)keys + off * ksz, &count, NULL);

		err = err ? -errno : 0;
		done += count;
		off += count;
		if (err == -ENOENT) {
			off++; /* the batch stopped at a key already gone */
		} else if (batch_unsupported(err)) {
			batch_off(c, err);
		} else if (err) {
			break;
		}
	}
	for (; off < n; off++)
		if (!bpf_map_delete_elem(fd, (const char *)keys + off * ksz))
			done++;
	return done;
}

/* ---- the flows map, a batch at a time ---- */

/*
 * Delete in the kernel what the last batch of reports completed (the
 * handshake entries of the first pass, before c->dels_mark, wait for the
 * end), so that the deletions of a close burst are never all held at once.
 */
static void drop_completed(struct pf_collector *c)
{
	struct pf_flow_dels *d = &c->dels;
	size_t from = c->dels_mark, n, deleted;
	bool map;

	if (d->n_flows <= from)
		return;
	n = d->n_flows - from;
	map = d->n_flows_map > from; /* a batch is all flows map entries or all live */
	deleted = delete_keys(c, c->flows_fd, d->flows + from, sizeof(struct pf_flow_key), n);
	if (map)
		c->n_map_deleted += deleted;
	c->n_dels += n;
	d->n_flows = d->n_flows_map = from;
}

/* One walk of the flows map into the reconcile, PF_LIVE_BATCH entries at
 * a time: first to stash handshakes and learn local ends (@report false),
 * then to report. */
struct map_walk {
	struct pf_collector *c;
	bool report;
	size_t n;	/* entries in c->live */
	uint64_t total; /* entries read */
	long unowned;	/* first walk: entries whose socket has no owner */
	bool broken;	/* started over after entries were taken */
};

static int map_flush(struct map_walk *w)
{
	long r = 0;

	if (w->n && w->report) {
		r = pf_flow_rc__report_map(w->c->rc, w->c->live, w->n);
		drop_completed(w->c);
	} else if (w->n) {
		r = pf_flow_rc__prepare(w->c->rc, w->c->live, w->n);
	}
	w->n = 0;
	if (r < 0)
		return (int)r;
	w->unowned += r;
	return 0;
}

static int add_map_flow(void *ctx, const void *key, const void *val)
{
	struct map_walk *w = ctx;
	struct pf_flow_ent *e;

	if (w->broken)
		return -EIO;
	e = &w->c->live[w->n++];
	memcpy(&e->k, key, sizeof(e->k));
	memcpy(&e->v, val, sizeof(e->v));
	w->total++;
	return w->n == PF_LIVE_BATCH ? map_flush(w) : 0;
}

/* A batch walk the kernel refused part-way starts over key by key: what
 * was handed over (handshakes stashed, flows reported) cannot be taken
 * back, so such a walk stops there; the rest waits for the next read. */
static void map_walk_reset(void *ctx)
{
	struct map_walk *w = ctx;

	if (w->total)
		w->broken = true;
	w->n = 0;
}

static int walk_flows_map(struct pf_collector *c, bool report, struct map_walk *w)
{
	int err;

	memset(w, 0, sizeof(*w));
	w->c = c;
	w->report = report;
	err = walk_map(c, c->flows_fd, sizeof(struct pf_flow_key), sizeof(struct pf_flow_val),
		       add_map_flow, map_walk_reset, w);
	if (!err)
		err = map_flush(w);
	return err;
}

/* ---- the live TCP connections ---- */

/* One walk of the socket-storage iterator, a batch at a time into the
 * reconcile: to learn the local ends (@learn), or to report. */
struct live_walk {
	struct pf_collector *c;
	bool learn;
	size_t n;	/* records in c->live */
	uint64_t total; /* records read */
};

static int live_flush(struct live_walk *w)
{
	int err = 0;

	if (w->learn) {
		pf_flow_rc__learn(w->c->rc, w->c->live, w->c->live_socks, w->n);
	} else {
		err = pf_flow_rc__report_live(w->c->rc, w->c->live, w->c->live_socks, w->n);
		drop_completed(w->c);
	}
	w->n = 0;
	return err;
}

static int add_live(const void *rec, void *ctx)
{
	const struct pf_sk_read *r = rec;
	const struct pf_sk_flow *f = &r->f;
	struct live_walk *w = ctx;
	struct pf_sock_ent *se = &w->c->live_socks[w->n];
	struct pf_flow_ent *e = &w->c->live[w->n++];

	se->cookie = r->has_sock ? f->cookie : 0;
	if (r->has_sock)
		se->v = r->s;

	memset(e, 0, sizeof(*e));
	e->k.cookie = f->cookie;
	memcpy(e->k.laddr, f->laddr, 16);
	memcpy(e->k.raddr, f->raddr, 16);
	e->k.lport = f->lport;
	e->k.rport = f->rport;
	e->k.proto = f->proto;
	e->v.bytes_in = f->bytes_in;
	e->v.bytes_out = f->bytes_out;
	e->v.pkts_in = f->pkts_in;
	e->v.pkts_out = f->pkts_out;
	e->v.first_ns = f->first_ns;
	e->v.role = f->role;
	w->total++;
	return w->n == PF_LIVE_BATCH ? live_flush(w) : 0;
}

/* Every live TCP connection through the reconcile. */
static int walk_live(struct pf_collector *c, bool learn, uint64_t *total)
{
	struct live_walk w = {.c = c, .learn = learn};
	int err = pf_loader__read_sk_flows(c->loader, add_live, &w);

	if (!err)
		err = live_flush(&w);
	if (total)
		*total = w.total;
	return err;
}
/* ---- the sockets ---- */

/*
 * One walk of the socks map: the listening sockets are kept (the owners of
 * last resort for accepted connections, few), the sockets closed before
 * the collection began are listed for deletion (every flow of theirs is
 * read after their close), and the rest are only counted: the reconcile
 * asks the kernel for a flow's socket as it needs it, so that a node with
 * 200,000 sockets does not hold a copy of each.
 */
struct sock_list {
	struct pf_sock_ent *ents; /* the listening sockets */
	size_t n, cap;
	uint64_t *closed; /* sockets to delete */
	size_t n_closed, cap_closed;
	uint64_t now_ns;
	uint64_t total; /* entries walked */
};

static int push(void **arr, size_t *n, size_t *cap, size_t size, const void *item)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 64;
		void *na = realloc(*arr, ncap * size);

		if (!na)
			return -ENOMEM;
		*arr = na;
		*cap = ncap;
	}
	memcpy((char *)*arr + *n * size, item, size);
	(*n)++;
	return 0;
}

static int add_sock(void *ctx, const void *key, const void *val)
{
	struct sock_list *l = ctx;
	const struct pf_sock_val *v = val;
	struct pf_sock_ent e;

	l->total++;
	if (v->listener) {
		memcpy(&e.cookie, key, sizeof(e.cookie));
		e.v = *v;
		return push((void **)&l->ents, &l->n, &l->cap, sizeof(e), &e);
	}
	if (v->closed_ns && v->closed_ns <= l->now_ns)
		return push((void **)&l->closed, &l->n_closed, &l->cap_closed, sizeof(uint64_t),
			    key);
	return 0;
}

static void sock_list_reset(void *ctx)
{
	struct sock_list *l = ctx;

	l->n = l->n_closed = 0;
	l->total = 0;
}

static int read_socks(struct pf_collector *c, struct sock_list *l, uint64_t now_ns)
{
	sock_list_reset(l);
	l->now_ns = now_ns;
	return walk_map(c, c->socks_fd, sizeof(uint64_t), sizeof(struct pf_sock_val), add_sock,
			sock_list_reset, l);
}

/* A flow's socket, from the kernel (struct pf_flow_read's sock_lookup). */
static int sock_lookup(void *ctx, uint64_t cookie, struct pf_sock_val *out)
{
	const struct pf_collector *c = ctx;

	return bpf_map_lookup_elem(c->socks_fd, &cookie, out) ? -ENOENT : 0;
}

/* ---- the container identities, for the reconcile ---- */

static const struct pf_flow_ep *eps_local(void *ctx, uint64_t cgroup_id, uint32_t pid)
{
	return pf_containers__ep(ctx, cgroup_id, pid);
}

static bool eps_any(void *ctx)
{
	return pf_containers__any(ctx);
}

static void eps_book_reset(void *ctx)
{
	pf_containers__book_reset(ctx);
}

static void eps_book_add(void *ctx, const uint8_t addr[16], uint16_t port, uint8_t proto,
			 const struct pf_flow_ep *ep)
{
	pf_containers__book_add(ctx, addr, port, proto, ep);
}

static const struct pf_flow_ep *eps_book_find(void *ctx, const uint8_t addr[16], uint16_t port,
					      uint8_t proto)
{
	return pf_containers__book_find(ctx, addr, port, proto);
}

/* ---- one collection ---- */

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Keep the first error of a collection's steps in *@first: the one the log
 * names. Returns whether @err is one. */
static bool keep_err(int *first, int err)
{
	if (err && !*first)
		*first = err;
	return err != 0;
}

int pf_collector__collect(struct pf_collector *c, uint64_t now_ns)
{
	const struct pf_flow_rc_eps eps = {
	    .local = eps_local,
	    .any = eps_any,
	    .book_reset = eps_book_reset,
	    .book_add = eps_book_add,
	    .book_find = eps_book_find,
	    .ctx = c->ctrs,
	};
	const struct pf_flow_rc_opts opts = {
	    .interval_ns = (uint64_t)c->cfg->flush_interval_s * 1000000000ull,
	    .udp_idle_ns = (uint64_t)c->cfg->udp_idle_s * 1000000000ull,
	    .process_info = c->cfg->process_info,
	    .process_path = c->cfg->process_path,
	    .tcp_stats = c->cfg->tcp_stats,
	};
	struct pf_flow_read rd = {.now_ns = now_ns};
	struct sock_list socks = {0};
	struct map_walk mw;
	struct pf_flow_rc_stats st;
	size_t deleted;
	uint64_t t0 = mono_ns(), n_live = 0;
	bool incomplete = false;
	int err, step_err, read_err = 0;

	c->n_completed = 0;
	err = read_socks(c, &socks, now_ns);
	if (err)
		goto out;
	/* An exec event is in the ring buffer before the process can touch
	 * a socket: draining after the read makes every claim resolvable. */
	if (c->drain)
		c->drain(c->drain_ctx);
	rd.socks = socks.ents;
	rd.n_socks = socks.n;
	rd.sock_lookup = sock_lookup;
	rd.sock_ctx = c;
	err = pf_flow_rc__begin(c->rc, &rd, &opts, c->procs, &eps, c->agg, &c->dels);
	if (err)
		goto out;

	/* The flows map, first pass: handshakes and local ends. */
	step_err = walk_flows_map(c, false, &mw);
	incomplete |= keep_err(&read_err, step_err);
	c->dels_mark = c->dels.n_flows;
	c->n_map_deleted = c->n_dels = 0;
	/* Sockets the kernel saw traffic on but no owner for were opened
	 * before the agent started: ask the iterator, once per flush, and
	 * read the sockets again. Live connections are read last: one
	 * without an owner in the last collection asks too. */
	if ((mw.unowned > 0 || c->n_unowned_live) && c->loader) {
		c->n_iter_runs++;
		if (!pf_loader__scan_sockets(c->loader)) {
			step_err = read_socks(c, &socks, now_ns);
			incomplete |= keep_err(&read_err, step_err);
			step_err = pf_flow_rc__resocks(c->rc, socks.ents, socks.n);
			incomplete |= keep_err(&read_err, step_err);
			if (c->drain)
				c->drain(c->drain_ctx);
		}
	}
	/* A flow between two containers of this node names both ends: the
	 * local ends of live connections are learnt before any report, in a
	 * walk of their own (only where containers are known). */
	if (c->loader && eps_any(c->ctrs) && walk_live(c, true, NULL))
		pf_log("the live TCP connections' local ends could not be read: a connection "
		       "between two containers may name only one of them this interval");
	/* Second pass: the reports, the flows map's entries, then the live
	 * connections. */
	step_err = walk_flows_map(c, true, &mw);
	incomplete |= keep_err(&read_err, step_err);
	c->n_flows_map = mw.total;
	if (!step_err && c->loader) {
		step_err = walk_live(c, false, &n_live);
		incomplete |= keep_err(&read_err, step_err);
	}
	pf_flow_rc__end(c->rc, incomplete);
	c->n_sk_flows = n_live;
	c->n_entries = mw.total + n_live;
	pf_flow_rc__stats(c->rc, &st);
	c->n_completed = st.completed;
	c->n_unowned = st.unowned;
	c->n_expired = st.expired_total;
	c->n_agg_nomem = st.agg_nomem_total;
	c->n_dropped = st.dropped;
	c->n_unowned_live = st.unowned_live;
	if (st.expired)
		pf_log("%llu flows ended without their final counters (the flow map full when "
		       "their socket closed, or the kernel ran no hook at the close): completed "
		       "with the counters last read, their last bytes are not reported",
		       (unsigned long long)st.expired);
	if (st.hs_dropped_total > c->n_hs_dropped)
		pf_log("%llu handshakes not reported: more than %u waiting for their connection",
		       (unsigned long long)(st.hs_dropped_total - c->n_hs_dropped),
		       c->cfg->max_flows);
	c->n_hs_dropped = st.hs_dropped_total;
	if (st.restarted)
		pf_debug("%llu flows counted again from zero under a key already known: "
			 "reported as new flows",
			 (unsigned long long)st.restarted);
	/* What was read is reported and the rest stays counted in the kernel
	 * for the next read: say why. */
	if (read_err)
		pf_log("the kernel's flows not all read this interval (%s): the rest are reported "
		       "at the next",
		       strerror(-read_err));

	/* What ended and is not deleted yet (the handshake entries, what
	 * the last batch completed) and the closed sockets go from the kernel
	 * maps. */
	c->dels_mark = 0;
	drop_completed(c);
	c->n_flows_map -= c->n_map_deleted < c->n_flows_map ? c->n_map_deleted : c->n_flows_map;
	deleted = delete_keys(c, c->socks_fd, c->dels.socks, sizeof(uint64_t), c->dels.n_socks);
	deleted += delete_keys(c, c->socks_fd, socks.closed, sizeof(uint64_t), socks.n_closed);
	c->n_socks_map = socks.total - (deleted < socks.total ? deleted : socks.total);
	pf_debug(
	    "collection: %llu flows and %zu sockets read, %llu and %zu deleted, in %.3f ms (%s)",
	    (unsigned long long)c->n_entries, (size_t)socks.total, (unsigned long long)c->n_dels,
	    c->dels.n_socks + socks.n_closed, (double)(mono_ns() - t0) / 1e6,
	    c->batch ? "batch" : "key by key");
out:
	free(socks.ents);
	free(socks.closed);
	return err;
}
