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
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
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
#define CTR_API_TIMEOUT_MS  5000       /* a runtime socket that answers slower has failed */
#define CTR_GRACE_TICKS	    3	       /* intervals an ended cgroup keeps its entry */
#define CTR_WALK_MAX	    20000      /* cgroup directories one walk may visit */
/* What one flush may wait, in all, for metadata being read: a container
 * whose exec was read just before the flush is then named in its first
 * interval; a runtime that hangs costs the loop no more than this. */
#define CTR_WAIT_NS (100 * 1000000ull)
#define CTR_DOWN_S  30 /* an API socket that timed out is not asked again for this long */

/* The cgroup watcher: directories watched (depth below the root, count), and
 * the cgroups whose creation it saw, kept until asked for or pushed out. */
#define CTR_WATCH_DEPTH 5
#define CTR_WATCH_MAX	8192
#define CTR_SEEN_MAX	4096

struct seen {
	uint64_t id;
	char path[256];
	struct pf_cmeta *meta; /* read from the bundle when the cgroup was made */
	int meta_err;	       /* with meta NULL: why it could not be (0: not tried) */
};

enum ctr_state {
	CTR_HOST = 0, /* not a container: no endpoint */
	CTR_PENDING,  /* a container, metadata not read yet */
	CTR_READY,    /* metadata read */
	CTR_FAILED,   /* metadata could not be read: named by its id */
};

struct ctr_ent {
	uint64_t cgroup_id;
	int state;     /* enum ctr_state, under the lock while PENDING */
	bool dead;     /* dropped by the loop while PENDING: the worker frees it */
	bool prefetch; /* queued by the watcher: the result goes to the seen ring */
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
	struct pf_containers_stats logged; /* what the log has said so far */
	size_t ncontainers;		   /* entries that are containers */

	/* The watcher thread: cgroup directories as they are made. */
	pthread_t watcher;
	bool watcher_started;
	int ino_fd, stop_fd;
	char *wd_path[CTR_WATCH_MAX]; /* watch descriptor -> path below the root */
	pthread_mutex_t seen_lock;
	struct seen seen[CTR_SEEN_MAX]; /* a ring, newest at seen_next - 1 */
	size_t seen_next;

	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_cond_t done;	  /* the worker settled an entry */
	uint64_t wait_budget_ns;  /* what a flush may still wait for metadata */
	time_t engine_down_until; /* worker only: the API socket timed out, skip it till then */
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

/* ---- the watcher: cgroups seen being made ---- */

/*
 * Exec events reach user space in batches (the ring buffer wakes the agent
 * only when a quarter full, or at the flush), so a container that lived a
 * few milliseconds is gone, /proc and cgroup directory with it, before its
 * exec is read. The watcher sees each cgroup directory as it is made, with
 * inotify on the hierarchy, and records its id (the directory's inode) and
 * path while it exists: the exec event, read later, finds it there.
 */

struct ctr_ent;
static int meta_files(const struct pf_containers *c, struct ctr_ent *e);
static int prefetch(const struct pf_containers *c, const char *rel, struct pf_cmeta **out);
static void prefetch_engine(struct pf_containers *c, uint64_t id,
			    const struct pf_cgroup_container *cg);

static void seen_add(struct pf_containers *c, uint64_t id, const char *path, struct pf_cmeta *meta,
		     int meta_err)
{
	struct seen *s;

	pthread_mutex_lock(&c->seen_lock);
	s = &c->seen[c->seen_next++ % CTR_SEEN_MAX];
	if (s->meta) {
		pf_cmeta__clear(s->meta);
		free(s->meta);
	}
	s->id = id;
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->meta = meta;
	s->meta_err = meta_err;
	pthread_mutex_unlock(&c->seen_lock);
}

/* The worker's prefetch of cgroup @id: @meta (moved) or @err. */
static void seen_set_meta(struct pf_containers *c, uint64_t id, struct pf_cmeta *meta, int err)
{
	struct pf_cmeta *copy = err ? NULL : malloc(sizeof(*copy));

	if (copy)
		*copy = *meta;
	else
		pf_cmeta__clear(meta);
	pthread_mutex_lock(&c->seen_lock);
	for (size_t i = 0; i < CTR_SEEN_MAX; i++) {
		struct seen *s = &c->seen[i];

		if (s->id != id || s->meta)
			continue;
		s->meta = copy;
		s->meta_err = copy ? 0 : (err ? err : -ENOMEM);
		copy = NULL;
		break;
	}
	pthread_mutex_unlock(&c->seen_lock);
	if (copy) {
		pf_cmeta__clear(copy);
		free(copy);
	}
}

/* The metadata read when cgroup @id was made, moved into @out. Returns 0,
 * the error the read had, or -ENOENT when none was read. */
static int seen_take_meta(struct pf_containers *c, uint64_t id, struct pf_cmeta *out)
{
	int err = -ENOENT;

	pthread_mutex_lock(&c->seen_lock);
	for (size_t i = 0; i < CTR_SEEN_MAX; i++) {
		struct seen *s = &c->seen[i];

		if (s->id != id)
			continue;
		if (s->meta) {
			*out = *s->meta; /* the labels move with it */
			free(s->meta);
			s->meta = NULL;
			err = 0;
		} else if (s->meta_err) {
			err = s->meta_err;
		}
		break;
	}
	pthread_mutex_unlock(&c->seen_lock);
	return err;
}

static int seen_find(struct pf_containers *c, uint64_t id, char *out, size_t outsz)
{
	int err = -ENOENT;

	pthread_mutex_lock(&c->seen_lock);
	for (size_t i = 0; i < CTR_SEEN_MAX; i++) {
		if (c->seen[i].id == id && strlen(c->seen[i].path) < outsz) {
			memcpy(out, c->seen[i].path, strlen(c->seen[i].path) + 1);
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->seen_lock);
	return err;
}

static int path_depth(const char *rel)
{
	int d = 0;

	for (; *rel; rel++)
		d += *rel == '/';
	return d;
}

/* Watch @rel (a path below the root, "" for the root) and, with @walk, the
 * directories already under it. A container's own cgroup is not descended
 * into: what it makes below does not change whose it is. */
static struct ctr_ent *ent_add(struct pf_containers *c, uint64_t id, uint32_t pid);

static void watch_dir(struct pf_containers *c, const char *rel, bool walk, bool initial)
{
	struct pf_cgroup_container cg;
	char full[1024], sub[256];
	struct dirent *de;
	struct stat sb;
	DIR *d;
	int wd;

	if (snprintf(full, sizeof(full), "%s%s", c->root, rel) >= (int)sizeof(full))
		return;
	if (*rel && !pf_cgroup_path__parse(rel, strlen(rel), &cg)) {
		struct pf_cmeta *meta = NULL;
		int merr = 0;

		/* A containerd or CRI-O bundle is written before the runtime
		 * makes the cgroup and removed soon after the container ends,
		 * which can be before its exec event is read: read it now. */
		if (!initial && !stat(full, &sb)) {
			merr = prefetch(c, rel, &meta);
			if (merr == -ENOENT || merr == -ENOTSUP)
				merr = 0;
		}
		if (!stat(full, &sb)) {
			seen_add(c, sb.st_ino, rel, meta, merr);
			if (!initial && (cg.runtime == PF_CGROUP_RT_PODMAN ||
					 cg.runtime == PF_CGROUP_RT_DOCKER))
				prefetch_engine(c, sb.st_ino, &cg);
		}
		/* At start-up (the loop's own thread): containers already running
		 * have their metadata read now, before their first flow. */
		if (initial && !stat(full, &sb))
			ent_add(c, sb.st_ino, 0);
		return;
	}
	if (*rel && !stat(full, &sb))
		seen_add(c, sb.st_ino, rel, NULL, 0);
	if (path_depth(rel) >= CTR_WATCH_DEPTH)
		return;
	wd = inotify_add_watch(c->ino_fd, full, IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0 || wd >= CTR_WATCH_MAX)
		return; /* past the bound: found by the walk instead */
	free(c->wd_path[wd]);
	c->wd_path[wd] = strdup(rel);
	if (!walk || !(d = opendir(full)))
		return;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (snprintf(sub, sizeof(sub), "%s/%s", rel, de->d_name) < (int)sizeof(sub))
			watch_dir(c, sub, true, initial);
	}
	closedir(d);
}

static void *watcher(void *arg)
{
	struct pf_containers *c = arg;
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	struct pollfd pfd[2] = {{c->ino_fd, POLLIN, 0}, {c->stop_fd, POLLIN, 0}};
	char sub[256];

	pf_caps__drop_thread();
	for (;;) {
		ssize_t n;

		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents)
			break;
		n = read(c->ino_fd, buf, sizeof(buf));
		if (n <= 0)
			continue;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;

			p += sizeof(*ev) + ev->len;
			if (ev->wd < 0 || ev->wd >= CTR_WATCH_MAX)
				continue;
			if (ev->mask & IN_IGNORED) {
				free(c->wd_path[ev->wd]);
				c->wd_path[ev->wd] = NULL;
				continue;
			}
			if (!(ev->mask & IN_CREATE) || !(ev->mask & IN_ISDIR) || !ev->len ||
			    !c->wd_path[ev->wd])
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", c->wd_path[ev->wd], ev->name) <
			    (int)sizeof(sub))
				watch_dir(c, sub, true, false);
		}
	}
	return NULL;
}

static void watcher_start(struct pf_containers *c)
{
	c->ino_fd = inotify_init1(IN_CLOEXEC);
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (c->ino_fd < 0 || c->stop_fd < 0) {
		pf_log("cannot watch the cgroup hierarchy (%s): a container that ends within "
		       "an interval may be named as the host",
		       strerror(errno));
		return;
	}
	watch_dir(c, "", true, true);
	if (pthread_create(&c->watcher, NULL, watcher, c))
		pf_log("no thread to watch the cgroup hierarchy: a container that ends within "
		       "an interval may be named as the host");
	else
		c->watcher_started = true;
}

static void watcher_stop(struct pf_containers *c)
{
	uint64_t one = 1;

	if (c->watcher_started) {
		if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one))
			pthread_cancel(c->watcher);
		pthread_join(c->watcher, NULL);
	}
	if (c->ino_fd >= 0)
		close(c->ino_fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	for (size_t i = 0; i < CTR_WATCH_MAX; i++)
		free(c->wd_path[i]);
	for (size_t i = 0; i < CTR_SEEN_MAX; i++) {
		pf_cmeta__clear(c->seen[i].meta);
		free(c->seen[i].meta);
	}
}

/* The path of cgroup @id: as the watcher saw it made; from @pid's own file
 * when it is in that cgroup; else by walking the hierarchy. */
static int cg_path(struct pf_containers *c, uint64_t id, uint32_t pid, char *out, size_t outsz)
{
	struct walk w = {c, id, 0, out, outsz};
	uint64_t ino;

	if (!seen_find(c, id, out, outsz))
		return 0;
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
static void prefetch_engine(struct pf_containers *c, uint64_t id,
			    const struct pf_cgroup_container *cg)
{
	struct ctr_ent *e;

	if (!c->worker_started || !(e = calloc(1, sizeof(*e))))
		return;
	e->prefetch = true;
	e->cgroup_id = id;
	e->cg = *cg;
	e->state = CTR_PENDING;
	pthread_mutex_lock(&c->lock);
	if (c->qtail)
		c->qtail->qnext = e;
	else
		c->qhead = e;
	c->qtail = e;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

/* For the watcher: the bundle of the container whose cgroup @rel was just
 * made, into a new *@out. */
static int prefetch(const struct pf_containers *c, const char *rel, struct pf_cmeta **out)
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

		/* Read already, when the watcher saw the cgroup made. */
		err = e->prefetch ? -ENOENT : seen_take_meta(c, e->cgroup_id, &e->meta);
		if (err == -ENOENT)
			err = meta_read(c, e);
		if (e->prefetch) {
			seen_set_meta(c, e->cgroup_id, &e->meta, err);
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

/* ---- the cache (event loop) ---- */

struct pf_containers *pf_containers__new(const char *cgroup_root, const char *engine_sockets)
{
	struct pf_containers *c = calloc(1, sizeof(*c));
	const char *env = getenv("PF_ENGINE_SOCKETS");
	const char *tasks = getenv("PF_CONTAINERD_TASKS");

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
	pthread_mutex_init(&c->seen_lock, NULL);
	pthread_cond_init(&c->cond, NULL);
	pthread_cond_init(&c->done, NULL);
	c->wait_budget_ns = CTR_WAIT_NS;
	c->ino_fd = -1;
	c->stop_fd = -1;
	if (!c->map || !c->pids || !c->book) {
		pf_containers__free(c);
		errno = ENOMEM;
		return NULL;
	}
	if (!pthread_create(&c->worker, NULL, worker, c))
		c->worker_started = true;
	watcher_start(c);
	return c;
}

static void ent_drop(struct pf_containers *c, struct ctr_ent *e)
{
	if (e->state != CTR_HOST)
		c->ncontainers--;
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
	watcher_stop(c);
	if (c->worker_started) {
		pthread_mutex_lock(&c->lock);
		c->stop = true;
		pthread_cond_signal(&c->cond);
		pthread_mutex_unlock(&c->lock);
		pthread_join(c->worker, NULL);
		/* Queued entries are in the map too, but for the watcher's. */
		for (struct ctr_ent *e = c->qhead, *next; e; e = next) {
			next = e->qnext;
			if (e->prefetch)
				free(e);
		}
		c->qhead = NULL;
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
	pthread_mutex_destroy(&c->seen_lock);
	pthread_cond_destroy(&c->cond);
	pthread_cond_destroy(&c->done);
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
	int created, err;

	if (pf_hmap__count(c->map) >= PF_CTR_MAX)
		evict_one(c);
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cgroup_id = id;
	e->seq = ++c->seq;
	if (cg_path(c, id, pid, e->cgpath, sizeof(e->cgpath))) {
		/* Gone before it was read: counted, and remembered as the
		 * host's for a few intervals (its path "" never exists, so it
		 * ends at once) rather than walked for again on every flow. */
		c->st.unresolved++;
		e->cgpath[0] = '\0';
		e->state = CTR_HOST;
	} else if (pf_cgroup_path__parse(e->cgpath, strlen(e->cgpath), &e->cg)) {
		e->state = CTR_HOST;
	} else {
		e->state = CTR_PENDING;
		c->ncontainers++;
	}
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
	err = seen_take_meta(c, id, &e->meta);
	if (err != -ENOENT) {
		/* Read by the watcher when the cgroup was made. */
		e->state = err ? CTR_FAILED : CTR_READY;
		if (err)
			snprintf(e->err, sizeof(e->err), "%s",
				 err == -ENODATA ? "the bundle names no pod" : strerror(-err));
		ep_fill(e);
		return e;
	}
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

/* Once the worker is done with @e: its endpoint from the metadata, or the
 * failure counted and logged (once per container). */
static void settle(struct pf_containers *c, struct ctr_ent *e, bool wait)
{
	int state;

	if (e->logged || e->state == CTR_HOST)
		return;
	pthread_mutex_lock(&c->lock);
	if (e->state == CTR_PENDING && wait && c->wait_budget_ns) {
		struct timespec t0, dl;
		uint64_t used;

		clock_gettime(CLOCK_MONOTONIC, &t0);
		dl = t0;
		dl.tv_nsec += (long)c->wait_budget_ns;
		dl.tv_sec += dl.tv_nsec / 1000000000L;
		dl.tv_nsec %= 1000000000L;
		while (e->state == CTR_PENDING &&
		       pthread_cond_timedwait(&c->done, &c->lock, &dl) != ETIMEDOUT)
			;
		clock_gettime(CLOCK_MONOTONIC, &dl);
		used = (uint64_t)(dl.tv_sec - t0.tv_sec) * 1000000000ull +
		       (uint64_t)(dl.tv_nsec - t0.tv_nsec);
		c->wait_budget_ns = used >= c->wait_budget_ns ? 0 : c->wait_budget_ns - used;
	}
	state = e->state;
	pthread_mutex_unlock(&c->lock);
	if (state == CTR_PENDING)
		return;
	e->logged = true;
	if (state == CTR_READY) {
		c->st.meta_ok++;
	} else {
		c->st.meta_failed++;
		pf_log("container %s (%s): no metadata from the runtime (%s); flows name it by "
		       "its id (%llu such containers so far)",
		       e->cg.id, pf_cgroup_runtime__name(e->cg.runtime), e->err,
		       (unsigned long long)c->st.meta_failed);
	}
	ep_fill(e);
}

const struct pf_flow_ep *pf_containers__ep(struct pf_containers *c, uint64_t cgroup_id,
					   uint32_t pid)
{
	struct ctr_ent **slot, *e;
	char path[512];

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
	settle(c, e, true);
	return &e->ep;
}

void pf_containers__book_reset(struct pf_containers *c)
{
	if (c)
		book_clear(c->book);
}

bool pf_containers__any(const struct pf_containers *c)
{
	return c && c->ncontainers;
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
		settle(c, e, false);
		if (!e->ended && (cg_ino(c, e->cgpath, &ino) || ino != e->cgroup_id))
			e->ended = true;
		/* Kept while its metadata is read, so every failure is counted. */
		if (e->ended && ++e->ended_ticks > CTR_GRACE_TICKS &&
		    (e->logged || e->state == CTR_HOST))
			gone[ngone++] = e;
	}
	for (size_t i = 0; i < ngone; i++) {
		pf_hmap__remove(c->map, &gone[i]->cgroup_id);
		ent_drop(c, gone[i]);
	}
	c->wait_budget_ns = CTR_WAIT_NS;
	/* Losses, once per interval in which they grew. */
	if (c->st.evicted > c->logged.evicted)
		pf_log("%llu container identities evicted: more than %u cgroups in use; their "
		       "flows are named again when next seen",
		       (unsigned long long)(c->st.evicted - c->logged.evicted), PF_CTR_MAX);
	if (c->st.unresolved > c->logged.unresolved)
		pf_log("%llu cgroup ids not found in the cgroup hierarchy (gone before they "
		       "were read): those processes are named as the host's",
		       (unsigned long long)(c->st.unresolved - c->logged.unresolved));
	c->logged = c->st;
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
