// SPDX-License-Identifier: MIT
/*
 * pingpong: the TCP load generator behind bench/run.sh.
 *
 *   pingpong server ADDR PORT
 *       Echo server: every byte read on a connection is written back; a
 *       connection closes when its peer shuts down. One thread, epoll, any
 *       number of connections. Runs until killed.
 *
 *   pingpong client ADDR PORT SECONDS MSGSIZE
 *       One connection, request/response: send MSGSIZE bytes, read MSGSIZE
 *       bytes back, repeat for SECONDS. Prints "roundtrips_per_s <rate>" and
 *       a line with the totals. Measures the per-packet cost the agent adds
 *       (its hooks run on every send and receive).
 *
 *   pingpong connect ADDR PORT COUNT
 *       COUNT short connections in sequence, each: connect, send 64 bytes,
 *       shutdown(SHUT_WR), read the echo until EOF, close. Prints
 *       "connections_per_s <rate>" and the totals. Measures the per-flow cost
 *       (socket creation, connect and close events, one flow-table entry each).
 *
 * Bounded: SECONDS ≤ 3600, COUNT ≤ 1,000,000, and the connect mode gives up
 * after PP_CONNECT_DEADLINE_S in any case; every socket has a 5 s timeout.
 * Only for addresses of namespaces the benchmark made itself (198.18.0.0/15,
 * fd00::/8): see bench/README.md.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define PP_MAX_SECONDS 3600
#define PP_MAX_COUNT 1000000
#define PP_MAX_MSG 65536
#define PP_CONNECT_MSG 64
#define PP_CONNECT_DEADLINE_S 600
#define PP_SOCK_TIMEOUT_S 5
#define PP_EPOLL_BATCH 64

static void die(const char *what)
{
	fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: pingpong server ADDR PORT\n"
			"       pingpong client ADDR PORT SECONDS MSGSIZE\n"
			"       pingpong connect ADDR PORT COUNT\n");
	exit(2);
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "pingpong: %s must be %ld..%ld, got '%s'\n", what, lo, hi, s);
		exit(2);
	}
	return v;
}

static socklen_t parse_addr(const char *addr, const char *port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	uint16_t p = (uint16_t)parse_num(port, 1, 65535, "PORT");

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(p);
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(p);
		return sizeof(*sin6);
	}
	fprintf(stderr, "pingpong: bad address '%s'\n", addr);
	exit(2);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void set_timeouts(int fd)
{
	struct timeval tv = { .tv_sec = PP_SOCK_TIMEOUT_S };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		die("setsockopt timeout");
}

static int connect_to(const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM, 0);

	if (fd < 0)
		die("socket");
	set_timeouts(fd);
	/* Request/response: without NODELAY, Nagle + delayed ACK would measure timers. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)ss, len) < 0)
		die("connect");
	return fd;
}

static void send_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			die("send");
		}
		buf += w;
		n -= (size_t)w;
	}
}

static void recv_all(int fd, char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, buf, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("recv");
		}
		if (r == 0) {
			fprintf(stderr, "pingpong: server closed the connection early\n");
			exit(1);
		}
		buf += r;
		n -= (size_t)r;
	}
}

/* Echo whatever is readable on fd back to it. Returns 0 to keep, -1 to close. */
static int echo_once(int fd, char *buf)
{
	for (;;) {
		ssize_t r = recv(fd, buf, PP_MAX_MSG, 0);
		if (r == 0)
			return -1;
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
		}
		/* Non-blocking socket: when the send buffer is full, wait for room (the
		 * client reads every echo before its next request, so room comes). */
		ssize_t off = 0;
		while (off < r) {
			ssize_t w = send(fd, buf + off, (size_t)(r - off), MSG_NOSIGNAL);
			if (w < 0) {
				struct pollfd pfd = { .fd = fd, .events = POLLOUT };
				if (errno == EINTR)
					continue;
				if ((errno == EAGAIN || errno == EWOULDBLOCK) &&
				    poll(&pfd, 1, PP_SOCK_TIMEOUT_S * 1000) > 0)
					continue;
				return -1;
			}
			off += w;
		}
		if (r < PP_MAX_MSG)
			return 0;
	}
}

static _Noreturn void run_server(const struct sockaddr_storage *ss, socklen_t len)
{
	struct epoll_event ev, evs[PP_EPOLL_BATCH];
	int one = 1, zero = 0;
	char *buf = malloc(PP_MAX_MSG);
	int lfd, ep;

	if (!buf)
		die("malloc");
	lfd = socket(ss->ss_family, SOCK_STREAM, 0);
	if (lfd < 0)
		die("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(lfd, (const struct sockaddr *)ss, len) < 0)
		die("bind");
	if (listen(lfd, 1024) < 0)
		die("listen");
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		die("epoll_create1");
	ev.events = EPOLLIN;
	ev.data.fd = lfd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll_ctl");
	printf("pingpong: listening\n");
	fflush(stdout);

	for (;;) {
		int n = epoll_wait(ep, evs, PP_EPOLL_BATCH, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
				if (c < 0)
					continue;
				setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
				ev.events = EPOLLIN;
				ev.data.fd = c;
				if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
					close(c);
				continue;
			}
			if (echo_once(fd, buf) < 0) {
				epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
				close(fd);
			}
		}
	}
}

static int run_client(const struct sockaddr_storage *ss, socklen_t len, long seconds, long msgsize)
{
	char *buf = malloc((size_t)msgsize);
	long long trips = 0;
	double t0, end, t;
	int fd;

	t = 0;

	if (!buf)
		die("malloc");
	memset(buf, 'p', (size_t)msgsize);
	fd = connect_to(ss, len);
	t0 = now();
	end = t0 + (double)seconds;
	do {
		send_all(fd, buf, (size_t)msgsize);
		recv_all(fd, buf, (size_t)msgsize);
		trips++;
		/* Reading the clock every 64 trips keeps it out of the measurement. */
	} while ((trips & 63) || (t = now()) < end);
	close(fd);
	printf("roundtrips_per_s %.1f\n", (double)trips / (t - t0));
	printf("roundtrips %lld seconds %.3f msgsize %ld\n", trips, t - t0, msgsize);
	free(buf);
	return 0;
}

static int run_connect(const struct sockaddr_storage *ss, socklen_t len, long count)
{
	char buf[PP_CONNECT_MSG * 4];
	double t0 = now(), t;
	long done = 0;

	memset(buf, 'c', PP_CONNECT_MSG);
	for (; done < count; done++) {
		int fd = connect_to(ss, len);
		size_t got = 0;
		ssize_t r;

		send_all(fd, buf, PP_CONNECT_MSG);
		if (shutdown(fd, SHUT_WR) < 0)
			die("shutdown");
		while ((r = recv(fd, buf, sizeof(buf), 0)) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				die("recv");
			}
			got += (size_t)r;
		}
		close(fd);
		if (got != PP_CONNECT_MSG) {
			fprintf(stderr, "pingpong: connection %ld: echo of %zu bytes, expected %d\n",
				done, got, PP_CONNECT_MSG);
			return 1;
		}
		if ((done & 255) == 0 && now() - t0 > PP_CONNECT_DEADLINE_S) {
			fprintf(stderr, "pingpong: deadline of %d s reached after %ld connections\n",
				PP_CONNECT_DEADLINE_S, done);
			break;
		}
	}
	t = now();
	printf("connections_per_s %.1f\n", (double)done / (t - t0));
	printf("connections %ld seconds %.3f\n", done, t - t0);
	return done == count ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (argc < 4)
		usage();
	signal(SIGPIPE, SIG_IGN);
	len = parse_addr(argv[2], argv[3], &ss);
	if (strcmp(argv[1], "server") == 0 && argc == 4)
		run_server(&ss, len);
	if (strcmp(argv[1], "client") == 0 && argc == 6)
		return run_client(&ss, len, parse_num(argv[4], 1, PP_MAX_SECONDS, "SECONDS"),
				  parse_num(argv[5], 1, PP_MAX_MSG, "MSGSIZE"));
	if (strcmp(argv[1], "connect") == 0 && argc == 5)
		return run_connect(&ss, len, parse_num(argv[4], 1, PP_MAX_COUNT, "COUNT"));
	usage();
	return 2;
}
