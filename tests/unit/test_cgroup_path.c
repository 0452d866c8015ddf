// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for lib/cgroup_path.c.
 *
 * Every example is a path as a runtime really makes it: the layouts are
 * those of Docker, Podman, containerd and CRI-O with the systemd and the
 * cgroupfs cgroup drivers, bare and under Kubernetes, as /proc/<pid>/cgroup
 * shows them on the host. The Podman and containerd cgroupfs paths are the
 * ones seen on the test machines (../shared/spec/containers.md).
 *
 * The parser is always handed a heap copy of exactly the bytes of the path,
 * with no terminating NUL, so that a read past the length is caught by ASan
 * in the sanitizer build.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cgroup_path.h"

#define ID_A	  "4bc3c3e6c1a0e3b0f8a2bfe0d5a7c7b8e4f5d6a7b8c9d0e1f2a3b4c5d6e7f8a9"
#define ID_B	  "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define UID_DASH  "5f6c3c0e-5a8b-4c3d-9e2f-1a2b3c4d5e6f"
#define UID_UNDER "5f6c3c0e_5a8b_4c3d_9e2f_1a2b3c4d5e6f"
/* A static pod's UID: the hash of its manifest, 32 hex digits. */
#define UID_STATIC "a2f9c1e0b7d64e3f8c5b1a0d9e8f7c6b"

/* Parse @path from an exact-size heap copy (no NUL after it). */
static int parse_len(const char *path, size_t len, struct pf_cgroup_container *c)
{
	char *buf = malloc(len ? len : 1);
	int err;

	assert_non_null(buf);
	memcpy(buf, path, len);
	err = pf_cgroup_path__parse(buf, len, c);
	free(buf);
	return err;
}

static int parse(const char *path, struct pf_cgroup_container *c)
{
	return parse_len(path, strlen(path), c);
}

static void expect(const char *path, enum pf_cgroup_runtime rt, const char *id, const char *pod)
{
	struct pf_cgroup_container c;

	if (parse(path, &c) != 0)
		fail_msg("%s: not recognised as a container", path);
	assert_int_equal(c.runtime, rt);
	assert_string_equal(c.id, id);
	assert_string_equal(c.pod_uid, pod);
}

static void expect_host(const char *path)
{
	struct pf_cgroup_container c;
	int err = parse(path, &c);

	if (err != -ENOENT)
		fail_msg("%s: expected a host cgroup (-ENOENT), got %d, id '%s'", path, err, c.id);
	assert_int_equal(c.runtime, PF_CGROUP_RT_NONE);
	assert_string_equal(c.id, "");
	assert_string_equal(c.pod_uid, "");
}

/* ---- Docker ------------------------------------------------------------ */

static void test_docker(void **state)
{
	(void)state;
	/* systemd driver (Docker's default on systemd hosts). */
	expect("/system.slice/docker-" ID_A ".scope", PF_CGROUP_RT_DOCKER, ID_A, "");
	/* cgroupfs driver. */
	expect("/docker/" ID_A, PF_CGROUP_RT_DOCKER, ID_A, "");
	/* Rootless Docker: the scope under the user's manager. */
	expect("/user.slice/user-1000.slice/user@1000.service/docker-" ID_A ".scope",
	       PF_CGROUP_RT_DOCKER, ID_A, "");
	/* Kubernetes with Docker (dockershim, systemd driver). */
	expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_UNDER
	       ".slice/docker-" ID_A ".scope",
	       PF_CGROUP_RT_DOCKER, ID_A, UID_DASH);
}

/* ---- Podman ------------------------------------------------------------ */

static void test_podman(void **state)
{
	(void)state;
	/* cgroupfs manager: what `podman run` makes on the test machines. */
	expect("/libpod_parent/libpod-" ID_A, PF_CGROUP_RT_PODMAN, ID_A, "");
	/* systemd manager, rootful. */
	expect("/machine.slice/libpod-" ID_A ".scope", PF_CGROUP_RT_PODMAN, ID_A, "");
	/* A container in a Podman pod (systemd): the pod is Podman's, not a
	 * Kubernetes pod, so there is no pod UID. */
	expect("/machine.slice/machine-libpod_pod_" ID_B ".slice/libpod-" ID_A ".scope",
	       PF_CGROUP_RT_PODMAN, ID_A, "");
	/* Rootless. */
	expect("/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-" ID_A ".scope",
	       PF_CGROUP_RT_PODMAN, ID_A, "");
	/* systemd inside the container: its processes live below the scope. */
	expect("/machine.slice/libpod-" ID_A ".scope/container", PF_CGROUP_RT_PODMAN, ID_A, "");
	expect("/machine.slice/libpod-" ID_A ".scope/container/system.slice/nginx.service",
	       PF_CGROUP_RT_PODMAN, ID_A, "");
	/* conmon, the container's monitor, is a host process. */
	expect_host("/machine.slice/libpod-conmon-" ID_A ".scope");
	expect_host("/libpod_parent/conmon");
}

/* ---- containerd -------------------------------------------------------- */

static void test_containerd(void **state)
{
	(void)state;
	/* ctr in the k8s.io namespace, cgroupfs: seen on the test machines. */
	expect("/k8s.io/c1", PF_CGROUP_RT_CONTAINERD, "c1", "");
	expect("/k8s.io/" ID_A, PF_CGROUP_RT_CONTAINERD, ID_A, "");
	expect("/k8s.io/web-1.v2_x", PF_CGROUP_RT_CONTAINERD, "web-1.v2_x", "");
	/* The CRI plugin under the kubelet, systemd driver. */
	expect("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_UNDER
	       ".slice/cri-containerd-" ID_A ".scope",
	       PF_CGROUP_RT_CONTAINERD, ID_A, UID_DASH);
	/* A Guaranteed pod has no QoS slice. */
	expect("/kubepods.slice/kubepods-pod" UID_UNDER ".slice/cri-containerd-" ID_A ".scope",
	       PF_CGROUP_RT_CONTAINERD, ID_A, UID_DASH);
	/* containerd's own service is a host process. */
	expect_host("/system.slice/containerd.service");
}

/* ---- CRI-O ------------------------------------------------------------- */

static void test_crio(void **state)
{
	(void)state;
	expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_UNDER
	       ".slice/crio-" ID_A ".scope",
	       PF_CGROUP_RT_CRIO, ID_A, UID_DASH);
	/* CRI-O puts a container's processes one level down when it runs
	 * systemd-managed workloads. */
	expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_UNDER
	       ".slice/crio-" ID_A ".scope/container",
	       PF_CGROUP_RT_CRIO, ID_A, UID_DASH);
	/* cgroupfs driver. */
	expect("/kubepods/besteffort/pod" UID_DASH "/crio-" ID_A, PF_CGROUP_RT_CRIO, ID_A,
	       UID_DASH);
	/* CRI-O's conmon is not the container. */
	expect_host("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_UNDER
		    ".slice/crio-conmon-" ID_A ".scope");
}

/* ---- Kubernetes, cgroupfs driver: bare ids ------------------------------ */

static void test_kubepods_cgroupfs(void **state)
{
	(void)state;
	expect("/kubepods/burstable/pod" UID_DASH "/" ID_A, PF_CGROUP_RT_UNKNOWN, ID_A, UID_DASH);
	expect("/kubepods/besteffort/pod" UID_DASH "/" ID_A, PF_CGROUP_RT_UNKNOWN, ID_A, UID_DASH);
	/* Guaranteed. */
	expect("/kubepods/pod" UID_DASH "/" ID_A, PF_CGROUP_RT_UNKNOWN, ID_A, UID_DASH);
	/* A static pod (kube-apiserver and friends). */
	expect("/kubepods/burstable/pod" UID_STATIC "/" ID_A, PF_CGROUP_RT_UNKNOWN, ID_A,
	       UID_STATIC);
	expect("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_STATIC
	       ".slice/cri-containerd-" ID_A ".scope",
	       PF_CGROUP_RT_CONTAINERD, ID_A, UID_STATIC);
	/* The pod's own cgroup, or the QoS level, is not a container. */
	expect_host("/kubepods/burstable/pod" UID_DASH);
	expect_host("/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_UNDER
		    ".slice");
	expect_host("/kubepods/burstable");
	/* The kubelet and the runtime's shim are host processes. */
	expect_host("/system.slice/kubelet.service");
}

/* ---- nesting ------------------------------------------------------------ */

static void test_nested(void **state)
{
	(void)state;
	/* Docker in Docker: the inner container. */
	expect("/docker/" ID_A "/docker/" ID_B, PF_CGROUP_RT_DOCKER, ID_B, "");
	/* kind: a Kubernetes node that is itself a Docker container. */
	expect("/docker/" ID_A "/kubepods/besteffort/pod" UID_DASH "/" ID_B, PF_CGROUP_RT_UNKNOWN,
	       ID_B, UID_DASH);
	expect("/system.slice/docker-" ID_A ".scope/kubepods.slice/kubepods-pod" UID_UNDER
	       ".slice/cri-containerd-" ID_B ".scope",
	       PF_CGROUP_RT_CONTAINERD, ID_B, UID_DASH);
	/* The kind node's own processes (its kubelet) are the outer container. */
	expect("/docker/" ID_A "/kubelet.slice", PF_CGROUP_RT_DOCKER, ID_A, "");
	/* A pod cgroup below a container does not give that container a pod. */
	expect("/docker/" ID_A "/kubepods/pod" UID_DASH, PF_CGROUP_RT_DOCKER, ID_A, "");
	/* A component that only looks like a pod's keeps the last real pod UID. */
	expect("/kubepods.slice/kubepods-pod" UID_UNDER ".slice/kubepods-podzz.slice/crio-" ID_A
	       ".scope",
	       PF_CGROUP_RT_CRIO, ID_A, UID_DASH);
}

/* ---- host cgroups and look-alikes ---------------------------------------- */

static void test_host_and_lookalikes(void **state)
{
	(void)state;
	expect_host("/");
	expect_host("/init.scope");
	expect_host("/system.slice/sshd.service");
	expect_host("/user.slice/user-0.slice/session-3.scope");
	expect_host("/docker");
	expect_host("/k8s.io");
	/* Wrong length, wrong alphabet, wrong suffix. */
	expect_host("/docker/"
		    "4bc3c3e6c1a0e3b0f8a2bfe0d5a7c7b8e4f5d6a7b8c9d0e1f2a3b4c5d6e7f8a");
	expect_host("/docker/" ID_A "0");
	expect_host("/docker/"
		    "4BC3C3E6C1A0E3B0F8A2BFE0D5A7C7B8E4F5D6A7B8C9D0E1F2A3B4C5D6E7F8A9");
	expect_host("/system.slice/docker-" ID_A ".scopex");
	expect_host("/system.slice/docker-" ID_A ".service");
	expect_host("/system.slice/docker-" ID_A);
	expect_host("/system.slice/cri-containerd-" ID_A);
	expect_host("/system.slice/docker.service");
	/* A bare id needs the right parent. */
	expect_host("/" ID_A);
	expect_host("/system.slice/" ID_A);
	expect_host("/libpod_parent/" ID_A);
	/* A pod directory counts only under kubepods. */
	expect_host("/pod" UID_DASH "/" ID_A);
	expect_host("/kubepods/burstable/pod" UID_UNDER "/" ID_A);
	expect_host("/kubepods/burstable/podnotauid/" ID_A);
	expect_host("/kubepods/burstable/pod5f6c3c0e-5a8b-4c3d-9e2f1-a2b3c4d5e6f/" ID_A);
	/* containerd identifiers: letters and digits joined by single . _ - */
	expect_host("/k8s.io/-c1");
	expect_host("/k8s.io/c1-");
	expect_host("/k8s.io/a..b");
	expect_host("/k8s.io/a b");
	expect_host(
	    "/k8s.io/"
	    "a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456");
	expect("/k8s.io/"
	       "a123456789a123456789a123456789a123456789a123456789a123456789a123456789a12345",
	       PF_CGROUP_RT_CONTAINERD,
	       "a123456789a123456789a123456789a123456789a123456789a123456789a123456789a12345", "");
}

/* ---- the byte-level contract ---------------------------------------------- */

static void test_bounds_and_bad_input(void **state)
{
	const char *full = "/docker/" ID_A;
	struct pf_cgroup_container c;

	(void)state;
	/* Only @len bytes count: one short is an id of 63 digits. */
	assert_int_equal(parse_len(full, strlen(full) - 1, &c), -ENOENT);
	assert_int_equal(parse_len(full, strlen(full), &c), 0);
	/* Repeated and trailing slashes are one separator. */
	expect("//docker//" ID_A "/", PF_CGROUP_RT_DOCKER, ID_A, "");

	assert_int_equal(pf_cgroup_path__parse(NULL, 3, &c), -EINVAL);
	assert_int_equal(pf_cgroup_path__parse("/a", 2, NULL), -EINVAL);
	assert_int_equal(parse_len("", 0, &c), -EINVAL);
	assert_int_equal(parse("docker/" ID_A, &c), -EINVAL);
	assert_int_equal(parse("0::/docker/" ID_A, &c), -EINVAL);
	assert_int_equal(parse_len("/docker/\0" ID_A, 9 + 64, &c), -EINVAL);
	/* A failed parse leaves no stale answer behind. */
	assert_int_equal(c.runtime, PF_CGROUP_RT_NONE);
	assert_string_equal(c.id, "");
}

static void test_runtime_names(void **state)
{
	(void)state;
	assert_string_equal(pf_cgroup_runtime__name(PF_CGROUP_RT_DOCKER), "docker");
	assert_string_equal(pf_cgroup_runtime__name(PF_CGROUP_RT_PODMAN), "podman");
	assert_string_equal(pf_cgroup_runtime__name(PF_CGROUP_RT_CONTAINERD), "containerd");
	assert_string_equal(pf_cgroup_runtime__name(PF_CGROUP_RT_CRIO), "cri-o");
	assert_string_equal(pf_cgroup_runtime__name(PF_CGROUP_RT_UNKNOWN), "unknown");
	assert_string_equal(pf_cgroup_runtime__name(PF_CGROUP_RT_NONE), "-");
	assert_string_equal(pf_cgroup_runtime__name((enum pf_cgroup_runtime)99), "-");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_docker),
	    cmocka_unit_test(test_podman),
	    cmocka_unit_test(test_containerd),
	    cmocka_unit_test(test_crio),
	    cmocka_unit_test(test_kubepods_cgroupfs),
	    cmocka_unit_test(test_nested),
	    cmocka_unit_test(test_host_and_lookalikes),
	    cmocka_unit_test(test_bounds_and_bad_input),
	    cmocka_unit_test(test_runtime_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
