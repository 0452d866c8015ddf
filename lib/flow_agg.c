// SPDX-License-Identifier: BSD-2-Clause
/*
 * Flow aggregation and the flow-log line (see flow_agg.h and
 * ../shared/spec/flow-log-format.md).
 *
 * One interval's state is:
 *   - keys[]: folded flow keys in first-seen order, found through an
 *     open-addressing table (ktab) because every observation looks one up;
 *   - lines[]: per key, one entry per output line (a process name, the "*"
 *     merge, or the "-" line), chained in first-seen order;
 *   - iset: distinct (line, flow id) and (line, PID) pairs, so num_flows,
 *     num_flows_started/completed and num_process_ids are exact distinct
 *     counts however often the agent reports the same flow;
 *   - sset: distinct (key, process name) -> line and (line, args string);
 *   - an arena holding the copied strings, released in one go at flush.
 *
 * Every table is cleared at flush, so memory follows the busiest interval
 * and the key count is bounded by max_keys.
 *
 * Keys come from remote peers and strings from any local process, so the
 * tables hash with a per-aggregator random secret: nobody outside can aim
 * at one probe chain.
 */
#include "flow_agg.h"
#include "jsonw.h"
#include "record.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define AGG_MAX_KEYS_DEFAULT ((size_t)1 << 20)
/* A line is about 1.5 KiB plus its process fields; the default args limit
 * (5) times the largest argument area (PF_ARGS_CAP, 32 KiB), escaped, still
 * fits. A larger line is retried with fewer args listed (agg_flush_line). */
#define AGG_LINE_MAX	((size_t)1 << 20)
#define AGG_ARENA_CHUNK ((size_t)64 << 10)
#define AGG_TAB_MIN	64 /* initial slots of each hash table */

enum agg_line_kind {
	AGG_LINE_NAMED = 0, /* one process name */
	AGG_LINE_STAR,	    /* every name past proc_limit */
	AGG_LINE_DASH,	    /* no process known, or process info off */
};

/* Class of a folded remote address (level >= 2). */
enum agg_class {
	AGG_CLASS_NONE = 0,
	AGG_CLASS_PVT,
	AGG_CLASS_PUB,
};

/* The folded key. Compared with memcmp, so it is always built from a zeroed
 * struct and has no implicit padding. */
struct agg_key {
	uint64_t netns;
	const char *lep, *rep; /* interned endpoints (agg_ep_intern), NULL: host / net */
	uint8_t laddr[16];
	uint8_t raddr[16];
	uint16_t lport, rport;
	uint8_t proto, reporter, rclass, action;
};

struct agg_kent {
	struct agg_key k;
	uint64_t hash;
	uint32_t head, tail; /* lines of this key in first-seen order (index + 1) */
	uint32_t n_named;    /* names that have their own line */
	uint32_t star, dash; /* the "*" and "-" lines (index + 1), 0 if none yet */
};

struct agg_arg {
	struct agg_arg *next;
	const char *s;
	size_t len;
};

/*
 * One output line's state; at aggregation level 0 there is one per flow, so
 * its size is memory per flow (192 bytes). The distinct counts are 32-bit:
 * each counts entries of the interval's distinct sets, which memory bounds
 * far below 2^32; string lengths are bounded by the exec event's areas.
 */
struct agg_line {
	uint32_t next; /* next line of the same key (index + 1) */
	uint32_t kind; /* enum agg_line_kind */
	const char *name;
	uint32_t name_len;
	uint32_t num_names; /* the "*" line: names merged into it */
	uint64_t bytes_in, bytes_out, packets_in, packets_out;
	uint32_t num_flows, num_started, num_completed;
	uint32_t num_pids;
	uint32_t pid; /* the first PID seen (the one written when num_pids is 1) */
	uint32_t n_listed;
	uint32_t num_args;
	uint32_t longest_len;
	struct agg_arg *args, *args_tail; /* the first args_limit distinct strings */
	const char *longest;		  /* longest distinct string, first seen on ties */
	uint32_t tcp_n, cwnd_min, srtt_max, min_rtt_max;
	uint32_t mss_min;
	uint64_t cwnd_sum, srtt_sum, min_rtt_sum, mss_sum;
	uint64_t retrans, lost, unrecovered;
};

struct agg_kslot {
	uint32_t idx1; /* key index + 1, 0 when empty */
	uint32_t h32;  /* high half of the hash: most mismatches skip the memcmp */
};

enum { AGG_ISET_FLOW = 1, AGG_ISET_PID = 2 };
#define AGG_FLOW_STARTED   (1u << 0)
#define AGG_FLOW_COMPLETED (1u << 1)

struct agg_iset_ent {
	uint64_t v;
	uint32_t line1; /* line index + 1, 0 when empty */
	uint8_t tag;
	uint8_t flags;
};

enum { AGG_SSET_NAME = 1, AGG_SSET_ARGS = 2, AGG_SSET_EP = 3 };

struct agg_sset_ent {
	uint64_t hash;
	const char *s;
	uint32_t len;
	uint32_t owner1; /* NAME: key index + 1; ARGS: line index + 1; 0 when empty */
	uint32_t val;	 /* NAME: the line index */
	uint32_t tag;
};

struct agg_chunk {
	struct agg_chunk *next;
	size_t used, size;
	char data[];
};

struct pf_agg {
	int level, level_denied; /* by action */
	unsigned proc_limit, args_limit;
	int include_process, include_tcp, include_labels;
	size_t max_keys;
	char *host;
	uint64_t dropped;
	uint64_t seed0, seed1;

	struct agg_kent *keys;
	size_t nkeys, keys_cap;
	struct agg_kslot *ktab;
	size_t kmask;

	struct agg_line *lines;
	size_t nlines, lines_cap;

	struct agg_iset_ent *iset;
	size_t iset_n, iset_mask;
	struct agg_sset_ent *sset;
	size_t sset_n, sset_mask;

	struct agg_chunk *arena;
	struct pf_jw jw;
	enum pf_rec_schema schema; /* the key set of the lines */
	struct pf_strn *argv;	   /* a record's process_args */
	size_t argv_cap;
	/* A record's label objects (source, dest), as JSON text. */
	struct pf_jw lab_jw;
	char *lab_buf[2];
	size_t lab_cap[2];
};

/* ---- hashing --------------------------------------------------------------------------------- */

/* wyhash-style multiply-fold: fast, and with the secret xored into every
 * block the outcome cannot be steered without knowing the secret. */
static inline uint64_t agg_mum(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

#define AGG_K0 0xa0761d6478bd642fULL
#define AGG_K1 0xe7037ed1a0b428dbULL
#define AGG_K2 0x8ebc6af09c88c6e3ULL

static inline uint64_t agg_rd64(const uint8_t *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static inline uint64_t agg_rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t agg_hash(const struct pf_agg *a, uint64_t salt, const void *data, size_t n)
{
	const uint8_t *p = data;
	uint64_t h = agg_mum(a->seed0 ^ salt, AGG_K0 ^ n), x, y;
	size_t left = n;

	while (left > 16) {
		h = agg_mum(agg_rd64(p) ^ a->seed1, agg_rd64(p + 8) ^ h);
		p += 16;
		left -= 16;
	}
	if (left >= 8) {
		x = agg_rd64(p);
		y = agg_rd64(p + left - 8);
	} else if (left >= 4) {
		x = agg_rd32(p);
		y = agg_rd32(p + left - 4);
	} else if (left) {
		x = (uint64_t)p[0] << 16 | (uint64_t)p[left >> 1] << 8 | p[left - 1];
		y = 0;
	} else {
		x = y = 0;
	}
	h = agg_mum(x ^ a->seed1, y ^ h);
	return agg_mum(h ^ AGG_K1, a->seed0 ^ AGG_K2);
}

static inline uint64_t agg_hash_int(const struct pf_agg *a, uint32_t line1, uint8_t tag, uint64_t v)
{
	uint64_t h = agg_mum(v ^ a->seed1, ((uint64_t)line1 << 8 | tag) ^ a->seed0);

	return agg_mum(h ^ AGG_K1, a->seed0 ^ AGG_K2);
}

/* ---- arena ----------------------------------------------------------------------------------- */

static void *agg_alloc(struct pf_agg *a, size_t n)
{
	struct agg_chunk *c = a->arena;
	size_t sz;
	void *p;

	n = (n + 7) & ~(size_t)7;
	if (!c || c->size - c->used < n) {
		sz = n > AGG_ARENA_CHUNK ? n : AGG_ARENA_CHUNK;
		c = malloc(sizeof(*c) + sz);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = sz;
		c->next = a->arena;
		a->arena = c;
	}
	p = c->data + c->used;
	c->used += n;
	return p;
}

static const char *agg_strdup(struct pf_agg *a, const char *s, size_t n)
{
	char *d = agg_alloc(a, n + 1);

	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* Keep one ordinary chunk for the next interval, free the rest. */
static void agg_arena_reset(struct pf_agg *a)
{
	struct agg_chunk *c = a->arena, *next, *keep = NULL;

	for (; c; c = next) {
		next = c->next;
		if (!keep && c->size == AGG_ARENA_CHUNK) {
			keep = c;
			continue;
		}
		free(c);
	}
	if (keep) {
		keep->used = 0;
		keep->next = NULL;
	}
	a->arena = keep;
}

/* ---- tables ---------------------------------------------------------------------------------- */

static int agg_vec_grow(void **vec, size_t *cap, size_t need, size_t elsz)
{
	size_t ncap = *cap ? *cap : 16;
	void *p;

	if (need <= *cap)
		return 0;
	while (ncap < need)
		ncap *= 2;
	p = realloc(*vec, ncap * elsz);
	if (!p)
		return -ENOMEM;
	*vec = p;
	*cap = ncap;
	return 0;
}

/* Tables stay at most half full, so linear probing chains stay short. */
static int agg_ktab_grow(struct pf_agg *a)
{
	size_t nslots = (a->kmask + 1) * 2, i, j;
	struct agg_kslot *t = calloc(nslots, sizeof(*t));

	if (!t)
		return -ENOMEM;
	for (i = 0; i < a->nkeys; i++) {
		for (j = a->keys[i].hash & (nslots - 1); t[j].idx1; j = (j + 1) & (nslots - 1))
			;
		t[j].idx1 = (uint32_t)i + 1;
		t[j].h32 = (uint32_t)(a->keys[i].hash >> 32);
	}
	free(a->ktab);
	a->ktab = t;
	a->kmask = nslots - 1;
	return 0;
}

static int agg_iset_grow(struct pf_agg *a)
{
	size_t nslots = (a->iset_mask + 1) * 2, i, j;
	struct agg_iset_ent *t = calloc(nslots, sizeof(*t)), *e;

	if (!t)
		return -ENOMEM;
	for (i = 0; i <= a->iset_mask; i++) {
		e = &a->iset[i];
		if (!e->line1)
			continue;
		j = agg_hash_int(a, e->line1, e->tag, e->v) & (nslots - 1);
		while (t[j].line1)
			j = (j + 1) & (nslots - 1);
		t[j] = *e;
	}
	free(a->iset);
	a->iset = t;
	a->iset_mask = nslots - 1;
	return 0;
}

static int agg_sset_grow(struct pf_agg *a)
{
	size_t nslots = (a->sset_mask + 1) * 2, i, j;
	struct agg_sset_ent *t = calloc(nslots, sizeof(*t)), *e;

	if (!t)
		return -ENOMEM;
	for (i = 0; i <= a->sset_mask; i++) {
		e = &a->sset[i];
		if (!e->owner1)
			continue;
		for (j = e->hash & (nslots - 1); t[j].owner1; j = (j + 1) & (nslots - 1))
			;
		t[j] = *e;
	}
	free(a->sset);
	a->sset = t;
	a->sset_mask = nslots - 1;
	return 0;
}

/* The (line, tag, v) entry; *@created tells whether it is new. NULL on ENOMEM. */
static struct agg_iset_ent *agg_iset_get(struct pf_agg *a, uint32_t line1, uint8_t tag, uint64_t v,
					 bool *created)
{
	struct agg_iset_ent *e;
	size_t i;

	if ((a->iset_n + 1) * 2 > a->iset_mask + 1 && agg_iset_grow(a))
		return NULL;
	for (i = agg_hash_int(a, line1, tag, v) & a->iset_mask;; i = (i + 1) & a->iset_mask) {
		e = &a->iset[i];
		if (!e->line1)
			break;
		if (e->line1 == line1 && e->v == v && e->tag == tag) {
			*created = false;
			return e;
		}
	}
	e->line1 = line1;
	e->tag = tag;
	e->v = v;
	e->flags = 0;
	a->iset_n++;
	*created = true;
	return e;
}

/* The (owner, tag, string) entry; a new one gets an arena copy of the
 * string. *@created tells whether it is new. NULL on ENOMEM. */
static struct agg_sset_ent *agg_sset_get(struct pf_agg *a, uint32_t owner1, uint32_t tag,
					 const char *s, size_t n, bool *created)
{
	uint64_t h = agg_hash(a, (uint64_t)owner1 << 8 | tag, s, n);
	struct agg_sset_ent *e;
	const char *copy;
	size_t i;

	if (n > UINT32_MAX)
		return NULL; /* no process string comes near; counted as no memory */
	if ((a->sset_n + 1) * 2 > a->sset_mask + 1 && agg_sset_grow(a))
		return NULL;
	for (i = h & a->sset_mask;; i = (i + 1) & a->sset_mask) {
		e = &a->sset[i];
		if (!e->owner1)
			break;
		if (e->hash == h && e->owner1 == owner1 && e->tag == tag && e->len == n &&
		    !memcmp(e->s, s, n)) {
			*created = false;
			return e;
		}
	}
	copy = agg_strdup(a, s, n);
	if (!copy)
		return NULL;
	e->hash = h;
	e->s = copy;
	e->len = (uint32_t)n;
	e->owner1 = owner1;
	e->tag = tag;
	e->val = 0;
	a->sset_n++;
	*created = true;
	return e;
}

/* ---- addresses ------------------------------------------------------------------------------- */

static bool agg_is_v4mapped(const uint8_t a[16])
{
	static const uint8_t prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

	return !memcmp(a, prefix, sizeof(prefix));
}

/*
 * "pvt" is what Calico calls private: the RFC 1918 ranges 10/8, 172.16/12
 * and 192.168/16, nothing else (its endpoint code and its aggregation
 * documentation). Loopback, link-local, 100.64/10 and every IPv6 address
 * are "pub", so that a line means the same whether Felix or procflow wrote
 * it, on the same dashboards.
 *
 * 198.18.0.0/15 (benchmarking, RFC 2544) is "pub" too, as in the
 * contract's example line (spec section 6).
 */
static bool agg_addr_private(const uint8_t a[16])
{
	const uint8_t *b = a + 12;

	if (!agg_is_v4mapped(a))
		return false;
	return b[0] == 10 || (b[0] == 172 && (b[1] & 0xf0) == 16) || (b[0] == 192 && b[1] == 168);
}

const char *pf_addr_aggr_name(const uint8_t addr[16])
{
	return agg_addr_private(addr) ? "pvt" : "pub";
}

/* Dotted IPv4 into @buf (at least INET_ADDRSTRLEN bytes) without the
 * printf machinery inet_ntop() goes through: two addresses a line, and
 * they were a fifth of the time a line took. */
static void agg_v4_str(const uint8_t *b, char *buf)
{
	char *p = buf;

	for (int i = 0; i < 4; i++) {
		unsigned v = b[i];

		if (v >= 100)
			*p++ = (char)('0' + v / 100);
		if (v >= 10)
			*p++ = (char)('0' + v / 10 % 10);
		*p++ = (char)('0' + v % 10);
		*p++ = '.';
	}
	p[-1] = '\0';
}

char *pf_addr_str(const uint8_t addr[16], char *buf, size_t bufsz)
{
	const char *r;

	if (agg_is_v4mapped(addr) && bufsz >= INET_ADDRSTRLEN) {
		agg_v4_str(addr + 12, buf);
		return buf;
	}
	if (agg_is_v4mapped(addr))
		r = inet_ntop(AF_INET, addr + 12, buf, (socklen_t)bufsz);
	else
		r = inet_ntop(AF_INET6, addr, buf, (socklen_t)bufsz);
	if (!r && bufsz)
		buf[0] = '\0';
	return buf;
}

/* ---- life cycle ------------------------------------------------------------------------------ */

static void agg_clear(struct pf_agg *a)
{
	memset(a->ktab, 0, (a->kmask + 1) * sizeof(*a->ktab));
	memset(a->iset, 0, (a->iset_mask + 1) * sizeof(*a->iset));
	memset(a->sset, 0, (a->sset_mask + 1) * sizeof(*a->sset));
	a->nkeys = 0;
	a->nlines = 0;
	a->iset_n = 0;
	a->sset_n = 0;
	agg_arena_reset(a);
}

static bool agg_opts_valid(const struct pf_agg_opts *o)
{
	return o && o->level >= 0 && o->level <= 3 && o->level_denied >= 0 &&
	       o->level_denied <= 3 && (unsigned)o->schema < PF_REC_NSCHEMAS;
}

/* Everything but the host, which only pf_agg__new sets. */
static void agg_set_opts(struct pf_agg *a, const struct pf_agg_opts *opts)
{
	a->level = opts->level;
	a->level_denied = opts->level_denied;
	a->proc_limit = opts->proc_limit;
	a->args_limit = opts->args_limit;
	a->include_process = opts->include_process;
	a->include_tcp = opts->include_tcp;
	a->schema = opts->schema;
	a->include_labels = opts->include_labels;
	a->max_keys = opts->max_keys ? opts->max_keys : AGG_MAX_KEYS_DEFAULT;
	/* Line and key indexes are 32-bit. */
	if (a->max_keys > UINT32_MAX / 2)
		a->max_keys = UINT32_MAX / 2;
}

int pf_agg__reconfigure(struct pf_agg *a, const struct pf_agg_opts *opts)
{
	if (!a || !agg_opts_valid(opts))
		return -EINVAL;
	if (a->nkeys)
		return -EBUSY;
	agg_set_opts(a, opts);
	return 0;
}

struct pf_agg *pf_agg__new(const struct pf_agg_opts *opts)
{
	struct pf_agg *a;
	uint64_t seed[2];

	if (!agg_opts_valid(opts) || !opts->host) {
		errno = EINVAL;
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	agg_set_opts(a, opts);
	a->host = strdup(opts->host);
	/* The secret only spreads the tables; without getrandom() the tables
	 * still work, they are just predictable. */
	if (getrandom(seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed)) {
		seed[0] = 0x2d358dccaa6c78a5ULL ^ (uint64_t)(uintptr_t)a;
		seed[1] = 0x8bb84b93962eacc9ULL;
	}
	a->seed0 = seed[0];
	a->seed1 = seed[1] | 1;
	a->kmask = AGG_TAB_MIN - 1;
	a->iset_mask = AGG_TAB_MIN - 1;
	a->sset_mask = AGG_TAB_MIN - 1;
	a->ktab = calloc(AGG_TAB_MIN, sizeof(*a->ktab));
	a->iset = calloc(AGG_TAB_MIN, sizeof(*a->iset));
	a->sset = calloc(AGG_TAB_MIN, sizeof(*a->sset));
	pf_jw__init(&a->jw, AGG_LINE_MAX);
	pf_jw__init(&a->lab_jw, AGG_LINE_MAX);
	if (!a->host || !a->ktab || !a->iset || !a->sset) {
		pf_agg__free(a);
		errno = ENOMEM;
		return NULL;
	}
	return a;
}

void pf_agg__free(struct pf_agg *a)
{
	if (!a)
		return;
	agg_arena_reset(a);
	free(a->arena);
	free(a->keys);
	free(a->ktab);
	free(a->lines);
	free(a->iset);
	free(a->sset);
	free(a->host);
	pf_jw__fini(&a->jw);
	pf_jw__fini(&a->lab_jw);
	free(a->lab_buf[0]);
	free(a->lab_buf[1]);
	free(a->argv);
	free(a);
}

uint64_t pf_agg__dropped(const struct pf_agg *a)
{
	return a->dropped;
}

enum pf_rec_schema pf_agg__schema(const struct pf_agg *a)
{
	return a->schema;
}

/* ---- adding ---------------------------------------------------------------------------------- */

static bool agg_proto_has_ports(uint8_t proto)
{
	return proto != IPPROTO_ICMP && proto != IPPROTO_ICMPV6;
}

/* Apply the aggregation level. The reporter says which side is the source:
 * for SRC the local side, for DST the remote side. */
static void agg_fold(const struct pf_agg *a, const struct pf_flow_obs *o, struct agg_key *k)
{
	bool src = o->reporter == PF_REPORTER_SRC;
	int level = o->action == PF_ACTION_DENY ? a->level_denied : a->level;

	memset(k, 0, sizeof(*k));
	k->netns = o->netns;
	k->proto = o->proto;
	k->reporter = o->reporter;
	k->action = o->action == PF_ACTION_DENY ? PF_ACTION_DENY : PF_ACTION_ALLOW;
	/* ICMP has no ports: the spec writes null for both. */
	if (agg_proto_has_ports(o->proto)) {
		k->lport = o->lport;
		k->rport = o->rport;
	}
	if (level >= 1) {
		if (src)
			k->lport = 0;
		else
			k->rport = 0;
	}
	if (level >= 3) {
		if (src)
			k->rport = 0;
		else
			k->lport = 0;
	}
	if (level >= 2) {
		/* The local side is always this host ("hep", aggregated to the
		 * host name), the remote side folds to pvt/pub. */
		k->rclass = agg_addr_private(o->raddr) ? AGG_CLASS_PVT : AGG_CLASS_PUB;
	} else {
		memcpy(k->laddr, o->laddr, sizeof(k->laddr));
		memcpy(k->raddr, o->raddr, sizeof(k->raddr));
	}
}

/* ---- workload endpoints ---- */

/*
 * An endpoint as one interned string, so that the key holds a pointer that
 * is equal exactly when the endpoints are: "name\0name_aggr\0namespace\0"
 * then each label "k=v\0", then one more '\0'. From level 2 on the name is
 * folded away ("-"), so pods folded by their aggregated name share a key.
 */
static int agg_ep_intern(struct pf_agg *a, const struct pf_flow_ep *ep, int level,
			 const char **out)
{
	const char *part[3] = {level >= 2 ? "-" : ep->name, ep->name_aggr, ep->namespace_};
	unsigned nl = a->include_labels ? ep->nlabels : 0;
	struct agg_sset_ent *e;
	size_t n = 1, off = 0, l;
	char small[512], *buf = small;
	bool created;

	for (int i = 0; i < 3; i++)
		n += strlen(part[i] ? part[i] : "-") + 1;
	for (unsigned i = 0; i < nl; i++)
		n += strlen(ep->labels[i]) + 1;
	/* Most endpoints fit on the stack: no allocation per observation. */
	if (n > sizeof(small) && !(buf = malloc(n)))
		return -ENOMEM;
	for (int i = 0; i < 3; i++) {
		l = strlen(part[i] ? part[i] : "-") + 1;
		memcpy(buf + off, part[i] ? part[i] : "-", l);
		off += l;
	}
	for (unsigned i = 0; i < nl; i++) {
		l = strlen(ep->labels[i]) + 1;
		memcpy(buf + off, ep->labels[i], l);
		off += l;
	}
	buf[off] = '\0';
	e = agg_sset_get(a, 1, AGG_SSET_EP, buf, n, &created);
	if (buf != small)
		free(buf);
	if (!e)
		return -ENOMEM;
	*out = e->s;
	return 0;
}

/* Put the observation's endpoints into its key. */
static int agg_eps(struct pf_agg *a, const struct pf_flow_obs *o, struct agg_key *k)
{
	int level = o->action == PF_ACTION_DENY ? a->level_denied : a->level, err = 0;

	if (o->local_ep)
		err = agg_ep_intern(a, o->local_ep, level, &k->lep);
	if (!err && o->remote_ep)
		err = agg_ep_intern(a, o->remote_ep, level, &k->rep);
	return err;
}

/* Index of the key, inserting it if new. -ENOSPC at max_keys. */
static int agg_key_get(struct pf_agg *a, const struct agg_key *k, uint32_t *out)
{
	uint64_t h = agg_hash(a, 0, k, sizeof(*k));
	uint32_t h32 = (uint32_t)(h >> 32);
	struct agg_kslot *s;
	struct agg_kent *ke;
	size_t i;
	int err;

	for (i = h & a->kmask;; i = (i + 1) & a->kmask) {
		s = &a->ktab[i];
		if (!s->idx1)
			break;
		if (s->h32 == h32 && !memcmp(&a->keys[s->idx1 - 1].k, k, sizeof(*k))) {
			*out = s->idx1 - 1;
			return 0;
		}
	}
	if (a->nkeys >= a->max_keys)
		return -ENOSPC;
	err = agg_vec_grow((void **)&a->keys, &a->keys_cap, a->nkeys + 1, sizeof(*a->keys));
	if (err)
		return err;
	if ((a->nkeys + 1) * 2 > a->kmask + 1) {
		err = agg_ktab_grow(a);
		if (err)
			return err;
		for (i = h & a->kmask; a->ktab[i].idx1; i = (i + 1) & a->kmask)
			;
		s = &a->ktab[i];
	}
	ke = &a->keys[a->nkeys];
	memset(ke, 0, sizeof(*ke));
	ke->k = *k;
	ke->hash = h;
	s->idx1 = (uint32_t)a->nkeys + 1;
	s->h32 = h32;
	*out = (uint32_t)a->nkeys++;
	return 0;
}

/* A new line appended to key @ki's list; -ENOMEM. */
static int agg_line_new(struct pf_agg *a, uint32_t ki, uint32_t kind, uint32_t *out)
{
	struct agg_kent *ke = &a->keys[ki];
	struct agg_line *ln;
	uint32_t li;
	int err;

	err = agg_vec_grow((void **)&a->lines, &a->lines_cap, a->nlines + 1, sizeof(*a->lines));
	if (err)
		return err;
	li = (uint32_t)a->nlines++;
	ln = &a->lines[li];
	memset(ln, 0, sizeof(*ln));
	ln->kind = kind;
	if (ke->tail)
		a->lines[ke->tail - 1].next = li + 1;
	else
		ke->head = li + 1;
	ke->tail = li + 1;
	*out = li;
	return 0;
}

/* The line an observation belongs to: its process name's own line, the
 * "*" line once proc_limit names have their own, or the "-" line. */
static int agg_line_get(struct pf_agg *a, uint32_t ki, const struct pf_flow_obs *o, uint32_t *out)
{
	struct agg_kent *ke = &a->keys[ki];
	struct agg_sset_ent *e;
	struct agg_line *ln;
	bool created;
	uint32_t li;
	int err;

	/* An empty name is as good as none. */
	if (!a->include_process || !o->proc_name || !o->proc_name[0]) {
		if (!ke->dash) {
			err = agg_line_new(a, ki, AGG_LINE_DASH, &li);
			if (err)
				return err;
			a->keys[ki].dash = li + 1;
		}
		*out = a->keys[ki].dash - 1;
		return 0;
	}
	e = agg_sset_get(a, ki + 1, AGG_SSET_NAME, o->proc_name, strlen(o->proc_name), &created);
	if (!e)
		return -ENOMEM;
	if (!created) {
		*out = e->val;
		return 0;
	}
	if (ke->n_named < a->proc_limit) {
		err = agg_line_new(a, ki, AGG_LINE_NAMED, &li);
		if (err)
			goto undo;
		ln = &a->lines[li];
		ln->name = e->s;
		ln->name_len = e->len;
		ln->num_names = 1;
		a->keys[ki].n_named++;
	} else {
		if (!ke->star) {
			err = agg_line_new(a, ki, AGG_LINE_STAR, &li);
			if (err)
				goto undo;
			a->keys[ki].star = li + 1;
		}
		li = a->keys[ki].star - 1;
		a->lines[li].num_names++;
	}
	e->val = li;
	*out = li;
	return 0;
undo:
	/* Leave no name entry pointing at a line that does not exist. Linear
	 * probing cannot just empty a slot, so the entry is parked on an owner
	 * no key has. */
	e->owner1 = UINT32_MAX;
	return err;
}

static int agg_add_args(struct pf_agg *a, uint32_t li, const char *args)
{
	struct agg_sset_ent *e;
	struct agg_arg *node;
	struct agg_line *ln;
	bool created;

	e = agg_sset_get(a, li + 1, AGG_SSET_ARGS, args, strlen(args), &created);
	if (!e)
		return -ENOMEM;
	if (!created)
		return 0;
	ln = &a->lines[li];
	ln->num_args++;
	if (e->len > ln->longest_len || !ln->longest) {
		ln->longest = e->s;
		ln->longest_len = e->len;
	}
	if (ln->n_listed < a->args_limit) {
		node = agg_alloc(a, sizeof(*node));
		if (!node)
			return -ENOMEM;
		node->next = NULL;
		node->s = e->s;
		node->len = e->len;
		if (ln->args_tail)
			ln->args_tail->next = node;
		else
			ln->args = node;
		ln->args_tail = node;
		ln->n_listed++;
	}
	return 0;
}

static void agg_add_tcp(struct agg_line *ln, const struct pf_flow_obs *o)
{
	if (!ln->tcp_n) {
		ln->cwnd_min = o->tcp_cwnd;
		ln->mss_min = o->tcp_mss;
	}
	ln->tcp_n++;
	ln->cwnd_sum += o->tcp_cwnd;
	ln->srtt_sum += o->tcp_srtt_us;
	ln->min_rtt_sum += o->tcp_min_rtt_us;
	ln->mss_sum += o->tcp_mss;
	if (o->tcp_cwnd < ln->cwnd_min)
		ln->cwnd_min = o->tcp_cwnd;
	if (o->tcp_mss < ln->mss_min)
		ln->mss_min = o->tcp_mss;
	if (o->tcp_srtt_us > ln->srtt_max)
		ln->srtt_max = o->tcp_srtt_us;
	if (o->tcp_min_rtt_us > ln->min_rtt_max)
		ln->min_rtt_max = o->tcp_min_rtt_us;
	ln->retrans += o->tcp_retrans;
	ln->lost += o->tcp_lost;
	ln->unrecovered += o->tcp_unrecovered_to;
}

int pf_agg__add(struct pf_agg *a, const struct pf_flow_obs *o)
{
	struct agg_iset_ent *fe;
	struct agg_line *ln;
	struct agg_key k;
	uint32_t ki, li;
	bool created;
	int err;

	if (!a || !o || (o->reporter != PF_REPORTER_SRC && o->reporter != PF_REPORTER_DST))
		return -EINVAL;
	agg_fold(a, o, &k);
	err = agg_eps(a, o, &k);
	if (err)
		return err;
	err = agg_key_get(a, &k, &ki);
	if (err) {
		if (err == -ENOSPC)
			a->dropped++;
		return err;
	}
	err = agg_line_get(a, ki, o, &li);
	if (err)
		return err;

	fe = agg_iset_get(a, li + 1, AGG_ISET_FLOW, o->flow_id, &created);
	if (!fe)
		return -ENOMEM;
	ln = &a->lines[li];
	ln->num_flows += created;
	if (o->started && !(fe->flags & AGG_FLOW_STARTED)) {
		fe->flags |= AGG_FLOW_STARTED;
		ln->num_started++;
	}
	if (o->completed && !(fe->flags & AGG_FLOW_COMPLETED)) {
		fe->flags |= AGG_FLOW_COMPLETED;
		ln->num_completed++;
	}
	ln->bytes_in += o->bytes_in;
	ln->bytes_out += o->bytes_out;
	ln->packets_in += o->packets_in;
	ln->packets_out += o->packets_out;
	if (o->proto == IPPROTO_TCP && a->include_tcp && o->has_tcp)
		agg_add_tcp(ln, o);
	if (ln->kind == AGG_LINE_DASH)
		return 0;

	/* The "-" line carries no PIDs or arguments (counts 0 by the spec). */
	if (o->proc_pid) {
		if (!agg_iset_get(a, li + 1, AGG_ISET_PID, o->proc_pid, &created))
			return -ENOMEM;
		if (created && !a->lines[li].num_pids++)
			a->lines[li].pid = o->proc_pid;
	}
	if (o->proc_args && o->proc_args[0])
		return agg_add_args(a, li, o->proc_args);
	return 0;
}

/* ---- the record ------------------------------------------------------------------------------ */

/* One side of the line as the spec's fields see it. */
struct agg_ep {
	const char *ip; /* NULL: null (aggregated away) */
	const char *name;
	const char *name_aggr;
	const char *type;
	const char *ns;
	const char *labels; /* NULL: null; else "k=v\0"... "\0" */
	int port;	    /* -1: null */
};

/* A workload endpoint (@packed from agg_ep_intern) as the line's side. */
static void agg_ep_unpack(struct agg_ep *ep, const char *packed, int include_labels)
{
	ep->type = "wep";
	ep->name = packed;
	packed += strlen(packed) + 1;
	ep->name_aggr = packed;
	packed += strlen(packed) + 1;
	ep->ns = packed;
	packed += strlen(packed) + 1;
	/* A workload without labels: null, as for a host. */
	ep->labels = include_labels && *packed ? packed : NULL;
}

/*
 * The labels object of one side, {"labels":["k=v",...]}, as JSON text for the
 * record's raw field, built in @w and copied NUL-terminated into @buf (grown
 * as needed). NULL (the field is null) for no labels, or when the text
 * cannot be built (no memory; the writer's cap): the line goes out without.
 */
static const char *agg_labels_json(struct pf_jw *w, char **buf, size_t *cap, const char *labels)
{
	if (!labels)
		return NULL;
	pf_jw__reset(w);
	pf_jw__obj_begin(w);
	pf_jw__key(w, "labels");
	pf_jw__arr_begin(w);
	for (; *labels; labels += strlen(labels) + 1)
		pf_jw__str(w, labels);
	pf_jw__arr_end(w);
	pf_jw__obj_end(w);
	if (pf_jw__error(w))
		return NULL;
	if (w->len + 1 > *cap) {
		char *nb = realloc(*buf, w->len + 1);

		if (!nb)
			return NULL;
		*buf = nb;
		*cap = w->len + 1;
	}
	memcpy(*buf, w->buf, w->len);
	(*buf)[w->len] = '\0';
	return *buf;
}

static const char *agg_proto_str(uint8_t proto, char tmp[4])
{
	char *p = tmp + 3;

	/* Calico's names (its flow log's protoNames); others by number. */
	switch (proto) {
	case IPPROTO_TCP:
		return "tcp";
	case IPPROTO_UDP:
		return "udp";
	case IPPROTO_ICMP:
		return "icmp";
	case IPPROTO_ICMPV6:
		return "icmp6";
	case IPPROTO_SCTP:
		return "sctp";
	case IPPROTO_IPIP:
		return "ipip";
	case IPPROTO_ESP:
		return "esp";
	}
	*p = '\0';
	do {
		*--p = (char)('0' + proto % 10);
		proto /= 10;
	} while (proto);
	return p;
}

/* Strings a record points at that are not the aggregator's own. */
struct agg_rec_buf {
	char lip[INET6_ADDRSTRLEN], rip[INET6_ADDRSTRLEN], proto[4], pid[11];
};

/* The argument strings a record lists: a->argv grown to @n entries. */
static struct pf_strn *agg_argv(struct pf_agg *a, size_t n)
{
	struct pf_strn *v;

	if (n <= a->argv_cap)
		return a->argv;
	v = realloc(a->argv, n * sizeof(*v));
	if (!v)
		return NULL;
	a->argv = v;
	a->argv_cap = n;
	return v;
}

/* Fill @r with the record of (@ke, @ln). Returns 0 or -ENOMEM. */
static int agg_record(struct pf_agg *a, const struct agg_kent *ke, const struct agg_line *ln,
		      uint64_t start_s, uint64_t end_s, struct agg_rec_buf *b, struct pf_record *r)
{
	const struct agg_key *k = &ke->k;
	bool src = k->reporter == PF_REPORTER_SRC, ports = agg_proto_has_ports(k->proto);
	int level = k->action == PF_ACTION_DENY ? a->level_denied : a->level;
	struct agg_ep local, remote, *s, *d;
	const struct agg_arg *arg;
	struct pf_strn *argv;
	uint32_t pid, i;
	char *p;

	/* The local side is the host (hep) unless its process is in a
	 * container (wep); the remote side a network (net), or a workload on
	 * this node. */
	local.type = "hep";
	local.name_aggr = a->host;
	remote.type = "net";
	remote.name = "-";
	local.ns = "-";
	remote.ns = "-";
	local.labels = NULL;
	remote.labels = NULL;
	if (level >= 2) {
		local.ip = NULL;
		local.name = "-";
		remote.ip = NULL;
		remote.name_aggr = k->rclass == AGG_CLASS_PVT ? "pvt" : "pub";
	} else {
		local.ip = pf_addr_str(k->laddr, b->lip, sizeof(b->lip));
		local.name = a->host;
		remote.ip = pf_addr_str(k->raddr, b->rip, sizeof(b->rip));
		remote.name_aggr = pf_addr_aggr_name(k->raddr);
	}
	/* Folded ports are 0 in the key; which ones are folded follows from
	 * the level and the reporter, not from the value (port 0 is a port). */
	local.port = ports ? k->lport : -1;
	remote.port = ports ? k->rport : -1;
	if (k->lep)
		agg_ep_unpack(&local, k->lep, a->include_labels);
	if (k->rep)
		agg_ep_unpack(&remote, k->rep, a->include_labels);
	s = src ? &local : &remote;
	d = src ? &remote : &local;
	if (level >= 1)
		s->port = -1;
	if (level >= 3)
		d->port = -1;

	pf_rec__init(r);
	r->start_time = start_s;
	r->end_time = end_s;
	r->source_ip = s->ip;
	r->source_name = s->name;
	r->source_name_aggr = s->name_aggr;
	r->source_namespace = s->ns;
	r->source_port = s->port;
	r->source_type = s->type;
	r->source_labels = agg_labels_json(&a->lab_jw, &a->lab_buf[0], &a->lab_cap[0], s->labels);
	r->dest_ip = d->ip;
	r->dest_name = d->name;
	r->dest_name_aggr = d->name_aggr;
	r->dest_namespace = d->ns;
	r->dest_port = d->port;
	r->dest_type = d->type;
	r->dest_labels = agg_labels_json(&a->lab_jw, &a->lab_buf[1], &a->lab_cap[1], d->labels);
	r->proto = agg_proto_str(k->proto, b->proto);
	r->action = k->action == PF_ACTION_DENY ? "deny" : "allow";
	r->reporter = src ? "src" : "dst";
	r->bytes_in = ln->bytes_in;
	r->bytes_out = ln->bytes_out;
	r->num_flows = ln->num_flows;
	r->num_flows_started = ln->num_started;
	r->num_flows_completed = ln->num_completed;
	r->packets_in = ln->packets_in;
	r->packets_out = ln->packets_out;

	/* Process fields: spec section 3. */
	if (ln->kind == AGG_LINE_NAMED) {
		r->process_name.p = ln->name;
		r->process_name.len = ln->name_len;
	} else {
		r->process_name.p = ln->kind == AGG_LINE_STAR ? "*" : "-";
		r->process_name.len = 1;
	}
	r->num_process_names = ln->kind == AGG_LINE_DASH ? 0 : ln->num_names;
	if (ln->num_pids == 1) {
		pid = ln->pid;
		p = b->pid + sizeof(b->pid) - 1;
		*p = '\0';
		do {
			*--p = (char)('0' + pid % 10);
			pid /= 10;
		} while (pid);
		r->process_id = p;
	} else {
		r->process_id = ln->num_pids ? "*" : "-";
	}
	r->num_process_ids = ln->num_pids;
	if (ln->num_pids == 1) {
		/* One process: its longest argument string says the most. */
		if (ln->longest && a->args_limit) {
			argv = agg_argv(a, 1);
			if (!argv)
				return -ENOMEM;
			argv[0].p = ln->longest;
			argv[0].len = ln->longest_len;
			r->process_args.v = argv;
			r->process_args.n = 1;
		}
		r->num_process_args = ln->num_args ? 1 : 0;
	} else {
		if (ln->n_listed) {
			argv = agg_argv(a, ln->n_listed);
			if (!argv)
				return -ENOMEM;
			for (arg = ln->args, i = 0; arg && i < ln->n_listed; arg = arg->next, i++) {
				argv[i].p = arg->s;
				argv[i].len = arg->len;
			}
			r->process_args.v = argv;
			r->process_args.n = i;
		}
		r->num_process_args = ln->num_args;
	}

	/* Means truncate, as integer division in Calico's collector does. */
	r->tcp_mean_send_congestion_window = ln->tcp_n ? ln->cwnd_sum / ln->tcp_n : 0;
	r->tcp_min_send_congestion_window = ln->cwnd_min;
	r->tcp_mean_smooth_rtt = ln->tcp_n ? ln->srtt_sum / ln->tcp_n : 0;
	r->tcp_max_smooth_rtt = ln->srtt_max;
	r->tcp_mean_min_rtt = ln->tcp_n ? ln->min_rtt_sum / ln->tcp_n : 0;
	r->tcp_max_min_rtt = ln->min_rtt_max;
	r->tcp_mean_mss = ln->tcp_n ? ln->mss_sum / ln->tcp_n : 0;
	r->tcp_min_mss = ln->mss_min;
	r->tcp_total_retransmissions = ln->retrans;
	r->tcp_lost_packets = ln->lost;
	r->tcp_unrecovered_to = ln->unrecovered;
	r->host = a->host;
	return 0;
}

int pf_agg__flush_records(struct pf_agg *a, uint64_t start_s, uint64_t end_s, pf_agg_rec_fn fn,
			  void *ctx)
{
	const struct agg_kent *ke;
	const struct agg_line *ln;
	struct agg_rec_buf b;
	struct pf_record r;
	size_t ki;
	uint32_t li;
	int err = 0;

	if (!a || !fn)
		return -EINVAL;
	for (ki = 0; ki < a->nkeys && !err; ki++) {
		ke = &a->keys[ki];
		for (li = ke->head; li && !err; li = ln->next) {
			ln = &a->lines[li - 1];
			err = agg_record(a, ke, ln, start_s, end_s, &b, &r);
			if (!err)
				err = fn(&r, ctx);
		}
	}
	/* The interval is over whatever happened: keeping it would mix its
	 * counts into the next interval under the wrong times. */
	agg_clear(a);
	return err;
}

struct agg_line_ctx {
	struct pf_agg *a;
	pf_agg_line_fn fn;
	void *ctx;
};

static int agg_line_of(const struct pf_record *r, void *ctx)
{
	struct agg_line_ctx *c = ctx;
	int err = pf_rec__line(&c->a->jw, r, c->a->schema);

	/* A line that does not fit even without argument strings is
	 * dropped and counted. */
	if (err == -ENOSPC) {
		c->a->dropped++;
		return 0;
	}
	return err ? err : c->fn(c->a->jw.buf, c->a->jw.len, c->ctx);
}

int pf_agg__flush(struct pf_agg *a, uint64_t start_s, uint64_t end_s, pf_agg_line_fn fn, void *ctx)
{
	struct agg_line_ctx c = {a, fn, ctx};

	if (!fn)
		return -EINVAL;
	return pf_agg__flush_records(a, start_s, end_s, agg_line_of, &c);
}
