/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * Reading process identity from a procfs tree.
 *
 * Every function takes the procfs root (normally "/proc") so that tests can
 * point it at a directory they built. Parsers are separate from file access
 * so that they can be fuzzed.
 */
#ifndef PF_PROCFS_H
#define PF_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct pf_procfs_stat {
	char comm[16];	     /* NUL-terminated, at most 15 characters */
	uint32_t ppid;
	uint64_t start_ticks; /* field 22: starttime in clock ticks since boot */
};

/*
 * Parse the contents of /proc/<pid>/stat. The comm field is between the
 * first '(' and the LAST ')' (a comm may contain ')' and spaces).
 * Returns 0, or -EINVAL when the text is not a stat line.
 */
int pf_procfs__parse_stat(const char *buf, size_t len, struct pf_procfs_stat *out);

/*
 * Turn a raw argument area (NUL-separated argv as in /proc/<pid>/cmdline
 * or the exec event; argv[0] included; the final NUL optional) into the
 * flow-log form: argv[1..n] joined with single spaces. At most @max_argc
 * arguments (argv[0] not counted) are kept. Writes at most @outsz - 1
 * bytes and a NUL into @out. Bytes are copied as they are (the JSON writer
 * escapes them). If anything was left out (argument count, output space)
 * *@truncated is set to 1. Returns the length written.
 */
size_t pf_procfs__join_args(const char *raw, size_t len, unsigned max_argc, char *out,
			    size_t outsz, int *truncated);

struct pf_procfs_proc {
	uint32_t pid;
	uint32_t ppid;
	uint32_t uid;
	uint64_t start_ns;   /* start_ticks converted to ns */
	char comm[16];
	char exe[4096];      /* readlink of exe, "" when unreadable (kernel threads) */
	char *args;          /* raw cmdline (NUL-separated), malloc'd, may be NULL */
	size_t args_len;
	int args_truncated;  /* cmdline longer than the bound */
};

/*
 * Read one process from @root/<pid>: stat, status (Uid), exe, cmdline (at
 * most @args_max bytes). Returns 0 or a negative errno (-ENOENT when the
 * process is gone). The caller frees p->args.
 */
int pf_procfs__read(const char *root, uint32_t pid, size_t args_max, struct pf_procfs_proc *p);

/*
 * The start time of process @pid from @root/<pid>/stat, in ns since boot
 * (rounded down to a clock tick). Returns 0, -ENOENT when there is no such
 * process (or it is hidden from us), or another negative errno.
 */
int pf_procfs__start_ns(const char *root, uint32_t pid, uint64_t *start_ns);

/*
 * Call @cb for every numeric directory of @root (every process). Stops and
 * returns the callback's value when it is non-zero. Returns 0 or a
 * negative errno when @root cannot be read.
 */
int pf_procfs__for_each_pid(const char *root, int (*cb)(uint32_t pid, void *ctx), void *ctx);

#endif
