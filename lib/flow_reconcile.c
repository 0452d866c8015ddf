// SPDX-License-Identifier: BSD-2-Clause
/*
 * The collector's pure half (see flow_reconcile.h): one read of the kernel's
 * maps in, this interval's observations out.
 *
 * State kept between reads: what was already reported of each flow still
 * open (prev), handshake counters waiting for their accepted connection
 * (handshakes), and the flow ids. Per read: an index of the sockets read
 * (cookie -> entry) and of the listening sockets among them.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "flow_reconcile.h"
#include "hmap.h"
#include "proc_cache.h"

/* What was already reported of a flow that is still open. */
struct prev_val {
	uint64_t bytes_in, bytes_out, pkts_in, pkts_out;
	uint64_t flow_id; /* 0: completed in the read of gen `seen`, forgotten at its end */
	uint64_t seen;	  /* the last reconcile (gen) that read the flow */
};

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

/* A listening socket, by namespace and port. */
struct listen_key {
	uint64_t netns;
	uint32_t port;
	uint32_t pad;
};

/* What a reconcile is given, in one place for the helpers. */
struct rc_call {
	struct pf_flow_rc *rc;
	const struct pf_flow_read *rd;
	const struct pf_flow_rc_opts *opts;
	struct pf_proc_cache *procs;
	const struct pf_flow_rc_eps *eps;
	struct pf_agg *agg;
};

struct pf_flow_rc {
	struct pf_hmap *prev;	    /* flow key -> struct prev_val */
	struct pf_hmap *handshakes; /* struct user_key -> struct hs_val */
	struct pf_hmap *sock_idx;   /* cookie -> position + 1 in socks */
	struct pf_hmap *listeners;  /* struct listen_key -> position + 1 in socks */
	size_t socks_max;
	const struct pf_sock_ent *socks;
	size_t n_socks;
	uint64_t next_flow_id;
	uint64_t gen; /* reconciles so far */
	struct pf_flow_rc_stats st;
	/* The reconcile under way, from pf_flow_rc__begin() to _end(). */
	struct pf_flow_read rd;
	struct rc_call call;
	struct pf_flow_dels *dels;
	/* The last socket asked through rd.sock_lookup (see sock_get()). */
	struct pf_sock_val slot;
	uint64_t slot_cookie;
	bool slot_asked, slot_found;
};

struct pf_flow_rc *pf_flow_rc__new(size_t flows_max, size_t handshakes_max, size_t socks_max)
{
	struct pf_flow_rc *rc = calloc(1, sizeof(*rc));

	if (!rc)
		return NULL;
	rc->socks_max = socks_max;
	rc->next_flow_id = 1;
	rc->prev = pf_hmap__new(sizeof(struct pf_flow_key), sizeof(struct prev_val), flows_max);
	rc->handshakes =
	    pf_hmap__new(sizeof(struct user_key), sizeof(struct hs_val), handshakes_max);
	if (!rc->prev || !rc->handshakes) {
		pf_flow_rc__free(rc);
		errno = ENOMEM;
		return NULL;
	}
	return rc;
}

void pf_flow_rc__free(struct pf_flow_rc *rc)
{
	if (!rc)
		return;
	pf_hmap__free(rc->prev);
	pf_hmap__free(rc->handshakes);
	pf_hmap__free(rc->sock_idx);
	pf_hmap__free(rc->listeners);
	free(rc);
}

void pf_flow_dels__free(struct pf_flow_dels *d)
{
	free(d->flows);
	free(d->socks);
	memset(d, 0, sizeof(*d));
}

void pf_flow_rc__stats(const struct pf_flow_rc *rc, struct pf_flow_rc_stats *st)
{
	*st = rc->st;
}

size_t pf_flow_rc__flows(const struct pf_flow_rc *rc)
{
	return pf_hmap__count(rc->prev);
}

size_t pf_flow_rc__handshakes(const struct pf_flow_rc *rc)
{
	return pf_hmap__count(rc->handshakes);
}

/*
 * The socket behind @cookie, or NULL: among the sockets read, else asked
 * through the read's sock_lookup. The answer stays valid until the next
 * call for another cookie (one slot: every caller is done with a socket
 * before it asks for the next, and the same one is often asked twice in a
 * row).
 */
static const struct pf_sock_val *sock_get(struct pf_flow_rc *rc, uint64_t cookie)
{
	const size_t *pos = rc->sock_idx ? pf_hmap__find(rc->sock_idx, &cookie) : NULL;

	if (pos)
		return &rc->socks[*pos - 1].v;
	if (!cookie)
		return NULL;
	if (!rc->slot_asked || rc->slot_cookie != cookie) {
		if (!rc->rd.sock_lookup)
			return NULL;
		rc->slot_cookie = cookie;
		rc->slot_asked = true;
		rc->slot_found = !rc->rd.sock_lookup(rc->rd.sock_ctx, cookie, &rc->slot);
	}
	return rc->slot_found ? &rc->slot : NULL;
}

/*
 * Index the sockets read, and among them the listening ones by (namespace,
 * port): the owner of last resort for a connection accepted by a process
 * that neither passed an address to accept() nor kept the socket open
 * until the flush (a pre-fork child that served one request and exited).
 * The listener's program is the server's program.
 */
static int index_socks(struct pf_flow_rc *rc, const struct pf_sock_ent *socks, size_t n)
{
	pf_hmap__free(rc->sock_idx);
	pf_hmap__free(rc->listeners);
	rc->socks = socks;
	rc->n_socks = n;
	rc->sock_idx = pf_hmap__new(sizeof(uint64_t), sizeof(size_t), rc->socks_max);
	rc->listeners = pf_hmap__new(sizeof(struct listen_key), sizeof(size_t), rc->socks_max);
	if (!rc->sock_idx || !rc->listeners)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct pf_sock_val *v = &socks[i].v;
		struct listen_key lk = {0};
		size_t *pos;

		/* Beyond the bound (more than the socks map holds): unknown. */
		pos = pf_hmap__upsert(rc->sock_idx, &socks[i].cookie, NULL);
		if (pos)
			*pos = i + 1;
		if (!v->listener || !v->tgid || v->closed_ns)
			continue;
		lk.netns = v->netns;
		lk.port = v->lport;
		pos = pf_hmap__upsert(rc->listeners, &lk, NULL);
		if (pos)
			*pos = i + 1;
	}
	return 0;
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

static const struct pf_flow_ep *book_find(const struct rc_call *c, const struct pf_flow_obs *o)
{
	if (!c->eps || !c->eps->book_find)
		return NULL;
	return c->eps->book_find(c->eps->ctx, o->raddr, o->rport, o->proto);
}

/*
 * Fill the process fields of @o from the owner of socket @s. @active_ns is
 * when the flow last carried traffic, if known (else 0).
 */
static void resolve_process(const struct rc_call *c, const struct pf_sock_val *s,
			    struct pf_flow_obs *o, uint64_t active_ns)
{
	const struct pf_proc *p, *later;

	o->proc_name = NULL;
	o->proc_args = NULL;
	o->proc_pid = 0;
	if (s && !s->tgid && !s->listener && o->proto == IPPROTO_TCP &&
	    o->reporter == PF_REPORTER_DST) {
		struct listen_key lk = {.netns = s->netns, .port = o->lport};
		const size_t *pos = pf_hmap__find(c->rc->listeners, &lk);

		s = pos ? &c->rc->socks[*pos - 1].v : NULL;
	}
	if (!s || !s->tgid)
		return;
	p = pf_proc_cache__lookup(c->procs, s->tgid, s->ts_ns);
	/* The container is named whether or not processes are. */
	if (c->eps && c->eps->local)
		o->local_ep = c->eps->local(c->eps->ctx, p ? p->cgroup_id : 0, s->tgid);
	if (!c->opts->process_info)
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
	if (p && c->opts->process_path && p->path) {
		o->proc_name = p->path;
		o->proc_args = p->args;
	} else if (p && p->comm[0]) {
		o->proc_name = p->comm;
	} else if (s->comm[0]) {
		/* The task name captured with the socket: the last resort. */
		o->proc_name = s->comm;
	}
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

static void tcp_sample(const struct rc_call *c, const struct pf_sock_val *s, struct pf_flow_obs *o)
{
	if (!c->opts->tcp_stats || !s || !s->closed_ns || o->proto != IPPROTO_TCP || !s->mss)
		return;
	o->has_tcp = 1;
	o->tcp_cwnd = s->snd_cwnd;
	o->tcp_srtt_us = s->srtt_us;
	o->tcp_min_rtt_us = s->min_rtt_us;
	o->tcp_mss = s->mss;
	o->tcp_retrans = s->total_retrans;
	o->tcp_lost = s->lost_out;
}

static void agg_add(const struct rc_call *c, const struct pf_flow_obs *o)
{
	if (pf_agg__add(c->agg, o) == -ENOMEM)
		c->rc->st.agg_nomem_total++; /* -ENOSPC is counted in pf_agg__dropped() */
}

static bool book_wanted(const struct rc_call *c)
{
	const struct pf_flow_rc_eps *eps = c->eps;

	return eps && eps->book_reset && eps->book_add && eps->any && eps->any(eps->ctx);
}

/*
 * The socket of the flow with @cookie is @se (read with it), or none if
 * @se's cookie differs: put it where sock_get() looks first. Nothing when
 * @se is NULL (then sock_get() asks).
 */
static void sock_known(struct pf_flow_rc *rc, const struct pf_sock_ent *se, uint64_t cookie)
{
	if (!se)
		return;
	rc->slot_cookie = cookie;
	rc->slot_asked = true;
	rc->slot_found = se->cookie == cookie;
	if (rc->slot_found)
		rc->slot = se->v;
}

/* Which container holds the local end of each flow read, so that a flow
 * between two containers of this node names its remote end too. @socks:
 * the flows' sockets, read with them, or NULL. */
static void learn_endpoints(const struct rc_call *c, const struct pf_flow_ent *flows,
			    const struct pf_sock_ent *socks, size_t n)
{
	/* A host without containers pays nothing for this pass. */
	for (size_t i = 0; book_wanted(c) && i < n; i++) {
		const struct pf_flow_ent *e = &flows[i];
		const struct pf_sock_val *s;

		sock_known(c->rc, socks ? &socks[i] : NULL, e->k.cookie);
		s = sock_get(c->rc, e->k.cookie);
		struct pf_flow_obs o = {.proto = e->k.proto, .lport = e->k.lport};

		if (e->v.flags & PF_FLOW_LISTENER)
			continue;
		o.reporter = reporter_of(&e->k, &e->v, s);
		resolve_process(c, s, &o, 0);
		if (o.local_ep)
			c->eps->book_add(c->eps->ctx, e->k.laddr, e->k.lport, e->k.proto,
					 o.local_ep);
	}
}

/* Room in @d for every deletion one read can ask for, taken before any
 * state changes so that a reconcile either runs whole or not at all. */
static int dels_reserve(struct pf_flow_dels *d, size_t n_flows, size_t n_socks)
{
	if (n_flows && d->cap_flows < n_flows) {
		struct pf_flow_key *nf = realloc(d->flows, n_flows * sizeof(*nf));

		if (!nf)
			return -ENOMEM;
		d->flows = nf;
		d->cap_flows = n_flows;
	}
	if (n_socks && d->cap_socks < n_socks) {
		uint64_t *ns = realloc(d->socks, n_socks * sizeof(*ns));

		if (!ns)
			return -ENOMEM;
		d->socks = ns;
		d->cap_socks = n_socks;
	}
	d->n_flows = d->n_flows_map = d->n_socks = 0;
	return 0;
}

/*
 * Handshake packets counted on a listener: stash them under the
 * connection's 5-tuple (the accepted connection's flow takes them) and
 * delete them in the kernel.
 */
static void stash_handshakes(const struct rc_call *c, const struct pf_flow_ent *flows, size_t n,
			     struct pf_flow_dels *d)
{
	for (size_t i = 0; i < n; i++) {
		const struct pf_flow_ent *e = &flows[i];
		struct user_key uk;
		struct hs_val *h;
		int created;

		if (!(e->v.flags & PF_FLOW_LISTENER))
			continue;
		user_key_of(&uk, &e->k, sock_get(c->rc, e->k.cookie));
		h = pf_hmap__upsert(c->rc->handshakes, &uk, &created);
		if (h) {
			if (created) {
				h->cookie = e->k.cookie;
				h->first_ns = c->rd->now_ns;
			}
			h->bytes_in += e->v.bytes_in;
			h->bytes_out += e->v.bytes_out;
			h->pkts_in += e->v.pkts_in;
			h->pkts_out += e->v.pkts_out;
		} else {
			c->rc->st.hs_dropped_total++;
		}
		/* Listener entries are flows map entries only. */
		d->flows[d->n_flows++] = e->k;
		d->n_flows_map++;
	}
}

/* Completed: its socket closed before this read began; or, for a socket
 * the kernel side has no entry for, it went quiet. */
static bool completed(const struct rc_call *c, const struct pf_flow_ent *e,
		      const struct pf_sock_val *s, bool live)
{
	const uint64_t now_ns = c->rd->now_ns;

	if (e->v.flags & PF_FLOW_CLOSED)
		return true; /* the final copy of a closed TCP connection */
	if (s && s->closed_ns && s->closed_ns <= now_ns)
		return true;
	/* Live counters come from a socket's storage: the socket is open,
	 * whether or not its owner is known (its close makes a final copy). */
	if (live)
		return false;
	if (e->k.proto == IPPROTO_UDP && e->v.last_ns + c->opts->udp_idle_ns < now_ns)
		return true;
	if (!s && (e->v.flags & PF_FLOW_FIN) && e->v.last_ns + c->opts->interval_ns < now_ns)
		return true;
	return !s && e->v.last_ns + c->opts->udp_idle_ns < now_ns;
}

static bool went_backwards(const struct pf_flow_val *v, const struct prev_val *p)
{
	return v->bytes_in < p->bytes_in || v->bytes_out < p->bytes_out ||
	       v->pkts_in < p->pkts_in || v->pkts_out < p->pkts_out;
}

/*
 * One flow read (@live: a live connection's counters from socket storage,
 * else a flows map entry): its increase since the last report. Returns
 * whether it is to be deleted in the kernel (it completed).
 */
static bool report_flow(const struct rc_call *c, const struct pf_flow_ent *e, bool live)
{
	struct pf_flow_rc *rc = c->rc;
	const struct pf_sock_val *s = sock_get(rc, e->k.cookie);
	uint64_t old_id = 0, active_ns;
	struct pf_flow_obs o;
	struct prev_val *p;
	struct user_key uk;
	struct hs_val *h;
	int created;

	p = pf_hmap__upsert(rc->prev, &e->k, &created);
	if (!p) {
		rc->st.dropped++; /* more live flows than the bound */
		return false;
	}
	/* Read twice in this collection: a connection that closed during the
	 * read (its live counters, then its final copy) or a socket the
	 * iterator visited twice. Only what the second read adds counts; a
	 * flow completed by the first is done. */
	if (!created && p->seen == rc->gen) {
		if (!p->flow_id || went_backwards(&e->v, p))
			return false;
	} else if (!created && (went_backwards(&e->v, p) || !p->flow_id)) {
		/* Counters below what was reported: not this flow any more
		 * but a new one under the same key (a socket that disconnected
		 * and connected again to the same peer, counters started
		 * over). The old flow ended unseen since the last read; the
		 * new one has all its counters. */
		old_id = p->flow_id;
		memset(p, 0, sizeof(*p));
		created = 1;
		rc->st.restarted++;
	}
	if (created)
		p->flow_id = rc->next_flow_id++;
	p->seen = rc->gen;

	memset(&o, 0, sizeof(o));
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
	h = pf_hmap__find(rc->handshakes, &uk);
	if (h) {
		o.bytes_in += h->bytes_in;
		o.bytes_out += h->bytes_out;
		o.packets_in += h->pkts_in;
		o.packets_out += h->pkts_out;
		pf_hmap__remove(rc->handshakes, &uk);
	}
	o.completed = completed(c, e, s, live);

	if (!s || !s->tgid) {
		rc->st.unowned++;
		rc->st.unowned_live += live;
	}
	/* When the flow last carried traffic, as far as known: the last packet
	 * of a flows map entry; for a live TCP connection that carried bytes
	 * since the last read (socket storage keeps no time), this read:
	 * whoever holds the socket now. 0 when it carried none. */
	if (!o.bytes_in && !o.bytes_out)
		active_ns = 0;
	else
		active_ns = live ? c->rd->now_ns : e->v.last_ns;
	resolve_process(c, s, &o, active_ns);
	o.remote_ep = book_find(c, &o);
	tcp_sample(c, s, &o);
	if (old_id) {
		struct pf_flow_obs end = o;

		end.flow_id = old_id;
		end.started = 0;
		end.completed = 1;
		end.bytes_in = end.bytes_out = end.packets_in = end.packets_out = 0;
		end.has_tcp = 0;
		agg_add(c, &end);
	}
	agg_add(c, &o);
	if (o.completed) {
		p->flow_id = 0; /* forgotten at the end of this read */
		rc->st.completed++;
	}
	return o.completed;
}

static bool still_open(struct pf_flow_rc *rc, const void *key)
{
	const struct pf_flow_key *k = key;
	const struct pf_sock_val *s = sock_get(rc, k->cookie);

	return s && (!s->closed_ns || s->closed_ns > rc->rd.now_ns);
}

/* A socket entry to delete in the kernel; one that finds no room stays
 * there (a later read deletes it). */
static void dels_push_sock(struct pf_flow_dels *d, uint64_t cookie)
{
	if (d->n_socks == d->cap_socks) {
		size_t ncap = d->cap_socks ? 2 * d->cap_socks : 64;
		uint64_t *ns = realloc(d->socks, ncap * sizeof(*ns));

		if (!ns)
			return;
		d->socks = ns;
		d->cap_socks = ncap;
	}
	d->socks[d->n_socks++] = cookie;
}

/*
 * A flow forgotten unseen ends in the log: a completion that carries no
 * counters (what it carried since its last read is not known), on the
 * process that owned its socket. A TCP socket whose close the kernel never
 * saw has an entry without a close time, which nothing else would delete:
 * it goes too.
 */
static void end_unseen(const struct rc_call *c, const struct pf_flow_key *k,
		       const struct prev_val *p)
{
	const struct pf_sock_val *s = sock_get(c->rc, k->cookie);
	const struct pf_flow_val none = {.role = PF_ROLE_UNKNOWN};
	struct pf_flow_obs o;

	memset(&o, 0, sizeof(o));
	o.flow_id = p->flow_id;
	o.completed = 1;
	o.netns = s ? s->netns : 0;
	memcpy(o.laddr, k->laddr, 16);
	memcpy(o.raddr, k->raddr, 16);
	o.lport = k->lport;
	o.rport = k->rport;
	o.proto = k->proto;
	o.reporter = reporter_of(k, &none, s);
	resolve_process(c, s, &o, 0);
	o.remote_ep = book_find(c, &o);
	agg_add(c, &o);
	if (s && !s->closed_ns && k->proto == IPPROTO_TCP)
		dels_push_sock(c->rc->dels, k->cookie);
}

/*
 * Forget flows whose counters the kernel no longer has, and end them in the
 * log. A TCP connection's live counters are in its socket storage, and its
 * final ones are copied into the flows map when it closes. The copy is
 * missing when that map was full (counted in the kernel) or when the kernel
 * ran none of the agent's programs at the close (a burst of closes in
 * softirq, seen as neither a skipped run nor a refused update): the flow
 * is never read again. Without this its state here would stay forever. Its
 * bytes since the last read are lost, and counted.
 */
static void expire_unseen(const struct rc_call *c)
{
	struct pf_flow_rc *rc = c->rc;
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;

	while (pf_hmap__next(rc->prev, &it, &k, &v)) {
		const struct prev_val *p = v;

		if (!p->flow_id) { /* completed in this read */
			pf_hmap__remove(rc->prev, k);
			continue;
		}
		/* A read that left flows out saw less than what exists. */
		if (c->rd->incomplete || p->seen + PF_UNSEEN_EXPIRY > rc->gen)
			continue;
		/* Its socket still open (or closed only since this read
		 * began): the storage iterator skipped the connection, as it
		 * can when sockets are freed while it walks (it resumes each
		 * read() at a count of entries into its bucket); its counters
		 * are still in the kernel. A socket that closed before the
		 * read began had its final copy in the flows map, if any. */
		if (still_open(rc, k) && p->seen + PF_UNSEEN_OPEN_EXPIRY > rc->gen)
			continue;
		end_unseen(c, k, p);
		pf_hmap__remove(rc->prev, k);
		rc->st.expired++;
	}
	rc->st.expired_total += rc->st.expired;
}

/* Handshakes whose connection was never accepted (or not yet, after two
 * intervals): report them on the listener's process. */
static void report_lone_handshakes(const struct rc_call *c)
{
	struct pf_flow_rc *rc = c->rc;
	struct pf_hmap_iter it = {0};
	const void *hk;
	void *hv;

	while (pf_hmap__next(rc->handshakes, &it, &hk, &hv)) {
		const struct user_key *uk = hk;
		const struct hs_val *h = hv;
		struct pf_flow_obs o;

		if (h->first_ns + 2 * c->opts->interval_ns > c->rd->now_ns)
			continue;
		memset(&o, 0, sizeof(o));
		o.flow_id = rc->next_flow_id++;
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
		resolve_process(c, sock_get(rc, h->cookie), &o, 0);
		o.remote_ep = book_find(c, &o);
		agg_add(c, &o);
		pf_hmap__remove(rc->handshakes, hk);
	}
}

/* Room in @d for @n more flow keys, for a batch of live connections. */
static int dels_grow(struct pf_flow_dels *d, size_t n)
{
	size_t want = d->n_flows + n, ncap = d->cap_flows ? d->cap_flows : 1024;
	struct pf_flow_key *nf;

	if (want <= d->cap_flows)
		return 0;
	while (ncap < want)
		ncap *= 2;
	nf = realloc(d->flows, ncap * sizeof(*nf));
	if (!nf)
		return -ENOMEM;
	d->flows = nf;
	d->cap_flows = ncap;
	return 0;
}

int pf_flow_rc__begin(struct pf_flow_rc *rc, const struct pf_flow_read *rd,
		      const struct pf_flow_rc_opts *opts, struct pf_proc_cache *procs,
		      const struct pf_flow_rc_eps *eps, struct pf_agg *agg,
		      struct pf_flow_dels *dels)
{
	int err;

	err = dels_reserve(dels, rd->n_flows, rd->n_socks);
	if (err)
		return err;
	err = index_socks(rc, rd->socks, rd->n_socks);
	if (err)
		return err;
	rc->gen++;
	rc->st.completed = rc->st.unowned = rc->st.restarted = rc->st.expired = 0;
	rc->st.unowned_live = 0;
	rc->rd = *rd;
	rc->slot_asked = false;
	rc->call = (struct rc_call){rc, &rc->rd, opts, procs, eps, agg};
	rc->dels = dels;

	stash_handshakes(&rc->call, rd->flows, rd->n_flows, dels);
	if (book_wanted(&rc->call))
		eps->book_reset(eps->ctx);
	learn_endpoints(&rc->call, rd->flows, NULL, rd->n_flows);
	return 0;
}

long pf_flow_rc__prepare(struct pf_flow_rc *rc, const struct pf_flow_ent *map, size_t n)
{
	long unowned = 0;

	/* Room first: a stashed handshake's entry must reach the deletions
	 * (else it would be stashed again at the next read). */
	if (dels_grow(rc->dels, n))
		return -ENOMEM;
	stash_handshakes(&rc->call, map, n, rc->dels);
	learn_endpoints(&rc->call, map, NULL, n);
	for (size_t i = 0; i < n; i++) {
		const struct pf_sock_val *s = sock_get(rc, map[i].k.cookie);

		if (!s || !s->tgid)
			unowned++;
	}
	return unowned;
}

/*
 * Handshakes stashed while their listener had no socket entry (a listener
 * older than the agent, before the scan the first pass asked for) are
 * keyed without its namespace, so the accepted connection, whose socket
 * names one, would not find them: key them again now that the scan may
 * have found the listener. Returns 0 or -ENOMEM (those left as they were
 * are reported on their own after two intervals).
 */
static int rekey_handshakes(struct pf_flow_rc *rc)
{
	struct pf_hmap_iter it = {0};
	struct hs_moved {
		struct user_key uk;
		struct hs_val h;
	} *mv = NULL;
	size_t n = 0, cap = 0;
	const void *k;
	void *v;
	int err = 0;

	/* Moved out first: inserting while iterating is not allowed. */
	while (pf_hmap__next(rc->handshakes, &it, &k, &v)) {
		const struct user_key *uk = k;
		const struct hs_val *h = v;
		const struct pf_sock_val *s;

		if (uk->netns || !(s = sock_get(rc, h->cookie)) || !s->netns)
			continue;
		if (n == cap) {
			size_t ncap = cap ? 2 * cap : 64;
			struct hs_moved *nm = realloc(mv, ncap * sizeof(*nm));

			if (!nm) {
				err = -ENOMEM;
				break;
			}
			mv = nm;
			cap = ncap;
		}
		mv[n].uk = *uk;
		mv[n].uk.netns = s->netns;
		mv[n].h = *h;
		n++;
		pf_hmap__remove(rc->handshakes, k);
	}
	for (size_t i = 0; i < n; i++) {
		int created;
		struct hs_val *h = pf_hmap__upsert(rc->handshakes, &mv[i].uk, &created);

		if (!h) { /* (room: one was just removed for it) */
			rc->st.hs_dropped_total++;
			continue;
		}
		if (created) {
			*h = mv[i].h;
			continue;
		}
		h->bytes_in += mv[i].h.bytes_in;
		h->bytes_out += mv[i].h.bytes_out;
		h->pkts_in += mv[i].h.pkts_in;
		h->pkts_out += mv[i].h.pkts_out;
		if (mv[i].h.first_ns < h->first_ns)
			h->first_ns = mv[i].h.first_ns;
	}
	free(mv);
	return err;
}

int pf_flow_rc__resocks(struct pf_flow_rc *rc, const struct pf_sock_ent *socks, size_t n)
{
	struct pf_flow_dels *d = rc->dels;
	int err = index_socks(rc, socks, n);

	rc->rd.socks = socks;
	rc->rd.n_socks = err ? 0 : n;
	if (err)
		return err;
	rc->slot_asked = false; /* the scan may have made the socket asked last */
	if (n > d->cap_socks) {
		uint64_t *ns = realloc(d->socks, n * sizeof(*ns));

		if (!ns) {
			rc->rd.n_socks = 0; /* no closed socket deleted this time */
			return -ENOMEM;
		}
		d->socks = ns;
		d->cap_socks = n;
	}
	return rekey_handshakes(rc);
}

void pf_flow_rc__learn(struct pf_flow_rc *rc, const struct pf_flow_ent *live,
		       const struct pf_sock_ent *socks, size_t n)
{
	learn_endpoints(&rc->call, live, socks, n);
}

/* Report flows @e[0..@n); completed ones go to the deletions. */
static void report_flows(struct pf_flow_rc *rc, const struct pf_flow_ent *e, size_t n, bool live)
{
	struct pf_flow_dels *d = rc->dels;

	for (size_t i = 0; i < n; i++) {
		if (e[i].v.flags & PF_FLOW_LISTENER)
			continue;
		if (!report_flow(&rc->call, &e[i], live))
			continue;
		d->flows[d->n_flows++] = e[i].k;
		if (!live)
			d->n_flows_map++;
	}
}

/* The flows of @rc->rd itself (pf_flow_rc__reconcile()). */
static void report_read(struct pf_flow_rc *rc)
{
	const struct pf_flow_read *rd = &rc->rd;

	if (!rd->flows)
		return; /* (the flows come in batches) */
	report_flows(rc, rd->flows, rd->n_map, false);
	report_flows(rc, rd->flows + rd->n_map, rd->n_flows - rd->n_map, true);
}

int pf_flow_rc__report_live(struct pf_flow_rc *rc, const struct pf_flow_ent *live,
			    const struct pf_sock_ent *socks, size_t n)
{
	/* Room first: a completed connection's key must reach the deletions
	 * (its final copy may be in the flows map, and must not be read
	 * again as a new flow). Without room the batch is not reported and
	 * this read is incomplete: the counters stay in the kernel. */
	if (dels_grow(rc->dels, n)) {
		rc->rd.incomplete = true;
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		/* A connection that started after the read began is the next
		 * interval's; one whose socket has no entry yet (accepted, and
		 * the server has not called accept(), where the claim comes)
		 * waits for a read that has it: the counters (cumulative) lose
		 * nothing by waiting. Not beyond an interval: a socket whose
		 * owner never comes (the socks map full) is reported without. */
		sock_known(rc, socks ? &socks[i] : NULL, live[i].k.cookie);
		if (live[i].v.first_ns > rc->rd.now_ns ||
		    (!sock_get(rc, live[i].k.cookie) &&
		     live[i].v.first_ns + rc->call.opts->interval_ns > rc->rd.now_ns))
			continue;
		report_flows(rc, &live[i], 1, true);
	}
	return 0;
}

int pf_flow_rc__report_map(struct pf_flow_rc *rc, const struct pf_flow_ent *map, size_t n)
{
	if (dels_grow(rc->dels, n)) {
		rc->rd.incomplete = true;
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		/* Read after the sockets: a flow that started after the read
		 * began may have a socket newer than them. Left in the kernel
		 * for the next read, which has both. */
		if (map[i].v.first_ns > rc->rd.now_ns)
			continue;
		report_flows(rc, &map[i], 1, false);
	}
	return 0;
}

void pf_flow_rc__end(struct pf_flow_rc *rc, bool incomplete)
{
	const struct pf_flow_read *rd = &rc->rd;
	struct pf_flow_dels *d = rc->dels;

	if (incomplete)
		rc->rd.incomplete = true;
	expire_unseen(&rc->call);
	report_lone_handshakes(&rc->call);

	/* Closed sockets: every flow of theirs was read after they closed
	 * and has completed above. */
	for (size_t i = 0; i < rd->n_socks; i++) {
		const struct pf_sock_val *v = &rd->socks[i].v;

		if (v->closed_ns && v->closed_ns <= rd->now_ns)
			dels_push_sock(d, rd->socks[i].cookie);
	}
}

int pf_flow_rc__reconcile(struct pf_flow_rc *rc, const struct pf_flow_read *rd,
			  const struct pf_flow_rc_opts *opts, struct pf_proc_cache *procs,
			  const struct pf_flow_rc_eps *eps, struct pf_agg *agg,
			  struct pf_flow_dels *dels)
{
	int err = pf_flow_rc__begin(rc, rd, opts, procs, eps, agg, dels);

	if (err)
		return err;
	report_read(rc);
	pf_flow_rc__end(rc, false);
	return 0;
}
