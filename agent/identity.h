/* SPDX-License-Identifier: BSD-2-Clause */
/* Process identity helpers of the daemon (identity.c). */
#ifndef PF_IDENTITY_H
#define PF_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_config;
struct pf_proc_cache;

/*
 * The process_args string of an argument area @raw (@raw_len bytes,
 * NUL-separated, argv[0] included) of the program @exe: redacted with
 * cfg->redactor (using @scratch, @scratchsz bytes), joined, and ending in
 * "...[truncated]" when anything was cut (@raw_truncated: the area itself
 * was cut at its bound). @outsz must exceed the mark's 15 bytes. Returns
 * the length written to @out (NUL-terminated); sets *@truncated.
 */
size_t pf_identity_args(const struct pf_config *cfg, const char *exe, const char *raw,
			size_t raw_len, int raw_truncated, char *out, size_t outsz, char *scratch,
			size_t scratchsz, int *truncated);

/* @exe (a /proc/<pid>/exe link) without the kernel's " (deleted)" suffix.
 * Edits @exe in place; returns it. */
const char *pf_identity_exe(char *exe);

/*
 * At most once a minute (call it at every flush): end the identities of
 * processes that no longer run but whose exit event was lost, checked
 * against the host's processes (only with @host_pidns: the kernel's PIDs
 * are this /proc's). Without it such an identity stays current, and is
 * never collected, until its PID is taken again.
 */
void pf_identity_reap(struct pf_proc_cache *procs, uint64_t now_ns, bool host_pidns);

#endif
