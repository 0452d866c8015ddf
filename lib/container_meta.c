// SPDX-License-Identifier: BSD-2-Clause
/*
 * A container's identity from runtime documents (see container_meta.h).
 *
 * The documents are small (a few KiB) and read once per container, so the
 * scanner validates the whole document before it answers: a file caught
 * half-written by its runtime yields -EINVAL rather than the members that
 * happen to precede the cut.
 */
#include "container_meta.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Nesting deeper than this is refused: runtime documents nest a few levels. */
#define CJ_DEPTH_MAX 64
#define CJ_KEY_MAX   256

struct cj {
	const char *p, *end;
};

static void cj_ws(struct cj *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int cj_hex4(const char *p, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		char ch = p[i];

		v <<= 4;
		if (ch >= '0' && ch <= '9')
			v |= (unsigned)(ch - '0');
		else if (ch >= 'a' && ch <= 'f')
			v |= (unsigned)(ch - 'a' + 10);
		else if (ch >= 'A' && ch <= 'F')
			v |= (unsigned)(ch - 'A' + 10);
		else
			return -EINVAL;
	}
	*out = v;
	return 0;
}

/* Append @n bytes to @out if they fit; remember that something did not. */
static void cj_put(char *out, size_t outsz, size_t *o, bool *over, const char *s, size_t n)
{
	if (!out)
		return;
	if (*o + n < outsz) {
		memcpy(out + *o, s, n);
		*o += n;
	} else {
		*over = true;
	}
}

static size_t cj_utf8(unsigned cp, char b[4])
{
	if (cp < 0x80) {
		b[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (char)(0xc0 | cp >> 6);
		b[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (char)(0xe0 | cp >> 12);
		b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
		b[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (char)(0xf0 | cp >> 18);
	b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
	b[2] = (char)(0x80 | (cp >> 6 & 0x3f));
	b[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* The one-letter escapes of JSON strings and the bytes they stand for. */
#define CJ_ESC_FROM "\"\\/bfnrt"
#define CJ_ESC_TO   "\"\\/\b\f\n\r\t"

/* A string at c->p ('"' expected). With @out, unescaped and NUL-terminated;
 * -ENOSPC when it did not fit (still fully consumed). */
static int cj_str(struct cj *c, char *out, size_t outsz)
{
	size_t o = 0;
	bool over = false;
	const char *esc;
	char b[4];
	unsigned cp, lo;

	if (c->p >= c->end || *c->p != '"')
		return -EINVAL;
	c->p++;
	while (c->p < c->end) {
		unsigned char ch = (unsigned char)*c->p;

		if (ch == '"') {
			c->p++;
			if (out && outsz)
				out[o] = '\0';
			return over ? -ENOSPC : 0;
		}
		if (ch < 0x20)
			return -EINVAL;
		if (ch != '\\') {
			cj_put(out, outsz, &o, &over, c->p, 1);
			c->p++;
			continue;
		}
		if (c->end - c->p < 2)
			return -EINVAL;
		ch = (unsigned char)c->p[1];
		c->p += 2;
		if (ch == 'u') {
			if (c->end - c->p < 4 || cj_hex4(c->p, &cp))
				return -EINVAL;
			c->p += 4;
			if (cp >= 0xd800 && cp < 0xdc00 && c->end - c->p >= 6 && c->p[0] == '\\' &&
			    c->p[1] == 'u' && !cj_hex4(c->p + 2, &lo) && lo >= 0xdc00 &&
			    lo < 0xe000) {
				cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
				c->p += 6;
			} else if (cp >= 0xd800 && cp < 0xe000) {
				cp = 0xfffd; /* a lone surrogate */
			}
			cj_put(out, outsz, &o, &over, b, cj_utf8(cp, b));
			continue;
		}
		esc = ch ? strchr(CJ_ESC_FROM, ch) : NULL;
		if (!esc)
			return -EINVAL;
		cj_put(out, outsz, &o, &over, &CJ_ESC_TO[esc - CJ_ESC_FROM], 1);
	}
	return -EINVAL;
}

static int cj_value(struct cj *c, int depth);

/* An object or array, c->p at its opening bracket. */
static int cj_container(struct cj *c, int depth)
{
	char close = *c->p == '{' ? '}' : ']';
	bool obj = close == '}', first = true;
	int err;

	if (depth >= CJ_DEPTH_MAX)
		return -EINVAL;
	c->p++;
	for (;;) {
		cj_ws(c);
		if (c->p >= c->end)
			return -EINVAL;
		if (*c->p == close && first) {
			c->p++;
			return 0;
		}
		if (obj) {
			err = cj_str(c, NULL, 0);
			if (err)
				return err;
			cj_ws(c);
			if (c->p >= c->end || *c->p != ':')
				return -EINVAL;
			c->p++;
		}
		err = cj_value(c, depth + 1);
		if (err)
			return err;
		first = false;
		cj_ws(c);
		if (c->p >= c->end)
			return -EINVAL;
		if (*c->p == close) {
			c->p++;
			return 0;
		}
		if (*c->p != ',')
			return -EINVAL;
		c->p++;
	}
}

static int cj_word(struct cj *c, const char *w)
{
	size_t n = strlen(w);

	if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n))
		return -EINVAL;
	c->p += n;
	return 0;
}

static int cj_value(struct cj *c, int depth)
{
	const char *start;

	cj_ws(c);
	if (c->p >= c->end)
		return -EINVAL;
	switch (*c->p) {
	case '{':
	case '[':
		return cj_container(c, depth);
	case '"':
		return cj_str(c, NULL, 0);
	case 't':
		return cj_word(c, "true");
	case 'f':
		return cj_word(c, "false");
	case 'n':
		return cj_word(c, "null");
	}
	start = c->p;
	while (c->p < c->end && (strchr("+-.eE", *c->p) || (*c->p >= '0' && *c->p <= '9')))
		c->p++;
	/* A number cut short ("12" of "123") ends the document anyway, and the
	 * caller checks what follows; only a non-number is refused here. */
	return c->p > start ? 0 : -EINVAL;
}

/* The whole document is one object and nothing but white space follows. */
static int cj_validate(const char *doc, size_t len)
{
	struct cj c;
	int err;

	if (!doc)
		return -EINVAL;
	c.p = doc;
	c.end = doc + len;
	cj_ws(&c);
	if (c.p >= c.end || *c.p != '{')
		return -EINVAL;
	err = cj_value(&c, 0);
	if (err)
		return err;
	cj_ws(&c);
	return c.p == c.end ? 0 : -EINVAL;
}

/* The next member of the object @c is in, c->p past its '{' (*@first true)
 * or past a member's value, in a validated document: its key into @key
 * (*@kerr: cj_str's answer, -ENOSPC for a key too long) and c->p at its value.
 * 1 for a member, 0 at the end of the object. */
static int cj_member(struct cj *c, bool *first, char *key, size_t keysz, int *kerr)
{
	cj_ws(c);
	if (*c->p == '}' || (!*first && *c->p != ','))
		return 0;
	if (!*first)
		c->p++;
	*first = false;
	cj_ws(c);
	*kerr = cj_str(c, key, keysz);
	cj_ws(c);
	c->p++; /* ':' */
	cj_ws(c);
	return 1;
}

/* Validate @doc and position @c at the value of @path in it. */
static int cj_open(struct cj *c, const char *doc, size_t len, const char *const *path, size_t depth)
{
	char key[CJ_KEY_MAX];
	bool first;
	int err;

	err = cj_validate(doc, len);
	if (err)
		return err;
	c->p = doc;
	c->end = doc + len;
	for (size_t i = 0; i < depth; i++) {
		cj_ws(c);
		if (*c->p != '{')
			return -ENOENT;
		c->p++;
		first = true;
		for (;;) {
			if (!cj_member(c, &first, key, sizeof(key), &err))
				return -ENOENT;
			if (!err && !strcmp(key, path[i]))
				break;
			cj_value(c, 0);
		}
	}
	cj_ws(c);
	return 0;
}

int pf_cjson__get_str(const char *doc, size_t len, const char *const *path, size_t depth, char *out,
		      size_t outsz)
{
	struct cj c;
	int err;

	if (!out || !outsz)
		return -EINVAL;
	out[0] = '\0';
	err = cj_open(&c, doc, len, path, depth);
	if (err)
		return err;
	if (*c.p != '"')
		return -ENOENT;
	return cj_str(&c, out, outsz);
}

int pf_cjson__each_str(const char *doc, size_t len, const char *const *path, size_t depth,
		       pf_cjson_member_fn fn, void *ctx)
{
	char key[CJ_KEY_MAX], val[PF_CMETA_LABEL_MAX];
	bool first = true;
	struct cj c;
	int err, kerr, verr;

	err = cj_open(&c, doc, len, path, depth);
	if (err)
		return err;
	if (*c.p != '{')
		return -ENOENT;
	c.p++;
	while (cj_member(&c, &first, key, sizeof(key), &kerr)) {
		if (*c.p != '"') {
			cj_value(&c, 0);
			continue;
		}
		verr = cj_str(&c, val, sizeof(val));
		/* A key or value too long to keep is passed as "" so the
		 * caller can count it. */
		err = fn(kerr ? "" : key, verr ? "" : val, ctx);
		if (err)
			return err;
	}
	return 0;
}

/* ---- identities ---- */

void pf_cmeta__clear(struct pf_cmeta *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < m->nlabels; i++)
		free(m->labels[i]);
	memset(m, 0, sizeof(*m));
}

static int label_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int add_label(const char *k, const char *v, void *ctx)
{
	struct pf_cmeta *m = ctx;
	size_t kl = strlen(k), vl = strlen(v);
	char *s;

	if (!kl || kl + 1 + vl > PF_CMETA_LABEL_MAX || m->nlabels >= PF_CMETA_LABELS_MAX) {
		m->labels_dropped++;
		return 0;
	}
	s = malloc(kl + vl + 2);
	if (!s)
		return -ENOMEM;
	memcpy(s, k, kl);
	s[kl] = '=';
	memcpy(s + kl + 1, v, vl + 1);
	m->labels[m->nlabels++] = s;
	return 0;
}

/* The string members of the object at @path in @doc as @m's labels, sorted.
 * 0, or -ENOMEM with @m emptied; a document without the object has none. */
static int read_labels(struct pf_cmeta *m, const char *doc, size_t len, const char *const *path,
		       size_t depth)
{
	if (pf_cjson__each_str(doc, len, path, depth, add_label, m) == -ENOMEM) {
		pf_cmeta__clear(m);
		return -ENOMEM;
	}
	qsort(m->labels, m->nlabels, sizeof(m->labels[0]), label_cmp);
	return 0;
}

/* @m emptied, and @doc checked to be one whole JSON object. */
static int cmeta_begin(struct pf_cmeta *m, const char *doc, size_t len)
{
	if (!m)
		return -EINVAL;
	pf_cmeta__clear(m);
	return cj_validate(doc, len);
}

static void get_opt(const char *doc, size_t len, const char *a, const char *b, char *out,
		    size_t outsz)
{
	const char *path[2] = {a, b};

	if (pf_cjson__get_str(doc, len, path, b ? 2 : 1, out, outsz) == -ENOSPC)
		out[0] = '\0'; /* a cut name would name another workload */
}

int pf_cmeta__from_oci(struct pf_cmeta *m, const char *doc, size_t len)
{
	static const char *const crio_labels[] = {"annotations", "io.kubernetes.cri-o.Labels"};
	char *lbl;
	int err;

	err = cmeta_begin(m, doc, len);
	if (err)
		return err;
	get_opt(doc, len, "annotations", "io.kubernetes.cri.sandbox-name", m->name,
		sizeof(m->name));
	get_opt(doc, len, "annotations", "io.kubernetes.cri.sandbox-namespace", m->namespace_,
		sizeof(m->namespace_));
	if (!m->name[0]) {
		get_opt(doc, len, "annotations", "io.kubernetes.pod.name", m->name,
			sizeof(m->name));
		get_opt(doc, len, "annotations", "io.kubernetes.pod.namespace", m->namespace_,
			sizeof(m->namespace_));
	}
	get_opt(doc, len, "annotations", "io.kubernetes.cri.image-name", m->image,
		sizeof(m->image));
	if (!m->image[0])
		get_opt(doc, len, "annotations", "io.kubernetes.cri-o.ImageName", m->image,
			sizeof(m->image));
	if (!m->name[0])
		return -ENOENT;
	/* CRI-O keeps the pod's labels as a JSON object inside a string. */
	lbl = malloc(65536);
	if (!lbl)
		return -ENOMEM;
	err = 0;
	if (!pf_cjson__get_str(doc, len, crio_labels, 2, lbl, 65536))
		err = read_labels(m, lbl, strlen(lbl), NULL, 0);
	free(lbl);
	return err;
}

int pf_cmeta__from_engine(struct pf_cmeta *m, const char *doc, size_t len)
{
	static const char *const labels[] = {"Config", "Labels"};
	static const char *const pod_name[] = {"Config", "Labels", "io.kubernetes.pod.name"};
	static const char *const pod_ns[] = {"Config", "Labels", "io.kubernetes.pod.namespace"};
	char name[PF_CMETA_NAME_MAX + 2];
	int err;

	err = cmeta_begin(m, doc, len);
	if (err)
		return err;
	if (pf_cjson__get_str(doc, len, (const char *const[]){"Name"}, 1, name, sizeof(name)) ||
	    !name[0])
		return -EINVAL;
	memcpy(m->name, name[0] == '/' ? name + 1 : name, sizeof(m->name) - 1);
	m->name[sizeof(m->name) - 1] = '\0';
	if (!pf_cjson__get_str(doc, len, pod_name, 3, name, sizeof(name)) && name[0]) {
		memcpy(m->name, name, sizeof(m->name));
		pf_cjson__get_str(doc, len, pod_ns, 3, m->namespace_, sizeof(m->namespace_));
	}
	get_opt(doc, len, "Config", "Image", m->image, sizeof(m->image));
	return read_labels(m, doc, len, labels, 2);
}

/* The alphabet of Kubernetes' name generator (utilrand.String): no vowels,
 * no digits that read as letters, so generated suffixes spell no words. */
static bool gen_char(char ch)
{
	return ch && strchr("bcdfghjklmnpqrstvwxz2456789", ch);
}

char *pf_cmeta__name_aggr(const char *name, char *out, size_t outsz)
{
	size_t n = name ? strlen(name) : 0, keep = n;
	bool gen = n > 6 && name[n - 6] == '-';

	if (!outsz)
		return out;
	for (size_t i = n - 5; gen && i < n; i++)
		gen = gen_char(name[i]);
	if (gen && outsz < 2)
		gen = false; /* no room for the '*' */
	if (gen)
		keep = n - 5;
	if (keep > outsz - 1 - gen)
		keep = outsz - 1 - gen;
	memcpy(out, name ? name : "", keep);
	if (gen)
		out[keep++] = '*';
	out[keep] = '\0';
	return out;
}
