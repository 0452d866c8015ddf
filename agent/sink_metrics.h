/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The metrics endpoint: --metrics-listen [ADDR:]PORT serves /metrics, the
 * registry (lib/metrics.h) and the process_* metrics in the Prometheus
 * text format, over HTTP (libmicrohttpd).
 */
#ifndef PF_SINK_METRICS_H
#define PF_SINK_METRICS_H

struct pf_metrics_sink;

/*
 * Bind @listen ("[ADDR:]PORT"; ADDR absent: every address) and start
 * serving. Call before capabilities are dropped (a port below 1024 needs
 * CAP_NET_BIND_SERVICE): the socket is bound here, and the serving threads
 * are started from a thread that first gives up every capability, so none
 * of them holds any. Returns NULL after a message saying why.
 */
struct pf_metrics_sink *pf_metrics_sink__start(const char *listen);

/* Stop serving and close the socket. Accepts NULL. */
void pf_metrics_sink__stop(struct pf_metrics_sink *s);

#endif
