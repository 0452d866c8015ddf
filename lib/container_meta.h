/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * A container's identity as the flow log names it, read from what the
 * runtimes leave on the node (no Kubernetes API server):
 *
 *   containerd  the OCI bundle's config.json, "annotations":
 *               io.kubernetes.cri.sandbox-name / -namespace / -uid
 *               (written by the CRI plugin for every container of a pod)
 *   CRI-O       config.json "annotations": io.kubernetes.pod.name /
 *               .namespace / .uid, io.kubernetes.container.name, and
 *               io.kubernetes.cri-o.Labels (a JSON object in a string)
 *   Docker,     the Engine API's GET /containers/<id>/json: "Name",
 *   Podman      "Config": {"Image", "Labels"}; Kubernetes pods run by
 *               cri-dockerd carry io.kubernetes.pod.name / .namespace labels
 *
 * Pure parsing: the caller reads the files and sockets. The JSON reader is
 * a bounded scanner that refuses malformed input (a half-written file gives
 * -EINVAL, never a wrong answer) and never reads past the given length.
 */
#ifndef PF_CONTAINER_META_H
#define PF_CONTAINER_META_H

#include <stddef.h>

#define PF_CMETA_NAME_MAX   253 /* a Kubernetes object name (DNS subdomain) */
#define PF_CMETA_NS_MAX	    63	/* a namespace (DNS label) */
#define PF_CMETA_IMAGE_MAX  255
#define PF_CMETA_LABELS_MAX 64	/* labels kept per container; more are counted */
#define PF_CMETA_LABEL_MAX  512 /* one "k=v"; a longer one is left out */

struct pf_cmeta {
	char name[PF_CMETA_NAME_MAX + 1];     /* pod name, else container name; "" unknown */
	char namespace_[PF_CMETA_NS_MAX + 1]; /* Kubernetes namespace; "" outside Kubernetes */
	char image[PF_CMETA_IMAGE_MAX + 1];
	unsigned nlabels;
	unsigned labels_dropped;	   /* over PF_CMETA_LABELS_MAX or PF_CMETA_LABEL_MAX */
	char *labels[PF_CMETA_LABELS_MAX]; /* "k=v", sorted, malloc'd */
};

void pf_cmeta__clear(struct pf_cmeta *m); /* frees the labels; accepts a zeroed struct */

/*
 * Fill @m from an OCI bundle's config.json (@doc, @len bytes) as containerd
 * or CRI-O wrote it. Returns 0 when the document names a pod, -ENOENT when
 * it is valid but carries no pod annotations (a container outside
 * Kubernetes), -EINVAL when it is not a complete JSON object (half-written),
 * -ENOMEM.
 */
int pf_cmeta__from_oci(struct pf_cmeta *m, const char *doc, size_t len);

/*
 * Fill @m from a Docker Engine API container document (Docker, Podman).
 * The name is the pod's when the labels say the container is a
 * Kubernetes pod's, else the container's "Name" without its leading '/'.
 * Returns 0, -EINVAL (malformed, or no "Name"), -ENOMEM.
 */
int pf_cmeta__from_engine(struct pf_cmeta *m, const char *doc, size_t len);

/*
 * The aggregated name of a workload as Calico writes it (name_aggr): a name
 * whose last component after '-' is the 5-character random suffix the
 * Kubernetes name generator appends (ReplicaSet, DaemonSet, Job pods:
 * "web-7d9b8c5f4-x2x8q" -> "web-7d9b8c5f4-*") ends in '*' instead; any
 * other name is its own aggregate. Writes a NUL-terminated string into
 * @out (truncated to @outsz - 1 bytes). Returns @out.
 */
char *pf_cmeta__name_aggr(const char *name, char *out, size_t outsz);

/*
 * The JSON scanner under the two readers, exposed for tests and fuzzing.
 * Find the string at the object path @path (@depth keys from the top
 * object) in @doc and unescape it into @out (NUL-terminated). Returns 0,
 * -ENOENT (no such member, or not a string), -EINVAL (malformed document),
 * -ENOSPC (longer than @outsz - 1; @out holds the first bytes).
 */
int pf_cjson__get_str(const char *doc, size_t len, const char *const *path, size_t depth, char *out,
		      size_t outsz);

/* Call @fn(key, value, ctx) for each string member of the object at @path;
 * members that are not strings are skipped. A non-zero return stops the
 * walk and is returned. -ENOENT: no object there; -EINVAL: malformed. */
typedef int (*pf_cjson_member_fn)(const char *key, const char *val, void *ctx);
int pf_cjson__each_str(const char *doc, size_t len, const char *const *path, size_t depth,
		       pf_cjson_member_fn fn, void *ctx);

#endif
