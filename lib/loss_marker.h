/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The loss marker: one line in flows.log per interval in which the kernel
 * side could not deliver process events (the ring buffer was full).
 *
 * A shipper that tails flows.log expects flow records, so the marker is
 * one: every key of the contract, in order, with valid types, all
 * counters 0 and num_flows 0, so that it adds nothing to any sum. It is
 * told apart by its process_name, PF_LOSS_MARKER_NAME, and carries the
 * count twice: as the text "lost_events=N" in process_args, and as the
 * number N in num_process_args (a field a dashboard can sum). Flows whose
 * exec event was among the lost ones are written with the task name.
 */
#ifndef PF_LOSS_MARKER_H
#define PF_LOSS_MARKER_H

#include <stdint.h>

#include "jsonw.h"
#include "record.h"

#define PF_LOSS_MARKER_NAME "[procflow:events-lost]"

/* The marker record and the strings it points at. */
struct pf_loss_marker {
	struct pf_record rec;
	struct pf_strn arg;
	char text[48]; /* "lost_events=N" */
};

/*
 * Make the marker for the interval [@start_s, @end_s] on host @host with
 * @lost events lost, in @m. @m->rec is valid while @m and @host are.
 */
void pf_loss_marker__make(struct pf_loss_marker *m, uint64_t start_s, uint64_t end_s,
			  const char *host, uint64_t lost);

/*
 * The marker's line with the keys of @schema, '\n' included, into @w (which
 * is reset first). Returns 0 or the writer's negative errno.
 */
int pf_loss_marker__line(struct pf_jw *w, uint64_t start_s, uint64_t end_s, const char *host,
			 uint64_t lost, enum pf_rec_schema schema);

#endif
