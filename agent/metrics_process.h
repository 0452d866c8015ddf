/* SPDX-License-Identifier: BSD-2-Clause */
#ifndef PF_METRICS_PROCESS_H
#define PF_METRICS_PROCESS_H

struct pf_metrics_process;

/* Fill @p from /proc/self. Returns 0, or -1 when /proc/self/stat could not
 * be read (@p then holds zeros). */
int pf_metrics_process__read(struct pf_metrics_process *p);

#endif
