// SPDX-License-Identifier: BSD-2-Clause
/*
 * Container identities (see containers.h).
 *
 * Threads: the event loop owns the cache (insert, lookup, evict). The worker
 * only reads runtime state for entries the loop queued, and publishes the
 * result under the lock by setting the entry's state; the loop never frees
 * an entry while it is queued or being read (state PENDING), it only marks
 * it dead and lets the worker free it.
 */
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "cgroup_path.h"
#include "container_meta.h"
#include "containers.h"
#include "hmap.h"

/* Where containerd keeps the OCI bundles of running tasks, one directory
 * per containerd namespace ("k8s.io" for the CRI plugin, "default" for ctr). */
#define CTR_CONTAINERD_TASKS "/run/containerd/io.containerd.runtime.v2.task"
/* CRI-O's per-container state: <dir>/<id>/userdata/config.json. */
#define CTR_CRIO_CONTAINERS "/run/containers/storage/overlay-containers"
#define CTR_ENGINE_SOCKETS  "/run/podman/podman.sock:/run/docker.sock:/var/run/docker.sock"
#define CTR_DOC_MAX	    (1u << 20) /* runtime documents are a few KiB */
#define CTR_API_TIMEOUT_MS  2000       /* a runtime socket that answers slower has failed */
#define CTR_GRACE_TICKS	    3	       /* intervals an ended cgroup keeps its entry */
#define CTR_WALK_MAX	    20000      /* cgroup directories one walk may visit */

enum ctr_state {
	CTR_HOST = 0, /* not a container: no endpoint */
	CTR_PENDING,  /* a container, metadata not read yet */
	CTR_READY,    /* metadata read */
	CTR_FAILED,   /* metadata could not be read: named by its id */
};

struct ctr_ent {
	uint64_t cgroup_id;
	int state; /* enum ctr_state, under the lock while PENDING */
	bool dead; /* dropped by the loop while PENDING: the worker frees it */
	bool ended;
	bool logged;
	unsigned ended_ticks;
	uint64_t seq; /* insertion order, for eviction */
	struct pf_cgroup_container cg;
	char cgpath[512];
	struct pf_cmeta meta;
	char name_aggr[PF_CMETA_NAME_MAX + 2];
	char err[96]; /* why the metadata is missing */
	struct pf_flow_ep ep;
	struct ctr_ent *qnext;
};

struct pf_containers {
	char root[256];
	char sockets[1024];
	char tasks[256];      /* containerd's task state directory */
	struct pf_hmap *map;  /* cgroup id -> struct ctr_ent * */
	struct pf_hmap *pids; /* PID -> cgroup id: seen at exec, or read from /proc */
	struct pf_hmap *book; /* struct book_key -> struct ctr_ent *, for one collection */
	uint64_t seq;
	struct pf_containers_stats st;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t worker;
	bool worker_started, stop;
	struct ctr_ent *qhead, *qtail;
};

/* A local end of a flow on this node: who holds (address, port, proto). */
struct book_key {
	uint8_t addr[16];
	uint16_t port;
	uint8_t proto;
	uint8_t pad;
};

#define CTR_PIDS_MAX 16384
#define CTR_BOOK_MAX 65536

/* ---- cgroup id -> path ---- */

static int cg_ino(const struct pf_containers *c, const char *path, uint64_t *ino)
{
	char full[1024];
	struct stat sb;

	if (snprintf(full, sizeof(full), "%s%s", c->root, path) >= (int)sizeof(full))
		return -ENAMETOOLONG;
	if (stat(full, &sb))
		return -errno;
	*ino = sb.st_ino;
	return 0;
}

/* The cgroup v2 path of @pid ("0::/path"), into @out. */
static int proc_cgroup(uint32_t pid, char *out, size_t outsz)
{
	char fn[64], buf[4096];
	ssize_t n;
	int fd;
	char *p, *nl;

	snprintf(fn, sizeof(fn), "/proc/%u/cgroup", pid);
	fd = open(fn, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n ? -errno : -ENOENT;
	buf[n] = '\0';
	for (p = buf; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = '\0';
		if (!strncmp(p, "0::", 3)) {
			if (strlen(p + 3) >= outsz)
				return -ENAMETOOLONG;
			memcpy(out, p + 3, strlen(p + 3) + 1);
			return 0;
		}
	}
	return -ENOENT;
}

struct walk {
	const struct pf_containers *c;
	uint64_t id;
	unsigned visited;
	char *out;
	size_t outsz;
};

/* Depth-first search for the directory whose inode is the id. @rel is the
 * path below the root ("" for the root itself). */
static int walk_dir(struct walk *w, const char *rel, int depth)
{
	char full[1024], sub[512];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int fd, found = -ENOENT;

	if (depth > 12 ||
	    snprintf(full, sizeof(full), "%s%s", w->c->root, rel) >= (int)sizeof(full))
		return -ENOENT;
	fd = open(full, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -ENOENT;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return -ENOENT;
	}
	while (found && (de = readdir(d)) && w->visited < CTR_WALK_MAX) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		w->visited++;
		if (snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name) >= (int)sizeof(sub))
			continue;
		if (de->d_ino == w->id ||
		    (!fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) &&
		     sb.st_ino == w->id)) {
			if (strlen(sub) < w->outsz) {
				memcpy(w->out, sub, strlen(sub) + 1);
				found = 0;
			}
			break;
		}
		found = walk_dir(w, sub, depth + 1);
	}
	closedir(d);
	return found;
}

/* The path of cgroup @id: from @pid's own file when it is in that cgroup,
 * else by walking the hierarchy. */
static int cg_path(struct pf_containers *c, uint64_t id, uint32_t pid, char *out, size_t outsz)
{
	struct walk w = {c, id, 0, out, outsz};
	uint64_t ino;

	if (pid && !proc_cgroup(pid, out, outsz) && !cg_ino(c, out, &ino) && ino == id)
		return 0;
	return walk_dir(&w, "", 0);
}

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
		if (err == -ETIMEDOUT)
			return err; /* the same socket would hang again */
	}
	snprintf(path, sizeof(path), "/containers/%s/json", e->cg.id);
	err = engine_get(sock, path, &b);
	if (!err)
		err = pf_cmeta__from_engine(&e->meta, b.buf, b.len);
	free(b.buf);
	return err;
}

static int meta_read(struct pf_containers *c, struct ctr_ent *e)
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
		return meta_engine(c, e);
	default:
		/* A bare id under a pod's cgroup: any runtime could own it. */
		err = meta_containerd(c, e);
		if (err == -ENOENT) {
			snprintf(path, sizeof(path), "%s/%s/userdata/config.json",
				 CTR_CRIO_CONTAINERS, e->cg.id);
			err = meta_oci(e, path);
		}
		if (err == -ENOENT)
			err = meta_engine(c, e);
		return err;
	}
}

static void ep_fill(struct ctr_ent *e)
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

static void *worker(void *arg)
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

		err = meta_read(c, e);

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
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* ---- the cache (event loop) ---- */

struct pf_containers *pf_containers__new(const char *cgroup_root, const char *engine_sockets)
{
	struct pf_containers *c = calloc(1, sizeof(*c));
	const char *env = getenv("PROCFLOW_ENGINE_SOCKETS");
	const char *tasks = getenv("PROCFLOW_CONTAINERD_TASKS");

	if (!c)
		return NULL;
	if (env && env[0])
		engine_sockets = env;
	snprintf(c->root, sizeof(c->root), "%s", cgroup_root);
	snprintf(c->tasks, sizeof(c->tasks), "%s",
		 tasks && tasks[0] ? tasks : CTR_CONTAINERD_TASKS);
	snprintf(c->sockets, sizeof(c->sockets), "%s",
		 engine_sockets ? engine_sockets : CTR_ENGINE_SOCKETS);
	c->map = pf_hmap__new(sizeof(uint64_t), sizeof(struct ctr_ent *), PF_CTR_MAX);
	c->pids = pf_hmap__new(sizeof(uint32_t), sizeof(uint64_t), CTR_PIDS_MAX);
	c->book = pf_hmap__new(sizeof(struct book_key), sizeof(struct ctr_ent *), CTR_BOOK_MAX);
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	if (!c->map || !c->pids || !c->book) {
		pf_containers__free(c);
		errno = ENOMEM;
		return NULL;
	}
	return c;
}

static void ent_drop(struct pf_containers *c, struct ctr_ent *e)
{
	pthread_mutex_lock(&c->lock);
	if (e->state == CTR_PENDING) {
		e->dead = true; /* the worker holds or will take it */
		/* Still queued: unlink, so it can be freed here. */
		struct ctr_ent **pp = &c->qhead, *prev = NULL;

		for (; *pp && *pp != e; prev = *pp, pp = &(*pp)->qnext)
			;
		if (*pp) {
			*pp = e->qnext;
			if (c->qtail == e)
				c->qtail = prev;
			e->state = CTR_FAILED;
		}
	}
	if (e->state != CTR_PENDING) {
		pf_cmeta__clear(&e->meta);
		free(e);
	}
	pthread_mutex_unlock(&c->lock);
}

void pf_containers__free(struct pf_containers *c)
{
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;

	if (!c)
		return;
	if (c->worker_started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->worker, NULL);
		c->qhead = NULL; /* queued entries are in the map too */
	}
	while (c->map && pf_hmap__next(c->map, &it, &k, &v)) {
		struct ctr_ent *e = *(struct ctr_ent **)v;

		pf_cmeta__clear(&e->meta);
		free(e);
	}
	pf_hmap__free(c->map);
	pf_hmap__free(c->pids);
	pf_hmap__free(c->book);
	pthread_mutex_destroy(&c->lock);
	pthread_cond_destroy(&c->cond);
	free(c);
}

/* Make room: an ended entry, else the oldest one. */
static void evict_one(struct pf_containers *c)
{
	struct pf_hmap_iter it = {0};
	struct ctr_ent *victim = NULL, *e;
	const void *k;
	void *v;

	while (pf_hmap__next(c->map, &it, &k, &v)) {
		e = *(struct ctr_ent **)v;
		if (!victim || (e->ended && !victim->ended) ||
		    (e->ended == victim->ended && e->seq < victim->seq))
			victim = e;
	}
	if (!victim)
		return;
	pf_hmap__remove(c->map, &victim->cgroup_id);
	ent_drop(c, victim);
	c->st.evicted++;
}

static struct ctr_ent *ent_add(struct pf_containers *c, uint64_t id, uint32_t pid)
{
	struct ctr_ent *e, **slot;
	int created;

	if (pf_hmap__count(c->map) >= PF_CTR_MAX)
		evict_one(c);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cgroup_id = id;
	e->seq = ++c->seq;
	if (cg_path(c, id, pid, e->cgpath, sizeof(e->cgpath))) {
		/* Gone already and not found: counted, and tried again on the
		 * next process seen in it. */
		c->st.unresolved++;
		free(e);
		return NULL;
	}
	if (pf_cgroup_path__parse(e->cgpath, strlen(e->cgpath), &e->cg))
		e->state = CTR_HOST;
	else
		e->state = CTR_PENDING;
	pf_debug("cgroup %llu is %s: %s", (unsigned long long)id,
		 e->state == CTR_HOST ? "the host's" : e->cg.id, e->cgpath);
	slot = pf_hmap__upsert(c->map, &id, &created);
	if (!slot) {
		free(e);
		return NULL;
	}
	*slot = e;
	if (e->state == CTR_HOST)
		return e;
	ep_fill(e);
	if (!c->worker_started) {
		if (pthread_create(&c->worker, NULL, worker, c)) {
			e->state = CTR_FAILED;
			snprintf(e->err, sizeof(e->err), "no worker thread");
			return e;
		}
		c->worker_started = true;
	}
	pthread_mutex_lock(&c->lock);
	if (c->qtail)
		c->qtail->qnext = e;
	else
		c->qhead = e;
	c->qtail = e;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
	return e;
}

static void book_clear(struct pf_hmap *m)
{
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;

	/* Removing the key just returned is what pf_hmap__next allows. */
	while (pf_hmap__next(m, &it, &k, &v)) {
		pf_hmap__remove(m, k);
	}
}

/* Remember @pid's cgroup: a process whose identity the cache no longer
 * has (it ended, and its exec was the last thing known of it) still names
 * its container. Bounded: when full, the map starts over. */
static void pid_set(struct pf_containers *c, uint32_t pid, uint64_t cgroup_id)
{
	uint64_t *v;
	int created;

	v = pf_hmap__upsert(c->pids, &pid, &created);
	if (!v) {
		book_clear(c->pids);
		v = pf_hmap__upsert(c->pids, &pid, &created);
	}
	if (v)
		*v = cgroup_id;
}

void pf_containers__note(struct pf_containers *c, uint64_t cgroup_id, uint32_t pid)
{
	if (!c || !cgroup_id)
		return;
	if (pid)
		pid_set(c, pid, cgroup_id);
	if (!pf_hmap__find(c->map, &cgroup_id))
		ent_add(c, cgroup_id, pid);
}

const struct pf_flow_ep *pf_containers__ep(struct pf_containers *c, uint64_t cgroup_id,
					   uint32_t pid)
{
	struct ctr_ent **slot, *e;
	char path[512];
	int state;

	if (!c)
		return NULL;
	if (!cgroup_id) {
		/* A process known from the start-up scan: its cgroup from /proc,
		 * read once per interval. */
		uint64_t *known = pid ? pf_hmap__find(c->pids, &pid) : NULL;

		if (known)
			cgroup_id = *known;
		else if (pid && !proc_cgroup(pid, path, sizeof(path)) &&
			 !cg_ino(c, path, &cgroup_id))
			pid_set(c, pid, cgroup_id);
		if (!cgroup_id)
			return NULL;
	}
	slot = pf_hmap__find(c->map, &cgroup_id);
	e = slot ? *slot : ent_add(c, cgroup_id, pid);
	if (!e || e->state == CTR_HOST)
		return NULL;
	pthread_mutex_lock(&c->lock);
	state = e->state;
	pthread_mutex_unlock(&c->lock);
	if (state != CTR_PENDING && !e->logged) {
		e->logged = true;
		if (state == CTR_READY) {
			c->st.meta_ok++;
		} else {
			c->st.meta_failed++;
			pf_log("container %s (%s): no metadata from the runtime (%s); flows name "
			       "it by its id (%llu such containers so far)",
			       e->cg.id, pf_cgroup_runtime__name(e->cg.runtime), e->err,
			       (unsigned long long)c->st.meta_failed);
		}
		ep_fill(e);
	}
	return &e->ep;
}

void pf_containers__book_reset(struct pf_containers *c)
{
	if (c)
		book_clear(c->book);
}

void pf_containers__book_add(struct pf_containers *c, const uint8_t addr[16], uint16_t port,
			     uint8_t proto, const struct pf_flow_ep *ep)
{
	struct book_key bk = {.port = port, .proto = proto};
	struct ctr_ent **slot;
	int created;

	if (!c || !ep)
		return;
	memcpy(bk.addr, addr, 16);
	slot = pf_hmap__upsert(c->book, &bk, &created);
	if (slot)
		*slot = (struct ctr_ent *)((const char *)ep - offsetof(struct ctr_ent, ep));
}

const struct pf_flow_ep *pf_containers__book_find(struct pf_containers *c, const uint8_t addr[16],
						  uint16_t port, uint8_t proto)
{
	struct book_key bk = {.port = port, .proto = proto};
	struct ctr_ent **slot;

	if (!c)
		return NULL;
	memcpy(bk.addr, addr, 16);
	slot = pf_hmap__find(c->book, &bk);
	return slot ? &(*slot)->ep : NULL;
}

void pf_containers__tick(struct pf_containers *c)
{
	struct pf_hmap_iter it = {0};
	struct ctr_ent *e, *gone[64];
	size_t ngone = 0;
	const void *k;
	void *v;
	uint64_t ino;

	if (!c)
		return;
	while (pf_hmap__next(c->map, &it, &k, &v) && ngone < 64) {
		e = *(struct ctr_ent **)v;
		if (!e->ended && (cg_ino(c, e->cgpath, &ino) || ino != e->cgroup_id))
			e->ended = true;
		if (e->ended && ++e->ended_ticks > CTR_GRACE_TICKS)
			gone[ngone++] = e;
	}
	for (size_t i = 0; i < ngone; i++) {
		pf_hmap__remove(c->map, &gone[i]->cgroup_id);
		ent_drop(c, gone[i]);
	}
}

void pf_containers__stats(struct pf_containers *c, struct pf_containers_stats *st)
{
	struct pf_hmap_iter it = {0};
	const void *k;
	void *v;

	*st = c->st;
	st->entries = pf_hmap__count(c->map);
	st->containers = 0;
	while (pf_hmap__next(c->map, &it, &k, &v))
		st->containers += (*(struct ctr_ent **)v)->state != CTR_HOST;
}
