/* SPDX-License-Identifier: BSD-2-Clause */
/*
 * The allocator's thresholds for a long-running process (glibc).
 *
 * glibc raises its mmap threshold to the size of each large block freed (up
 * to 32 MiB) and its trim threshold to twice that. After the first
 * ClickHouse batch of a few MiB is freed, the next ones come from a heap
 * arena instead of their own mapping, and the arena keeps up to twice that
 * size of freed memory resident for good: a one-time step of several MiB in
 * a daemon whose own tables are flat (the soak saw +4.6 MiB, all of it in
 * the sender thread's arena). Fixed thresholds turn the adjustment off:
 * every block from 128 KiB up is mapped on its own and unmapped when freed.
 */
#ifndef PF_MEMTUNE_H
#define PF_MEMTUNE_H

/* Blocks of this size and larger get a mapping of their own. */
#define PF_MEMTUNE_MMAP_BYTES (128u * 1024)

/* Fix the thresholds; call before any thread starts. Returns 0, or -1 when
 * the allocator is not glibc's (a sanitizer's: nothing to tune). */
int pf_memtune__init(void);

#endif
