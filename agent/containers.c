// SPDX-License-Identifier: BSD-2-Clause
/*
 * Container identities: the cache the event loop asks (see containers.h,
 * and containers_int.h for the threads).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"
#include "containers_int.h"

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
	if (!pthread_create(&c->worker, NULL, pf_ctr__worker, c))
		c->worker_started = true;
	pf_ctr__watch_start(c);
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
	pf_ctr__watch_stop(c);
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

struct ctr_ent *pf_ctr__ent_add(struct pf_containers *c, uint64_t id, uint32_t pid)
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
	if (pf_ctr__cg_path(c, id, pid, e->cgpath, sizeof(e->cgpath))) {
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
	err = pf_ctr__seen_take_meta(c, id, &e->meta);
	if (err != -ENOENT) {
		/* Read by the watcher when the cgroup was made. */
		e->state = err ? CTR_FAILED : CTR_READY;
		if (err)
			snprintf(e->err, sizeof(e->err), "%s",
				 err == -ENODATA ? "the bundle names no pod" : strerror(-err));
		pf_ctr__ep_fill(e);
		return e;
	}
	pf_ctr__ep_fill(e);
	if (!c->worker_started) {
		if (pthread_create(&c->worker, NULL, pf_ctr__worker, c)) {
			e->state = CTR_FAILED;
			snprintf(e->err, sizeof(e->err), "no worker thread");
			return e;
		}
		c->worker_started = true;
	}
	pf_ctr__enqueue(c, e);
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
		pf_ctr__ent_add(c, cgroup_id, pid);
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
	pf_ctr__ep_fill(e);
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
		else if (pid && !pf_ctr__proc_cgroup(pid, path, sizeof(path)) &&
			 !pf_ctr__cg_ino(c, path, &cgroup_id))
			pid_set(c, pid, cgroup_id);
		if (!cgroup_id)
			return NULL;
	}
	slot = pf_hmap__find(c->map, &cgroup_id);
	e = slot ? *slot : pf_ctr__ent_add(c, cgroup_id, pid);
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
		if (!e->ended && (pf_ctr__cg_ino(c, e->cgpath, &ino) || ino != e->cgroup_id))
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
