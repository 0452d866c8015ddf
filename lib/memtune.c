// SPDX-License-Identifier: BSD-2-Clause
/* The allocator's thresholds: see memtune.h. */
#include <malloc.h>

#include "memtune.h"

int pf_memtune__init(void)
{
	/* Setting either value explicitly turns glibc's dynamic adjustment
	 * off; the trim threshold keeps its default too, so a heap returns
	 * its free top beyond 128 KiB as before. mallopt() returns 1 on
	 * success (a sanitizer's interceptor returns something else). */
	if (mallopt(M_MMAP_THRESHOLD, (int)PF_MEMTUNE_MMAP_BYTES) != 1 ||
	    mallopt(M_TRIM_THRESHOLD, (int)PF_MEMTUNE_MMAP_BYTES) != 1)
		return -1;
	return 0;
}
