// SPDX-License-Identifier: BSD-2-Clause
#include "query.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fnmatch.h>
#include <netdb.h>
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

/* Protocol names a line writes, with their numbers (RFC 5237 registry). */
static const struct {
	const char *name;
	uint8_t num;
} protos[] = {{"icmp", 1},   {"tcp", 6},	{"udp", 17},
	      {"icmp6", 58}, {"ipv6-icmp", 58}, {"sctp", 132}};

#define NPROTOS (sizeof(protos) / sizeof(protos[0]))

/* "tcp", "TCP", "6" -> 6. Returns 0 or -EINVAL. */
static int proto_number(const char *s, size_t n, uint8_t *num)
{
	uint64_t v = 0;

	for (size_t i = 0; i < NPROTOS; i++) {
		if (strlen(protos[i].name) == n && !strncasecmp(protos[i].name, s, n)) {
			*num = protos[i].num;
			return 0;
		}
	}
	if (n == 0 || n > 3)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > 255)
		return -EINVAL;
	*num = (uint8_t)v;
	return 0;
}

/* One item of --port: "80", "80-90" or a service name from /etc/services. */
static int parse_port_item(const char *s, struct pf_q_port *out)
{
	const char *e;
	uint64_t lo, hi;

	if (!parse_u64(s, &e, &lo)) {
		hi = lo;
		if (*e == '-' && parse_u64(e + 1, &e, &hi))
			return -EINVAL;
		if (*e || lo > 65535 || hi > 65535 || lo > hi)
			return -EINVAL;
		out->lo = (uint16_t)lo;
		out->hi = (uint16_t)hi;
		return 0;
	}
	/* A service name ("https", "domain"): whatever protocol it is listed for. */
	struct servent *se = *s ? getservbyname(s, NULL) : NULL;

	if (!se)
		return -EINVAL;
	out->lo = out->hi = ntohs((uint16_t)se->s_port);
	return 0;
}

static int add_ports(struct pf_query *q, const char *value, char *err, size_t errsz)
{
	char item[64];
	const char *p = value;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);

		if (q->nport >= PF_Q_MAX_TERMS) {
			seterr(err, errsz, "--port: at most %d values", PF_Q_MAX_TERMS);
			return -EINVAL;
		}
		if (n >= sizeof(item)) {
			seterr(err, errsz, "--port: '%.*s...' is too long", 32, p);
			return -EINVAL;
		}
		memcpy(item, p, n);
		item[n] = '\0';
		if (parse_port_item(item, &q->port[q->nport])) {
			seterr(
			    err, errsz,
			    "--port: '%s' is not a port (0..65535), a range (80-90) or a service "
			    "name from /etc/services",
			    item);
			return -EINVAL;
		}
		q->nport++;
		if (!comma)
			return 0;
		p = comma + 1;
	}
}

/* The single-valued time bounds: a second value would silently replace the
 * first, so it is refused. */
static int add_time(struct pf_query *q, const char *name, const char *value, uint64_t now,
		    char *err, size_t errsz)
{
	unsigned bit = name[0] == 's' ? PF_Q_T_SINCE : name[0] == 'f' ? PF_Q_T_FROM : PF_Q_T_TO;
	uint64_t v;

	if (q->time_given & bit) {
		seterr(err, errsz, "--%s given twice: a time range has one %s", name,
		       bit == PF_Q_T_TO ? "end" : "start");
		return -EINVAL;
	}
	if (bit != PF_Q_T_TO && (q->time_given & (PF_Q_T_SINCE | PF_Q_T_FROM))) {
		seterr(err, errsz, "--since and --from both set the start of the range: give one");
		return -EINVAL;
	}
	if (bit == PF_Q_T_SINCE) {
		if (pf_parse_duration(value, &v)) {
			seterr(err, errsz,
			       "--since: '%s' is not a duration (examples: 90s, 10m, 2h, 7d)",
			       value);
			return -EINVAL;
		}
		v = v > now ? 0 : now - v;
	} else if (pf_parse_time(value, &v)) {
		seterr(err, errsz,
		       "--%s: '%s' is not a time (Unix seconds, or ISO 8601 such as "
		       "2026-11-27T14:05:00Z)",
		       name, value);
		return -EINVAL;
	}
	q->time_given |= bit;
	if (bit == PF_Q_T_TO) {
		q->has_to = true;
		q->to = v;
	} else {
		q->has_from = true;
		q->from = v;
	}
	if (q->has_from && q->has_to && q->from > q->to) {
		seterr(err, errsz,
		       "--%s: the start of the range is later than --to: no line could "
		       "match",
		       q->time_given & PF_Q_T_SINCE ? "since" : "from");
		return -EINVAL;
	}
	return 0;
}

/* --reporter and --action: two values each, kept as a set (OR). */
static int add_choice(unsigned *set, const char *name, const char *value, const char *a,
		      const char *b, char *err, size_t errsz)
{
	if (!strcmp(value, a))
		*set |= 1;
	else if (!strcmp(value, b))
		*set |= 2;
	else {
		seterr(err, errsz, "--%s: '%s' is not %s or %s", name, value, a, b);
		return -EINVAL;
	}
	return 0;
}

static int add_cidr(struct pf_cidr *list, int *count, const char *name, const char *value,
		    char *err, size_t errsz)
{
	if (*count >= PF_Q_MAX_TERMS) {
		seterr(err, errsz, "--%s: at most %d values", name, PF_Q_MAX_TERMS);
		return -EINVAL;
	}
	if (pf_parse_cidr(value, &list[*count])) {
		seterr(err, errsz, "--%s: '%s' is not an IP address or CIDR (10.0.0.0/8, fd00::/8)",
		       name, value);
		return -EINVAL;
	}
	(*count)++;
	return 0;
}

static int add_string(const char **list, int *count, const char *name, const char *value, char *err,
		      size_t errsz)
{
	if (*count >= PF_Q_MAX_TERMS) {
		seterr(err, errsz, "--%s: at most %d values", name, PF_Q_MAX_TERMS);
		return -EINVAL;
	}
	if (!*value) {
		seterr(err, errsz, "--%s: empty value", name);
		return -EINVAL;
	}
	list[(*count)++] = value;
	return 0;
}

int pf_query__add(struct pf_query *q, const char *name, const char *value, uint64_t now, char *err,
		  size_t errsz)
{
	uint64_t v;
	const char *e;

	if (!value) {
		seterr(err, errsz, "--%s needs a value", name);
		return -EINVAL;
	}
	if (!strcmp(name, "since") || !strcmp(name, "from") || !strcmp(name, "to"))
		return add_time(q, name, value, now, err, errsz);
	if (!strcmp(name, "reporter"))
		return add_choice(&q->reporter, name, value, "src", "dst", err, errsz);
	if (!strcmp(name, "action"))
		return add_choice(&q->action, name, value, "allow", "deny", err, errsz);
	if (!strcmp(name, "process"))
		return add_string(q->process, &q->nprocess, name, value, err, errsz);
	if (!strcmp(name, "not-process"))
		return add_string(q->not_process, &q->nnot_process, name, value, err, errsz);
	if (!strcmp(name, "args"))
		return add_string(q->args, &q->nargs, name, value, err, errsz);
	if (!strcmp(name, "namespace"))
		return add_string(q->ns, &q->nns, name, value, err, errsz);
	if (!strcmp(name, "pod"))
		return add_string(q->pod, &q->npod, name, value, err, errsz);
	if (!strcmp(name, "ip"))
		return add_cidr(q->ip, &q->nip, name, value, err, errsz);
	if (!strcmp(name, "src"))
		return add_cidr(q->src, &q->nsrc, name, value, err, errsz);
	if (!strcmp(name, "dst"))
		return add_cidr(q->dst, &q->ndst, name, value, err, errsz);
	if (!strcmp(name, "port"))
		return add_ports(q, value, err, errsz);
	if (!strcmp(name, "pid")) {
		if (q->npid >= PF_Q_MAX_TERMS) {
			seterr(err, errsz, "--pid: at most %d values", PF_Q_MAX_TERMS);
			return -EINVAL;
		}
		if (parse_u64(value, &e, &v) || *e || v == 0 || v > 4194304) {
			seterr(err, errsz, "--pid: '%s' is not a process ID (1..4194304)", value);
			return -EINVAL;
		}
		q->pid[q->npid++] = (uint32_t)v;
		return 0;
	}
	if (!strcmp(name, "proto")) {
		if (q->nproto >= PF_Q_MAX_TERMS) {
			seterr(err, errsz, "--proto: at most %d values", PF_Q_MAX_TERMS);
			return -EINVAL;
		}
		if (proto_number(value, strlen(value), &q->proto[q->nproto])) {
			seterr(err, errsz,
			       "--proto: '%s' is not tcp, udp, icmp, icmp6, sctp or a protocol "
			       "number (0..255)",
			       value);
			return -EINVAL;
		}
		q->nproto++;
		return 0;
	}
	return -ENOENT;
}

uint64_t pf_query__fields(const struct pf_query *q)
{
	uint64_t m = 0;

	if (q->has_from)
		m |= PF_FL_BIT(PF_FL_END_TIME);
	if (q->has_to)
		m |= PF_FL_BIT(PF_FL_START_TIME);
	if (q->nprocess || q->nnot_process)
		m |= PF_FL_BIT(PF_FL_PROCESS_NAME);
	if (q->nargs)
		m |= PF_FL_BIT(PF_FL_PROCESS_ARGS);
	if (q->npid)
		m |= PF_FL_BIT(PF_FL_PROCESS_ID);
	if (q->nip || q->nsrc)
		m |= PF_FL_BIT(PF_FL_SOURCE_IP);
	if (q->nip || q->ndst)
		m |= PF_FL_BIT(PF_FL_DEST_IP);
	if (q->nport)
		m |= PF_FL_BIT(PF_FL_SOURCE_PORT) | PF_FL_BIT(PF_FL_DEST_PORT);
	if (q->nproto)
		m |= PF_FL_BIT(PF_FL_PROTO);
	if (q->reporter)
		m |= PF_FL_BIT(PF_FL_REPORTER);
	if (q->action)
		m |= PF_FL_BIT(PF_FL_ACTION);
	if (q->nns)
		m |= PF_FL_BIT(PF_FL_SOURCE_NAMESPACE) | PF_FL_BIT(PF_FL_DEST_NAMESPACE);
	if (q->npod)
		m |= PF_FL_BIT(PF_FL_SOURCE_NAME) | PF_FL_BIT(PF_FL_DEST_NAME) |
		     PF_FL_BIT(PF_FL_SOURCE_TYPE) | PF_FL_BIT(PF_FL_DEST_TYPE);
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

/* Whether @set (bit 0: @a, bit 1: @b) holds the line's value. */
static bool choice_in(unsigned set, const struct pf_fl_val *v, const char *a, const char *b)
{
	return ((set & 1) && str_is(v, a)) || ((set & 2) && str_is(v, b));
}

/* Whether one of the @n globs matches the process path @name. */
static bool any_glob(const char *const *globs, int n, const char *name)
{
	const char *base = strrchr(name, '/');

	base = base ? base + 1 : name;
	for (int i = 0; i < n; i++) {
		if (!fnmatch(globs[i], name, 0))
			return true;
		/* A pattern without '/' names the program: "curl" finds
		 * /usr/bin/curl. */
		if (!strchr(globs[i], '/') && !fnmatch(globs[i], base, 0))
			return true;
	}
	return false;
}

/* --namespace: the namespace of either end is one of those given ("-",
 * the host's and the network's, is never matched by a name). */
static bool match_ns(const struct pf_query *q, const struct pf_flowrec *r, char *buf)
{
	static const int side[2] = {PF_FL_SOURCE_NAMESPACE, PF_FL_DEST_NAMESPACE};

	for (int s = 0; s < 2; s++) {
		const char *ns = cstr(&r->v[side[s]], buf, CMP_MAX);

		for (int i = 0; ns && i < q->nns; i++)
			if (!strcmp(ns, q->ns[i]))
				return true;
	}
	return false;
}

/* --pod: the name of a workload end ("wep": a pod or container) matches one
 * of the globs. Host and network ends have no pod. */
static bool match_pod(const struct pf_query *q, const struct pf_flowrec *r, char *buf)
{
	static const int name[2] = {PF_FL_SOURCE_NAME, PF_FL_DEST_NAME};
	static const int type[2] = {PF_FL_SOURCE_TYPE, PF_FL_DEST_TYPE};

	for (int s = 0; s < 2; s++) {
		const char *n;

		if (!str_is(&r->v[type[s]], "wep") || !(n = cstr(&r->v[name[s]], buf, CMP_MAX)))
			continue;
		for (int i = 0; i < q->npod; i++)
			if (!fnmatch(q->pod[i], n, 0))
				return true;
	}
	return false;
}

static bool match_process(const struct pf_query *q, const struct pf_flowrec *r, char *buf)
{
	const char *name = cstr(&r->v[PF_FL_PROCESS_NAME], buf, CMP_MAX);

	if (q->nprocess && (!name || !any_glob(q->process, q->nprocess, name)))
		return false;
	/* --not-process: a line without a process name has none of them. */
	if (q->nnot_process && name && any_glob(q->not_process, q->nnot_process, name))
		return false;
	return true;
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

/* Whether the address @v is in one of the @n prefixes of @list. */
static bool ip_in(const struct pf_cidr *list, int n, const struct pf_fl_val *v)
{
	if (v->type != PF_FLV_STR)
		return false;
	for (int i = 0; i < n; i++)
		if (pf_cidr__contains_text(&list[i], v->p, v->len))
			return true;
	return false;
}

static bool match_ip(const struct pf_query *q, const struct pf_flowrec *r)
{
	const struct pf_fl_val *s = &r->v[PF_FL_SOURCE_IP], *d = &r->v[PF_FL_DEST_IP];

	/* --ip, --src and --dst are three filters (AND); the values of each, OR. */
	if (q->nip && !ip_in(q->ip, q->nip, s) && !ip_in(q->ip, q->nip, d))
		return false;
	if (q->nsrc && !ip_in(q->src, q->nsrc, s))
		return false;
	if (q->ndst && !ip_in(q->dst, q->ndst, d))
		return false;
	return true;
}

static bool match_port(const struct pf_query *q, const struct pf_flowrec *r)
{
	uint64_t sp = UINT64_MAX, dp = UINT64_MAX;

	pf_fl__u64(&r->v[PF_FL_SOURCE_PORT], &sp);
	pf_fl__u64(&r->v[PF_FL_DEST_PORT], &dp);
	for (int i = 0; i < q->nport; i++)
		if ((sp >= q->port[i].lo && sp <= q->port[i].hi) ||
		    (dp >= q->port[i].lo && dp <= q->port[i].hi))
			return true;
	return false;
}

static bool match_proto(const struct pf_query *q, const struct pf_flowrec *r)
{
	const struct pf_fl_val *v = &r->v[PF_FL_PROTO];
	uint8_t num;

	if (v->type != PF_FLV_STR || proto_number(v->p, v->len, &num))
		return false;
	for (int i = 0; i < q->nproto; i++)
		if (q->proto[i] == num)
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
	if (q->reporter && !choice_in(q->reporter, &r->v[PF_FL_REPORTER], "src", "dst"))
		return false;
	if (q->action && !choice_in(q->action, &r->v[PF_FL_ACTION], "allow", "deny"))
		return false;
	if (q->nproto && !match_proto(q, r))
		return false;
	if (q->nport && !match_port(q, r))
		return false;
	if (q->npid && !match_pid(q, r))
		return false;
	if ((q->nip || q->nsrc || q->ndst) && !match_ip(q, r))
		return false;
	if (q->nprocess || q->nnot_process || q->nargs || q->nns || q->npod) {
		char buf[CMP_MAX];

		if (q->nns && !match_ns(q, r, buf))
			return false;
		if (q->npod && !match_pod(q, r, buf))
			return false;

		if ((q->nprocess || q->nnot_process) && !match_process(q, r, buf))
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

enum cell_kind { CELL_SHOW, CELL_BAD, CELL_DROP };

/* Unicode format characters (category Cf) that change how the text
 * around them is shown without being seen: the bidirectional embeddings,
 * overrides and isolates (a hostile argument could reorder a row with
 * them), zero-width joiners and spaces, the BOM, tags. Dropped. */
static bool invisible(uint32_t cp)
{
	return cp == 0x00ad || cp == 0x061c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
	       (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x206f) || cp == 0xfeff ||
	       (cp >= 0xfff9 && cp <= 0xfffb) || cp == 0xe0001 || (cp >= 0xe0020 && cp <= 0xe007f);
}

/* One terminal cell at @s[i]: its bytes (*@len) and whether it is shown,
 * shown as '?' (control bytes, C1 controls, invalid UTF-8), or dropped. */
static enum cell_kind cell(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	unsigned char c = s[i];
	size_t need;
	uint32_t cp;

	*len = 1;
	if (c < 0x20 || c == 0x7f)
		return CELL_BAD;
	if (c < 0x80)
		return CELL_SHOW;
	if (c >= 0xc2 && c <= 0xdf)
		need = 2;
	else if (c >= 0xe0 && c <= 0xef)
		need = 3;
	else if (c >= 0xf0 && c <= 0xf4)
		need = 4;
	else
		return CELL_BAD;
	if (i + need > n)
		return CELL_BAD;
	cp = c & (0x7f >> need);
	for (size_t k = 1; k < need; k++) {
		if ((s[i + k] & 0xc0) != 0x80)
			return CELL_BAD;
		cp = cp << 6 | (s[i + k] & 0x3f);
	}
	*len = need;
	/* U+0080..U+009F are C1 controls (CSI is U+009B). */
	if (cp < 0xa0)
		return CELL_BAD;
	return invisible(cp) ? CELL_DROP : CELL_SHOW;
}

size_t pf_fmt_cell(const char *str, size_t n, size_t width, bool keep_end, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t total = 0, i, len, o = 0, col = 0, skip = 0, keep;
	bool cut;

	if (!outsz)
		return 0;
	for (i = 0; i < n; i += len)
		if (cell(s, n, i, &len) != CELL_DROP)
			total++;
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

	for (i = 0; i < n && idx < skip + keep; i += len) {
		enum cell_kind k = cell(s, n, i, &len);

		if (k == CELL_DROP)
			continue;
		if (idx++ < skip)
			continue;
		if (k == CELL_BAD) {
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
