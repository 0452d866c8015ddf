/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Per-interval reporting of user-space losses: each counter is a running
 * total kept where the loss happens (the aggregator, the process cache, the
 * output buffers); once per interval the agent says how much each grew, in
 * one line per counter, and nothing when nothing was lost.
 */
#ifndef PF_LOSS_LOG_H
#define PF_LOSS_LOG_H

#include <stddef.h>
#include <stdint.h>

struct pf_loss {
	const char *what;  /* the rest of the line after the count */
	uint64_t reported; /* the total already told */
};

/*
 * If @total grew past what was reported, write "<growth> <what>" into @buf
 * and return the growth (now reported); otherwise return 0 and leave @buf.
 */
uint64_t pf_loss__delta(struct pf_loss *l, uint64_t total, char *buf, size_t sz);

#endif
