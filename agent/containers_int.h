/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Container identities, inside (see containers.h for what they do): the
 * shared state of the three parts, each in its own file:
 *
 *   containers.c        the cache, owned by the event loop
 *   containers_watch.c  cgroup id -> path; the watcher thread (inotify) that
 *                       notes cgroups as they are made
 *   containers_rt.c     the runtimes: bundles, the Engine API; the worker
 *                       thread that reads them
 *
 * Threads: the event loop owns the cache (insert, lookup, evict). The worker
 * only reads runtime state for entries the loop (or the watcher) queued, and
 * publishes the result under the lock by setting the entry's state; the loop
 * never frees an entry while it is queued or being read (state PENDING), it
 * only marks it dead and lets the worker free it. The watcher shares only the
 * seen ring (its own lock) and the queue.
 */
#ifndef PF_CONTAINERS_INT_H
#define PF_CONTAINERS_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

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
	struct pf_hmap *wds; /* watch descriptor -> path below the root (char *) */
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

/* containers_watch.c */
int pf_ctr__cg_ino(const struct pf_containers *c, const char *path, uint64_t *ino);
int pf_ctr__proc_cgroup(uint32_t pid, char *out, size_t outsz);
/* The path of cgroup @id: as the watcher saw it made; from @pid's own file
 * when it is in that cgroup; else by walking the hierarchy. 0 or -ENOENT. */
int pf_ctr__cg_path(struct pf_containers *c, uint64_t id, uint32_t pid, char *out, size_t outsz);
/* The metadata read when cgroup @id was made, moved into @out: 0, the read's
 * error, or -ENOENT when none was read. */
int pf_ctr__seen_take_meta(struct pf_containers *c, uint64_t id, struct pf_cmeta *out);
/* The worker's prefetch of cgroup @id: @meta (moved) or @err. */
void pf_ctr__seen_set_meta(struct pf_containers *c, uint64_t id, struct pf_cmeta *meta, int err);
void pf_ctr__watch_start(struct pf_containers *c); /* notes running containers too */
/* Whether the watcher noted cgroup @id being made (tests). */
bool pf_ctr__seen(struct pf_containers *c, uint64_t id);
void pf_ctr__watch_stop(struct pf_containers *c);

/* containers_rt.c */
void *pf_ctr__worker(void *arg);
/* Hand @e to the worker thread, at the end of its queue (takes c->lock). */
void pf_ctr__enqueue(struct pf_containers *c, struct ctr_ent *e);
/* The bundle of the container whose cgroup @rel was just made, into a new
 * *@out (the watcher's thread). 0, -ENOTSUP for an API runtime, or the error. */
int pf_ctr__prefetch(const struct pf_containers *c, const char *rel, struct pf_cmeta **out);
/* Queue the Engine API question for a Docker or Podman cgroup just made. */
void pf_ctr__prefetch_engine(struct pf_containers *c, uint64_t id,
			     const struct pf_cgroup_container *cg);
/* The endpoint of @e from its metadata, or its container id. */
void pf_ctr__ep_fill(struct ctr_ent *e);

/* containers.c */
struct ctr_ent *pf_ctr__ent_add(struct pf_containers *c, uint64_t id, uint32_t pid);

#endif
