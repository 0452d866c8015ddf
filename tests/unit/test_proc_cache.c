// SPDX-License-Identifier: BSD-2-Clause
/*
 * Unit tests for lib/proc_cache.c.
 *
 * Times are small made-up nanosecond values, so that each test reads as a
 * timeline: what happened to a PID when, and who it was at each moment in
 * between. Every test builds its own cache.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proc_cache.h"

#define GRACE 1000

static struct pf_proc_cache *new_cache(size_t max)
{
	struct pf_proc_cache *c = pf_proc_cache__new(max, GRACE);

	assert_non_null(c);
	return c;
}

/* An exec with the fields the tests do not care about filled in. */
static int exec_(struct pf_proc_cache *c, uint32_t pid, uint64_t start, uint64_t ts,
		 const char *path, const char *args)
{
	const char *base = path ? strrchr(path, '/') : NULL;

	return pf_proc_cache__exec(c, pid, 1, start, ts, 1000, 0, base ? base + 1 : "?", path, args,
				   0);
}

/* The path @pid had at @ts, "(none)" without identity, "(null)" without a
 * path. */
static const char *path_at(struct pf_proc_cache *c, uint32_t pid, uint64_t ts)
{
	const struct pf_proc *p = pf_proc_cache__lookup(c, pid, ts);

	if (!p)
		return "(none)";
	return p->path ? p->path : "(null)";
}

static uint64_t entries(struct pf_proc_cache *c)
{
	struct pf_proc_cache_stats st;

	pf_proc_cache__stats(c, &st);
	return st.entries;
}

static void test_new_free(void **state)
{
	struct pf_proc_cache_stats st;
	struct pf_proc_cache *c;

	errno = 0;
	assert_null(pf_proc_cache__new(0, GRACE));
	assert_int_equal(errno, EINVAL);
	pf_proc_cache__free(NULL);

	c = new_cache(1);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_int_equal(st.dropped, 0);
	assert_int_equal(st.evicted, 0);
	assert_null(pf_proc_cache__lookup(c, 1, 0));
	pf_proc_cache__free(c);
}

static void test_exec_fields(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	char path[] = "/usr/bin/curl", args[] = "-s http://10.0.0.1/";
	const struct pf_proc *p;

	assert_int_equal(pf_proc_cache__exec(c, 100, 42, 1000, 1010, 1001, 777,
					     "curl-with-a-long-name", path, args, 1),
			 0);
	/* The cache keeps its own copies. */
	memset(path, 'X', sizeof(path) - 1);
	memset(args, 'X', sizeof(args) - 1);

	p = pf_proc_cache__lookup(c, 100, 1500);
	assert_non_null(p);
	assert_int_equal(p->pid, 100);
	assert_int_equal(p->ppid, 42);
	assert_int_equal(p->uid, 1001);
	assert_int_equal(p->source, PF_PROC_SRC_EXEC);
	assert_int_equal(p->start_ns, 1000);
	assert_int_equal(p->since_ns, 1010);
	assert_int_equal(p->until_ns, 0);
	assert_int_equal(p->exit_ns, 0);
	assert_int_equal(p->cgroup_id, 777);
	assert_string_equal(p->comm, "curl-with-a-lon"); /* 15 characters */
	assert_string_equal(p->path, "/usr/bin/curl");
	assert_string_equal(p->args, "-s http://10.0.0.1/");
	assert_int_equal(p->args_truncated, 1);

	/* Before the exec, and other PIDs: nobody. */
	assert_null(pf_proc_cache__lookup(c, 100, 1009));
	assert_null(pf_proc_cache__lookup(c, 101, 1500));

	/* Unknown path and arguments stay unknown. */
	assert_int_equal(pf_proc_cache__exec(c, 200, 1, 5, 5, 0, 0, NULL, NULL, NULL, 0), 0);
	p = pf_proc_cache__lookup(c, 200, 5);
	assert_non_null(p);
	assert_null(p->path);
	assert_null(p->args);
	assert_string_equal(p->comm, "");
	pf_proc_cache__free(c);
}

static void test_exec_supersedes(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	const struct pf_proc *p;

	/* sh -c 'exec python3 app.py': same process, two programs. */
	assert_int_equal(exec_(c, 300, 1000, 1000, "/bin/sh", "-c exec python3 app.py"), 0);
	assert_int_equal(exec_(c, 300, 1000, 2000, "/usr/bin/python3", "app.py"), 0);

	assert_string_equal(path_at(c, 300, 1000), "/bin/sh");
	assert_string_equal(path_at(c, 300, 1999), "/bin/sh");
	assert_string_equal(path_at(c, 300, 2000), "/usr/bin/python3");
	assert_string_equal(path_at(c, 300, 9999), "/usr/bin/python3");
	assert_string_equal(pf_proc_cache__lookup(c, 300, 2500)->args, "app.py");

	p = pf_proc_cache__lookup(c, 300, 1500);
	assert_int_equal(p->until_ns, 2000);
	assert_int_equal(p->exit_ns, 0);
	assert_int_equal(pf_proc_cache__lookup(c, 300, 2500)->until_ns, 0);
	assert_int_equal(entries(c), 2);

	/* A third program. */
	assert_int_equal(exec_(c, 300, 1000, 3000, "/usr/bin/env", NULL), 0);
	assert_string_equal(path_at(c, 300, 1500), "/bin/sh");
	assert_string_equal(path_at(c, 300, 2500), "/usr/bin/python3");
	assert_string_equal(path_at(c, 300, 3500), "/usr/bin/env");
	pf_proc_cache__free(c);
}

static void test_exec_out_of_order(void **state)
{
	struct pf_proc_cache *c = new_cache(16);

	/* The later exec is delivered first: each program still gets its own
	 * window, and the late one does not become current again. */
	assert_int_equal(exec_(c, 310, 1000, 2000, "/usr/bin/python3", NULL), 0);
	assert_int_equal(exec_(c, 310, 1000, 1000, "/bin/sh", NULL), 0);
	assert_string_equal(path_at(c, 310, 1500), "/bin/sh");
	assert_string_equal(path_at(c, 310, 2000), "/usr/bin/python3");
	assert_string_equal(path_at(c, 310, 5000), "/usr/bin/python3");
	assert_int_equal(pf_proc_cache__lookup(c, 310, 1500)->until_ns, 2000);

	/* The exit is delivered before an exec of the same life: the late
	 * identity inherits the exit, so that it ends and can be collected. */
	assert_int_equal(exec_(c, 320, 100, 100, "/bin/sh", NULL), 0);
	pf_proc_cache__exit(c, 320, 100, 5000);
	assert_int_equal(exec_(c, 320, 100, 3000, "/bin/late", NULL), 0);
	assert_string_equal(path_at(c, 320, 2000), "/bin/sh");
	assert_string_equal(path_at(c, 320, 4000), "/bin/late");
	assert_string_equal(path_at(c, 320, 5001), "(none)");
	assert_int_equal(pf_proc_cache__lookup(c, 320, 4000)->exit_ns, 5000);
	pf_proc_cache__gc(c, 5000 + GRACE + 1);
	assert_int_equal(entries(c), 1); /* pid 310's current program */
	assert_string_equal(path_at(c, 310, 5000), "/usr/bin/python3");
	pf_proc_cache__free(c);
}

static void test_pid_reuse(void **state)
{
	struct pf_proc_cache *c = new_cache(16);

	/* PID 400 is /bin/a from 1000 to its exit at 3000, then the PID wraps
	 * around and a new process (started 5000) runs /bin/b from 5100. */
	assert_int_equal(exec_(c, 400, 1000, 1000, "/bin/a", NULL), 0);
	pf_proc_cache__exit(c, 400, 1000, 3000);
	assert_int_equal(exec_(c, 400, 5000, 5100, "/bin/b", NULL), 0);

	assert_string_equal(path_at(c, 400, 1000), "/bin/a");
	assert_string_equal(path_at(c, 400, 3000), "/bin/a");
	assert_string_equal(path_at(c, 400, 3001), "(none)");
	/* Between the new start and its exec: the new process is not known
	 * yet, and it must not be taken for the old one. */
	assert_string_equal(path_at(c, 400, 5050), "(none)");
	assert_string_equal(path_at(c, 400, 5100), "/bin/b");
	assert_string_equal(path_at(c, 400, 99999), "/bin/b");
	assert_int_equal(pf_proc_cache__lookup(c, 400, 5100)->start_ns, 5000);

	/* The old exit was lost: the new life still ends the old one at its
	 * start, and from then on only the new one is found. */
	assert_int_equal(exec_(c, 410, 1000, 1000, "/bin/a", NULL), 0);
	assert_int_equal(exec_(c, 410, 5000, 5000, "/bin/b", NULL), 0);
	assert_string_equal(path_at(c, 410, 4999), "/bin/a");
	assert_string_equal(path_at(c, 410, 5000), "/bin/b");
	assert_string_equal(path_at(c, 410, 7000), "/bin/b");
	assert_int_equal(pf_proc_cache__lookup(c, 410, 2000)->until_ns, 5000);
	assert_int_equal(pf_proc_cache__lookup(c, 410, 2000)->exit_ns, 0);

	/* The old life's exit arrives after the new life: it only closes the
	 * old one, the new one is untouched. */
	pf_proc_cache__exit(c, 410, 1000, 4000);
	assert_string_equal(path_at(c, 410, 3000), "/bin/a");
	assert_string_equal(path_at(c, 410, 4500), "(none)");
	assert_string_equal(path_at(c, 410, 7000), "/bin/b");
	assert_int_equal(pf_proc_cache__lookup(c, 410, 7000)->exit_ns, 0);

	/* A /proc scan identity replaced by a new life of its PID. */
	assert_int_equal(pf_proc_cache__scan(c, 420, 1, 500, 0, "old", "/bin/old", "", 0), 0);
	assert_int_equal(exec_(c, 420, 9000, 9000, "/bin/new", NULL), 0);
	assert_string_equal(path_at(c, 420, 600), "/bin/old");
	assert_string_equal(path_at(c, 420, 9500), "/bin/new");

	/* The exit of the new life leaves the old one alone. */
	pf_proc_cache__exit(c, 400, 5000, 8000);
	assert_string_equal(path_at(c, 400, 2000), "/bin/a");
	assert_int_equal(pf_proc_cache__lookup(c, 400, 2000)->exit_ns, 3000);
	assert_string_equal(path_at(c, 400, 7000), "/bin/b");
	assert_string_equal(path_at(c, 400, 8001), "(none)");
	pf_proc_cache__free(c);
}

static void test_fork_inherits(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	const struct pf_proc *parent, *child;

	assert_int_equal(pf_proc_cache__exec(c, 500, 1, 100, 100, 33, 77, "nginx",
					     "/usr/sbin/nginx", "-g daemon off;", 1),
			 0);
	assert_int_equal(pf_proc_cache__fork(c, 501, 1000, 500, 100, "nginx: worker"), 0);

	parent = pf_proc_cache__lookup(c, 500, 1500);
	child = pf_proc_cache__lookup(c, 501, 1500);
	assert_non_null(child);
	assert_int_equal(child->pid, 501);
	assert_int_equal(child->ppid, 500);
	assert_int_equal(child->start_ns, 1000);
	assert_int_equal(child->since_ns, 1000);
	assert_int_equal(child->source, PF_PROC_SRC_FORK);
	assert_string_equal(child->comm, "nginx: worker");
	assert_string_equal(child->path, "/usr/sbin/nginx");
	assert_string_equal(child->args, "-g daemon off;");
	assert_int_equal(child->args_truncated, 1);
	assert_int_equal(child->uid, 33);
	assert_int_equal(child->cgroup_id, 77);
	assert_ptr_not_equal(child->path, parent->path); /* its own copy */
	assert_null(pf_proc_cache__lookup(c, 501, 999));

	/* The child execs at 3000: before that it was nginx, from then on
	 * it is sh. The parent does not change. */
	assert_int_equal(exec_(c, 501, 1000, 3000, "/bin/sh", "-c true"), 0);
	assert_string_equal(path_at(c, 501, 2000), "/usr/sbin/nginx");
	assert_int_equal(pf_proc_cache__lookup(c, 501, 2000)->source, PF_PROC_SRC_FORK);
	assert_string_equal(path_at(c, 501, 2999), "/usr/sbin/nginx");
	assert_string_equal(path_at(c, 501, 3000), "/bin/sh");
	assert_string_equal(pf_proc_cache__lookup(c, 501, 3000)->args, "-c true");
	assert_string_equal(path_at(c, 500, 3000), "/usr/sbin/nginx");

	/* The parent's exit does not touch the child. */
	pf_proc_cache__exit(c, 500, 100, 4000);
	assert_string_equal(path_at(c, 501, 5000), "/bin/sh");
	pf_proc_cache__free(c);
}

static void test_fork_parent_program_at_fork(void **state)
{
	struct pf_proc_cache *c = new_cache(16);

	/* The parent ran sh, forked at 3000, and exec'd bash at 5000; the fork
	 * event is handled after the exec. The child is a copy of sh. */
	assert_int_equal(exec_(c, 600, 100, 100, "/bin/sh", NULL), 0);
	assert_int_equal(exec_(c, 600, 100, 5000, "/bin/bash", NULL), 0);
	assert_int_equal(pf_proc_cache__fork(c, 601, 3000, 600, 100, "sh"), 0);
	assert_string_equal(path_at(c, 601, 3500), "/bin/sh");

	/* A parent known from /proc has a start rounded down to a clock tick
	 * and does not match the kernel's exact start: found by time. */
	assert_int_equal(pf_proc_cache__scan(c, 610, 1, 990, 0, "foo", "/usr/bin/foo", "-x", 0), 0);
	assert_int_equal(pf_proc_cache__fork(c, 611, 2000, 610, 995, "foo"), 0);
	assert_string_equal(path_at(c, 611, 2000), "/usr/bin/foo");
	assert_string_equal(pf_proc_cache__lookup(c, 611, 2000)->args, "-x");

	/* The child's exec was handled before its fork: the fork changes
	 * nothing. */
	assert_int_equal(exec_(c, 621, 1000, 1200, "/bin/ls", "-l"), 0);
	assert_int_equal(pf_proc_cache__fork(c, 621, 1000, 600, 100, "sh"), 0);
	assert_string_equal(path_at(c, 621, 1300), "/bin/ls");
	assert_string_equal(path_at(c, 621, 1100), "(none)");
	assert_int_equal(entries(c), 6);
	pf_proc_cache__free(c);
}

static void test_fork_unknown_parent(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	const struct pf_proc *p;

	assert_int_equal(pf_proc_cache__fork(c, 801, 1000, 800, 50, "worker"), 0);
	p = pf_proc_cache__lookup(c, 801, 1000);
	assert_non_null(p);
	assert_int_equal(p->source, PF_PROC_SRC_COMM);
	assert_null(p->path);
	assert_null(p->args);
	assert_string_equal(p->comm, "worker");
	assert_int_equal(p->pid, 801);
	assert_int_equal(p->ppid, 800);
	assert_int_equal(p->start_ns, 1000);

	/* A parent that exited before the fork time is not the parent. */
	assert_int_equal(exec_(c, 810, 10, 10, "/bin/gone", NULL), 0);
	pf_proc_cache__exit(c, 810, 10, 500);
	assert_int_equal(pf_proc_cache__fork(c, 811, 1000, 810, 10, "x"), 0);
	assert_null(pf_proc_cache__lookup(c, 811, 1000)->path);
	pf_proc_cache__free(c);
}

static void test_exit_grace(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	const struct pf_proc *p;

	assert_int_equal(exec_(c, 900, 100, 100, "/bin/x", NULL), 0);
	assert_int_equal(exec_(c, 901, 100, 100, "/bin/alive", NULL), 0);

	/* Unknown processes, and another life of a known PID: ignored. */
	pf_proc_cache__exit(c, 999, 100, 200);
	pf_proc_cache__exit(c, 900, 50, 200);
	assert_int_equal(pf_proc_cache__lookup(c, 900, 300)->exit_ns, 0);

	pf_proc_cache__exit(c, 900, 100, 5000);
	p = pf_proc_cache__lookup(c, 900, 4000);
	assert_non_null(p);
	assert_int_equal(p->exit_ns, 5000);
	assert_int_equal(p->until_ns, 5000);
	assert_string_equal(path_at(c, 900, 5000), "/bin/x");
	assert_string_equal(path_at(c, 900, 5001), "(none)");

	/* Flushed after the exit, the flow still names the process... */
	pf_proc_cache__gc(c, 5500);
	assert_string_equal(path_at(c, 900, 4000), "/bin/x");
	pf_proc_cache__gc(c, 5000 + GRACE);
	assert_string_equal(path_at(c, 900, 4000), "/bin/x");
	assert_int_equal(entries(c), 2);
	/* ... until the grace period is over. */
	pf_proc_cache__gc(c, 5000 + GRACE + 1);
	assert_string_equal(path_at(c, 900, 4000), "(none)");
	assert_int_equal(entries(c), 1);

	/* A running process is never collected; a superseded program is. */
	assert_int_equal(exec_(c, 901, 100, 20000, "/bin/alive2", NULL), 0);
	pf_proc_cache__gc(c, UINT64_MAX);
	assert_string_equal(path_at(c, 901, 15000), "(none)");
	assert_string_equal(path_at(c, 901, UINT64_MAX), "/bin/alive2");
	assert_int_equal(entries(c), 1);
	pf_proc_cache__free(c);

	/* A grace period so long that until + grace overflows. */
	c = pf_proc_cache__new(4, UINT64_MAX);
	assert_non_null(c);
	assert_int_equal(exec_(c, 1, 1, 1, "/a", NULL), 0);
	pf_proc_cache__exit(c, 1, 1, 10);
	pf_proc_cache__gc(c, UINT64_MAX);
	assert_string_equal(path_at(c, 1, 5), "/a");
	pf_proc_cache__free(c);
}

static void test_bound(void **state)
{
	struct pf_proc_cache *c = new_cache(4);
	struct pf_proc_cache_stats st;
	uint32_t pid;

	for (pid = 1; pid <= 4; pid++)
		assert_int_equal(exec_(c, pid, 100, 100, "/bin/live", NULL), 0);

	/* Full of running processes: nothing may go, the insert is refused. */
	assert_int_equal(exec_(c, 5, 100, 100, "/bin/five", NULL), -ENOSPC);
	assert_int_equal(pf_proc_cache__fork(c, 6, 200, 1, 100, "x"), -ENOSPC);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.dropped, 2);
	assert_int_equal(st.evicted, 0);
	assert_string_equal(path_at(c, 5, 200), "(none)");

	/* Two exit; the one that exited first (3) goes first, though it is
	 * still in its grace period. */
	pf_proc_cache__exit(c, 2, 100, 3000);
	pf_proc_cache__exit(c, 3, 100, 2000);
	assert_int_equal(exec_(c, 5, 100, 100, "/bin/five", NULL), 0);
	assert_string_equal(path_at(c, 3, 1500), "(none)");
	assert_string_equal(path_at(c, 2, 1500), "/bin/live");
	assert_string_equal(path_at(c, 5, 200), "/bin/five");
	assert_int_equal(exec_(c, 6, 100, 100, "/bin/six", NULL), 0);
	assert_string_equal(path_at(c, 2, 1500), "(none)");
	assert_string_equal(path_at(c, 6, 200), "/bin/six");
	assert_int_equal(exec_(c, 7, 100, 100, "/bin/seven", NULL), -ENOSPC);

	/* An exec of a cached process ends its previous program: that one
	 * makes room, rather than the PID keeping the name of a program it
	 * no longer runs. */
	assert_int_equal(exec_(c, 1, 100, 4000, "/bin/next", NULL), 0);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.entries, 4);
	assert_int_equal(st.dropped, 3);
	assert_int_equal(st.evicted, 3);
	assert_string_equal(path_at(c, 1, 5000), "/bin/next");
	assert_string_equal(path_at(c, 1, 3000), "(none)");
	assert_string_equal(path_at(c, 4, 3000), "/bin/live");
	assert_string_equal(path_at(c, 5, 3000), "/bin/five");
	assert_string_equal(path_at(c, 6, 3000), "/bin/six");

	/* A scan that has nothing to add needs no room. */
	assert_int_equal(pf_proc_cache__scan(c, 5, 1, 50, 0, "five", "/bin/old", NULL, 0), 0);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.dropped, 3);
	pf_proc_cache__free(c);

	/* With room for one. */
	c = new_cache(1);
	assert_int_equal(exec_(c, 9, 100, 100, "/bin/sh", NULL), 0);
	assert_int_equal(exec_(c, 9, 100, 200, "/usr/bin/env", NULL), 0);
	assert_string_equal(path_at(c, 9, 150), "(none)");
	assert_string_equal(path_at(c, 9, 250), "/usr/bin/env");
	assert_int_equal(exec_(c, 10, 400, 400, "/bin/ten", NULL), -ENOSPC);
	pf_proc_cache__exit(c, 9, 100, 300);
	assert_int_equal(exec_(c, 10, 400, 400, "/bin/ten", NULL), 0);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.evicted, 2);
	assert_int_equal(st.dropped, 1);
	assert_string_equal(path_at(c, 10, 400), "/bin/ten");
	assert_string_equal(path_at(c, 9, 250), "(none)");
	pf_proc_cache__free(c);
}

static void test_scan(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	const struct pf_proc *p;

	assert_int_equal(
	    pf_proc_cache__scan(c, 1000, 1, 500, 1000, "sshd", "/usr/sbin/sshd", "-D", 0), 0);
	p = pf_proc_cache__lookup(c, 1000, 500);
	assert_non_null(p);
	assert_int_equal(p->source, PF_PROC_SRC_PROCFS);
	assert_int_equal(p->since_ns, 500);
	assert_int_equal(p->start_ns, 500);
	assert_int_equal(p->ppid, 1);
	assert_int_equal(p->uid, 1000);
	assert_string_equal(p->args, "-D");

	/* Scanning the same process twice keeps one identity. */
	assert_int_equal(pf_proc_cache__scan(c, 1000, 1, 500, 1000, "sshd", "/x", "", 0), 0);
	assert_string_equal(path_at(c, 1000, 600), "/usr/sbin/sshd");
	assert_int_equal(entries(c), 1);

	/* The kernel told us about this PID's current life first: the scan
	 * (older, or equal) does not replace it. */
	assert_int_equal(exec_(c, 1001, 800, 900, "/bin/new", NULL), 0);
	assert_int_equal(pf_proc_cache__scan(c, 1001, 1, 500, 0, "x", "/bin/stale", NULL, 0), 0);
	assert_int_equal(pf_proc_cache__scan(c, 1001, 1, 800, 0, "x", "/bin/stale", NULL, 0), 0);
	assert_string_equal(path_at(c, 1001, 600), "(none)");
	assert_string_equal(path_at(c, 1001, 850), "(none)");
	assert_string_equal(path_at(c, 1001, 950), "/bin/new");
	assert_int_equal(entries(c), 2);

	/* A scan of a newer life than the one cached replaces it from its
	 * start. */
	assert_int_equal(pf_proc_cache__scan(c, 1001, 1, 2000, 0, "x", "/bin/newer", NULL, 0), 0);
	assert_string_equal(path_at(c, 1001, 1500), "/bin/new");
	assert_string_equal(path_at(c, 1001, 2000), "/bin/newer");
	pf_proc_cache__free(c);
}

/*
 * A process learnt from /proc has its start cut to a clock tick; the
 * kernel's events carry it to the nanosecond. Its exit must still end it
 * (else it stays current for ever: a dead daemon keeps resolving, and a
 * new process with its PID whose events were lost is named after it), and
 * its exec must end the scanned program at the exec, not at its start.
 */
static void test_scan_tick_precision(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	const uint64_t tick = 10000000; /* 10 ms: USER_HZ 100 */
	const uint64_t start = 5 * tick + 1234567, scanned = 5 * tick;

	pf_proc_cache__set_tick(c, tick);
	assert_int_equal(
	    pf_proc_cache__scan(c, 1000, 1, scanned, 0, "daemon", "/usr/sbin/daemon", "-f", 0), 0);
	assert_string_equal(path_at(c, 1000, start + 100), "/usr/sbin/daemon");
	pf_proc_cache__exit(c, 1000, start, 9 * tick);
	assert_string_equal(path_at(c, 1000, 8 * tick), "/usr/sbin/daemon");
	assert_string_equal(path_at(c, 1000, 10 * tick), "(none)");
	/* Ended, so it goes once its grace period is over. */
	pf_proc_cache__gc(c, 9 * tick + GRACE + 1);
	assert_int_equal(entries(c), 0);

	/* The same life execs: the scanned program ends at the exec. */
	assert_int_equal(pf_proc_cache__scan(c, 2000, 1, 20 * tick, 0, "sh", "/bin/sh", "", 0), 0);
	assert_int_equal(exec_(c, 2000, 20 * tick + 5555, 30 * tick, "/bin/next", ""), 0);
	assert_string_equal(path_at(c, 2000, 25 * tick), "/bin/sh");
	assert_string_equal(path_at(c, 2000, 30 * tick + 1), "/bin/next");
	/* ...and the exit of that life ends both. */
	pf_proc_cache__exit(c, 2000, 20 * tick + 5555, 40 * tick);
	assert_string_equal(path_at(c, 2000, 41 * tick), "(none)");

	/* A fork event for a child the scan already knows keeps the scan's
	 * identity (the child's own program, read from /proc). */
	assert_int_equal(pf_proc_cache__scan(c, 3000, 1, 50 * tick, 0, "w", "/bin/worker", "", 0),
			 0);
	assert_int_equal(pf_proc_cache__fork(c, 3000, 50 * tick + 77, 1, 1, "w"), 0);
	assert_string_equal(path_at(c, 3000, 60 * tick), "/bin/worker");

	/* A life that starts a tick later is another life: the exit of the
	 * first does not end it. */
	assert_int_equal(exec_(c, 4000, 70 * tick + 9, 70 * tick + 10, "/bin/a", ""), 0);
	pf_proc_cache__exit(c, 4000, 70 * tick + 9, 70 * tick + 20);
	assert_int_equal(exec_(c, 4000, 71 * tick + 3, 71 * tick + 4, "/bin/b", ""), 0);
	pf_proc_cache__exit(c, 4000, 70 * tick + 9, 72 * tick);
	assert_string_equal(path_at(c, 4000, 73 * tick), "/bin/b");
	pf_proc_cache__free(c);
}

static int alive_unless(uint32_t pid, uint64_t start_ns, int rounded, void *ctx)
{
	const uint32_t *dead = ctx;

	(void)start_ns;
	(void)rounded;
	return pid != *dead;
}

/* An exit event that was lost (ring buffer full): the identity would stay
 * current for ever. A reap asks whether the process still runs. */
static void test_reap(void **state)
{
	struct pf_proc_cache *c = new_cache(16);
	struct pf_proc_cache_stats st;
	uint32_t dead = 100;

	assert_int_equal(exec_(c, 100, 10, 10, "/bin/a", ""), 0);
	assert_int_equal(exec_(c, 200, 20, 20, "/bin/b", ""), 0);
	assert_int_equal(exec_(c, 300, 30, 1000, "/bin/late", ""), 0);
	assert_int_equal(pf_proc_cache__reap(c, 500, 500, alive_unless, &dead), 1);
	assert_string_equal(path_at(c, 100, 400), "/bin/a");
	assert_string_equal(path_at(c, 100, 600), "(none)");
	assert_string_equal(path_at(c, 200, 600), "/bin/b");
	/* Too recent to ask about (its events may still be on the way). */
	dead = 300;
	assert_int_equal(pf_proc_cache__reap(c, 600, 500, alive_unless, &dead), 0);
	assert_string_equal(path_at(c, 300, 1100), "/bin/late");
	/* Ended, so collected after its grace period. */
	pf_proc_cache__gc(c, 500 + GRACE + 1);
	assert_int_equal(entries(c), 2);
	pf_proc_cache__stats(c, &st);
	assert_int_equal(st.reaped, 1);
	pf_proc_cache__free(c);
}

/* A bijection on 32 bits (murmur3's finaliser): distinct, scattered PIDs. */
static uint32_t scatter(uint32_t x)
{
	x ^= x >> 16;
	x *= 0x85ebca6bu;
	x ^= x >> 13;
	x *= 0xc2b2ae35u;
	x ^= x >> 16;
	return x;
}

/*
 * Many PIDs through the table, rounds of exits, collections and new lives:
 * every removal shifts entries of the open-addressing table back. After
 * each round, each PID must be found exactly when it should be. The PIDs
 * are scattered rather than sequential because sequential PIDs hash
 * without collisions and would not exercise the probe runs.
 */
static void many_pids(unsigned N, unsigned ROUNDS)
{
	struct pf_proc_cache *c = new_cache(N);
	unsigned char *live = calloc(N, 1);
	uint64_t now = 10, nlive;
	unsigned seed = 1, round, i;

	assert_non_null(live);

	for (round = 0; round < ROUNDS; round++) {
		/* Exit a pseudo-random third, collect them, start others. */
		for (i = 0; i < N; i++) {
			seed = seed * 1103515245u + 12345u;
			if (live[i] && (seed >> 16) % 3 == 0) {
				pf_proc_cache__exit(c, scatter(i), i * 16ULL + live[i], now);
				live[i] = 0;
			}
		}
		now += GRACE + 10;
		pf_proc_cache__gc(c, now);
		for (i = 0; i < N; i++) {
			if (live[i])
				continue;
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) % 4 == 0)
				continue;
			/* A start per round: a new life (its predecessor is collected). */
			assert_int_equal(pf_proc_cache__exec(c, scatter(i), 1,
							     i * 16ULL + round % 15 + 1, now, 0, 0,
							     "x", "/bin/x", NULL, 0),
					 0);
			live[i] = (unsigned char)(round % 15 + 1);
		}
		now += 10;
		for (nlive = 0, i = 0; i < N; i++)
			nlive += live[i] != 0;
		assert_int_equal(entries(c), nlive);
		for (i = 0; i < N; i++) {
			const struct pf_proc *p = pf_proc_cache__lookup(c, scatter(i), now);

			if (!live[i]) {
				assert_null(p);
				continue;
			}
			assert_non_null(p);
			assert_int_equal(p->pid, scatter(i));
			assert_int_equal(p->start_ns, i * 16ULL + live[i]);
		}
	}
	pf_proc_cache__free(c);
	free(live);
}

static void test_many_pids(void **state)
{
	/* Small tables make probe runs wrap around the end of the table. */
	many_pids(8, 200);
	many_pids(64, 100);
	many_pids(6000, 12);
}

/*
 * Random events, some out of order, with zero times and a cache much
 * smaller than the PID range, so that eviction, refusal, PID reuse and
 * collection all mix. Checked after each step: the bound holds, and what
 * lookup returns is the asked PID with a window that holds the asked time,
 * not past its grace period at the last collection.
 * Under ASan this also checks that no freed identity is touched.
 */
static void random_events(size_t max, unsigned seed, unsigned gc_one_in)
{
	struct pf_proc_cache *c = new_cache(max);
	struct pf_proc_cache_stats st;
	uint64_t now = 0, last_gc = 0, starts[24] = {0};
	unsigned step;

	for (step = 0; step < 200000; step++) {
		uint32_t r, pid, other;
		uint64_t ts;
		const struct pf_proc *p;

		seed = seed * 1103515245u + 12345u;
		r = seed >> 8;
		pid = r % 24;
		other = (r >> 5) % 24;
		now += (r >> 10) % 4;
		/* Sometimes an event from a little in the past. */
		ts = (r >> 12) % 8 == 0 && now > 20 ? now - (r >> 16) % 20 : now;
		switch ((r >> 20) % 8) {
		case 0:
			starts[pid] = ts; /* a new life */
			exec_(c, pid, starts[pid], ts, "/bin/a", "x");
			break;
		case 1:
			exec_(c, pid, starts[pid], ts, "/bin/b", NULL);
			break;
		case 2:
			starts[pid] = ts;
			pf_proc_cache__fork(c, pid, ts, other, starts[other], "f");
			break;
		case 3:
			pf_proc_cache__exit(c, pid, starts[pid], ts);
			break;
		case 4:
			pf_proc_cache__scan(c, pid, other, ts, 0, "s", "/bin/s", "", 0);
			break;
		case 5:
			if ((r >> 3) % gc_one_in)
				break;
			pf_proc_cache__gc(c, now);
			last_gc = now;
			break;
		default:
			/* Also far back, where only identities kept too long
			 * would still answer. */
			if (r % 2 && now > 3000)
				ts = now - (r >> 3) % 3000;
			p = pf_proc_cache__lookup(c, pid, ts);
			if (p) {
				assert_int_equal(p->pid, pid);
				assert_true(p->since_ns <= ts);
				assert_true(p->until_ns == 0 || ts <= p->until_ns);
				assert_true(p->exit_ns == 0 || ts <= p->exit_ns);
				/* Collected when it should have been. */
				assert_false(p->until_ns && p->until_ns + GRACE < last_gc);
			}
			break;
		}
		pf_proc_cache__stats(c, &st);
		assert_true(st.entries <= max);
	}
	pf_proc_cache__stats(c, &st);
	assert_true(st.evicted > 0);
	pf_proc_cache__free(c);
}

static void test_random_events(void **state)
{
	/* Full all the time: eviction and refusal. */
	random_events(16, 7, 1);
	/* Roomy, rarely collected: ended identities pile up, so the order in
	 * which they go matters. */
	random_events(128, 11, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_new_free),
	    cmocka_unit_test(test_exec_fields),
	    cmocka_unit_test(test_exec_supersedes),
	    cmocka_unit_test(test_exec_out_of_order),
	    cmocka_unit_test(test_pid_reuse),
	    cmocka_unit_test(test_fork_inherits),
	    cmocka_unit_test(test_fork_parent_program_at_fork),
	    cmocka_unit_test(test_fork_unknown_parent),
	    cmocka_unit_test(test_exit_grace),
	    cmocka_unit_test(test_bound),
	    cmocka_unit_test(test_scan),
	    cmocka_unit_test(test_scan_tick_precision),
	    cmocka_unit_test(test_reap),
	    cmocka_unit_test(test_many_pids),
	    cmocka_unit_test(test_random_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
