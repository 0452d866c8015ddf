/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * One flow-log record and the one table of its fields
 * (../shared/spec/flow-log-format.md is the contract).
 *
 * PF_REC_FIELDS() below is the only place the fields are spelled: each row
 * gives the field's name (also the struct member that holds its value), the
 * JSON type that member is written as, the ClickHouse column type, and the
 * key sets (schemas) that carry it. Everything else is generated from it:
 * the field numbers (enum pf_rec_field, and the query scanner's PF_FL_*),
 * the table pf_rec__fields(), the JSON line (pf_rec__write()), the query
 * scanner's names (lib/flowline.c) and the ClickHouse table and rows
 * (lib/chrow.c). Adding a field is one row here, one member in struct
 * pf_record, and filling it where records are made.
 *
 * Nothing here allocates: a record points at strings its maker owns, and is
 * valid while they are.
 */
#ifndef PF_RECORD_H
#define PF_RECORD_H

#include <stddef.h>
#include <stdint.h>

struct pf_jw;

/* How a member is read and written; the C type of the member follows. */
enum pf_rec_jtype {
	PF_RJ_U64,   /* uint64_t: a JSON integer */
	PF_RJ_PORT,  /* int32_t: an integer, null when negative */
	PF_RJ_STR,   /* const char *: a string, null when NULL */
	PF_RJ_STRN,  /* struct pf_strn: a string of any bytes, null when .p is NULL */
	PF_RJ_STRV,  /* struct pf_strv: an array of strings, null when .v is NULL */
	PF_RJ_PORTV, /* struct pf_u16v: an array of integers, null when .v is NULL */
	PF_RJ_RAW,   /* const char *: JSON text written as it is (an object), null when NULL */
};

/* ClickHouse column types (lib/chrow.h says how null becomes a value). */
enum pf_rec_chtype {
	PF_RC_TIME,    /* DateTime from Unix seconds */
	PF_RC_STR,     /* String */
	PF_RC_U16,     /* UInt16 */
	PF_RC_U32,     /* UInt32 */
	PF_RC_U64,     /* UInt64 */
	PF_RC_ARR_STR, /* Array(String) */
	PF_RC_ARR_U16, /* Array(UInt16) */
	PF_RC_JSON,    /* String holding the value's JSON text */
};

/*
 * Key sets. Calico Enterprise's ingestion (Linseed) refuses unknown keys,
 * and until 2026-03 refused the whole batch for one such line; it knows the
 * transit_* keys only since 2025-07-29 (3.21.1 and older lack them).
 */
enum pf_rec_schema {
	PF_REC_SCHEMA_CURRENT = 0,     /* Calico's current key set (and host) */
	PF_REC_SCHEMA_CALICO_3_20 = 1, /* without the four transit_* keys */
	PF_REC_NSCHEMAS,
};
#define PF_RS_ALL     ((1u << PF_REC_SCHEMA_CURRENT) | (1u << PF_REC_SCHEMA_CALICO_3_20))
#define PF_RS_CURRENT (1u << PF_REC_SCHEMA_CURRENT)

/* X(ID, field, JSON type, ClickHouse type, schemas), in the contract's order. The
 * field is the key on the line, the ClickHouse column and the member of
 * struct pf_record; ID names it in enums. */
#define PF_REC_FIELDS(X)                                                                           \
	X(START_TIME, start_time, U64, TIME, ALL)                                                  \
	X(END_TIME, end_time, U64, TIME, ALL)                                                      \
	X(SOURCE_IP, source_ip, STR, STR, ALL)                                                     \
	X(SOURCE_NAME, source_name, STR, STR, ALL)                                                 \
	X(SOURCE_NAME_AGGR, source_name_aggr, STR, STR, ALL)                                       \
	X(SOURCE_NAMESPACE, source_namespace, STR, STR, ALL)                                       \
	X(NAT_OUTGOING_PORTS, nat_outgoing_ports, PORTV, ARR_U16, ALL)                             \
	X(SOURCE_PORT, source_port, PORT, U16, ALL)                                                \
	X(SOURCE_TYPE, source_type, STR, STR, ALL)                                                 \
	X(SOURCE_LABELS, source_labels, RAW, JSON, ALL)                                            \
	X(DEST_IP, dest_ip, STR, STR, ALL)                                                         \
	X(DEST_NAME, dest_name, STR, STR, ALL)                                                     \
	X(DEST_NAME_AGGR, dest_name_aggr, STR, STR, ALL)                                           \
	X(DEST_NAMESPACE, dest_namespace, STR, STR, ALL)                                           \
	X(DEST_PORT, dest_port, PORT, U16, ALL)                                                    \
	X(DEST_TYPE, dest_type, STR, STR, ALL)                                                     \
	X(DEST_LABELS, dest_labels, RAW, JSON, ALL)                                                \
	X(DEST_SERVICE_NAMESPACE, dest_service_namespace, STR, STR, ALL)                           \
	X(DEST_SERVICE_NAME, dest_service_name, STR, STR, ALL)                                     \
	X(DEST_SERVICE_PORT, dest_service_port, STR, STR, ALL)                                     \
	X(DEST_SERVICE_PORT_NUM, dest_service_port_num, PORT, U16, ALL)                            \
	X(DEST_DOMAINS, dest_domains, STRV, ARR_STR, ALL)                                          \
	X(PROTO, proto, STR, STR, ALL)                                                             \
	X(ACTION, action, STR, STR, ALL)                                                           \
	X(REPORTER, reporter, STR, STR, ALL)                                                       \
	X(POLICIES, policies, RAW, JSON, ALL)                                                      \
	X(BYTES_IN, bytes_in, U64, U64, ALL)                                                       \
	X(BYTES_OUT, bytes_out, U64, U64, ALL)                                                     \
	X(NUM_FLOWS, num_flows, U64, U64, ALL)                                                     \
	X(NUM_FLOWS_STARTED, num_flows_started, U64, U64, ALL)                                     \
	X(NUM_FLOWS_COMPLETED, num_flows_completed, U64, U64, ALL)                                 \
	X(PACKETS_IN, packets_in, U64, U64, ALL)                                                   \
	X(PACKETS_OUT, packets_out, U64, U64, ALL)                                                 \
	X(TRANSIT_BYTES_IN, transit_bytes_in, U64, U64, CURRENT)                                   \
	X(TRANSIT_BYTES_OUT, transit_bytes_out, U64, U64, CURRENT)                                 \
	X(TRANSIT_PACKETS_IN, transit_packets_in, U64, U64, CURRENT)                               \
	X(TRANSIT_PACKETS_OUT, transit_packets_out, U64, U64, CURRENT)                             \
	X(HTTP_REQUESTS_ALLOWED_IN, http_requests_allowed_in, U64, U64, ALL)                       \
	X(HTTP_REQUESTS_DENIED_IN, http_requests_denied_in, U64, U64, ALL)                         \
	X(PROCESS_NAME, process_name, STRN, STR, ALL)                                              \
	X(NUM_PROCESS_NAMES, num_process_names, U64, U32, ALL)                                     \
	X(PROCESS_ID, process_id, STR, STR, ALL)                                                   \
	X(NUM_PROCESS_IDS, num_process_ids, U64, U32, ALL)                                         \
	X(PROCESS_ARGS, process_args, STRV, ARR_STR, ALL)                                          \
	X(NUM_PROCESS_ARGS, num_process_args, U64, U32, ALL)                                       \
	X(ORIGINAL_SOURCE_IPS, original_source_ips, STRV, ARR_STR, ALL)                            \
	X(NUM_ORIGINAL_SOURCE_IPS, num_original_source_ips, U64, U32, ALL)                         \
	X(TCP_MEAN_SEND_CONGESTION_WINDOW, tcp_mean_send_congestion_window, U64, U32, ALL)         \
	X(TCP_MIN_SEND_CONGESTION_WINDOW, tcp_min_send_congestion_window, U64, U32, ALL)           \
	X(TCP_MEAN_SMOOTH_RTT, tcp_mean_smooth_rtt, U64, U32, ALL)                                 \
	X(TCP_MAX_SMOOTH_RTT, tcp_max_smooth_rtt, U64, U32, ALL)                                   \
	X(TCP_MEAN_MIN_RTT, tcp_mean_min_rtt, U64, U32, ALL)                                       \
	X(TCP_MAX_MIN_RTT, tcp_max_min_rtt, U64, U32, ALL)                                         \
	X(TCP_MEAN_MSS, tcp_mean_mss, U64, U32, ALL)                                               \
	X(TCP_MIN_MSS, tcp_min_mss, U64, U32, ALL)                                                 \
	X(TCP_TOTAL_RETRANSMISSIONS, tcp_total_retransmissions, U64, U64, ALL)                     \
	X(TCP_LOST_PACKETS, tcp_lost_packets, U64, U64, ALL)                                       \
	X(TCP_UNRECOVERED_TO, tcp_unrecovered_to, U64, U64, ALL)                                   \
	X(HOST, host, STR, STR, ALL)

#define PF_REC_ENUM_(id, f, j, c, s) PF_REC_##id,
/* Field numbers, in the contract's order: PF_REC_START_TIME, ... */
enum pf_rec_field { PF_REC_FIELDS(PF_REC_ENUM_) PF_REC_NFIELDS };

/* The fields every key set carries, as a mask of 1 << field. */
#define PF_REC_REQ_(id, f, j, c, s) | ((PF_RS_##s) == PF_RS_ALL ? 1ull << PF_REC_##id : 0)
#define PF_REC_REQUIRED		    (0 PF_REC_FIELDS(PF_REC_REQ_))

struct pf_strn {
	const char *p;
	size_t len;
};

struct pf_strv {
	const struct pf_strn *v;
	size_t n;
};

struct pf_u16v {
	const uint16_t *v;
	size_t n;
};

/* One line's values; a member per row of PF_REC_FIELDS(), of the row's type. */
struct pf_record {
	uint64_t start_time, end_time;
	const char *source_ip, *source_name, *source_name_aggr, *source_namespace;
	struct pf_u16v nat_outgoing_ports;
	int32_t source_port;
	const char *source_type, *source_labels;
	const char *dest_ip, *dest_name, *dest_name_aggr, *dest_namespace;
	int32_t dest_port;
	const char *dest_type, *dest_labels;
	const char *dest_service_namespace, *dest_service_name, *dest_service_port;
	int32_t dest_service_port_num;
	struct pf_strv dest_domains;
	const char *proto, *action, *reporter, *policies;
	uint64_t bytes_in, bytes_out, num_flows, num_flows_started, num_flows_completed;
	uint64_t packets_in, packets_out;
	uint64_t transit_bytes_in, transit_bytes_out, transit_packets_in, transit_packets_out;
	uint64_t http_requests_allowed_in, http_requests_denied_in;
	struct pf_strn process_name;
	uint64_t num_process_names;
	const char *process_id;
	uint64_t num_process_ids;
	struct pf_strv process_args;
	uint64_t num_process_args;
	struct pf_strv original_source_ips;
	uint64_t num_original_source_ips;
	uint64_t tcp_mean_send_congestion_window, tcp_min_send_congestion_window;
	uint64_t tcp_mean_smooth_rtt, tcp_max_smooth_rtt, tcp_mean_min_rtt, tcp_max_min_rtt;
	uint64_t tcp_mean_mss, tcp_min_mss;
	uint64_t tcp_total_retransmissions, tcp_lost_packets, tcp_unrecovered_to;
	const char *host;
};

struct pf_rec_field_info {
	const char *name;
	uint8_t name_len;
	uint8_t jtype;	 /* enum pf_rec_jtype */
	uint8_t chtype;	 /* enum pf_rec_chtype */
	uint8_t schemas; /* 1 << enum pf_rec_schema of each key set that has the field */
	uint16_t off;	 /* offsetof(struct pf_record, <name>) */
};

/* The table: PF_REC_NFIELDS rows, in the contract's order. */
const struct pf_rec_field_info *pf_rec__fields(void);

/*
 * A keyword field (every string, and each element of an array of strings)
 * is at most this many bytes once the line is decoded: Elasticsearch
 * refuses a document with a longer term (Lucene's limit, 32,766 bytes). A
 * longer string is cut on a character boundary and ends with
 * PF_REC_CUT_MARK, the mark procflow puts on every cut argument string.
 */
#define PF_REC_KEYWORD_MAX 32766
#define PF_REC_CUT_MARK	   "...[truncated]"

/*
 * Fill @r with the values of a record that knows nothing: no address (null),
 * names "-", ports and arrays null, counters 0, process_args [].
 */
void pf_rec__init(struct pf_record *r);

/*
 * Append @r as one JSON object with the keys of @schema, in order, and a
 * '\n', to @w. Returns 0 or the writer's negative errno (-ENOSPC when the
 * writer's cap is reached: @w then holds a prefix).
 */
int pf_rec__write(struct pf_jw *w, const struct pf_record *r, enum pf_rec_schema schema);

/*
 * Reset @w and write @r's line into it. A line over the cap of @w is written
 * again listing half as many process_args strings, down to none (the count
 * num_process_args is kept). Returns 0, -ENOSPC when it does not fit even
 * with none, or the writer's negative errno.
 */
int pf_rec__line(struct pf_jw *w, const struct pf_record *r, enum pf_rec_schema schema);

/*
 * Schema by its configuration name ("current", "calico-3.20"): 0 and
 * *@out set, or -EINVAL. pf_rec__schema_name() is the reverse (NULL when
 * @s is out of range).
 */
int pf_rec__schema_parse(const char *name, enum pf_rec_schema *out);
/* The configuration names by schema, NULL-terminated (a config key's choices). */
extern const char *const pf_rec_schema_names[PF_REC_NSCHEMAS + 1];
const char *pf_rec__schema_name(enum pf_rec_schema s);

#endif
