// SPDX-License-Identifier: BSD-2-Clause
/*
 * `procflow query`: read flow files (a directory's flows.log and its
 * rotated and compressed files, oldest first; files named; standard
 * input), keep the lines that pass the filters, and print them as a table,
 * as the JSON lines themselves, or summarised by a key (--top). --follow
 * then keeps reading flows.log as the agent appends to it, across
 * rotations.
 *
 * Every file of a directory is opened before the first line is read: a
 * rotation during the query then cannot make it read a line twice or miss
 * one. The work per line is the scanner of lib/flowline.c asked for the
 * fields the filters and the output need, and nothing else.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "config.h"
#include "flowfile.h"
#include "flowline.h"
#include "jsonw.h"
#include "query.h"
#include "query_cmd.h"
#include "query_table.h"

#define DEFAULT_DIR    "/var/log/procflow"
#define TOP_MAX_KEYS   (1u << 20) /* distinct --top keys; the rest go to "(other)" */
#define FOLLOW_POLL_US 200000
#define VALUE_MAX      4096 /* bytes of one value shown in the table */
#define FOLLOW_TAIL    10   /* lines shown before following, as tail -f and journalctl -f */
#define MAX_INPUTS     256  /* DIR, FILE and - arguments */

enum out_mode { OUT_TABLE, OUT_JSON, OUT_TOP };
enum top_key { TOP_PROCESS, TOP_DEST, TOP_PORT };

struct top_ent {
	char *key; /* NULL: free slot */
	uint64_t hash;
	uint64_t bytes_in, bytes_out, flows, lines;
};

struct qstate {
	struct pf_query q;
	enum out_mode mode;
	enum top_key top;
	enum pf_qt_style style;
	bool json; /* --json or -o json: with --top, the summary as JSON lines */
	bool follow;
	uint64_t limit; /* lines (table, json) or rows (top); 0: no limit; with -f: the tail */
	bool limit_given;
	uint64_t want; /* fields to scan */
	uint64_t printed, matched, scanned, corrupt;
	uint64_t fscanned, fcorrupt; /* of the file being read */
	unsigned width;		     /* the terminal's columns, 0: not known */
	struct pf_qtable table;
	/* -f: the last tail_n matching lines of what is there, then new ones */
	bool backlog;
	char **tail;
	size_t *tail_len;
	size_t tail_n, tail_head, tail_count;
	uint64_t tail_lost;
	/* --top: open addressing, linear probing, power-of-two size */
	struct top_ent *tab;
	size_t tab_size, tab_used;
	struct top_ent other;
	/* what to read */
	const char *inputs[MAX_INPUTS];
	int ninputs;
	const char *config; /* -c: where flowLogsFileDirectory is read */
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	stop_flag = 1;
}

static const char usage_text[] =
    "Usage: procflow query [DIR|FILE|-]... [OPTIONS]\n"
    "\n"
    "Print the flows procflow wrote, oldest first: a DIR's flows.log and its rotated\n"
    "files (flows.log.N, flows.log.N.zst); a FILE; - for standard input. Without one:\n"
    "the flowLogsFileDirectory of the configuration (-c, PROCFLOW_CONFIG,\n"
    "" PF_CONFIG_DEFAULT_FILE "), else " DEFAULT_DIR ".\n"
    "Filters combine (AND); a filter given several times matches any value (OR).\n"
    "\n"
    "Filters:\n"
    "      --since DURATION   interval ended in the last DURATION (90s, 10m, 2h, 7d)\n"
    "      --from TIME        interval ended at or after TIME\n"
    "      --to TIME          interval started at or before TIME\n"
    "                         TIME: Unix seconds or ISO 8601 (2026-11-27T14:05:00Z;\n"
    "                         without a zone, local time)\n"
    "  -p, --process GLOB     process_name matches GLOB ('curl' finds /usr/bin/curl)\n"
    "      --not-process GLOB process_name does not match GLOB\n"
    "      --args TEXT        one of process_args contains TEXT\n"
    "      --pid PID          process_id is PID\n"
    "      --ip ADDR[/LEN]    source or destination in the address or CIDR\n"
    "      --src ADDR[/LEN]   source in it\n"
    "      --dst ADDR[/LEN]   destination in it\n"
    "      --port PORTS       source or destination port: 443, 80-90, 53,80, https\n"
    "      --proto PROTO      tcp, udp, icmp, icmp6, sctp or a number (6)\n"
    "      --reporter src|dst src: the local process initiated the flow; dst: it\n"
    "                         received it\n"
    "      --action allow|deny\n"
    "      --namespace NS     either end is in Kubernetes namespace NS\n"
    "      --pod GLOB         either end is a pod or container whose name matches\n"
    "                         GLOB ('web-*')\n"
    "\n"
    "Output:\n"
    "  -o, --output MODE      table (default, fitted to the terminal), wide (nothing\n"
    "                         cut), compact, json (the matching lines, unchanged)\n"
    "      --json             the same as -o json\n"
    "      --top KEY          bytes and flows summed by KEY: process, dest or port\n"
    "  -n, --limit N          the first N lines (--top: N rows, default 20);\n"
    "                         with -f: the last N, then follow (default 10)\n"
    "  -f, --follow           then print new lines as they are written (across\n"
    "                         rotations)\n"
    "      --dir DIR          the directory (same as the DIR argument)\n"
    "  -c, --config FILE      read the directory from this configuration file\n"
    "  -h, --help             this text\n"
    "\n"
    "Damaged lines are skipped and counted on stderr, with the file's name.\n"
    "Exit status: 0 ok, 1 a file could not be read whole, 2 a bad option or filter.\n";

enum {
	OPT_JSON = 300,
	OPT_TOP,
	OPT_DIR,
	OPT_FILTER, /* every filter: the name is looked up in pf_query__add() */
};

static const struct option opts[] = {
    {"since", required_argument, NULL, OPT_FILTER},
    {"from", required_argument, NULL, OPT_FILTER},
    {"to", required_argument, NULL, OPT_FILTER},
    {"process", required_argument, NULL, 'p'},
    {"not-process", required_argument, NULL, OPT_FILTER},
    {"args", required_argument, NULL, OPT_FILTER},
    {"pid", required_argument, NULL, OPT_FILTER},
    {"ip", required_argument, NULL, OPT_FILTER},
    {"src", required_argument, NULL, OPT_FILTER},
    {"dst", required_argument, NULL, OPT_FILTER},
    {"port", required_argument, NULL, OPT_FILTER},
    {"proto", required_argument, NULL, OPT_FILTER},
    {"reporter", required_argument, NULL, OPT_FILTER},
    {"action", required_argument, NULL, OPT_FILTER},
    {"namespace", required_argument, NULL, OPT_FILTER},
    {"pod", required_argument, NULL, OPT_FILTER},
    {"json", no_argument, NULL, OPT_JSON},
    {"output", required_argument, NULL, 'o'},
    {"top", required_argument, NULL, OPT_TOP},
    {"limit", required_argument, NULL, 'n'},
    {"follow", no_argument, NULL, 'f'},
    {"dir", required_argument, NULL, OPT_DIR},
    {"config", required_argument, NULL, 'c'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* ---- --top ---- */

static uint64_t fnv1a(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ull;
	}
	return h | 1; /* never 0 */
}

static int top_grow(struct qstate *s)
{
	size_t nsize = s->tab_size ? s->tab_size * 2 : 1024;
	struct top_ent *n = calloc(nsize, sizeof(*n));

	if (!n)
		return -ENOMEM;
	for (size_t i = 0; i < s->tab_size; i++) {
		struct top_ent *e = &s->tab[i];
		size_t j;

		if (!e->key)
			continue;
		for (j = e->hash & (nsize - 1); n[j].key; j = (j + 1) & (nsize - 1))
			;
		n[j] = *e;
	}
	free(s->tab);
	s->tab = n;
	s->tab_size = nsize;
	return 0;
}

static struct top_ent *top_find(struct qstate *s, const char *key, size_t n)
{
	uint64_t h = fnv1a(key, n);
	size_t j;

	if ((s->tab_used + 1) * 2 > s->tab_size && s->tab_used < TOP_MAX_KEYS && top_grow(s))
		return &s->other;
	for (j = h & (s->tab_size - 1); s->tab[j].key; j = (j + 1) & (s->tab_size - 1))
		if (s->tab[j].hash == h && strlen(s->tab[j].key) == n &&
		    !memcmp(s->tab[j].key, key, n))
			return &s->tab[j];
	if (s->tab_used >= TOP_MAX_KEYS)
		return &s->other;
	s->tab[j].key = strndup(key, n);
	if (!s->tab[j].key)
		return &s->other;
	s->tab[j].hash = h;
	s->tab_used++;
	return &s->tab[j];
}

static void top_add(struct qstate *s, const struct pf_flowrec *r)
{
	char key[VALUE_MAX];
	const struct pf_fl_val *v;
	struct top_ent *e;
	uint64_t x;
	size_t n;

	switch (s->top) {
	case TOP_PROCESS:
		v = &r->v[PF_FL_PROCESS_NAME];
		n = v->type == PF_FLV_STR ? pf_fl__unescape(v->p, v->len, key, sizeof(key)) : 0;
		break;
	case TOP_DEST:
		v = &r->v[PF_FL_DEST_IP];
		if (v->type != PF_FLV_STR)
			v = &r->v[PF_FL_DEST_NAME_AGGR];
		n = v->type == PF_FLV_STR ? pf_fl__unescape(v->p, v->len, key, sizeof(key)) : 0;
		break;
	default: {
		const struct pf_fl_val *pr = &r->v[PF_FL_PROTO];
		int len = pr->type == PF_FLV_STR && pr->len < 16 ? (int)pr->len : 1;

		if (pf_fl__u64(&r->v[PF_FL_DEST_PORT], &x))
			n = (size_t)snprintf(key, sizeof(key), "%.*s/-", len,
					     pr->type == PF_FLV_STR ? pr->p : "?");
		else
			n = (size_t)snprintf(key, sizeof(key), "%.*s/%llu", len,
					     pr->type == PF_FLV_STR ? pr->p : "?",
					     (unsigned long long)x);
		break;
	}
	}
	if (n >= sizeof(key))
		n = sizeof(key) - 1;
	if (n == 0) {
		key[0] = '-';
		n = 1;
	}
	e = top_find(s, key, n);
	if (!pf_fl__u64(&r->v[PF_FL_BYTES_IN], &x))
		e->bytes_in += x;
	if (!pf_fl__u64(&r->v[PF_FL_BYTES_OUT], &x))
		e->bytes_out += x;
	if (!pf_fl__u64(&r->v[PF_FL_NUM_FLOWS], &x))
		e->flows += x;
	e->lines++;
}

static int by_bytes(const void *a, const void *b)
{
	const struct top_ent *x = a, *y = b;
	uint64_t tx = x->bytes_in + x->bytes_out, ty = y->bytes_in + y->bytes_out;

	if (tx != ty)
		return tx > ty ? -1 : 1;
	if (x->flows != y->flows)
		return x->flows > y->flows ? -1 : 1;
	return strcmp(x->key, y->key);
}

static void top_print(struct qstate *s, bool json)
{
	static const char *const title[] = {"PROCESS", "DESTINATION", "PORT"};
	static const char *const jkey[] = {"process_name", "dest", "port"};
	size_t n = 0, limit = s->limit ? s->limit : 20;
	/* The key column takes what the five number columns leave. */
	size_t kw = s->width ? (s->width > 70 ? s->width - 50 : 20) : 40;
	struct top_ent *rows = NULL;
	struct pf_jw w;

	rows = malloc((s->tab_used + 1) * sizeof(*rows));
	if (!rows)
		return;
	for (size_t i = 0; i < s->tab_size; i++)
		if (s->tab[i].key)
			rows[n++] = s->tab[i];
	if (s->other.lines) {
		/* Keys beyond the bound (or without memory) are summed as one row. */
		pf_log("--top: more than %u distinct keys; the rest are summed as (other)",
		       TOP_MAX_KEYS);
		rows[n++] = s->other;
	}
	if (n)
		qsort(rows, n, sizeof(*rows), by_bytes);
	pf_jw__init(&w, 1 << 20);
	if (!json)
		printf("%-*s %9s %9s %9s %9s %9s\n", (int)kw, title[s->top], "BYTES", "IN", "OUT",
		       "FLOWS", "LINES");
	for (size_t i = 0; i < n && i < limit; i++) {
		struct top_ent *e = &rows[i];
		char t[32], bi[32], bo[32], cell[VALUE_MAX];
		size_t cols;

		if (json) {
			pf_jw__reset(&w);
			pf_jw__obj_begin(&w);
			pf_jw__key(&w, jkey[s->top]);
			pf_jw__str(&w, e->key);
			pf_jw__key(&w, "bytes_in");
			pf_jw__u64(&w, e->bytes_in);
			pf_jw__key(&w, "bytes_out");
			pf_jw__u64(&w, e->bytes_out);
			pf_jw__key(&w, "num_flows");
			pf_jw__u64(&w, e->flows);
			pf_jw__key(&w, "lines");
			pf_jw__u64(&w, e->lines);
			pf_jw__obj_end(&w);
			pf_jw__raw(&w, "\n", 1);
			if (!pf_jw__error(&w))
				fwrite(w.buf, 1, w.len, stdout);
			continue;
		}
		pf_fmt_bytes(e->bytes_in + e->bytes_out, t, sizeof(t));
		pf_fmt_bytes(e->bytes_in, bi, sizeof(bi));
		pf_fmt_bytes(e->bytes_out, bo, sizeof(bo));
		cols = pf_fmt_cell(e->key, strlen(e->key), kw, s->top == TOP_PROCESS, cell,
				   sizeof(cell));
		printf("%s%*s ", cell, (int)(cols < kw ? kw - cols : 0), "");
		printf("%9s %9s %9s %9llu %9llu\n", t, bi, bo, (unsigned long long)e->flows,
		       (unsigned long long)e->lines);
	}
	pf_jw__fini(&w);
	free(rows);
}

static void top_free(struct qstate *s)
{
	for (size_t i = 0; i < s->tab_size; i++)
		free(s->tab[i].key);
	free(s->tab);
}

/* ---- reading ---- */

/* ---- reading ---- */

/* One thing named on the command line, or one file of a directory. */
struct input {
	char *name;	       /* for messages */
	struct pf_flowfile *f; /* NULL: not opened, for the reason in err */
	int err;	       /* errno of the failed open; 0 with f NULL: a duplicate */
	bool follow;	       /* --follow goes on reading this one (flows.log) */
};

struct inputs {
	struct input *v;
	size_t n, cap;
};

static int inputs_add(struct inputs *in, char *name, struct pf_flowfile *f, int err)
{
	if (in->n == in->cap) {
		size_t ncap = in->cap ? in->cap * 2 : 16;
		struct input *v = realloc(in->v, ncap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		in->v = v;
		in->cap = ncap;
	}
	in->v[in->n++] = (struct input){.name = name, .f = f, .err = err};
	return 0;
}

static void inputs_drop(struct inputs *in, size_t from)
{
	while (in->n > from) {
		struct input *e = &in->v[--in->n];

		pf_flowfile__close(e->f);
		free(e->name);
	}
}

static bool limit_reached(const struct qstate *s)
{
	return s->limit && !s->follow && s->mode != OUT_TOP && s->printed >= s->limit;
}

static void emit(struct qstate *s, const char *line, size_t len, const struct pf_flowrec *r)
{
	switch (s->mode) {
	case OUT_JSON:
		fwrite(line, 1, len, stdout);
		putchar('\n');
		s->printed++;
		break;
	case OUT_TABLE:
		pf_qtable__row(&s->table, line, len, r);
		s->printed++;
		break;
	case OUT_TOP:
		top_add(s, r);
		break;
	}
}

/* -n N -f: the last N matching lines of what is there, kept as copies. */
static void tail_push(struct qstate *s, const char *line, size_t len)
{
	char *copy = malloc(len + 1);
	size_t slot;

	if (!copy) {
		s->tail_lost++;
		return;
	}
	memcpy(copy, line, len);
	copy[len] = '\0';
	slot = (s->tail_head + s->tail_count) % s->tail_n;
	if (s->tail_count == s->tail_n) {
		free(s->tail[s->tail_head]);
		s->tail_head = (s->tail_head + 1) % s->tail_n;
		slot = (s->tail_head + s->tail_count - 1) % s->tail_n;
	} else {
		s->tail_count++;
	}
	s->tail[slot] = copy;
	s->tail_len[slot] = len;
}

static void tail_flush(struct qstate *s)
{
	for (size_t i = 0; i < s->tail_count; i++) {
		size_t k = (s->tail_head + i) % s->tail_n;
		struct pf_flowrec r;

		if (!pf_fl__scan(s->tail[k], s->tail_len[k], s->want, &r))
			emit(s, s->tail[k], s->tail_len[k], &r);
		free(s->tail[k]);
	}
	s->tail_count = 0;
	s->backlog = false;
}

static void one_line(struct qstate *s, const char *line, size_t len)
{
	struct pf_flowrec r;

	if (len == 0 || (len == 1 && line[0] == '\r'))
		return; /* an empty line is no record, and no damage */
	s->fscanned++;
	/* A JSON object without the contract's keys ({"a":1}) is no flow line. */
	if (pf_fl__scan(line, len, s->want, &r) || !PF_FL_IS_FLOW(&r)) {
		s->fcorrupt++;
		return;
	}
	if (!pf_query__match(&s->q, &r))
		return;
	s->matched++;
	if (s->backlog && s->tail_n)
		tail_push(s, line, len);
	else
		emit(s, line, len, &r);
}

/* Read @f to its end. Returns 0 or a negative errno. */
static int drain(struct qstate *s, struct pf_flowfile *f, bool final)
{
	const char *line;
	size_t len;
	int r = 0;

	while (!limit_reached(s) && !stop_flag &&
	       (r = pf_flowfile__next(f, final, &line, &len)) > 0)
		one_line(s, line, len);
	return limit_reached(s) || stop_flag ? 0 : r;
}

/* The damage of the file just read, said with its name, and added up. */
static void file_done(struct qstate *s, const char *name, struct pf_flowfile *f)
{
	uint64_t over = pf_flowfile__oversize(f);

	/* A line over the cap is a line, and a damaged one. */
	s->fscanned += over;
	s->fcorrupt += over;
	if (s->fcorrupt)
		pf_log("%s: %llu corrupt or truncated lines skipped (of %llu)", name,
		       (unsigned long long)s->fcorrupt, (unsigned long long)s->fscanned);
	s->scanned += s->fscanned;
	s->corrupt += s->fcorrupt;
	s->fscanned = s->fcorrupt = 0;
}

static const char *read_error(int err)
{
	switch (err) {
	case -EBADMSG:
		return "corrupt compressed data (the rest of the file is skipped)";
	case -ENODATA:
		return "the compressed file is cut short (it ends inside a frame): what "
		       "followed the cut is lost";
	default:
		return strerror(-err);
	}
}

static const char *open_error(int err)
{
	return err == EINVAL ? "not a regular file (not read)" : strerror(err);
}

/* Read input @e; with @keep_open (--follow) the file stays open where it
 * ended, in *@kept. Returns 0 or a negative errno (said). */
static int read_input(struct qstate *s, struct input *e, bool keep_open, struct pf_flowfile **kept)
{
	int err;

	if (!e->f && !e->err)
		return 0; /* the same file as an earlier name: read there */
	if (!e->f) {
		pf_log("cannot read %s: %s", e->name, open_error(e->err));
		return -e->err;
	}
	err = drain(s, e->f, !keep_open);
	if (err)
		pf_log("reading %s: %s", e->name, read_error(err));
	if (keep_open && !err) {
		*kept = e->f;
		e->f = NULL;
		return 0;
	}
	file_done(s, e->name, e->f);
	return err;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/*
 * Open every flow file of @dir before the first line is read, so that a
 * rotation during the query cannot move lines between names (read twice,
 * or never): the open files are read whatever their names become. The
 * names are checked again once all are open; if the agent rotated in
 * between, the whole set is opened again (a few times at most, then the
 * same file under two names is read once).
 */
static int open_dir(const char *dir, struct inputs *in)
{
	size_t start = in->n;
	char **files = NULL;
	int n = 0;

	for (int attempt = 0; attempt < 5; attempt++) {
		bool moved = false;

		inputs_drop(in, start);
		pf_flowfiles__free(files, n);
		files = NULL;
		n = pf_flowfiles__list(dir, &files);
		if (n < 0) {
			pf_log("cannot list %s: %s", dir, strerror(-n));
			return n;
		}
		for (int i = 0; i < n && !moved; i++) {
			struct pf_flowfile *f = pf_flowfile__open(files[i]);
			int err = f ? 0 : errno;

			if (!f && err == ENOENT) {
				moved = true;
				break;
			}
			if (inputs_add(in, files[i], f, err)) {
				pf_flowfile__close(f);
				pf_flowfiles__free(files, n);
				return -ENOMEM;
			}
			files[i] = NULL; /* owned by the input now */
		}
		for (size_t i = start; i < in->n && !moved; i++) {
			struct stat byname, open_st;

			if (!in->v[i].f)
				continue;
			if (stat(in->v[i].name, &byname) ||
			    fstat(pf_flowfile__fd(in->v[i].f), &open_st) ||
			    !same_file(&byname, &open_st))
				moved = true;
		}
		if (!moved)
			break;
	}
	pf_flowfiles__free(files, n);
	/* The same file under two names (a rotation the checks did not
	 * settle): read once, where it comes first. */
	for (size_t i = start; i < in->n; i++) {
		struct stat a, b;

		if (!in->v[i].f || fstat(pf_flowfile__fd(in->v[i].f), &a))
			continue;
		for (size_t j = start; j < i; j++) {
			if (in->v[j].f && !fstat(pf_flowfile__fd(in->v[j].f), &b) &&
			    same_file(&a, &b)) {
				pf_flowfile__close(in->v[i].f);
				in->v[i].f = NULL;
				in->v[i].err = 0;
				break;
			}
		}
	}
	return (int)(in->n - start);
}

/*
 * --follow: read @path as it grows. A rotation shows as @path naming
 * another inode: the old file is read to its end (the agent may have
 * written a last batch before renaming), then the new one from its start.
 * A truncation shows as a size below what was read: start again.
 */
static void follow(struct qstate *s, const char *path, struct pf_flowfile *f)
{
	while (!stop_flag) {
		struct stat cur, now;

		if (f && drain(s, f, false) < 0) {
			file_done(s, path, f);
			pf_flowfile__close(f);
			f = NULL;
		}
		if (s->mode == OUT_TABLE)
			pf_qtable__flush(
			    &s->table); /* rows held for sizing: shown before waiting */
		fflush(stdout);
		usleep(FOLLOW_POLL_US);
		if (stat(path, &now))
			continue; /* between the rename and the new file */
		if (!f) {
			f = pf_flowfile__open(path);
			continue;
		}
		if (fstat(pf_flowfile__fd(f), &cur))
			continue;
		if (!same_file(&cur, &now)) {
			drain(s, f, true);
			file_done(s, path, f);
			pf_flowfile__close(f);
			f = pf_flowfile__open(path);
		} else if ((uint64_t)now.st_size < pf_flowfile__offset(f)) {
			pf_flowfile__rewind(f);
		}
	}
	if (f) {
		file_done(s, path, f);
		pf_flowfile__close(f);
	}
}

static int parse_output(struct qstate *s, const char *v)
{
	if (!strcmp(v, "json")) {
		s->json = true;
		if (s->mode == OUT_TABLE)
			s->mode = OUT_JSON;
	} else if (!strcmp(v, "table") || !strcmp(v, "wide") || !strcmp(v, "compact")) {
		s->style = v[0] == 'w' ? PF_QT_WIDE : v[0] == 'c' ? PF_QT_COMPACT : PF_QT_TABLE;
	} else {
		fprintf(stderr, "procflow: --output: '%s' is not table, wide, compact or json\n",
			v);
		return -EINVAL;
	}
	return 0;
}

static int parse(int argc, char **argv, struct qstate *s)
{
	char err[256];
	int c, idx = 0;
	uint64_t now = (uint64_t)time(NULL);
	const char *dir = NULL;

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":p:n:o:c:fh", opts, &idx)) != -1) {
		const char *name = NULL;

		switch (c) {
		case 'p':
			name = "process";
			/* fall through */
		case OPT_FILTER:
			if (!name)
				name = opts[idx].name;
			if (pf_query__add(&s->q, name, optarg, now, err, sizeof(err))) {
				fprintf(stderr, "procflow: %s\n", err);
				return -EINVAL;
			}
			break;
		case OPT_JSON:
			parse_output(s, "json");
			break;
		case 'o':
			if (parse_output(s, optarg))
				return -EINVAL;
			break;
		case OPT_TOP:
			if (!strcmp(optarg, "process"))
				s->top = TOP_PROCESS;
			else if (!strcmp(optarg, "dest"))
				s->top = TOP_DEST;
			else if (!strcmp(optarg, "port"))
				s->top = TOP_PORT;
			else {
				fprintf(
				    stderr,
				    "procflow: --top: '%s' is not one of: process, dest, port\n",
				    optarg);
				return -EINVAL;
			}
			s->mode = OUT_TOP;
			break;
		case 'n': {
			char *end;
			unsigned long long v;

			errno = 0;
			v = strtoull(optarg, &end, 10);
			if (errno || !*optarg || *end || *optarg == '-' || v == 0 ||
			    v > 100000000) {
				fprintf(stderr,
					"procflow: --limit: '%s' is not a number from 1 to "
					"100000000\n",
					optarg);
				return -EINVAL;
			}
			s->limit = v;
			s->limit_given = true;
			break;
		}
		case 'f':
			s->follow = true;
			break;
		case OPT_DIR:
			dir = optarg;
			break;
		case 'c':
			s->config = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 1;
		case ':':
			fprintf(stderr, "procflow: option '%s' needs a value\n", argv[optind - 1]);
			return -EINVAL;
		default:
			fprintf(
			    stderr,
			    "procflow: query: unknown option '%s' (see procflow query --help)\n",
			    argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (dir)
		s->inputs[s->ninputs++] = dir;
	for (; optind < argc; optind++) {
		if (s->ninputs >= MAX_INPUTS) {
			fprintf(stderr, "procflow: query: at most %d files and directories\n",
				MAX_INPUTS);
			return -EINVAL;
		}
		s->inputs[s->ninputs++] = argv[optind];
	}
	if (s->follow && s->mode == OUT_TOP) {
		fprintf(stderr, "procflow: --follow and --top do not go together\n");
		return -EINVAL;
	}
	return 0;
}

/*
 * The directory the agent writes: flowLogsFileDirectory of the
 * configuration (-c, PROCFLOW_CONFIG, the default file; and its
 * environment variable), else the built-in default. A file named with -c
 * or PROCFLOW_CONFIG must load; the default file, when it cannot be read
 * (a user without access to /etc/procflow), is passed over with a note.
 */
static int configured_dir(const char *config, char *dir, size_t dirsz)
{
	static struct pf_config cfg;
	struct pf_config_args args;
	char err[PF_CFG_ERR_MAX];
	const char *env = getenv("PROCFLOW_CONFIG");

	memset(&args, 0, sizeof(args));
	args.file = config ? config : (env && *env ? env : NULL);
	if (pf_config_load(&args, &cfg, NULL, err, sizeof(err))) {
		if (args.file) {
			fprintf(stderr, "procflow: %s\n", err);
			return -EINVAL;
		}
		pf_log("note: %s (reading %s)", err, DEFAULT_DIR);
		snprintf(dir, dirsz, "%s", DEFAULT_DIR);
		return 0;
	}
	snprintf(dir, dirsz, "%s", cfg.output_dir);
	return 0;
}

/* Open what the command line names (every file before any is read). *@empty:
 * a directory held no flow file (said). Returns 0 or -ENOMEM. */
static int open_inputs(struct qstate *s, struct inputs *in, char **follow_path, bool *empty)
{
	for (int i = 0; i < s->ninputs; i++) {
		const char *arg = s->inputs[i];
		bool last = i == s->ninputs - 1;
		struct stat st;
		char *name;

		if (!strcmp(arg, "-")) {
			/* Standard input: read to its end (with -f too). */
			struct pf_flowfile *f = pf_flowfile__from_fd(dup(STDIN_FILENO), false);

			name = strdup("(standard input)");
			if (!name || inputs_add(in, name, f, f ? 0 : ENOMEM))
				return -ENOMEM;
			continue;
		}
		if (!stat(arg, &st) && S_ISDIR(st.st_mode)) {
			size_t before = in->n;
			int n = open_dir(arg, in);

			if (n < 0)
				return n;
			if (n == 0 && !s->follow)
				pf_log("no flow files (flows.log, flows.log.N[.zst]) in %s", arg);
			if (last && s->follow) {
				size_t plen = strlen(arg) + sizeof("/flows.log");

				*follow_path = malloc(plen);
				if (!*follow_path)
					return -ENOMEM;
				snprintf(*follow_path, plen, "%s/flows.log", arg);
				for (size_t k = before; k < in->n; k++)
					in->v[k].follow = !strcmp(in->v[k].name, *follow_path);
			}
			if (n == 0 && !s->follow)
				*empty = true; /* said; the other inputs are still read */
			continue;
		}
		/* A file (or what is not there: said when read). */
		struct pf_flowfile *f = pf_flowfile__open(arg);
		int err = f ? 0 : errno;

		name = strdup(arg);
		if (!name || inputs_add(in, name, f, err)) {
			pf_flowfile__close(f);
			free(name);
			return -ENOMEM;
		}
		if (last && s->follow) {
			in->v[in->n - 1].follow = true;
			*follow_path = strdup(arg);
			if (!*follow_path)
				return -ENOMEM;
		}
	}
	return 0;
}

/* A directory keeps 1000 rotated files at most: they are all held open. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

int pf_query_main(int argc, char **argv)
{
	static struct qstate s;
	static char obuf[1 << 20];
	static char confdir[PF_CFG_PATH_MAX];
	struct inputs in = {0};
	struct pf_flowfile *kept = NULL;
	char *follow_path = NULL;
	bool empty = false;
	int err, ret = PF_EXIT_OK;

	memset(&s, 0, sizeof(s));
	s.other.key = "(other)";
	err = parse(argc, argv, &s);
	if (err)
		return err > 0 ? PF_EXIT_OK : PF_EXIT_USAGE;
	if (s.ninputs == 0) {
		if (configured_dir(s.config, confdir, sizeof(confdir)))
			return PF_EXIT_USAGE;
		s.inputs[s.ninputs++] = confdir;
	}
	s.width = pf_qtable__term_width();
	pf_qtable__init(&s.table, s.style, s.width);
	s.want = pf_query__fields(&s.q);
	if (s.mode == OUT_TABLE)
		s.want |= pf_qtable__fields();
	else if (s.mode == OUT_TOP)
		s.want |= PF_FL_BIT(PF_FL_PROCESS_NAME) | PF_FL_BIT(PF_FL_DEST_IP) |
			  PF_FL_BIT(PF_FL_DEST_NAME_AGGR) | PF_FL_BIT(PF_FL_DEST_PORT) |
			  PF_FL_BIT(PF_FL_PROTO) | PF_FL_BIT(PF_FL_BYTES_IN) |
			  PF_FL_BIT(PF_FL_BYTES_OUT) | PF_FL_BIT(PF_FL_NUM_FLOWS);
	if (s.follow) {
		/* -f: the last N lines of what is there, then what comes. */
		s.tail_n = s.limit_given ? s.limit : FOLLOW_TAIL;
		s.tail = calloc(s.tail_n, sizeof(*s.tail));
		s.tail_len = calloc(s.tail_n, sizeof(*s.tail_len));
		if (!s.tail || !s.tail_len) {
			pf_log("out of memory");
			return PF_EXIT_RUNTIME;
		}
		s.backlog = true;
	}
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_DFL);
	raise_fd_limit();

	err = open_inputs(&s, &in, &follow_path, &empty);
	if (empty)
		ret = PF_EXIT_RUNTIME;
	if (err) {
		if (err == -ENOMEM)
			pf_log("out of memory");
		ret = PF_EXIT_RUNTIME;
		goto out;
	}
	for (size_t i = 0; i < in.n && !limit_reached(&s) && !stop_flag; i++) {
		/* With --follow, the current file stays open where it ended. */
		if (read_input(&s, &in.v[i], in.v[i].follow, &kept))
			ret = PF_EXIT_RUNTIME;
	}
	if (s.backlog)
		tail_flush(&s);
	if (s.tail_lost)
		pf_log("out of memory: %llu of the last lines not shown",
		       (unsigned long long)s.tail_lost);
	if (s.mode == OUT_TABLE)
		pf_qtable__flush(&s.table);
	if (s.follow && follow_path)
		follow(&s, follow_path, kept);
	else
		pf_flowfile__close(kept);

	if (s.mode == OUT_TOP)
		top_print(&s, s.json);
	else if (s.mode == OUT_TABLE && !pf_qtable__any(&s.table) && isatty(STDERR_FILENO))
		pf_log("no flow matched");
	pf_qtable__flush(&s.table);
	fflush(stdout);
	if (s.corrupt)
		pf_log("%llu corrupt or truncated lines skipped (of %llu)",
		       (unsigned long long)s.corrupt, (unsigned long long)s.scanned);
out:
	pf_qtable__fini(&s.table);
	top_free(&s);
	inputs_drop(&in, 0);
	free(in.v);
	free(s.tail);
	free(s.tail_len);
	free(follow_path);
	return ret;
}
