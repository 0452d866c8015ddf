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
 *   pingpong connect ADDR PORT COUNT [SECONDS]
 *       COUNT short connections in sequence (or as many as fit in SECONDS),
 *       each: connect, send 64 bytes, shutdown(SHUT_WR), read the echo until
 *       EOF, close. Prints "connections_per_s <rate>" and the totals. Measures
 *       the per-flow cost (socket creation, connect and close events, one
 *       flow-table entry each).
 *
 *   pingpong multi ADDR PORT SECONDS MSGSIZE NCONN
 *       NCONN connections, each with one MSGSIZE-byte request in flight at a
 *       time, driven by one epoll loop. Prints "roundtrips_per_s <rate>"
 *       summed over the connections.
 *
 *   pingpong udpserver ADDR PORT / pingpong udpclient ADDR PORT SECONDS MSGSIZE
 *       UDP echo and UDP request/response on one connected socket (a lost
 *       datagram is resent after 200 ms; none are lost on a veth).
 *
 *   pingpong udpquery ADDR PORT SECONDS MSGSIZE
 *       DNS-style against udpserver: a new socket per query (sendto, recv,
 *       close); prints "roundtrips_per_s <rate>".
 *
 *   pingpong hold ADDR PORT NPORTS COUNT SECONDS
 *       COUNT concurrent connections spread over ports PORT..PORT+NPORTS-1
 *       (one source port range holds ~64k per destination), each sends one
 *       byte and reads its echo; prints "held COUNT", keeps them SECONDS (or
 *       until SIGUSR1), closes them and prints "closed".
 *
 *   pingpong once ADDR PORT TAG
 *       One short connection (as in connect) from a fresh process; prints
 *       "PID SOURCE_PORT TAG" in one write before closing.
 *
 *   pingpong spawn ADDR PORT RATE SECONDS
 *       Starts RATE processes per second ("pingpong once ... t<N>", fresh
 *       exec each) for SECONDS, paced on the clock; waits for them all and
 *       prints "spawned N seconds T rate R failed F".
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
#include <spawn.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
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
#define PP_MAX_CONNS 200000
#define PP_MAX_RATE 20000
#define PP_MAX_PORTS 16

static void die(const char *what)
{
	fprintf(stderr, "pingpong: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr, "usage: pingpong server ADDR PORT\n"
			"       pingpong client ADDR PORT SECONDS MSGSIZE\n"
			"       pingpong connect ADDR PORT COUNT [SECONDS]\n"
			"       pingpong multi ADDR PORT SECONDS MSGSIZE NCONN\n"
			"       pingpong udpserver ADDR PORT\n"
			"       pingpong udpclient ADDR PORT SECONDS MSGSIZE\n"
			"       pingpong udpquery ADDR PORT SECONDS MSGSIZE\n"
			"       pingpong hold ADDR PORT NPORTS COUNT SECONDS\n"
			"       pingpong once ADDR PORT TAG\n"
			"       pingpong spawn ADDR PORT RATE SECONDS\n"
			"       pingpong cpu PID\n");
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

/* CPU time of a process in ns (the kernel's exact runtime sum, not ticks): the
 * client's own, or the server's read by bench/run.sh before and after a run
 * ("pingpong cpu PID"). Without IRQ time accounting the softirq work done on a
 * task's CPU in its context (veth delivery, the cgroup_skb programs) is in it,
 * so the pair's CPU per operation is the cost per operation even when other
 * jobs make the wall-clock rate jump. */
static long long cpu_ns(pid_t pid)
{
	struct timespec ts;
	clockid_t id = CLOCK_PROCESS_CPUTIME_ID;

	if (pid && clock_getcpuclockid(pid, &id) != 0)
		return -1;
	if (clock_gettime(id, &ts) < 0)
		return -1;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void print_cpu(long long c0, long long ops)
{
	if (ops > 0)
		printf("client_cpu_ns_per_op %.1f\n", (double)(cpu_ns(0) - c0) / (double)ops);
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
	if (listen(lfd, 4096) < 0)
		die("listen");
	if (fcntl(lfd, F_SETFL, O_NONBLOCK) < 0)
		die("fcntl");
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
				/* Drain the accept queue: with thousands of clients
				 * connecting at once, one accept per wake-up lets the
				 * queue overflow and handshakes stall in retransmits. */
				int c;
				while ((c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
					setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
					ev.events = EPOLLIN;
					ev.data.fd = c;
					if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) < 0)
						close(c);
				}
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
	long long trips = 0, c0;
	double t0, end, t;
	int fd;

	t = 0;

	if (!buf)
		die("malloc");
	memset(buf, 'p', (size_t)msgsize);
	fd = connect_to(ss, len);
	c0 = cpu_ns(0);
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
	print_cpu(c0, trips);
	free(buf);
	return 0;
}

static int run_connect(const struct sockaddr_storage *ss, socklen_t len, long count, long seconds)
{
	char buf[PP_CONNECT_MSG * 4];
	long long c0 = cpu_ns(0);
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
		if (seconds && (done & 15) == 15 && now() - t0 >= (double)seconds) {
			done++;
			count = done;
			break;
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
	print_cpu(c0, done);
	return done == count ? 0 : 1;
}

/* The hold mode and its servers need far more descriptors than the usual 1,024:
 * ask for plenty, and settle for the hard limit when raising it is not allowed
 * (no CAP_SYS_RESOURCE); bench/run.sh spreads connections over processes. */
static void raise_fd_limit(void)
{
	struct rlimit rl = { .rlim_cur = 2 * PP_MAX_CONNS + 1024, .rlim_max = 2 * PP_MAX_CONNS + 1024 };

	if (setrlimit(RLIMIT_NOFILE, &rl) < 0 && getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* NCONN connections, one request in flight on each; a transaction is counted when
 * its whole response has arrived, then the next request goes out at once. */
static int run_multi(const struct sockaddr_storage *ss, socklen_t len, long seconds, long msgsize,
		     long nconn)
{
	struct epoll_event ev, evs[PP_EPOLL_BATCH];
	size_t *got = calloc((size_t)nconn, sizeof(*got));
	int *fds = calloc((size_t)nconn, sizeof(*fds));
	char *buf = malloc(PP_MAX_MSG);
	long long trips = 0, c0;
	double t0, t, end;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	if (!got || !fds || !buf || ep < 0)
		die("multi setup");
	memset(buf, 'm', PP_MAX_MSG);
	for (long i = 0; i < nconn; i++) {
		fds[i] = connect_to(ss, len);
		ev.events = EPOLLIN;
		ev.data.u64 = (uint64_t)i;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) < 0)
			die("epoll_ctl");
	}
	c0 = cpu_ns(0);
	t0 = now();
	end = t0 + (double)seconds;
	for (long i = 0; i < nconn; i++)
		send_all(fds[i], buf, (size_t)msgsize);
	do {
		int n = epoll_wait(ep, evs, PP_EPOLL_BATCH, PP_SOCK_TIMEOUT_S * 1000);
		if (n < 0 && errno != EINTR)
			die("epoll_wait");
		if (n == 0) {
			fprintf(stderr, "pingpong: multi: no response for %d s\n", PP_SOCK_TIMEOUT_S);
			return 1;
		}
		for (int k = 0; k < n; k++) {
			long i = (long)evs[k].data.u64;
			ssize_t r = recv(fds[i], buf, (size_t)msgsize - got[i], MSG_DONTWAIT);
			if (r == 0) {
				fprintf(stderr, "pingpong: server closed the connection early\n");
				return 1;
			}
			if (r < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;
				die("recv");
			}
			got[i] += (size_t)r;
			if (got[i] == (size_t)msgsize) {
				got[i] = 0;
				trips++;
				send_all(fds[i], buf, (size_t)msgsize);
			}
		}
	} while ((t = now()) < end);
	for (long i = 0; i < nconn; i++)
		close(fds[i]);
	printf("roundtrips_per_s %.1f\n", (double)trips / (t - t0));
	printf("roundtrips %lld seconds %.3f msgsize %ld conns %ld\n", trips, t - t0, msgsize, nconn);
	print_cpu(c0, trips);
	return 0;
}

static _Noreturn void run_udp_server(const struct sockaddr_storage *ss, socklen_t len)
{
	char *buf = malloc(PP_MAX_MSG);
	int fd = socket(ss->ss_family, SOCK_DGRAM, 0);

	if (!buf || fd < 0)
		die("udp socket");
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		die("bind");
	printf("pingpong: listening\n");
	fflush(stdout);
	for (;;) {
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t r = recvfrom(fd, buf, PP_MAX_MSG, 0, (struct sockaddr *)&peer, &plen);
		if (r < 0)
			continue;
		sendto(fd, buf, (size_t)r, 0, (struct sockaddr *)&peer, plen);
	}
}

/* A UDP client's result: @missed counts the requests that timed out
 * (@what names them as the client treats them). */
static void print_udp_result(long long trips, double secs, long msgsize, const char *what,
			     long long missed, long long c0)
{
	printf("roundtrips_per_s %.1f\n", (double)trips / secs);
	printf("roundtrips %lld seconds %.3f msgsize %ld %s %lld\n", trips, secs, msgsize, what,
	       missed);
	print_cpu(c0, trips);
}

/* The answer to a UDP request: 1 when it came, 0 when the receive timeout
 * (SO_RCVTIMEO) or a signal ended the wait; any other error ends the run. */
static int udp_answered(int fd, char *buf, long msgsize)
{
	if (recv(fd, buf, (size_t)msgsize, 0) >= 0)
		return 1;
	if (errno != EAGAIN && errno != EINTR)
		die("recv");
	return 0;
}

static int run_udp_client(const struct sockaddr_storage *ss, socklen_t len, long seconds,
			  long msgsize)
{
	struct timeval tv = { .tv_usec = 200000 };
	char *buf = malloc((size_t)msgsize);
	long long trips = 0, resent = 0, c0;
	double t0, t = 0, end;
	int fd = socket(ss->ss_family, SOCK_DGRAM, 0);

	if (!buf || fd < 0)
		die("udp socket");
	memset(buf, 'u', (size_t)msgsize);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (const struct sockaddr *)ss, len) < 0)
		die("connect");
	c0 = cpu_ns(0);
	t0 = now();
	end = t0 + (double)seconds;
	do {
		if (send(fd, buf, (size_t)msgsize, 0) < 0)
			die("send");
		if (udp_answered(fd, buf, msgsize))
			trips++;
		else
			resent++;
	} while ((trips & 63) || (t = now()) < end);
	print_udp_result(trips, t - t0, msgsize, "resent", resent, c0);
	return 0;
}

/* DNS-style: every query a new unconnected socket, one sendto() and one
 * recv(), then close(): the per-socket cost of UDP (creation, the claim of
 * its first and only message, its release). */
static int run_udp_query(const struct sockaddr_storage *ss, socklen_t len, long seconds,
			 long msgsize)
{
	struct timeval tv = { .tv_usec = 200000 };
	char *buf = malloc((size_t)msgsize);
	long long trips = 0, resent = 0, c0;
	double t0, t = 0, end;

	if (!buf)
		die("malloc");
	memset(buf, 'q', (size_t)msgsize);
	c0 = cpu_ns(0);
	t0 = now();
	end = t0 + (double)seconds;
	do {
		int fd = socket(ss->ss_family, SOCK_DGRAM, 0);

		if (fd < 0)
			die("udp socket");
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		if (sendto(fd, buf, (size_t)msgsize, 0, (const struct sockaddr *)ss, len) < 0)
			die("sendto");
		if (udp_answered(fd, buf, msgsize))
			trips++;
		else
			resent++;
		close(fd);
	} while ((trips & 63) || (t = now()) < end);
	print_udp_result(trips, t - t0, msgsize, "unanswered", resent, c0);
	return 0;
}

static volatile sig_atomic_t hold_release;
static void on_usr1(int sig)
{
	(void)sig;
	hold_release = 1;
}

/* Many concurrent flows: every connection carries one byte each way, so the
 * kernel side has counted it, then they all stay open. */
static int run_hold(const struct sockaddr_storage *ss, socklen_t len, long nports, long count,
		    long seconds)
{
	int *fds = calloc((size_t)count, sizeof(*fds));
	struct sockaddr_storage dst = *ss;
	char c = 'h';
	double t0;

	if (!fds)
		die("calloc");
	signal(SIGUSR1, on_usr1);
	t0 = now();
	for (long i = 0; i < count; i++) {
		uint16_t base = ntohs(((struct sockaddr_in *)ss)->sin_port);
		uint16_t port = (uint16_t)(base + i % nports);

		if (dst.ss_family == AF_INET)
			((struct sockaddr_in *)&dst)->sin_port = htons(port);
		else
			((struct sockaddr_in6 *)&dst)->sin6_port = htons(port);
		fds[i] = connect_to(&dst, len);
		send_all(fds[i], &c, 1);
		recv_all(fds[i], &c, 1);
		if ((i & 1023) == 0 && now() - t0 > PP_CONNECT_DEADLINE_S) {
			fprintf(stderr, "pingpong: hold: deadline after %ld connections\n", i);
			return 1;
		}
	}
	printf("held %ld seconds %.3f\n", count, now() - t0);
	fflush(stdout);
	for (long s = 0; s < seconds * 10 && !hold_release; s++)
		usleep(100000);
	for (long i = 0; i < count; i++)
		close(fds[i]);
	printf("closed\n");
	fflush(stdout);
	return 0;
}

static int run_once(const struct sockaddr_storage *ss, socklen_t len, const char *tag)
{
	struct sockaddr_storage me;
	socklen_t mlen = sizeof(me);
	char buf[PP_CONNECT_MSG * 2], line[128];
	int fd = connect_to(ss, len), n;
	uint16_t port;
	ssize_t r;

	if (getsockname(fd, (struct sockaddr *)&me, &mlen) < 0)
		die("getsockname");
	port = ntohs(me.ss_family == AF_INET ? ((struct sockaddr_in *)&me)->sin_port
					     : ((struct sockaddr_in6 *)&me)->sin6_port);
	memset(buf, 'o', PP_CONNECT_MSG);
	send_all(fd, buf, PP_CONNECT_MSG);
	shutdown(fd, SHUT_WR);
	while ((r = recv(fd, buf, sizeof(buf), 0)) > 0)
		;
	close(fd);
	/* One write below PIPE_BUF to an O_APPEND file: lines of concurrent
	 * processes never interleave. */
	n = snprintf(line, sizeof(line), "%d %u %s\n", (int)getpid(), port, tag);
	if (write(1, line, (size_t)n) != n)
		return 1;
	return 0;
}

extern char **environ;

/* Churn: RATE fresh processes per second, each one exec of this program in
 * "once" mode. Children are started on a clock (child i at t0 + i/RATE) so a
 * slow start does not lower the rate later, and reaped as they exit. */
static int run_spawn(const char *addr, const char *port, long rate, long seconds)
{
	long total = rate * seconds, started = 0, failed = 0, running = 0;
	char self[4096], tag[32];
	char *argv[6];
	double t0, t;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		die("readlink /proc/self/exe");
	self[n] = '\0';
	argv[0] = self;
	argv[1] = "once";
	argv[2] = (char *)addr;
	argv[3] = (char *)port;
	argv[4] = tag;
	argv[5] = NULL;
	t0 = now();
	while (started < total) {
		double due = t0 + (double)started / (double)rate;
		int st;
		pid_t pid;

		while (running > 0 && (pid = waitpid(-1, &st, WNOHANG)) > 0) {
			running--;
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				failed++;
		}
		t = now();
		if (t < due) {
			usleep((useconds_t)((due - t) * 1e6));
			continue;
		}
		if (t - t0 > (double)seconds + PP_CONNECT_DEADLINE_S)
			break;
		snprintf(tag, sizeof(tag), "t%ld", started);
		if (posix_spawn(&pid, self, NULL, NULL, argv, environ) != 0) {
			failed++;
			usleep(1000);
		} else {
			running++;
		}
		started++;
	}
	t = now();
	while (running > 0) {
		int st;
		if (wait(&st) < 0)
			break;
		running--;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed++;
	}
	fprintf(stderr, "spawned %ld seconds %.3f rate %.1f failed %ld\n", started, t - t0,
		(double)started / (t - t0), failed);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (argc == 3 && strcmp(argv[1], "cpu") == 0) {
		long long ns = cpu_ns((pid_t)parse_num(argv[2], 1, 1 << 22, "PID"));

		if (ns < 0)
			die("clock_getcpuclockid");
		printf("%lld\n", ns);
		return 0;
	}
	if (argc < 4)
		usage();
	signal(SIGPIPE, SIG_IGN);
	raise_fd_limit();
	len = parse_addr(argv[2], argv[3], &ss);
	if (strcmp(argv[1], "server") == 0 && argc == 4)
		run_server(&ss, len);
	if (strcmp(argv[1], "client") == 0 && argc == 6)
		return run_client(&ss, len, parse_num(argv[4], 1, PP_MAX_SECONDS, "SECONDS"),
				  parse_num(argv[5], 1, PP_MAX_MSG, "MSGSIZE"));
	if (strcmp(argv[1], "connect") == 0 && (argc == 5 || argc == 6))
		return run_connect(&ss, len, parse_num(argv[4], 1, PP_MAX_COUNT, "COUNT"),
				   argc == 6 ? parse_num(argv[5], 1, PP_MAX_SECONDS, "SECONDS") : 0);
	if (strcmp(argv[1], "multi") == 0 && argc == 7)
		return run_multi(&ss, len, parse_num(argv[4], 1, PP_MAX_SECONDS, "SECONDS"),
				 parse_num(argv[5], 1, PP_MAX_MSG, "MSGSIZE"),
				 parse_num(argv[6], 1, 1024, "NCONN"));
	if (strcmp(argv[1], "udpserver") == 0 && argc == 4)
		run_udp_server(&ss, len);
	if (strcmp(argv[1], "udpclient") == 0 && argc == 6)
		return run_udp_client(&ss, len, parse_num(argv[4], 1, PP_MAX_SECONDS, "SECONDS"),
				      parse_num(argv[5], 1, PP_MAX_MSG, "MSGSIZE"));
	if (strcmp(argv[1], "udpquery") == 0 && argc == 6)
		return run_udp_query(&ss, len, parse_num(argv[4], 1, PP_MAX_SECONDS, "SECONDS"),
				     parse_num(argv[5], 1, PP_MAX_MSG, "MSGSIZE"));
	if (strcmp(argv[1], "hold") == 0 && argc == 7)
		return run_hold(&ss, len, parse_num(argv[4], 1, PP_MAX_PORTS, "NPORTS"),
				parse_num(argv[5], 1, PP_MAX_CONNS, "COUNT"),
				parse_num(argv[6], 1, PP_MAX_SECONDS, "SECONDS"));
	if (strcmp(argv[1], "once") == 0 && argc == 5)
		return run_once(&ss, len, argv[4]);
	if (strcmp(argv[1], "spawn") == 0 && argc == 6)
		return run_spawn(argv[2], argv[3], parse_num(argv[4], 1, PP_MAX_RATE, "RATE"),
				 parse_num(argv[5], 1, 60, "SECONDS"));
	usage();
	return 2;
}
