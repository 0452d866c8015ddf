// SPDX-License-Identifier: BSD-2-Clause
/*
 * Container identities: cgroup id -> cgroup path, and the watcher thread
 * that notes cgroups as they are made (see containers_int.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "containers_int.h"

/* ---- cgroup id -> path ---- */

int pf_ctr__cg_ino(const struct pf_containers *c, const char *path, uint64_t *ino)
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
int pf_ctr__proc_cgroup(uint32_t pid, char *out, size_t outsz)
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

/*
 * The @k-th newest note (1: the newest). Lookups go newest first: an id is
 * a cgroup directory's inode, which cgroupfs never gives out twice while
 * the kernel runs, but a note of the same id that is newer is the truth
 * wherever ids could repeat. (The modulo is right across the wrap of
 * seen_next: 2^64 is a multiple of CTR_SEEN_MAX.)
 */
static struct seen *seen_at(struct pf_containers *c, size_t k)
{
	return &c->seen[(c->seen_next - k) % CTR_SEEN_MAX];
}

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
void pf_ctr__seen_set_meta(struct pf_containers *c, uint64_t id, struct pf_cmeta *meta, int err)
{
	struct pf_cmeta *copy = err ? NULL : malloc(sizeof(*copy));

	if (copy)
		*copy = *meta;
	else
		pf_cmeta__clear(meta);
	pthread_mutex_lock(&c->seen_lock);
	for (size_t k = 1; k <= CTR_SEEN_MAX; k++) {
		struct seen *s = seen_at(c, k);

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
int pf_ctr__seen_take_meta(struct pf_containers *c, uint64_t id, struct pf_cmeta *out)
{
	int err = -ENOENT;

	pthread_mutex_lock(&c->seen_lock);
	for (size_t k = 1; k <= CTR_SEEN_MAX; k++) {
		struct seen *s = seen_at(c, k);

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
	for (size_t k = 1; k <= CTR_SEEN_MAX; k++) {
		const struct seen *s = seen_at(c, k);

		if (s->id == id && strlen(s->path) < outsz) {
			memcpy(out, s->path, strlen(s->path) + 1);
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&c->seen_lock);
	return err;
}

bool pf_ctr__seen(struct pf_containers *c, uint64_t id)
{
	bool found = false;

	pthread_mutex_lock(&c->seen_lock);
	for (size_t i = 0; i < CTR_SEEN_MAX && !found; i++)
		found = c->seen[i].id == id;
	pthread_mutex_unlock(&c->seen_lock);
	return found;
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

static void watch_dir(struct pf_containers *c, const char *rel, bool walk, bool initial)
{
	struct pf_cgroup_container cg;
	char full[1024], sub[256];
	struct dirent *de;
	struct stat sb;
	char **slot;
	int wd, created;
	DIR *d;

	if (snprintf(full, sizeof(full), "%s%s", c->root, rel) >= (int)sizeof(full))
		return;
	if (*rel && !pf_cgroup_path__parse(rel, strlen(rel), &cg)) {
		struct pf_cmeta *meta = NULL;
		int merr = 0;

		/* Its id first: the directory may go at any moment. */
		if (stat(full, &sb))
			return;
		/* At start-up (the loop's own thread): containers already running
		 * have their metadata read now, before their first flow. */
		if (initial) {
			seen_add(c, sb.st_ino, rel, NULL, 0);
			pf_ctr__ent_add(c, sb.st_ino, 0);
			return;
		}
		/* A containerd or CRI-O bundle is written before the runtime
		 * makes the cgroup and removed soon after the container ends,
		 * which can be before its exec event is read: read it now. */
		merr = pf_ctr__prefetch(c, rel, &meta);
		if (merr == -ENOENT || merr == -ENOTSUP)
			merr = 0;
		seen_add(c, sb.st_ino, rel, meta, merr);
		if (cg.runtime == PF_CGROUP_RT_PODMAN || cg.runtime == PF_CGROUP_RT_DOCKER)
			pf_ctr__prefetch_engine(c, sb.st_ino, &cg);
		return;
	}
	if (*rel && !stat(full, &sb))
		seen_add(c, sb.st_ino, rel, NULL, 0);
	if (path_depth(rel) >= CTR_WATCH_DEPTH)
		return;
	/* Past the bound, cgroups are found by the walk instead. */
	if (pf_hmap__count(c->wds) >= CTR_WATCH_MAX)
		return;
	wd = inotify_add_watch(c->ino_fd, full, IN_CREATE | IN_ONLYDIR | IN_DONT_FOLLOW);
	if (wd < 0)
		return;
	slot = pf_hmap__upsert(c->wds, &wd, &created);
	if (!slot) {
		inotify_rm_watch(c->ino_fd, wd);
		return;
	}
	if (!created)
		free(*slot); /* the same directory again */
	*slot = strdup(rel);
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
			char **slot = pf_hmap__find(c->wds, &ev->wd);

			if (!slot)
				continue;
			if (ev->mask & IN_IGNORED) {
				/* The directory went: its watch with it. */
				free(*slot);
				pf_hmap__remove(c->wds, &ev->wd);
				continue;
			}
			if (!(ev->mask & IN_CREATE) || !(ev->mask & IN_ISDIR) || !ev->len || !*slot)
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", *slot, ev->name) < (int)sizeof(sub))
				watch_dir(c, sub, true, false);
		}
	}
	return NULL;
}

void pf_ctr__watch_start(struct pf_containers *c)
{
	c->ino_fd = inotify_init1(IN_CLOEXEC);
	c->stop_fd = eventfd(0, EFD_CLOEXEC);
	c->wds = pf_hmap__new(sizeof(int), sizeof(char *), CTR_WATCH_MAX);
	if (c->ino_fd < 0 || c->stop_fd < 0 || !c->wds) {
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

void pf_ctr__watch_stop(struct pf_containers *c)
{
	struct pf_hmap_iter it = {0};
	uint64_t one = 1;
	const void *k;
	void *v;

	if (c->watcher_started) {
		if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one))
			pthread_cancel(c->watcher);
		pthread_join(c->watcher, NULL);
	}
	if (c->ino_fd >= 0)
		close(c->ino_fd);
	if (c->stop_fd >= 0)
		close(c->stop_fd);
	while (c->wds && pf_hmap__next(c->wds, &it, &k, &v))
		free(*(char **)v);
	pf_hmap__free(c->wds);
	c->wds = NULL;
	for (size_t i = 0; i < CTR_SEEN_MAX; i++) {
		pf_cmeta__clear(c->seen[i].meta);
		free(c->seen[i].meta);
	}
}

/* The path of cgroup @id: as the watcher saw it made; from @pid's own file
 * when it is in that cgroup; else by walking the hierarchy. */
int pf_ctr__cg_path(struct pf_containers *c, uint64_t id, uint32_t pid, char *out, size_t outsz)
{
	struct walk w = {c, id, 0, out, outsz};
	uint64_t ino;

	if (!seen_find(c, id, out, outsz))
		return 0;
	if (pid && !pf_ctr__proc_cgroup(pid, out, outsz) && !pf_ctr__cg_ino(c, out, &ino) &&
	    ino == id)
		return 0;
	return walk_dir(&w, "", 0);
}
