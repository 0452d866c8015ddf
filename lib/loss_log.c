// SPDX-License-Identifier: BSD-2-Clause
/* Per-interval reporting of user-space losses (see loss_log.h). */
#include "loss_log.h"

#include <stdio.h>

uint64_t pf_loss__delta(struct pf_loss *l, uint64_t total, char *buf, size_t sz)
{
	uint64_t d;

	if (total <= l->reported)
		return 0;
	d = total - l->reported;
	l->reported = total;
	snprintf(buf, sz, "%llu %s", (unsigned long long)d, l->what);
	return d;
}

uint64_t pf_loss__report(struct pf_loss *l, const struct pf_metrics *m, char *buf, size_t sz)
{
	return pf_loss__delta(l, pf_metrics__get(m, l->metric), buf, sz);
}
