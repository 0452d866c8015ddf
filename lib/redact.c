// SPDX-License-Identifier: BSD-2-Clause
/*
 * Redaction of secrets in command-line arguments (see redact.h).
 *
 * Each argument is handled on its own: the rules mark byte ranges of it
 * ("spans") to replace, overlapping spans are merged, and the argument is
 * written with each span replaced by the replacement text. An option rule
 * in its separate-argument form (--password VALUE) marks the whole next
 * argument instead. The work per argument is linear in its length times
 * the number of rules, with no allocation: this runs once per exec event.
 */
#include "redact.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum rule_kind {
	RK_OPTION = 1,
	RK_SHORT,
	RK_URL,
	RK_ENV,
	RK_TOKEN,
};

#define PF_REDACT_WORD_MAX  64
#define PF_REDACT_PROGS_MAX 512
#define PF_REDACT_TOKEN_MIN 8
#define PF_REDACT_TOKEN_MAX 4096
/* Spans per argument; an argument with more is replaced whole. */
#define PF_REDACT_SPANS 32

struct rule {
	enum rule_kind kind;
	unsigned minlen;		 /* token */
	char word[PF_REDACT_WORD_MAX];	 /* option / env word, short option */
	char progs[PF_REDACT_PROGS_MAX]; /* short: comma-separated program names */
};

struct pf_redact {
	struct rule *rules;
	size_t n;
	char repl[PF_REDACT_MAX_REPLACEMENT + 1];
	size_t repl_len;
};

const char *const pf_redact_builtin[] = {
    "option password",
    "option passwd",
    "option pass",
    "option pwd",
    "option secret",
    "option token",
    "option api-key",
    "option apikey",
    "option access-key",
    "option secret-key",
    "option private-key",
    "option client-secret",
    "option credentials",
    "short -p mysql,mysqldump,mysqladmin,mysqlimport,mysqlcheck,mysqlshow,mysqlslap,"
    "mysqlpump,mysqlbinlog,mysqlsh,mariadb,mariadb-dump,mariadb-admin,mariadb-import,"
    "mariadb-check,mariadb-show,mariadb-slap,mariadb-binlog",
    "url-password",
    "env PASSWORD",
    "env PASSWD",
    "env SECRET",
    "env TOKEN",
    "env API_KEY",
    "env APIKEY",
    "env ACCESS_KEY",
    "env PRIVATE_KEY",
    "env CREDENTIAL",
    "token 32",
    NULL,
};

/* ---- character helpers ---------------------------------------------------- */

static int lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Case-insensitive, '-' equal to '_'. */
static int norm(int c)
{
	c = lower(c);
	return c == '_' ? '-' : c;
}

static bool is_word_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static bool is_token_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=' || c == '_' || c == '.' || c == '-';
}

static bool eq_norm(const char *a, size_t alen, const char *b, size_t blen)
{
	if (alen != blen)
		return false;
	for (size_t i = 0; i < alen; i++)
		if (norm((unsigned char)a[i]) != norm((unsigned char)b[i]))
			return false;
	return true;
}

/* Whether @hay[0..n) contains @needle (case-insensitive, '-' == '_'). */
static bool contains_norm(const char *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle);

	int first;

	if (m == 0 || m > n)
		return m == 0;
	first = norm((unsigned char)needle[0]);
	for (size_t i = 0; i + m <= n; i++)
		if (norm((unsigned char)hay[i]) == first && eq_norm(hay + i, m, needle, m))
			return true;
	return false;
}

/* ---- rule parsing ------------------------------------------------------- */

static void set_err(char *err, size_t errsz, const char *line, size_t len, const char *why)
{
	if (err && errsz)
		snprintf(err, errsz, "rule '%.*s': %s", (int)(len > 200 ? 200 : len), line, why);
}

/* Split @s[0..len) into at most @max whitespace-separated fields. Returns
 * the number of fields, or max + 1 when there are more. */
static size_t fields(const char *s, size_t len, const char **f, size_t *fl, size_t max)
{
	size_t n = 0, i = 0;

	while (i < len) {
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r'))
			i++;
		if (i == len)
			break;
		if (n == max)
			return max + 1;
		f[n] = s + i;
		while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
			i++;
		fl[n] = (size_t)(s + i - f[n]);
		n++;
	}
	return n;
}

static bool all_word_chars(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_word_char((unsigned char)s[i]))
			return false;
	return true;
}

/* A rule from its fields. Returns NULL on success, else why it is bad. */
static const char *parse_rule(const char **f, const size_t *fl, size_t nf, struct rule *out)
{
	memset(out, 0, sizeof(*out));
	if (nf == 0)
		return "empty rule";
	if (fl[0] == 6 && !memcmp(f[0], "option", 6)) {
		out->kind = RK_OPTION;
		if (nf != 2)
			return "'option' takes one option name (option password)";
		if (f[1][0] == '-')
			return "give the option name without dashes (option password)";
		if (!all_word_chars(f[1], fl[1]) || fl[1] >= PF_REDACT_WORD_MAX)
			return "an option name is 1 to 63 letters, digits, '-' or '_'";
		memcpy(out->word, f[1], fl[1]);
		return NULL;
	}
	if (fl[0] == 5 && !memcmp(f[0], "short", 5)) {
		out->kind = RK_SHORT;
		if (nf != 3)
			return "'short' takes an option and a list of programs (short -p "
			       "mysql,mariadb)";
		if (fl[1] < 2 || f[1][0] != '-' || !all_word_chars(f[1] + 1, fl[1] - 1) ||
		    fl[1] >= PF_REDACT_WORD_MAX)
			return "the option of a 'short' rule is '-' and letters (-p)";
		if (fl[2] >= PF_REDACT_PROGS_MAX)
			return "the program list is too long";
		for (size_t i = 0; i < fl[2]; i++) {
			char c = f[2][i];

			if (c == '/' ||
			    (c == ',' && (i == 0 || i + 1 == fl[2] || f[2][i + 1] == ',')))
				return "programs are base names separated by single commas "
				       "(mysql,mariadb)";
		}
		memcpy(out->word, f[1], fl[1]);
		memcpy(out->progs, f[2], fl[2]);
		return NULL;
	}
	if (fl[0] == 12 && !memcmp(f[0], "url-password", 12)) {
		out->kind = RK_URL;
		if (nf != 1)
			return "'url-password' takes nothing";
		return NULL;
	}
	if (fl[0] == 3 && !memcmp(f[0], "env", 3)) {
		out->kind = RK_ENV;
		if (nf != 2)
			return "'env' takes one word (env PASSWORD)";
		if (!all_word_chars(f[1], fl[1]) || fl[1] >= PF_REDACT_WORD_MAX)
			return "an env word is 1 to 63 letters, digits, '-' or '_'";
		memcpy(out->word, f[1], fl[1]);
		return NULL;
	}
	if (fl[0] == 5 && !memcmp(f[0], "token", 5)) {
		unsigned long v = 0;

		out->kind = RK_TOKEN;
		if (nf != 2)
			return "'token' takes a minimum length (token 32)";
		for (size_t i = 0; i < fl[1]; i++) {
			if (f[1][i] < '0' || f[1][i] > '9' || v > PF_REDACT_TOKEN_MAX)
				return "the minimum length of a token is a number from 8 to 4096";
			v = v * 10 + (unsigned long)(f[1][i] - '0');
		}
		if (v < PF_REDACT_TOKEN_MIN || v > PF_REDACT_TOKEN_MAX)
			return "the minimum length of a token is a number from 8 to 4096";
		out->minlen = (unsigned)v;
		return NULL;
	}
	return "unknown rule (option, short, url-password, env, token, remove, clear)";
}

static bool same_rule(const struct rule *a, const struct rule *b)
{
	return a->kind == b->kind && a->minlen == b->minlen &&
	       eq_norm(a->word, strlen(a->word), b->word, strlen(b->word)) &&
	       !strcmp(a->progs, b->progs);
}

struct pf_redact *pf_redact__new(int builtin, const char *replacement)
{
	struct pf_redact *r;
	size_t n;

	if (!replacement)
		replacement = PF_REDACT_REPLACEMENT;
	n = strlen(replacement);
	if (n == 0 || n > PF_REDACT_MAX_REPLACEMENT) {
		errno = EINVAL;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		if ((unsigned char)replacement[i] < 0x20 || replacement[i] == 0x7f) {
			errno = EINVAL;
			return NULL;
		}
	}
	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->rules = calloc(PF_REDACT_MAX_RULES, sizeof(*r->rules));
	if (!r->rules) {
		free(r);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(r->repl, replacement, n);
	r->repl_len = n;
	for (size_t i = 0; builtin && pf_redact_builtin[i]; i++) {
		if (pf_redact__rule(r, pf_redact_builtin[i], strlen(pf_redact_builtin[i]), NULL,
				    0)) {
			pf_redact__free(r);
			errno = EINVAL; /* a broken built-in: caught by the unit tests */
			return NULL;
		}
	}
	return r;
}

void pf_redact__free(struct pf_redact *r)
{
	if (!r)
		return;
	free(r->rules);
	free(r);
}

size_t pf_redact__count(const struct pf_redact *r)
{
	return r ? r->n : 0;
}

int pf_redact__rule(struct pf_redact *r, const char *line, size_t len, char *err, size_t errsz)
{
	const char *f[4];
	size_t fl[4], nf, i;
	struct rule nr;
	const char *why;

	if (err && errsz)
		err[0] = '\0';
	if (!r || (!line && len))
		return -EINVAL;
	if (memchr(line, '\0', len) || memchr(line, '\n', len)) {
		set_err(err, errsz, "", 0, "a rule is one line of text");
		return -EINVAL;
	}
	nf = fields(line, len, f, fl, 4);
	if (nf == 0 || f[0][0] == '#')
		return 0; /* blank or comment */
	if (nf > 4) {
		set_err(err, errsz, line, len, "too many fields");
		return -EINVAL;
	}
	if (fl[0] == 5 && !memcmp(f[0], "clear", 5)) {
		if (nf != 1) {
			set_err(err, errsz, line, len, "'clear' takes nothing");
			return -EINVAL;
		}
		r->n = 0;
		return 0;
	}
	if (fl[0] == 6 && !memcmp(f[0], "remove", 6)) {
		why = parse_rule(f + 1, fl + 1, nf - 1, &nr);
		if (why) {
			set_err(err, errsz, line, len, why);
			return -EINVAL;
		}
		for (i = 0; i < r->n; i++)
			if (same_rule(&r->rules[i], &nr))
				break;
		if (i == r->n) {
			set_err(err, errsz, line, len, "no such rule to remove");
			return -EINVAL;
		}
		memmove(&r->rules[i], &r->rules[i + 1], (r->n - i - 1) * sizeof(*r->rules));
		r->n--;
		return 0;
	}
	why = parse_rule(f, fl, nf, &nr);
	if (why) {
		set_err(err, errsz, line, len, why);
		return -EINVAL;
	}
	for (i = 0; i < r->n; i++)
		if (same_rule(&r->rules[i], &nr))
			return 0; /* already there */
	if (r->n == PF_REDACT_MAX_RULES) {
		set_err(err, errsz, line, len, "too many rules (at most 256)");
		return -ENOSPC;
	}
	r->rules[r->n++] = nr;
	return 0;
}

int pf_redact__load(struct pf_redact *r, const char *text, size_t len, char *err, size_t errsz)
{
	size_t pos = 0, lineno = 0;
	char why[320];

	if (err && errsz)
		err[0] = '\0';
	if (!r || (!text && len))
		return -EINVAL;
	while (pos < len) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		size_t l = nl ? (size_t)(nl - (text + pos)) : len - pos;
		int e;

		lineno++;
		e = pf_redact__rule(r, text + pos, l, why, sizeof(why));
		if (e) {
			if (err && errsz)
				snprintf(err, errsz, "line %zu: %s", lineno, why);
			return e;
		}
		pos += l + (nl ? 1 : 0);
	}
	return 0;
}

/* ---- matching ------------------------------------------------------------ */

struct span {
	size_t s, e;
};

struct spans {
	struct span v[PF_REDACT_SPANS];
	size_t n;
	bool overflow;
};

static void span_add(struct spans *sp, size_t s, size_t e)
{
	if (s >= e)
		return;
	if (sp->n == PF_REDACT_SPANS) {
		sp->overflow = true;
		return;
	}
	sp->v[sp->n].s = s;
	sp->v[sp->n].e = e;
	sp->n++;
}

/* The base name of @p[0..n). */
static const char *base_name(const char *p, size_t n, size_t *bl)
{
	const char *slash = n ? memrchr(p, '/', n) : NULL;
	const char *b = slash ? slash + 1 : p;

	*bl = n - (size_t)(b - p);
	return b;
}

/* Whether @name[0..n) is in the comma-separated @list. */
static bool in_list(const char *list, const char *name, size_t n)
{
	const char *p = list;

	if (n == 0)
		return false;
	while (*p) {
		const char *c = strchr(p, ',');
		size_t l = c ? (size_t)(c - p) : strlen(p);

		if (l == n && !memcmp(p, name, n))
			return true;
		p += l + (c ? 1 : 0);
	}
	return false;
}

/* The name of the option argument @a (after its dashes, up to '='), and
 * whether it has a value after '='. Returns false if @a is not an option. */
static bool option_name(const char *a, size_t n, const char **name, size_t *nl, size_t *eq)
{
	size_t d = 0;
	const char *e;

	while (d < n && d < 2 && a[d] == '-')
		d++;
	if (d == 0 || d == n)
		return false;
	e = memchr(a + d, '=', n - d);
	*name = a + d;
	*nl = e ? (size_t)(e - (a + d)) : n - d;
	*eq = e ? (size_t)(e - a) : SIZE_MAX;
	return *nl > 0;
}

/* Whether option @name matches @word: equal, or ending in -word / _word. */
static bool option_matches(const char *name, size_t nl, const char *word)
{
	size_t wl = strlen(word);

	if (eq_norm(name, nl, word, wl))
		return true;
	return nl > wl + 1 && norm((unsigned char)name[nl - wl - 1]) == '-' &&
	       eq_norm(name + nl - wl, wl, word, wl);
}

/* The end of KEY in KEY=V at @a[off..n) (KEY: letters, digits, '-', '_',
 * '.'), or @off when there is no such pair. */
static size_t env_key_end(const char *a, size_t n, size_t off)
{
	size_t k = off;

	while (k < n && (is_word_char((unsigned char)a[k]) || a[k] == '.'))
		k++;
	return k > off && k < n && a[k] == '=' ? k : off;
}

/* scheme://user:PASSWORD@host: the spans of every PASSWORD in @a. */
static void url_passwords(const char *a, size_t n, struct spans *sp)
{
	size_t i = 0;

	while (i + 3 <= n) {
		const char *m = memmem(a + i, n - i, "://", 3);
		size_t start, end, at = SIZE_MAX, colon = SIZE_MAX;

		if (!m)
			return;
		start = (size_t)(m - a) + 3;
		for (end = start; end < n; end++) {
			char c = a[end];

			if (c == '/' || c == '?' || c == '#' || c == ' ')
				break;
			if (c == '@')
				at = end; /* the last '@' ends the user info */
		}
		if (at != SIZE_MAX) {
			const char *c = memchr(a + start, ':', at - start);

			if (c)
				colon = (size_t)(c - a);
		}
		if (colon != SIZE_MAX)
			span_add(sp, colon + 1, at);
		i = end > start ? end : start;
	}
}

/* Long random-looking runs, and whatever follows "Bearer ". */
static void tokens(const char *a, size_t n, unsigned minlen, struct spans *sp)
{
	size_t i = 0;

	while (i < n) {
		size_t s, e;
		bool up = false, lo = false, dig = false;

		if (!is_token_char((unsigned char)a[i])) {
			i++;
			continue;
		}
		s = i;
		for (e = s; e < n && is_token_char((unsigned char)a[e]); e++) {
			int c = (unsigned char)a[e];

			up |= c >= 'A' && c <= 'Z';
			lo |= c >= 'a' && c <= 'z';
			dig |= c >= '0' && c <= '9';
		}
		/* "Bearer" and its token: the token whatever it looks like. */
		if (e - s == 6 && eq_norm(a + s, 6, "bearer", 6)) {
			size_t t = e;

			while (t < n && a[t] == ' ')
				t++;
			if (t > e) {
				size_t te = t;

				while (te < n && is_token_char((unsigned char)a[te]))
					te++;
				span_add(sp, t, te);
				i = te;
				continue;
			}
		}
		if (e - s >= minlen && up && lo && dig && a[s] != '/' &&
		    !(e - s >= 2 && (a[s] == '.' || a[s] == '~') && a[s + 1] == '/'))
			span_add(sp, s, e);
		i = e;
	}
}

/* Spans of argument @a (@n bytes) to replace. */
static void match_arg(const struct pf_redact *r, const char *a, size_t n, bool short_prog,
		      struct spans *sp)
{
	const char *name;
	size_t nl, eq, k0, k1 = 0;
	bool opt = option_name(a, n, &name, &nl, &eq);

	/* Found once per argument, compared with every env rule. */
	k0 = env_key_end(a, n, 0);
	if (opt && eq != SIZE_MAX)
		k1 = env_key_end(a, n, eq + 1);

	for (size_t k = 0; k < r->n; k++) {
		const struct rule *ru = &r->rules[k];

		switch (ru->kind) {
		case RK_OPTION:
			if (opt && eq != SIZE_MAX && option_matches(name, nl, ru->word))
				span_add(sp, eq + 1, n);
			break;
		case RK_SHORT: {
			size_t wl = strlen(ru->word);

			if (short_prog && n > wl && !memcmp(a, ru->word, wl) && a[wl] != '=')
				span_add(sp, wl, n);
			break;
		}
		case RK_URL:
			url_passwords(a, n, sp);
			break;
		case RK_ENV:
			if (k0 && contains_norm(a, k0, ru->word))
				span_add(sp, k0 + 1, n);
			if (k1 > eq + 1 && contains_norm(a + eq + 1, k1 - eq - 1, ru->word))
				span_add(sp, k1 + 1, n);
			break;
		case RK_TOKEN:
			tokens(a, n, ru->minlen, sp);
			break;
		}
	}
}

/* Whether the option argument @a, given alone (no '='), takes the next
 * argument as a secret value. */
static bool takes_secret_value(const struct pf_redact *r, const char *a, size_t n)
{
	const char *name;
	size_t nl, eq;

	if (!option_name(a, n, &name, &nl, &eq) || eq != SIZE_MAX)
		return false;
	for (size_t k = 0; k < r->n; k++)
		if (r->rules[k].kind == RK_OPTION && option_matches(name, nl, r->rules[k].word))
			return true;
	return false;
}

/* Whether any short rule names this program. */
static bool short_program(const struct pf_redact *r, const char *exe, const char *argv0,
			  size_t a0len)
{
	const char *b0, *b1 = NULL;
	size_t l0, l1 = 0;

	b0 = base_name(argv0, a0len, &l0);
	if (exe)
		b1 = base_name(exe, strlen(exe), &l1);
	for (size_t k = 0; k < r->n; k++) {
		if (r->rules[k].kind != RK_SHORT)
			continue;
		if (in_list(r->rules[k].progs, b0, l0) ||
		    (b1 && in_list(r->rules[k].progs, b1, l1)))
			return true;
	}
	return false;
}

struct outbuf {
	char *p;
	size_t len, cap;
	bool cut;
};

static void put(struct outbuf *o, const char *s, size_t n)
{
	size_t room = o->cap - o->len;

	if (n > room) {
		n = room;
		o->cut = true;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static int span_cmp(const void *x, const void *y)
{
	const struct span *a = x, *b = y;

	return a->s < b->s ? -1 : a->s > b->s;
}

size_t pf_redact__args(const struct pf_redact *r, const char *exe, const char *raw, size_t len,
		       char *out, size_t outsz, int *truncated, unsigned *nredacted)
{
	struct outbuf o = {out, 0, outsz, false};
	const char *p = raw, *end = raw + len;
	bool next_secret = false, shortp = false, first = true;
	unsigned count = 0;

	if (nredacted)
		*nredacted = 0;
	if (!out)
		o.cap = 0;
	if (!raw || len == 0)
		return 0;
	while (p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);
		struct spans sp;

		if (first) {
			/* argv[0]: kept; it names the program for "short" rules. */
			shortp = r && short_program(r, exe, p, n);
			put(&o, p, n);
		} else if (!r || r->n == 0) {
			put(&o, p, n);
		} else if (next_secret && !(n >= 2 && p[0] == '-' && p[1] == '-')) {
			put(&o, r->repl, r->repl_len);
			count++;
			next_secret = false;
		} else {
			sp.n = 0;
			sp.overflow = false;
			match_arg(r, p, n, shortp, &sp);
			next_secret = takes_secret_value(r, p, n);
			if (sp.overflow) {
				put(&o, r->repl, r->repl_len);
				count++;
			} else {
				size_t pos = 0;

				if (sp.n > 1)
					qsort(sp.v, sp.n, sizeof(sp.v[0]), span_cmp);
				for (size_t i = 0; i < sp.n; i++) {
					size_t s = sp.v[i].s, e = sp.v[i].e;

					/* Merge the spans that overlap this one. */
					while (i + 1 < sp.n && sp.v[i + 1].s <= e) {
						i++;
						if (sp.v[i].e > e)
							e = sp.v[i].e;
					}
					if (s < pos)
						s = pos;
					if (s >= e)
						continue;
					put(&o, p + pos, s - pos);
					put(&o, r->repl, r->repl_len);
					count++;
					pos = e;
				}
				put(&o, p + pos, n - pos);
			}
		}
		first = false;
		if (nul)
			put(&o, "", 1);
		p = nul ? nul + 1 : end;
	}
	if (o.cut && truncated)
		*truncated = 1;
	if (nredacted)
		*nredacted = count;
	return o.len;
}
