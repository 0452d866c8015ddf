// SPDX-License-Identifier: BSD-2-Clause
#include "query_table.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "query.h"

#define VALUE_MAX 4096 /* bytes of one value shown */

/* Fixed columns. */
#define W_TIME	 19 /* 2026-11-27 14:05:09 */
#define W_CTIME	 8  /* 14:05:09 (compact) */
#define W_PID	 7
#define W_PROTO	 5
#define W_BYTES	 6
#define W_FLOWS	 5
#define W_ADDR	 21 /* 255.255.255.255:65535 */
#define W_ADDR6	 47 /* [ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535 */
#define W_PROC	 28 /* when the width is not known */
#define W_ARGS	 32
#define W_CPROC	 16 /* compact: the program's name */
#define MIN_PROC 12
#define MIN_ARGS 10

unsigned pf_qtable__term_width(void)
{
	const char *c = getenv("COLUMNS");
	struct winsize ws;

	if (c && *c) {
		char *end;
		unsigned long v = strtoul(c, &end, 10);

		if (!*end && v >= 20 && v <= 10000)
			return (unsigned)v;
	}
	if (isatty(STDOUT_FILENO) && !ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) && ws.ws_col >= 20)
		return ws.ws_col;
	return 0;
}

void pf_qtable__init(struct pf_qtable *t, enum pf_qt_style style, unsigned width)
{
	memset(t, 0, sizeof(*t));
	t->style = style;
	t->width = width;
	t->w_addr = W_ADDR;
}

uint64_t pf_qtable__fields(void)
{
	return PF_FL_BIT(PF_FL_START_TIME) | PF_FL_BIT(PF_FL_PROCESS_NAME) |
	       PF_FL_BIT(PF_FL_PROCESS_ID) | PF_FL_BIT(PF_FL_PROCESS_ARGS) |
	       PF_FL_BIT(PF_FL_SOURCE_IP) | PF_FL_BIT(PF_FL_SOURCE_PORT) |
	       PF_FL_BIT(PF_FL_SOURCE_NAME_AGGR) | PF_FL_BIT(PF_FL_DEST_IP) |
	       PF_FL_BIT(PF_FL_DEST_PORT) | PF_FL_BIT(PF_FL_DEST_NAME_AGGR) |
	       PF_FL_BIT(PF_FL_PROTO) | PF_FL_BIT(PF_FL_BYTES_IN) | PF_FL_BIT(PF_FL_BYTES_OUT) |
	       PF_FL_BIT(PF_FL_NUM_FLOWS) | PF_FL_BIT(PF_FL_SOURCE_TYPE) |
	       PF_FL_BIT(PF_FL_SOURCE_NAME) | PF_FL_BIT(PF_FL_SOURCE_NAMESPACE) |
	       PF_FL_BIT(PF_FL_DEST_TYPE) | PF_FL_BIT(PF_FL_DEST_NAME) |
	       PF_FL_BIT(PF_FL_DEST_NAMESPACE);
}

/* Print @s padded to @width columns (it already has @cols); @last: no
 * separator and no trailing blanks. */
static void pad(const char *s, size_t cols, size_t width, bool right, bool last)
{
	size_t n = cols < width ? width - cols : 0;

	if (right)
		printf("%*s%s", (int)n, "", s);
	else if (last)
		fputs(s, stdout);
	else
		printf("%s%*s", s, (int)n, "");
	putchar(last ? '\n' : ' ');
}

/* A string value, unescaped, in @raw; "-" for null or absent. */
static size_t value_text(const struct pf_fl_val *v, char *raw, size_t rawsz)
{
	size_t n;

	if (v->type == PF_FLV_STR) {
		n = pf_fl__unescape(v->p, v->len, raw, rawsz);
		return n >= rawsz ? rawsz - 1 : n;
	}
	if (v->type == PF_FLV_NULL || v->type == PF_FLV_ABSENT) {
		raw[0] = '-';
		raw[1] = '\0';
		return 1;
	}
	n = v->len < rawsz ? v->len : rawsz - 1;
	memcpy(raw, v->p, n);
	raw[n] = '\0';
	return n;
}

static void cell_str(const struct pf_fl_val *v, size_t width, bool keep_end, bool right)
{
	char raw[VALUE_MAX], out[VALUE_MAX];
	size_t n = value_text(v, raw, sizeof(raw));
	size_t cols =
	    pf_fmt_cell(raw, n, width ? width : sizeof(out) / 4, keep_end, out, sizeof(out));

	pad(out, cols, width, right, false);
}

/* A workload end ("wep"): " namespace/pod" after its address (" pod"
 * outside Kubernetes), so the table says which pod talked. The name is
 * shown as the line has it; the cell formatter makes it safe to print. */
static size_t pod_text(const struct pf_flowrec *r, bool src, char *a, size_t asz)
{
	const struct pf_fl_val *ty = &r->v[src ? PF_FL_SOURCE_TYPE : PF_FL_DEST_TYPE];
	const struct pf_fl_val *nm = &r->v[src ? PF_FL_SOURCE_NAME : PF_FL_DEST_NAME];
	const struct pf_fl_val *ns = &r->v[src ? PF_FL_SOURCE_NAMESPACE : PF_FL_DEST_NAMESPACE];
	int w;

	if (ty->type != PF_FLV_STR || ty->len != 3 || memcmp(ty->p, "wep", 3) ||
	    nm->type != PF_FLV_STR || nm->escaped || (nm->len == 1 && nm->p[0] == '-'))
		return 0;
	if (ns->type == PF_FLV_STR && !ns->escaped && !(ns->len == 1 && ns->p[0] == '-'))
		w = snprintf(a, asz, " %.*s/%.*s", (int)ns->len, ns->p, (int)nm->len, nm->p);
	else
		w = snprintf(a, asz, " %.*s", (int)nm->len, nm->p);
	return w < 0 ? 0 : ((size_t)w < asz ? (size_t)w : asz - 1);
}

/* "ip:port", "[v6]:port", the aggregated name when the address was folded;
 * then the pod of a workload end. */
static size_t addr_text(const struct pf_flowrec *r, int ip, int port, int aggr, char *a, size_t asz)
{
	const struct pf_fl_val *vi = &r->v[ip], *va = &r->v[aggr];
	uint64_t p;
	size_t n;
	bool v6 = false;

	if (vi->type == PF_FLV_STR && vi->len < 64 && !vi->escaped) {
		v6 = memchr(vi->p, ':', vi->len) != NULL;
		n = (size_t)snprintf(a, asz, "%s%.*s%s", v6 ? "[" : "", (int)vi->len, vi->p,
				     v6 ? "]" : "");
	} else if (va->type == PF_FLV_STR && va->len < 64 && !va->escaped) {
		n = (size_t)snprintf(a, asz, "(%.*s)", (int)va->len, va->p);
	} else {
		n = (size_t)snprintf(a, asz, "-");
	}
	if (!pf_fl__u64(&r->v[port], &p)) {
		n += (size_t)snprintf(a + n, asz - n, ":%llu", (unsigned long long)p);
	} else if (v6 && n >= 2) {
		/* no port: no brackets */
		memmove(a, a + 1, n - 2);
		n -= 2;
		a[n] = '\0';
	}
	return n + pod_text(r, ip == PF_FL_SOURCE_IP, a + n, asz - n);
}

static void cell_addr(const struct pf_qtable *t, const struct pf_flowrec *r, int ip, int port,
		      int aggr)
{
	char a[160], out[200];
	size_t n = addr_text(r, ip, port, aggr, a, sizeof(a));
	/* Addresses are never cut: a wider one shifts the row instead. */
	size_t cols = pf_fmt_cell(a, n, sizeof(out) / 4, false, out, sizeof(out));

	pad(out, cols, t->w_addr, false, false);
}

static void cell_bytes(uint64_t n, bool ok, size_t width, bool last)
{
	char b[32];

	if (!ok)
		snprintf(b, sizeof(b), "?");
	else
		pf_fmt_bytes(n, b, sizeof(b));
	pad(b, strlen(b), width, true, last);
}

static void cell_args(const struct pf_flowrec *r, size_t width)
{
	const struct pf_fl_val *arr = &r->v[PF_FL_PROCESS_ARGS];
	struct pf_fl_val e;
	char raw[VALUE_MAX], out[VALUE_MAX + 32], more[24];
	size_t pos = 0, n = 0, cols, count = 0, m = 0;

	raw[0] = '\0';
	while (pf_fl__arr_next(arr, &pos, &e)) {
		if (count++ || e.type != PF_FLV_STR)
			continue;
		n = value_text(&e, raw, sizeof(raw));
	}
	if (count > 1)
		m = (size_t)snprintf(more, sizeof(more), " (+%zu)", count - 1);
	/* width 0: wide, nothing cut */
	cols = pf_fmt_cell(raw, n, width ? (width > m ? width - m : 1) : VALUE_MAX, false, out,
			   sizeof(out) - sizeof(more));
	if (m)
		memcpy(out + strlen(out), more, m + 1);
	pad(out, cols + m, width, false, false);
}

/* The widths of the process and argument columns in the terminal's width. */
static void size_columns(struct pf_qtable *t)
{
	unsigned fixed, rem;

	if (t->style == PF_QT_WIDE) {
		t->w_proc = t->w_args = 0; /* not cut */
		return;
	}
	if (t->style == PF_QT_COMPACT)
		return;
	t->w_proc = W_PROC;
	t->w_args = W_ARGS;
	if (!t->width)
		return;
	/* The columns that are never cut, and one blank between columns. */
	fixed = W_TIME + W_PID + 2 * t->w_addr + W_PROTO + 2 * W_BYTES + W_FLOWS + 9;
	if (t->width < fixed + MIN_PROC) {
		t->no_src = true;
		fixed -= t->w_addr + 1;
	}
	if (t->width < fixed + MIN_PROC) {
		/* Not even that fits (80 columns): the compact view does. */
		t->style = PF_QT_COMPACT;
		return;
	}
	rem = t->width > fixed ? t->width - fixed : 0;
	if (rem < MIN_PROC + 1 + MIN_ARGS) {
		/* No room for the arguments: the process gets what there is. */
		t->w_args = 0;
		t->w_proc = rem > MIN_PROC ? rem : MIN_PROC;
		return;
	}
	rem -= 1;
	t->w_proc = rem * 2 / 5 > MIN_PROC ? rem * 2 / 5 : MIN_PROC;
	t->w_args = rem - t->w_proc;
}

static bool show_args(const struct pf_qtable *t)
{
	return t->style == PF_QT_WIDE || (t->style == PF_QT_TABLE && t->w_args);
}

static void header(struct pf_qtable *t)
{
	char tz[16], label[32];
	time_t now = time(NULL);
	struct tm tm;

	/* The zone of the times shown, as date(1) names it. */
	if (!localtime_r(&now, &tm) || !strftime(tz, sizeof(tz), "%Z", &tm))
		snprintf(tz, sizeof(tz), "local");
	if (t->style == PF_QT_COMPACT) {
		snprintf(label, sizeof(label), "TIME(%s)", tz);
		t->w_ctime = strlen(label) > W_CTIME ? (unsigned)strlen(label) : W_CTIME;
		printf("%-*s %-*s %*s %-*s %-*s %*s\n", (int)t->w_ctime, label, W_CPROC, "PROCESS",
		       W_PID, "PID", (int)t->w_addr, "DESTINATION", W_PROTO, "PROTO", W_BYTES,
		       "BYTES");
		return;
	}
	snprintf(label, sizeof(label), "TIME (%s)", tz);
	printf("%-*s %-*s %*s ", W_TIME, label, (int)(t->w_proc ? t->w_proc : W_PROC), "PROCESS",
	       W_PID, "PID");
	if (show_args(t))
		printf("%-*s ", (int)(t->w_args ? t->w_args : W_ARGS), "ARGS");
	if (!t->no_src)
		printf("%-*s ", (int)t->w_addr, "SOURCE");
	printf("%-*s %-*s %*s %*s %*s\n", (int)t->w_addr, "DESTINATION", W_PROTO, "PROTO", W_BYTES,
	       "IN", W_BYTES, "OUT", W_FLOWS, "FLOWS");
}

static void print_row(struct pf_qtable *t, const struct pf_flowrec *r)
{
	char tbuf[32] = "?";
	uint64_t st, nf, bi, bo;
	bool okin, okout;

	if (!pf_fl__u64(&r->v[PF_FL_START_TIME], &st)) {
		time_t tt = (time_t)st;
		struct tm tm;

		if (localtime_r(&tt, &tm))
			strftime(tbuf, sizeof(tbuf),
				 t->style == PF_QT_COMPACT ? "%H:%M:%S" : "%Y-%m-%d %H:%M:%S", &tm);
	}
	okin = !pf_fl__u64(&r->v[PF_FL_BYTES_IN], &bi);
	okout = !pf_fl__u64(&r->v[PF_FL_BYTES_OUT], &bo);
	if (t->style == PF_QT_COMPACT) {
		char raw[VALUE_MAX], *base;
		size_t n = value_text(&r->v[PF_FL_PROCESS_NAME], raw, sizeof(raw));
		char out[VALUE_MAX];
		size_t cols;

		base = memrchr(raw, '/', n);
		base = base && base[1] ? base + 1 : raw;
		cols =
		    pf_fmt_cell(base, n - (size_t)(base - raw), W_CPROC, false, out, sizeof(out));
		pad(tbuf, strlen(tbuf), t->w_ctime, false, false);
		pad(out, cols, W_CPROC, false, false);
		cell_str(&r->v[PF_FL_PROCESS_ID], W_PID, false, true);
		cell_addr(t, r, PF_FL_DEST_IP, PF_FL_DEST_PORT, PF_FL_DEST_NAME_AGGR);
		cell_str(&r->v[PF_FL_PROTO], W_PROTO, false, false);
		cell_bytes(bi + bo, okin && okout, W_BYTES, true);
		return;
	}
	pad(tbuf, strlen(tbuf), W_TIME, false, false);
	cell_str(&r->v[PF_FL_PROCESS_NAME], t->w_proc, true, false);
	cell_str(&r->v[PF_FL_PROCESS_ID], W_PID, false, true);
	if (show_args(t))
		cell_args(r, t->w_args);
	if (!t->no_src)
		cell_addr(t, r, PF_FL_SOURCE_IP, PF_FL_SOURCE_PORT, PF_FL_SOURCE_NAME_AGGR);
	cell_addr(t, r, PF_FL_DEST_IP, PF_FL_DEST_PORT, PF_FL_DEST_NAME_AGGR);
	cell_str(&r->v[PF_FL_PROTO], W_PROTO, false, false);
	cell_bytes(bi, okin, W_BYTES, false);
	cell_bytes(bo, okout, W_BYTES, false);
	if (pf_fl__u64(&r->v[PF_FL_NUM_FLOWS], &nf))
		nf = 0;
	printf("%*llu\n", W_FLOWS, (unsigned long long)nf);
}

/* The address columns as wide as the widest address held (IPv6 rows stay
 * aligned with IPv4 ones), within what the terminal leaves. */
static void size_addr(struct pf_qtable *t)
{
	char a[160];

	for (size_t i = 0; i < t->nheld; i++) {
		struct pf_flowrec r;
		size_t n;

		if (pf_fl__scan(t->held[i], t->held_len[i], pf_qtable__fields(), &r))
			continue;
		n = addr_text(&r, PF_FL_SOURCE_IP, PF_FL_SOURCE_PORT, PF_FL_SOURCE_NAME_AGGR, a,
			      sizeof(a));
		if (t->style != PF_QT_COMPACT && n > t->w_addr)
			t->w_addr = (unsigned)n;
		n = addr_text(&r, PF_FL_DEST_IP, PF_FL_DEST_PORT, PF_FL_DEST_NAME_AGGR, a,
			      sizeof(a));
		if (n > t->w_addr)
			t->w_addr = (unsigned)n;
	}
	if (t->w_addr > W_ADDR6)
		t->w_addr = W_ADDR6;
}

void pf_qtable__flush(struct pf_qtable *t)
{
	if (!t->header_done && t->nheld) {
		size_addr(t);
		size_columns(t);
		header(t);
		t->header_done = true;
	}
	for (size_t i = 0; i < t->nheld; i++) {
		struct pf_flowrec r;

		if (!pf_fl__scan(t->held[i], t->held_len[i], pf_qtable__fields(), &r))
			print_row(t, &r);
		free(t->held[i]);
	}
	t->nheld = 0;
}

void pf_qtable__row(struct pf_qtable *t, const char *line, size_t len, const struct pf_flowrec *r)
{
	char *copy;

	if (t->header_done) {
		print_row(t, r);
		return;
	}
	copy = malloc(len + 1);
	if (!copy) {
		/* No memory to hold it: size the columns on what is held. */
		pf_qtable__flush(t);
		if (!t->header_done) {
			size_columns(t);
			header(t);
			t->header_done = true;
		}
		print_row(t, r);
		return;
	}
	memcpy(copy, line, len);
	copy[len] = '\0';
	t->held_len[t->nheld] = len;
	t->held[t->nheld++] = copy;
	if (t->nheld == PF_QT_BUFFER_ROWS)
		pf_qtable__flush(t);
}

bool pf_qtable__any(const struct pf_qtable *t)
{
	return t->header_done || t->nheld;
}

void pf_qtable__fini(struct pf_qtable *t)
{
	for (size_t i = 0; i < t->nheld; i++)
		free(t->held[i]);
	t->nheld = 0;
}
