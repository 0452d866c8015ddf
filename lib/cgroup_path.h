/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Which container a cgroup v2 path belongs to.
 *
 * Container runtimes put each container in a cgroup whose name carries the
 * container id, and Kubernetes puts each pod's containers under a cgroup named
 * after the pod's UID. The layouts differ by runtime and by cgroup driver
 * (systemd: slices and scopes; cgroupfs: plain directories):
 *
 *   Docker      systemd   /system.slice/docker-<id>.scope
 *               cgroupfs  /docker/<id>
 *   Podman      systemd   /machine.slice/libpod-<id>.scope
 *               cgroupfs  /libpod_parent/libpod-<id>
 *   containerd  systemd   .../cri-containerd-<id>.scope
 *               cgroupfs  /k8s.io/<id>                 (ctr, namespace k8s.io)
 *   CRI-O       systemd   .../crio-<id>.scope
 *               cgroupfs  .../crio-<id>
 *   Kubernetes  systemd   /kubepods.slice/kubepods-<qos>.slice/kubepods-<qos>-pod<uid>.slice/<ctr>
 *               cgroupfs  /kubepods/<qos>/pod<uid>/<ctr>
 *
 * where <ctr> is one of the runtime forms above or, with the cgroupfs driver,
 * the bare container id (the path then does not say which runtime made it).
 *
 * This file is pure parsing: it never reads the file system. The input is the
 * path as the host's cgroup v2 hierarchy names it (the part after "0::" in
 * /proc/<pid>/cgroup, or a directory under the cgroup v2 mount).
 */
#ifndef PF_CGROUP_PATH_H
#define PF_CGROUP_PATH_H

#include <stddef.h>

enum pf_cgroup_runtime {
	PF_CGROUP_RT_NONE = 0,	 /* not a container (a host process) */
	PF_CGROUP_RT_DOCKER,	 /* docker-<id>.scope, /docker/<id> */
	PF_CGROUP_RT_PODMAN,	 /* libpod-<id>.scope, libpod-<id> */
	PF_CGROUP_RT_CONTAINERD, /* cri-containerd-<id>.scope, /k8s.io/<id> */
	PF_CGROUP_RT_CRIO,	 /* crio-<id>.scope, crio-<id> */
	PF_CGROUP_RT_UNKNOWN,	 /* a bare id in a Kubernetes pod's cgroup (cgroupfs driver) */
};

/*
 * Container ids: Docker, Podman, CRI-O and containerd's CRI plugin use 64
 * lowercase hex digits; a containerd container made with ctr is named by its
 * creator, up to containerd's identifier limit of 76 characters.
 */
#define PF_CGROUP_ID_MAX 76
/* A pod UID: a UUID (36 characters) or, for static pods, 32 hex digits. */
#define PF_CGROUP_POD_UID_MAX 36

struct pf_cgroup_container {
	enum pf_cgroup_runtime runtime;
	char id[PF_CGROUP_ID_MAX + 1];		 /* NUL-terminated */
	char pod_uid[PF_CGROUP_POD_UID_MAX + 1]; /* "" outside a Kubernetes pod; dashes, not '_' */
};

/*
 * Find the container in the cgroup v2 path @path of @len bytes (not
 * necessarily NUL-terminated; never read past @len). The path starts with
 * '/'. When several components name a container (a container inside a
 * container), the innermost one wins; components below the container's own
 * cgroup (a container that makes sub-cgroups, such as systemd inside it) do
 * not change the answer. The pod UID is that of the nearest pod cgroup above
 * the container.
 *
 * Returns 0 with *@out filled when the path is a container's; -ENOENT when it
 * is not (a host process: *@out is zeroed, runtime PF_CGROUP_RT_NONE);
 * -EINVAL when @path or @out is NULL, @path does not start with '/', or it
 * holds a NUL byte.
 */
int pf_cgroup_path__parse(const char *path, size_t len, struct pf_cgroup_container *out);

/* "docker", "podman", "containerd", "cri-o", "unknown", or "-" for NONE. */
const char *pf_cgroup_runtime__name(enum pf_cgroup_runtime rt);

#endif
