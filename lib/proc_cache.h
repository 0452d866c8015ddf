/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The process cache: who a PID was at a given moment.
 *
 * A process is identified by (pid, start_ns), never by PID alone. Each PID
 * maps to a short history of identities, newest first. An identity has a
 * validity window [since_ns, until_ns]: since_ns is the exec time (or the
 * start time for a fork or a /proc scan), until_ns is set when the process
 * execs again (the old identity is superseded) or exits. A socket seen at
 * time T with PID P is attributed to the identity of P whose window holds T;
 * a reused PID has a newer start and never inherits the old identity.
 *
 * Exited identities are kept for a grace period so that flows written
 * after the process has gone still name it (pf_proc_cache__gc()).
 *
 * An identity learnt from /proc has a start time rounded down to a clock
 * tick; the kernel's events give it to the nanosecond. An event matches
 * such an identity when both starts fall in the same tick.
 *
 * The cache is bounded: when it holds max_entries identities, the oldest
 * exited one is evicted; if none has exited, the insert fails with
 * -ENOSPC and is counted in stats.dropped. Its memory grows with use up to
 * what max_entries needs; when a growth fails (out of memory) the cache
 * keeps every identity, treats its present size as the bound in the same
 * way, and counts the failure in stats.grow_failed.
 */
#ifndef PF_PROC_CACHE_H
#define PF_PROC_CACHE_H

#include <stddef.h>
#include <stdint.h>

enum pf_proc_source {
	PF_PROC_SRC_EXEC = 1,	/* exec event from the kernel */
	PF_PROC_SRC_PROCFS = 2, /* /proc scan at start-up */
	PF_PROC_SRC_FORK = 3,	/* fork without exec: copied from the parent */
	PF_PROC_SRC_COMM = 4,	/* only the task name is known */
};

struct pf_proc {
	uint32_t pid;
	uint32_t ppid;
	uint32_t uid;
	uint32_t source; /* enum pf_proc_source */
	uint64_t start_ns; /* with pid, the identity */
	uint64_t since_ns; /* this identity is valid from ... */
	uint64_t until_ns; /* ... to (0: still current) */
	uint64_t exit_ns;  /* 0 while alive */
	uint64_t cgroup_id;
	char comm[16];
	char *path;	   /* absolute executable path, NULL if unknown */
	char *args;	   /* argv[1..] joined by spaces ("" if none), NULL if unknown */
	int args_truncated;
	/* The kernel's exec counter of this program (self_exec_id), when
	 * known (from an exec or fork event; a /proc scan cannot know it). */
	uint32_t exec_id;
	int has_exec_id;
};

struct pf_proc_cache_stats {
	uint64_t entries;
	uint64_t dropped; /* inserts refused because the cache was full */
	uint64_t evicted; /* exited identities evicted early to make room */
	uint64_t reaped;  /* ended by pf_proc_cache__reap(): their exit was never seen */
	/* Identities the tables hold at their present size; grows up to
	 * max_entries as the cache fills. */
	uint64_t capacity;
	/* Growths of the tables that failed (out of memory): the cache kept
	 * its size, which bounds it as max_entries would until a growth works. */
	uint64_t grow_failed;
};

struct pf_proc_cache;

/* New cache holding at most @max_entries identities; exited identities are
 * kept @grace_ns after their exit. Returns NULL with errno set. */
struct pf_proc_cache *pf_proc_cache__new(size_t max_entries, uint64_t grace_ns);

/* Change the grace period (the flush interval changed on a reload). */
void pf_proc_cache__set_grace(struct pf_proc_cache *c, uint64_t grace_ns);
void pf_proc_cache__free(struct pf_proc_cache *c); /* accepts NULL */

/*
 * A process exec'd at @ts_ns. The previous identity of (@pid, @start_ns),
 * if any, ends at @ts_ns. @path may be NULL (unknown); @args is the joined
 * form (see pf_procfs__join_args), NULL if unknown. Strings are copied.
 * Returns 0 or a negative errno.
 */
int pf_proc_cache__exec(struct pf_proc_cache *c, uint32_t pid, uint32_t ppid, uint64_t start_ns,
			uint64_t ts_ns, uint32_t uid, uint64_t cgroup_id, const char *comm,
			const char *path, const char *args, int args_truncated);

/*
 * A process learnt from /proc (it was running before the agent). Same
 * arguments as exec; since_ns is @start_ns. Does not replace a newer
 * identity already in the cache for the same PID.
 */
int pf_proc_cache__scan(struct pf_proc_cache *c, uint32_t pid, uint32_t ppid, uint64_t start_ns,
			uint32_t uid, const char *comm, const char *path, const char *args,
			int args_truncated);

/*
 * @child_pid was forked at @child_start_ns by (@ppid, @parent_start_ns). The
 * child keeps the parent's program identity (path, args, uid, cgroup) with
 * its own PID, until it execs. If the parent is unknown the child gets
 * only @comm. Returns 0 or a negative errno.
 */
int pf_proc_cache__fork(struct pf_proc_cache *c, uint32_t child_pid, uint64_t child_start_ns,
			uint32_t ppid, uint64_t parent_start_ns, const char *comm);

/*
 * Record the kernel's exec counter of the identity (@pid, @start_ns) valid
 * at @ts_ns (call right after __exec() or __fork() with their times).
 * Returns 0, or -ENOENT when there is no such identity.
 */
int pf_proc_cache__set_exec_id(struct pf_proc_cache *c, uint32_t pid, uint64_t start_ns,
			       uint64_t ts_ns, uint32_t exec_id);

/* (@pid, @start_ns) exited at @exit_ns. Unknown processes are ignored. */
void pf_proc_cache__exit(struct pf_proc_cache *c, uint32_t pid, uint64_t start_ns,
			 uint64_t exit_ns);

/*
 * The identity @pid had at @ts_ns: the newest identity of @pid with
 * since_ns <= ts_ns, provided that it had not ended before @ts_ns.
 * (An identity from a /proc scan has a start rounded down to a clock tick,
 * so it is still found.) Returns NULL when none.
 * The pointer is valid until the next call that changes the cache.
 */
const struct pf_proc *pf_proc_cache__lookup(struct pf_proc_cache *c, uint32_t pid,
					    uint64_t ts_ns);

/* Drop identities that ended (exit or superseded) before @cutoff_ns -
 * grace. Call after each flush. */
void pf_proc_cache__gc(struct pf_proc_cache *c, uint64_t now_ns);

void pf_proc_cache__stats(const struct pf_proc_cache *c, struct pf_proc_cache_stats *st);

/*
 * Whether the process (@pid, @start_ns) still runs; @rounded: @start_ns was
 * read from /proc (cut to a clock tick). Return 1 when it does, or when it
 * cannot be told; 0 only when it surely does not.
 */
typedef int (*pf_proc_alive_fn)(uint32_t pid, uint64_t start_ns, int rounded, void *ctx);

/*
 * End, as if by an exit at @now_ns, every identity still current that
 * began before @before_ns and that @alive says no longer runs: processes
 * whose exit event was lost (ring buffer full) would otherwise stay
 * current, and never be collected, until their PID is taken again.
 * Returns how many were ended (also counted in stats.reaped).
 */
size_t pf_proc_cache__reap(struct pf_proc_cache *c, uint64_t now_ns, uint64_t before_ns,
			   pf_proc_alive_fn alive, void *ctx);

/* The precision of a start time read from /proc: one clock tick
 * (sysconf(_SC_CLK_TCK)), in ns. The cache uses it from creation. */
uint64_t pf_proc_cache__tick_ns(void);

/* Use @tick_ns instead (tests; 0 is ignored). */
void pf_proc_cache__set_tick(struct pf_proc_cache *c, uint64_t tick_ns);

#endif
