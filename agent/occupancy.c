// SPDX-License-Identifier: BSD-2-Clause
/*
 * How full each bounded table is: the kernel maps and the agent's own
 * tables, as entries / capacity, in one log line per flush when any of them
 * is more than half full (always with -v), so an operator sees a table fill
 * long before anything is lost.
 *
 * Counting costs nothing extra: the map counts come from the walks the
 * collection makes every flush anyway (it reads every flows entry, and
 * every socks entry to delete closed sockets), and the user-space tables
 * keep their own counts.
 */
#include <stdbool.h>
#include <stdio.h>

#include "agent.h"
#include "containers.h"
#include "flow_reconcile.h"
#include "metrics.h"
#include "proc_cache.h"

struct occ_row {
	const char *name;
	uint64_t entries;
	uint64_t capacity;		      /* 0: no bound of its own */
	enum pf_metric m_entries, m_capacity; /* the registry's gauges (m_capacity unused at 0) */
};

static unsigned pct(const struct occ_row *r)
{
	return r->capacity ? (unsigned)(r->entries * 100 / r->capacity) : 0;
}

void pf_occupancy__log(const struct pf_collector *c, const struct pf_proc_cache *procs,
		       bool verbose)
{
	struct pf_proc_cache_stats ps = {0};
	struct pf_containers_stats cs = {0};
	char line[512];
	size_t off = 0;
	bool over = false;

	pf_proc_cache__stats(procs, &ps);
	if (c->ctrs)
		pf_containers__stats(c->ctrs, &cs);
	const struct occ_row rows[] = {
	    {"socks", c->n_socks_map, c->cfg->max_sockets, PF_M_ENTRIES_SOCKS, PF_M_CAPACITY_SOCKS},
	    {"flows", c->n_flows_map, c->cfg->max_flows, PF_M_ENTRIES_FLOWS, PF_M_CAPACITY_FLOWS},
	    {"tcp", c->n_sk_flows, 0, PF_M_ENTRIES_TCP, PF_M_MAX},
	    {"processes", ps.entries, PF_PROC_CACHE_MAX, PF_M_ENTRIES_PROCESSES,
	     PF_M_CAPACITY_PROCESSES},
	    {"collector flows", pf_flow_rc__flows(c->rc), PF_COLLECTOR_FLOWS_MAX,
	     PF_M_ENTRIES_COLLECTOR, PF_M_CAPACITY_COLLECTOR},
	    {"handshakes", pf_flow_rc__handshakes(c->rc), c->cfg->max_flows,
	     PF_M_ENTRIES_HANDSHAKES, PF_M_CAPACITY_HANDSHAKES},
	    /* cgroups seen and their container names (agent/containers.c) */
	    {"cgroups", cs.entries, PF_CTR_MAX, PF_M_ENTRIES_CGROUPS, PF_M_CAPACITY_CGROUPS},
	};

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct occ_row *r = &rows[i];
		int w;

		/* The same figures for the metrics endpoint. */
		pf_metrics__set(&pf_registry, r->m_entries, r->entries);
		if (r->capacity)
			pf_metrics__set(&pf_registry, r->m_capacity, r->capacity);

		over = over || pct(r) > 50;
		if (r->capacity)
			w = snprintf(line + off, sizeof(line) - off, "%s%s %llu/%llu (%u%%)",
				     i ? ", " : "", r->name, (unsigned long long)r->entries,
				     (unsigned long long)r->capacity, pct(r));
		else
			w = snprintf(line + off, sizeof(line) - off, "%s%s %llu (no bound)",
				     i ? ", " : "", r->name, (unsigned long long)r->entries);
		if (w < 0 || (size_t)w >= sizeof(line) - off)
			break;
		off += (size_t)w;
	}
	if (over || verbose)
		pf_log("occupancy: %s", line);
}
