/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Table-driven configuration (in the spirit of redis src/config.c).
 *
 * The program describes every setting once, in an array of struct
 * pf_cfg_key: its name (the YAML key), type, default, bounds, whether it
 * can change while running, the command-line flag that sets it and a help
 * line. Everything else comes from that table: defaults, the YAML file,
 * the environment (PROCFLOW_<KEY_IN_UPPER_SNAKE>), flags, validation,
 * --help, --print-config and what a reload may change.
 *
 * Values live in a caller-defined struct; each key names the offset and
 * size of its field. Strings are stored in fixed char arrays inside that
 * struct, and enums as pointers to the table's static choices, so a
 * configuration can be copied by value (a reload builds a new
 * one next to the running one and swaps only if it is valid).
 *
 * Nothing here exits or prints: errors come back as one message in a
 * caller-provided buffer naming the key and where the bad value came from
 * ("file:line", "environment PROCFLOW_X", "--flag").
 */
#ifndef PF_CONFIG_H
#define PF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pf_cfg_type {
	PF_CFG_BOOL,	 /* bool; true/false (also yes/no, on/off, enabled/disabled) */
	PF_CFG_UINT,	 /* unsigned; decimal, within [min, max] */
	PF_CFG_DURATION, /* unsigned seconds; "15s", "2m", "1h", or plain seconds */
	PF_CFG_STRING,	 /* char[size], non-empty */
	PF_CFG_ENUM,	 /* const char *, pointing at one of choices (static strings) */
	PF_CFG_MODE,	 /* unsigned; octal file mode such as 0640, within [min, max] */
};

/* The key can change on reload (SIGHUP) without a restart. */
#define PF_CFG_LIVE (1u << 0)
/* PF_CFG_STRING: the empty string is a value ("none"). */
#define PF_CFG_EMPTY_OK (1u << 1)

struct pf_cfg_key {
	const char *name; /* YAML key, camelCase */
	enum pf_cfg_type type;
	const char *def; /* default, as a user would write it */
	uint64_t min, max;
	const char *const *choices; /* PF_CFG_ENUM: NULL-terminated */
	size_t offset, size;	    /* the field in the config struct */
	unsigned flags;		    /* PF_CFG_LIVE, PF_CFG_EMPTY_OK */
	const char *flag;	    /* long option without "--", or NULL */
	char short_flag;	    /* 0 when none */
	/* PF_CFG_BOOL flags take no argument and set this value. */
	bool flag_value;
	const char *metavar; /* flags with an argument: "SECS", "DIR", ... */
	const char *help;    /* what the flag does (for a switch: what setting it does) */
	/* PF_CFG_STRING, optional: a further check of a non-empty value; returns
	 * 0, or -EINVAL with why in @why (which must not quote a secret). */
	int (*check)(const char *text, char *why, size_t whysz);
	/* PF_CFG_STRING, optional: the value as it may be shown (--print-config,
	 * reload messages), a secret in it masked. Returns @buf. */
	char *(*show)(const char *text, char *buf, size_t bufsz);
};

enum pf_cfg_source {
	PF_CFG_SRC_DEFAULT = 0,
	PF_CFG_SRC_FILE,
	PF_CFG_SRC_ENV,
	PF_CFG_SRC_FLAG,
};

/* Where each key's value came from, for --print-config. */
struct pf_cfg_origin {
	uint8_t source; /* enum pf_cfg_source */
	unsigned line;	/* PF_CFG_SRC_FILE: 1-based line */
};

#define PF_CFG_ERR_MAX	  512
#define PF_CFG_ENV_PREFIX "PROCFLOW_"

/*
 * Parse @text as the value of @key and store it in @obj. @where says where
 * the text came from and starts the error message ("f.yaml:3",
 * "environment PROCFLOW_X", "--flush-interval"). Returns 0, or -EINVAL with
 * "<where>: <key>: <why>" in @err.
 */
int pf_cfg__set(const struct pf_cfg_key *key, void *obj, const char *text, const char *where,
		char *err, size_t errsz);

/* Store every key's default in @obj; -EINVAL if a default is invalid (a
 * bug in the table, said in @err). */
int pf_cfg__defaults(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		     char *err, size_t errsz);

/* The key called @name, or NULL. */
const struct pf_cfg_key *pf_cfg__find(const struct pf_cfg_key *tab, size_t n, const char *name);

/*
 * Apply a YAML document (@buf, @len bytes; from @path, used in messages)
 * to @obj. The document is a mapping of keys from @tab to scalar values;
 * an empty document changes nothing. Unknown keys, repeated keys, lists or
 * mappings as values, empty values, bad values and malformed YAML are
 * errors naming the key and "path:line". On error @obj may be partly
 * changed: callers work on a copy.
 */
int pf_cfg__load_yaml(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		      const char *path, const char *buf, size_t len, char *err, size_t errsz);

/* Read @path and apply it as above. An unreadable file is an error. */
int pf_cfg__load_file(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		      const char *path, char *err, size_t errsz);

/*
 * The environment variable of @key: "PROCFLOW_" and the key in upper snake
 * case (flowLogsFileMaxFileSizeMB -> PROCFLOW_FLOW_LOGS_FILE_MAX_FILE_SIZE_MB;
 * a binary unit is one word: ringBufferKiB -> PROCFLOW_RING_BUFFER_KIB).
 * Returns the length, or -ENAMETOOLONG.
 */
int pf_cfg__env_name(const struct pf_cfg_key *key, char *buf, size_t bufsz);

/* Apply every PROCFLOW_<KEY> set in the environment (@getenv_fn, so tests
 * can supply their own; NULL means getenv). */
int pf_cfg__load_env(const struct pf_cfg_key *tab, size_t n, void *obj, struct pf_cfg_origin *orig,
		     const char *(*getenv_fn)(const char *name), char *err, size_t errsz);

/*
 * The key of @tab whose name is closest to @name (a misspelt YAML key), or
 * NULL when none is close enough to be a slip.
 */
const struct pf_cfg_key *pf_cfg__closest(const struct pf_cfg_key *tab, size_t n, const char *name);

/*
 * The key whose environment variable is closest to @var (a whole
 * "PROCFLOW_..." name), also trying each flag's name as a variable
 * (PROCFLOW_OUTPUT_DIR for --output-dir); NULL when none is close.
 */
const struct pf_cfg_key *pf_cfg__closest_env(const struct pf_cfg_key *tab, size_t n,
					     const char *var);

/* Characters of a user's text shown in a message, at most. */
#define PF_CFG_SHOWN_MAX 64

/*
 * @s for a message: control bytes as \xNN, cut after PF_CFG_SHOWN_MAX
 * characters with "...". Returns @buf.
 */
const char *pf_cfg__shown(const char *s, char *buf, size_t bufsz);

/* Whether @s looks like a key name (letters, digits, _ - ., 1..64): only
 * then is an unknown key echoed in a message. */
bool pf_cfg__is_name(const char *s);

/* The value of @key in @obj as text (a YAML scalar). Returns @buf. */
char *pf_cfg__format(const struct pf_cfg_key *key, const void *obj, char *buf, size_t bufsz);

/* Whether @key's value differs between @a and @b. */
bool pf_cfg__differs(const struct pf_cfg_key *key, const void *a, const void *b);

#endif
