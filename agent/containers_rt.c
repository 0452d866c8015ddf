// SPDX-License-Identifier: BSD-2-Clause
/*
 * Container identities: what the runtimes say (OCI bundles of containerd
 * and CRI-O, the Engine API of Docker and Podman), read by the worker thread
 * (see containers_int.h).
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "containers_int.h"

/* ---- runtime metadata (worker thread) ---- */

static int read_doc(int dirfd, const char *rel, char **out, size_t *len)
{
	struct stat sb;
	char *buf;
	ssize_t n;
	size_t got = 0;
	int fd, err;

	fd = openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || sb.st_size > CTR_DOC_MAX) {
		close(fd);
		return -EINVAL;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)sb.st_size && (n = read(fd, buf + got, (size_t)sb.st_size - got)) > 0)
		got += (size_t)n;
	err = got == (size_t)sb.st_size ? 0 : -EIO;
	close(fd);
	if (err) {
		free(buf);
		return err;
	}
	buf[got] = '\0';
	*out = buf;
	*len = got;
	return 0;
}

/* An OCI bundle's config.json at @path (relative to /). */
static int meta_oci(struct ctr_ent *e, const char *path)
{
	char *doc = NULL;
	size_t len = 0;
	int err;

	err = read_doc(AT_FDCWD, path, &doc, &len);
	if (err)
		return err;
	err = pf_cmeta__from_oci(&e->meta, doc, len);
	free(doc);
	if (err == -ENOENT)
		err = -ENODATA; /* valid, but names no pod */
	return err;
}

/* containerd keeps the bundle under the namespace's directory; which one is
 * not in a systemd-driver path, so every namespace is tried. */
static int meta_containerd(const struct pf_containers *c, struct ctr_ent *e)
{
	char path[1024];
	struct dirent *de;
	DIR *d = opendir(c->tasks);
	int err = -ENOENT, e2;

	if (!d)
		return -ENOENT;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof(path), "%s/%s/%s/config.json", c->tasks, de->d_name,
			     e->cg.id) >= (int)sizeof(path))
			continue;
		e2 = meta_oci(e, path);
		if (e2 != -ENOENT) {
			err = e2;
			break;
		}
	}
	closedir(d);
	return err;
}

struct body {
	char *buf;
	size_t len;
};

static size_t on_body(char *p, size_t sz, size_t n, void *ctx)
{
	struct body *b = ctx;
	size_t add = sz * n;
	char *nb;

	if (b->len + add > CTR_DOC_MAX)
		return 0;
	nb = realloc(b->buf, b->len + add + 1);
	if (!nb)
		return 0;
	memcpy(nb + b->len, p, add);
	b->buf = nb;
	b->len += add;
	b->buf[b->len] = '\0';
	return add;
}

/* The first of the configured Engine API sockets that exists, into @sock. */
static int engine_socket(const struct pf_containers *c, char *sock, size_t socksz)
{
	const char *s = c->sockets, *colon;
	struct stat sb;

	for (;; s = colon + 1) {
		size_t n;

		colon = strchr(s, ':');
		n = colon ? (size_t)(colon - s) : strlen(s);
		if (n && n < socksz) {
			memcpy(sock, s, n);
			sock[n] = '\0';
			if (!stat(sock, &sb) && S_ISSOCK(sb.st_mode))
				return 0;
		}
		if (!colon)
			return -ENOENT; /* no Docker or Podman API on this node */
	}
}

/* GET @path on the API socket @sock, the whole exchange bounded by
 * CTR_API_TIMEOUT_MS. Returns 0 with the body in *@out (malloc'd), -ENOENT
 * for 404, -ETIMEDOUT when it did not answer in time, -EPROTO otherwise. */
static int engine_get(const char *sock, const char *path, struct body *out)
{
	char url[384];
	long code = 0;
	CURLcode rc;
	CURL *h;

	out->buf = NULL;
	out->len = 0;
	h = curl_easy_init();
	if (!h)
		return -ENOMEM;
	snprintf(url, sizeof(url), "http://d%s", path);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, sock);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)CTR_API_TIMEOUT_MS);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	rc = curl_easy_perform(h);
	if (rc == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
	curl_easy_cleanup(h);
	if (rc == CURLE_OK && code == 200 && out->buf)
		return 0;
	free(out->buf);
	out->buf = NULL;
	if (rc == CURLE_OPERATION_TIMEDOUT)
		return -ETIMEDOUT;
	return rc == CURLE_OK && code == 404 ? -ENOENT : -EPROTO;
}

/*
 * From the Engine API. Podman first through its own API (libpod), which
 * says which pod a container belongs to: a pod (podman kube play) names
 * the container as Kubernetes would, by the pod's name. Docker, or a Podman
 * without that API, through the Docker-compatible GET /containers/<id>/json.
 */
static int meta_engine(struct pf_containers *c, struct ctr_ent *e)
{
	static const char *const pod_key[] = {"Pod"}, *const name_key[] = {"Name"};
	char sock[256], path[256], pod[128], name[PF_CMETA_NAME_MAX + 1];
	struct body b;
	int err;

	err = engine_socket(c, sock, sizeof(sock));
	if (err)
		return err;
	/* One container after another behind a socket that hangs would hold
	 * every other runtime's reads up: after a time-out, the socket is
	 * taken for down for a while. */
	if (time(NULL) < c->engine_down_until)
		return -ETIMEDOUT;
	if (e->cg.runtime == PF_CGROUP_RT_PODMAN) {
		snprintf(path, sizeof(path), "/v4.0.0/libpod/containers/%s/json", e->cg.id);
		err = engine_get(sock, path, &b);
		if (!err) {
			err = pf_cmeta__from_engine(&e->meta, b.buf, b.len);
			if (!err &&
			    !pf_cjson__get_str(b.buf, b.len, pod_key, 1, pod, sizeof(pod)) &&
			    pod[0] && !strchr(pod, '/')) {
				free(b.buf);
				snprintf(path, sizeof(path), "/v4.0.0/libpod/pods/%s/json", pod);
				if (!engine_get(sock, path, &b) &&
				    !pf_cjson__get_str(b.buf, b.len, name_key, 1, name,
						       sizeof(name)) &&
				    name[0])
					memcpy(e->meta.name, name, sizeof(e->meta.name));
			}
			free(b.buf);
			return err;
		}
		if (err == -ETIMEDOUT) {
			c->engine_down_until = time(NULL) + CTR_DOWN_S;
			return err; /* the same socket would hang again */
		}
	}
	snprintf(path, sizeof(path), "/containers/%s/json", e->cg.id);
	err = engine_get(sock, path, &b);
	if (err == -ETIMEDOUT)
		c->engine_down_until = time(NULL) + CTR_DOWN_S;
	if (!err)
		err = pf_cmeta__from_engine(&e->meta, b.buf, b.len);
	free(b.buf);
	return err;
}

/* The runtimes whose state is in files: containerd and CRI-O bundles.
 * -ENOTSUP for a runtime that keeps it behind its API. */
static int meta_files(const struct pf_containers *c, struct ctr_ent *e)
{
	char path[512];
	int err;

	switch (e->cg.runtime) {
	case PF_CGROUP_RT_CONTAINERD:
		return meta_containerd(c, e);
	case PF_CGROUP_RT_CRIO:
		snprintf(path, sizeof(path), "%s/%s/userdata/config.json", CTR_CRIO_CONTAINERS,
			 e->cg.id);
		return meta_oci(e, path);
	case PF_CGROUP_RT_DOCKER:
	case PF_CGROUP_RT_PODMAN:
		return -ENOTSUP;
	default:
		/* A bare id under a pod's cgroup: any runtime could own it. */
		err = meta_containerd(c, e);
		if (err == -ENOENT) {
			snprintf(path, sizeof(path), "%s/%s/userdata/config.json",
				 CTR_CRIO_CONTAINERS, e->cg.id);
			err = meta_oci(e, path);
		}
		return err;
	}
}

static int meta_read(struct pf_containers *c, struct ctr_ent *e)
{
	int err = meta_files(c, e);

	if (err == -ENOTSUP || (err == -ENOENT && e->cg.runtime == PF_CGROUP_RT_UNKNOWN))
		err = meta_engine(c, e);
	return err;
}

/* For the watcher: the Engine API is asked by the worker (it may hang), the
 * answer kept in the seen ring for the exec event that comes later. */
void pf_ctr__prefetch_engine(struct pf_containers *c, uint64_t id,
			     const struct pf_cgroup_container *cg)
{
	struct ctr_ent *e;

	if (!c->worker_started || !(e = calloc(1, sizeof(*e))))
		return;
	e->prefetch = true;
	e->cgroup_id = id;
	e->cg = *cg;
	e->state = CTR_PENDING;
	pf_ctr__enqueue(c, e);
}

/* For the watcher: the bundle of the container whose cgroup @rel was just
 * made, into a new *@out. */
int pf_ctr__prefetch(const struct pf_containers *c, const char *rel, struct pf_cmeta **out)
{
	struct ctr_ent *e = calloc(1, sizeof(*e));
	int err;

	*out = NULL;
	if (!e)
		return -ENOMEM;
	err = pf_cgroup_path__parse(rel, strlen(rel), &e->cg);
	if (!err)
		err = meta_files(c, e);
	if (!err) {
		*out = malloc(sizeof(**out));
		if (*out)
			**out = e->meta; /* the labels move with it */
		else
			pf_cmeta__clear(&e->meta);
		err = *out ? 0 : -ENOMEM;
	}
	free(e);
	return err;
}

void pf_ctr__ep_fill(struct ctr_ent *e)
{
	const char *name = e->state == CTR_READY && e->meta.name[0] ? e->meta.name : e->cg.id;

	e->ep.name = name;
	pf_cmeta__name_aggr(name, e->name_aggr, sizeof(e->name_aggr));
	e->ep.name_aggr = e->name_aggr;
	e->ep.namespace_ =
	    e->state == CTR_READY && e->meta.namespace_[0] ? e->meta.namespace_ : "-";
	e->ep.labels = e->state == CTR_READY ? (const char *const *)e->meta.labels : NULL;
	e->ep.nlabels = e->state == CTR_READY ? e->meta.nlabels : 0;
}

void pf_ctr__enqueue(struct pf_containers *c, struct ctr_ent *e)
{
	pthread_mutex_lock(&c->lock);
	if (c->qtail)
		c->qtail->qnext = e;
	else
		c->qhead = e;
	c->qtail = e;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

void *pf_ctr__worker(void *arg)
{
	struct pf_containers *c = arg;
	struct ctr_ent *e;
	int err;

	pf_caps__drop_thread();
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (!c->qhead && !c->stop)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->stop)
			break;
		e = c->qhead;
		c->qhead = e->qnext;
		if (!c->qhead)
			c->qtail = NULL;
		pthread_mutex_unlock(&c->lock);

		/* Read already, when the watcher saw the cgroup made. */
		err = e->prefetch ? -ENOENT : pf_ctr__seen_take_meta(c, e->cgroup_id, &e->meta);
		if (err == -ENOENT)
			err = meta_read(c, e);
		if (e->prefetch) {
			pf_ctr__seen_set_meta(c, e->cgroup_id, &e->meta, err);
			free(e);
			pthread_mutex_lock(&c->lock);
			continue;
		}

		pthread_mutex_lock(&c->lock);
		if (e->dead) {
			pf_cmeta__clear(&e->meta);
			free(e);
			continue;
		}
		if (err) {
			pf_cmeta__clear(&e->meta);
			snprintf(e->err, sizeof(e->err), "%s", strerror(-err));
			if (err == -ENODATA)
				snprintf(e->err, sizeof(e->err), "the bundle names no pod");
		}
		e->state = err ? CTR_FAILED : CTR_READY;
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}
