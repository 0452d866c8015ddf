/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-interval reporting of user-space losses: each counter is a running
 * total kept where the loss happens (the aggregator, the process cache, the
 * output buffers) and followed by its slot of the registry (metrics.h);
 * once per interval the agent says how much each grew, in
 * one line per counter, and nothing when nothing was lost.
 */
#ifndef PF_LOSS_LOG_H
#define PF_LOSS_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "metrics.h"

struct pf_loss {
	enum pf_metric metric; /* its counter in the registry (pf_loss__report()) */
	const char *what;      /* the rest of the line after the count */
	uint64_t reported;     /* the total already told */
};

/*
 * If @total grew past what was reported, write "<growth> <what>" into @buf
 * and return the growth (now reported); otherwise return 0 and leave @buf.
 */
uint64_t pf_loss__delta(struct pf_loss *l, uint64_t total, char *buf, size_t sz);

/* The same with the total read from @l->metric of the registry @m: the log
 * line and the metrics endpoint tell the same counter. */
uint64_t pf_loss__report(struct pf_loss *l, const struct pf_metrics *m, char *buf, size_t sz);

#endif
