/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Which container a process runs in, and what the runtime calls it.
 *
 * cgroup id (captured by the kernel side with every exec event) -> cgroup
 * v2 path -> container id (lib/cgroup_path.c) -> name, namespace and labels
 * from the runtime on the node (lib/container_meta.c): containerd's and
 * CRI-O's OCI bundles, the Docker Engine API of Docker and Podman on a unix
 * socket.
 *
 * Exec events are read up to 100 ms late, when a short container may be
 * gone with its /proc entry, cgroup and bundle. So a watcher thread notes
 * each cgroup as it is made (inotify on the hierarchy): its id and path,
 * and for containerd and CRI-O the bundle, read there and then; the Engine
 * API is asked at once by the worker. Other paths: /proc/<pid>/cgroup
 * (checked against the id) and a bounded walk of the hierarchy. Metadata
 * is read by a worker thread, so a runtime that hangs never holds up the
 * event loop. Until the metadata arrives, or when it cannot be had, the
 * container is named by its id alone (each failure counted and logged once).
 *
 * Bounded: at most PF_CTR_MAX cgroups are cached; when full, ended ones go
 * first, then the oldest (counted and logged). A cgroup whose directory is
 * gone ends; its entry is dropped a grace period later (flows of its last
 * interval still name it). cgroup ids are never reused while the kernel
 * runs, so a later container cannot inherit an ended one's name.
 */
#ifndef PF_CONTAINERS_H
#define PF_CONTAINERS_H

#include <stdbool.h>
#include <stdint.h>

#include "flow_agg.h"

#define PF_CTR_MAX 4096

struct pf_containers_stats {
	uint64_t entries;     /* cgroups cached now */
	uint64_t containers;  /* of which containers */
	uint64_t meta_ok;     /* metadata read (cumulative) */
	uint64_t meta_failed; /* metadata that could not be read (cumulative) */
	uint64_t unresolved;  /* cgroup ids whose path could not be found */
	uint64_t evicted;     /* entries dropped because the cache was full */
};

struct pf_containers;

/* @cgroup_root: the cgroup v2 mount. Runtime sockets are the Docker Engine
 * API sockets to try, ':'-separated (NULL: the usual places; the
 * environment variable PF_ENGINE_SOCKETS overrides). NULL on error,
 * errno set. */
struct pf_containers *pf_containers__new(const char *cgroup_root, const char *engine_sockets);
void pf_containers__free(struct pf_containers *c); /* accepts NULL; joins the worker */

/* An exec (or a scanned process) in cgroup @cgroup_id: resolve its path now,
 * while @pid lives, and queue the metadata read. */
void pf_containers__note(struct pf_containers *c, uint64_t cgroup_id, uint32_t pid);

/*
 * The endpoint for cgroup @cgroup_id (0: unknown, then /proc/@pid/cgroup
 * is read): NULL for a host process or an unknown cgroup; else a pointer
 * valid until the next call of pf_containers__tick().
 */
const struct pf_flow_ep *pf_containers__ep(struct pf_containers *c, uint64_t cgroup_id,
					   uint32_t pid);

/*
 * The address book of one collection: which workload holds each local end
 * (@addr, @port, @proto) of the flows read, so that the other end of a
 * flow between two containers of this node is named too. Reset before a
 * collection, filled from every flow's local side, then asked for each
 * flow's remote side. @addr is 16 bytes (IPv4-mapped).
 */
void pf_containers__book_reset(struct pf_containers *c);
/* Whether any container is known: without one the address book is skipped. */
bool pf_containers__any(const struct pf_containers *c);
void pf_containers__book_add(struct pf_containers *c, const uint8_t addr[16], uint16_t port,
			     uint8_t proto, const struct pf_flow_ep *ep);
const struct pf_flow_ep *pf_containers__book_find(struct pf_containers *c, const uint8_t addr[16],
						  uint16_t port, uint8_t proto);

/* Once per interval, after the flush: end cgroups whose directory is gone,
 * drop ended ones past their grace period, log new failures. */
void pf_containers__tick(struct pf_containers *c);

void pf_containers__stats(struct pf_containers *c, struct pf_containers_stats *st);

#endif
