// SPDX-License-Identifier: BSD-2-Clause
/*
 * The collector: once per interval, turn the kernel's maps into flow
 * observations for the aggregator.
 *
 * The kernel keeps cumulative counters per (socket cookie, local address,
 * peer) in the flows map and the owner of each socket in the socks map.
 * Here we:
 *   1. read every flow entry;
 *   2. read the socket of each (running the task_file iterator once when a
 *      socket has no owner yet: it predates the agent);
 *   3. move handshake counters (counted on a listening socket) into a
 *      stash keyed by the connection's 5-tuple, to be added to the
 *      accepted connection's flow;
 *   4. report each flow's increase since the last interval, with the
 *      process that owned its socket when the socket was claimed;
 *   5. forget completed flows and closed sockets, in the kernel and here.
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "containers.h"
#include "flow_agg.h"
#include "hmap.h"
#include "proc_cache.h"
#include "procflow.skel.h"
#include "procflow/abi.h"

/* What was already reported of a flow that is still open. */
struct prev_val {
	uint64_t bytes_in, bytes_out, pkts_in, pkts_out;
	uint64_t flow_id;
	uint64_t seen; /* the last collection (c->gen) that read the flow */
};

/* A flow not read by this many collections in a row has no counters left
 * in the kernel: its socket is gone without a final copy (see
 * expire_unseen()). Two, not one: a socket closing during a read may be
 * missed by both the flows map walk and the storage iterator once. */
#define PF_UNSEEN_EXPIRY 2

/* A flow as the log knows it: 5-tuple and network namespace. */
struct user_key {
	uint64_t netns;
	uint8_t laddr[16];
	uint8_t raddr[16];
	uint16_t lport, rport;
	uint8_t proto;
	uint8_t pad[7];
};

struct hs_val {
	uint64_t bytes_in, bytes_out, pkts_in, pkts_out;
	uint64_t cookie; /* the listener */
	uint64_t first_ns;
};

struct sock_ent {
	struct pf_sock_val v;
	int found;
};

/* A listening socket, by namespace and port. */
struct listen_key {
	uint64_t netns;
	uint32_t port;
	uint32_t pad;
};

struct flow_ent {
	struct pf_flow_key k;
	struct pf_flow_val v;
};

int pf_collector__init(struct pf_collector *c, struct pf_loader *l, struct pf_proc_cache *procs,
		       struct pf_agg *agg, const struct pf_config *cfg)
{
	memset(c, 0, sizeof(*c));
	c->loader = l;
	c->flows_fd = l ? bpf_map__fd(l->skel->maps.flows) : -1;
	c->socks_fd = l ? bpf_map__fd(l->skel->maps.socks) : -1;
	c->procs = procs;
	c->agg = agg;
	c->cfg = cfg;
	c->next_flow_id = 1;
	/* Live TCP connections count in socket storage, which has no bound of
	 * its own; the per-flow state here is bounded generously instead (it
	 * grows only as used) and what does not fit is counted. */
	c->prev = pf_hmap__new(sizeof(struct pf_flow_key), sizeof(struct prev_val),
			       PF_COLLECTOR_FLOWS_MAX);
	c->handshakes = pf_hmap__new(sizeof(struct user_key), sizeof(struct hs_val), cfg->max_flows);
	c->socks = pf_hmap__new(sizeof(uint64_t), sizeof(struct sock_ent), cfg->max_sockets);
	c->listeners =
	    pf_hmap__new(sizeof(struct listen_key), sizeof(struct pf_sock_val), cfg->max_sockets);
	if (!c->prev || !c->handshakes || !c->socks || !c->listeners) {
		pf_collector__fini(c);
		return -ENOMEM;
	}
	return 0;
}

void pf_collector__fini(struct pf_collector *c)
{
	pf_hmap__free(c->prev);
	pf_hmap__free(c->handshakes);
	pf_hmap__free(c->socks);
	pf_hmap__free(c->listeners);
	c->prev = c->handshakes = c->socks = c->listeners = NULL;
}

/* The socket behind @cookie as the kernel has it now (cached per flush). */
static const struct pf_sock_val *sock_get(struct pf_collector *c, uint64_t cookie)
{
	struct sock_ent *e;
	int created;

	e = pf_hmap__upsert(c->socks, &cookie, &created);
	if (!e)
		return NULL;
	if (created)
		e->found = !bpf_map_lookup_elem(c->socks_fd, &cookie, &e->v);
	return e->found ? &e->v : NULL;
}

static void socks_forget(struct pf_collector *c)
{
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;

	while (pf_hmap__next(c->socks, &it, &k, &v))
		pf_hmap__remove(c->socks, k);
}

static void user_key_of(struct user_key *uk, const struct pf_flow_key *k,
			const struct pf_sock_val *s)
{
	memset(uk, 0, sizeof(*uk));
	uk->netns = s ? s->netns : 0;
	memcpy(uk->laddr, k->laddr, 16);
	memcpy(uk->raddr, k->raddr, 16);
	uk->lport = k->lport;
	uk->rport = k->rport;
	uk->proto = k->proto;
}

/*
 * Index the listening sockets by (namespace, port): the owner of last
 * resort for a connection accepted by a process that neither passed an
 * address to accept() nor kept the socket open until the flush (a
 * pre-fork child that served one request and exited). The listener's
 * program is the server's program.
 */
static void index_listeners(struct pf_collector *c)
{
	uint64_t key, next, *prev = NULL;
	struct pf_sock_val v;
	struct pf_hmap_iter it = {0};
	const void *k;
	void *val;

	while (pf_hmap__next(c->listeners, &it, &k, &val))
		pf_hmap__remove(c->listeners, k);
	while (!bpf_map_get_next_key(c->socks_fd, prev, &next)) {
		struct listen_key lk = {0};
		struct pf_sock_val *slot;

		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(c->socks_fd, &key, &v) || !v.listener || !v.tgid ||
		    v.closed_ns)
			continue;
		lk.netns = v.netns;
		lk.port = v.lport;
		slot = pf_hmap__upsert(c->listeners, &lk, NULL);
		if (slot)
			*slot = v;
	}
}

/*
 * Fill the process fields of @o from the owner of socket @s. @active_ns is
 * when the flow last carried traffic, if known (else 0).
 */
static void resolve_process(struct pf_collector *c, const struct pf_sock_val *s,
			    struct pf_flow_obs *o, uint64_t active_ns)
{
	const struct pf_proc *p, *later;

	o->proc_name = NULL;
	o->proc_args = NULL;
	o->proc_pid = 0;
	if (s && !s->tgid && !s->listener && o->proto == IPPROTO_TCP &&
	    o->reporter == PF_REPORTER_DST) {
		struct listen_key lk = {.netns = s->netns, .port = o->lport};

		s = pf_hmap__find(c->listeners, &lk);
	}
	if (!s || !s->tgid)
		return;
	p = pf_proc_cache__lookup(c->procs, s->tgid, s->ts_ns);
	/* The container is named whether or not processes are. */
	o->local_ep = pf_containers__ep(c->ctrs, p ? p->cgroup_id : 0, s->tgid);
	if (!c->cfg->process_info)
		return;
	o->proc_pid = s->tgid;
	/* The owner ran another program at the claim than the one we know:
	 * its exec event was lost. The task name is right; the path is not. */
	if (p && p->has_exec_id && p->exec_id != s->exec_id)
		p = NULL;
	/* The same process ran another program when the flow last carried
	 * traffic: it exec'd with the socket open, and no hook re-claimed the
	 * socket since (TCP in the tracepoint tier has no per-message hook).
	 * The traffic is the new program's. Only within one life of the PID:
	 * a PID taken again by another process is not the claimer. */
	if (p && active_ns > s->ts_ns) {
		later = pf_proc_cache__lookup(c->procs, s->tgid, active_ns);
		if (later && later != p && later->start_ns == p->start_ns)
			p = later;
	}
	if (p && c->cfg->process_path && p->path) {
		o->proc_name = p->path;
		o->proc_args = p->args;
	} else if (p && p->comm[0]) {
		o->proc_name = p->comm;
	} else if (s->comm[0]) {
		/* The task name captured with the socket: the last resort. */
		o->proc_name = s->comm;
	}
}

/* When the flow of @e last carried traffic, as far as known: the last
 * packet of a flows map entry (@from_map); for a live TCP connection that
 * carried bytes since the last read (socket storage keeps no time), this
 * read: whoever holds the socket now. 0 when it carried none. */
static uint64_t active_ns(const struct pf_collector *c, const struct flow_ent *e, bool from_map,
			  const struct pf_flow_obs *o)
{
	if (!o->bytes_in && !o->bytes_out)
		return 0;
	return from_map ? e->v.last_ns : c->read_ns;
}

static enum pf_reporter reporter_of(const struct pf_flow_key *k, const struct pf_flow_val *v,
				    const struct pf_sock_val *s)
{
	uint32_t role = v->role;

	if (role == PF_ROLE_UNKNOWN && s)
		role = s->role;
	if (role == PF_ROLE_SRC)
		return PF_REPORTER_SRC;
	if (role == PF_ROLE_DST)
		return PF_REPORTER_DST;
	/* A connection older than the agent: the side on the lower port is
	 * most likely the server. */
	return k->lport < k->rport ? PF_REPORTER_DST : PF_REPORTER_SRC;
}

static void tcp_sample(const struct pf_collector *c, const struct pf_sock_val *s,
		       struct pf_flow_obs *o)
{
	if (!c->cfg->tcp_stats || !s || !s->closed_ns || o->proto != IPPROTO_TCP || !s->mss)
		return;
	o->has_tcp = 1;
	o->tcp_cwnd = s->snd_cwnd;
	o->tcp_srtt_us = s->srtt_us;
	o->tcp_min_rtt_us = s->min_rtt_us;
	o->tcp_mss = s->mss;
	o->tcp_retrans = s->total_retrans;
	o->tcp_lost = s->lost_out;
}

struct flow_list {
	struct flow_ent *ents;
	size_t n, cap;
	uint64_t dropped;      /* flows beyond PF_COLLECTOR_FLOWS_MAX */
	struct pf_hmap *index; /* flow key -> position + 1 */
};

static struct flow_ent *flow_list_add(struct flow_list *l)
{
	if (l->n == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 1024;
		struct flow_ent *ne = realloc(l->ents, ncap * sizeof(*ne));

		if (!ne)
			return NULL;
		l->ents = ne;
		l->cap = ncap;
	}
	return &l->ents[l->n];
}

static uint64_t max_u64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* A live TCP connection's counters. If the connection closed meanwhile,
 * its final copy is in the list already: keep the larger counts. */
static int add_sk_flow(const void *rec, void *ctx)
{
	const struct pf_sk_flow *f = rec;
	struct flow_list *l = ctx;
	struct pf_flow_key k;
	struct flow_ent *e;
	size_t *pos;
	int created;

	memset(&k, 0, sizeof(k));
	k.cookie = f->cookie;
	memcpy(k.laddr, f->laddr, 16);
	memcpy(k.raddr, f->raddr, 16);
	k.lport = f->lport;
	k.rport = f->rport;
	k.proto = f->proto;
	pos = pf_hmap__upsert(l->index, &k, &created);
	if (!pos) {
		l->dropped++;
		return 0;
	}
	if (!created) {
		e = &l->ents[*pos - 1];
		e->v.bytes_in = max_u64(e->v.bytes_in, f->bytes_in);
		e->v.bytes_out = max_u64(e->v.bytes_out, f->bytes_out);
		e->v.pkts_in = max_u64(e->v.pkts_in, f->pkts_in);
		e->v.pkts_out = max_u64(e->v.pkts_out, f->pkts_out);
		return 0;
	}
	e = flow_list_add(l);
	if (!e) {
		pf_hmap__remove(l->index, &k);
		return -ENOMEM;
	}
	memset(e, 0, sizeof(*e));
	e->k = k;
	e->v.bytes_in = f->bytes_in;
	e->v.bytes_out = f->bytes_out;
	e->v.pkts_in = f->pkts_in;
	e->v.pkts_out = f->pkts_out;
	e->v.first_ns = f->first_ns;
	e->v.role = f->role;
	l->n++;
	*pos = l->n;
	return 0;
}

/* Every flow the kernel counts: the flows map (UDP, handshakes, closed TCP
 * connections), then the socket storage of live TCP connections. */
static int read_flows(struct pf_collector *c, struct flow_ent **out, size_t *n)
{
	struct flow_list l = {0};
	struct pf_flow_key key, next;
	void *prev = NULL;
	int err = 0;

	l.index = pf_hmap__new(sizeof(struct pf_flow_key), sizeof(size_t), PF_COLLECTOR_FLOWS_MAX);
	if (!l.index)
		return -ENOMEM;
	c->n_flows_map = 0;
	c->n_sk_flows = 0;
	while (!bpf_map_get_next_key(c->flows_fd, prev, &next)) {
		struct flow_ent *e = flow_list_add(&l);
		size_t *pos;

		key = next;
		prev = &key;
		if (!e) {
			err = -ENOMEM;
			goto out;
		}
		if (bpf_map_lookup_elem(c->flows_fd, &key, &e->v))
			continue; /* deleted meanwhile */
		e->k = key;
		l.n++;
		c->n_flows_map++;
		pos = pf_hmap__upsert(l.index, &key, NULL);
		if (pos)
			*pos = l.n;
	}
	if (c->loader)
		err = pf_loader__read_sk_flows(c->loader, add_sk_flow, &l);
	c->n_sk_flows = l.n - c->n_flows_map;
out:
	pf_hmap__free(l.index);
	c->n_dropped += l.dropped;
	c->read_incomplete = l.dropped > 0;
	if (err) {
		free(l.ents);
		return err;
	}
	*out = l.ents;
	*n = l.n;
	return 0;
}

/*
 * Forget flows whose counters the kernel no longer has. A TCP connection's
 * live counters are in its socket storage, and its final ones are copied
 * into the flows map when it closes; when that map is full the copy fails
 * (counted in the kernel as PF_STAT_FLOWS_FULL) and the flow is never read
 * again. Without this its state here would stay forever. Its bytes since
 * the last flush are lost: counted, and logged once per flush.
 */
static void expire_unseen(struct pf_collector *c)
{
	struct pf_hmap_iter it = {0};
	uint64_t expired = 0;
	const void *k;
	void *v;

	/* A read that left flows out saw less than what exists. */
	if (c->read_incomplete)
		return;
	while (pf_hmap__next(c->prev, &it, &k, &v)) {
		const struct prev_val *p = v;

		if (p->seen + PF_UNSEEN_EXPIRY > c->gen)
			continue;
		pf_hmap__remove(c->prev, k);
		expired++;
	}
	if (expired)
		pf_log("%llu flows ended without their final counters (flow map full when their "
		       "socket closed): their last bytes are not reported",
		       (unsigned long long)expired);
	c->n_expired += expired;
}

struct dead_list {
	uint64_t *keys;
	size_t n, cap;
};

static int dead_add(struct dead_list *d, uint64_t key)
{
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 256;
		uint64_t *nk = realloc(d->keys, ncap * sizeof(*nk));

		if (!nk)
			return -ENOMEM;
		d->keys = nk;
		d->cap = ncap;
	}
	d->keys[d->n++] = key;
	return 0;
}

/* The sockets map a batch at a time: one system call per PF_SOCKS_BATCH
 * entries rather than two per entry. Its cursor is a bucket, not a key, so
 * entries the kernel deletes meanwhile (a socket released) do not send the
 * walk back to the start as a vanished key does with get_next_key. */
#define PF_SOCKS_BATCH 256

static int walk_socks_batch(struct pf_collector *c, uint64_t now_ns, struct dead_list *d)
{
	uint64_t keys[PF_SOCKS_BATCH], cursor = 0;
	struct pf_sock_val vals[PF_SOCKS_BATCH];
	bool first = true;

	for (;;) {
		__u32 count = PF_SOCKS_BATCH;
		int err = bpf_map_lookup_batch(c->socks_fd, first ? NULL : &cursor, &cursor, keys,
					       vals, &count, NULL);

		err = err ? -errno : 0;
		if (err && err != -ENOENT)
			return err;
		first = false;
		for (__u32 i = 0; i < count; i++) {
			c->n_socks_map++;
			if (vals[i].closed_ns && vals[i].closed_ns <= now_ns &&
			    dead_add(d, keys[i]))
				return 0; /* out of memory: the rest waits for the next flush */
		}
		if (err == -ENOENT)
			return 0;
	}
}

/* Delete the entries of sockets that closed before this collection began,
 * and count the map's entries on the way (the occupancy line). */
static void sweep_closed_socks(struct pf_collector *c, uint64_t now_ns)
{
	struct dead_list d = {0};

	c->n_socks_map = 0;
	if (walk_socks_batch(c, now_ns, &d)) {
		/* No batch lookup (or it failed): key by key. */
		uint64_t key, next, *prev = NULL;
		struct pf_sock_val v;

		c->n_socks_map = 0;
		d.n = 0;
		while (!bpf_map_get_next_key(c->socks_fd, prev, &next)) {
			key = next;
			prev = &key;
			c->n_socks_map++;
			if (bpf_map_lookup_elem(c->socks_fd, &key, &v) || !v.closed_ns ||
			    v.closed_ns > now_ns)
				continue;
			if (dead_add(&d, key))
				break;
		}
	}
	for (size_t i = 0; i < d.n; i++)
		if (!bpf_map_delete_elem(c->socks_fd, &d.keys[i]))
			c->n_socks_map--;
	free(d.keys);
}

/* Which container holds the local end of each flow read, so that a flow
 * between two containers of this node names its remote end too. */
static void learn_endpoints(struct pf_collector *c, const struct flow_ent *ents, size_t n)
{
	pf_containers__book_reset(c->ctrs);
	/* A host without containers pays nothing for this pass. */
	for (size_t i = 0; pf_containers__any(c->ctrs) && i < n; i++) {
		const struct pf_sock_val *s = sock_get(c, ents[i].k.cookie);
		struct pf_flow_obs o = {.proto = ents[i].k.proto, .lport = ents[i].k.lport};

		if (ents[i].v.flags & PF_FLOW_LISTENER)
			continue;
		o.reporter = reporter_of(&ents[i].k, &ents[i].v, s);
		resolve_process(c, s, &o, 0);
		if (o.local_ep)
			pf_containers__book_add(c->ctrs, ents[i].k.laddr, ents[i].k.lport,
						ents[i].k.proto, o.local_ep);
	}
}

int pf_collector__collect(struct pf_collector *c, uint64_t now_ns)
{
	const uint64_t interval_ns = (uint64_t)c->cfg->flush_interval_s * 1000000000ull;
	const uint64_t udp_idle_ns = (uint64_t)c->cfg->udp_idle_s * 1000000000ull;
	struct flow_ent *ents = NULL;
	size_t n = 0, unowned = 0, nmap;
	struct pf_hmap_iter it = {0};
	const void *hk;
	void *hv;
	int err;

	c->n_completed = 0;
	c->gen++;
	c->read_ns = now_ns;
	socks_forget(c);
	err = read_flows(c, &ents, &n);
	if (err)
		return err;
	c->n_entries = n;
	nmap = c->n_flows_map; /* ents[0..nmap) came from the flows map */

	/* Sockets the kernel saw traffic on but no owner for were opened
	 * before the agent started: ask the iterator, once per flush. */
	for (size_t i = 0; i < n; i++) {
		const struct pf_sock_val *s = sock_get(c, ents[i].k.cookie);

		if (!s || !s->tgid)
			unowned++;
	}
	if (unowned && c->loader) {
		c->n_iter_runs++;
		if (!pf_loader__scan_sockets(c->loader))
			socks_forget(c);
	}
	if (unowned)
		index_listeners(c);
	/* An exec event is in the ring buffer before the process can touch
	 * a socket: draining after the reads makes every claim resolvable. */
	for (size_t i = 0; i < n; i++)
		sock_get(c, ents[i].k.cookie);
	if (c->drain)
		c->drain(c->drain_ctx);

	/* Handshake packets counted on a listener: stash them under the
	 * connection's 5-tuple and take them out of the kernel map. */
	for (size_t i = 0; i < n; i++) {
		struct flow_ent *e = &ents[i];
		const struct pf_sock_val *s;
		struct user_key uk;
		struct hs_val *h;
		int created;

		if (!(e->v.flags & PF_FLOW_LISTENER))
			continue;
		s = sock_get(c, e->k.cookie);
		user_key_of(&uk, &e->k, s);
		h = pf_hmap__upsert(c->handshakes, &uk, &created);
		if (h) {
			if (created) {
				h->cookie = e->k.cookie;
				h->first_ns = now_ns;
			}
			h->bytes_in += e->v.bytes_in;
			h->bytes_out += e->v.bytes_out;
			h->pkts_in += e->v.pkts_in;
			h->pkts_out += e->v.pkts_out;
		}
		bpf_map_delete_elem(c->flows_fd, &e->k);
		c->n_flows_map--; /* listener entries all come from the flows map */
	}

	learn_endpoints(c, ents, n);
	c->n_unowned = 0;
	for (size_t i = 0; i < n; i++) {
		struct flow_ent *e = &ents[i];
		const struct pf_sock_val *s;
		struct pf_flow_obs o;
		struct prev_val *p;
		struct user_key uk;
		struct hs_val *h;
		int created, done;

		if (e->v.flags & PF_FLOW_LISTENER)
			continue;
		s = sock_get(c, e->k.cookie);
		p = pf_hmap__upsert(c->prev, &e->k, &created);
		if (!p) {
			c->n_dropped++; /* more live flows than PF_COLLECTOR_FLOWS_MAX */
			continue;
		}
		memset(&o, 0, sizeof(o));
		if (created)
			p->flow_id = c->next_flow_id++;
		p->seen = c->gen;
		o.flow_id = p->flow_id;
		o.started = created;
		o.netns = s ? s->netns : 0;
		memcpy(o.laddr, e->k.laddr, 16);
		memcpy(o.raddr, e->k.raddr, 16);
		o.lport = e->k.lport;
		o.rport = e->k.rport;
		o.proto = e->k.proto;
		o.reporter = reporter_of(&e->k, &e->v, s);
		o.bytes_in = e->v.bytes_in - p->bytes_in;
		o.bytes_out = e->v.bytes_out - p->bytes_out;
		o.packets_in = e->v.pkts_in - p->pkts_in;
		o.packets_out = e->v.pkts_out - p->pkts_out;
		p->bytes_in = e->v.bytes_in;
		p->bytes_out = e->v.bytes_out;
		p->pkts_in = e->v.pkts_in;
		p->pkts_out = e->v.pkts_out;

		user_key_of(&uk, &e->k, s);
		h = pf_hmap__find(c->handshakes, &uk);
		if (h) {
			o.bytes_in += h->bytes_in;
			o.bytes_out += h->bytes_out;
			o.packets_in += h->pkts_in;
			o.packets_out += h->pkts_out;
			pf_hmap__remove(c->handshakes, &uk);
		}

		/* Completed: its socket closed before this read began; or, for
		 * a socket the kernel side has no entry for, it went quiet. */
		if (e->v.flags & PF_FLOW_CLOSED)
			done = 1; /* the final copy of a closed TCP connection */
		else if (s && s->closed_ns && s->closed_ns <= now_ns)
			done = 1;
		else if (e->k.proto == IPPROTO_UDP && e->v.last_ns + udp_idle_ns < now_ns)
			done = 1;
		else if (!s && (e->v.flags & PF_FLOW_FIN) && e->v.last_ns + interval_ns < now_ns)
			done = 1;
		else if (!s && e->v.last_ns + udp_idle_ns < now_ns)
			done = 1;
		else
			done = 0;
		o.completed = done;

		if (!s || !s->tgid)
			c->n_unowned++;
		resolve_process(c, s, &o, active_ns(c, e, i < nmap, &o));
		o.remote_ep = pf_containers__book_find(c->ctrs, o.raddr, o.rport, o.proto);
		tcp_sample(c, s, &o);
		if (pf_agg__add(c->agg, &o) == -ENOMEM)
			c->n_agg_nomem++; /* -ENOSPC is counted in pf_agg__dropped() */

		if (done) {
			bpf_map_delete_elem(c->flows_fd, &e->k);
			pf_hmap__remove(c->prev, &e->k);
			c->n_completed++;
			if (i < nmap)
				c->n_flows_map--;
		}
	}
	expire_unseen(c);

	/* Handshakes whose connection was never accepted (or not yet, after
	 * two intervals): report them on the listener's process. */
	while (pf_hmap__next(c->handshakes, &it, &hk, &hv)) {
		const struct user_key *uk = hk;
		struct hs_val *h = hv;
		struct pf_flow_obs o;

		if (h->first_ns + 2 * interval_ns > now_ns)
			continue;
		memset(&o, 0, sizeof(o));
		o.flow_id = c->next_flow_id++;
		o.started = 1;
		o.completed = 1;
		o.netns = uk->netns;
		memcpy(o.laddr, uk->laddr, 16);
		memcpy(o.raddr, uk->raddr, 16);
		o.lport = uk->lport;
		o.rport = uk->rport;
		o.proto = uk->proto;
		o.reporter = PF_REPORTER_DST;
		o.bytes_in = h->bytes_in;
		o.bytes_out = h->bytes_out;
		o.packets_in = h->pkts_in;
		o.packets_out = h->pkts_out;
		resolve_process(c, sock_get(c, h->cookie), &o, 0);
		o.remote_ep = pf_containers__book_find(c->ctrs, o.raddr, o.rport, o.proto);
		if (pf_agg__add(c->agg, &o) == -ENOMEM)
			c->n_agg_nomem++; /* -ENOSPC is counted in pf_agg__dropped() */
		pf_hmap__remove(c->handshakes, hk);
	}

	/* Closed sockets: every flow of theirs was read after they closed
	 * and has completed above. */
	sweep_closed_socks(c, now_ns);
	free(ents);
	return 0;
}
