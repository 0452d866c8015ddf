// SPDX-License-Identifier: BSD-2-Clause
/* The field table and the JSON line of a record (see record.h). */
#include "record.h"

#include <errno.h>
#include <string.h>

#include "jsonw.h"

#define PF_REC_ROW_(id, f, j, c, s)                                                                \
	{#f, sizeof(#f) - 1, PF_RJ_##j, PF_RC_##c, PF_RS_##s, offsetof(struct pf_record, f)},

static const struct pf_rec_field_info fields[PF_REC_NFIELDS] = {PF_REC_FIELDS(PF_REC_ROW_)};

const struct pf_rec_field_info *pf_rec__fields(void)
{
	return fields;
}

const char *const pf_rec_schema_names[PF_REC_NSCHEMAS + 1] = {
    [PF_REC_SCHEMA_CURRENT] = "current",
    [PF_REC_SCHEMA_CALICO_3_20] = "calico-3.20",
    [PF_REC_NSCHEMAS] = NULL,
};

int pf_rec__schema_parse(const char *name, enum pf_rec_schema *out)
{
	for (int i = 0; name && i < PF_REC_NSCHEMAS; i++) {
		if (!strcmp(name, pf_rec_schema_names[i])) {
			*out = (enum pf_rec_schema)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *pf_rec__schema_name(enum pf_rec_schema s)
{
	return (unsigned)s < PF_REC_NSCHEMAS ? pf_rec_schema_names[s] : NULL;
}

/* A non-NULL empty array: process_args is [] when nothing is known, not null. */
static const struct pf_strn no_strings[1];

void pf_rec__init(struct pf_record *r)
{
	memset(r, 0, sizeof(*r));
	r->source_name = "-";
	r->source_name_aggr = "-";
	r->source_namespace = "-";
	r->source_port = -1;
	r->source_type = "net";
	r->dest_name = "-";
	r->dest_name_aggr = "-";
	r->dest_namespace = "-";
	r->dest_port = -1;
	r->dest_type = "net";
	r->dest_service_namespace = "-";
	r->dest_service_name = "-";
	r->dest_service_port = "-";
	r->dest_service_port_num = -1;
	/* Protocol number 0: no transport protocol (an unnamed protocol is
	 * written as its number). */
	r->proto = "0";
	r->action = "allow";
	r->reporter = "src";
	r->process_name.p = "-";
	r->process_name.len = 1;
	r->process_id = "-";
	r->process_args.v = no_strings;
}

/* A keyword value: cut to PF_REC_KEYWORD_MAX bytes. Only a string longer
 * than a third of the limit can reach it (one input byte decodes to at most
 * three), so the lines of every day take the first branch. */
static void rec_str(struct pf_jw *w, const char *s, size_t n)
{
	if (n <= PF_REC_KEYWORD_MAX / 3)
		pf_jw__strn(w, s, n);
	else
		pf_jw__strn_max(w, s, n, PF_REC_KEYWORD_MAX, PF_REC_CUT_MARK);
}

/* One writer per JSON type, taking the member's own type: a row whose type
 * does not match its member does not compile. */
static inline void rec_put_U64(struct pf_jw *w, const uint64_t *v)
{
	pf_jw__u64(w, *v);
}

static inline void rec_put_PORT(struct pf_jw *w, const int32_t *v)
{
	if (*v < 0)
		pf_jw__null(w);
	else
		pf_jw__u64(w, (uint64_t)*v);
}

static inline void rec_put_STR(struct pf_jw *w, const char *const *v)
{
	if (*v)
		rec_str(w, *v, strlen(*v));
	else
		pf_jw__null(w);
}

static inline void rec_put_STRN(struct pf_jw *w, const struct pf_strn *v)
{
	if (v->p)
		rec_str(w, v->p, v->len);
	else
		pf_jw__null(w);
}

static inline void rec_put_STRV(struct pf_jw *w, const struct pf_strv *v)
{
	if (!v->v) {
		pf_jw__null(w);
		return;
	}
	pf_jw__arr_begin(w);
	for (size_t i = 0; i < v->n; i++)
		rec_str(w, v->v[i].p, v->v[i].len);
	pf_jw__arr_end(w);
}

static inline void rec_put_PORTV(struct pf_jw *w, const struct pf_u16v *v)
{
	if (!v->v) {
		pf_jw__null(w);
		return;
	}
	pf_jw__arr_begin(w);
	for (size_t i = 0; i < v->n; i++)
		pf_jw__u64(w, v->v[i]);
	pf_jw__arr_end(w);
}

static inline void rec_put_RAW(struct pf_jw *w, const char *const *v)
{
	if (*v)
		pf_jw__json(w, *v, strlen(*v));
	else
		pf_jw__null(w);
}

/* The writer is the table unrolled: straight-line code per field, as a
 * hand-written writer would be, with no dispatch on the type per value
 * (a line is written a few hundred thousand times a second). */
#define PF_REC_PUT_(id, f, j, c, s)                                                                \
	if (PF_RS_##s == PF_RS_ALL || (PF_RS_##s & bit)) {                                         \
		pf_jw__keyn(w, #f, sizeof(#f) - 1);                                                \
		rec_put_##j(w, &r->f);                                                             \
	}

int pf_rec__write(struct pf_jw *w, const struct pf_record *r, enum pf_rec_schema schema)
{
	const unsigned bit = 1u << schema;

	if ((unsigned)schema >= PF_REC_NSCHEMAS)
		return -EINVAL;
	pf_jw__obj_begin(w);
	PF_REC_FIELDS(PF_REC_PUT_)
	pf_jw__obj_end(w);
	pf_jw__raw(w, "\n", 1);
	return pf_jw__error(w);
}

int pf_rec__line(struct pf_jw *w, const struct pf_record *r, enum pf_rec_schema schema)
{
	struct pf_record fewer;
	int err;

	pf_jw__reset(w);
	err = pf_rec__write(w, r, schema);
	if (err != -ENOSPC || !r->process_args.n)
		return err;
	/* Over the writer's cap (a huge args limit, or many long arguments):
	 * list fewer strings; num_process_args still counts them all. */
	fewer = *r;
	do {
		fewer.process_args.n /= 2;
		pf_jw__reset(w);
		err = pf_rec__write(w, &fewer, schema);
	} while (err == -ENOSPC && fewer.process_args.n);
	return err;
}
