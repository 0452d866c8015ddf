/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The collector's pure half: what the kernel's maps held at one read, turned
 * into this interval's flow observations.
 *
 * The kernel keeps cumulative counters per (socket cookie, local address,
 * peer) and the owner of each socket. Once per interval the agent reads them
 * (agent/collect.c) and hands the copies here, which
 *   - reports each flow's increase since what was already reported (a flow
 *     whose counters went backwards is a new flow under a reused key);
 *   - tells which flows started (first read) and completed;
 *   - folds handshake packets counted on a listening socket into the
 *     accepted connection's flow;
 *   - names the process behind each flow (the socket's owner at its claim,
 *     as the process cache knew it);
 *   - forgets flows whose counters vanished without a final copy;
 *   - says which kernel entries the agent should delete.
 * No system call, no libbpf: everything it reads is in its arguments.
 */
#ifndef PF_FLOW_RECONCILE_H
#define PF_FLOW_RECONCILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow_agg.h"
#include "procflow/abi.h"

struct pf_proc_cache;

/* A flow not read by this many collections in a row has no counters left
 * in the kernel: its socket is gone without a final copy (the flows map was
 * full at its close). Two, not one: a socket closing during a read may be
 * missed by both the flows map walk and the storage iterator once. */
#define PF_UNSEEN_EXPIRY 2

/* The same for a flow whose socket is still open: the storage iterator
 * may skip a live connection when sockets are freed during its walk, but
 * not this many times in a row; past it the flow is forgotten all the
 * same (a bound on what a socket that lost its final copy can hold). */
#define PF_UNSEEN_OPEN_EXPIRY 8

/* One flow as read: a flows map entry or a live TCP connection's storage. */
struct pf_flow_ent {
	struct pf_flow_key k;
	struct pf_flow_val v;
};

/* One socks map entry as read. */
struct pf_sock_ent {
	uint64_t cookie;
	struct pf_sock_val v;
};

/* What one collection read from the kernel. The arrays stay the caller's
 * and must stay valid until pf_flow_rc__reconcile() returns. */
struct pf_flow_read {
	const struct pf_flow_ent *flows;
	size_t n_flows;
	size_t n_map; /* flows[0..n_map) came from the flows map, the rest from socket storage */
	const struct pf_sock_ent *socks;
	size_t n_socks;
	/* A socket not among @socks, asked as it is needed (NULL: unknown):
	 * fills *@out and returns 0, or returns -ENOENT. The agent reads only
	 * listening sockets into @socks and looks the others up in the
	 * kernel, rather than hold a copy of every socket. */
	int (*sock_lookup)(void *ctx, uint64_t cookie, struct pf_sock_val *out);
	void *sock_ctx;
	uint64_t now_ns; /* boot-clock time the read began */
	bool incomplete; /* the read left flows out: absence means nothing */
};

/* The settings the reconcile follows; read at every call, so a reload that
 * changes them takes effect at the next collection. */
struct pf_flow_rc_opts {
	uint64_t interval_ns; /* the flush interval */
	uint64_t udp_idle_ns; /* a UDP flow this long without traffic has completed */
	bool process_info;    /* name processes at all */
	bool process_path;    /* by their executable's path, else by task name */
	bool tcp_stats;	      /* TCP health figures of closed connections */
};

/*
 * The container identities of the node, asked through the caller (the
 * agent's cache, agent/containers.c). Every member may be NULL: no
 * container is ever named.
 */
struct pf_flow_rc_eps {
	/* The workload of process @pid in cgroup @cgroup_id, NULL: the host. */
	const struct pf_flow_ep *(*local)(void *ctx, uint64_t cgroup_id, uint32_t pid);
	/* Whether any container is known (else the address book is skipped). */
	bool (*any)(void *ctx);
	/* The address book of one collection: local ends of flows by workload. */
	void (*book_reset)(void *ctx);
	void (*book_add)(void *ctx, const uint8_t addr[16], uint16_t port, uint8_t proto,
			 const struct pf_flow_ep *ep);
	const struct pf_flow_ep *(*book_find)(void *ctx, const uint8_t addr[16], uint16_t port,
					      uint8_t proto);
	void *ctx;
};

/* What the agent must delete in the kernel after a reconcile: flows map
 * entries of completed flows and handshakes, socks map entries of sockets
 * that closed before the read began. The caller's, zeroed before the first
 * use; each reconcile refills it (arrays kept and grown). */
struct pf_flow_dels {
	struct pf_flow_key *flows;
	size_t n_flows;
	size_t n_flows_map; /* flows[0..n_flows_map) were read from the flows map */
	size_t cap_flows;
	uint64_t *socks;
	size_t n_socks, cap_socks;
};

/* What the last reconcile did, and cumulative losses. */
struct pf_flow_rc_stats {
	uint64_t completed;    /* flows completed in the last call */
	uint64_t unowned;      /* flows with no owner known in the last call */
	uint64_t unowned_live; /* of those, live TCP connections (read after the sockets) */
	uint64_t restarted;    /* flows whose counters went backwards in the last call */
	uint64_t expired;      /* flows forgotten unseen in the last call */
	/* cumulative */
	uint64_t dropped;	   /* flows not reported: the bound of the per-flow state */
	uint64_t expired_total;	   /* flows forgotten without their final counters */
	uint64_t agg_nomem_total;  /* observations the aggregator had no memory for */
	uint64_t hs_dropped_total; /* handshakes not reported: the stash was full */
};

struct pf_flow_rc;

/*
 * New reconcile state: at most @flows_max flows followed at once (live TCP
 * connections included), @handshakes_max stashed handshakes, @socks_max
 * sockets indexed per read (the socks map's size). Returns NULL with errno
 * set.
 */
struct pf_flow_rc *pf_flow_rc__new(size_t flows_max, size_t handshakes_max, size_t socks_max);
void pf_flow_rc__free(struct pf_flow_rc *rc); /* accepts NULL */

/*
 * Turn one read into observations for @agg, resolving owners in @procs
 * and workloads through @eps (may be NULL), and fill @dels.
 * Returns 0 or -ENOMEM (the index or @dels could not be made: nothing was
 * reported and the per-flow state is unchanged).
 */
int pf_flow_rc__reconcile(struct pf_flow_rc *rc, const struct pf_flow_read *rd,
			  const struct pf_flow_rc_opts *opts, struct pf_proc_cache *procs,
			  const struct pf_flow_rc_eps *eps, struct pf_agg *agg,
			  struct pf_flow_dels *dels);

/*
 * The same in steps, so that the kernel's flows can be read and reported
 * a batch at a time instead of all held at once (agent/collect.c; @rd then
 * has sockets but no flows):
 *   pf_flow_rc__begin(rd)            index the sockets (and stash and learn
 *                                    @rd's own flows, if any);
 *   pf_flow_rc__prepare(batch)*      flows map entries, first pass: stash
 *                                    handshakes, learn local ends; returns
 *                                    how many have no owner among the
 *                                    sockets, or -ENOMEM;
 *   pf_flow_rc__resocks(socks)       optional: the sockets read again (the
 *                                    iterator claimed some); handshakes
 *                                    stashed before their listener was
 *                                    known move to its namespace;
 *   pf_flow_rc__learn(batch)*        local ends of live connections (only
 *                                    needed when containers are known: a
 *                                    flow between two of them names both);
 *                                    @socks[i]: live[i]'s socket, read with
 *                                    it (cookie 0: it has none), or NULL;
 *   pf_flow_rc__report_map(batch)*   flows map entries, second pass: report;
 *   pf_flow_rc__report_live(batch)*  live connections: report (@socks as
 *                                    for _learn());
 *   pf_flow_rc__end(incomplete)      forget unseen flows, report handshakes
 *                                    left alone, list closed sockets.
 * @rd, the sockets, @opts, @eps and @dels must stay valid until _end().
 * The report calls return 0, or -ENOMEM when @dels has no room for the
 * batch (nothing of it is reported, and the read counts as incomplete).
 * A flow read twice in one collection (a connection's live counters and
 * its final copy) counts only what the second read adds. A flow that
 * started after @rd->now_ns, or a live connection whose socket is not among
 * the sockets and that started less than an interval before, is left for a
 * later read (its socket may be newer than the sockets read).
 */
int pf_flow_rc__begin(struct pf_flow_rc *rc, const struct pf_flow_read *rd,
		      const struct pf_flow_rc_opts *opts, struct pf_proc_cache *procs,
		      const struct pf_flow_rc_eps *eps, struct pf_agg *agg,
		      struct pf_flow_dels *dels);
long pf_flow_rc__prepare(struct pf_flow_rc *rc, const struct pf_flow_ent *map, size_t n);
int pf_flow_rc__resocks(struct pf_flow_rc *rc, const struct pf_sock_ent *socks, size_t n);
void pf_flow_rc__learn(struct pf_flow_rc *rc, const struct pf_flow_ent *live,
		       const struct pf_sock_ent *socks, size_t n);
int pf_flow_rc__report_map(struct pf_flow_rc *rc, const struct pf_flow_ent *map, size_t n);
int pf_flow_rc__report_live(struct pf_flow_rc *rc, const struct pf_flow_ent *live,
			    const struct pf_sock_ent *socks, size_t n);
void pf_flow_rc__end(struct pf_flow_rc *rc, bool incomplete);

/* Counters of what the reconcile did (see struct pf_flow_rc_stats). */
void pf_flow_rc__stats(const struct pf_flow_rc *rc, struct pf_flow_rc_stats *st);

/* Entries of the per-flow state and of the handshake stash (occupancy). */
size_t pf_flow_rc__flows(const struct pf_flow_rc *rc);
size_t pf_flow_rc__handshakes(const struct pf_flow_rc *rc);

/* Free the arrays of @d (accepts a zeroed one). */
void pf_flow_dels__free(struct pf_flow_dels *d);

#endif
