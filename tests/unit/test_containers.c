// SPDX-License-Identifier: BSD-2-Clause
/*
 * The container identity cache (agent/containers*.c) on a cgroup hierarchy
 * of the test's own: plain directories in a temporary directory stand for
 * the cgroup v2 mount (a directory's inode is its id, as on cgroupfs), and a
 * directory of the test's own for containerd's task state. No root, no
 * runtime: what is tested is the cache's logic — a cgroup made and gone
 * before its exec is read is still named (the watcher read its bundle),
 * an ended cgroup's identity ends and a new cgroup of the same name gets its
 * own, a bad bundle is named by the id and counted once, a host cgroup has no
 * endpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "containers.h"
#include "containers_int.h"

/* The daemon's logging and capabilities, as the cache uses them. */
static char last_log[512];
static int nlogs;

void pf_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void pf_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_log, sizeof(last_log), fmt, ap);
	va_end(ap);
	nlogs++;
}

void pf_debug(const char *fmt, ...)
{
	(void)fmt;
}

void pf_caps__drop_thread(void)
{
}

struct fixture {
	char root[64];	/* the stand-in cgroup v2 mount */
	char tasks[64]; /* the stand-in containerd task directory */
};

static void mkdirs(const char *path)
{
	char buf[512], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(buf, 0755);
			*p = '/';
		}
	}
	mkdir(buf, 0755);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static uint64_t ino_of(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_ino;
}

/* A containerd task: its bundle, then its cgroup /k8s.io/<id> (the order
 * the runtime makes them in). Returns the cgroup's id. */
static uint64_t task_start(struct fixture *f, const char *id, const char *pod, bool half)
{
	char path[512], doc[512];

	snprintf(path, sizeof(path), "%s/k8s.io/%s", f->tasks, id);
	mkdirs(path);
	snprintf(doc, sizeof(doc),
		 "{\"annotations\":{\"io.kubernetes.cri.sandbox-name\":\"%s\","
		 "\"io.kubernetes.cri.sandbox-namespace\":\"prod\"}}",
		 pod);
	if (half)
		doc[strlen(doc) - 3] = '\0';
	snprintf(path, sizeof(path), "%s/k8s.io/%s/config.json", f->tasks, id);
	write_file(path, doc);
	snprintf(path, sizeof(path), "%s/k8s.io/%s", f->root, id);
	mkdirs(path);
	return ino_of(path);
}

/* The task ends: cgroup and bundle go. */
static void task_end(struct fixture *f, const char *id)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/k8s.io/%s", f->root, id);
	assert_int_equal(rmdir(path), 0);
	snprintf(path, sizeof(path), "%s/k8s.io/%s/config.json", f->tasks, id);
	unlink(path);
	snprintf(path, sizeof(path), "%s/k8s.io/%s", f->tasks, id);
	rmdir(path);
}

/* The endpoint of @id once the watcher and the worker had a chance to see
 * it (polled with a deadline: they are threads). */
static const struct pf_flow_ep *ep_wait(struct pf_containers *c, uint64_t id, const char *want)
{
	const struct pf_flow_ep *ep = NULL;

	for (int i = 0; i < 200; i++) {
		ep = pf_containers__ep(c, id, 0);
		if (ep && !strcmp(ep->name, want))
			return ep;
		pf_containers__tick(c); /* settles answers, as each interval does */
		usleep(10000);
	}
	return ep;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	char path[512];

	assert_non_null(f);
	snprintf(f->root, sizeof(f->root), "/tmp/pfctr-root-XXXXXX");
	snprintf(f->tasks, sizeof(f->tasks), "/tmp/pfctr-tasks-XXXXXX");
	assert_non_null(mkdtemp(f->root));
	assert_non_null(mkdtemp(f->tasks));
	snprintf(path, sizeof(path), "%s/k8s.io", f->root);
	mkdirs(path);
	snprintf(path, sizeof(path), "%s/system.slice/cron.service", f->root);
	mkdirs(path);
	setenv("PF_CONTAINERD_TASKS", f->tasks, 1);
	setenv("PF_ENGINE_SOCKETS", "/nonexistent/engine.sock", 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", f->root, f->tasks);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Made, and gone, before the exec event is read: named all the same. */
static void test_gone_before_exec_read(void **state)
{
	struct fixture *f = *state;
	struct pf_containers *c = pf_containers__new(f->root, NULL);
	const struct pf_flow_ep *ep;
	uint64_t id;

	assert_non_null(c);
	id = task_start(f, "short", "web-7d9b8c5f4-x2x8q", false);
	/* The watcher is a thread: wait until it noted the cgroup (without
	 * asking the cache, which would read the directory itself), then
	 * remove everything before the exec is "read". */
	for (int i = 0; i < 500 && !pf_ctr__seen(c, id); i++)
		usleep(10000);
	assert_true(pf_ctr__seen(c, id));
	task_end(f, "short");
	pf_containers__note(c, id, 0);
	ep = ep_wait(c, id, "web-7d9b8c5f4-x2x8q");
	assert_non_null(ep);
	assert_string_equal(ep->name, "web-7d9b8c5f4-x2x8q");
	assert_string_equal(ep->name_aggr, "web-7d9b8c5f4-*");
	assert_string_equal(ep->namespace_, "prod");
	pf_containers__free(c);
}

/* Host cgroups have no endpoint. */
static void test_host_cgroup(void **state)
{
	struct fixture *f = *state;
	struct pf_containers *c = pf_containers__new(f->root, NULL);
	char path[512];

	assert_non_null(c);
	snprintf(path, sizeof(path), "%s/system.slice/cron.service", f->root);
	assert_null(pf_containers__ep(c, ino_of(path), 0));
	pf_containers__free(c);
}

/* The same container id again, after the first ended: a new cgroup, a new
 * identity, never the first one's name. */
static void test_ended_identity_not_inherited(void **state)
{
	struct fixture *f = *state;
	struct pf_containers *c = pf_containers__new(f->root, NULL);
	const struct pf_flow_ep *ep;
	uint64_t id1, id2;
	char path[512];
	int held;

	assert_non_null(c);
	id1 = task_start(f, "again", "old-pod", false);
	ep = ep_wait(c, id1, "old-pod");
	assert_string_equal(ep->name, "old-pod");
	/* Held open, the removed directory keeps its inode, so the next one
	 * gets another id, as a new cgroup does on cgroupfs. */
	snprintf(path, sizeof(path), "%s/k8s.io/again", f->root);
	held = open(path, O_RDONLY | O_DIRECTORY);
	assert_true(held >= 0);
	task_end(f, "again");
	for (int i = 0; i < 5; i++)
		pf_containers__tick(c); /* ended, then dropped after its grace */
	id2 = task_start(f, "again", "new-pod", false);
	assert_int_not_equal(id1, id2);
	ep = ep_wait(c, id2, "new-pod");
	assert_string_equal(ep->name, "new-pod");
	task_end(f, "again");
	close(held);
	pf_containers__free(c);
}

/* A half-written bundle: named by the container id, counted and logged once. */
static void test_bad_bundle_named_by_id(void **state)
{
	struct fixture *f = *state;
	struct pf_containers *c = pf_containers__new(f->root, NULL);
	struct pf_containers_stats st;
	const struct pf_flow_ep *ep;
	uint64_t id;
	int logs;

	assert_non_null(c);
	id = task_start(f, "half", "must-not-appear", true);
	pf_containers__note(c, id, 0);
	logs = nlogs;
	for (int i = 0; i < 200 && nlogs == logs; i++) {
		pf_containers__tick(c);
		usleep(10000);
	}
	ep = pf_containers__ep(c, id, 0);
	assert_non_null(ep);
	assert_string_equal(ep->name, "half");
	assert_string_equal(ep->namespace_, "-");
	assert_int_equal(nlogs, logs + 1);
	assert_non_null(strstr(last_log, "container half (containerd)"));
	assert_non_null(strstr(last_log, "Invalid argument"));
	pf_containers__stats(c, &st);
	assert_int_equal(st.meta_failed, 1);
	for (int i = 0; i < 3; i++)
		pf_containers__tick(c);
	assert_int_equal(nlogs, logs + 1); /* once */
	task_end(f, "half");
	pf_containers__free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_gone_before_exec_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_host_cgroup, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_ended_identity_not_inherited, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_bad_bundle_named_by_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
