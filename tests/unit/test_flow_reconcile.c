// SPDX-License-Identifier: BSD-2-Clause
/*
 * The collector's reconcile (lib/flow_reconcile.c) without a kernel: each
 * test hands it what reads of the flows and socks maps would return, one
 * collection after another, and checks the records the aggregator then
 * writes (bytes, packets, flow counts, process) and what it says to delete
 * in the kernel. The maps' contents are spelled out as the BPF side leaves
 * them (include/procflow/abi.h): cumulative counters per (cookie, tuple).
 *
 * Addresses are from the test range 198.18.0.0/15, IPv4-mapped.
 */
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "flow_agg.h"
#include "flow_reconcile.h"
#include "proc_cache.h"

#define SEC	 1000000000ull
#define INTERVAL (15 * SEC)
#define NETNS	 4026531840ull
#define CLIENT	 4242u /* the client process */
#define SERVER	 4343u /* the server process */
#define MAXREC	 16

/* ---- the world: a process cache, an aggregator, a reconcile ---------------------------------- */

struct world {
	struct pf_proc_cache *procs;
	struct pf_agg *agg;
	struct pf_flow_rc *rc;
	struct pf_flow_dels dels;
	struct pf_flow_rc_opts opts;
	uint64_t now_ns;
	/* collect_steps(): the first live batch's sockets, read with it (NULL: asked) */
	const struct pf_sock_ent *live_socks;
	/* collect_steps(): the sockets read again after the first pass, as after
	 * the task_file scan (NULL: the same as before) */
	const struct pf_sock_ent *scan_socks;
	size_t n_scan_socks;
};

/* One record as a user reads it from a line. */
struct rec {
	int32_t sport, dport;
	uint64_t bytes_in, bytes_out, packets_in, packets_out;
	uint64_t num_flows, started, completed;
	char process[64];
	char pid[16];
};

struct recs {
	struct rec r[MAXREC];
	size_t n;
};

static int world_setup(void **state)
{
	struct world *w = calloc(1, sizeof(*w));
	struct pf_agg_opts ao = {
	    .level = 0,
	    .host = "node-a",
	    .proc_limit = 2,
	    .args_limit = 5,
	    .include_process = 1,
	};

	assert_non_null(w);
	w->procs = pf_proc_cache__new(64, 10 * INTERVAL);
	w->agg = pf_agg__new(&ao);
	w->rc = pf_flow_rc__new(1024, 64, 64);
	assert_non_null(w->procs);
	assert_non_null(w->agg);
	assert_non_null(w->rc);
	w->opts.interval_ns = INTERVAL;
	w->opts.udp_idle_ns = 60 * SEC;
	w->opts.process_info = true;
	w->opts.process_path = true;
	/* Both processes started (and exec'd) at 1 s, before any socket. */
	assert_int_equal(pf_proc_cache__exec(w->procs, CLIENT, 1, 1 * SEC, 1 * SEC, 0, 0, "client",
					     "/usr/bin/client", "--to 198.18.0.2", 0),
			 0);
	assert_int_equal(pf_proc_cache__exec(w->procs, SERVER, 1, 1 * SEC, 1 * SEC, 0, 0, "server",
					     "/usr/sbin/server", "", 0),
			 0);
	w->now_ns = 100 * SEC;
	*state = w;
	return 0;
}

static int world_teardown(void **state)
{
	struct world *w = *state;

	pf_flow_dels__free(&w->dels);
	pf_flow_rc__free(w->rc);
	pf_agg__free(w->agg);
	pf_proc_cache__free(w->procs);
	free(w);
	return 0;
}

static int take_rec(const struct pf_record *r, void *ctx)
{
	struct recs *rs = ctx;
	struct rec *o;

	assert_true(rs->n < MAXREC);
	o = &rs->r[rs->n++];
	o->sport = r->source_port;
	o->dport = r->dest_port;
	o->bytes_in = r->bytes_in;
	o->bytes_out = r->bytes_out;
	o->packets_in = r->packets_in;
	o->packets_out = r->packets_out;
	o->num_flows = r->num_flows;
	o->started = r->num_flows_started;
	o->completed = r->num_flows_completed;
	snprintf(o->process, sizeof(o->process), "%.*s", (int)r->process_name.len,
		 r->process_name.p);
	snprintf(o->pid, sizeof(o->pid), "%s", r->process_id);
	return 0;
}

/* One collection: reconcile the read, then flush the interval's records. */
static void collect(struct world *w, const struct pf_flow_ent *flows, size_t n_flows, size_t n_map,
		    const struct pf_sock_ent *socks, size_t n_socks, struct recs *out)
{
	struct pf_flow_read rd = {
	    .flows = flows,
	    .n_flows = n_flows,
	    .n_map = n_map,
	    .socks = socks,
	    .n_socks = n_socks,
	    .now_ns = w->now_ns,
	};

	assert_int_equal(
	    pf_flow_rc__reconcile(w->rc, &rd, &w->opts, w->procs, NULL, w->agg, &w->dels), 0);
	memset(out, 0, sizeof(*out));
	assert_int_equal(
	    pf_agg__flush_records(w->agg, w->now_ns / SEC - 15, w->now_ns / SEC, take_rec, out), 0);
	w->now_ns += INTERVAL;
}

/* ---- the kernel's entries ------------------------------------------------------------------- */

static void addr4(uint8_t a[16], uint8_t last)
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;
	a[12] = 198;
	a[13] = 18;
	a[14] = 0;
	a[15] = last;
}

/* A flow from 198.18.0.1:@lport to 198.18.0.2:@rport on socket @cookie. */
static struct pf_flow_ent flow(uint64_t cookie, uint8_t proto, uint16_t lport, uint16_t rport,
			       uint32_t role)
{
	struct pf_flow_ent e;

	memset(&e, 0, sizeof(e));
	e.k.cookie = cookie;
	addr4(e.k.laddr, 1);
	addr4(e.k.raddr, 2);
	e.k.lport = lport;
	e.k.rport = rport;
	e.k.proto = proto;
	e.v.role = role;
	e.v.first_ns = 90 * SEC;
	return e;
}

static void counts(struct pf_flow_ent *e, uint64_t bin, uint64_t pin, uint64_t bout, uint64_t pout,
		   uint64_t last_ns)
{
	e->v.bytes_in = bin;
	e->v.pkts_in = pin;
	e->v.bytes_out = bout;
	e->v.pkts_out = pout;
	e->v.last_ns = last_ns;
}

/* Socket @cookie, claimed by @tgid at 2 s. */
static struct pf_sock_ent sock(uint64_t cookie, uint32_t tgid)
{
	struct pf_sock_ent s;

	memset(&s, 0, sizeof(s));
	s.cookie = cookie;
	s.v.tgid = tgid;
	s.v.ts_ns = 2 * SEC;
	s.v.netns = NETNS;
	s.v.claim = PF_CLAIM_CONNECT;
	return s;
}

static void expect_rec(const struct rec *r, uint64_t bin, uint64_t pin, uint64_t bout,
		       uint64_t pout, uint64_t flows, uint64_t started, uint64_t completed)
{
	assert_int_equal(r->bytes_in, bin);
	assert_int_equal(r->packets_in, pin);
	assert_int_equal(r->bytes_out, bout);
	assert_int_equal(r->packets_out, pout);
	assert_int_equal(r->num_flows, flows);
	assert_int_equal(r->started, started);
	assert_int_equal(r->completed, completed);
}

/* ---- counters that go backwards ------------------------------------------------------------- */

/*
 * A live TCP connection (socket storage) whose counters start over under
 * the same key: the socket disconnected (tcp_disconnect) and connected to
 * the same peer again. The second read has less than the first reported:
 * a new flow with all its counters, the old one ended, never a negative
 * (2^64 - n) increase.
 */
static void test_tcp_disconnect_counts_from_zero(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(7001, IPPROTO_TCP, 40000, 80, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(7001, CLIENT);
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f, 2000, 20, 1000, 10, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 2000, 20, 1000, 10, 1, 1, 0);
	assert_string_equal(rs.r[0].process, "/usr/bin/client");

	/* Reconnected: 300 bytes out and 200 in since. */
	counts(&f, 200, 2, 300, 3, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	/* Two flows on the line: the old one completed, the new one started. */
	expect_rec(&rs.r[0], 200, 2, 300, 3, 2, 1, 1);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.restarted, 1);
	assert_int_equal(st.completed, 0);
	assert_int_equal(w->dels.n_flows, 0);

	/* And on from there. */
	counts(&f, 250, 3, 500, 5, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 50, 1, 200, 2, 1, 0, 0);
	assert_int_equal(pf_flow_rc__flows(w->rc), 1);
}

/*
 * A flows map entry (UDP) whose key comes back with smaller counters: the
 * socket cookie was used again for another flow to the same peer. Only
 * one counter going back (packets out) is enough to tell.
 */
static void test_reused_cookie_is_a_new_flow(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(7002, IPPROTO_UDP, 40001, 53, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(7002, CLIENT);
	struct recs rs;

	counts(&f, 512, 4, 256, 4, w->now_ns - SEC);
	collect(w, &f, 1, 1, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 512, 4, 256, 4, 1, 1, 0);

	/* More bytes out than before, but fewer packets: not the same flow. */
	counts(&f, 600, 5, 900, 3, w->now_ns - SEC);
	collect(w, &f, 1, 1, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 600, 5, 900, 3, 2, 1, 1);
	assert_string_equal(rs.r[0].pid, "4242");
}

/* ---- flows that appear only at close -------------------------------------------------------- */

/*
 * A TCP connection opened and closed between two reads: the first the
 * collector sees of it is its final copy in the flows map
 * (PF_FLOW_CLOSED). Started and completed in the one interval, with all
 * its counters; its flows entry and its socket go from the kernel.
 */
static void test_flow_seen_only_at_close(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(7003, IPPROTO_TCP, 40002, 443, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(7003, CLIENT);
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f, 5000, 7, 800, 6, w->now_ns - 2 * SEC);
	f.v.flags = PF_FLOW_FIN | PF_FLOW_CLOSED;
	s.v.closed_ns = w->now_ns - 2 * SEC;
	collect(w, &f, 1, 1, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 5000, 7, 800, 6, 1, 1, 1);
	assert_string_equal(rs.r[0].process, "/usr/bin/client");
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.completed, 1);
	assert_int_equal(pf_flow_rc__flows(w->rc), 0);
	assert_int_equal(w->dels.n_flows, 1);
	assert_int_equal(w->dels.n_flows_map, 1);
	assert_memory_equal(&w->dels.flows[0], &f.k, sizeof(f.k));
	assert_int_equal(w->dels.n_socks, 1);
	assert_int_equal(w->dels.socks[0], 7003);

	/* Nothing left to report. */
	collect(w, NULL, 0, 0, NULL, 0, &rs);
	assert_int_equal(rs.n, 0);
}

/* ---- one flow read twice in one collection ------------------------------------------------- */

/*
 * A connection that closed while the collection read it: its final copy
 * in the flows map (read first) and its live counters from socket storage
 * (a little lower, read just before its close) are the same flow. One
 * flow with the final counters, started and completed once; never the
 * live counters again as a second flow.
 */
static void test_final_copy_and_live_counters_are_one_flow(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f[2] = {flow(7010, IPPROTO_TCP, 40010, 443, PF_ROLE_SRC),
				   flow(7010, IPPROTO_TCP, 40010, 443, PF_ROLE_SRC)};
	struct pf_sock_ent s = sock(7010, CLIENT);
	struct recs rs;

	counts(&f[0], 5000, 7, 800, 6, w->now_ns - SEC);
	f[0].v.flags = PF_FLOW_FIN | PF_FLOW_CLOSED;
	counts(&f[1], 4000, 5, 700, 5, 0);
	collect(w, f, 2, 1, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 5000, 7, 800, 6, 1, 1, 1);
	assert_int_equal(pf_flow_rc__flows(w->rc), 0);
	assert_int_equal(w->dels.n_flows, 1);
	assert_int_equal(w->dels.n_flows_map, 1);
}

/* ---- live connections a batch at a time ----------------------------------------------------- */

/* One collection in steps, as the agent makes it: the flows map's entries
 * @map in a first pass (handshakes, local ends) and a second (reports), the
 * live connections in batches @b1 and @b2 (learnt first, as with
 * containers). */
static long collect_steps(struct world *w, const struct pf_flow_ent *map, size_t n_map,
			  const struct pf_flow_ent *b1, size_t n1, const struct pf_flow_ent *b2,
			  size_t n2, const struct pf_sock_ent *socks, size_t n_socks,
			  struct recs *out)
{
	long unowned;

	struct pf_flow_read rd = {
	    .socks = socks,
	    .n_socks = n_socks,
	    .now_ns = w->now_ns,
	};

	assert_int_equal(pf_flow_rc__begin(w->rc, &rd, &w->opts, w->procs, NULL, w->agg, &w->dels),
			 0);
	unowned = pf_flow_rc__prepare(w->rc, map, n_map);
	assert_true(unowned >= 0);
	if (w->scan_socks)
		assert_int_equal(pf_flow_rc__resocks(w->rc, w->scan_socks, w->n_scan_socks), 0);
	else
		assert_int_equal(pf_flow_rc__resocks(w->rc, socks, n_socks), 0);
	pf_flow_rc__learn(w->rc, b1, w->live_socks, n1);
	pf_flow_rc__learn(w->rc, b2, NULL, n2);
	assert_int_equal(pf_flow_rc__report_map(w->rc, map, n_map), 0);
	assert_int_equal(pf_flow_rc__report_live(w->rc, b1, w->live_socks, n1), 0);
	assert_int_equal(pf_flow_rc__report_live(w->rc, b2, NULL, n2), 0);
	pf_flow_rc__end(w->rc, false);
	memset(out, 0, sizeof(*out));
	assert_int_equal(
	    pf_agg__flush_records(w->agg, w->now_ns / SEC - 15, w->now_ns / SEC, take_rec, out), 0);
	w->now_ns += INTERVAL;
	return unowned;
}

static const struct rec *rec_of(const struct recs *rs, int32_t sport)
{
	for (size_t i = 0; i < rs->n; i++)
		if (rs->r[i].sport == sport)
			return &rs->r[i];
	fail_msg("no record for source port %d", sport);
	return NULL;
}

/*
 * Live connections handed over in two batches, beside a UDP flow from the
 * flows map: each reported with its own counters and process. A socket the
 * iterator visits twice in one walk (the second time with a few more
 * bytes) adds only those bytes. A connection that started after the read
 * began is left for the next read, which reports all its counters, once
 * started.
 */
static void test_live_in_batches(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent udp = flow(7020, IPPROTO_UDP, 40020, 53, PF_ROLE_SRC);
	struct pf_flow_ent b1[2] = {flow(7021, IPPROTO_TCP, 40021, 80, PF_ROLE_SRC),
				    flow(7022, IPPROTO_TCP, 40022, 80, PF_ROLE_SRC)};
	struct pf_flow_ent b2[2] = {flow(7021, IPPROTO_TCP, 40021, 80, PF_ROLE_SRC),
				    flow(7023, IPPROTO_TCP, 40023, 80, PF_ROLE_SRC)};
	struct pf_sock_ent s[4] = {sock(7020, CLIENT), sock(7021, CLIENT), sock(7022, SERVER),
				   sock(7023, CLIENT)};
	struct recs rs;

	counts(&udp, 100, 1, 60, 1, w->now_ns - SEC);
	counts(&b1[0], 1000, 10, 500, 5, 0);
	counts(&b1[1], 2000, 20, 900, 9, 0);
	counts(&b2[0], 1000, 10, 540, 6, 0); /* visited again: 40 bytes more */
	counts(&b2[1], 3000, 30, 100, 1, 0);
	b2[1].v.first_ns = w->now_ns + 1; /* after the read began */
	collect_steps(w, &udp, 1, b1, 2, b2, 2, s, 4, &rs);
	assert_int_equal(rs.n, 3);
	expect_rec(rec_of(&rs, 40020), 100, 1, 60, 1, 1, 1, 0);
	expect_rec(rec_of(&rs, 40021), 1000, 10, 540, 6, 1, 1, 0);
	expect_rec(rec_of(&rs, 40022), 2000, 20, 900, 9, 1, 1, 0);
	assert_string_equal(rec_of(&rs, 40022)->pid, "4343");
	assert_string_equal(rec_of(&rs, 40021)->process, "/usr/bin/client");

	/* The next read: the late one with all its counters, started now. */
	b2[1].v.first_ns = 90 * SEC;
	counts(&b2[1], 3500, 35, 150, 2, 0);
	collect_steps(w, NULL, 0, &b2[1], 1, NULL, 0, s, 4, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(rec_of(&rs, 40023), 3500, 35, 150, 2, 1, 1, 0);
}

/*
 * The agent's way for live connections: each comes with its socket, read
 * in the kernel at the same moment (no socket copy, no lookup). The owner
 * is the one read with it; a connection read without a socket waits, as
 * one whose socket is unknown.
 */
static void test_live_with_their_sockets(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent live[2] = {flow(7050, IPPROTO_TCP, 40050, 80, PF_ROLE_SRC),
				      flow(7051, IPPROTO_TCP, 40051, 80, PF_ROLE_SRC)};
	struct pf_sock_ent socks[2] = {sock(7050, CLIENT), {0}};
	struct recs rs;

	live[1].v.first_ns = w->now_ns - SEC;
	counts(&live[0], 500, 5, 200, 2, 0);
	counts(&live[1], 600, 6, 300, 3, 0);
	w->live_socks = socks;
	collect_steps(w, NULL, 0, live, 2, NULL, 0, NULL, 0, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(rec_of(&rs, 40050), 500, 5, 200, 2, 1, 1, 0);
	assert_string_equal(rec_of(&rs, 40050)->process, "/usr/bin/client");
	assert_string_equal(rec_of(&rs, 40050)->pid, "4242");
}

/*
 * The flows map in two passes: a handshake counted on the listener is
 * stashed by the first and folded into its accepted connection (a live
 * one, reported after); a UDP flow that started after the read began is
 * left in the kernel for the next read (its socket may be newer than the
 * sockets read).
 */
static void test_map_in_two_passes(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent map[2] = {flow(7040, IPPROTO_TCP, 8080, 40040, PF_ROLE_DST),
				     flow(7041, IPPROTO_UDP, 40041, 53, PF_ROLE_SRC)};
	struct pf_flow_ent acc = flow(7042, IPPROTO_TCP, 8080, 40040, PF_ROLE_DST);
	struct pf_sock_ent s[3] = {sock(7040, SERVER), sock(7041, CLIENT), sock(7042, SERVER)};
	struct recs rs;

	s[0].v.listener = 1;
	s[0].v.lport = 8080;
	map[0].v.flags = PF_FLOW_LISTENER;
	counts(&map[0], 60, 1, 60, 1, w->now_ns - SEC); /* SYN in, SYN-ACK out */
	counts(&map[1], 80, 1, 40, 1, w->now_ns + SEC);
	map[1].v.first_ns = w->now_ns + SEC;
	counts(&acc, 1000, 10, 500, 5, 0);
	collect_steps(w, map, 2, &acc, 1, NULL, 0, s, 3, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(rec_of(&rs, 40040), 1060, 11, 560, 6, 1, 1, 0);
	assert_string_equal(rec_of(&rs, 40040)->pid, "4343");
	/* The listener's entry goes from the kernel, the late UDP flow stays. */
	assert_int_equal(w->dels.n_flows_map, 1);
	assert_memory_equal(&w->dels.flows[0], &map[0].k, sizeof(map[0].k));

	map[1].v.first_ns = 90 * SEC;
	collect_steps(w, &map[1], 1, NULL, 0, NULL, 0, s, 3, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(rec_of(&rs, 40041), 80, 1, 40, 1, 1, 1, 0);
}

/*
 * An accepted connection whose socket has no entry among the sockets read
 * (its owner's claim comes at accept(), which the server has not called
 * yet) waits for a read that has it, and is then named. One whose socket
 * never appears is reported without an owner once it is an interval old,
 * not held back for ever.
 */
static void test_live_without_socket_waits_an_interval(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent a = flow(7030, IPPROTO_TCP, 8080, 40030, PF_ROLE_DST);
	struct pf_flow_ent b = flow(7031, IPPROTO_TCP, 8080, 40031, PF_ROLE_DST);
	struct pf_flow_ent both[2];
	struct pf_sock_ent s = sock(7030, SERVER);
	struct recs rs;

	a.v.first_ns = b.v.first_ns = w->now_ns - SEC;
	counts(&a, 700, 7, 300, 3, 0);
	counts(&b, 800, 8, 400, 4, 0);
	both[0] = a;
	both[1] = b;
	collect_steps(w, NULL, 0, both, 2, NULL, 0, NULL, 0, &rs);
	assert_int_equal(rs.n, 0);

	/* a's owner claimed it; b's socket never gets an entry. */
	collect_steps(w, NULL, 0, both, 2, NULL, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 2);
	expect_rec(rec_of(&rs, 40030), 700, 7, 300, 3, 1, 1, 0);
	assert_string_equal(rec_of(&rs, 40030)->process, "/usr/sbin/server");
	assert_string_equal(rec_of(&rs, 40030)->pid, "4343");
	expect_rec(rec_of(&rs, 40031), 800, 8, 400, 4, 1, 1, 0);
	assert_string_equal(rec_of(&rs, 40031)->process, "-");

	/* b is still open without an owner: its next bytes, not all again. */
	counts(&both[1], 900, 9, 400, 4, 0);
	collect_steps(w, NULL, 0, both, 2, NULL, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 2);
	expect_rec(rec_of(&rs, 40031), 100, 1, 0, 0, 1, 0, 0);
}

/* ---- owners that arrive after their flow ---------------------------------------------------- */

/*
 * A flow read before its socket's owner is known (a socket older than the
 * agent, claimed by the iterator after the read, or a claim the socks map
 * had no room for): written with process "-", counted unowned; once the
 * owner is read, the same flow's next bytes name it. No second start.
 */
static void test_owner_known_a_collection_later(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(7004, IPPROTO_UDP, 40003, 5353, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(7004, CLIENT);
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f, 0, 0, 100, 1, w->now_ns - SEC);
	assert_int_equal(collect_steps(w, &f, 1, NULL, 0, NULL, 0, NULL, 0, &rs), 1);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 0, 0, 100, 1, 1, 1, 0);
	assert_string_equal(rs.r[0].process, "-");
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.unowned, 1);

	counts(&f, 0, 0, 350, 3, w->now_ns - SEC);
	assert_int_equal(collect_steps(w, &f, 1, NULL, 0, NULL, 0, &s, 1, &rs), 0);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 0, 0, 250, 2, 1, 0, 0);
	assert_string_equal(rs.r[0].process, "/usr/bin/client");
	assert_string_equal(rs.r[0].pid, "4242");
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.unowned, 0);
}

/* ---- handshakes ----------------------------------------------------------------------------- */

/* The server side of 198.18.0.1:8080 <- 198.18.0.2:40100. */
static struct pf_flow_ent server_flow(uint64_t cookie, uint32_t flags)
{
	struct pf_flow_ent e = flow(cookie, IPPROTO_TCP, 8080, 40100, PF_ROLE_DST);

	e.v.flags = flags;
	return e;
}

static struct pf_sock_ent listener(uint64_t cookie)
{
	struct pf_sock_ent s = sock(cookie, SERVER);

	s.v.listener = 1;
	s.v.lport = 8080;
	s.v.claim = PF_CLAIM_LISTEN;
	return s;
}

/*
 * The SYN and the handshake's last ACK are counted on the listening socket
 * (flows map, PF_FLOW_LISTENER); the rest on the accepted connection
 * (socket storage). The line is the connection's, with both, once.
 */
static void test_handshake_folded_into_accepted_flow(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f[2] = {server_flow(8001, PF_FLOW_LISTENER), server_flow(8002, 0)};
	struct pf_sock_ent s[2] = {listener(8001), sock(8002, SERVER)};
	struct recs rs;

	s[1].v.claim = PF_CLAIM_ACCEPT;
	counts(&f[0], 120, 2, 60, 1, w->now_ns - SEC); /* SYN + ACK in, SYN-ACK out */
	counts(&f[1], 1000, 5, 4000, 4, 0);
	collect(w, f, 2, 1, s, 2, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].dport, 8080);
	expect_rec(&rs.r[0], 1120, 7, 4060, 5, 1, 1, 0);
	assert_string_equal(rs.r[0].process, "/usr/sbin/server");
	assert_int_equal(pf_flow_rc__handshakes(w->rc), 0);
	/* The listener's entry goes from the flows map; the listener stays. */
	assert_int_equal(w->dels.n_flows, 1);
	assert_int_equal(w->dels.n_flows_map, 1);
	assert_memory_equal(&w->dels.flows[0], &f[0].k, sizeof(f[0].k));
	assert_int_equal(w->dels.n_socks, 0);

	/* The next read has the connection only: its increase, no handshake. */
	counts(&f[1], 1500, 8, 4000, 4, 0);
	collect(w, &f[1], 1, 0, s, 2, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 500, 3, 0, 0, 1, 0, 0);
}

/*
 * A listener older than the agent has no socket entry until the scan that
 * the first pass asks for (its handshake entry has no owner): the
 * handshake stashed before the scan still goes to the accepted
 * connection's line, the one line of the connection.
 */
static void test_handshake_of_listener_found_by_scan(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f[2] = {server_flow(8001, PF_FLOW_LISTENER),
				   server_flow(8002, PF_FLOW_CLOSED)};
	struct pf_sock_ent s[2] = {sock(8002, SERVER), listener(8001)};
	struct recs rs;

	s[0].v.claim = PF_CLAIM_ACCEPT;
	s[0].v.closed_ns = w->now_ns - SEC / 2;
	counts(&f[0], 120, 2, 60, 1, w->now_ns - SEC);
	counts(&f[1], 1000, 5, 4000, 4, w->now_ns - SEC / 2);
	w->scan_socks = s;
	w->n_scan_socks = 2;
	assert_int_equal(collect_steps(w, f, 2, NULL, 0, NULL, 0, s, 1, &rs), 1);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 1120, 7, 4060, 5, 1, 1, 1);
	assert_string_equal(rs.r[0].process, "/usr/sbin/server");
	assert_int_equal(pf_flow_rc__handshakes(w->rc), 0);
	/* Nothing left for a later line. */
	collect_steps(w, NULL, 0, NULL, 0, NULL, 0, s, 2, &rs);
	collect_steps(w, NULL, 0, NULL, 0, NULL, 0, s, 2, &rs);
	assert_int_equal(rs.n, 0);
}

/*
 * A handshake whose connection is never accepted (a SYN flood, a client
 * that gave up): kept two intervals for the connection, then written on
 * the listener's process as a flow that started and completed.
 */
static void test_handshake_never_accepted(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = server_flow(8003, PF_FLOW_LISTENER);
	struct pf_sock_ent s = listener(8003);
	struct recs rs;

	counts(&f, 60, 1, 60, 1, w->now_ns - SEC);
	collect(w, &f, 1, 1, &s, 1, &rs);
	assert_int_equal(rs.n, 0);
	assert_int_equal(pf_flow_rc__handshakes(w->rc), 1);
	collect(w, NULL, 0, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 0);
	collect(w, NULL, 0, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	assert_int_equal(rs.r[0].dport, 8080);
	expect_rec(&rs.r[0], 60, 1, 60, 1, 1, 1, 1);
	assert_string_equal(rs.r[0].process, "/usr/sbin/server");
	assert_int_equal(pf_flow_rc__handshakes(w->rc), 0);
}

/* The stash of handshakes waiting for their connection is bounded: one
 * that does not fit is counted, and its listener entry still deleted. */
static void test_handshake_stash_full_is_counted(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f[2] = {server_flow(8004, PF_FLOW_LISTENER),
				   server_flow(8004, PF_FLOW_LISTENER)};
	struct pf_sock_ent s = listener(8004);
	struct pf_flow_rc_stats st;
	struct recs rs;

	pf_flow_rc__free(w->rc);
	w->rc = pf_flow_rc__new(1024, 1, 64);
	assert_non_null(w->rc);
	f[1].k.rport = 40101;
	counts(&f[0], 60, 1, 60, 1, w->now_ns - SEC);
	counts(&f[1], 60, 1, 60, 1, w->now_ns - SEC);
	collect(w, f, 2, 2, &s, 1, &rs);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.hs_dropped_total, 1);
	assert_int_equal(pf_flow_rc__handshakes(w->rc), 1);
	assert_int_equal(w->dels.n_flows, 2);
}

/* ---- started and completed ------------------------------------------------------------------ */

/*
 * Three UDP flows over two reads: A goes on, B's socket closes, C idles
 * past udp_idle_s, D starts in the second read. Each is started once and
 * completed once, and the completed ones are deleted in the kernel.
 */
static void test_started_and_completed(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f[4] = {
	    flow(9001, IPPROTO_UDP, 41001, 53, PF_ROLE_SRC),
	    flow(9002, IPPROTO_UDP, 41002, 53, PF_ROLE_SRC),
	    flow(9003, IPPROTO_UDP, 41003, 53, PF_ROLE_SRC),
	    flow(9004, IPPROTO_UDP, 41004, 53, PF_ROLE_SRC),
	};
	struct pf_sock_ent s[4] = {sock(9001, CLIENT), sock(9002, CLIENT), sock(9003, CLIENT),
				   sock(9004, CLIENT)};
	uint64_t started = 0, completed = 0, flows = 0;
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f[0], 100, 1, 100, 1, w->now_ns - SEC);
	counts(&f[1], 200, 2, 200, 2, w->now_ns - SEC);
	counts(&f[2], 300, 3, 300, 3, w->now_ns - 50 * SEC);
	collect(w, f, 3, 3, s, 3, &rs);
	assert_int_equal(rs.n, 3);
	for (size_t i = 0; i < rs.n; i++) {
		started += rs.r[i].started;
		completed += rs.r[i].completed;
	}
	assert_int_equal(started, 3);
	assert_int_equal(completed, 0);

	/* 15 s later: C's last packet is 65 s old. */
	counts(&f[0], 150, 2, 100, 1, w->now_ns - SEC);
	s[1].v.closed_ns = w->now_ns - 5 * SEC;
	counts(&f[3], 40, 1, 0, 0, w->now_ns - SEC);
	collect(w, f, 4, 4, s, 4, &rs);
	assert_int_equal(rs.n, 4);
	started = completed = 0;
	for (size_t i = 0; i < rs.n; i++) {
		const struct rec *r = &rs.r[i];

		started += r->started;
		completed += r->completed;
		flows += r->num_flows;
		if (r->sport == 41001)
			expect_rec(r, 50, 1, 0, 0, 1, 0, 0);
		else if (r->sport == 41002)
			expect_rec(r, 0, 0, 0, 0, 1, 0, 1);
		else if (r->sport == 41003)
			expect_rec(r, 0, 0, 0, 0, 1, 0, 1);
		else
			expect_rec(r, 40, 1, 0, 0, 1, 1, 0);
	}
	assert_int_equal(flows, 4);
	assert_int_equal(started, 1);
	assert_int_equal(completed, 2);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.completed, 2);
	assert_int_equal(pf_flow_rc__flows(w->rc), 2);
	assert_int_equal(w->dels.n_flows, 2);
	assert_int_equal(w->dels.n_flows_map, 2);
	assert_int_equal(w->dels.flows[0].cookie, 9002);
	assert_int_equal(w->dels.flows[1].cookie, 9003);
	assert_int_equal(w->dels.n_socks, 1);
	assert_int_equal(w->dels.socks[0], 9002);
}

/* ---- unseen expiry -------------------------------------------------------------------------- */

/*
 * A live TCP connection whose final copy never reached the flows map (it
 * was full at the close): it is not read again. Missing from one read it
 * is still followed (a socket closing during a read can be missed once);
 * missing from PF_UNSEEN_EXPIRY reads in a row it is forgotten and the
 * loss counted. Coming back after one miss it goes on, not started again.
 */
static void test_unseen_expiry(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(9101, IPPROTO_TCP, 42001, 80, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(9101, CLIENT);
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f, 100, 1, 100, 1, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	expect_rec(&rs.r[0], 100, 1, 100, 1, 1, 1, 0);

	/* Missed once, read again: goes on. */
	collect(w, NULL, 0, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 0);
	assert_int_equal(pf_flow_rc__flows(w->rc), 1);
	counts(&f, 300, 3, 100, 1, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 200, 2, 0, 0, 1, 0, 0);

	/* Then gone for good. */
	for (unsigned i = 1; i < PF_UNSEEN_EXPIRY; i++) {
		collect(w, NULL, 0, 0, NULL, 0, &rs);
		pf_flow_rc__stats(w->rc, &st);
		assert_int_equal(st.expired, 0);
		assert_int_equal(pf_flow_rc__flows(w->rc), 1);
	}
	/* It ends in the log: completed, with no counters (its last bytes
	 * are not known); its socket's entry went with the close, so on no
	 * known process. */
	collect(w, NULL, 0, 0, NULL, 0, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 0, 0, 0, 0, 1, 0, 1);
	assert_string_equal(rs.r[0].process, "-");
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.expired_total, 1);
	assert_int_equal(pf_flow_rc__flows(w->rc), 0);
}

/*
 * A live connection the storage iterator skipped (sockets freed during its
 * walk shift the entries it resumes at) while its socket is open: not
 * forgotten after two reads, so its next counters are its next bytes, not
 * a second flow with all of them. Forgotten only after
 * PF_UNSEEN_OPEN_EXPIRY reads in a row, as a bound; a socket that closed
 * before the read began goes after PF_UNSEEN_EXPIRY.
 */
static void test_skipped_while_open_is_kept(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(9201, IPPROTO_TCP, 42101, 80, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(9201, CLIENT);
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f, 100, 1, 100, 1, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	expect_rec(&rs.r[0], 100, 1, 100, 1, 1, 1, 0);
	for (unsigned i = 0; i < PF_UNSEEN_EXPIRY + 1; i++)
		collect(w, NULL, 0, 0, &s, 1, &rs);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.expired_total, 0);
	counts(&f, 400, 4, 100, 1, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 300, 3, 0, 0, 1, 0, 0);

	/* Open but never read again (the kernel ran no hook at its close, so
	 * its socket entry never got a close time): forgotten at the bound,
	 * completed in the log, and its socket entry deleted. */
	for (unsigned i = 1; i < PF_UNSEEN_OPEN_EXPIRY; i++)
		collect(w, NULL, 0, 0, &s, 1, &rs);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.expired_total, 0);
	assert_int_equal(w->dels.n_socks, 0);
	collect(w, NULL, 0, 0, &s, 1, &rs);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.expired_total, 1);
	assert_int_equal(rs.n, 1);
	expect_rec(&rs.r[0], 0, 0, 0, 0, 1, 0, 1);
	assert_string_equal(rs.r[0].process, "/usr/bin/client");
	assert_int_equal(w->dels.n_socks, 1);
	assert_int_equal(w->dels.socks[0], 9201);

	/* Closed before the read began, its final copy lost: two reads. */
	f.k.cookie = s.cookie = 9202;
	s.v.closed_ns = 0;
	collect(w, &f, 1, 0, &s, 1, &rs);
	s.v.closed_ns = w->now_ns - SEC;
	collect(w, NULL, 0, 0, &s, 1, &rs);
	collect(w, NULL, 0, 0, &s, 1, &rs);
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.expired_total, 2);
}

/* A read that left flows out (the collector's bound) tells nothing about
 * absence: nothing expires on it. */
static void test_incomplete_read_expires_nothing(void **state)
{
	struct world *w = *state;
	struct pf_flow_ent f = flow(9102, IPPROTO_TCP, 42002, 80, PF_ROLE_SRC);
	struct pf_sock_ent s = sock(9102, CLIENT);
	struct pf_flow_read rd = {.now_ns = 0, .incomplete = true};
	struct pf_flow_rc_stats st;
	struct recs rs;

	counts(&f, 100, 1, 100, 1, 0);
	collect(w, &f, 1, 0, &s, 1, &rs);
	for (unsigned i = 0; i < 2 * PF_UNSEEN_EXPIRY; i++) {
		rd.now_ns = w->now_ns;
		assert_int_equal(
		    pf_flow_rc__reconcile(w->rc, &rd, &w->opts, w->procs, NULL, w->agg, &w->dels),
		    0);
		w->now_ns += INTERVAL;
	}
	pf_flow_rc__stats(w->rc, &st);
	assert_int_equal(st.expired_total, 0);
	assert_int_equal(pf_flow_rc__flows(w->rc), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_tcp_disconnect_counts_from_zero, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_reused_cookie_is_a_new_flow, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_flow_seen_only_at_close, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_owner_known_a_collection_later, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_folded_into_accepted_flow, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_of_listener_found_by_scan, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_never_accepted, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_handshake_stash_full_is_counted, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_started_and_completed, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_unseen_expiry, world_setup, world_teardown),
	    cmocka_unit_test_setup_teardown(test_final_copy_and_live_counters_are_one_flow,
					    world_setup, world_teardown),
	    cmocka_unit_test_setup_teardown(test_live_in_batches, world_setup, world_teardown),
	    cmocka_unit_test_setup_teardown(test_map_in_two_passes, world_setup, world_teardown),
	    cmocka_unit_test_setup_teardown(test_live_with_their_sockets, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_live_without_socket_waits_an_interval, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_skipped_while_open_is_kept, world_setup,
					    world_teardown),
	    cmocka_unit_test_setup_teardown(test_incomplete_read_expires_nothing, world_setup,
					    world_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
