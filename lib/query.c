// SPDX-License-Identifier: BSD-2-Clause
#include "query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Longest string a filter compares (a process path, one argument string);
 * longer values are compared on their first bytes. The agent caps
 * arguments at 16 KiB. */
#define CMP_MAX 17000

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errsz, const char *fmt,
							 ...)
{
	va_list ap;

	if (!err || !errsz)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errsz, fmt, ap);
	va_end(ap);
}

/* ---- value parsers ---- */

static int parse_u64(const char *s, const char **endp, uint64_t *out)
{
	uint64_t n = 0;
	const char *p = s;

	if (*p < '0' || *p > '9')
		return -EINVAL;
	while (*p >= '0' && *p <= '9') {
		unsigned d = (unsigned)(*p - '0');

		if (n > (UINT64_MAX - d) / 10)
			return -EINVAL;
		n = n * 10 + d;
		p++;
	}
	*endp = p;
	*out = n;
	return 0;
}

int pf_parse_duration(const char *s, uint64_t *secs)
{
	const char *p;
	uint64_t n, mul = 1;

	if (!s || parse_u64(s, &p, &n))
		return -EINVAL;
	switch (*p) {
	case '\0':
	case 's':
		break;
	case 'm':
		mul = 60;
		break;
	case 'h':
		mul = 3600;
		break;
	case 'd':
		mul = 86400;
		break;
	case 'w':
		mul = 7 * 86400;
		break;
	default:
		return -EINVAL;
	}
	if (*p && p[1])
		return -EINVAL;
	if (n > UINT64_MAX / mul)
		return -EINVAL;
	*secs = n * mul;
	return 0;
}

/* Exactly @n digits at *@p into *@v. */
static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		char c = (*p)[i];

		if (c < '0' || c > '9')
			return -1;
		*v = *v * 10 + (c - '0');
	}
	*p += n;
	return 0;
}

int pf_parse_time(const char *s, uint64_t *unix_s)
{
	struct tm tm;
	const char *p = s;
	int y, mo, d, h = 0, mi = 0, sec = 0, zone = 0, has_zone = 0;
	uint64_t n;
	time_t t;

	if (!s || !*s)
		return -EINVAL;
	/* Unix seconds: digits only. */
	if (!parse_u64(s, &p, &n) && *p == '\0') {
		if (n > (uint64_t)INT64_MAX)
			return -EINVAL;
		*unix_s = n;
		return 0;
	}
	p = s;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.' || *p == ',') {
				p++;
				if (*p < '0' || *p > '9')
					return -EINVAL;
				while (*p >= '0' && *p <= '9')
					p++;
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		has_zone = 1;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, zh, zm = 0;

		p++;
		if (digits(&p, 2, &zh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (*p && digits(&p, 2, &zm))
			return -EINVAL;
		if (zh > 23 || zm > 59)
			return -EINVAL;
		zone = sign * (zh * 3600 + zm * 60);
		has_zone = 1;
	}
	if (*p)
		return -EINVAL;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	if (has_zone) {
		t = timegm(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
		t -= zone;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
		if (t == (time_t)-1)
			return -EINVAL;
	}
	/* timegm() normalises 2026-02-31 into March: refuse such dates. */
	if (tm.tm_mday != d || tm.tm_mon != mo - 1)
		return -EINVAL;
	if (t < 0)
		return -EINVAL;
	*unix_s = (uint64_t)t;
	return 0;
}

static int text_to_addr(const char *s, uint8_t addr[16], int *is_v4)
{
	struct in_addr a4;

	if (inet_pton(AF_INET, s, &a4) == 1) {
		memset(addr, 0, 10);
		addr[10] = 0xff;
		addr[11] = 0xff;
		memcpy(addr + 12, &a4, 4);
		*is_v4 = 1;
		return 0;
	}
	*is_v4 = 0;
	return inet_pton(AF_INET6, s, addr) == 1 ? 0 : -EINVAL;
}

int pf_parse_cidr(const char *s, struct pf_cidr *c)
{
	char buf[INET6_ADDRSTRLEN + 8];
	const char *slash;
	size_t alen;
	uint64_t bits;
	int v4;

	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (text_to_addr(buf, c->addr, &v4))
		return -EINVAL;
	if (slash) {
		const char *e;

		if (parse_u64(slash + 1, &e, &bits) || *e || bits > (v4 ? 32u : 128u))
			return -EINVAL;
	} else {
		bits = v4 ? 32 : 128;
	}
	c->bits = (uint8_t)(v4 ? 96 + bits : bits);
	return 0;
}

static bool prefix_eq(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned whole = bits / 8, rest = bits % 8;

	if (memcmp(a, b, whole))
		return false;
	if (!rest)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));

	return (a[whole] & mask) == (b[whole] & mask);
}

/* Dotted-quad IPv4 without inet_pton(): this runs once per line and filter. */
static bool fast_v4(const char *s, size_t n, uint8_t addr[16])
{
	size_t i = 0;

	for (int part = 0; part < 4; part++) {
		unsigned v = 0, nd = 0;

		while (i < n && s[i] >= '0' && s[i] <= '9' && nd < 4) {
			v = v * 10 + (unsigned)(s[i++] - '0');
			nd++;
		}
		if (nd == 0 || nd > 3 || v > 255 || (nd > 1 && s[i - nd] == '0'))
			return false;
		addr[12 + part] = (uint8_t)v;
		if (part < 3 && (i >= n || s[i++] != '.'))
			return false;
	}
	if (i != n)
		return false;
	memset(addr, 0, 10);
	addr[10] = addr[11] = 0xff;
	return true;
}

bool pf_cidr__contains_text(const struct pf_cidr *c, const char *s, size_t n)
{
	char buf[INET6_ADDRSTRLEN + 1];
	uint8_t addr[16];
	int v4;

	if (n == 0 || n >= sizeof(buf))
		return false;
	if (!memchr(s, ':', n))
		return fast_v4(s, n, addr) && prefix_eq(addr, c->addr, c->bits);
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (text_to_addr(buf, addr, &v4))
		return false;
	return prefix_eq(addr, c->addr, c->bits);
}

/* ---- filters ---- */

static const char *const protos[] = {"tcp", "udp", "icmp", "icmp6", "sctp"};

int pf_query__add(struct pf_query *q, const char *name, const char *value, uint64_t now, char *err,
		  size_t errsz)
{
	uint64_t v;

	if (!value) {
		seterr(err, errsz, "--%s needs a value", name);
		return -EINVAL;
	}
	if (!strcmp(name, "since")) {
		if (pf_parse_duration(value, &v)) {
			seterr(err, errsz,
			       "--since: '%s' is not a duration (examples: 90s, 10m, 2h, 7d)",
			       value);
			return -EINVAL;
		}
		q->has_from = true;
		q->from = v > now ? 0 : now - v;
		return 0;
	}
	if (!strcmp(name, "from") || !strcmp(name, "to")) {
		if (pf_parse_time(value, &v)) {
			seterr(err, errsz,
			       "--%s: '%s' is not a time (Unix seconds, or ISO 8601 such as "
			       "2026-11-27T14:05:00Z)",
			       name, value);
			return -EINVAL;
		}
		if (name[0] == 'f') {
			q->has_from = true;
			q->from = v;
		} else {
			q->has_to = true;
			q->to = v;
		}
		if (q->has_from && q->has_to && q->from > q->to) {
			seterr(err, errsz, "--from is later than --to: no line could match");
			return -EINVAL;
		}
		return 0;
	}
	if (!strcmp(name, "reporter")) {
		if (strcmp(value, "src") && strcmp(value, "dst")) {
			seterr(err, errsz, "--reporter: '%s' is not src or dst", value);
			return -EINVAL;
		}
		q->reporter = value;
		return 0;
	}
	if (!strcmp(name, "action")) {
		if (strcmp(value, "allow") && strcmp(value, "deny")) {
			seterr(err, errsz, "--action: '%s' is not allow or deny", value);
			return -EINVAL;
		}
		q->action = value;
		return 0;
	}

	/* The repeatable ones. */
	int *count;

	if (!strcmp(name, "process"))
		count = &q->nprocess;
	else if (!strcmp(name, "args"))
		count = &q->nargs;
	else if (!strcmp(name, "pid"))
		count = &q->npid;
	else if (!strcmp(name, "ip") || !strcmp(name, "src") || !strcmp(name, "dst"))
		count = &q->nip;
	else if (!strcmp(name, "port"))
		count = &q->nport;
	else if (!strcmp(name, "proto"))
		count = &q->nproto;
	else
		return -ENOENT;
	if (*count >= PF_Q_MAX_TERMS) {
		seterr(err, errsz, "--%s: at most %d values", name, PF_Q_MAX_TERMS);
		return -EINVAL;
	}
	if (!strcmp(name, "process")) {
		if (!*value) {
			seterr(err, errsz, "--process: empty pattern");
			return -EINVAL;
		}
		q->process[q->nprocess++] = value;
	} else if (!strcmp(name, "args")) {
		if (!*value) {
			seterr(err, errsz, "--args: empty substring");
			return -EINVAL;
		}
		q->args[q->nargs++] = value;
	} else if (!strcmp(name, "pid")) {
		const char *e;

		if (parse_u64(value, &e, &v) || *e || v == 0 || v > 4194304) {
			seterr(err, errsz, "--pid: '%s' is not a process ID (1..4194304)", value);
			return -EINVAL;
		}
		q->pid[q->npid++] = (uint32_t)v;
	} else if (!strcmp(name, "port")) {
		const char *e;

		if (parse_u64(value, &e, &v) || *e || v > 65535) {
			seterr(err, errsz, "--port: '%s' is not a port number (0..65535)", value);
			return -EINVAL;
		}
		q->port[q->nport++] = (uint16_t)v;
	} else if (!strcmp(name, "proto")) {
		const char *e;
		bool ok = false;

		for (size_t i = 0; i < sizeof(protos) / sizeof(protos[0]); i++)
			ok |= !strcasecmp(value, protos[i]);
		if (!ok && (parse_u64(value, &e, &v) || *e || v > 255)) {
			seterr(err, errsz,
			       "--proto: '%s' is not tcp, udp, icmp, icmp6, sctp or a protocol "
			       "number",
			       value);
			return -EINVAL;
		}
		q->proto[q->nproto++] = value;
	} else {
		if (pf_parse_cidr(value, &q->ip[q->nip])) {
			seterr(err, errsz,
			       "--%s: '%s' is not an IP address or CIDR (10.0.0.0/8, fd00::/8)",
			       name, value);
			return -EINVAL;
		}
		q->ip_where[q->nip++] = name[0] == 'i'	 ? PF_Q_EITHER
					: name[0] == 's' ? PF_Q_SRC
							 : PF_Q_DST;
	}
	return 0;
}

uint64_t pf_query__fields(const struct pf_query *q)
{
	uint64_t m = 0;

	if (q->has_from)
		m |= PF_FL_BIT(PF_FL_END_TIME);
	if (q->has_to)
		m |= PF_FL_BIT(PF_FL_START_TIME);
	if (q->nprocess)
		m |= PF_FL_BIT(PF_FL_PROCESS_NAME);
	if (q->nargs)
		m |= PF_FL_BIT(PF_FL_PROCESS_ARGS);
	if (q->npid)
		m |= PF_FL_BIT(PF_FL_PROCESS_ID);
	for (int i = 0; i < q->nip; i++) {
		if (q->ip_where[i] != PF_Q_DST)
			m |= PF_FL_BIT(PF_FL_SOURCE_IP);
		if (q->ip_where[i] != PF_Q_SRC)
			m |= PF_FL_BIT(PF_FL_DEST_IP);
	}
	if (q->nport)
		m |= PF_FL_BIT(PF_FL_SOURCE_PORT) | PF_FL_BIT(PF_FL_DEST_PORT);
	if (q->nproto)
		m |= PF_FL_BIT(PF_FL_PROTO);
	if (q->reporter)
		m |= PF_FL_BIT(PF_FL_REPORTER);
	if (q->action)
		m |= PF_FL_BIT(PF_FL_ACTION);
	return m;
}

/* A string value as a C string in @buf; NULL when not a string. */
static const char *cstr(const struct pf_fl_val *v, char *buf, size_t bufsz)
{
	size_t n;

	if (v->type != PF_FLV_STR)
		return NULL;
	if (v->escaped) {
		pf_fl__unescape(v->p, v->len, buf, bufsz);
		return buf;
	}
	n = v->len < bufsz - 1 ? v->len : bufsz - 1;
	memcpy(buf, v->p, n);
	buf[n] = '\0';
	return buf;
}

static bool str_is(const struct pf_fl_val *v, const char *s)
{
	size_t n = strlen(s);

	return v->type == PF_FLV_STR && v->len == n && !memcmp(v->p, s, n);
}

static bool match_process(const struct pf_query *q, const struct pf_flowrec *r, char *buf)
{
	const char *name = cstr(&r->v[PF_FL_PROCESS_NAME], buf, CMP_MAX);
	const char *base;

	if (!name)
		return false;
	base = strrchr(name, '/');
	base = base ? base + 1 : name;
	for (int i = 0; i < q->nprocess; i++) {
		if (!fnmatch(q->process[i], name, 0))
			return true;
		/* A pattern without '/' names the program: "curl" finds
		 * /usr/bin/curl. */
		if (!strchr(q->process[i], '/') && !fnmatch(q->process[i], base, 0))
			return true;
	}
	return false;
}

static bool match_args(const struct pf_query *q, const struct pf_flowrec *r, char *buf)
{
	struct pf_fl_val e;
	size_t pos = 0;

	while (pf_fl__arr_next(&r->v[PF_FL_PROCESS_ARGS], &pos, &e)) {
		const char *s = cstr(&e, buf, CMP_MAX);

		if (!s)
			continue;
		for (int i = 0; i < q->nargs; i++)
			if (strstr(s, q->args[i]))
				return true;
	}
	return false;
}

static bool match_pid(const struct pf_query *q, const struct pf_flowrec *r)
{
	const struct pf_fl_val *v = &r->v[PF_FL_PROCESS_ID];
	struct pf_fl_val num;
	uint64_t pid;

	if (v->type != PF_FLV_STR || v->escaped)
		return false;
	num = *v;
	num.type = PF_FLV_NUM;
	if (pf_fl__u64(&num, &pid))
		return false; /* "-" or "*" */
	for (int i = 0; i < q->npid; i++)
		if (q->pid[i] == pid)
			return true;
	return false;
}

static bool ip_in(const struct pf_cidr *c, const struct pf_fl_val *v)
{
	return v->type == PF_FLV_STR && pf_cidr__contains_text(c, v->p, v->len);
}

static bool match_ip(const struct pf_query *q, const struct pf_flowrec *r)
{
	for (int i = 0; i < q->nip; i++) {
		if (q->ip_where[i] != PF_Q_DST && ip_in(&q->ip[i], &r->v[PF_FL_SOURCE_IP]))
			return true;
		if (q->ip_where[i] != PF_Q_SRC && ip_in(&q->ip[i], &r->v[PF_FL_DEST_IP]))
			return true;
	}
	return false;
}

static bool match_port(const struct pf_query *q, const struct pf_flowrec *r)
{
	uint64_t sp = UINT64_MAX, dp = UINT64_MAX;

	pf_fl__u64(&r->v[PF_FL_SOURCE_PORT], &sp);
	pf_fl__u64(&r->v[PF_FL_DEST_PORT], &dp);
	for (int i = 0; i < q->nport; i++)
		if (q->port[i] == sp || q->port[i] == dp)
			return true;
	return false;
}

static bool match_proto(const struct pf_query *q, const struct pf_flowrec *r)
{
	const struct pf_fl_val *v = &r->v[PF_FL_PROTO];

	if (v->type != PF_FLV_STR)
		return false;
	for (int i = 0; i < q->nproto; i++)
		if (strlen(q->proto[i]) == v->len && !strncasecmp(q->proto[i], v->p, v->len))
			return true;
	return false;
}

bool pf_query__match(const struct pf_query *q, const struct pf_flowrec *r)
{
	uint64_t t;

	if (q->has_from && (pf_fl__u64(&r->v[PF_FL_END_TIME], &t) || t < q->from))
		return false;
	if (q->has_to && (pf_fl__u64(&r->v[PF_FL_START_TIME], &t) || t > q->to))
		return false;
	if (q->reporter && !str_is(&r->v[PF_FL_REPORTER], q->reporter))
		return false;
	if (q->action && !str_is(&r->v[PF_FL_ACTION], q->action))
		return false;
	if (q->nproto && !match_proto(q, r))
		return false;
	if (q->nport && !match_port(q, r))
		return false;
	if (q->npid && !match_pid(q, r))
		return false;
	if (q->nip && !match_ip(q, r))
		return false;
	if (q->nprocess || q->nargs) {
		char buf[CMP_MAX];

		if (q->nprocess && !match_process(q, r, buf))
			return false;
		if (q->nargs && !match_args(q, r, buf))
			return false;
	}
	return true;
}

/* ---- formatting ---- */

void pf_fmt_bytes(uint64_t v, char *out, size_t outsz)
{
	static const char units[] = "KMGTPE";
	double d = (double)v;
	int u = -1;

	if (v < 1024) {
		snprintf(out, outsz, "%llu", (unsigned long long)v);
		return;
	}
	while (d >= 1024 && u < 5) {
		d /= 1024;
		u++;
	}
	if (d < 9.95)
		snprintf(out, outsz, "%.1f%c", d, units[u]);
	else
		snprintf(out, outsz, "%.0f%c", d, units[u]);
}

/* One terminal cell at @s[*i]: its bytes (*@len) and whether it is shown
 * as '?' (control bytes, C1 controls, invalid UTF-8). */
static bool cell(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	unsigned char c = s[i];
	size_t need;

	*len = 1;
	if (c < 0x20 || c == 0x7f)
		return true;
	if (c < 0x80)
		return false;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return true;
	if (i + need > n)
		return true;
	for (size_t k = 1; k < need; k++)
		if ((s[i + k] & 0xc0) != 0x80)
			return true;
	*len = need;
	/* U+0080..U+009F are C1 controls (CSI is U+009B). */
	return c == 0xc2 && s[i + 1] < 0xa0;
}

size_t pf_fmt_cell(const char *str, size_t n, size_t width, bool keep_end, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t total = 0, i, len, o = 0, col = 0, skip = 0, keep;
	bool cut;

	if (!outsz)
		return 0;
	for (i = 0; i < n; i += len) {
		cell(s, n, i, &len);
		total++;
	}
	cut = total > width;
	keep = cut ? (width > 3 ? width - 3 : width) : total;
	if (cut && keep_end)
		skip = total - keep;
	if (cut && keep_end && width > 3) {
		if (o + 3 < outsz) {
			memcpy(out + o, "...", 3);
			o += 3;
			col += 3;
		}
	}
	size_t idx = 0;

	for (i = 0; i < n && idx < skip + keep; i += len, idx++) {
		bool bad = cell(s, n, i, &len);

		if (idx < skip)
			continue;
		if (bad) {
			if (o + 1 >= outsz)
				break;
			out[o++] = '?';
		} else {
			if (o + len >= outsz)
				break;
			memcpy(out + o, s + i, len);
			o += len;
		}
		col++;
	}
	if (cut && !keep_end && width > 3 && o + 3 < outsz) {
		memcpy(out + o, "...", 3);
		o += 3;
		col += 3;
	}
	out[o] = '\0';
	return col;
}
