// SPDX-License-Identifier: BSD-2-Clause
/*
 * Table-driven configuration: value parsing, the YAML file (libyaml's event
 * parser, so every value keeps its line), the environment. See config.h.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* A config file is a few hundred bytes; anything past this is not one. */
#define CFG_FILE_MAX ((size_t)1 << 20)

static void cfg_err(char *err, size_t errsz, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void cfg_err(char *err, size_t errsz, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

const char *pf_cfg__shown(const char *s, char *buf, size_t bufsz)
{
	size_t o = 0, n = 0;

	if (!bufsz)
		return buf;
	for (; s && *s && n < PF_CFG_SHOWN_MAX; s++, n++) {
		unsigned char c = (unsigned char)*s;

		if (o + 5 >= bufsz)
			break;
		if (c < 0x20 || c == 0x7f) {
			o += (size_t)snprintf(buf + o, bufsz - o, "\\x%02x", c);
			continue;
		}
		buf[o++] = (char)c;
	}
	if (s && *s && o + 4 < bufsz) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

bool pf_cfg__is_name(const char *s)
{
	size_t n = 0;

	for (; *s; s++, n++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return false;
	return n > 0 && n <= 64;
}

static void *field(const struct pf_cfg_key *k, void *obj)
{
	return (char *)obj + k->offset;
}

static const void *cfield(const struct pf_cfg_key *k, const void *obj)
{
	return (const char *)obj + k->offset;
}

/* A whole unsigned number in @base, nothing else (no sign, no spaces). */
static int parse_u64(const char *s, size_t n, int base, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (!n)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		unsigned d;

		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		d = (unsigned)(s[i] - '0');
		if (d >= (unsigned)base)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / (uint64_t)base)
			return -ERANGE;
		v = v * (uint64_t)base + d;
	}
	*out = v;
	return 0;
}

static int parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on", "enabled", "1", NULL};
	static const char *const no[] = {"false", "no", "off", "disabled", "0", NULL};

	for (int i = 0; yes[i]; i++) {
		if (!strcasecmp(s, yes[i])) {
			*out = true;
			return 0;
		}
	}
	for (int i = 0; no[i]; i++) {
		if (!strcasecmp(s, no[i])) {
			*out = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* "15s", "2m", "1h", "1h30m" or plain seconds. */
static int parse_duration(const char *s, uint64_t *out)
{
	uint64_t total = 0, v;
	size_t i = 0, j;

	if (!*s)
		return -EINVAL;
	while (s[i]) {
		uint64_t mult;

		for (j = i; s[j] >= '0' && s[j] <= '9'; j++)
			;
		if (j == i || parse_u64(s + i, j - i, 10, &v))
			return -EINVAL;
		switch (s[j]) {
		case '\0':
			if (i) /* "1m30" is ambiguous */
				return -EINVAL;
			mult = 1;
			break;
		case 's':
			mult = 1;
			j++;
			break;
		case 'm':
			mult = 60;
			j++;
			break;
		case 'h':
			mult = 3600;
			j++;
			break;
		default:
			return -EINVAL;
		}
		if (v > UINT32_MAX || total > UINT32_MAX)
			return -ERANGE;
		total += v * mult;
		i = j;
	}
	*out = total;
	return 0;
}

int pf_cfg__set(const struct pf_cfg_key *k, void *obj, const char *text_in, const char *where,
		char *err, size_t errsz)
{
	char text_shown[PF_CFG_SHOWN_MAX * 4 + 8];
	const char *text = text_in ? text_in : "";
	uint64_t v;
	size_t len;
	bool b;

	len = strlen(text);
	/* Messages show the value without its control bytes, and cut. */
	pf_cfg__shown(text, text_shown, sizeof(text_shown));
	switch (k->type) {
	case PF_CFG_BOOL:
		if (parse_bool(text, &b)) {
			cfg_err(err, errsz, "%s: %s: '%s' is not true or false", where, k->name,
				text_shown);
			return -EINVAL;
		}
		*(bool *)field(k, obj) = b;
		return 0;
	case PF_CFG_UINT:
		if (parse_u64(text, len, 10, &v) || v < k->min || v > k->max) {
			cfg_err(err, errsz, "%s: %s: '%s' is not a whole number from %llu to %llu",
				where, k->name, text_shown, (unsigned long long)k->min,
				(unsigned long long)k->max);
			return -EINVAL;
		}
		*(unsigned *)field(k, obj) = (unsigned)v;
		return 0;
	case PF_CFG_DURATION:
		if (parse_duration(text, &v) || v < k->min || v > k->max) {
			cfg_err(err, errsz,
				"%s: %s: '%s' is not a duration from %llus to %llus (like 15s, 2m, "
				"1h)",
				where, k->name, text_shown, (unsigned long long)k->min,
				(unsigned long long)k->max);
			return -EINVAL;
		}
		*(unsigned *)field(k, obj) = (unsigned)v;
		return 0;
	case PF_CFG_MODE:
		if (len < 2 || text[0] != '0' || parse_u64(text, len, 8, &v) || v < k->min ||
		    v > k->max) {
			cfg_err(err, errsz,
				"%s: %s: '%s' is not an octal file mode from 0%llo to 0%llo", where,
				k->name, text_shown, (unsigned long long)k->min,
				(unsigned long long)k->max);
			return -EINVAL;
		}
		*(unsigned *)field(k, obj) = (unsigned)v;
		return 0;
	case PF_CFG_STRING:
		if ((!len && !(k->flags & PF_CFG_EMPTY_OK)) || len >= k->size ||
		    memchr(text, '\n', len)) {
			cfg_err(err, errsz, "%s: %s: %s", where, k->name,
				!len ? "empty value" : "value too long or not one line");
			return -EINVAL;
		}
		if (len && k->check) {
			char why[PF_CFG_ERR_MAX / 2];

			why[0] = '\0';
			if (k->check(text, why, sizeof(why))) {
				cfg_err(err, errsz, "%s: %s: %s", where, k->name, why);
				return -EINVAL;
			}
		}
		memcpy(field(k, obj), text, len + 1);
		return 0;
	case PF_CFG_ENUM:
		for (int i = 0; k->choices && k->choices[i]; i++) {
			if (!strcmp(text, k->choices[i])) {
				*(const char **)field(k, obj) = k->choices[i];
				return 0;
			}
		}
		{
			char list[256];
			size_t off = 0;

			list[0] = '\0';
			for (int i = 0; k->choices && k->choices[i] && off < sizeof(list); i++) {
				int w = snprintf(list + off, sizeof(list) - off, "%s%s",
						 i ? ", " : "", k->choices[i]);

				if (w < 0)
					break;
				off += (size_t)w;
			}
			cfg_err(err, errsz, "%s: %s: '%s' is not one of: %s", where, k->name,
				text_shown, list);
		}
		return -EINVAL;
	}
	cfg_err(err, errsz, "%s: %s: unknown type", where, k->name);
	return -EINVAL;
}

int pf_cfg__defaults(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		     char *err, size_t errsz)
{
	for (size_t i = 0; i < n; i++) {
		if (pf_cfg__set(&tab[i], obj, tab[i].def, "default", err, errsz))
			return -EINVAL;
		if (orig)
			memset(&orig[i], 0, sizeof(orig[i]));
	}
	return 0;
}

const struct pf_cfg_key *pf_cfg__find(const struct pf_cfg_key *tab, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(tab[i].name, name))
			return &tab[i];
	return NULL;
}

/* ---- YAML ------------------------------------------------------------------------------------ */

static const char *yaml_what(yaml_event_type_t t)
{
	switch (t) {
	case YAML_SEQUENCE_START_EVENT:
		return "a list";
	case YAML_MAPPING_START_EVENT:
		return "a mapping";
	case YAML_ALIAS_EVENT:
		return "an alias";
	default:
		return "not a value";
	}
}

/* Is this plain scalar YAML's null ("", "~", "null")? */
static bool yaml_is_null(const yaml_event_t *ev)
{
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	return !*v || !strcmp(v, "~") || !strcasecmp(v, "null");
}

int pf_cfg__load_yaml(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		      const char *path, const char *buf, size_t len, char *err, size_t errsz)
{
	enum { ST_STREAM, ST_DOC, ST_TOP, ST_KEY, ST_VALUE, ST_DOC_END, ST_DONE } st = ST_STREAM;
	const struct pf_cfg_key *key = NULL;
	char lastkey[128] = "", where[512];
	unsigned char *seen;
	yaml_parser_t p;
	yaml_event_t ev;
	int ret = 0;

	seen = calloc(n ? n : 1, 1);
	if (!seen) {
		cfg_err(err, errsz, "%s: out of memory", path);
		return -ENOMEM;
	}
	if (!yaml_parser_initialize(&p)) {
		free(seen);
		cfg_err(err, errsz, "%s: out of memory", path);
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&p, (const unsigned char *)buf, len);
	while (st != ST_DONE) {
		unsigned line;

		if (!yaml_parser_parse(&p, &ev)) {
			/* Where the broken construct began (an unclosed quote
			 * runs to the end of the file) is the line to fix. */
			size_t l = p.context ? p.context_mark.line : p.problem_mark.line;

			cfg_err(err, errsz, "%s:%zu: %s%smalformed YAML: %s%s%s", path, l + 1,
				lastkey, lastkey[0] ? ": " : "",
				p.problem ? p.problem : "parse error", p.context ? " " : "",
				p.context ? p.context : "");
			ret = -EINVAL;
			break;
		}
		line = (unsigned)ev.start_mark.line + 1;
		switch (st) {
		case ST_STREAM:
			if (ev.type == YAML_STREAM_START_EVENT)
				st = ST_DOC;
			break;
		case ST_DOC:
			if (ev.type == YAML_STREAM_END_EVENT)
				st = ST_DONE; /* empty file */
			else if (ev.type == YAML_DOCUMENT_START_EVENT)
				st = ST_TOP;
			break;
		case ST_TOP:
			if (ev.type == YAML_MAPPING_START_EVENT) {
				st = ST_KEY;
			} else if (ev.type == YAML_SCALAR_EVENT && yaml_is_null(&ev)) {
				st = ST_DOC_END; /* a document of comments only */
			} else {
				cfg_err(
				    err, errsz,
				    "%s:%u: the file must be a mapping of keys to values, not %s",
				    path, line,
				    ev.type == YAML_SCALAR_EVENT ? "a single value"
								 : yaml_what(ev.type));
				ret = -EINVAL;
			}
			break;
		case ST_KEY:
			if (ev.type == YAML_MAPPING_END_EVENT) {
				st = ST_DOC_END;
				break;
			}
			if (ev.type != YAML_SCALAR_EVENT) {
				cfg_err(err, errsz, "%s:%u: a key must be a name, not %s", path,
					line, yaml_what(ev.type));
				ret = -EINVAL;
				break;
			}
			/* A key is echoed in messages only when it looks like
			 * one: a file that is no config (-c /etc/shadow) must not
			 * have its lines printed. */
			if (pf_cfg__is_name((const char *)ev.data.scalar.value))
				snprintf(lastkey, sizeof(lastkey), "%s",
					 (const char *)ev.data.scalar.value);
			else
				lastkey[0] = '\0';
			key = pf_cfg__find(tab, n, (const char *)ev.data.scalar.value);
			if (!key && lastkey[0]) {
				const struct pf_cfg_key *near = pf_cfg__closest(tab, n, lastkey);

				cfg_err(err, errsz, "%s:%u: %s: unknown key%s%s%s", path, line,
					lastkey, near ? " (did you mean " : "",
					near ? near->name : "", near ? "?)" : "");
				ret = -EINVAL;
				break;
			}
			if (!key) {
				cfg_err(
				    err, errsz,
				    "%s:%u: not a procflow configuration key (is this a procflow "
				    "config file?)",
				    path, line);
				ret = -EINVAL;
				break;
			}
			if (seen[key - tab]) {
				cfg_err(err, errsz, "%s:%u: %s: set twice", path, line, key->name);
				ret = -EINVAL;
				break;
			}
			seen[key - tab] = 1;
			st = ST_VALUE;
			break;
		case ST_VALUE:
			if (ev.type != YAML_SCALAR_EVENT) {
				cfg_err(err, errsz, "%s:%u: %s: expected a single value, got %s",
					path, line, key->name, yaml_what(ev.type));
				ret = -EINVAL;
				break;
			}
			if (yaml_is_null(&ev)) {
				cfg_err(err, errsz, "%s:%u: %s: no value", path, line, key->name);
				ret = -EINVAL;
				break;
			}
			snprintf(where, sizeof(where), "%s:%u", path, line);
			ret = pf_cfg__set(key, obj, (const char *)ev.data.scalar.value, where, err,
					  errsz);
			if (!ret && orig) {
				orig[key - tab].source = PF_CFG_SRC_FILE;
				orig[key - tab].line = line;
			}
			st = ST_KEY;
			break;
		case ST_DOC_END:
			if (ev.type == YAML_DOCUMENT_END_EVENT)
				break;
			if (ev.type == YAML_STREAM_END_EVENT) {
				st = ST_DONE;
				break;
			}
			cfg_err(err, errsz,
				"%s:%u: only one YAML document is read; remove the second", path,
				line);
			ret = -EINVAL;
			break;
		case ST_DONE:
			break;
		}
		yaml_event_delete(&ev);
		if (ret)
			break;
	}
	yaml_parser_delete(&p);
	free(seen);
	return ret;
}

int pf_cfg__load_file(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		      const char *path, char *err, size_t errsz)
{
	struct stat st;
	size_t len = 0;
	char *buf;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		cfg_err(err, errsz, "%s: cannot read the config file: %s", path, strerror(-ret));
		return ret;
	}
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (size_t)st.st_size > CFG_FILE_MAX) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		cfg_err(err, errsz, "%s: cannot read the config file: %s", path,
			ret == -EISDIR ? "it is a directory" : "not a regular file under 1 MiB");
		close(fd);
		return ret;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		cfg_err(err, errsz, "%s: out of memory", path);
		return -ENOMEM;
	}
	while (len < (size_t)st.st_size) {
		ssize_t r = read(fd, buf + len, (size_t)st.st_size - len);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			ret = -errno;
			cfg_err(err, errsz, "%s: cannot read the config file: %s", path,
				strerror(-ret));
			free(buf);
			close(fd);
			return ret;
		}
		if (!r)
			break;
		len += (size_t)r;
	}
	close(fd);
	buf[len] = '\0';
	ret = pf_cfg__load_yaml(tab, n, obj, orig, path, buf, len, err, errsz);
	free(buf);
	return ret;
}

/* ---- environment ----------------------------------------------------------------------------- */

int pf_cfg__env_name(const struct pf_cfg_key *k, char *buf, size_t bufsz)
{
	const char *s = k->name;
	size_t o = 0, plen = strlen(PF_CFG_ENV_PREFIX);

	if (bufsz <= plen)
		return -ENAMETOOLONG;
	memcpy(buf, PF_CFG_ENV_PREFIX, plen);
	o = plen;
	for (size_t i = 0; s[i]; i++) {
		bool up = isupper((unsigned char)s[i]);

		/* A binary unit is one word, as a person writes it:
		 * ringBufferKiB -> RING_BUFFER_KIB. */
		if (up && s[i + 1] == 'i' && s[i + 2] == 'B' &&
		    (!s[i + 3] || isupper((unsigned char)s[i + 3]))) {
			if (o + 5 > bufsz)
				return -ENAMETOOLONG;
			if (i)
				buf[o++] = '_';
			buf[o++] = s[i];
			buf[o++] = 'I';
			buf[o++] = 'B';
			i += 2;
			continue;
		}
		/* A word starts at an upper-case letter after a lower-case one
		 * ("fileMax"), or at the last capital of an acronym followed
		 * by lower case ("TCPStats" -> TCP_STATS); "SizeMB" -> SIZE_MB. */
		bool brk = i && up &&
			   (islower((unsigned char)s[i - 1]) || isdigit((unsigned char)s[i - 1]) ||
			    (isupper((unsigned char)s[i - 1]) && islower((unsigned char)s[i + 1])));

		if (o + 3 > bufsz)
			return -ENAMETOOLONG;
		if (brk)
			buf[o++] = '_';
		buf[o++] = (char)toupper((unsigned char)s[i]);
	}
	buf[o] = '\0';
	return (int)o;
}

/* Edit distance of @a and @b (insert, delete, substitute), capped at 99. */
static unsigned distance(const char *a, const char *b)
{
	unsigned row[129], prev, tmp;
	size_t la = strlen(a), lb = strlen(b);

	if (la > 128 || lb > 128)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (unsigned)j;
	for (size_t i = 1; i <= la; i++) {
		prev = row[0];
		row[0] = (unsigned)i;
		for (size_t j = 1; j <= lb; j++) {
			unsigned best = prev + (toupper((unsigned char)a[i - 1]) !=
						toupper((unsigned char)b[j - 1]));

			if (row[j] + 1 < best)
				best = row[j] + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb] > 99 ? 99 : row[lb];
}

/* Close enough to be a slip of the keyboard, not another word. */
static bool near_enough(unsigned d, const char *name)
{
	size_t n = strlen(name);

	return d <= (n > 12 ? n / 4 : 3);
}

const struct pf_cfg_key *pf_cfg__closest(const struct pf_cfg_key *tab, size_t n, const char *name)
{
	const struct pf_cfg_key *best = NULL;
	unsigned bd = 99;

	for (size_t i = 0; i < n; i++) {
		unsigned d = distance(name, tab[i].name);

		if (d < bd) {
			bd = d;
			best = &tab[i];
		}
	}
	return best && near_enough(bd, name) ? best : NULL;
}

const struct pf_cfg_key *pf_cfg__closest_env(const struct pf_cfg_key *tab, size_t n,
					     const char *var)
{
	const struct pf_cfg_key *best = NULL;
	char env[128], alias[128];
	unsigned bd = 99;

	for (size_t i = 0; i < n; i++) {
		unsigned d;

		if (pf_cfg__env_name(&tab[i], env, sizeof(env)) < 0)
			continue;
		d = distance(var, env);
		/* The flag's name as a variable (PROCFLOW_OUTPUT_DIR for
		 * --output-dir) is what a person guesses too. */
		if (tab[i].flag) {
			size_t o = (size_t)snprintf(alias, sizeof(alias), "%s", PF_CFG_ENV_PREFIX);

			for (const char *f = tab[i].flag; *f && o + 1 < sizeof(alias); f++)
				alias[o++] = *f == '-' ? '_' : (char)toupper((unsigned char)*f);
			alias[o] = '\0';
			if (!strncmp(alias, PF_CFG_ENV_PREFIX "NO_", strlen(PF_CFG_ENV_PREFIX) + 3))
				memmove(alias + strlen(PF_CFG_ENV_PREFIX),
					alias + strlen(PF_CFG_ENV_PREFIX) + 3,
					strlen(alias + strlen(PF_CFG_ENV_PREFIX) + 3) + 1);
			if (distance(var, alias) < d)
				d = distance(var, alias);
		}
		if (d < bd) {
			bd = d;
			best = &tab[i];
		}
	}
	return best && near_enough(bd, var + strlen(PF_CFG_ENV_PREFIX)) ? best : NULL;
}

static const char *default_getenv(const char *name)
{
	return getenv(name);
}

int pf_cfg__load_env(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		     const char *(*getenv_fn)(const char *name), char *err, size_t errsz)
{
	char name[128], where[160];

	if (!getenv_fn)
		getenv_fn = default_getenv;
	for (size_t i = 0; i < n; i++) {
		const char *v;

		if (pf_cfg__env_name(&tab[i], name, sizeof(name)) < 0)
			continue;
		v = getenv_fn(name);
		if (!v)
			continue;
		snprintf(where, sizeof(where), "environment %s", name);
		if (pf_cfg__set(&tab[i], obj, v, where, err, errsz))
			return -EINVAL;
		if (orig) {
			orig[i].source = PF_CFG_SRC_ENV;
			orig[i].line = 0;
		}
	}
	return 0;
}

/* ---- output ---------------------------------------------------------------------------------- */

/* A string as a YAML scalar: plain when that reads back the same, else
 * double-quoted with \ and " escaped. */
static char *format_str(const char *s, char *buf, size_t bufsz)
{
	bool plain = *s && !strchr("-?:,[]{}#&*!|>'\"%@` ~", s[0]);
	size_t o = 0;

	for (const char *c = s; plain && *c; c++)
		if ((unsigned char)*c < 0x20 || *c == '#' || (*c == ':' && (c[1] == ' ' || !c[1])))
			plain = false;
	{
		bool tmp;

		if (plain && !parse_bool(s, &tmp))
			plain = false; /* "yes" would read back as a boolean */
	}
	if (plain) {
		snprintf(buf, bufsz, "%s", s);
		return buf;
	}
	if (bufsz < 3) {
		if (bufsz)
			buf[0] = '\0';
		return buf;
	}
	buf[o++] = '"';
	for (const char *c = s; *c && o + 4 < bufsz; c++) {
		if (*c == '"' || *c == '\\')
			buf[o++] = '\\';
		buf[o++] = *c;
	}
	buf[o++] = '"';
	buf[o] = '\0';
	return buf;
}

/* The longest value a show() hook is given room for. */
#define PF_CFG_SHOW_MAX 4096

char *pf_cfg__format(const struct pf_cfg_key *k, const void *obj, char *buf, size_t bufsz)
{
	unsigned v;

	switch (k->type) {
	case PF_CFG_BOOL:
		snprintf(buf, bufsz, "%s", *(const bool *)cfield(k, obj) ? "true" : "false");
		break;
	case PF_CFG_UINT:
		snprintf(buf, bufsz, "%u", *(const unsigned *)cfield(k, obj));
		break;
	case PF_CFG_DURATION:
		v = *(const unsigned *)cfield(k, obj);
		snprintf(buf, bufsz, "%us", v);
		break;
	case PF_CFG_MODE:
		snprintf(buf, bufsz, "0%o", *(const unsigned *)cfield(k, obj));
		break;
	case PF_CFG_STRING:
		if (k->show) {
			char shown[PF_CFG_SHOW_MAX];

			format_str(k->show((const char *)cfield(k, obj), shown, sizeof(shown)), buf,
				   bufsz);
			explicit_bzero(shown, sizeof(shown));
		} else {
			format_str((const char *)cfield(k, obj), buf, bufsz);
		}
		break;
	case PF_CFG_ENUM:
		format_str(*(const char *const *)cfield(k, obj), buf, bufsz);
		break;
	}
	return buf;
}

bool pf_cfg__differs(const struct pf_cfg_key *k, const void *a, const void *b)
{
	switch (k->type) {
	case PF_CFG_BOOL:
		return *(const bool *)cfield(k, a) != *(const bool *)cfield(k, b);
	case PF_CFG_STRING:
		return strcmp((const char *)cfield(k, a), (const char *)cfield(k, b)) != 0;
	case PF_CFG_ENUM:
		return strcmp(*(const char *const *)cfield(k, a),
			      *(const char *const *)cfield(k, b));
	default:
		return *(const unsigned *)cfield(k, a) != *(const unsigned *)cfield(k, b);
	}
}
