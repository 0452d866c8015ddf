/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every kernel-version difference the BPF side reads through lives here,
 * as ___flavour structs checked with bpf_core_field_exists(). Never
 * LINUX_VERSION_CODE: a distribution kernel's version says little about
 * its backports.
 */
#ifndef PF_CORE_FIXES_BPF_H
#define PF_CORE_FIXES_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_core_read.h>

/*
 * struct net::net_cookie was an atomic64_t generated on first use
 * (v5.7, "net: Introduce netns_cookie"), and became a plain u64 set when
 * the namespace is created (v5.12, "net: Remove the atomic64 from
 * net_cookie"). bpf_get_netns_cookie() returns the same value, so the
 * cgroup hooks and the tracing hooks agree on it.
 */
struct net___atomic_cookie {
	atomic64_t net_cookie;
} __attribute__((preserve_access_index));

static __always_inline __u64 pf_net_cookie(const struct net *net)
{
	if (!net)
		return 0;
	if (bpf_core_field_exists(((struct net___atomic_cookie *)0)->net_cookie.counter))
		return BPF_CORE_READ((struct net___atomic_cookie *)net, net_cookie.counter);
	return BPF_CORE_READ(net, net_cookie);
}

/*
 * task_struct::start_boottime (v5.5, "proc: use boottime for process start
 * time"); older kernels call it real_start_time. It is the clock of
 * /proc/<pid>/stat's starttime, so identities from exec events and from
 * /proc scans compare.
 */
struct task_struct___real_start {
	u64 real_start_time;
} __attribute__((preserve_access_index));

static __always_inline __u64 pf_task_start_ns(const struct task_struct *task)
{
	if (bpf_core_field_exists(task->start_boottime))
		return BPF_CORE_READ(task, start_boottime);
	return BPF_CORE_READ((struct task_struct___real_start *)task, real_start_time);
}

/*
 * tcp_sock::snd_cwnd was renamed tcp_snd_cwnd-accessor-only in v5.19 (the
 * field itself kept its name, but is read through tcp_snd_cwnd()); the
 * field name is stable, nothing to fix. mss_cache, srtt_us, total_retrans
 * and lost_out are stable since before v5.4.
 */

#endif
