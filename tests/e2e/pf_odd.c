// SPDX-License-Identifier: MIT
/*
 * pf_odd: the unusual processes of the identity tests (test_identity.py).
 * Each mode makes TCP connections to a pf_server (connect, send NBYTES,
 * shutdown, read until EOF) in a way that stresses how the agent names
 * the process that owns a flow.
 *
 *   pf_odd connect  HOST PORT [extra...]          one connection (a plain client)
 *   pf_odd wait     HOST PORT [extra...]          print "pf_odd: waiting", read a line
 *                                                 on stdin, then one connection
 *   pf_odd threads  HOST PORT N [extra...]        N threads, each renamed "worker-K"
 *                                                 (PR_SET_NAME), one connection each
 *   pf_odd retitle  HOST PORT TITLE [extra...]    overwrite the argument area with
 *                                                 TITLE (as setproctitle does), then
 *                                                 one connection
 *   pf_odd execfail HOST PORT BAD... -- [extra]   execve() each BAD path (all must
 *                                                 fail), then one connection
 *   pf_odd fexec    HOW CLIENT HOST PORT TAG      run CLIENT ("tcp HOST PORT 100 TAG")
 *                                                 by HOW: fexecve | execveat (dirfd +
 *                                                 name) | execveat-empty (AT_EMPTY_PATH)
 *   pf_odd prefork  PORT N [extra...]             listen on [::]:PORT, fork N children
 *                                                 that each accept and serve one
 *                                                 connection; print "child PID" for each
 *   pf_odd reuse    CLIENT HOST PORT TAG          run CLIENT twice under one PID: the
 *                                                 second fork is given the first's PID
 *                                                 through /proc/sys/kernel/ns_last_pid
 *                                                 (of this PID namespace); prints
 *                                                 "A PID" and "B PID"
 *   pf_odd udpexec  NEXT HOST PORT [extra...]    one UDP exchange with a pf_server (send
 *                                                 NBYTES, read the reply), print
 *                                                 "pf_odd: sent", read a line on stdin,
 *                                                 then exec NEXT (a pf_odd) as "udpfd FD
 *                                                 HOST PORT after" with the socket open
 *   pf_odd udpfd    FD HOST PORT [extra...]       one UDP exchange on the inherited
 *                                                 socket FD, print "pf_odd: sent"
 *   pf_odd udpfork  HOST PORT [extra...]          one UDP exchange, print "pf_odd: sent",
 *                                                 read a line on stdin; fork a child that
 *                                                 makes one exchange on the same socket,
 *                                                 prints "pf_odd: sent", then "child PID
 *                                                 sent" and exits; read
 *                                                 a line; one more exchange in the parent,
 *                                                 print "pf_odd: sent"
 *   pf_odd tcpexec  NEXT HOST PORT [extra...]    the same over TCP: connect, send NBYTES,
 *                                                 print "pf_odd: sent", read a line on
 *                                                 stdin, exec NEXT as "tcpfd FD HOST PORT
 *                                                 after" with the connection open
 *   pf_odd tcpfd    FD HOST PORT [extra...]       send NBYTES on the inherited connection
 *                                                 FD, shut it down, read until EOF, print
 *                                                 "pf_odd: sent"
 *   pf_odd storm    CLIENT HOST PORT COUNT PAR TAG
 *                                                 COUNT runs of CLIENT ("tcp HOST PORT 64
 *                                                 TAG-I"), at most PAR at a time, as fast
 *                                                 as they go; prints "run I PID RC US"
 *                                                 (US: fork to reap) and a summary
 *
 * Every error prints one line on stderr and exits 1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define NBYTES 100

static int die(const char *what)
{
	fprintf(stderr, "pf_odd: %s: %s\n", what, strerror(errno));
	exit(1);
}

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || !*s || *end || v < lo || v > hi) {
		fprintf(stderr, "pf_odd: bad number '%s'\n", s);
		exit(1);
	}
	return v;
}

/* HOST:PORT (IPv4 or IPv6, numeric) into @ss and *@len. Returns 0 or -1. */
static int sockaddr_of(const char *host, const char *port, struct sockaddr_storage *ss,
		       socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)num(port, 1, 65535));
		*len = sizeof(*sin);
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)num(port, 1, 65535));
		*len = sizeof(*sin6);
	} else {
		fprintf(stderr, "pf_odd: bad address %s\n", host);
		return -1;
	}
	return 0;
}

/* One TCP exchange with a pf_server. Returns 0 or -1. */
static int exchange(const char *host, const char *port)
{
	struct sockaddr_storage ss;
	struct timeval tv = {.tv_sec = 2};
	char buf[NBYTES];
	socklen_t len;
	int fd;

	memset(buf, 'o', sizeof(buf));
	if (sockaddr_of(host, port, &ss, &len))
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 ||
	    send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf) ||
	    shutdown(fd, SHUT_WR) < 0) {
		close(fd);
		return -1;
	}
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	close(fd);
	return 0;
}

/* ---- a UDP socket kept across exec ---- */

/* Send NBYTES to HOST:PORT on @fd and wait (2 s at most) for the reply. */
static int udp_exchange(int fd, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	struct timeval tv = {.tv_sec = 2};
	char buf[NBYTES];
	socklen_t len;

	memset(buf, 'u', sizeof(buf));
	if (sockaddr_of(host, port, &ss, &len))
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	/* sendto() with an address, not connect(): each send is an
	 * unconnected one, as a DNS client's. */
	if (sendto(fd, buf, sizeof(buf), 0, (struct sockaddr *)&ss, len) != (ssize_t)sizeof(buf) ||
	    recv(fd, buf, sizeof(buf), 0) <= 0)
		return -1;
	printf("pf_odd: sent\n");
	return 0;
}

static int udpexec(const char *next, const char *host, const char *port)
{
	char line[64], fdstr[16];
	struct in6_addr probe;
	int fd;

	fd = socket(inet_pton(AF_INET6, host, &probe) == 1 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	if (udp_exchange(fd, host, port))
		die("udp exchange");
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	snprintf(fdstr, sizeof(fdstr), "%d", fd);
	execl(next, next, "udpfd", fdstr, host, port, "after", (char *)NULL);
	return die("exec");
}

/* One UDP socket used in turn by a process, its child, and the process
 * again: each exchange belongs to whoever sent it. */
static int udpfork(const char *host, const char *port)
{
	char line[64];
	struct in6_addr probe;
	pid_t child;
	int fd, st;

	fd = socket(inet_pton(AF_INET6, host, &probe) == 1 ? AF_INET6 : AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	if (udp_exchange(fd, host, port))
		die("udp exchange");
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	child = fork();
	if (child < 0)
		die("fork");
	if (!child) {
		if (udp_exchange(fd, host, port))
			_exit(1);
		printf("child %d sent\n", (int)getpid());
		fflush(stdout);
		_exit(0);
	}
	if (waitpid(child, &st, 0) != child || !WIFEXITED(st) || WEXITSTATUS(st))
		die("the child's exchange");
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	if (udp_exchange(fd, host, port))
		die("udp exchange after the child");
	return 0;
}

static int tcpexec(const char *next, const char *host, const char *port)
{
	struct sockaddr_storage ss;
	char buf[NBYTES], line[64], fdstr[16];
	socklen_t len;
	int fd;

	memset(buf, 't', sizeof(buf));
	if (sockaddr_of(host, port, &ss, &len))
		return 1;
	fd = socket(ss.ss_family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, len) < 0 ||
	    send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf))
		die("tcp connect and send");
	printf("pf_odd: sent\n");
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	snprintf(fdstr, sizeof(fdstr), "%d", fd);
	execl(next, next, "tcpfd", fdstr, host, port, "after", (char *)NULL);
	return die("exec");
}

static int tcpfd(int fd)
{
	struct timeval tv = {.tv_sec = 2};
	char buf[NBYTES];

	memset(buf, 'f', sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (send(fd, buf, sizeof(buf), MSG_NOSIGNAL) != (ssize_t)sizeof(buf) ||
	    shutdown(fd, SHUT_WR) < 0)
		die("send on the inherited connection");
	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	printf("pf_odd: sent\n");
	return 0;
}

static int one(const char *host, const char *port)
{
	if (exchange(host, port))
		die("exchange");
	return 0;
}

/* ---- threads ---- */

struct thr {
	const char *host, *port;
	int k, rc;
};

static void *worker(void *arg)
{
	struct thr *t = arg;
	char name[16];

	snprintf(name, sizeof(name), "worker-%d", t->k);
	prctl(PR_SET_NAME, name, 0, 0, 0);
	t->rc = exchange(t->host, t->port);
	return NULL;
}

static int threads(const char *host, const char *port, int n)
{
	pthread_t tid[64];
	struct thr t[64];
	int bad = 0;

	for (int i = 0; i < n; i++) {
		t[i] = (struct thr){host, port, i, 0};
		if (pthread_create(&tid[i], NULL, worker, &t[i]))
			die("pthread_create");
	}
	for (int i = 0; i < n; i++) {
		pthread_join(tid[i], NULL);
		bad |= t[i].rc;
	}
	if (bad) {
		fprintf(stderr, "pf_odd: a thread's exchange failed\n");
		return 1;
	}
	return 0;
}

/* ---- retitle ---- */

static int retitle(int argc, char **argv, const char *title)
{
	char *start = argv[0], *end = argv[argc - 1] + strlen(argv[argc - 1]);
	size_t room = (size_t)(end - start), n = strlen(title);
	char host[64], port[16];

	/* Keep what we still need before the area is overwritten. */
	snprintf(host, sizeof(host), "%s", argv[2]);
	snprintf(port, sizeof(port), "%s", argv[3]);
	if (n > room)
		n = room;
	memset(start, 0, room);
	memcpy(start, title, n);
	prctl(PR_SET_NAME, "retitled", 0, 0, 0);
	return one(host, port);
}

/* ---- execfail ---- */

static int execfail(int argc, char **argv)
{
	int i;

	for (i = 4; i < argc && strcmp(argv[i], "--"); i++) {
		char *av[] = {argv[i], "should-not-run", NULL};

		execve(argv[i], av, environ);
		/* Still here: the exec failed, as it should. */
		fprintf(stderr, "pf_odd: execve %s failed as expected: %s\n", argv[i],
			strerror(errno));
	}
	return one(argv[2], argv[3]);
}

/* ---- fexec ---- */

static int fexec(const char *how, const char *client, const char *host, const char *port,
		 const char *tag)
{
	char *av[] = {(char *)client, "tcp", (char *)host, (char *)port, "100", (char *)tag, NULL};
	char dir[PATH_MAX];
	const char *slash = strrchr(client, '/');
	int fd;

	if (!strcmp(how, "fexecve")) {
		fd = open(client, O_RDONLY);
		if (fd < 0)
			die("open");
		fexecve(fd, av, environ);
		die("fexecve");
	}
	if (!strcmp(how, "execveat-empty")) {
		fd = open(client, O_RDONLY);
		if (fd < 0)
			die("open");
		syscall(SYS_execveat, fd, "", av, environ, AT_EMPTY_PATH);
		die("execveat");
	}
	if (!strcmp(how, "execveat")) {
		if (!slash || (size_t)(slash - client) >= sizeof(dir))
			die("client path");
		memcpy(dir, client, (size_t)(slash - client));
		dir[slash - client] = '\0';
		fd = open(dir, O_RDONLY | O_DIRECTORY);
		if (fd < 0)
			die("open dir");
		syscall(SYS_execveat, fd, slash + 1, av, environ, 0);
		die("execveat");
	}
	fprintf(stderr, "pf_odd: fexec: unknown way '%s'\n", how);
	return 1;
}

/* ---- prefork ---- */

static int prefork(const char *port, int n)
{
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
	int fd, one_ = 1, zero = 0;
	char buf[4096];

	a.sin6_port = htons((uint16_t)num(port, 1, 65535));
	fd = socket(AF_INET6, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one_, sizeof(one_));
	setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(fd, 64) < 0)
		die("bind/listen");
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0)
			die("fork");
		if (pid == 0) {
			/* The child: no exec, one connection, then exit. */
			int c = accept(fd, NULL, NULL);
			struct timeval tv = {.tv_sec = 2};

			if (c < 0)
				_exit(1);
			setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
			while (recv(c, buf, sizeof(buf), 0) > 0)
				;
			send(c, "pf_odd-prefork!!", 16, MSG_NOSIGNAL);
			close(c);
			_exit(0);
		}
		printf("child %d\n", (int)pid);
	}
	printf("pf_odd: listening\n");
	fflush(stdout);
	while (wait(NULL) > 0)
		;
	return 0;
}

/* ---- reuse ---- */

static pid_t run_client(const char *client, const char *host, const char *port, const char *tag)
{
	char *av[] = {(char *)client, "tcp", (char *)host, (char *)port, "100", (char *)tag, NULL};
	pid_t pid = fork();

	if (pid == 0) {
		execve(client, av, environ);
		_exit(127);
	}
	return pid;
}

static int reap(pid_t pid)
{
	int st;

	if (waitpid(pid, &st, 0) != pid)
		return -1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static int reuse(const char *client, const char *host, const char *port, const char *tag)
{
	char ta[128], tb[128], v[32];
	pid_t a, b;

	snprintf(ta, sizeof(ta), "reuse-A-%s", tag);
	snprintf(tb, sizeof(tb), "reuse-B-%s", tag);
	a = run_client(client, host, port, ta);
	if (a < 0 || reap(a) != 0)
		die("first client");
	/* The next PID handed out is ns_last_pid + 1. Another fork on the
	 * host can take it first: then the child goes at once and we retry. */
	for (int tries = 0; tries < 200; tries++) {
		int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
		int n = snprintf(v, sizeof(v), "%d", (int)a - 1);

		if (fd < 0)
			die("open ns_last_pid");
		if (write(fd, v, (size_t)n) != n)
			die("write ns_last_pid");
		close(fd);
		b = fork();
		if (b < 0)
			die("fork");
		if (b == 0) {
			if (getpid() == a) {
				char *av[] = {(char *)client, "tcp", (char *)host, (char *)port,
					      "100",	      tb,    NULL};

				execve(client, av, environ);
				_exit(127);
			}
			_exit(0);
		}
		if (b == a) {
			if (reap(b) != 0)
				die("second client");
			printf("A %d\nB %d\n", (int)a, (int)b);
			return 0;
		}
		reap(b);
	}
	fprintf(stderr, "pf_odd: could not get PID %d again\n", (int)a);
	return 1;
}

/* ---- storm ---- */

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int storm(const char *client, const char *host, const char *port, int count, int par,
		 const char *tag)
{
	pid_t *pids = calloc((size_t)count, sizeof(*pids));
	double *t0 = calloc((size_t)count, sizeof(*t0)), start, end;
	int *rc = calloc((size_t)count, sizeof(*rc));
	double *us = calloc((size_t)count, sizeof(*us));
	int started = 0, running = 0, done = 0, failed = 0;
	char arg[128];

	if (!pids || !t0 || !rc || !us)
		die("calloc");
	start = now_us();
	while (done < count) {
		while (running < par && started < count) {
			char *av[] = {(char *)client, "tcp", (char *)host, (char *)port,
				      "64",	      arg,   NULL};
			pid_t p;

			snprintf(arg, sizeof(arg), "%s-%d", tag, started);
			t0[started] = now_us();
			p = fork();
			if (p < 0)
				die("fork");
			if (p == 0) {
				execve(client, av, environ);
				_exit(127);
			}
			pids[started++] = p;
			running++;
		}
		{
			int st;
			pid_t p = waitpid(-1, &st, 0);
			double t = now_us();

			if (p < 0)
				die("waitpid");
			for (int i = 0; i < started; i++) {
				if (pids[i] == p) {
					rc[i] =
					    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
					us[i] = t - t0[i];
					failed += rc[i] != 0;
					break;
				}
			}
			running--;
			done++;
		}
	}
	end = now_us();
	for (int i = 0; i < count; i++)
		printf("run %d %d %d %.0f\n", i, (int)pids[i], rc[i], us[i]);
	printf("storm %d runs in %.3f s: %.0f per second, %d failed\n", count, (end - start) / 1e6,
	       count / ((end - start) / 1e6), failed);
	free(pids);
	free(t0);
	free(rc);
	free(us);
	return failed ? 1 : 0;
}

int main(int argc, char **argv)
{
	const char *m = argc > 1 ? argv[1] : "";

	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(m, "connect") && argc >= 4)
		return one(argv[2], argv[3]);
	if (!strcmp(m, "wait") && argc >= 4) {
		char line[64];

		printf("pf_odd: waiting\n");
		if (!fgets(line, sizeof(line), stdin))
			return 1;
		return one(argv[2], argv[3]);
	}
	if (!strcmp(m, "threads") && argc >= 5)
		return threads(argv[2], argv[3], (int)num(argv[4], 1, 64));
	if (!strcmp(m, "retitle") && argc >= 5)
		return retitle(argc, argv, argv[4]);
	if (!strcmp(m, "execfail") && argc >= 4)
		return execfail(argc, argv);
	if (!strcmp(m, "fexec") && argc == 7)
		return fexec(argv[2], argv[3], argv[4], argv[5], argv[6]);
	if (!strcmp(m, "prefork") && argc >= 4)
		return prefork(argv[2], (int)num(argv[3], 1, 64));
	if (!strcmp(m, "reuse") && argc == 6)
		return reuse(argv[2], argv[3], argv[4], argv[5]);
	if (!strcmp(m, "udpexec") && argc >= 5)
		return udpexec(argv[2], argv[3], argv[4]);
	if (!strcmp(m, "udpfd") && argc >= 5) {
		if (udp_exchange((int)num(argv[2], 0, 1 << 20), argv[3], argv[4]))
			die("udp exchange on the inherited socket");
		return 0;
	}
	if (!strcmp(m, "udpfork") && argc >= 4)
		return udpfork(argv[2], argv[3]);
	if (!strcmp(m, "tcpexec") && argc >= 5)
		return tcpexec(argv[2], argv[3], argv[4]);
	if (!strcmp(m, "tcpfd") && argc >= 5)
		return tcpfd((int)num(argv[2], 0, 1 << 20));
	if (!strcmp(m, "storm") && argc == 8)
		return storm(argv[2], argv[3], argv[4], (int)num(argv[5], 1, 100000),
			     (int)num(argv[6], 1, 256), argv[7]);
	fprintf(stderr, "usage: see the comment at the top of pf_odd.c\n");
	return 1;
}
