// SPDX-License-Identifier: BSD-2-Clause
/* The loss marker line (see loss_marker.h). */
#include "loss_marker.h"

#include <stdio.h>

int pf_loss_marker__line(struct pf_jw *w, uint64_t start_s, uint64_t end_s, const char *host,
			 uint64_t lost)
{
	/* Counters in the contract's order between "policies" and
	 * "process_name", and after "num_original_source_ips": all 0. */
	static const char *const counters[] = {
	    "bytes_in",
	    "bytes_out",
	    "num_flows",
	    "num_flows_started",
	    "num_flows_completed",
	    "packets_in",
	    "packets_out",
	    "transit_bytes_in",
	    "transit_bytes_out",
	    "transit_packets_in",
	    "transit_packets_out",
	    "http_requests_allowed_in",
	    "http_requests_denied_in",
	};
	static const char *const tcp[] = {
	    "tcp_mean_send_congestion_window",
	    "tcp_min_send_congestion_window",
	    "tcp_mean_smooth_rtt",
	    "tcp_max_smooth_rtt",
	    "tcp_mean_min_rtt",
	    "tcp_max_min_rtt",
	    "tcp_mean_mss",
	    "tcp_min_mss",
	    "tcp_total_retransmissions",
	    "tcp_lost_packets",
	    "tcp_unrecovered_to",
	};
	char text[48];

	pf_jw__reset(w);
	pf_jw__obj_begin(w);
	pf_jw__key(w, "start_time");
	pf_jw__u64(w, start_s);
	pf_jw__key(w, "end_time");
	pf_jw__u64(w, end_s);
	pf_jw__key(w, "source_ip");
	pf_jw__null(w);
	/* The host lost the events: it is the source, as on its own lines. */
	pf_jw__key(w, "source_name");
	pf_jw__str(w, host);
	pf_jw__key(w, "source_name_aggr");
	pf_jw__str(w, host);
	pf_jw__key(w, "source_namespace");
	pf_jw__str(w, "-");
	pf_jw__key(w, "nat_outgoing_ports");
	pf_jw__null(w);
	pf_jw__key(w, "source_port");
	pf_jw__null(w);
	pf_jw__key(w, "source_type");
	pf_jw__str(w, "hep");
	pf_jw__key(w, "source_labels");
	pf_jw__null(w);
	pf_jw__key(w, "dest_ip");
	pf_jw__null(w);
	pf_jw__key(w, "dest_name");
	pf_jw__str(w, "-");
	pf_jw__key(w, "dest_name_aggr");
	pf_jw__str(w, "-");
	pf_jw__key(w, "dest_namespace");
	pf_jw__str(w, "-");
	pf_jw__key(w, "dest_port");
	pf_jw__null(w);
	pf_jw__key(w, "dest_type");
	pf_jw__str(w, "net");
	pf_jw__key(w, "dest_labels");
	pf_jw__null(w);
	pf_jw__key(w, "dest_service_namespace");
	pf_jw__str(w, "-");
	pf_jw__key(w, "dest_service_name");
	pf_jw__str(w, "-");
	pf_jw__key(w, "dest_service_port");
	pf_jw__str(w, "-");
	pf_jw__key(w, "dest_service_port_num");
	pf_jw__null(w);
	pf_jw__key(w, "dest_domains");
	pf_jw__null(w);
	/* Protocol number 0: no transport protocol (the contract writes an
	 * unnamed protocol as its number). */
	pf_jw__key(w, "proto");
	pf_jw__str(w, "0");
	pf_jw__key(w, "action");
	pf_jw__str(w, "allow");
	pf_jw__key(w, "reporter");
	pf_jw__str(w, "src");
	pf_jw__key(w, "policies");
	pf_jw__null(w);
	for (size_t i = 0; i < sizeof(counters) / sizeof(counters[0]); i++) {
		pf_jw__key(w, counters[i]);
		pf_jw__u64(w, 0);
	}
	pf_jw__key(w, "process_name");
	pf_jw__str(w, PF_LOSS_MARKER_NAME);
	pf_jw__key(w, "num_process_names");
	pf_jw__u64(w, 1);
	pf_jw__key(w, "process_id");
	pf_jw__str(w, "-");
	pf_jw__key(w, "num_process_ids");
	pf_jw__u64(w, 0);
	pf_jw__key(w, "process_args");
	pf_jw__arr_begin(w);
	snprintf(text, sizeof(text), "lost_events=%llu", (unsigned long long)lost);
	pf_jw__str(w, text);
	pf_jw__arr_end(w);
	pf_jw__key(w, "num_process_args");
	pf_jw__u64(w, lost);
	pf_jw__key(w, "original_source_ips");
	pf_jw__null(w);
	pf_jw__key(w, "num_original_source_ips");
	pf_jw__u64(w, 0);
	for (size_t i = 0; i < sizeof(tcp) / sizeof(tcp[0]); i++) {
		pf_jw__key(w, tcp[i]);
		pf_jw__u64(w, 0);
	}
	pf_jw__key(w, "host");
	pf_jw__str(w, host);
	pf_jw__obj_end(w);
	pf_jw__raw(w, "\n", 1);
	return pf_jw__error(w);
}
