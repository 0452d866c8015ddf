// SPDX-License-Identifier: BSD-2-Clause
/*
 * Which container a cgroup v2 path belongs to (see cgroup_path.h).
 *
 * The path is walked one component at a time, left to right, remembering
 * only what the next component needs: the previous component (a bare id
 * means a container only under "docker", "k8s.io" or a pod's cgroup),
 * whether we are under Kubernetes' "kubepods" tree, and the UID of the
 * nearest pod cgroup. Every match is strict (exact prefixes and suffixes,
 * ids of the exact length and alphabet) so that a host cgroup that merely
 * looks similar, such as conmon's "libpod-conmon-<id>.scope", is not taken
 * for a container.
 */
#include "cgroup_path.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

/* Docker, Podman, CRI-O and containerd's CRI plugin: 64 lowercase hex digits. */
#define PF_HEX_ID_LEN 64

/* A component of the path: [s, s + n). */
struct comp {
	const char *s;
	size_t n;
};

static bool comp_is(struct comp c, const char *lit)
{
	size_t n = strlen(lit);

	return c.n == n && memcmp(c.s, lit, n) == 0;
}

static bool has_prefix(struct comp c, const char *lit)
{
	size_t n = strlen(lit);

	return c.n >= n && memcmp(c.s, lit, n) == 0;
}

static bool has_suffix(struct comp c, const char *lit)
{
	size_t n = strlen(lit);

	return c.n >= n && memcmp(c.s + c.n - n, lit, n) == 0;
}

static bool is_hex(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
}

static bool is_alnum(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_hex_id(const char *s, size_t n)
{
	size_t i;

	if (n != PF_HEX_ID_LEN)
		return false;
	for (i = 0; i < n; i++)
		if (!is_hex(s[i]))
			return false;
	return true;
}

/*
 * A containerd identifier (containerd's identifiers.Validate): runs of
 * letters and digits joined by single '.', '_' or '-', at most 76 bytes.
 */
static bool is_containerd_id(const char *s, size_t n)
{
	bool after_sep = true;
	size_t i;

	if (n == 0 || n > PF_CGROUP_ID_MAX)
		return false;
	for (i = 0; i < n; i++) {
		if (is_alnum(s[i])) {
			after_sep = false;
		} else if (s[i] == '.' || s[i] == '_' || s[i] == '-') {
			if (after_sep)
				return false;
			after_sep = true;
		} else {
			return false;
		}
	}
	return !after_sep;
}

/*
 * A pod UID as it appears in a cgroup name: a UUID with its dashes written
 * as @dash ('-' for cgroupfs, '_' in systemd unit names, where '-' separates
 * the slice hierarchy), or 32 hex digits (a static pod's UID is a hash).
 * Copies it into @out with dashes, only when it is one (@out is the last pod
 * UID seen and must survive a component that only looks like a pod's).
 */
static bool parse_pod_uid(const char *s, size_t n, char dash, char *out)
{
	char uid[PF_CGROUP_POD_UID_MAX + 1];
	size_t i;

	if (n != 32 && n != 36)
		return false;
	for (i = 0; i < n; i++) {
		bool want_dash = n == 36 && (i == 8 || i == 13 || i == 18 || i == 23);

		if (want_dash ? s[i] != dash : !is_hex(s[i]))
			return false;
		uid[i] = want_dash ? '-' : s[i];
	}
	uid[n] = '\0';
	memcpy(out, uid, n + 1);
	return true;
}

/*
 * A pod's cgroup: "pod<uid>" (cgroupfs) or "kubepods[-<qos>]-pod<uid>.slice"
 * (systemd, whose slice names repeat every ancestor's name).
 */
static bool parse_pod(struct comp c, char *uid)
{
	static const char *const slices[] = {"kubepods-pod", "kubepods-burstable-pod",
					     "kubepods-besteffort-pod"};
	size_t i;

	if (has_prefix(c, "pod"))
		return parse_pod_uid(c.s + 3, c.n - 3, '-', uid);
	if (!has_suffix(c, ".slice"))
		return false;
	for (i = 0; i < sizeof(slices) / sizeof(slices[0]); i++) {
		size_t p = strlen(slices[i]);

		if (has_prefix(c, slices[i]) && c.n > p + 6)
			return parse_pod_uid(c.s + p, c.n - p - 6, '_', uid);
	}
	return false;
}

/* "<prefix><64 hex>" followed by ".scope" or, when @bare_ok, by nothing. */
static bool match_prefixed(struct comp c, const char *prefix, bool bare_ok, struct comp *id)
{
	size_t p = strlen(prefix);

	if (!has_prefix(c, prefix))
		return false;
	if (c.n == p + PF_HEX_ID_LEN + 6 && has_suffix(c, ".scope"))
		;
	else if (!(bare_ok && c.n == p + PF_HEX_ID_LEN))
		return false;
	id->s = c.s + p;
	id->n = PF_HEX_ID_LEN;
	return is_hex_id(id->s, id->n);
}

/* The runtime and id that component @c names given its parent @prev, or NONE. */
static enum pf_cgroup_runtime match_container(struct comp c, struct comp prev, bool prev_is_pod,
					      struct comp *id)
{
	/* Systemd scopes; Podman and CRI-O also name cgroupfs directories so. */
	if (match_prefixed(c, "docker-", false, id))
		return PF_CGROUP_RT_DOCKER;
	if (match_prefixed(c, "libpod-", true, id))
		return PF_CGROUP_RT_PODMAN;
	if (match_prefixed(c, "cri-containerd-", false, id))
		return PF_CGROUP_RT_CONTAINERD;
	if (match_prefixed(c, "crio-", true, id))
		return PF_CGROUP_RT_CRIO;

	/* Bare ids: only their parent says what they are. */
	*id = c;
	if (comp_is(prev, "docker") && is_hex_id(c.s, c.n))
		return PF_CGROUP_RT_DOCKER;
	if (comp_is(prev, "k8s.io") && is_containerd_id(c.s, c.n))
		return PF_CGROUP_RT_CONTAINERD;
	if (prev_is_pod && is_hex_id(c.s, c.n))
		return PF_CGROUP_RT_UNKNOWN;
	return PF_CGROUP_RT_NONE;
}

int pf_cgroup_path__parse(const char *path, size_t len, struct pf_cgroup_container *out)
{
	char pod_uid[PF_CGROUP_POD_UID_MAX + 1] = "";
	struct comp prev = {NULL, 0}, c, id;
	bool kubepods = false, prev_is_pod = false;
	const char *p, *end;

	if (!path || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (len == 0 || path[0] != '/' || memchr(path, '\0', len))
		return -EINVAL;

	end = path + len;
	for (p = path; p < end;) {
		enum pf_cgroup_runtime rt;
		bool is_pod = false;

		while (p < end && *p == '/')
			p++;
		if (p == end)
			break;
		c.s = p;
		while (p < end && *p != '/')
			p++;
		c.n = (size_t)(p - c.s);

		if (comp_is(c, "kubepods") || comp_is(c, "kubepods.slice"))
			kubepods = true;
		else if (kubepods && parse_pod(c, pod_uid))
			is_pod = true;

		rt = is_pod ? PF_CGROUP_RT_NONE : match_container(c, prev, prev_is_pod, &id);
		if (rt != PF_CGROUP_RT_NONE) {
			/* Innermost wins: a later match overwrites this one. */
			out->runtime = rt;
			memcpy(out->id, id.s, id.n);
			out->id[id.n] = '\0';
			memcpy(out->pod_uid, pod_uid, sizeof(pod_uid));
		}
		prev = c;
		prev_is_pod = is_pod;
	}
	return out->runtime == PF_CGROUP_RT_NONE ? -ENOENT : 0;
}

const char *pf_cgroup_runtime__name(enum pf_cgroup_runtime rt)
{
	switch (rt) {
	case PF_CGROUP_RT_DOCKER:
		return "docker";
	case PF_CGROUP_RT_PODMAN:
		return "podman";
	case PF_CGROUP_RT_CONTAINERD:
		return "containerd";
	case PF_CGROUP_RT_CRIO:
		return "cri-o";
	case PF_CGROUP_RT_UNKNOWN:
		return "unknown";
	case PF_CGROUP_RT_NONE:
		break;
	}
	return "-";
}
