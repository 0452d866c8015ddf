// SPDX-License-Identifier: BSD-2-Clause
/*
 * The end-to-end test the VM stage runs inside each guest, once per hook
 * tier. C, not Python: the guest is a busybox initramfs.
 *
 * One binary, three roles, chosen by the name it is run under (the
 * initramfs holds it as /bin/pf_vm_e2e, /bin/pf_client and /bin/pf_server,
 * links in one directory, so the agent must report each role's own path):
 *
 *   pf_vm_e2e e2e AGENT TIER OUTDIR PORT
 *       start the agent on TIER with --include-loopback, a TCP+UDP server
 *       on 127.0.0.1 and ::1, one short-lived client per case (TCP and UDP,
 *       IPv4 and IPv6, and a socket kept across an exec) with distinctive
 *       arguments; stop the agent; check
 *       each client's "src" line (process_name, process_args, process_id,
 *       bytes_out) and the server's "dst" line (process_name, process_id,
 *       bytes_in). Prints one PASS or FAIL line per check and exits 1 on
 *       any failure.
 *   pf_vm_e2e bench AGENT TIER|none PINGPONG PORT SECS CONNS
 *       the ping-pong rate with the agent on TIER (or without it), and, for
 *       CONNS connections (0: skip), the agent's CPU time (utime+stime) and
 *       the BPF time per round trip and per connection (kernel.bpf_stats,
 *       in a second ping-pong run after the measured one: the statistics
 *       cost every program run two clock reads).
 *   pf_server PORT
 *   pf_client MODE ADDR PORT BYTES TAG...   (see client())
 *
 * The guest has only loopback: every address here is 127.0.0.1 or ::1.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <limits.h>
#include <unistd.h>

/* The roles live next to this binary (links to it): /bin in the guest. */
static char client_path[PATH_MAX + 16], server_path[PATH_MAX + 16];
#define CLIENT_PATH client_path
#define SERVER_PATH server_path

static long num(const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < lo || v > hi) {
		fprintf(stderr, "pf_vm_e2e: '%s' is not a number from %ld to %ld\n", s, lo, hi);
		exit(2);
	}
	return v;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ---- roles: server and client ------------------------------------------ */

static int fill_addr(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		*len = sizeof(*sin);
		return AF_INET;
	}
	if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*sin6);
		return AF_INET6;
	}
	return -1;
}

static int bound(const char *addr, int port, int type)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fam = fill_addr(addr, port, &ss, &len), one = 1, fd;

	fd = socket(fam, type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fam == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || (type == SOCK_STREAM && listen(fd, 64))) {
		close(fd);
		return -1;
	}
	return fd;
}

/* TCP: read to EOF, answer "ok", close. UDP: answer each datagram. On
 * 127.0.0.1 and ::1 at PORT, and on 127.0.0.1 at PORT + 1 for the exec
 * cases, whose server lines must not mix with the plain cases'. */
static int server(int port)
{
	struct pollfd p[6];
	char buf[65536];

	signal(SIGPIPE, SIG_IGN);
	p[0].fd = bound("127.0.0.1", port, SOCK_STREAM);
	p[1].fd = bound("::1", port, SOCK_STREAM);
	p[2].fd = bound("127.0.0.1", port + 1, SOCK_STREAM);
	p[3].fd = bound("127.0.0.1", port, SOCK_DGRAM);
	p[4].fd = bound("::1", port, SOCK_DGRAM);
	p[5].fd = bound("127.0.0.1", port + 1, SOCK_DGRAM);
	for (int i = 0; i < 6; i++) {
		if (p[i].fd < 0) {
			perror("pf_server: bind");
			return 1;
		}
		p[i].events = POLLIN;
	}
	/* The test waits for this line before it starts a client. */
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		if (poll(p, 6, -1) < 0)
			continue;
		for (int i = 0; i < 3; i++) {
			int fd;

			if (!(p[i].revents & POLLIN))
				continue;
			struct sockaddr_storage peer;
			socklen_t plen = sizeof(peer);

			/* With an address buffer, as nearly every server does
			 * (an accept without one is a case of its own, which a
			 * tier may only resolve at the next flush). */
			fd = accept4(p[i].fd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
			if (fd < 0)
				continue;
			while (read(fd, buf, sizeof(buf)) > 0)
				;
			if (write(fd, "ok", 2) != 2)
				perror("pf_server: write");
			close(fd);
		}
		for (int i = 3; i < 6; i++) {
			struct sockaddr_storage from;
			socklen_t flen = sizeof(from);
			ssize_t n;

			if (!(p[i].revents & POLLIN))
				continue;
			n = recvfrom(p[i].fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
			if (n > 0)
				sendto(p[i].fd, "ok", 2, 0, (struct sockaddr *)&from, flen);
		}
	}
}

/* The socket an exec case's second program finds open. */
#define EXEC_FD 10

static char payload[65536];

/* @bytes to the server on @fd: one datagram, answered, or a stream. */
static int send_part(int fd, bool udp, const struct sockaddr_storage *ss, socklen_t len, long bytes)
{
	char buf[16];

	if (udp) {
		if (sendto(fd, payload, (size_t)bytes, 0, (const struct sockaddr *)ss, len) !=
		    bytes)
			return 1;
		return recv(fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
	}
	for (long off = 0; off < bytes;) {
		ssize_t n = write(fd, payload, (size_t)(bytes - off));

		if (n <= 0)
			return 1;
		off += n;
	}
	return 0;
}

/* A TCP client's end: its FIN, then the server's answer up to its close. */
static void finish_tcp(int fd)
{
	char buf[16];

	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	close(fd);
}

/*
 * pf_client MODE ADDR PORT BYTES TAG...: MODE tcp or udp sends BYTES (a
 * stream, or one datagram) and waits for the answer. tcpexec and udpexec
 * send half of it in two parts, then exec pf_client tcpexec2 or udpexec2
 * (same arguments) with the socket left open as EXEC_FD, which sends the
 * other half in two parts on it: one PID, one socket, two programs. The
 * message hooks claim it again after the exec; the flow names the second
 * program, whose arguments the test expects.
 */
static int client(int argc, char **argv)
{
	struct sockaddr_storage ss;
	struct timeval tv = {2, 0};
	socklen_t len;
	long bytes;
	int fam, fd;
	bool udp, exec1, exec2;

	if (argc < 5)
		return 2;
	udp = !strncmp(argv[1], "udp", 3);
	exec1 = !strcmp(argv[1] + 3, "exec");
	exec2 = !strcmp(argv[1] + 3, "exec2");
	bytes = num(argv[4], 4, udp ? 1400 : (long)sizeof(payload));
	fam = fill_addr(argv[2], (int)num(argv[3], 1, 65535), &ss, &len);
	memset(payload, 'p', sizeof(payload));
	if (exec2) {
		fd = EXEC_FD;
		if (send_part(fd, udp, &ss, len, bytes / 4) ||
		    send_part(fd, udp, &ss, len, bytes / 2 - bytes / 4))
			return 1;
		if (!udp)
			finish_tcp(fd);
		return 0;
	}
	fd = socket(fam, (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (!udp && connect(fd, (struct sockaddr *)&ss, len))
		return 1;
	if (!exec1) {
		if (send_part(fd, udp, &ss, len, bytes))
			return 1;
		if (!udp)
			finish_tcp(fd);
		return 0;
	}
	if (send_part(fd, udp, &ss, len, bytes / 4) ||
	    send_part(fd, udp, &ss, len, bytes - bytes / 2 - bytes / 4))
		return 1;
	{
		char mode[16];

		snprintf(mode, sizeof(mode), "%s2", argv[1]);
		argv[1] = mode;
		if (dup2(fd, EXEC_FD) != EXEC_FD) /* dup2 clears close-on-exec */
			return 1;
		execv(argv[0], argv); /* the path it was run by */
	}
	return 1;
}

/* ---- processes --------------------------------------------------------- */

/* fork+exec @argv with stdout and stderr to @out (NULL: inherited). @out
 * is truncated before the fork: the caller waits for a word in it ("ready",
 * "listening"), and a file left by an earlier run in the same directory
 * must not answer before the new process has written anything. */
static pid_t spawn(char *const argv[], const char *out)
{
	int fd = -1;
	pid_t pid;

	if (out) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0) {
			printf("FAIL cannot open %s: %s\n", out, strerror(errno));
			exit(1);
		}
	}
	pid = fork();
	/* Never -1 to a caller: kill(-1, ...) would signal every process. */
	if (pid < 0) {
		printf("FAIL fork: %s\n", strerror(errno));
		exit(1);
	}
	if (pid == 0) {
		if (fd >= 0 && (dup2(fd, 1) < 0 || dup2(fd, 2) < 0))
			_exit(127);
		execv(argv[0], argv);
		_exit(127);
	}
	if (fd >= 0)
		close(fd);
	return pid;
}

/* Wait up to @ms for @pid; kill it after. Returns its exit status or -1. */
static int reap(pid_t pid, long ms)
{
	int st;

	for (long t = 0; t < ms; t += 20) {
		pid_t r = waitpid(pid, &st, WNOHANG);

		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		sleep_ms(20);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	return -1;
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "re");
	char *buf = NULL;
	size_t cap = 0, len = 0, n;

	if (!f)
		return NULL;
	do {
		if (len + 4096 + 1 > cap) {
			char *nb = realloc(buf, cap = 2 * cap + 8192);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, 4096, f);
		len += n;
	} while (n > 0);
	fclose(f);
	buf[len] = 0;
	return buf;
}

/*
 * Wait until the file @path holds @what or @pid has exited, at most @ms.
 * Returns true when it was seen. A poll with a deadline, not a sleep: the
 * guest runs under software emulation at a speed nobody can predict.
 */
static bool wait_for_text(const char *path, const char *what, pid_t pid, long ms)
{
	for (long t = 0; t < ms; t += 50) {
		char *s = slurp(path);
		bool seen = s && strstr(s, what);

		free(s);
		if (seen)
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		sleep_ms(50);
	}
	return false;
}

/* Start the agent and wait for "ready" (loading is slow under TCG).
 * @agg: the aggregation level ("0": a line per 5-tuple, so that two
 * clients of one server address keep lines of their own). */
static pid_t start_agent(const char *agent, const char *tier, const char *outdir, const char *ivl,
			 const char *agg, char *errpath, size_t errsz)
{
	char *argv[] = {(char *)agent,
			"run",
			"-o",
			(char *)outdir,
			"-a",
			(char *)agg,
			"--include-loopback",
			"--hook-tier",
			(char *)tier,
			"-i",
			(char *)ivl,
			NULL};
	pid_t pid;

	char old[512];

	mkdir(outdir, 0755);
	/* A fresh log: flows.log is appended to. */
	snprintf(old, sizeof(old), "%s/flows.log", outdir);
	unlink(old);
	snprintf(errpath, errsz, "%s/agent.err", outdir);
	unlink(errpath); /* an old "ready" must not count */
	pid = spawn(argv, errpath);
	if (wait_for_text(errpath, "procflow: ready", pid, 120000))
		return pid;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void show_file(const char *path)
{
	char *s = slurp(path);

	if (s)
		fputs(s, stdout);
	free(s);
}

/* The first line of @path that starts with @prefix, on stdout. */
static void show_line(const char *path, const char *prefix)
{
	char *s = slurp(path), *p;

	p = s ? strstr(s, prefix) : NULL;
	if (p)
		printf("%.*s\n", (int)strcspn(p, "\n"), p);
	free(s);
}

/* ---- the flow log ------------------------------------------------------- */

/*
 * The raw JSON value of "key" in one line: a string without its quotes
 * (escapes kept), an array with its brackets, or a number. The records
 * this test reads carry no quotes in their values.
 */
static bool jget(const char *line, const char *key, char *out, size_t n)
{
	char pat[64];
	const char *v, *e;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	v = strstr(line, pat);
	if (!v)
		return false;
	v += strlen(pat);
	if (*v == '"') {
		v++;
		e = strchr(v, '"');
	} else if (*v == '[') {
		e = strchr(v, ']');
		if (e)
			e++;
	} else {
		e = v + strcspn(v, ",}");
	}
	if (!e || (size_t)(e - v) >= n)
		return false;
	memcpy(out, v, (size_t)(e - v));
	out[e - v] = 0;
	return true;
}

static bool jis(const char *line, const char *key, const char *want)
{
	char v[1024];

	return jget(line, key, v, sizeof(v)) && !strcmp(v, want);
}

static long long jnum(const char *line, const char *key)
{
	char v[64];

	return jget(line, key, v, sizeof(v)) ? strtoll(v, NULL, 10) : -1;
}

struct tcase {
	const char *name;  /* tcp4 ... */
	const char *proto; /* tcp / udp */
	const char *addr;
	long bytes;
	pid_t pid;
	char args[256]; /* argv[1..] joined, of the program the flow must name */
	int rc;
	const char *mode; /* pf_client's first argument: proto if NULL */
	int port_off;	  /* the server's port + this */
};

static int failures;

static void verdict(bool ok, const char *tier, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void verdict(bool ok, const char *tier, const char *what, const char *fmt, ...)
{
	va_list ap;

	printf("%s tier=%s %s: ", ok ? "PASS" : "FAIL", tier, what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	if (!ok)
		failures++;
}

/* The client's src lines in @log: each must name its program (an exec
 * case's, the second one) with its arguments; their bytes_out summed. */
static void check_client(const char *tier, char *log, const struct tcase *c, int port)
{
	char what[64], pidstr[16], portstr[16], want_args[300], name[512], args[512];
	long long out = 0;
	int lines = 0;
	bool name_ok = false, args_ok = false;

	snprintf(what, sizeof(what), "%s client", c->name);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)c->pid);
	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(want_args, sizeof(want_args), "[\"%s\"]", c->args);
	name[0] = args[0] = 0;
	for (char *line = log, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (jis(line, "reporter", "src") && jis(line, "process_id", pidstr) &&
		    jis(line, "proto", c->proto) && jis(line, "dest_ip", c->addr) &&
		    jis(line, "dest_port", portstr)) {
			jget(line, "process_name", name, sizeof(name));
			jget(line, "process_args", args, sizeof(args));
			/* Every line: an exec case's flow names the second program. */
			name_ok = (name_ok || !lines) && !strcmp(name, CLIENT_PATH);
			args_ok = (args_ok || !lines) && !strcmp(args, want_args);
			lines++;
			out += jnum(line, "bytes_out");
		}
		if (nl)
			*nl++ = '\n';
	}
	verdict(lines > 0 && name_ok && args_ok && out >= c->bytes, tier, what,
		"pid %s: %d src line(s), process_name %s, process_args %s, bytes_out %lld "
		"(payload %ld)",
		pidstr, lines, name[0] ? name : "(none)", args[0] ? args : "(none)", out,
		c->bytes);
}

static void check_server(const char *tier, char *log, const struct tcase *c, pid_t spid,
			 int port)
{
	char what[64], pidstr[16], portstr[16], name[512];
	long long in = 0;
	int lines = 0;
	bool name_ok = false;

	snprintf(what, sizeof(what), "%s server", c->name);
	snprintf(pidstr, sizeof(pidstr), "%d", (int)spid);
	snprintf(portstr, sizeof(portstr), "%d", port);
	name[0] = 0;
	for (char *line = log, *nl; line && *line; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = 0;
		if (jis(line, "reporter", "dst") && jis(line, "proto", c->proto) &&
		    jis(line, "dest_ip", c->addr) && jis(line, "dest_port", portstr)) {
			lines++;
			jget(line, "process_name", name, sizeof(name));
			name_ok = !strcmp(name, SERVER_PATH) && jis(line, "process_id", pidstr);
			in += jnum(line, "bytes_in");
		}
		if (nl)
			*nl++ = '\n';
	}
	verdict(lines > 0 && name_ok && in >= c->bytes, tier, what,
		"pid %s: %d dst line(s), process_name %s, bytes_in %lld (payload %ld)", pidstr,
		lines, name[0] ? name : "(none)", in, c->bytes);
}

/* From v5.12 (socket cookies from tracing programs) the fentry tier counts
 * UDP at the socket layer, with no cgroup_skb program: the cases' records
 * then compare those counters with the other tiers' cgroup_skb ones. */
static void check_udp_counting(const char *errpath, const char *tier)
{
	struct utsname u;
	int maj = 0, min = 0;
	char *s = slurp(errpath);
	bool socket_layer = s && strstr(s, "UDP counting: at the socket layer");

	free(s);
	if (strcmp(tier, "fentry") || uname(&u) || sscanf(u.release, "%d.%d", &maj, &min) != 2)
		return;
	if (maj > 5 || (maj == 5 && min >= 12))
		verdict(socket_layer, tier, "UDP counting", "%s",
			socket_layer ? "at the socket layer (fentry), no cgroup_skb program"
				     : "per packet: the fentry UDP counters did not attach");
}

/* The tier the agent runs, from its log ("hook tier: NAME (..."): for
 * auto, the one it chose. @asked if the log does not say. */
static void running_tier(const char *errpath, const char *asked, char *out, size_t n)
{
	char *s = slurp(errpath), *p = s ? strstr(s, "hook tier: ") : NULL;

	if (p)
		snprintf(out, n, "%.*s", (int)strcspn(p + 11, " \n"), p + 11);
	else
		snprintf(out, n, "%s", asked);
	free(s);
}

static int e2e(const char *agent, const char *tier, const char *outdir, int port)
{
	struct tcase cases[] = {
		{"tcp4", "tcp", "127.0.0.1", 3000, 0, "", 0, NULL, 0},
		{"tcp6", "tcp", "::1", 3000, 0, "", 0, NULL, 0},
		{"udp4", "udp", "127.0.0.1", 1000, 0, "", 0, NULL, 0},
		{"udp6", "udp", "::1", 1000, 0, "", 0, NULL, 0},
		/* A socket kept across an exec: claimed again by the next
		 * message's hook, which TCP has only in the fentry and
		 * kprobe tiers. */
		{"udp4exec", "udp", "127.0.0.1", 1000, 0, "", 0, "udpexec", 1},
		{"tcp4exec", "tcp", "127.0.0.1", 3000, 0, "", 0, "tcpexec", 1},
	};
	char errpath[512], logpath[512], srvpath[512], portstr[16], bytes[16], tag[64], running[32];
	char *srv_argv[] = {SERVER_PATH, portstr, NULL};
	pid_t apid, spid;
	char *log;
	int rc;

	snprintf(portstr, sizeof(portstr), "%d", port);
	apid = start_agent(agent, tier, outdir, "60", "0", errpath, sizeof(errpath));
	if (apid < 0) {
		verdict(false, tier, "agent", "did not get ready:");
		show_file(errpath);
		return 1;
	}
	running_tier(errpath, tier, running, sizeof(running));
	show_line(errpath, "procflow: UDP counting:"); /* which counters the records compare */
	check_udp_counting(errpath, tier);
	/* The server starts after the agent: its listen() and accept() are
	 * the tier's hooks at work, not the start-up scan. */
	snprintf(srvpath, sizeof(srvpath), "%s/server.out", outdir);
	spid = spawn(srv_argv, srvpath);
	if (!wait_for_text(srvpath, "listening", spid, 60000)) {
		verdict(false, tier, "server", "did not start listening:");
		show_file(srvpath);
		kill(spid, SIGKILL);
		reap(spid, 1000);
		kill(apid, SIGKILL);
		reap(apid, 1000);
		printf("RESULT tier=%s FAIL\n", tier);
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tcase *c = &cases[i];
		const char *mode = c->mode ? c->mode : c->proto;
		char cport[16];
		char *argv[] = {CLIENT_PATH, (char *)mode, (char *)c->addr, cport, bytes,
				tag, NULL, NULL};
		char casearg[32];

		if (!strcmp(c->name, "tcp4exec") && !strcmp(running, "tracepoint")) {
			c->rc = -1; /* not run */
			continue;
		}
		snprintf(cport, sizeof(cport), "%d", port + c->port_off);
		snprintf(bytes, sizeof(bytes), "%ld", c->bytes);
		snprintf(tag, sizeof(tag), "run-%s-%d", tier, (int)getpid());
		snprintf(casearg, sizeof(casearg), "case=%s", c->name);
		argv[6] = casearg;
		snprintf(c->args, sizeof(c->args), "%s%s %s %s %s %s %s", mode, c->mode ? "2" : "",
			 c->addr, cport, bytes, tag, casearg);
		printf("case %s\n", c->name); /* progress for the host's log */
		c->pid = spawn(argv, NULL);
		c->rc = reap(c->pid, 20000);
		if (c->rc)
			verdict(false, tier, c->name, "client exited with %d", c->rc);
	}
	/* Every client waited for the server's answer, so the server has done
	 * its part; the agent's final flush on SIGTERM writes every flow. */
	kill(spid, SIGTERM);
	reap(spid, 5000);
	kill(apid, SIGTERM);
	rc = reap(apid, 60000);
	verdict(rc == 0, tier, "agent", "exit status %d on SIGTERM", rc);
	snprintf(logpath, sizeof(logpath), "%s/flows.log", outdir);
	log = slurp(logpath);
	if (!log) {
		verdict(false, tier, "flows.log", "cannot read %s", logpath);
		return 1;
	}
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (cases[i].rc < 0 && !cases[i].pid)
			continue;
		check_client(tier, log, &cases[i], port + cases[i].port_off);
		check_server(tier, log, &cases[i], spid, port + cases[i].port_off);
	}
	if (failures) {
		printf("--- agent log (tier %s)\n", tier);
		show_file(errpath);
		printf("--- flows.log (tier %s)\n%s---\n", tier, log);
	}
	free(log);
	printf("RESULT tier=%s %s\n", tier, failures ? "FAIL" : "PASS");
	return failures ? 1 : 0;
}

/* ---- measurements -------------------------------------------------------- */

/* utime + stime of @pid in clock ticks, or -1. */
static long long cpu_ticks(pid_t pid)
{
	char path[64], *s, *p;
	long long ut, st;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	s = slurp(path);
	if (!s)
		return -1;
	/* Fields after the command name, which ends at the last ')'. */
	p = strrchr(s, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &ut,
			 &st) != 2) {
		free(s);
		return -1;
	}
	free(s);
	return ut + st;
}

static int run_capture(char *const argv[], const char *tmp, char *out, size_t n);

/* Run time and runs of every BPF program loaded (the guest loads none but
 * the agent's), from the kernel's statistics (kernel.bpf_stats_enabled). */
#define BPF_PROGS_MAX 64

struct bpf_runs {
	size_t n;
	struct {
		__u32 id;
		char name[BPF_OBJ_NAME_LEN];
		unsigned long long ns, cnt;
	} p[BPF_PROGS_MAX];
};

static int bpf_call(int cmd, union bpf_attr *a)
{
	return (int)syscall(__NR_bpf, cmd, a, sizeof(*a));
}

static void bpf_runs(struct bpf_runs *r)
{
	union bpf_attr a;
	__u32 id = 0;

	r->n = 0;
	while (r->n < BPF_PROGS_MAX) {
		struct bpf_prog_info info;
		int fd;

		memset(&a, 0, sizeof(a));
		a.start_id = id;
		if (bpf_call(BPF_PROG_GET_NEXT_ID, &a))
			return;
		id = a.next_id;
		memset(&a, 0, sizeof(a));
		a.prog_id = id;
		fd = bpf_call(BPF_PROG_GET_FD_BY_ID, &a);
		if (fd < 0)
			continue;
		memset(&info, 0, sizeof(info));
		memset(&a, 0, sizeof(a));
		a.info.bpf_fd = (__u32)fd;
		a.info.info_len = sizeof(info);
		a.info.info = (__u64)(unsigned long)&info;
		if (!bpf_call(BPF_OBJ_GET_INFO_BY_FD, &a)) {
			r->p[r->n].id = id;
			memcpy(r->p[r->n].name, info.name, sizeof(info.name));
			r->p[r->n].name[BPF_OBJ_NAME_LEN - 1] = 0;
			r->p[r->n].ns = info.run_time_ns;
			r->p[r->n].cnt = info.run_cnt;
			r->n++;
		}
		close(fd);
	}
}

static bool bpf_stats(bool on)
{
	int fd = open("/proc/sys/kernel/bpf_stats_enabled", O_WRONLY | O_CLOEXEC);
	bool ok = fd >= 0 && write(fd, on ? "1" : "0", 1) == 1;

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * BPF nanoseconds per unit of work while @argv runs; its first output line
 * in @line, which names the work done in its first number after the word
 * ("conns N SECS") or, with @second, its second ("pingpong RATE TRIPS").
 * Each program that ran gets a line of its own ("BPFPROG ..."): a ratio
 * between two programs of one run is what emulation's speed leaves alone.
 */
static double bpf_ns_per(char *const argv[], bool second, const char *label, char *line, size_t n)
{
	static struct bpf_runs r0, r1;
	double first = 0, work = 0;
	unsigned long long ns = 0;

	if (!bpf_stats(true))
		return 0;
	bpf_runs(&r0);
	if (run_capture(argv, "/tmp/stats.out", line, n))
		work = 0;
	else if (second)
		work = sscanf(line, "%*s %lf %lf", &first, &work) == 2 ? work : 0;
	else
		work = sscanf(line, "%*s %lf", &work) == 1 ? work : 0;
	bpf_runs(&r1);
	bpf_stats(false);
	for (size_t i = 0; i < r1.n && work > 0; i++) {
		unsigned long long dns = r1.p[i].ns, dcnt = r1.p[i].cnt;

		for (size_t j = 0; j < r0.n; j++)
			if (r0.p[j].id == r1.p[i].id) {
				dns -= r0.p[j].ns;
				dcnt -= r0.p[j].cnt;
			}
		ns += dns;
		if ((double)dcnt / work >= 0.01) /* not the starts of the programs run */
			printf("BPFPROG %s name=%s ns_per_run=%.0f runs_per_unit=%.2f\n", label,
			       r1.p[i].name, (double)dns / (double)dcnt, (double)dcnt / work);
	}
	return work > 0 ? (double)ns / work : 0;
}

/* Run @argv, return the first line it printed in @out. */
static int run_capture(char *const argv[], const char *tmp, char *out, size_t n)
{
	pid_t pid = spawn(argv, tmp);
	char *s;
	int rc = reap(pid, 600000);

	s = slurp(tmp);
	snprintf(out, n, "%s", s ? s : "");
	out[strcspn(out, "\n")] = 0;
	free(s);
	return rc;
}

static int bench(const char *agent, const char *tier, const char *pp, int port, const char *secs,
		 const char *conns)
{
	char portstr[16], errpath[512], line[256], outdir[128], label[64];
	char *srv_argv[] = {(char *)pp, "server", portstr, NULL};
	char *pp_argv[] = {(char *)pp, "pingpong", "127.0.0.1", portstr, (char *)secs, NULL};
	char *cn_argv[] = {(char *)pp, "conns", "127.0.0.1", portstr, (char *)conns, NULL};
	long long t0 = 0, t1 = 0;
	double rate = 0, csecs = 0, ns_rt = 0, ns_conn = 0;
	long nconn = 0;
	pid_t spid, apid = -1;
	long tck = sysconf(_SC_CLK_TCK);

	snprintf(portstr, sizeof(portstr), "%d", port);
	snprintf(outdir, sizeof(outdir), "/tmp/bench-%s", tier);
	spid = spawn(srv_argv, NULL);
	if (strcmp(tier, "none")) {
		apid = start_agent(agent, tier, outdir, "2", "1", errpath, sizeof(errpath));
		if (apid < 0) {
			printf("BENCH tier=%s FAIL agent did not start\n", tier);
			show_file(errpath);
			kill(spid, SIGKILL);
			reap(spid, 1000);
			return 1;
		}
	}
	sleep_ms(300);
	if (run_capture(pp_argv, "/tmp/pp.out", line, sizeof(line)) ||
	    sscanf(line, "pingpong %lf", &rate) != 1)
		printf("BENCH tier=%s pingpong failed: %s\n", tier, line);
	if (apid > 0)
		t0 = cpu_ticks(apid);
	if (strcmp(conns, "0") && (run_capture(cn_argv, "/tmp/cn.out", line, sizeof(line)) ||
				   sscanf(line, "conns %ld %lf", &nconn, &csecs) != 2))
		printf("BENCH tier=%s conns failed: %s\n", tier, line);
	if (apid > 0 && nconn) {
		/* Two flush intervals: the connections' flows are read, written
		 * and forgotten within the figure. */
		sleep_ms(4500);
		t1 = cpu_ticks(apid);
		snprintf(label, sizeof(label), "tier=%s rt", tier);
		ns_rt = bpf_ns_per(pp_argv, true, label, line, sizeof(line));
		snprintf(label, sizeof(label), "tier=%s conn", tier);
		ns_conn = bpf_ns_per(cn_argv, false, label, line, sizeof(line));
	}
	if (apid > 0) {
		kill(apid, SIGTERM);
		reap(apid, 60000);
	}
	kill(spid, SIGTERM);
	reap(spid, 5000);
	printf("BENCH tier=%s pingpong_rate=%.0f conns=%ld conns_secs=%.2f agent_cpu_ms=%.0f "
	       "agent_cpu_ms_per_1000=%.1f bpf_ns_per_rt=%.0f bpf_ns_per_conn=%.0f\n",
	       tier, rate, nconn, csecs, apid > 0 && nconn ? (t1 - t0) * 1000.0 / tck : 0.0,
	       apid > 0 && nconn ? (t1 - t0) * 1000.0 / tck * 1000.0 / nconn : 0.0, ns_rt, ns_conn);
	return 0;
}

int main(int argc, char **argv)
{
	const char *me = strrchr(argv[0], '/');

	me = me ? me + 1 : argv[0];
	if (!strcmp(me, "pf_server") && argc == 2)
		return server((int)num(argv[1], 1, 65535));
	if (!strcmp(me, "pf_client"))
		return client(argc, argv);
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN);
	{
		char dir[2048], base[PATH_MAX];
		const char *slash = strrchr(argv[0], '/');

		if (!slash || !realpath(argv[0], dir)) {
			fprintf(stderr, "pf_vm_e2e: run me by a path\n");
			return 2;
		}
		/* realpath resolved links: take the directory argv[0] names. */
		snprintf(dir, sizeof(dir), "%.*s", (int)(slash - argv[0]), argv[0]);
		if (!realpath(dir[0] ? dir : "/", base))
			return 2;
		snprintf(client_path, sizeof(client_path), "%s/pf_client", base);
		snprintf(server_path, sizeof(server_path), "%s/pf_server", base);
	}
	if (argc == 6 && !strcmp(argv[1], "e2e"))
		return e2e(argv[2], argv[3], argv[4], (int)num(argv[5], 1, 65535));
	if (argc == 8 && !strcmp(argv[1], "bench"))
		return bench(argv[2], argv[3], argv[4], (int)num(argv[5], 1, 65535), argv[6],
			     argv[7]);
	fprintf(stderr, "usage: pf_vm_e2e e2e AGENT TIER OUTDIR PORT | bench AGENT TIER|none "
			"PINGPONG PORT SECS CONNS\n");
	return 2;
}
