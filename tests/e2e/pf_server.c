// SPDX-License-Identifier: MIT
/*
 * pf_server: the long-lived server side of the end-to-end tests.
 *
 *   pf_server tcp|udp ADDR PORT
 *
 * ADDR "::" listens dual-stack (IPv4 clients arrive as v4-mapped addresses,
 * which the agent must still report as dotted IPv4); any other literal binds
 * that address only.
 *
 * TCP: single-threaded accept loop; each connection is read until EOF, then
 * answered with 16 bytes and closed. Single-threaded on purpose: every
 * reporter=dst line must name this one PID, and a forked child would be
 * another PID.
 * UDP: recvfrom loop; each datagram is answered with 16 bytes.
 *
 * Runs until killed. Prints "pf_server: listening" on stdout once bound, so a
 * test can wait for it instead of sleeping.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define PF_SERVER_REPLY_LEN 16
/* A stuck client must not wedge the single-threaded accept loop for long. */
#define PF_SERVER_CONN_TIMEOUT_S 2

static const char reply[PF_SERVER_REPLY_LEN] = "pf_server-reply";

static void die(const char *what)
{
	fprintf(stderr, "pf_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int open_socket(const char *addr, const char *port, int type)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	char *end;
	long p;
	int fd, one = 1, zero = 0;

	errno = 0;
	p = strtol(port, &end, 10);
	if (errno || *port == '\0' || *end != '\0' || p < 1 || p > 65535) {
		fprintf(stderr, "pf_server: bad port: %s\n", port);
		exit(1);
	}
	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)p);
		len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)p);
		len = sizeof(*sin6);
	} else {
		fprintf(stderr, "pf_server: bad address: %s\n", addr);
		exit(1);
	}

	fd = socket(ss.ss_family, type, 0);
	if (fd < 0)
		die("socket");
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		die("SO_REUSEADDR");
	if (ss.ss_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero)) < 0)
		die("IPV6_V6ONLY");
	if (bind(fd, (struct sockaddr *)&ss, len) < 0)
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 128) < 0)
		die("listen");
	return fd;
}

static void serve_tcp(int lfd)
{
	struct timeval tv = { .tv_sec = PF_SERVER_CONN_TIMEOUT_S };
	char buf[65536];

	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die("accept");
		}
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		for (;;) {
			ssize_t r = recv(fd, buf, sizeof(buf), 0);
			if (r > 0 || (r < 0 && errno == EINTR))
				continue;
			if (r == 0)
				send(fd, reply, sizeof(reply), MSG_NOSIGNAL);
			/* r < 0: timeout or reset; drop the connection quietly. */
			break;
		}
		close(fd);
	}
}

static void serve_udp(int fd)
{
	struct sockaddr_storage peer;
	char buf[65536];

	for (;;) {
		socklen_t plen = sizeof(peer);
		ssize_t r = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &plen);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			die("recvfrom");
		}
		sendto(fd, reply, sizeof(reply), 0, (struct sockaddr *)&peer, plen);
	}
}

int main(int argc, char **argv)
{
	int tcp, fd;

	if (argc != 4 || (strcmp(argv[1], "tcp") != 0 && strcmp(argv[1], "udp") != 0)) {
		fprintf(stderr, "usage: pf_server tcp|udp ADDR PORT\n");
		return 1;
	}
	tcp = strcmp(argv[1], "tcp") == 0;
	signal(SIGPIPE, SIG_IGN);
	fd = open_socket(argv[2], argv[3], tcp ? SOCK_STREAM : SOCK_DGRAM);
	printf("pf_server: listening\n");
	fflush(stdout);
	if (tcp)
		serve_tcp(fd);
	else
		serve_udp(fd);
	return 0;
}
