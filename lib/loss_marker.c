// SPDX-License-Identifier: BSD-2-Clause
/* The loss marker record (see loss_marker.h). */
#include "loss_marker.h"

#include <stdio.h>
#include <string.h>

void pf_loss_marker__make(struct pf_loss_marker *m, uint64_t start_s, uint64_t end_s,
			  const char *host, uint64_t lost)
{
	struct pf_record *r = &m->rec;
	int n;

	pf_rec__init(r);
	r->start_time = start_s;
	r->end_time = end_s;
	/* The host lost the events: it is the source, as on its own lines. */
	r->source_name = host;
	r->source_name_aggr = host;
	r->source_type = "hep";
	r->process_name.p = PF_LOSS_MARKER_NAME;
	r->process_name.len = sizeof(PF_LOSS_MARKER_NAME) - 1;
	r->num_process_names = 1;
	n = snprintf(m->text, sizeof(m->text), "lost_events=%llu", (unsigned long long)lost);
	m->arg.p = m->text;
	m->arg.len = (size_t)n;
	r->process_args.v = &m->arg;
	r->process_args.n = 1;
	r->num_process_args = lost;
	r->host = host;
}

int pf_loss_marker__line(struct pf_jw *w, uint64_t start_s, uint64_t end_s, const char *host,
			 uint64_t lost, enum pf_rec_schema schema)
{
	struct pf_loss_marker m;

	pf_loss_marker__make(&m, start_s, end_s, host, lost);
	pf_jw__reset(w);
	return pf_rec__write(w, &m.rec, schema);
}
