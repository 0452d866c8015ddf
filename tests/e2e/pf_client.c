// SPDX-License-Identifier: MIT
/*
 * pf_client: the short-lived client the end-to-end tests attribute flows to.
 *
 *   pf_client tcp|udp HOST PORT NBYTES [extra args...]
 *
 * TCP: connect, send NBYTES, shutdown(SHUT_WR), read until EOF, exit 0.
 * UDP: send NBYTES (at most 1400, so one datagram never fragments) in one
 *      datagram, wait up to 1 s for a reply datagram, exit 0.
 *
 * The extra arguments are ignored: the tests pass a unique string there so the
 * process_args they expect in flows.log can only come from this invocation.
 *
 * Why so small: the agent must attribute flows of processes that are gone
 * within a few milliseconds (the case /proc scraping misses), so this program
 * does nothing but the exchange and exits; it lives well under 20 ms.
 *
 * Any error (bad arguments, refused connection, timeout, missing UDP reply)
 * prints one line on stderr and exits 1: a test must never mistake a client
 * that did not talk to its server for one that did.
 *
 * With PF_CLIENT_TIMING set in the environment (not argv, which the tests compare
 * with flows.log), it prints "pf_client: pid P lived N.NNN ms" on stderr at exit: the
 * time from main() to exit, so a test can check the process really was short-lived
 * without counting the set-up of whatever launched it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Largest UDP payload accepted: below any veth/Ethernet MTU minus headers. */
#define PF_CLIENT_UDP_MAX 1400
/* Largest TCP payload accepted: the tests send a few KiB at most. */
#define PF_CLIENT_TCP_MAX (1 << 20)
/* Every blocking call gives up after this long, so a broken path fails fast. */
#define PF_CLIENT_TIMEOUT_S 1

static int fail(const char *what)
{
	fprintf(stderr, "pf_client: %s: %s\n", what, strerror(errno));
	return 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: pf_client tcp|udp HOST PORT NBYTES [extra args...]\n");
	return 1;
}

/* Parse HOST (IPv4 or IPv6 literal) and PORT into *ss. Returns 0 or -1. */
static int parse_addr(const char *host, const char *port, struct sockaddr_storage *ss,
		      socklen_t *len)
{
	char *end;
	long p;

	errno = 0;
	p = strtol(port, &end, 10);
	if (errno || *port == '\0' || *end != '\0' || p < 1 || p > 65535)
		return -1;

	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		*len = sizeof(*sin6);
		return 0;
	}
	return -1;
}

static int set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = PF_CLIENT_TIMEOUT_S };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -1;
	return 0;
}

/* A socket of @type connected to *ss, its timeouts set; -1 (the failing step
 * printed) otherwise. */
static int connected(const struct sockaddr_storage *ss, socklen_t len, int type)
{
	const char *what = NULL;
	int fd;

	fd = socket(ss->ss_family, type, 0);
	if (fd < 0)
		what = "socket";
	else if (set_timeouts(fd) < 0)
		what = "setsockopt";
	else if (connect(fd, (const struct sockaddr *)ss, len) < 0)
		what = "connect";
	if (!what)
		return fd;
	fail(what);
	if (fd >= 0)
		close(fd);
	return -1;
}

static int run_tcp(const struct sockaddr_storage *ss, socklen_t len, const char *buf, size_t n)
{
	char rbuf[4096];
	size_t off = 0;
	ssize_t r;
	int fd;

	fd = connected(ss, len, SOCK_STREAM);
	if (fd < 0)
		return 1;
	while (off < n) {
		r = send(fd, buf + off, n - off, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return fail("send");
		}
		off += (size_t)r;
	}
	if (shutdown(fd, SHUT_WR) < 0)
		return fail("shutdown");
	for (;;) {
		r = recv(fd, rbuf, sizeof(rbuf), 0);
		if (r == 0)
			break;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return fail("recv");
		}
	}
	close(fd);
	return 0;
}

static int run_udp(const struct sockaddr_storage *ss, socklen_t len, const char *buf, size_t n)
{
	char rbuf[2048];
	ssize_t r;
	int fd;

	/* connect() so that an ICMP port-unreachable surfaces as ECONNREFUSED. */
	fd = connected(ss, len, SOCK_DGRAM);
	if (fd < 0)
		return 1;
	r = send(fd, buf, n, 0);
	if (r < 0)
		return fail("send");
	if ((size_t)r != n) {
		fprintf(stderr, "pf_client: short datagram send (%zd of %zu)\n", r, n);
		return 1;
	}
	do {
		r = recv(fd, rbuf, sizeof(rbuf), 0);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			fprintf(stderr, "pf_client: no reply within %d s\n", PF_CLIENT_TIMEOUT_S);
			return 1;
		}
		return fail("recv");
	}
	close(fd);
	return 0;
}

static double mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	double t0 = mono_ms();
	struct sockaddr_storage ss;
	socklen_t len;
	char *end;
	long n;
	int tcp, rc;
	char *buf;

	if (argc < 5)
		return usage();
	if (strcmp(argv[1], "tcp") == 0)
		tcp = 1;
	else if (strcmp(argv[1], "udp") == 0)
		tcp = 0;
	else
		return usage();
	if (parse_addr(argv[2], argv[3], &ss, &len) < 0) {
		fprintf(stderr, "pf_client: bad address or port: %s %s\n", argv[2], argv[3]);
		return 1;
	}
	errno = 0;
	n = strtol(argv[4], &end, 10);
	if (errno || *argv[4] == '\0' || *end != '\0' || n < 1 ||
	    n > (tcp ? PF_CLIENT_TCP_MAX : PF_CLIENT_UDP_MAX)) {
		fprintf(stderr, "pf_client: NBYTES must be 1..%d for %s\n",
			tcp ? PF_CLIENT_TCP_MAX : PF_CLIENT_UDP_MAX, argv[1]);
		return 1;
	}

	buf = malloc((size_t)n);
	if (!buf)
		return fail("malloc");
	/* A fixed, recognisable pattern: easy to spot in a packet capture. */
	for (long i = 0; i < n; i++)
		buf[i] = (char)('a' + i % 26);

	rc = tcp ? run_tcp(&ss, len, buf, (size_t)n) : run_udp(&ss, len, buf, (size_t)n);
	free(buf);
	if (getenv("PF_CLIENT_TIMING"))
		fprintf(stderr, "pf_client: pid %d lived %.3f ms\n", (int)getpid(), mono_ms() - t0);
	return rc;
}
