// SPDX-License-Identifier: BSD-2-Clause
/*
 * The metrics endpoint (see sink_metrics.h).
 *
 * The loop never waits for a scraper: libmicrohttpd answers from a thread
 * of its own, which reads the registry's atomics (lib/metrics.h) and
 * /proc/self, and takes no lock the loop holds. Connections are few and
 * short (a scrape every few seconds): the connection limit and timeout
 * keep an idle or hostile client from holding descriptors.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "metrics.h"
#include "metrics_process.h"
#include "sink.h"
#include "sink_metrics.h"

#define PF_METRICS_CONN_MAX	16
#define PF_METRICS_CONN_TIMEOUT 10 /* seconds */
#define PF_METRICS_TEXT_MAX	(1u << 20)
#define PF_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct pf_metrics_sink {
	int fd;
	struct MHD_Daemon *d;
	int err; /* the starter thread's result */
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, PF_METRICS_CONTENT_TYPE);
	ret = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	static char not_found[] = "not found: the metrics are at /metrics\n";
	static char no_method[] = "only GET\n";
	struct pf_metrics_process proc;
	size_t cap = 16384, need;
	char *buf;

	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, no_method, sizeof(no_method) - 1,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, not_found, sizeof(not_found) - 1,
			     MHD_RESPMEM_PERSISTENT);
	pf_metrics_process__read(&proc);
	for (;;) {
		buf = malloc(cap);
		if (!buf)
			return MHD_NO;
		need = pf_metrics__format(&pf_registry, &proc, buf, cap);
		if (need < cap)
			break;
		free(buf);
		if (need >= PF_METRICS_TEXT_MAX)
			return MHD_NO;
		cap = need + 1;
	}
	return reply(conn, MHD_HTTP_OK, buf, need, MHD_RESPMEM_MUST_FREE);
}

/* Give up every capability, then start the server: its threads are made
 * by this one and inherit its empty sets. */
static void *starter(void *arg)
{
	struct pf_metrics_sink *s = arg;

	if (pf_caps__drop(0)) {
		s->err = EPERM;
		return NULL;
	}
	s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, 0, NULL, NULL,
				on_request, s, MHD_OPTION_LISTEN_SOCKET, s->fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)PF_METRICS_CONN_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)PF_METRICS_CONN_TIMEOUT,
				MHD_OPTION_END);
	if (!s->d)
		s->err = errno ? errno : EIO;
	return NULL;
}

static int bind_listen(const char *listen_at, int *fdp)
{
	char addr[64], why[128];
	struct sockaddr_storage ss = {0};
	socklen_t sl;
	uint16_t port;
	int fd, one = 1;

	if (pf_metrics__parse_listen(listen_at, addr, sizeof(addr), &port, why, sizeof(why))) {
		pf_log("metricsListen: %s", why);
		return -EINVAL;
	}
	if (addr[0] && !strchr(addr, ':')) {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;

		in->sin_family = AF_INET;
		in->sin_port = htons(port);
		inet_pton(AF_INET, addr, &in->sin_addr);
		sl = sizeof(*in);
	} else {
		/* IPv6, or every address: a dual-stack socket also takes IPv4. */
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;

		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		if (addr[0])
			inet_pton(AF_INET6, addr, &in6->sin6_addr);
		else
			in6->sin6_addr = in6addr_any;
		sl = sizeof(*in6);
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss.ss_family == AF_INET6 && !addr[0]) {
		int zero = 0;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	}
	if (bind(fd, (struct sockaddr *)&ss, sl) || listen(fd, 64)) {
		int err = -errno;

		close(fd);
		return err;
	}
	*fdp = fd;
	return 0;
}

struct pf_metrics_sink *pf_metrics_sink__start(const char *listen_at)
{
	struct pf_metrics_sink *s = calloc(1, sizeof(*s));
	pthread_t t;
	int err;

	if (!s) {
		pf_log("metrics endpoint: out of memory");
		return NULL;
	}
	err = bind_listen(listen_at, &s->fd);
	if (err) {
		if (err != -EINVAL)
			pf_log("metrics endpoint: cannot listen on %s: %s", listen_at,
			       strerror(-err));
		free(s);
		errno = -err;
		return NULL;
	}
	err = pthread_create(&t, NULL, starter, s);
	if (!err)
		err = pthread_join(t, NULL);
	if (!err)
		err = s->err;
	if (err) {
		pf_log("metrics endpoint: cannot start serving on %s: %s", listen_at,
		       strerror(err));
		close(s->fd);
		free(s);
		errno = err;
		return NULL;
	}
	pf_log("metrics: serving /metrics on %s%s",
	       strchr(listen_at, ':') ? "" : "every address, port ", listen_at);
	return s;
}

void pf_metrics_sink__stop(struct pf_metrics_sink *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->d);
	close(s->fd);
	free(s);
}

/* ---- behind the sink interface (sink.h): it takes no lines, it serves
 * the registry the other sinks and the loop fill ---- */

static const char *const metrics_keys[] = {"metricsListen", NULL};

static bool metrics_wanted(const struct pf_config *cfg)
{
	return cfg->metrics_listen[0] != '\0';
}

static struct pf_sink *metrics_start(const struct pf_config *cfg, struct pf_loop *loop)
{
	return (struct pf_sink *)pf_metrics_sink__start(cfg->metrics_listen);
}

static void metrics_stop(struct pf_sink *s)
{
	pf_metrics_sink__stop((struct pf_metrics_sink *)s);
}

const struct pf_sink_ops pf_sink_metrics = {
    .name = "metrics",
    .keys = metrics_keys,
    .wanted = metrics_wanted,
    .start = metrics_start,
    .stop = metrics_stop,
};
