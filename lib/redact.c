// SPDX-License-Identifier: BSD-2-Clause
/*
 * Redaction of secrets in command-line arguments (see redact.h).
 *
 * The arguments are read in order as the words of a command line (see
 * "matching" below): the rules mark byte ranges of each argument ("spans")
 * to replace, overlapping spans are merged, and the argument is written
 * with each span replaced by the replacement text. The work per argument
 * is about linear in its length times the number of rules, with no
 * allocation (shell code is unquoted into bounded stack buffers): this
 * runs once per exec event.
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
	RK_ARG,
	RK_USERPASS,
	RK_PASSARG,
	RK_HEADER,
	RK_SHELL,
	RK_WRAPPER,
	RK_COUNT,
};

#define PF_REDACT_WORD_MAX  64
#define PF_REDACT_PROGS_MAX 512
#define PF_REDACT_TOKEN_MIN 8
#define PF_REDACT_TOKEN_MAX 4096
/* Spans per argument; an argument with more is replaced whole. */
#define PF_REDACT_SPANS 64

struct rule {
	enum rule_kind kind;
	unsigned minlen;	       /* token */
	bool scheme;		       /* header: keep the auth scheme word */
	char word[PF_REDACT_WORD_MAX]; /* option / env word, program option, header */
	size_t wordlen;
	char progs[PF_REDACT_PROGS_MAX]; /* comma-separated program names */
};

/* Program names all rules together may list; their index has twice the slots. */
#define PF_REDACT_MAX_PROGS  512
#define PF_REDACT_PROG_SLOTS 1024

/* A program name some rule lists, and what the rules say of it. */
struct prog_entry {
	const char *name; /* in a rule's progs; the index is rebuilt on every change */
	size_t len;
	uint64_t rules[PF_REDACT_MAX_RULES / 64]; /* short/arg/userpass/passarg naming it */
	uint64_t sub[PF_REDACT_MAX_RULES / 64];	  /* ... of them only as name:sub */
	bool shell, wrapper;
};

struct pf_redact {
	struct rule *rules;
	size_t n;
	char repl[PF_REDACT_MAX_REPLACEMENT + 1];
	size_t repl_len;
	/*
	 * Indexes of the rules, rebuilt whenever they change (rare) so that an
	 * argument is compared only with the rules of its kind, and a word is
	 * looked up as a program name once rather than in every list.
	 */
	uint16_t by_kind[RK_COUNT][PF_REDACT_MAX_RULES];
	size_t nkind[RK_COUNT];
	size_t header_min;	  /* the shortest header name */
	struct prog_entry *progs; /* PF_REDACT_MAX_PROGS */
	size_t nprogs;
	uint16_t slots[PF_REDACT_PROG_SLOTS]; /* hash of progs: entry index + 1, 0 empty */
};

/*
 * The built-in set. Program rules name the programs by base name; "prog:sub"
 * only after the argument "sub" (docker's -p is a port, docker login's -p a
 * password).
 */
const char *const pf_redact_builtin[] = {
    "option password",
    "option passwd",
    "option pass",
    "option pwd",
    "option passphrase",
    "option secret",
    "option token",
    "option api-key",
    "option apikey",
    "option access-key",
    "option secret-key",
    "option private-key",
    "option client-secret",
    "option credentials",
    "option requirepass",
    "option masterauth",
    "short -p mysql,mysqldump,mysqladmin,mysqlimport,mysqlcheck,mysqlshow,mysqlslap,"
    "mysqlpump,mysqlbinlog,mysqlsh,mariadb,mariadb-dump,mariadb-admin,mariadb-import,"
    "mariadb-check,mariadb-show,mariadb-slap,mariadb-binlog",
    "arg -p sshpass",
    "arg -a redis-cli,keydb-cli,valkey-cli",
    "arg -p docker:login,podman:login,buildah:login,skopeo:login,nerdctl:login,oras:login,"
    "helm:registry",
    "arg -w ldapsearch,ldapadd,ldapmodify,ldapdelete,ldapwhoami,ldapcompare,ldapexop,"
    "ldappasswd,ldapmodrdn",
    "arg -N ssh-keygen",
    "arg -P ssh-keygen",
    "arg --oauth2-bearer curl",
    "userpass -u curl",
    "userpass --user curl",
    "userpass -U curl",
    "userpass --proxy-user curl",
    "passarg -passin openssl",
    "passarg -passout openssl",
    "header Authorization scheme",
    "header Api-Key",
    "header Auth-Token",
    "header Access-Token",
    "header Private-Token",
    "header Vault-Token",
    "header Security-Token",
    "header Cookie",
    "url-password",
    "env PASSWORD",
    "env PASSWD",
    "env PASSPHRASE",
    "env SECRET",
    "env TOKEN",
    "env API_KEY",
    "env APIKEY",
    "env ACCESS_KEY",
    "env PRIVATE_KEY",
    "env CREDENTIAL",
    "env MYSQL_PWD",
    "token 32",
    "shell sh,bash,dash,zsh,ksh,mksh,ash,fish,su,runuser",
    "wrapper sudo,doas,env,nohup,exec,nice,ionice,timeout,time,setsid,stdbuf,xargs,sshpass,"
    "chpst,unbuffer",
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

/* Whether @s[0..n) is a program list: base names (optionally "prog:sub")
 * separated by single commas. */
static bool valid_progs(const char *s, size_t n)
{
	size_t el = 0, colons = 0;

	for (size_t i = 0; i <= n; i++) {
		char c = i < n ? s[i] : ',';

		if (c == ',') {
			if (el == 0 || (colons && (s[i - 1] == ':' || s[i - el] == ':')))
				return false;
			el = colons = 0;
			continue;
		}
		if (c == '/' || (c == ':' && ++colons > 1))
			return false;
		el++;
	}
	return true;
}

/* What follows the rule's name, which decides how its fields are read. */
enum rule_args {
	RA_NONE,      /* url-password */
	RA_NAME,      /* option NAME, env WORD */
	RA_OPT_PROGS, /* short/arg/userpass/passarg OPT PROGS */
	RA_PROGS,     /* shell/wrapper PROGS */
	RA_MINLEN,    /* token MINLEN */
	RA_HEADER,    /* header NAME [scheme] */
};

/* The rule kinds: the one table parsing, errors and the README follow. */
static const struct rule_spec {
	const char *name;
	enum rule_kind kind;
	enum rule_args args;
	const char *usage; /* said when the fields are wrong */
} rule_specs[] = {
    {"option", RK_OPTION, RA_NAME, "'option' takes one option name (option password)"},
    {"short", RK_SHORT, RA_OPT_PROGS,
     "'short' takes an option and a list of programs (short -p mysql,mariadb)"},
    {"arg", RK_ARG, RA_OPT_PROGS,
     "'arg' takes an option and a list of programs (arg -a redis-cli)"},
    {"userpass", RK_USERPASS, RA_OPT_PROGS,
     "'userpass' takes an option and a list of programs (userpass -u curl)"},
    {"passarg", RK_PASSARG, RA_OPT_PROGS,
     "'passarg' takes an option and a list of programs (passarg -passin openssl)"},
    {"header", RK_HEADER, RA_HEADER,
     "'header' takes a header name and optionally 'scheme' (header Authorization scheme)"},
    {"url-password", RK_URL, RA_NONE, "'url-password' takes nothing"},
    {"env", RK_ENV, RA_NAME, "'env' takes one word (env PASSWORD)"},
    {"token", RK_TOKEN, RA_MINLEN, "'token' takes a minimum length (token 32)"},
    {"shell", RK_SHELL, RA_PROGS, "'shell' takes a list of programs (shell sh,bash)"},
    {"wrapper", RK_WRAPPER, RA_PROGS, "'wrapper' takes a list of programs (wrapper sudo,env)"},
};

/* A rule from its fields. Returns NULL on success, else why it is bad. */
static const char *parse_rule(const char **f, const size_t *fl, size_t nf, struct rule *out)
{
	const struct rule_spec *rs = NULL;

	memset(out, 0, sizeof(*out));
	if (nf == 0)
		return "empty rule";
	for (size_t i = 0; i < sizeof(rule_specs) / sizeof(rule_specs[0]); i++)
		if (fl[0] == strlen(rule_specs[i].name) && !memcmp(f[0], rule_specs[i].name, fl[0]))
			rs = &rule_specs[i];
	if (!rs)
		return "unknown rule (option, short, arg, userpass, passarg, header, url-password, "
		       "env, token, shell, wrapper, remove, clear)";
	out->kind = rs->kind;
	switch (rs->args) {
	case RA_NONE:
		return nf == 1 ? NULL : rs->usage;
	case RA_NAME:
		if (nf != 2)
			return rs->usage;
		if (rs->kind == RK_OPTION && f[1][0] == '-')
			return "give the option name without dashes (option password)";
		if (!all_word_chars(f[1], fl[1]) || fl[1] >= PF_REDACT_WORD_MAX)
			return rs->kind == RK_OPTION
				   ? "an option name is 1 to 63 letters, digits, '-' or '_'"
				   : "an env word is 1 to 63 letters, digits, '-' or '_'";
		memcpy(out->word, f[1], fl[1]);
		out->wordlen = fl[1];
		return NULL;
	case RA_OPT_PROGS:
		if (nf != 3)
			return rs->usage;
		if (fl[1] < 2 || f[1][0] != '-' || !all_word_chars(f[1] + 1, fl[1] - 1) ||
		    fl[1] >= PF_REDACT_WORD_MAX)
			return "the option of a program rule is '-' and letters (-p, --user)";
		if (fl[2] >= PF_REDACT_PROGS_MAX)
			return "the program list is too long";
		if (!valid_progs(f[2], fl[2]))
			return "programs are base names separated by single commas "
			       "(mysql,mariadb; docker:login for docker's login command)";
		memcpy(out->word, f[1], fl[1]);
		out->wordlen = fl[1];
		memcpy(out->progs, f[2], fl[2]);
		return NULL;
	case RA_PROGS:
		if (nf != 2)
			return rs->usage;
		if (fl[1] >= PF_REDACT_PROGS_MAX)
			return "the program list is too long";
		if (!valid_progs(f[1], fl[1]) || memchr(f[1], ':', fl[1]))
			return "programs are base names separated by single commas (sh,bash)";
		memcpy(out->progs, f[1], fl[1]);
		return NULL;
	case RA_MINLEN: {
		unsigned long v = 0;

		if (nf != 2)
			return rs->usage;
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
	case RA_HEADER:
		if (nf < 2 || nf > 3 || (nf == 3 && (fl[2] != 6 || memcmp(f[2], "scheme", 6))))
			return rs->usage;
		if (!all_word_chars(f[1], fl[1]) || fl[1] >= PF_REDACT_WORD_MAX)
			return "a header name is 1 to 63 letters, digits, '-' or '_'";
		memcpy(out->word, f[1], fl[1]);
		out->wordlen = fl[1];
		out->scheme = nf == 3;
		return NULL;
	}
	return rs->usage;
}

static bool same_rule(const struct rule *a, const struct rule *b)
{
	bool exact = a->kind == RK_SHORT || a->kind == RK_ARG || a->kind == RK_USERPASS ||
		     a->kind == RK_PASSARG; /* -p is not -P */

	return a->kind == b->kind && a->minlen == b->minlen && a->scheme == b->scheme &&
	       (exact ? !strcmp(a->word, b->word)
		      : eq_norm(a->word, strlen(a->word), b->word, strlen(b->word))) &&
	       !strcmp(a->progs, b->progs);
}

static uint32_t hash_name(const char *p, size_t n)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	return h;
}

/* The slot of program @name: its entry's, or the empty one where it would
 * go (there is always one: at most half the slots are used). */
static size_t prog_slot(const struct pf_redact *r, const char *name, size_t n)
{
	size_t i = hash_name(name, n) & (PF_REDACT_PROG_SLOTS - 1);

	for (; r->slots[i]; i = (i + 1) & (PF_REDACT_PROG_SLOTS - 1)) {
		const struct prog_entry *e = &r->progs[r->slots[i] - 1];

		if (e->len == n && !memcmp(e->name, name, n))
			break;
	}
	return i;
}

/* The entry of program @name, or NULL. */
static const struct prog_entry *prog_find(const struct pf_redact *r, const char *name, size_t n)
{
	size_t i = prog_slot(r, name, n);

	return r->slots[i] ? &r->progs[r->slots[i] - 1] : NULL;
}

/* The entry of program @name, a new one if need be; NULL when the index is full. */
static struct prog_entry *prog_add(struct pf_redact *r, const char *name, size_t n)
{
	size_t i = prog_slot(r, name, n);
	struct prog_entry *e;

	if (r->slots[i])
		return &r->progs[r->slots[i] - 1];
	if (r->nprogs == PF_REDACT_MAX_PROGS)
		return NULL;
	e = &r->progs[r->nprogs++];
	memset(e, 0, sizeof(*e));
	e->name = name;
	e->len = n;
	r->slots[i] = (uint16_t)r->nprogs;
	return e;
}

/* Rebuild the indexes. Returns 0, or -ENOSPC when the rules list more than
 * PF_REDACT_MAX_PROGS program names. */
static int reindex(struct pf_redact *r)
{
	memset(r->nkind, 0, sizeof(r->nkind));
	r->header_min = SIZE_MAX;
	memset(r->slots, 0, sizeof(r->slots));
	r->nprogs = 0;
	for (size_t k = 0; k < r->n; k++) {
		const struct rule *ru = &r->rules[k];
		const char *p = ru->progs;

		r->by_kind[ru->kind][r->nkind[ru->kind]++] = (uint16_t)k;
		if (ru->kind == RK_HEADER && ru->wordlen < r->header_min)
			r->header_min = ru->wordlen;
		while (*p) {
			const char *name = p, *comma = strchr(p, ',');
			size_t l = comma ? (size_t)(comma - p) : strlen(p);
			const char *colon = memchr(p, ':', l);
			size_t pl = colon ? (size_t)(colon - p) : l;
			struct prog_entry *e;

			p += l + (comma ? 1 : 0);
			if (pl >= PF_REDACT_WORD_MAX)
				continue; /* longer than a program word is kept: never named */
			e = prog_add(r, name, pl);
			if (!e)
				return -ENOSPC;
			if (ru->kind == RK_SHELL)
				e->shell = true;
			else if (ru->kind == RK_WRAPPER)
				e->wrapper = true;
			else {
				uint64_t bit = (uint64_t)1 << (k % 64);
				bool had = e->rules[k / 64] & bit;

				e->rules[k / 64] |= bit;
				/* "sub" only while no plain entry of this list names it */
				if (!colon)
					e->sub[k / 64] &= ~bit;
				else if (!had)
					e->sub[k / 64] |= bit;
			}
		}
	}
	return 0;
}

static int rule_line(struct pf_redact *r, const char *line, size_t len, char *err, size_t errsz,
		     bool index);

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
	r->progs = calloc(PF_REDACT_MAX_PROGS, sizeof(*r->progs));
	if (!r->rules || !r->progs) {
		pf_redact__free(r);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(r->repl, replacement, n);
	r->repl_len = n;
	for (size_t i = 0; builtin && pf_redact_builtin[i]; i++) {
		if (rule_line(r, pf_redact_builtin[i], strlen(pf_redact_builtin[i]), NULL, 0,
			      false)) {
			pf_redact__free(r);
			errno = EINVAL; /* a broken built-in: caught by the unit tests */
			return NULL;
		}
	}
	if (reindex(r)) {
		pf_redact__free(r);
		errno = EINVAL;
		return NULL;
	}
	return r;
}

void pf_redact__free(struct pf_redact *r)
{
	if (!r)
		return;
	free(r->rules);
	free(r->progs);
	free(r);
}

size_t pf_redact__count(const struct pf_redact *r)
{
	return r ? r->n : 0;
}

/* One rule line; with @index the indexes are rebuilt after a change (the
 * built-in set is indexed once, after its last rule). */
static int rule_line(struct pf_redact *r, const char *line, size_t len, char *err, size_t errsz,
		     bool index)
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
		return index ? reindex(r) : 0;
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
		return index ? reindex(r) : 0; /* fewer names: cannot fail */
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
	if (index && reindex(r)) {
		r->n--;
		reindex(r); /* as it was, which fitted */
		set_err(err, errsz, line, len, "too many program names in all rules (at most 512)");
		return -ENOSPC;
	}
	return 0;
}

int pf_redact__rule(struct pf_redact *r, const char *line, size_t len, char *err, size_t errsz)
{
	return rule_line(r, line, len, err, errsz, true);
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

/*
 * How an argument vector is read. Each argument is a word of a command
 * line; a word is matched on its own by the rules that need no context
 * (option=, KEY=V, URL, header, token), and in the context of the words
 * before it by the rest: the program it belongs to (program rules), an
 * option before it that takes it as its value, a shell's -c before it that
 * makes it a command line of its own. Such a command line is cut into words
 * as the shell would (quotes, backslashes, ; & | ( ) and newlines), each
 * word unquoted into a buffer with a map back to where its bytes came from,
 * and read the same way, to PF_REDACT_SHELL_DEPTH levels of sh -c.
 */

/* Nested sh -c levels looked into; deeper shell code is replaced whole. */
#define PF_REDACT_SHELL_DEPTH 3
/* Longest word of shell code looked into; a longer one is replaced whole. */
#define PF_REDACT_SHELL_WORD 4096
/* Operands after a program remembered for "prog:sub" rules. */
#define PF_REDACT_OPERANDS 3
/* A token: a segment of at least this many characters that looks random. */
#define PF_REDACT_TOKEN_SEGMENT 12

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

/*
 * Where the spans of a word go: the argument's span list at the top level;
 * for a word of shell code, through @map (the position in the argument, or
 * in the enclosing word, of each byte of the unquoted word) one level up.
 */
struct sink {
	struct spans *sp;
	const struct sink *up;
	const uint16_t *map;
};

static void sink_add(const struct sink *k, size_t s, size_t e)
{
	for (; k->up; k = k->up) {
		if (s >= e)
			return;
		s = k->map[s];
		e = (size_t)k->map[e - 1] + 1;
	}
	span_add(k->sp, s, e);
}

/* The base name of @p[0..n). */
static const char *base_name(const char *p, size_t n, size_t *bl)
{
	const char *slash = n ? memrchr(p, '/', n) : NULL;
	const char *b = slash ? slash + 1 : p;

	*bl = n - (size_t)(b - p);
	return b;
}

/* What the next word is, after an option that takes its value there. */
enum next_word { NX_NONE, NX_SECRET, NX_USERPASS, NX_PASSARG };

enum shell_state { SH_NONE, SH_OPTS, SH_CODE };

/* One command line being read: the program its words belong to. */
struct cmd {
	/* Copies: a word of shell code lives in a buffer the next word reuses. */
	char prog[PF_REDACT_WORD_MAX]; /* base name; "" before the first program word */
	size_t progl;
	char opd[PF_REDACT_OPERANDS][PF_REDACT_WORD_MAX]; /* the first operands after it */
	size_t opdl[PF_REDACT_OPERANDS];
	unsigned nopd;
	const struct prog_entry *entry; /* what the rules say of it; NULL: nothing */
	enum next_word next;
	enum shell_state shell;
	bool want_prog; /* the next operand is a program (a command's start, after sudo) */
};

/*
 * Whether the program list @list names @name (@n bytes). With @c, an entry
 * "prog:sub" names it only when sub is one of the operands seen; without,
 * "prog:sub" names prog.
 */
static bool names_prog(const char *list, const char *name, size_t n, const struct cmd *c)
{
	const char *p = list;

	if (n == 0)
		return false;
	while (*p) {
		const char *comma = strchr(p, ',');
		size_t l = comma ? (size_t)(comma - p) : strlen(p);
		const char *colon = memchr(p, ':', l);
		size_t pl = colon ? (size_t)(colon - p) : l;

		if (pl == n && !memcmp(p, name, n)) {
			if (!colon || !c)
				return true;
			for (unsigned i = 0; i < c->nopd; i++)
				if (c->opdl[i] == l - pl - 1 &&
				    !memcmp(c->opd[i], colon + 1, c->opdl[i]))
					return true;
		}
		p += l + (comma ? 1 : 0);
	}
	return false;
}

/* The index entry of the program word @a (a path or a name), or NULL when
 * no rule names it. A word with ':' is no program but a volume, an image or
 * an address (-v /srv/mysql:/var/lib/mysql -p3306:3306 is not mysql's -p). */
static const struct prog_entry *known_prog(const struct pf_redact *r, const char *a, size_t n)
{
	size_t bl;
	const char *b = base_name(a, n, &bl);

	if (memchr(a, ':', n))
		return NULL;

	if (bl > 1 && b[0] == '-') { /* a login shell's argv[0]: -bash */
		b++;
		bl--;
	}
	return r->nprogs ? prog_find(r, b, bl) : NULL;
}

static void cmd_start(struct cmd *c)
{
	/* Field by field: shell code can start thousands of commands (a;a;a). */
	c->progl = 0;
	c->entry = NULL;
	c->nopd = 0;
	c->next = NX_NONE;
	c->shell = SH_NONE;
	c->want_prog = true;
}

/* The words that follow belong to program @a (a word, a path or not). */
static void cmd_prog(const struct pf_redact *r, struct cmd *c, const char *a, size_t n)
{
	size_t bl;
	const char *b = base_name(a, n, &bl);

	if (bl > 1 && b[0] == '-') { /* a login shell's argv[0]: -bash */
		b++;
		bl--;
	}
	/* A name longer than any rule can hold is no program a rule names. */
	c->progl = bl < sizeof(c->prog) ? bl : 0;
	memcpy(c->prog, b, c->progl);
	c->entry = c->progl && r->nprogs ? prog_find(r, c->prog, c->progl) : NULL;
	c->nopd = 0;
	c->shell = c->entry && c->entry->shell ? SH_OPTS : SH_NONE;
	c->want_prog = c->entry && c->entry->wrapper;
	c->next = NX_NONE;
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
static bool option_matches(const char *name, size_t nl, const struct rule *ru)
{
	const char *word = ru->word;
	size_t wl = ru->wordlen;

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

static bool is_upper(int c)
{
	return c >= 'A' && c <= 'Z';
}

static bool is_lower(int c)
{
	return c >= 'a' && c <= 'z';
}

static bool is_alpha(int c)
{
	return is_upper(c) || is_lower(c);
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Whether the last component of KEY is a word that says the value is
 * where the secret is, not the secret (POSTGRES_PASSWORD_FILE). */
static bool names_a_place(const char *key, size_t kl)
{
	static const char *const places[] = {"file", "path", "dir"};

	for (size_t i = 0; i < sizeof(places) / sizeof(places[0]); i++) {
		size_t pl = strlen(places[i]);

		if (kl > pl && eq_norm(key + kl - pl, pl, places[i], pl) &&
		    (!is_alpha((unsigned char)key[kl - pl - 1]) ||
		     (is_upper((unsigned char)key[kl - pl]) &&
		      is_lower((unsigned char)key[kl - pl - 1]))))
			return true;
	}
	return false;
}

/* Whether KEY holds @word ending where a word of KEY ends: DB_PASSWORD,
 * dbPasswordX, PGPASSWORD, but not max_tokens or tokenizer. */
static bool key_has_word(const char *key, size_t kl, const char *word)
{
	size_t wl = strlen(word);
	int first = norm((unsigned char)word[0]);

	for (size_t i = 0; i + wl <= kl; i++) {
		size_t e = i + wl;

		if (norm((unsigned char)key[i]) != first || !eq_norm(key + i, wl, word, wl))
			continue;
		if (e == kl || !is_alpha((unsigned char)key[e]) ||
		    (is_upper((unsigned char)key[e]) && is_lower((unsigned char)key[e - 1])))
			return true;
	}
	return false;
}

static bool ends_embedded_value(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '&' || c == ';' || c == ',';
}

/*
 * KEY=V pairs: at the start of the argument and after an option's '='
 * (the value runs to the end), and after a space, '?', '&', ';' or ','
 * inside it, as in a query string, a conninfo or helm's --set (the value
 * runs to the next of those).
 */
static void env_pairs(const struct pf_redact *r, const char *a, size_t n, size_t eq,
		      const struct sink *k)
{
	for (size_t i = 0; i < n; i++) {
		bool whole = i == 0 || (eq != SIZE_MAX && i == eq + 1);
		size_t ke, ve;

		if (!whole && !(ends_embedded_value((unsigned char)a[i - 1]) || a[i - 1] == '?'))
			continue;
		ke = env_key_end(a, n, i);
		if (ke == i || names_a_place(a + i, ke - i))
			continue;
		for (size_t j = 0; j < r->nkind[RK_ENV]; j++) {
			if (!key_has_word(a + i, ke - i, r->rules[r->by_kind[RK_ENV][j]].word))
				continue;
			for (ve = ke + 1;
			     !whole && ve < n && !ends_embedded_value((unsigned char)a[ve]); ve++)
				;
			sink_add(k, ke + 1, whole ? n : ve);
			break;
		}
		i = ke; /* the value may hold the next pair (a=b&password=c) */
	}
}

static bool all_digits(const char *s, size_t n)
{
	if (n == 0)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!is_digit((unsigned char)s[i]))
			return false;
	return true;
}

static bool ends_url(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '"' || c == '\'' || c == '?' || c == '#';
}

/* The first "://" in @a[i..n), or NULL. */
static const char *find_scheme_end(const char *a, size_t i, size_t n)
{
	while (i + 3 <= n) {
		const char *c = memchr(a + i, ':', n - i - 2);

		if (!c)
			return NULL;
		if (c[1] == '/' && c[2] == '/')
			return c;
		i = (size_t)(c - a) + 1;
	}
	return NULL;
}

/*
 * scheme://user:PASSWORD@host: the spans of every PASSWORD in @a. The
 * user info ends at the last '@' before the first '/'; when there is none
 * there, a password holding '/' is taken to run to the last '@' after it
 * (unless what stands between ':' and '/' is a port: host:8080/a@b).
 */
static void url_passwords(const char *a, size_t n, const struct sink *k)
{
	size_t i = 0;

	while (i + 3 <= n) {
		const char *m = find_scheme_end(a, i, n);
		const char *c, *at;
		size_t start, end, slash;

		if (!m)
			return;
		start = (size_t)(m - a) + 3;
		/* Up to the next URL at most: linear however many there are. */
		for (end = start; end < n && !ends_url((unsigned char)a[end]); end++)
			if (a[end] == ':' && end + 2 < n && a[end + 1] == '/' && a[end + 2] == '/')
				break;
		c = memchr(a + start, '/', end - start);
		slash = c ? (size_t)(c - a) : end;
		c = memchr(a + start, ':', slash - start);
		i = end > start ? end : start;
		if (!c)
			continue;
		at = memrchr(c, '@', (size_t)(a + slash - c));
		if (!at && slash < end && !all_digits(c + 1, (size_t)(a + slash - c - 1)))
			at = memrchr(a + slash, '@', end - slash);
		if (!at || (size_t)(at - a) + 1 >= n)
			continue;
		sink_add(k, (size_t)(c - a) + 1, (size_t)(at - a));
		i = (size_t)(at - a) + 1;
	}
}

/*
 * NAME: VALUE for the header rules' NAMEs, anywhere in @a where NAME starts
 * a word (curl's -HName: too). Found from each ':' back, so that a word
 * without one costs nothing. With "scheme", the first word of the value
 * (Basic, Bearer) is kept. The value ends at a newline, at the quote that
 * opened the header if one did, or at the end.
 */
static void header_values(const struct pf_redact *r, const char *a, size_t n, const struct sink *k)
{
	const char *c = memchr(a, ':', n);

	while (c) {
		size_t ne = (size_t)(c - a), ns, j, e = (size_t)(c - a) + 1;

		while (ne > 0 && a[ne - 1] == ' ')
			ne--;
		for (ns = ne; ns > 0 && is_word_char((unsigned char)a[ns - 1]);)
			ns--;
		for (size_t h = 0; ne - ns >= r->header_min && h < r->nkind[RK_HEADER]; h++) {
			const struct rule *ru = &r->rules[r->by_kind[RK_HEADER][h]];
			size_t i = ne - ru->wordlen;
			char q = 0;

			if (ne - ns < ru->wordlen ||
			    !eq_norm(a + i, ru->wordlen, ru->word, ru->wordlen))
				continue;
			if (i > 0 &&
			    (is_alpha((unsigned char)a[i - 1]) ||
			     is_digit((unsigned char)a[i - 1])) &&
			    !(i == 2 && a[0] == '-' && a[1] == 'H'))
				continue;
			for (j = (size_t)(c - a) + 1; j < n && (a[j] == ' ' || a[j] == '\t');)
				j++;
			if (i > 0 && (a[i - 1] == '"' || a[i - 1] == '\''))
				q = a[i - 1];
			if (ru->scheme) {
				size_t sc = j;

				while (sc < n && (is_alpha((unsigned char)a[sc]) || a[sc] == '-'))
					sc++;
				if (sc > j && sc < n && a[sc] == ' ')
					for (j = sc; j < n && a[j] == ' ';)
						j++;
			}
			for (e = j; e < n && a[e] != '\n' && a[e] != '\r' && (!q || a[e] != q); e++)
				;
			sink_add(k, j, e);
			break;
		}
		c = e < n ? memchr(a + e, ':', n - e) : NULL;
	}
}

/* Character classes for telling random text from words. */
static int char_class(int c)
{
	return is_upper(c) ? 1 : is_lower(c) ? 2 : is_digit(c) ? 3 : 4;
}

/*
 * Whether a run of token characters looks random rather than like a name:
 * some segment of it (between '.', '-', '_') of PF_REDACT_TOKEN_SEGMENT or
 * more characters changes character class often (other than an upper-case
 * letter starting a word: Http2FrameCodecBuilder changes 4 times in 22,
 * random base64 about 9 times in 20) or is a quarter digits.
 */
static bool looks_random(const char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		size_t j = i, changes = 0, digits = 0;

		while (j < n && s[j] != '.' && s[j] != '-' && s[j] != '_') {
			int c = (unsigned char)s[j];

			digits += is_digit(c);
			if (j > i) {
				int a = char_class((unsigned char)s[j - 1]), b = char_class(c);

				changes += a != b && !(a == 1 && b == 2);
			}
			j++;
		}
		if (j - i >= PF_REDACT_TOKEN_SEGMENT &&
		    (changes * 100 >= (j - i) * 22 || digits * 4 >= j - i))
			return true;
		i = j + 1;
	}
	return false;
}

/* Long random-looking runs, and whatever follows "Bearer ". A run stops at
 * the '=' of KEY=VALUE, so a name before it is judged apart from the value. */
static void tokens(const char *a, size_t n, unsigned minlen, const struct sink *k)
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

			if (c == '=' && e > s && e + 1 < n && a[e + 1] != '=' &&
			    is_token_char((unsigned char)a[e + 1]))
				break;
			up |= is_upper(c);
			lo |= is_lower(c);
			dig |= is_digit(c);
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
				sink_add(k, t, te);
				i = te;
				continue;
			}
		}
		if (e - s >= minlen && up && lo && dig && a[s] != '/' &&
		    !(e - s >= 2 && (a[s] == '.' || a[s] == '~') && a[s + 1] == '/') &&
		    looks_random(a + s, e - s))
			sink_add(k, s, e);
		i = e < n && a[e] == '=' ? e + 1 : e;
	}
}

/* The rules that need no context, on one word. Cheap tests first: most
 * words hold no '=', ':' or long run. */
static void match_word(const struct pf_redact *r, const char *a, size_t n, const struct sink *k)
{
	const char *name = NULL;
	size_t nl = 0, eq = SIZE_MAX;
	bool opt = option_name(a, n, &name, &nl, &eq);
	bool has_eq = memchr(a, '=', n) != NULL, has_colon = memchr(a, ':', n) != NULL;

	if (opt && eq != SIZE_MAX)
		for (size_t j = 0; j < r->nkind[RK_OPTION]; j++)
			if (option_matches(name, nl, &r->rules[r->by_kind[RK_OPTION][j]]))
				sink_add(k, eq + 1, n);
	if (has_colon && r->nkind[RK_URL])
		url_passwords(a, n, k);
	if (has_eq && r->nkind[RK_ENV])
		env_pairs(r, a, n, opt ? eq : SIZE_MAX, k);
	for (size_t j = 0; j < r->nkind[RK_TOKEN]; j++) {
		const struct rule *ru = &r->rules[r->by_kind[RK_TOKEN][j]];

		if (n >= 8) /* "Bearer x" is the shortest thing it catches */
			tokens(a, n, ru->minlen, k);
	}
	if (has_colon && r->nkind[RK_HEADER])
		header_values(r, a, n, k);
}

/* The value @v (@vl bytes at @off in the word) of an option that takes it. */
static void value_spans(enum next_word nx, const char *v, size_t vl, size_t off,
			const struct sink *k)
{
	const char *c;

	switch (nx) {
	case NX_SECRET:
		sink_add(k, off, off + vl);
		break;
	case NX_USERPASS: /* USER:PASS; USER alone prompts */
		c = memchr(v, ':', vl);
		if (c)
			sink_add(k, off + (size_t)(c - v) + 1, off + vl);
		break;
	case NX_PASSARG: /* pass:V; env:, file:, fd:, stdin say where it is */
		if (vl > 5 && !memcmp(v, "pass:", 5))
			sink_add(k, off + 5, off + vl);
		break;
	case NX_NONE:
		break;
	}
}

static enum next_word next_of(enum rule_kind kind)
{
	return kind == RK_USERPASS ? NX_USERPASS : kind == RK_PASSARG ? NX_PASSARG : NX_SECRET;
}

/* The program rules of the current program on option word @a. */
static void prog_options(const struct pf_redact *r, struct cmd *c, const char *a, size_t n,
			 const struct sink *k)
{
	if (!c->entry)
		return;
	for (size_t w = 0; w < PF_REDACT_MAX_RULES / 64; w++) {
		for (uint64_t bits = c->entry->rules[w]; bits; bits &= bits - 1) {
			size_t b = (size_t)__builtin_ctzll(bits);
			const struct rule *ru = &r->rules[w * 64 + b];
			size_t ol = ru->wordlen, v;

			if (n < ol || memcmp(a, ru->word, ol) ||
			    ((c->entry->sub[w] >> b & 1) &&
			     !names_prog(ru->progs, c->prog, c->progl, c)))
				continue;
			if (ru->kind == RK_SHORT) { /* -pV only: -p alone prompts */
				if (n > ol && a[ol] != '=')
					sink_add(k, ol, n);
				continue;
			}
			if (n == ol) {
				c->next = next_of(ru->kind);
				continue;
			}
			if (a[ol] == '=')
				v = ol + 1;
			else if (ol == 2) /* a one-letter option's value may be attached */
				v = ol;
			else
				continue;
			value_spans(next_of(ru->kind), a + v, n - v, v, k);
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
	for (size_t k = 0; k < r->nkind[RK_OPTION]; k++)
		if (option_matches(name, nl, &r->rules[r->by_kind[RK_OPTION][k]]))
			return true;
	return false;
}

/* Whether @a is a cluster of one-letter options holding -c (-c, -lc, -ec). */
static bool is_c_cluster(const char *a, size_t n)
{
	bool c = false;

	if (n < 2 || a[0] != '-' || a[1] == '-')
		return false;
	for (size_t i = 1; i < n; i++) {
		if (!is_alpha((unsigned char)a[i]))
			return false;
		c |= a[i] == 'c';
	}
	return c;
}

static void shell_code(const struct pf_redact *r, const char *a, size_t n, const struct sink *k,
		       int depth);

/*
 * Whether @a is a whole command line in one argument, as ssh host "CMD",
 * watch "CMD" or su's and sudo's callers give it: it holds a space, and its
 * first word other than KEY=V names a program some rule lists.
 */
static bool runs_a_program(const struct pf_redact *r, const char *a, size_t n)
{
	size_t i = 0;

	if (!r->nprogs || !memchr(a, ' ', n))
		return false;
	while (i < n) {
		size_t s, e;

		while (i < n && (a[i] == ' ' || a[i] == '\t'))
			i++;
		for (s = i; i < n && a[i] != ' ' && a[i] != '\t';)
			i++;
		e = i;
		if (s == e)
			return false;
		if (env_key_end(a + s, e - s, 0) == 0) /* not KEY=V */
			return e < n && known_prog(r, a + s, e - s);
	}
	return false;
}

/* One word of a command line, read in the context @c of the words before. */
static void word(const struct pf_redact *r, struct cmd *c, const char *a, size_t n,
		 const struct sink *k, int depth)
{
	bool opt = n >= 2 && a[0] == '-';

	if (c->next != NX_NONE) {
		enum next_word nx = c->next;

		c->next = NX_NONE;
		if (!(n >= 2 && a[0] == '-' && a[1] == '-')) { /* it is the value */
			value_spans(nx, a, n, 0, k);
			if (nx != NX_SECRET)
				match_word(r, a, n, k);
			return;
		}
	}
	if (c->shell == SH_CODE && !opt) {
		c->shell = SH_NONE;
		if (depth < PF_REDACT_SHELL_DEPTH)
			shell_code(r, a, n, k, depth + 1);
		else
			sink_add(k, 0, n);
		return;
	}
	if (!opt && depth < PF_REDACT_SHELL_DEPTH && runs_a_program(r, a, n)) {
		shell_code(r, a, n, k, depth + 1);
		return;
	}
	if (!opt) {
		if ((c->want_prog && env_key_end(a, n, 0) == 0) || known_prog(r, a, n))
			cmd_prog(r, c, a, n);
		else if (c->nopd < PF_REDACT_OPERANDS && n < sizeof(c->opd[0])) {
			memcpy(c->opd[c->nopd], a, n);
			c->opdl[c->nopd++] = n;
		}
		match_word(r, a, n, k);
		return;
	}
	if (c->shell == SH_OPTS && is_c_cluster(a, n))
		c->shell = SH_CODE;
	prog_options(r, c, a, n, k);
	match_word(r, a, n, k);
	if (takes_secret_value(r, a, n))
		c->next = NX_SECRET;
}

static bool breaks_shell_word(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' ||
	       c == ')' || c == '<' || c == '>';
}

static bool ends_shell_command(int c)
{
	return c == '\n' || c == ';' || c == '&' || c == '|' || c == '(' || c == ')';
}

/*
 * A shell command line @a: cut into words as the shell does (quotes,
 * backslashes, operators), each word unquoted with a map back into @a and
 * read as a word of a command; an operator starts a new command.
 * $(...), ${...} and here-documents are not expanded: their text is read
 * as words like the rest.
 */
static void shell_code(const struct pf_redact *r, const char *a, size_t n, const struct sink *k,
		       int depth)
{
	char w[PF_REDACT_SHELL_WORD];
	uint16_t map[PF_REDACT_SHELL_WORD];
	struct cmd c;
	size_t i = 0;

	if (n > UINT16_MAX) { /* positions would not fit the map */
		sink_add(k, 0, n);
		return;
	}
	cmd_start(&c);
	while (i < n) {
		size_t wl = 0, start = i;
		bool cut = false;
		char q = 0;

		if (breaks_shell_word((unsigned char)a[i])) {
			if (ends_shell_command((unsigned char)a[i]))
				cmd_start(&c);
			i++;
			continue;
		}
		for (; i < n; i++) {
			char ch = a[i];

			if (q == '\'') {
				if (ch == '\'') {
					q = 0;
					continue;
				}
			} else if (q == '"') {
				if (ch == '"') {
					q = 0;
					continue;
				}
				if (ch == '\\' && i + 1 < n &&
				    (a[i + 1] == '"' || a[i + 1] == '\\' || a[i + 1] == '$' ||
				     a[i + 1] == '`'))
					i++;
			} else {
				if (breaks_shell_word((unsigned char)ch))
					break;
				if (ch == '\'' || ch == '"') {
					q = ch;
					continue;
				}
				if (ch == '\\' && i + 1 < n)
					i++;
			}
			if (wl == sizeof(w)) {
				cut = true;
				continue;
			}
			w[wl] = a[i];
			map[wl++] = (uint16_t)i;
		}
		if (cut) {
			sink_add(k, start, i);
		} else {
			struct sink ks = {NULL, k, map};

			word(r, &c, w, wl, &ks, depth);
		}
	}
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

/* Write argument @p (@n bytes) with its spans replaced. Returns the number
 * of replacements. */
static unsigned put_redacted(const struct pf_redact *r, struct outbuf *o, const char *p, size_t n,
			     struct spans *sp)
{
	unsigned count = 0;
	size_t pos = 0;

	if (sp->overflow) {
		put(o, r->repl, r->repl_len);
		return 1;
	}
	if (sp->n > 1)
		qsort(sp->v, sp->n, sizeof(sp->v[0]), span_cmp);
	for (size_t i = 0; i < sp->n; i++) {
		size_t s = sp->v[i].s, e = sp->v[i].e;

		/* Merge the spans that overlap this one. */
		while (i + 1 < sp->n && sp->v[i + 1].s <= e) {
			i++;
			if (sp->v[i].e > e)
				e = sp->v[i].e;
		}
		if (s < pos)
			s = pos;
		if (s >= e)
			continue;
		put(o, p + pos, s - pos);
		put(o, r->repl, r->repl_len);
		count++;
		pos = e;
	}
	put(o, p + pos, n - pos);
	return count;
}

/* The program of the command line: argv[0], or the executable when only
 * its name is one the rules know (mysqldump run as /usr/bin/x). */
static void first_prog(const struct pf_redact *r, struct cmd *c, const char *exe, const char *argv0,
		       size_t a0len)
{
	cmd_start(c);
	if (exe && !known_prog(r, argv0, a0len) && known_prog(r, exe, strlen(exe)))
		cmd_prog(r, c, exe, strlen(exe));
	else
		cmd_prog(r, c, argv0, a0len);
}

size_t pf_redact__args(const struct pf_redact *r, const char *exe, const char *raw, size_t len,
		       char *out, size_t outsz, int *truncated, unsigned *nredacted)
{
	struct outbuf o = {out, 0, outsz, false};
	const char *p = raw, *end = raw + len;
	bool first = true;
	unsigned count = 0;
	struct cmd c;

	if (nredacted)
		*nredacted = 0;
	if (!out)
		o.cap = 0;
	if (!raw || len == 0)
		return 0;
	while (p < end) {
		const char *nul = memchr(p, '\0', (size_t)(end - p));
		size_t n = nul ? (size_t)(nul - p) : (size_t)(end - p);

		if (first) {
			/* argv[0]: kept; it names the program for program rules. */
			if (r && r->n)
				first_prog(r, &c, exe, p, n);
			put(&o, p, n);
		} else if (!r || r->n == 0) {
			put(&o, p, n);
		} else {
			struct spans sp;
			struct sink top = {&sp, NULL, NULL};

			sp.n = 0;
			sp.overflow = false;
			word(r, &c, p, n, &top, 0);
			count += put_redacted(r, &o, p, n, &sp);
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
