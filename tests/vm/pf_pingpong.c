// SPDX-License-Identifier: BSD-2-Clause
/*
 * The VM stage's load generator: a TCP ping-pong (one byte each way, one
 * connection, as many round trips as fit in the time) and a connection
 * churn (N sequential connections, one byte each way). The rate with and
 * without the agent, per hook tier, is what a hook costs a busy socket;
 * the churn is what the agent's CPU is measured against.
 *
 *   pf_pingpong server PORT              echo server on 127.0.0.1:PORT
 *   pf_pingpong pingpong ADDR PORT SECS  prints "pingpong <round trips/s> <round trips>"
 *   pf_pingpong conns ADDR PORT N        prints "conns <N> <seconds>"
 *
 * Loopback only: the guest has no other network. Every mode pins itself to
 * CPU 0, so the two ends of the ping-pong take turns on one CPU: the rate
 * then measures the work per message (where the hooks are) rather than
 * cross-CPU wake-ups, which under emulation are slow and erratic.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "pf_pingpong: '%s' is not a number from %ld to %ld\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static int dial(const char *addr, int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int fd, one = 1;

	if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1)
		return -1;
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One byte there, one byte back. */
static int round_trip(int fd)
{
	char c = 'x';

	if (write(fd, &c, 1) != 1)
		return -1;
	return read(fd, &c, 1) == 1 ? 0 : -1;
}

static int server(int port)
{
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	int lfd, one = 1;
	char buf[4096];

	signal(SIGPIPE, SIG_IGN);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 128)) {
		perror("pf_pingpong server");
		return 1;
	}
	/* Sequential: the clients are sequential too, and no fork per
	 * connection adds process events the agent would have to handle. */
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		ssize_t n;

		if (fd < 0)
			continue;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			if (write(fd, buf, (size_t)n) != n)
				break;
		close(fd);
	}
}

int main(int argc, char **argv)
{
	double t0, t;
	long n = 0, want;
	cpu_set_t cpus;
	int fd;

	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	sched_setaffinity(0, sizeof(cpus), &cpus);

	if (argc == 3 && !strcmp(argv[1], "server"))
		return server((int)num(argv[2], 1, 65535));
	if (argc == 5 && !strcmp(argv[1], "pingpong")) {
		double secs = (double)num(argv[4], 1, 3600);

		fd = dial(argv[2], (int)num(argv[3], 1, 65535));
		if (fd < 0) {
			perror("pf_pingpong connect");
			return 1;
		}
		t0 = now_s();
		do {
			for (int i = 0; i < 64; i++, n++)
				if (round_trip(fd)) {
					perror("pf_pingpong round trip");
					return 1;
				}
			t = now_s() - t0;
		} while (t < secs);
		close(fd);
		printf("pingpong %.0f %ld\n", n / t, n);
		return 0;
	}
	if (argc == 5 && !strcmp(argv[1], "conns")) {
		want = num(argv[4], 1, 10000000);
		t0 = now_s();
		for (n = 0; n < want; n++) {
			fd = dial(argv[2], (int)num(argv[3], 1, 65535));
			if (fd < 0 || round_trip(fd)) {
				perror("pf_pingpong conns");
				return 1;
			}
			close(fd);
		}
		printf("conns %ld %.3f\n", n, now_s() - t0);
		return 0;
	}
	fprintf(stderr, "usage: pf_pingpong server PORT | pingpong ADDR PORT SECS | "
			"conns ADDR PORT N\n");
	return 2;
}
