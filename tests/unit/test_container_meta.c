// SPDX-License-Identifier: BSD-2-Clause
/*
 * Container identities from runtime documents (lib/container_meta.c): the
 * documents are shaped as containerd 1.6, CRI-O and Podman 4.3 write them
 * (trimmed to the members that matter, plus neighbours that must be
 * skipped), and every prefix of a valid document, as a runtime caught
 * mid-write leaves it, must be refused rather than half-read.
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

#include "container_meta.h"

static const char containerd_doc[] =
    "{\"ociVersion\":\"1.0.2-dev\",\"process\":{\"args\":[\"sh\",\"-c\",\"x\"],"
    "\"env\":[\"PATH=/bin\"],\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1024}]},"
    "\"root\":{\"path\":\"rootfs\",\"readonly\":false},"
    "\"annotations\":{\"io.kubernetes.cri.container-type\":\"container\","
    "\"io.kubernetes.cri.image-name\":\"localhost/bb:1\","
    "\"io.kubernetes.cri.sandbox-name\":\"web-7d9b8c5f4-x2x8q\","
    "\"io.kubernetes.cri.sandbox-namespace\":\"prod\"},"
    "\"linux\":{\"cgroupsPath\":\"/k8s.io/c1\",\"namespaces\":[{\"type\":\"pid\"}]}}";

static const char crio_doc[] =
    "{\"annotations\":{\"io.kubernetes.pod.name\":\"db-0\",\"io.kubernetes.pod.namespace\":"
    "\"data\",\"io.kubernetes.cri-o.Labels\":\"{\\\"io.kubernetes.pod.name\\\":\\\"db-0\\\","
    "\\\"app\\\":\\\"db\\\"}\"},\"linux\":{}}";

static const char podman_doc[] =
    "{\"Id\":\"4e78\",\"Created\":\"2026-11-29T16:04:30Z\",\"Path\":\"sh\",\"Args\":[\"-c\"],"
    "\"State\":{\"Status\":\"running\",\"Running\":true,\"Pid\":19384,\"ExitCode\":0},"
    "\"Name\":\"/web-frontend\",\"RestartCount\":0,"
    "\"Config\":{\"Hostname\":\"4e78\",\"Env\":null,\"Cmd\":[\"sh\"],"
    "\"Image\":\"localhost/bb:1\",\"Labels\":{\"tier\":\"fe\",\"app\":\"web\","
    "\"note\":\"caf\\u00e9 \\\"q\\\"\"},\"StopSignal\":15},\"NetworkSettings\":{\"Ports\":{}}}";

static void test_containerd_annotations(void **state)
{
	struct pf_cmeta m = {0};

	(void)state;
	assert_int_equal(pf_cmeta__from_oci(&m, containerd_doc, strlen(containerd_doc)), 0);
	assert_string_equal(m.name, "web-7d9b8c5f4-x2x8q");
	assert_string_equal(m.namespace_, "prod");
	assert_string_equal(m.image, "localhost/bb:1");
	assert_int_equal(m.nlabels, 0);
	pf_cmeta__clear(&m);
}

static void test_crio_annotations_and_labels(void **state)
{
	struct pf_cmeta m = {0};

	(void)state;
	assert_int_equal(pf_cmeta__from_oci(&m, crio_doc, strlen(crio_doc)), 0);
	assert_string_equal(m.name, "db-0");
	assert_string_equal(m.namespace_, "data");
	assert_int_equal(m.nlabels, 2);
	assert_string_equal(m.labels[0], "app=db"); /* sorted */
	assert_string_equal(m.labels[1], "io.kubernetes.pod.name=db-0");
	pf_cmeta__clear(&m);
}

/* Podman's bundle has no pod annotations: not a pod, but not an error. */
static void test_oci_without_pod(void **state)
{
	static const char doc[] =
	    "{\"annotations\":{\"io.podman.annotations.autoremove\":\"FALSE\"}}";
	struct pf_cmeta m = {0};

	(void)state;
	assert_int_equal(pf_cmeta__from_oci(&m, doc, strlen(doc)), -ENOENT);
	assert_string_equal(m.name, "");
}

static void test_engine_document(void **state)
{
	struct pf_cmeta m = {0};

	(void)state;
	assert_int_equal(pf_cmeta__from_engine(&m, podman_doc, strlen(podman_doc)), 0);
	assert_string_equal(m.name, "web-frontend"); /* the leading '/' dropped */
	assert_string_equal(m.namespace_, "");
	assert_string_equal(m.image, "localhost/bb:1");
	assert_int_equal(m.nlabels, 3);
	assert_string_equal(m.labels[0], "app=web");
	assert_string_equal(m.labels[1], "note=caf\xc3\xa9 \"q\"");
	assert_string_equal(m.labels[2], "tier=fe");
	pf_cmeta__clear(&m);
}

/* A Kubernetes pod's container run by Docker (cri-dockerd): the pod names it. */
static void test_engine_kubernetes_labels(void **state)
{
	static const char doc[] =
	    "{\"Name\":\"/k8s_app_web-abc_prod_uid_0\",\"Config\":{\"Image\":\"i\",\"Labels\":{"
	    "\"io.kubernetes.pod.name\":\"web-abc\",\"io.kubernetes.pod.namespace\":\"prod\"}}}";
	struct pf_cmeta m = {0};

	(void)state;
	assert_int_equal(pf_cmeta__from_engine(&m, doc, strlen(doc)), 0);
	assert_string_equal(m.name, "web-abc");
	assert_string_equal(m.namespace_, "prod");
	pf_cmeta__clear(&m);
}

/* Every proper prefix of a document (a file read while its runtime writes
 * it) is refused as a whole: never a name read from the part before the cut. */
static void test_half_written_refused(void **state)
{
	const char *docs[] = {containerd_doc, crio_doc, podman_doc};
	struct pf_cmeta m = {0};

	(void)state;
	for (size_t d = 0; d < 3; d++) {
		size_t len = strlen(docs[d]);

		for (size_t cut = 0; cut < len; cut++) {
			char *copy = malloc(cut ? cut : 1);

			assert_non_null(copy);
			memcpy(copy, docs[d], cut);
			assert_int_equal(pf_cmeta__from_oci(&m, copy, cut), -EINVAL);
			assert_int_equal(pf_cmeta__from_engine(&m, copy, cut), -EINVAL);
			assert_string_equal(m.name, "");
			free(copy);
		}
	}
}

static void test_malformed_refused(void **state)
{
	const char *bad[] = {
	    "{\"Name\":\"a\"} x",	   /* trailing data */
	    "{\"Name\":\"a\",}",	   /* trailing comma */
	    "{\"Name\":\"a\\q\"}",	   /* bad escape */
	    "{\"Name\":\"a\x01\"}",	   /* raw control byte */
	    "{\"Name\" \"a\"}",		   /* no colon */
	    "[\"Name\"]",		   /* not an object */
	    "{\"Name\":\"a\",\"x\":tru}",  /* bad literal */
	    "{\"Name\":\"a\",\"x\":[1,2}", /* unbalanced */
	};
	struct pf_cmeta m = {0};
	char deep[300];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(pf_cmeta__from_engine(&m, bad[i], strlen(bad[i])), -EINVAL);
	/* Nesting past the bound is refused, not recursed into. */
	memset(deep, '[', sizeof(deep));
	memcpy(deep, "{\"a\":", 5);
	assert_int_equal(pf_cmeta__from_engine(&m, deep, sizeof(deep)), -EINVAL);
	assert_int_equal(pf_cmeta__from_engine(&m, NULL, 0), -EINVAL);
}

static void test_get_str_bounds(void **state)
{
	static const char doc[] = "{\"a\":{\"b\":\"0123456789\",\"n\":5}}";
	const char *const ab[] = {"a", "b"}, *const an[] = {"a", "n"}, *const ax[] = {"a", "x"};
	char out[8];

	(void)state;
	assert_int_equal(pf_cjson__get_str(doc, strlen(doc), ab, 2, out, sizeof(out)), -ENOSPC);
	assert_string_equal(out, "0123456");
	assert_int_equal(pf_cjson__get_str(doc, strlen(doc), an, 2, out, sizeof(out)), -ENOENT);
	assert_int_equal(pf_cjson__get_str(doc, strlen(doc), ax, 2, out, sizeof(out)), -ENOENT);
}

/* Every one-letter escape of JSON, and one that is none. */
static void test_get_str_escapes(void **state)
{
	static const char doc[] = "{ \"k\" : \"\\\"\\\\\\/\\b\\f\\n\\r\\t.\" }";
	static const char bad[] = "{\"k\":\"a\\x\"}";
	const char *const k[] = {"k"};
	char out[16];

	(void)state;
	assert_int_equal(pf_cjson__get_str(doc, strlen(doc), k, 1, out, sizeof(out)), 0);
	assert_string_equal(out, "\"\\/\b\f\n\r\t.");
	assert_int_equal(pf_cjson__get_str(bad, strlen(bad), k, 1, out, sizeof(out)), -EINVAL);
}

struct members {
	char seen[256];
	size_t n;
};

static int note_member(const char *key, const char *val, void *ctx)
{
	struct members *m = ctx;
	int n = snprintf(m->seen + m->n, sizeof(m->seen) - m->n, "%s=%s;", key, val);

	m->n += (size_t)n;
	return 0;
}

/* Members are walked in order past values of every kind and white space; a
 * key too long to keep is passed as "", and the path is followed through
 * members before it. */
static void test_each_str_members(void **state)
{
	char doc[1024], key[300];
	const char *const path[] = {"skip", "o"};
	struct members m = {0};

	(void)state;
	memset(key, 'k', sizeof(key) - 1);
	key[sizeof(key) - 1] = '\0';
	snprintf(doc, sizeof(doc),
		 "{\"skip\" : {\"x\":[1,{\"o\":2}], \"o\" : { \"a\" : \"1\" , \"n\":null,"
		 "\"b\":{\"c\":\"d\"}, \"%s\":\"long\", \"e\":\"\\t\" } } }",
		 key);
	assert_int_equal(pf_cjson__each_str(doc, strlen(doc), path, 2, note_member, &m), 0);
	assert_string_equal(m.seen, "a=1;=long;e=\t;");
}

static void expect_aggr(const char *name, const char *want)
{
	char out[64];

	assert_string_equal(pf_cmeta__name_aggr(name, out, sizeof(out)), want);
}

/* Calico folds a ReplicaSet's pods by their generateName: the 5-character
 * suffix of Kubernetes' name generator becomes "*". */
static void test_name_aggr(void **state)
{
	char small[4];

	(void)state;
	expect_aggr("web-7d9b8c5f4-x2x8q", "web-7d9b8c5f4-*"); /* ReplicaSet pod */
	expect_aggr("fluentd-k2x8q", "fluentd-*");	       /* DaemonSet pod */
	expect_aggr("postgres-0", "postgres-0");	       /* StatefulSet pod: its own name */
	expect_aggr("web-abcde", "web-abcde");		       /* vowels: not generated */
	expect_aggr("frontend", "frontend");
	expect_aggr("-bcdfg", "-bcdfg");
	expect_aggr("", "");
	assert_string_equal(pf_cmeta__name_aggr("web-7d9b8c5f4-x2x8q", small, sizeof(small)),
			    "we*");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_containerd_annotations),
	    cmocka_unit_test(test_crio_annotations_and_labels),
	    cmocka_unit_test(test_oci_without_pod),
	    cmocka_unit_test(test_engine_document),
	    cmocka_unit_test(test_engine_kubernetes_labels),
	    cmocka_unit_test(test_half_written_refused),
	    cmocka_unit_test(test_malformed_refused),
	    cmocka_unit_test(test_get_str_bounds),
	    cmocka_unit_test(test_get_str_escapes),
	    cmocka_unit_test(test_each_str_members),
	    cmocka_unit_test(test_name_aggr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
