// SPDX-License-Identifier: BSD-2-Clause
/*
 * `procflow query`: read the flow files of an output directory (rotated and
 * compressed ones first, oldest first, then flows.log), keep the lines
 * that pass the filters, and print them as a table, as the JSON lines
 * themselves, or summarised by a key (--top). --follow then keeps reading
 * flows.log as the agent appends to it, across rotations.
 *
 * The work per line is the scanner of lib/flowline.c asked for the fields
 * the filters and the output need, and nothing else: no tree, no copy.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "flowfile.h"
#include "flowline.h"
#include "jsonw.h"
#include "query.h"
#include "query_cmd.h"

#define DEFAULT_DIR    "/var/log/procflow"
#define TOP_MAX_KEYS   (1u << 20) /* distinct --top keys; the rest go to "(other)" */
#define FOLLOW_POLL_US 200000
#define VALUE_MAX      4096 /* bytes of one value shown in the table */

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
	bool json; /* --json: with --top, the summary as JSON lines */
	bool follow;
	uint64_t limit; /* lines (table, json) or rows (top); 0: no limit */
	uint64_t want;	/* fields to scan */
	uint64_t printed, matched, scanned, corrupt;
	bool header_done;
	/* --top: open addressing, linear probing, power-of-two size */
	struct top_ent *tab;
	size_t tab_size, tab_used;
	struct top_ent other;
};

static volatile sig_atomic_t stop_flag;

static void on_stop(int sig)
{
	stop_flag = 1;
}

static const char usage_text[] =
    "Usage: procflow query [DIR|FILE] [OPTIONS]\n"
    "\n"
    "Print the flows procflow wrote in DIR (default " DEFAULT_DIR "): flows.log and\n"
    "its rotated files (flows.log.N, flows.log.N.zst), oldest first. Filters combine\n"
    "(AND); a filter given several times matches any of its values (OR).\n"
    "\n"
    "Filters:\n"
    "      --since DURATION     lines whose interval ended in the last DURATION (90s, 10m, 2h, "
    "7d)\n"
    "      --from TIME          lines whose interval ended at or after TIME\n"
    "      --to TIME            lines whose interval started at or before TIME\n"
    "                           TIME: Unix seconds or ISO 8601 (2026-11-27T14:05:00Z;\n"
    "                           without a zone, local time)\n"
    "  -p, --process GLOB       process_name matches GLOB (a GLOB without '/' also matches\n"
    "                           the program's base name: 'curl' finds /usr/bin/curl)\n"
    "      --args TEXT          one of process_args contains TEXT\n"
    "      --pid PID            process_id is PID\n"
    "      --ip ADDR[/LEN]      source or destination in the address or CIDR (IPv4 or IPv6)\n"
    "      --src ADDR[/LEN]     source in it\n"
    "      --dst ADDR[/LEN]     destination in it\n"
    "      --port PORT          source or destination port\n"
    "      --proto PROTO        tcp, udp, icmp, icmp6, sctp or a number\n"
    "      --reporter src|dst   src: the local process initiated the flow; dst: it received it\n"
    "      --action allow|deny\n"
    "\n"
    "Output:\n"
    "      --json               the matching lines themselves, unchanged\n"
    "      --top KEY            bytes and flows summed by KEY: process, dest or port\n"
    "  -n, --limit N            at most N lines (--top: N rows, default 20)\n"
    "  -f, --follow             then print new lines as they are written, across rotations\n"
    "      --dir DIR            the directory (same as the DIR argument)\n"
    "  -h, --help               this text\n"
    "\n"
    "Corrupt or truncated lines are skipped and counted on stderr.\n"
    "Exit status: 0 ok, 1 a file could not be read, 2 a bad option or filter.\n";

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
    {"json", no_argument, NULL, OPT_JSON},
    {"top", required_argument, NULL, OPT_TOP},
    {"limit", required_argument, NULL, 'n'},
    {"follow", no_argument, NULL, 'f'},
    {"dir", required_argument, NULL, OPT_DIR},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* ---- table ---- */

#define W_TIME	19
#define W_PROC	28
#define W_PID	7
#define W_ARGS	32
#define W_ADDR	21
#define W_PROTO 5
#define W_BYTES 6
#define W_FLOWS 5

/* Print @s padded to @width columns (it already has @cols). */
static void pad(const char *s, size_t cols, size_t width, bool right)
{
	size_t n = cols < width ? width - cols : 0;

	if (right)
		printf("%*s%s ", (int)n, "", s);
	else
		printf("%s%*s ", s, (int)n, "");
}

static void cell_str(const struct pf_fl_val *v, size_t width, bool keep_end, bool right)
{
	char raw[VALUE_MAX], out[VALUE_MAX];
	size_t cols, n;

	if (v->type == PF_FLV_STR) {
		n = v->escaped ? pf_fl__unescape(v->p, v->len, raw, sizeof(raw))
			       : (v->len < sizeof(raw) ? v->len : sizeof(raw) - 1);
		if (!v->escaped)
			memcpy(raw, v->p, n);
		if (n >= sizeof(raw))
			n = sizeof(raw) - 1;
	} else if (v->type == PF_FLV_NULL || v->type == PF_FLV_ABSENT) {
		raw[0] = '-';
		n = 1;
	} else {
		n = v->len < sizeof(raw) ? v->len : sizeof(raw) - 1;
		memcpy(raw, v->p, n);
	}
	cols = pf_fmt_cell(raw, n, width, keep_end, out, sizeof(out));
	pad(out, cols, width, right);
}

/* "ip:port", "[v6]:port", the aggregated name when the address was folded. */
static void cell_addr(const struct pf_flowrec *r, int ip, int port, int aggr)
{
	char a[128], out[160];
	const struct pf_fl_val *vi = &r->v[ip], *va = &r->v[aggr];
	uint64_t p;
	size_t n = 0, cols;
	bool v6;

	if (vi->type == PF_FLV_STR && vi->len < 64 && !vi->escaped) {
		v6 = memchr(vi->p, ':', vi->len) != NULL;
		n = (size_t)snprintf(a, sizeof(a), "%s%.*s%s", v6 ? "[" : "", (int)vi->len, vi->p,
				     v6 ? "]" : "");
	} else if (va->type == PF_FLV_STR && va->len < 64 && !va->escaped) {
		v6 = false;
		n = (size_t)snprintf(a, sizeof(a), "(%.*s)", (int)va->len, va->p);
	} else {
		v6 = false;
		n = (size_t)snprintf(a, sizeof(a), "-");
	}
	if (!pf_fl__u64(&r->v[port], &p))
		n += (size_t)snprintf(a + n, sizeof(a) - n, ":%llu", (unsigned long long)p);
	else if (v6 && n >= 2 && a[0] == '[') {
		/* no port: no brackets */
		memmove(a, a + 1, n - 2);
		n -= 2;
		a[n] = '\0';
	}
	/* Addresses are never cut: a wider cell shifts the row instead. */
	cols = pf_fmt_cell(a, n, sizeof(out) - 1, false, out, sizeof(out));
	pad(out, cols, W_ADDR, false);
}

static void cell_bytes(const struct pf_fl_val *v, size_t width)
{
	char b[32];
	uint64_t n;

	if (pf_fl__u64(v, &n))
		snprintf(b, sizeof(b), "?");
	else
		pf_fmt_bytes(n, b, sizeof(b));
	pad(b, strlen(b), width, true);
}

static void cell_args(const struct pf_flowrec *r)
{
	const struct pf_fl_val *arr = &r->v[PF_FL_PROCESS_ARGS];
	struct pf_fl_val e;
	char raw[VALUE_MAX], out[VALUE_MAX];
	size_t pos = 0, n = 0, cols, count = 0;

	raw[0] = '\0';
	while (pf_fl__arr_next(arr, &pos, &e)) {
		if (count++ || e.type != PF_FLV_STR)
			continue;
		n = pf_fl__unescape(e.p, e.len, raw, sizeof(raw));
		if (n >= sizeof(raw))
			n = sizeof(raw) - 1;
	}
	if (count > 1) {
		char more[24];
		int m = snprintf(more, sizeof(more), " (+%zu)", count - 1);
		size_t w = W_ARGS - (size_t)m;

		cols = pf_fmt_cell(raw, n, w, false, out, sizeof(out) - sizeof(more));
		/* the cell is at most VALUE_MAX - 24 bytes: room for the count */
		memcpy(out + strlen(out), more, (size_t)m + 1);
		pad(out, cols + (size_t)m, W_ARGS, false);
		return;
	}
	cols = pf_fmt_cell(raw, n, W_ARGS, false, out, sizeof(out));
	pad(out, cols, W_ARGS, false);
}

static void print_header(void)
{
	printf("%-*s %-*s %*s %-*s %-*s %-*s %-*s %*s %*s %*s\n", W_TIME, "TIME", W_PROC, "PROCESS",
	       W_PID, "PID", W_ARGS, "ARGS", W_ADDR, "SOURCE", W_ADDR, "DESTINATION", W_PROTO,
	       "PROTO", W_BYTES, "IN", W_BYTES, "OUT", W_FLOWS, "FLOWS");
}

static void print_row(const struct pf_flowrec *r)
{
	char t[32] = "?";
	uint64_t st;
	uint64_t nf;

	if (!pf_fl__u64(&r->v[PF_FL_START_TIME], &st)) {
		time_t tt = (time_t)st;
		struct tm tm;

		if (localtime_r(&tt, &tm))
			strftime(t, sizeof(t), "%Y-%m-%d %H:%M:%S", &tm);
	}
	pad(t, strlen(t), W_TIME, false);
	cell_str(&r->v[PF_FL_PROCESS_NAME], W_PROC, true, false);
	cell_str(&r->v[PF_FL_PROCESS_ID], W_PID, false, true);
	cell_args(r);
	cell_addr(r, PF_FL_SOURCE_IP, PF_FL_SOURCE_PORT, PF_FL_SOURCE_NAME_AGGR);
	cell_addr(r, PF_FL_DEST_IP, PF_FL_DEST_PORT, PF_FL_DEST_NAME_AGGR);
	cell_str(&r->v[PF_FL_PROTO], W_PROTO, false, false);
	cell_bytes(&r->v[PF_FL_BYTES_IN], W_BYTES);
	cell_bytes(&r->v[PF_FL_BYTES_OUT], W_BYTES);
	if (pf_fl__u64(&r->v[PF_FL_NUM_FLOWS], &nf))
		nf = 0;
	printf("%*llu\n", W_FLOWS, (unsigned long long)nf);
}

static const uint64_t table_fields =
    PF_FL_BIT(PF_FL_START_TIME) | PF_FL_BIT(PF_FL_PROCESS_NAME) | PF_FL_BIT(PF_FL_PROCESS_ID) |
    PF_FL_BIT(PF_FL_PROCESS_ARGS) | PF_FL_BIT(PF_FL_SOURCE_IP) | PF_FL_BIT(PF_FL_SOURCE_PORT) |
    PF_FL_BIT(PF_FL_SOURCE_NAME_AGGR) | PF_FL_BIT(PF_FL_DEST_IP) | PF_FL_BIT(PF_FL_DEST_PORT) |
    PF_FL_BIT(PF_FL_DEST_NAME_AGGR) | PF_FL_BIT(PF_FL_PROTO) | PF_FL_BIT(PF_FL_BYTES_IN) |
    PF_FL_BIT(PF_FL_BYTES_OUT) | PF_FL_BIT(PF_FL_NUM_FLOWS);

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
		printf("%-40s %9s %9s %9s %9s %9s\n", title[s->top], "BYTES", "IN", "OUT", "FLOWS",
		       "LINES");
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
		cols = pf_fmt_cell(e->key, strlen(e->key), 40, s->top == TOP_PROCESS, cell,
				   sizeof(cell));
		pad(cell, cols, 40, false);
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

static bool limit_reached(const struct qstate *s)
{
	return s->limit && s->mode != OUT_TOP && s->printed >= s->limit;
}

static void one_line(struct qstate *s, const char *line, size_t len)
{
	struct pf_flowrec r;

	if (len == 0 || (len == 1 && line[0] == '\r'))
		return; /* an empty line is no record, and no damage */
	s->scanned++;
	if (pf_fl__scan(line, len, s->want, &r)) {
		s->corrupt++;
		return;
	}
	if (!pf_query__match(&s->q, &r))
		return;
	s->matched++;
	switch (s->mode) {
	case OUT_JSON:
		fwrite(line, 1, len, stdout);
		putchar('\n');
		s->printed++;
		break;
	case OUT_TABLE:
		if (!s->header_done) {
			print_header();
			s->header_done = true;
		}
		print_row(&r);
		s->printed++;
		break;
	case OUT_TOP:
		top_add(s, &r);
		break;
	}
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

static int read_file(struct qstate *s, const char *path, bool keep_open, struct pf_flowfile **kept)
{
	struct pf_flowfile *f = pf_flowfile__open(path);
	int err;

	if (!f) {
		err = -errno;
		pf_log("cannot read %s: %s", path, strerror(errno));
		return err;
	}
	err = drain(s, f, !keep_open);
	if (err)
		pf_log("reading %s: %s", path,
		       err == -EBADMSG ? "corrupt compressed data (the rest of the file is skipped)"
				       : strerror(-err));
	s->corrupt += pf_flowfile__oversize(f);
	if (keep_open && !err) {
		*kept = f;
		return 0;
	}
	pf_flowfile__close(f);
	return err;
}

/*
 * --follow: read @path as it grows. A rotation shows as @path naming
 * another inode: the old file is read to its end (the agent may have
 * written a last batch before renaming), then the new one from its start.
 * A truncation shows as a size below what was read: start again.
 */
static void follow(struct qstate *s, const char *path, struct pf_flowfile *f)
{
	while (!stop_flag && !limit_reached(s)) {
		struct stat cur, now;

		if (f && drain(s, f, false) < 0) {
			pf_flowfile__close(f);
			f = NULL;
		}
		fflush(stdout);
		if (limit_reached(s))
			break;
		usleep(FOLLOW_POLL_US);
		if (stat(path, &now))
			continue; /* between the rename and the new file */
		if (!f) {
			f = pf_flowfile__open(path);
			continue;
		}
		if (fstat(pf_flowfile__fd(f), &cur))
			continue;
		if (cur.st_ino != now.st_ino || cur.st_dev != now.st_dev) {
			drain(s, f, true);
			s->corrupt += pf_flowfile__oversize(f);
			pf_flowfile__close(f);
			f = pf_flowfile__open(path);
		} else if ((uint64_t)now.st_size < pf_flowfile__offset(f)) {
			pf_flowfile__rewind(f);
		}
	}
	if (f) {
		s->corrupt += pf_flowfile__oversize(f);
		pf_flowfile__close(f);
	}
}

static int parse(int argc, char **argv, struct qstate *s, const char **dir)
{
	char err[256];
	int c, idx = 0;
	uint64_t now = (uint64_t)time(NULL);

	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":p:n:fh", opts, &idx)) != -1) {
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
			s->json = true;
			if (s->mode == OUT_TABLE)
				s->mode = OUT_JSON;
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
			if (errno || !*optarg || *end || *optarg == '-' || v == 0) {
				fprintf(stderr,
					"procflow: --limit: '%s' is not a positive number\n",
					optarg);
				return -EINVAL;
			}
			s->limit = v;
			break;
		}
		case 'f':
			s->follow = true;
			break;
		case OPT_DIR:
			*dir = optarg;
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
	if (optind < argc)
		*dir = argv[optind++];
	if (optind < argc) {
		fprintf(stderr, "procflow: query: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (s->follow && s->mode == OUT_TOP) {
		fprintf(stderr, "procflow: --follow and --top do not go together\n");
		return -EINVAL;
	}
	return 0;
}

int pf_query_main(int argc, char **argv)
{
	struct qstate s;
	struct pf_flowfile *kept = NULL;
	const char *dir = DEFAULT_DIR;
	char **files = NULL, *follow_path = NULL;
	int nfiles = 0, err, ret = PF_EXIT_OK;
	struct stat st;
	static char obuf[1 << 20];

	memset(&s, 0, sizeof(s));
	s.other.key = "(other)";
	err = parse(argc, argv, &s, &dir);
	if (err)
		return err > 0 ? PF_EXIT_OK : PF_EXIT_USAGE;
	s.want = pf_query__fields(&s.q);
	if (s.mode == OUT_TABLE)
		s.want |= table_fields;
	else if (s.mode == OUT_TOP)
		s.want |= PF_FL_BIT(PF_FL_PROCESS_NAME) | PF_FL_BIT(PF_FL_DEST_IP) |
			  PF_FL_BIT(PF_FL_DEST_NAME_AGGR) | PF_FL_BIT(PF_FL_DEST_PORT) |
			  PF_FL_BIT(PF_FL_PROTO) | PF_FL_BIT(PF_FL_BYTES_IN) |
			  PF_FL_BIT(PF_FL_BYTES_OUT) | PF_FL_BIT(PF_FL_NUM_FLOWS);
	setvbuf(stdout, obuf, _IOFBF, sizeof(obuf));
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	signal(SIGPIPE, SIG_DFL);

	if (stat(dir, &st)) {
		pf_log("cannot read %s: %s", dir, strerror(errno));
		return PF_EXIT_RUNTIME;
	}
	if (S_ISDIR(st.st_mode)) {
		nfiles = pf_flowfiles__list(dir, &files);
		if (nfiles < 0) {
			pf_log("cannot list %s: %s", dir, strerror(-nfiles));
			return PF_EXIT_RUNTIME;
		}
		if (nfiles == 0 && !s.follow) {
			pf_log("no flow files (flows.log, flows.log.N[.zst]) in %s", dir);
			pf_flowfiles__free(files, nfiles);
			return PF_EXIT_RUNTIME;
		}
		size_t plen = strlen(dir) + sizeof("/flows.log");

		follow_path = malloc(plen);
		if (follow_path)
			snprintf(follow_path, plen, "%s/flows.log", dir);
	} else {
		/* One file named on the command line. */
		files = calloc(1, sizeof(*files));
		if (files)
			files[0] = strdup(dir);
		if (!files || !files[0]) {
			pf_log("out of memory");
			pf_flowfiles__free(files, 1);
			return PF_EXIT_RUNTIME;
		}
		nfiles = 1;
		follow_path = strdup(dir);
	}

	for (int i = 0; i < nfiles && !limit_reached(&s) && !stop_flag; i++) {
		/* With --follow, the current file stays open where it ended. */
		bool last = s.follow && follow_path && !strcmp(files[i], follow_path);

		if (read_file(&s, files[i], last, &kept))
			ret = PF_EXIT_RUNTIME;
	}
	if (s.follow && follow_path)
		follow(&s, follow_path, kept);
	else
		pf_flowfile__close(kept);

	if (s.mode == OUT_TOP)
		top_print(&s, s.json);
	else if (s.mode == OUT_TABLE && !s.header_done && isatty(STDERR_FILENO))
		pf_log("no flow matched");
	fflush(stdout);
	if (s.corrupt)
		pf_log("%llu corrupt or truncated lines skipped (of %llu)",
		       (unsigned long long)s.corrupt, (unsigned long long)s.scanned);
	top_free(&s);
	pf_flowfiles__free(files, nfiles);
	free(follow_path);
	return ret;
}
